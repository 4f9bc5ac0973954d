//! Probing's SQL: which edges are due and who probes them (leases with
//! `FOR UPDATE SKIP LOCKED`), the health rows the state machine reads and writes, probe
//! history (partitioned by day, with retention) and state-change events, all written in
//! batches.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::vocab::{EventState, HealthState, ProbeKind, Verdict};
use crate::{PgConnection, PgPool};

/// An edge to probe: where to, and the TCP port of its service when the CMDB has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueEdge {
    pub edge_id: i64,
    pub src: String,
    pub dst_ip: IpAddr,
    pub port: Option<u16>,
}

/// One `edge_health` row, as the health state machine needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthRow {
    pub edge_id: i64,
    pub state: HealthState,
    pub since: DateTime<Utc>,
    pub last_result_at: Option<DateTime<Utc>>,
    pub loss_pct: Option<f32>,
    pub rtt_avg_ms: Option<f32>,
    pub fail_streak: i32,
    pub ok_streak: i32,
    pub degraded_streak: i32,
    pub recent_states: String,
    pub flapping: bool,
    pub flap_pct: f32,
}

/// One probe cycle of one edge, for `probe_results`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    pub edge_id: i64,
    pub at: DateTime<Utc>,
    pub kind: ProbeKind,
    pub prober: String,
    pub sent: i32,
    pub received: i32,
    pub rtt_min_ms: Option<f32>,
    pub rtt_avg_ms: Option<f32>,
    pub rtt_max_ms: Option<f32>,
    pub rtt_sd_ms: Option<f32>,
    pub verdict: Verdict,
}

/// A state change, for `edge_events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub edge_id: i64,
    pub at: DateTime<Utc>,
    pub from: EventState,
    pub to: EventState,
    pub reason: String,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Creates the day partitions of `probe_results` from yesterday to the day after
/// tomorrow (idempotent).
pub async fn ensure_partitions(pool: &PgPool) -> Result<()> {
    sqlx::query("SELECT edgewatch_ensure_probe_partitions(current_date - 1, 4)")
        .execute(pool)
        .await
        .map_err(Error::sql("creating probe history partitions"))?;
    Ok(())
}

/// Drops the day partitions of `probe_results` older than `keep_days`; returns their names.
pub async fn drop_old_partitions(pool: &PgPool, keep_days: u32) -> Result<Vec<String>> {
    let old: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         JOIN pg_class p ON p.oid = i.inhparent \
         WHERE p.relname = 'probe_results' AND c.relname ~ '^probe_results_[0-9]{8}$' \
           AND to_date(substr(c.relname, 15), 'YYYYMMDD') < current_date - $1::int ORDER BY 1",
    )
    .bind(keep_days as i32)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("listing old probe partitions"))?;
    for name in &old {
        sqlx::query(&format!("DROP TABLE IF EXISTS \"{name}\""))
            .execute(pool)
            .await
            .map_err(Error::sql("dropping an old probe partition"))?;
    }
    Ok(old)
}

/// Gives every live edge a health row; new edges are spread over the next `interval`
/// so a burst of discoveries does not make a burst of probes. Returns how many.
pub async fn sync_health(pool: &PgPool, interval: Duration) -> Result<u64> {
    let done = sqlx::query(
        "INSERT INTO edge_health (edge_id, next_probe_at) \
         SELECT e.id, now() + random() * make_interval(secs => $1) FROM edges e \
         WHERE e.retired_at IS NULL AND NOT EXISTS (SELECT 1 FROM edge_health h WHERE h.edge_id = e.id) \
         ON CONFLICT DO NOTHING",
    )
    .bind(secs(interval))
    .execute(pool)
    .await
    .map_err(Error::sql("adding health rows for new edges"))?;
    Ok(done.rows_affected())
}

const DUE_COLUMNS: &str = "h.edge_id, s.name, host(e.dst_ip), \
    (SELECT min(sv.port) FROM services sv WHERE sv.name = ANY(e.services) AND sv.port IS NOT NULL)";

type DueRow = (i64, String, String, Option<i32>);

fn due_edges(rows: Vec<DueRow>) -> Vec<DueEdge> {
    rows.into_iter()
        .filter_map(|(edge_id, src, ip, port)| {
            Some(DueEdge { edge_id, src, dst_ip: ip.parse().ok()?, port: port.and_then(|p| u16::try_from(p).ok()) })
        })
        .collect()
}

