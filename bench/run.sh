#!/usr/bin/env bash
# `make bench`: parse rate per log flavour (Rust vs a Python `re` baseline, one core),
# end-to-end `edgewatch dns ingest` on the operators' fleet (lines/s, peak RSS), the
# prober worker pool, and the topology questions on a generated graph of 100,000 nodes and
# 1,000,000 edges (snapshot load; `blast` and `dependents --depth 5` on the snapshot beside
# the same questions in SQL; requests/s of GET /api/v1/broken), the nightly report for one
# day at the operators' scale (bench/report_bench.sh: 50,000 edges, 36 M probe rows), and path
# tracing beside scamper (bench/trace_bench.sh, root: 1,000 destinations behind a chain of 4
# routers in network namespaces, ICMP Paris, 3 probes per TTL), written to docs/BENCHMARKS.md
# with the machine, the date and the exact commands, and agent check-ins against a real
# `serve` (bench/agents_bench.sh: 5,000 simulated agents from examples/agent_swarm.rs), and
# the web UI on the topology graph (bench/ui_bench.sh: pages over HTTP and in headless
# Chromium), and `edgewatch ping` beside fping on 10,000 loopback targets (bench/ping_bench.sh).
# `BENCH_ONLY=trace` alone puts only its section (and its rows of the Targets
# table) into BENCH_OUT and leaves the rest of the page; so do `BENCH_ONLY=agents` and
# `BENCH_ONLY=ui` and `BENCH_ONLY=ping` with theirs.
#
# Knobs (environment):
#   BENCH_ONLY           sections to run, of "parse ingest probe topology report trace paths agents ui ping" (default all),
#                        e.g. BENCH_ONLY=topology BENCH_OUT=/tmp/b.md bash bench/run.sh, or as root
#                        BENCH_ONLY=trace bash bench/run.sh (trace is skipped, saying so, when not root)
#   BENCH_DIR            scratch directory (default ${TMPDIR:-/tmp}/edgewatch-bench)
#   BENCH_SEED           fleet and log seed (default 1)
#   BENCH_PARSE_LINES    lines per flavour for the parse benchmark (default 1000000)
#   BENCH_INGEST_LINES   sizes of the ingest files (default "2000000 8000000")
#   BENCH_INGEST_FLAVOUR flavour of the ingest files (default auth-console)
#   BENCH_REPS           Rust parse passes, best of (default 5)
#   BENCH_PY_REPS        Python parse passes, best of (default 2)
#   BENCH_OUT            the report (default docs/BENCHMARKS.md)
#   BENCH_PROBE_SECS     how long the prober pool runs (default 30)
#   BENCH_TOPO_NODES     nodes of the topology graph (default 100000)
#   BENCH_TOPO_EDGES     live edges of the topology graph (default 1000000)
#   BENCH_TOPO_SAMPLES   nodes asked `blast` and `dependents` (default 20; plus 5 hosts, 1 DC)
#   BENCH_TOPO_REPS      timed runs of each question on each side, median of (default 3)
#   BENCH_CHECK_RUNS     timed runs of `edgewatch check nagios` on the topology graph (default 20)
#   BENCH_PROBE_RUNS     worker-pool runs, each packets:workers:processes (default "1:4:1 5:1:1 5:2:1 5:4:1 5:2:2")
#   BENCH_TOPO_NODE      the node of the whole-command topology runs (default be5000.host1000)
#   BENCH_TOPO_CMD_RUNS  timed runs of each whole topology command (default 3)
#   BENCH_API_CONNECTIONS keep-alive connections sending GET /api/v1/broken (default 4)
#   BENCH_API_SECS       how long they send (default 10)
#   BENCH_TRACE_*        the path-tracing section's knobs: see the head of bench/trace_bench.sh
#   BENCH_AGENTS*        the agent check-in section's knobs: see the head of bench/agents_bench.sh
#   BENCH_UI_RUNS        timed loads of each web UI page (default 10)
#   BENCH_PING_*         the ping section's knobs: see the head of bench/ping_bench.sh
#   BENCH_KEEP=1         keep the generated files and clusters' data afterwards
#
# Network traffic stays on this machine: the probing section probes 127.0.0.0/8 only, the
# topology, agents and ui sections' HTTP load goes to an `edgewatch serve` on 127.0.0.1 (the
# simulated agents send no probes), the tracing section
# probes only addresses inside the network namespaces it makes (and removes); PostgreSQL is
# embedded, on a unix socket in BENCH_DIR.
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
ONLY=" ${BENCH_ONLY:-parse ingest probe topology report trace paths agents ui ping} "
ONLY=${ONLY//,/ }
for section in $ONLY; do
  case $section in parse | ingest | probe | topology | report | trace | paths | agents | ui | ping) ;; *)
    echo "BENCH_ONLY: unknown section $section (sections: parse ingest probe topology report trace paths agents ui ping)" >&2
    exit 2
    ;;
  esac
