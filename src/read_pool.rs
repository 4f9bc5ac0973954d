//! The read side: where the read-only questions (graph, incidents, check, report, route,
//! sql, the API's GETs) are answered. With `--read-database-url` / `[database] read_url`
//! they go to that streaming standby while its replay lag is within `[database]
//! max_read_lag`, else to the primary; every write stays on the primary.
//!
//! The lag and the rule are in [`graph_store::replica`]; this module asks at the edges:
//! once per CLI command (a note on stderr when it falls back), and every second while
//! `serve` runs (a log line at each switch; `/readyz`, `/metrics` and the
//! `X-Edgewatch-Read-From` / `X-Edgewatch-Read-Lag` headers of the GETs say which side
//! answered and how far behind it may be).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use graph_store::replica::{self, ReadSide};
use graph_store::PgPool;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::config::Settings;
use crate::http::App;

/// How often `serve` asks the standby how far behind it is.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How long one lag question may take before the standby counts as unreachable.
const ASK_TIMEOUT: Duration = Duration::from_secs(3);

/// The pools reads may use: the primary, and the standby when one is configured.
#[derive(Debug, Clone)]
pub struct Reads {
    primary: PgPool,
    standby: Option<Arc<Standby>>,
}

#[derive(Debug)]
struct Standby {
    pool: PgPool,
    max_lag: Duration,
    /// The last lag seen, in seconds as f64 bits; NaN: unknown.
    lag_bits: AtomicU64,
    /// Reads go to the primary now.
    fallback: AtomicBool,
    /// Why, when they do.
    reason: std::sync::Mutex<Option<String>>,
}

/// The read side in `/readyz`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReadStatus {
    /// `standby` or `primary`: where the read-only questions go now.
    pub reading_from: String,
    /// The standby's replay lag in seconds at the last look (none: it could not say).
    pub lag_seconds: Option<f64>,
    /// `[database] max_read_lag`, in seconds.
    pub max_read_lag_seconds: f64,
    /// Why reads went to the primary, when they did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Reads {
    /// Reads on the primary only (no standby configured).
    pub fn primary_only(primary: PgPool) -> Reads {
        Reads { primary, standby: None }
    }

    /// The standby of the settings, if any, beside `primary`. Its pool connects lazily, so
    /// a standby that is down at start only sends the reads to the primary.
    pub fn new(settings: &Settings, primary: &PgPool) -> anyhow::Result<Reads> {
        let Some(url) = settings.read_database_url() else {
            return Ok(Reads::primary_only(primary.clone()));
        };
        let pool = graph_store::db::lazy_pool(url, settings.pooler()).map_err(|e| {
            anyhow::Error::new(e).context("opening the standby given by --read-database-url / [database] read_url")
        })?;
        let standby = Standby {
            pool,
            max_lag: settings.max_read_lag(),
            lag_bits: AtomicU64::new(f64::NAN.to_bits()),
            // Until the first look (which serve and every command take before reading):
            // so that a first fall-back is logged as a switch.
            fallback: AtomicBool::new(false),
            reason: std::sync::Mutex::new(None),
        };
        Ok(Reads { primary: primary.clone(), standby: Some(Arc::new(standby)) })
    }

    /// Whether the next read goes to the standby.
    pub fn on_standby(&self) -> bool {
        matches!(&self.standby, Some(s) if !s.fallback.load(Ordering::Relaxed))
    }

    /// The pool the next read uses.
    pub fn pool(&self) -> PgPool {
        match &self.standby {
            Some(s) if !s.fallback.load(Ordering::Relaxed) => s.pool.clone(),
            _ => self.primary.clone(),
        }
    }

    /// Asks the standby how far behind it is, decides, and remembers the decision; logs
    /// when it changes (serve). Without a standby: `None`.
    pub async fn refresh(&self) -> Option<ReadSide> {
        let (side, was_primary) = self.decide().await?;
        match side {
            ReadSide::Primary(why) if !was_primary => tracing::warn!("reads go to the primary: {why}"),
            ReadSide::Standby { lag } if was_primary => {
                tracing::info!(lag_s = lag.as_secs_f64(), "reads go to the standby")
            }
            _ => {}
        }
        Some(side)
    }

    /// [`Reads::refresh`] without the log: the decision, and whether reads went to the
    /// primary before it.
    async fn decide(&self) -> Option<(ReadSide, bool)> {
        let standby = self.standby.as_ref()?;
        let lag = match tokio::time::timeout(ASK_TIMEOUT, replica::status(&standby.pool)).await {
            Ok(Ok(status)) => Some(replica::lag(&status)),
            Ok(Err(e)) => {
                tracing::debug!("asking the standby for its lag: {e}");
                None
            }
            Err(_) => None,
        };
        let side = replica::choose(lag, standby.max_lag);
        let seconds = lag.and_then(|l| l.seconds()).unwrap_or(f64::NAN);
        standby.lag_bits.store(seconds.to_bits(), Ordering::Relaxed);
        let was_primary = standby.fallback.swap(matches!(side, ReadSide::Primary(_)), Ordering::Relaxed);
        let reason = match side {
            ReadSide::Primary(why) => Some(why.to_string()),
            ReadSide::Standby { .. } => None,
        };
        *standby.reason.lock().unwrap_or_else(|p| p.into_inner()) = reason;
        Some((side, was_primary))
    }

    /// Keeps [`Reads::refresh`] going every second until `shutdown` (serve).
    pub fn watch(&self, shutdown: CancellationToken) -> Option<tokio::task::JoinHandle<()>> {
        self.standby.as_ref()?;
        let reads = self.clone();
        Some(tokio::spawn(async move {
            loop {
                reads.refresh().await;
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(WATCH_EVERY) => {}
                }
            }
        }))
    }

    /// Where reads go now and how far behind the standby is (none: no standby).
    pub fn status(&self) -> Option<ReadStatus> {
        let s = self.standby.as_ref()?;
        let lag = f64::from_bits(s.lag_bits.load(Ordering::Relaxed));
        let fallback = s.fallback.load(Ordering::Relaxed);
        Some(ReadStatus {
            reading_from: if fallback { "primary" } else { "standby" }.into(),
            lag_seconds: (!lag.is_nan()).then_some(lag),
            max_read_lag_seconds: s.max_lag.as_secs_f64(),
            reason: if fallback { s.reason.lock().unwrap_or_else(|p| p.into_inner()).clone() } else { None },
        })
    }

    /// `edgewatch_read_replica_lag_seconds` and `edgewatch_read_fallback`, when a standby
    /// is configured.
    pub fn register_metrics(&self, registry: &mut Registry) {
        let Some(status) = self.status() else { return };
        let lag = Gauge::<f64, AtomicU64>::default();
        lag.set(status.lag_seconds.unwrap_or(f64::NAN));
        registry.register(
            "read_replica_lag_seconds",
            "Replay lag of the standby the reads go to (NaN: it cannot say)",
            lag,
        );
        let fallback = Gauge::<i64>::default();
        fallback.set(i64::from(status.reading_from == "primary"));
        registry.register("read_fallback", "1 when reads go to the primary although a standby is configured", fallback);
    }
}

