//! Agent tokens: 32 random bytes, shown once as `ewa_` and 64 hex digits; the store keeps
//! only their SHA-256, so a leaked database gives no working token. And the optional read
//! token of the graph questions (`[api] read_token`), compared by its SHA-256 too.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::App;

use rand::RngCore;
use sha2::{Digest, Sha256};

/// What every token starts with, so one found lying around says what it is.
pub const PREFIX: &str = "ewa_";

/// A new token.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{PREFIX}{}", hex(&bytes))
}

/// The SHA-256 (hex) of a token as presented: what the store keeps and looks up.
pub fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// The token of an `Authorization: Bearer <token>` header; `None` without the header.
pub fn bearer(headers: &HeaderMap) -> Option<Result<&str, ApiError>> {
    let value = headers.get(header::AUTHORIZATION)?;
    Some(
        value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or_else(|| ApiError::Unauthorized("the Authorization header is not `Bearer <token>`".into())),
    )
}

/// Middleware: when a read token is configured, the request must present it.
pub async fn require_read_token(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if let Some(expected) = &app.read_token_hash {
        let presented = match bearer(req.headers()) {
            // A browser signed in at /ui/login presents the cookie instead.
            None if super::ui::auth::has_cookie(req.headers(), expected) => Ok(()),
            None => {
                Err(ApiError::Unauthorized("this server needs its read token: `Authorization: Bearer <token>`".into()))
            }
            Some(Err(e)) => Err(e),
            Some(Ok(token)) if hash(token) == *expected => Ok(()),
            Some(Ok(_)) => Err(ApiError::Unauthorized("the read token is not this server's".into())),
        };
        if let Err(e) = presented {
            return e.into_response();
        }
    }
    next.run(req).await
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 64, "{a}");
        assert_eq!(hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(hash(&a).len(), 64);
    }
}
