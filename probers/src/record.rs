//! Turning probe outcomes into history, health and events: the one path by which
//! results reach the store, whether a prober worker or an agent made them.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use graph_store::agents::AgentReport;
use graph_store::probe::{self as store, EventRow, HealthRow, ResultRow};
use graph_store::{PgConnection, PgPool};
use rand::Rng;

use crate::health::{EdgeHealth, HealthConfig, Thresholds, VerdictHistory};
use crate::{ProbeKind, ProbeOutcome};

/// How results are judged and when an edge is probed next.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordConfig {
    pub thresholds: Thresholds,
    pub health: HealthConfig,
    /// Time between two probes of one edge.
    pub interval: Duration,
    /// Each next probe time moves by up to this share of the interval, either way.
    pub jitter: f64,
}

impl Default for RecordConfig {
    fn default() -> Self {
        RecordConfig {
            thresholds: Thresholds::default(),
            health: HealthConfig::default(),
            interval: Duration::from_secs(120),
            jitter: 0.1,
        }
    }
}

/// One probe cycle of one edge.
#[derive(Debug, Clone)]
pub struct CycleResult {
    pub edge_id: i64,
    pub at: DateTime<Utc>,
    pub kind: ProbeKind,
    pub outcome: ProbeOutcome,
}

/// What a batch changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    pub results: usize,
    pub events: usize,
    /// Results for edges the store does not know (retired, or never had a health row).
    pub unknown_edges: usize,
}

fn to_health(row: &HealthRow) -> EdgeHealth {
    EdgeHealth {
        state: row.state,
        since: row.since,
        last_result_at: row.last_result_at,
        fail_streak: row.fail_streak.max(0) as u32,
        ok_streak: row.ok_streak.max(0) as u32,
        degraded_streak: row.degraded_streak.max(0) as u32,
        recent_states: row.recent_states.parse().unwrap_or_else(|_| VerdictHistory::new()),
        flapping: row.flapping,
        flap_pct: f64::from(row.flap_pct),
    }
}

fn to_row(edge_id: i64, h: &EdgeHealth, outcome: Option<&ProbeOutcome>, old: &HealthRow) -> HealthRow {
    HealthRow {
        edge_id,
        state: h.state,
        since: h.since,
        last_result_at: h.last_result_at,
        loss_pct: outcome.map(|o| o.loss_pct as f32).or(old.loss_pct),
        rtt_avg_ms: outcome.map_or(old.rtt_avg_ms, |o| o.rtt_avg_ms.map(|v| v as f32)),
        fail_streak: h.fail_streak.min(i32::MAX as u32) as i32,
        ok_streak: h.ok_streak.min(i32::MAX as u32) as i32,
        degraded_streak: h.degraded_streak.min(i32::MAX as u32) as i32,
        recent_states: h.recent_states.to_string(),
        flapping: h.flapping,
        flap_pct: h.flap_pct as f32,
    }
}

fn event_row(edge_id: i64, e: crate::health::Event) -> EventRow {
    EventRow { edge_id, at: e.at, from: e.from, to: e.to, reason: e.reason }
}

fn next_probe(at: DateTime<Utc>, cfg: &RecordConfig) -> DateTime<Utc> {
    let factor = 1.0 + rand::rng().random_range(-cfg.jitter..=cfg.jitter);
    let secs = cfg.interval.as_secs_f64() * factor.max(0.1);
    at + chrono::Duration::milliseconds((secs * 1000.0) as i64)
}

/// Records a batch of cycles from `prober` in one transaction: the health rows are
/// locked, each result is judged and fed to the edge's state machine, and history,
/// health (with the next probe time, lease released) and events are written in bulk.
/// Results older than what an edge already has are kept as history but do not move
/// its state backwards. Allow-list refusals are not results: they only reschedule; a
/// cycle that sent nothing is history, not a verdict on the edge.
pub async fn record(
    pool: &PgPool,
    prober: &str,
    cycles: &[CycleResult],
    cfg: &RecordConfig,
) -> graph_store::Result<Recorded> {
    let mut tx =
        pool.begin().await.map_err(|source| graph_store::Error::Sql { op: "starting to record results", source })?;
    let cycles: Vec<(&str, &CycleResult)> = cycles.iter().map(|c| (prober, c)).collect();
    let (out, _) = record_in(&mut tx, &cycles, cfg, None).await?;
    tx.commit().await.map_err(|source| graph_store::Error::Sql { op: "committing results", source })?;
    Ok(out)
}

