//! Reading for the web UI's map (`/ui/map…`): the graph aggregated in SQL, never listed
//! edge by edge — edges by state between data centers, per host of a data center, per
//! container of a host, per service and provider. Every function takes `at`: `None` for
//! the live graph, `Some(T)` for the graph as it was at T (the `*_history` tables and the
//! last `edge_events` row at or before T, as [`crate::history`] reads them).
//!
//! Each query starts from the same three views of the graph ([`graph`]): `nd` (nodes: id,
//! name, host, dc, role), `ad` (addresses: ip, node_id) and `ed` (edges: id, src_id,
//! dst_ip, services, state), inlined into the query (`NOT MATERIALIZED`) so PostgreSQL
//! plans one join. `$1` is always the time (null: live).

use std::cmp::Ordering;

use chrono::{DateTime, Utc};

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::QueryAs;
use sqlx::{FromRow, Postgres};

use crate::error::{Error, Result};
use crate::history::live_at;
use crate::PgPool;

/// Edges counted by their state (`flapping` only in the past: an open flap at T).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub up: i64,
    pub down: i64,
    pub degraded: i64,
    pub flapping: i64,
    pub stale: i64,
    pub unknown: i64,
}

/// How a tile is coloured: the worst state among its edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Some edge down: red.
    Down,
    /// Some edge degraded or flapping, none down: amber.
    Degraded,
    /// Every edge up.
    Up,
    /// No edge, or none decided yet (unknown, stale).
    Quiet,
}

impl Level {
    /// The CSS class (and `data-level`) of a tile.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Down => "down",
            Level::Degraded => "degraded",
            Level::Up => "up",
            Level::Quiet => "quiet",
        }
    }
}

impl Tally {
    /// Counts `n` edges in `state` (a health or event state's name; others as unknown).
    pub fn add(&mut self, state: &str, n: i64) {
        match state {
            "up" => self.up += n,
            "down" => self.down += n,
            "degraded" => self.degraded += n,
            "flapping" => self.flapping += n,
            "stale" => self.stale += n,
            _ => self.unknown += n,
        }
    }

    /// Both counts together.
    pub fn merge(&mut self, o: &Tally) {
        self.up += o.up;
        self.down += o.down;
        self.degraded += o.degraded;
        self.flapping += o.flapping;
        self.stale += o.stale;
        self.unknown += o.unknown;
    }

    pub fn total(&self) -> i64 {
        self.up + self.down + self.degraded + self.flapping + self.stale + self.unknown
    }

    /// Down, degraded or flapping.
    pub fn broken(&self) -> i64 {
        self.down + self.degraded + self.flapping
    }

    pub fn level(&self) -> Level {
        if self.down > 0 {
            Level::Down
        } else if self.degraded + self.flapping > 0 {
            Level::Degraded
        } else if self.up > 0 {
            Level::Up
        } else {
            Level::Quiet
        }
    }

    /// Worst first: by level, then more down, more degraded, more edges.
    pub fn trouble_cmp(&self, o: &Tally) -> Ordering {
        self.level()
            .cmp(&o.level())
            .then(o.down.cmp(&self.down))
            .then((o.degraded + o.flapping).cmp(&(self.degraded + self.flapping)))
    }
}

/// Names compared with their digit runs as numbers (`host9` before `host10`).
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
                let o = na.len().cmp(&nb.len()).then(na.cmp(nb)).then(da.cmp(&db));
                if o != Ordering::Equal {
                    return o;
                }
                (a, b) = (&a[da..], &b[db..]);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                (a, b) = (&a[1..], &b[1..]);
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let z = d.iter().take_while(|c| **c == b'0').count();
    &d[z..]
}

/// Runs one map query in a transaction of its own with JIT off (compiling the plan of a
/// million-row join costs more than it saves) and room to hash and sort in memory.
async fn fetch<'q, R>(pool: &PgPool, op: &'static str, q: QueryAs<'q, Postgres, R, PgArguments>) -> Result<Vec<R>>
where
    R: Send + Unpin + for<'r> FromRow<'r, PgRow>,
{
    let mut tx = pool.begin().await.map_err(Error::sql(op))?;
    let rows = async {
        sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
        sqlx::query("SET LOCAL work_mem = '64MB'").execute(&mut *tx).await?;
        q.fetch_all(&mut *tx).await
    }
    .await;
    match rows {
        Ok(rows) => {
            tx.commit().await.map_err(Error::sql(op))?;
            Ok(rows)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(Error::sql(op)(e))
        }
    }
}

