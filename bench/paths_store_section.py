#!/usr/bin/env python3
"""The "Path history store" section of docs/BENCHMARKS.md, from the paths-store.json that
bench/paths_store.sh writes into the results directory.

    python3 bench/paths_store_section.py RESULTS_DIR   # prints the section ('' when absent)

Figures of a sampled day (BENCH_PATHS_SAMPLE > 1) are scaled to the whole fleet's day by
runs: every per-run cost (the day's hour blocks, their index entries, the rollup rows the
sampled pairs make, their paths and events) grows with the pairs written.
"""

import json
import os
import sys

BUDGET = 5e9  # bytes a day, issue 13
DIFF_MS = 200
ROLLUP_DAYS = 400
ROW_BYTES = 276  # a run as one row of trace_runs, index included (this section's run of 2026-12-04)


def load(results):
    try:
        with open(os.path.join(results, "paths-store.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def yes(ok):
    return "yes" if ok else "**NO**"


def gb(b):
    return f"{b / 1e9:.2f} GB" if b < 1e11 else f"{b / 1e12:.2f} TB"


def mb(b):
    return f"{b / 1e6:.1f} MB"


def n(x):
    return f"{x:,.0f}"


def figures(d):
    """The measured and derived figures the section shows."""
    w, s, p = d["write"]["written"], d["write"]["sizes"], d["write"]["pairs"]
    per_day = {"cross": 86400 // d["write"]["cross_every_s"], "intra": 86400 // d["write"]["intra_every_s"]}
    full_runs = p["cross_dc"] * per_day["cross"] + p["intra_dc"] * per_day["intra"]
    runs = w["runs"]
    scale = full_runs / runs
    day = {
        "runs": s["blocks_total"] * scale,
        "hourly": s["hourly"] * scale,
        "paths": s["paths"] * scale,
        "events": s["events"] * scale,
    }
    day_total = day["runs"] + day["hourly"] + day["paths"] + day["events"]
    per_run_all = day_total / full_runs
    intra_bytes = p["intra_dc"] * per_day["intra"] * per_run_all
    return {
        "w": w, "s": s, "p": p, "per_day": per_day, "full_runs": full_runs, "runs": runs, "scale": scale,
        "day": day, "day_total": day_total, "per_run_all": per_run_all,
        "max_cross": max(0.0, (BUDGET - intra_bytes) / (per_day["cross"] * per_run_all)),
        "rate_needed": full_runs / 86400,
    }


def targets(d, f):
    cli, api = d["diff_cli"], d["diff_api"]
    return [
        (f"one day at the operators' scale ≤ 5 GB, raw runs and hourly rollups ({n(f['p']['cross_dc'])} cross-DC pairs every "
         f"{d['write']['cross_every_s'] // 60} min, {n(f['p']['intra_dc'])} within DCs every "
         f"{d['write']['intra_every_s'] // 60} min)",
         f"{gb(f['day_total'])} ({f['day_total'] / BUDGET:.1f}× the budget)", f["day_total"] <= BUDGET),
        ("writing keeps up with the day (runs/s ≥ the day's runs / 86,400 s)",
         f"{n(f['w']['runs_per_sec'])}/s vs {n(f['rate_needed'])}/s needed", f["w"]["runs_per_sec"] >= f["rate_needed"]),
        (f"`route diff` over the stored day < {DIFF_MS} ms (3 windows of 5 min, whole command)",
         f"median {cli['median_ms']:.0f} ms, slowest of {cli['reps']}: {cli['max_ms']:.0f} ms; "
         f"API median {api['median_ms']:.0f} ms", cli["max_ms"] < DIFF_MS),
    ]


def section(d):
    f = figures(d)
    w, s, p, wp = f["w"], f["s"], f["p"], d["write_process"]
    sample, dns = d["write"]["sample"], d["dns_pairs"]
    m = d.get("machine") or {}
    L = []
    o = L.append
    o("## Path history store")
    o("")
    o("`bench/paths_store.sh` (section `paths` of `make bench`; the writer is "
      "`graph-store/examples/paths_store_bench.rs`): the operators' fleet (seed "
      f"{d['write']['seed']}: 6 DCs, 1,000 hosts, 5,000 containers) loaded as the ingest benchmark loads it "
      f"(`cmdb import` of the inventory, `dns ingest` of {n(d['dns_lines'])} lines), the host pairs "
      "`graph_store::paths::sync_pairs` keeps from it, then one day of trace runs written through "
      "`record_runs`, each six hours compacted into blocks once the cycles pass them (`compact_runs`, what "
      "`serve` and the workers do ten minutes after a block's end), and `route diff` over that day. The embedded cluster "
      f"({m.get('postgres', '?').replace('psql (PostgreSQL)', 'PostgreSQL')}) kept its data on {d['pg_storage']} "
      f"(`{d['pg_dir']}`) and ran on the same machine as the writer ({m.get('cores', '?')} cores, "
      f"{m.get('cpu', '?')}, {m.get('memory_gib', '?')} GiB); release build of commit {d.get('commit', '?')}. "
      "Load average "
      f"(1, 5, 15 min) at start / end: {d['loadavg'][0]} / {d['loadavg'][1]}; the whole benchmark took "
      f"{d['seconds']} s.")
    o("")
    o("### Host pairs")
    o("")
    o("| edges | cross-DC pairs | pairs within a DC | hosts |")
    o("| --- | ---: | ---: | ---: |")
    o(f"| the generated fleet's DNS edges | {n(dns['cross_dc'])} | {n(dns['intra_dc'])} | {n(dns['hosts'])} |")
    o(f"| and {n(d['links']['links'])} cross-DC links of {n(d['links']['containers'])} consumers "
      f"(`bench/paths_links.sql`) | {n(p['cross_dc'])} | {n(p['intra_dc'])} | {n(p['hosts'])} |")
    o("")
    o("The generated fleet gives **no cross-DC pair**: every DC holds replicas of every shared service "
      "and the resolver answers a consumer with the closest tier (its own host, else its own DC), so "
      "every DNS edge stays within its DC. To measure the budget where it bites, the benchmark adds "
      "a links export joining each consumer container to every replica, in the other five DCs, of "
      "each shared service it uses (not `api`, always on its own host): the cross-DC pairs a fleet "
      "has when its consumers use every replica (global service names, failover). That is this "
      "fleet's upper bound short of a full mesh; the budget's break-even below says where a real "
      "fleet's count may lie.")
    o("")
    o("### Writing a day")
    o("")
    share = "the whole day" if sample == 1 else f"every {sample}th pair by id (a 1/{sample} sample of the day)"
    o(f"{d['write']['day']} (UTC), {share}: each pair at a fixed phase, cross-DC pairs every "
      f"{d['write']['cross_every_s']} s ({f['per_day']['cross']} runs a day), pairs within a DC every "
      f"{d['write']['intra_every_s']} s ({f['per_day']['intra']}), cycle by cycle, "
      f"{d['write']['batch']} runs per `record_runs` call, {d['write']['writers']} writer(s). Runs: "
      "12–18 hops across DCs (source fabric, 5–11 carrier hops shared by the DC pair with one or two that never "
      "answer and one rate-limited, destination fabric), 4–8 within; 3 probes per hop; RTTs 0.1–150 ms; "
      "an ECMP set at the spine for about 1 pair in 10; about 2 % of the cross-DC pairs on another carrier "
      "path for 30–90 min, about 1 % losing 30 % from a carrier hop for 20–40 min. "
      f"Average {w['hops'] / w['runs']:.1f} hops per run, {w['silent_hops'] / w['runs']:.1f} of them silent.")
    o("")
    o("| figure | value |")
    o("| --- | ---: |")
    o(f"| runs written | {n(w['runs'])} ({n(w['cross_runs'])} cross-DC, {n(w['intra_runs'])} within DCs) |")
    o(f"| wall time of the writes | {w['wall_secs']:.0f} s |")
    o(f"| runs per second, all in (`record_runs`: runs, paths, trackers, events; and compaction) | "
      f"{n(w['runs_per_sec'])} |")
    o(f"| of the wall time: `record_runs` / compaction ({n(w['compactions'])} times, {n(w['compacted'])} runs "
      f"moved) | {w['record_secs']:.0f} s / {w['compact_secs']:.0f} s "
      f"({w['compacted'] / max(w['compact_secs'], 1e-9):,.0f} runs/s) |")
    o(f"| needed for the whole fleet's day ({n(f['full_runs'])} runs / 86,400 s) | {n(f['rate_needed'])}/s "
      f"({w['runs_per_sec'] / f['rate_needed']:.1f}× headroom) |")
    o(f"| `record_runs` call of {d['write']['batch']} runs: median / p99 / slowest | {w['batch_ms_p50']:.0f} / "
      f"{w['batch_ms_p99']:.0f} / {w['batch_ms_max']:.0f} ms |")
    o(f"| writer CPU (user + system) / PostgreSQL CPU | {wp['user_secs'] + wp['sys_secs']:.0f} s / {wp['pg_cpu_secs']:.0f} s |")
    o(f"| writer peak RSS | {wp['max_rss_kb'] / 1024:.0f} MB |")
    o(f"| new distinct paths / route events (changed, flap, loss) | {n(w['new_paths'])} / {n(w['events'])} |")
    o(f"| WAL written | {gb(d['write']['wal_bytes'])} ({n(d['write']['wal_bytes'] / w['runs'])} bytes per run; "
      f"the whole fleet's day: {gb(d['write']['wal_bytes'] * f['scale'])}) |")
    o("")
    o(f"The WAL is not kept, but it is the disk's write load: {d['write']['wal_bytes'] / f['s']['blocks_total']:.0f}× "
      "the bytes of the day's blocks. Each run is written twice (its row in `trace_runs`, then its "
      "block) and deleted once, and updates its pair's row (the trackers' state), with full-page images "
      "after each checkpoint.")
    o("")
    L.extend(bytes_table(d, f))
    L.extend(verdict(d, f))
    L.extend(diff_part(d))
    L.extend(targets_table(d, f))
    L.extend(commands(d))
    return L


def bytes_table(d, f):
    s, day, runs, scale, sample = f["s"], f["day"], f["runs"], f["scale"], d["write"]["sample"]
    L = []
    o = L.append
    scaled = "the whole fleet's day" + ("" if sample == 1 else f" (× {scale:.2f}, by runs)")
    o(f"What it takes (`pg_total_relation_size`: table, indexes, TOAST), per run, and {scaled}:")
    o("")
    o(f"| relation | written | bytes per run | {'a day' if sample == 1 else 'a day, scaled'} |")
    o("| --- | ---: | ---: | ---: |")
    lz4 = "lz4" if s.get("lz4") else "pglz"
    rows = [
        (f"`{s['partition']}`: {n(s['blocks_rows'])} blocks of {n(s['runs_rows'])} runs (heap "
         f"{mb(s['blocks_heap'])}, index {mb(s['blocks_index'])}, TOAST {mb(s['blocks_toast'])})",
         s["blocks_total"], day["runs"]),
        (f"… of which the blocks' bytes as stored ({n(s['blocks_compressed'])} compressed by {lz4}; "
         f"{mb(s['data_raw_bytes'])} before)", s["data_bytes"], s["data_bytes"] * scale),
        (f"`trace_hourly` ({n(s['hourly_rows'])} rows: one per pair and hour, written once)", s["hourly"],
         day["hourly"]),
        (f"`trace_paths` ({n(s['path_rows'])} paths)", s["paths"], day["paths"]),
        (f"`route_events` ({n(s['event_rows'])} events)", s["events"], day["events"]),
    ]
    for name, b, scaled_b in rows:
        o(f"| {name} | {mb(b)} | {b / runs:.0f} | {gb(scaled_b)} |")
    o(f"| **the day: runs, rollups, paths, events** | {mb(f['day_total'] / scale)} | "
      f"{f['per_run_all']:.0f} | **{gb(f['day_total'])}** |")
    o("")
    o(f"Not the day's: its `trace_runs` partition, where the runs land until their block is compacted, held "
      f"{n(s['left_rows'])} rows and {mb(s['left_total'])} after the last compaction and a `VACUUM` (its index "
      "keeps the pages the day's inserts grew it to); emptied, it is dropped the day after next "
      "(`drop_old_partitions`). At any time it holds up to the last six hours and ten minutes of runs: at "
      f"~{ROW_BYTES} bytes a run as a row (the layout before blocks, measured), "
      f"{gb(f['full_runs'] / 86400 * (6 * 3600 + 600) * ROW_BYTES)} at this fleet's scale, reused hour after hour. "
      f"`trace_pairs` ({n(f['p']['total'])} pairs, not per day) took {mb(s['pairs'])} after the day: each run "
      "rewrites its pair's row (trackers' state as JSON, ~0.8 kB), so the table carries dead versions until vacuum.")
    o("")
    return L


def verdict(d, f):
    day_total, p, per_run, s = f["day_total"], f["p"], f["per_run_all"], f["s"]
    rollup_day = f["day"]["hourly"]
    L = []
    o = L.append
    if day_total <= BUDGET:
        o(f"**Verdict: fits.** {gb(day_total)} a day against 5 GB: {BUDGET / day_total:.2f}× margin "
          f"({gb(BUDGET - day_total)} to spare). At {per_run:.0f} bytes per run, all in, the budget holds "
          f"{n(f['max_cross'])} cross-DC pairs every {d['write']['cross_every_s'] // 60} min (with this fleet's "
          f"{n(p['intra_dc'])} pairs within DCs).")
    else:
        o(f"**Verdict: does not fit.** {gb(day_total)} a day against 5 GB: over by {gb(day_total - BUDGET)} "
          f"({day_total / BUDGET:.1f}×). At {per_run:.0f} bytes per run, all in, the budget holds "
          f"{n(f['max_cross'])} cross-DC pairs every {d['write']['cross_every_s'] // 60} min (with this fleet's "
          f"{n(p['intra_dc'])} pairs within DCs).")
    o("")
    o(f"Kept: raw runs 14 days (`[trace] keep_days`): {gb(f['day']['runs'] * 14)}; rollups "
      f"{ROLLUP_DAYS} days ({n(s['hourly_rows'] * f['scale'])} rows a day of "
      f"{s['hourly'] / max(1, s['hourly_rows']):.0f} bytes): {gb(rollup_day * ROLLUP_DAYS)}.")
    o("")
    return L


def diff_part(d):
    cli, api = d["diff_cli"], d["diff_api"]
    w = d["write"]["diff_pair"]
    L = []
    o = L.append
    o("### `route diff` over the stored day")
    o("")
    o(f"Pair {w['src']} → {w['dst']} (across DCs; on the other carrier path from {w['change_from']} to "
      f"{w['change_to']}), three 5-minute windows: before, during, after. The whole command "
      f"(`edgewatch route diff … --at T1 --at T2 --at T3 --window 5m --format json`: start, connect, find the "
      f"pair, read the runs, compare, label the hops, print) {cli['reps']} times: median "
      f"**{cli['median_ms']:.1f} ms**, slowest {cli['max_ms']:.1f} ms. The same through `serve`'s "
      f"`GET /api/v1/routes/diff` (curl's total time, connection included): median {api['median_ms']:.1f} ms, "
      f"slowest {api['max_ms']:.1f} ms. What it said:")
    o("")
    for summary in d["diff_summaries"]:
        o(f"- {summary}")
    o("")
    o("The blocks query of one window (`graph_store::paths::read::runs_between`; it also asks `trace_runs` "
      "for runs not compacted, and `trace_paths` for the paths by id), `EXPLAIN (ANALYZE, BUFFERS)`: the "
      "partitions pruned to the day's, the primary key `(pair_id, starts)` walked for the window's blocks:")
    o("")
    o("```text")
    L.extend(line for line in d["explain"].strip().splitlines())
    o("```")
    o("")
    return L


def targets_table(d, f):
    L = ["| target | measured | met |", "| --- | --- | --- |"]
    for target, measured, ok in targets(d, f):
        L.append(f"| {target} | {measured} | {yes(ok)} |")
    L.append("")
    return L


def commands(d):
    L = ["Reproduce (`BENCH_ONLY=paths bash bench/run.sh` runs the same inside `make bench`):", "", "```sh",
         d.get("invocation", "bash bench/paths_store.sh"), "```", "",
         "which runs (`$BENCH_DIR` as in `bench/run.sh`):", "", "```sh"]
    L.extend(d["commands"])
    L.extend(["```", ""])
    return L


def main():
    d = load(sys.argv[1])
    if d:
        print("\n".join(section(d)))


if __name__ == "__main__":
    main()
