//! `edgewatch demo`: the main job on the embedded default with the bundled sample fleet.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use discovery::cmdb::{self, ImportOptions};
use discovery::dns::ingest::{self, IngestOptions};
use graph_store::query::{self, ListOptions};
use graph_store::vocab::HealthState;

use crate::config::Settings;
use crate::output;

/// The sample fleet, bundled so the demo works from any directory.
const INVENTORY_JSON: &str = include_str!("../../examples/sample-fleet/inventory.json");
const SAMPLE_FILES: [(&str, &str); 5] = [
    ("pdns-rec-structured.log", include_str!("../../examples/sample-fleet/pdns-rec-structured.log")),
    ("inventory.json", INVENTORY_JSON),
    ("inventory.csv", include_str!("../../examples/sample-fleet/inventory.csv")),
    ("links.txt", include_str!("../../examples/sample-fleet/links.txt")),
    ("pdns-auth-console.log", include_str!("../../examples/sample-fleet/pdns-auth-console.log")),
];
const SAMPLE_ZONE: &str = "example.com";

pub async fn run(settings: &Settings) -> Result<ExitCode> {
    let samples = settings.data_dir().join("sample-fleet");
    std::fs::create_dir_all(&samples).with_context(|| format!("creating {}", samples.display()))?;
    for (name, text) in SAMPLE_FILES {
        let path = samples.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let files: Vec<PathBuf> = vec![samples.join("inventory.json"), samples.join("links.txt")];

    println!("== edgewatch demo ==");
    let db = super::shared::connect(settings).await?;
    println!("store: {}", db.location);
    let report = cmdb::import_files(&db.pool, &files, ImportOptions::default()).await?;
    if let Some(inv) = &report.inventory {
        let o = &inv.outcome;
        println!("imported {}: {} containers on {} hosts, {} services", inv.file, o.containers, o.hosts, o.services);
    }
    for links in &report.links {
        println!("imported {}: {} published links", links.file, links.outcome.links);
    }

    let log = samples.join("pdns-auth-console.log");
    let opts = IngestOptions { zones: vec![SAMPLE_ZONE.to_string()], ..Default::default() }.validated()?;
    let summary = ingest::ingest_files(&db.pool, std::slice::from_ref(&log), &opts, |_, _| {}).await?;
    println!(
        "read {}: {} new lines, {} DNS queries, {} of them gave edges (a second run reads nothing again)",
        log.display(),
        summary.totals.lines,
        summary.totals.queries,
        summary.totals.resolved
    );

    probe_sample_fleet(&db.pool).await?;
    let traced = trace_one_pair(settings, &db.pool).await?;

    let nodes = query::nodes(&db.pool, ListOptions::default()).await?;
    let edges = query::edges(&db.pool, ListOptions::default()).await?;
    let dcs: std::collections::BTreeSet<&str> = nodes.iter().map(|n| n.dc.as_str()).collect();
    println!();
    output::nodes_table(&nodes);
    let from = |source: &str| edges.iter().filter(|e| e.sources.iter().any(|s| s == source)).count();
    let in_state = |state: HealthState| edges.iter().filter(|e| e.state == state).count();
    println!(
        "\nThe graph now holds {} containers in {} data centers ({}) and {} edges \
         ({} learned from DNS queries, {} from published links).",
        nodes.len(),
        dcs.len(),
        dcs.iter().copied().collect::<Vec<_>>().join(", "),
        edges.len(),
        from("dns"),
        from("cmdb"),
    );
    println!(
        "Probed from the consumers' side: {} up, {} down, {} degraded, {} not decided yet.",
        in_state(HealthState::Up),
        in_state(HealthState::Down),
        in_state(HealthState::Degraded),
        in_state(HealthState::Unknown) + in_state(HealthState::Stale),
    );
    let broken: Vec<_> = edges.iter().filter(|e| e.state.is_broken()).collect();
    if !broken.is_empty() {
        println!("Broken now:");
        for e in broken.iter().take(12) {
            println!(
                "  {} -> {} ({}) {}: {}",
                e.src,
                e.dst.as_deref().unwrap_or("?"),
                e.dst_ip,
                e.services.join(","),
                e.state
            );
        }
    }
    print_next(settings, &samples, traced.as_ref());
    Ok(ExitCode::SUCCESS)
}

/// What to try next, with this data directory in every command.
fn print_next(settings: &Settings, samples: &std::path::Path, traced: Option<&(String, String)>) {
    let dd = if settings.data_dir().as_os_str() == crate::config::DEFAULT_DATA_DIR {
        String::new()
    } else {
        format!(" --data-dir {}", settings.data_dir().display())
    };
    if let Some((src, dst)) = traced {
        println!(
            "\nPaths: edgewatch{dd} route show {src} {dst} shows the hops above again; route diff compares \
             windows (--at 16:00 --at 16:15), route changes lists what changed."
        );
    }
    println!(
        "\nTry next:\n  \
         edgewatch{dd} graph edges                  the dependencies learned so far\n  \
         edgewatch{dd} graph nodes --format json    the containers, for scripts\n  \
         edgewatch{dd} dns stats                    what the logs asked for that the CMDB lacks\n  \
         edgewatch{dd} incidents                    the broken edges grouped, with the likely culprit\n  \
         edgewatch{dd} report --since 1h --format html --out report.html\n                                         \
         the dependency report of the last hour, with its picture\n  \
         edgewatch{dd} probe --interval 10s         keep probing (Ctrl-C stops)\n  \
         edgewatch{dd} dns ingest --zone {SAMPLE_ZONE} {}\n  \
         edgewatch{dd} cmdb import {}\n  \
         psql \"$(edgewatch{dd} db url)\"              the tables themselves\n  \
         edgewatch{dd} db stop                       stop the embedded PostgreSQL\n\n\
         `edgewatch` is ./target/debug/edgewatch here; to have it on PATH: cargo install --locked --path .\n\
         (into ~/.cargo/bin), or export PATH=\"$PWD/target/debug:$PATH\" for this shell.",
        samples.join("pdns-rec-structured.log").display(),
        samples.join("inventory.csv").display()
    );
}

/// Traces one host pair of the sample fleet three times (Paris-style ICMP, as the probers
/// do every 2 minutes), records the runs and shows them as `edgewatch route show` does.
/// The sample fleet lives on loopback, so its path is one hop: the demo says so. Tracing
/// needs raw sockets (root or CAP_NET_RAW); without them the demo says that instead.
async fn trace_one_pair(settings: &Settings, pool: &graph_store::PgPool) -> Result<Option<(String, String)>> {
    use graph_store::paths::{self, PairSchedule, TraceRecord, TrackConfig};
    use probers::trace::{TraceTarget, Tracer};

    paths::sync_pairs(pool, &PairSchedule::default()).await?;
    let Some(pair) = paths::list_pairs(pool, 1).await?.into_iter().next() else {
        return Ok(None);
    };
    let tracer =
        Tracer::builder(probers::AllowList::loopback()).timeout(std::time::Duration::from_millis(500)).build()?;
    if let Err(why) = tracer.available(probers::Family::V4) {
        eprintln!("note: no path tracing here ({why}); run the demo as root to see a traced path");
        return Ok(None);
    }
    let ip: std::net::IpAddr = pair.dst_ip.parse()?;
    let mut records = Vec::new();
    for _ in 0..3 {
        let run = tracer.trace(TraceTarget::new(ip).with_flow(pair.id as u16)).await?;
        records.push(TraceRecord { pair_id: pair.id, run });
    }
    tracer.shutdown().await;
    paths::record_runs(pool, &records, &TrackConfig::default()).await?;
    let from = records[0].run.at - chrono::Duration::seconds(1);
    let show = crate::route_query::show(
        pool,
        &settings.owners(),
        &pair.src,
        &pair.dst,
        Some(from),
        std::time::Duration::from_secs(60),
    )
    .await?;
    println!("\ntraced the path {} → {} three times, as the probers do every 2 minutes:", pair.src, pair.dst);
    println!("{}", show.heading());
    println!("{}", show.table());
    println!(
        "The sample fleet lives on loopback, so its path is one hop: the destination itself answers at TTL 1. \
         Between data centers every router on the way is a hop, each with whose network it is ([owners], asn import)."
    );
    Ok(Some((pair.src, pair.dst)))
}

/// The provider whose service port the demo leaves without a listener: its consumers'
/// edges to it break, for real.
const DEMO_BROKEN_PROVIDER: &str = "db2a.host202";

/// Listens on every sample provider's service port but one, then probes the whole graph
/// for a few short cycles: enough for the hysteresis to decide.
async fn probe_sample_fleet(pool: &graph_store::PgPool) -> Result<()> {
    use std::sync::Arc;
    use std::time::Duration;

    let inventory = discovery::cmdb::parse_inventory_json("inventory.json", INVENTORY_JSON.as_bytes())?;
    let ports: std::collections::HashMap<&str, u16> =
        inventory.services.iter().filter_map(|s| Some((s.name.as_str(), s.port?))).collect();
    let mut listeners = Vec::new();
    for c in inventory.containers.iter().filter(|c| c.name != DEMO_BROKEN_PROVIDER) {
        for (ip, port) in
            c.ips.iter().flat_map(|ip| c.services.iter().filter_map(|s| ports.get(s.as_str())).map(move |p| (*ip, *p)))
        {
            match tokio::net::TcpListener::bind((ip, port)).await {
                Ok(listener) => listeners.push(tokio::spawn(async move {
                    while let Ok((conn, _)) = listener.accept().await {
                        drop(conn);
                    }
                })),
                Err(e) => {
                    eprintln!("note: cannot listen on {ip}:{port} for the demo ({e}); edges to it will look broken")
                }
            }
        }
    }
    let allow: probers::AllowList = "127.0.0.0/8".parse()?;
    let engine = Arc::new(
        probers::Engine::builder(allow)
            .packets(3)
            .interval(Duration::from_millis(50))
            .timeout(Duration::from_millis(300))
            // The unprivileged ICMP socket where the kernel allows it, else a raw one.
            .prefer_unprivileged(true)
            .build()?,
    );
    if let Err(why) = engine.icmp_mode(probers::Family::V4) {
        eprintln!("note: no ICMP here ({why}); edges without a service port cannot be probed (run as root)");
    }
    println!(
        "probing every edge for a few 1-second cycles (listening on every service port but {DEMO_BROKEN_PROVIDER}'s) …"
    );
    let record = probers::record::RecordConfig { interval: Duration::from_secs(1), jitter: 0.0, ..Default::default() };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut opts = probers::worker::WorkerOptions::new(format!("demo-{}", std::process::id()), record);
    opts.lease = Duration::from_secs(5);
    let worker = tokio::spawn(probers::worker::run_worker(pool.clone(), engine.clone(), opts, shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(6)).await;
    shutdown.cancel();
    let totals = worker.await?;
    engine.shutdown().await;
    for l in listeners {
        l.abort();
    }
    println!("probed {} edge cycles, {} state changes", totals.recorded, totals.events);
    Ok(())
}
