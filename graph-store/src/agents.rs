//! Agents' SQL: their tokens (only a SHA-256 of each is stored), which node a token
//! speaks for, which edges a node may report on, and the local figures (load, nginx
//! rates) agents send along with their probe results.
//!
//! The probe results themselves go through the same path as a prober worker's (see
//! [`crate::probe`]); here are only the checks around them: whether a result was already
//! recorded (an agent resends what it is not sure arrived) and keeping prober workers off
//! edges an agent is probing.

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::{PgConnection, PgPool};

/// The node a token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub token_id: i64,
    pub node_id: i64,
    pub node: String,
    /// The node has been retired from the inventory since the token was made.
    pub node_retired: bool,
}

/// A stored token, as listed for operators (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenRow {
    pub id: i64,
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The local figures of one agent report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentReport {
    /// When the agent measured.
    pub at: DateTime<Utc>,
    pub load1: Option<f32>,
    pub load5: Option<f32>,
    pub load15: Option<f32>,
    pub nginx: Option<NginxRates>,
}

/// An nginx access log's rates over one report interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NginxRates {
    pub interval_s: Option<f32>,
    pub requests_per_s: f32,
    pub errors_per_s: f32,
    /// Requests per second by status code (`"200"`, `"502"`), in code order.
    pub by_status: Vec<(String, f32)>,
}

/// The live node called `name`, if there is one.
#[tracing::instrument(skip(pool))]
pub async fn live_node(pool: &PgPool, name: &str) -> Result<Option<i64>> {
    sqlx::query_scalar("SELECT id FROM nodes WHERE name = $1 AND retired_at IS NULL")
        .bind(name)
        .fetch_optional(pool)
        .await
        .map_err(Error::sql("looking up a node by name"))
}

/// Stores a new token (by its hash) for `node_id`; returns its id.
#[tracing::instrument(skip(pool, token_hash))]
pub async fn create_token(pool: &PgPool, node_id: i64, token_hash: &str) -> Result<i64> {
    sqlx::query_scalar("INSERT INTO agent_tokens (node_id, token_hash) VALUES ($1, $2) RETURNING id")
        .bind(node_id)
        .bind(token_hash)
        .fetch_one(pool)
        .await
        .map_err(Error::sql("storing an agent token"))
}

/// Revokes every live token of `node_id`; returns how many.
#[tracing::instrument(skip(pool))]
pub async fn revoke_tokens(pool: &PgPool, node_id: i64) -> Result<u64> {
    let done = sqlx::query("UPDATE agent_tokens SET revoked_at = now() WHERE node_id = $1 AND revoked_at IS NULL")
        .bind(node_id)
        .execute(pool)
        .await
        .map_err(Error::sql("revoking agent tokens"))?;
    Ok(done.rows_affected())
}

/// Every token of the node called `node`, oldest first.
pub async fn tokens_of(pool: &PgPool, node: &str) -> Result<Vec<TokenRow>> {
    sqlx::query_as(
        "SELECT t.id, t.token_hash, t.created_at, t.revoked_at FROM agent_tokens t \
         JOIN nodes n ON n.id = t.node_id WHERE n.name = $1 ORDER BY t.id",
    )
    .bind(node)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("listing agent tokens"))
}

/// The node an unrevoked token (given by its hash) speaks for.
#[tracing::instrument(skip_all)]
pub async fn token_owner(pool: &PgPool, token_hash: &str) -> Result<Option<TokenOwner>> {
    let row: Option<(i64, i64, String, bool)> = sqlx::query_as(
        "SELECT t.id, n.id, n.name, n.retired_at IS NOT NULL FROM agent_tokens t \
         JOIN nodes n ON n.id = t.node_id WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await
    .map_err(Error::sql("checking an agent token"))?;
    Ok(row.map(|(token_id, node_id, node, node_retired)| TokenOwner { token_id, node_id, node, node_retired }))
}

/// Those of `edge_ids` that are not edges of `node_id` (unknown ids included), sorted.
#[tracing::instrument(skip(pool, edge_ids), fields(edges = edge_ids.len()))]
pub async fn foreign_edges(pool: &PgPool, node_id: i64, edge_ids: &[i64]) -> Result<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT DISTINCT id FROM UNNEST($2::bigint[]) AS t(id) \
         WHERE NOT EXISTS (SELECT 1 FROM edges e WHERE e.id = t.id AND e.src_id = $1) ORDER BY id",
    )
    .bind(node_id)
    .bind(edge_ids)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("checking the edges of an agent's results"))
}