/// Claims up to `limit` due edges for `owner` until `lease` has passed: rows another
/// worker holds are skipped, not waited for, so several workers share the load without
/// probing an edge twice. A crashed worker's lease simply expires.
#[tracing::instrument(skip(pool))]
pub async fn claim_due(pool: &PgPool, owner: &str, limit: i64, lease: Duration) -> Result<Vec<DueEdge>> {
    let rows: Vec<DueRow> = sqlx::query_as(&format!(
        "WITH due AS ( \
             SELECT h.edge_id FROM edge_health h JOIN edges e ON e.id = h.edge_id \
             WHERE e.retired_at IS NULL AND h.next_probe_at <= now() \
               AND (h.lease_until IS NULL OR h.lease_until < now()) \
             ORDER BY h.next_probe_at LIMIT $2 FOR UPDATE OF h SKIP LOCKED), \
         claimed AS ( \
             UPDATE edge_health h SET lease_owner = $1, lease_until = now() + make_interval(secs => $3) \
             FROM due WHERE h.edge_id = due.edge_id RETURNING h.edge_id) \
         SELECT {DUE_COLUMNS} FROM claimed h JOIN edges e ON e.id = h.edge_id JOIN nodes s ON s.id = e.src_id"
    ))
    .bind(owner)
    .bind(limit)
    .bind(secs(lease))
    .fetch_all(pool)
    .await
    .map_err(Error::sql("claiming due edges"))?;
    Ok(due_edges(rows))
}

/// The live edges of one consumer node: an agent's targets.
pub async fn targets_of(pool: &PgPool, node: &str) -> Result<Vec<DueEdge>> {
    let rows: Vec<DueRow> = sqlx::query_as(&format!(
        "SELECT {DUE_COLUMNS} FROM edges e JOIN nodes s ON s.id = e.src_id \
         JOIN edge_health h ON h.edge_id = e.id \
         WHERE s.name = $1 AND e.retired_at IS NULL ORDER BY e.dst_ip"
    ))
    .bind(node)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("listing an agent's targets"))?;
    Ok(due_edges(rows))
}

type HealthTuple = (
    i64,
    HealthState,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<f32>,
    Option<f32>,
    i32,
    i32,
    i32,
    String,
    bool,
    f32,
);

const HEALTH_COLUMNS: &str = "edge_id, state, since, last_result_at, loss_pct, rtt_avg_ms, fail_streak, \
    ok_streak, degraded_streak, recent_states, flapping, flap_pct";

fn health_rows(rows: Vec<HealthTuple>) -> Vec<HealthRow> {
    rows.into_iter()
        .map(|r| HealthRow {
            edge_id: r.0,
            state: r.1,
            since: r.2,
            last_result_at: r.3,
            loss_pct: r.4,
            rtt_avg_ms: r.5,
            fail_streak: r.6,
            ok_streak: r.7,
            degraded_streak: r.8,
            recent_states: r.9,
            flapping: r.10,
            flap_pct: r.11,
        })
        .collect()
}

/// The health rows of `edge_ids`, locked until the transaction ends.
pub async fn lock_health(conn: &mut PgConnection, edge_ids: &[i64]) -> Result<Vec<HealthRow>> {
    lock_health_rows(conn, edge_ids, "").await
}

/// The health rows of `edge_ids` that no other transaction holds, locked until the
/// transaction ends; rows held elsewhere (a worker recording them now) are skipped, not
/// waited for.
pub async fn lock_health_free(conn: &mut PgConnection, edge_ids: &[i64]) -> Result<Vec<HealthRow>> {
    lock_health_rows(conn, edge_ids, " SKIP LOCKED").await
}

async fn lock_health_rows(conn: &mut PgConnection, edge_ids: &[i64], skip: &str) -> Result<Vec<HealthRow>> {
    let rows: Vec<HealthTuple> = sqlx::query_as(&format!(
        "SELECT {HEALTH_COLUMNS} FROM edge_health WHERE edge_id = ANY($1) ORDER BY edge_id FOR UPDATE{skip}"
    ))
    .bind(edge_ids)
    .fetch_all(conn)
    .await
    .map_err(Error::sql("locking health rows"))?;
    Ok(health_rows(rows))
}

