//! The topology benchmark of `make bench`: on a database filled by
//! `bench/topology_fill.sql` (100,000 nodes, 1,000,000 live edges), how long
//! [`graph_store::topology::load`] takes, and how fast `blast` and `dependents --depth D`
//! are answered on the loaded snapshot, beside the same questions asked of PostgreSQL
//! directly (plain SQL for `blast`, a recursive CTE for `dependents`).
//!
//! ```text
//! DATABASE_URL=postgres://… cargo run --release -p graph-store --example topology_bench -- \
//!     [--seed 1] [--samples 20] [--hosts 5] [--dcs 1] [--depth 5] [--reps 3] [--loads 3]
//! ```
//!
//! Samples, chosen with the seed: `--samples` nodes with at least one dependent for `blast`
//! (a quarter of them the sole provider of some service), `--hosts` hosts (half of them
//! holding such a sole provider) and `--dcs` data centers; `--samples` nodes with at least
//! one dependent for `dependents`. Every sample is asked of both sides once first, and the
//! answers must be the same sets (`dependents`: each node with its hop count; `blast`: each
//! consumer with each service it loses and the providers gone); a difference, or a kind of
//! question whose answers are all empty, fails the run. Then each question is timed
//! `--reps` times on each side, and a sample's latency is the median of its runs. The SQL
//! statements are sent unprepared, so PostgreSQL plans each for its own target. Progress
//! goes to stderr, one JSON line of results to stdout.

use std::collections::{BTreeSet, HashSet};
use std::error::Error;
use std::fmt::Debug;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use graph_store::db::Target;
use graph_store::topology::{self, Snapshot};
use graph_store::PgPool;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};

type BoxResult<T> = Result<T, Box<dyn Error>>;

/// `dependents` of a node up to a depth, as a set: (node, hops).
type Reach = Vec<(String, i64)>;
type ReachRow = (String, i64);
/// `blast` as a set: (consumer, service lost or None for a service-less node, providers gone).
type Losses = Vec<LossRow>;
type LossRow = (String, Option<String>, Vec<String>);

/// The recursive CTE for `dependents N --depth D`: walk from N against the dependencies
/// (consumer node → live node owning the edge's destination address), keeping each node's
/// shortest hop count.
const DEPENDENTS_SQL: &str = "\
WITH RECURSIVE walk (node_id, hops) AS (
    SELECT id, 0 FROM nodes WHERE name = $1 AND retired_at IS NULL
  UNION
    SELECT e.src_id, w.hops + 1
    FROM walk w
    JOIN addresses a ON a.node_id = w.node_id AND a.retired_at IS NULL
    JOIN edges e ON e.dst_ip = a.ip AND e.retired_at IS NULL
    JOIN nodes s ON s.id = e.src_id AND s.retired_at IS NULL
    WHERE w.hops < $2
)
SELECT n.name, min(w.hops)::int8
FROM walk w JOIN nodes n ON n.id = w.node_id
WHERE n.name <> $1
GROUP BY n.name
ORDER BY 2, 1";

