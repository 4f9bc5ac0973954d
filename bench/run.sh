#!/usr/bin/env bash
# `make bench`: parse rate per log flavour (Rust vs a Python `re` baseline, one core) and
# end-to-end `edgewatch dns ingest` on the operators' fleet (lines/s, peak RSS), written
# to docs/BENCHMARKS.md with the machine, the date and the exact commands.
#
# Knobs (environment):
#   BENCH_DIR            scratch directory (default ${TMPDIR:-/tmp}/edgewatch-bench)
#   BENCH_SEED           fleet and log seed (default 1)
#   BENCH_PARSE_LINES    lines per flavour for the parse benchmark (default 1000000)
#   BENCH_INGEST_LINES   sizes of the ingest files (default "2000000 8000000")
#   BENCH_INGEST_FLAVOUR flavour of the ingest files (default auth-console)
#   BENCH_REPS           Rust parse passes, best of (default 5)
#   BENCH_PY_REPS        Python parse passes, best of (default 2)
#   BENCH_OUT            the report (default docs/BENCHMARKS.md)
#   BENCH_KEEP=1         keep the generated files and clusters' data afterwards
#
# Sends no network traffic: it only generates files, parses them and writes to an
# embedded PostgreSQL on a unix socket in BENCH_DIR.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/edgewatch-bench}
SEED=${BENCH_SEED:-1}
PARSE_LINES=${BENCH_PARSE_LINES:-1000000}
INGEST_LINES=${BENCH_INGEST_LINES:-"2000000 8000000"}
INGEST_FLAVOUR=${BENCH_INGEST_FLAVOUR:-auth-console}
REPS=${BENCH_REPS:-5}
PY_REPS=${BENCH_PY_REPS:-2}
OUT=${BENCH_OUT:-docs/BENCHMARKS.md}
ZONE=example.com
FLAVOURS="auth-console auth-plain auth-syslog rec-old rec-structured pipe journald-json"

EDGEWATCH=$ROOT/target/release/edgewatch
GEN=$ROOT/target/release/examples/gen_fleet
PARSE=$ROOT/target/release/examples/parse_bench
RESULTS=$BENCH_DIR/results
COMMANDS=$RESULTS/commands.txt
STARTED=$(date +%s)

say() { printf '\n== %s\n' "$*" >&2; }
# Runs a command after recording it (as typed, with the variables expanded) for the report.
run() {
  printf '%s\n' "$*" >>"$COMMANDS"
  "$@"
}

# Clusters this run started; stopped on the way out, whatever happens.
CLUSTERS=()
cleanup() {
  local status=$?
  for dir in "${CLUSTERS[@]}"; do
    "$EDGEWATCH" --data-dir "$dir" db stop >/dev/null 2>&1 || true
  done
  if [ "${BENCH_KEEP:-0}" != 1 ]; then
    rm -rf "$BENCH_DIR/parse" "$BENCH_DIR"/ingest-* "$BENCH_DIR"/pg-*
  fi
  exit "$status"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------
say "tools"
if ! /usr/bin/time -f %M true >/dev/null 2>&1; then
  echo "GNU time is missing: installing Debian's 'time' package" >&2
  if [ "$(id -u)" = 0 ]; then apt-get install -y -q time >/dev/null || { apt-get update -q && apt-get install -y -q time; }
  else sudo apt-get install -y -q time; fi
fi
command -v python3 >/dev/null || { echo "python3 is needed for the baseline and the report" >&2; exit 1; }
scripts/install-deps.sh postgres

rm -rf "$RESULTS"
mkdir -p "$RESULTS" "$BENCH_DIR"
: >"$COMMANDS"
cut -d' ' -f1-3 /proc/loadavg >"$RESULTS/loadavg-start.txt" 2>/dev/null || true

say "release build"
run cargo build --release --locked --bin edgewatch
run cargo build --release --locked -p discovery --example gen_fleet --example parse_bench

# ---------------------------------------------------------------------------------------
say "parse: $PARSE_LINES lines per flavour, Rust best of $REPS, Python best of $PY_REPS"
run "$GEN" --seed "$SEED" --out "$BENCH_DIR/parse" --lines "$PARSE_LINES" --flavour all
for flavour in $FLAVOURS; do
  file=$BENCH_DIR/parse/pdns-$flavour.log
  run "$PARSE" "$file" --reps "$REPS" --label "$flavour" | tee -a "$RESULTS/parse-rust.jsonl"
  run python3 bench/parse_baseline.py "$file" --flavour "$flavour" --reps "$PY_REPS" --label "$flavour" \
    | tee -a "$RESULTS/parse-python.jsonl"
done

# ---------------------------------------------------------------------------------------
# CPU seconds of a cluster's postmaster and its (exited and waited-for) children.
pg_cpu() {
  local pid
  pid=$(head -n1 "$1/postmaster.pid" 2>/dev/null) || { echo 0; return; }
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13 + $14 + $15) / hz }' "/proc/$pid/stat" 2>/dev/null || echo 0
}

