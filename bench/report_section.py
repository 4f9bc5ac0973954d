#!/usr/bin/env python3
"""The "Nightly report" section of docs/BENCHMARKS.md, from the report-bench.json that
bench/report_bench.sh writes into the results directory.

    from report_section import report_section, report_targets
    lines = report_section(results)      # [] when the benchmark did not run
    rows = report_targets(results)       # [(target, measured, met), ...] for the Targets table

    python3 bench/report_section.py RESULTS_DIR   # prints the section
    python3 bench/report_section.py RESULTS_DIR --into OUT.md
        # replaces the section and its rows of the Targets table in OUT (BENCH_ONLY=report)
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import page  # noqa: E402  (bench/page.py)

# Issue 18: every format of the benchmark day under 5 s (was 10 s).
WALL_SECS = 5
RSS_MB = 200
FORMAT_NAMES = {"json": "JSON", "md": "Markdown", "html": "HTML (with the picture, Graphviz `dot`)"}


def load(results):
    """report-bench.json of the results directory, or None."""
    try:
        with open(os.path.join(results, "report-bench.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def load_before(results):
    """report-bench-before.json of the results directory (an earlier run put there by
    hand, to compare), or None."""
    try:
        with open(os.path.join(results, "report-bench-before.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def yes(ok):
    return "yes" if ok else "**NO**"


def secs(x):
    return f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


def mb(kb):
    return f"{kb / 1024:.0f} MB"


def limits(bench):
    t = bench.get("targets") or {}
    return t.get("wall_secs", WALL_SECS), t.get("max_rss_mb", RSS_MB)


def nominal_rows(bench):
    """Probe rows of a full day: every edge, every cycle (the fill's retirements make fewer)."""
    return bench["edges"] * 86400 // bench["fill"].get("interval_secs", 120)


def report_targets(results):
    """(target, measured, met) rows: wall time and peak RSS of the slowest / largest run of
    each format against the targets."""
    bench = load(results)
    if not bench or not bench.get("formats"):
        return []
    wall, rss = limits(bench)
    f = bench["formats"]
    scale = f"{bench['edges']:,} edges, {nominal_rows(bench) / 1e6:.0f} M probe rows"
    over = [fmt for fmt, r in f.items() if r["max_wall_secs"] >= wall]
    return [
        (f"`edgewatch report` for one day ({scale}): every format < {wall} s wall, every run (issue 18)",
         ", ".join(f"{fmt} {secs(r['max_wall_secs'])}" for fmt, r in f.items())
         + (f" (slowest run of each); goal {wall} s" + (f", missed by {', '.join(over)}" if over else ", met")),
         not over),
        (f"`edgewatch report` peak RSS < {rss} MB",
         ", ".join(f"{fmt} {mb(r['max_rss_kb'])}" for fmt, r in f.items()),
         all(r["max_rss_kb"] / 1024 < rss for r in f.values())),
    ]


def report_section(results):
    """The section, as lines, ending with a blank one."""
    bench = load(results)
    if not bench or not bench.get("formats"):
        return []
    fill = bench["fill"]
    wall, rss = limits(bench)
    interval = fill.get("interval_secs", 120)
    nominal = nominal_rows(bench)
    reps = bench["reps"]
    L = []
    w = L.append
    w(f"## Nightly report (one day, {bench['edges']:,} edges, {nominal / 1e6:.0f} M probe rows)")
    w("")
    if bench.get("run_at"):
        w(f"Run: {bench['run_at']}, commit {bench.get('commit', '?')}, {bench.get('bench_secs', '?')} s "
          "(`bench/report_bench.sh`, then `bench/report_section.py --into`: what `BENCH_ONLY=report make bench` "
          "runs, writing only this section and its Targets rows).")
        w("")
    w(f"`edgewatch report` for {bench['day']} (UTC) on a generated day at the operators' scale "
      f"(`bench/report_fill.sql`, seed {bench['seed']}; `bench/report_bench.sh`): {fill['nodes']:,} nodes on "
      f"{fill['hosts']:,} hosts in {fill['dcs']} data centers, in six layers (nginx → api → backend → mq/cache → "
      f"db → storage), {fill['services']:,} services with {fill['providers']:,} providers (replicas of a service "
      f"share its dependencies); {fill['edges']:,} live DNS edges ({fill['cross_dc_edges']:,} across data "
      f"centers), with their history. Within the day {fill['nodes_retired']:,} nodes are retired at various "
      f"hours with their {fill['edges_retired']:,} edges, and {fill['edges_new']:,} new edges appear. Every edge "
      f"is probed every {interval // 60} minutes while it is live: {fill['probe_rows']:,} rows in the day's "
      f"`probe_results` partition ({fill['failed_rows']:,} failed and {fill['degraded_rows']:,} degraded cycles: "
      f"{fill['edges_failing']:,} edges down and {fill['edges_degraded']:,} degraded for stretches, the edges "
      "to a few dead containers among them), and their hourly rollup in `probe_hourly` "
      f"({fill['probe_hourly_rows']:,} rows, as `rollup::add_results` leaves it); "
      f"{fill['query_hourly_rows']:,} `query_hourly` rows; {fill['edge_events']:,} state changes in "
      f"`edge_events` ({fill['edge_events_in_day']:,} within the day), {fill['incidents']:,} incidents in "
      f"`incident_log`. Database: {fill['database_bytes'] / 1e9:.1f} GB, of which the day's probe partition "
      f"{fill['probe_partition_bytes'] / 1e9:.1f} GB"
      + (" (made UNLOGGED by the fill: the report never reads raw rows)" if fill.get("probe_partition_unlogged")
         else "")
      + f". Filled with set-based SQL in {bench['fill_wall_secs']:.0f} s.")
    w("")
    storage = bench.get("pg_storage", "?")
    w(f"Each format is made {reps} times in a row, each run a whole process (start, connect, "
      "`rollup::fill_down` for the day, the queries, rendering, storing the report, writing the file), timed by "
      "GNU time (`/usr/bin/time -v`): wall clock, and the peak RSS of the process (for HTML, the larger of "
      "edgewatch's and its `dot` child's: the kernel reports the maximum over the waited-for process tree). "
      "For HTML, `dot` lays the picture out on a thread of its own, started as soon as the graph at the end "
      "of the day and the day's rollups are read, beside the rest of the reads (which go to PostgreSQL at "
      "once, on connections of their own). "
      "PostgreSQL CPU: what the cluster's backends used during the run (the postmaster's reaped children). "
      f"The embedded cluster's data was on {storage}"
      + (" (`/dev/shm`: the scratch disk had too little room for the day)"
         if bench.get("pg_dir_chosen_by", "").startswith("fallback") else "")
      + ("; the tables the report reads fit in the page cache either way" if storage == "tmpfs" else "")
      + f". Load average (1, 5, 15 min) at start / end: {bench['loadavg'][0]} / {bench['loadavg'][1]}.")
    w("")
    w("| format | runs | wall, best | wall, worst | peak RSS, largest | edgewatch CPU (best run) "
      "| PostgreSQL CPU (best run) | output |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for fmt, r in bench["formats"].items():
        best = r["best"]
        size = f"{r['out_bytes'] / 1e6:.1f} MB" if r.get("out_bytes") else "?"
        if fmt == "html" and r.get("picture") is False:
            size += " (no picture)"
        w(f"| {FORMAT_NAMES.get(fmt, fmt)} | {len(r['runs'])} | {secs(best['wall_secs'])} | "
          f"{secs(r['worst']['wall_secs'])} | {mb(r['max_rss_kb'])} | "
          f"{best['user_secs'] + best['sys_secs']:.1f} s | {best['pg_cpu_secs']:.1f} s | {size} |")
    w("")
    before = load_before(results)
    if before and before.get("formats"):
        runs = "; ".join(
            f"{fmt} {secs(r['best']['wall_secs'])}–{secs(r['worst']['wall_secs'])}"
            + (" (no picture)" if fmt == "html" and r.get("picture") is False else "")
            for fmt, r in before["formats"].items())
        w(f"Before (`report-bench-before.json` in the results directory: {before.get('commit') or 'the commit before'}, "
          f"same day and machine, load average {before['loadavg'][0]} / {before['loadavg'][1]}): {runs}"
          + (f"; without the picture: {before['note']}" if before.get("note") else "") + ".")
        w("")
    w("| target | measured | met |")
    w("| --- | --- | --- |")
    for target, measured, ok in report_targets(results):
        w(f"| {target} | {measured} | {yes(ok)} |")
    w("")
    if bench.get("commands"):
        w("The commands (`$PGDIR`: the embedded cluster's data directory; `$RESULTS`: the results directory):")
        w("")
        w("```sh")
        L.extend(bench["commands"])
        w("```")
        w("")
    return L


TITLE = "## Nightly report"
TARGET_ROW = "| `edgewatch report`"


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) not in (1, 3) or (len(args) == 3 and args[1] != "--into"):
        sys.exit("usage: report_section.py RESULTS_DIR [--into OUT.md]")
    lines = report_section(args[0])
    if not lines:
        sys.exit(f"no report-bench.json in {args[0]}")
    if len(args) == 3:
        page.into(args[2], TITLE, lines, [f"| {t} | {m} | {yes(ok)} |" for t, m, ok in report_targets(args[0])], TARGET_ROW)
    else:
        print("\n".join(lines))
