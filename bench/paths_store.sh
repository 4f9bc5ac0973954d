#!/usr/bin/env bash
# The path history store's benchmark (`make bench`, section `paths`): the operators' fleet
# (6 DCs, 1,000 hosts, 5,000 containers) loaded as bench/run.sh loads it (cmdb import of
# inventory.json, dns ingest of a log), the host pairs graph_store::paths::sync_pairs keeps
# from it; then, because the DNS edges of the generated fleet never leave a data center
# (every DC has replicas of every shared service and the resolver takes the closest tier),
# a links export joining each consumer to the replicas of its shared services in the other
# five DCs; the pairs again; one day of trace runs at the schedule of issue 13 through
# record_runs in batches, each hour compacted into hour blocks (graph-store/examples/
# paths_store_bench.rs: runs/s, bytes of the day's blocks, rollups, paths and events); and `edgewatch route diff` over that day,
# the whole command and through `serve`'s /api/v1/routes/diff, with EXPLAIN ANALYZE of the
# runs query. Writes RESULTS_DIR/paths-store.json (bench/paths_store_section.py turns it
# into the "Path history store" section of docs/BENCHMARKS.md).
#
#   bash bench/paths_store.sh [RESULTS_DIR]       (default $BENCH_DIR/results)
#
# Knobs (environment):
#   BENCH_DIR            scratch directory (default ${TMPDIR:-/tmp}/edgewatch-bench)
#   BENCH_SEED           fleet, log and runs seed (default 1)
#   BENCH_PATHS_LINES    lines of the DNS log ingested (default 500000; the edges are all
#                        there well before that)
#   BENCH_PATHS_SAMPLE   write the runs of every Nth pair (default 10: a tenth of the day;
#                        1 writes the whole day, ~51 M runs and ~20 GB with its rollups)
#   BENCH_PATHS_BATCH    runs per record_runs call (default 500)
#   BENCH_PATHS_WRITERS  record_runs callers at once (default 1)
#   BENCH_PATHS_DAY      the day written, YYYY-MM-DD (default yesterday, UTC)
#   BENCH_PATHS_REPS     timed runs of `route diff`, CLI and API each, median of (default 9)
#   BENCH_PATHS_PGDIR    the embedded cluster's data directory (default $BENCH_DIR/pg-paths;
#                        when that file system lacks the room the day needs with 2 GB to
#                        spare and /dev/shm has it, /dev/shm/edgewatch-paths-bench instead)
#   BENCH_KEEP=1         keep the cluster's data and the fleet afterwards (stopped all the same)
#
# Sends no network traffic: PostgreSQL is embedded, on a unix socket; `serve` listens on a
# port of 127.0.0.1 and only this script asks it.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/edgewatch-bench}
RESULTS=${1:-$BENCH_DIR/results}
SEED=${BENCH_SEED:-1}
LINES=${BENCH_PATHS_LINES:-500000}
SAMPLE=${BENCH_PATHS_SAMPLE:-10}
BATCH=${BENCH_PATHS_BATCH:-500}
WRITERS=${BENCH_PATHS_WRITERS:-1}
DAY=${BENCH_PATHS_DAY:-$(date -u -d yesterday +%F)}
REPS=${BENCH_PATHS_REPS:-9}
EDGEWATCH=$ROOT/target/release/edgewatch
BENCH=$ROOT/target/release/examples/paths_store_bench
FLEET=$BENCH_DIR/paths-fleet
OUT=$RESULTS/paths-store
STARTED=$(date +%s)
# How this run was asked for, for the report: the knobs set, then the script.
INVOCATION="$({ env | grep -E '^BENCH_(DIR|SEED|PATHS_[A-Z]+)=' || true; } | sort | tr '\n' ' ')bash bench/paths_store.sh"

say() { printf '\n== paths bench: %s\n' "$*" >&2; }
die() { echo "paths bench: $*" >&2; exit 1; }
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
COMMANDS=$OUT/commands.txt
run() {
  typed "$@" >>"$COMMANDS"
  "$@"
}

