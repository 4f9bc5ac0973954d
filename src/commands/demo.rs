//! `edgewatch demo`: the main job on the embedded default with the bundled sample fleet.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use discovery::cmdb::{self, ImportOptions};
use discovery::dns::ingest::{self, IngestOptions};
use graph_store::query::{self, ListOptions};

use crate::cli::Global;
use crate::output;

/// The sample fleet, bundled so the demo works from any directory.
const SAMPLE_FILES: [(&str, &str); 5] = [
    ("pdns-rec-structured.log", include_str!("../../examples/sample-fleet/pdns-rec-structured.log")),
    ("inventory.json", include_str!("../../examples/sample-fleet/inventory.json")),
    ("inventory.csv", include_str!("../../examples/sample-fleet/inventory.csv")),
    ("links.txt", include_str!("../../examples/sample-fleet/links.txt")),
    ("pdns-auth-console.log", include_str!("../../examples/sample-fleet/pdns-auth-console.log")),
];
const SAMPLE_ZONE: &str = "example.com";

pub async fn run(global: &Global) -> Result<ExitCode> {
    let samples = global.data_dir().join("sample-fleet");
    std::fs::create_dir_all(&samples).with_context(|| format!("creating {}", samples.display()))?;
    for (name, text) in SAMPLE_FILES {
        let path = samples.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let files: Vec<PathBuf> = vec![samples.join("inventory.json"), samples.join("links.txt")];

    println!("== edgewatch demo ==");
    let db = super::connect(global).await?;
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

    let nodes = query::nodes(&db.pool, ListOptions::default()).await?;
    let edges = query::edges(&db.pool, ListOptions::default()).await?;
    let dcs: std::collections::BTreeSet<&str> = nodes.iter().map(|n| n.dc.as_str()).collect();
    println!();
    output::nodes_table(&nodes);
    let from = |source: &str| edges.iter().filter(|e| e.sources.iter().any(|s| s == source)).count();
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
    let dd = if global.data_dir().as_os_str() == ".edgewatch" {
        String::new()
    } else {
        format!(" --data-dir {}", global.data_dir().display())
    };
    println!(
        "\nTry next:\n  \
         edgewatch{dd} graph edges                  the dependencies learned so far\n  \
         edgewatch{dd} graph nodes --format json    the containers, for scripts\n  \
         edgewatch{dd} dns stats                    what the logs asked for that the CMDB lacks\n  \
         edgewatch{dd} dns ingest --zone {SAMPLE_ZONE} {}\n  \
         edgewatch{dd} cmdb import {}\n  \
         psql \"$(edgewatch{dd} db url)\"              the tables themselves\n  \
         edgewatch{dd} db stop                       stop the embedded PostgreSQL",
        samples.join("pdns-rec-structured.log").display(),
        samples.join("inventory.csv").display()
    );
    Ok(ExitCode::SUCCESS)
}
