//! Reading the graph back: the node and edge lists behind `graph nodes|edges`.

use crate::error::{Error, Result};
use crate::model::{EdgeView, NodeView};
use crate::vocab::HealthState;
use crate::PgPool;

/// Which rows to list.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Include retired nodes and edges.
    pub include_retired: bool,
    /// Of the node (of the consumer, for edges).
    pub dc: Option<String>,
    pub role: Option<String>,
    pub host: Option<String>,
    /// Nodes providing it; edges learned for it.
    pub service: Option<String>,
    /// Edges only.
    pub state: Option<String>,
    /// Edges only.
    pub source: Option<String>,
}

type NodeRow = (String, String, String, Option<String>, bool, bool, Vec<String>, Vec<String>);

#[tracing::instrument(skip(pool))]
pub async fn nodes(pool: &PgPool, opts: ListOptions) -> Result<Vec<NodeView>> {
    let rows: Vec<NodeRow> = sqlx::query_as(
        "SELECT n.name, n.host, n.dc, n.role, n.serving, n.retired_at IS NOT NULL, \
                    ARRAY(SELECT host(a.ip) FROM addresses a \
                          WHERE a.node_id = n.id \
                            AND (a.retired_at IS NULL OR n.retired_at IS NOT NULL) \
                          ORDER BY a.ip), \
                    ARRAY(SELECT sp.service FROM service_providers sp \
                          WHERE sp.node_id = n.id ORDER BY sp.service) \
             FROM nodes n WHERE ($1 OR n.retired_at IS NULL) \
               AND ($2::text IS NULL OR n.dc = $2) AND ($3::text IS NULL OR n.role = $3) \
               AND ($4::text IS NULL OR n.host = $4) \
               AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM service_providers sp \
                                                WHERE sp.node_id = n.id AND sp.service = $5)) \
             ORDER BY n.name",
    )
    .bind(opts.include_retired)
    .bind(&opts.dc)
    .bind(&opts.role)
    .bind(&opts.host)
    .bind(&opts.service)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("listing nodes"))?;
    Ok(rows
        .into_iter()
        .map(|(name, host, dc, role, serving, retired, ips, services)| NodeView {
            name,
            host,
            dc,
            role,
            ips,
            services,
            serving,
            retired,
        })
        .collect())
}

#[tracing::instrument(skip(pool))]
pub async fn edges(pool: &PgPool, opts: ListOptions) -> Result<Vec<EdgeView>> {
    type Row = (
        String,
        String,
        Option<String>,
        Vec<String>,
        Vec<String>,
        i64,
        chrono::DateTime<chrono::Utc>,
        chrono::DateTime<chrono::Utc>,
        HealthState,
        bool,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT s.name, host(e.dst_ip), d.name, \
                ARRAY(SELECT x FROM unnest(e.services) AS x ORDER BY x), \
                ARRAY(SELECT x FROM unnest(e.sources) AS x ORDER BY x), \
                e.queries, e.first_seen, e.last_seen, COALESCE(h.state, 'unknown'), \
                e.retired_at IS NOT NULL \
         FROM edges e \
         JOIN nodes s ON s.id = e.src_id \
         LEFT JOIN addresses a ON a.ip = e.dst_ip AND a.retired_at IS NULL \
         LEFT JOIN nodes d ON d.id = a.node_id \
         LEFT JOIN edge_health h ON h.edge_id = e.id \
         WHERE ($1 OR e.retired_at IS NULL) \
           AND ($2::text IS NULL OR s.dc = $2) AND ($3::text IS NULL OR s.role = $3) \
           AND ($4::text IS NULL OR s.host = $4) AND ($5::text IS NULL OR $5 = ANY(e.services)) \
           AND ($6::text IS NULL OR COALESCE(h.state, 'unknown') = $6) \
           AND ($7::text IS NULL OR $7 = ANY(e.sources)) \
         ORDER BY s.name, e.dst_ip",
    )
    .bind(opts.include_retired)
    .bind(&opts.dc)
    .bind(&opts.role)
    .bind(&opts.host)
    .bind(&opts.service)
    .bind(&opts.state)
    .bind(&opts.source)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("listing edges"))?;
    Ok(rows
        .into_iter()
        .map(|(src, dst_ip, dst, services, sources, queries, first_seen, last_seen, state, retired)| EdgeView {
            src,
            dst_ip,
            dst,
            services,
            sources,
            queries,
            first_seen,
            last_seen,
            state,
            retired,
        })
        .collect())
}

/// A broken edge, as `graph broken` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct BrokenEdge {
    pub src: String,
    pub src_dc: String,
    pub dst_ip: String,
    pub dst: Option<String>,
    pub services: Vec<String>,
    pub state: HealthState,
    #[serde(serialize_with = "crate::time::serialize_utc")]
    pub since: chrono::DateTime<chrono::Utc>,
    pub loss_pct: Option<f32>,
    /// How many consumers fail to reach this destination now.
    pub consumers_failing: i64,
}

/// Edges `down` or `degraded` now: longest broken first, then the destinations most
/// consumers fail to reach.
#[tracing::instrument(skip(pool))]
pub async fn broken(pool: &PgPool) -> Result<Vec<BrokenEdge>> {
    type Row = (
        String,
        String,
        String,
        Option<String>,
        Vec<String>,
        HealthState,
        chrono::DateTime<chrono::Utc>,
        Option<f32>,
        i64,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT s.name, s.dc, host(e.dst_ip), d.name, ARRAY(SELECT x FROM unnest(e.services) AS x ORDER BY x), \
                h.state, h.since, h.loss_pct, \
                count(*) OVER (PARTITION BY e.dst_ip) \
         FROM edges e JOIN nodes s ON s.id = e.src_id JOIN edge_health h ON h.edge_id = e.id \
         LEFT JOIN addresses a ON a.ip = e.dst_ip AND a.retired_at IS NULL \
         LEFT JOIN nodes d ON d.id = a.node_id \
         WHERE e.retired_at IS NULL AND h.state IN ('down', 'degraded') \
         ORDER BY h.since, 9 DESC, s.name, e.dst_ip",
    )
    .fetch_all(pool)
    .await
    .map_err(Error::sql("listing broken edges"))?;
    Ok(rows
        .into_iter()
        .map(|(src, src_dc, dst_ip, dst, services, state, since, loss_pct, consumers_failing)| BrokenEdge {
            src,
            src_dc,
            dst_ip,
            dst,
            services,
            state,
            since,
            loss_pct,
            consumers_failing,
        })
        .collect())
}
