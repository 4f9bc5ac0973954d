//! `edgewatch cmdb import|watch`.

use std::process::ExitCode;

use anyhow::Result;
use discovery::cmdb::{self, ImportOptions, ImportReport, WatchEvent, WatchOptions};

use crate::cli::{CmdbCommand, TextFormat};
use crate::config::Settings;

pub async fn run(settings: &Settings, cmd: CmdbCommand) -> Result<ExitCode> {
    match cmd {
        CmdbCommand::Import { files, allow_mass_retire, format } => {
            // Parse before connecting: a bad export is reported even with no database.
            let exports = cmdb::read_exports(&files)?;
            let db = super::shared::connect(settings).await?;
            let report = cmdb::apply_exports(&db.pool, &exports, ImportOptions { allow_mass_retire }).await?;
            match format {
                TextFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                TextFormat::Text => print_report(&report),
            }
            Ok(ExitCode::SUCCESS)
        }
        CmdbCommand::Watch { files, allow_mass_retire, settle, poll } => {
            let db = super::shared::connect(settings).await?;
            let shutdown = super::shared::shutdown_on_signal(settings.stop_timeout());
            // A SIGHUP checks the file and says what would change at the next start.
            let _reloads = crate::reload::on_sighup(settings, crate::reload::Live::NONE, "cmdb watch")?;
            let opts = WatchOptions { import: ImportOptions { allow_mass_retire }, settle, poll };
            eprintln!("watching {} file(s); Ctrl-C or SIGTERM stops", files.len());
            cmdb::watch(&db.pool, &files, opts, shutdown, |event| match event {
                WatchEvent::Imported(report) => print_report(report),
                WatchEvent::Unchanged => tracing::debug!("exports unchanged"),
                WatchEvent::Refused(e) => {
                    eprintln!("edgewatch: import refused, graph unchanged: {}", crate::hints::message(e))
                }
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_report(report: &ImportReport) {
    if let Some(inv) = &report.inventory {
        let o = &inv.outcome;
        println!(
            "{}: {} containers on {} hosts, {} services ({} new, {} back from retirement, {} retired with {} edges)",
            inv.file, o.containers, o.hosts, o.services, o.new_nodes, o.revived_nodes, o.retired_nodes, o.retired_edges
        );
    }
    for links in &report.links {
        let o = &links.outcome;
        println!(
            "{}: {} links from {} containers ({} new edges, {} links dropped, {} edges retired)",
            links.file, o.links, o.containers, o.new_edges, o.dropped_links, o.retired_edges
        );
    }
}
