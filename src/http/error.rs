//! The HTTP API's one error type: expected failures answer with a precise 4xx saying
//! what to fix; unexpected ones are logged and answered with a generic 500. Every error
//! body is `{"error": "…"}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use probers::agent::wire::ErrorBody;

/// Everything a handler can answer instead of success.
#[derive(Debug)]
pub enum ApiError {
    /// No token, a malformed `Authorization` header, or a token that is unknown or revoked.
    Unauthorized(String),
    /// The token is good but not for this node.
    Forbidden(String),
    /// No such node (or endpoint).
    NotFound(String),
    /// The body is not what the endpoint takes; the message names the field.
    BadRequest(String),
    /// The body, or the number of results in it, is over the limit.
    PayloadTooLarge(String),
    /// The store cannot be reached just now; worth retrying.
    Unavailable(String),
    /// A fault on our side: logged in full, answered without details.
    Internal(anyhow::Error),
}

impl From<graph_store::Error> for ApiError {
    fn from(e: graph_store::Error) -> Self {
        if e.is_unavailable() {
            ApiError::Unavailable(e.to_string())
        } else {
            ApiError::Internal(e.into())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::PayloadTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m),
            ApiError::Unavailable(detail) => {
                tracing::warn!("store unavailable: {detail}");
                let mut resp = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(ErrorBody { error: "the store is unavailable just now; retry later".into() }),
                )
                    .into_response();
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                return resp;
            }
            ApiError::Internal(e) => {
                tracing::error!("internal error: {e:#}");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error (logged on the server)".to_string())
            }
        };
        let mut resp = (status, Json(ErrorBody { error: message })).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
