//! The agent's path tracing: lease the due pairs of this host from the server, trace them
//! all at once with one tracer (the probe engine's allow-list; the server's probes and
//! TTL), and deliver the runs; oldest first, kept (bounded) and resent while the server
//! cannot take them. Pairs it cannot trace (allow-list, no raw sockets for the family) are
//! given back with the next delivery, and said once. Without raw sockets at all the agent
//! says so once and does not lease anything: it only probes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

use super::trace_wire::{LeasedPair, TraceClaim, TraceLease, TraceRunItem, TraceRuns, MAX_RUNS_PER_REQUEST};
use super::{AgentConfig, Client, Failure, FIRST_BACKOFF};
use crate::backoff::Backoff;
use crate::trace::{TraceSettings, Tracer};
use crate::trace_loop::{availability, cannot_trace, store_precision, SaidOnce};
use crate::AllowList;

/// What the trace task did.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TraceTotals {
    pub traced: u64,
    pub delivered: u64,
    pub lost: u64,
    pub failed_requests: u64,
}

/// Runs and given-back pairs not delivered yet.
#[derive(Debug, Default)]
struct Outbox {
    runs: VecDeque<TraceRunItem>,
    release: Vec<i64>,
}

struct TraceTask {
    client: Arc<Client>,
    allow: AllowList,
    cfg: AgentConfig,
    tracer: Option<Tracer>,
    outbox: Outbox,
    totals: TraceTotals,
    backoff: Backoff,
    chunk: usize,
    said: SaidOnce,
    failing: bool,
}

/// Traces what the server leases to this host until `shutdown`; then tries briefly to
/// deliver what it holds.
pub(super) async fn trace_loop(
    client: Arc<Client>,
    allow: AllowList,
    cfg: AgentConfig,
    shutdown: CancellationToken,
) -> TraceTotals {
    let probe = match Tracer::builder(allow.clone()).own_thread(true).build() {
        Ok(tracer) => tracer,
        Err(e) => {
            tracing::warn!("not tracing paths: cannot start the tracer ({e}); probing goes on");
            return TraceTotals::default();
        }
    };
    if let Err(why) = availability(&probe) {
        tracing::warn!("not tracing paths: {why}; probing goes on without path history");
        return TraceTotals::default();
    }
    let mut task = TraceTask {
        client,
        allow,
        tracer: Some(probe),
        outbox: Outbox::default(),
        totals: TraceTotals::default(),
        backoff: Backoff::new(FIRST_BACKOFF, cfg.max_backoff),
        chunk: MAX_RUNS_PER_REQUEST.min(500),
        said: SaidOnce::default(),
        failing: false,
        cfg,
    };
    let claim = TraceClaim::default();
    while !shutdown.is_cancelled() {
        if !task.outbox.is_empty() && !task.deliver().await {
            task.wait(&shutdown).await;
            continue;
        }
        let lease = tokio::select! {
            _ = shutdown.cancelled() => break,
            lease = task.client.claim_traces(&claim) => lease,
        };
        let lease = match lease {
            Ok(lease) => lease,
            Err(why) => {
                task.failed(&format!("cannot lease pairs to trace ({why})"));
                task.wait(&shutdown).await;
                continue;
            }
        };
        task.ok();
        let poll = poll_every(&lease);
        if lease.pairs.is_empty() {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(poll) => {}
            }
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => {
                task.outbox.release.extend(lease.pairs.iter().map(|p| p.pair_id));
                break;
            }
            _ = task.trace(&lease) => {}
        }
    }
    task.final_flush().await;
    task.totals
}

/// How often to ask for due pairs: a quarter of the interval, within 0.5–30 s (not
/// tracing: once a minute).
fn poll_every(lease: &TraceLease) -> Duration {
    if !lease.tracing {
        return Duration::from_secs(60);
    }
    (Duration::from_secs(lease.interval_s) / 4).clamp(Duration::from_millis(500), Duration::from_secs(30))
}

impl Outbox {
    fn is_empty(&self) -> bool {
        self.runs.is_empty() && self.release.is_empty()
    }
}

