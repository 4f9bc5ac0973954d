//! Topology questions (`deps`, `dependents`, `blast`, `spof`, `path`) on a petgraph
//! snapshot of the live graph, loaded from PostgreSQL in three bulk queries (never one
//! per node); the algorithms are pure functions in [`algo`].
//!
//! Semantics:
//! - **Nodes**: live nodes only, each with its host and data center.
//! - **Dependency**: consumer node → destination node, where the destination is the live
//!   node owning the edge's `dst_ip` now. Live edges only; edges whose destination address
//!   belongs to no live node are ignored, and so are edges to the consumer itself. All
//!   edges from one node to the addresses of another make one dependency, carrying the
//!   union of their services, and marked *linked* when any of them came from a published
//!   link (`cmdb`/`config` source) or carries no service.
//! - **`deps N --depth D`**: the nodes N's dependencies go to (D = 1), or everything
//!   reachable along dependencies in at most D hops; each with its hop count and the node
//!   it was first reached from (breadth first). **`dependents`**: the same, reversed.
//! - **What a consumer uses**: for each service S on its dependencies, the set of nodes it
//!   has dependencies for S to (from DNS, the tier of providers it was given). A linked
//!   dependency on a node D counts as using every service D provides, through D (nginx
//!   upstreams are the providers of the service they serve); a linked dependency on a
//!   node that provides no service is a use of that node itself.
//! - **`blast X`**: X is a node name, else a host name, else a data center name. Remove
//!   every node in X. A consumer outside X *loses* a use when every node it uses for it
//!   is in X. The answer is the consumers that lose something, with what they lose
//!   (`service`, or null for a link to a service-less node) and the providers gone.
//! - **`spof`**: every node and every host whose removal alone makes some consumer lose
//!   something, i.e. whose `blast` is not empty, with the same consumers and losses.
//! - **`path A B`**: the shortest dependency chain A → … → B (breadth first), if any.

mod algo;
pub mod packed;

use std::collections::HashMap;

use chrono::{DateTime, Utc};

pub use algo::{
    Blast, Dep, EdgeRow, Hop, Loser, Lost, NodeRow, Parts, Reached, Snapshot, Spof, TargetKind, UseRow, NO_SERVICE,
};

use crate::error::{Error, Result};
use crate::{PgConnection, PgPool};

/// The answer to `deps` / `dependents`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ReachedAnswer {
    pub node: String,
    /// `deps` or `dependents`.
    pub direction: String,
    /// Hops followed; null: no limit.
    pub depth: Option<usize>,
    pub nodes: Vec<Reached>,
}

/// The answer to `path`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct PathAnswer {
    pub from: String,
    pub to: String,
    /// Whether there is a dependency chain from `from` to `to`.
    pub found: bool,
    /// The chain, first hop first; empty when none.
    pub hops: Vec<Hop>,
}

/// Loads the live graph as one consistent snapshot (a repeatable-read, read-only
/// transaction around three bulk queries, by number: no name is sent per edge).
#[tracing::instrument(skip(pool))]
pub async fn load(pool: &PgPool) -> Result<Snapshot> {
    let mut tx = pool.begin().await.map_err(Error::sql("starting the topology snapshot"))?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(Error::sql("starting the topology snapshot"))?;
    let parts = live_parts(&mut tx).await?;
    tx.commit().await.map_err(Error::sql("ending the topology snapshot"))?;
    let snapshot = build(parts).await;
    tracing::debug!(nodes = snapshot.node_count(), deps = snapshot.edge_count(), "topology snapshot loaded");
    Ok(snapshot)
}

