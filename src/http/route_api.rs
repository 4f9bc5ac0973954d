//! The route questions over HTTP, answered as `edgewatch route show|diff|changes
//! --format json` answers them: `/api/v1/routes/show`, `/api/v1/routes/diff`,
//! `/api/v1/routes/changes`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use graph_store::paths::{DiffRules, EventFilter, RouteEventView};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{with_store_timeout, ApiError};
use super::graph::{parse_time, ApiQuery};
use super::App;
use crate::route_query::{self, RouteError};
use crate::route_view::{RouteDiff, RouteShow};

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::NoPair { .. } => ApiError::NotFound(e.to_string()),
            RouteError::BadRequest(m) => ApiError::BadRequest(m),
            RouteError::Store(e) => e.into(),
        }
    }
}

fn width(window: &Option<String>) -> Result<Duration, ApiError> {
    let Some(w) = window else { return Ok(Duration::from_secs(300)) };
    humantime::parse_duration(w)
        .ok()
        .filter(|d| !d.is_zero() && *d <= Duration::from_secs(31 * 86_400))
        .ok_or_else(|| ApiError::BadRequest(format!("window: {w:?} is not a duration such as 5m (at most 31 days)")))
}

/// A pair and a window.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShowParams {
    /// The source: a node (its host), a host, or a prober's vantage.
    pub src: String,
    /// The destination: a node (its host), a host, an address, or an external target's name.
    pub dst: String,
    /// The window's start, RFC 3339 (default: one window before now).
    #[param(format = DateTime)]
    pub at: Option<String>,
    /// The window's width (default 5m).
    pub window: Option<String>,
}

/// The hops from `src` to `dst` over a window, aggregated like `mtr --report`, with
/// whose network each address is in.
#[utoipa::path(get, path = "/api/v1/routes/show", tag = "routes", params(ShowParams),
    responses((status = 200, description = "The hops of the window", body = RouteShow), super::openapi::Errors))]
pub async fn show(State(app): State<Arc<App>>, ApiQuery(p): ApiQuery<ShowParams>) -> Result<Json<RouteShow>, ApiError> {
    let at = p.at.as_deref().map(|v| parse_time("at", v)).transpose()?;
    let width = width(&p.window)?;
    Ok(Json(
        with_store_timeout(route_query::show(&app.reads.pool(), &app.tuning().owners, &p.src, &p.dst, at, width))
            .await?,
    ))
}

/// A pair and the windows to compare.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffParams {
    pub src: String,
    pub dst: String,
    /// The windows' starts, RFC 3339, comma-separated, oldest first (2 to 12).
    pub at: String,
    /// Each window's width (default 5m).
    pub window: Option<String>,
    /// A hop is slower when its RTT grew by more than this many ms (default 10) …
    pub rtt_worse_ms: Option<f32>,
    /// … and by more than this percent (default 20).
    pub rtt_worse_pct: Option<f32>,
}

/// Windows side by side, each compared with the one before: changed, added and removed
/// hops, the first diverging hop, slower hops, loss that started.
#[utoipa::path(get, path = "/api/v1/routes/diff", tag = "routes", params(DiffParams),
    responses((status = 200, description = "The windows and their comparisons", body = RouteDiff),
              super::openapi::Errors))]
pub async fn diff(State(app): State<Arc<App>>, ApiQuery(p): ApiQuery<DiffParams>) -> Result<Json<RouteDiff>, ApiError> {
    let starts: Vec<DateTime<Utc>> = p.at.split(',').map(|v| parse_time("at", v.trim())).collect::<Result<_, _>>()?;
    let defaults = DiffRules::default();
    let rules = DiffRules {
        rtt_worse_ms: p.rtt_worse_ms.unwrap_or(defaults.rtt_worse_ms),
        rtt_worse_pct: p.rtt_worse_pct.unwrap_or(defaults.rtt_worse_pct),
        ..defaults
    };
    let width = width(&p.window)?;
    Ok(Json(
        with_store_timeout(route_query::diff(
            &app.reads.pool(),
            &app.tuning().owners,
            &p.src,
            &p.dst,
            &starts,
            width,
            &rules,
        ))
        .await?,
    ))
}

/// Which route events.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesParams {
    /// From this time, RFC 3339 (default: 24 hours ago).
    #[param(format = DateTime)]
    pub since: Option<String>,
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// One data center (pairs from or to it) or two, comma-separated (pairs between them).
    pub dc: Option<String>,
    /// Kinds, comma-separated: changed, flap-start, flap-end, loss-started, loss-moved, loss-cleared.
    pub kind: Option<String>,
    /// At most this many (default 1000).
    pub limit: Option<i64>,
}

fn list(v: &Option<String>) -> Vec<String> {
    v.as_deref()
        .map(|s| s.split(',').map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()).collect())
        .unwrap_or_default()
}

/// Route events, newest first.
#[utoipa::path(get, path = "/api/v1/routes/changes", tag = "routes", params(ChangesParams),
    responses((status = 200, description = "The events", body = Vec<RouteEventView>), super::openapi::Errors))]
pub async fn changes(
    State(app): State<Arc<App>>,
    ApiQuery(p): ApiQuery<ChangesParams>,
) -> Result<Json<Vec<RouteEventView>>, ApiError> {
    let since = match &p.since {
        Some(v) => parse_time("since", v)?,
        None => Utc::now() - chrono::Duration::hours(24),
    };
    let filter = EventFilter {
        since: Some(since),
        until: p.until.as_deref().map(|v| parse_time("until", v)).transpose()?,
        dcs: list(&p.dc),
        pair_id: None,
        kinds: list(&p.kind),
        limit: p.limit.unwrap_or(1000).clamp(1, 100_000),
    };
    let (events, _labels) =
        with_store_timeout(route_query::changes(&app.reads.pool(), &app.tuning().owners, &filter)).await?;
    Ok(Json(events))
}
