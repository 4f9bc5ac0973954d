//! The agent API: an agent reads its node's targets and writes its results, and nothing
//! of any other node.
//!
//! Every request is checked in this order: a token (`Authorization: Bearer …`) that is
//! known and not revoked, else 401; a live node of the name in the path, else 404; the
//! token's own node, else 403. A results body must be JSON of the shape in
//! [`probers::agent::wire`] (else 400, naming the field), at most 1 MiB and 5,000 results
//! (else 413), and only about edges of the agent's node (else 403).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use chrono::Utc;
use graph_store::agents::{self as store, AgentReport, NginxRates, TokenOwner};
use probers::agent::wire::{self, Accepted, Problem, Results, Target, Targets, MAX_BODY_BYTES};
use probers::record::{AgentPost, CycleResult};

use super::error::{with_store_timeout, ApiError};
use super::{token, App};

/// `GET /api/v1/agents/{name}/targets`
#[tracing::instrument(skip_all, fields(node = %name))]
pub async fn targets(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Targets>, ApiError> {
    with_store_timeout(async {
        let owner = authenticate(&app, &headers).await?;
        authorize(&app, &owner, &name).await?;
        let edges = graph_store::probe::targets_of(&app.pool, &owner.node).await?;
        app.edges_of.insert(owner.node_id, Arc::new(edges.iter().map(|e| e.edge_id).collect()));
        Ok::<_, ApiError>(Json(Targets {
            node: owner.node,
            interval_s: app.tuning().record.interval.as_secs().max(1),
            targets: edges.into_iter().map(|e| Target::new(e.edge_id, e.dst_ip, e.port)).collect(),
        }))
    })
    .await
}

/// `POST /api/v1/agents/{name}/results`
#[tracing::instrument(skip_all, fields(node = %name))]
pub async fn results(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Accepted>, ApiError> {
    with_store_timeout(async {
        let owner = authenticate(&app, &headers).await?;
        authorize(&app, &owner, &name).await?;
        let body = body.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(format!(
                    "the body is over {MAX_BODY_BYTES} bytes; send fewer results per request"
                ))
            } else {
                ApiError::BadRequest(format!("cannot read the body: {}", rejection.body_text()))
            }
        })?;
        let now = Utc::now();
        let mut report = parse(&headers, &body)?;
        report.validate(now).map_err(|problem| match problem {
            Problem::TooMany(m) => ApiError::PayloadTooLarge(m),
            Problem::Invalid(m) => ApiError::BadRequest(m),
        })?;
        record_report(&app, &owner, report, now).await.map(Json)
    })
    .await
}

/// The node the request's token speaks for.
pub(super) async fn authenticate(app: &App, headers: &HeaderMap) -> Result<TokenOwner, ApiError> {
    let Some(presented) = token::bearer(headers) else {
        return Err(ApiError::Unauthorized(
            "no token: send `Authorization: Bearer <token>` with the token made by \
             `edgewatch agent-token create NODE`"
                .into(),
        ));
    };
    let hash = token::hash(presented?);
    app.store_ready().await;
    if let Some(owner) = app.tokens.get(&hash) {
        return Ok(owner);
    }
    let owner = store::token_owner(&app.pool, &hash).await?.ok_or_else(|| {
        ApiError::Unauthorized(
            "the token is not valid (unknown or revoked); make a new one with `edgewatch agent-token create NODE`"
                .into(),
        )
    })?;
    app.tokens.insert(hash, owner.clone());
    Ok(owner)
}

/// Lets `owner` at the node called `name` only if it is its own, live node.
pub(super) async fn authorize(app: &App, owner: &TokenOwner, name: &str) -> Result<(), ApiError> {
    if name == owner.node && !owner.node_retired {
        return Ok(());
    }
    if store::live_node(&app.pool, name).await?.is_none() {
        return Err(ApiError::NotFound(format!("no node {name:?} in the graph (unknown, or retired)")));
    }
    Err(ApiError::Forbidden(format!(
        "this token belongs to {:?}; an agent may read and write only its own node, not {name:?}",
        owner.node
    )))
}

