//! The agent API: an agent reads its node's targets and writes its results, and nothing
//! of any other node.
//!
//! Every request is checked in this order: a token (`Authorization: Bearer …`) that is
//! known and not revoked, else 401; a live node of the name in the path, else 404; the
//! token's own node, else 403. A results body must be JSON of the shape in
//! [`probers::agent::wire`] (else 400, naming the field), at most 1 MiB and 5,000 results
//! (else 413), and only about edges of the agent's node (else 403).

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use chrono::Utc;
use graph_store::agents::{self as store, AgentReport, NginxRates, TokenOwner};
use probers::agent::wire::{self, Accepted, Problem, Results, Target, Targets, MAX_BODY_BYTES};
use probers::record::{self, CycleResult};

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
    let presented = presented?;
    store::token_owner(&app.pool, &token::hash(presented)).await?.ok_or_else(|| {
        ApiError::Unauthorized(
            "the token is not valid (unknown or revoked); make a new one with `edgewatch agent-token create NODE`"
                .into(),
        )
    })
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

/// Records checked results (skipping any already recorded), keeps prober workers off the
/// edges, and stores the local figures.
async fn record_report(
    app: &App,
    owner: &TokenOwner,
    report: Results,
    now: chrono::DateTime<Utc>,
) -> Result<Accepted, ApiError> {
    let ids: Vec<i64> = report.results.iter().map(|r| r.edge_id).collect();
    let foreign = store::foreign_edges(&app.pool, owner.node_id, &ids).await?;
    if !foreign.is_empty() {
        let list: Vec<String> = foreign.iter().take(10).map(i64::to_string).collect();
        return Err(ApiError::Forbidden(format!(
            "edge(s) {}{} are not edges of {:?}: an agent may report only its own node's edges",
            list.join(", "),
            if foreign.len() > 10 { ", …" } else { "" },
            owner.node
        )));
    }
    let prober = format!("agent:{}", owner.node);
    let pairs: Vec<(i64, chrono::DateTime<Utc>)> = report.results.iter().map(|r| (r.edge_id, r.at)).collect();
    let seen: HashSet<(i64, chrono::DateTime<Utc>)> =
        store::already_recorded(&app.pool, &prober, &pairs).await?.into_iter().collect();
    let accepted = report.results.len();
    let cycles: Vec<CycleResult> = report
        .results
        .into_iter()
        .filter(|r| !seen.contains(&(r.edge_id, r.at)))
        .map(|r| CycleResult { edge_id: r.edge_id, at: r.at, kind: r.kind, outcome: r.outcome })
        .collect();
    if !cycles.is_empty() {
        let tuning = app.tuning();
        let done = record::record(&app.pool, &prober, &cycles, &tuning.record).await?;
        if done.unknown_edges > 0 {
            tracing::warn!(unknown = done.unknown_edges, "results for edges without a health row were skipped");
        }
        // Workers leave these edges to the agent; two missed intervals and they probe them again.
        let newest = cycles.iter().map(|c| c.at).max().unwrap_or(now);
        let grace = chrono::Duration::from_std(tuning.record.interval * 2).unwrap_or(chrono::Duration::hours(1));
        let mut edge_ids: Vec<i64> = cycles.iter().map(|c| c.edge_id).collect();
        edge_ids.sort_unstable();
        edge_ids.dedup();
        store::defer_probes(&app.pool, &edge_ids, newest + grace).await?;
    }
    if let Some(local) = report.local {
        let dropped = local.results_dropped.unwrap_or(0);
        let new = store::insert_report(&app.pool, owner.node_id, &to_report(local, now)).await?;
        if new && dropped > 0 {
            app.metrics.agent_results_dropped.inc_by(dropped);
            tracing::warn!(
                node = %owner.node,
                dropped,
                "the agent dropped results it could not deliver (its buffer or spool was full, or they grew too old)"
            );
        }
    }
    Ok(Accepted { accepted, duplicates: seen.len() })
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
