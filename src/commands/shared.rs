//! What several commands share: opening the store, stopping on SIGINT or SIGTERM (or
//! after `--run-for`), and the probe engine the prober flags describe.

use std::time::Duration;

use anyhow::{Context, Result};
use graph_store::db::Target;
use graph_store::Database;
use probers::{AllowList, Engine};
use tokio_util::sync::CancellationToken;

use crate::cli::ProbeSettingsArgs;
use crate::config::Settings;

/// Opens the store (starting the embedded cluster if needed) with migrations applied.
pub async fn connect(settings: &Settings) -> Result<Database> {
    let target = settings.target();
    let opened = graph_store::connect(&target, settings.pooler()).await.map_err(|e| {
        // A TLS failure in words (unknown CA, name mismatch) above the driver's own message.
        match probers::tls::failure_reason(&e) {
            Some(reason) => anyhow::Error::new(e).context(format!(
                "TLS with the database server failed: {reason}; trusted here: the sslrootcert file of the URL, \
                 else the system's roots"
            )),
            None => anyhow::Error::new(e),
        }
    });
    opened.with_context(|| match target {
        Target::Url(_) => "opening the database given by --database-url / DATABASE_URL".to_string(),
        Target::Embedded(dir) => format!("opening the embedded database in {}", dir.display()),
    })
}

/// A token cancelled by SIGINT (Ctrl-C) or SIGTERM (what systemd and `kill` send), for
/// the long-running commands: they then finish what they hold (batches flushed,
/// checkpoints committed, leases given back) and exit 0. Whatever is still running
/// `stop_timeout` after the signal (`--stop-timeout`, default 10 s), or at a second
/// signal, the process exits with status 1, saying so.
pub fn shutdown_on_signal(stop_timeout: Duration) -> CancellationToken {
    use tokio::signal::unix::{signal, SignalKind};
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    let (term, int) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
    let (Ok(mut term), Ok(mut int)) = (term, int) else {
        tracing::error!("cannot listen for SIGTERM and SIGINT: they will stop edgewatch without its clean stop");
        return shutdown;
    };
    tokio::spawn(async move {
        let which = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!("{which}: stopping cleanly (at most {})", humantime::format_duration(stop_timeout));
        on_signal.cancel();
        let why = tokio::select! {
            _ = term.recv() => "a second signal came",
            _ = int.recv() => "a second signal came",
            _ = tokio::time::sleep(stop_timeout) => "the stop took longer than --stop-timeout",
        };
        eprintln!(
            "edgewatch: {why} ({} after {which}); exiting now, work in hand may be lost",
            humantime::format_duration(stop_timeout)
        );
        std::process::exit(1);
    });
    shutdown
}

/// Like [`shutdown_on_signal`], also cancelled once `limit` has passed (`--run-for`).
pub fn shutdown_on_signal_or_after(stop_timeout: Duration, limit: Option<Duration>) -> CancellationToken {
    let shutdown = shutdown_on_signal(stop_timeout);
    if let Some(limit) = limit {
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            stop.cancel();
        });
    }
    shutdown
}

/// The probe engine the flags describe (the allow-list first of all), for `probe` and
/// `agent`.
pub fn probe_engine(args: &ProbeSettingsArgs) -> Result<Engine> {
    let allow = AllowList::parse(&args.allow).with_context(|| format!("--allow {}", args.allow.join(",")))?;
    tracing::info!(%allow, "probe targets are limited to the allow-list");
    Engine::builder(allow)
        .packets(args.packets)
        .interval(args.packet_interval)
        .timeout(args.timeout)
        .pps(args.pps)
        // The kernel's unprivileged ICMP socket where allowed, else a raw one.
        .prefer_unprivileged(true)
        .build()
        .context("starting the probe engine")
}