/// Health rows with no result since `before` that are not `stale` yet, and not claimed
/// by a worker now (a lease not yet run out: its result is on the way).
pub async fn silent_since(pool: &PgPool, before: DateTime<Utc>) -> Result<Vec<HealthRow>> {
    let rows: Vec<HealthTuple> = sqlx::query_as(&format!(
        "SELECT {HEALTH_COLUMNS} FROM edge_health h WHERE h.state <> 'stale' \
         AND COALESCE(h.last_result_at, h.since) < $1 \
         AND (h.lease_until IS NULL OR h.lease_until < now()) \
         AND EXISTS (SELECT 1 FROM edges e WHERE e.id = h.edge_id AND e.retired_at IS NULL) \
         ORDER BY edge_id LIMIT 10000"
    ))
    .bind(before)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("finding silent edges"))?;
    Ok(health_rows(rows))
}

/// Writes a batch of cycles: history rows, the new health rows (each with its next
/// probe time, lease released) and events; one statement per table.
pub async fn write_cycle(
    conn: &mut PgConnection,
    results: &[ResultRow],
    health: &[(HealthRow, DateTime<Utc>)],
    events: &[EventRow],
) -> Result<()> {
    if !results.is_empty() {
        sqlx::query(
            "INSERT INTO probe_results (edge_id, at, kind, prober, sent, received, rtt_min_ms, rtt_avg_ms, \
                                        rtt_max_ms, rtt_sd_ms, verdict) \
             SELECT * FROM UNNEST($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::int[], $6::int[], \
                                  $7::real[], $8::real[], $9::real[], $10::real[], $11::text[])",
        )
        .bind(results.iter().map(|r| r.edge_id).collect::<Vec<_>>())
        .bind(results.iter().map(|r| r.at).collect::<Vec<_>>())
        .bind(results.iter().map(|r| r.kind).collect::<Vec<_>>())
        .bind(results.iter().map(|r| r.prober.as_str()).collect::<Vec<_>>())
        .bind(results.iter().map(|r| r.sent).collect::<Vec<_>>())
        .bind(results.iter().map(|r| r.received).collect::<Vec<_>>())
        .bind(results.iter().map(|r| r.rtt_min_ms).collect::<Vec<_>>())
        .bind(results.iter().map(|r| r.rtt_avg_ms).collect::<Vec<_>>())
        .bind(results.iter().map(|r| r.rtt_max_ms).collect::<Vec<_>>())
        .bind(results.iter().map(|r| r.rtt_sd_ms).collect::<Vec<_>>())
        .bind(results.iter().map(|r| r.verdict).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await
        .map_err(Error::sql("writing probe results"))?;
        count_results(&mut *conn, results).await?;
        crate::rollup::add_results(&mut *conn, results).await?;
    }
    if !health.is_empty() {
        let h = |f: fn(&HealthRow) -> i32| health.iter().map(|(r, _)| f(r)).collect::<Vec<i32>>();
        sqlx::query(
            "UPDATE edge_health h SET state = t.state, since = t.since, last_result_at = t.last_result_at, \
                 loss_pct = t.loss_pct, rtt_avg_ms = t.rtt_avg_ms, fail_streak = t.fail_streak, \
                 ok_streak = t.ok_streak, degraded_streak = t.degraded_streak, recent_states = t.recent_states, \
                 flapping = t.flapping, flap_pct = t.flap_pct, next_probe_at = t.next_probe_at, \
                 lease_owner = NULL, lease_until = NULL \
             FROM UNNEST($1::bigint[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::real[], $6::real[], \
                         $7::int[], $8::int[], $9::int[], $10::text[], $11::bool[], $12::real[], \
                         $13::timestamptz[]) \
                  AS t(edge_id, state, since, last_result_at, loss_pct, rtt_avg_ms, fail_streak, ok_streak, \
                       degraded_streak, recent_states, flapping, flap_pct, next_probe_at) \
             WHERE h.edge_id = t.edge_id",
        )
        .bind(health.iter().map(|(r, _)| r.edge_id).collect::<Vec<_>>())
        .bind(health.iter().map(|(r, _)| r.state.as_str()).collect::<Vec<_>>())
        .bind(health.iter().map(|(r, _)| r.since).collect::<Vec<_>>())
        .bind(health.iter().map(|(r, _)| r.last_result_at).collect::<Vec<_>>())
        .bind(health.iter().map(|(r, _)| r.loss_pct).collect::<Vec<_>>())
        .bind(health.iter().map(|(r, _)| r.rtt_avg_ms).collect::<Vec<_>>())
        .bind(h(|r| r.fail_streak))
        .bind(h(|r| r.ok_streak))
        .bind(h(|r| r.degraded_streak))
        .bind(health.iter().map(|(r, _)| r.recent_states.as_str()).collect::<Vec<_>>())
        .bind(health.iter().map(|(r, _)| r.flapping).collect::<Vec<_>>())
        .bind(health.iter().map(|(r, _)| r.flap_pct).collect::<Vec<_>>())
        .bind(health.iter().map(|(_, next)| *next).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await
        .map_err(Error::sql("writing edge health"))?;
    }
    if !events.is_empty() {
        sqlx::query(
            "INSERT INTO edge_events (edge_id, at, from_state, to_state, reason) \
             SELECT * FROM UNNEST($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[])",
        )
        .bind(events.iter().map(|e| e.edge_id).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.at).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.from.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.to.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.reason.as_str()).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await
        .map_err(Error::sql("writing edge events"))?;
        // The path at the moment of the failure: the pairs of edges that just turned down
        // or degraded are traced at once (at most once per pair per interval).
        let failing = failing_edges(events);
        if !failing.is_empty() {
            crate::paths::trace_now(conn, &failing).await?;
        }
    }
    Ok(())
}

/// The edges of `events` that turned down or degraded, sorted, each once.
fn failing_edges(events: &[EventRow]) -> Vec<i64> {
    let mut ids: Vec<i64> =
        events.iter().filter(|e| matches!(e.to, EventState::Down | EventState::Degraded)).map(|e| e.edge_id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Rows per (kind, verdict) in `probe_counters`: a writer adds to the slot of its
/// database backend (`pg_backend_pid() % COUNTER_SLOTS`), readers add the slots up.
pub const COUNTER_SLOTS: i32 = 64;

/// Adds the results to `probe_counters` (for /metrics) with the newest result's time (for
/// the check's data age), in key order so that workers
/// writing at the same time never wait on each other in a cycle.
async fn count_results(conn: &mut PgConnection, results: &[ResultRow]) -> Result<()> {
    let mut counts = std::collections::BTreeMap::<(ProbeKind, Verdict), i64>::new();
    for r in results {
        *counts.entry((r.kind, r.verdict)).or_default() += 1;
    }
    let (keys, counts): (Vec<_>, Vec<i64>) = counts.into_iter().unzip();
    let (kinds, verdicts): (Vec<ProbeKind>, Vec<Verdict>) = keys.into_iter().unzip();
    // The backend's own slot: concurrent writers (other connections) update other rows,
    // so none waits for another's commit.
    sqlx::query(&format!(
        "INSERT INTO probe_counters AS c (kind, verdict, count, last_at, slot) \
         SELECT *, $4, pg_backend_pid() % {COUNTER_SLOTS} FROM UNNEST($1::text[], $2::text[], $3::bigint[]) \
         ON CONFLICT (kind, verdict, slot) DO UPDATE \
         SET count = c.count + EXCLUDED.count, last_at = greatest(c.last_at, EXCLUDED.last_at)"
    ))
    .bind(kinds)
    .bind(verdicts)
    .bind(counts)
    .bind(results.iter().map(|r| r.at).max())
    .execute(conn)
    .await
    .map_err(Error::sql("counting probe results"))?;
    Ok(())
}

/// How many probe results each edge has since `since` (for tests and the check).
pub async fn result_counts(pool: &PgPool, since: DateTime<Utc>) -> Result<Vec<(i64, i64)>> {
    sqlx::query_as("SELECT edge_id, count(*) FROM probe_results WHERE at >= $1 GROUP BY edge_id ORDER BY edge_id")
        .bind(since)
        .fetch_all(pool)
        .await
        .map_err(Error::sql("counting probe results"))
}
