#!/usr/bin/env python3
"""Soak: lb-server under mixed traffic while backends die and come back, servers are added, drained and removed
through the admin API and the config is reloaded; reports failed requests, resident memory, open descriptors
and open connections over time, and fails on a leak.

Traffic (threads, all on loopback): keep-alive GETs, GETs on a new connection each, 256 KiB uploads whose
SHA-256 the backend echoes (checked), 1 MiB downloads (length checked), WebSocket-style upgrades that echo
bytes (checked), and a few hostile clients: heads trickled a byte at a time, connections that send nothing,
oversized heads. Chaos, every CHAOS seconds in turn: a backend is killed (SIGKILL) and restarted on its port
5 s later; a fourth server is added, drained, removed; lb gets SIGHUP (config reload).

Failures: every ordinary request that does not get its full, correct answer counts, with its cause. A
request cut because the backend that was answering it was killed mid-response cannot be saved by any proxy
(the bytes are gone): those are counted apart ("cut by a kill") when the answer had started from the killed
backend within the second after its kill. Everything else must be 0. The hostile clients' refusals are
expected and only reported.

Leaks: after a warm-up (a sixth of the run, at least 60 s), resident memory must not grow by more than 2 MB
(the last minute's lowest sample against the warm-up's end), and once traffic stops, lb's open connections
and descriptors must return to what they were before traffic began. The exit status is 0 only when every
check holds.

usage: bench/soak.py [--bin DIR] [--duration 20m] [--sample 10] [--chaos 15] [--workers 2]
Runs for --duration plus about 20 s of start-up and wind-down.
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

STOP = threading.Event()


def duration_seconds(text):
    m = re.fullmatch(r"(\d+)(s|m|h)?", text)
    if not m:
        raise SystemExit(f"--duration {text!r}: use e.g. 90s, 20m, 1h")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = {}
        self.failed = {}
        self.cut_by_kill = 0
        self.hostile = {}
        self.kills = []  # (time, backend name)

    def good(self, kind):
        with self.lock:
            self.ok[kind] = self.ok.get(kind, 0) + 1

    def bad(self, kind, cause, backend=None):
        now = time.time()
        with self.lock:
            if backend and any(name == backend and 0 <= now - t <= 1.5 for t, name in self.kills):
                self.cut_by_kill += 1
                return
            key = f"{kind}: {cause}"
            self.failed[key] = self.failed.get(key, 0) + 1

    def note_hostile(self, what):
        with self.lock:
            self.hostile[what] = self.hostile.get(what, 0) + 1


def request(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    backend = r.getheader("X-Backend")
    try:
        data = r.read()
    except Exception as e:
        raise RuntimeError(f"cut mid-body ({type(e).__name__})", backend)
    return r.status, data, backend, r


def keepalive_gets(port, tally):
    conn = None
    while not STOP.is_set():
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            status, _, backend, r = request(conn, "GET", f"/item/{random.randint(1, 10000)}")
            if status == 200:
                tally.good("keep-alive GET")
            else:
                tally.bad("keep-alive GET", f"status {status}", backend)
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except RuntimeError as e:
            tally.bad("keep-alive GET", e.args[0], e.args[1])
            conn = None
        except (OSError, http.client.HTTPException) as e:
            # A keep-alive connection the proxy closed between requests is the client's race to retry.
            if isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)) and conn:
                conn.close()
                conn = None
                continue
            tally.bad("keep-alive GET", type(e).__name__)
            conn = None


def one_request_per_connection(port, tally, kind, method, path, check, timeout, body=None, headers=None, pause=0.0):
    """Until STOP: one request on a new connection, counted good when `check(status, data, body)` returns None,
    else bad with the reason it returns (and the backend that answered)."""
    while not STOP.is_set():
        payload = body() if body else None
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            status, data, backend, _ = request(conn, method, path(), body=payload, headers=headers)
            conn.close()
            problem = check(status, data, payload)
            if problem is None:
                tally.good(kind)
            else:
                tally.bad(kind, problem, backend)
        except RuntimeError as e:
            tally.bad(kind, e.args[0], e.args[1])
        except (OSError, http.client.HTTPException) as e:
            tally.bad(kind, type(e).__name__)
        if pause:
            time.sleep(pause)


def new_connection_gets(port, tally):
    one_request_per_connection(
        port, tally, "new-connection GET", "GET", lambda: f"/c/{random.randint(1, 10000)}",
        lambda status, data, _: None if status == 200 else f"status {status}", timeout=10,
        headers={"Connection": "close"})


def uploads(port, tally):
    def check(status, data, body):
        if status != 200:
            return f"status {status}"
        return None if hashlib.sha256(body).hexdigest().encode() in data else "digest mismatch"

    one_request_per_connection(
        port, tally, "upload", "POST", lambda: "/digest", check, timeout=20,
        body=lambda: os.urandom(256 * 1024), pause=0.05)


def downloads(port, tally):
    size = 1 << 20

    def check(status, data, _):
        if status != 200:
            return f"status {status}"
        return None if len(data) == size else f"{len(data)} bytes"

    one_request_per_connection(
        port, tally, "download", "GET", lambda: f"/bytes?size={size}", check, timeout=20, pause=0.05)


def websockets(port, tally):
    while not STOP.is_set():
        backend = None
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"GET /upgrade HTTP/1.1\r\nHost: soak\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                if not chunk:
                    raise OSError("closed before the 101")
                head += chunk
            m = re.search(rb"X-Backend: (\S+)", head)
            backend = m.group(1).decode() if m else None
            if not head.startswith(b"HTTP/1.1 101"):
                tally.bad("websocket", head.split(b"\r\n")[0].decode(errors="replace"), backend)
                s.close()
                continue
            rest = head.split(b"\r\n\r\n", 1)[1]
            ok = True
            for _ in range(20):
                msg = os.urandom(512)
                s.sendall(msg)
                got = rest
                rest = b""
                while len(got) < len(msg):
                    chunk = s.recv(4096)
                    if not chunk:
                        raise OSError("tunnel closed")
                    got += chunk
                if got != msg:
                    ok = False
                    break
            s.close()
            if ok:
                tally.good("websocket")
            else:
                tally.bad("websocket", "echo mismatch", backend)
        except OSError as e:
            tally.bad("websocket", str(e) or type(e).__name__, backend)
        time.sleep(0.1)


def hostile(port, tally):
    """A few of each kind at a time: what they get is reported, not counted as failures."""
    while not STOP.is_set():
        kind = random.choice(["trickle", "silent", "oversized"])
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=15)
            if kind == "trickle":
                for b in b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 40:
                    if STOP.is_set():
                        break
                    s.sendall(bytes([b]))
                    time.sleep(0.2)
                s.settimeout(15)
                first = (s.recv(64) or b"closed").split(b"\r\n")[0].decode(errors="replace")
                tally.note_hostile(f"trickle: {first}")
            elif kind == "silent":
                s.settimeout(12)
                try:
                    data = s.recv(64)
                    tally.note_hostile("silent: " + ("closed" if not data else data.split(b"\r\n")[0].decode()))
                except socket.timeout:
                    tally.note_hostile("silent: still open after 12 s")
            else:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (128 * 1024) + b"\r\n\r\n")
                tally.note_hostile("oversized: " + (s.recv(64) or b"closed").split(b"\r\n")[0].decode(errors="replace"))
            s.close()
        except OSError as e:
            tally.note_hostile(f"{kind}: {type(e).__name__}")


def admin_call(admin, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{admin}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=None)
    ap.add_argument("--duration", default="20m")
    ap.add_argument("--sample", type=int, default=10)
    ap.add_argument("--chaos", type=int, default=15)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    total = duration_seconds(args.duration)
    warmup = max(60, total // 6)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    bindir = args.bin or subprocess.check_output(
        ["swift", "build", "-c", "release", "--static-swift-stdlib", "--show-bin-path"], cwd=root, text=True).strip()
    work = tempfile.mkdtemp(prefix="lb-soak-")
    ports = [free_port() for _ in range(4)]
    backends = {}

    def start_backend(i):
        backends[i] = subprocess.Popen(
            [f"{bindir}/lb-demo-backend", "--port", str(ports[i]), "--name", f"b{i + 1}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    for i in range(4):
        start_backend(i)
    cfg_path = os.path.join(work, "lb.json")
    with open(cfg_path, "w") as f:
        json.dump({
            "listen": "127.0.0.1:0", "admin": {"listen": "127.0.0.1:0"}, "workers": args.workers,
            "servers": [{"id": f"b{i + 1}", "host": "127.0.0.1", "port": ports[i]} for i in range(3)],
            "health_check": {"enabled": True, "type": "http", "path": "/health", "interval": "1s", "timeout": "1s",
                             "rise": 1, "fall": 2},
            "timeouts": {"client_header": "5s", "client_idle": "10s", "upstream_idle": "10s"},
            "access_log": {"format": "off"},
        }, f)
    lb = subprocess.Popen([f"{bindir}/lb-server", "--config", cfg_path], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    port = admin = None
    deadline = time.time() + 30
    while (port is None or admin is None) and time.time() < deadline:
        line = lb.stdout.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+) \((proxy|admin)\)", line)
        if m:
            if m.group(2) == "proxy":
                port = int(m.group(1))
            else:
                admin = int(m.group(1))
    threading.Thread(target=lambda: [None for _ in lb.stdout], daemon=True).start()
    if port is None or admin is None:
        raise SystemExit("lb-server did not start")
    time.sleep(1.5)
    baseline_fds = fd_count(lb.pid)
    baseline_open = admin_call(admin, "GET", "/api/stats")[1]["connections"]["open"]
    tally = Tally()
    workers = ([threading.Thread(target=keepalive_gets, args=(port, tally)) for _ in range(4)]
               + [threading.Thread(target=new_connection_gets, args=(port, tally)) for _ in range(2)]
               + [threading.Thread(target=f, args=(port, tally)) for f in (uploads, downloads, websockets)]
               + [threading.Thread(target=hostile, args=(port, tally)) for _ in range(3)])
    for t in workers:
        t.start()

    started = time.time()
    samples = []  # (seconds, rss KiB, fds, open connections)
    chaos_step = 0
    next_chaos = started + args.chaos
    next_sample = started
    events = []
    while time.time() - started < total:
        now = time.time()
        if now >= next_sample:
            open_now = admin_call(admin, "GET", "/api/stats")[1]["connections"]["open"]
            samples.append((now - started, rss_kib(lb.pid), fd_count(lb.pid), open_now))
            next_sample += args.sample
        if now >= next_chaos:
            step = chaos_step % 6
            victim = chaos_step // 6 % 3
            if step == 0:
                backends[victim].kill()
                backends[victim].wait()
                with tally.lock:
                    tally.kills.append((time.time(), f"b{victim + 1}"))
                events.append(f"{now - started:6.0f}s kill b{victim + 1}")
                threading.Timer(5, start_backend, args=(victim,)).start()
            elif step == 1:
                status, _ = admin_call(admin, "POST", "/manage/servers",
                                       {"id": "b4", "host": "127.0.0.1", "port": ports[3]})
                events.append(f"{now - started:6.0f}s add b4 -> {status}")
            elif step == 2:
                status, _ = admin_call(admin, "PATCH", "/manage/servers/b4", {"state": "draining"})
                events.append(f"{now - started:6.0f}s drain b4 -> {status}")
            elif step == 3:
                status, _ = admin_call(admin, "DELETE", "/manage/servers/b4")
                events.append(f"{now - started:6.0f}s remove b4 -> {status}")
            elif step == 4:
                lb.send_signal(signal.SIGHUP)
                events.append(f"{now - started:6.0f}s SIGHUP (reload)")
            else:
                status, _ = admin_call(admin, "PATCH", "/manage/servers/b1", {"weight": random.choice([1, 2])})
                events.append(f"{now - started:6.0f}s reweight b1 -> {status}")
            chaos_step += 1
            next_chaos += args.chaos
        time.sleep(0.2)

    STOP.set()
    for t in workers:
        t.join(timeout=30)
    # Connections and descriptors back to where they were before traffic (hostile clients' connections close
    # at their timeouts; pooled upstream connections at upstream_idle or the purge).
    settle_deadline = time.time() + 90
    final_open = final_fds = None
    while time.time() < settle_deadline:
        final_open = admin_call(admin, "GET", "/api/stats")[1]["connections"]["open"]
        final_fds = fd_count(lb.pid)
        if final_open <= baseline_open and final_fds <= baseline_fds + 8:
            break
        time.sleep(1)
    lb.send_signal(signal.SIGTERM)
    try:
        lb.wait(timeout=20)
    except subprocess.TimeoutExpired:
        lb.kill()
    for p in backends.values():
        p.kill()

    print(f"\nsoak: {total} s, workers {args.workers}, chaos every {args.chaos} s ({len(events)} events)")
    print("\n  time    RSS MB   fds  open connections")
    for s, rss, fds, open_now in samples:
        print(f"{s:6.0f}s {rss / 1024:8.2f} {fds:5d} {open_now:6d}")
    print("\nrequests answered in full and correct:")
    for k, v in sorted(tally.ok.items()):
        print(f"  {k}: {v}")
    print(f"cut by a backend kill (mid-response, from the killed backend): {tally.cut_by_kill}")
    print("failed:" + ("" if tally.failed else " 0"))
    for k, v in sorted(tally.failed.items()):
        print(f"  {k}: {v}")
    print("hostile clients got:")
    for k, v in sorted(tally.hostile.items()):
        print(f"  {k}: {v}")
    print("chaos:")
    for e in events:
        print("  " + e)
    after_warmup = [s for s in samples if s[0] >= warmup]
    last_minute = [s for s in samples if s[0] >= total - 60]
    growth = None
    if after_warmup and last_minute:
        growth = (min(s[1] for s in last_minute) - after_warmup[0][1]) / 1024
    ok = not tally.failed
    print(f"\nRSS growth after warm-up ({warmup} s): "
          + (f"{growth:+.2f} MB (limit +2 MB)" if growth is not None else "run too short to tell"))
    if growth is not None and growth > 2:
        ok = False
    print(f"open connections: {baseline_open} before traffic, {final_open} after it stopped")
    print(f"descriptors: {baseline_fds} before traffic, {final_fds} after it stopped")
    if final_open is None or final_open > baseline_open or final_fds > baseline_fds + 8:
        ok = False
    print("SOAK " + ("PASSED" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