/// One agent's results post (after the server checked who sent it and that the edges
/// are its node's), as [`record_posts`] takes it.
#[derive(Debug, Clone)]
pub struct AgentPost {
    /// The prober name its results are stored under: `agent:NODE`.
    pub prober: String,
    pub node_id: i64,
    pub cycles: Vec<CycleResult>,
    pub report: Option<AgentReport>,
}

/// What became of one [`AgentPost`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PostOutcome {
    pub accepted: usize,
    /// Results stored before (the agent sent them again), or twice in the batch: skipped.
    pub duplicates: usize,
    /// Results for edges without a health row: skipped.
    pub unknown_edges: usize,
    /// The post's report was new (not a resend of one stored).
    pub report_new: bool,
}

/// Records the posts of many agents in one transaction — a group commit: one lookup of
/// what was already recorded, one lock of the health rows, one write per table and one
/// commit for all of them, instead of a dozen statements per post. Each agent's edges
/// are then left to it by prober workers for two intervals past its newest result (the
/// next probe time of its edges is moved there in the same health update).
pub async fn record_posts(
    pool: &PgPool,
    posts: &[AgentPost],
    cfg: &RecordConfig,
) -> graph_store::Result<Vec<PostOutcome>> {
    let mut tx =
        pool.begin().await.map_err(|source| graph_store::Error::Sql { op: "starting to record results", source })?;
    let keys: Vec<(&str, i64, DateTime<Utc>)> =
        posts.iter().flat_map(|p| p.cycles.iter().map(|c| (p.prober.as_str(), c.edge_id, c.at))).collect();
    let mut seen: HashSet<(String, i64, DateTime<Utc>)> =
        graph_store::agents::already_recorded(&mut tx, &keys).await?.into_iter().collect();
    let mut outcomes = Vec::with_capacity(posts.len());
    let mut fresh: Vec<(&str, &CycleResult)> = Vec::new();
    for post in posts {
        let mut outcome = PostOutcome { accepted: post.cycles.len(), ..PostOutcome::default() };
        for c in &post.cycles {
            if seen.insert((post.prober.clone(), c.edge_id, c.at)) {
                fresh.push((&post.prober, c));
            } else {
                outcome.duplicates += 1;
            }
        }
        outcomes.push(outcome);
    }
    let (_, unknown) = record_in(&mut tx, &fresh, cfg, Some(cfg.interval * 2)).await?;
    if !unknown.is_empty() {
        for (post, outcome) in posts.iter().zip(&mut outcomes) {
            outcome.unknown_edges = post.cycles.iter().filter(|c| unknown.contains(&c.edge_id)).count();
        }
    }
    let reports: Vec<(usize, (i64, &AgentReport))> =
        posts.iter().enumerate().filter_map(|(i, p)| p.report.as_ref().map(|r| (i, (p.node_id, r)))).collect();
    let (which, rows): (Vec<usize>, Vec<(i64, &AgentReport)>) = reports.into_iter().unzip();
    let new = graph_store::agents::insert_reports(&mut tx, &rows).await?;
    for (i, new) in which.into_iter().zip(new) {
        outcomes[i].report_new = new;
    }
    tx.commit().await.map_err(|source| graph_store::Error::Sql { op: "committing results", source })?;
    Ok(outcomes)
}

