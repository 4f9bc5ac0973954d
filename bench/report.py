#!/usr/bin/env python3
"""Writes docs/BENCHMARKS.md from the results bench/run.sh collected.

    python3 bench/report.py RESULTS_DIR OUT.md

Targets are checked here, and a missed one is said so, with its numbers.
"""

import datetime
import json
import os
import platform
import subprocess
import sys

PARSE_LINES_PER_SEC = 3e6
PYTHON_FACTOR = 20
INGEST_LINES_PER_SEC = 1e6
RSS_LIMIT_MB = 100
# "Flat": the bigger file may grow the peak RSS by at most this much over the smaller one.
RSS_FLAT_GROWTH = 0.25


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return "?"


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def mem_total():
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "?"


def read(path):
    try:
        return open(path).read().strip()
    except OSError:
        return "?"


def jsonl(path):
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip()]


def m(x):
    """Millions, e.g. `3.02 M`."""
    return f"{x / 1e6:.2f} M"


def yes(ok):
    return "yes" if ok else "**NO**"


def main():
    results, out = sys.argv[1], sys.argv[2]
    env = os.environ
    rust = {r["label"]: r for r in jsonl(f"{results}/parse-rust.jsonl")}
    python = {r["label"]: r for r in jsonl(f"{results}/parse-python.jsonl")}
    ingest = jsonl(f"{results}/ingest.jsonl")
    commands = open(f"{results}/commands.txt").read().strip().splitlines()
    bench_dir = env.get("BENCH_DIR", "")
    commands = [c.replace(bench_dir, "$BENCH_DIR") if bench_dir else c for c in commands]
    root = os.getcwd()
    commands = [c.replace(root + "/", "./") for c in commands]

    dirty = sh("git", "status", "--porcelain")
    commit = sh("git", "rev-parse", "--short", "HEAD") + (" + uncommitted changes" if dirty not in ("", "?") else "")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    pg_version = sh("sh", "-c", "ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1")
    pg_full = sh("sh", "-c", f"/usr/lib/postgresql/{pg_version}/bin/postgres --version") if pg_version != "?" else "?"

    L = []
    w = L.append
    w("# Benchmarks")
    w("")
    w("Written by `make bench` (`bench/run.sh`, `bench/report.py`); re-run it rather than")
    w("editing this page. Nothing here sends network traffic: the benchmarks generate files,")
    w("parse them, and write to an embedded PostgreSQL on a unix socket.")
    w("")
    w(f"Run: {now}, commit {commit}, whole run {env.get('BENCH_SECONDS', '?')} s.")
    w("")
    w("The machine is shared: other builds may run at the same time (see the load average), "
      "which slows every figure here, Rust and Python alike.")
    w("")
    w("## Machine")
    w("")
    w("| | |")
    w("| --- | --- |")
    w(f"| CPU | {cpu_model()} |")
    w(f"| cores (`nproc`) | {os.cpu_count()} |")
    w(f"| memory | {mem_total()} |")
    w(f"| kernel | {platform.system()} {platform.release()} |")
    w(f"| rustc | {sh('rustc', '--version')} |")
    w(f"| Python | {platform.python_version()} |")
    w(f"| PostgreSQL | {pg_full} |")
    load = [read(f"{results}/loadavg-{when}.txt") for when in ("start", "end")]
    w(f"| load average (1, 5, 15 min) at start / end | {load[0]} / {load[1]} |")
    w("")

    # -- targets --------------------------------------------------------------------------
    flavours = [f for f in rust if f in python]
    slow = [f for f in flavours if rust[f]["lines_per_sec"] < PARSE_LINES_PER_SEC]
    ratios = {f: rust[f]["lines_per_sec"] / python[f]["lines_per_sec"] for f in flavours}
    weak = [f for f in flavours if ratios[f] < PYTHON_FACTOR]
    w("## Targets")
    w("")
    w("| target | measured | met |")
    w("| --- | --- | --- |")
    if flavours:
        lo = min(flavours, key=lambda f: rust[f]["lines_per_sec"])
        w(f"| parse ≥ {m(PARSE_LINES_PER_SEC)} lines/s per flavour, one core | "
          f"slowest: {lo} {m(rust[lo]['lines_per_sec'])} lines/s"
          + (f"; below target: {', '.join(slow)}" if slow else "") + f" | {yes(not slow)} |")
        lo = min(flavours, key=lambda f: ratios[f])
        w(f"| parse ≥ {PYTHON_FACTOR}× the Python `re` baseline | lowest: {lo} {ratios[lo]:.1f}×"
          + (f"; below target: {', '.join(weak)}" if weak else "") + f" | {yes(not weak)} |")
    if ingest:
        rates = [r["lines"] / r["wall_secs"] for r in ingest]
        w(f"| ingest ≥ {m(INGEST_LINES_PER_SEC)} lines/s | "
          + ", ".join(f"{r['lines'] / 1e6:g} M lines: {m(x)} lines/s" for r, x in zip(ingest, rates))
          + f" | {yes(min(rates) >= INGEST_LINES_PER_SEC)} |")
        rss = [r["max_rss_kb"] / 1024 for r in ingest]
        w(f"| ingest peak RSS < {RSS_LIMIT_MB} MB | "
          + ", ".join(f"{r['lines'] / 1e6:g} M lines: {x:.0f} MB" for r, x in zip(ingest, rss))
          + f" | {yes(max(rss) < RSS_LIMIT_MB)} |")
        if len(ingest) > 1:
            growth = rss[-1] / rss[0] - 1
            w(f"| peak RSS flat as the file grows (≤ {RSS_FLAT_GROWTH:.0%} more for "
              f"{ingest[-1]['lines'] / ingest[0]['lines']:g}× the lines) | {growth:+.0%} | "
              f"{yes(growth <= RSS_FLAT_GROWTH)} |")
    w("")

    # -- parse ----------------------------------------------------------------------------
    w("## Parse rate, one core")
    w("")
    w(f"`parse_line` over every line of a {int(env.get('BENCH_PARSE_LINES', 0)) / 1e6:g} M-line file held in memory,")
    w(f"split with `memchr`, on one thread, best of {env.get('BENCH_REPS', '?')} passes")
    w("(`discovery/examples/parse_bench.rs`), beside a Python `re` parser of the same file extracting")
    w(f"(client, name, type), best of {env.get('BENCH_PY_REPS', '?')} (`bench/parse_baseline.py`). "
      "Queries = lines that gave a record; the two columns agree when both read the same questions. "
      "The baseline matches `bytes` (reading `str` lines from a text-mode file is no faster), "
      "with one compiled pattern per flavour (three `search`es for the JSON, whose key order varies).")
    w("")
    w("| flavour | size | queries (Rust / Python) | Rust lines/s | Rust MB/s | Python lines/s | Python MB/s | × Python |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for f in flavours:
        r, p = rust[f], python[f]
        w(f"| {f} | {r['bytes'] / 1e6:.0f} MB | {r['queries']:,} / {p['queries']:,} | "
          f"{m(r['lines_per_sec'])} | {r['mb_per_sec']:.0f} | {m(p['lines_per_sec'])} | "
          f"{p['mb_per_sec']:.0f} | {ratios[f]:.1f}× |")
    w("")

    # -- ingest ---------------------------------------------------------------------------
    if ingest:
        w("## End-to-end ingest")
        w("")
        w(f"The operators' fleet (seed {env.get('BENCH_SEED', '?')}: 6 DCs, 1,000 hosts, 5,000 containers) "
          "imported with `cmdb import`, then one `dns ingest` of a "
          f"`{env.get('BENCH_INGEST_FLAVOUR', '?')}` log of the same fleet, each size on a fresh embedded "
          "cluster. Wall time, CPU and peak RSS of the `edgewatch dns ingest` process are GNU "
          "`time -v`'s; PostgreSQL runs in its own processes, so its CPU (postmaster and the "
          "backends it reaped during the run) is shown apart and is not in the RSS. "
          "Lines/s is lines over the wall time of the whole command (connect, load the CMDB, "
          "read, parse, resolve, write).")
        w("")
        w("| lines | size | wall | lines/s | edgewatch CPU (user+sys) | PostgreSQL CPU | peak RSS | queries | resolved | live edges | `cmdb import` |")
        w("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in ingest:
            edges = f"{r['edges']:,}" if r.get("edges") is not None else "?"
            w(f"| {r['lines']:,} | {r['bytes'] / 1e6:.0f} MB | {r['wall_secs']:.2f} s | "
              f"{m(r['lines'] / r['wall_secs'])} | {r['user_secs'] + r['sys_secs']:.2f} s | "
              f"{r['pg_cpu_secs']:.2f} s | {r['max_rss_kb'] / 1024:.0f} MB | {r['queries']:,} | "
              f"{r['resolved']:,} | {edges} | {r['import_secs']:.2f} s |")
        w("")
        w("Where the time goes: wall time well above the edgewatch CPU means it is waiting for "
          "PostgreSQL (compare the PostgreSQL CPU column); the parse table above bounds what "
          "parsing alone costs.")
        w("")
        for r in ingest:
            cpu = r["user_secs"] + r["sys_secs"]
            parse = rust.get(env.get("BENCH_INGEST_FLAVOUR", ""))
            parse_secs = r["lines"] / parse["lines_per_sec"] if parse else None
            w(f"- {r['lines'] / 1e6:g} M lines: {r['wall_secs']:.2f} s wall; edgewatch busy "
              f"{cpu:.2f} s ({cpu / r['wall_secs']:.0%} of the wall time)"
              + (f", of which parsing alone would take about {parse_secs:.2f} s" if parse_secs else "")
              + f"; PostgreSQL busy {r['pg_cpu_secs']:.2f} s.")
        w("")

    # -- commands -------------------------------------------------------------------------
    w("## Reproduce")
    w("")
    w("`make bench` runs all of the following (`BENCH_DIR` defaults to `${TMPDIR:-/tmp}/edgewatch-bench`; "
      "see the head of `bench/run.sh` for the knobs):")
    w("")
    w("```sh")
    L.extend(commands)
    w("```")
    w("")
    w("The generator (`discovery::fleet`) is deterministic: the same seed gives the same inventory "
      "and the same bytes of every log. Logs carry the noise real ones do (other query types, "
      "names outside the zone, unknown consumers, services and clients, qname-minimisation "
      "steps, start-up and answer lines, the old recursor's nameless cache hits); about 88% of "
      "the questions resolve to edges.")
    w("")
    with open(out, "w") as f:
        f.write("\n".join(L))


if __name__ == "__main__":
    main()
