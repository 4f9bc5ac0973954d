//! Compaction: once a block's six hours are over, each pair's runs of them move from
//! `trace_runs` (a row per run) into one row of `trace_blocks`, and each hour's per-TTL
//! rollup is written once to `trace_hourly` — what keeps a day of traces at the
//! operators' scale within its budget (docs/BENCHMARKS.md, "Path history store"). A run
//! that comes late (an agent's resend) is merged into its block at the next compaction; a
//! run already in the block is not kept twice. One compactor at a time (an advisory lock;
//! the others skip).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::algo::Run;
use super::block::{self, BlockRun};
use super::packed::{self, StoredPath};
use super::read::{block_runs, paths_by_id};
use crate::{Error, Result};
use crate::{PgConnection, PgPool};

/// Pairs per transaction: all of a pair's runs before the horizon go at once, so each
/// block is written once per compaction (taking runs in time order instead spread a
/// block over every batch, and rewrote it, TOAST and all, in each).
const PAIRS_PER_BATCH: i64 = 100;

/// What [`compact_runs`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactTotals {
    /// Runs moved out of `trace_runs`.
    pub runs: u64,
    /// Blocks written (new, or merged with runs that came late).
    pub blocks: u64,
    /// Runs already in their block (resent), dropped.
    pub duplicates: u64,
}

/// Moves the runs made before `before` into their blocks, [`PAIRS_PER_BATCH`] pairs per
/// transaction in pair order, until every pair is done or `budget` is spent (the next
/// call starts again from the first pair: those done have nothing left, cheaply). `None`: another process is compacting. Callers
/// pass a block's start some minutes past ([`block::block_of`]: runs of the running
/// block still come).
pub async fn compact_runs(pool: &PgPool, before: DateTime<Utc>, budget: Duration) -> Result<Option<CompactTotals>> {
    let started = Instant::now();
    let mut totals = CompactTotals::default();
    let mut after = 0i64;
    loop {
        let mut tx = pool.begin().await.map_err(Error::sql("compacting trace runs"))?;
        let locked: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext('edgewatch:trace compaction'))")
                .fetch_one(&mut *tx)
                .await
                .map_err(Error::sql("compacting trace runs"))?;
        if !locked {
            return Ok((totals.runs > 0).then_some(totals));
        }
        let pairs: Vec<i64> = sqlx::query_scalar("SELECT id FROM trace_pairs WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(PAIRS_PER_BATCH)
            .fetch_all(&mut *tx)
            .await
            .map_err(Error::sql("compacting trace runs"))?;
        let Some(&last) = pairs.last() else {
            tx.commit().await.map_err(Error::sql("compacting trace runs"))?;
            return Ok(Some(totals));
        };
        after = last;
        let done = compact_batch(&mut tx, before, &pairs).await?;
        tx.commit().await.map_err(Error::sql("compacting trace runs"))?;
        totals.runs += done.runs;
        totals.blocks += done.blocks;
        totals.duplicates += done.duplicates;
        if started.elapsed() >= budget {
            return Ok(Some(totals));
        }
    }
}

/// A run taken out of `trace_runs`.
struct Taken {
    pair_id: i64,
    at: DateTime<Utc>,
    path_id: i64,
    figures: Vec<u8>,
}

async fn compact_batch(conn: &mut PgConnection, before: DateTime<Utc>, pairs: &[i64]) -> Result<CompactTotals> {
    let rows = sqlx::query(
        "DELETE FROM trace_runs WHERE pair_id = ANY($2::int[]) AND at < $1 \
         RETURNING pair_id, at, path_id, figures",
    )
    .bind(before)
    .bind(pairs.iter().map(|&id| id as i32).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::sql("taking trace runs to compact"))?;
    if rows.is_empty() {
        return Ok(CompactTotals::default());
    }
    let taken: Vec<Taken> = rows
        .iter()
        .map(|r| Taken {
            pair_id: i64::from(r.get::<i32, _>("pair_id")),
            at: r.get("at"),
            path_id: i64::from(r.get::<i32, _>("path_id")),
            figures: r.get("figures"),
        })
        .collect();
    let mut hours: BTreeMap<(i64, DateTime<Utc>), Vec<Taken>> = BTreeMap::new();
    for t in taken {
        hours.entry((t.pair_id, block::block_of(t.at))).or_default().push(t);
    }
    let existing = existing_blocks(conn, &hours).await?;
    let mut path_ids: HashSet<i64> = hours.values().flatten().map(|t| t.path_id).collect();
    path_ids.extend(existing.values().flatten().map(|r| r.path_id));
    let paths = paths_by_id(&mut *conn, &path_ids.into_iter().collect::<Vec<_>>()).await?;
    let mut written = Vec::with_capacity(hours.len());
    let mut rollups = Vec::with_capacity(hours.len());
    let mut totals = CompactTotals { runs: rows.len() as u64, ..CompactTotals::default() };
    for ((pair_id, start), runs) in hours {
        let fresh = runs.into_iter().map(|t| repack(t, &paths)).collect::<Result<Vec<_>>>()?;
        let had = existing.get(&(pair_id, start)).cloned().unwrap_or_default();
        let count = had.len() + fresh.len();
        let merged = block::merge(had.into_iter().chain(fresh));
        totals.duplicates += (count - merged.len()) as u64;
        let full = merged
            .iter()
            .map(|r| {
                let path = paths.get(&r.path_id).ok_or(Error::StoredBlock {
                    pair_id,
                    start,
                    source: block::BlockError::MissingPath(r.path_id),
                })?;
                packed::unpack(r.at, path, &r.figures).map_err(|source| Error::StoredRun { pair_id, at: r.at, source })
            })
            .collect::<Result<Vec<_>>>()?;
        let data = block::encode(start, &merged).map_err(|source| Error::StoredBlock { pair_id, start, source })?;
        written.push((pair_id, start, merged.len(), data));
        let mut by_hour: BTreeMap<DateTime<Utc>, Vec<Run>> = BTreeMap::new();
        for run in full {
            by_hour.entry(block::hour_of(run.at)).or_default().push(run);
        }
        rollups.extend(
            by_hour
                .into_iter()
                .map(|(hour, runs)| (pair_id, hour, runs.len(), block::encode_rollup(&block::rollup(&runs)))),
        );
    }
    totals.blocks = written.len() as u64;
    write_blocks(conn, &written, &rollups).await?;
    Ok(totals)
}

