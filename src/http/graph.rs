//! The graph questions over HTTP, answered as `edgewatch graph … --format json` answers
//! them: `/api/v1/nodes`, `/edges`, `/broken`, `/nodes/{name}/deps|dependents`,
//! `/blast/{target}`, `/spof`, `/path`, `/history/edges`, `/diff`. Each takes `at` (a
//! past time) where the CLI takes `--at`.
//!
//! Topology answers for the live graph share one snapshot ([`LiveSnapshot`]): checked
//! against the store when older than the configured age (one small query while the graph
//! has not changed), reloaded in the background when it has, from the packed form the
//! leader keeps (`graph_store::topology::load_fast`); answers wait for a reload a moment at
//! most, then get the one held.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use graph_store::diagnosis::Incident;
use graph_store::history::{self, Diff, EdgeAt};
use graph_store::model::{EdgeView, NodeView};
use graph_store::query::{self, BrokenEdge, ListOptions};
use graph_store::topology::{self, Blast, PathAnswer, ReachedAnswer, Snapshot, Spof};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use utoipa::IntoParams;

use super::error::{with_store_timeout, ApiError};
use super::App;
use crate::not_found::{not_in_graph, Named};

/// A value of the live graph shared by the requests within `max_age` of its loading (the
/// topology snapshot; the answer of `/api/v1/broken`), so a burst of requests costs one
/// load: concurrent callers wait for the one load in progress.
#[derive(Debug)]
pub struct Cached<T> {
    slot: Mutex<Option<(Instant, Arc<T>)>>,
}

impl<T> Default for Cached<T> {
    fn default() -> Self {
        Cached { slot: Mutex::new(None) }
    }
}

impl<T> Cached<T> {
    async fn get<F, Fut>(&self, max_age: Duration, load: F) -> Result<Arc<T>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some((at, value)) = slot.as_ref() {
            if at.elapsed() <= max_age {
                return Ok(value.clone());
            }
        }
        let value = Arc::new(load().await?);
        *slot = Some((Instant::now(), value.clone()));
        Ok(value)
    }
}

/// How long an answer waits for a reload of the snapshot before the one held is used.
const RELOAD_WAIT: Duration = Duration::from_millis(500);

/// `serve`'s topology snapshot: one held, shared by every answer; when it is older than
/// `[api] snapshot_max_age` the next answer has it checked (is the store's topology
/// [`signature`](topology::signature) still the one it was loaded at?) and, when the graph
/// changed, reloaded — one check or reload at a time, in the background, waited for
/// [`RELOAD_WAIT`] at most: a reload of a million edges never stalls the answers.
#[derive(Debug, Default)]
pub struct LiveSnapshot {
    held: std::sync::Mutex<Option<Held>>,
    /// Held by the one check or reload under way.
    reloading: Mutex<()>,
}

#[derive(Debug, Clone)]
struct Held {
    snapshot: Arc<Snapshot>,
    /// The topology signature when loaded (none: unknown, or read on a standby).
    signature: Option<i64>,
    checked: Instant,
}

impl LiveSnapshot {
    fn held(&self) -> Option<Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn get(&self, app: &Arc<App>) -> Result<Arc<Snapshot>, ApiError> {
        let held = self.held();
        if let Some(h) = held.as_ref().filter(|h| h.checked.elapsed() <= app.snapshot_max_age) {
            return Ok(h.snapshot.clone());
        }
        let app2 = app.clone();
        let mut reload = tokio::spawn(async move { app2.live.snapshot.reload(&app2).await });
        let waited = match held {
            None => Some((&mut reload).await),
            Some(_) => tokio::time::timeout(RELOAD_WAIT, &mut reload).await.ok(),
        };
        match (waited, held) {
            (Some(Ok(result)), _) => result,
            (Some(Err(e)), _) => std::panic::resume_unwind(e.into_panic()),
            (None, Some(h)) => Ok(h.snapshot),
            (None, None) => unreachable!("without a snapshot the reload is awaited"),
        }
    }

    /// Checks the held snapshot against the store and reloads it when the graph changed.
    async fn reload(&self, app: &App) -> Result<Arc<Snapshot>, ApiError> {
        let _one = self.reloading.lock().await;
        let held = self.held();
        if let Some(h) = held.as_ref().filter(|h| h.checked.elapsed() <= app.snapshot_max_age) {
            return Ok(h.snapshot.clone());
        }
        let (pool, on_standby) = (app.reads.pool(), app.reads.on_standby());
        let started = Instant::now();
        let signature = if on_standby { None } else { with_store_timeout(topology::current_signature(&pool)).await? };
        if let Some(h) = held.filter(|h| h.signature.is_some() && h.signature == signature) {
            let snapshot = h.snapshot.clone();
            self.keep(Held { checked: started, ..h });
            return Ok(snapshot);
        }
        let (snapshot, _) = with_store_timeout(topology::load_fast(&pool, on_standby)).await?;
        let snapshot = Arc::new(snapshot);
        self.keep(Held { snapshot: snapshot.clone(), signature, checked: started });
        Ok(snapshot)
    }

