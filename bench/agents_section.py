#!/usr/bin/env python3
"""The "Agent check-ins" and "Agent soak" sections of docs/BENCHMARKS.md, from the
agents-bench.json / agents-soak.json that bench/agents_bench.sh writes.

    python3 bench/agents_section.py RESULTS_DIR bench|soak                # prints the section
    python3 bench/agents_section.py RESULTS_DIR bench|soak --into OUT.md  # replaces it in OUT
                                                                          # (appends it if absent)
"""

import json
import os
import platform
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import page  # noqa: E402  (bench/page.py)

CHECKINS_PER_SEC = 10_000
P99_MS = 50
RSS_GROWTH = 0.10
RSS_SETTLE_S = 300
TITLES = {"bench": "## Agent check-ins", "soak": "## Agent soak"}


def yes(ok):
    return "yes" if ok else "**NO**"


def ms(x):
    if x is None:
        return "?"
    return f"{x:.2f} ms" if x < 10 else f"{x:.1f} ms" if x < 100 else f"{x:,.0f} ms"


def mb(b):
    return f"{b / 1e6:,.1f} MB"


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return "?"


def rss_growth(samples, settle_s=RSS_SETTLE_S):
    """(baseline MB, last MB, growth) of serve's RSS: the baseline is the first sample at
    or after `settle_s` (the first sample if the run is shorter), growth is last over it."""
    if not samples:
        return None
    base = next((mb_ for t, mb_ in samples if t >= settle_s), samples[0][1])
    last = samples[-1][1]
    return base, last, (last / base - 1) if base else 0.0


def cpu_lines(d):
    c, secs = d["cpu_secs"], d["swarm"]["secs"]
    total = c["serve"] + c["postgres"] + c["swarm"]
    return (f"CPU over the {secs:.0f} s (user + system; 2 cores = {2 * secs:.0f} core-seconds): "
            f"`serve` {c['serve']:.1f} s ({c['serve'] / secs:.2f} cores), PostgreSQL {c['postgres']:.1f} s "
            f"({c['postgres'] / secs:.2f} cores), the swarm {c['swarm']:.1f} s ({c['swarm'] / secs:.2f} cores); "
            f"together {total / secs:.2f} of the 2 cores.")


def latency_rows(w, s):
    w("| latency | p50 | p90 | p99 | max |")
    w("| --- | ---: | ---: | ---: | ---: |")
    for label, key in [("check-in (fetch + post)", "latency_ms"), ("targets fetch", "fetch_ms"),
                       ("results post", "post_ms")]:
        lat = s[key]
        w(f"| {label} | {ms(lat['p50'])} | {ms(lat['p90'])} | {ms(lat['p99'])} | {ms(lat['max'])} |")
    w("")


def stored_line(d):
    st = d["stored"]
    return (f"Exactly once: {st['rows']:,} rows of `probe_results` written by {st['agents']:,} agents, "
            f"{st['distinct']:,} distinct (prober, edge, time), {st['acknowledged']:,} results acknowledged to the "
            f"swarm: " + ("**every result stored exactly once**." if st["exactly_once"] else "**MISMATCH**."))


def commands(w, L, d):
    w("```sh")
    root = os.getcwd() + "/"
    bench_dir = d.get("bench_dir") or os.environ.get("BENCH_DIR", "")
    for c in d["commands"]:
        c = c.replace(root, "./")
        L.append(c.replace(bench_dir, "$BENCH_DIR") if bench_dir else c)
    w("```")
    w("")


def bench_section(d):
    s, fill = d["swarm"], d["fill"]
    rate, p99 = s["checkins_per_sec"], s["latency_ms"]["p99"]
    L = []
    w = L.append
    w(TITLES["bench"])
    w("")
    w(f"`examples/agent_swarm.rs` against one `edgewatch serve` on 127.0.0.1, on this machine "
      f"({os.cpu_count()} cores, {platform.machine()}) with the embedded PostgreSQL beside both: "
      f"{fill['agents']:,} agents (`bench/agents_fill.sql`: a node, a token and {fill['edges'] // fill['agents']} "
      f"edges each, {fill['edges']:,} edges, {fill['tcp_edges']:,} of them TCP), checking in back to back "
      f"(`--cycle 0`), at most {s['connections']} at a time, for {s['secs']:.0f} s. A check-in is what an agent does "
      "each cycle: `GET /api/v1/agents/NODE/targets`, then `POST …/results` with one made-up result per target "
      "and the node's load (no probe is sent). Load average at start / end: "
      f"{d['loadavg'][0]} / {d['loadavg'][1]}.")
    w("")
    w("| target | measured | goal | met |")
    w("| --- | ---: | ---: | --- |")
    w(f"| check-ins per second | {rate:,.0f} | ≥ {CHECKINS_PER_SEC:,} | {yes(rate >= CHECKINS_PER_SEC)} |")
    w(f"| check-in p99 | {ms(p99)} | < {P99_MS} ms | {yes(p99 is not None and p99 < P99_MS)} |")
    w(f"| results stored exactly once | {d['stored']['rows']:,} of {d['stored']['acknowledged']:,} | all | "
      f"{yes(d['stored']['exactly_once'])} |")
    w("")
    latency_rows(w, s)
    w(f"Check-ins: {s['checkins']:,} ({s['results_per_sec']:,.0f} results/s); errors: fetch {s['fetch_errors']}, "
      f"post {s['post_errors']} (retried), refused {s['refused']}. " + stored_line(d))
    w("")
    w(cpu_lines(d) + f" `serve` RSS at the end: {d['serve_rss_mb_end']:.0f} MB.")
    w("")
    w(limits(d))
    w("")
    return L


