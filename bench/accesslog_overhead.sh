#!/usr/bin/env bash
# Throughput of lb-server with stats and the access log on (latency histograms, json log to a file) against
# both off (`stats.latency: false`, `access_log.format: off`), in one run: two lb-server instances over the same
# three nginx backends, driven in turn by wrk (rounds alternate so drift hits both). Plain counters stay on in
# both: they are integer increments and cannot be switched off.
# usage: bench/accesslog_overhead.sh LB_SERVER_BINARY [-d SECONDS] [--rounds N]
set -euo pipefail
BIN="$1"; shift
DUR=8; ROUNDS=3
while [ $# -gt 0 ]; do case "$1" in -d) DUR="$2"; shift 2;; --rounds) ROUNDS="$2"; shift 2;; *) exit 2;; esac; done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
WORK=$(mktemp -d /tmp/lb-accesslog-bench.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill $p 2>/dev/null || true; done; sleep 0.3; rm -rf "$WORK"' EXIT
head -c 512 /dev/zero | tr '\0' 'x' > "$WORK/body"; mkdir -p "$WORK/tmp"
cat > "$WORK/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1; pid $WORK/nginx.pid; error_log $WORK/err crit;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path $WORK/tmp; proxy_temp_path $WORK/tmp; fastcgi_temp_path $WORK/tmp;
  uwsgi_temp_path $WORK/tmp; scgi_temp_path $WORK/tmp;
  server { listen 127.0.0.1:9411; location / { root $WORK; try_files /body =404; } }
  server { listen 127.0.0.1:9412; location / { root $WORK; try_files /body =404; } }
  server { listen 127.0.0.1:9413; location / { root $WORK; try_files /body =404; } } }
CONF
"$NGINX" -p "$WORK" -c "$WORK/nginx.conf" & PIDS+=($!)
for mode in off json; do
  port=$([ $mode = off ] && echo 9420 || echo 9421)
  cat > "$WORK/lb-$mode.json" <<CONF
{"listen": "127.0.0.1:$port", "admin": {"listen": "127.0.0.1:$((port + 10))"},
 "servers": [{"host": "127.0.0.1", "port": 9411}, {"host": "127.0.0.1", "port": 9412}, {"host": "127.0.0.1", "port": 9413}],
 "health_check": {"enabled": false}, "stats": {"latency": $([ $mode = off ] && echo false || echo true)},
 "access_log": {"format": "$mode", "path": "$WORK/access-$mode.log"}}
CONF
  "$BIN" --config "$WORK/lb-$mode.json" > "$WORK/lb-$mode.out" 2>&1 & PIDS+=($!)
done
sleep 1
cat > "$WORK/paths.lua" <<'LUA'
math.randomseed(42)
request = function() return wrk.format("GET", "/item/" .. math.random(1, 10000)) end
LUA
declare -A R
for r in $(seq 1 "$ROUNDS"); do
  for mode in off json; do
    port=$([ $mode = off ] && echo 9420 || echo 9421)
    wrk -t1 -c64 -d1s -s "$WORK/paths.lua" "http://127.0.0.1:$port/" >/dev/null 2>&1
    rps=$(wrk -t1 -c64 -d"${DUR}s" -s "$WORK/paths.lua" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')
    R[$mode]="${R[$mode]:-} $rps"
  done
done
med() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
off=$(med <<<"${R[off]}"); on=$(med <<<"${R[json]}")
lines=$(wc -l < "$WORK/access-json.log")
echo "stats latency + access log off: ${R[off]} req/s (median $off)"
echo "stats latency + access log json on: ${R[json]} req/s (median $on), $lines lines written"
awk -v a="$on" -v b="$off" 'BEGIN { printf "with stats and access log / without: %.3f (target >= 0.95)\n", a / b }'
