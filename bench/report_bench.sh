#!/usr/bin/env bash
# The nightly report benchmark: one day at the operators' scale (50,000 edges probed every
# 2 minutes: 36 M probe rows, their hourly rollups, history with a day's changes, state
# changes and incidents; bench/report_fill.sql), then `edgewatch report` for that day in
# each format, timed with GNU time (wall time, peak RSS of the edgewatch process) and the
# CPU PostgreSQL spent on it. Writes RESULTS_DIR/report-bench.json (bench/report_section.py
# turns it into the section of docs/BENCHMARKS.md), the fill's summary and the reports.
#
#   bash bench/report_bench.sh [RESULTS_DIR]       (default $BENCH_DIR/results)
#
# Knobs (environment):
#   BENCH_DIR            scratch directory (default ${TMPDIR:-/tmp}/edgewatch-bench)
#   BENCH_SEED           generator seed (default 1)
#   BENCH_REPORT_NODES   nodes of the generated graph (default 10000)
#   BENCH_REPORT_EDGES   live edges (default 50000)
#   BENCH_REPORT_DAY     the day generated and reported, YYYY-MM-DD (default two days ago, UTC)
#   BENCH_REPORT_REPS    timed runs per format; the best and the worst are kept (default 3)
#   BENCH_REPORT_PGDIR   the embedded cluster's data directory (default $BENCH_DIR/pg-report;
#                        when that file system has too little room for the ~5 GB the day
#                        takes with 2 GB to spare and /dev/shm has it,
#                        /dev/shm/edgewatch-report-bench instead)
#   BENCH_KEEP=1         keep the cluster's data afterwards (it is stopped all the same)
#
# Needs target/release/edgewatch (built here with `cargo build --release --locked --bin
# edgewatch` when it is missing or has no `report` command), psql, GNU time at /usr/bin/time
# and, for the HTML report's picture, Graphviz `dot`. Sends no network traffic: PostgreSQL is
# embedded, on a unix socket.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/edgewatch-bench}
RESULTS=${1:-$BENCH_DIR/results}
SEED=${BENCH_SEED:-1}
NODES=${BENCH_REPORT_NODES:-10000}
EDGES=${BENCH_REPORT_EDGES:-50000}
DAY=${BENCH_REPORT_DAY:-$(date -u -d '2 days ago' +%F)}
REPS=${BENCH_REPORT_REPS:-3}
FORMATS="json md html"
EDGEWATCH=$ROOT/target/release/edgewatch
STARTED=$(date +%s)

say() { printf '\n== report bench: %s\n' "$*" >&2; }
die() { echo "report bench: $*" >&2; exit 1; }
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
COMMANDS=
run() {
  typed "$@" >>"$COMMANDS"
  "$@"
}

