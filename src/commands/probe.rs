//! `edgewatch probe`: the prober worker pool, and beside it the path tracing of `[trace]`
//! (one trace loop per process, when raw sockets allow it).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use probers::trace_loop::{self, run_trace_loop, TraceTotals};
use probers::worker::{run_worker, WorkerOptions};
use probers::Engine;
use tokio_util::sync::CancellationToken;

use crate::cli::ProbeArgs;
use crate::config::Settings;

pub async fn run(settings: &Settings, args: ProbeArgs) -> Result<ExitCode> {
    let db = super::shared::connect(settings).await?;
    let engine = Arc::new(super::shared::probe_engine(&args.probe)?);
    let shutdown = super::shared::shutdown_on_signal_or_after(settings.stop_timeout(), args.run_for);
    let base =
        args.name.clone().unwrap_or_else(|| format!("{}-{}", crate::trace_config::hostname(), std::process::id()));
    let probe = settings.probe(&args);
    eprintln!("{} worker(s) probing every {:?}; Ctrl-C or SIGTERM stops", args.workers, args.probe.interval);
    let tracing = start_tracing(settings, &args, &engine, &db.pool, &base, &shutdown)?;
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
    if let Some(task) = tracing {
        let t: TraceTotals = task.await.context("the trace loop panicked")?;
        eprintln!(
            "traced {} paths, recorded {} runs, {} route or loss events, {} pairs left untraced",
            t.traced, t.recorded, t.events, t.released
        );
    }
    // The summary stays the last line (scripts and tests read it).
    eprintln!("probed {probed} edges, recorded {recorded} results, {events} state changes");
    Ok(ExitCode::SUCCESS)
}

/// The trace loop, unless tracing is off (`[trace] enabled = false`, `--no-trace`) or this
/// process has no raw sockets: then one warning, and probing goes on without it.
fn start_tracing(
    settings: &Settings,
    args: &ProbeArgs,
    engine: &Engine,
    pool: &graph_store::PgPool,
    base: &str,
    shutdown: &CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<TraceTotals>>> {
    let Some(cfg) = settings.trace().filter(|_| !args.no_trace) else {
        tracing::info!("path tracing is off ([trace] enabled = false or --no-trace)");
        return Ok(None);
    };
    let tracer = cfg.tracer(engine.allow_list().clone()).context("starting the tracer ([trace])")?;
    if let Err(why) = trace_loop::availability(&tracer) {
        tracing::warn!("not tracing paths: {why}; probing goes on without path history");
        return Ok(None);
    }
    eprintln!(
        "tracing paths every {} from {} (host pairs without agents, {} external target(s))",
        humantime::format_duration(cfg.schedule.interval),
        cfg.vantage,
        cfg.targets.len()
    );
    let owner = format!("{base}/trace");
    Ok(Some(tokio::spawn(run_trace_loop(pool.clone(), tracer, cfg, owner, shutdown.clone()))))
}