done
# Only the tracing section: it goes into the existing page instead of a new page.
TRACE_ALONE=0
[ "$(echo $ONLY)" != trace ] || TRACE_ALONE=1
if [ "$TRACE_ALONE" = 1 ] && [ "$(id -u)" != 0 ]; then
  echo "BENCH_ONLY=trace needs root (network namespaces, raw sockets): sudo BENCH_ONLY=trace make bench" >&2
  exit 2
fi
# Only the agents section: likewise into the existing page.
AGENTS_ALONE=0
[ "$(echo $ONLY)" != agents ] || AGENTS_ALONE=1
# Only the web UI section: likewise.
UI_ALONE=0
[ "$(echo $ONLY)" != ui ] || UI_ALONE=1
# Only the nightly report section: likewise (its section and its Targets rows).
REPORT_ALONE=0
[ "$(echo $ONLY)" != report ] || REPORT_ALONE=1
# Only the ping section: likewise.
PING_ALONE=0
[ "$(echo $ONLY)" != ping ] || PING_ALONE=1
ZONE=example.com
FLAVOURS="auth-console auth-plain auth-syslog rec-old rec-structured pipe journald-json"

EDGEWATCH=$ROOT/target/release/edgewatch
GEN=$ROOT/target/release/examples/gen_fleet
PARSE=$ROOT/target/release/examples/parse_bench
TOPO=$ROOT/target/release/examples/topology_bench
LOAD=$ROOT/target/release/examples/api_load
RESULTS=$BENCH_DIR/results
COMMANDS=$RESULTS/commands.txt
STARTED=$(date +%s)

say() { printf '\n== %s\n' "$*" >&2; }
want() { [[ $ONLY == *" $1 "* ]]; }
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
# Runs a command after recording it (as typed, with the variables expanded) for the report,
# and in SECTION_COMMANDS too when that is set.
SECTION_COMMANDS=
run() {
  typed "$@" >>"$COMMANDS"
  [ -z "$SECTION_COMMANDS" ] || typed "$@" >>"$SECTION_COMMANDS"
  "$@"
}

