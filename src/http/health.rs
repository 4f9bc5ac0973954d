//! Liveness and readiness: `/healthz` (the process answers), `/readyz` (the store is
//! reachable and has every migration this build knows).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{with_store_timeout, ApiError};
use super::{App, STORE_TIMEOUT};

/// `/healthz`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// `/readyz`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not ready`.
    pub status: String,
    /// Migrations applied (when ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrations: Option<i64>,
    /// Why not (when not ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where the read-only questions go and how far behind the standby is (only with a
    /// standby: `--read-database-url` / `[database] read_url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_side: Option<crate::read_pool::ReadStatus>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "The process answers", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

/// The store answers within the time limit and has every migration this build knows.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses((status = 200, description = "Ready", body = Readiness),
              (status = 503, description = "Not ready, and why", body = Readiness)))]
pub async fn readyz(State(app): State<Arc<App>>) -> (StatusCode, Json<Readiness>) {
    let reason = match with_store_timeout(graph_store::db::readiness(&app.pool)).await {
        Ok(Ok(migrations)) => {
            let ready = Readiness {
                status: "ready".into(),
                migrations: Some(migrations),
                reason: None,
                read_side: app.reads.status(),
            };
            return (StatusCode::OK, Json(ready));
        }
        Ok(Err(reason)) => reason,
        Err(ApiError::StoreTimeout) => format!("database did not answer within {} s", STORE_TIMEOUT.as_secs()),
        Err(e) => format!("database unreachable: {e}"),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(Readiness {
            status: "not ready".into(),
            migrations: None,
            reason: Some(reason),
            read_side: app.reads.status(),
        }),
    )
}