/// The body as [`Results`], or a 400 naming where it goes wrong.
fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Results, ApiError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        if !ct.trim_start().to_ascii_lowercase().starts_with("application/json") {
            return Err(ApiError::BadRequest(format!("Content-Type is {ct:?}; send application/json")));
        }
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let parsed: Results = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::BadRequest(format!("the body is not valid JSON: {inner}"))
        } else if path == "." {
            ApiError::BadRequest(format!(
                "the body must be an object {{\"results\": [...], \"local\": {{...}}}}: {inner}"
            ))
        } else {
            ApiError::BadRequest(format!("{path}: {inner}"))
        }
    })?;
    de.end().map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    Ok(parsed)
}

/// Records checked results (skipping any already recorded) and the local figures,
/// with the other posts of the moment (`super::intake`); prober workers then leave the
/// edges to the agent.
async fn record_report(
    app: &App,
    owner: &TokenOwner,
    report: Results,
    now: chrono::DateTime<Utc>,
) -> Result<Accepted, ApiError> {
    let foreign = foreign_edges(app, owner, &report).await?;
    if !foreign.is_empty() {
        let list: Vec<String> = foreign.iter().take(10).map(i64::to_string).collect();
        return Err(ApiError::Forbidden(format!(
            "edge(s) {}{} are not edges of {:?}: an agent may report only its own node's edges",
            list.join(", "),
            if foreign.len() > 10 { ", …" } else { "" },
            owner.node
        )));
    }
    let dropped = report.local.as_ref().and_then(|l| l.results_dropped).unwrap_or(0);
    let post = AgentPost {
        prober: format!("agent:{}", owner.node),
        node_id: owner.node_id,
        cycles: report
            .results
            .into_iter()
            .map(|r| CycleResult { edge_id: r.edge_id, at: r.at, kind: r.kind, outcome: r.outcome })
            .collect(),
        report: report.local.map(|local| to_report(local, now)),
    };
    let done = app.intake.record(post).await?;
    if done.unknown_edges > 0 {
        tracing::warn!(unknown = done.unknown_edges, "results for edges without a health row were skipped");
    }
    if done.report_new && dropped > 0 {
        app.metrics.agent_results_dropped.inc_by(dropped);
        tracing::warn!(
            node = %owner.node,
            dropped,
            "the agent dropped results it could not deliver (its buffer or spool was full, or they grew too old)"
        );
    }
    Ok(Accepted { accepted: done.accepted, duplicates: done.duplicates })
}

/// The edges of `report` that are not `owner`'s, sorted: those its last targets listed
/// are its own; only the others are looked up.
async fn foreign_edges(app: &App, owner: &TokenOwner, report: &Results) -> Result<Vec<i64>, ApiError> {
    let known = app.edges_of.get(&owner.node_id);
    let mut unsure: Vec<i64> =
        report.results.iter().map(|r| r.edge_id).filter(|id| !known.as_ref().is_some_and(|k| k.contains(id))).collect();
    if unsure.is_empty() {
        return Ok(Vec::new());
    }
    unsure.sort_unstable();
    unsure.dedup();
    Ok(store::foreign_edges(&app.pool, owner.node_id, &unsure).await?)
}

fn to_report(local: wire::Local, now: chrono::DateTime<Utc>) -> AgentReport {
    AgentReport {
        at: local.at.unwrap_or_else(|| wire::store_precision(now)),
        load1: local.load1.map(|v| v as f32),
        load5: local.load5.map(|v| v as f32),
        load15: local.load15.map(|v| v as f32),
        nginx: local.nginx.map(|n| NginxRates {
            interval_s: n.interval_s.map(|v| v as f32),
            requests_per_s: n.requests_per_s as f32,
            errors_per_s: n.errors_per_s as f32,
            by_status: n.by_status.into_iter().map(|(code, rate)| (code, rate as f32)).collect(),
        }),
    }
}
