//! The HTTP API of `edgewatch serve`: the routes, the shared state, and the server's
//! lifecycle (serve until the shutdown token is cancelled, finishing requests in flight),
//! over plain HTTP or over TLS.
//!
//! - [`agents`] — `GET /api/v1/agents/{name}/targets`, `POST /api/v1/agents/{name}/results`
//! - [`agent_traces`] — `POST /api/v1/agents/{name}/traces/claim`, `POST /api/v1/agents/{name}/traces`
//! - [`graph`] — the graph questions (`/api/v1/nodes`, `/edges`, `/broken`, `/nodes/{name}/deps`, …)
//! - [`health`] — `/healthz`, `/readyz`
//! - [`intake`] — agents' results posts, written in batches (a group commit)
//! - [`metrics`] — `/metrics` (Prometheus)
//! - [`openapi`] — `/api/v1/openapi.json`
//! - [`route_api`] — the path history questions (`/api/v1/routes/show|diff|changes`)
//! - [`error`] — the one error type, how it answers, and the store calls' time limit.
//! - [`token`] — agent tokens, and the optional read token.
//! - [`ui`] — the web UI: `/`, `/ui/…` (server-rendered pages, the read token in a cookie)

pub mod agent_traces;
pub mod agents;
pub mod error;
pub mod graph;
pub mod health;
pub mod intake;
pub mod metrics;
pub mod openapi;
pub mod route_api;
pub mod token;
pub mod ui;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use graph_store::PgPool;
use probers::agent::wire::MAX_BODY_BYTES;
use probers::record::RecordConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use error::ApiError;

/// How long a request may wait for the store before it is answered 503.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(10);

/// What every handler needs.
#[derive(Debug)]
pub struct App {
    pub pool: PgPool,
    /// SHA-256 (hex) of the read token, when one is configured: the graph questions and
    /// /metrics then need `Authorization: Bearer <token>`.
    pub read_token_hash: Option<String>,
    /// The live topology snapshot and broken list, shared by the requests within
    /// `snapshot_max_age`.
    pub live: graph::LiveCache,
    pub snapshot_max_age: Duration,
    pub metrics: metrics::Metrics,
    /// What results are judged and answers made with, as the last SIGHUP left it.
    tuning: watch::Receiver<Arc<Tuning>>,
    /// Whether this process holds the lease on `serve`'s once-only work (crate::leader).
    pub leading: Option<watch::Receiver<bool>>,
    /// Where the GETs read: the standby when configured and current enough, else `pool`.
    pub reads: crate::read_pool::Reads,
    /// Agents' results posts go through here to the store.
    pub intake: intake::Intake,
    /// Token (SHA-256) → its node, for [`TOKEN_CACHE_TTL`]: an agent's two requests of a
    /// check-in look its token up once. A revoked token stops working within that time.
    pub tokens: moka::sync::Cache<String, graph_store::agents::TokenOwner>,
    /// Node id → the ids of its edges, as its last targets request listed them: the
    /// results post that follows is checked against it without asking the store (an edge
    /// never changes hands, so the list can only be short of new edges, which the store
    /// is then asked about).
    pub edges_of: moka::sync::Cache<i64, Arc<std::collections::HashSet<i64>>>,
    /// Turns true once `serve`'s start-up housekeeping (health rows for new edges, silent
    /// agents' edges marked stale) is done: agents' requests wait for it, graph answers do
    /// not. None: nothing to wait for.
    pub store_ready: Option<watch::Receiver<bool>>,
}

/// How long a token's owner is taken from [`App::tokens`] before the store is asked again.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);

/// What `serve` judges and answers with that the config file sets, and a SIGHUP may
/// change (crate::reload): each request takes the one current when it starts.
#[derive(Debug, Clone, Default)]
pub struct Tuning {
    /// How results are judged, and the interval agents are expected to report at.
    pub record: RecordConfig,
    /// How incidents are found.
    pub diagnosis: graph_store::diagnosis::DiagnosisConfig,
    /// Whose network a hop address is in (`[owners]`).
    pub owners: graph_store::paths::Owners,
    /// How agents trace paths (`[trace]`); `None`: tracing is off.
    pub trace: Option<probers::trace_loop::TraceConfig>,
}