/// `blast X` in SQL: X is a node, else a host, else a data center; the consumers outside X
/// with a dependency into X; what each uses (a service, through the nodes it has edges to
/// for it; a published link to a node counts as using every service that node provides,
/// or that node itself when it provides none); the uses whose every provider is in X.
const BLAST_SQL: &str = "\
WITH x AS MATERIALIZED (
    SELECT id FROM nodes WHERE retired_at IS NULL AND name = $1
    UNION ALL
    SELECT id FROM nodes WHERE retired_at IS NULL AND host = $1
        AND NOT EXISTS (SELECT 1 FROM nodes WHERE retired_at IS NULL AND name = $1)
    UNION ALL
    SELECT id FROM nodes WHERE retired_at IS NULL AND dc = $1
        AND NOT EXISTS (SELECT 1 FROM nodes WHERE retired_at IS NULL AND (name = $1 OR host = $1))
),
consumers AS MATERIALIZED (
    SELECT DISTINCT e.src_id AS id
    FROM x
    JOIN addresses a ON a.node_id = x.id AND a.retired_at IS NULL
    JOIN edges e ON e.dst_ip = a.ip AND e.retired_at IS NULL
    JOIN nodes s ON s.id = e.src_id AND s.retired_at IS NULL
    WHERE NOT EXISTS (SELECT 1 FROM x x2 WHERE x2.id = e.src_id)
),
deps AS MATERIALIZED (
    SELECT e.src_id AS c, a.node_id AS d, e.services,
           (cardinality(e.services) = 0 OR NOT (e.sources <@ ARRAY['dns'])) AS linked
    FROM consumers
    JOIN edges e ON e.src_id = consumers.id AND e.retired_at IS NULL
    JOIN addresses a ON a.ip = e.dst_ip AND a.retired_at IS NULL
    JOIN nodes d ON d.id = a.node_id AND d.retired_at IS NULL
    WHERE a.node_id <> e.src_id
),
uses AS (
    SELECT deps.c, s.service, deps.d FROM deps CROSS JOIN LATERAL unnest(deps.services) AS s (service)
    UNION
    SELECT deps.c, sp.service, deps.d FROM deps JOIN service_providers sp ON sp.node_id = deps.d WHERE deps.linked
    UNION
    SELECT deps.c, NULL, deps.d FROM deps
    WHERE deps.linked AND NOT EXISTS (SELECT 1 FROM service_providers sp WHERE sp.node_id = deps.d)
),
lost AS (
    SELECT u.c, u.service, array_agg(u.d) AS gone
    FROM uses u LEFT JOIN x ON x.id = u.d
    GROUP BY u.c, u.service, CASE WHEN u.service IS NULL THEN u.d END
    HAVING bool_and(x.id IS NOT NULL)
)
SELECT (SELECT c.name FROM nodes c WHERE c.id = l.c), l.service,
       ARRAY(SELECT p.name FROM nodes p WHERE p.id = ANY (l.gone) ORDER BY p.name)
FROM lost l
ORDER BY 1, 2";

