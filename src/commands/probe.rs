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
use crate::reload::{self, Live};

pub async fn run(settings: &Settings, args: ProbeArgs) -> Result<ExitCode> {
    let db = super::shared::connect(settings).await?;
    let engine = Arc::new(super::shared::probe_engine(&args.probe)?);
    let mut reloads = reload::on_sighup(settings, Live::PROBE, "probe")?;
    let shutdown = super::shared::shutdown_on_signal_or_after(settings.stop_timeout(), args.run_for);
    let base =
        args.name.clone().unwrap_or_else(|| format!("{}-{}", crate::trace_config::hostname(), std::process::id()));
    eprintln!(
        "{} worker(s) probing every {:?}; Ctrl-C or SIGTERM stops, SIGHUP reloads the config file",
        args.workers, args.probe.interval
    );
    let mut current = Arc::new(settings.clone());
    let mut totals = Totals::default();
    // A round runs the workers and the trace loop with one set of settings; a SIGHUP that
    // changes them ends the round cleanly (results flushed, leases given back) and the
    // next starts with the new ones.
    loop {
        let round_stop = shutdown.child_token();
        let round = run_round(&current, &args, &engine, &db.pool, &base, round_stop.clone());
        let next = {
            let mut round = std::pin::pin!(round);
            loop {
                tokio::select! {
                    done = &mut round => {
                        totals.add(done?);
                        break None;
                    }
                    changed = reloads.changed(), if !shutdown.is_cancelled() => {
                        if changed.is_err() {
                            continue;
                        }
                        let reloaded = reloads.borrow_and_update().settings.clone();
                        if reloaded.probe(&args) == current.probe(&args) && reloaded.trace() == current.trace() {
                            continue;
                        }
                        eprintln!("SIGHUP: the workers and the trace loop start again with the new settings");
                        round_stop.cancel();
                        totals.add((&mut round).await?);
                        break Some(reloaded);
                    }
                }
            }
        };
        match next {
            Some(reloaded) if !shutdown.is_cancelled() => current = reloaded,
            _ => break,
        }
    }
    engine.shutdown().await;
    if let Some(t) = totals.traced {
        eprintln!(
            "traced {} paths, recorded {} runs, {} route or loss events, {} pairs left untraced",
            t.traced, t.recorded, t.events, t.released
        );
    }
    // The summary stays the last line (scripts and tests read it).
    eprintln!("probed {} edges, recorded {} results, {} state changes", totals.probed, totals.recorded, totals.events);
    Ok(ExitCode::SUCCESS)
}

/// What the rounds did, added up.
#[derive(Debug, Default)]
struct Totals {
    probed: u64,
    recorded: u64,
    events: u64,
    /// `None`: no round traced paths.
    traced: Option<TraceTotals>,
}

impl Totals {
    fn add(&mut self, round: Totals) {
        self.probed += round.probed;
        self.recorded += round.recorded;
        self.events += round.events;
        if let Some(t) = round.traced {
            let sum = self.traced.get_or_insert_with(TraceTotals::default);
            sum.traced += t.traced;
            sum.recorded += t.recorded;
            sum.events += t.events;
            sum.released += t.released;
        }
    }
}

/// The workers and the trace loop with these settings, until `stop`.
async fn run_round(
    settings: &Settings,
    args: &ProbeArgs,
    engine: &Arc<Engine>,
    pool: &graph_store::PgPool,
    base: &str,
    stop: CancellationToken,
) -> Result<Totals> {
    let probe = settings.probe(args);
    let tracing = start_tracing(settings, args, engine, pool, base, &stop)?;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.workers.max(1) {
        let mut opts = WorkerOptions::new(format!("{base}/{i}"), probe.record.clone());
        opts.batch = args.batch;
        // The first worker keeps house for the process.
        opts.housekeeper = i == 0;
        if let Some(days) = probe.retention_days {
            opts.retention_days = days;
        }
        tasks.spawn(run_worker(pool.clone(), engine.clone(), opts, stop.clone()));
    }
    let mut totals = Totals::default();
    while let Some(done) = tasks.join_next().await {
        let worker = done.context("a worker panicked")?;
        totals.probed += worker.probed;
        totals.recorded += worker.recorded;
        totals.events += worker.events;
    }
    if let Some(task) = tracing {
        totals.traced = Some(task.await.context("the trace loop panicked")?);
    }
    Ok(totals)
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
