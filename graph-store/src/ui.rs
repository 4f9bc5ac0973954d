//! Reading for the web UI (`serve`'s pages): what the graph questions of [`crate::query`]
//! and [`crate::history`] do not answer — edges by id with their events and last day of
//! loss and RTT, a node's edges both ways, edge counts by state, and the stored reports.
//! Read-only; one small statement per function.

use std::collections::HashMap;

use crate::PgPool;
use chrono::{DateTime, NaiveDate, Utc};

use crate::error::{Error, Result};
use crate::history::live_at;
use crate::vocab::HealthState;

/// An edge of a node (either way), as the node page lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeEdge {
    pub id: i64,
    pub src: String,
    pub dst_ip: String,
    /// The node owning `dst_ip` now, if any.
    pub dst: Option<String>,
    pub services: Vec<String>,
    pub state: HealthState,
    /// Since when it is in `state` (none: never probed).
    pub since: Option<DateTime<Utc>>,
    /// The node is the consumer (else it is the destination).
    pub outgoing: bool,
}

/// One edge with its health, as the edge page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeDetail {
    pub id: i64,
    pub src: String,
    pub src_dc: String,
    pub dst_ip: String,
    pub dst: Option<String>,
    pub services: Vec<String>,
    pub sources: Vec<String>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
    pub state: HealthState,
    pub since: Option<DateTime<Utc>>,
    pub last_result_at: Option<DateTime<Utc>>,
    pub loss_pct: Option<f32>,
    pub rtt_avg_ms: Option<f32>,
}

/// A state change of an edge.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeEvent {
    pub at: DateTime<Utc>,
    pub from_state: String,
    pub to_state: String,
    pub reason: String,
}

/// The probe results of an edge within one time bin.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoint {
    /// The bin's start.
    pub at: DateTime<Utc>,
    pub results: i64,
    /// Packets lost of packets sent, in percent.
    pub loss_pct: Option<f64>,
    /// The mean of the results' average RTTs (none: nothing answered).
    pub rtt_ms: Option<f64>,
}

/// A stored rendering of a daily report (its body not read).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReport {
    pub day: NaiveDate,
    pub tz: String,
    pub format: String,
    pub generated_at: DateTime<Utc>,
}

type EdgeTuple = (i64, String, String, Option<String>, Vec<String>, Option<HealthState>, Option<DateTime<Utc>>, bool);

/// The live edges from and to the node called `name` (consumer first, then by address).
#[tracing::instrument(skip(pool))]
pub async fn node_edges(pool: &PgPool, name: &str) -> Result<Vec<NodeEdge>> {
    let rows: Vec<EdgeTuple> = sqlx::query_as(
        "WITH me AS (SELECT id FROM nodes WHERE name = $1), \
              mine AS (SELECT ip FROM addresses WHERE node_id = (SELECT id FROM me) AND retired_at IS NULL) \
         SELECT e.id, s.name, host(e.dst_ip), d.name, e.services, h.state, h.since, e.src_id = (SELECT id FROM me) \
         FROM edges e JOIN nodes s ON s.id = e.src_id \
         LEFT JOIN edge_health h ON h.edge_id = e.id \
         LEFT JOIN addresses a ON a.ip = e.dst_ip AND a.retired_at IS NULL \
         LEFT JOIN nodes d ON d.id = a.node_id \
         WHERE e.retired_at IS NULL AND (e.src_id = (SELECT id FROM me) OR e.dst_ip IN (SELECT ip FROM mine)) \
         ORDER BY 8 DESC, e.dst_ip, s.name",
    )
    .bind(name)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("listing a node's edges"))?;
    Ok(rows
        .into_iter()
        .map(|(id, src, dst_ip, dst, services, state, since, outgoing)| NodeEdge {
            id,
            src,
            dst_ip,
            dst,
            services,
            state: state.unwrap_or(HealthState::Unknown),
            since,
            outgoing,
        })
        .collect())
}