[[ $DAY =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || die "BENCH_PATHS_DAY=$DAY is not YYYY-MM-DD"
for knob in SAMPLE BATCH WRITERS REPS LINES; do
  [[ ${!knob} =~ ^[1-9][0-9]*$ ]] || die "BENCH_PATHS_$knob=${!knob} is not a positive number"
done
/usr/bin/time -f %M true >/dev/null 2>&1 || die "GNU time is missing at /usr/bin/time (Debian package 'time')"
for tool in psql python3 curl; do command -v "$tool" >/dev/null || die "$tool is missing"; done

rm -rf "$OUT"
mkdir -p "$OUT" "$BENCH_DIR"
: >"$COMMANDS"
cut -d' ' -f1-3 /proc/loadavg >"$OUT/loadavg-start.txt" 2>/dev/null || true

say "release build"
run cargo build --release --locked --bin edgewatch >&2
run cargo build --release --locked -p graph-store --example paths_store_bench >&2

# Where the cluster goes: ~200 bytes per run in trace_runs until compacted (the day's
# partition is not reused across hours before vacuum), ~100 in the blocks and rollups, the
# pairs, WAL; 1.5 GB of headroom.
need_mb=$(( 51000000 / SAMPLE * 1000 / 1000000 + 1500 ))
avail_mb() { df -Pm "$1" 2>/dev/null | awk 'NR == 2 { print $4 }'; }
if [ -n "${BENCH_PATHS_PGDIR:-}" ]; then
  PGDIR=$BENCH_PATHS_PGDIR
else
  PGDIR=$BENCH_DIR/pg-paths
  if [ "$(avail_mb "$BENCH_DIR")" -lt $(( need_mb + 2048 )) ]; then
    mem_mb=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
    if [ -d /dev/shm ] && [ "$(avail_mb /dev/shm)" -ge "$need_mb" ] && [ "$mem_mb" -ge $(( need_mb + 4096 )) ]; then
      echo "paths bench: $(avail_mb "$BENCH_DIR") MB free under $BENCH_DIR, $need_mb MB needed and 2048 to spare:" \
        "the cluster goes to /dev/shm" >&2
      PGDIR=/dev/shm/edgewatch-paths-bench
    else
      die "$need_mb MB needed for the cluster (and 2048 to spare), $(avail_mb "$BENCH_DIR") MB free: set BENCH_PATHS_PGDIR"
    fi
  fi
fi
STORAGE=$(df --output=fstype "$(dirname "$PGDIR")" 2>/dev/null | tail -n1 || echo "?")

SERVE_PID=
STARTED_CLUSTER=0
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
  [ "$STARTED_CLUSTER" = 0 ] || "$EDGEWATCH" --data-dir "$PGDIR" db stop >/dev/null 2>&1 || true
  [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$PGDIR" "$FLEET"
  exit "$status"
}
trap cleanup EXIT

# CPU seconds of a cluster's postmaster and its (exited and waited-for) children.
pg_cpu() {
  local pid
  pid=$(head -n1 "$1/postmaster.pid" 2>/dev/null) || { echo 0; return; }
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13 + $14 + $15) / hz }' "/proc/$pid/stat" 2>/dev/null || echo 0
}

say "the operators' fleet (seed $SEED), $LINES DNS lines; cluster in $PGDIR ($STORAGE)"
rm -rf "$PGDIR" "$FLEET"
run "$EDGEWATCH" fleet generate --out "$FLEET" --seed "$SEED" --lines "$LINES" --flavour auth-console >&2
STARTED_CLUSTER=1
run "$EDGEWATCH" --data-dir "$PGDIR" db start >&2
run "$EDGEWATCH" --data-dir "$PGDIR" cmdb import "$FLEET/inventory.json" >&2
run "$EDGEWATCH" --data-dir "$PGDIR" dns ingest --zone example.com "$FLEET/pdns-auth-console.log" >&2
URL=$("$EDGEWATCH" --data-dir "$PGDIR" db url)
CLUSTER=$("$EDGEWATCH" --data-dir "$PGDIR" db status | awk '/^cluster:/ { print $2 }')
run "$BENCH" --database-url "$URL" --seed "$SEED" --pairs-only >"$OUT/pairs-dns.json"

