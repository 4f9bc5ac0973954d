//! The read token in a browser: asked once at `/ui/login`, then kept in the cookie
//! `edgewatch_read` (`HttpOnly; SameSite=Strict; Path=/`, and `Secure` over TLS). The
//! cookie holds a value derived from the token's hash, not the token itself; the API's
//! read-token check takes it as it takes `Authorization: Bearer`.

use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use maud::html;
use serde::Deserialize;

use super::super::token;
use super::super::App;
use super::OverTls;

/// The cookie's name.
pub const COOKIE: &str = "edgewatch_read";

/// How long a browser keeps the cookie: 30 days.
const MAX_AGE_S: u32 = 30 * 86_400;

/// The cookie's value for the read token whose SHA-256 (hex) is `token_hash`.
pub fn cookie_value(token_hash: &str) -> String {
    token::hash(&format!("edgewatch ui cookie v1:{token_hash}"))
}

/// Whether the request carries the cookie of this read token.
pub fn has_cookie(headers: &HeaderMap, token_hash: &str) -> bool {
    let expected = cookie_value(token_hash);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(name, value)| name == COOKIE && value == expected)
}

/// Whether the request may see data: no read token configured, or its cookie, or a good
/// `Authorization: Bearer`.
fn allowed(app: &App, headers: &HeaderMap) -> bool {
    match &app.read_token_hash {
        None => true,
        Some(expected) => {
            has_cookie(headers, expected)
                || matches!(token::bearer(headers), Some(Ok(t)) if token::hash(t) == *expected)
        }
    }
}

/// Middleware of the pages: without the token, the login form (401) instead.
pub async fn require(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if allowed(&app, req.headers()) {
        return next.run(req).await;
    }
    let back = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    login_page(StatusCode::UNAUTHORIZED, &back, None)
}

/// Where to go after the login: a path on this server, else the overview.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") && n.is_ascii() => n,
        _ => "/",
    }
}

fn login_page(status: StatusCode, next: &str, error: Option<&str>) -> Response {
    let main = html! {
        main #main.login {
            h1 { "Read token" }
            p { "This server needs its read token (" code { "[api] read_token" } ") to show its pages. \
                 It is kept in a cookie of this browser." }
            @if let Some(e) = error { p.error { (e) } }
            form method="post" action="/ui/login" {
                input type="hidden" name="next" value=(safe_next(Some(next)));
                label { "Token " input type="password" name="token" autocomplete="current-password" required autofocus; }
                button type="submit" { "Sign in" }
            }
        }
    };
    super::page(status, "Read token", main)
}

#[derive(Debug, Deserialize)]
pub struct NextParam {
    next: Option<String>,
}

/// `GET /ui/login`: the form (the overview when no token is configured).
pub async fn form(State(app): State<Arc<App>>, Query(p): Query<NextParam>) -> Response {
    let next = safe_next(p.next.as_deref());
    if app.read_token_hash.is_none() {
        return redirect(next, None);
    }
    login_page(StatusCode::OK, next, None)
}

#[derive(Debug, Deserialize)]
pub struct Login {
    token: String,
    next: Option<String>,
}

/// `POST /ui/login`: a good token sets the cookie and goes on; a wrong one is told so.
pub async fn login(State(app): State<Arc<App>>, tls: Option<Extension<OverTls>>, Form(form): Form<Login>) -> Response {
    let next = safe_next(form.next.as_deref());
    let Some(expected) = &app.read_token_hash else {
        return redirect(next, None);
    };
    if token::hash(form.token.trim()) != *expected {
        return login_page(StatusCode::UNAUTHORIZED, next, Some("That is not this server's read token."));
    }
    let secure = if tls.is_some() { "; Secure" } else { "" };
    let cookie =
        format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={MAX_AGE_S}{secure}", cookie_value(expected));
    redirect(next, Some(cookie))
}

fn redirect(to: &str, cookie: Option<String>) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")));
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::SET_COOKIE, c);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        for (next, to) in [
            (Some("/ui/nodes/a"), "/ui/nodes/a"),
            (Some("//evil.example/"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("https://evil.example/"), "/"),
            (Some("/caf\u{e9}"), "/"),
            (None, "/"),
        ] {
            assert_eq!(safe_next(next), to, "{next:?}");
        }
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let hash = token::hash("s3cret");
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, format!("a=b; {COOKIE}={}; c=d", cookie_value(&hash)).parse().unwrap());
        assert!(has_cookie(&h, &hash));
        assert!(!has_cookie(&h, &token::hash("other")));
        h.insert(header::COOKIE, format!("{COOKIE}={hash}").parse().unwrap());
        assert!(!has_cookie(&h, &hash), "the token's hash itself is not the cookie");
    }
}