type DetailTuple = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Vec<String>,
    Vec<String>,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<HealthState>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<f32>,
    Option<f32>,
);

/// The edge with this id (retired ones too), with its health.
#[tracing::instrument(skip(pool))]
pub async fn edge(pool: &PgPool, id: i64) -> Result<Option<EdgeDetail>> {
    let row: Option<DetailTuple> = sqlx::query_as(
        "SELECT e.id, s.name, s.dc, host(e.dst_ip), d.name, e.services, e.sources, e.first_seen, e.last_seen, \
                e.retired_at, h.state, h.since, h.last_result_at, h.loss_pct, h.rtt_avg_ms \
         FROM edges e JOIN nodes s ON s.id = e.src_id \
         LEFT JOIN edge_health h ON h.edge_id = e.id \
         LEFT JOIN addresses a ON a.ip = e.dst_ip AND a.retired_at IS NULL \
         LEFT JOIN nodes d ON d.id = a.node_id \
         WHERE e.id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(Error::sql("reading an edge"))?;
    Ok(row.map(|r| EdgeDetail {
        id: r.0,
        src: r.1,
        src_dc: r.2,
        dst_ip: r.3,
        dst: r.4,
        services: r.5,
        sources: r.6,
        first_seen: r.7,
        last_seen: r.8,
        retired_at: r.9,
        state: r.10.unwrap_or(HealthState::Unknown),
        since: r.11,
        last_result_at: r.12,
        loss_pct: r.13,
        rtt_avg_ms: r.14,
    }))
}

/// The edge's newest `limit` state changes, newest first.
#[tracing::instrument(skip(pool))]
pub async fn edge_events(pool: &PgPool, id: i64, limit: i64) -> Result<Vec<EdgeEvent>> {
    let rows: Vec<(DateTime<Utc>, String, String, String)> = sqlx::query_as(
        "SELECT at, from_state, to_state, reason FROM edge_events WHERE edge_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
    )
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("reading an edge's events"))?;
    Ok(rows
        .into_iter()
        .map(|(at, from_state, to_state, reason)| EdgeEvent { at, from_state, to_state, reason })
        .collect())
}

type SeriesTuple = (DateTime<Utc>, i64, Option<f64>, Option<f64>);

/// The edge's probe results since `since`, in bins of `bin_s` seconds, oldest first
/// (bins without results are not listed).
#[tracing::instrument(skip(pool))]
pub async fn edge_series(pool: &PgPool, id: i64, since: DateTime<Utc>, bin_s: i64) -> Result<Vec<SeriesPoint>> {
    let rows: Vec<SeriesTuple> = sqlx::query_as(
        "SELECT date_bin(make_interval(secs => $3), at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bin, count(*), \
                CASE WHEN sum(sent) > 0 THEN 100.0 * (sum(sent) - sum(received))::float8 / sum(sent) END, \
                avg(rtt_avg_ms)::float8 \
         FROM probe_results WHERE edge_id = $1 AND at >= $2 GROUP BY 1 ORDER BY 1",
    )
    .bind(id)
    .bind(since)
    .bind(bin_s as f64)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("reading an edge's probe results"))?;
    Ok(rows.into_iter().map(|(at, results, loss_pct, rtt_ms)| SeriesPoint { at, results, loss_pct, rtt_ms }).collect())
}

/// The ids of the edges `(consumer name, destination address)`, the live one when there
/// are several over time, else the newest.
#[tracing::instrument(skip(pool, pairs))]
pub async fn edge_ids(pool: &PgPool, pairs: &[(String, String)]) -> Result<HashMap<(String, String), i64>> {
    let (srcs, ips): (Vec<&str>, Vec<&str>) = pairs.iter().map(|(s, ip)| (s.as_str(), ip.as_str())).unzip();
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT DISTINCT ON (p.src, p.ip) p.src, p.ip, e.id \
         FROM unnest($1::text[], $2::text[]) AS p(src, ip) \
         JOIN nodes s ON s.name = p.src JOIN edges e ON e.src_id = s.id AND e.dst_ip = p.ip::inet \
         ORDER BY p.src, p.ip, e.retired_at IS NULL DESC, e.id DESC",
    )
    .bind(&srcs)
    .bind(&ips)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("looking up edge ids"))?;
    Ok(rows.into_iter().map(|(src, ip, id)| ((src, ip), id)).collect())
}

