//! Where the fault most likely is: the broken edges grouped into incidents, each with a
//! kind, a culprit and its evidence (counts).
//!
//! An edge is *broken* when it is `down` and not flapping; it *reaches* when `up` or
//! `degraded`; `unknown`, `stale` and flapping edges count in no ratio. With `most` =
//! `[diagnosis] most_pct` (60) and `fine` = `fine_pct` (20), in this order, each broken
//! edge going to the first incident that explains it:
//!
//! 1. **dc-link** A<->B: at least `most` of the edges between data centers A and B are
//!    broken (and at least `min_edges`), while inside A and inside B at most `fine` are.
//! 2. **host-pair** X<->Y: the same for the edges between hosts X and Y, while X's and Y's
//!    edges with every other host are fine (the IPsec case).
//! 3. **host** H (two or more containers): every container on H is unreachable (`most` of
//!    its edges from consumers broken, and those consumers fine with everything else) or
//!    every container on H is cut off (`most` of its own edges broken, while others reach
//!    those targets fine).
//! 4. **node-unreachable** N: `most` of the edges to N broken, its failing consumers fine
//!    with everything else.
//! 5. **node-isolated** N: `most` of N's edges broken, while others reach those targets.
//! 6. **edge**: each broken edge nothing above explains.
//!
//! The last diagnosis is kept in the `diagnosis` table (see [`refresh`]): the Nagios check
//! reads one row instead of every edge.

mod algo;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};

pub use algo::{diagnose, BrokenRef, DiagnosisConfig, EdgeFact, Incident, IncidentKind, Name};

use crate::error::{Error, Result};
use crate::vocab::HealthState;
use crate::PgPool;

/// A diagnosis as stored and as the check reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub computed_at: DateTime<Utc>,
    pub live_edges: i64,
    pub incidents: Vec<Incident>,
    /// Every live edge not `up` or `unknown`: down, degraded, stale or flapping.
    pub trouble: Vec<EdgeFact>,
}

/// Every live edge with its consumer, destination node and state. Rows are read as they
/// arrive and every name is held once ([`Names`]): a million edges name 100,000 nodes.
#[tracing::instrument(skip(pool))]
pub async fn load_facts(pool: &PgPool) -> Result<Vec<EdgeFact>> {
    type Row = (
        String,
        String,
        String,
        Option<String>,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Vec<String>,
        HealthState,
        bool,
        DateTime<Utc>,
    );
    let mut rows = sqlx::query_as::<_, Row>(
        "SELECT s.name, s.host, s.dc, s.role, host(e.dst_ip), d.name, d.host, d.dc, e.services, \
                COALESCE(h.state, 'unknown'), COALESCE(h.flapping, false), COALESCE(h.since, e.first_seen) \
         FROM edges e JOIN nodes s ON s.id = e.src_id \
         LEFT JOIN edge_health h ON h.edge_id = e.id \
         LEFT JOIN addresses a ON a.ip = e.dst_ip AND a.retired_at IS NULL \
         LEFT JOIN nodes d ON d.id = a.node_id AND d.retired_at IS NULL \
         WHERE e.retired_at IS NULL",
    )
    .fetch(pool);
    let mut names = Names::default();
    let mut facts = Vec::new();
    while let Some(row) = rows.try_next().await.map_err(Error::sql("loading edges for the diagnosis"))? {
        let (src, src_host, src_dc, src_role, dst_ip, dst, dst_host, dst_dc, services, state, flapping, since) = row;
        facts.push(EdgeFact {
            src: names.one(src),
            src_host: names.one(src_host),
            src_dc: names.one(src_dc),
            src_role: src_role.map(|r| names.one(r)),
            dst_ip: names.one(dst_ip),
            dst: dst.map(|d| names.one(d)),
            dst_host: dst_host.map(|h| names.one(h)),
            dst_dc: dst_dc.map(|d| names.one(d)),
            services: names.list(services),
            state,
            flapping,
            since,
        });
    }
    Ok(facts)
}

/// Each name (and each list of service names) once, shared by every edge that has it.
#[derive(Default)]
struct Names {
    one: HashSet<Name>,
    lists: HashSet<Arc<[Name]>>,
}

impl Names {
    fn one(&mut self, name: String) -> Name {
        if let Some(held) = self.one.get(name.as_str()) {
            return held.clone();
        }
        let held: Name = name.into();
        self.one.insert(held.clone());
        held
    }

    fn list(&mut self, names: Vec<String>) -> Arc<[Name]> {
        let list: Arc<[Name]> = names.into_iter().map(|n| self.one(n)).collect();
        if let Some(held) = self.lists.get(&list) {
            return held.clone();
        }
        self.lists.insert(list.clone());
        list
    }
}

