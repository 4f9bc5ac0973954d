//! Hourly rollups for the nightly report, which reads them instead of the raw rows:
//!
//! - `probe_hourly` (per edge per UTC hour: cycles, failed and degraded cycles, packets
//!   sent and received, RTT min/max/sum/count, seconds down), filled by [`add_results`]
//!   in the same transaction as the results, and its `down_seconds` by [`fill_down`] from
//!   the state-change events;
//! - `query_hourly` (DNS queries per edge per hour), filled by the DNS ingest.
//!
//! Rollups outlive the raw history: [`prune`] drops them after `keep_days` (400).

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use crate::error::{Error, Result};
use crate::probe::ResultRow;
use crate::vocab::Verdict;
use crate::{PgConnection, PgPool};

/// The start of `t`'s UTC hour.
pub fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

#[derive(Debug, Default)]
struct HourAgg {
    cycles: i32,
    failed: i32,
    degraded: i32,
    sent: i64,
    received: i64,
    rtt_min: Option<f32>,
    rtt_max: Option<f32>,
    rtt_sum: f64,
    rtt_n: i32,
}

/// Adds probe results to their edges' hours (in key order, so concurrent writers never
/// wait on each other in a cycle).
pub async fn add_results(conn: &mut PgConnection, results: &[ResultRow]) -> Result<()> {
    let mut hours: BTreeMap<(DateTime<Utc>, i64), HourAgg> = BTreeMap::new();
    for r in results {
        let a = hours.entry((hour_of(r.at), r.edge_id)).or_default();
        a.cycles += 1;
        a.failed += i32::from(r.verdict == Verdict::Failed);
        a.degraded += i32::from(r.verdict == Verdict::Degraded);
        a.sent += i64::from(r.sent);
        a.received += i64::from(r.received);
        a.rtt_min = either_or_both(a.rtt_min, r.rtt_min_ms, f32::min);
        a.rtt_max = either_or_both(a.rtt_max, r.rtt_max_ms, f32::max);
        if let Some(avg) = r.rtt_avg_ms {
            a.rtt_sum += f64::from(avg);
            a.rtt_n += 1;
        }
    }
    let (keys, aggs): (Vec<_>, Vec<_>) = hours.into_iter().unzip();
    let col = |f: fn(&HourAgg) -> i32| aggs.iter().map(f).collect::<Vec<i32>>();
    sqlx::query(
        "INSERT INTO probe_hourly AS p (hour, edge_id, cycles, failed, degraded, sent, received, \
                                        rtt_min_ms, rtt_max_ms, rtt_sum_ms, rtt_n) \
         SELECT * FROM UNNEST($1::timestamptz[], $2::bigint[], $3::int[], $4::int[], $5::int[], $6::bigint[], \
                              $7::bigint[], $8::real[], $9::real[], $10::float8[], $11::int[]) \
         ON CONFLICT (hour, edge_id) DO UPDATE SET \
             cycles = p.cycles + EXCLUDED.cycles, failed = p.failed + EXCLUDED.failed, \
             degraded = p.degraded + EXCLUDED.degraded, sent = p.sent + EXCLUDED.sent, \
             received = p.received + EXCLUDED.received, \
             rtt_min_ms = least(p.rtt_min_ms, EXCLUDED.rtt_min_ms), \
             rtt_max_ms = greatest(p.rtt_max_ms, EXCLUDED.rtt_max_ms), \
             rtt_sum_ms = p.rtt_sum_ms + EXCLUDED.rtt_sum_ms, rtt_n = p.rtt_n + EXCLUDED.rtt_n",
    )
    .bind(keys.iter().map(|k| k.0).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.1).collect::<Vec<_>>())
    .bind(col(|a| a.cycles))
    .bind(col(|a| a.failed))
    .bind(col(|a| a.degraded))
    .bind(aggs.iter().map(|a| a.sent).collect::<Vec<_>>())
    .bind(aggs.iter().map(|a| a.received).collect::<Vec<_>>())
    .bind(aggs.iter().map(|a| a.rtt_min).collect::<Vec<_>>())
    .bind(aggs.iter().map(|a| a.rtt_max).collect::<Vec<_>>())
    .bind(aggs.iter().map(|a| a.rtt_sum).collect::<Vec<_>>())
    .bind(col(|a| a.rtt_n))
    .execute(conn)
    .await
    .map_err(Error::sql("adding results to the hourly rollup"))?;
    Ok(())
}

