//! Path tracing on a schedule, for prober workers: keep the traced pairs in step with the
//! graph, lease the due ones, trace them all at once with one [`Tracer`], record the runs.
//!
//! Which pairs (`graph_store::paths`): every (source host → destination host) pair with a
//! live edge, across data centers every interval and within one every
//! [`PairSchedule::intra_dc_every`] intervals; the configured external targets from this
//! worker's vantage; and at once those whose edges just went down or degraded. A worker
//! traces the external targets of its vantage and the host pairs of hosts where no agent
//! has reported for [`TraceConfig::agent_silence`]; agents trace their own host's
//! (`agent::traces`).
//!
//! Every run of a pair has the same flow (the pair's id is the flow number), so a per-flow
//! load balancer sends all of them down one branch and a branch is never read as a route
//! change. A destination the allow-list refuses, an unknown protocol or
//! an address family without raw sockets: the pair is released (traced again an interval
//! later), and said once. Runs the store cannot take yet are kept (bounded) and recorded
//! when it is back; a run resent is stored once.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use chrono::SubsecRound;
use graph_store::paths::{self as store, DuePair, ExternalTarget, PairSchedule, TraceRecord, TrackConfig};
use graph_store::PgPool;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::icmp::Family;
use crate::trace::{TraceProtocol, TraceTarget, Tracer};
use crate::AllowList;

/// The traceroute's first UDP port: the default destination port of UDP traces.
pub const DEFAULT_UDP_PORT: u16 = 33434;

/// How paths are traced: `[trace]` of the config file, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceConfig {
    /// How often pairs are traced.
    pub schedule: PairSchedule,
    /// Days of raw runs kept (day partitions of `trace_runs`).
    pub keep_days: u32,
    /// Days of hourly per-hop rollups kept (like the other rollups).
    pub hourly_keep_days: u32,
    /// Probes per TTL per run.
    pub probes: u32,
    /// The highest TTL probed.
    pub max_ttl: u8,
    /// How host pairs of the graph are traced (external targets say their own).
    pub protocol: TraceProtocol,
    /// Where this worker traces from: the source of its external targets' pairs.
    pub vantage: String,
    /// A host's pairs fall to the workers when no agent there has reported for this long.
    pub agent_silence: Duration,
    /// The route-change and loss rules.
    pub track: TrackConfig,
    pub targets: Vec<ExternalTarget>,
    /// Pairs leased at a time.
    pub batch: i64,
    /// Runs kept while the store is unreachable, at most (the oldest go first).
    pub max_pending: usize,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            schedule: PairSchedule::default(),
            keep_days: 14,
            hourly_keep_days: 400,
            probes: crate::trace::DEFAULT_PROBES,
            max_ttl: crate::trace::DEFAULT_MAX_TTL,
            protocol: TraceProtocol::Icmp,
            vantage: "edgewatch".into(),
            agent_silence: Duration::from_secs(600),
            track: TrackConfig::default(),
            targets: Vec::new(),
            batch: 500,
            max_pending: 100_000,
        }
    }
}

impl TraceConfig {
    /// How long a lease holds: one interval, within 30 s–10 min (a batch of traces under
    /// the tracer's packet-rate cap can take a while).
    pub fn lease(&self) -> Duration {
        self.schedule.interval.clamp(Duration::from_secs(30), Duration::from_secs(600))
    }

    /// A tracer with these settings, tracing only inside `allow` (the probe engine's
    /// allow-list). Must run inside a tokio runtime.
    pub fn tracer(&self, allow: AllowList) -> crate::Result<Tracer> {
        Tracer::builder(allow).probes(self.probes).max_ttl(self.max_ttl).own_thread(true).build()
    }
}

/// What to send for a due pair: its destination, the protocol (the configured one for host
/// pairs, the target's own for external targets) and the pair's flow; or why it cannot be
/// traced.
pub fn target_of(pair: &DuePair, graph_protocol: TraceProtocol) -> Result<TraceTarget, String> {
    let protocol = if !pair.external {
        match graph_protocol {
            // SYNs to the port of the pair's service (the CMDB's), where its traffic goes
            // through the firewalls; `[trace] port` for pairs whose services have none.
            TraceProtocol::Tcp { port } => TraceProtocol::Tcp { port: pair.port.unwrap_or(port) },
            other => other,
        }
    } else {
        match pair.protocol.as_str() {
            "icmp" => TraceProtocol::Icmp,
            "udp" => TraceProtocol::Udp { port: pair.port.unwrap_or(DEFAULT_UDP_PORT) },
            "tcp" => TraceProtocol::Tcp { port: pair.port.unwrap_or(80) },
            other => return Err(format!("unknown trace protocol {other:?}")),
        }
    };
    Ok(TraceTarget { ip: pair.dst_ip, protocol, flow: flow_of(pair.id) })
}