say "cross-DC links: each consumer to the replicas of its shared services in the other DCs"
# A links export as a CMDB would publish it: per consumer container, the addresses of
# every provider, in another DC, of each service (but `api`, always on the consumer's own
# host) it has an edge for.
run psql -X -q -A -t -F' ' -v ON_ERROR_STOP=1 -f bench/paths_links.sql "$URL" >"$FLEET/links.txt"
run "$EDGEWATCH" --data-dir "$PGDIR" cmdb import "$FLEET/links.txt" >&2 2>"$OUT/links-import.err" \
  || { cat "$OUT/links-import.err" >&2; die "cmdb import of the links failed"; }
wc -l <"$FLEET/links.txt" >"$OUT/links-containers.txt"
awk '{ n += NF - 1 } END { print n }' "$FLEET/links.txt" >"$OUT/links-count.txt"

say "one day ($DAY), every ${SAMPLE}th pair, $BATCH runs per record_runs call, $WRITERS writer(s)"
pg0=$(pg_cpu "$CLUSTER")
run /usr/bin/time -v -o "$OUT/time-write.txt" "$BENCH" --database-url "$URL" --seed "$SEED" --day "$DAY" \
  --sample "$SAMPLE" --batch "$BATCH" --writers "$WRITERS" >"$OUT/write.json"
sleep 1 # let the postmaster reap the writers' backends, so their CPU is counted
pg1=$(pg_cpu "$CLUSTER")
echo "$pg0 $pg1" >"$OUT/pg-cpu-write.txt"

# The story pair the writer chose: a cross-DC pair whose route changed, windows before,
# during and after.
story=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["diff_pair"]
print(d["src"], d["dst"], *d["at"], d["pair_id"]) if d else None' "$OUT/write.json")
[ -n "$story" ] || die "no pair of the sample changed route during the day: lower BENCH_PATHS_SAMPLE"
read -r SRC DST AT1 AT2 AT3 PAIR_ID <<<"$story"
say "route diff $SRC $DST --at $AT1 --at $AT2 --at $AT3 --window 5m, $REPS times each (CLI, API)"
diff_cmd=("$EDGEWATCH" --database-url "$URL" route diff "$SRC" "$DST" --at "$AT1" --at "$AT2" --at "$AT3" \
  --window 5m --format json)
