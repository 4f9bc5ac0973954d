#!/usr/bin/env python3
"""Appends the probing section to docs/BENCHMARKS.md from bench/run.sh's results."""
import re
import sys

results, secs, interval = sys.argv[1], float(sys.argv[2]), sys.argv[3]
edges, rows, probed, span = open(f"{results}/probe-counts.txt").read().split()
edges, rows, probed = int(edges), int(rows), int(probed)
span = float(span or 0)
states = dict(line.split() for line in open(f"{results}/probe-states.txt").read().split("\n") if line.strip())
time_txt = open(f"{results}/time-probe.txt").read()
rss = int(re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", time_txt).group(1))
user = float(re.search(r"User time \(seconds\):\s*(\S+)", time_txt).group(1))
system = float(re.search(r"System time \(seconds\):\s*(\S+)", time_txt).group(1))
rate = rows / secs
need = edges / 120.0
interval_secs = float(interval.rstrip("s")) if interval.endswith("s") and not interval.endswith("ms") else 1.0
demand = edges / interval_secs
if rate < 0.9 * demand:
    verdict = ("the pool recorded less, so the rate below is its ceiling on this machine, with PostgreSQL on the "
               "same two cores.")
else:
    verdict = "the pool kept up with it, so its ceiling on this machine is higher than the rate below."
print(f"""
## Probing: prober worker pool

`edgewatch probe --allow 127.0.0.0/8 --interval {interval} --packets 1 --timeout 500ms --pps 50000 --workers 4
--batch 2000 --run-for {secs:.0f}s` on the generated operators' fleet (5,000 containers; edges from 500,000 DNS
lines), every target in 127.0.0.0/8 (ICMP echo for published links, TCP connect to the service port for DNS
edges; nothing listens on those ports here, so the TCP probes end with a reset). The {interval} interval asks for
{demand:,.0f} probes per second; {verdict} Beyond it: more `edgewatch probe` processes (they share the graph
through leases) and a PostgreSQL of its own.

| figure | value |
| --- | ---: |
| live edges | {edges:,} |
| edges probed at least once | {probed:,} |
| probe results recorded | {rows:,} in {secs:.0f} s |
| results per second (recorded, with health and events) | {rate:,.0f} |
| needed for these edges at the operators' 2-minute cycle | {need:,.0f}/s |
| headroom at the operators' scale | {rate / need if need else 0:,.0f}× |
| needed at 100× the operators' scale (5,000,000 edges every 2 minutes) | 41,667/s |
| edgewatch CPU (user + system) | {user + system:.1f} s |
| peak RSS of `edgewatch probe` | {rss / 1024:.0f} MB |
| states after the run | {", ".join(f"{k} {v}" for k, v in sorted(states.items()))} |
""")
