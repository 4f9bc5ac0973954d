//! The path history's writes: which host pairs are traced and when (kept from the graph,
//! plus the configured external targets), handing due pairs to tracers, and recording
//! runs — each path once, the runs packed, and the route and loss trackers' state and
//! events, all in one transaction per batch. Compaction into hour blocks: `compact`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::algo::{LossConfig, LossEvent, LossTracker, RouteConfig, RouteEvent, RouteTracker, Run};
use super::compact::in_blocks;
use super::packed::{self, StoredPath};
use crate::{Error, Result};
use crate::{PgConnection, PgPool};

/// How often pairs are traced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairSchedule {
    /// Pairs across data centers and external targets: every interval (default 2 min).
    pub interval: Duration,
    /// Pairs within a data center: every `intra_dc_every` intervals (default 10).
    pub intra_dc_every: u32,
    /// How host pairs are traced (`[trace] protocol`: icmp, udp or tcp), kept with the
    /// pairs so that the questions say it.
    pub protocol: &'static str,
}

impl Default for PairSchedule {
    fn default() -> Self {
        PairSchedule { interval: Duration::from_secs(120), intra_dc_every: 10, protocol: "icmp" }
    }
}

impl PairSchedule {
    fn cross_s(&self) -> i32 {
        self.interval.as_secs().clamp(1, i32::MAX as u64) as i32
    }

    fn intra_s(&self) -> i32 {
        self.cross_s().saturating_mul(self.intra_dc_every.clamp(1, 1000) as i32)
    }
}

/// An external target of `[[trace.targets]]`, traced from a prober's vantage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalTarget {
    pub name: String,
    pub ip: IpAddr,
    /// `icmp`, `udp` or `tcp`.
    pub protocol: String,
    pub port: Option<u16>,
}

/// A pair handed to a tracer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DuePair {
    pub id: i64,
    pub src: String,
    pub dst: String,
    pub dst_ip: IpAddr,
    pub protocol: String,
    pub port: Option<u16>,
    /// An external target (`[[trace.targets]]`), not a host pair of the graph.
    pub external: bool,
}

/// Keeps a pair per (source host → destination host) with a live edge between two hosts,
/// with the least CMDB port of its edges' services: new ones are spread over their first
/// interval, a moved destination address follows,
/// pairs whose edges are gone are retired (and revived with them). Returns (added or
/// revived, retired).
pub async fn sync_pairs(pool: &PgPool, schedule: &PairSchedule) -> Result<(u64, u64)> {
    let mut tx = pool.begin().await.map_err(Error::sql("syncing trace pairs"))?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('edgewatch:trace_pairs sync'))")
        .execute(&mut *tx)
        .await
        .map_err(Error::sql("locking the trace pairs"))?;
    // Whole tables joined with whole tables: hash joins are right at any size. Planned from
    // statistics not yet gathered (the first minute after an import), the retiring
    // anti-join below became a nested loop comparing every pair with every edge: 35 s at
    // 13,000 pairs and 36,000 edges, holding a core of PostgreSQL and this lock.
    sqlx::query("SET LOCAL enable_nestloop = off")
        .execute(&mut *tx)
        .await
        .map_err(Error::sql("syncing trace pairs"))?;
    // Per pair: one destination address (the least), and the least CMDB port of the
    // services of its edges (what `[trace] protocol = "tcp"` sends its SYNs to).
    let added = sqlx::query(
        "WITH edge AS ( \
             SELECT s.host AS src, d.host AS dst, e.dst_ip, s.dc AS src_dc, d.dc AS dst_dc, \
                    (SELECT min(sv.port) FROM services sv WHERE sv.name = ANY(e.services)) AS port \
             FROM edges e JOIN nodes s ON s.id = e.src_id \
             JOIN addresses a ON a.ip = e.dst_ip AND a.retired_at IS NULL \
             JOIN nodes d ON d.id = a.node_id \
             WHERE e.retired_at IS NULL AND s.retired_at IS NULL AND d.retired_at IS NULL AND s.host <> d.host), \
         live AS ( \
             SELECT DISTINCT ON (src, dst) src, dst, dst_ip, src_dc, dst_dc, \
                    min(port) OVER (PARTITION BY src, dst) AS port \
             FROM edge ORDER BY src, dst, dst_ip) \
         INSERT INTO trace_pairs (src, dst, dst_ip, port, protocol, src_dc, dst_dc, every_s, next_trace_at) \
         SELECT src, dst, dst_ip, port, $3, src_dc, dst_dc, CASE WHEN src_dc <> dst_dc THEN $1 ELSE $2 END, \
                now() + random() * make_interval(secs => CASE WHEN src_dc <> dst_dc THEN $1 ELSE $2 END) \
         FROM live \
         ON CONFLICT (src, dst) DO UPDATE SET dst_ip = excluded.dst_ip, port = excluded.port, \
             protocol = excluded.protocol, src_dc = excluded.src_dc, dst_dc = excluded.dst_dc, \
             every_s = excluded.every_s, retired_at = NULL \
         WHERE trace_pairs.external = false AND (trace_pairs.retired_at IS NOT NULL \
             OR (trace_pairs.dst_ip, trace_pairs.port, trace_pairs.protocol, trace_pairs.src_dc, trace_pairs.dst_dc, \
                 trace_pairs.every_s) \
                IS DISTINCT FROM (excluded.dst_ip, excluded.port, excluded.protocol, excluded.src_dc, excluded.dst_dc, \
                 excluded.every_s))",
    )
    .bind(schedule.cross_s())
    .bind(schedule.intra_s())
    .bind(schedule.protocol)
    .execute(&mut *tx)
    .await
    .map_err(Error::sql("adding trace pairs"))?
    .rows_affected();
    let retired = sqlx::query(
        "UPDATE trace_pairs p SET retired_at = now(), lease_owner = NULL, lease_until = NULL \
         WHERE p.external = false AND p.retired_at IS NULL AND NOT EXISTS ( \
             SELECT 1 FROM edges e JOIN nodes s ON s.id = e.src_id \
             JOIN addresses a ON a.ip = e.dst_ip AND a.retired_at IS NULL \
             JOIN nodes d ON d.id = a.node_id \
             WHERE e.retired_at IS NULL AND s.retired_at IS NULL AND d.retired_at IS NULL \
               AND s.host = p.src AND d.host = p.dst)",
    )
    .execute(&mut *tx)
    .await
    .map_err(Error::sql("retiring trace pairs"))?
    .rows_affected();
    tx.commit().await.map_err(Error::sql("syncing trace pairs"))?;
    Ok((added, retired))
}

