#!/usr/bin/env python3
"""lb against HAProxy and nginx over a matrix of load shapes, as one table of ratios.

Runs ../shared/bench/peers.sh once per cell of clients x response bodies x client connection mode (keep-alive, or
a new connection per request with --close) and prints one row per cell: lb's throughput, its ratio to each peer
(above 1: lb faster), each peer's CPU per request over lb's (above 1: lb cheaper), p99 latency and peak resident
memory of every proxy. Throughput, CPU and p99 come from peers.sh's --json file; peak memory from its table
(the JSON does not carry it). Every peers.sh output is kept in the output directory.

usage: bench/scale_matrix.py LB_SERVER_BINARY [--peers PATH] [-d SECONDS] [--rounds N]
           [--clients 4,64,1000,5000] [--bodies 512,65536,1048576] [--modes keepalive,close] [--out DIR] [--smoke]

--smoke (or BENCH_SCALE_SMOKE=1): one cell, 64 keep-alive clients, 512-byte bodies, -d 2 --rounds 1, to check
that the script and the tools work; its figures mean nothing.

The full matrix is 24 cells; each runs four targets (direct, haproxy, nginx, lb) for (1 + SECONDS) x ROUNDS
seconds plus about 2 s of start-up: about 55 minutes with the defaults (-d 10 --rounds 3).
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time

PEERS = ("haproxy", "nginx")


def parse_list(text):
    return [int(x) for x in text.replace(" ", ",").split(",") if x]


def human_bytes(n):
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20}MiB"
    if n >= 1 << 10 and n % (1 << 10) == 0:
        return f"{n >> 10}KiB"
    return f"{n}B"


def peak_mb_by_target(text):
    """Peak MB per target from peers.sh's table: `target req/s p50 p99 cpu ctxsw peakMB errors...`."""
    peaks = {}
    in_table = False
    for line in text.splitlines():
        fields = line.split()
        if fields[:2] == ["target", "req/s(med)"]:
            in_table = True
            continue
        if in_table:
            if not fields or line.startswith("("):
                break
            if len(fields) >= 7:
                peaks[fields[0]] = fields[6]
    return peaks


def ratio(a, b):
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return None
    if b == 0 or math.isnan(a) or math.isnan(b):
        return None
    return a / b


def fmt(x, digits=3):
    return "-" if x is None else f"{x:.{digits}f}"


