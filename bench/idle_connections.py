#!/usr/bin/env python3
"""Memory per idle client connection of lb-server, HAProxy and nginx, measured in the same run.

One nginx backend serves a static file (--body, default 512 bytes). Each proxy in turn (lb, then HAProxy with one
thread, then nginx with one worker and no master process; never two at once, so they do not compete for file
descriptors) is started fresh, proxies to that backend with keep-alive to it, and gets N client connections
(default 9,000: HAProxy wants two descriptors per connection, and 10,000 would need a hard open-file limit above
20,214). Each connection is opened, serves one request whose whole response is read, and then stays open and idle,
as an idle keep-alive client would. Connections are opened one after another, so a proxy needs only one backend
connection and the figure is the cost of the client connections. The proxy's resident memory (VmRSS of the process
that holds the connections) is read before the first connection, after the first half and after all of them, each
time once the connections have been idle for --settle seconds:
  bytes/conn      (after - before) / N: the figure the issues quote;
  2nd half B/c    (after - middle) / (N/2): the marginal cost, without fixed costs and without memory a proxy
                  freed while connections were being opened but kept in its heap (lb frees TLS record buffers
                  after a second idle, so at any moment about a second's worth of new connections hold them).

Modes (--mode, comma-separated; default http,https,h2,tls):
  http   plain HTTP/1.1 keep-alive
  https  TLS 1.3 (self-signed ECDSA P-256 certificate, ALPN http/1.1), HTTP/1.1 keep-alive
  h2     TLS 1.3 with ALPN h2: connection preface, SETTINGS, one GET on stream 1, the whole response read, then the
         connection stays open. Needs the `h2` Python module: without it the script runs itself again under an
         interpreter that has it (/usr/bin/python3 with Debian's python3-h2, for one).
  tls    TLS 1.3 handshake only (ALPN http/1.1), no request: the TLS session alone, the baseline for "memory per
         idle h2 connection beyond the TLS session"
With h2 and https or tls measured, a summary gives h2 minus each per connection, for each proxy.

HAProxy and nginx are configured as in the throughput benchmarks (`make bench`, `bench-tls`, `bench-h2`): HAProxy
`http-reuse always` and `bind ... ssl crt PEM alpn h2,http/1.1` (`alpn http/1.1` without h2); nginx `keepalive 256`
to the backend, `ssl_certificate`, `ssl_session_cache shared:SSL:10m` and `listen ... ssl http2`, plus
`ssl_protocols TLSv1.2 TLSv1.3` (nginx before 1.23.4 leaves TLS 1.3 out by default). Idle and header timeouts are
10 minutes on all three, so no connection is closed while the run lasts. nginx allocates its connection table for
`worker_connections` at start, so part of its per-connection cost is in its "before" figure. The client side is
this one Python process: about 7 minutes for the four modes at 9,000 connections (http alone: 30 s), most of it in
TLS handshakes.

usage: bench/idle_connections.py [--mode http,https,h2,tls] [--connections N] [--peers lb,haproxy,nginx]
       [--bin DIR] [--body BYTES] [--settle SECONDS]
"""
import argparse
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

MODES = ("http", "https", "h2", "tls")
PEERS = ("lb", "haproxy", "nginx")
IDLE_TIMEOUT_S = 600
HAPROXY_FD_RESERVE = 214  # what HAProxy 2.6 adds to 2 x maxconn (its error message for maxconn 10,100: 20,214)


def h2_available():
    try:
        import h2  # noqa: F401
        return True
    except ImportError:
        return False


def reexec_with_h2():
    """Runs this script again under a Python that has the h2 module; returns only when none is found."""
    if os.environ.get("IDLE_BENCH_REEXEC"):
        return
    here = os.path.realpath(sys.executable)
    path = os.environ.get("PATH", "").split(os.pathsep)
    candidates = ["/usr/bin/python3"] + [os.path.join(d, "python3") for d in path]
    for exe in candidates:
        if not os.path.isfile(exe) or os.path.realpath(exe) == here:
            continue
        if subprocess.run([exe, "-c", "import h2"], stderr=subprocess.DEVNULL).returncode == 0:
            print(f"(h2 mode: re-running under {exe}, which has the h2 module)", flush=True)
            os.environ["IDLE_BENCH_REEXEC"] = "1"
            os.execv(exe, [exe] + sys.argv)


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError("no " + field)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_connectable(port, proc, log):
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}:\n" + open(log).read()[-2000:])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never accepted:\n" + open(log).read()[-2000:])