/// The flow number of a pair: the same in every run, so every run takes one branch.
pub fn flow_of(pair_id: i64) -> u16 {
    (pair_id & 0xffff) as u16
}

/// Whether `tracer` can trace at all here; else why not (no raw sockets).
pub fn availability(tracer: &Tracer) -> Result<(), String> {
    match (tracer.available(Family::V4), tracer.available(Family::V6)) {
        (Err(v4), Err(_)) => Err(v4),
        _ => Ok(()),
    }
}

/// Why `target` cannot be traced by `tracer` now (allow-list, address family), if so.
pub fn cannot_trace(tracer: &Tracer, target: &TraceTarget) -> Option<String> {
    if let Err(refused) = tracer.allow_list().check(target.ip) {
        return Some(format!("refused by the allow-list ({}): {}", tracer.allow_list(), refused.reason));
    }
    tracer.available(Family::of(target.ip)).err()
}

/// Cuts a run's time to the microseconds PostgreSQL keeps, so a resent run is the same.
pub fn store_precision(mut run: graph_store::paths::Run) -> graph_store::paths::Run {
    run.at = run.at.trunc_subsecs(6);
    run
}

/// Pairs said to be untraceable, each once (forgotten past this many, then said again).
#[derive(Debug, Default)]
pub struct SaidOnce(HashSet<i64>);

impl SaidOnce {
    const MAX: usize = 100_000;

    /// True the first time for `pair_id`.
    pub fn first(&mut self, pair_id: i64) -> bool {
        if self.0.len() >= Self::MAX {
            self.0.clear();
        }
        self.0.insert(pair_id)
    }
}

/// What a trace loop did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceTotals {
    /// Pairs leased.
    pub claimed: u64,
    /// Runs made.
    pub traced: u64,
    /// Runs stored.
    pub recorded: u64,
    /// Route and loss events.
    pub events: u64,
    /// Pairs given back untraced (refused, unavailable, failed).
    pub released: u64,
    /// Runs dropped because too many waited for the store.
    pub dropped: u64,
    pub store_errors: u64,
}