/// Keeps the pairs of the external targets traced from `vantage` (a prober's name for
/// where it runs) equal to `targets`: new ones added, changed ones updated, the others
/// retired. Returns how many are live.
pub async fn sync_targets(
    pool: &PgPool,
    vantage: &str,
    targets: &[ExternalTarget],
    schedule: &PairSchedule,
) -> Result<u64> {
    let mut tx = pool.begin().await.map_err(Error::sql("syncing trace targets"))?;
    sqlx::query(
        "INSERT INTO trace_pairs (src, dst, dst_ip, protocol, port, external, every_s, next_trace_at) \
         SELECT $1, t.name, t.ip, t.protocol, t.port, true, $5, now() \
         FROM UNNEST($2::text[], $3::text[]::inet[], $4::text[], $6::int[]) AS t(name, ip, protocol, port) \
         ON CONFLICT (src, dst) DO UPDATE SET dst_ip = excluded.dst_ip, protocol = excluded.protocol, \
             port = excluded.port, every_s = excluded.every_s, external = true, retired_at = NULL",
    )
    .bind(vantage)
    .bind(targets.iter().map(|t| t.name.as_str()).collect::<Vec<_>>())
    .bind(targets.iter().map(|t| t.ip.to_string()).collect::<Vec<_>>())
    .bind(targets.iter().map(|t| t.protocol.as_str()).collect::<Vec<_>>())
    .bind(schedule.cross_s())
    .bind(targets.iter().map(|t| t.port.map(i32::from)).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await
    .map_err(Error::sql("adding trace targets"))?;
    sqlx::query(
        "UPDATE trace_pairs SET retired_at = now() \
         WHERE external AND src = $1 AND retired_at IS NULL AND NOT (dst = ANY($2))",
    )
    .bind(vantage)
    .bind(targets.iter().map(|t| t.name.as_str()).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await
    .map_err(Error::sql("retiring trace targets"))?;
    tx.commit().await.map_err(Error::sql("syncing trace targets"))?;
    Ok(targets.len() as u64)
}

/// Who asks for due pairs.
#[derive(Debug, Clone, Copy)]
pub enum Tracer<'a> {
    /// An agent on this host: the graph's pairs from it.
    Agent { host: &'a str },
    /// A prober worker at `vantage`: its external targets, and the graph's pairs from hosts
    /// where no agent has reported for `agent_silence`, or that nobody has traced for that
    /// long (an agent that probes but cannot trace: no raw sockets).
    Worker { vantage: &'a str, agent_silence: Duration },
}

/// Leases up to `limit` due pairs to `owner` (`SKIP LOCKED`, like edges: several tracers
/// never take one pair at once) until `lease` from now.
pub async fn claim_due(
    pool: &PgPool,
    who: Tracer<'_>,
    owner: &str,
    limit: i64,
    lease: Duration,
) -> Result<Vec<DuePair>> {
    let (filter, name, silence) = match who {
        Tracer::Agent { host } => ("NOT p.external AND p.src = $4", host, 0.0),
        Tracer::Worker { vantage, agent_silence } => (
            "(p.external AND p.src = $4) OR (NOT p.external AND (NOT EXISTS ( \
                 SELECT 1 FROM nodes n JOIN agent_reports r ON r.node_id = n.id \
                 WHERE n.host = p.src AND r.at > now() - make_interval(secs => $5)) \
               OR coalesce(p.last_run_at, p.first_seen) < now() - make_interval(secs => $5)))",
            vantage,
            agent_silence.as_secs_f64(),
        ),
    };
    let rows = sqlx::query(&format!(
        "UPDATE trace_pairs t SET lease_owner = $1, lease_until = now() + make_interval(secs => $2) \
         WHERE t.id IN ( \
             SELECT p.id FROM trace_pairs p \
             WHERE p.retired_at IS NULL AND p.next_trace_at <= now() \
               AND (p.lease_until IS NULL OR p.lease_until < now()) AND ({filter}) \
             ORDER BY p.next_trace_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING t.id, t.src, t.dst, host(t.dst_ip) AS dst_ip, t.protocol, t.port, t.external"
    ))
    .bind(owner)
    .bind(lease.as_secs_f64())
    .bind(limit)
    .bind(name)
    .bind(silence)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("claiming due trace pairs"))?;
    let mut pairs: Vec<DuePair> = rows
        .into_iter()
        .filter_map(|r| {
            Some(DuePair {
                id: r.get("id"),
                src: r.get("src"),
                dst: r.get("dst"),
                dst_ip: r.get::<String, _>("dst_ip").parse().ok()?,
                protocol: r.get("protocol"),
                port: r.get::<Option<i32>, _>("port").and_then(|p| u16::try_from(p).ok()),
                external: r.get("external"),
            })
        })
        .collect();
    pairs.sort_by_key(|p| p.id);
    Ok(pairs)
}

/// The host of a live node (an agent's), or `None`.
pub async fn host_of_node(pool: &PgPool, node_id: i64) -> Result<Option<String>> {
    sqlx::query_scalar("SELECT host FROM nodes WHERE id = $1 AND retired_at IS NULL")
        .bind(node_id)
        .fetch_optional(pool)
        .await
        .map_err(Error::sql("reading an agent's host"))
}

/// Those of `pair_ids` that are not graph pairs from `host` (unknown ids and external
/// targets included), sorted: what an agent on `host` may not report.
pub async fn foreign_pairs(pool: &PgPool, host: &str, pair_ids: &[i64]) -> Result<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT DISTINCT id FROM UNNEST($2::bigint[]) AS t(id) \
         WHERE NOT EXISTS (SELECT 1 FROM trace_pairs p WHERE p.id = t.id AND p.src = $1 AND NOT p.external) \
         ORDER BY id",
    )
    .bind(host)
    .bind(pair_ids)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("checking the pairs of an agent's runs"))
}