/// Builds a snapshot off the async threads (a second of CPU at a million edges).
pub(crate) async fn build(parts: Parts) -> Snapshot {
    match tokio::task::spawn_blocking(move || Snapshot::from_parts(parts)).await {
        Ok(snapshot) => snapshot,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Loads the graph as it was at `at` (see [`crate::history`]), or the live graph.
#[tracing::instrument(skip(pool))]
pub async fn load_at(pool: &PgPool, at: Option<DateTime<Utc>>) -> Result<Snapshot> {
    let Some(at) = at else {
        return load(pool).await;
    };
    let mut tx = pool.begin().await.map_err(Error::sql("starting the topology snapshot"))?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(Error::sql("starting the topology snapshot"))?;
    let live = crate::history::live_at;
    let (live_h, live_eh, live_a, live_p) = (live("h"), live("eh"), live("a"), live("p"));
    let nodes: Vec<(String, String, String)> = sqlx::query_as(&format!(
        "SELECT n.name, h.host, h.dc FROM node_history h JOIN nodes n ON n.id = h.node_id \
         WHERE {live_h} ORDER BY n.name"
    ))
    .bind(at)
    .fetch_all(&mut *tx)
    .await
    .map_err(Error::sql("loading past nodes for the topology"))?;
    let edges: Vec<(String, String, Vec<String>, Vec<String>)> = sqlx::query_as(&format!(
        "WITH n AS (SELECT h.node_id, x.name FROM node_history h JOIN nodes x ON x.id = h.node_id WHERE {live_h}) \
         SELECT s.name, d.name, eh.services, eh.sources \
         FROM edge_history eh \
         JOIN edges e ON e.id = eh.edge_id \
         JOIN n s ON s.node_id = e.src_id \
         JOIN address_history a ON a.ip = e.dst_ip AND {live_a} \
         JOIN n d ON d.node_id = a.node_id \
         WHERE {live_eh} \
         ORDER BY s.name, d.name, e.dst_ip"
    ))
    .bind(at)
    .fetch_all(&mut *tx)
    .await
    .map_err(Error::sql("loading past edges for the topology"))?;
    let providers: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT p.service, n.name FROM provider_history p \
         JOIN node_history h ON h.node_id = p.node_id AND {live_h} \
         JOIN nodes n ON n.id = p.node_id \
         WHERE {live_p} ORDER BY p.service, n.name"
    ))
    .bind(at)
    .fetch_all(&mut *tx)
    .await
    .map_err(Error::sql("loading past service providers for the topology"))?;
    tx.commit().await.map_err(Error::sql("ending the topology snapshot"))?;
    let nodes = nodes
        .into_iter()
        .map(|(name, host, dc)| NodeRow { name: name.into(), host: host.into(), dc: dc.into() })
        .collect();
    let edges =
        edges.into_iter().map(|(src, dst, services, sources)| EdgeRow { src, dst, services, sources }).collect();
    let snapshot = tokio::task::spawn_blocking(move || Snapshot::new(nodes, edges, providers)).await;
    Ok(snapshot.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())))
}

