//! The path history store's benchmark (`make bench`, section `paths`): on a database
//! holding the operators' fleet (cmdb import + dns ingest), the host pairs
//! [`graph_store::paths::sync_pairs`] keeps, then one day of realistic trace runs written
//! through [`graph_store::paths::record_runs`] in batches, as a tracer worker does, each
//! block of six hours compacted once it is over ([`graph_store::paths::compact_runs`], as
//! `serve` and the workers do), and what that day takes on disk.
//!
//! ```text
//! DATABASE_URL=postgres://… cargo run --release -p graph-store --example paths_store_bench -- \
//!     [--seed 1] [--day YYYY-MM-DD] [--sample 1] [--batch 500] [--writers 1] \
//!     [--cross-every 120] [--intra-every 1200] [--pairs-only]
//! ```
//!
//! The runs, per pair (drawn with the seed, the same for the same pair):
//! - across data centers, 12–18 hops: the source DC's fabric (top of rack, a spine, the
//!   border), 5–11 carrier hops shared by every pair of that DC pair (one or two of them
//!   never answer, one is rate-limited and sometimes silent), the destination DC's fabric
//!   and the destination; RTTs from 0.1 ms in the fabric to the DC pair's 5–150 ms;
//! - within a data center, 4–8 hops of fabric, RTTs 0.1–0.6 ms;
//! - 3 probes per hop, their best/avg/worst/stddev/jitter; about one pair in ten has an
//!   ECMP set (two addresses) at its spine hop;
//! - about 2 % of the cross-DC pairs take another carrier path for 30–90 minutes (two
//!   route changes each), about 1 % lose 30 % of their probes from a carrier hop on for
//!   20–40 minutes (loss onset and clearing).
//!
//! Pairs across DCs run every `--cross-every` seconds (720 runs a day), pairs within one
//! every `--intra-every` (72), at a fixed phase per pair, over `--day` (default yesterday,
//! UTC). `--sample N` writes the runs of every Nth pair only (by id), for a smaller disk;
//! the figures then say what the whole fleet's day comes to, scaled by runs. `--writers`
//! callers of `record_runs` run at once, each with its own pairs. Progress goes to stderr,
//! one JSON line of results to stdout, including a cross-DC pair with a route change and
//! three window starts around it (before, during, after) for timing `route diff`.
//! `--pairs-only` syncs and counts the pairs and writes no runs.

use std::error::Error;
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use graph_store::db::Target;
use graph_store::paths::{self, Hop, PairSchedule, RecordTotals, Run, TraceRecord, TrackConfig};
use graph_store::PgPool;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

type BoxResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

const PROBES: u32 = 3;