# Clusters and the server this run started; stopped on the way out, whatever happens.
CLUSTERS=()
SERVE_PID=
stop_serve() {
  [ -n "$SERVE_PID" ] || return 0
  kill -INT "$SERVE_PID" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.2; done
  kill -TERM "$SERVE_PID" 2>/dev/null || true
  wait "$SERVE_PID" 2>/dev/null || true
  SERVE_PID=
}
cleanup() {
  local status=$?
  stop_serve
  for dir in "${CLUSTERS[@]}"; do
    "$EDGEWATCH" --data-dir "$dir" db stop >/dev/null 2>&1 || true
  done
  if [ "${BENCH_KEEP:-0}" != 1 ]; then
    rm -rf "$BENCH_DIR/parse" "$BENCH_DIR"/ingest-* "$BENCH_DIR"/pg-* "$BENCH_DIR/probe"
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
[ "$TRACE_ALONE" = 1 ] || [ "$PING_ALONE" = 1 ] || scripts/install-deps.sh postgres

rm -rf "$RESULTS"
mkdir -p "$RESULTS" "$BENCH_DIR"
: >"$COMMANDS"
cut -d' ' -f1-3 /proc/loadavg >"$RESULTS/loadavg-start.txt" 2>/dev/null || true

say "release build"
[ "$TRACE_ALONE" = 1 ] || run cargo build --release --locked --bin edgewatch
if want parse || want ingest || want probe; then
  run cargo build --release --locked -p discovery --example gen_fleet --example parse_bench
fi
if want topology; then
  run cargo build --release --locked -p graph-store --example topology_bench
  run cargo build --release --locked --example api_load
fi
if want trace; then
  run cargo build --release --locked -p probers --example trace_bench
fi
if want agents; then
  run cargo build --release --locked --example agent_swarm
fi

# ---------------------------------------------------------------------------------------
if want parse; then
  say "parse: $PARSE_LINES lines per flavour, Rust best of $REPS, Python best of $PY_REPS"
  run "$GEN" --seed "$SEED" --out "$BENCH_DIR/parse" --lines "$PARSE_LINES" --flavour all
  for flavour in $FLAVOURS; do
    file=$BENCH_DIR/parse/pdns-$flavour.log
    run "$PARSE" "$file" --reps "$REPS" --label "$flavour" | tee -a "$RESULTS/parse-rust.jsonl"
    run python3 bench/parse_baseline.py "$file" --flavour "$flavour" --reps "$PY_REPS" --label "$flavour" \
      | tee -a "$RESULTS/parse-python.jsonl"
    run python3 bench/grep_ceiling.py "$file" --flavour "$flavour" --reps "$REPS" --label "$flavour" \
      | tee -a "$RESULTS/parse-grep.jsonl"
  done
fi

# ---------------------------------------------------------------------------------------
# CPU seconds of a cluster's postmaster and its (exited and waited-for) children.
pg_cpu() {
  local pid
  pid=$(head -n1 "$1/postmaster.pid" 2>/dev/null) || { echo 0; return; }
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13 + $14 + $15) / hz }' "/proc/$pid/stat" 2>/dev/null || echo 0
}

