#!/usr/bin/env bash
# Agent check-ins against a real `edgewatch serve` (examples/agent_swarm.rs), in one of two
# modes, on an embedded cluster of its own (BENCH_DIR/pg-agents):
#
#   bash bench/agents_bench.sh RESULTS_DIR bench   # section `agents` of `make bench`
#   bash bench/agents_bench.sh RESULTS_DIR soak    # `make soak-agents`
#
# bench: BENCH_AGENTS agents (default 5000) with BENCH_AGENT_EDGES edges each (default 5)
#   check in back to back (`--cycle 0`), at most BENCH_AGENTS_CONNECTIONS at a time
#   (default 32), for BENCH_AGENTS_SECS seconds (default 30): the server's ceiling in
#   check-ins per second, with the latency of each check-in and the CPU that serve,
#   PostgreSQL and the swarm each used.
# soak: SOAK_AGENTS agents (default 5000), ~5 edges each, on a SOAK_CYCLE cycle (default
#   10s; serve judges at that interval too) for SOAK_MINUTES minutes (default 60), every
#   SOAK_RESEND_EVERY-th results body sent twice (default 100); serve's RSS sampled every
#   SOAK_RSS_EVERY seconds (default 30), the tables' sizes at start and end.
#
# Both end with the exactly-once check: the rows of probe_results written by agents, and
# the distinct (prober, edge, time) among them, must both equal the results the server
# acknowledged to the swarm; a mismatch fails the script. Results go to RESULTS_DIR
# (agents-bench.json or agents-soak.json, with the commands), which bench/agents_section.py
# turns into the sections "Agent check-ins" and "Agent soak" of docs/BENCHMARKS.md.
#
# Traffic: HTTP from the swarm to the serve on 127.0.0.1 only; the swarm sends no probes.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
RESULTS=${1:?usage: agents_bench.sh RESULTS_DIR bench|soak}
MODE=${2:?usage: agents_bench.sh RESULTS_DIR bench|soak}
case $MODE in bench | soak) ;; *) echo "mode: bench or soak, not $MODE" >&2; exit 2 ;; esac
export BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/edgewatch-bench}
SEED=${BENCH_SEED:-1}
EDGEWATCH=$ROOT/target/release/edgewatch
SWARM=$ROOT/target/release/examples/agent_swarm
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

if [ "$MODE" = bench ]; then
  AGENTS=${BENCH_AGENTS:-5000}
  EDGES=${BENCH_AGENT_EDGES:-5}
  CONNECTIONS=${BENCH_AGENTS_CONNECTIONS:-32}
  SECS=${BENCH_AGENTS_SECS:-30}
  CYCLE=0
  SERVE_INTERVAL=120s
  RESEND=0
else
  AGENTS=${SOAK_AGENTS:-5000}
  EDGES=${SOAK_AGENT_EDGES:-5}
  CONNECTIONS=${SOAK_CONNECTIONS:-64}
  MINUTES=${SOAK_MINUTES:-60}
  SECS=$((MINUTES * 60))
  CYCLE=${SOAK_CYCLE:-10s}
  SERVE_INTERVAL=$CYCLE
  RESEND=${SOAK_RESEND_EVERY:-100}
  RSS_EVERY=${SOAK_RSS_EVERY:-30}
fi

mkdir -p "$RESULTS" "$BENCH_DIR"
COMMANDS=$RESULTS/commands-agents-$MODE.txt
: >"$COMMANDS"
run() {
  typed "$@" >>"$COMMANDS"
  "$@"
}