for lines in $INGEST_LINES; do
  say "ingest: $lines lines of $INGEST_FLAVOUR"
  dir=$BENCH_DIR/ingest-$lines
  data=$BENCH_DIR/pg-$lines
  rm -rf "$dir" "$data"
  run "$GEN" --seed "$SEED" --out "$dir" --lines "$lines" --flavour "$INGEST_FLAVOUR" --name pdns.log
  CLUSTERS+=("$data")
  run "$EDGEWATCH" --data-dir "$data" db start >&2
  cluster=$("$EDGEWATCH" --data-dir "$data" db status | awk '/^cluster:/ { print $2 }')
  t0=$(date +%s.%N)
  run "$EDGEWATCH" --data-dir "$data" cmdb import "$dir/inventory.json" >&2
  t1=$(date +%s.%N)
  pg_before=$(pg_cpu "$cluster")
  run /usr/bin/time -v -o "$RESULTS/time-$lines.txt" \
    "$EDGEWATCH" --data-dir "$data" dns ingest --zone "$ZONE" --format json "$dir/pdns.log" \
    >"$RESULTS/ingest-$lines.json"
  sleep 1 # let the postmaster reap the ingest's backends, so their CPU is counted
  pg_after=$(pg_cpu "$cluster")
  edges=$(psql -X -A -t "$("$EDGEWATCH" --data-dir "$data" db url)" \
    -c "SELECT count(*) FROM edges WHERE retired_at IS NULL" 2>/dev/null || echo "")
  python3 - "$RESULTS" "$lines" "$dir/pdns.log" "$t0" "$t1" "$pg_before" "$pg_after" "$edges" <<'PY'
import json, os, re, sys
results, lines, log, t0, t1, pg0, pg1, edges = sys.argv[1:]
text = open(f"{results}/time-{lines}.txt").read()
def field(name):
    return re.search(re.escape(name) + r":\s*(\S+)", text).group(1)
wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss)")
secs = 0.0
for part in wall.split(":"):
    secs = secs * 60 + float(part)
summary = json.load(open(f"{results}/ingest-{lines}.json"))
row = {
    "lines": summary["lines"],
    "bytes": os.path.getsize(log),
    "queries": summary["queries"],
    "resolved": summary["resolved"],
    "wall_secs": secs,
    "user_secs": float(field("User time (seconds)")),
    "sys_secs": float(field("System time (seconds)")),
    "max_rss_kb": int(field("Maximum resident set size (kbytes)")),
    "pg_cpu_secs": float(pg1) - float(pg0),
    "import_secs": float(t1) - float(t0),
    "edges": int(edges) if edges.strip() else None,
}
print(json.dumps(row))
with open(f"{results}/ingest.jsonl", "a") as f:
    f.write(json.dumps(row) + "\n")
PY
  run "$EDGEWATCH" --data-dir "$data" db stop >&2
  [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$dir"
done

# ---------------------------------------------------------------------------------------
PROBE_SECS=${BENCH_PROBE_SECS:-30}
PROBE_INTERVAL=${BENCH_PROBE_INTERVAL:-1s}
say "probing: the operators' fleet's edges, worker pool for ${PROBE_SECS}s, interval $PROBE_INTERVAL (loopback only)"
dir=$BENCH_DIR/probe
data=$BENCH_DIR/pg-probe
rm -rf "$dir" "$data"
run "$GEN" --seed "$SEED" --out "$dir" --lines 500000 --flavour "$INGEST_FLAVOUR" --name pdns.log
CLUSTERS+=("$data")
run "$EDGEWATCH" --data-dir "$data" cmdb import "$dir/inventory.json" >&2
run "$EDGEWATCH" --data-dir "$data" dns ingest --zone "$ZONE" "$dir/pdns.log" >&2
# Every generated address is in 127.0.0.0/8; the allow-list says so.
run /usr/bin/time -v -o "$RESULTS/time-probe.txt" \
  "$EDGEWATCH" --data-dir "$data" probe --allow 127.0.0.0/8 --interval "$PROBE_INTERVAL" --packets 1 \
  --timeout 500ms --pps 50000 --workers 4 --batch 2000 --run-for "${PROBE_SECS}s" 2>"$RESULTS/probe.log"
url=$("$EDGEWATCH" --data-dir "$data" db url)
psql -X -A -t -F' ' "$url" -c "SELECT (SELECT count(*) FROM edges WHERE retired_at IS NULL), count(*), \
  count(DISTINCT edge_id), extract(epoch FROM max(at) - min(at)) FROM probe_results" >"$RESULTS/probe-counts.txt"
psql -X -A -t -F' ' "$url" -c "SELECT state, count(*) FROM edge_health GROUP BY 1 ORDER BY 1" >"$RESULTS/probe-states.txt"
run "$EDGEWATCH" --data-dir "$data" db stop >&2
[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$dir"

say "report: $OUT"
cut -d' ' -f1-3 /proc/loadavg >"$RESULTS/loadavg-end.txt" 2>/dev/null || true
export BENCH_SEED=$SEED BENCH_PARSE_LINES=$PARSE_LINES BENCH_INGEST_FLAVOUR=$INGEST_FLAVOUR \
  BENCH_REPS=$REPS BENCH_PY_REPS=$PY_REPS BENCH_DIR BENCH_SECONDS=$(( $(date +%s) - STARTED ))
python3 bench/report.py "$RESULTS" "$OUT"
python3 bench/probe_report.py "$RESULTS" "$PROBE_SECS" "$PROBE_INTERVAL" >>"$OUT"
echo "wrote $OUT in $(( $(date +%s) - STARTED )) s" >&2