impl TraceTask {
    /// A tracer with the lease's settings (the one held, unless they changed).
    async fn tracer_for(&mut self, lease: &TraceLease) -> Option<Tracer> {
        let want = TraceSettings { probes: lease.probes, max_ttl: lease.max_ttl, ..TraceSettings::default() };
        if let Some(t) = &self.tracer {
            if t.settings() == want {
                return Some(t.clone());
            }
            t.shutdown().await;
        }
        self.tracer = match Tracer::builder(self.allow.clone()).settings(want).own_thread(true).build() {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!("cannot start a tracer with the server's settings ({e}); giving the pairs back");
                None
            }
        };
        self.tracer.clone()
    }

    /// Traces the leased pairs at once; the runs go to the outbox, the rest back.
    async fn trace(&mut self, lease: &TraceLease) {
        let Some(tracer) = self.tracer_for(lease).await else {
            self.outbox.release.extend(lease.pairs.iter().map(|p| p.pair_id));
            return;
        };
        let (ok, refused): (Vec<&LeasedPair>, Vec<&LeasedPair>) =
            lease.pairs.iter().partition(|p| cannot_trace(&tracer, &p.target).is_none());
        for p in refused {
            if self.said.first(p.pair_id) {
                let why = cannot_trace(&tracer, &p.target).unwrap_or_default();
                tracing::warn!(pair = p.pair_id, target = %p.target, "not tracing this pair: {why}; giving it back");
            }
            self.outbox.release.push(p.pair_id);
        }
        let results = tracer.trace_all(ok.iter().map(|p| p.target).collect()).await;
        for (pair, (target, result)) in ok.into_iter().zip(results) {
            match result {
                Ok(run) => {
                    self.totals.traced += 1;
                    self.outbox.runs.push_back(TraceRunItem { pair_id: pair.pair_id, run: store_precision(run) });
                }
                Err(e) => {
                    tracing::warn!(pair = pair.pair_id, %target, "trace failed: {e}");
                    self.outbox.release.push(pair.pair_id);
                }
            }
        }
        while self.outbox.runs.len() > self.cfg.max_buffered_runs {
            self.outbox.runs.pop_front();
            self.totals.lost += 1;
            tracing::warn!("trace buffer full: dropping the oldest undelivered run");
        }
    }

    /// Delivers the oldest runs (and the pairs given back); false when it must wait.
    async fn deliver(&mut self) -> bool {
        let n = self.chunk.min(self.outbox.runs.len());
        let body = TraceRuns {
            runs: self.outbox.runs.iter().take(n).cloned().collect(),
            release: self.outbox.release.clone(),
        };
        match self.client.post_traces(&body).await {
            Ok(done) => {
                self.ok();
                self.totals.delivered += n as u64;
                self.outbox.runs.drain(..n);
                self.outbox.release.clear();
                tracing::debug!(runs = n, stored = done.stored, released = done.released, "trace runs delivered");
                true
            }
            Err(Failure::Refused { status, .. }) if status == StatusCode::PAYLOAD_TOO_LARGE && n > 1 => {
                self.chunk = (n / 2).max(1);
                true
            }
            Err(Failure::Refused { status, message }) => {
                self.outbox.runs.drain(..n);
                self.outbox.release.clear();
                self.totals.lost += n as u64;
                tracing::error!(%status, runs = n, "the server refused trace runs, not sending them again: {message}");
                true
            }
            Err(Failure::Retry(why)) => {
                self.failed(&format!("cannot deliver trace runs ({why}); keeping them and retrying"));
                false
            }
        }
    }

    fn ok(&mut self) {
        if self.failing {
            tracing::info!("the server takes trace runs again");
        }
        self.failing = false;
        self.backoff.reset();
    }

    /// Says a failure once per outage (later ones at debug level).
    fn failed(&mut self, what: &str) {
        self.totals.failed_requests += 1;
        if self.failing {
            tracing::debug!("{what}");
        } else {
            tracing::warn!("{what}");
        }
        self.failing = true;
    }

    async fn wait(&mut self, shutdown: &CancellationToken) {
        self.backoff.wait(shutdown).await;
    }

    /// One last, brief try to deliver what is held; what is left is lost.
    async fn final_flush(&mut self) {
        let deadline = tokio::time::Instant::now() + self.cfg.final_flush;
        while !self.outbox.is_empty() {
            match tokio::time::timeout_at(deadline, self.deliver()).await {
                Ok(true) => {}
                Ok(false) | Err(_) => break,
            }
        }
        self.totals.lost += self.outbox.runs.len() as u64;
        if !self.outbox.runs.is_empty() {
            tracing::warn!(runs = self.outbox.runs.len(), "stopping with undelivered trace runs");
        }
        if let Some(t) = self.tracer.take() {
            t.shutdown().await;
        }
    }
}