/// Which of the `(prober, edge_id, at)` results are already recorded: an agent resends a
/// batch whose answer it did not get, and the second copy must not count twice.
#[tracing::instrument(skip(conn, results), fields(results = results.len()))]
pub async fn already_recorded(
    conn: &mut PgConnection,
    results: &[(&str, i64, DateTime<Utc>)],
) -> Result<Vec<(String, i64, DateTime<Utc>)>> {
    let (Some(first), Some(last)) = (results.iter().map(|r| r.2).min(), results.iter().map(|r| r.2).max()) else {
        return Ok(Vec::new());
    };
    // The edges' rows in the time span, by the (edge_id, at) index, matched here: a join
    // with the list in SQL is planned as a scan of the whole day's partition.
    let mut ids: Vec<i64> = results.iter().map(|r| r.1).collect();
    ids.sort_unstable();
    ids.dedup();
    let stored: Vec<(String, i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT prober, edge_id, at FROM probe_results WHERE edge_id = ANY($1) AND at BETWEEN $2 AND $3",
    )
    .bind(ids)
    .bind(first)
    .bind(last)
    .fetch_all(conn)
    .await
    .map_err(Error::sql("looking for results already recorded"))?;
    let asked: std::collections::HashSet<(&str, i64, DateTime<Utc>)> = results.iter().copied().collect();
    Ok(stored.into_iter().filter(|(prober, edge, at)| asked.contains(&(prober.as_str(), *edge, *at))).collect())
}

/// Stores the reports of several agents in one statement; a report already stored (same
/// node and time: the agent sent it again) is left as it is. Returns, for each report in
/// order, whether it was new.
#[tracing::instrument(skip_all, fields(reports = reports.len()))]
pub async fn insert_reports(conn: &mut PgConnection, reports: &[(i64, &AgentReport)]) -> Result<Vec<bool>> {
    if reports.is_empty() {
        return Ok(Vec::new());
    }
    // In key order, so that two batches with the same reports (resent) never wait on
    // each other in a cycle.
    let mut sorted: Vec<(i64, &AgentReport)> = reports.to_vec();
    sorted.sort_by_key(|(node, r)| (*node, r.at));
    let reports_in_order = reports;
    let reports = &sorted[..];
    let nginx = |f: fn(&NginxRates) -> Option<f32>| -> Vec<Option<f32>> {
        reports.iter().map(|(_, r)| r.nginx.as_ref().and_then(f)).collect()
    };
    // Status rates as a JSON object per report (NULL without nginx), built here: arrays
    // of arrays of different lengths do not bind.
    let status: Vec<Option<String>> = reports
        .iter()
        .map(|(_, r)| {
            r.nginx.as_ref().map(|n| {
                let object: serde_json::Map<String, serde_json::Value> =
                    n.by_status.iter().map(|(code, rate)| (code.clone(), serde_json::json!(rate))).collect();
                serde_json::Value::Object(object).to_string()
            })
        })
        .collect();
    let stored: Vec<(i64, DateTime<Utc>)> = sqlx::query_as(
        "INSERT INTO agent_reports (node_id, at, load1, load5, load15, nginx_interval_s, nginx_requests_per_s, \
                                    nginx_errors_per_s, nginx_status_rates) \
         SELECT node_id, at, load1, load5, load15, iv, rq, er, st::jsonb \
         FROM UNNEST($1::bigint[], $2::timestamptz[], $3::real[], $4::real[], $5::real[], $6::real[], \
                     $7::real[], $8::real[], $9::text[]) AS t(node_id, at, load1, load5, load15, iv, rq, er, st) \
         ON CONFLICT (node_id, at) DO NOTHING RETURNING node_id, at",
    )
    .bind(reports.iter().map(|(node, _)| *node).collect::<Vec<_>>())
    .bind(reports.iter().map(|(_, r)| r.at).collect::<Vec<_>>())
    .bind(reports.iter().map(|(_, r)| r.load1).collect::<Vec<_>>())
    .bind(reports.iter().map(|(_, r)| r.load5).collect::<Vec<_>>())
    .bind(reports.iter().map(|(_, r)| r.load15).collect::<Vec<_>>())
    .bind(nginx(|n| n.interval_s))
    .bind(nginx(|n| Some(n.requests_per_s)))
    .bind(nginx(|n| Some(n.errors_per_s)))
    .bind(status)
    .fetch_all(conn)
    .await
    .map_err(Error::sql("storing agent reports"))?;
    // A report twice in one batch is new once, the first time.
    let mut stored: std::collections::HashSet<(i64, DateTime<Utc>)> = stored.into_iter().collect();
    Ok(reports_in_order.iter().map(|(node, r)| stored.remove(&(*node, r.at))).collect())
}