/// The edges with their state: `ee` (the edges) and `sx` (edge id → state) joined.
const ED: &str = "ed AS NOT MATERIALIZED (SELECT ee.id, ee.src_id, ee.dst_ip, ee.services, \
                  COALESCE(sx.state, 'unknown') AS state FROM ee LEFT JOIN sx ON sx.edge_id = ee.id)";

/// The views every map query starts from, for the live graph or at `$1`: `nd`, `ad`,
/// `ee` (edges without their state), `sx` (their states), `ed` (both) and `pr`
/// (providers).
fn graph(past: bool) -> String {
    if past {
        let (h, a, eh) = (live_at("h"), live_at("a"), live_at("eh"));
        format!(
            "nd AS NOT MATERIALIZED (SELECT h.node_id AS id, n.name, h.host, h.dc, h.role \
                 FROM node_history h JOIN nodes n ON n.id = h.node_id WHERE {h}), \
             ad AS NOT MATERIALIZED (SELECT a.ip, a.node_id FROM address_history a WHERE {a}), \
             ee AS NOT MATERIALIZED (SELECT e.id, e.src_id, e.dst_ip, eh.services \
                 FROM edge_history eh JOIN edges e ON e.id = eh.edge_id WHERE {eh}), \
             sx AS NOT MATERIALIZED (SELECT DISTINCT ON (edge_id) edge_id, to_state AS state FROM edge_events \
                 WHERE at <= $1 ORDER BY edge_id, at DESC, id DESC), \
             {ed}, \
             pr AS NOT MATERIALIZED (SELECT p.service, p.node_id FROM provider_history p WHERE {p})",
            p = live_at("p"),
            ed = ED
        )
    } else {
        // $1 is null: the live graph.
        format!(
            "nd AS NOT MATERIALIZED (SELECT id, name, host, dc, role FROM nodes \
             WHERE retired_at IS NULL AND $1::timestamptz IS NULL), \
         ad AS NOT MATERIALIZED (SELECT ip, node_id FROM addresses WHERE retired_at IS NULL), \
         ee AS NOT MATERIALIZED (SELECT id, src_id, dst_ip, services FROM edges WHERE retired_at IS NULL), \
         sx AS NOT MATERIALIZED (SELECT edge_id, state FROM edge_health), \
         {ED}, \
         pr AS NOT MATERIALIZED (SELECT service, node_id FROM service_providers)"
        )
    }
}

/// A data center's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcSize {
    pub dc: String,
    pub hosts: i64,
    pub nodes: i64,
}

/// The data centers (of live nodes, or of nodes live at `at`), by name.
#[tracing::instrument(skip(pool))]
pub async fn dcs(pool: &PgPool, at: Option<DateTime<Utc>>) -> Result<Vec<DcSize>> {
    let rows: Vec<(String, i64, i64)> = fetch(
        pool,
        "counting the data centers' hosts and nodes",
        sqlx::query_as(&format!(
            "WITH {} SELECT dc, count(DISTINCT host), count(*) FROM nd GROUP BY dc ORDER BY dc",
            graph(at.is_some())
        ))
        .bind(at),
    )
    .await?;
    Ok(rows.into_iter().map(|(dc, hosts, nodes)| DcSize { dc, hosts, nodes }).collect())
}

/// Edges from the nodes of one data center to the nodes of another (or of the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcLink {
    pub src_dc: String,
    /// None: the destination address belongs to no node (then).
    pub dst_dc: Option<String>,
    pub edges: Tally,
}

/// Every pair of data centers with edges between them, by state.
#[tracing::instrument(skip(pool))]
pub async fn dc_links(pool: &PgPool, at: Option<DateTime<Utc>>) -> Result<Vec<DcLink>> {
    let rows: Vec<(String, Option<String>, String, i64)> = fetch(
        pool,
        "counting edges between data centers",
        sqlx::query_as(&format!(
            "WITH {} SELECT s.dc, d.dc, e.state, count(*) \
         FROM ed e JOIN nd s ON s.id = e.src_id \
         LEFT JOIN ad a ON a.ip = e.dst_ip LEFT JOIN nd d ON d.id = a.node_id \
         GROUP BY 1, 2, 3",
            graph(at.is_some())
        ))
        .bind(at),
    )
    .await?;
    Ok(fold(rows, |(src_dc, dst_dc, state, n)| ((src_dc.clone(), dst_dc.clone()), state.as_str(), *n))
        .into_iter()
        .map(|((src_dc, dst_dc), edges)| DcLink { src_dc, dst_dc, edges })
        .collect())
}