    fn keep(&self, held: Held) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(held);
    }
}

/// The caches of the live answers.
#[derive(Debug, Default)]
pub struct LiveCache {
    snapshot: LiveSnapshot,
    /// `/api/v1/broken`, serialized.
    broken: Cached<Bytes>,
    /// What the web UI's overview shows of the live graph.
    pub(crate) overview: super::ui::overview::LiveSlot,
    /// The diagnoses the web UI's overview makes itself, one at a time.
    pub(crate) diagnosing: super::ui::overview::Diagnosing,
}

/// Query parameters, with a refusal that says what is wrong as JSON (axum's own is plain
/// text), and no NUL bytes (PostgreSQL text cannot hold them).
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.uri.query().is_some_and(|q| q.contains("%00")) {
            return Err(ApiError::BadRequest("query parameters cannot contain NUL bytes (%00)".into()));
        }
        let Query(value) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("bad query parameters: {}", e.body_text())))?;
        Ok(ApiQuery(value))
    }
}

/// A path segment (a node, host or data center name), refused as JSON when it cannot be
/// decoded.
#[derive(Debug)]
pub struct ApiPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ApiPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(value) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("bad path: {}", e.body_text())))?;
        if value.contains('\0') {
            return Err(ApiError::BadRequest("names cannot contain NUL bytes (%00)".into()));
        }
        Ok(ApiPath(value))
    }
}

/// Times in the API are RFC 3339, as in its answers (the CLI takes friendlier forms too).
pub(super) fn parse_time(name: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(value).map(|t| t.with_timezone(&Utc)).map_err(|e| {
        ApiError::BadRequest(format!("{name}: {value:?} is not an RFC 3339 time such as 2026-11-22T16:00:00Z ({e})"))
    })
}

fn parse_at(at: &Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    at.as_deref().map(|v| parse_time("at", v)).transpose()
}

pub(super) async fn snapshot(app: &Arc<App>, at: &Option<String>) -> Result<Arc<Snapshot>, ApiError> {
    match parse_at(at)? {
        Some(at) => Ok(Arc::new(with_store_timeout(topology::load_at(&app.reads.pool(), Some(at))).await?)),
        None => app.live.snapshot.get(app).await,
    }
}

/// `at`: the graph as it was at this time.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AtParams {
    /// A past time, RFC 3339 (`2026-11-22T16:00:00Z`). Absent: the live graph.
    #[param(format = DateTime)]
    pub at: Option<String>,
}

/// Filters of the node list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NodeParams {
    /// Only this data center.
    pub dc: Option<String>,
    /// Only this role.
    pub role: Option<String>,
    /// Only this host.
    pub host: Option<String>,
    /// Only nodes providing this service.
    pub service: Option<String>,
    /// Include retired nodes (not with `at`).
    pub all: Option<bool>,
    /// The nodes live at this past time (see `at` of the topology questions).
    #[param(format = DateTime)]
    pub at: Option<String>,
}

/// Filters of the edge lists (by the consumer's data center, role and host).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EdgeParams {
    pub dc: Option<String>,
    pub role: Option<String>,
    pub host: Option<String>,
    /// Only edges learned for this service.
    pub service: Option<String>,
    /// Only edges in this state: up, down, degraded, stale, unknown.
    pub state: Option<String>,
    /// Only edges from this source: dns, cmdb, config.
    pub source: Option<String>,
    /// Include retired edges.
    pub all: Option<bool>,
}

/// Filters of the past edge list, and the time.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryEdgeParams {
    /// The time, RFC 3339 (`2026-11-22T16:00:00Z`).
    #[param(format = DateTime)]
    pub at: String,
    pub dc: Option<String>,
    pub role: Option<String>,
    pub host: Option<String>,
    pub service: Option<String>,
    /// Only edges in this state at that time.
    pub state: Option<String>,
    pub source: Option<String>,
}

