#!/usr/bin/env bash
# The operator's tour of lb's admin API, with bash and curl only. Run it against `make run` in another terminal
# (proxy :8080, admin :8081, backend-1..3 on 8001-8003):
#
#   examples/walkthrough.sh
#
# It reads the stats, sends traffic, adds a fourth server (dry run first; it starts that demo backend itself from
# the built binaries and removes it again at the end), drains one server and removes one, and after each change
# prints which share of the keys moved: what the balancer predicted and what the traffic showed.
#
# Environment: PROXY (default localhost:8080), ADMIN (localhost:8081), TOKEN (admin bearer token, if set),
# LB_BIN_DIR (directory of lb-demo-backend; default .build/release), NEW_PORT (the fourth backend; 8004), KEYS (200).
set -euo pipefail
cd "$(dirname "$0")/.."
PROXY=${PROXY:-localhost:8080}
ADMIN=${ADMIN:-localhost:8081}
BIN=${LB_BIN_DIR:-.build/release}
NEW_PORT=${NEW_PORT:-8004}
KEYS=${KEYS:-200}
NEW_ID=backend-4
AUTH=()
[ -n "${TOKEN:-}" ] && AUTH=(-H "Authorization: Bearer $TOKEN")
WORK=$(mktemp -d)
NEW_PID=

cleanup() {
    # Leave the balancer as we found it: backend-4 gone, backend-2 serving, the extra process stopped.
    curl -s -o /dev/null "${AUTH[@]}" -X DELETE "$ADMIN/manage/servers/$NEW_ID" || true
    curl -s -o /dev/null "${AUTH[@]}" -X PATCH "$ADMIN/manage/servers/backend-2" -d '{"state":"up"}' || true
    [ -n "$NEW_PID" ] && kill "$NEW_PID" 2>/dev/null && wait "$NEW_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# One JSON field's value from a one-line JSON answer (good enough for numbers and strings here).
field() { grep -o "\"$1\":[^,}]*" | head -1 | cut -d: -f2- | tr -d '"'; }
# Sends GET /key/0..KEYS-1 and writes "path backend" lines to $1.
traffic() {
    : > "$1"
    for i in $(seq 0 $((KEYS - 1))); do
        b=$(curl -s -o /dev/null -D - "$PROXY/key/$i" | tr -d '\r' | grep -i '^x-backend:' | cut -d' ' -f2)
        echo "/key/$i ${b:-none}" >> "$1"
    done
    cut -d' ' -f2 "$1" | sort | uniq -c | sed 's/^/    /'
}
# Share of keys whose backend differs between two traffic files.
moved() { paste -d' ' "$1" "$2" | awk '$2 != $4 { n++ } END { printf "%.3f (%d of %d keys)\n", n / NR, n, NR }'; }

curl -sf "$ADMIN/api/health" > /dev/null || { echo "no lb admin API at $ADMIN: start it with 'make run'" >&2; exit 1; }

step "health and servers"
curl -s "$ADMIN/api/health"
curl -s "$ADMIN/api/servers" | grep -o '"id":"[^"]*"\|"keyspace_share":[0-9.e-]*\|"state":"[^"]*"' | paste - - - | sed 's/^/    /'

step "stats before (GET /api/stats, a few fields)"
stats=$(curl -s "$ADMIN/api/stats")
echo "    version $(field version <<<"$stats"), generation $(field generation <<<"$stats"), uptime $(field uptime_seconds <<<"$stats") s"
echo "    requests $(grep -o '"requests":{[^}]*}' <<<"$stats" | head -1)"

step "sending $KEYS requests (GET /key/N); answered by"
traffic "$WORK/before"

step "stats after: per-second rate over 10 s, responses by class"
stats=$(curl -s "$ADMIN/api/stats")
echo "    requests/s $(field per_second <<<"$stats"), total $(grep -o '"requests":{[^}]*}' <<<"$stats" | head -1 | field total)"
echo "    responses $(grep -o '"responses":{"1xx[^}]*}' <<<"$stats" | head -1)"
step "the same in Prometheus form (GET /metrics, lb_requests_total)"
curl -s "$ADMIN/metrics" | grep '^lb_requests_total.*2xx' | sed 's/^/    /'

step "adding $NEW_ID on 127.0.0.1:$NEW_PORT: first a dry run"
[ -x "$BIN/lb-demo-backend" ] || { echo "$BIN/lb-demo-backend not built: run 'make build' (or set LB_BIN_DIR)" >&2; exit 1; }
"$BIN/lb-demo-backend" --port "$NEW_PORT" --name "$NEW_ID" --host 127.0.0.1 > "$WORK/backend-4.log" 2>&1 &
NEW_PID=$!
for _ in $(seq 50); do curl -s -o /dev/null "127.0.0.1:$NEW_PORT/health" && break; sleep 0.1; done
body="{\"id\":\"$NEW_ID\",\"host\":\"127.0.0.1\",\"port\":$NEW_PORT,\"weight\":1}"
dry=$(curl -s "${AUTH[@]}" -X POST "$ADMIN/manage/servers?dry_run=1" -d "$body")
echo "    dry run: would move $(field moved_fraction <<<"$dry") of the keyspace; nothing changed (dry_run $(field dry_run <<<"$dry"))"
added=$(curl -s "${AUTH[@]}" -X POST "$ADMIN/manage/servers" -d "$body")
echo "    added: moved $(field moved_fraction <<<"$added"), generation now $(field generation <<<"$added")"
traffic "$WORK/added"
echo "    traffic moved $(moved "$WORK/before" "$WORK/added")"

step "draining backend-2 (PATCH state=draining: no new requests, its keys walk on to the next server)"
drain=$(curl -s "${AUTH[@]}" -X PATCH "$ADMIN/manage/servers/backend-2" -d '{"state":"draining"}')
echo "    predicted moved $(field moved_fraction <<<"$drain")"
traffic "$WORK/drained"
echo "    traffic moved $(moved "$WORK/added" "$WORK/drained")"

step "removing $NEW_ID (DELETE, dry run first)"
echo "    dry run: would move $(curl -s "${AUTH[@]}" -X DELETE "$ADMIN/manage/servers/$NEW_ID?dry_run=1" | field moved_fraction)"
removed=$(curl -s "${AUTH[@]}" -X DELETE "$ADMIN/manage/servers/$NEW_ID")
echo "    removed: moved $(field moved_fraction <<<"$removed")"
traffic "$WORK/removed"
echo "    traffic moved $(moved "$WORK/drained" "$WORK/removed")"

step "re-enabling backend-2"
echo "    moved $(curl -s "${AUTH[@]}" -X PATCH "$ADMIN/manage/servers/backend-2" -d '{"state":"up"}' | field moved_fraction)"
traffic "$WORK/after"
echo "    back where we started: keys differing from the first run: $(moved "$WORK/before" "$WORK/after")"

step "per-server counters now"
curl -s "$ADMIN/api/stats" | grep -o '"id":"[^"]*"\|"requests_per_second":[0-9.e-]*\|"state":"[^"]*"' | paste - - - | sed 's/^/    /'
echo
echo "dashboard: http://$ADMIN/    metrics: http://$ADMIN/metrics"
