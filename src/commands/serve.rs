//! `edgewatch serve`: the HTTP API (HTTPS with `--tls-cert`/`--tls-key`, reloaded on
//! SIGHUP with the config file's thresholds, diagnosis and trace settings; plain HTTP
//! only on loopback unless `--insecure-http`), and the store's housekeeping while it
//! runs (in the one `serve` holding the lease on it).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum_server::tls_rustls::RustlsConfig;
use graph_store::agents as store;
use graph_store::PgPool;
use probers::record::RecordConfig;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cli::ServeArgs;
use crate::config::Settings;
use crate::http::{self, token, App, Tuning};
use crate::leader;
use crate::reload::{self, Live, Reloaded};
use crate::tls::{self, Listening, TlsFiles};

/// Agent reports older than this are deleted.
const REPORT_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);

pub async fn run(settings: &Settings, args: ServeArgs) -> Result<ExitCode> {
    let serve = settings.serve(&args)?;
    // The TLS files and the loopback rule are checked before anything else happens.
    let tls = match &serve.tls {
        Some(files) => Some((RustlsConfig::from_config(tls::server_config(files)?), files.clone())),
        None => None,
    };
    let reloads = reload::on_sighup(settings, Live::SERVE, "serve")?;
    if let Ok(addr) = args.listen.parse::<std::net::SocketAddr>() {
        tls::listening(addr, tls.is_some(), serve.insecure_http).map_err(anyhow::Error::msg)?;
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {} (--listen)", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let how = tls::listening(addr, tls.is_some(), serve.insecure_http).map_err(anyhow::Error::msg)?;
    let db = super::shared::connect(settings).await?;
    // Today's partitions before anything is answered; the health rows (an anti-join over
    // every edge: seconds at a million) after listening, while graph questions are already
    // answered. Agents' requests wait for them (App::store_ready).
    graph_store::probe::ensure_partitions(&db.pool).await.context("preparing the store for results")?;
    let (store_ready, ready) = watch::channel(false);
    let start_up = tokio::spawn({
        let (pool, record) = (db.pool.clone(), serve.record.clone());
        async move {
            if let Err(e) = housekeeping(&pool, &record).await {
                tracing::warn!("start-up housekeeping (health rows, stale edges) failed, will retry: {e}");
            }
            store_ready.send_replace(true);
        }
    });
    let scheme = if how == Listening::Https { "https" } else { "http" };
    println!("listening on {scheme}://{addr}");
    match (how, &tls) {
        (Listening::PlainInsecure, _) => tracing::warn!(
            "--insecure-http: serving plain HTTP on {addr}, which is not a loopback address; agents' tokens \
             and every answer cross the network unencrypted"
        ),
        (Listening::Https, Some((_, files))) => tracing::info!(
            cert = %files.cert.display(),
            key = %files.key.display(),
            "serving HTTPS; SIGHUP reloads the certificate and key"
        ),
        _ => {}
    }
    eprintln!(
        "serving the API on {scheme}://{addr}/api/v1/ (described at /api/v1/openapi.json; store: {}); Ctrl-C or \
         SIGTERM stops, SIGHUP reloads the config file{}",
        db.location,
        if tls.is_some() { " and the TLS files" } else { "" }
    );

    let shutdown = super::shared::shutdown_on_signal(settings.stop_timeout());
    let (tuned, tuning) = watch::channel(Arc::new(tuning_of(settings, &args)?));
    let reloader = tokio::spawn(follow_reloads(reloads, args, tuned, tls.clone(), shutdown.clone()));
    // The lease on the once-only work is given back once the keepers have stopped.
    let lease_stop = CancellationToken::new();
    let (leading, lease) =
        leader::lead(db.pool.clone(), graph_store::lease::SERVE, leader::holder("serve"), lease_stop.clone());
    let keeper = tokio::spawn(keep_house(db.pool.clone(), tuning.clone(), leading.clone(), shutdown.clone()));
    let trace_keeper = tokio::spawn(keep_traces(db.pool.clone(), tuning.clone(), leading.clone(), shutdown.clone()));
    let mut app = App::new(db.pool.clone(), tuning);
    app.leading = Some(leading);
    app.store_ready = Some(ready);
    app.read_token_hash = serve.read_token.as_deref().map(token::hash);
    if let Some(age) = serve.snapshot_max_age {
        app.snapshot_max_age = age;
    }
    // The standby (--read-database-url), asked every second while serving.
    app.reads = crate::read_pool::Reads::new(settings, &db.pool)?;
    app.reads.refresh().await;
    let read_watch = app.reads.watch(shutdown.clone());
    let app = Arc::new(app);
    // Requests in flight get three quarters of --stop-timeout; the rest is for the keepers.
    let drain = settings.stop_timeout() * 3 / 4;
    let served = match tls {
        Some((config, _)) => http::serve_tls(listener, config, app, drain, shutdown.clone()).await,
        None => http::serve(listener, app, shutdown.clone()).await,
    };
    shutdown.cancel();
    let _ = tokio::join!(keeper, trace_keeper, reloader, start_up);
    if let Some(task) = read_watch {
        let _ = task.await;
    }
    lease_stop.cancel();
    let _ = lease.await;
    served.context("serving HTTP")?;
    Ok(ExitCode::SUCCESS)
}

/// What `serve` judges and answers with, from these settings.
fn tuning_of(settings: &Settings, args: &ServeArgs) -> Result<Tuning> {
    let serve = settings.serve(args)?;
    Ok(Tuning { record: serve.record, diagnosis: serve.diagnosis, owners: settings.owners(), trace: settings.trace() })
}

/// Applies each SIGHUP: the new thresholds, diagnosis, owners and trace settings to the
/// requests and keepers from now on, and the TLS files read again (also when the config
/// file did not change: a renewed certificate keeps its file name).
async fn follow_reloads(
    mut reloads: watch::Receiver<Reloaded>,
    args: ServeArgs,
    tuned: watch::Sender<Arc<Tuning>>,
    tls: Option<(RustlsConfig, TlsFiles)>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = reloads.changed() => if changed.is_err() { return },
        }
        let Reloaded { settings, applied } = reloads.borrow_and_update().clone();
        if applied > 0 {
            match tuning_of(&settings, &args) {
                Ok(t) => {
                    tuned.send_replace(Arc::new(t));
                }
                Err(e) => eprintln!("SIGHUP: keeping the settings in use: {e:#}"),
            }
        }
        let files = settings.serve(&args).ok().and_then(|s| s.tls);
        match (&tls, files) {
            (Some((config, _)), Some(files)) => tls::reload(config, &files),
            (None, Some(_)) => {
                eprintln!(
                    "SIGHUP: TLS files are configured, but serve started on plain HTTP: restart it to serve HTTPS"
                )
            }
            (Some((config, started)), None) => {
                eprintln!("SIGHUP: no TLS files configured any more; serving HTTPS on with the files it started with");
                tls::reload(config, started);
            }
            (None, None) => {}
        }
    }
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

