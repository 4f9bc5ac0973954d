#!/usr/bin/env python3
"""The "Path tracing" section of docs/BENCHMARKS.md, from the trace-bench.json that
bench/trace_bench.sh writes into the results directory.

    from trace_section import trace_section, trace_targets
    lines = trace_section(results)      # [] when the benchmark did not run
    rows = trace_targets(results)       # [(target, measured, met), ...] for the Targets table

    python3 bench/trace_section.py RESULTS_DIR              # prints the section
    python3 bench/trace_section.py RESULTS_DIR --into OUT   # puts it into OUT (a run of this
                                                            # section alone: the rest stays)
"""

import datetime
import json
import os
import subprocess
import sys

HEADING = "## Path tracing"
# GNU time's resolution (wall clock and CPU): a difference within it is no difference.
RESOLUTION = 0.01
# Every row this section adds to the Targets table starts so (`--into` replaces them).
TARGET_PREFIX = "path tracing"


def load(results):
    """trace-bench.json of the results directory, or None."""
    try:
        with open(os.path.join(results, "trace-bench.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def yes(ok):
    return "yes" if ok else "**NO**"


def setting(s):
    """How a run was set, in words."""
    if s["tool"] != "edgewatch":
        return "`-q 3 -Q`, window 0 (one thread)"
    ms, threads = s.get("interval_ms"), s.get("worker_threads")
    text = {1000: "defaults (rounds ≥ 1 s apart", 0: "interval 0 (rounds back to back"}.get(ms, f"interval {ms} ms (")
    if s.get("own_thread"):
        return text + "; the tracer on its own thread, as agents and workers run it)"
    if threads:
        return text + f"; {threads} worker thread{'s' if threads > 1 else ''})"
    return text + "; on the caller's runtime, a worker thread per core)"


def by_rate(bench):
    """{pps: (scamper's summary, [edgewatch's summaries])}."""
    rates = {}
    for s in bench["summary"]:
        scamper, mine = rates.setdefault(s["pps"], [None, []])
        if s["tool"] == "scamper":
            rates[s["pps"]][0] = s
        else:
            mine.append(s)
    return {pps: (sc, mine) for pps, (sc, mine) in sorted(rates.items()) if sc}


def met(mine, scamper):
    """At most scamper's wall time and CPU, to GNU time's resolution."""
    return (mine["wall_secs"] <= scamper["wall_secs"] + RESOLUTION
            and mine["cpu_secs"] <= scamper["cpu_secs"] + RESOLUTION)


def trace_targets(results):
    """(target, measured, met) rows: edgewatch's wall time and CPU against scamper's, per rate
    and setting."""
    bench = load(results)
    if not bench:
        return []
    rows = []
    for pps, (scamper, mine) in by_rate(bench).items():
        for s in mine:
            rows.append((f"{TARGET_PREFIX}, {bench['targets']:,} destinations at {pps:,} probes/s: edgewatch, "
                         f"{setting(s)}, at most scamper's wall time and CPU",
                         f"wall {s['wall_secs']:.2f} s vs {scamper['wall_secs']:.2f} s, CPU {s['cpu_secs']:.2f} s vs "
                         f"{scamper['cpu_secs']:.2f} s", met(s, scamper)))
    return rows


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return "?"


def machine():
    """The machine in a few words: cores, CPU, memory, kernel."""
    model, mem = "?", "?"
    try:
        model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
        kb = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal:"))
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{os.cpu_count()} cores, {model}, {mem}, Linux {os.uname().release}"


def verdict(bench):
    """Lines on whether edgewatch met "at most scamper's wall time and CPU" (a list item per
    rate), then paragraphs on why not, each followed by a blank line."""
    out = ["Did edgewatch use at most scamper's wall time and CPU?", ""]
    for pps, (scamper, mine) in by_rate(bench).items():
        ok = [setting(s) for s in mine if met(s, scamper)]
        missed = [s for s in mine if not met(s, scamper)]
        text = f"- At {pps:,} probes/s: " + (f"yes with {'; and with '.join(ok)}" if ok else "no")
        if missed:
            text += ("; no with " if ok else ": with ") + "; and with ".join(
                f"{setting(s)}: wall {s['wall_secs']:.2f} s against {scamper['wall_secs']:.2f} s, CPU "
                f"{s['cpu_secs']:.2f} s against {scamper['cpu_secs']:.2f} s" for s in missed)
        out.append(text + ".")
    out.append("")
    slow = [(pps, s, sc) for pps, (sc, mine) in by_rate(bench).items() for s in mine
            if s.get("interval_ms") and s["wall_secs"] > sc["wall_secs"]]
    if slow:
        pps, s, sc = slow[-1]
        rounds, secs = bench["probes"], s["interval_ms"] / 1000
        floor = (rounds - 1) * secs
        probes = bench["targets"] * (bench["routers"] + 1) * rounds
        text = (f"Where edgewatch's defaults are slower in wall time, the cause is the interval: a trace starts "
                f"its rounds at least {secs:g} s apart (mtr's interval, so that a hop's {rounds} probes are spread "
                f"over {floor:g} s rather than sent back to back), which puts {floor:g} s plus one round under "
                "every trace whatever the rate, while scamper's `-Q` sends a hop's attempts one after the other. "
                f"It costs no wall time as long as sending all {probes:,} probes at the rate takes longer than "
                f"that (here below about {probes / floor:,.0f} probes/s).")
        if any(m.get("interval_ms") == 0 for _, (_, mine) in by_rate(bench).items() for m in mine):
            text += " The same tracer with interval 0 probes on scamper's schedule: its rows above."
        out.extend([text, ""])
    out.extend(cpu_finding(bench))
    return out


def cpu_finding(bench):
    """Where edgewatch on a worker thread per core spends more CPU than scamper and on one
    thread does not: why (what `perf` and `strace -c` showed when this was written)."""
    cases = []
    for pps, (sc, mine) in by_rate(bench).items():
        pool = (s for s in mine if not s.get("worker_threads") and not s.get("own_thread"))
        for many in (s for s in pool if s["cpu_secs"] > sc["cpu_secs"] + RESOLUTION):
            one = [s for s in mine if s.get("worker_threads") == 1 and s.get("interval_ms") == many.get("interval_ms")]
            if one and one[0]["cpu_secs"] <= sc["cpu_secs"] + RESOLUTION:
                cases.append(f"at {pps:,} probes/s {many['cpu_secs']:.2f} s on a worker thread per core, "
                             f"{one[0]['cpu_secs']:.2f} s on one, scamper {sc['cpu_secs']:.2f} s")
    if not cases:
        return []
    return [
        "Where edgewatch spends more CPU than scamper, the extra is the multi-threaded runtime's (" + "; ".join(cases)
        + "). Most of either tool's CPU is system time both pay alike: the kernel forwards each probe through the "
        "routers' namespaces and makes its answer within the send call (`perf`: about half of edgewatch's samples "
        "are in `sendto`, most of that the forwarding). Beyond it, on two worker threads tokio parks and wakes its "
        "threads as answers and pacer slots come: when this was written `strace -c` counted about 17,000 futex calls "
        "for the 15,000 probes at 1,000 probes/s on two worker threads, 1,600 on one, and none for scamper (one "
        "thread, `poll`). So the agents and prober workers run their tracer on a thread of its own, a "
        "single-threaded runtime (`TracerBuilder::own_thread`; the rows \"the tracer on its own thread\"); "
        "`edgewatch trace`, one trace now, runs it on the command's runtime.",
        "",
    ]

def trace_section(results, alone=False):
    """The section, as lines, ending with a blank one; `alone`: the run was of this section
    only, the rest of the page is an earlier run's."""
    bench = load(results)
    if not bench:
        return []
    n, routers = bench["targets"], bench["routers"]
    chain = " — ".join(["S"] + [f"R{i}" for i in range(1, routers + 1)] + ["D"])
    L = []
    w = L.append
    w(f"{HEADING}: {n:,} destinations beside scamper")
    w("")
    w(f"Run: {bench.get('run_at', '?')}, commit {bench.get('commit', '?')}, {bench['bench_secs']} s in all"
      + (" (this section alone, `BENCH_ONLY=trace`: the rest of the page is from an earlier run, and its "
         "Machine section describes that run's machine)" if alone else "")
      + f". Machine: {machine()}; load average (1, 5, 15 min) at start / end {bench['loadavg'][0]} / "
      f"{bench['loadavg'][1]} (the machine is shared: other builds may run at the same time).")
    w("")
    w(f"A routed chain of network namespaces that `bench/trace_bench.sh` makes (and removes): {chain}. Every "
      f"router forwards and answers every probe from the address it came in on (`ip_forward=1`, "
      "`icmp_ratelimit=0`, `icmp_errors_use_inbound_ifaddr=1`, the global ICMP limit raised to 100,000/s); "
      f"D holds every address of {bench['dest_net']} (a `local` route on its `lo`), {n:,} of which are the "
      f"destinations, so every path is {routers + 1} hops. Nothing else is probed. Both tools run in S on the "
      f"same targets file, ICMP Paris, {bench['probes']} probes per TTL, {bench['timeout_secs']} s per-probe "
      f"timeout, TTLs up to {bench['max_ttl']}, at the same probe rate, all destinations at once:")
    w("")
    w("- edgewatch: `probers/examples/trace_bench.rs`, one `Tracer` (its defaults: up to 1,024 traces in "
      "flight, 5 silent hops past the last answer) and one `trace_all` of every target, ICMP flow 0;")
    w(f"- scamper {bench.get('scamper_version', '?')} (Debian's): `trace -P icmp-paris -q 3 -Q` (`-Q`: all 3 "
      "attempts per hop, as edgewatch's 3 rounds; without it scamper stops at a hop's first answer), "
      "`-w 1 -m 30`, gap limit 5 (its default), `-p` the rate, `-w 0` (no limit on traces in parallel).")
    w("")
    w(f"Each is one process timed by GNU time inside S (`/usr/bin/time -f`: wall clock, user + system CPU, "
      f"peak RSS), {bench['reps']} run{'s' if bench['reps'] > 1 else ''} of each tool and setting per rate, alternating; the table gives the "
      "median of each figure and the wall-time range, and the targets compare medians to GNU time's 0.01 s. "
      "Reached: traces that got an answer from their "
      "destination; hops: TTLs that answered, summed over the traces.")
    w("")
    w("| tool | setting | probes/s | wall s (range) | CPU s (user + sys) | peak RSS MB | reached | hops "
      "| probes sent | answers |")
    w("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for pps, (scamper, mine) in by_rate(bench).items():
        for s in mine + [scamper]:
            w(f"| {s['tool']} | {setting(s)} | {pps:,} | {s['wall_secs']:.2f} ({s['wall_min']:.2f}–"
              f"{s['wall_max']:.2f}) | {s['cpu_secs']:.2f} ({s['user_secs']:.2f} + {s['sys_secs']:.2f}) | "
              f"{s['max_rss_kb'] / 1024:.1f} | {s['reached']:,.0f} | {s['hops']:,.0f} | {s['probes_sent']:,.0f} | "
              f"{s.get('answers', 0):,.0f} |")
    w("")
    agree = [(pps, s) for pps, (_, mine) in by_rate(bench).items() for s in mine]
    worst = min((s.get("agree_with_scamper", 0) for _, s in agree), default=0)
    w(f"Same paths: destination by destination, every edgewatch run beside the scamper run of the same rate and "
      f"repetition, both reached (or both not) with the same highest answering TTL for at least {worst:,} of the "
      f"{n:,} destinations in every pair of runs.")
    w("")
    lossy = [(pps, s) for pps, (sc, mine) in by_rate(bench).items() for s in mine + [sc] if s.get("lost_answers_max")]
    if lossy:
        w("Lost answers (probes sent less answers recorded, the worst run): "
          + "; ".join(f"{s['tool']}{', ' + setting(s) if s['tool'] == 'edgewatch' else ''}, at {pps:,} probes/s: "
                      f"{s['lost_answers_max']:,}" for pps, s in lossy)
          + ". Every router and the destination answer every probe, so an answer lost is lost at the tool."
          + (" When this was written, scamper's losses matched, run for run, the drops counted on its raw socket "
             "(`/proc/net/raw`): it keeps the kernel's default receive buffer (`net.core.rmem_default`, 208 KB), "
             "which overflows at 10,000 probes/s when its one thread is kept from reading for a few tens of "
             "milliseconds on this shared machine, and a trace that loses an answer waits out the 1 s timeout "
             "before its next attempt, hence its wall-time range. edgewatch asks for a 4 MB buffer (up to "
             "`net.core.rmem_max`)." if any(s["tool"] == "scamper" for _, s in lossy) else "")
          + (" edgewatch's losses are not explained here." if any(s["tool"] == "edgewatch" for _, s in lossy)
             else ""))
        w("")
    w("| target | measured | met |")
    w("| --- | --- | --- |")
    for target, measured, ok in trace_targets(results):
        w(f"| {target} | {measured} | {yes(ok)} |")
    w("")
    L.extend(verdict(bench))
    w("Reproduce (root: namespaces and raw sockets): `sudo BENCH_ONLY=trace make bench`, or "
      "`BENCH_ONLY=trace bash bench/run.sh` as root, which runs `bench/trace_bench.sh` and puts this section "
      "into docs/BENCHMARKS.md. The timed commands, first run of each (`$NS_S`: the source namespace, `$OUT`: "
      "`$BENCH_DIR/results/trace-bench`):")
    w("")
    w("```sh")
    L.extend(bench.get("commands", []))
    w("```")
    w("")
    return L


def splice(text, section, rows):
    """The page `text` with `section` (lines) in place of its path-tracing section (or before
    "## Reproduce", or at the end), and the Targets table's path-tracing rows replaced by `rows`
    (lines)."""
    lines = text.splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith(HEADING)), None)
    if start is not None:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start:end] = section
    else:
        at = next((i for i, l in enumerate(lines) if l.startswith("## Reproduce")), len(lines))
        lines[at:at] = section
    top = next((i for i, l in enumerate(lines) if l.startswith("## Targets")), None)
    if top is not None:
        end = next((i for i in range(top + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        body = [l for l in lines[top:end] if not l.startswith(f"| {TARGET_PREFIX}")]
        last = max((i for i, l in enumerate(body) if l.startswith("|")), default=len(body) - 1)
        body[last + 1:last + 1] = rows
        lines[top:end] = body
    return "\n".join(lines) + "\n"


def main():
    if len(sys.argv) not in (2, 4) or (len(sys.argv) == 4 and sys.argv[2] != "--into"):
        sys.exit("usage: trace_section.py RESULTS_DIR [--into OUT.md]")
    results = sys.argv[1]
    lines = trace_section(results, alone=len(sys.argv) == 4)
    if not lines:
        sys.exit(f"no trace-bench.json in {results}")
    if len(sys.argv) == 2:
        print("\n".join(lines))
        return
    out = sys.argv[3]
    text = open(out).read() if os.path.exists(out) else "# Benchmarks\n\n## Targets\n\n| target | measured | met |\n| --- | --- | --- |\n"
    rows = [f"| {t} | {m} | {yes(ok)} |" for t, m, ok in trace_targets(results)]
    with open(out, "w") as f:
        f.write(splice(text, lines, rows))


if __name__ == "__main__":
    main()
