//! `edgewatch dns ingest|tail|stats|expire`.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use discovery::dns::ingest::{self, IngestSummary};
use discovery::dns::tail::{self, TailOptions};

use crate::cli::{DnsCommand, TextFormat};
use crate::config::Settings;

pub async fn run(settings: &Settings, cmd: DnsCommand) -> Result<ExitCode> {
    match cmd {
        DnsCommand::Ingest { dns, files, format } => {
            let opts = settings.ingest(&dns)?;
            let db = super::shared::connect(settings).await?;
            let bar = progress_bar();
            let summary = ingest::ingest_files(&db.pool, &files, &opts, |done, total| {
                if let Some(bar) = &bar {
                    bar.set_length(total);
                    bar.set_position(done);
                }
            })
            .await?;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            match format {
                TextFormat::Json => crate::output::json(&summary)?,
                TextFormat::Text => print_summary(&summary),
            }
            Ok(ExitCode::SUCCESS)
        }
        DnsCommand::Tail { dns, paths, flush_every, cmdb_refresh, expire_after } => {
            let opts = TailOptions {
                ingest: settings.ingest(&dns)?,
                flush_every,
                cmdb_refresh,
                expire_after: settings.expire_after(expire_after)?,
                ..Default::default()
            };
            let db = super::shared::connect(settings).await?;
            let shutdown = super::shared::shutdown_on_signal(settings.stop_timeout());
            // A SIGHUP checks the file and says what would change at the next start.
            let _reloads = crate::reload::on_sighup(settings, crate::reload::Live::NONE, "dns tail")?;
            let totals = if paths.len() == 1 && paths[0].as_os_str() == "-" {
                tail::tail_stdin(&db.pool, &opts, shutdown).await?
            } else {
                if paths.iter().any(|p| p.as_os_str() == "-") {
                    anyhow::bail!("`-` (standard input) cannot be mixed with files");
                }
                eprintln!("following {} path(s); Ctrl-C or SIGTERM stops", paths.len());
                tail::tail(&db.pool, &paths, &opts, shutdown).await?
            };
            eprintln!("{} lines, {} queries, {} resolved", totals.lines, totals.queries, totals.resolved);
            Ok(ExitCode::SUCCESS)
        }
        DnsCommand::Stats { limit, format } => {
            let db = super::shared::connect(settings).await?;
            let stats = graph_store::dns::stats(&db.pool, limit).await?;
            match format {
                TextFormat::Json => crate::output::json(&stats)?,
                TextFormat::Text => crate::output::dns_stats(&stats),
            }
            Ok(ExitCode::SUCCESS)
        }
        DnsCommand::Expire { older_than } => {
            let db = super::shared::connect(settings).await?;
            let before = chrono::Utc::now() - chrono::Duration::from_std(older_than)?;
            let mut tx = db.pool.begin().await?;
            let (lost, retired) = graph_store::dns::expire_dns_edges(&mut tx, before).await?;
            tx.commit().await?;
            println!(
                "{lost} edges not asked for since {before}: {retired} retired, {} kept by other sources",
                lost - retired
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn progress_bar() -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

fn print_summary(s: &IngestSummary) {
    for f in &s.files {
        if f.not_ready {
            println!("{}: no complete line yet, nothing read", f.path);
        } else {
            println!("{}: bytes {}..{}, {} lines", f.path, f.from, f.to, f.lines);
        }
    }
    println!("{} lines: {} queries, {} gave edges", s.totals.lines, s.totals.queries, s.totals.resolved);
    if !s.skipped.is_empty() {
        let parts: Vec<String> = s.skipped.iter().map(|(reason, n)| format!("{reason} {n}")).collect();
        println!("no edge: {}", parts.join(", "));
    }
}
