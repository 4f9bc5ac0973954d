//! The agent API's path tracing: an agent leases the due host pairs of its own host and
//! sends back the runs it made (wire types and their checks in
//! [`probers::agent::trace_wire`]).
//!
//! Tokens and nodes are checked as for the other agent calls (401, 404, 403; see
//! [`super::agents`]). A runs body must be JSON of the documented shape (else 400, naming
//! the field), at most 1 MiB and 1,000 runs (else 413), and only about pairs from the
//! agent's host (else 403, naming them). Runs are recorded once per pair and time.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::Utc;
use graph_store::paths::{self, TraceRecord, TrackConfig};
use probers::agent::trace_wire::{LeasedPair, TraceClaim, TraceLease, TraceRuns, TracesAccepted, MAX_CLAIM};
use probers::agent::wire::{Problem, MAX_BODY_BYTES};
use probers::trace_loop::{target_of, TraceConfig};

use super::agents::{authenticate, authorize};
use super::error::{with_store_timeout, ApiError};
use super::openapi::ErrorBody;
use super::App;

/// The error answers of the agents' trace calls (a description for the document: the
/// answers themselves are made by `ApiError`).
#[allow(dead_code)]
#[derive(Debug, utoipa::IntoResponses)]
pub enum AgentErrors {
    /// The body is not what the call takes; the message names the field.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No agent token, or one unknown or revoked.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The token is another node's, or a run is of a pair not from the agent's host.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such live node.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// Over 1 MiB, or over 1,000 runs.
    #[response(status = 413)]
    PayloadTooLarge(ErrorBody),
    /// The database cannot be reached just now; retry later.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// Lease the due host pairs of the agent's own host, with how to trace them.
#[utoipa::path(post, path = "/api/v1/agents/{name}/traces/claim", tag = "agents", operation_id = "agent_trace_claim",
    params(("name" = String, Path, description = "The agent's node")),
    request_body(content = Option<TraceClaim>, description = "How many pairs at most (default 100); the body may be empty"),
    security(("agent_token" = [])),
    responses((status = 200, description = "The pairs leased to this agent", body = TraceLease), AgentErrors))]
#[tracing::instrument(skip_all, fields(node = %name))]
pub async fn claim(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TraceLease>, ApiError> {
    with_store_timeout(async {
        let owner = authenticate(&app, &headers).await?;
        authorize(&app, &owner, &name).await?;
        let body = read(body)?;
        let text = body.trim_ascii();
        let ask: TraceClaim = if text.is_empty() || text == b"null" { TraceClaim::default() } else { parse(text)? };
        if !(1..=MAX_CLAIM).contains(&ask.limit) {
            return Err(ApiError::BadRequest(format!("limit: {} is not within 1..={MAX_CLAIM}", ask.limit)));
        }
        let host = host_of(&app, owner.node_id, &owner.node).await?;
        let tuning = app.tuning();
        let Some(cfg) = &tuning.trace else {
            let off = TraceConfig::default();
            return Ok(Json(lease(owner.node, host, &off, false, Vec::new())));
        };
        let who = paths::Tracer::Agent { host: &host };
        let due = paths::claim_due(&app.pool, who, &lessee(&owner.node), i64::from(ask.limit), cfg.lease()).await?;
        let pairs = due
            .iter()
            .filter_map(|p| Some(LeasedPair { pair_id: p.id, target: target_of(p, cfg.protocol).ok()? }))
            .collect();
        Ok::<_, ApiError>(Json(lease(owner.node, host, cfg, true, pairs)))
    })
    .await
}

/// Record the runs made of leased pairs (each stored once per pair and time), and give
/// back the pairs not traced.
#[utoipa::path(post, path = "/api/v1/agents/{name}/traces", tag = "agents", operation_id = "agent_trace_runs",
    params(("name" = String, Path, description = "The agent's node")),
    request_body = TraceRuns,
    security(("agent_token" = [])),
    responses((status = 200, description = "What was recorded", body = TracesAccepted), AgentErrors))]
#[tracing::instrument(skip_all, fields(node = %name))]
pub async fn runs(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TracesAccepted>, ApiError> {
    with_store_timeout(async {
        let owner = authenticate(&app, &headers).await?;
        authorize(&app, &owner, &name).await?;
        let mut report: TraceRuns = parse(&read(body)?)?;
        report.validate(Utc::now()).map_err(|problem| match problem {
            Problem::TooMany(m) => ApiError::PayloadTooLarge(m),
            Problem::Invalid(m) => ApiError::BadRequest(m),
        })?;
        let host = host_of(&app, owner.node_id, &owner.node).await?;
        let mut ids: Vec<i64> = report.runs.iter().map(|r| r.pair_id).chain(report.release.iter().copied()).collect();
        ids.sort_unstable();
        ids.dedup();
        let foreign = paths::foreign_pairs(&app.pool, &host, &ids).await?;
        if !foreign.is_empty() {
            let list: Vec<String> = foreign.iter().take(10).map(i64::to_string).collect();
            return Err(ApiError::Forbidden(format!(
                "trace pair(s) {}{} are not pairs from host {host:?} (the host of {:?}): an agent may report \
                 only the pairs leased to its own host",
                list.join(", "),
                if foreign.len() > 10 { ", …" } else { "" },
                owner.node
            )));
        }
        let records: Vec<TraceRecord> =
            report.runs.into_iter().map(|r| TraceRecord { pair_id: r.pair_id, run: r.run }).collect();
        let track = app.tuning().trace.as_ref().map_or_else(TrackConfig::default, |t| t.track);
        let done = paths::record_runs(&app.pool, &records, &track).await?;
        if !report.release.is_empty() {
            paths::release(&app.pool, &lessee(&owner.node), &report.release).await?;
        }
        Ok::<_, ApiError>(Json(TracesAccepted {
            accepted: records.len(),
            stored: done.runs,
            released: report.release.len(),
        }))
    })
    .await
}

/// Who holds an agent's leases.
fn lessee(node: &str) -> String {
    format!("agent:{node}")
}

fn lease(node: String, host: String, cfg: &TraceConfig, tracing: bool, pairs: Vec<LeasedPair>) -> TraceLease {
    TraceLease {
        node,
        host,
        tracing,
        interval_s: cfg.schedule.interval.as_secs().max(1),
        lease_s: cfg.lease().as_secs(),
        probes: cfg.probes,
        max_ttl: cfg.max_ttl,
        pairs,
    }
}

async fn host_of(app: &App, node_id: i64, node: &str) -> Result<String, ApiError> {
    paths::host_of_node(&app.pool, node_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no live node {node:?} in the graph (retired?)")))
}

fn read(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!("the body is over {MAX_BODY_BYTES} bytes; send fewer runs per request"))
        } else {
            ApiError::BadRequest(format!("cannot read the body: {}", rejection.body_text()))
        }
    })
}

/// The body (a JSON object) as `T`, or a 400 naming where it goes wrong.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // serde would take a struct from an array of its fields too; the calls take objects.
    if body.trim_ascii_start().first().is_some_and(|&b| b != b'{') {
        return Err(ApiError::BadRequest("the body must be a JSON object ({...})".into()));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let parsed: T = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::BadRequest(format!("the body is not valid JSON: {inner}"))
        } else {
            ApiError::BadRequest(format!("{path}: {inner}"))
        }
    })?;
    de.end().map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    Ok(parsed)
}