def wait_log_port(proc, log, pattern):
    deadline = time.time() + 20
    while time.time() < deadline:
        text = open(log).read()
        m = re.search(pattern, text)
        if m:
            return int(m.group(1))
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}:\n" + text[-2000:])
        time.sleep(0.05)
    raise RuntimeError("no listening line:\n" + open(log).read()[-2000:])


class Bench:
    def __init__(self, args, work):
        self.args = args
        self.work = work
        self.nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        self.procs = []
        self.cert = os.path.join(work, "tls.crt")
        self.key = os.path.join(work, "tls.key")
        self.pem = os.path.join(work, "tls.pem")
        os.makedirs(os.path.join(work, "tmp"))
        os.makedirs(os.path.join(work, "logs"))
        with open(os.path.join(work, "body"), "wb") as f:
            f.write(b"x" * args.body)

    def start(self, argv, log, **kw):
        out = open(log, "w")
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kw)
        out.close()
        self.procs.append(proc)
        return proc

    def stop(self, proc):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.remove(proc)

    def stop_all(self):
        for proc in list(self.procs):
            self.stop(proc)

    def make_certificate(self):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", self.key, "-out", self.cert], check=True, capture_output=True)
        with open(self.pem, "w") as f:
            f.write(open(self.cert).read() + open(self.key).read())

    def nginx_common(self, name):
        w = self.work
        return (f"daemon off; master_process off; worker_processes 1; pid {w}/{name}.pid;\n"
                f"error_log {w}/logs/{name}.err warn;\n")

    def start_backend(self):
        port = free_port()
        conf = os.path.join(self.work, "backend.conf")
        w = self.work
        with open(conf, "w") as f:
            f.write(self.nginx_common("backend") + f"""events {{ worker_connections 4096; }}
http {{
  access_log off; keepalive_requests 1000000; keepalive_timeout {IDLE_TIMEOUT_S}s;
  client_body_temp_path {w}/tmp; proxy_temp_path {w}/tmp;
  fastcgi_temp_path {w}/tmp; uwsgi_temp_path {w}/tmp; scgi_temp_path {w}/tmp;
  server {{ listen 127.0.0.1:{port}; location / {{ root {w}; try_files /body =404; }} }}
}}
""")
        log = os.path.join(w, "logs", "backend.out")
        proc = self.start([self.nginx, "-p", w, "-c", conf], log)
        wait_connectable(port, proc, log)
        self.backend_port = port

    def start_proxy(self, peer, mode, n):
        """Starts one proxy for this mode; returns (process whose memory is measured, port)."""
        tls = mode != "http"
        alpn = "h2,http/1.1" if mode == "h2" else "http/1.1"
        w = self.work
        bport = self.backend_port
        log = os.path.join(w, "logs", f"{peer}-{mode}.out")
        if peer == "lb":
            listener = {"address": "127.0.0.1:0"}
            if tls:
                listener["tls"] = {"certificates": [{"cert": self.cert, "key": self.key}]}
            cfg = os.path.join(w, f"lb-{mode}.json")
            with open(cfg, "w") as f:
                json.dump({"listeners": [listener], "admin": {"listen": "127.0.0.1:0"},
                           "servers": [{"host": "127.0.0.1", "port": bport}],
                           "health_check": {"enabled": False},
                           "limits": {"max_client_connections": n + 100},
                           "timeouts": {"client_idle": f"{IDLE_TIMEOUT_S}s",
                                        "client_header": f"{IDLE_TIMEOUT_S}s"}}, f)
            proc = self.start([os.path.join(self.args.bin, "lb-server"), "--config", cfg], log)
            port = wait_log_port(proc, log, r"listening on 127\.0\.0\.1:(\d+) \(proxy")
            return proc, port
        port = free_port()
        if peer == "haproxy":
            cfg = os.path.join(w, f"haproxy-{mode}.cfg")
            bind = f"bind 127.0.0.1:{port}" + (f" ssl crt {self.pem} alpn {alpn}" if tls else "")
            with open(cfg, "w") as f:
                f.write(f"""global
  nbthread 1
  maxconn {n + 100}
defaults
  mode http
  timeout connect 5s
  timeout client {IDLE_TIMEOUT_S}s
  timeout http-request {IDLE_TIMEOUT_S}s
  timeout http-keep-alive {IDLE_TIMEOUT_S}s
  timeout server 60s
  http-reuse always
frontend fe
  {bind}
  default_backend be
backend be
  server s1 127.0.0.1:{bport}
""")
            proc = self.start([self.haproxy, "-f", cfg, "-db"], log)
        else:
            cfg = os.path.join(w, f"nginx-{mode}.conf")
            listen = f"listen 127.0.0.1:{port}" + (" ssl" if tls else "") + (" http2" if mode == "h2" else "") + ";"
            # nginx before 1.23.4 leaves TLS 1.3 out of its default ssl_protocols: name it, so all three proxies
            # hold TLS 1.3 sessions.
            certs = (f"ssl_certificate {self.cert}; ssl_certificate_key {self.key}; "
                     "ssl_session_cache shared:SSL:10m; ssl_protocols TLSv1.2 TLSv1.3;") if tls else ""
            with open(cfg, "w") as f:
                f.write(self.nginx_common(f"nginx-{mode}") + f"""worker_rlimit_nofile {n + 2048};
events {{ worker_connections {n + 1024}; }}
http {{
  access_log off; keepalive_requests 1000000; keepalive_timeout {IDLE_TIMEOUT_S}s;
  client_header_timeout {IDLE_TIMEOUT_S}s;
  client_body_temp_path {w}/tmp; proxy_temp_path {w}/tmp;
  fastcgi_temp_path {w}/tmp; uwsgi_temp_path {w}/tmp; scgi_temp_path {w}/tmp;
  upstream be {{ server 127.0.0.1:{bport}; keepalive 256; }}
  server {{
    {listen}
    {certs}
    location / {{
      proxy_pass http://be; proxy_http_version 1.1;
      proxy_set_header Connection ""; proxy_buffering on;
    }}
  }}
}}
""")
            proc = self.start([self.nginx, "-p", w, "-c", cfg], log)
        wait_connectable(port, proc, log)
        return proc, port

    # --- clients -------------------------------------------------------------------------------------------------

    def client_context(self, mode):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.set_alpn_protocols(["h2"] if mode == "h2" else ["http/1.1"])
        return ctx

    def open_connection(self, mode, port, ctx, requests=1):
        """Opens one connection, serves `requests` requests on it (none in tls mode) and returns it, idle."""
        raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        s = ctx.wrap_socket(raw) if ctx else raw
        if mode == "h2":
            if s.selected_alpn_protocol() != "h2":
                raise RuntimeError(f"ALPN chose {s.selected_alpn_protocol()!r}, not h2")
            h2_requests(s, port, requests)
        elif mode != "tls":
            for _ in range(requests):
                s.sendall(b"GET /idle HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                read_http1_response(s)
        s.settimeout(None)
        return s

    def measure(self, peer, mode, n):
        proc, port = self.start_proxy(peer, mode, n)
        ctx = self.client_context(mode) if mode != "http" else None
        try:
            # Warm up, so the code a connection runs is paged in (lb drops its startup text pages, so its code faults
            # back in on first use) and one-time allocations (the backend connection, first TLS and h2 objects) are
            # in the baseline. The baseline is read after the same settle time as the later readings: what a proxy
            # runs only once connections have idled (lb's sweep that gives idle buffers back, and the code pages it
            # faults in, about 0.6 MB) then counts in every reading alike, not against the connections.
            for _ in range(10):
                close_hard(self.open_connection(mode, port, ctx, requests=5))
            time.sleep(self.args.settle)
            before = rss_kib(proc.pid)
            socks = []
            started = time.time()
            mid = None
            # Opened in two halves, memory read after each: the second half's cost is the marginal one. Memory a
            # proxy frees while connections are being opened (lb's TLS record buffers, below) stays in its heap, so
            # the whole run's figure carries that peak spread over the connections, and the second half reuses it.
            failed = False
            for half in (n // 2, n - n // 2):
                try:
                    for _ in range(half if not failed else 0):
                        socks.append(self.open_connection(mode, port, ctx))
                except (OSError, RuntimeError) as e:
                    print(f"  {peer}: connection {len(socks) + 1} of {n} failed: {e!r}", flush=True)
                    failed = True
                # lb gives an idle connection's buffers (OpenSSL's record buffers, about 34 KB, the write queues
                # and the last head) back once it has been idle for a second, from a sweep that runs every 750 ms
                # here, and trims malloc's free pages at most once a second: a connection's memory settles within
                # about 3 s of its last byte. Wait past that so every proxy is measured in its idle steady state.
                time.sleep(self.args.settle)
                if mid is None:
                    mid, mid_count = rss_kib(proc.pid), len(socks)
            opening = time.time() - started - 2 * self.args.settle
            after = rss_kib(proc.pid)
            peak = rss_kib(proc.pid, "VmHWM")
            open_now = count_open(socks)
            alive = proc.poll() is None
            for s in socks:
                close_hard(s)
        finally:
            self.stop(proc)
        if not alive:
            print(f"  {peer} exited during the run:\n" + open(os.path.join(self.work, "logs", f"{peer}-{mode}.out"))
                  .read()[-2000:])
        second = len(socks) - mid_count
        return {"opened": len(socks), "open": open_now, "before": before, "after": after, "peak": peak,
                "per": (after - before) * 1024 / max(len(socks), 1),
                "marginal": (after - mid) * 1024 / second if second > 0 else float("nan"), "seconds": opening}


def close_hard(s):
    """Closes with a reset (SO_LINGER 0): no TIME_WAIT left behind for the thousands of client ports."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def count_open(socks):
    """Connections the proxy has not closed: no hang-up, reset or FIN seen on them (unread bytes do not count)."""
    poller = select.poll()
    for s in socks:
        poller.register(s.fileno(), select.POLLRDHUP)
    closed = sum(1 for _, ev in poller.poll(0) if ev & (select.POLLRDHUP | select.POLLHUP | select.POLLERR))
    return len(socks) - closed


def read_http1_response(s):
    """Reads one whole HTTP/1.1 response (Content-Length or chunked) from a blocking socket; returns its status."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = s.recv(65536)
        if not data:
            raise RuntimeError("connection closed before the response head")
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    fields = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        fields[k.strip().lower()] = v.strip().lower()
    if status != 200:
        raise RuntimeError(f"status {status}")
    if b"content-length" in fields:
        want = int(fields[b"content-length"])
        while len(rest) < want:
            data = s.recv(65536)
            if not data:
                raise RuntimeError("connection closed inside the body")
            rest += data
    elif fields.get(b"transfer-encoding") == b"chunked":
        while not rest.endswith(b"0\r\n\r\n"):
            data = s.recv(65536)
            if not data:
                raise RuntimeError("connection closed inside the chunked body")
            rest += data
    return status


def h2_requests(s, port, requests):
    """Sends the preface and SETTINGS, then GETs one stream at a time and reads each whole response. The h2 state
    is dropped afterwards: the client only holds the socket, which is all an idle connection needs."""
    import h2.config
    import h2.connection
    import h2.events
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    for i in range(requests):
        stream = 1 + 2 * i
        conn.send_headers(stream, [(b":method", b"GET"), (b":scheme", b"https"),
                                   (b":authority", b"127.0.0.1:%d" % port), (b":path", b"/idle")], end_stream=True)
        s.sendall(conn.data_to_send())
        status = None
        ended = False
        while not ended:
            data = s.recv(65536)
            if not data:
                raise RuntimeError("connection closed before the response ended")
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    status = dict(ev.headers).get(b":status")
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == stream:
                    ended = True
                elif isinstance(ev, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                    raise RuntimeError(f"h2: {ev}")
            out = conn.data_to_send()
            if out:
                s.sendall(out)
        if status != b"200":
            raise RuntimeError(f"h2 status {status!r}")


def fmt_row(name, r):
    return (f"{name:<9} {r['opened']:>7,} {r['open']:>7,} {r['before'] / 1024:>10.1f} {r['after'] / 1024:>9.1f} "
            f"{(r['after'] - r['before']) / 1024:>8.1f} {r['per']:>10,.0f} {r['marginal']:>12,.0f} "
            f"{r['peak'] / 1024:>8.1f} {r['seconds']:>7.1f}")


DESCRIPTION = {
    "http": "plain HTTP/1.1 keep-alive, each connection having served one request",
    "https": "HTTP/1.1 keep-alive over TLS 1.3 (ALPN http/1.1), each connection having served one request",
    "h2": "HTTP/2 over TLS 1.3 (ALPN h2), each connection having served one GET, whole response read",
    "tls": "TLS 1.3 handshake only (ALPN http/1.1), no request",
}


def main():
    ap = argparse.ArgumentParser(description="Memory per idle client connection: lb, HAProxy and nginx.")
    ap.add_argument("--mode", default="http,https,h2,tls", help="comma-separated: " + ", ".join(MODES))
    ap.add_argument("--connections", type=int, default=9000, help="connections per proxy in every mode (default 9,000)")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated, measured in this order")
    ap.add_argument("--bin", default=None, help="directory of lb-server (default: swift build's release bin path)")
    ap.add_argument("--body", type=int, default=512, help="bytes of the backend's response body (default 512)")
    ap.add_argument("--settle", type=float, default=4, help="seconds idle before memory is read (default 4)")
    args = ap.parse_args()
    modes = [m for m in args.mode.split(",") if m]
    peers = [p for p in args.peers.split(",") if p]
    for m in modes:
        if m not in MODES:
            sys.exit(f"unknown mode {m!r}: one of {', '.join(MODES)}")
    for p in peers:
        if p not in PEERS:
            sys.exit(f"unknown peer {p!r}: one of {', '.join(PEERS)}")
    if "h2" in modes and not h2_available():
        reexec_with_h2()
        sys.exit("h2 mode needs the Python h2 module (Debian: apt-get install python3-h2; or pip install h2)")
    for tool in ["openssl"] + [p for p in peers if p != "lb"] + ["nginx"]:
        if not (shutil.which(tool) or os.path.exists(f"/usr/sbin/{tool}")):
            sys.exit(f"{tool} not found (Debian: apt-get install {'nginx-light' if tool == 'nginx' else tool})")
    if "lb" in peers and args.bin is None:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        argv = ["swift", "build", "-c", "release", "--static-swift-stdlib", "--show-bin-path"]
        args.bin = subprocess.check_output(argv, cwd=root, text=True).strip()
    n = args.connections
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < n + 100:
        sys.exit(f"open-file hard limit {hard} is below {n} + 100: raise it (ulimit -Hn), or lower --connections")
    # HAProxy sizes its descriptor limit at two per connection (client and server side) plus a reserve, and does
    # not start when it cannot raise its limit that far.
    if "haproxy" in peers and 2 * (n + 100) + HAPROXY_FD_RESERVE > hard:
        sys.exit(f"HAProxy needs {2 * (n + 100) + HAPROXY_FD_RESERVE} descriptors for {n} connections and the "
                 f"hard limit is {hard}: lower --connections to {(hard - HAPROXY_FD_RESERVE) // 2 - 100} or less, "
                 "or raise the limit (ulimit -Hn)")

    t0 = time.time()
    work = tempfile.mkdtemp(prefix="idle-bench.")
    bench = Bench(args, work)
    results = {}
    keep = False
    try:
        bench.make_certificate()
        bench.start_backend()
        for mode in modes:
            tm = time.time()
            print(f"\n== {mode}: {n:,} idle connections per proxy, {DESCRIPTION[mode]}", flush=True)
            results[mode] = {}
            for peer in peers:
                results[mode][peer] = bench.measure(peer, mode, n)
            print(f"{'proxy':<9} {'opened':>7} {'open':>7} {'before MB':>10} {'after MB':>9} {'added MB':>8} "
                  f"{'bytes/conn':>10} {'2nd half B/c':>12} {'peak MB':>8} {'open s':>7}")
            for peer in peers:
                print(fmt_row(peer, results[mode][peer]))
            r = results[mode]
            if "lb" in r:
                ratios = [f"lb/{p} {r['lb']['per'] / r[p]['per']:.2f}" for p in ("nginx", "haproxy")
                          if p in r and r[p]["per"] > 0]
                if ratios:
                    print("bytes per connection, " + ", ".join(ratios) + " (below 1: lb cheaper)")
            short = [p for p in peers if r[p]["open"] < n]
            if short:
                print("fewer connections open than asked: " + ", ".join(f"{p} {r[p]['open']:,}" for p in short)
                      + f" (logs in {work}/logs; kept)")
                keep = True
            print(f"({mode}: {time.time() - tm:.0f} s)", flush=True)
        if "h2" in results and ("https" in results or "tls" in results):
            print("\n== h2 beyond TLS: bytes per idle h2 connection minus the same for a TLS connection "
                  "(target <= 8 KiB)")
            for peer in peers:
                parts = [f"h2 {results['h2'][peer]['per']:,.0f}"]
                for base in ("https", "tls"):
                    if base in results:
                        parts.append(f"- {base} {results[base][peer]['per']:,.0f} = "
                                     f"{results['h2'][peer]['per'] - results[base][peer]['per']:,.0f}")
                print(f"{peer:<9} " + "; ".join(parts))
            print("(https includes an idle HTTP/1.1 connection's state" +
                  (", tls only the TLS session)" if "tls" in results else ")"))
        print(f"\nresident memory (VmRSS) of the process holding the connections; bytes/conn = added / opened; "
              f"settle {args.settle} s; backend: nginx, {args.body}-byte file; total {time.time() - t0:.0f} s")
    except BaseException:
        keep = True
        print(f"logs kept in {work}/logs", file=sys.stderr)
        raise
    finally:
        bench.stop_all()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
