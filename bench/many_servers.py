#!/usr/bin/env python3
"""lb with 1,000 backend servers against lb with 3, in the same run: throughput, CPU per request, p99, the
health checker's CPU while idle, and how long a 1,000-server routing rebuild (an admin change) takes.

One nginx listens on FIRST_PORT .. FIRST_PORT+N-1 and answers every port with the same small body (one process:
the backends cost the same whatever the count). For each server count (3, then N) an lb-server starts with that
many servers, active HTTP health checks on (every server checked each `--interval`), and:

  1. idle: lb's CPU seconds over `--idle` seconds with no traffic, i.e. the health checker's cost per second;
  2. load: wrk with `--connections` keep-alive connections for `--duration` seconds over 10,000 paths (so the
     hash spreads keys over every server), `--rounds` times; the median throughput, lb's CPU per request
     (utime+stime over requests), the backend nginx's (on the same cores, its cost moves the throughput too)
     and wrk's p99;
  3. change: one server's weight set through the admin API `--changes` times; the admin call's time, which
     includes the routing rebuild for that many servers, and wrk's p99 while the changes run.

Prints one row per server count and the ratios of N to 3. Loopback only; everything it starts is stopped.

With --peers, HAProxy and nginx go through steps 1 and 2 too, configured as in ../shared/bench/peers.sh (one
thread each, consistent hashing on the URI, upstream keep-alive; nginx may keep 4,096 idle upstream connections
rather than 256, so that 1,000 servers do not churn them) over the same servers, HAProxy with the same
active health checks (nginx has none). Their N/3 ratios, measured in the same run, show how much of the drop
comes from the harness: the backend nginx and the kernel work over N times the sockets on the same cores,
whatever the proxy.

usage: bench/many_servers.py LB_SERVER_BINARY [--servers 1000] [--duration 10] [--rounds 3] [--connections 64]
           [--interval 2s] [--idle 10] [--changes 20] [--peers]
Takes about (idle + rounds x (duration + 1) + duration) x 2 seconds plus start-up: 1.5 minutes with defaults,
about 3.5 with --peers.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

FIRST_PORT = 21000
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15 of the whole line)


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/warm", timeout=1).read()
            return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} did not answer")


def wait_line(proc, pattern, timeout=30):
    deadline = time.time() + timeout
    seen = ""
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            time.sleep(0.05)
            continue
        seen += line
        m = re.search(pattern, line)
        if m:
            return int(m.group(1))
    raise RuntimeError("lb-server did not report its ports:\n" + seen)


def run_wrk(port, duration, connections, lua):
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", lua, f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: .*", out)
    return requests, rps, float(p99.group(1)) * scale, (int(errors.group(1)) if errors else 0), socket_errors


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def idle_and_load(pid, port, args, lua, backend_pid):
    """Steps 1 and 2 against a started proxy: its CPU per second while idle, then `args.rounds` wrk runs, each as
    (req/s, proxy CPU us per request, p99 ms, non-2xx, backend CPU us per request)."""
    c0 = cpu_seconds(pid)
    time.sleep(args.idle)
    idle_cpu = (cpu_seconds(pid) - c0) / args.idle
    rounds = []
    for _ in range(args.rounds):
        c0, b0 = cpu_seconds(pid), cpu_seconds(backend_pid)
        requests, rps, p99, errors, _ = run_wrk(port, args.duration, args.connections, lua)
        cpu, backend_cpu = cpu_seconds(pid) - c0, cpu_seconds(backend_pid) - b0
        rounds.append((rps, cpu * 1e6 / max(1, requests), p99, errors, backend_cpu * 1e6 / max(1, requests)))
    return idle_cpu, rounds


def measure(binary, servers, args, work, lua, backend_pid):
    cfg = {
        "listen": "127.0.0.1:0", "admin": {"listen": "127.0.0.1:0"}, "workers": 1,
        "servers": [{"id": f"s{i}", "host": "127.0.0.1", "port": FIRST_PORT + i} for i in range(servers)],
        "health_check": {"enabled": True, "type": "http", "path": "/health", "interval": args.interval,
                         "timeout": "1s"},
        "access_log": {"format": "off"},
    }
    path = os.path.join(work, f"lb-{servers}.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    lb = subprocess.Popen([binary, "--config", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = wait_line(lb, r"listening on 127\.0\.0\.1:(\d+) \(proxy\)")
        admin = wait_line(lb, r"listening on 127\.0\.0\.1:(\d+) \(admin\)")
        threading.Thread(target=lambda: [None for _ in lb.stdout], daemon=True).start()
        wait_port(port)
        # Every server up (health checks ran once) before anything is measured.
        deadline = time.time() + 60
        while time.time() < deadline:
            body = json.load(urllib.request.urlopen(f"http://127.0.0.1:{admin}/api/servers", timeout=5))
            if sum(1 for s in body["servers"] if s.get("state") == "up") == servers:
                break
            time.sleep(0.5)
        idle_cpu, rounds = idle_and_load(lb.pid, port, args, lua, backend_pid)

        # Routing rebuilds under load: one weight change after another through the admin API.
        change_times = []
        result = {}

        def load():
            result["wrk"] = run_wrk(port, args.duration, args.connections, lua)

        t = threading.Thread(target=load)
        t.start()
        time.sleep(1)
        for i in range(args.changes):
            body = json.dumps({"weight": 1 + (i % 2)}).encode()
            req = urllib.request.Request(
                f"http://127.0.0.1:{admin}/manage/servers/s0", data=body, method="PATCH",
                headers={"Content-Type": "application/json"})
            start = time.time()
            urllib.request.urlopen(req, timeout=30).read()
            change_times.append((time.time() - start) * 1000)
            time.sleep(max(0.05, (args.duration - 2) / args.changes))
        t.join()
        _, change_rps, change_p99, change_errors, _ = result["wrk"]
        rps = statistics.median(r[0] for r in rounds)
        return {
            "servers": servers, "rps": rps, "cpu_us": statistics.median(r[1] for r in rounds),
            "backend_cpu_us": statistics.median(r[4] for r in rounds),
            "p99": statistics.median(r[2] for r in rounds), "errors": sum(r[3] for r in rounds) + change_errors,
            "idle_cpu": idle_cpu, "change_ms": statistics.median(change_times),
            "change_max_ms": max(change_times), "change_p99": change_p99, "change_rps": change_rps,
        }
    finally:
        stop(lb)


def measure_peer(kind, servers, args, work, lua, backend_pid):
    """Steps 1 and 2 for HAProxy or nginx over the first `servers` backend ports."""
    port = 9390 if kind == "haproxy" else 9391
    ports = [FIRST_PORT + i for i in range(servers)]
    path = os.path.join(work, f"{kind}-{servers}.cfg")
    with open(path, "w") as f:
        if kind == "haproxy":
            inter = args.interval if args.interval[-1].isalpha() else args.interval + "s"
            lines = "\n".join(f"  server s{i} 127.0.0.1:{p} check inter {inter}" for i, p in enumerate(ports))
            f.write(f"""global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  bind 127.0.0.1:{port}
  default_backend be
