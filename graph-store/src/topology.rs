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

use chrono::{DateTime, Utc};

pub use algo::{Blast, Dep, EdgeRow, Hop, Loser, Lost, NodeRow, Reached, Snapshot, Spof, TargetKind};

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
/// transaction around the three bulk queries).
#[tracing::instrument(skip(pool))]
pub async fn load(pool: &PgPool) -> Result<Snapshot> {
    let mut tx = pool.begin().await.map_err(Error::sql("starting the topology snapshot"))?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(Error::sql("starting the topology snapshot"))?;
    let nodes = live_nodes(&mut tx).await?;
    let edges = live_edges(&mut tx).await?;
    let providers = service_providers(&mut tx).await?;
    tx.commit().await.map_err(Error::sql("ending the topology snapshot"))?;
    let snapshot = Snapshot::new(nodes, edges, providers);
    tracing::debug!(nodes = snapshot.node_count(), deps = snapshot.edge_count(), "topology snapshot loaded");
    Ok(snapshot)
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
    Ok(Snapshot::new(nodes, edges, providers))
}

/// Every live node with its host and data center.
pub async fn live_nodes(conn: &mut PgConnection) -> Result<Vec<NodeRow>> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT name, host, dc FROM nodes WHERE retired_at IS NULL ORDER BY name")
            .fetch_all(conn)
            .await
            .map_err(Error::sql("loading live nodes for the topology"))?;
    Ok(rows
        .into_iter()
        .map(|(name, host, dc)| NodeRow { name: name.into(), host: host.into(), dc: dc.into() })
        .collect())
}

/// Every live edge between two live nodes (the destination: the live owner of `dst_ip`).
pub async fn live_edges(conn: &mut PgConnection) -> Result<Vec<EdgeRow>> {
    let rows: Vec<(String, String, Vec<String>, Vec<String>)> = sqlx::query_as(
        "SELECT s.name, d.name, e.services, e.sources \
         FROM edges e \
         JOIN nodes s ON s.id = e.src_id AND s.retired_at IS NULL \
         JOIN addresses a ON a.ip = e.dst_ip AND a.retired_at IS NULL \
         JOIN nodes d ON d.id = a.node_id AND d.retired_at IS NULL \
         WHERE e.retired_at IS NULL \
         ORDER BY s.name, d.name, e.dst_ip",
    )
    .fetch_all(conn)
    .await
    .map_err(Error::sql("loading live edges for the topology"))?;
    Ok(rows.into_iter().map(|(src, dst, services, sources)| EdgeRow { src, dst, services, sources }).collect())
}

/// (service, node) for every live node providing a service.
pub async fn service_providers(conn: &mut PgConnection) -> Result<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT sp.service, n.name FROM service_providers sp \
         JOIN nodes n ON n.id = sp.node_id AND n.retired_at IS NULL \
         ORDER BY sp.service, n.name",
    )
    .fetch_all(conn)
    .await
    .map_err(Error::sql("loading service providers for the topology"))
}