/// Diagnoses the live graph now.
pub async fn compute(pool: &PgPool, cfg: &DiagnosisConfig) -> Result<Diagnosis> {
    let computed_at = Utc::now();
    let facts = load_facts(pool).await?;
    // Seconds of CPU at a million edges: on a thread of its own, not the async workers
    // that answer requests (a server on 2 cores has 2 of them).
    let cfg = *cfg;
    let (facts, mut incidents) = tokio::task::spawn_blocking(move || {
        let incidents = diagnose(&facts, &cfg);
        (facts, incidents)
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    attach_path_evidence(pool, &mut incidents).await?;
    let live_edges = i64::try_from(facts.len()).unwrap_or(i64::MAX);
    let trouble = facts
        .into_iter()
        .filter(|e| !matches!(e.state, HealthState::Up | HealthState::Unknown) || e.flapping)
        .collect();
    Ok(Diagnosis { computed_at, live_edges, incidents, trouble })
}

/// Path evidence kept per incident, at most.
const PATHS_PER_INCIDENT: usize = 5;

/// A route change this long before an incident began still counts as its evidence.
const PATH_LOOKBACK: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Gives each incident what the traces of its host pairs say (see `paths::evidence`).
async fn attach_path_evidence(pool: &PgPool, incidents: &mut [Incident]) -> Result<()> {
    let refs: Vec<crate::paths::EvidenceRef> = incidents
        .iter()
        .enumerate()
        .flat_map(|(i, inc)| {
            inc.edges.iter().map(move |e| crate::paths::EvidenceRef {
                incident: i,
                src_node: e.src.clone(),
                dst_ip: e.dst_ip.clone(),
                since: inc.since,
            })
        })
        .collect();
    for (i, evidence) in crate::paths::evidence(pool, &refs, PATH_LOOKBACK).await? {
        if let Some(inc) = incidents.get_mut(i).filter(|inc| inc.paths.len() < PATHS_PER_INCIDENT) {
            inc.paths.push(evidence);
        }
    }
    Ok(())
}

/// Computes the diagnosis and stores it as the last one.
#[tracing::instrument(skip(pool))]
pub async fn refresh(pool: &PgPool, cfg: &DiagnosisConfig) -> Result<Diagnosis> {
    let diagnosis = compute(pool, cfg).await?;
    // Sent as text and kept as written (a `json` column): reading it back is then a copy.
    let payload = serde_json::to_string(&diagnosis).map_err(|e| Error::Encode { what: "the diagnosis", source: e })?;
    sqlx::query(
        "INSERT INTO diagnosis (id, computed_at, live_edges, payload) VALUES (true, $1, $2, $3::text::json) \
         ON CONFLICT (id) DO UPDATE SET computed_at = EXCLUDED.computed_at, live_edges = EXCLUDED.live_edges, \
             payload = EXCLUDED.payload \
         WHERE diagnosis.computed_at < EXCLUDED.computed_at",
    )
    .bind(diagnosis.computed_at)
    .bind(diagnosis.live_edges)
    .bind(payload)
    .execute(pool)
    .await
    .map_err(Error::sql("storing the diagnosis"))?;
    log_incidents(pool, &diagnosis).await?;
    Ok(diagnosis)
}

/// Keeps the incident log (for the daily report): each incident, known by its kind,
/// culprit and `since`, with the last time it was seen open.
async fn log_incidents(pool: &PgPool, d: &Diagnosis) -> Result<()> {
    let i = &d.incidents;
    sqlx::query(
        "INSERT INTO incident_log AS l (kind, culprit, since, last_seen, edges, evidence) \
         SELECT t.kind, t.culprit, t.since, $4, t.edges, t.evidence \
         FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $5::int[], $6::text[]) \
              AS t(kind, culprit, since, edges, evidence) \
         ON CONFLICT (kind, (md5(culprit)), since) DO UPDATE \
         SET last_seen = greatest(l.last_seen, EXCLUDED.last_seen), edges = greatest(l.edges, EXCLUDED.edges), \
             evidence = EXCLUDED.evidence",
    )
    .bind(i.iter().map(|x| x.kind.as_str()).collect::<Vec<_>>())
    .bind(i.iter().map(|x| x.culprit.as_str()).collect::<Vec<_>>())
    .bind(i.iter().map(|x| x.since).collect::<Vec<_>>())
    .bind(d.computed_at)
    .bind(i.iter().map(|x| i32::try_from(x.edges.len()).unwrap_or(i32::MAX)).collect::<Vec<_>>())
    .bind(i.iter().map(|x| x.evidence.as_str()).collect::<Vec<_>>())
    .execute(pool)
    .await
    .map_err(Error::sql("logging incidents"))?;
    Ok(())
}

/// The last stored diagnosis, if any.
pub async fn stored(pool: &PgPool) -> Result<Option<Diagnosis>> {
    // As text, parsed straight into the structs (no JSON tree in between).
    let payload: Option<String> = sqlx::query_scalar("SELECT payload::text FROM diagnosis")
        .fetch_optional(pool)
        .await
        .map_err(Error::sql("reading the stored diagnosis"))?;
    payload
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|e| Error::Encode { what: "the stored diagnosis", source: e })
}

/// The stored diagnosis when it is at most `max_age` old, else a fresh one (stored).
pub async fn current(pool: &PgPool, cfg: &DiagnosisConfig, max_age: std::time::Duration) -> Result<Diagnosis> {
    if let Some(d) = stored(pool).await? {
        let age = (Utc::now() - d.computed_at).to_std().unwrap_or_default();
        if age <= max_age {
            return Ok(d);
        }
    }
    refresh(pool, cfg).await
}

/// Whether a diagnosis saw exactly these broken (down or degraded) edges.
pub fn saw_exactly(d: &Diagnosis, broken: &[crate::query::BrokenEdge]) -> bool {
    let now: std::collections::HashSet<(&str, &str)> =
        broken.iter().map(|b| (b.src.as_str(), b.dst_ip.as_str())).collect();
    let seen: std::collections::HashSet<(&str, &str)> =
        d.trouble.iter().filter(|e| e.state.is_broken()).map(|e| (&*e.src, &*e.dst_ip)).collect();
    seen == now
}

/// The stored diagnosis while a `serve` leader keeps it fresh (someone holds its lease,
/// so it is made again every interval, with the path evidence of the traces) and it is
/// still the graph's: made at most `max_age` ago over exactly the edges broken now. Without
/// a leader: none (nobody would make it again). Reads side by side; at a million edges a
/// fraction of what a new diagnosis costs.
pub async fn stored_if_current(pool: &PgPool, max_age: std::time::Duration) -> Result<Option<Diagnosis>> {
    if !crate::lease::held(pool, crate::lease::SERVE).await? {
        return Ok(None);
    }
    let (stored, broken) = tokio::try_join!(stored(pool), crate::query::broken(pool))?;
    Ok(stored
        .filter(|d| (Utc::now() - d.computed_at).to_std().unwrap_or_default() <= max_age && saw_exactly(d, &broken)))
}

/// Like [`current`] on a server that takes no writes (a standby): the stored diagnosis
/// when it is at most `max_age` old, else one computed now and not stored.
pub async fn current_read_only(
    pool: &PgPool,
    cfg: &DiagnosisConfig,
    max_age: std::time::Duration,
) -> Result<Diagnosis> {
    if let Some(d) = stored(pool).await? {
        let age = (Utc::now() - d.computed_at).to_std().unwrap_or_default();
        if age <= max_age {
            return Ok(d);
        }
    }
    compute(pool, cfg).await
}

/// When the newest probe result was taken (none: never).
pub async fn last_result_at(pool: &PgPool) -> Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar("SELECT max(last_at) FROM probe_counters")
        .fetch_one(pool)
        .await
        .map_err(Error::sql("reading the newest probe result's time"))
}