def run_cell(args, clients, body, mode, out_dir):
    name = f"c{clients}-{human_bytes(body)}-{mode}"
    json_path = os.path.join(out_dir, name + ".json")
    log_path = os.path.join(out_dir, name + ".txt")
    # The admin listener on port 0: the default 8081 may be taken by another lb on the machine.
    candidate = f"{args.binary} --admin 127.0.0.1:0"
    cmd = [args.peers, "--candidate", candidate, "--label", "lb", "-c", str(clients), "--body", str(body),
           "-d", str(args.duration), "--rounds", str(args.rounds), "--json", json_path]
    if mode == "close":
        cmd.append("--close")
    started = time.monotonic()
    print(f"[{name}] {' '.join(cmd)}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with open(log_path, "w") as f:
        f.write(proc.stdout)
    took = time.monotonic() - started
    row = {"clients": clients, "body": body, "mode": mode, "seconds": took, "log": log_path}
    if proc.returncode != 0 or not os.path.exists(json_path):
        row["failed"] = f"peers.sh exited {proc.returncode} (see {log_path})"
        return row
    with open(json_path) as f:
        # peers.sh writes an unquoted nan for a figure it could not measure; JSON spells that NaN.
        data = json.loads(re.sub(r"(?<=: )nan\b", "NaN", f.read()))
    row["data"] = data
    row["peak_mb"] = peak_mb_by_target(proc.stdout)
    return row


HEADER = (f"{'clients':>7} {'body':>7} {'client conn':<11} {'lb req/s':>9} {'lb/hap':>7} {'lb/ngx':>7} "
          f"{'cpu hap/lb':>10} {'cpu ngx/lb':>10} {'p99 ms lb/hap/ngx':>20} {'peak MB lb/hap/ngx':>20}  errors")


def format_row(row):
    conn = "keep-alive" if row["mode"] == "keepalive" else "close"
    shape = f"{row['clients']:>7} {human_bytes(row['body']):>7} {conn:<11}"
    if "failed" in row:
        return f"{shape} {row['failed']}"
    d = row["data"]
    lb = d.get("candidate", {})
    hap = d.get("haproxy", {})
    ngx = d.get("nginx", {})
    p99 = "/".join(str(t.get("p99_ms", "-")) for t in (lb, hap, ngx))
    peaks = row["peak_mb"]
    mem = "/".join(peaks.get(t, "-") for t in ("lb", "haproxy", "nginx"))
    errors = [f"{t}: {str(d[t]['errors']).strip().rstrip(';')}" for t in ("candidate", "haproxy", "nginx")
              if t in d and str(d[t].get("errors", "0")) != "0"]
    return (f"{shape} {float(lb.get('rps', 0)):>9.0f} {fmt(ratio(lb.get('rps'), hap.get('rps'))):>7} "
            f"{fmt(ratio(lb.get('rps'), ngx.get('rps'))):>7} "
            f"{fmt(ratio(hap.get('cpu_us_per_req'), lb.get('cpu_us_per_req'))):>10} "
            f"{fmt(ratio(ngx.get('cpu_us_per_req'), lb.get('cpu_us_per_req'))):>10} "
            f"{p99:>20} {mem:>20}  {'; '.join(errors).replace('candidate', 'lb') or '-'}")


def summary(rows):
    """lb's throughput over the faster peer's: the worst cell and the geometric mean over the cells."""
    best = []
    for row in rows:
        if "failed" in row:
            continue
        d = row["data"]
        peer_rps = [float(d[p]["rps"]) for p in PEERS if p in d]
        r = ratio(d.get("candidate", {}).get("rps"), max(peer_rps) if peer_rps else None)
        if r:
            best.append((r, row))
    if not best:
        return "no cell completed"
    worst, cell = min(best, key=lambda x: x[0])
    geo = math.exp(sum(math.log(r) for r, _ in best) / len(best))
    where = f"{cell['clients']} clients, {human_bytes(cell['body'])}, {cell['mode']}"
    return f"lb / faster peer, throughput: geometric mean {geo:.3f} over {len(best)} cells, lowest {worst:.3f} ({where})"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("binary", help="the lb-server binary (a release build)")
    p.add_argument("--peers", default=os.path.join(here, "..", "..", "shared", "bench", "peers.sh"))
    p.add_argument("-d", "--duration", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--clients", type=parse_list, default=[4, 64, 1000, 5000])
    p.add_argument("--bodies", type=parse_list, default=[512, 64 * 1024, 1 << 20])
    p.add_argument("--modes", default="keepalive,close")
    p.add_argument("--out", help="directory for the peers.sh outputs (default: a new one under /tmp)")
    p.add_argument("--smoke", action="store_true", default=os.environ.get("BENCH_SCALE_SMOKE", "") not in ("", "0"))
    args = p.parse_args()
    modes = [m for m in args.modes.replace(" ", ",").split(",") if m]
    if any(m not in ("keepalive", "close") for m in modes):
        p.error("--modes takes keepalive and/or close")
    if args.smoke:
        args.clients, args.bodies, modes, args.duration, args.rounds = [64], [512], ["keepalive"], 2, 1
    if not os.access(args.peers, os.X_OK):
        p.error(f"{args.peers} is not an executable peers.sh (give --peers)")
    out_dir = args.out or tempfile.mkdtemp(prefix="lb-bench-scale.")
    os.makedirs(out_dir, exist_ok=True)

    cells = [(c, b, m) for m in modes for b in args.bodies for c in args.clients]
    print(f"{len(cells)} cells, -d {args.duration} --rounds {args.rounds}; outputs in {out_dir}", file=sys.stderr)
    started = time.monotonic()
    rows = []
    for clients, body, mode in cells:
        row = run_cell(args, clients, body, mode, out_dir)
        rows.append(row)
        print(format_row(row), file=sys.stderr, flush=True)

    print()
    print(HEADER)
    for row in rows:
        print(format_row(row))
    print("(lb/hap, lb/ngx: throughput ratio, above 1 = lb faster; cpu X/lb: CPU per request of X over lb's, "
          "above 1 = lb cheaper; peak MB: resident memory of each proxy process)")
    print(summary(rows))
    print(f"{len(cells)} cells in {(time.monotonic() - started) / 60:.1f} min, -d {args.duration} --rounds "
          f"{args.rounds}, cores={os.cpu_count()}; peers.sh outputs in {out_dir}")
    return 1 if any("failed" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