/// The live graph by number: every live node; a row per (live edge, service) with the
/// node holding the edge's address now (edges to an address of no live node, or from a
/// retired node, are dropped by [`Snapshot::from_parts`]); who provides what. Rows are
/// read as they stream in, never all held as rows.
pub async fn live_parts(conn: &mut PgConnection) -> Result<Parts> {
    use futures_util::TryStreamExt;
    use sqlx::FromRow;

    let mut parts = Parts::default();
    let mut position: HashMap<i64, u32> = HashMap::new();
    {
        let mut rows = sqlx::query("SELECT id, name, host, dc FROM nodes WHERE retired_at IS NULL").fetch(&mut *conn);
        while let Some(row) = rows.try_next().await.map_err(Error::sql("loading live nodes for the topology"))? {
            let (id, name, host, dc): (i64, &str, &str, &str) =
                FromRow::from_row(&row).map_err(Error::sql("reading live nodes for the topology"))?;
            position.insert(id, parts.nodes.len() as u32);
            parts.nodes.push(NodeRow { name: name.into(), host: host.into(), dc: dc.into() });
        }
    }
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut service_id = |name: &str, services: &mut Vec<String>| -> u32 {
        if let Some(&id) = ids.get(name) {
            return id;
        }
        services.push(name.to_string());
        let id = (services.len() - 1) as u32;
        ids.insert(name.to_string(), id);
        id
    };
    {
        let mut rows = sqlx::query(
            "SELECT e.src_id, a.node_id, s.service, \
                    cardinality(e.services) = 0 OR NOT e.sources <@ ARRAY['dns'] AS linked \
             FROM edges e \
             JOIN addresses a ON a.ip = e.dst_ip AND a.retired_at IS NULL \
             LEFT JOIN LATERAL unnest(e.services) AS s(service) ON true \
             WHERE e.retired_at IS NULL",
        )
        .fetch(&mut *conn);
        while let Some(row) = rows.try_next().await.map_err(Error::sql("loading live edges for the topology"))? {
            let (src, dst, service, linked): (i64, i64, Option<&str>, bool) =
                FromRow::from_row(&row).map_err(Error::sql("reading live edges for the topology"))?;
            let (Some(&src), Some(&dst)) = (position.get(&src), position.get(&dst)) else { continue };
            let service = service.map_or(NO_SERVICE, |name| service_id(name, &mut parts.services));
            parts.uses.push(UseRow { src, dst, service, linked });
        }
    }
    {
        let mut rows = sqlx::query("SELECT node_id, service FROM service_providers").fetch(&mut *conn);
        while let Some(row) = rows.try_next().await.map_err(Error::sql("loading service providers for the topology"))? {
            let (node, service): (i64, &str) =
                FromRow::from_row(&row).map_err(Error::sql("reading service providers for the topology"))?;
            if let Some(&node) = position.get(&node) {
                parts.provides.push((node, service_id(service, &mut parts.services)));
            }
        }
    }
    Ok(parts)
}

/// A number that moves whenever the live topology may have changed: the sum of the
/// changed-row counters of the four history tables, which a trigger writes on every change
/// of a node, an address, an edge's services, sources or life, or a provider. Aborted
/// writes and a reset of the counters move it too (a needless rebuild, never a missed
/// one). PostgreSQL publishes a session's counters when it commits, at most a second late
/// (a minute on a very busy session). `None` when the counters are off (`track_counts`).
pub async fn signature(conn: &mut PgConnection) -> Result<Option<i64>> {
    sqlx::query_scalar(SIGNATURE).fetch_one(conn).await.map_err(Error::sql("reading the topology's change counters"))
}

/// [`signature`] on a connection of the pool.
pub async fn current_signature(pool: &PgPool) -> Result<Option<i64>> {
    sqlx::query_scalar(SIGNATURE).fetch_one(pool).await.map_err(Error::sql("reading the topology's change counters"))
}

const SIGNATURE: &str = "SELECT CASE WHEN current_setting('track_counts')::boolean THEN \
     (SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint FROM pg_stat_user_tables \
      WHERE relid IN ('node_history'::regclass, 'edge_history'::regclass, \
                      'address_history'::regclass, 'provider_history'::regclass)) END";

/// What [`refresh_packed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refreshed {
    /// The stored snapshot still matches the graph.
    Unchanged,
    /// A new one was built and stored: its nodes, dependencies and size in bytes.
    Built { nodes: usize, deps: usize, bytes: usize },
}

