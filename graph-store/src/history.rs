//! The graph as it was: nodes, edges and broken edges at a past time, and what changed
//! between two times (`graph … --at`, `graph diff`).
//!
//! Read from the `*_history` tables (migration 4), which triggers on the live tables keep:
//! a row was live at T when one of its periods `[valid_from, valid_to)` contains T. An
//! edge's state at T is the `to_state` of its last event at or before T (`unknown` before
//! its first). The destination node of an edge at T is the node that owned its address at
//! T. History starts with migration 4: before it, each row has one period from its
//! `first_seen` to its `retired_at`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::NodeView;
use crate::query::{BrokenEdge, ListOptions};
use crate::vocab::{EventState, HealthState};
use crate::PgPool;

/// An edge as it was at some time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EdgeAt {
    pub src: String,
    pub dst_ip: String,
    /// The node owning `dst_ip` at that time, if any.
    pub dst: Option<String>,
    pub services: Vec<String>,
    pub sources: Vec<String>,
    /// When edgewatch first learned of the edge.
    #[serde(serialize_with = "crate::time::serialize_utc")]
    pub first_seen: DateTime<Utc>,
    /// The state at that time: the `to` of the edge's last event by then (`flapping`
    /// while a flap was open).
    pub state: EventState,
    /// Since when the edge was in that state (null: never probed by then).
    #[serde(serialize_with = "crate::time::serialize_utc_opt")]
    pub state_since: Option<DateTime<Utc>>,
}

/// What changed between two times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Diff {
    #[serde(serialize_with = "crate::time::serialize_utc")]
    pub from: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::serialize_utc")]
    pub to: DateTime<Utc>,
    /// Live at `to`, not at `from`.
    pub nodes_appeared: Vec<NodeView>,
    /// Live at `from`, not at `to`.
    pub nodes_vanished: Vec<NodeView>,
    pub edges_appeared: Vec<EdgeAt>,
    pub edges_vanished: Vec<EdgeAt>,
    /// Live at both times, with another state, destination node or services.
    pub edges_changed: Vec<EdgeChange>,
}

/// One edge live at both ends of a diff whose state, destination or services differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EdgeChange {
    pub src: String,
    pub dst_ip: String,
    pub state_from: EventState,
    pub state_to: EventState,
    pub dst_from: Option<String>,
    pub dst_to: Option<String>,
    pub services_from: Vec<String>,
    pub services_to: Vec<String>,
}

/// "The period of history row `alias` contains $1", as SQL.
pub(crate) fn live_at(alias: &str) -> String {
    format!("({alias}.valid_from <= $1 AND ({alias}.valid_to IS NULL OR {alias}.valid_to > $1))")
}

/// Nodes live at `at`, with the addresses and services they had then. `include_retired`
/// makes no sense here and is ignored; `state` and `source` filter edges only.
#[tracing::instrument(skip(pool))]
pub async fn nodes_at(pool: &PgPool, at: DateTime<Utc>, opts: &ListOptions) -> Result<Vec<NodeView>> {
    type Row = (String, String, String, Option<String>, bool, Vec<String>, Vec<String>);
    let (a, p, h) = (live_at("a"), live_at("p"), live_at("h"));
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT n.name, h.host, h.dc, h.role, h.serving, \
                ARRAY(SELECT host(a.ip) FROM address_history a \
                      WHERE a.node_id = h.node_id AND {a} ORDER BY a.ip), \
                ARRAY(SELECT p.service FROM provider_history p \
                      WHERE p.node_id = h.node_id AND {p} ORDER BY p.service) \
         FROM node_history h JOIN nodes n ON n.id = h.node_id \
         WHERE {h} \
           AND ($2::text IS NULL OR h.dc = $2) AND ($3::text IS NULL OR h.role = $3) \
           AND ($4::text IS NULL OR h.host = $4) \
           AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM provider_history p \
                                            WHERE p.node_id = h.node_id AND p.service = $5 AND {p})) \
         ORDER BY n.name"
    ))
    .bind(at)
    .bind(&opts.dc)
    .bind(&opts.role)
    .bind(&opts.host)
    .bind(&opts.service)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("listing nodes as they were"))?;
    Ok(rows
        .into_iter()
        .map(|(name, host, dc, role, serving, ips, services)| NodeView {
            name,
            host,
            dc,
            role,
            ips,
            services,
            serving,
            retired: false,
        })
        .collect())
}