/// Asks for a trace at once of the host pairs of `edge_ids` (edges that just turned down
/// or degraded), at most once per pair per its interval, so that the path at the moment
/// of the failure is kept. Returns how many pairs were moved up. Runs inside the caller's
/// transaction (the one recording the edges' events); a pair another transaction holds
/// just then (its runs being recorded) is skipped rather than waited for, so recording
/// probe results never waits on traces nor deadlocks with another batch.
pub async fn trace_now(conn: &mut PgConnection, edge_ids: &[i64]) -> Result<u64> {
    if edge_ids.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query(
        "WITH due AS ( \
             SELECT p.id FROM trace_pairs p \
             JOIN nodes s ON s.host = p.src JOIN edges e ON e.src_id = s.id \
             JOIN addresses a ON a.ip = e.dst_ip JOIN nodes d ON d.id = a.node_id AND d.host = p.dst \
             WHERE e.id = ANY($1) AND NOT p.external AND p.retired_at IS NULL AND p.next_trace_at > now() \
               AND (p.urgent_at IS NULL OR p.urgent_at < now() - make_interval(secs => p.every_s)) \
             ORDER BY p.id FOR UPDATE OF p SKIP LOCKED) \
         UPDATE trace_pairs p SET next_trace_at = now(), urgent_at = now() \
         WHERE p.id IN (SELECT id FROM due)",
    )
    .bind(edge_ids)
    .execute(conn)
    .await
    .map_err(Error::sql("asking for traces of failing edges"))?;
    Ok(done.rows_affected())
}