/// A run's figures in the block's form (version 2; runs of version 1 are packed again).
fn repack(t: Taken, paths: &HashMap<i64, StoredPath>) -> Result<BlockRun> {
    if t.figures.first() == Some(&packed::VERSION) {
        return Ok(BlockRun { at: t.at, path_id: t.path_id, figures: t.figures });
    }
    let path = paths.get(&t.path_id).ok_or(Error::StoredBlock {
        pair_id: t.pair_id,
        start: block::block_of(t.at),
        source: block::BlockError::MissingPath(t.path_id),
    })?;
    let run = packed::unpack(t.at, path, &t.figures).map_err(|source| Error::StoredRun {
        pair_id: t.pair_id,
        at: t.at,
        source,
    })?;
    Ok(BlockRun { at: t.at, path_id: t.path_id, figures: packed::pack(&run) })
}

/// The runs already in the blocks of these pairs and block starts.
async fn existing_blocks(
    conn: &mut PgConnection,
    hours: &BTreeMap<(i64, DateTime<Utc>), Vec<Taken>>,
) -> Result<HashMap<(i64, DateTime<Utc>), Vec<BlockRun>>> {
    let rows = sqlx::query(
        "SELECT b.pair_id, b.starts, b.data FROM trace_blocks b \
         JOIN UNNEST($1::int[], $2::timestamptz[]) AS k(pair_id, starts) ON b.pair_id = k.pair_id AND b.starts = k.starts",
    )
    .bind(hours.keys().map(|k| k.0 as i32).collect::<Vec<_>>())
    .bind(hours.keys().map(|k| k.1).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::sql("reading trace blocks to merge"))?;
    let mut out = HashMap::new();
    for r in rows {
        let pair_id = i64::from(r.get::<i32, _>("pair_id"));
        let (start, runs) = block_runs(&r, pair_id)?;
        out.insert((pair_id, start), runs);
    }
    Ok(out)
}

/// Which of `runs` (pair, time) are already in their block: a resend of a run
/// compacted since.
pub(crate) async fn in_blocks(
    conn: &mut PgConnection,
    runs: &[(i64, DateTime<Utc>)],
) -> Result<HashSet<(i64, DateTime<Utc>)>> {
    let keys: HashSet<(i64, DateTime<Utc>)> = runs.iter().map(|&(p, at)| (p, block::block_of(at))).collect();
    let rows = sqlx::query(
        "SELECT b.pair_id, b.starts, b.data FROM trace_blocks b \
         JOIN UNNEST($1::int[], $2::timestamptz[]) AS k(pair_id, starts) ON b.pair_id = k.pair_id AND b.starts = k.starts",
    )
    .bind(keys.iter().map(|k| k.0 as i32).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.1).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::sql("reading trace blocks"))?;
    let mut found = HashSet::new();
    for r in rows {
        let pair_id = i64::from(r.get::<i32, _>("pair_id"));
        let (_, runs) = block_runs(&r, pair_id)?;
        found.extend(runs.into_iter().map(|r| (pair_id, r.at)));
    }
    Ok(found.into_iter().filter(|k| runs.contains(k)).collect())
}

/// A block to write: pair, start, runs, data. A rollup: pair, hour, runs, data.
type Written = (i64, DateTime<Utc>, usize, Vec<u8>);

async fn write_blocks(conn: &mut PgConnection, written: &[Written], rollups: &[Written]) -> Result<()> {
    let days = written.iter().map(|w| w.1.date_naive());
    let (first, last) = (days.clone().min(), days.max());
    if let (Some(first), Some(last)) = (first, last) {
        sqlx::query("SELECT edgewatch_ensure_trace_partitions($1::date, $2)")
            .bind(first)
            .bind((last - first).num_days() as i32 + 1)
            .execute(&mut *conn)
            .await
            .map_err(Error::sql("creating trace block partitions"))?;
    }
    upsert(conn, "trace_blocks", "starts", written, "writing trace blocks").await?;
    upsert(conn, "trace_hourly", "hour", rollups, "writing trace rollups").await
}

/// Writes rows (pair, time, runs, data) into `table`, keyed by pair and `key`.
async fn upsert(conn: &mut PgConnection, table: &str, key: &str, rows: &[Written], what: &'static str) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO {table} (pair_id, {key}, runs, data) \
         SELECT * FROM UNNEST($1::int[], $2::timestamptz[], $3::int[], $4::bytea[]) \
         ON CONFLICT (pair_id, {key}) DO UPDATE SET runs = excluded.runs, data = excluded.data"
    ))
    .bind(rows.iter().map(|w| w.0 as i32).collect::<Vec<_>>())
    .bind(rows.iter().map(|w| w.1).collect::<Vec<_>>())
    .bind(rows.iter().map(|w| w.2 as i32).collect::<Vec<_>>())
    .bind(rows.iter().map(|w| w.3.as_slice()).collect::<Vec<_>>())
    .execute(conn)
    .await
    .map_err(Error::sql(what))?;
    Ok(())
}