/// Keeps `topology_packed` in step with the graph (`serve`'s leader, every interval): when
/// the [`signature`] moved since it was built, or there is none, loads the graph and stores
/// it packed; else notes that it was checked. The signature is read before the load, so a
/// change during the load is caught by the next call.
pub async fn refresh_packed(pool: &PgPool) -> Result<Refreshed> {
    let mut tx = pool.begin().await.map_err(Error::sql("checking the packed topology"))?;
    let now = signature(&mut tx).await?;
    let stored: Option<Option<i64>> = sqlx::query_scalar("SELECT signature FROM topology_packed")
        .fetch_optional(&mut *tx)
        .await
        .map_err(Error::sql("checking the packed topology"))?;
    if now.is_some() && stored == Some(now) {
        sqlx::query("UPDATE topology_packed SET checked_at = now()")
            .execute(&mut *tx)
            .await
            .map_err(Error::sql("noting the packed topology as checked"))?;
        tx.commit().await.map_err(Error::sql("noting the packed topology as checked"))?;
        return Ok(Refreshed::Unchanged);
    }
    tx.commit().await.map_err(Error::sql("checking the packed topology"))?;
    let built_at = chrono::Utc::now();
    let snapshot = load(pool).await?;
    let (nodes, deps) = (snapshot.node_count(), snapshot.edge_count());
    let data = tokio::task::spawn_blocking(move || packed::pack(&snapshot.to_parts()))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    sqlx::query(
        "INSERT INTO topology_packed (id, built_at, checked_at, signature, nodes, deps, data) \
         VALUES (true, $1, now(), $2, $3, $4, $5) \
         ON CONFLICT (id) DO UPDATE SET built_at = EXCLUDED.built_at, checked_at = EXCLUDED.checked_at, \
           signature = EXCLUDED.signature, nodes = EXCLUDED.nodes, deps = EXCLUDED.deps, data = EXCLUDED.data",
    )
    .bind(built_at)
    .bind(now)
    .bind(i32::try_from(nodes).unwrap_or(i32::MAX))
    .bind(i32::try_from(deps).unwrap_or(i32::MAX))
    .bind(&data)
    .execute(pool)
    .await
    .map_err(Error::sql("storing the packed topology"))?;
    Ok(Refreshed::Built { nodes, deps, bytes: data.len() })
}

/// How long a standby trusts the packed topology after the leader last checked it (a
/// standby cannot read the primary's change counters).
pub const STANDBY_PACKED_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// Where a snapshot came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `topology_packed`, built at this time and still matching the graph.
    Packed(DateTime<Utc>),
    /// Loaded from the tables now.
    Tables,
}

/// `topology_packed`'s built and checked times, stored signature, and the signature now.
type PackedRow = (DateTime<Utc>, DateTime<Utc>, Option<i64>, Option<i64>);

/// The live graph, from `topology_packed` when that still matches it (on a primary: the
/// [`signature`] has not moved since it was built; on a standby, `on_standby`: the leader
/// checked it at most [`STANDBY_PACKED_MAX_AGE`] ago), else [`load`]ed from the tables.
pub async fn load_fast(pool: &PgPool, on_standby: bool) -> Result<(Snapshot, Source)> {
    let mut tx = pool.begin().await.map_err(Error::sql("reading the packed topology"))?;
    let row: Option<PackedRow> =
        sqlx::query_as(&format!("SELECT built_at, checked_at, signature, ({SIGNATURE}) FROM topology_packed"))
            .fetch_optional(&mut *tx)
            .await
            .map_err(Error::sql("reading the packed topology"))?;
    let usable = row.is_some_and(|(_, checked_at, stored, now)| {
        if on_standby {
            (Utc::now() - checked_at).to_std().unwrap_or_default() <= STANDBY_PACKED_MAX_AGE
        } else {
            now.is_some() && stored == now
        }
    });
    if let (true, Some((built_at, ..))) = (usable, row) {
        let data: Vec<u8> = sqlx::query_scalar("SELECT data FROM topology_packed")
            .fetch_one(&mut *tx)
            .await
            .map_err(Error::sql("reading the packed topology"))?;
        tx.commit().await.map_err(Error::sql("reading the packed topology"))?;
        match tokio::task::spawn_blocking(move || packed::unpack(&data).map(Snapshot::from_parts)).await {
            Ok(Ok(snapshot)) => return Ok((snapshot, Source::Packed(built_at))),
            Ok(Err(e)) => tracing::warn!("{e}; loading the topology from the tables"),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    } else {
        tx.commit().await.map_err(Error::sql("reading the packed topology"))?;
    }
    Ok((load(pool).await?, Source::Tables))
}