/// Asks for a trace of pair `pair_id` at once (whoever leases it next traces it);
/// returns the store's time of asking, to wait for a run after it.
pub async fn request_trace(pool: &PgPool, pair_id: i64) -> Result<DateTime<Utc>> {
    sqlx::query_scalar(
        "UPDATE trace_pairs SET next_trace_at = now(), lease_owner = NULL, lease_until = NULL \
         WHERE id = $1 RETURNING now()",
    )
    .bind(pair_id)
    .fetch_one(pool)
    .await
    .map_err(Error::sql("asking for a trace now"))
}

/// The route and loss rules' settings.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TrackConfig {
    pub route: RouteConfig,
    pub loss: LossConfig,
}

/// One run of one pair, to record.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRecord {
    pub pair_id: i64,
    pub run: Run,
}

/// What [`record_runs`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordTotals {
    /// Runs stored (a run already stored — the same pair and time — is not again).
    pub runs: u64,
    /// New distinct paths.
    pub new_paths: u64,
    pub events: u64,
    /// Runs of pairs not stored (retired and deleted, or a sender's mistake): not kept.
    pub unknown: u64,
}

/// Records runs: paths, runs, trackers and events in one transaction (the hourly rollups
/// are written by compaction, once the hour is over); the pairs' leases are released and their next trace set one interval (±10 %) on. Runs older than
/// a pair's last recorded run (late resends) are stored but do not move its trackers.
pub async fn record_runs(pool: &PgPool, records: &[TraceRecord], cfg: &TrackConfig) -> Result<RecordTotals> {
    if records.is_empty() {
        return Ok(RecordTotals::default());
    }
    let mut tx = pool.begin().await.map_err(Error::sql("recording trace runs"))?;
    // Lock the pairs first, in id order (the order every writer uses): two batches of one
    // pair then wait for each other instead of racing on its trackers.
    let pair_ids: Vec<i64> = records.iter().map(|r| r.pair_id).collect::<HashSet<_>>().into_iter().collect();
    let states = lock_pairs(&mut tx, &pair_ids).await?;
    let (records, unknown): (Vec<&TraceRecord>, Vec<&TraceRecord>) =
        records.iter().partition(|r| states.contains_key(&r.pair_id));
    let pair_ids: Vec<i64> = pair_ids.into_iter().filter(|id| states.contains_key(id)).collect();
    let (path_ids, new_paths) = path_ids(&mut tx, &records).await?;
    let stored = insert_runs(&mut tx, &records, &path_ids).await?;
    let fresh: Vec<&TraceRecord> = records.iter().zip(&stored).filter(|(_, s)| **s).map(|(r, _)| *r).collect();
    let (events, updates) = track(&fresh, states, cfg);
    insert_events(&mut tx, &events).await?;
    update_pairs(&mut tx, &pair_ids, &updates, &fresh).await?;
    tx.commit().await.map_err(Error::sql("recording trace runs"))?;
    Ok(RecordTotals { runs: fresh.len() as u64, new_paths, events: events.len() as u64, unknown: unknown.len() as u64 })
}

/// A pair's trackers as stored, and when it was last traced.
struct PairState {
    route: RouteTracker,
    loss: LossTracker,
    last_run_at: Option<DateTime<Utc>>,
}

async fn lock_pairs(conn: &mut PgConnection, ids: &[i64]) -> Result<HashMap<i64, PairState>> {
    let rows = sqlx::query(
        "SELECT id, route_state, loss_state, last_run_at FROM trace_pairs WHERE id = ANY($1) ORDER BY id FOR UPDATE",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::sql("locking trace pairs"))?;
    let mut out = HashMap::new();
    for r in rows {
        let route: Option<serde_json::Value> = r.get("route_state");
        let loss: Option<serde_json::Value> = r.get("loss_state");
        let decode = |what| move |source| Error::Encode { what, source };
        out.insert(
            r.get::<i64, _>("id"),
            PairState {
                route: route
                    .map(serde_json::from_value)
                    .transpose()
                    .map_err(decode("a stored route tracker"))?
                    .unwrap_or_default(),
                loss: loss
                    .map(serde_json::from_value)
                    .transpose()
                    .map_err(decode("a stored loss tracker"))?
                    .unwrap_or_default(),
                last_run_at: r.get("last_run_at"),
            },
        );
    }
    Ok(out)
}