type ReportTuple = (
    DateTime<Utc>,
    Option<f32>,
    Option<f32>,
    Option<f32>,
    Option<f32>,
    Option<f32>,
    Option<f32>,
    Option<Vec<String>>,
    Option<Vec<f32>>,
);

/// The reports of the node called `node` measured at or after `since`, oldest first.
pub async fn reports_of(pool: &PgPool, node: &str, since: DateTime<Utc>) -> Result<Vec<AgentReport>> {
    let rows: Vec<ReportTuple> = sqlx::query_as(
        "SELECT r.at, r.load1, r.load5, r.load15, r.nginx_interval_s, r.nginx_requests_per_s, r.nginx_errors_per_s, \
                CASE WHEN r.nginx_status_rates IS NULL THEN NULL \
                     ELSE ARRAY(SELECT k FROM jsonb_each(r.nginx_status_rates) AS s(k, v) ORDER BY k) END, \
                CASE WHEN r.nginx_status_rates IS NULL THEN NULL \
                     ELSE ARRAY(SELECT v::text::real FROM jsonb_each(r.nginx_status_rates) AS s(k, v) ORDER BY k) END \
         FROM agent_reports r JOIN nodes n ON n.id = r.node_id \
         WHERE n.name = $1 AND r.at >= $2 ORDER BY r.at",
    )
    .bind(node)
    .bind(since)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("reading agent reports"))?;
    Ok(rows
        .into_iter()
        .map(|(at, load1, load5, load15, interval_s, requests, errors, codes, rates)| AgentReport {
            at,
            load1,
            load5,
            load15,
            nginx: requests.map(|requests_per_s| NginxRates {
                interval_s,
                requests_per_s,
                errors_per_s: errors.unwrap_or(0.0),
                by_status: codes.unwrap_or_default().into_iter().zip(rates.unwrap_or_default()).collect(),
            }),
        })
        .collect())
}

/// Deletes reports measured before `before`; returns how many.
#[tracing::instrument(skip(pool))]
pub async fn prune_reports(pool: &PgPool, before: DateTime<Utc>) -> Result<u64> {
    let done = sqlx::query("DELETE FROM agent_reports WHERE at < $1")
        .bind(before)
        .execute(pool)
        .await
        .map_err(Error::sql("deleting old agent reports"))?;
    Ok(done.rows_affected())
}

/// When `prober` recorded results for `edge_id`s from `since` on: `(edge_id, at)`, in
/// time order (for tests and for operators asking what an agent delivered).
pub async fn results_of(pool: &PgPool, prober: &str, since: DateTime<Utc>) -> Result<Vec<(i64, DateTime<Utc>)>> {
    sqlx::query_as("SELECT edge_id, at FROM probe_results WHERE prober = $1 AND at >= $2 ORDER BY at, edge_id")
        .bind(prober)
        .bind(since)
        .fetch_all(pool)
        .await
        .map_err(Error::sql("listing a prober's results"))
}
