//! The path history's reads: finding a pair by the names an operator knows (a node, a
//! host, an external target, an address), its runs in a window (from the blocks and
//! the runs not compacted yet), the route events, and the counts /metrics shows.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::algo::Run;
use super::block::{self, BlockRun};
use super::packed::{self, StoredPath};
use crate::{Error, Result};
use crate::{PgConnection, PgPool};

/// A traced pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PairInfo {
    pub id: i64,
    /// The source host (or, for an external target, the prober's vantage).
    pub src: String,
    /// The destination host (or the external target's name).
    pub dst: String,
    pub dst_ip: String,
    pub protocol: String,
    pub port: Option<u16>,
    pub src_dc: String,
    pub dst_dc: String,
    pub external: bool,
    /// Traced every this many seconds.
    pub every_s: i32,
    pub runs: i64,
    #[serde(serialize_with = "crate::time::serialize_utc_opt")]
    pub last_run_at: Option<DateTime<Utc>>,
    pub retired: bool,
}

const PAIR_COLUMNS: &str = "p.id, p.src, p.dst, host(p.dst_ip) AS dst_ip, p.protocol, p.port, p.src_dc, p.dst_dc, \
                            p.external, p.every_s, p.runs, p.last_run_at, p.retired_at IS NOT NULL AS retired";

fn pair_of(r: &sqlx::postgres::PgRow) -> PairInfo {
    PairInfo {
        id: r.get("id"),
        src: r.get("src"),
        dst: r.get("dst"),
        dst_ip: r.get("dst_ip"),
        protocol: r.get("protocol"),
        port: r.get::<Option<i32>, _>("port").and_then(|p| u16::try_from(p).ok()),
        src_dc: r.get("src_dc"),
        dst_dc: r.get("dst_dc"),
        external: r.get("external"),
        every_s: r.get("every_s"),
        runs: r.get("runs"),
        last_run_at: r.get("last_run_at"),
        retired: r.get("retired"),
    }
}

/// The pairs from `src` to `dst`, live ones first: `src` a host, a node (its host) or a
/// prober's vantage; `dst` a host, a node (its host), an external target's name, or an
/// address (the pair tracing to it, or the host owning it).
pub async fn find_pairs(pool: &PgPool, src: &str, dst: &str) -> Result<Vec<PairInfo>> {
    let rows = sqlx::query(&format!(
        "WITH s AS (SELECT $1::text AS name UNION SELECT host FROM nodes WHERE name = $1), \
              d AS (SELECT $2::text AS name UNION SELECT host FROM nodes WHERE name = $2 \
                    UNION SELECT n.host FROM addresses a JOIN nodes n ON n.id = a.node_id \
                          WHERE host(a.ip) = $2 AND a.retired_at IS NULL) \
         SELECT {PAIR_COLUMNS} FROM trace_pairs p \
         WHERE p.src IN (SELECT name FROM s) AND (p.dst IN (SELECT name FROM d) OR host(p.dst_ip) = $2) \
         ORDER BY p.retired_at IS NOT NULL, p.last_run_at DESC NULLS LAST, p.id LIMIT 20"
    ))
    .bind(src)
    .bind(dst)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("finding a traced pair"))?;
    Ok(rows.iter().map(pair_of).collect())
}