/// Edges live at `at`, with their state then; filtered like `graph edges` (by the
/// consumer's dc, role and host at that time).
#[tracing::instrument(skip(pool))]
pub async fn edges_at(pool: &PgPool, at: DateTime<Utc>, opts: &ListOptions) -> Result<Vec<EdgeAt>> {
    type Row =
        (String, String, Option<String>, Vec<String>, Vec<String>, DateTime<Utc>, EventState, Option<DateTime<Utc>>);
    let (eh, sh, ah) = (live_at("eh"), live_at("sh"), live_at("ah"));
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT s.name, host(e.dst_ip), d.name, \
                ARRAY(SELECT x FROM unnest(eh.services) AS x ORDER BY x), \
                ARRAY(SELECT x FROM unnest(eh.sources) AS x ORDER BY x), \
                e.first_seen, COALESCE(st.to_state, 'unknown'), st.at \
         FROM edge_history eh \
         JOIN edges e ON e.id = eh.edge_id \
         JOIN node_history sh ON sh.node_id = e.src_id AND {sh} \
         JOIN nodes s ON s.id = e.src_id \
         LEFT JOIN address_history ah ON ah.ip = e.dst_ip AND {ah} \
         LEFT JOIN nodes d ON d.id = ah.node_id \
         LEFT JOIN LATERAL (SELECT ev.to_state, ev.at FROM edge_events ev \
                            WHERE ev.edge_id = e.id AND ev.at <= $1 \
                            ORDER BY ev.at DESC, ev.id DESC LIMIT 1) st ON true \
         WHERE {eh} \
           AND ($2::text IS NULL OR sh.dc = $2) AND ($3::text IS NULL OR sh.role = $3) \
           AND ($4::text IS NULL OR sh.host = $4) AND ($5::text IS NULL OR $5 = ANY(eh.services)) \
           AND ($6::text IS NULL OR COALESCE(st.to_state, 'unknown') = $6) \
           AND ($7::text IS NULL OR $7 = ANY(eh.sources)) \
         ORDER BY s.name, e.dst_ip"
    ))
    .bind(at)
    .bind(&opts.dc)
    .bind(&opts.role)
    .bind(&opts.host)
    .bind(&opts.service)
    .bind(&opts.state)
    .bind(&opts.source)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("listing edges as they were"))?;
    Ok(rows
        .into_iter()
        .map(|(src, dst_ip, dst, services, sources, first_seen, state, state_since)| EdgeAt {
            src,
            dst_ip,
            dst,
            services,
            sources,
            first_seen,
            state,
            state_since,
        })
        .collect())
}