/// A changing graph is packed again at most this often (a million edges take seconds).
const PACKED_MIN_GAP: Duration = Duration::from_secs(15);

/// Repeats [`housekeeping`] while serving, keeps the packed topology in step with the
/// graph (for the topology commands and answers), the stored diagnosis fresh (for the
/// Nagios check), and prunes old agent reports hourly — in the one `serve` that holds the
/// lease on this work. A store that is away only delays it.
async fn keep_house(
    pool: PgPool,
    tuning: watch::Receiver<Arc<Tuning>>,
    leading: watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    let mut last_prune: Option<tokio::time::Instant> = None;
    let mut last_packed: Option<tokio::time::Instant> = None;
    loop {
        let (record, diagnosis) = {
            let now = tuning.borrow();
            (now.record.clone(), now.diagnosis)
        };
        let every = record.interval.clamp(Duration::from_secs(1), Duration::from_secs(30));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if !*leading.borrow() {
            continue;
        }
        if let Err(e) = housekeeping(&pool, &record).await {
            tracing::warn!("housekeeping (partitions, health rows) failed, will retry: {e}");
            continue;
        }
        if last_packed.is_none_or(|t| t.elapsed() >= PACKED_MIN_GAP) {
            match graph_store::topology::refresh_packed(&pool).await {
                Ok(graph_store::topology::Refreshed::Unchanged) => {}
                Ok(graph_store::topology::Refreshed::Built { nodes, deps, bytes }) => {
                    last_packed = Some(tokio::time::Instant::now());
                    tracing::info!(nodes, deps, bytes, "packed topology stored");
                }
                Err(e) => tracing::warn!("storing the packed topology failed, will retry: {e}"),
            }
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
/// Nothing while tracing is off (`[trace] enabled = false`, which a SIGHUP may change) or
/// another `serve` holds the lease on the once-only work.
async fn keep_traces(
    pool: PgPool,
    tuning: watch::Receiver<Arc<Tuning>>,
    mut leading: watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    use probers::trace_loop::{retention, upkeep_pairs};
    let mut last_retention: Option<tokio::time::Instant> = None;
    loop {
        let Some(cfg) = tuning.borrow().trace.clone().filter(|_| *leading.borrow()) else {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = leading.changed() => continue,
                _ = tokio::time::sleep(Duration::from_secs(10)) => continue,
            }
        };
        let every = (cfg.schedule.interval / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
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