/// Live pairs, those across data centers first, then by source and destination.
pub async fn list_pairs(pool: &PgPool, limit: i64) -> Result<Vec<PairInfo>> {
    let rows = sqlx::query(&format!(
        "SELECT {PAIR_COLUMNS} FROM trace_pairs p WHERE p.retired_at IS NULL \
         ORDER BY p.src_dc = p.dst_dc, p.src, p.dst LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("listing traced pairs"))?;
    Ok(rows.iter().map(pair_of).collect())
}

/// One pair by id.
pub async fn pair(pool: &PgPool, id: i64) -> Result<Option<PairInfo>> {
    let row = sqlx::query(&format!("SELECT {PAIR_COLUMNS} FROM trace_pairs p WHERE p.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(Error::sql("reading a traced pair"))?;
    Ok(row.as_ref().map(pair_of))
}

/// The pair's runs with `from <= at < to`, oldest first: those compacted into blocks, and
/// those still in `trace_runs` (the running block's, and late ones).
pub async fn runs_between(pool: &PgPool, pair_id: i64, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Run>> {
    let mut stored: Vec<BlockRun> = Vec::new();
    // One snapshot for both tables: compaction moves runs from `trace_runs` into a block in
    // one transaction, and two reads on either side of it would miss them.
    let mut tx = pool.begin().await.map_err(Error::sql("reading trace runs"))?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(Error::sql("reading trace runs"))?;
    let blocks = sqlx::query(
        "SELECT starts, data FROM trace_blocks WHERE pair_id = $1 AND starts > $2 - make_interval(hours => $4) \
         AND starts < $3 ORDER BY starts",
    )
    .bind(pair_id as i32)
    .bind(from)
    .bind(to)
    .bind(block::BLOCK_HOURS as i32)
    .fetch_all(&mut *tx)
    .await
    .map_err(Error::sql("reading trace blocks"))?;
    for r in &blocks {
        let (_, runs) = block_runs(r, pair_id)?;
        stored.extend(runs.into_iter().filter(|r| r.at >= from && r.at < to));
    }
    let recent = sqlx::query(
        "SELECT at, path_id, figures FROM trace_runs WHERE pair_id = $1 AND at >= $2 AND at < $3 ORDER BY at",
    )
    .bind(pair_id as i32)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *tx)
    .await
    .map_err(Error::sql("reading trace runs"))?;
    stored.extend(recent.iter().map(|r| BlockRun {
        at: r.get("at"),
        path_id: i64::from(r.get::<i32, _>("path_id")),
        figures: r.get("figures"),
    }));
    let stored = block::merge(stored);
    let ids: Vec<i64> = stored.iter().map(|r| r.path_id).collect::<HashSet<_>>().into_iter().collect();
    let paths = paths_by_id(&mut tx, &ids).await?;
    tx.commit().await.map_err(Error::sql("reading trace paths"))?;
    stored
        .iter()
        .map(|r| {
            let path = paths.get(&r.path_id).ok_or(Error::StoredBlock {
                pair_id,
                start: block::block_of(r.at),
                source: block::BlockError::MissingPath(r.path_id),
            })?;
            packed::unpack(r.at, path, &r.figures).map_err(|source| Error::StoredRun { pair_id, at: r.at, source })
        })
        .collect()
}

/// The start and runs of a `trace_blocks` row (its `starts` and `data`) of pair `pair_id`.
pub(crate) fn block_runs(r: &sqlx::postgres::PgRow, pair_id: i64) -> Result<(DateTime<Utc>, Vec<BlockRun>)> {
    let start: DateTime<Utc> = r.get("starts");
    let runs = block::decode(start, r.get::<&[u8], _>("data")).map_err(|source| Error::StoredBlock {
        pair_id,
        start,
        source,
    })?;
    Ok((start, runs))
}

/// The stored paths of `ids`.
pub(crate) async fn paths_by_id(conn: &mut PgConnection, ids: &[i64]) -> Result<HashMap<i64, StoredPath>> {
    let rows = sqlx::query("SELECT id, hops, reached FROM trace_paths WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(conn)
        .await
        .map_err(Error::sql("reading trace paths"))?;
    Ok(rows.iter().map(|r| (r.get("id"), StoredPath { hops: r.get("hops"), reached: r.get("reached") })).collect())
}

/// The times of the pair's runs in up to two blocks from the one holding `at`, forward
/// (`later`) or back.
async fn block_times(pool: &PgPool, pair_id: i64, at: DateTime<Utc>, later: bool) -> Result<Vec<DateTime<Utc>>> {
    let (sql, bound) = if later {
        (
            "SELECT starts, data FROM trace_blocks WHERE pair_id = $1 AND starts >= $2 ORDER BY starts LIMIT 2",
            block::block_of(at),
        )
    } else {
        ("SELECT starts, data FROM trace_blocks WHERE pair_id = $1 AND starts <= $2 ORDER BY starts DESC LIMIT 2", at)
    };
    let rows = sqlx::query(sql)
        .bind(pair_id as i32)
        .bind(bound)
        .fetch_all(pool)
        .await
        .map_err(Error::sql("reading trace blocks"))?;
    let mut times = Vec::new();
    for r in &rows {
        let (_, runs) = block_runs(r, pair_id)?;
        times.extend(runs.iter().map(|r| r.at));
    }
    Ok(times)
}

/// The pair's first run after `after`, if there is one yet.
pub async fn run_after(pool: &PgPool, pair_id: i64, after: DateTime<Utc>) -> Result<Option<Run>> {
    let recent: Option<DateTime<Utc>> =
        sqlx::query_scalar("SELECT min(at) FROM trace_runs WHERE pair_id = $1 AND at > $2")
            .bind(pair_id as i32)
            .bind(after)
            .fetch_one(pool)
            .await
            .map_err(Error::sql("waiting for a trace run"))?;
    let compacted = block_times(pool, pair_id, after, true).await?.into_iter().filter(|t| *t > after).min();
    let Some(at) = recent.into_iter().chain(compacted).min() else { return Ok(None) };
    Ok(runs_between(pool, pair_id, at, at + chrono::Duration::microseconds(1)).await?.pop())
}

/// The time of the pair's last run at or before `at`.
pub async fn last_run_before(pool: &PgPool, pair_id: i64, at: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
    let recent: Option<DateTime<Utc>> =
        sqlx::query_scalar("SELECT max(at) FROM trace_runs WHERE pair_id = $1 AND at <= $2")
            .bind(pair_id as i32)
            .bind(at)
            .fetch_one(pool)
            .await
            .map_err(Error::sql("finding a pair's last trace run"))?;
    let compacted = block_times(pool, pair_id, at, false).await?.into_iter().filter(|t| *t <= at).max();
    Ok(recent.into_iter().chain(compacted).max())
}

/// A route event as the questions show it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RouteEventView {
    pub id: i64,
    #[serde(serialize_with = "crate::time::serialize_utc")]
    pub at: DateTime<Utc>,
    pub pair_id: i64,
    pub src: String,
    pub dst: String,
    pub src_dc: String,
    pub dst_dc: String,
    /// changed, flap-start, flap-end, loss-started, loss-moved, loss-cleared.
    pub kind: String,
    /// The first diverging TTL (changed) or the loss onset (loss-started, loss-moved).
    pub ttl: Option<u8>,
    /// The onset the loss left (loss-moved, loss-cleared).
    pub old_ttl: Option<u8>,
    /// At `ttl`: the addresses on the old path (changed).
    pub old_addrs: Vec<String>,
    /// At `ttl`: the addresses on the new path (changed), or where loss starts.
    pub new_addrs: Vec<String>,
    /// The paths, per TTL the addresses joined by `,` (`""`: silent).
    pub old_hops: Option<Vec<String>>,
    pub new_hops: Option<Vec<String>>,
    pub old_reached: Option<bool>,
    pub new_reached: Option<bool>,
    pub rtt_before_ms: Option<f32>,
    pub rtt_after_ms: Option<f32>,
    pub loss_before_pct: Option<f32>,
    /// Loss to the destination on the new path (changed), the loss from the onset
    /// (loss-*), or the flap percentage (flap-*).
    pub loss_after_pct: Option<f32>,
}

/// Which events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// None: every pair; one data center: pairs from or to it; two: pairs between them
    /// (the same one twice: within it). More than two match nothing.
    pub dcs: Vec<String>,
    pub pair_id: Option<i64>,
    pub kinds: Vec<String>,
    pub limit: i64,
}

/// Route events, newest first.
pub async fn events(pool: &PgPool, f: &EventFilter) -> Result<Vec<RouteEventView>> {
    let rows = sqlx::query(
        "SELECT e.id, e.at, e.pair_id, p.src, p.dst, p.src_dc, p.dst_dc, e.kind, e.ttl, e.old_ttl, e.old_addrs, \
                e.new_addrs, e.old_hops, e.new_hops, e.old_reached, e.new_reached, e.rtt_before_ms, e.rtt_after_ms, \
                e.loss_before_pct, e.loss_after_pct \
         FROM route_events e JOIN trace_pairs p ON p.id = e.pair_id \
         WHERE ($1::timestamptz IS NULL OR e.at >= $1) AND ($2::timestamptz IS NULL OR e.at < $2) \
           AND ($3::bigint IS NULL OR e.pair_id = $3) \
           AND (cardinality($4::text[]) = 0 OR e.kind = ANY($4)) \
           AND CASE cardinality($5::text[]) WHEN 0 THEN true \
                 WHEN 1 THEN ($5::text[])[1] IN (p.src_dc, p.dst_dc) \
                 WHEN 2 THEN (p.src_dc, p.dst_dc) IN (($5[1], $5[2]), ($5[2], $5[1])) ELSE false END \
         ORDER BY e.at DESC, e.id DESC LIMIT $6",
    )
    .bind(f.since)
    .bind(f.until)
    .bind(f.pair_id)
    .bind(&f.kinds)
    .bind(&f.dcs)
    .bind(if f.limit > 0 { f.limit } else { i64::MAX })
    .fetch_all(pool)
    .await
    .map_err(Error::sql("reading route events"))?;
    let split = |s: String| -> Vec<String> {
        if s.is_empty() {
            Vec::new()
        } else {
            s.split(',').map(str::to_owned).collect()
        }
    };
    let ttl = |v: Option<i16>| v.and_then(|t| u8::try_from(t).ok());
    Ok(rows
        .into_iter()
        .map(|r| RouteEventView {
            id: r.get("id"),
            at: r.get("at"),
            pair_id: r.get("pair_id"),
            src: r.get("src"),
            dst: r.get("dst"),
            src_dc: r.get("src_dc"),
            dst_dc: r.get("dst_dc"),
            kind: r.get("kind"),
            ttl: ttl(r.get("ttl")),
            old_ttl: ttl(r.get("old_ttl")),
            old_addrs: split(r.get("old_addrs")),
            new_addrs: split(r.get("new_addrs")),
            old_hops: r.get("old_hops"),
            new_hops: r.get("new_hops"),
            old_reached: r.get("old_reached"),
            new_reached: r.get("new_reached"),
            rtt_before_ms: r.get("rtt_before_ms"),
            rtt_after_ms: r.get("rtt_after_ms"),
            loss_before_pct: r.get("loss_before_pct"),
            loss_after_pct: r.get("loss_after_pct"),
        })
        .collect())
}

/// For /metrics: live pairs, runs recorded, and route events by kind, since the store
/// was made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceCounts {
    pub pairs: i64,
    pub runs: i64,
    pub events: Vec<(String, i64)>,
}

pub async fn counts(pool: &PgPool) -> Result<TraceCounts> {
    let (pairs, runs): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE retired_at IS NULL), coalesce(sum(runs), 0)::bigint FROM trace_pairs",
    )
    .fetch_one(pool)
    .await
    .map_err(Error::sql("counting traces"))?;
    let events: Vec<(String, i64)> =
        sqlx::query_as("SELECT kind, count(*) FROM route_events GROUP BY kind ORDER BY kind")
            .fetch_all(pool)
            .await
            .map_err(Error::sql("counting route events"))?;
    Ok(TraceCounts { pairs, runs, events })
}

/// The addresses of a stored hop text, for callers holding [`RouteEventView`] hops.
pub fn hop_addrs(text: &str) -> Vec<IpAddr> {
    packed::parse_hop_text(text).unwrap_or_default()
}