/// The path id of each record's run, adding the paths not stored yet.
async fn path_ids(conn: &mut PgConnection, records: &[&TraceRecord]) -> Result<(Vec<i64>, u64)> {
    let mut distinct: Vec<StoredPath> = Vec::new();
    let mut index: HashMap<StoredPath, usize> = HashMap::new();
    let of_record: Vec<usize> = records
        .iter()
        .map(|r| {
            let path = StoredPath::of(&r.run);
            *index.entry(path.clone()).or_insert_with(|| {
                distinct.push(path);
                distinct.len() - 1
            })
        })
        .collect();
    let doc: Vec<serde_json::Value> =
        distinct.iter().map(|p| serde_json::json!({ "hops": p.hops, "reached": p.reached })).collect();
    let rows = sqlx::query(
        "WITH input AS ( \
             SELECT ord - 1 AS ord, hops, reached, decode(md5(reached::text || hops::text), 'hex') AS digest \
             FROM ROWS FROM (jsonb_to_recordset($1) AS (hops jsonb, reached boolean)) WITH ORDINALITY \
                  AS t(hops, reached, ord)), \
         found AS (SELECT i.ord, p.id FROM input i JOIN trace_paths p ON p.digest = i.digest), \
         added AS ( \
             INSERT INTO trace_paths (digest, hops, reached) \
             SELECT digest, ARRAY(SELECT jsonb_array_elements_text(hops)), reached FROM input i \
             WHERE NOT EXISTS (SELECT 1 FROM found f WHERE f.ord = i.ord) \
             ON CONFLICT (digest) DO UPDATE SET digest = excluded.digest \
             RETURNING id, digest, xmax = 0 AS inserted) \
         SELECT ord, id, false AS inserted FROM found \
         UNION ALL SELECT i.ord, a.id, a.inserted FROM input i JOIN added a ON a.digest = i.digest",
    )
    .bind(serde_json::Value::Array(doc))
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::sql("storing trace paths"))?;
    let mut ids = vec![0i64; distinct.len()];
    let mut new_paths = 0;
    for r in rows {
        ids[r.get::<i64, _>("ord") as usize] = r.get("id");
        new_paths += u64::from(r.get::<bool, _>("inserted"));
    }
    Ok((of_record.into_iter().map(|i| ids[i]).collect(), new_paths))
}

/// Inserts the runs; per record whether it was stored (false: that pair and time were).
async fn insert_runs(conn: &mut PgConnection, records: &[&TraceRecord], path_ids: &[i64]) -> Result<Vec<bool>> {
    // Every day the batch touches (a resent run can be days old), and the days ahead.
    let days = records.iter().map(|r| r.run.at.date_naive());
    sqlx::query(
        "SELECT edgewatch_ensure_trace_partitions(least(current_date, $1::date) - 1, \
                (greatest(current_date, $2::date) - least(current_date, $1::date))::int + 4)",
    )
    .bind(days.clone().min())
    .bind(days.max())
    .execute(&mut *conn)
    .await
    .map_err(Error::sql("creating trace history partitions"))?;
    // A resend of a run its hour's block already holds is not stored again.
    let keys: Vec<(i64, DateTime<Utc>)> = records.iter().map(|r| (r.pair_id, r.run.at)).collect();
    let compacted = in_blocks(&mut *conn, &keys).await?;
    let new: Vec<usize> = (0..records.len()).filter(|&i| !compacted.contains(&keys[i])).collect();
    let rows = sqlx::query(
        "INSERT INTO trace_runs (at, pair_id, path_id, figures) \
         SELECT * FROM UNNEST($1::timestamptz[], $2::int[], $3::int[], $4::bytea[]) \
         ON CONFLICT DO NOTHING RETURNING pair_id, at",
    )
    .bind(new.iter().map(|&i| records[i].run.at).collect::<Vec<_>>())
    .bind(new.iter().map(|&i| records[i].pair_id as i32).collect::<Vec<_>>())
    .bind(new.iter().map(|&i| path_ids[i] as i32).collect::<Vec<_>>())
    .bind(new.iter().map(|&i| packed::pack(&records[i].run)).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::sql("writing trace runs"))?;
    let stored: HashSet<(i64, DateTime<Utc>)> =
        rows.iter().map(|r| (i64::from(r.get::<i32, _>("pair_id")), r.get("at"))).collect();
    let mut seen = HashSet::new();
    // A batch holding one run twice stores it once: the first copy counts.
    Ok(records.iter().map(|r| stored.contains(&(r.pair_id, r.run.at)) && seen.insert((r.pair_id, r.run.at))).collect())
}

