//! The web UI served by `serve`: server-rendered HTML pages (maud escapes every name put
//! into them) and a few lines of JavaScript, all built into the binary. See docs/ui.md.
//!
//! - `/` and `/ui/overview` — [`overview`]: counts by state, incidents, broken edges
//!   (`?at=` the graph as it was; `?fragment=1` only the `<main>`, for the 10 s refresh)
//! - `/ui/nodes/{name}` — [`node`]: dependencies, dependents, blast radius, edges, agent
//! - `/ui/edges/{id}` — [`edge`]: state, events, the last 24 h of loss and RTT as SVG
//! - `/ui/map`, `/ui/map/dc/{dc}`, `/ui/map/host/{host}`, `/ui/map/services[/{service}]` —
//!   [`map`]: data centers → hosts → containers, services → providers, coloured by state
//! - `/ui/reports`, `/ui/reports/{day}` — [`reports`]: the stored daily reports
//! - `/ui/routes`, `/ui/routes/pair` — [`routes`]: route changes; a pair's hops and two windows side by side
//! - `/ui/login` — [`auth`]: the read token asked once and kept in a cookie
//! - `/ui/assets/ui.css|ui.js|icon.svg` — the static assets, served without the token (no data)

pub mod auth;
pub mod chart;
pub mod edge;
pub mod map;
pub mod node;
pub mod overview;
pub mod reports;
pub mod routes;

use std::fmt::Write;
use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use graph_store::vocab::HealthState;
use maud::{html, Markup, DOCTYPE};

use super::error::ApiError;
use super::App;

const CSS: &str = include_str!("assets/ui.css");
const JS: &str = include_str!("assets/ui.js");
const ICON: &str = include_str!("assets/icon.svg");

/// What the browser may load and run on a page: only this server's own script and style,
/// no inline script, no plugins, no framing by others.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                   frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Set on the response of a server that listens over TLS (the login cookie is then `Secure`).
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

/// The UI's routes (state: [`App`]); the pages need the read token when one is configured.
pub fn routes(app: Arc<App>) -> Router<Arc<App>> {
    let pages = Router::new()
        .route("/", get(overview::page))
        .route("/ui/overview", get(overview::page))
        .route("/ui/nodes/{name}", get(node::page))
        .route("/ui/edges/{id}", get(edge::page))
        .route("/ui/map", get(map::index))
        .route("/ui/map/dc/{dc}", get(map::dc))
        .route("/ui/map/host/{host}", get(map::host))
        .route("/ui/map/services", get(map::services))
        .route("/ui/map/services/{service}", get(map::service))
        .route("/ui/reports", get(reports::list))
        .route("/ui/reports/{day}", get(reports::day))
        .route("/ui/reports/{day}/html", get(reports::html))
        .route("/ui/routes", get(routes::changes))
        .route("/ui/routes/pair", get(routes::pair))
        .route_layer(middleware::from_fn_with_state(app, auth::require));
    Router::new()
        .merge(pages)
        .route("/ui/login", get(auth::form).post(auth::login))
        .route("/ui/assets/ui.css", get(|| async { asset("text/css; charset=utf-8", CSS) }))
        .route("/ui/assets/ui.js", get(|| async { asset("text/javascript; charset=utf-8", JS) }))
        .route("/ui/assets/icon.svg", get(|| async { asset("image/svg+xml", ICON) }))
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// A whole page: the shell around `main`, answered with the UI's headers.
pub fn page(status: StatusCode, title: &str, main: Markup) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · edgewatch" }
                link rel="stylesheet" href="/ui/assets/ui.css";
                link rel="icon" href="/ui/assets/icon.svg" type="image/svg+xml";
                script src="/ui/assets/ui.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "edgewatch" }
                    nav { a href="/" { "Overview" } a href="/ui/map" { "Map" } a href="/ui/routes" { "Routes" } a href="/ui/reports" { "Reports" } }
                    span #status {}
                }
                (main)
            }
        }
    };
    markup(status, doc)
}

/// Markup answered as HTML with the UI's headers (no caching, the content policy).
pub fn markup(status: StatusCode, m: Markup) -> Response {
    let mut resp = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], m.into_string()).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}

/// A failed page: an HTML page saying what is wrong, with the status the API would give.
#[derive(Debug)]
pub struct UiError(pub ApiError);

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        UiError(e)
    }
}

impl From<graph_store::Error> for UiError {
    fn from(e: graph_store::Error) -> Self {
        UiError(e.into())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, message) = match self.0 {
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ApiError::PayloadTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m),
            ApiError::Unavailable(m) => {
                tracing::warn!("store unavailable: {m}");
                (StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable just now; retry later".into())
            }
            ApiError::StoreTimeout => {
                tracing::warn!("store timeout");
                (StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable just now; retry later".into())
            }
            ApiError::Internal(e) => {
                tracing::error!("internal error: {e:#}");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error (logged on the server)".into())
            }
        };
        let title = status.canonical_reason().unwrap_or("Error");
        page(status, title, html! { main #main { h1 { (title) } p.error { (message) } } })
    }
}

/// What a UI handler answers.
pub type UiResult = Result<Response, UiError>;

/// The path of a node's page: the name percent-encoded as one path segment.
pub fn node_href(name: &str) -> String {
    format!("/ui/nodes/{}", segment(name))
}

/// Percent-encodes everything but the unreserved characters of RFC 3986.
pub fn segment(s: &str) -> String {
    s.bytes().fold(String::with_capacity(s.len()), |mut out, b| {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
        out
    })
}

/// A node's name linked to its page.
pub fn node_link(name: &str) -> Markup {
    html! { a.node href=(node_href(name)) { (name) } }
}

/// A time as UTC to the second, with how long ago.
pub fn when(t: DateTime<Utc>) -> Markup {
    let ago = (Utc::now() - t).num_seconds();
    let ago = match ago {
        i64::MIN..0 => String::new(),
        0..60 => format!("{ago} s ago"),
        60..7200 => format!("{} min ago", ago / 60),
        7200..172_800 => format!("{} h ago", ago / 3600),
        _ => format!("{} days ago", ago / 86_400),
    };
    html! {
        time datetime=(t.to_rfc3339_opts(SecondsFormat::Secs, true)) { (t.format("%Y-%m-%d %H:%M:%SZ")) }
        @if !ago.is_empty() { " " span.ago { "(" (ago) ")" } }
    }
}

/// A health state as a coloured word.
pub fn state(s: HealthState) -> Markup {
    html! { span class={ "state " (s.as_str()) } { (s.as_str()) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_one_path_segment() {
        for (name, href) in [
            ("fe1.host101", "/ui/nodes/fe1.host101"),
            ("<script>alert(1)</script>", "/ui/nodes/%3Cscript%3Ealert%281%29%3C%2Fscript%3E"),
            ("a/b?c#d", "/ui/nodes/a%2Fb%3Fc%23d"),
            ("caf\u{e9}", "/ui/nodes/caf%C3%A9"),
            ("\"q\" 'x'", "/ui/nodes/%22q%22%20%27x%27"),
        ] {
            assert_eq!(node_href(name), href);
        }
    }

    #[test]
    fn names_in_pages_are_text() {
        let m = node_link("<img src=x onerror=alert(1)>\"");
        let s = m.into_string();
        assert!(!s.contains("<img"), "{s}");
        assert!(s.contains("&lt;img src=x onerror=alert(1)&gt;&quot;"), "{s}");
    }
}
