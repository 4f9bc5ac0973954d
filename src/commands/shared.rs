//! What several commands share: opening the store, stopping on Ctrl-C (or after
//! `--run-for`), and the probe engine the prober flags describe.

use anyhow::{Context, Result};
use graph_store::db::Target;
use graph_store::Database;
use probers::{AllowList, Engine};

use crate::cli::ProbeSettingsArgs;
use crate::config::Settings;

/// Opens the store (starting the embedded cluster if needed) with migrations applied.
pub async fn connect(settings: &Settings) -> Result<Database> {
    let target = settings.target();
    let opened = graph_store::connect(&target).await.map_err(|e| {
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

/// A token cancelled by Ctrl-C (SIGINT), for the long-running commands.
pub fn shutdown_on_ctrl_c() -> tokio_util::sync::CancellationToken {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_signal.cancel();
    });
    shutdown
}

/// Like [`shutdown_on_ctrl_c`], also cancelled once `limit` has passed (`--run-for`).
pub fn shutdown_on_ctrl_c_or_after(limit: Option<std::time::Duration>) -> tokio_util::sync::CancellationToken {
    let shutdown = shutdown_on_ctrl_c();
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
