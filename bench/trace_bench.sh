#!/usr/bin/env bash
# The path-tracing benchmark (issue 13): edgewatch's tracer (probers::trace::Tracer, through
# probers/examples/trace_bench.rs) and scamper trace the same 1,000 destinations, ICMP
# Paris, 3 probes per TTL, at the same packet rate, from the same source namespace of a
# routed chain of namespaces this script makes:
#
#   S ── R1 ── R2 ── R3 ── R4 ── D        (D holds every destination: 198.19.0.0/22)
#
# Each is timed by GNU time inside S (wall clock, user + system CPU, peak RSS of the
# process), BENCH_TRACE_REPS times per rate; both tools' paths are compared destination by
# destination. Writes RESULTS_DIR/trace-bench.json (bench/trace_section.py turns it into
# the section of docs/BENCHMARKS.md) and the runs' files under RESULTS_DIR/trace-bench/.
#
#   sudo bash bench/trace_bench.sh [RESULTS_DIR]       (default $BENCH_DIR/results)
#
# Knobs (environment):
#   BENCH_DIR              scratch directory (default ${TMPDIR:-/tmp}/edgewatch-bench)
#   BENCH_TRACE_TARGETS    destinations (default 1000; at most 1022, the hosts of the /22)
#   BENCH_TRACE_ROUTERS    routers in the chain (default 4)
#   BENCH_TRACE_PPS        probes per second, the same for both tools; one round of runs per
#                          rate (default "1000 10000": edgewatch's default, scamper's highest)
#   BENCH_TRACE_SETTINGS   edgewatch's settings, one set of runs each: INTERVAL_MS, the least time
#                          between a trace's rounds, then /own for the tracer on its own thread
#                          (as agents and workers run it), or /N for N runtime worker threads
#                          (else one per core). Default "1000/own 0/own 1000 0/1": its defaults
#                          as agents and workers run it; rounds back to back, as scamper's; the
#                          defaults on the caller's runtime (as `edgewatch trace`); and rounds
#                          back to back on a one-thread runtime
#   BENCH_TRACE_REPS       timed runs of each tool and setting; the medians are reported
#                          (default 5)
#
# Root only (network namespaces, raw sockets). Every address probed is inside the
# namespaces this script makes, and they are removed on the way out, whatever happens
# (and leftovers of an earlier run that died are swept first). Needs iproute2 and scamper
# (installed with scripts/install-deps.sh bench when missing), GNU time at /usr/bin/time,
# and target/release/examples/trace_bench (built here when missing).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/edgewatch-bench}
RESULTS=${1:-$BENCH_DIR/results}
TARGETS=${BENCH_TRACE_TARGETS:-1000}
ROUTERS=${BENCH_TRACE_ROUTERS:-4}
PPS_LIST=${BENCH_TRACE_PPS:-1000 10000}
SETTINGS=${BENCH_TRACE_SETTINGS:-1000/own 0/own 1000 0/1}
REPS=${BENCH_TRACE_REPS:-5}
TRACE_BENCH=$ROOT/target/release/examples/trace_bench
STARTED=$(date +%s)
# The probe settings both tools use (scamper: -q 3 -Q, -w 1, -m 30; its gap limit is 5).
PROBES=3
TIMEOUT_SECS=1
MAX_TTL=30
# Link n (n = 1 for S–R1, …) is 198.18.n.0/24, its nearer side .1, its farther side .2.
DEST_NET=198.19.0.0/22
PREFIX=ewbench
BASE=$PREFIX$$

say() { printf '\n== trace bench: %s\n' "$*" >&2; }
die() { echo "trace bench: $*" >&2; exit 1; }
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
COMMANDS=
run() {
  typed "$@" >>"$COMMANDS"
  "$@"
}

[ "$(id -u)" = 0 ] || die "needs root (network namespaces, raw sockets): sudo BENCH_ONLY=trace make bench"
[[ $TARGETS =~ ^[1-9][0-9]*$ ]] && [ "$TARGETS" -le 1022 ] || die "BENCH_TRACE_TARGETS=$TARGETS is not within 1..1022"
[[ $ROUTERS =~ ^[1-9]$ ]] || die "BENCH_TRACE_ROUTERS=$ROUTERS is not within 1..9"
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "BENCH_TRACE_REPS=$REPS is not a positive number"
for pps in $PPS_LIST; do
  [[ $pps =~ ^[1-9][0-9]*$ ]] && [ "$pps" -le 10000 ] || die "BENCH_TRACE_PPS: $pps is not within 1..10000 (scamper's range)"