impl App {
    pub fn new(pool: PgPool, tuning: watch::Receiver<Arc<Tuning>>) -> App {
        let reads = crate::read_pool::Reads::primary_only(pool.clone());
        let intake = intake::Intake::start(pool.clone(), tuning.clone());
        let tokens = moka::sync::Cache::builder().max_capacity(1_000_000).time_to_live(TOKEN_CACHE_TTL).build();
        let edges_of =
            moka::sync::Cache::builder().max_capacity(200_000).time_to_live(Duration::from_secs(600)).build();
        App {
            pool,
            read_token_hash: None,
            live: Default::default(),
            snapshot_max_age: Duration::from_secs(5),
            metrics: Default::default(),
            tuning,
            leading: None,
            reads,
            intake,
            tokens,
            edges_of,
            store_ready: None,
        }
    }

    /// Waits until the store is ready for agents' targets and results (see `store_ready`);
    /// at once when there is nothing to wait for or the start-up housekeeping gave up.
    pub async fn store_ready(&self) {
        if let Some(mut ready) = self.store_ready.clone() {
            let _ = ready.wait_for(|r| *r).await;
        }
    }

    /// The settings in force now.
    pub fn tuning(&self) -> Arc<Tuning> {
        self.tuning.borrow().clone()
    }
}

/// Every route.
pub fn router(app: Arc<App>) -> Router {
    let read = Router::new()
        .route("/api/v1/nodes", get(graph::nodes))
        .route("/api/v1/edges", get(graph::edges))
        .route("/api/v1/broken", get(graph::broken))
        .route("/api/v1/nodes/{name}/deps", get(graph::deps))
        .route("/api/v1/nodes/{name}/dependents", get(graph::dependents))
        .route("/api/v1/blast/{target}", get(graph::blast))
        .route("/api/v1/spof", get(graph::spof))
        .route("/api/v1/path", get(graph::path))
        .route("/api/v1/history/edges", get(graph::history_edges))
        .route("/api/v1/diff", get(graph::diff))
        .route("/api/v1/incidents", get(graph::incidents))
        .route("/api/v1/routes/show", get(route_api::show))
        .route("/api/v1/routes/diff", get(route_api::diff))
        .route("/api/v1/routes/changes", get(route_api::changes))
        .route("/metrics", get(metrics::scrape))
        .route_layer(middleware::from_fn_with_state(app.clone(), token::require_read_token))
        .route_layer(middleware::from_fn_with_state(app.clone(), crate::read_pool::headers));
    Router::new()
        .merge(read)
        .merge(ui::routes(app.clone()))
        .route("/api/v1/agents/{name}/targets", get(agents::targets))
        .route("/api/v1/agents/{name}/results", post(agents::results))
        .route("/api/v1/agents/{name}/traces/claim", post(agent_traces::claim))
        .route("/api/v1/agents/{name}/traces", post(agent_traces::runs))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route_layer(middleware::from_fn_with_state(app.clone(), metrics::track))
        .fallback(|| async {
            ApiError::NotFound(
                "no such endpoint; the API is described at /api/v1/openapi.json (agents: /api/v1/agents/{name}/targets|results)"
                    .into(),
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

/// Serves on `listener` until `shutdown`, then lets requests in flight finish.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, router(app)).with_graceful_shutdown(shutdown.cancelled_owned()).await
}

/// [`serve`] over TLS (rustls through axum-server): every handshake takes the
/// configuration `tls` holds at that moment, so a reload changes the certificate for new
/// connections without touching open ones; failed handshakes are logged. Once told to
/// stop, requests in flight have `drain` (`--stop-timeout`) to finish.
pub async fn serve_tls(
    listener: TcpListener,
    tls: axum_server::tls_rustls::RustlsConfig,
    app: Arc<App>,
    drain: Duration,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        stopper.graceful_shutdown(Some(drain));
    });
    axum_server::from_tcp_rustls(listener.into_std()?, tls)?
        .map(crate::tls::LogFailedHandshakes)
        .handle(handle)
        .serve(router(app).layer(axum::Extension(ui::OverTls)).into_make_service())
        .await
}