def limits(d):
    """Where the time goes: CPU per check-in, and what the goal would take at that cost."""
    s, c = d["swarm"], d["cpu_secs"]
    n = max(s["checkins"], 1)
    serve_ms, pg_ms = c["serve"] * 1e3 / n, c["postgres"] * 1e3 / n
    cores = CHECKINS_PER_SEC * (serve_ms + pg_ms) / 1e3
    busy = (c["serve"] + c["postgres"] + c["swarm"]) / s["secs"]
    batch = d.get("posts_per_commit")
    batch_text = (f" (here {batch:.1f} posts a commit on average, from `edgewatch_agent_posts_per_commit`)"
                  if batch else "")
    return (
        "Where the time goes: each check-in cost `serve` "
        f"{serve_ms:.2f} ms and PostgreSQL {pg_ms:.2f} ms of CPU, so {CHECKINS_PER_SEC:,} check-ins/s would need "
        f"about {cores:.0f} cores for the two of them at this cost, against the 2 this machine has (the three "
        f"processes here used {busy:.2f} of them; the rest went to whatever else ran). A check-in is now two "
        "statements of its own and a share of a batch: the targets request looks the token up (kept 5 s, so "
        "the results post that follows does not) and reads the node's targets; the results post is checked "
        "against that list in memory and queued, and `serve`'s writers record all the posts that queued "
        "while the last batch was written in one transaction" + batch_text + ": one lookup of what was "
        "already recorded, one lock of the health rows, one insert each into the results, counters, hourly "
        "rollup and agent reports, one health update that also keeps the workers off the agents' edges, one "
        "commit (src/http/intake.rs, `probers::record::record_posts`). Before this (commit 98c0e1f) each "
        "check-in was about a dozen statements and two commits of its own: 354 check-ins/s, `serve` 1.05 ms "
        "and PostgreSQL 2.74 ms a check-in. A `pg_stat_statements` profile of the batched path (5,000 agents, "
        "32 connections, 2026-12-05, 17,811 check-ins in 20 s) put the executor time per check-in at: the "
        "health update 0.105 ms, the targets query 0.096, the hourly rollup 0.066, the results insert 0.057, "
        "the reports insert 0.048, the health lock 0.028, the token 0.024, the already-recorded lookup 0.012, "
        "the counters 0.010 — about 0.45 ms, the rest of PostgreSQL's CPU being the protocol, WAL and commit. "
        "The remaining cost is per result row (a result row, its hourly row and its health row with the "
        "`next_probe_at` index each time), so the 10,000 check-ins/s goal (50,000 results/s) is out of reach of "
        "2 cores shared by `serve` and PostgreSQL; it takes several `serve` processes (issue 15) and a "
        "PostgreSQL with cores of its own: at the measured cost about "
        f"{CHECKINS_PER_SEC * serve_ms / 1e3:.0f} cores of `serve` and {CHECKINS_PER_SEC * pg_ms / 1e3:.0f} of "
        "PostgreSQL. Not built yet: the targets from a per-process snapshot instead of a query per check-in.")