/// Live edges by health state (edges without a health row are `unknown`).
#[tracing::instrument(skip(pool))]
pub async fn edge_counts(pool: &PgPool) -> Result<Vec<(HealthState, i64)>> {
    sqlx::query_as(
        "SELECT COALESCE(h.state, 'unknown'), count(*) FROM edges e LEFT JOIN edge_health h ON h.edge_id = e.id \
         WHERE e.retired_at IS NULL GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .map_err(Error::sql("counting edges by state"))
}

/// Edges live at `at` by their state then (as [`crate::history::edges_at`] finds them:
/// the last state change at or before `at`, `unknown` without one; `flapping` is a state
/// of its own there), counted in the store.
#[tracing::instrument(skip(pool))]
pub async fn edge_counts_at(pool: &PgPool, at: DateTime<Utc>) -> Result<Vec<(String, i64)>> {
    let (eh, sh) = (live_at("eh"), live_at("sh"));
    sqlx::query_as(&format!(
        "SELECT COALESCE(st.to_state, 'unknown'), count(*) \
         FROM edge_history eh \
         JOIN edges e ON e.id = eh.edge_id \
         JOIN node_history sh ON sh.node_id = e.src_id AND {sh} \
         LEFT JOIN LATERAL (SELECT ev.to_state FROM edge_events ev \
                            WHERE ev.edge_id = e.id AND ev.at <= $1 \
                            ORDER BY ev.at DESC, ev.id DESC LIMIT 1) st ON true \
         WHERE {eh} GROUP BY 1 ORDER BY 1"
    ))
    .bind(at)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("counting edges by state as they were"))
}

/// The stored reports, newest day first.
#[tracing::instrument(skip(pool))]
pub async fn stored_reports(pool: &PgPool) -> Result<Vec<StoredReport>> {
    let rows: Vec<(NaiveDate, String, String, DateTime<Utc>)> =
        sqlx::query_as("SELECT day, tz, format, generated_at FROM reports ORDER BY day DESC, tz, format")
            .fetch_all(pool)
            .await
            .map_err(Error::sql("listing stored reports"))?;
    Ok(rows.into_iter().map(|(day, tz, format, generated_at)| StoredReport { day, tz, format, generated_at }).collect())
}

/// The body of the report of `day` in `format` (in `tz`, else the first zone by name).
#[tracing::instrument(skip(pool))]
pub async fn stored_report(pool: &PgPool, day: NaiveDate, tz: Option<&str>, format: &str) -> Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT body FROM reports WHERE day = $1 AND format = $3 AND ($2::text IS NULL OR tz = $2) ORDER BY tz LIMIT 1",
    )
    .bind(day)
    .bind(tz)
    .bind(format)
    .fetch_optional(pool)
    .await
    .map_err(Error::sql("reading a stored report"))
}

/// Where the node called `name` is: (host, data center, role, retired), if it exists.
#[tracing::instrument(skip(pool))]
pub async fn node(pool: &PgPool, name: &str) -> Result<Option<NodePlace>> {
    let row: Option<(String, String, Option<String>, bool)> =
        sqlx::query_as("SELECT host, dc, role, retired_at IS NOT NULL FROM nodes WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await
            .map_err(Error::sql("reading a node"))?;
    Ok(row.map(|(host, dc, role, retired)| NodePlace { host, dc, role, retired }))
}

/// Where a node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlace {
    pub host: String,
    pub dc: String,
    pub role: Option<String>,
    pub retired: bool,
}
