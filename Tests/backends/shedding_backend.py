#!/usr/bin/env python3
"""An HTTP/1.1 keep-alive backend that holds at most CAPACITY connections and makes room the way nginx does at
`worker_connections`: when a connection waits to be accepted and every slot is taken, it closes its longest-idle
keep-alive connection (one between requests) and accepts the new one; with none idle, the new connection waits in
the kernel's accept queue until one is. Every request is answered `200 ok` after DELAY_MS.

Usage: shedding_backend.py CAPACITY DELAY_MS; prints "shedding_backend listening on 127.0.0.1:PORT", then one line
per second while connections are open:
  stats accepted=A shed=S open=O idle=I answered=R
(counts since start; open and idle now). Stops on SIGTERM.
"""
import collections
import selectors
import signal
import socket
import sys
import time

capacity, delay = int(sys.argv[1]), int(sys.argv[2]) / 1000.0

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(4096)
listener.setblocking(False)
sel = selectors.DefaultSelector()
sel.register(listener, selectors.EVENT_READ, None)
listening = True

# Per connection: bytes not yet parsed, and when its pending answer is due (None while idle). `idle` keeps the
# idle connections in the order they became idle (oldest first).
buffers, due = {}, {}
idle = collections.OrderedDict()
counts = {"accepted": 0, "shed": 0, "answered": 0}
running = True


def stop(*_):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)


def close(conn):
    if conn not in buffers:
        return  # closed earlier in this pass (shed while its read was pending)
    sel.unregister(conn)
    buffers.pop(conn, None)
    due.pop(conn, None)
    idle.pop(conn, None)
    conn.close()


def set_listening(on):
    global listening
    if on != listening:
        (sel.register(listener, selectors.EVENT_READ, None) if on else sel.unregister(listener))
        listening = on


print(f"shedding_backend listening on 127.0.0.1:{listener.getsockname()[1]}", flush=True)
next_stats = time.monotonic() + 1
while running:
    now = time.monotonic()
    timeout = min([d for d in due.values() if d is not None] + [next_stats]) - now
    for key, _ in sel.select(max(0, timeout)):
        if key.fileobj is listener:
            while True:
                if len(buffers) >= capacity:
                    if not idle:
                        break
                    close(next(iter(idle)))  # the longest-idle one makes room
                    counts["shed"] += 1
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    break
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sel.register(conn, selectors.EVENT_READ, None)
                buffers[conn], due[conn], idle[conn] = b"", None, True
                counts["accepted"] += 1
            continue
        conn = key.fileobj
        if conn not in buffers:
            continue
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            close(conn)
            continue
        buffers[conn] += data
        if due[conn] is None and b"\r\n\r\n" in buffers[conn]:
            buffers[conn] = buffers[conn].split(b"\r\n\r\n", 1)[1]
            due[conn] = now + delay
            idle.pop(conn, None)
    now = time.monotonic()
    for conn, when in list(due.items()):
        if when is not None and when <= now:
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            except OSError:
                close(conn)
                continue
            counts["answered"] += 1
            due[conn] = None
            if b"\r\n\r\n" in buffers[conn]:  # a pipelined request: answer it next
                buffers[conn] = buffers[conn].split(b"\r\n\r\n", 1)[1]
                due[conn] = now + delay
            else:
                idle[conn] = True
    # Accept only while a slot is free or an idle connection can make room: otherwise new connections wait in
    # the kernel's accept queue, unseen, as they do at a real server's limit.
    set_listening(len(buffers) < capacity or bool(idle))
    if now >= next_stats:
        next_stats = now + 1
        print(f"stats accepted={counts['accepted']} shed={counts['shed']} open={len(buffers)} idle={len(idle)} "
              f"answered={counts['answered']}", flush=True)
print(f"stats accepted={counts['accepted']} shed={counts['shed']} open={len(buffers)} idle={len(idle)} "
      f"answered={counts['answered']}", flush=True)
