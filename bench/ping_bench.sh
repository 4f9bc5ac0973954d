#!/usr/bin/env bash
# `edgewatch ping` beside fping (issue 18): the same BENCH_PING_TARGETS loopback addresses
# (127.0.x.y), BENCH_PING_COUNT echo requests each BENCH_PING_PERIOD ms apart, in the same
# run, taking turns:
#
#   fping -q -c5 -p20 -i0 -f TARGETS
#   edgewatch ping --count 5 --period 20 --format json -f TARGETS     (release build)
#
# each timed by GNU time (wall clock, user + system CPU, peak RSS), BENCH_PING_RUNS times.
# Writes RESULTS_DIR/ping-bench.json (bench/ping_section.py turns it into the section of
# docs/BENCHMARKS.md) and the runs' outputs under RESULTS_DIR/ping-bench/.
#
#   bash bench/ping_bench.sh [RESULTS_DIR]        (default $BENCH_DIR/results)
#
# Knobs (environment):
#   BENCH_DIR            scratch directory (default ${TMPDIR:-/tmp}/edgewatch-bench)
#   BENCH_PING_TARGETS   loopback targets (default 10000; at most 65,000: 127.0.0.1 upwards)
#   BENCH_PING_COUNT     echo requests per target (default 5)
#   BENCH_PING_PERIOD    ms between one target's requests (default 20)
#   BENCH_PING_RUNS      timed runs of each tool, alternating (default 3)
#
# Traffic: 127.0.0.0/8 only (edgewatch's default allow-list). Needs raw ICMP sockets (root)
# or the unprivileged ICMP socket for edgewatch; fping from scripts/install-deps.sh bench
# (run here when fping is missing).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
export BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/edgewatch-bench}
RESULTS=${1:-$BENCH_DIR/results}
TARGETS=${BENCH_PING_TARGETS:-10000}
COUNT=${BENCH_PING_COUNT:-5}
PERIOD=${BENCH_PING_PERIOD:-20}
RUNS=${BENCH_PING_RUNS:-3}
EDGEWATCH=$ROOT/target/release/edgewatch
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

command -v fping >/dev/null || scripts/install-deps.sh bench >&2
[ -x "$EDGEWATCH" ] || cargo build --release --locked --bin edgewatch >&2
OUTDIR=$RESULTS/ping-bench
rm -rf "$OUTDIR"
mkdir -p "$OUTDIR"
COMMANDS=$OUTDIR/commands.txt
: >"$COMMANDS"

# 127.0.0.1, 127.0.0.2, … 127.0.0.250, 127.0.1.1, …: 250 a /24, no .0 or .255.
LIST=$OUTDIR/targets.txt
python3 - "$TARGETS" >"$LIST" <<'PY'
import sys
n = int(sys.argv[1])
print("\n".join(f"127.0.{i // 250}.{i % 250 + 1}" for i in range(n)))
PY
echo "python3 -c 'print(\"\\n\".join(f\"127.0.{i // 250}.{i % 250 + 1}\" for i in range($TARGETS)))' >targets.txt" >>"$COMMANDS"

timed() {
  local name=$1
  shift
  typed /usr/bin/time -v "$@" >>"$COMMANDS"
  local status=0
  /usr/bin/time -v -o "$OUTDIR/$name.time" "$@" >"$OUTDIR/$name.out" 2>"$OUTDIR/$name.err" || status=$?
  echo "$status" >"$OUTDIR/$name.status"
  echo "  $name: exit $status, $(grep -E 'Elapsed \(wall' "$OUTDIR/$name.time" | awk '{print $NF}') wall" >&2
}

for i in $(seq "$RUNS"); do
  # fping -q prints its per-target summary on stderr.
  timed "fping-$i" fping -q -c "$COUNT" -p "$PERIOD" -i0 -f "$LIST"
  timed "edgewatch-$i" "$EDGEWATCH" ping --count "$COUNT" --period "$PERIOD" --format json -f "$LIST"
done

python3 - "$OUTDIR" "$RUNS" "$TARGETS" "$COUNT" "$PERIOD" "$(fping --version 2>&1 | head -1)" \
  >"$RESULTS/ping-bench.json" <<'PY'
import json, os, re, sys

out, runs, targets, count, period, fping_version = sys.argv[1:7]
runs = int(runs)


def quantiles(xs):
    xs = sorted(xs)
    if not xs:
        return None
    at = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]
    return {"p5": at(0.05), "p50": at(0.5), "p95": at(0.95), "max": xs[-1]}


def gnu_time(path):
    t = {}
    for line in open(path):
        k, _, v = line.strip().rpartition(": ")
        t[k] = v
    wall = t["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")
    secs = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall)))
    return {"wall_s": secs, "user_s": float(t["User time (seconds)"]), "sys_s": float(t["System time (seconds)"]),
            "cpu_s": float(t["User time (seconds)"]) + float(t["System time (seconds)"]),
            "rss_kb": int(t["Maximum resident set size (kbytes)"])}


LINE = re.compile(r"^(\S+)\s+: xmt/rcv/%loss = (\d+)/(\d+)/(\d+)%(?:, min/avg/max = ([\d.]+)/([\d.]+)/([\d.]+))?")


def fping_targets(path):
    rows = {}
    for line in open(path):
        m = LINE.match(line)
        if m:
            rows[m[1]] = {"sent": int(m[2]), "received": int(m[3]), "loss_pct": float(m[4]),
                          "avg_ms": float(m[6]) if m[6] else None}
    return rows


def edgewatch_targets(path):
    rows = {}
    for r in json.load(open(path)):
        rows[r["target"]] = {"sent": r["sent"], "received": r["received"], "loss_pct": r["loss_pct"],
                             "avg_ms": r["rtt_avg_ms"]}
    return rows


result = {"targets": int(targets), "count": int(count), "period_ms": int(period), "runs": [],
          "fping_version": fping_version,
          "commands": open(os.path.join(out, "commands.txt")).read().splitlines()}
for i in range(1, runs + 1):
    run = {}
    for tool, parse in (("fping", fping_targets), ("edgewatch", edgewatch_targets)):
        name = f"{tool}-{i}"
        rows = parse(os.path.join(out, name + (".err" if tool == "fping" else ".out")))
        run[tool] = dict(gnu_time(os.path.join(out, name + ".time")),
                         status=int(open(os.path.join(out, name + ".status")).read()),
                         answered=sum(1 for r in rows.values() if r["received"] > 0),
                         sent=sum(r["sent"] for r in rows.values()),
                         received=sum(r["received"] for r in rows.values()),
                         rows=len(rows),
                         avg_ms=quantiles(r["avg_ms"] for r in rows.values() if r["avg_ms"] is not None))
        run[tool + "_rows"] = rows
    f, e = run.pop("fping_rows"), run.pop("edgewatch_rows")
    same = [t for t in f if t in e]
    run["compared"] = len(same)
    run["received_differs"] = sum(1 for t in same if f[t]["received"] != e[t]["received"])
    run["loss_differs"] = sum(1 for t in same if f[t]["loss_pct"] != round(e[t]["loss_pct"]))
    run["only_one_side"] = len(set(f) ^ set(e))
    # edgewatch's avg RTT minus fping's, target by target.
    run["avg_diff_ms"] = quantiles(e[t]["avg_ms"] - f[t]["avg_ms"] for t in same
                                   if e[t]["avg_ms"] is not None and f[t]["avg_ms"] is not None)
    result["runs"].append(run)
json.dump(result, sys.stdout)
PY
echo "ping bench: $RESULTS/ping-bench.json" >&2