/// The hosts whose last passive result for `service` was not OK.
pub async fn passive_problems(pool: &PgPool, service: &str) -> Result<Vec<String>> {
    sqlx::query_scalar("SELECT host FROM nagios_passive WHERE md5(service) = md5($1) AND service = $1 AND code <> 0")
        .bind(service)
        .fetch_all(pool)
        .await
        .map_err(Error::sql("reading the last passive results"))
}

/// Remembers what was sent: (host, code, output) for `service`.
pub async fn record_passive(pool: &PgPool, service: &str, sent: &[(String, i32, String)]) -> Result<()> {
    sqlx::query(
        "INSERT INTO nagios_passive AS p (host, service, code, output, sent_at) \
         SELECT t.host, $1, t.code, t.output, now() FROM UNNEST($2::text[], $3::int[], $4::text[]) AS t(host, code, output) \
         ON CONFLICT ((md5(host)), (md5(service))) DO UPDATE \
         SET code = EXCLUDED.code, output = EXCLUDED.output, sent_at = EXCLUDED.sent_at",
    )
    .bind(service)
    .bind(sent.iter().map(|s| s.0.as_str()).collect::<Vec<_>>())
    .bind(sent.iter().map(|s| s.1).collect::<Vec<_>>())
    .bind(sent.iter().map(|s| s.2.as_str()).collect::<Vec<_>>())
    .execute(pool)
    .await
    .map_err(Error::sql("recording the passive results sent"))?;
    Ok(())
}