/// Edges `down` or `degraded` at `at`, ordered as `graph broken` orders them. The loss
/// figure is the live table's and is not kept: it is null here.
#[tracing::instrument(skip(pool))]
pub async fn broken_at(pool: &PgPool, at: DateTime<Utc>) -> Result<Vec<BrokenEdge>> {
    let mut all = edges_at(pool, at, &ListOptions::default()).await?;
    all.retain(|e| e.state.health_state().is_some_and(HealthState::is_broken));
    let mut failing = BTreeMap::<&str, i64>::new();
    for e in &all {
        *failing.entry(e.dst_ip.as_str()).or_default() += 1;
    }
    let dcs: BTreeMap<String, String> =
        nodes_at(pool, at, &ListOptions::default()).await?.into_iter().map(|n| (n.name, n.dc)).collect();
    let mut broken: Vec<BrokenEdge> = all
        .iter()
        .map(|e| BrokenEdge {
            src: e.src.clone(),
            src_dc: dcs.get(&e.src).cloned().unwrap_or_default(),
            dst_ip: e.dst_ip.clone(),
            dst: e.dst.clone(),
            services: e.services.clone(),
            state: e.state.health_state().unwrap_or_default(),
            since: e.state_since.unwrap_or(at),
            loss_pct: None,
            consumers_failing: failing[e.dst_ip.as_str()],
        })
        .collect();
    broken.sort_by(|a, b| {
        (a.since, -a.consumers_failing, &a.src, ip_key(&a.dst_ip)).cmp(&(
            b.since,
            -b.consumers_failing,
            &b.src,
            ip_key(&b.dst_ip),
        ))
    });
    Ok(broken)
}

/// Addresses in PostgreSQL's `inet` order (IPv4 before IPv6, numeric within).
fn ip_key(ip: &str) -> (u8, u128) {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => (4, u32::from(v4).into()),
        Ok(std::net::IpAddr::V6(v6)) => (6, u128::from(v6)),
        Err(_) => (0, 0),
    }
}

/// What appeared, vanished or changed between `from` and `to`.
#[tracing::instrument(skip(pool))]
pub async fn diff(pool: &PgPool, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Diff> {
    let all = ListOptions::default();
    let nodes_from = nodes_at(pool, from, &all).await?;
    let nodes_to = nodes_at(pool, to, &all).await?;
    let edges_from = edges_at(pool, from, &all).await?;
    let edges_to = edges_at(pool, to, &all).await?;
    Ok(compare(from, to, (&nodes_from, &edges_from), (&nodes_to, &edges_to)))
}

/// The [`Diff`] between two graphs already read ([`nodes_at`], [`edges_at`] at `from` and
/// at `to`), for callers that need those graphs too.
pub fn compare(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    (nodes_from, edges_from): (&[NodeView], &[EdgeAt]),
    (nodes_to, edges_to): (&[NodeView], &[EdgeAt]),
) -> Diff {
    let names_from: BTreeMap<&str, &NodeView> = nodes_from.iter().map(|n| (n.name.as_str(), n)).collect();
    let names_to: BTreeMap<&str, &NodeView> = nodes_to.iter().map(|n| (n.name.as_str(), n)).collect();
    let nodes_appeared = nodes_to.iter().filter(|n| !names_from.contains_key(n.name.as_str())).cloned().collect();
    let nodes_vanished = nodes_from.iter().filter(|n| !names_to.contains_key(n.name.as_str())).cloned().collect();

    let key = |e: &EdgeAt| (e.src.clone(), e.dst_ip.clone());
    let by_key_from: BTreeMap<_, &EdgeAt> = edges_from.iter().map(|e| (key(e), e)).collect();
    let by_key_to: BTreeMap<_, &EdgeAt> = edges_to.iter().map(|e| (key(e), e)).collect();
    let edges_appeared = edges_to.iter().filter(|e| !by_key_from.contains_key(&key(e))).cloned().collect();
    let edges_vanished = edges_from.iter().filter(|e| !by_key_to.contains_key(&key(e))).cloned().collect();
    let edges_changed = edges_from
        .iter()
        .filter_map(|a| {
            let b = by_key_to.get(&key(a))?;
            let same = a.state == b.state && a.dst == b.dst && a.services == b.services;
            (!same).then(|| EdgeChange {
                src: a.src.clone(),
                dst_ip: a.dst_ip.clone(),
                state_from: a.state,
                state_to: b.state,
                dst_from: a.dst.clone(),
                dst_to: b.dst.clone(),
                services_from: a.services.clone(),
                services_to: b.services.clone(),
            })
        })
        .collect();
    Diff { from, to, nodes_appeared, nodes_vanished, edges_appeared, edges_vanished, edges_changed }
}