def soak_section(d, note):
    s, fill = d["swarm"], d["fill"]
    L = []
    w = L.append
    w(TITLES["soak"])
    w("")
    minutes = s["secs"] / 60
    if not note and minutes < 59:
        note = (f"Shortened run: SOAK_MINUTES={minutes:.0f}, not the full 60 minutes of `make soak-agents` "
                "(the machine is shared); the full run has not been made.")
    if note:
        w(f"**{note}**")
        w("")
    w(f"`make soak-agents` (`bench/agents_bench.sh RESULTS soak`): {fill['agents']:,} simulated agents "
      f"({fill['edges']:,} edges, ~{fill['edges'] // fill['agents']} each) on a {s['cycle_s']:g} s cycle "
      f"(`serve --interval` the same) for {minutes:.0f} minutes against one `serve` on 127.0.0.1 and the embedded "
      f"PostgreSQL; every {d.get('resend_every', 100)}th results body sent a second time after its answer, as an agent "
      f"does when an answer is lost. Offered: {s['offered_per_sec']:,.0f} check-ins/s. Load average at start / end: "
      f"{d['loadavg'][0]} / {d['loadavg'][1]}.")
    w("")
    growth = rss_growth(d.get("rss", []))
    st = d["stored"]
    w("| target | measured | met |")
    w("| --- | --- | --- |")
    w(f"| every result stored exactly once | {st['rows']:,} rows, {st['distinct']:,} distinct, "
      f"{st['acknowledged']:,} acknowledged; {s['results_resent']:,} resent, "
      f"{s['resent_answered_duplicate']:,} answered duplicate | {yes(st['exactly_once'])} |")
    offered, served = s["offered_per_sec"], s["checkins_per_sec"]
    lag = (s.get("start_lag_ms") or {}).get("max")
    w(f"| the server keeps up with the offered check-ins | {served:,.0f} of {offered:,.0f} a second; agents "
      f"{'fell behind their schedule, by up to ' + f'{lag / 1e3:,.0f} s at the end' if lag and lag > 1e3 * s['cycle_s'] else 'on schedule'} "
      f"| {yes(served >= 0.98 * offered)} |")
    if growth:
        base, last, g = growth
        w(f"| `serve` RSS flat: ≤ {RSS_GROWTH:.0%} growth after the first {RSS_SETTLE_S // 60} minutes | "
          f"{base:.1f} MB → {last:.1f} MB ({g:+.1%}) | {yes(g <= RSS_GROWTH)} |")
    w("")
    if served < 0.98 * offered:
        w(f"The offered {offered:,.0f} check-ins/s are more than one `serve` and PostgreSQL sharing these 2 cores "
          "(with other engineers' builds during the run) answered, so the agents ran ever later than their "
          "schedule; every check-in was still answered and stored once. \"Agent check-ins\" above says where the "
          f"time goes. At the operators' 2-minute cycle the same {fill['agents']:,} agents offer "
          f"{fill['agents'] / 120:,.0f} check-ins/s.")
        w("")
    w(f"Check-ins: {s['checkins']:,} ({s['checkins_per_sec']:,.1f}/s), errors: fetch {s['fetch_errors']}, "
      f"post {s['post_errors']} (retried), refused {s['refused']}; late starts (behind schedule) p99 "
      f"{ms((s.get('start_lag_ms') or {}).get('p99'))}.")
    w("")
    latency_rows(w, s)
    w(cpu_lines(d))
    w("")
    rss = d.get("rss", [])
    if rss:
        w(f"`serve` RSS, sampled every {rss[1][0] - rss[0][0] if len(rss) > 1 else 0:.0f} s (MB): "
          + ", ".join(f"{t / 60:.1f} min {m:.1f}" for t, m in rss) + ".")
        w("")
    rows = max(st["rows"], 1)
    grown = {k: d["sizes_end"][k] - d["sizes_start"].get(k, 0) for k in d["sizes_end"]}
    w("PostgreSQL table sizes (with indexes and TOAST; partitions summed), at the start and the end. "
      f"Per stored result: `probe_results` {grown.get('probe_results', 0) / rows:,.0f} bytes, `probe_hourly` "
      f"{grown.get('probe_hourly', 0) / rows:,.1f}; per check-in, `agent_reports` "
      f"{grown.get('agent_reports', 0) / max(s['checkins'], 1):,.0f} bytes. `edge_health` (one row per edge) grows "
      "with the dead row versions of its updates (one per result written) until autovacuum reclaims them.")
    w("")
    w("| table | start | end | growth | per hour at this rate |")
    w("| --- | ---: | ---: | ---: | ---: |")
    for name in sorted(d["sizes_end"]):
        a, b = d["sizes_start"].get(name, 0), d["sizes_end"][name]
        w(f"| `{name}` | {mb(a)} | {mb(b)} | {mb(b - a)} | {mb((b - a) * 3600 / s['secs'])} |")
    w("")
    return L


def section(results, mode, note=""):
    path = os.path.join(results, f"agents-{mode}.json")
    try:
        d = json.load(open(path))
    except (OSError, ValueError):
        return []
    L = bench_section(d) if mode == "bench" else soak_section(d, note)
    w = L.append
    commit = d.get("commit") or (
        sh("git", "rev-parse", "--short", "HEAD")
        + (" + uncommitted changes" if sh("git", "status", "--porcelain", "--", ".", ":!docs/BENCHMARKS.md") not in ("", "?") else ""))
    w(f"Measured at commit {commit}"
      + ". Reproduce (" + ("`BENCH_ONLY=agents make bench`" if mode == "bench" else "`make soak-agents`")
      + "; `PORT` is the one the kernel gave `serve`):")
    w("")
    commands(w, L, d)
    return L


def main():
    args = sys.argv[1:]
    if len(args) not in (2, 4) or args[1] not in TITLES or (len(args) == 4 and args[2] != "--into"):
        sys.exit("usage: agents_section.py RESULTS_DIR bench|soak [--into OUT.md]")
    note = os.environ.get("AGENTS_SECTION_NOTE", "")
    lines = section(args[0], args[1], note)
    if not lines:
        sys.exit(f"no agents-{args[1]}.json in {args[0]}")
    if len(args) == 4:
        page.into(args[3], TITLES[args[1]], lines)
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