/// Rows of (key, state, count) folded into one tally per key, in key order.
fn fold<R, K: Ord + Clone>(rows: Vec<R>, part: impl Fn(&R) -> (K, &str, i64)) -> Vec<(K, Tally)> {
    let mut m = std::collections::BTreeMap::<K, Tally>::new();
    for r in &rows {
        let (k, state, n) = part(r);
        m.entry(k).or_default().add(state, n);
    }
    m.into_iter().collect()
}

/// A host of a data center, with the edges of its containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostTile {
    pub host: String,
    pub nodes: i64,
    /// Edges from its containers.
    pub out: Tally,
    /// Edges to its containers' addresses.
    pub inc: Tally,
}

impl HostTile {
    /// Both ways.
    pub fn all(&self) -> Tally {
        let mut t = self.out;
        t.merge(&self.inc);
        t
    }
}

/// One data center: its hosts, and its edges grouped by the data center at the other end.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DcDetail {
    /// Troubled first ([`Tally::trouble_cmp`]), then by name ([`natural_cmp`]).
    pub hosts: Vec<HostTile>,
    /// Edges from this data center, by the destination's (None: no node).
    pub outgoing: Vec<(Option<String>, Tally)>,
    /// Edges to this data center, by the consumer's.
    pub incoming: Vec<(String, Tally)>,
}

/// The data center `dc`: every host (with or without edges) and the edges of its
/// containers both ways, per host and per data center at the other end; `None` if it
/// has no node (then).
#[tracing::instrument(skip(pool))]
pub async fn dc(pool: &PgPool, at: Option<DateTime<Utc>>, dc: &str) -> Result<Option<DcDetail>> {
    let sizes: Vec<(String, i64)> = fetch(
        pool,
        "listing a data center's hosts",
        sqlx::query_as(&format!(
            "WITH {} SELECT host, count(*) FROM nd WHERE dc = $2 GROUP BY host",
            graph(at.is_some())
        ))
        .bind(at)
        .bind(dc),
    )
    .await?;
    if sizes.is_empty() {
        return Ok(None);
    }
    // One pass over the edges touching the data center (their states joined once, after
    // the union): per (host here, way) and per (way, other data center). Way: true out of here, false into here (an edge within
    // the data center counts both ways).
    type Row = (Option<String>, bool, Option<String>, String, i64, i32);
    let rows: Vec<Row> = fetch(
        pool,
        "counting a data center's edges",
        sqlx::query_as(&format!(
            "WITH {}, \
         here AS NOT MATERIALIZED (SELECT id, host FROM nd WHERE dc = $2), \
         t0 AS (SELECT e.id, m.host, true AS way, d.dc AS other \
                FROM ee e JOIN here m ON m.id = e.src_id \
                LEFT JOIN ad a ON a.ip = e.dst_ip LEFT JOIN nd d ON d.id = a.node_id \
                UNION ALL \
                SELECT e.id, m.host, false, s.dc \
                FROM here m JOIN ad a ON a.node_id = m.id JOIN ee e ON e.dst_ip = a.ip \
                JOIN nd s ON s.id = e.src_id), \
         t AS (SELECT t0.host, t0.way, t0.other, COALESCE(sx.state, 'unknown') AS state \
               FROM t0 LEFT JOIN sx ON sx.edge_id = t0.id) \
         SELECT host, way, other, state, count(*), GROUPING(host)::int FROM t \
         GROUP BY GROUPING SETS ((host, way, state), (way, other, state))",
            graph(at.is_some())
        ))
        .bind(at)
        .bind(dc),
    )
    .await?;
    let mut hosts: std::collections::HashMap<String, HostTile> = sizes
        .into_iter()
        .map(|(host, nodes)| (host.clone(), HostTile { host, nodes, out: Tally::default(), inc: Tally::default() }))
        .collect();
    let mut outgoing = std::collections::BTreeMap::<Option<String>, Tally>::new();
    let mut incoming = std::collections::BTreeMap::<String, Tally>::new();
    for (host, way, other, state, n, by_other) in rows {
        if by_other == 0 {
            let Some(h) = host.and_then(|h| hosts.get_mut(&h)) else { continue };
            if way {
                h.out.add(&state, n)
            } else {
                h.inc.add(&state, n)
            }
        } else if way {
            outgoing.entry(other).or_default().add(&state, n);
        } else if let Some(o) = other {
            incoming.entry(o).or_default().add(&state, n);
        }
    }
    let mut hosts: Vec<HostTile> = hosts.into_values().collect();
    sort_hosts(&mut hosts);
    Ok(Some(DcDetail { hosts, outgoing: outgoing.into_iter().collect(), incoming: incoming.into_iter().collect() }))
}

