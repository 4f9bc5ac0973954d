"""Whole-process topology commands on the benchmark graph, as a user runs them.

bench/run.sh's topology section calls this after the Nagios check (the stored diagnosis is
then fresh). Steps, each a separate process timed by GNU time (wall clock, peak RSS):

1. `edgewatch serve` until its leader has stored the packed topology (`topology_packed`
   matching the change counters): how long packing takes at this size; then stopped.
2. `serve` started again: time from spawn to its first `GET /api/v1/blast/NODE` answer,
   and its RSS after answering (VmRSS, VmHWM from /proc).
   Then `incidents` RUNS times while it leads (the stored diagnosis it keeps fresh), and
   serve's peak RSS after that, and after its leader has stored a diagnosis of its own
   (which loads every edge).
3. With the packed form stored and no serve running: `graph blast NODE`, `graph deps NODE`,
   `graph dependents NODE --depth 5`, RUNS times each.
4. The packed row deleted: the same topology commands loading from the tables, RUNS times;
   their answers must be byte for byte those of step 3 (`same_answers`).

Usage: topology_commands.py EDGEWATCH URL RESULTS NODE RUNS  (JSON on stdout)
"""

import json
import os
import re
import subprocess
import sys
import time
import urllib.request

exe, url, results, node, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
COMMANDS = os.path.join(results, "commands-topology.txt")


def note(cmd):
    with open(COMMANDS, "a") as f:
        f.write(" ".join(cmd) + "\n")


def psql(sql):
    out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, url],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def timed(args, out_path=None):
    """Runs edgewatch under GNU time: (wall s, peak RSS MB, exit code)."""
    cmd = ["/usr/bin/time", "-f", "%e %M", exe, "--database-url", url] + args
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall, kb = p.stderr.strip().splitlines()[-1].split()
    if out_path:
        with open(out_path, "w") as f:
            f.write(p.stdout)
    return float(wall), int(kb) / 1024, p.returncode


def start_serve(tag):
    out = open(os.path.join(results, f"serve-{tag}.out"), "w")
    err = open(os.path.join(results, f"serve-{tag}.err"), "w")
    t0 = time.perf_counter()
    p = subprocess.Popen([exe, "--database-url", url, "serve", "--listen", "127.0.0.1:0"], stdout=out, stderr=err)
    addr = None
    while addr is None:
        if p.poll() is not None:
            sys.exit(f"edgewatch serve exited: see {err.name}")
        m = re.search(r"^listening on http://(127\.0\.0\.1:\d+)$", open(out.name).read(), re.M)
        addr = m.group(1) if m else None
        time.sleep(0.01)
    return p, addr, t0


def stop(p):
    p.terminate()
    p.wait(timeout=60)


def proc_mb(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return None


PACKED_FRESH = ("SELECT coalesce((SELECT signature = (SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) "
                "FROM pg_stat_user_tables WHERE relid IN ('node_history'::regclass, 'edge_history'::regclass, "
                "'address_history'::regclass, 'provider_history'::regclass)) FROM topology_packed), false)")

result = {"node": node, "runs": runs}

# 1. The leader packs the graph.
psql("DELETE FROM topology_packed")
serve, addr, t0 = start_serve("pack")
deadline = time.time() + 600
while psql(PACKED_FRESH) != "t":
    if time.time() > deadline:
        sys.exit("serve did not store the packed topology within 10 minutes")
    time.sleep(0.5)
result["packed_after_start_s"] = time.perf_counter() - t0
result["packed_bytes"] = int(psql("SELECT length(data) FROM topology_packed"))
stop(serve)

# 2. serve's first blast answer after a start, and what it holds.
note([exe, "--database-url", url, "serve", "--listen", "127.0.0.1:0", "&"])
serve, addr, t0 = start_serve("first")
api = f"http://{addr}/api/v1/blast/{node}"
note(["curl", "-s", api.replace(addr, "127.0.0.1:PORT")])
while True:
    try:
        with urllib.request.urlopen(api, timeout=120) as r:
            r.read()
            break
    except OSError:
        time.sleep(0.01)
result["serve_first_answer_s"] = time.perf_counter() - t0
answers = []
for _ in range(20):
    t = time.perf_counter()
    with urllib.request.urlopen(api, timeout=120) as r:
        r.read()
    answers.append((time.perf_counter() - t) * 1000)
result["serve_answer_ms"] = sorted(answers)
result["serve_rss_mb"] = proc_mb(serve.pid, "VmRSS")
result["serve_hwm_mb"] = proc_mb(serve.pid, "VmHWM")

# `incidents` while that serve leads (it keeps the stored diagnosis fresh).
result["commands"] = []
args = ["incidents", "--format", "json"]
note([exe, "--database-url", url] + args + [f"# x {runs}, timed, while serve runs"])
rows = [timed(args, os.path.join(results, "cmd-incidents.json")) for _ in range(runs)]
result["commands"].append({"name": "incidents", "from": "stored diagnosis", "wall_s": [r[0] for r in rows],
                           "rss_mb": [r[1] for r in rows], "exit": sorted({r[2] for r in rows})})
result["serve_hwm_after_mb"] = proc_mb(serve.pid, "VmHWM")
# Then its leader's own diagnosis (every edge loaded): serve's peak once it has stored one
# made after this serve started (up to 5 minutes).
started = psql("SELECT now()")
deadline = time.time() + 300
while time.time() < deadline and psql(f"SELECT count(*) FROM diagnosis WHERE computed_at > '{started}'") == "0":
    time.sleep(1)
if psql(f"SELECT count(*) FROM diagnosis WHERE computed_at > '{started}'") != "0":
    result["serve_hwm_diagnosed_mb"] = proc_mb(serve.pid, "VmHWM")
stop(serve)

# 3 and 4. Whole commands, from the packed form, then from the tables.
topology = [
    ("graph blast", ["graph", "blast", node, "--format", "json"]),
    ("graph deps", ["graph", "deps", node, "--format", "json"]),
    ("graph dependents --depth 5", ["graph", "dependents", node, "--depth", "5", "--format", "json"]),
]
for name, args in topology:
    note([exe, "--database-url", url] + args + [f"# x {runs}, timed"])
    rows = [timed(args, os.path.join(results, f"cmd-{name.split()[-1]}.json")) for _ in range(runs)]
    result["commands"].append({"name": name, "from": "packed", "wall_s": [r[0] for r in rows],
                               "rss_mb": [r[1] for r in rows], "exit": sorted({r[2] for r in rows})})
psql("DELETE FROM topology_packed")
note(["psql", "-c", "'DELETE FROM topology_packed'", url])
for name, args in topology:
    note([exe, "--database-url", url] + args + [f"# x {runs}, timed, from the tables"])
    rows = [timed(args, os.path.join(results, f"cmd-{name.split()[-1]}-tables.json")) for _ in range(runs)]
    same = open(os.path.join(results, f"cmd-{name.split()[-1]}.json")).read() == \
        open(os.path.join(results, f"cmd-{name.split()[-1]}-tables.json")).read()
    result.setdefault("same_answers", {})[name] = same
    result["commands"].append({"name": name, "from": "tables", "wall_s": [r[0] for r in rows],
                               "rss_mb": [r[1] for r in rows], "exit": sorted({r[2] for r in rows})})
print(json.dumps(result))