/// A route_events row.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct EventRow {
    pub pair_id: i64,
    pub at: DateTime<Utc>,
    pub kind: &'static str,
    pub ttl: Option<i16>,
    pub old_ttl: Option<i16>,
    pub old_addrs: String,
    pub new_addrs: String,
    pub old_hops: Option<Vec<String>>,
    pub new_hops: Option<Vec<String>>,
    pub old_reached: Option<bool>,
    pub new_reached: Option<bool>,
    pub rtt_before_ms: Option<f32>,
    pub rtt_after_ms: Option<f32>,
    pub loss_before_pct: Option<f32>,
    pub loss_after_pct: Option<f32>,
}

/// The trackers' new state per pair, as JSON.
struct PairUpdate {
    route: serde_json::Value,
    loss: serde_json::Value,
}

/// Runs each pair's new runs, oldest first, through its trackers.
fn track(
    records: &[&TraceRecord],
    mut states: HashMap<i64, PairState>,
    cfg: &TrackConfig,
) -> (Vec<EventRow>, HashMap<i64, PairUpdate>) {
    let mut by_pair: BTreeMap<i64, Vec<&Run>> = BTreeMap::new();
    for r in records {
        by_pair.entry(r.pair_id).or_default().push(&r.run);
    }
    let mut events = Vec::new();
    let mut updates = HashMap::new();
    for (pair_id, mut runs) in by_pair {
        let Some(state) = states.get_mut(&pair_id) else { continue };
        runs.sort_by_key(|r| r.at);
        for run in runs.into_iter().filter(|r| state.last_run_at.is_none_or(|last| r.at > last)) {
            events.extend(state.route.observe(run, &cfg.route).into_iter().map(|e| route_row(pair_id, e)));
            events.extend(state.loss.observe(run, &cfg.loss).map(|e| loss_row(pair_id, run, e)));
        }
        let json = |v: serde_json::Result<serde_json::Value>| v.unwrap_or(serde_json::Value::Null);
        updates.insert(
            pair_id,
            PairUpdate {
                route: json(serde_json::to_value(&state.route)),
                loss: json(serde_json::to_value(&state.loss)),
            },
        );
    }
    (events, updates)
}

fn hops_text(shape: &super::algo::PathShape) -> Vec<String> {
    shape.hops().iter().map(|h| packed::hop_text(h)).collect()
}

fn route_row(pair_id: i64, event: RouteEvent) -> EventRow {
    match event {
        RouteEvent::Changed(c) => EventRow {
            pair_id,
            at: c.at,
            kind: "changed",
            ttl: Some(i16::from(c.divergence.ttl)),
            old_addrs: packed::hop_text(&c.divergence.old),
            new_addrs: packed::hop_text(&c.divergence.new),
            old_hops: Some(hops_text(&c.old)),
            new_hops: Some(hops_text(&c.new)),
            old_reached: Some(c.old.reached()),
            new_reached: Some(c.new.reached()),
            rtt_before_ms: c.rtt_before_ms,
            rtt_after_ms: c.rtt_after_ms,
            loss_before_pct: Some(c.loss_before_pct),
            loss_after_pct: Some(c.loss_after_pct),
            ..EventRow::default()
        },
        RouteEvent::FlapStart { at, flap_pct, path } => EventRow {
            pair_id,
            at,
            kind: "flap-start",
            new_hops: Some(hops_text(&path)),
            new_reached: Some(path.reached()),
            loss_after_pct: Some(flap_pct as f32),
            ..EventRow::default()
        },
        RouteEvent::FlapEnd { at, flap_pct, path, .. } => EventRow {
            pair_id,
            at,
            kind: "flap-end",
            new_hops: Some(hops_text(&path)),
            new_reached: Some(path.reached()),
            loss_after_pct: Some(flap_pct as f32),
            ..EventRow::default()
        },
    }
}