[[ $DAY =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || die "BENCH_REPORT_DAY=$DAY is not YYYY-MM-DD"
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPORT_REPS=$REPS is not a positive number"
/usr/bin/time -f %M true >/dev/null 2>&1 || die "GNU time is missing at /usr/bin/time (Debian package 'time')"
command -v psql >/dev/null || die "psql is missing (scripts/install-deps.sh postgres)"
command -v python3 >/dev/null || die "python3 is missing"
command -v dot >/dev/null || echo "report bench: Graphviz dot is missing: the HTML report will have no picture" >&2
if ! { [ -x "$EDGEWATCH" ] && "$EDGEWATCH" report --help >/dev/null 2>&1; }; then
  say "release build"
  cargo build --release --locked --bin edgewatch
fi

# Where the cluster goes: the day takes ~125 bytes per probe row (heap and index) plus the
# rest; ask for that and 1.5 GB of headroom (WAL, the rollups, the reports).
need_mb=$(( EDGES * 720 * 125 / 1000000 + 1500 ))
avail_mb() { df -Pm "$1" 2>/dev/null | awk 'NR == 2 { print $4 }'; }
mkdir -p "$BENCH_DIR"
if [ -n "${BENCH_REPORT_PGDIR:-}" ]; then
  PGDIR=$BENCH_REPORT_PGDIR
  PG_WHERE="BENCH_REPORT_PGDIR"
else
  PGDIR=$BENCH_DIR/pg-report
  PG_WHERE="BENCH_DIR"
  # The disk is shared (builds): leave 2 GB free on it beside what the day takes.
  if [ "$(avail_mb "$BENCH_DIR")" -lt $(( need_mb + 2048 )) ]; then
    mem_mb=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
    if [ -d /dev/shm ] && [ "$(avail_mb /dev/shm)" -ge "$need_mb" ] && [ "$mem_mb" -ge $(( need_mb + 4096 )) ]; then
      echo "report bench: $(avail_mb "$BENCH_DIR") MB free under $BENCH_DIR, $need_mb MB needed and 2048 to spare:" \
        "the cluster goes to /dev/shm" >&2
      PGDIR=/dev/shm/edgewatch-report-bench
      PG_WHERE="fallback: $(avail_mb "$BENCH_DIR") MB free under BENCH_DIR"
    else
      die "$need_mb MB needed for the cluster (and 2048 to spare), $(avail_mb "$BENCH_DIR") MB free under $BENCH_DIR:" \
        "set BENCH_REPORT_PGDIR"
    fi
  fi
fi
STORAGE=$(df --output=fstype "$(dirname "$PGDIR")" 2>/dev/null | tail -n1 || echo "?")

rm -rf "$RESULTS/report-bench" "$PGDIR"
mkdir -p "$RESULTS/report-bench"
OUT=$RESULTS/report-bench
COMMANDS=$OUT/commands.txt
: >"$COMMANDS"
cut -d' ' -f1-3 /proc/loadavg >"$OUT/loadavg-start.txt" 2>/dev/null || true

STARTED_CLUSTER=0
CLUSTER=
cleanup() {
  local status=$?
  if [ "$STARTED_CLUSTER" = 1 ]; then
    "$EDGEWATCH" --data-dir "$PGDIR" db stop >/dev/null 2>&1 || true
  fi
  if [ "${BENCH_KEEP:-0}" != 1 ]; then
    rm -rf "$PGDIR"
    # As root the cluster may live elsewhere (graph_store::embedded: /var/lib/edgewatch/clusters/…).
    [ -z "$CLUSTER" ] || [ ! -f "$CLUSTER/PG_VERSION" ] || rm -rf "$CLUSTER"
  fi
  exit "$status"
}
trap cleanup EXIT

# CPU seconds of a cluster's postmaster and its (exited and waited-for) children: the
# backends that served a command, once it has disconnected.
pg_cpu() {
  local pid
  pid=$(head -n1 "$1/postmaster.pid" 2>/dev/null) || { echo 0; return; }
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13 + $14 + $15) / hz }' "/proc/$pid/stat" 2>/dev/null || echo 0
}

say "cluster in $PGDIR ($STORAGE), $need_mb MB wanted"
STARTED_CLUSTER=1
run "$EDGEWATCH" --data-dir "$PGDIR" db start >&2
run "$EDGEWATCH" --data-dir "$PGDIR" migrate >&2
URL=$("$EDGEWATCH" --data-dir "$PGDIR" db url)
CLUSTER=$("$EDGEWATCH" --data-dir "$PGDIR" db status | awk '/^cluster:/ { print $2 }')

say "fill: $DAY, $NODES nodes, $EDGES edges, a probe cycle every 2 minutes (seed $SEED)"
t0=$(date +%s.%N)
# A day's changes in proportion: 2% of the nodes retired, 0.6% new edges.
run psql -X -q -A -t -v ON_ERROR_STOP=1 -v seed="$SEED" -v nodes="$NODES" -v edges="$EDGES" -v day="$DAY" \
  -v retire=$(( NODES / 50 )) -v new_edges=$(( EDGES * 6 / 1000 )) -f bench/report_fill.sql "$URL" >"$OUT/fill.json"
t1=$(date +%s.%N)
echo "filled in $(python3 -c 'import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))' "$t0" "$t1") s: $(cat "$OUT/fill.json")" >&2

# The timed runs: each format REPS times, one after the other (each run makes the report
# from scratch: rollup::fill_down, the queries, the rendering; and stores it).
for format in $FORMATS; do
  for rep in $(seq "$REPS"); do
    say "edgewatch report --format $format, run $rep of $REPS"
    file=$OUT/report-$DAY.$format
    cmd=("$EDGEWATCH" --database-url "$URL" report --date "$DAY" --tz UTC --format "$format" --out "$file")
    [ "$rep" -gt 1 ] || typed "${cmd[@]}" >>"$COMMANDS"
    pg0=$(pg_cpu "$CLUSTER")
    /usr/bin/time -v -o "$OUT/time-$format-$rep.txt" "${cmd[@]}" 2>"$OUT/stderr-$format-$rep.txt" \
      || { cat "$OUT/stderr-$format-$rep.txt" >&2; die "edgewatch report --format $format failed"; }
    sleep 0.5 # let the postmaster reap the backends, so their CPU is counted
    pg1=$(pg_cpu "$CLUSTER")
    printf '%s %s %s %s\n' "$format" "$rep" "$pg0" "$pg1" >>"$OUT/pg-cpu.txt"
    grep -E "Elapsed|Maximum resident" "$OUT/time-$format-$rep.txt" >&2
  done