for lines in $INGEST_LINES; do
  want ingest || break
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
PROBE_RUNS=${BENCH_PROBE_RUNS:-1:4:1 5:1:1 5:2:1 5:4:1 5:2:2}
if want probe; then
  say "probing: the operators' fleet's edges, worker pool for ${PROBE_SECS}s, interval $PROBE_INTERVAL (loopback only)"
  dir=$BENCH_DIR/probe
  data=$BENCH_DIR/pg-probe
  rm -rf "$dir" "$data"
  run "$GEN" --seed "$SEED" --out "$dir" --lines 500000 --flavour "$INGEST_FLAVOUR" --name pdns.log
  CLUSTERS+=("$data")
  run "$EDGEWATCH" --data-dir "$data" cmdb import "$dir/inventory.json" >&2
  run "$EDGEWATCH" --data-dir "$data" dns ingest --zone "$ZONE" "$dir/pdns.log" >&2
  run "$EDGEWATCH" --data-dir "$data" db stop >&2
  # Each run starts from this database, copied: the graph, no probe history.
  rm -rf "$data.base" && cp -a "$data" "$data.base"
  # Runs: packets per edge, workers per process, processes. Every generated address is in
  # 127.0.0.0/8; the allow-list says so.
  for run_spec in $PROBE_RUNS; do
    IFS=: read -r packets workers procs <<<"$run_spec"
    tag=p$packets-w$workers-x$procs
    say "probing: $packets packet(s) per edge, $workers worker(s) x $procs process(es)"
    rm -rf "$data" && cp -a "$data.base" "$data"
    run "$EDGEWATCH" --data-dir "$data" db start >&2
    url=$("$EDGEWATCH" --data-dir "$data" db url)
    pids=()
    for i in $(seq "$procs"); do
      if [ "$i" = 1 ]; then
        printf '%s\n' "$(typed "$EDGEWATCH" --data-dir "$data" probe --allow 127.0.0.0/8 --interval "$PROBE_INTERVAL" \
          --packets "$packets" --packet-interval 20ms --timeout 500ms --pps 50000 --workers "$workers" --batch 2000 \
          --run-for "${PROBE_SECS}s") # x $procs process(es) at once" >>"$COMMANDS"
      fi
      /usr/bin/time -v -o "$RESULTS/time-probe-$tag-$i.txt" \
        "$EDGEWATCH" --data-dir "$data" probe --name "bench-$i" --allow 127.0.0.0/8 --interval "$PROBE_INTERVAL" \
        --packets "$packets" --packet-interval 20ms --timeout 500ms --pps 50000 --workers "$workers" --batch 2000 \
        --run-for "${PROBE_SECS}s" 2>"$RESULTS/probe-$tag-$i.log" &
      pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
    psql -X -A -t -F' ' "$url" -c "SELECT (SELECT count(*) FROM edges WHERE retired_at IS NULL), count(*), \
      count(DISTINCT edge_id), extract(epoch FROM max(at) - min(at)) FROM probe_results" >"$RESULTS/probe-$tag-counts.txt"
    psql -X -A -t -F' ' "$url" -c "SELECT state, count(*) FROM edge_health GROUP BY 1 ORDER BY 1" \
      >"$RESULTS/probe-$tag-states.txt"
    # grep -c exits 1 when no log has one: a count of 0, not a failure.
    { grep -c "slow statement" "$RESULTS"/probe-"$tag"-*.log || true; } | awk -F: '{ n += $2 } END { print n + 0 }' \
      >"$RESULTS/probe-$tag-slow.txt"
    run "$EDGEWATCH" --data-dir "$data" db stop >&2
  done
  rm -rf "$data.base"
  [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$dir"
fi

# ---------------------------------------------------------------------------------------
TOPO_NODES=${BENCH_TOPO_NODES:-100000}
TOPO_EDGES=${BENCH_TOPO_EDGES:-1000000}
TOPO_SAMPLES=${BENCH_TOPO_SAMPLES:-20}
TOPO_REPS=${BENCH_TOPO_REPS:-3}
API_CONNECTIONS=${BENCH_API_CONNECTIONS:-4}
API_SECS=${BENCH_API_SECS:-10}
CHECK_RUNS=${BENCH_CHECK_RUNS:-20}
if want topology; then
  say "topology: $TOPO_NODES nodes, $TOPO_EDGES edges; snapshot vs SQL; GET /api/v1/broken for ${API_SECS}s on 127.0.0.1"
  data=$BENCH_DIR/pg-topology
  rm -rf "$data"
  SECTION_COMMANDS=$RESULTS/commands-topology.txt
  : >"$SECTION_COMMANDS"
  CLUSTERS+=("$data")
  run "$EDGEWATCH" --data-dir "$data" db start >&2
  run "$EDGEWATCH" --data-dir "$data" migrate >&2
  url=$("$EDGEWATCH" --data-dir "$data" db url)
  t0=$(date +%s.%N)
  run psql -X -q -A -t -v ON_ERROR_STOP=1 -v seed="$SEED" -v nodes="$TOPO_NODES" -v edges="$TOPO_EDGES" \
    -f bench/topology_fill.sql "$url" >"$RESULTS/topology-fill.json"
  t1=$(date +%s.%N)
  python3 -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$t0" "$t1" >"$RESULTS/topology-fill-secs.txt"
  echo "filled in $(cat "$RESULTS/topology-fill-secs.txt") s: $(cat "$RESULTS/topology-fill.json")" >&2
  run "$TOPO" --database-url "$url" --seed "$SEED" --samples "$TOPO_SAMPLES" --hosts 5 --dcs 1 --depth 5 \
    --reps "$TOPO_REPS" --loads 3 >"$RESULTS/topology.json"

  # The API: one server on a port of 127.0.0.1 the kernel picks, driven from this machine.
  printf '%s &\n' "$(typed "$EDGEWATCH" --database-url "$url" serve --listen 127.0.0.1:0)" \
    | tee -a "$COMMANDS" >>"$SECTION_COMMANDS"
  "$EDGEWATCH" --database-url "$url" serve --listen 127.0.0.1:0 >"$RESULTS/serve.out" 2>"$RESULTS/serve.err" &
  SERVE_PID=$!
  addr=
  for _ in $(seq 300); do
    addr=$(sed -n 's|^listening on http://\(127\.0\.0\.1:[0-9]*\)$|\1|p' "$RESULTS/serve.out")
    [ -z "$addr" ] || break
    kill -0 "$SERVE_PID" 2>/dev/null || { cat "$RESULTS/serve.err" >&2; echo "edgewatch serve exited" >&2; exit 1; }
    sleep 0.2
  done
  [ -n "$addr" ] || { echo "edgewatch serve did not say where it listens within 60 s" >&2; exit 1; }
  run "$LOAD" --url "http://$addr/api/v1/broken" --connections "$API_CONNECTIONS" --secs "$API_SECS" \
    >"$RESULTS/api.json"
  stop_serve

  # The Nagios check on the same graph (about 1% of the edges broken): the diagnosis made
  # once, as `serve` keeps it, then the check answering from it, BENCH_CHECK_RUNS times
  # (whole process: start, connect, read, print).
  run psql -X -q -v ON_ERROR_STOP=1 -c "INSERT INTO probe_counters (kind, verdict, count, last_at) \
    VALUES ('icmp', 'ok', 0, now()) ON CONFLICT (kind, verdict, slot) DO UPDATE SET last_at = now()" "$url"
  printf '[check]\ndiagnosis_max_age = "1h"\n' >"$RESULTS/check.toml"
  t0=$(date +%s.%N)
  run "$EDGEWATCH" --database-url "$url" incidents --fresh --format json >"$RESULTS/incidents.json"
  t1=$(date +%s.%N)
  python3 -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$t0" "$t1" >"$RESULTS/diagnosis-secs.txt"
  printf '%s\n' "$(typed "$EDGEWATCH" --database-url "$url" --config check.toml check nagios) # x ${CHECK_RUNS}, timed" \
    | tee -a "$COMMANDS" >>"$SECTION_COMMANDS"
  python3 - "$EDGEWATCH" "$url" "$RESULTS/check.toml" "$CHECK_RUNS" >"$RESULTS/check.json" <<'PY'
import json, subprocess, sys, time
exe, url, config, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
times, first, codes = [], None, set()
for _ in range(runs):
    t = time.perf_counter()
    out = subprocess.run([exe, "--database-url", url, "--config", config, "check", "nagios"], capture_output=True, text=True)
    times.append((time.perf_counter() - t) * 1000)
    codes.add(out.returncode)
    first = first or out.stdout.splitlines()[0]
times.sort()
print(json.dumps({"runs": runs, "ms": times, "median_ms": times[len(times) // 2], "max_ms": times[-1],
                  "exit_codes": sorted(codes), "first_line": first[:300]}))
PY
  # Whole commands as a user runs them (start, connect, answer, print), from the packed
  # topology `serve` keeps and from the tables; serve's first answer after a start.
  run python3 bench/topology_commands.py "$EDGEWATCH" "$url" "$RESULTS" "${BENCH_TOPO_NODE:-be5000.host1000}" \
    "${BENCH_TOPO_CMD_RUNS:-3}" >"$RESULTS/topology-commands.json"
  SECTION_COMMANDS=
  sed -i "s|http://$addr/|http://127.0.0.1:PORT/|" "$RESULTS/commands-topology.txt" "$COMMANDS"
  run "$EDGEWATCH" --data-dir "$data" db stop >&2
fi

# ---------------------------------------------------------------------------------------
# The nightly report: one day at the operators' scale (its own script, its own cluster).
if want report; then
  say "report: one day, ${BENCH_REPORT_EDGES:-50000} edges probed every 2 minutes"
  run bash bench/report_bench.sh "$RESULTS" >&2
fi

# ---------------------------------------------------------------------------------------
# Path tracing beside scamper: its own script, in network namespaces it makes (root only).
if want trace; then
  if [ "$(id -u)" = 0 ]; then
    say "trace: ${BENCH_TRACE_TARGETS:-1000} destinations, edgewatch's tracer beside scamper (network namespaces)"
    run bash bench/trace_bench.sh "$RESULTS" >&2
  else
    say "trace: skipped: needs root (network namespaces, raw sockets); sudo BENCH_ONLY=trace make bench"
  fi
fi

# The path history store: a day of traces at the operators' scale (its own script, its own cluster).
if want paths; then
  say "paths: one day of traces through record_runs, its bytes; route diff over it"
  run bash bench/paths_store.sh "$RESULTS" >&2
fi

# Agent check-ins: simulated agents against a real serve (its own script, its own cluster).
if want agents; then
  say "agents: ${BENCH_AGENTS:-5000} simulated agents checking in back to back for ${BENCH_AGENTS_SECS:-30}s on 127.0.0.1"
  run bash bench/agents_bench.sh "$RESULTS" bench >&2
fi

# The web UI on the topology graph: pages over HTTP and in headless Chromium (its own script,
# its own cluster).
if want ui; then
  say "ui: the web UI's pages on ${BENCH_TOPO_NODES:-100000} nodes, ${BENCH_TOPO_EDGES:-1000000} edges, over HTTP and in headless Chromium"
  run bash bench/ui_bench.sh "$RESULTS" >&2
fi

# `edgewatch ping` beside fping on the same loopback targets (its own script).
if want ping; then
  say "ping: ${BENCH_PING_TARGETS:-10000} loopback targets × ${BENCH_PING_COUNT:-5}, edgewatch ping beside fping"
  run bash bench/ping_bench.sh "$RESULTS" >&2
fi

say "report: $OUT"
cut -d' ' -f1-3 /proc/loadavg >"$RESULTS/loadavg-end.txt" 2>/dev/null || true
if [ "$TRACE_ALONE" = 1 ]; then
  # Its section and its Targets rows replace theirs in the page; the rest stays as it was.
  python3 bench/trace_section.py "$RESULTS" --into "$OUT"
elif [ "$AGENTS_ALONE" = 1 ]; then
  python3 bench/agents_section.py "$RESULTS" bench --into "$OUT"
elif [ "$UI_ALONE" = 1 ]; then
  python3 bench/ui_section.py "$RESULTS" --into "$OUT"
elif [ "$REPORT_ALONE" = 1 ]; then
  python3 bench/report_section.py "$RESULTS" --into "$OUT"
elif [ "$PING_ALONE" = 1 ]; then
  python3 bench/ping_section.py "$RESULTS" --into "$OUT"
else
  export BENCH_SEED=$SEED BENCH_PARSE_LINES=$PARSE_LINES BENCH_INGEST_FLAVOUR=$INGEST_FLAVOUR \
    BENCH_REPS=$REPS BENCH_PY_REPS=$PY_REPS BENCH_DIR BENCH_SECONDS=$(( $(date +%s) - STARTED )) \
    BENCH_TOPO_REPS=$TOPO_REPS
  python3 bench/report.py "$RESULTS" "$OUT"
  if want probe; then python3 bench/probe_report.py "$RESULTS" "$PROBE_SECS" "$PROBE_INTERVAL" "$PROBE_RUNS" >>"$OUT"; fi
  if want paths; then python3 bench/paths_store_section.py "$RESULTS" >>"$OUT"; fi
  if want agents; then python3 bench/agents_section.py "$RESULTS" bench --into "$OUT"; fi
  if want ui; then python3 bench/ui_section.py "$RESULTS" --into "$OUT"; fi
  if want ping; then python3 bench/ping_section.py "$RESULTS" --into "$OUT"; fi
fi
echo "wrote $OUT in $(( $(date +%s) - STARTED )) s" >&2