/// How far to follow dependencies.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DepthParams {
    /// Hops to follow (default 1); 0: no limit.
    pub depth: Option<usize>,
    /// A past time (see `at` elsewhere).
    #[param(format = DateTime)]
    pub at: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PathParams {
    /// The node the chain starts at.
    #[param(example = "fe1.host101")]
    pub from: String,
    /// The node it should reach.
    #[param(example = "db2a.host102")]
    pub to: String,
    /// A past time (see `at` elsewhere).
    #[param(format = DateTime)]
    pub at: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffParams {
    /// The earlier time, RFC 3339.
    #[param(format = DateTime)]
    pub from: String,
    /// The later time, RFC 3339 (default: now).
    #[param(format = DateTime)]
    pub to: Option<String>,
}

fn options(
    dc: &Option<String>,
    role: &Option<String>,
    host: &Option<String>,
    service: &Option<String>,
    all: Option<bool>,
) -> ListOptions {
    ListOptions {
        include_retired: all.unwrap_or(false),
        dc: dc.clone(),
        role: role.clone(),
        host: host.clone(),
        service: service.clone(),
        state: None,
        source: None,
    }
}

/// Nodes (containers), now or at a past time.
#[utoipa::path(get, path = "/api/v1/nodes", tag = "graph", params(NodeParams),
    responses((status = 200, description = "Nodes by name", body = Vec<NodeView>), super::openapi::Errors))]
pub async fn nodes(
    State(app): State<Arc<App>>,
    ApiQuery(p): ApiQuery<NodeParams>,
) -> Result<Json<Vec<NodeView>>, ApiError> {
    let opts = options(&p.dc, &p.role, &p.host, &p.service, p.all);
    Ok(Json(match parse_at(&p.at)? {
        Some(_) if opts.include_retired => {
            return Err(ApiError::BadRequest(
                "all lists retired rows too; with at the graph is the one live then".into(),
            ))
        }
        Some(at) => with_store_timeout(history::nodes_at(&app.reads.pool(), at, &opts)).await?,
        None => with_store_timeout(query::nodes(&app.reads.pool(), opts)).await?,
    }))
}

/// Edges now: consumer → destination address (and node), services, sources, queries,
/// first/last seen, health state.
#[utoipa::path(get, path = "/api/v1/edges", tag = "graph", params(EdgeParams),
    responses((status = 200, description = "Edges by consumer and address", body = Vec<EdgeView>), super::openapi::Errors))]
pub async fn edges(
    State(app): State<Arc<App>>,
    ApiQuery(p): ApiQuery<EdgeParams>,
) -> Result<Json<Vec<EdgeView>>, ApiError> {
    let mut opts = options(&p.dc, &p.role, &p.host, &p.service, p.all);
    (opts.state, opts.source) = (p.state, p.source);
    Ok(Json(with_store_timeout(query::edges(&app.reads.pool(), opts)).await?))
}

/// Edges as they were at a past time, with their state then.
#[utoipa::path(get, path = "/api/v1/history/edges", tag = "history", params(HistoryEdgeParams),
    responses((status = 200, description = "Edges live at that time", body = Vec<EdgeAt>), super::openapi::Errors))]
pub async fn history_edges(
    State(app): State<Arc<App>>,
    ApiQuery(p): ApiQuery<HistoryEdgeParams>,
) -> Result<Json<Vec<EdgeAt>>, ApiError> {
    let at = parse_time("at", &p.at)?;
    let mut opts = options(&p.dc, &p.role, &p.host, &p.service, None);
    (opts.state, opts.source) = (p.state, p.source);
    Ok(Json(with_store_timeout(history::edges_at(&app.reads.pool(), at, &opts)).await?))
}

/// Edges down or degraded (now, or at a past time), worst first: longest broken, then the
/// destinations most consumers fail to reach.
#[utoipa::path(get, path = "/api/v1/broken", tag = "graph", params(AtParams),
    responses((status = 200, description = "Broken edges, worst first", body = Vec<BrokenEdge>), super::openapi::Errors))]
pub async fn broken(State(app): State<Arc<App>>, ApiQuery(p): ApiQuery<AtParams>) -> Result<Response, ApiError> {
    if let Some(at) = parse_at(&p.at)? {
        return Ok(Json(with_store_timeout(history::broken_at(&app.reads.pool(), at)).await?).into_response());
    }
    let body = app
        .live
        .broken
        .get(app.snapshot_max_age, || async {
            let edges = with_store_timeout(query::broken(&app.reads.pool())).await?;
            let json = serde_json::to_vec(&edges).map_err(|e| ApiError::Internal(e.into()))?;
            Ok(Bytes::from(json))
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], Bytes::clone(&body)).into_response())
}

/// What the node depends on: directly, or transitively with `depth`.
#[utoipa::path(get, path = "/api/v1/nodes/{name}/deps", tag = "topology",
    params(("name" = String, Path, description = "Node name", example = "fe1.host101"), DepthParams),
    responses((status = 200, description = "Nodes reached", body = ReachedAnswer), super::openapi::Errors))]
pub async fn deps(
    State(app): State<Arc<App>>,
    ApiPath(name): ApiPath,
    ApiQuery(p): ApiQuery<DepthParams>,
) -> Result<Json<ReachedAnswer>, ApiError> {
    reached(&app, name, p, true).await
}

