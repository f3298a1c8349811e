#!/usr/bin/env python3
"""Memory per idle keep-alive client connection of lb-server.

Starts a demo backend and lb-server (release build), opens N client connections (default 10,000), sends one
request on each and reads its response (so every connection has served a request and sits idle in keep-alive,
as a real idle client would), then reports the proxy's resident memory before and after, and bytes per
connection. Loopback only; everything it starts is stopped at the end.

usage: bench/idle_connections.py [--connections N] [--bin DIR]
"""
import argparse, os, re, resource, selectors, signal, socket, subprocess, sys, tempfile, time, json

def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError("no " + field)

def wait_port(proc, pattern):
    deadline = time.time() + 20
    buf = ""
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            time.sleep(0.05)
            continue
        buf += line
        m = re.search(pattern, line)
        if m:
            return int(m.group(1))
    raise RuntimeError("no listening line:\n" + buf)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--bin", default=None)
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    bindir = args.bin or subprocess.check_output(
        ["swift", "build", "-c", "release", "--static-swift-stdlib", "--show-bin-path"], cwd=root, text=True).strip()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.connections + 100:
        sys.exit(f"open-file hard limit {hard} is below {args.connections}: raise it (ulimit -Hn)")

    procs = []
    try:
        backend = subprocess.Popen([f"{bindir}/lb-demo-backend", "--port", "0", "--name", "b1"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(backend)
        bport = wait_port(backend, r"listening on 127\.0\.0\.1:(\d+)")
        cfg = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump({"listen": "127.0.0.1:0", "admin": {"listen": "127.0.0.1:0"},
                   "servers": [{"host": "127.0.0.1", "port": bport}],
                   "health_check": {"enabled": False},
                   "limits": {"max_client_connections": args.connections + 100},
                   "timeouts": {"client_idle": "10m"}}, cfg)
        cfg.close()
        lb = subprocess.Popen([f"{bindir}/lb-server", "--config", cfg.name],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(lb)
        port = wait_port(lb, r"listening on 127\.0\.0\.1:(\d+) \(proxy\)")
        # Warm up the code paths and the pool with a few requests first.
        warm = socket.create_connection(("127.0.0.1", port))
        for i in range(10):
            warm.sendall(b"GET /warm HTTP/1.1\r\nHost: b\r\n\r\n")
            warm.recv(4096)
        time.sleep(0.3)
        before = rss_kib(lb.pid)

        socks = []
        sel = selectors.DefaultSelector()
        request = b"GET /idle HTTP/1.1\r\nHost: b\r\n\r\n"
        for i in range(args.connections):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(request)
            socks.append(s)
            sel.register(s, selectors.EVENT_READ)
            if len(socks) % 500 == 0:  # read answers as we go so nothing piles up
                drain(sel, socks[-500:])
        if len(socks) % 500:
            drain(sel, socks[-(len(socks) % 500):])
        time.sleep(1.0)
        after = rss_kib(lb.pid)
        peak = rss_kib(lb.pid, "VmHWM")
        alive = sum(1 for s in socks if s.fileno() >= 0)
        per = (after - before) * 1024 / args.connections
        print(f"connections: {args.connections} idle keep-alive (each served one request), {alive} open")
        print(f"proxy RSS before: {before / 1024:.1f} MB, after: {after / 1024:.1f} MB, peak: {peak / 1024:.1f} MB")
        print(f"added: {(after - before) / 1024:.1f} MB = {per:.0f} bytes per connection "
              f"(target: 10,000 connections add <= 40 MB)")
        for s in socks:
            s.close()
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()

def drain(sel, socks):
    pending = set(s.fileno() for s in socks)
    deadline = time.time() + 30
    while pending and time.time() < deadline:
        for key, _ in sel.select(timeout=1):
            data = key.fileobj.recv(4096)
            if b"\r\n\r\n" in data:
                pending.discard(key.fileobj.fileno())
                sel.unregister(key.fileobj)
    if pending:
        raise RuntimeError(f"{len(pending)} connections got no answer")

if __name__ == "__main__":
    main()