/// `pick` of the two when both are there, else whichever is.
fn either_or_both(a: Option<f32>, b: Option<f32>, pick: fn(f32, f32) -> f32) -> Option<f32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}

/// Sets `down_seconds` of every edge for the hours in [from, to) from the state-change
/// events: the time each edge spent `down` within each hour (an edge down at `from`
/// counts from `from`; one still down counts until `to` or now, whichever is earlier).
/// Idempotent: run it again and the figures are the same.
#[tracing::instrument(skip(pool))]
pub async fn fill_down(pool: &PgPool, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<u64> {
    let mut tx = pool.begin().await.map_err(Error::sql("rolling up down time"))?;
    sqlx::query("UPDATE probe_hourly SET down_seconds = 0 WHERE hour >= $1 AND hour < $2 AND down_seconds <> 0")
        .bind(hour_of(from))
        .bind(to)
        .execute(&mut *tx)
        .await
        .map_err(Error::sql("rolling up down time"))?;
    let done = sqlx::query(
        "WITH bounds AS (SELECT $1::timestamptz AS lo, least($2::timestamptz, now()) AS hi), \
         start AS ( \
             SELECT e.id AS edge_id, l.to_state \
             FROM edges e CROSS JOIN bounds \
             JOIN LATERAL (SELECT x.to_state FROM edge_events x WHERE x.edge_id = e.id AND x.at < lo \
                           ORDER BY x.at DESC LIMIT 1) l ON true), \
         timeline AS ( \
             SELECT s.edge_id, b.lo AS at, s.to_state FROM start s, bounds b \
             WHERE s.to_state = 'down' \
             UNION ALL \
             SELECT x.edge_id, x.at, x.to_state FROM edge_events x, bounds b WHERE x.at >= b.lo AND x.at < b.hi), \
         spans AS ( \
             SELECT edge_id, at AS s, \
                    COALESCE(lead(at) OVER (PARTITION BY edge_id ORDER BY at), (SELECT hi FROM bounds)) AS e, to_state \
             FROM timeline), \
         per_hour AS ( \
             SELECT d.edge_id, h AS hour, \
                    extract(epoch FROM least(d.e, h + interval '1 hour') - greatest(d.s, h))::int AS secs \
             FROM spans d, generate_series(date_trunc('hour', d.s, 'UTC'), d.e - interval '1 microsecond', \
                                          interval '1 hour') AS h \
             WHERE d.to_state = 'down' AND d.e > d.s) \
         INSERT INTO probe_hourly AS p (hour, edge_id, down_seconds) \
         SELECT hour, edge_id, sum(secs) FROM per_hour WHERE secs > 0 GROUP BY 1, 2 \
         ON CONFLICT (hour, edge_id) DO UPDATE SET down_seconds = EXCLUDED.down_seconds",
    )
    .bind(from)
    .bind(to)
    .execute(&mut *tx)
    .await
    .map_err(Error::sql("rolling up down time"))?;
    tx.commit().await.map_err(Error::sql("rolling up down time"))?;
    Ok(done.rows_affected())
}

/// Drops rollups older than `keep_days`.
pub async fn prune(pool: &PgPool, keep_days: u32) -> Result<u64> {
    let cutoff = Utc::now() - TimeDelta::days(i64::from(keep_days));
    let mut n = 0;
    for table in ["probe_hourly", "query_hourly"] {
        n += sqlx::query(&format!("DELETE FROM {table} WHERE hour < $1"))
            .bind(cutoff)
            .execute(pool)
            .await
            .map_err(Error::sql("pruning old rollups"))?
            .rows_affected();
    }
    Ok(n)
}