/// Troubled hosts first, then by name.
pub fn sort_hosts(hosts: &mut [HostTile]) {
    hosts.sort_by(|a, b| a.all().trouble_cmp(&b.all()).then_with(|| natural_cmp(&a.host, &b.host)));
}

/// A group of edges of one container: to (or from) one host, in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeGroup {
    /// The host at the other end (None: an address of no node).
    pub host: Option<String>,
    pub dc: Option<String>,
    pub services: Vec<String>,
    pub edges: Tally,
}

/// A container of a host with its edges grouped by the host at the other end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub name: String,
    pub role: Option<String>,
    /// Its edges, by destination host.
    pub out: Vec<EdgeGroup>,
    /// The edges to it, by consumer host.
    pub inc: Vec<EdgeGroup>,
}

impl Container {
    pub fn all(&self) -> Tally {
        let mut t = Tally::default();
        for g in self.out.iter().chain(&self.inc) {
            t.merge(&g.edges);
        }
        t
    }
}

/// One host: its data center and containers (None if it has no node then).
#[tracing::instrument(skip(pool))]
pub async fn host(pool: &PgPool, at: Option<DateTime<Utc>>, host: &str) -> Result<Option<(String, Vec<Container>)>> {
    let nodes: Vec<(String, String, Option<String>)> = fetch(
        pool,
        "listing a host's containers",
        sqlx::query_as(&format!(
            "WITH {} SELECT name, dc, role FROM nd WHERE host = $2 ORDER BY name",
            graph(at.is_some())
        ))
        .bind(at)
        .bind(host),
    )
    .await?;
    let Some(dc) = nodes.first().map(|n| n.1.clone()) else { return Ok(None) };
    type Row = (String, bool, Option<String>, Option<String>, Vec<String>, String, i64);
    let rows: Vec<Row> = fetch(
        pool,
        "counting a host's edges",
        sqlx::query_as(&format!(
            "WITH {}, \
         here AS NOT MATERIALIZED (SELECT id, name FROM nd WHERE host = $2), \
         t AS (SELECT m.name, true AS way, d.host, d.dc, e.services, e.state \
               FROM ed e JOIN here m ON m.id = e.src_id \
               LEFT JOIN ad a ON a.ip = e.dst_ip LEFT JOIN nd d ON d.id = a.node_id \
               UNION ALL \
               SELECT m.name, false, s.host, s.dc, e.services, e.state \
               FROM here m JOIN ad a ON a.node_id = m.id JOIN ed e ON e.dst_ip = a.ip \
               JOIN nd s ON s.id = e.src_id) \
         SELECT name, way, host, dc, services, state, count(*) FROM t GROUP BY 1, 2, 3, 4, 5, 6",
            graph(at.is_some())
        ))
        .bind(at)
        .bind(host),
    )
    .await?;
    let mut containers: Vec<Container> =
        nodes.into_iter().map(|(name, _, role)| Container { name, role, out: vec![], inc: vec![] }).collect();
    for (name, way, host, dc, services, state, n) in rows {
        let Some(c) = containers.iter_mut().find(|c| c.name == name) else { continue };
        let groups = if way { &mut c.out } else { &mut c.inc };
        match groups.iter_mut().find(|g| g.host == host) {
            Some(g) => {
                g.edges.add(&state, n);
                for s in services {
                    if !g.services.contains(&s) {
                        g.services.push(s);
                    }
                }
                g.services.sort();
            }
            None => {
                let mut edges = Tally::default();
                edges.add(&state, n);
                groups.push(EdgeGroup { host, dc, services, edges });
            }
        }
    }
    for c in &mut containers {
        for g in [&mut c.out, &mut c.inc] {
            g.sort_by(|a, b| {
                a.edges
                    .trouble_cmp(&b.edges)
                    .then_with(|| natural_cmp(a.host.as_deref().unwrap_or(""), b.host.as_deref().unwrap_or("")))
            });
        }
    }
    Ok(Some((dc, containers)))
}

