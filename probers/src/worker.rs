//! Prober workers: claim due edges from the store (leases taken with `SKIP LOCKED`, so
//! several workers and processes share the graph without probing an edge twice in an
//! interval), probe them, and record the results in batches.
//!
//! A worker survives the store going away: claiming and recording back off (with jitter)
//! and retry; results already made are kept (bounded) and recorded once the store is
//! back. Housekeeping (new edges get health rows, partitions ahead, stale edges) runs
//! every few seconds in whichever worker gets to it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use graph_store::probe as store;
use graph_store::PgPool;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::record::{self, CycleResult, RecordConfig};
use crate::{Engine, ProbeTarget};

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Written into leases and results.
    pub name: String,
    /// Edges claimed at a time.
    pub batch: i64,
    /// How long a claim holds; a crashed worker's edges are free again after it.
    pub lease: Duration,
    pub record: RecordConfig,
    /// Results kept while the store is unreachable, at most.
    pub max_pending: usize,
    /// Probe-history retention in days.
    pub retention_days: u32,
    /// Whether this worker also does the store's housekeeping (partitions, health rows
    /// for new edges, stale edges, retention): one worker per process is enough, and
    /// several doing it at once only wait for each other.
    pub housekeeper: bool,
}

impl WorkerOptions {
    pub fn new(name: impl Into<String>, record: RecordConfig) -> Self {
        let lease = (record.interval / 2).clamp(Duration::from_secs(10), Duration::from_secs(300));
        WorkerOptions {
            name: name.into(),
            batch: 500,
            lease,
            record,
            max_pending: 100_000,
            retention_days: 14,
            housekeeper: true,
        }
    }
}

/// What a worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerTotals {
    pub probed: u64,
    pub recorded: u64,
    pub events: u64,
    pub store_errors: u64,
}

/// Runs one worker until `shutdown`; records what it holds before returning.
pub async fn run_worker(
    pool: PgPool,
    engine: Arc<Engine>,
    opts: WorkerOptions,
    shutdown: CancellationToken,
) -> WorkerTotals {
    let mut totals = WorkerTotals::default();
    let mut pending: VecDeque<CycleResult> = VecDeque::new();
    let mut backoff = store_backoff();
    let mut last_housekeeping: Option<Instant> = None;
    let idle = (opts.record.interval / 10).clamp(Duration::from_millis(100), Duration::from_secs(2));

    while !shutdown.is_cancelled() {
        if opts.housekeeper
            && last_housekeeping.is_none_or(|t| t.elapsed() >= Duration::from_secs(5).min(opts.record.interval))
        {
            match housekeeping(&pool, &opts).await {
                Ok(()) => last_housekeeping = Some(Instant::now()),
                Err(e) => tracing::warn!(worker = %opts.name, "housekeeping: {e}"),
            }
        }
        if !pending.is_empty() {
            if let Err(e) = flush(&pool, &opts, &mut pending, &mut totals).await {
                totals.store_errors += 1;
                tracing::warn!(worker = %opts.name, pending = pending.len(), "cannot record results, will retry: {e}");
                backoff.wait(&shutdown).await;
                continue;
            }
        }
        let due = match store::claim_due(&pool, &opts.name, opts.batch, opts.lease).await {
            Ok(due) => {
                backoff.reset();
                due
            }
            Err(e) => {
                totals.store_errors += 1;
                tracing::warn!(worker = %opts.name, "cannot claim edges, will retry: {e}");
                backoff.wait(&shutdown).await;
                continue;
            }
        };
        if due.is_empty() {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(idle) => {}
            }
            continue;
        }
        let targets: Vec<ProbeTarget> = due.iter().map(|d| ProbeTarget::for_edge(d.dst_ip, d.port)).collect();
        let outcomes = engine.probe_all(targets).await;
        let at = Utc::now();
        totals.probed += outcomes.len() as u64;
        for (d, (target, outcome)) in due.iter().zip(outcomes) {
            pending.push_back(CycleResult { edge_id: d.edge_id, at, kind: target.kind, outcome });
        }
        while pending.len() > opts.max_pending {
            pending.pop_front();
            tracing::warn!(worker = %opts.name, "dropping the oldest unrecorded result: the store has been away too long");
        }
        if let Err(e) = flush(&pool, &opts, &mut pending, &mut totals).await {
            totals.store_errors += 1;
            tracing::warn!(worker = %opts.name, pending = pending.len(), "cannot record results, will retry: {e}");
            backoff.wait(&shutdown).await;
        }
    }
    if !pending.is_empty() {
        if let Err(e) = flush(&pool, &opts, &mut pending, &mut totals).await {
            tracing::warn!(worker = %opts.name, lost = pending.len(), "results not recorded at shutdown: {e}");
        }
    }
    totals
}

async fn flush(
    pool: &PgPool,
    opts: &WorkerOptions,
    pending: &mut VecDeque<CycleResult>,
    totals: &mut WorkerTotals,
) -> graph_store::Result<()> {
    let batch: Vec<CycleResult> = pending.iter().cloned().collect();
    let done = record::record(pool, &opts.name, &batch, &opts.record).await?;
    pending.clear();
    totals.recorded += done.results as u64;
    totals.events += done.events as u64;
    Ok(())
}

async fn housekeeping(pool: &PgPool, opts: &WorkerOptions) -> graph_store::Result<()> {
    store::ensure_partitions(pool).await?;
    store::sync_health(pool, opts.record.interval).await?;
    record::mark_stale(pool, &opts.record).await?;
    let dropped = store::drop_old_partitions(pool, opts.retention_days).await?;
    if !dropped.is_empty() {
        tracing::info!(?dropped, "probe history past retention dropped");
    }
    Ok(())
}

/// How a worker backs off while the store is away: from 250 ms, doubling to 30 s steps
/// (a jittered wait can reach 45 s).
fn store_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(250), Duration::from_secs(30)).jitter_past_max()
}
