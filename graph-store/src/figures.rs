//! The store's running figures, for `/metrics`: DNS log lines by result, probe results by
//! kind and verdict, live edges by state, live nodes by data center. A handful of
//! aggregate queries over small tables (and one over the live edges), never over history.

use crate::error::{Error, Result};
use crate::PgPool;

/// Every figure, read in one short read-only transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    /// (result, lines): `edge` for lines that gave (or added to) an edge, else the skip
    /// reason (`not-a-query`, `unknown-client`, …). Lines read from standard input have no
    /// checkpoint and count under their reason only.
    pub dns_lines: Vec<(String, i64)>,
    /// (kind, verdict, results) since the store was made; every kind and verdict, 0 when none.
    pub probe_results: Vec<(String, String, i64)>,
    /// (state, live edges); edges without a health row yet are `unknown`.
    pub edges_by_state: Vec<(String, i64)>,
    /// (dc, live nodes).
    pub nodes_by_dc: Vec<(String, i64)>,
}

#[tracing::instrument(skip(pool))]
pub async fn read(pool: &PgPool) -> Result<Figures> {
    let mut tx = pool.begin().await.map_err(Error::sql("reading figures"))?;
    sqlx::query("SET TRANSACTION READ ONLY").execute(&mut *tx).await.map_err(Error::sql("reading figures"))?;
    let dns_lines = sqlx::query_as(
        "WITH skips AS (SELECT reason, count FROM dns_skips) \
         SELECT 'edge', greatest((SELECT COALESCE(sum(lines), 0) FROM ingest_checkpoints) \
                                 - (SELECT COALESCE(sum(count), 0) FROM skips), 0)::bigint \
         UNION ALL SELECT reason, count FROM skips ORDER BY 1",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(Error::sql("reading DNS line counts"))?;
    let probe_results = sqlx::query_as(
        "SELECT k.kind, v.verdict, COALESCE(c.count, 0) \
         FROM (VALUES ('icmp'), ('tcp')) AS k(kind) CROSS JOIN (VALUES ('ok'), ('degraded'), ('failed')) AS v(verdict) \
         LEFT JOIN (SELECT kind, verdict, sum(count)::bigint AS count FROM probe_counters GROUP BY 1, 2) c \
             ON c.kind = k.kind AND c.verdict = v.verdict \
         ORDER BY 1, 2",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(Error::sql("reading probe result counts"))?;
    let edges_by_state = sqlx::query_as(
        "SELECT s.state, COALESCE(c.n, 0) FROM \
             (VALUES ('up'), ('down'), ('degraded'), ('stale'), ('unknown')) AS s(state) \
         LEFT JOIN (SELECT COALESCE(h.state, 'unknown') AS state, count(*) AS n \
                    FROM edges e LEFT JOIN edge_health h ON h.edge_id = e.id \
                    WHERE e.retired_at IS NULL GROUP BY 1) c ON c.state = s.state \
         ORDER BY s.state",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(Error::sql("reading edge states"))?;
    let nodes_by_dc = sqlx::query_as("SELECT dc, count(*) FROM nodes WHERE retired_at IS NULL GROUP BY dc ORDER BY dc")
        .fetch_all(&mut *tx)
        .await
        .map_err(Error::sql("reading nodes per data center"))?;
    tx.commit().await.map_err(Error::sql("reading figures"))?;
    Ok(Figures { dns_lines, probe_results, edges_by_state, nodes_by_dc })
}
