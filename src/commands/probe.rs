//! `edgewatch probe`: the prober worker pool.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use probers::worker::{run_worker, WorkerOptions};

use crate::cli::ProbeArgs;
use crate::config::Settings;

pub async fn run(settings: &Settings, args: ProbeArgs) -> Result<ExitCode> {
    let db = super::shared::connect(settings).await?;
    let engine = Arc::new(super::shared::probe_engine(&args.probe)?);
    let shutdown = super::shared::shutdown_on_ctrl_c_or_after(args.run_for);
    let base = args.name.clone().unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()));
    let probe = settings.probe(&args);
    eprintln!("{} worker(s) probing every {:?}; Ctrl-C stops", args.workers, args.probe.interval);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.workers.max(1) {
        let mut opts = WorkerOptions::new(format!("{base}/{i}"), probe.record.clone());
        opts.batch = args.batch;
        if let Some(days) = probe.retention_days {
            opts.retention_days = days;
        }
        tasks.spawn(run_worker(db.pool.clone(), engine.clone(), opts, shutdown.clone()));
    }
    let (mut probed, mut recorded, mut events) = (0, 0, 0);
    while let Some(done) = tasks.join_next().await {
        let totals = done.context("a worker panicked")?;
        probed += totals.probed;
        recorded += totals.recorded;
        events += totals.events;
    }
    engine.shutdown().await;
    eprintln!("probed {probed} edges, recorded {recorded} results, {events} state changes");
    Ok(ExitCode::SUCCESS)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "edgewatch".into())
}