backend be
  balance uri
  hash-type consistent
  option httpchk GET /health
{lines}
""")
            cmd = [shutil.which("haproxy") or "/usr/sbin/haproxy", "-f", path, "-db"]
        else:
            lines = " ".join(f"server 127.0.0.1:{p};" for p in ports)
            f.write(f"""daemon off; master_process off; worker_processes 1; pid {work}/{kind}-{servers}.pid;
error_log {work}/logs/{kind}.err crit; worker_rlimit_nofile 65536;
events {{ worker_connections 16384; }}
http {{
  access_log off; keepalive_requests 1000000;
  client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work}; uwsgi_temp_path {work};
  scgi_temp_path {work};
  upstream be {{ hash $request_uri consistent; {lines} keepalive 4096; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}
}}
""")
            cmd = [shutil.which("nginx") or "/usr/sbin/nginx", "-p", work, "-c", path]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        # HAProxy's first checks of every server run within one interval of its start.
        time.sleep(3 if kind == "haproxy" else 0.5)
        idle_cpu, rounds = idle_and_load(proc.pid, port, args, lua, backend_pid)
        return {
            "servers": servers, "rps": statistics.median(r[0] for r in rounds),
            "cpu_us": statistics.median(r[1] for r in rounds),
            "backend_cpu_us": statistics.median(r[4] for r in rounds),
            "p99": statistics.median(r[2] for r in rounds), "errors": sum(r[3] for r in rounds),
            "idle_cpu": idle_cpu,
        }
    finally:
        stop(proc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--servers", type=int, default=1000)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--interval", default="2s")
    ap.add_argument("--idle", type=int, default=10)
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--peers", action="store_true", help="also HAProxy and nginx over the same servers")
    args = ap.parse_args()
    for tool in ("nginx", "wrk") + (("haproxy",) if args.peers else ()):
        if not shutil.which(tool):
            sys.exit(f"needs {tool}")
    started = time.time()
    work = tempfile.mkdtemp(prefix="lb-many-")
    os.makedirs(os.path.join(work, "logs"))
    with open(os.path.join(work, "body"), "w") as f:
        f.write("x" * 512)
    listens = "\n".join(f"    listen 127.0.0.1:{FIRST_PORT + i};" for i in range(args.servers))
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off; master_process off; worker_processes 1; pid {work}/nginx.pid;
error_log {work}/logs/error.log crit; worker_rlimit_nofile 65536;
events {{ worker_connections 16384; }}
http {{
  access_log off; keepalive_requests 1000000; keepalive_timeout 60s;
  client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work}; uwsgi_temp_path {work};
  scgi_temp_path {work};
  server {{
{listens}
    location / {{ root {work}; try_files /body =404; }}
    location = /health {{ return 200 "ok"; }}
  }}
}}
""")
    lua = os.path.join(work, "paths.lua")
    with open(lua, "w") as f:
        f.write('math.randomseed(7)\nrequest = function()\n'
                '  return wrk.format("GET", "/item/" .. math.random(1, 10000))\nend\n')
    nginx = subprocess.Popen(["nginx", "-p", work, "-c", conf])
    try:
        wait_port(FIRST_PORT)
        wait_port(FIRST_PORT + args.servers - 1)
        rows = [measure(args.binary, n, args, work, lua, nginx.pid) for n in (3, args.servers)]
        peers = {}
        if args.peers:
            for kind in ("haproxy", "nginx"):
                peers[kind] = [measure_peer(kind, n, args, work, lua, nginx.pid) for n in (3, args.servers)]
    finally:
        nginx.send_signal(signal.SIGTERM)
        nginx.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nlb with {args.servers} servers against 3, same run: wrk -c{args.connections} keep-alive, "
          f"{args.duration}s x {args.rounds} rounds (medians), health checks every {args.interval}")
    print(f"{'servers':>8} {'req/s':>9} {'cpu us/req':>10} {'backend':>8} {'p99 ms':>7} {'errors':>6} {'idle cpu':>9} "
          f"{'change ms':>9} {'max':>6} {'p99 ms during changes':>22}")
    for r in rows:
        print(f"{r['servers']:>8} {r['rps']:>9.0f} {r['cpu_us']:>10.2f} {r['backend_cpu_us']:>8.2f} {r['p99']:>7.2f} "
              f"{r['errors']:>6} "
              f"{r['idle_cpu'] * 100:>8.2f}% {r['change_ms']:>9.1f} {r['change_max_ms']:>6.1f} "
              f"{r['change_p99']:>22.2f}")
    small, big = rows
    print(f"throughput {big['servers']}/3: {big['rps'] / small['rps']:.3f}   "
          f"cpu per request {big['servers']}/3: {big['cpu_us'] / small['cpu_us']:.3f}   "
          f"backend's cpu per request {big['servers']}/3: {big['backend_cpu_us'] / small['backend_cpu_us']:.3f}   "
          f"health checker: {big['idle_cpu'] * 100:.2f}% of a core for {big['servers']} servers")
    if peers:
        print(f"\nthe same over HAProxy and nginx (no admin changes; nginx has no health checks)")
        print(f"{'proxy':>8} {'servers':>8} {'req/s':>9} {'cpu us/req':>10} {'backend':>8} {'p99 ms':>7} {'errors':>6} "
              f"{'idle cpu':>9}")
        table = [("lb", rows)] + list(peers.items())
        for name, (a, b) in table:
            for r in (a, b):
                print(f"{name:>8} {r['servers']:>8} {r['rps']:>9.0f} {r['cpu_us']:>10.2f} {r['backend_cpu_us']:>8.2f} "
                      f"{r['p99']:>7.2f} {r['errors']:>6} {r['idle_cpu'] * 100:>8.2f}%")
        for name, (a, b) in table:
            print(f"{name:>8}: throughput {b['servers']}/3 {b['rps'] / a['rps']:.3f}   "
                  f"cpu per request {b['cpu_us'] / a['cpu_us']:.3f}   "
                  f"backend's cpu per request {b['backend_cpu_us'] / a['backend_cpu_us']:.3f}")
        lb_big = rows[1]
        for name, (_, b) in peers.items():
            print(f"lb/{name} at {b['servers']} servers: throughput {lb_big['rps'] / b['rps']:.3f}   "
                  f"cpu per request {name}/lb {b['cpu_us'] / lb_big['cpu_us']:.3f}")
    print(f"took {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