fn loss_row(pair_id: i64, run: &Run, event: LossEvent) -> EventRow {
    let addrs_at =
        |ttl: u8| run.hops.iter().find(|h| h.ttl == ttl).map(|h| packed::hop_text(&h.addrs)).unwrap_or_default();
    match event {
        LossEvent::Started { at, ttl, loss_pct } => EventRow {
            pair_id,
            at,
            kind: "loss-started",
            ttl: Some(i16::from(ttl)),
            new_addrs: addrs_at(ttl),
            loss_after_pct: Some(loss_pct),
            ..EventRow::default()
        },
        LossEvent::Moved { at, from_ttl, ttl, loss_pct } => EventRow {
            pair_id,
            at,
            kind: "loss-moved",
            ttl: Some(i16::from(ttl)),
            old_ttl: Some(i16::from(from_ttl)),
            new_addrs: addrs_at(ttl),
            loss_after_pct: Some(loss_pct),
            ..EventRow::default()
        },
        LossEvent::Cleared { at, ttl } => {
            EventRow { pair_id, at, kind: "loss-cleared", old_ttl: Some(i16::from(ttl)), ..EventRow::default() }
        }
    }
}

async fn insert_events(conn: &mut PgConnection, events: &[EventRow]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let json = |f: fn(&EventRow) -> &Option<Vec<String>>| {
        events.iter().map(|e| f(e).as_ref().map(|h| serde_json::json!(h))).collect::<Vec<_>>()
    };
    sqlx::query(
        "INSERT INTO route_events (pair_id, at, kind, ttl, old_ttl, old_addrs, new_addrs, old_hops, new_hops, \
                                   old_reached, new_reached, rtt_before_ms, rtt_after_ms, loss_before_pct, \
                                   loss_after_pct) \
         SELECT pair_id, at, kind, ttl, old_ttl, old_addrs, new_addrs, \
                CASE WHEN oh IS NULL THEN NULL ELSE ARRAY(SELECT jsonb_array_elements_text(oh)) END, \
                CASE WHEN nh IS NULL THEN NULL ELSE ARRAY(SELECT jsonb_array_elements_text(nh)) END, \
                old_reached, new_reached, rb, ra, lb, la \
         FROM UNNEST($1::bigint[], $2::timestamptz[], $3::text[], $4::smallint[], $5::smallint[], $6::text[], \
                     $7::text[], $8::jsonb[], $9::jsonb[], $10::bool[], $11::bool[], $12::real[], $13::real[], \
                     $14::real[], $15::real[]) \
              AS t(pair_id, at, kind, ttl, old_ttl, old_addrs, new_addrs, oh, nh, old_reached, new_reached, \
                   rb, ra, lb, la)",
    )
    .bind(events.iter().map(|e| e.pair_id).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.at).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.kind).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.ttl).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.old_ttl).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.old_addrs.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.new_addrs.as_str()).collect::<Vec<_>>())
    .bind(json(|e| &e.old_hops))
    .bind(json(|e| &e.new_hops))
    .bind(events.iter().map(|e| e.old_reached).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.new_reached).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.rtt_before_ms).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.rtt_after_ms).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.loss_before_pct).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.loss_after_pct).collect::<Vec<_>>())
    .execute(conn)
    .await
    .map_err(Error::sql("writing route events"))?;
    Ok(())
}

async fn update_pairs(
    conn: &mut PgConnection,
    pair_ids: &[i64],
    updates: &HashMap<i64, PairUpdate>,
    fresh: &[&TraceRecord],
) -> Result<()> {
    let mut counts: HashMap<i64, (i64, Option<DateTime<Utc>>)> = HashMap::new();
    for r in fresh {
        let c = counts.entry(r.pair_id).or_default();
        c.0 += 1;
        c.1 = c.1.max(Some(r.run.at));
    }
    let null = serde_json::Value::Null;
    sqlx::query(
        "UPDATE trace_pairs p SET lease_owner = NULL, lease_until = NULL, runs = p.runs + t.n, \
             last_run_at = greatest(p.last_run_at, t.last), \
             route_state = coalesce(t.route, p.route_state), loss_state = coalesce(t.loss, p.loss_state), \
             next_trace_at = now() + make_interval(secs => p.every_s * (0.9 + random() * 0.2)) \
         FROM UNNEST($1::bigint[], $2::bigint[], $3::timestamptz[], $4::jsonb[], $5::jsonb[]) \
              AS t(id, n, last, route, loss) \
         WHERE p.id = t.id",
    )
    .bind(pair_ids)
    .bind(pair_ids.iter().map(|id| counts.get(id).map_or(0, |c| c.0)).collect::<Vec<_>>())
    .bind(pair_ids.iter().map(|id| counts.get(id).and_then(|c| c.1)).collect::<Vec<_>>())
    .bind(pair_ids.iter().map(|id| updates.get(id).map(|u| &u.route).filter(|v| **v != null)).collect::<Vec<_>>())
    .bind(pair_ids.iter().map(|id| updates.get(id).map(|u| &u.loss).filter(|v| **v != null)).collect::<Vec<_>>())
    .execute(conn)
    .await
    .map_err(Error::sql("updating trace pairs"))?;
    Ok(())
}