#[derive(Debug)]
struct Args {
    url: String,
    seed: u64,
    samples: usize,
    hosts: usize,
    dcs: usize,
    depth: usize,
    reps: usize,
    loads: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        url: std::env::var("DATABASE_URL").unwrap_or_default(),
        seed: 1,
        samples: 20,
        hosts: 5,
        dcs: 1,
        depth: 5,
        reps: 3,
        loads: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--database-url" {
            a.url = args.next().ok_or("--database-url needs a URL")?;
            continue;
        }
        let n: usize = args
            .next()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{arg} needs a positive number"))?;
        match arg.as_str() {
            "--seed" => a.seed = n as u64,
            "--samples" => a.samples = n,
            "--hosts" => a.hosts = n,
            "--dcs" => a.dcs = n,
            "--depth" => a.depth = n,
            "--reps" => a.reps = n,
            "--loads" => a.loads = n,
            other => return Err(format!("unknown argument {other:?} (see the head of topology_bench.rs)")),
        }
    }
    if a.url.is_empty() {
        return Err("set DATABASE_URL or pass --database-url".into());
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("topology_bench: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("topology_bench: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&args)) {
        Ok(result) => {
            println!("{result}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("topology_bench: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> BoxResult<Value> {
    let db = graph_store::connect(&Target::Url(args.url.clone()), graph_store::Pooler::None).await?;
    let pool = &db.pool;
    let (live_nodes, live_edges): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM nodes WHERE retired_at IS NULL), \
                (SELECT count(*) FROM edges WHERE retired_at IS NULL)",
    )
    .fetch_one(pool)
    .await?;
    eprintln!("database: {live_nodes} live nodes, {live_edges} live edges");
    let (load_secs, snap) = load_snapshots(pool, args.loads).await?;
    let samples = Samples::draw(pool, &snap, args).await?;
    let results = ask(pool, &snap, &samples, args).await?;
    Ok(json!({
        "seed": args.seed,
        "live_nodes": live_nodes,
        "live_edges": live_edges,
        "snapshot_nodes": snap.node_count(),
        "snapshot_deps": snap.edge_count(),
        "load_secs": load_secs,
        "load_median_secs": median(&load_secs),
        "depth": args.depth,
        "reps": args.reps,
        "questions": Value::Object(results),
    }))
}

/// Loads the snapshot `loads` times (never two in memory at once): the load times and the
/// last snapshot.
async fn load_snapshots(pool: &PgPool, loads: usize) -> BoxResult<(Vec<f64>, Snapshot)> {
    let mut load_secs = Vec::new();
    let mut snapshot = None;
    for i in 0..loads {
        drop(snapshot.take()); // never two snapshots in memory at once
        let t = Instant::now();
        let s = topology::load(pool).await?;
        load_secs.push(t.elapsed().as_secs_f64());
        eprintln!(
            "snapshot load {}: {:.2} s ({} nodes, {} dependencies)",
            i + 1,
            load_secs[i],
            s.node_count(),
            s.edge_count()
        );
        snapshot = Some(s);
    }
    Ok((load_secs, snapshot.ok_or("no snapshot loaded")?))
}

/// The questions' targets, drawn with the seed.
struct Samples {
    blast_nodes: Vec<String>,
    hosts: Vec<String>,
    dcs: Vec<String>,
    dependents: Vec<String>,
}

impl Samples {
    async fn draw(pool: &PgPool, snap: &Snapshot, args: &Args) -> BoxResult<Samples> {
        let mut rng = StdRng::seed_from_u64(args.seed);
        let nodes = snap.nodes();
        let providers: Vec<String> =
            nodes.iter().filter(|n| snap.dependents(n, Some(1)).is_some_and(|d| !d.is_empty())).cloned().collect();
        // The sole providers of a service, and their hosts: a blast of one of those takes a
        // service away from its consumers, so the samples include answers that are not empty.
        let sole: Vec<(String, String)> = sqlx::query_as(
            "SELECT min(n.name), min(n.host) FROM service_providers sp \
         JOIN nodes n ON n.id = sp.node_id AND n.retired_at IS NULL \
         GROUP BY sp.service HAVING count(*) = 1 ORDER BY 1",
        )
        .fetch_all(pool)
        .await?;
        let with_dependents: HashSet<&String> = providers.iter().collect();
        let sole: Vec<(String, String)> = sole.into_iter().filter(|(n, _)| with_dependents.contains(n)).collect();
        let sole_nodes: Vec<String> = sole.iter().map(|(n, _)| n.clone()).collect();
        let sole_hosts: Vec<String> =
            sole.iter().map(|(_, h)| h.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let n_sole = (args.samples / 4).min(sole_nodes.len());
        let mut blast_nodes = pick(&mut rng, &sole_nodes, n_sole);
        blast_nodes = pick_more(&mut rng, &providers, args.samples, blast_nodes);
        let n_sole_hosts = (args.hosts / 2).min(sole_hosts.len());
        let hosts = pick(&mut rng, &sole_hosts, n_sole_hosts);
        let hosts = pick_more(&mut rng, &snap.hosts(), args.hosts, hosts);
        let dcs = pick(&mut rng, &snap.dcs(), args.dcs);
        let dependents = pick(&mut rng, &providers, args.samples);
        eprintln!(
            "samples: {} nodes with dependents ({} of them sole providers of a service), {} hosts ({} with one), \
         {} DC(s) for blast; {} nodes for dependents --depth {}",
            blast_nodes.len(),
            n_sole,
            hosts.len(),
            n_sole_hosts,
            dcs.len(),
            dependents.len(),
            args.depth
        );
        Ok(Samples { blast_nodes, hosts, dcs, dependents })
    }
}

/// Every question over its samples, from the snapshot and from SQL side by side.
async fn ask(
    pool: &PgPool,
    snap: &Snapshot,
    samples: &Samples,
    args: &Args,
) -> BoxResult<serde_json::Map<String, Value>> {
    let Samples { blast_nodes, hosts, dcs, dependents } = samples;
    let mut results = serde_json::Map::new();
    for (kind, targets) in [("blast_node", blast_nodes), ("blast_host", hosts), ("blast_dc", dcs)] {
        let r = measure(
            kind,
            targets,
            args.reps,
            |t| blast_snapshot(snap, t),
            |t| blast_sql(pool, t.to_string()),
            |answer: &[LossRow]| answer.iter().map(|(c, _, _)| c).collect::<BTreeSet<_>>().len(),
        )
        .await?;
        results.insert(kind.into(), r);
    }
    let depth = args.depth;
    let r = measure(
        "dependents",
        dependents,
        args.reps,
        |t| dependents_snapshot(snap, t, depth),
        |t| dependents_sql(pool, t.to_string(), depth),
        |answer: &[ReachRow]| answer.len(),
    )
    .await?;
    results.insert("dependents".into(), r);

    // Over every blast sample together, for the target check.
    let mut all = Vec::new();
    for kind in ["blast_node", "blast_host", "blast_dc"] {
        all.push(results[kind].clone());
    }
    results.insert("blast".into(), combine(&all));
    Ok(results)
}

/// `n` distinct elements of `from`, chosen with `rng`, in the order drawn.
fn pick(rng: &mut StdRng, from: &[String], n: usize) -> Vec<String> {
    rand::seq::index::sample(rng, from.len(), n.min(from.len())).into_iter().map(|i| from[i].clone()).collect()
}

/// `chosen`, then elements of `from` not in it, chosen with `rng`, up to `n` in all.
fn pick_more(rng: &mut StdRng, from: &[String], n: usize, mut chosen: Vec<String>) -> Vec<String> {
    let taken: HashSet<String> = chosen.iter().cloned().collect();
    let rest: Vec<String> = from.iter().filter(|x| !taken.contains(*x)).cloned().collect();
    let more = n.saturating_sub(chosen.len());
    chosen.extend(pick(rng, &rest, more));
    chosen
}

fn blast_snapshot(snap: &Snapshot, target: &str) -> Option<Losses> {
    let blast = snap.blast(target)?;
    let mut out: Losses = blast
        .consumers
        .into_iter()
        .flat_map(|l| {
            let name = l.name;
            l.lost.into_iter().map(move |x| (name.clone(), x.service, x.providers))
        })
        .collect();
    out.sort();
    Some(out)
}

async fn blast_sql(pool: &PgPool, target: String) -> BoxResult<Losses> {
    let mut rows: Losses = sqlx::query_as(BLAST_SQL).persistent(false).bind(target).fetch_all(pool).await?;
    rows.sort();
    Ok(rows)
}

fn dependents_snapshot(snap: &Snapshot, node: &str, depth: usize) -> Option<Reach> {
    let mut out: Reach =
        snap.dependents(node, Some(depth))?.into_iter().map(|r| (r.name.to_string(), r.hops as i64)).collect();
    out.sort();
    Some(out)
}

async fn dependents_sql(pool: &PgPool, node: String, depth: usize) -> BoxResult<Reach> {
    let mut rows: Reach =
        sqlx::query_as(DEPENDENTS_SQL).persistent(false).bind(node).bind(depth as i32).fetch_all(pool).await?;
    rows.sort();
    Ok(rows)
}

/// Asks every target of both sides, checks the answers agree, then times each `reps`
/// times on each side. `size` says how big an answer is (for the report).
async fn measure<T, S, Q, F>(
    kind: &str,
    targets: &[String],
    reps: usize,
    snapshot: S,
    sql: Q,
    size: impl Fn(&[T]) -> usize,
) -> BoxResult<Value>
where
    T: Ord + Debug,
    S: Fn(&str) -> Option<Vec<T>>,
    Q: Fn(&str) -> F,
    F: std::future::Future<Output = BoxResult<Vec<T>>>,
{
    let mut sizes = Vec::new();
    let mut rows = 0;
    for t in targets {
        let ours = snapshot(t).ok_or_else(|| format!("{kind}: the snapshot knows no {t:?}"))?;
        let theirs = sql(t).await?;
        if ours != theirs {
            return Err(difference(kind, t, ours, theirs).into());
        }
        sizes.push(size(&ours));
        rows += ours.len();
    }
    if !targets.is_empty() && rows == 0 {
        return Err(format!("{kind}: every answer is empty, so the comparison proves nothing").into());
    }
    let (mut snap_ms, mut sql_ms) = (Vec::new(), Vec::new());
    for t in targets {
        let mut runs = Vec::new();
        for _ in 0..reps {
            let start = Instant::now();
            black_box(snapshot(black_box(t)));
            runs.push(start.elapsed().as_secs_f64() * 1e3);
        }
        snap_ms.push(median(&runs));
        let mut runs = Vec::new();
        for _ in 0..reps {
            let start = Instant::now();
            black_box(sql(t).await?);
            runs.push(start.elapsed().as_secs_f64() * 1e3);
        }
        sql_ms.push(median(&runs));
    }
    let result = json!({
        "samples": targets.len(),
        "targets": targets,
        "answer_sizes": sizes,
        "rows_compared": rows,
        "snapshot_ms": snap_ms,
        "sql_ms": sql_ms,
        "snapshot": summary(&snap_ms),
        "sql": summary(&sql_ms),
    });
    eprintln!(
        "{kind}: {} samples agree ({} answer rows); snapshot median {:.2} ms, max {:.2} ms; SQL median {:.1} ms, \
         max {:.1} ms",
        targets.len(),
        rows,
        median(&snap_ms),
        max(&snap_ms),
        median(&sql_ms),
        max(&sql_ms)
    );
    Ok(result)
}

/// Says how two answers to the same question differ.
fn difference<T: Ord + Debug>(kind: &str, target: &str, ours: Vec<T>, theirs: Vec<T>) -> String {
    let (a, b): (BTreeSet<&T>, BTreeSet<&T>) = (ours.iter().collect(), theirs.iter().collect());
    let only_ours: Vec<_> = a.difference(&b).take(5).collect();
    let only_theirs: Vec<_> = b.difference(&a).take(5).collect();
    format!(
        "{kind} {target:?}: the snapshot and SQL disagree: {} rows vs {} rows; only in the snapshot's \
         (first 5): {only_ours:?}; only in SQL's (first 5): {only_theirs:?}",
        ours.len(),
        theirs.len()
    )
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

fn median(v: &[f64]) -> f64 {
    let v = sorted(v);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Nearest-rank percentile.
fn percentile(v: &[f64], p: f64) -> f64 {
    let v = sorted(v);
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

fn summary(v: &[f64]) -> Value {
    json!({"median": median(v), "p95": percentile(v, 95.0), "max": max(v), "min": sorted(v).first()})
}

/// The summaries of several kinds of one question, over all their samples.
fn combine(parts: &[Value]) -> Value {
    let gather = |key: &str| -> Vec<f64> {
        parts.iter().flat_map(|p| p[key].as_array().cloned().unwrap_or_default()).filter_map(|x| x.as_f64()).collect()
    };
    let (snap_ms, sql_ms) = (gather("snapshot_ms"), gather("sql_ms"));
    json!({
        "samples": snap_ms.len(),
        "snapshot": summary(&snap_ms),
        "sql": summary(&sql_ms),
    })
}