/// A service with its providers and the edges that use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTile {
    pub service: String,
    pub providers: i64,
    /// Destinations of its edges (providers, or addresses of no node) every edge of the
    /// service to which is down.
    pub unreachable: i64,
    /// Edges naming the service, by state.
    pub edges: Tally,
}

/// Every service that has providers or edges (then), troubled first, then by name.
#[tracing::instrument(skip(pool))]
pub async fn services(pool: &PgPool, at: Option<DateTime<Utc>>) -> Result<Vec<ServiceTile>> {
    type Row = (String, i64, i64, i64, i64, i64, i64, i64, i64);
    let rows: Vec<Row> = fetch(
        pool,
        "counting the services' providers and edges",
        sqlx::query_as(&format!(
            "WITH {}, \
         per AS (SELECT s.svc, a.node_id, CASE WHEN a.node_id IS NULL THEN e.dst_ip END, count(*) AS n, \
                        count(*) FILTER (WHERE e.state = 'up') AS up, \
                        count(*) FILTER (WHERE e.state = 'down') AS down, \
                        count(*) FILTER (WHERE e.state IN ('degraded')) AS degraded, \
                        count(*) FILTER (WHERE e.state = 'flapping') AS flapping, \
                        count(*) FILTER (WHERE e.state = 'stale') AS stale \
                 FROM ed e CROSS JOIN LATERAL unnest(e.services) AS s(svc) \
                 JOIN nd c ON c.id = e.src_id LEFT JOIN ad a ON a.ip = e.dst_ip \
                 GROUP BY 1, 2, 3), \
         agg AS (SELECT svc, sum(n)::int8 AS n, sum(up)::int8 AS up, sum(down)::int8 AS down, \
                        sum(degraded)::int8 AS degraded, sum(flapping)::int8 AS flapping, \
                        sum(stale)::int8 AS stale, count(*) FILTER (WHERE down = n) AS unreachable \
                 FROM per GROUP BY svc), \
         prov AS (SELECT service, count(*) AS n FROM pr JOIN nd ON nd.id = pr.node_id GROUP BY service) \
         SELECT COALESCE(agg.svc, prov.service), COALESCE(prov.n, 0), COALESCE(agg.unreachable, 0), \
                COALESCE(agg.n, 0), COALESCE(agg.up, 0), COALESCE(agg.down, 0), COALESCE(agg.degraded, 0), \
                COALESCE(agg.flapping, 0), COALESCE(agg.stale, 0) \
         FROM agg FULL JOIN prov ON prov.service = agg.svc",
            graph(at.is_some())
        ))
        .bind(at),
    )
    .await?;
    let mut tiles: Vec<ServiceTile> = rows
        .into_iter()
        .map(|(service, providers, unreachable, n, up, down, degraded, flapping, stale)| ServiceTile {
            service,
            providers,
            unreachable,
            edges: Tally { up, down, degraded, flapping, stale, unknown: n - up - down - degraded - flapping - stale },
        })
        .collect();
    tiles.sort_by(|a, b| {
        b.unreachable
            .cmp(&a.unreachable)
            .then(a.edges.trouble_cmp(&b.edges))
            .then_with(|| natural_cmp(&a.service, &b.service))
    });
    Ok(tiles)
}

/// A node at one end of a service's edges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEnd {
    /// None: an address of no node (a destination only).
    pub name: Option<String>,
    pub host: Option<String>,
    pub dc: Option<String>,
    /// Listed as a provider of the service (then).
    pub provider: bool,
    /// The service's edges to it (a destination) or from it (a consumer).
    pub edges: Tally,
}

