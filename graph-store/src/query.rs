//! Reading the graph back: the node and edge lists behind `graph nodes|edges`.

use sqlx::PgPool;

use crate::error::{Error, Result};
use crate::model::{EdgeView, NodeView};

/// Which rows to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListOptions {
    /// Include retired nodes and edges.
    pub include_retired: bool,
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
             FROM nodes n WHERE $1 OR n.retired_at IS NULL ORDER BY n.name",
    )
    .bind(opts.include_retired)
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
        String,
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
         WHERE $1 OR e.retired_at IS NULL \
         ORDER BY s.name, e.dst_ip",
    )
    .bind(opts.include_retired)
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
