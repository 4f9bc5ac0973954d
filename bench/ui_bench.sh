#!/usr/bin/env bash
# The web UI on the topology benchmark's graph (bench/topology_fill.sql: 100,000 nodes,
# 1,000,000 live edges, 6 data centers, ~1 % of the edges broken), on an embedded cluster
# of its own (BENCH_DIR/pg-ui), served by a real `edgewatch serve` on 127.0.0.1:
#
#   bash bench/ui_bench.sh RESULTS_DIR        # section `ui` of `make bench`
#
# Measured (bench/ui_pages.py):
# - the overview `/` over HTTP: the first answer after `serve` started (its store reads
#   made, a diagnosis there or not), then BENCH_UI_RUNS more each after the page cache's
#   age has passed (every one reads the store again) and BENCH_UI_RUNS within it (served
#   from the cache), each to the last byte;
# - the map pages over HTTP (`/ui/map`, the largest data center's page), likewise;
# - in headless Chromium (Debian's chromium through chromedriver, from WebDriver over
#   HTTP): the overview and the largest data center's map page, from navigation start to
#   the page's load event (HTML parsed, style and the deferred script run: interactive),
#   with the Navigation Timing figures, BENCH_UI_RUNS times each.
# Results go to RESULTS_DIR/ui-bench.json (with the commands), which bench/ui_section.py
# turns into the section "Web UI" of docs/BENCHMARKS.md.
#
# Traffic: HTTP to the serve on 127.0.0.1 only; nothing is probed (serve probes nothing,
# and the graph's addresses are loopback anyway).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
RESULTS=${1:?usage: ui_bench.sh RESULTS_DIR}
export BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/edgewatch-bench}
SEED=${BENCH_SEED:-1}
NODES=${BENCH_TOPO_NODES:-100000}
EDGES=${BENCH_TOPO_EDGES:-1000000}
RUNS=${BENCH_UI_RUNS:-10}
EDGEWATCH=$ROOT/target/release/edgewatch
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

command -v chromedriver >/dev/null || scripts/install-deps.sh report >&2
mkdir -p "$RESULTS" "$BENCH_DIR"
COMMANDS=$RESULTS/commands-ui.txt
: >"$COMMANDS"
run() {
  typed "$@" >>"$COMMANDS"
  "$@"
}

DATA=$BENCH_DIR/pg-ui
SERVE_PID=
cleanup() {
  local status=$?
  if [ -n "$SERVE_PID" ]; then
    kill -INT "$SERVE_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.2; done
    kill -TERM "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
  fi
  "$EDGEWATCH" --data-dir "$DATA" db stop >/dev/null 2>&1 || true
  [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$DATA"
  exit "$status"
}
trap cleanup EXIT

rm -rf "$DATA"
run "$EDGEWATCH" --data-dir "$DATA" db start >&2
run "$EDGEWATCH" --data-dir "$DATA" migrate >&2
URL=$("$EDGEWATCH" --data-dir "$DATA" db url)
run psql -X -q -A -t -v ON_ERROR_STOP=1 -v seed="$SEED" -v nodes="$NODES" -v edges="$EDGES" \
  -f bench/topology_fill.sql "$URL" >"$RESULTS/ui-fill.json"
echo "graph made: $(cat "$RESULTS/ui-fill.json")" >&2
# Probe results "now", so that the stored diagnosis counts as current (as on a server
# whose workers run).
psql -X -q -v ON_ERROR_STOP=1 -c "INSERT INTO probe_counters (kind, verdict, count, last_at) \
  VALUES ('icmp', 'ok', 0, now()) ON CONFLICT (kind, verdict, slot) DO UPDATE SET last_at = now()" "$URL"
LARGEST=$(psql -X -A -t -c "SELECT dc FROM nodes WHERE retired_at IS NULL GROUP BY dc ORDER BY count(*) DESC, dc LIMIT 1" "$URL")

printf '%s &\n' "$(typed "$EDGEWATCH" --database-url "$URL" serve --listen 127.0.0.1:0)" >>"$COMMANDS"
"$EDGEWATCH" --database-url "$URL" serve --listen 127.0.0.1:0 >"$RESULTS/ui-serve.out" 2>"$RESULTS/ui-serve.err" &
SERVE_PID=$!
addr=
for _ in $(seq 300); do
  addr=$(sed -n 's|^listening on http://\(127\.0\.0\.1:[0-9]*\)$|\1|p' "$RESULTS/ui-serve.out")
  [ -z "$addr" ] || break
  kill -0 "$SERVE_PID" 2>/dev/null || { cat "$RESULTS/ui-serve.err" >&2; echo "edgewatch serve exited" >&2; exit 1; }
  sleep 0.2
done
[ -n "$addr" ] || { echo "edgewatch serve did not say where it listens within 60 s" >&2; exit 1; }

echo "python3 bench/ui_pages.py --base http://127.0.0.1:PORT --dc $LARGEST --runs $RUNS" >>"$COMMANDS"
python3 bench/ui_pages.py --base "http://$addr" --dc "$LARGEST" --runs "$RUNS" --serve-pid "$SERVE_PID" \
  --fill "$RESULTS/ui-fill.json" --commands "$COMMANDS" >"$RESULTS/ui-bench.json"
echo "wrote $RESULTS/ui-bench.json" >&2