/// The service's providers and other destinations, and its consumers (None: no such
/// service then, with neither providers nor edges).
#[tracing::instrument(skip(pool))]
#[allow(clippy::type_complexity)]
pub async fn service(
    pool: &PgPool,
    at: Option<DateTime<Utc>>,
    service: &str,
) -> Result<Option<(Vec<ServiceEnd>, Vec<ServiceEnd>)>> {
    type Row = (bool, Option<String>, Option<String>, Option<String>, bool, Option<String>, i64);
    let rows: Vec<Row> = fetch(
        pool,
        "reading a service's providers and consumers",
        sqlx::query_as(&format!(
            "WITH {}, \
         se AS (SELECT e.src_id, a.node_id AS dst_id, e.state FROM ed e JOIN nd c ON c.id = e.src_id \
                LEFT JOIN ad a ON a.ip = e.dst_ip WHERE $2 = ANY(e.services)), \
         p AS (SELECT pr.node_id FROM pr WHERE pr.service = $2), \
         dst AS (SELECT COALESCE(se.dst_id, p.node_id) AS id, se.state, count(se.state) AS n, \
                        bool_or(p.node_id IS NOT NULL) AS provider \
                 FROM se FULL JOIN p ON p.node_id = se.dst_id GROUP BY 1, 2) \
         SELECT true, n.name, n.host, n.dc, dst.provider, dst.state, dst.n \
         FROM dst LEFT JOIN nd n ON n.id = dst.id WHERE dst.id IS NULL OR n.id IS NOT NULL \
         UNION ALL \
         SELECT false, n.name, n.host, n.dc, false, se.state, count(*) \
         FROM se JOIN nd n ON n.id = se.src_id GROUP BY 2, 3, 4, 6",
            graph(at.is_some())
        ))
        .bind(at)
        .bind(service),
    )
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let (mut dsts, mut consumers) = (Vec::<ServiceEnd>::new(), Vec::<ServiceEnd>::new());
    for (is_dst, name, host, dc, provider, state, n) in rows {
        let list = if is_dst { &mut dsts } else { &mut consumers };
        let i = match list.iter().position(|e| e.name == name) {
            Some(i) => i,
            None => {
                list.push(ServiceEnd { name, host, dc, provider, edges: Tally::default() });
                list.len() - 1
            }
        };
        list[i].provider |= provider;
        if let Some(s) = state {
            list[i].edges.add(&s, n);
        }
    }
    for list in [&mut dsts, &mut consumers] {
        list.sort_by(|a, b| {
            a.edges
                .trouble_cmp(&b.edges)
                .then_with(|| natural_cmp(a.name.as_deref().unwrap_or(""), b.name.as_deref().unwrap_or("")))
        });
    }
    Ok(Some((dsts, consumers)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(pairs: &[(&str, i64)]) -> Tally {
        let mut t = Tally::default();
        for (s, n) in pairs {
            t.add(s, *n);
        }
        t
    }

    #[test]
    fn the_worst_state_colours_a_tile() {
        for (edges, level) in [
            (vec![], Level::Quiet),
            (vec![("unknown", 3), ("stale", 1)], Level::Quiet),
            (vec![("up", 5), ("unknown", 1)], Level::Up),
            (vec![("up", 5), ("degraded", 1)], Level::Degraded),
            (vec![("up", 5), ("flapping", 1)], Level::Degraded),
            (vec![("up", 5), ("degraded", 4), ("down", 1)], Level::Down),
            (vec![("nonsense", 2)], Level::Quiet),
        ] {
            assert_eq!(tally(&edges).level(), level, "{edges:?}");
        }
        let t = tally(&[("up", 2), ("down", 1), ("degraded", 3), ("flapping", 1), ("stale", 1), ("x", 1)]);
        assert_eq!((t.total(), t.broken(), t.unknown), (9, 5, 1));
    }

    #[test]
    fn troubled_hosts_come_first_then_by_name() {
        let host = |name: &str, out: &[(&str, i64)], inc: &[(&str, i64)]| HostTile {
            host: name.into(),
            nodes: 1,
            out: tally(out),
            inc: tally(inc),
        };
        let mut hosts = vec![
            host("host10", &[("up", 3)], &[]),
            host("host9", &[("up", 3)], &[]),
            host("host2", &[], &[]),
            host("host100", &[("up", 1)], &[("degraded", 1)]),
            host("host7", &[("down", 1)], &[]),
            host("host3", &[("up", 1)], &[("down", 4)]),
        ];
        sort_hosts(&mut hosts);
        let names: Vec<&str> = hosts.iter().map(|h| h.host.as_str()).collect();
        assert_eq!(names, ["host3", "host7", "host100", "host9", "host10", "host2"]);
    }

    #[test]
    fn names_sort_with_their_numbers() {
        let mut names = vec!["host10", "host9", "host1", "host01", "db2.host10", "db10.host9", "a", "", "host1a"];
        names.sort_by(|a, b| natural_cmp(a, b));
        // Equal numbers: the shorter run (fewer leading zeros) first, where they differ.
        assert_eq!(names, ["", "a", "db2.host10", "db10.host9", "host1", "host1a", "host01", "host9", "host10"]);
    }
}