done
cut -d' ' -f1-3 /proc/loadavg >"$OUT/loadavg-end.txt" 2>/dev/null || true

python3 - "$OUT" "$RESULTS/report-bench.json" "$DAY" "$SEED" "$NODES" "$EDGES" "$REPS" "$t0" "$t1" "$STORAGE" \
  "$FORMATS" "$(( $(date +%s) - STARTED ))" "$ROOT/" "$BENCH_DIR" "$PGDIR" "$PG_WHERE" "$RESULTS" <<'PY'
import json, os, re, subprocess, sys, time

out, dest, day, seed, nodes, edges, reps, t0, t1, storage, formats, secs, root, bench_dir, pgdir, pg_where, results = sys.argv[1:]
reps = int(reps)


def commit():
    def git(*args):
        return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD") or "?"
    return head + (" + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def field(text, name):
    return re.search(re.escape(name) + r":\s*(\S+)", text).group(1)


def run(fmt, rep, pg):
    text = open(f"{out}/time-{fmt}-{rep}.txt").read()
    wall = 0.0
    for part in field(text, "Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":"):
        wall = wall * 60 + float(part)
    pg0, pg1 = pg[(fmt, rep)]
    stderr = open(f"{out}/stderr-{fmt}-{rep}.txt").read().strip()
    return {
        "wall_secs": wall,
        "user_secs": float(field(text, "User time (seconds)")),
        "sys_secs": float(field(text, "System time (seconds)")),
        "max_rss_kb": int(field(text, "Maximum resident set size (kbytes)")),
        "pg_cpu_secs": round(pg1 - pg0, 2),
        "stderr": stderr[-500:],
    }


pg = {}
for line in open(f"{out}/pg-cpu.txt"):
    fmt, rep, a, b = line.split()
    pg[(fmt, int(rep))] = (float(a), float(b))

result = {
    "day": day,
    "tz": "UTC",
    "seed": int(seed),
    "nodes": int(nodes),
    "edges": int(edges),
    "reps": reps,
    "pg_storage": storage,
    "pg_dir": pgdir,
    "pg_dir_chosen_by": pg_where,
    "fill": json.load(open(f"{out}/fill.json")),
    "fill_wall_secs": round(float(t1) - float(t0), 1),
    "formats": {},
    "targets": {"wall_secs": 5, "max_rss_mb": 200},
    "loadavg": [open(f"{out}/loadavg-{w}.txt").read().strip() for w in ("start", "end")],
    "bench_secs": int(secs),
    "run_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    "commit": commit(),
    "commands": [c.replace(pgdir, "$PGDIR").replace(results, "$RESULTS").replace(root, "./")
                 for c in open(f"{out}/commands.txt").read().splitlines()],
}
for fmt in formats.split():
    runs = [run(fmt, r, pg) for r in range(1, reps + 1)]
    path = f"{out}/report-{day}.{fmt}"
    result["formats"][fmt] = {
        "runs": runs,
        "best": min(runs, key=lambda r: r["wall_secs"]),
        "worst": max(runs, key=lambda r: r["wall_secs"]),
        "max_wall_secs": max(r["wall_secs"] for r in runs),
        "max_rss_kb": max(r["max_rss_kb"] for r in runs),
        "out_bytes": os.path.getsize(path) if os.path.exists(path) else None,
        "picture": ("<svg" in open(path).read()) if fmt == "html" and os.path.exists(path) else None,
    }
with open(dest, "w") as f:
    json.dump(result, f, indent=1)
    f.write("\n")
for fmt, r in result["formats"].items():
    print(f"{fmt}: wall best {r['best']['wall_secs']:.2f} s, worst {r['worst']['wall_secs']:.2f} s; "
          f"peak RSS up to {r['max_rss_kb'] / 1024:.0f} MB; PostgreSQL CPU {r['best']['pg_cpu_secs']:.1f} s",
          file=sys.stderr)
PY
run "$EDGEWATCH" --data-dir "$PGDIR" db stop >&2
STARTED_CLUSTER=0
echo "report bench: wrote $RESULTS/report-bench.json in $(( $(date +%s) - STARTED )) s" >&2
