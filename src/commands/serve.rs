//! `edgewatch serve`: the HTTP API (HTTPS with `--tls-cert`/`--tls-key`, reloaded on
//! SIGHUP; plain HTTP only on loopback unless `--insecure-http`), and the store's
//! housekeeping while it runs.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum_server::tls_rustls::RustlsConfig;
use graph_store::agents as store;
use graph_store::diagnosis::DiagnosisConfig;
use graph_store::PgPool;
use probers::record::RecordConfig;
use tokio_util::sync::CancellationToken;

use crate::cli::ServeArgs;
use crate::config::Settings;
use crate::http::{self, token, App};
use crate::tls::{self, Listening};

/// Agent reports older than this are deleted.
const REPORT_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);

pub async fn run(settings: &Settings, args: ServeArgs) -> Result<ExitCode> {
    let serve = settings.serve(&args)?;
    // The TLS files and the loopback rule are checked before anything else happens.
    let tls = match &serve.tls {
        Some(files) => Some((RustlsConfig::from_config(tls::server_config(files)?), files.clone(), tls::hangups()?)),
        None => None,
    };
    if let Ok(addr) = args.listen.parse::<std::net::SocketAddr>() {
        tls::listening(addr, tls.is_some(), serve.insecure_http).map_err(anyhow::Error::msg)?;
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {} (--listen)", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let how = tls::listening(addr, tls.is_some(), serve.insecure_http).map_err(anyhow::Error::msg)?;
    let db = super::shared::connect(settings).await?;
    let record = serve.record.clone();
    housekeeping(&db.pool, &record).await.context("preparing the store for results")?;
    let scheme = if how == Listening::Https { "https" } else { "http" };
    println!("listening on {scheme}://{addr}");
    match (how, &tls) {
        (Listening::PlainInsecure, _) => tracing::warn!(
            "--insecure-http: serving plain HTTP on {addr}, which is not a loopback address; agents' tokens \
             and every answer cross the network unencrypted"
        ),
        (Listening::Https, Some((_, files, _))) => tracing::info!(
            cert = %files.cert.display(),
            key = %files.key.display(),
            "serving HTTPS; SIGHUP reloads the certificate and key"
        ),
        _ => {}
    }
    eprintln!(
        "serving the API on {scheme}://{addr}/api/v1/ (described at /api/v1/openapi.json; store: {}); Ctrl-C or SIGTERM stops",
        db.location
    );

    let shutdown = super::shared::shutdown_on_signal(settings.stop_timeout());
    let keeper = tokio::spawn(keep_house(db.pool.clone(), record.clone(), serve.diagnosis, shutdown.clone()));
    let trace = settings.trace();
    let trace_keeper = trace.clone().map(|t| tokio::spawn(keep_traces(db.pool.clone(), t, shutdown.clone())));
    let mut app = App::new(db.pool.clone(), record);
    app.diagnosis = serve.diagnosis;
    app.owners = settings.owners();
    app.trace = trace;
    app.read_token_hash = serve.read_token.as_deref().map(token::hash);
    if let Some(age) = serve.snapshot_max_age {
        app.snapshot_max_age = age;
    }
    // The standby (--read-database-url), asked every second while serving.
    app.reads = crate::read_pool::Reads::new(settings, &db.pool)?;
    app.reads.refresh().await;
    let read_watch = app.reads.watch(shutdown.clone());
    let app = Arc::new(app);
    let served = match tls {
        Some((config, files, hangups)) => {
            tokio::spawn(tls::reload_on_sighup(hangups, config.clone(), files, shutdown.clone()));
            http::serve_tls(listener, config, app, shutdown.clone()).await
        }
        None => http::serve(listener, app, shutdown.clone()).await,
    };
    shutdown.cancel();
    let _ = keeper.await;
    if let Some(task) = trace_keeper {
        let _ = task.await;
    }
    if let Some(task) = read_watch {
        let _ = task.await;
    }
    served.context("serving HTTP")?;
    Ok(ExitCode::SUCCESS)
}

/// What the store needs before results can arrive: partitions for today's history, health
/// rows for new edges (an agent's targets are the edges that have one); and edges whose
/// agent has gone silent marked `stale`, as the workers do for theirs.
async fn housekeeping(pool: &PgPool, record: &RecordConfig) -> graph_store::Result<()> {
    graph_store::probe::ensure_partitions(pool).await?;
    graph_store::probe::sync_health(pool, record.interval).await?;
    probers::record::mark_stale(pool, record).await?;
    Ok(())
}

/// Repeats [`housekeeping`] while serving, keeps the stored diagnosis fresh (for the
/// Nagios check), and prunes old agent reports hourly. A store that is away only delays it.
async fn keep_house(pool: PgPool, record: RecordConfig, diagnosis: DiagnosisConfig, shutdown: CancellationToken) {
    let every = record.interval.clamp(Duration::from_secs(1), Duration::from_secs(30));
    let mut last_prune: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = housekeeping(&pool, &record).await {
            tracing::warn!("housekeeping (partitions, health rows) failed, will retry: {e}");
            continue;
        }
        if let Err(e) = graph_store::diagnosis::refresh(&pool, &diagnosis).await {
            tracing::warn!("refreshing the diagnosis failed, will retry: {e}");
        }
        if last_prune.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
            let before = chrono::Utc::now() - chrono::Duration::from_std(REPORT_RETENTION).unwrap_or_default();
            match store::prune_reports(&pool, before).await {
                Ok(n) => {
                    last_prune = Some(tokio::time::Instant::now());
                    if n > 0 {
                        tracing::info!(deleted = n, "agent reports past retention deleted");
                    }
                }
                Err(e) => tracing::warn!("pruning agent reports failed, will retry: {e}"),
            }
        }
    }
}

/// Keeps the traced pairs in step with the graph for the agents (every half interval,
/// 1–60 s), with day partitions ahead and retention hourly — what the prober workers'
/// trace loop does too, so that agents have pairs to trace where no worker runs.
async fn keep_traces(pool: PgPool, cfg: probers::trace_loop::TraceConfig, shutdown: CancellationToken) {
    use probers::trace_loop::{retention, upkeep_pairs};
    let every = (cfg.schedule.interval / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut last_retention: Option<tokio::time::Instant> = None;
    loop {
        if let Err(e) = upkeep_pairs(&pool, &cfg.schedule).await {
            tracing::warn!("keeping the trace pairs up to date failed, will retry: {e}");
        }
        if last_retention.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
            match retention(&pool, cfg.keep_days, cfg.hourly_keep_days).await {
                Ok(()) => last_retention = Some(tokio::time::Instant::now()),
                Err(e) => tracing::warn!("trace history retention failed, will retry: {e}"),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
