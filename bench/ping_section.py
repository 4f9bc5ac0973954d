#!/usr/bin/env python3
"""The "Ping beside fping" section of docs/BENCHMARKS.md and its rows of the Targets
table, from the ping-bench.json that bench/ping_bench.sh writes.

    python3 bench/ping_section.py RESULTS_DIR                # prints the section
    python3 bench/ping_section.py RESULTS_DIR --into OUT.md  # replaces it (and its Targets rows) in OUT
"""

import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import page  # noqa: E402  (bench/page.py)

RTT_NOISE_MS = 0.02
TITLE = "## Ping beside fping (10,000 loopback targets × 5 packets)"
# Every row this section adds to the Targets table starts so (`--into` replaces them).
TARGET_PREFIX = "edgewatch ping"


def yes(ok):
    return "yes" if ok else "**NO**"


def med(runs, tool, key):
    return statistics.median(r[tool][key] for r in runs)


def ms(x):
    return "?" if x is None else f"{x:.3f}"


def targets(d):
    """[(target, measured, met)] for the Targets table: medians over the runs."""
    runs = d["runs"]
    fw, ew = med(runs, "fping", "wall_s"), med(runs, "edgewatch", "wall_s")
    fc, ec = med(runs, "fping", "cpu_s"), med(runs, "edgewatch", "cpu_s")
    # Noise: a reply or two either tool misses now and then (at most 0.1 % of the targets
    # differing), and scheduler jitter of a few tens of microseconds around loopback RTTs.
    received_noise = max(1, d["targets"] // 1000)
    agree = all(r["received_differs"] <= received_noise and r["only_one_side"] == 0 for r in runs)
    diffs = [r["avg_diff_ms"]["p50"] for r in runs if r.get("avg_diff_ms")]
    rtt_agree = len(diffs) == len(runs) and all(abs(x) <= RTT_NOISE_MS for x in diffs)
    n = f"{d['targets']:,} loopback targets × {d['count']}"
    return [
        (f"{TARGET_PREFIX} wall ≤ fping's ({n}, median of {len(runs)})",
         f"{ew:.2f} s vs fping {fw:.2f} s" + ("" if ew <= fw else " (edgewatch loses)"), yes(ew <= fw)),
        (f"{TARGET_PREFIX} CPU ≤ fping's (user+sys, {n}, median of {len(runs)})",
         f"{ec:.2f} s vs fping {fc:.2f} s" + ("" if ec <= fc else " (edgewatch loses)"), yes(ec <= fc)),
        (f"{TARGET_PREFIX} per-target received counts equal fping's within noise (≤ {received_noise} targets "
         f"differ, every run)",
         ", ".join(str(r["received_differs"]) for r in runs) + " targets differ", yes(agree)),
        (f"{TARGET_PREFIX} per-target average RTT equal fping's within noise (median difference within "
         f"±{RTT_NOISE_MS * 1000:.0f} µs, every run)",
         ", ".join(f"{x * 1000:+.1f} µs" for x in diffs), yes(rtt_agree)),
    ]


def section(results):
    path = os.path.join(results, "ping-bench.json")
    if not os.path.exists(path):
        return [], []
    d = json.load(open(path))
    runs = d["runs"]
    L = [TITLE, ""]
    L.append(f"{page.measured_on()}, {d['fping_version']}, as "
             f"{'root (raw ICMP sockets for both)' if os.geteuid() == 0 else 'a user'}. The same "
             f"{d['targets']:,} addresses 127.0.x.y (one file), {d['count']} echo requests each "
             f"{d['period_ms']} ms apart, the two tools taking turns, {len(runs)} runs each; each process timed by "
             f"GNU time (`/usr/bin/time -v`): wall clock, user + system CPU, peak RSS. fping with `-i0` (no gap "
             f"between requests to different targets); edgewatch with its defaults (`--pps 100000`, every target in "
             f"flight at once) and `--format json`.")
    L.append("")
    L.append("| run | tool | exit | wall | CPU user + sys | peak RSS | targets answered | sent / received |")
    L.append("|---:|---|---:|---:|---:|---:|---:|---:|")
    for i, r in enumerate(runs, 1):
        for tool in ("fping", "edgewatch"):
            t = r[tool]
            L.append(f"| {i} | {tool} | {t['status']} | {t['wall_s']:.2f} s | {t['user_s']:.2f} + {t['sys_s']:.2f} "
                     f"= {t['cpu_s']:.2f} s | {t['rss_kb'] / 1024:.0f} MB | {t['answered']:,} of {t['rows']:,} | "
                     f"{t['sent']:,} / {t['received']:,} |")
    L.append("")
    L.append("Per target, the two tools' figures side by side (run by run: the same addresses, minutes apart): "
             "received counts and loss must be equal; the average RTTs are loopback round trips of a few "
             "microseconds, where each tool's own timing (when it reads the clock around `sendto` and "
             "`recvfrom`) and the scheduler are the noise, so they are compared as distributions: the "
             "per-target averages' median and 95th percentile for each tool, and the per-target difference "
             "(edgewatch − fping). Both end a round trip at the kernel's receive time stamp (`SO_TIMESTAMPNS`), "
             "and edgewatch reads replies on a thread of its own, so neither counts the time until it gets to a "
             "reply.")
    L.append("")
    L.append("| run | targets compared | received differs | loss differs | on one side only | fping avg RTT p50 / p95 | "
             "edgewatch avg RTT p50 / p95 | difference p5 / p50 / p95 |")
    L.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i, r in enumerate(runs, 1):
        f, e, dd = r["fping"]["avg_ms"], r["edgewatch"]["avg_ms"], r["avg_diff_ms"]
        fq = f"{ms(f['p50'])} / {ms(f['p95'])} ms" if f else "?"
        eq = f"{ms(e['p50'])} / {ms(e['p95'])} ms" if e else "?"
        dq = f"{ms(dd['p5'])} / {ms(dd['p50'])} / {ms(dd['p95'])} ms" if dd else "?"
        L.append(f"| {i} | {r['compared']:,} | {r['received_differs']} | {r['loss_differs']} | {r['only_one_side']} | "
                 f"{fq} | {eq} | {dq} |")
    L.append("")
    rows = targets(d)
    L.append("| Target | Measured | Met |")
    L.append("|---|---|---|")
    for t, m, ok in rows:
        L.append(f"| {t} | {m} | {ok} |")
    L.append("")
    L.append("Reproduce (root, or a user in `net.ipv4.ping_group_range`; fping from `scripts/install-deps.sh bench`, run by the script when missing):")
    L.append("")
    L.append("```sh")
    L.append("BENCH_ONLY=ping make bench    # this section only")
    L.append("```")
    L.append("")
    L.append("Commands run (the targets file first):")
    L.append("")
    L.append("```sh")
    seen = []
    for c in d.get("commands", []):
        if c not in seen:
            seen.append(c)
    L += seen
    L.append("```")
    return L, rows


def main():
    args = sys.argv[1:]
    if len(args) not in (1, 3) or (len(args) == 3 and args[1] != "--into"):
        sys.exit("usage: ping_section.py RESULTS_DIR [--into OUT.md]")
    lines, rows = section(args[0])
    if not lines:
        sys.exit(f"no ping-bench.json in {args[0]}")
    if len(args) == 3:
        page.into(args[2], TITLE, lines, [f"| {t} | {m} | {ok} |" for t, m, ok in rows], f"| {TARGET_PREFIX}")
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