/// Gives back leases on pairs that could not be traced (the tracer is stopping, or the
/// destination is refused), with their next trace one interval on.
pub async fn release(pool: &PgPool, owner: &str, pair_ids: &[i64]) -> Result<()> {
    sqlx::query(
        "UPDATE trace_pairs SET lease_owner = NULL, lease_until = NULL, \
             next_trace_at = now() + make_interval(secs => every_s) \
         WHERE id = ANY($1) AND lease_owner = $2",
    )
    .bind(pair_ids)
    .bind(owner)
    .execute(pool)
    .await
    .map_err(Error::sql("releasing trace pairs"))?;
    Ok(())
}

/// Creates the day partitions of `trace_runs` from yesterday to the day after tomorrow.
pub async fn ensure_partitions(pool: &PgPool) -> Result<()> {
    sqlx::query("SELECT edgewatch_ensure_trace_partitions(current_date - 1, 4)")
        .execute(pool)
        .await
        .map_err(Error::sql("creating trace history partitions"))?;
    Ok(())
}

/// Drops the day partitions of `trace_blocks` and `trace_runs` older than `keep_days`,
/// and those of `trace_runs` before yesterday that compaction has emptied; returns their
/// names.
pub async fn drop_old_partitions(pool: &PgPool, keep_days: u32) -> Result<Vec<String>> {
    let parts: Vec<(String, bool)> = sqlx::query_as(
        "SELECT c.relname, to_date(right(c.relname, 8), 'YYYYMMDD') < current_date - $1::int \
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         JOIN pg_class p ON p.oid = i.inhparent \
         WHERE p.relname IN ('trace_runs', 'trace_blocks') AND c.relname ~ '^trace_(runs|blocks)_[0-9]{8}$' \
           AND to_date(right(c.relname, 8), 'YYYYMMDD') < current_date - 1 ORDER BY 1",
    )
    .bind(keep_days as i32)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("listing old trace partitions"))?;
    let mut dropped = Vec::new();
    for (name, past_keep) in parts {
        if !past_keep && !name.starts_with("trace_runs_") {
            continue;
        }
        // Locked before it is looked at: a late run being stored there is waited for, and
        // then keeps its partition.
        let mut tx = pool.begin().await.map_err(Error::sql("dropping an old trace partition"))?;
        sqlx::query(&format!("LOCK TABLE \"{name}\" IN ACCESS EXCLUSIVE MODE"))
            .execute(&mut *tx)
            .await
            .map_err(Error::sql("dropping an old trace partition"))?;
        let empty: bool = sqlx::query_scalar(&format!("SELECT NOT EXISTS (SELECT 1 FROM \"{name}\")"))
            .fetch_one(&mut *tx)
            .await
            .map_err(Error::sql("checking an old trace partition"))?;
        if past_keep || empty {
            sqlx::query(&format!("DROP TABLE \"{name}\""))
                .execute(&mut *tx)
                .await
                .map_err(Error::sql("dropping an old trace partition"))?;
            dropped.push(name);
        }
        tx.commit().await.map_err(Error::sql("dropping an old trace partition"))?;
    }
    Ok(dropped)
}

/// Deletes trace rollups older than `keep_days`; returns how many rows.
pub async fn prune_hourly(pool: &PgPool, keep_days: u32) -> Result<u64> {
    let mut pruned = 0;
    for table in ["trace_hourly", "trace_hourly_v1"] {
        let done = sqlx::query(&format!("DELETE FROM {table} WHERE hour < now() - make_interval(days => $1)"))
            .bind(keep_days as i32)
            .execute(pool)
            .await
            .map_err(Error::sql("pruning trace rollups"))?;
        pruned += done.rows_affected();
    }
    Ok(pruned)
}
