//! Liveness, readiness and the first read-only views: `/healthz` (the process answers),
//! `/readyz` (the store is reachable and migrated), `/api/v1/broken`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::ApiError;
use super::{App, STORE_TIMEOUT};

/// The process is up.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// The store answers within the time limit and has every migration this build knows.
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    let check = tokio::time::timeout(STORE_TIMEOUT, graph_store::db::readiness(&app.pool)).await;
    match check {
        Ok(Ok(Ok(migrations))) => Json(json!({"status": "ready", "migrations": migrations})).into_response(),
        Ok(Ok(Err(reason))) => not_ready(reason),
        Ok(Err(e)) => not_ready(format!("database unreachable: {e}")),
        Err(_) => not_ready(format!("database did not answer within {} s", STORE_TIMEOUT.as_secs())),
    }
}

fn not_ready(reason: String) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "not ready", "reason": reason}))).into_response()
}

/// Edges down or degraded now, worst first (as `edgewatch graph broken --format json`).
pub async fn broken(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let edges = tokio::time::timeout(STORE_TIMEOUT, graph_store::query::broken(&app.pool))
        .await
        .map_err(|_| ApiError::Unavailable("the database did not answer in time".into()))??;
    Ok(Json(edges).into_response())
}
