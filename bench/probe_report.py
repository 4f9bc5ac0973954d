#!/usr/bin/env python3
"""Appends the probing section to docs/BENCHMARKS.md from bench/run.sh's results: one row
per worker-pool run (packets per edge, workers per process, processes), side by side.

Usage: probe_report.py RESULTS SECS INTERVAL "packets:workers:procs ..."
"""
import glob
import re
import sys

results, secs, interval, runs = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4].split()
GOAL = 16_700  # edges probed (5 packets each) and recorded per second: a million a minute


def time_v(path):
    t = open(path).read()
    rss = int(re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", t).group(1))
    cpu = sum(float(re.search(rf"{k} time \(seconds\):\s*(\S+)", t).group(1)) for k in ("User", "System"))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\):\s*(\S+)", t).group(1)
    parts = [float(x) for x in wall.split(":")]
    return rss, cpu, sum(p * 60 ** i for i, p in enumerate(reversed(parts)))


rows = []
for spec in runs:
    packets, workers, procs = (int(x) for x in spec.split(":"))
    tag = f"p{packets}-w{workers}-x{procs}"
    try:
        edges, recorded, probed, _span = open(f"{results}/probe-{tag}-counts.txt").read().split()
    except (OSError, ValueError):
        continue
    times = [time_v(p) for p in sorted(glob.glob(f"{results}/time-probe-{tag}-*.txt"))]
    states = dict(line.split() for line in open(f"{results}/probe-{tag}-states.txt").read().splitlines() if line.strip())
    slow = int(open(f"{results}/probe-{tag}-slow.txt").read().strip() or 0)
    rows.append({"packets": packets, "workers": workers, "procs": procs, "edges": int(edges),
                 "recorded": int(recorded), "probed": int(probed), "rate": int(recorded) / secs,
                 "cpu": sum(t[1] for t in times), "rss": max(t[0] for t in times) / 1024,
                 "wall": max(t[2] for t in times), "slow": slow, "states": states})

if not rows:
    sys.exit(0)
edges = rows[0]["edges"]
interval_secs = float(interval.rstrip("s")) if interval.endswith("s") and not interval.endswith("ms") else 1.0
print(f"""
## Probing: prober worker pool

`edgewatch probe --allow 127.0.0.0/8 --interval {interval} --packets N --packet-interval 20ms --timeout 500ms
--pps 50000 --workers W --batch 2000 --run-for {secs:.0f}s`, in P processes at once (each with its own `--name`),
on the generated operators' fleet (5,000 containers; {edges:,} live edges from 500,000 DNS lines), each run on a
fresh copy of the same database. Every target is in 127.0.0.0/8 (ICMP echo for published links, TCP connect to
the service port for DNS edges; nothing listens on those ports here, so the TCP probes end with a reset). The
{interval} interval asks for {edges / interval_secs:,.0f} edges per second, more than any run records: the rates
below are the pool's ceiling on this machine, with PostgreSQL on the same two cores. An edge probed and recorded
is one result row (its N packets' figures, its health row and any state-change event written).

| packets per edge | workers × processes | results recorded in {secs:.0f} s | edges per second | longest process wall | edgewatch CPU (all processes) | peak RSS (largest process) | slow-statement warnings | states after |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |""")
for r in rows:
    states = ", ".join(f"{k} {v}" for k, v in sorted(r["states"].items()))
    print(f"| {r['packets']} | {r['workers']} × {r['procs']} | {r['recorded']:,} | {r['rate']:,.0f} | "
          f"{r['wall']:.1f} s | {r['cpu']:.1f} s | {r['rss']:.0f} MB | {r['slow']} | {states} |")
five = [r for r in rows if r["packets"] == 5]
if five:
    best = max(five, key=lambda r: r["rate"])
    one = [r for r in five if r["procs"] == 1]
    growing = all(a["rate"] <= b["rate"] * 1.05 for a, b in zip(one, one[1:]))
    print(f"""
| target | measured | met |
| --- | --- | --- |
| worker pool, 5 packets per edge: ≥ {GOAL:,} edges probed and recorded per second (2 cores, PostgreSQL beside it) | best: {best['rate']:,.0f}/s ({best['workers']} × {best['procs']}) | {"yes" if best['rate'] >= GOAL else "**NO**"} |
| throughput grows (or holds, ±5%) with workers: {", ".join(f"{r['workers']} → {r['rate']:,.0f}/s" for r in one)} | {"grows" if growing else "falls with more workers"} | {"yes" if growing else "**NO**"} |""")