/// The work of [`record`] inside the caller's transaction, for cycles of any probers.
/// With `hold`, an edge's next probe is at least that long after its newest result.
/// Returns what changed and the edges that have no health row.
async fn record_in(
    conn: &mut PgConnection,
    cycles: &[(&str, &CycleResult)],
    cfg: &RecordConfig,
    hold: Option<Duration>,
) -> graph_store::Result<(Recorded, HashSet<i64>)> {
    let mut ids: Vec<i64> = cycles.iter().map(|(_, c)| c.edge_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows: HashMap<i64, HealthRow> =
        store::lock_health(&mut *conn, &ids).await?.into_iter().map(|r| (r.edge_id, r)).collect();
    let mut state: HashMap<i64, (EdgeHealth, Option<&ProbeOutcome>, DateTime<Utc>)> = HashMap::new();
    let (mut results, mut events) = (Vec::new(), Vec::new());
    let mut out = Recorded::default();
    let mut unknown = HashSet::new();
    let mut ordered: Vec<&(&str, &CycleResult)> = cycles.iter().collect();
    ordered.sort_by_key(|(_, c)| (c.edge_id, c.at));
    for &&(prober, c) in &ordered {
        let Some(row) = rows.get(&c.edge_id) else {
            out.unknown_edges += 1;
            unknown.insert(c.edge_id);
            continue;
        };
        let entry = state.entry(c.edge_id).or_insert_with(|| (to_health(row), None, c.at));
        entry.2 = entry.2.max(c.at);
        if c.outcome.refused {
            continue;
        }
        let o = &c.outcome;
        let obs = cfg.thresholds.assess(o.sent, o.received, o.rtt_avg_ms);
        results.push(ResultRow {
            edge_id: c.edge_id,
            at: c.at,
            kind: c.kind,
            prober: prober.to_string(),
            sent: o.sent as i32,
            received: o.received as i32,
            rtt_min_ms: o.rtt_min_ms.map(|v| v as f32),
            rtt_avg_ms: o.rtt_avg_ms.map(|v| v as f32),
            rtt_max_ms: o.rtt_max_ms.map(|v| v as f32),
            rtt_sd_ms: o.rtt_stddev_ms.map(|v| v as f32),
            verdict: obs.verdict,
        });
        out.results += 1;
        // A cycle that sent nothing (no ICMP socket here, say) is kept as history but
        // says nothing about the network: the edge's health is left as it was.
        if o.sent == 0 || entry.0.last_result_at.is_some_and(|last| c.at < last) {
            continue;
        }
        events.extend(entry.0.observe(obs, c.at, &cfg.health).into_iter().map(|e| event_row(c.edge_id, e)));
        entry.1 = Some(o);
    }
    out.events = events.len();
    let health: Vec<(HealthRow, DateTime<Utc>)> = state
        .iter()
        .map(|(id, (h, outcome, last_at))| {
            let mut next = next_probe(*last_at, cfg);
            if let Some(hold) = hold.and_then(|h| chrono::Duration::from_std(h).ok()) {
                next = next.max(*last_at + hold);
            }
            (to_row(*id, h, *outcome, &rows[id]), next)
        })
        .collect();
    store::write_cycle(&mut *conn, &results, &health, &events).await?;
    Ok((out, unknown))
}

/// Marks edges with no result for `stale_after_intervals` intervals `stale`.
pub async fn mark_stale(pool: &PgPool, cfg: &RecordConfig) -> graph_store::Result<usize> {
    let now = Utc::now();
    let window = cfg.interval * cfg.health.stale_after_intervals;
    let before = now - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::hours(1));
    let silent = store::silent_since(pool, before).await?;
    if silent.is_empty() {
        return Ok(0);
    }
    let mut tx = pool.begin().await.map_err(|source| graph_store::Error::Sql { op: "marking stale edges", source })?;
    let ids: Vec<i64> = silent.iter().map(|r| r.edge_id).collect();
    // Rows a worker is recording now are about to have a result: skipped, never waited for.
    let locked = store::lock_health_free(&mut tx, &ids).await?;
    let (mut health, mut events) = (Vec::new(), Vec::new());
    for row in &locked {
        let mut h = to_health(row);
        if let Some(e) = h.check_stale(now, cfg.interval, &cfg.health) {
            events.push(event_row(row.edge_id, e));
            health.push((to_row(row.edge_id, &h, None, row), now));
        }
    }
    store::write_cycle(&mut tx, &[], &health, &events).await?;
    tx.commit().await.map_err(|source| graph_store::Error::Sql { op: "marking stale edges", source })?;
    Ok(events.len())
}
