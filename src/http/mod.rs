//! The HTTP API of `edgewatch serve`: the routes, the shared state, and the server's
//! lifecycle (serve until the shutdown token is cancelled, finishing requests in flight).
//!
//! - [`agents`]: `GET /api/v1/agents/{name}/targets`, `POST /api/v1/agents/{name}/results`
//! - [`health`]: `/healthz`, `/readyz`, `GET /api/v1/broken`
//! - [`error`]: the one error type, and how it answers.
//! - [`token`]: making and hashing agent tokens.

pub mod agents;
pub mod error;
pub mod health;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use graph_store::PgPool;
use probers::agent::wire::MAX_BODY_BYTES;
use probers::record::RecordConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use error::ApiError;

/// How long a request may wait for the store before it is answered 503.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(10);

/// What every handler needs.
#[derive(Debug)]
pub struct App {
    pub pool: PgPool,
    /// How results are judged, and the interval agents are expected to report at.
    pub record: RecordConfig,
}

/// Every route.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/api/v1/agents/{name}/targets", get(agents::targets))
        .route("/api/v1/agents/{name}/results", post(agents::results))
        .route("/api/v1/broken", get(health::broken))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(|| async {
            ApiError::NotFound(
                "no such endpoint: /healthz, /readyz, /api/v1/broken, /api/v1/agents/{name}/targets|results".into(),
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

/// Serves on `listener` until `shutdown`, then lets requests in flight finish.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, router(app)).with_graceful_shutdown(shutdown.cancelled_owned()).await
}