#[derive(Debug, Clone)]
struct Args {
    url: String,
    seed: u64,
    day: NaiveDate,
    sample: u64,
    batch: usize,
    writers: usize,
    cross_every: i64,
    intra_every: i64,
    /// Sync the pairs and count them; write nothing.
    pairs_only: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        url: std::env::var("DATABASE_URL").unwrap_or_default(),
        seed: 1,
        day: (Utc::now() - Duration::days(1)).date_naive(),
        sample: 1,
        batch: 500,
        writers: 1,
        cross_every: 120,
        intra_every: 1200,
        pairs_only: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--pairs-only" {
            a.pairs_only = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--database-url" => a.url = value,
            "--day" => a.day = value.parse().map_err(|_| format!("--day {value:?}: expected YYYY-MM-DD"))?,
            _ => {
                let n: u64 = value
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("{arg} needs a positive number, got {value:?}"))?;
                match arg.as_str() {
                    "--seed" => a.seed = n,
                    "--sample" => a.sample = n,
                    "--batch" => a.batch = n as usize,
                    "--writers" => a.writers = n as usize,
                    "--cross-every" => a.cross_every = n as i64,
                    "--intra-every" => a.intra_every = n as i64,
                    other => return Err(format!("unknown argument {other:?} (see the head of paths_store_bench.rs)")),
                }
            }
        }
    }
    if a.url.is_empty() {
        return Err("set DATABASE_URL or pass --database-url".into());
    }
    if a.intra_every % a.cross_every != 0 || 86_400 % a.cross_every != 0 {
        return Err("--intra-every must be a multiple of --cross-every, which must divide a day".into());
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("paths_store_bench: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("paths_store_bench: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&args)) {
        Ok(result) => {
            println!("{result}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("paths_store_bench: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> BoxResult<Value> {
    let db = graph_store::connect(&Target::Url(args.url.clone()), graph_store::Pooler::None).await?;
    let pool = &db.pool;
    let schedule = PairSchedule {
        protocol: "icmp",
        interval: std::time::Duration::from_secs(args.cross_every as u64),
        intra_dc_every: (args.intra_every / args.cross_every) as u32,
    };
    let t = Instant::now();
    let (added, _) = paths::sync_pairs(pool, &schedule).await?;
    let sync_secs = t.elapsed().as_secs_f64();
    let pairs = load_pairs(pool).await?;
    let census = census(&pairs);
    eprintln!("paths_store_bench: {added} pairs synced in {sync_secs:.1} s: {census}");
    if args.pairs_only {
        return Ok(json!({ "seed": args.seed, "sync_secs": sync_secs, "pairs": census }));
    }
    let day_start = args.day.and_hms_opt(0, 0, 0).ok_or("bad day")?.and_utc();
    let routes: Vec<PairRoute> = pairs
        .iter()
        .filter(|p| (p.id as u64).is_multiple_of(args.sample))
        .map(|p| PairRoute::draw(p, args, day_start))
        .collect();
    let story = routes.iter().find_map(|r| r.change.map(|span| (r, span))).map(|(r, (from, to))| {
        let at = |t: DateTime<Utc>| graph_store::format_utc(&t);
        json!({ "pair_id": r.id, "src": r.src, "dst": r.dst, "dst_ip": r.dst_ip.to_string(), "change_from": at(from),
                "change_to": at(to),
                "at": [at(from - Duration::minutes(15)), at(from + Duration::minutes(5)), at(to + Duration::minutes(5))] })
    });
    let wal_before = wal_lsn(pool).await?;
    let written = write_day(pool, routes, args, day_start).await?;
    let wal_bytes = wal_lsn(pool).await? - wal_before;
    let sizes = sizes(pool, args.day).await?;
    Ok(json!({
        "seed": args.seed, "day": args.day.to_string(), "sample": args.sample, "batch": args.batch,
        "writers": args.writers, "cross_every_s": args.cross_every, "intra_every_s": args.intra_every,
        "sync_secs": sync_secs, "pairs": census, "written": written, "wal_bytes": wal_bytes,
        "sizes": sizes, "diff_pair": story,
    }))
}

/// A traced pair as the benchmark needs it.
struct PairRow {
    id: i64,
    src: String,
    dst: String,
    dst_ip: IpAddr,
    src_dc: String,
    dst_dc: String,
}

async fn load_pairs(pool: &PgPool) -> BoxResult<Vec<PairRow>> {
    let rows: Vec<(i64, String, String, String, String, String)> = sqlx::query_as(
        "SELECT id, src, dst, host(dst_ip), src_dc, dst_dc FROM trace_pairs \
         WHERE retired_at IS NULL AND NOT external ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(id, src, dst, ip, src_dc, dst_dc)| Ok(PairRow { id, src, dst, dst_ip: ip.parse()?, src_dc, dst_dc }))
        .collect()
}

/// Pairs across and within data centers, hosts, and the pairs per DC pair.
fn census(pairs: &[PairRow]) -> Value {
    let cross = pairs.iter().filter(|p| p.src_dc != p.dst_dc).count();
    let mut hosts: Vec<&str> = pairs.iter().flat_map(|p| [p.src.as_str(), p.dst.as_str()]).collect();
    hosts.sort_unstable();
    hosts.dedup();
    let mut dcs: Vec<&str> = pairs.iter().flat_map(|p| [p.src_dc.as_str(), p.dst_dc.as_str()]).collect();
    dcs.sort_unstable();
    dcs.dedup();
    let sources = pairs.iter().map(|p| p.src.as_str()).collect::<std::collections::HashSet<_>>().len();
    json!({ "total": pairs.len(), "cross_dc": cross, "intra_dc": pairs.len() - cross, "hosts": hosts.len(),
            "source_hosts": sources, "dcs": dcs.len() })
}

/// One hop of a pair's route as drawn: its addresses (empty: never answers), its RTT, and
/// whether it rate-limits its answers (sometimes silent, sometimes fewer than sent).
#[derive(Clone)]
struct HopPlan {
    addrs: Vec<IpAddr>,
    rtt_ms: f32,
    rate_limited: bool,
}

/// A pair's routes and what happens to it during the day.
struct PairRoute {
    id: i64,
    src: String,
    dst: String,
    dst_ip: IpAddr,
    cross: bool,
    /// Seconds after the cycle start at which the pair is traced.
    phase_s: f64,
    /// Within a DC: the cycle (mod the intra-DC period) the pair is traced in.
    slot: i64,
    main: Vec<HopPlan>,
    alt: Vec<HopPlan>,
    /// On the alternative route over this time.
    change: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// 30 % forwarding loss from this hop (index) on, over this time.
    loss: Option<(DateTime<Utc>, DateTime<Utc>, usize)>,
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn dc_number(dc: &str) -> u8 {
    dc.trim_start_matches(|c: char| !c.is_ascii_digit()).parse::<u8>().unwrap_or((fnv(dc) % 200) as u8 + 1)
}

fn plain(addrs: Vec<IpAddr>, rtt_ms: f32) -> HopPlan {
    HopPlan { addrs, rtt_ms, rate_limited: false }
}

impl PairRoute {
    fn draw(p: &PairRow, args: &Args, day_start: DateTime<Utc>) -> PairRoute {
        let mut rng = StdRng::seed_from_u64(args.seed ^ fnv(&p.src).rotate_left(17) ^ fnv(&p.dst));
        let (a, b) = (dc_number(&p.src_dc), dc_number(&p.dst_dc));
        let (src_rack, dst_rack) = ((fnv(&p.src) % 40) as u8 + 1, (fnv(&p.dst) % 40) as u8 + 1);
        let cross = p.src_dc != p.dst_dc;
        let mut spine = vec![v4(10, a, 250, rng.random_range(1..=4))];
        if rng.random_bool(0.1) {
            spine.push(v4(10, a, 250, 5 + rng.random_range(0..4)));
        }
        let src_side = [plain(vec![v4(10, a, src_rack, 1)], 0.15), plain(spine, 0.3)];
        let mut route = PairRoute {
            id: p.id,
            src: p.src.clone(),
            dst: p.dst.clone(),
            dst_ip: p.dst_ip,
            cross,
            phase_s: rng.random_range(0.0..args.cross_every as f64),
            slot: rng.random_range(0..args.intra_every / args.cross_every),
            main: src_side.to_vec(),
            alt: Vec::new(),
            change: None,
            loss: None,
        };
        if !cross {
            for i in 0..rng.random_range(0..=4u8) {
                route
                    .main
                    .push(plain(vec![v4(10, a, 251 + i % 3, rng.random_range(1..=8))], 0.35 + 0.05 * f32::from(i)));
            }
            route.main.push(plain(vec![v4(10, a, dst_rack, 1)], 0.5));
            route.main.push(plain(vec![p.dst_ip], 0.6));
            return route;
        }
        // Both carriers' paths of a DC pair are the same for each of its host pairs.
        let mut wan_rng = StdRng::seed_from_u64(args.seed ^ ((u64::from(a) << 8) | u64::from(b)));
        let base = wan_rng.random_range(5.0..150.0f32);
        let border = plain(vec![v4(10, a, 254, 1)], 0.5);
        let dst_side = [
            plain(vec![v4(10, b, 254, 1)], base + 0.3),
            plain(vec![v4(10, b, 250, (fnv(&p.dst) % 4) as u8 + 1)], base + 0.4),
            plain(vec![v4(10, b, dst_rack, 1)], base + 0.5),
            plain(vec![p.dst_ip], base + 0.6),
        ];
        let carrier = |first: u8, rng: &mut StdRng, base: f32| {
            let n = rng.random_range(5..=11u8);
            let silent = [rng.random_range(0..n), if rng.random_bool(0.5) { rng.random_range(0..n) } else { n }];
            let limited = rng.random_range(0..n);
            (0..n)
                .map(|i| HopPlan {
                    addrs: if silent.contains(&i) {
                        Vec::new()
                    } else {
                        vec![v4(first, a.wrapping_mul(16).wrapping_add(b), i + 1, 1)]
                    },
                    rtt_ms: 1.0 + (base - 1.0) * f32::from(i + 1) / f32::from(n),
                    rate_limited: i == limited && !silent.contains(&i),
                })
                .collect::<Vec<_>>()
        };
        let wan = carrier(198, &mut wan_rng, base);
        let alt_wan = carrier(199, &mut wan_rng, base * 1.3);
        route.alt = [
            &route.main[..],
            std::slice::from_ref(&border),
            &alt_wan,
            &dst_side.clone().map(|h| slower(h, base * 0.3)),
        ]
        .concat();
        route.main = [&route.main[..], &[border], &wan, &dst_side].concat();
        route.draw_trouble(&mut rng, day_start);
        route
    }

    /// A route change for about 2 % of the pairs, a loss episode for about 1 %.
    fn draw_trouble(&mut self, rng: &mut StdRng, day_start: DateTime<Utc>) {
        let minute = |rng: &mut StdRng, lo: i64, hi: i64| Duration::minutes(rng.random_range(lo..hi));
        if rng.random_bool(0.02) {
            let from = day_start + minute(rng, 120, 1200);
            self.change = Some((from, from + minute(rng, 30, 90)));
        }
        if rng.random_bool(0.01) {
            let from = day_start + minute(rng, 60, 1380);
            let first_wan = 4;
            self.loss = Some((from, from + minute(rng, 20, 40), rng.random_range(first_wan..self.main.len() - 2)));
        }
    }

    /// The run at `at`.
    fn run(&self, at: DateTime<Utc>, rng: &mut StdRng) -> Run {
        let during = |span: Option<(DateTime<Utc>, DateTime<Utc>)>| span.is_some_and(|(f, t)| f <= at && at < t);
        let plan = if during(self.change) { &self.alt } else { &self.main };
        let lossy_from = self.loss.filter(|&(f, t, _)| during(Some((f, t)))).map(|(_, _, i)| i);
        let last = plan.len() - 1;
        let mut hops: Vec<Hop> = plan
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let forward_loss = if lossy_from.is_some_and(|from| i >= from) { 0.3 } else { 0.0005 };
                probe_hop(i as u8 + 1, h, forward_loss, rng)
            })
            .collect();
        let reached = hops[last].received > 0;
        if !reached {
            hops[last].addrs.clear();
        }
        Run { at, hops, reached }
    }
}

fn slower(mut h: HopPlan, by_ms: f32) -> HopPlan {
    h.rtt_ms += by_ms;
    h
}

/// Three probes at one TTL: how many came back, and their RTT figures.
fn probe_hop(ttl: u8, h: &HopPlan, forward_loss: f64, rng: &mut StdRng) -> Hop {
    let mut rtts: Vec<f32> = Vec::with_capacity(PROBES as usize);
    let silent = h.addrs.is_empty() || (h.rate_limited && rng.random_bool(0.03));
    for _ in 0..PROBES {
        let lost = silent || rng.random_bool(forward_loss) || (h.rate_limited && rng.random_bool(0.15));
        if !lost {
            let spike = if rng.random_bool(0.01) { rng.random_range(1.0..20.0) } else { 0.0 };
            rtts.push(h.rtt_ms * rng.random_range(0.97..1.08) + rng.random_range(0.0..0.08) + spike);
        }
    }
    let n = rtts.len() as f32;
    let stats = (!rtts.is_empty()).then(|| {
        let avg = rtts.iter().sum::<f32>() / n;
        let var = rtts.iter().map(|r| (r - avg).powi(2)).sum::<f32>() / n;
        let jitter = rtts.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f32>() / (n - 1.0).max(1.0);
        let best = rtts.iter().copied().fold(f32::MAX, f32::min);
        let worst = rtts.iter().copied().fold(0.0, f32::max);
        (best, avg, worst, var.sqrt(), jitter)
    });
    Hop {
        ttl,
        addrs: if rtts.is_empty() { Vec::new() } else { h.addrs.clone() },
        sent: PROBES,
        received: rtts.len() as u32,
        rtt_best_ms: stats.map(|s| s.0),
        rtt_avg_ms: stats.map(|s| s.1),
        rtt_worst_ms: stats.map(|s| s.2),
        rtt_stddev_ms: stats.map(|s| s.3),
        jitter_ms: stats.map(|s| s.4),
    }
}

/// Writes the day with `--writers` tasks, each its own share of the pairs.
async fn write_day(pool: &PgPool, routes: Vec<PairRoute>, args: &Args, day_start: DateTime<Utc>) -> BoxResult<Value> {
    let cross_runs = routes.iter().filter(|r| r.cross).count() as u64 * (86_400 / args.cross_every) as u64;
    let intra_runs = routes.iter().filter(|r| !r.cross).count() as u64 * (86_400 / args.intra_every) as u64;
    let mut shares: Vec<Vec<PairRoute>> = (0..args.writers).map(|_| Vec::new()).collect();
    for r in routes {
        shares[r.id as usize % args.writers].push(r);
    }
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (w, share) in shares.into_iter().enumerate() {
        let (pool, args) = (pool.clone(), args.clone());
        tasks.push(tokio::spawn(async move { write_share(&pool, &share, &args, day_start, w).await }));
    }
    let (mut totals, mut batch_ms, mut work) = (RecordTotals::default(), Vec::new(), ShareWork::default());
    for task in tasks {
        let (t, ms, w) = task.await??;
        totals.runs += t.runs;
        totals.new_paths += t.new_paths;
        totals.events += t.events;
        totals.unknown += t.unknown;
        batch_ms.extend(ms);
        work.add(&w);
    }
    // What is left (the last hour, and any a writer finished after its compaction).
    let c = Instant::now();
    let last = paths::compact_runs(pool, day_start + Duration::days(1), std::time::Duration::from_secs(86_400)).await?;
    work.compact_secs += c.elapsed().as_secs_f64();
    work.compacted += last.map_or(0, |d| d.runs);
    let secs = t.elapsed().as_secs_f64();
    batch_ms.sort_by(f64::total_cmp);
    let pct = |p: f64| batch_ms.get(((batch_ms.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
    Ok(json!({
        "runs": totals.runs, "cross_runs": cross_runs, "intra_runs": intra_runs, "new_paths": totals.new_paths,
        "events": totals.events, "unknown": totals.unknown, "wall_secs": secs, "runs_per_sec": totals.runs as f64 / secs,
        "batches": batch_ms.len(), "batch_ms_p50": pct(0.5), "batch_ms_p99": pct(0.99),
        "batch_ms_max": pct(1.0), "record_secs": work.record_secs, "compact_secs": work.compact_secs,
        "compacted": work.compacted, "compactions": work.compactions, "hops": work.hops, "silent_hops": work.silent,
    }))
}

/// What a writer did besides its batches' totals.
#[derive(Default)]
struct ShareWork {
    record_secs: f64,
    compact_secs: f64,
    /// Runs moved into blocks, by how many compactions.
    compacted: u64,
    compactions: u64,
    hops: u64,
    silent: u64,
}

impl ShareWork {
    fn add(&mut self, o: &ShareWork) {
        self.record_secs += o.record_secs;
        self.compact_secs += o.compact_secs;
        self.compacted += o.compacted;
        self.compactions += o.compactions;
        self.hops += o.hops;
        self.silent += o.silent;
    }
}

/// One writer: cycle by cycle, its pairs due in that cycle, `--batch` runs per call; the
/// first writer compacts each block once the cycles have passed it.
async fn write_share(
    pool: &PgPool,
    share: &[PairRoute],
    args: &Args,
    day_start: DateTime<Utc>,
    writer: usize,
) -> BoxResult<(RecordTotals, Vec<f64>, ShareWork)> {
    let mut rng = StdRng::seed_from_u64(args.seed.wrapping_mul(7919) + writer as u64);
    let cfg = TrackConfig::default();
    let cycles = 86_400 / args.cross_every;
    let period = args.intra_every / args.cross_every;
    let (mut totals, mut batch_ms, mut work) = (RecordTotals::default(), Vec::new(), ShareWork::default());
    let mut batch: Vec<TraceRecord> = Vec::with_capacity(args.batch);
    for cycle in 0..cycles {
        let start = day_start + Duration::seconds(cycle * args.cross_every);
        let block = paths::block::block_of(start);
        if writer == 0 && cycle > 0 && block > paths::block::block_of(start - Duration::seconds(args.cross_every)) {
            record(pool, &mut batch, &cfg, &mut totals, &mut batch_ms).await?;
            let t = Instant::now();
            let done = paths::compact_runs(pool, block, std::time::Duration::from_secs(3600)).await?;
            work.compact_secs += t.elapsed().as_secs_f64();
            work.compacted += done.map_or(0, |d| d.runs);
            work.compactions += 1;
        }
        for r in share.iter().filter(|r| r.cross || cycle % period == r.slot) {
            let at = start + Duration::microseconds((r.phase_s * 1e6) as i64);
            let run = r.run(at, &mut rng);
            work.hops += run.hops.len() as u64;
            work.silent += run.hops.iter().filter(|h| h.addrs.is_empty()).count() as u64;
            batch.push(TraceRecord { pair_id: r.id, run });
            if batch.len() == args.batch {
                record(pool, &mut batch, &cfg, &mut totals, &mut batch_ms).await?;
            }
        }
        if writer == 0 && cycle % 60 == 59 {
            eprintln!("paths_store_bench: {} of {cycles} cycles, {} runs by writer 0", cycle + 1, totals.runs);
        }
    }
    record(pool, &mut batch, &cfg, &mut totals, &mut batch_ms).await?;
    work.record_secs = batch_ms.iter().sum::<f64>() / 1000.0;
    Ok((totals, batch_ms, work))
}

async fn record(
    pool: &PgPool,
    batch: &mut Vec<TraceRecord>,
    cfg: &TrackConfig,
    totals: &mut RecordTotals,
    batch_ms: &mut Vec<f64>,
) -> BoxResult<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let t = Instant::now();
    let done = paths::record_runs(pool, batch, cfg).await?;
    batch_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    totals.runs += done.runs;
    totals.new_paths += done.new_paths;
    totals.events += done.events;
    totals.unknown += done.unknown;
    batch.clear();
    Ok(())
}

async fn wal_lsn(pool: &PgPool) -> BoxResult<i64> {
    Ok(sqlx::query_scalar("SELECT (pg_current_wal_lsn() - '0/0')::bigint").fetch_one(pool).await?)
}

/// What the day takes: its `trace_blocks` partition (heap, TOAST, index), the rollups,
/// the paths, the events; and what is left of its `trace_runs` partition once compacted
/// (vacuumed: an emptied partition is dropped the day after next, so it is not the day's).
async fn sizes(pool: &PgPool, day: NaiveDate) -> BoxResult<Value> {
    let blocks = format!("trace_blocks_{}", day.format("%Y%m%d"));
    let runs = format!("trace_runs_{}", day.format("%Y%m%d"));
    // What autovacuum does in a running store: dead versions (runs moved, blocks merged
    // with late runs) made free space.
    sqlx::query(&format!("VACUUM {runs}")).execute(pool).await?;
    sqlx::query(&format!("VACUUM {blocks}")).execute(pool).await?;
    sqlx::query("CHECKPOINT").execute(pool).await?;
    let size = |sql: String| async move { sqlx::query_scalar::<_, i64>(&sql).fetch_one(pool).await };
    let total = |rel: &str| format!("SELECT pg_total_relation_size('{rel}')");
    let toast = |rel: &str| {
        format!(
            "SELECT coalesce(pg_total_relation_size(nullif(reltoastrelid, 0)), 0) FROM pg_class WHERE relname = '{rel}'"
        )
    };
    let compressed =
        size(format!("SELECT count(*) FROM {blocks} WHERE pg_column_compression(data) IS NOT NULL")).await?;
    Ok(json!({
        "partition": blocks,
        "blocks_total": size(total(&blocks)).await?,
        "blocks_heap": size(format!("SELECT pg_relation_size('{blocks}')")).await?,
        "blocks_index": size(format!("SELECT pg_indexes_size('{blocks}')")).await?,
        "blocks_toast": size(toast(&blocks)).await?,
        "blocks_rows": size(format!("SELECT count(*) FROM {blocks}")).await?,
        "blocks_compressed": compressed,
        "runs_rows": size(format!("SELECT coalesce(sum(runs), 0)::bigint FROM {blocks}")).await?,
        "data_bytes": size(format!("SELECT coalesce(sum(pg_column_size(data)), 0)::bigint FROM {blocks}")).await?,
        "data_raw_bytes": size(format!("SELECT coalesce(sum(octet_length(data)), 0)::bigint FROM {blocks}")).await?,
        "left_rows": size(format!("SELECT count(*) FROM {runs}")).await?,
        "left_total": size(total(&runs)).await?,
        "hourly": size(total("trace_hourly")).await?,
        "hourly_rows": size("SELECT count(*) FROM trace_hourly".into()).await?,
        "hourly_data": size("SELECT coalesce(sum(octet_length(data)), 0)::bigint FROM trace_hourly".into()).await?,
        "paths": size(total("trace_paths")).await?,
        "path_rows": size("SELECT count(*) FROM trace_paths".into()).await?,
        "events": size(total("route_events")).await?,
        "event_rows": size("SELECT count(*) FROM route_events".into()).await?,
        "pairs": size(total("trace_pairs")).await?,
        "lz4": size("SELECT count(*) FROM pg_attribute WHERE attrelid = 'trace_blocks'::regclass \
                     AND attname = 'data' AND attcompression = 'l'".into()).await? > 0,
    }))
}