/// Traces due pairs until `shutdown` as `owner` (written into leases), with `tracer`;
/// records what it holds before returning.
pub async fn run_trace_loop(
    pool: PgPool,
    tracer: Tracer,
    cfg: TraceConfig,
    owner: String,
    shutdown: CancellationToken,
) -> TraceTotals {
    let mut lp = TraceLoop {
        pool,
        tracer,
        cfg,
        owner,
        pending: VecDeque::new(),
        backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(30)).jitter_past_max(),
        totals: TraceTotals::default(),
        said: SaidOnce::default(),
        upkeep: Upkeep::default(),
    };
    let idle = (lp.cfg.schedule.interval / 10).clamp(Duration::from_millis(200), Duration::from_secs(5));
    while !shutdown.is_cancelled() {
        lp.keep_up().await;
        if !lp.pending.is_empty() && !lp.flush().await {
            lp.backoff.wait(&shutdown).await;
            continue;
        }
        let who = store::Tracer::Worker { vantage: &lp.cfg.vantage, agent_silence: lp.cfg.agent_silence };
        let due = match store::claim_due(&lp.pool, who, &lp.owner, lp.cfg.batch, lp.cfg.lease()).await {
            Ok(due) => {
                lp.backoff.reset();
                due
            }
            Err(e) => {
                lp.totals.store_errors += 1;
                tracing::warn!(owner = %lp.owner, "cannot lease trace pairs, will retry: {e}");
                lp.backoff.wait(&shutdown).await;
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
        lp.totals.claimed += due.len() as u64;
        let ids: Vec<i64> = due.iter().map(|p| p.id).collect();
        tokio::select! {
            _ = shutdown.cancelled() => {
                lp.release(&ids).await;
                break;
            }
            _ = lp.trace(due) => {}
        }
        if !lp.flush().await {
            lp.backoff.wait(&shutdown).await;
        }
    }
    if !lp.pending.is_empty() && !lp.flush().await {
        tracing::warn!(owner = %lp.owner, lost = lp.pending.len(), "trace runs not recorded at shutdown");
    }
    lp.totals
}

/// When the loop last kept the store up to date.
#[derive(Debug, Default)]
struct Upkeep {
    pairs: Option<Instant>,
    retention: Option<Instant>,
    targets_synced: bool,
}

struct TraceLoop {
    pool: PgPool,
    tracer: Tracer,
    cfg: TraceConfig,
    owner: String,
    pending: VecDeque<TraceRecord>,
    backoff: Backoff,
    totals: TraceTotals,
    said: SaidOnce,
    upkeep: Upkeep,
}

impl TraceLoop {
    /// The pairs in step with the graph (every half interval, 1 s–60 s), the external
    /// targets once, partitions ahead and retention (hourly). A store that is away only
    /// delays it.
    async fn keep_up(&mut self) {
        let every = (self.cfg.schedule.interval / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
        if self.upkeep.pairs.is_none_or(|t| t.elapsed() >= every) {
            match upkeep_pairs(&self.pool, &self.cfg.schedule).await {
                Ok(()) => self.upkeep.pairs = Some(Instant::now()),
                Err(e) => tracing::warn!(owner = %self.owner, "keeping the trace pairs up to date: {e}"),
            }
        }
        if !self.upkeep.targets_synced {
            match store::sync_targets(&self.pool, &self.cfg.vantage, &self.cfg.targets, &self.cfg.schedule).await {
                Ok(n) => {
                    self.upkeep.targets_synced = true;
                    tracing::info!(vantage = %self.cfg.vantage, targets = n, "external trace targets in place");
                }
                Err(e) => tracing::warn!(owner = %self.owner, "storing the external trace targets: {e}"),
            }
        }
        if self.upkeep.retention.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
            match retention(&self.pool, self.cfg.keep_days, self.cfg.hourly_keep_days).await {
                Ok(()) => self.upkeep.retention = Some(Instant::now()),
                Err(e) => tracing::warn!(owner = %self.owner, "trace history retention: {e}"),
            }
        }
    }

    /// Traces `due` all at once; keeps the runs, releases what could not be traced.
    async fn trace(&mut self, due: Vec<DuePair>) {
        let mut targets = Vec::new();
        let mut ids = Vec::new();
        let mut untraced = Vec::new();
        for pair in &due {
            let target = target_of(pair, self.cfg.protocol);
            let why = match &target {
                Ok(t) => cannot_trace(&self.tracer, t),
                Err(why) => Some(why.clone()),
            };
            match (target, why) {
                (Ok(t), None) => {
                    targets.push(t);
                    ids.push(pair.id);
                }
                (_, why) => {
                    if self.said.first(pair.id) {
                        let why = why.unwrap_or_default();
                        tracing::warn!(pair = pair.id, src = %pair.src, dst = %pair.dst, ip = %pair.dst_ip,
                            "not tracing this pair: {why}; it is left untraced and tried again an interval later");
                    }
                    untraced.push(pair.id);
                }
            }
        }
        for ((target, result), pair_id) in self.tracer.trace_all(targets).await.into_iter().zip(ids) {
            match result {
                Ok(run) => {
                    self.totals.traced += 1;
                    self.pending.push_back(TraceRecord { pair_id, run: store_precision(run) });
                }
                Err(e) => {
                    tracing::warn!(pair = pair_id, %target, "trace failed: {e}");
                    untraced.push(pair_id);
                }
            }
        }
        while self.pending.len() > self.cfg.max_pending {
            self.pending.pop_front();
            self.totals.dropped += 1;
        }
        self.release(&untraced).await;
    }

    async fn release(&mut self, ids: &[i64]) {
        if ids.is_empty() {
            return;
        }
        self.totals.released += ids.len() as u64;
        if let Err(e) = store::release(&self.pool, &self.owner, ids).await {
            tracing::warn!(owner = %self.owner, "cannot release trace pairs (their leases will expire): {e}");
        }
    }

    /// Records the pending runs; false when the store would not take them (kept).
    async fn flush(&mut self) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        let batch: Vec<TraceRecord> = self.pending.iter().cloned().collect();
        match store::record_runs(&self.pool, &batch, &self.cfg.track).await {
            Ok(done) => {
                self.pending.clear();
                self.backoff.reset();
                self.totals.recorded += done.runs;
                self.totals.events += done.events;
                if done.events > 0 {
                    tracing::info!(owner = %self.owner, events = done.events, "route or loss events recorded");
                }
                true
            }
            Err(e) => {
                self.totals.store_errors += 1;
                tracing::warn!(owner = %self.owner, pending = self.pending.len(), "cannot record trace runs, will retry: {e}");
                false
            }
        }
    }
}