/// What depends on the node: directly, or transitively with `depth`.
#[utoipa::path(get, path = "/api/v1/nodes/{name}/dependents", tag = "topology",
    params(("name" = String, Path, description = "Node name", example = "db1a.host101"), DepthParams),
    responses((status = 200, description = "Nodes reached", body = ReachedAnswer), super::openapi::Errors))]
pub async fn dependents(
    State(app): State<Arc<App>>,
    ApiPath(name): ApiPath,
    ApiQuery(p): ApiQuery<DepthParams>,
) -> Result<Json<ReachedAnswer>, ApiError> {
    reached(&app, name, p, false).await
}

async fn reached(app: &Arc<App>, name: String, p: DepthParams, forward: bool) -> Result<Json<ReachedAnswer>, ApiError> {
    let snapshot = snapshot(app, &p.at).await?;
    let limit = match p.depth.unwrap_or(1) {
        0 => None,
        n => Some(n),
    };
    let nodes = if forward { snapshot.deps(&name, limit) } else { snapshot.dependents(&name, limit) };
    let nodes = nodes.ok_or_else(|| ApiError::NotFound(not_in_graph(&name, Named::Node)))?;
    let direction = if forward { "deps" } else { "dependents" }.to_string();
    Ok(Json(ReachedAnswer { node: name, direction, depth: limit, nodes }))
}

/// Who loses every provider of some service it uses if the target (a node, else a host,
/// else a data center) disappears.
#[utoipa::path(get, path = "/api/v1/blast/{target}", tag = "topology",
    params(("target" = String, Path, description = "Node, host or data center", example = "host102"), AtParams),
    responses((status = 200, description = "What the target's loss breaks", body = Blast), super::openapi::Errors))]
pub async fn blast(
    State(app): State<Arc<App>>,
    ApiPath(target): ApiPath,
    ApiQuery(p): ApiQuery<AtParams>,
) -> Result<Json<Blast>, ApiError> {
    let snapshot = snapshot(&app, &p.at).await?;
    let blast =
        snapshot.blast(&target).ok_or_else(|| ApiError::NotFound(not_in_graph(&target, Named::NodeHostOrDc)))?;
    Ok(Json(blast))
}

/// Single points of failure: nodes and hosts whose loss alone leaves some consumer
/// without any provider of a service it uses.
#[utoipa::path(get, path = "/api/v1/spof", tag = "topology", params(AtParams),
    responses((status = 200, description = "Single points of failure", body = Vec<Spof>), super::openapi::Errors))]
pub async fn spof(State(app): State<Arc<App>>, ApiQuery(p): ApiQuery<AtParams>) -> Result<Json<Vec<Spof>>, ApiError> {
    Ok(Json(snapshot(&app, &p.at).await?.spof()))
}

/// The shortest dependency chain from one node to another (`found: false` when none).
#[utoipa::path(get, path = "/api/v1/path", tag = "topology", params(PathParams),
    responses((status = 200, description = "The chain, if any", body = PathAnswer), super::openapi::Errors))]
pub async fn path(
    State(app): State<Arc<App>>,
    ApiQuery(p): ApiQuery<PathParams>,
) -> Result<Json<PathAnswer>, ApiError> {
    let snapshot = snapshot(&app, &p.at).await?;
    let hops = snapshot.path(&p.from, &p.to).map_err(|name| ApiError::NotFound(not_in_graph(&name, Named::Node)))?;
    Ok(Json(PathAnswer { found: hops.is_some(), hops: hops.unwrap_or_default(), from: p.from, to: p.to }))
}

/// What changed between two times: nodes and edges that appeared or vanished, edges whose
/// state, destination node or services changed.
#[utoipa::path(get, path = "/api/v1/diff", tag = "history", params(DiffParams),
    responses((status = 200, description = "The changes", body = Diff), super::openapi::Errors))]
pub async fn diff(State(app): State<Arc<App>>, ApiQuery(p): ApiQuery<DiffParams>) -> Result<Json<Diff>, ApiError> {
    let from = parse_time("from", &p.from)?;
    let to = p.to.as_deref().map(|t| parse_time("to", t)).transpose()?.unwrap_or_else(Utc::now);
    if from > to {
        return Err(ApiError::BadRequest("from is after to".into()));
    }
    Ok(Json(with_store_timeout(history::diff(&app.reads.pool(), from, to)).await?))
}

/// The broken edges grouped into incidents, worst first, each with its kind, culprit and
/// evidence (a fresh diagnosis).
#[utoipa::path(get, path = "/api/v1/incidents", tag = "graph",
    responses((status = 200, description = "Incidents, most edges first", body = Vec<Incident>), super::openapi::Errors))]
pub async fn incidents(State(app): State<Arc<App>>) -> Result<Json<Vec<Incident>>, ApiError> {
    let diagnosis = with_store_timeout(graph_store::diagnosis::refresh(&app.pool, &app.tuning().diagnosis)).await?;
    Ok(Json(diagnosis.incidents))
}