typed "${diff_cmd[@]}" >>"$COMMANDS"
"${diff_cmd[@]}" >"$OUT/diff.json"
python3 - "$REPS" "$OUT/diff-cli.json" "${diff_cmd[@]}" <<'PY'
import json, subprocess, sys, time
reps, dest, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
ms = []
for _ in range(reps):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    ms.append((time.perf_counter() - t) * 1000)
ms.sort()
json.dump({"reps": reps, "ms": ms, "median_ms": ms[len(ms) // 2], "max_ms": ms[-1]}, open(dest, "w"))
print(f"route diff (CLI): median {ms[len(ms) // 2]:.1f} ms, max {ms[-1]:.1f} ms", file=sys.stderr)
PY

printf '%s &\n' "$(typed "$EDGEWATCH" --database-url "$URL" serve --listen 127.0.0.1:0)" >>"$COMMANDS"
"$EDGEWATCH" --database-url "$URL" serve --listen 127.0.0.1:0 >"$OUT/serve.out" 2>"$OUT/serve.err" &
SERVE_PID=$!
addr=
for _ in $(seq 300); do
  addr=$(sed -n 's|^listening on http://\(127\.0\.0\.1:[0-9]*\)$|\1|p' "$OUT/serve.out")
  [ -z "$addr" ] || break
  kill -0 "$SERVE_PID" 2>/dev/null || { cat "$OUT/serve.err" >&2; die "edgewatch serve exited"; }
  sleep 0.2
done
[ -n "$addr" ] || die "edgewatch serve did not say where it listens within 60 s"
api="http://$addr/api/v1/routes/diff?src=$SRC&dst=$DST&at=$AT1,$AT2,$AT3&window=5m"
echo "curl -s \"${api/$addr/127.0.0.1:PORT}\"  # x $REPS, timed (curl's time_total), after one untimed" >>"$COMMANDS"
curl -sf "$api" >"$OUT/diff-api.json" || die "GET $api failed"
for _ in $(seq "$REPS"); do curl -sf -o /dev/null -w '%{time_total}\n' "$api"; done >"$OUT/diff-api-secs.txt"
stop_serve

typed psql "$URL" -c "EXPLAIN (ANALYZE, BUFFERS) <runs_between's query for pair $PAIR_ID, window 2>" >>"$COMMANDS"
psql -X -A -t -v ON_ERROR_STOP=1 "$URL" >"$OUT/explain.txt" <<SQL
EXPLAIN (ANALYZE, BUFFERS)
SELECT starts, data FROM trace_blocks WHERE pair_id = $PAIR_ID AND starts > timestamptz '$AT2' - interval '6 hours'
  AND starts < timestamptz '$AT2' + interval '5 minutes' ORDER BY starts;
SQL
run "$EDGEWATCH" --data-dir "$PGDIR" db stop >&2
cut -d' ' -f1-3 /proc/loadavg >"$OUT/loadavg-end.txt" 2>/dev/null || true

python3 - "$OUT" "$RESULTS/paths-store.json" "$STORAGE" "$PGDIR" "$LINES" "$(( $(date +%s) - STARTED ))" \
  "$ROOT/" "$BENCH_DIR" "$INVOCATION" <<'PY'
import json, os, re, subprocess, sys

out, dest, storage, pgdir, lines, secs, root, bench_dir, invocation = sys.argv[1:]
text = open(f"{out}/time-write.txt").read()


def field(name):
    return re.search(re.escape(name) + r":\s*(\S+)", text).group(1)


wall = 0.0
for part in field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":"):
    wall = wall * 60 + float(part)
pg0, pg1 = map(float, open(f"{out}/pg-cpu-write.txt").read().split())
api = sorted(float(x) * 1000 for x in open(f"{out}/diff-api-secs.txt").read().split())
commands = [c.replace(root, "./").replace(bench_dir, "$BENCH_DIR") for c in open(f"{out}/commands.txt").read().splitlines()]
result = {
    "dns_pairs": json.load(open(f"{out}/pairs-dns.json"))["pairs"],
    "links": {"containers": int(open(f"{out}/links-containers.txt").read()),
              "links": int(open(f"{out}/links-count.txt").read())},
    "dns_lines": int(lines),
    "write": json.load(open(f"{out}/write.json")),
    "write_process": {"wall_secs": wall, "user_secs": float(field("User time (seconds)")),
                      "sys_secs": float(field("System time (seconds)")),
                      "max_rss_kb": int(field("Maximum resident set size (kbytes)")), "pg_cpu_secs": pg1 - pg0},
    "diff_cli": json.load(open(f"{out}/diff-cli.json")),
    "diff_api": {"reps": len(api), "ms": api, "median_ms": api[len(api) // 2], "max_ms": api[-1]},
    "diff_summaries": [c["summary"] for c in json.load(open(f"{out}/diff.json"))["comparisons"]],
    "explain": open(f"{out}/explain.txt").read(),
    "pg_storage": storage,
    "pg_dir": pgdir.replace(bench_dir, "$BENCH_DIR"),
    "loadavg": [open(f"{out}/loadavg-{w}.txt").read().strip() for w in ("start", "end")],
    "seconds": int(secs),
    "invocation": invocation,
    "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    + (" + uncommitted changes" if subprocess.run(["git", "status", "--porcelain"], capture_output=True,
                                                  text=True).stdout.strip() else ""),
    "machine": {
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "postgres": subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip(),
    },
    "commands": commands,
}
json.dump(result, open(dest, "w"), indent=1)
print(f"paths bench: wrote {dest}", file=sys.stderr)
PY