done
for setting in $SETTINGS; do
  [[ $setting =~ ^[0-9]+(/[1-9][0-9]*|/own)?$ ]] \
    || die "BENCH_TRACE_SETTINGS: $setting is not INTERVAL_MS, INTERVAL_MS/THREADS or INTERVAL_MS/own"
done
/usr/bin/time -f %M true >/dev/null 2>&1 || die "GNU time is missing at /usr/bin/time (Debian package 'time')"
command -v python3 >/dev/null || die "python3 is missing"
scripts/install-deps.sh bench
command -v scamper >/dev/null || die "scamper is missing (scripts/install-deps.sh bench)"
if [ ! -x "$TRACE_BENCH" ]; then
  say "release build"
  cargo build --release --locked -p probers --example trace_bench
fi

NODES=(s)
for i in $(seq "$ROUTERS"); do NODES+=("r$i"); done
NODES+=(d)
ns() { echo "$BASE-$1"; }

# The namespaces: this run's, and those of earlier runs whose process is gone.
MADE=()
cleanup() {
  local status=$?
  for node in "${MADE[@]}"; do ip netns del "$(ns "$node")" 2>/dev/null || true; done
  exit "$status"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
for name in $(ip netns list | awk '{ print $1 }'); do
  [[ $name =~ ^$PREFIX([0-9]+)- ]] || continue
  [ -d "/proc/${BASH_REMATCH[1]}" ] || ip netns del "$name" 2>/dev/null || true
done

rm -rf "$RESULTS/trace-bench"
OUT=$RESULTS/trace-bench
mkdir -p "$OUT"
COMMANDS=$OUT/commands.txt
: >"$COMMANDS"
cut -d' ' -f1-3 /proc/loadavg >"$OUT/loadavg-start.txt" 2>/dev/null || true

say "lab: S, $ROUTERS routers, D with $DEST_NET ($TARGETS destinations)"
for node in "${NODES[@]}"; do
  MADE+=("$node")
  ip netns add "$(ns "$node")"
  ip -n "$(ns "$node")" link set lo up
  ip netns exec "$(ns "$node")" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
done
for n in $(seq $(( ${#NODES[@]} - 1 ))); do
  near=${NODES[$((n - 1))]} far=${NODES[$n]}
  ip -n "$(ns "$near")" link add "to-$far" type veth peer name "from-$near" netns "$(ns "$far")"
  ip -n "$(ns "$near")" addr add "198.18.$n.1/24" dev "to-$far"
  ip -n "$(ns "$far")" addr add "198.18.$n.2/24" dev "from-$near"
  ip -n "$(ns "$near")" link set "to-$far" up
  ip -n "$(ns "$far")" link set "from-$near" up
done
# Forward: the destinations' /22 link by link to D; back: every router's default route
# points at S's side. D holds every address of the /22 (a local route on lo).
ip -n "$(ns s)" route add default via 198.18.1.2
for i in $(seq "$ROUTERS"); do
  r=$(ns "r$i")
  ip -n "$r" route add "$DEST_NET" via "198.18.$((i + 1)).2"
  ip -n "$r" route add default via "198.18.$i.1"
  # Forward, answer every probe from the address it came in on (no per-peer limit, and a
  # global one far above any rate here).
  ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.icmp_ratelimit=0 \
    net.ipv4.icmp_errors_use_inbound_ifaddr=1 net.ipv4.icmp_msgs_per_sec=100000 net.ipv4.icmp_msgs_burst=100000
done
ip -n "$(ns d)" route add default via "198.18.$((ROUTERS + 1)).1"
ip -n "$(ns d)" route add local "$DEST_NET" dev lo
ip netns exec "$(ns d)" sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv4.icmp_msgs_per_sec=100000 net.ipv4.icmp_msgs_burst=100000
python3 -c 'import ipaddress, sys
hosts = ipaddress.ip_network(sys.argv[1]).hosts()
print("\n".join(str(next(hosts)) for _ in range(int(sys.argv[2]))))' "$DEST_NET" "$TARGETS" >"$OUT/targets.txt"
SRC=$(ns s)
# Every probe leaves from S, whose only way out is the chain.
first=$(head -n1 "$OUT/targets.txt")
ip -n "$SRC" route get "$first" | grep -q ' dev to-r1 ' || die "S does not route $first into the chain"
# Settle: neighbours resolved, every hop answering, before anything is timed.
settled=0
for _ in $(seq 50); do
  if ip netns exec "$SRC" scamper -O json -c "trace -P icmp-paris -q 1 -w 1 -m $MAX_TTL" -i "$first" 2>/dev/null \
    | grep -q '"stop_reason":"COMPLETED"'; then settled=1; break; fi
  sleep 0.2
done
[ "$settled" = 1 ] || die "the chain does not carry a trace from S to $first"

# One timed run: TOOL LABEL PPS REP COMMAND…, in S, under GNU time.
timed() {
  local tool=$1 label=$2 pps=$3 rep=$4
  shift 4
  local base=$OUT/$label-$pps-$rep
  [ "$rep" -gt 1 ] || typed ip netns exec '$NS_S' "$@" >>"$COMMANDS"
  ip netns exec "$SRC" /usr/bin/time -o "$base.time" \
    -f '{"wall_secs": %e, "user_secs": %U, "sys_secs": %S, "max_rss_kb": %M, "exit": %x}' "$@" \
    >"$base.out" 2>"$base.err" || { cat "$base.err" >&2; die "$label at $pps pps failed"; }
  printf '%s %s %s %s %s\n' "$tool" "$label" "$pps" "$rep" "$base" >>"$OUT/runs.txt"
  echo "$label at $pps pps, run $rep: $(cat "$base.time")" >&2
}

: >"$OUT/runs.txt"
for pps in $PPS_LIST; do
  for rep in $(seq "$REPS"); do
    say "$pps probes per second, run $rep of $REPS"
    for setting in $SETTINGS; do
      interval=${setting%/*} threads=()
      label=edgewatch-interval-$interval
      if [[ $setting == */own ]]; then
        threads=(--own-thread)
        label=$label-own-thread
      elif [[ $setting == */* ]]; then
        threads=(--worker-threads "${setting#*/}")
        label=$label-threads-${setting#*/}
      fi
      timed edgewatch "$label" "$pps" "$rep" "$TRACE_BENCH" --allow "$DEST_NET" --targets "$OUT/targets.txt" \
        --probes "$PROBES" --pps "$pps" --timeout-ms $((TIMEOUT_SECS * 1000)) --interval-ms "$interval" \
        --max-ttl "$MAX_TTL" "${threads[@]}" --paths "$OUT/$label-$pps-$rep.paths"
    done
    timed scamper scamper "$pps" "$rep" scamper -O json -o "$OUT/scamper-$pps-$rep.json" -p "$pps" -w 0 \
      -c "trace -P icmp-paris -q $PROBES -Q -w $TIMEOUT_SECS -m $MAX_TTL" -f "$OUT/targets.txt"
  done
done
cut -d' ' -f1-3 /proc/loadavg >"$OUT/loadavg-end.txt" 2>/dev/null || true
sed -i "s|$OUT/|\$OUT/|g; s|$ROOT/|./|g" "$COMMANDS"

python3 - "$OUT" "$RESULTS/trace-bench.json" "$TARGETS" "$ROUTERS" "$PROBES" "$TIMEOUT_SECS" "$MAX_TTL" "$REPS" \
  "$DEST_NET" "$(( $(date +%s) - STARTED ))" "$(scamper -v 2>&1 | awk '{ print $NF }')" "$(date -u '+%Y-%m-%d %H:%M UTC')" \
  "$(git rev-parse --short HEAD 2>/dev/null || echo '?')$([ -z "$(git status --porcelain 2>/dev/null)" ] || echo ' + uncommitted changes')" <<'PY'
import json, statistics, sys

out, dest, targets, routers, probes, timeout, max_ttl, reps, dest_net, secs, scamper_version, run_at, commit = sys.argv[1:]


def paths_edgewatch(base):
    """{destination: (reached, answering TTLs, highest answering TTL)} of --paths."""
    paths = {}
    for line in open(f"{base}.paths"):
        ip, state, hops, last = line.split()
        paths[ip] = (state == "reached", int(hops), int(last))
    return paths


def scamper_traces(path):
    """Per destination: reached, answering TTLs, highest answering TTL; and probes sent and
    answers recorded."""
    paths, probes, answers = {}, 0, 0
    for line in open(path):
        t = json.loads(line)
        if t.get("type") != "trace":
            continue
        ttls = {h["probe_ttl"] for h in t.get("hops", [])}
        paths[t["dst"]] = (t["stop_reason"] == "COMPLETED", len(ttls), max(ttls, default=0))
        probes += t.get("probe_count", 0)
        answers += len(t.get("hops", []))
    return paths, probes, answers


runs, paths = [], {}
for line in open(f"{out}/runs.txt"):
    tool, label, pps, rep, base = line.split()
    row = {"tool": tool, "label": label, "pps": int(pps), "rep": int(rep)}
    row.update(json.load(open(f"{base}.time")))
    if tool == "edgewatch":
        figures = json.loads(open(f"{base}.out").read().strip().splitlines()[-1])
        row.update({k: figures[k] for k in ("reached", "hops", "path_ttls", "probes_sent", "answers", "errors",
                                            "interval_ms", "worker_threads", "own_thread")})
        row["cycle_secs"] = figures["wall_secs"]
        p = paths_edgewatch(base)
    else:
        p, row["probes_sent"], row["answers"] = scamper_traces(f"{out}/scamper-{pps}-{rep}.json")
        row["reached"] = sum(r for r, _, _ in p.values())
        row["hops"] = sum(h for _, h, _ in p.values())
        row["path_ttls"] = sum(last for _, _, last in p.values())
    row["cpu_secs"] = round(row["user_secs"] + row["sys_secs"], 2)
    runs.append(row)
    paths[(label, int(pps), int(rep))] = p

# Per tool, setting and rate: the median of each figure over the runs.
configs = {}
for r in runs:
    configs.setdefault((r["label"], r["pps"]), []).append(r)
summary = []
for (label, pps), rs in configs.items():
    med = lambda k: statistics.median(r[k] for r in rs)
    s = {"tool": rs[0]["tool"], "label": label, "pps": pps, "runs": len(rs),
         "interval_ms": rs[0].get("interval_ms"), "worker_threads": rs[0].get("worker_threads"),
         "own_thread": rs[0].get("own_thread"),
         "wall_secs": med("wall_secs"), "wall_min": min(r["wall_secs"] for r in rs),
         "wall_max": max(r["wall_secs"] for r in rs), "cpu_secs": med("cpu_secs"),
         "user_secs": med("user_secs"), "sys_secs": med("sys_secs"), "max_rss_kb": med("max_rss_kb"),
         "reached": med("reached"), "hops": med("hops"), "path_ttls": med("path_ttls"),
         "probes_sent": med("probes_sent"), "answers": med("answers"),
         "lost_answers_max": max(r["probes_sent"] - r["answers"] for r in rs)}
    # Destination by destination, each edgewatch run beside the scamper run of the same rate
    # and repetition: same reached state and same highest answering TTL.
    if s["tool"] == "edgewatch":
        agree = []
        for r in rs:
            mine, theirs = paths[(label, pps, r["rep"])], paths[("scamper", pps, r["rep"])]
            agree.append(sum(1 for ip, (reached, _, last) in mine.items()
                             if ip in theirs and theirs[ip][0] == reached and theirs[ip][2] == last))
        s["agree_with_scamper"] = min(agree)
    summary.append(s)

result = {
    "targets": int(targets), "routers": int(routers), "dest_net": dest_net, "probes": int(probes),
    "timeout_secs": int(timeout), "max_ttl": int(max_ttl), "reps": int(reps),
    "scamper_version": scamper_version, "run_at": run_at, "commit": commit,
    "loadavg": [open(f"{out}/loadavg-{w}.txt").read().strip() for w in ("start", "end")],
    "bench_secs": int(secs),
    "summary": summary, "runs": runs,
    "commands": open(f"{out}/commands.txt").read().splitlines(),
}
with open(dest, "w") as f:
    json.dump(result, f, indent=1)
    f.write("\n")
for s in summary:
    print(f"{s['label']} at {s['pps']} pps: wall {s['wall_secs']:.2f} s, CPU {s['cpu_secs']:.2f} s, "
          f"RSS {s['max_rss_kb'] / 1024:.1f} MB, reached {s['reached']:.0f}, hops {s['hops']:.0f}", file=sys.stderr)
PY
echo "trace bench: wrote $RESULTS/trace-bench.json in $(( $(date +%s) - STARTED )) s" >&2