DATA=$BENCH_DIR/pg-agents
SERVE_PID=
SAMPLER_PID=
cleanup() {
  local status=$?
  [ -z "$SAMPLER_PID" ] || kill "$SAMPLER_PID" 2>/dev/null || true
  if [ -n "$SERVE_PID" ]; then
    kill -INT "$SERVE_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.2; done
    kill -TERM "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
  fi
  "$EDGEWATCH" --data-dir "$DATA" db stop >/dev/null 2>&1 || true
  [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$DATA" "$BENCH_DIR/agents.tsv"
  exit "$status"
}
trap cleanup EXIT

# CPU seconds (user + system) of one process, and of a cluster: its postmaster, the
# children it reaped, and the live ones (the server's pooled backends live all along).
proc_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}
pg_cpu() {
  local pid
  pid=$(head -n1 "$1/postmaster.pid" 2>/dev/null) || { echo 0; return; }
  # (processes that end between the glob and the read make cat fail: not an error here)
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v hz="$(getconf CLK_TCK)" -v pm="$pid" '
    { line = $0; sub(/^.*\) /, "", line); split(line, f, " ")
      if ($1 == pm) t += f[12] + f[13] + f[14] + f[15]; else if (f[2] == pm) t += f[12] + f[13] }
    END { print t / hz }'
}
rss_mb() { awk '/^VmRSS:/ { print $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo 0; }
sizes() {
  psql -X -A -t -F' ' "$URL" -c "SELECT r.relname, coalesce(sum(pg_total_relation_size(c.oid)), 0)
    FROM (VALUES ('probe_results'), ('probe_hourly'), ('edge_health'), ('edge_events'), ('agent_reports'),
                 ('edges'), ('nodes')) AS r(relname)
    LEFT JOIN pg_class p ON p.relname = r.relname
    LEFT JOIN pg_inherits i ON i.inhparent = p.oid
    LEFT JOIN pg_class c ON c.oid = coalesce(i.inhrelid, p.oid)
    GROUP BY r.relname ORDER BY r.relname"
}

rm -rf "$DATA"
run "$EDGEWATCH" --data-dir "$DATA" db start >&2
run "$EDGEWATCH" --data-dir "$DATA" migrate >&2
URL=$("$EDGEWATCH" --data-dir "$DATA" db url)
CLUSTER=$("$EDGEWATCH" --data-dir "$DATA" db status | awk '/^cluster:/ { print $2 }')
t0=$(date +%s.%N)
run psql -X -q -A -t -v ON_ERROR_STOP=1 -v seed="$SEED" -v agents="$AGENTS" -v edges="$EDGES" \
  -v tokens="$BENCH_DIR/agents.tsv" -f bench/agents_fill.sql "$URL" >"$RESULTS/agents-fill.json"
t1=$(date +%s.%N)
echo "fleet made in $(python3 -c "print(round($t1 - $t0, 1))") s: $(cat "$RESULTS/agents-fill.json")" >&2
sizes >"$RESULTS/agents-$MODE-sizes-start.txt"

printf '%s &\n' "$(typed "$EDGEWATCH" --database-url "$URL" serve --listen 127.0.0.1:0 --interval "$SERVE_INTERVAL")" \
  >>"$COMMANDS"
"$EDGEWATCH" --database-url "$URL" serve --listen 127.0.0.1:0 --interval "$SERVE_INTERVAL" \
  >"$RESULTS/agents-serve.out" 2>"$RESULTS/agents-serve.err" &
SERVE_PID=$!
addr=
for _ in $(seq 300); do
  addr=$(sed -n 's|^listening on http://\(127\.0\.0\.1:[0-9]*\)$|\1|p' "$RESULTS/agents-serve.out")
  [ -z "$addr" ] || break
  kill -0 "$SERVE_PID" 2>/dev/null || { cat "$RESULTS/agents-serve.err" >&2; echo "edgewatch serve exited" >&2; exit 1; }
  sleep 0.2
done
[ -n "$addr" ] || { echo "edgewatch serve did not say where it listens within 60 s" >&2; exit 1; }

if [ "$MODE" = soak ]; then
  # serve's RSS every RSS_EVERY seconds: seconds since the start, MB.
  (
    start=$(date +%s)
    while kill -0 "$SERVE_PID" 2>/dev/null; do
      echo "$(($(date +%s) - start)) $(rss_mb "$SERVE_PID")"
      sleep "$RSS_EVERY"
    done
  ) >"$RESULTS/agents-soak-rss.txt" &
  SAMPLER_PID=$!
fi

serve0=$(proc_cpu "$SERVE_PID")
pg0=$(pg_cpu "$CLUSTER")
cut -d' ' -f1-3 /proc/loadavg >"$RESULTS/agents-$MODE-loadavg-start.txt"
status=0
run /usr/bin/time -v -o "$RESULTS/agents-$MODE-swarm-time.txt" \
  "$SWARM" --url "http://$addr" --agents "$BENCH_DIR/agents.tsv" --cycle "$CYCLE" --run-for "${SECS}s" \
  --connections "$CONNECTIONS" --resend-every "$RESEND" --format json >"$RESULTS/agents-$MODE-swarm.json" || status=$?
serve1=$(proc_cpu "$SERVE_PID")
# How many results posts a commit carried (the group commit of src/http/intake.rs).
curl -s "http://$addr/metrics" | sed -n 's/^edgewatch_agent_posts_per_commit_\(sum\|count\) //p' \
  >"$RESULTS/agents-$MODE-posts-per-commit.txt" || true
pg1=$(pg_cpu "$CLUSTER")
cut -d' ' -f1-3 /proc/loadavg >"$RESULTS/agents-$MODE-loadavg-end.txt"
serve_rss=$(rss_mb "$SERVE_PID")
[ -z "$SAMPLER_PID" ] || { kill "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=; }
[ "$status" = 0 ] || echo "agent_swarm exited $status (see above); checking the store anyway" >&2

# Exactly once: every acknowledged result stored, none twice, nothing else.
psql -X -A -t -F' ' "$URL" -c "SELECT count(*), count(DISTINCT (prober, edge_id, at)), count(DISTINCT prober)
  FROM probe_results WHERE prober LIKE 'agent:%'" >"$RESULTS/agents-$MODE-stored.txt"
sizes >"$RESULTS/agents-$MODE-sizes-end.txt"
sed -i "s|http://$addr|http://127.0.0.1:PORT|" "$COMMANDS"

python3 - "$RESULTS" "$MODE" "$serve0" "$serve1" "$pg0" "$pg1" "$serve_rss" "$status" "$RESEND" <<'PY'
import json, os, re, subprocess, sys
results, mode, s0, s1, p0, p1, rss, status, resend = sys.argv[1:]
swarm = json.load(open(f"{results}/agents-{mode}-swarm.json"))
rows, distinct, probers = (int(x) for x in open(f"{results}/agents-{mode}-stored.txt").read().split())
text = open(f"{results}/agents-{mode}-swarm-time.txt").read()
def field(name):
    return float(re.search(re.escape(name) + r":\s*(\S+)", text).group(1))
def posts_per_commit(path):
    try:
        total, commits = (float(x) for x in open(path).read().split())
    except (OSError, ValueError):
        return None
    return total / commits if commits else None
def table(path):
    return {k: int(v) for k, v in (l.split() for l in open(path) if l.strip())}
acked = swarm["results_acknowledged"]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = subprocess.run(["git", "status", "--porcelain", "--", ".", ":!docs/BENCHMARKS.md"], capture_output=True,
                       text=True).stdout.strip()
commit += " + uncommitted changes" if dirty else ""
out = {
    "mode": mode,
    "bench_dir": os.environ.get("BENCH_DIR", ""),
    "commit": commit,
    "resend_every": int(resend),
    "swarm": swarm,
    "swarm_exit": int(status),
    "stored": {"rows": rows, "distinct": distinct, "agents": probers, "acknowledged": acked,
               "exactly_once": rows == distinct == acked and int(status) == 0},
    "cpu_secs": {"serve": float(s1) - float(s0), "postgres": float(p1) - float(p0),
                 "swarm": field("User time (seconds)") + field("System time (seconds)")},
    "serve_rss_mb_end": float(rss),
    "swarm_rss_mb": field("Maximum resident set size (kbytes)") / 1024,
    "posts_per_commit": posts_per_commit(f"{results}/agents-{mode}-posts-per-commit.txt"),
    "fill": json.load(open(f"{results}/agents-fill.json")),
    "sizes_start": table(f"{results}/agents-{mode}-sizes-start.txt"),
    "sizes_end": table(f"{results}/agents-{mode}-sizes-end.txt"),
    "loadavg": [open(f"{results}/agents-{mode}-loadavg-{w}.txt").read().strip() for w in ("start", "end")],
    "commands": open(f"{results}/commands-agents-{mode}.txt").read().strip().splitlines(),
}
if mode == "soak":
    out["rss"] = [[float(x) for x in l.split()] for l in open(f"{results}/agents-soak-rss.txt") if l.strip()]
json.dump(out, open(f"{results}/agents-{mode}.json", "w"), indent=1)
s = out["stored"]
print(f"stored: {rows} rows, {distinct} distinct (prober, edge, at), {acked} acknowledged: "
      + ("exactly once" if s["exactly_once"] else "MISMATCH"), file=sys.stderr)
c = out["cpu_secs"]
print(f"{swarm['checkins_per_sec']:.0f} check-ins/s, p50 {swarm['latency_ms']['p50']} ms, "
      f"p99 {swarm['latency_ms']['p99']} ms; CPU s: serve {c['serve']:.1f}, PostgreSQL {c['postgres']:.1f}, "
      f"swarm {c['swarm']:.1f} over {swarm['secs']:.0f} s", file=sys.stderr)
sys.exit(0 if s["exactly_once"] else 1)
PY
