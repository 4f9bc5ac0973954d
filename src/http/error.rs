//! The HTTP API's one error type: expected failures answer with a precise 4xx saying
//! what to fix; unexpected ones are logged and answered with a generic 500; a store that
//! cannot be reached, or does not answer within [`STORE_TIMEOUT`], with 503. Every error
//! body is `{"error": "…"}`. And [`with_store_timeout`], the time limit of every handler's
//! store calls.

use std::fmt;
use std::future::Future;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use probers::agent::wire::ErrorBody;

use super::STORE_TIMEOUT;

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
    /// The store did not answer within [`STORE_TIMEOUT`]; answered as [`ApiError::Unavailable`].
    StoreTimeout,
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

/// Runs `work` (a handler's store calls) within [`STORE_TIMEOUT`]: its error becomes an
/// [`ApiError`], and a store that does not answer in time is [`ApiError::StoreTimeout`].
pub async fn with_store_timeout<T, E: Into<ApiError>>(work: impl Future<Output = Result<T, E>>) -> Result<T, ApiError> {
    match tokio::time::timeout(STORE_TIMEOUT, work).await {
        Ok(done) => done.map_err(Into::into),
        Err(_) => Err(ApiError::StoreTimeout),
    }
}

/// What went wrong, in full (answers may say less).
impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::BadRequest(m)
            | ApiError::PayloadTooLarge(m)
            | ApiError::Unavailable(m) => f.write_str(m),
            ApiError::StoreTimeout => write!(f, "the store did not answer within {} s", STORE_TIMEOUT.as_secs()),
            ApiError::Internal(e) => write!(f, "{e}"),
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
            ApiError::Unavailable(_) | ApiError::StoreTimeout => {
                tracing::warn!("store unavailable: {self}");
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