/// Pairs from the graph, day partitions ahead for their runs, and the runs of blocks over
/// (six hours each, over for ten minutes: late runs still come) compacted.
pub async fn upkeep_pairs(pool: &PgPool, schedule: &PairSchedule) -> graph_store::Result<()> {
    let (added, retired) = store::sync_pairs(pool, schedule).await?;
    if added + retired > 0 {
        tracing::info!(added, retired, "trace pairs follow the graph");
    }
    store::ensure_partitions(pool).await?;
    let before = store::block::block_of(chrono::Utc::now() - chrono::Duration::minutes(10));
    if let Some(done) = store::compact_runs(pool, before, COMPACT_BUDGET).await? {
        if done.runs > 0 {
            tracing::info!(runs = done.runs, blocks = done.blocks, "trace runs compacted into blocks");
        }
    }
    Ok(())
}

/// At most this long compacting per upkeep (the rest waits for the next).
const COMPACT_BUDGET: Duration = Duration::from_secs(20);

/// Raw runs past `keep_days` and hourly rollups past `hourly_keep_days` go.
pub async fn retention(pool: &PgPool, keep_days: u32, hourly_keep_days: u32) -> graph_store::Result<()> {
    let dropped = store::drop_old_partitions(pool, keep_days).await?;
    if !dropped.is_empty() {
        tracing::info!(?dropped, "trace history past retention dropped");
    }
    store::prune_hourly(pool, hourly_keep_days).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(id: i64, external: bool, protocol: &str, port: Option<u16>) -> DuePair {
        DuePair {
            id,
            src: "h1".into(),
            dst: "h2".into(),
            dst_ip: "127.0.0.2".parse().unwrap(),
            protocol: protocol.into(),
            port,
            external,
        }
    }

    #[test]
    fn targets_hold_the_pair_flow_and_protocol() {
        let udp = TraceProtocol::Udp { port: 33500 };
        let tcp = TraceProtocol::Tcp { port: 80 };
        let cases = [
            (pair(7, false, "icmp", None), TraceProtocol::Icmp, Ok((TraceProtocol::Icmp, 7))),
            (pair(7, false, "icmp", None), udp, Ok((udp, 7))),
            (pair(7, false, "icmp", Some(9200)), udp, Ok((udp, 7))),
            (pair(7, false, "icmp", Some(9200)), tcp, Ok((TraceProtocol::Tcp { port: 9200 }, 7))),
            (pair(7, false, "icmp", None), tcp, Ok((tcp, 7))),
            (pair(70_001, true, "udp", Some(53)), TraceProtocol::Icmp, Ok((TraceProtocol::Udp { port: 53 }, 4465))),
            (pair(3, true, "udp", None), TraceProtocol::Icmp, Ok((TraceProtocol::Udp { port: DEFAULT_UDP_PORT }, 3))),
            (pair(3, true, "icmp", None), udp, Ok((TraceProtocol::Icmp, 3))),
            (pair(3, true, "tcp", Some(443)), TraceProtocol::Icmp, Ok((TraceProtocol::Tcp { port: 443 }, 3))),
            (pair(3, true, "bogus", None), TraceProtocol::Icmp, Err("unknown trace protocol")),
        ];
        for (p, graph, want) in cases {
            let got = target_of(&p, graph);
            match (got, want) {
                (Ok(t), Ok((protocol, flow))) => {
                    assert_eq!((t.ip, t.protocol, t.flow), (p.dst_ip, protocol, flow), "{p:?}");
                }
                (Err(e), Err(start)) => assert!(e.starts_with(start), "{e}"),
                (got, want) => panic!("{p:?}: {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn untraceable_pairs_are_said_once() {
        let mut said = SaidOnce::default();
        assert!(said.first(1));
        assert!(!said.first(1));
        assert!(said.first(2));
    }
}