/// The pool one CLI command reads from.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub pool: PgPool,
    /// It is the standby's (which takes no writes).
    pub on_standby: bool,
}

/// For one CLI command: the standby's pool when it is within the bound, else the
/// primary's, saying why on stderr.
pub async fn for_command(settings: &Settings, primary: &PgPool) -> anyhow::Result<Chosen> {
    let reads = Reads::new(settings, primary)?;
    let on_standby = match reads.decide().await.map(|(side, _)| side) {
        None => false,
        Some(ReadSide::Standby { lag }) => {
            tracing::info!(lag_s = lag.as_secs_f64(), "reading from the standby");
            true
        }
        Some(ReadSide::Primary(why)) => {
            eprintln!("edgewatch: note: reading from the primary: {why}");
            false
        }
    };
    Ok(Chosen { pool: reads.pool(), on_standby })
}

/// [`for_command`] after this command wrote on the primary what it is about to read
/// (the report's rollups): the standby only once it has replayed that far, waiting at
/// most `[database] max_read_lag`.
pub async fn for_command_after_write(settings: &Settings, primary: &PgPool) -> anyhow::Result<Chosen> {
    let Some(url) = settings.read_database_url() else {
        return Ok(Chosen { pool: primary.clone(), on_standby: false });
    };
    let lsn = replica::current_lsn(primary).await?;
    let standby = graph_store::db::lazy_pool(url, settings.pooler())?;
    let deadline = tokio::time::Instant::now() + settings.max_read_lag();
    loop {
        match tokio::time::timeout(ASK_TIMEOUT, replica::replayed(&standby, &lsn)).await {
            Ok(Ok(true)) => return for_command(settings, primary).await,
            Ok(Ok(false)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            _ => break,
        }
    }
    eprintln!(
        "edgewatch: note: reading from the primary: the standby has not replayed this command's own writes \
         (up to {lsn}) within [database] max_read_lag ({} s)",
        settings.max_read_lag().as_secs_f64()
    );
    Ok(Chosen { pool: primary.clone(), on_standby: false })
}

/// Middleware on the GETs: `X-Edgewatch-Read-From: standby|primary`, and with the
/// standby `X-Edgewatch-Read-Lag: <seconds>` (how old the answer may be), when a standby
/// is configured.
pub async fn headers(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    if let Some(status) = app.reads.status() {
        let headers = response.headers_mut();
        headers.insert("x-edgewatch-read-from", HeaderValue::from_static(side_name(&status)));
        if let (Some(lag), "standby") = (status.lag_seconds, status.reading_from.as_str()) {
            if let Ok(value) = HeaderValue::from_str(&format!("{lag:.3}")) {
                headers.insert("x-edgewatch-read-lag", value);
            }
        }
    }
    response
}

fn side_name(status: &ReadStatus) -> &'static str {
    if status.reading_from == "standby" {
        "standby"
    } else {
        "primary"
    }
}
