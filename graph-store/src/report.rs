//! The nightly dependency report's figures, from the rollups, the history tables, the
//! state-change events and the incident log — never from raw probe rows — so any past
//! day can be made again while its rollups are kept (400 days). Rendering (Markdown,
//! HTML, the picture) is the binary's.

pub mod model;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;

pub use model::*;

use crate::error::{Error, Result};
use crate::history::{self, EdgeAt};
use crate::model::NodeView;
use crate::query::ListOptions;
use crate::vocab::EventState;

/// How many unknown clients and unresolved names the hygiene section lists.
const HYGIENE_TOP: i64 = 15;

/// The day to report on: its date and time zone (for the reader) and its bounds in UTC.
#[derive(Debug, Clone)]
pub struct Day {
    pub date: NaiveDate,
    pub tz: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Per edge of the day, from the rollups.
#[derive(Debug, Clone, Default)]
struct EdgeDay {
    cycles: i64,
    failed: i64,
    down_seconds: i64,
    queries: i64,
}

type EdgeKey = (String, String);

/// Makes the report for `day`; `local_hour` writes an hour start in the report's zone.
#[tracing::instrument(skip(pool, local_hour))]
pub async fn compute(pool: &PgPool, day: &Day, local_hour: &dyn Fn(DateTime<Utc>) -> String) -> Result<Report> {
    crate::rollup::fill_down(pool, day.from, day.to).await?;
    let all = ListOptions::default();
    let nodes_start = history::nodes_at(pool, day.from, &all).await?;
    let edges_start = history::edges_at(pool, day.from, &all).await?;
    let nodes_end = history::nodes_at(pool, day.to, &all).await?;
    let edges_end = history::edges_at(pool, day.to, &all).await?;
    let diff = history::compare(day.from, day.to, (&nodes_start, &edges_start), (&nodes_end, &edges_end));
    drop((nodes_start, edges_start));
    let per_edge = edge_days(pool, day).await?;
    let hours = hour_totals(pool, day).await?;
    let events = events_of_day(pool, day).await?;
    let incidents = incidents_of_day(pool, day).await?;
    let times = change_times(pool, day).await?;

    let node_by_name: BTreeMap<&str, &NodeView> = nodes_end.iter().map(|n| (n.name.as_str(), n)).collect();
    let edge_key = |src: &str, ip: &str| (src.to_string(), ip.to_string());

    // Broken during the day: down some time, or an event into trouble, or already in
    // trouble at the start.
    let mut troubled: BTreeSet<EdgeKey> =
        per_edge.iter().filter(|(_, d)| d.down_seconds > 0).map(|(k, _)| k.clone()).collect();
    let start_states = states_at(pool, day.from).await?;
    for (k, state) in &start_states {
        if state.is_trouble() {
            troubled.insert(k.clone());
        }
    }
    for (k, evs) in &events {
        if evs.iter().any(|e| e.to.is_trouble()) {
            troubled.insert(k.clone());
        }
    }
    let edge_info = edge_names(pool, &troubled).await?;
    let mut broken: Vec<BrokenDay> = troubled
        .iter()
        .map(|k| {
            let d = per_edge.get(k).cloned().unwrap_or_default();
            let evs = events.get(k).cloned().unwrap_or_default();
            let (dst, services) = edge_info.get(k).cloned().unwrap_or_default();
            let flapping =
                start_states.get(k) == Some(&EventState::Flapping) || evs.iter().any(|e| e.to == EventState::Flapping);
            BrokenDay {
                src: k.0.clone(),
                dst_ip: k.1.clone(),
                dst,
                services,
                down_minutes: round1(d.down_seconds as f64 / 60.0),
                cycles: d.cycles,
                failed_cycles: d.failed,
                flapping,
                events: evs,
            }
        })
        .collect();
    broken.sort_by(|a, b| {
        b.down_minutes.total_cmp(&a.down_minutes).then(a.src.cmp(&b.src)).then(a.dst_ip.cmp(&b.dst_ip))
    });
    let down_keys: BTreeSet<&EdgeKey> = per_edge.iter().filter(|(_, d)| d.down_seconds > 0).map(|(k, _)| k).collect();

    // Summary.
    let cycles: i64 = hours.values().map(|h| h.0).sum();
    let failed_cycles: i64 = hours.values().map(|h| h.1).sum();
    let worst_hour = hours
        .iter()
        .filter(|(_, h)| h.1 > 0)
        .max_by(|a, b| a.1 .1.cmp(&b.1 .1).then(b.0.cmp(a.0)))
        .map(|(hour, h)| WorstHour { hour: *hour, local: local_hour(*hour), failed_cycles: h.1, edges_down: h.2 });
    let services_end: BTreeSet<&str> = nodes_end.iter().flat_map(|n| n.services.iter().map(String::as_str)).collect();
    let summary = Summary {
        nodes: nodes_end.len(),
        edges: edges_end.len(),
        services: services_end.len(),
        dcs: nodes_end.iter().map(|n| n.dc.as_str()).collect::<BTreeSet<_>>().len(),
        cycles,
        failed_cycles,
        edges_down: down_keys.len(),
        down_minutes: round1(per_edge.values().map(|d| d.down_seconds).sum::<i64>() as f64 / 60.0),
        incidents: incidents.len(),
        worst_hour,
    };

    // Dependencies per service and per role, cross-DC, the picture: the graph at the end.
    let queries_of = |e: &EdgeAt| per_edge.get(&edge_key(&e.src, &e.dst_ip)).map_or(0, |d| d.queries);
    let mut services: BTreeMap<String, ServiceDeps> = BTreeMap::new();
    let mut providers: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &nodes_end {
        for s in &n.services {
            *providers.entry(s).or_default() += 1;
        }
    }
    let mut service_consumers: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for e in &edges_end {
        let Some(src) = node_by_name.get(e.src.as_str()) else { continue };
        for s in &e.services {
            let entry = services.entry(s.clone()).or_insert_with(|| ServiceDeps {
                service: s.clone(),
                providers: providers.get(s.as_str()).copied().unwrap_or(0),
                consumers: 0,
                consumers_by_dc: BTreeMap::new(),
                consumers_by_role: BTreeMap::new(),
                queries: 0,
            });
            entry.queries += queries_of(e);
            if service_consumers.entry(s.clone()).or_default().insert(&src.name) {
                entry.consumers += 1;
                *entry.consumers_by_dc.entry(src.dc.clone()).or_default() += 1;
                *entry.consumers_by_role.entry(role(src)).or_default() += 1;
            }
        }
    }
    let mut roles: BTreeMap<String, RoleDeps> = BTreeMap::new();
    for n in &nodes_end {
        roles
            .entry(role(n))
            .or_insert_with(|| RoleDeps {
                role: role(n),
                nodes: 0,
                services: BTreeMap::new(),
                depends_on_roles: BTreeMap::new(),
            })
            .nodes += 1;
    }
    let mut role_uses: BTreeSet<(String, String, &str)> = BTreeSet::new();
    let mut cross: BTreeMap<(String, String), CrossSum<'_>> = BTreeMap::new();
    let mut links: BTreeMap<(String, String), ServiceLink> = BTreeMap::new();
    for e in &edges_end {
        let Some(src) = node_by_name.get(e.src.as_str()) else { continue };
        let dst = e.dst.as_deref().and_then(|d| node_by_name.get(d));
        let r = roles.get_mut(&role(src)).expect("every node's role is listed");
        for s in &e.services {
            if role_uses.insert((role(src), s.clone(), &src.name)) {
                *r.services.entry(s.clone()).or_default() += 1;
            }
        }
        if let Some(dst) = dst {
            *r.depends_on_roles.entry(role(dst)).or_default() += 1;
            if dst.dc != src.dc {
                let c = cross.entry((src.dc.clone(), dst.dc.clone())).or_default();
                c.0 += 1;
                c.1.insert(&src.name);
                c.2.extend(e.services.iter().cloned());
                c.3 += queries_of(e);
            }
        }
        // The picture: consumers by the service they provide (else their role) → what
        // they use (its services, else the destination's first service or role).
        let from = src.services.first().cloned().unwrap_or_else(|| format!("role:{}", role(src)));
        let targets: Vec<String> = if !e.services.is_empty() {
            e.services.clone()
        } else if let Some(dst) = dst {
            vec![dst.services.first().cloned().unwrap_or_else(|| format!("role:{}", role(dst)))]
        } else {
            vec![]
        };
        let is_down = down_keys.contains(&edge_key(&e.src, &e.dst_ip));
        for to in targets {
            let link = links.entry((from.clone(), to.clone())).or_insert_with(|| ServiceLink {
                from: from.clone(),
                to,
                edges: 0,
                broken: 0,
                cross_dc: false,
            });
            link.edges += 1;
            link.broken += usize::from(is_down);
            link.cross_dc |= dst.is_some_and(|d| d.dc != src.dc);
        }
    }
    let mut cross_dc: Vec<CrossDc> = cross
        .into_iter()
        .map(|((from_dc, to_dc), (edges, consumers, services, queries))| CrossDc {
            from_dc,
            to_dc,
            edges,
            consumers: consumers.len(),
            services: services.into_iter().collect(),
            queries,
        })
        .collect();
    cross_dc.sort_by(|a, b| b.edges.cmp(&a.edges).then(a.from_dc.cmp(&b.from_dc)).then(a.to_dc.cmp(&b.to_dc)));

    // What changed.
    let dep = |e: &EdgeAt, at: Option<&DateTime<Utc>>, fallback: DateTime<Utc>| DepChange {
        src: e.src.clone(),
        dst_ip: e.dst_ip.clone(),
        dst: e.dst.clone(),
        services: e.services.clone(),
        at: at.copied().unwrap_or(fallback),
    };
    let node = |n: &NodeView, at: Option<&DateTime<Utc>>, fallback: DateTime<Utc>| NodeChange {
        name: n.name.clone(),
        host: n.host.clone(),
        dc: n.dc.clone(),
        role: n.role.clone(),
        at: at.copied().unwrap_or(fallback),
    };
    let changes = Changes {
        new_dependencies: diff
            .edges_appeared
            .iter()
            .map(|e| dep(e, times.edge_from.get(&edge_key(&e.src, &e.dst_ip)), day.from))
            .collect(),
        vanished_dependencies: diff
            .edges_vanished
            .iter()
            .map(|e| dep(e, times.edge_to.get(&edge_key(&e.src, &e.dst_ip)), day.to))
            .collect(),
        new_nodes: diff.nodes_appeared.iter().map(|n| node(n, times.node_from.get(&n.name), day.from)).collect(),
        retired_nodes: diff.nodes_vanished.iter().map(|n| node(n, times.node_to.get(&n.name), day.to)).collect(),
    };

    let has_data = !nodes_end.is_empty() || cycles > 0 || !diff.nodes_vanished.is_empty();
    let mut notes = Vec::new();
    if nodes_end.is_empty() && diff.nodes_vanished.is_empty() {
        notes.push(
            "the graph was empty on this day: edgewatch knew of no node yet, or every node had been retired".into(),
        );
    }
    if cycles == 0 {
        notes.push("no probe results for this day: no prober ran, or their rollups have been pruned".into());
    }
    Ok(Report {
        date: day.date,
        tz: day.tz.clone(),
        from: day.from,
        to: day.to,
        generated_at: Utc::now(),
        has_data,
        notes,
        summary,
        services: services.into_values().collect(),
        roles: roles.into_values().collect(),
        changes,
        cross_dc,
        broken,
        incidents,
        hygiene: hygiene(pool).await?,
        service_graph: links.into_values().collect(),
    })
}

fn role(n: &NodeView) -> String {
    n.role.clone().unwrap_or_else(|| "-".into())
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Per edge (consumer name, address): cycles, failed cycles, seconds down, queries.
async fn edge_days(pool: &PgPool, day: &Day) -> Result<BTreeMap<EdgeKey, EdgeDay>> {
    let rows: Vec<(String, String, i64, i64, i64, i64)> = sqlx::query_as(
        "WITH p AS (SELECT edge_id, sum(cycles)::bigint AS cycles, sum(failed)::bigint AS failed, \
                           sum(down_seconds)::bigint AS down FROM probe_hourly \
                    WHERE hour >= $1 AND hour < $2 GROUP BY edge_id), \
              q AS (SELECT edge_id, sum(queries)::bigint AS queries FROM query_hourly \
                    WHERE hour >= $1 AND hour < $2 GROUP BY edge_id) \
         SELECT s.name, host(e.dst_ip), COALESCE(p.cycles, 0), COALESCE(p.failed, 0), COALESCE(p.down, 0), \
                COALESCE(q.queries, 0) \
         FROM p FULL JOIN q ON q.edge_id = p.edge_id \
         JOIN edges e ON e.id = COALESCE(p.edge_id, q.edge_id) JOIN nodes s ON s.id = e.src_id",
    )
    .bind(day.from)
    .bind(day.to)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("reading the day's rollups"))?;
    Ok(rows
        .into_iter()
        .map(|(src, ip, cycles, failed, down_seconds, queries)| {
            ((src, ip), EdgeDay { cycles, failed, down_seconds, queries })
        })
        .collect())
}

/// Per hour of the day: (cycles, failed cycles, edges down some time in it).
async fn hour_totals(pool: &PgPool, day: &Day) -> Result<BTreeMap<DateTime<Utc>, (i64, i64, usize)>> {
    let rows: Vec<(DateTime<Utc>, i64, i64, i64)> = sqlx::query_as(
        "SELECT hour, sum(cycles)::bigint, sum(failed)::bigint, count(*) FILTER (WHERE down_seconds > 0) \
         FROM probe_hourly WHERE hour >= $1 AND hour < $2 GROUP BY hour",
    )
    .bind(day.from)
    .bind(day.to)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("reading the day's hours"))?;
    Ok(rows.into_iter().map(|(h, c, f, d)| (h, (c, f, usize::try_from(d).unwrap_or(0)))).collect())
}

/// Every edge's state at `at` (the last event before it).
async fn states_at(pool: &PgPool, at: DateTime<Utc>) -> Result<BTreeMap<EdgeKey, EventState>> {
    let rows: Vec<(String, String, EventState)> = sqlx::query_as(
        "SELECT s.name, host(e.dst_ip), l.to_state FROM edges e JOIN nodes s ON s.id = e.src_id \
         JOIN LATERAL (SELECT x.to_state FROM edge_events x WHERE x.edge_id = e.id AND x.at < $1 \
                       ORDER BY x.at DESC LIMIT 1) l ON true \
         WHERE l.to_state <> 'up'",
    )
    .bind(at)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("reading edge states at the start of the day"))?;
    Ok(rows.into_iter().map(|(src, ip, state)| ((src, ip), state)).collect())
}

/// The day's state changes, per edge, in order.
async fn events_of_day(pool: &PgPool, day: &Day) -> Result<BTreeMap<EdgeKey, Vec<EventDay>>> {
    let rows: Vec<(String, String, DateTime<Utc>, EventState, EventState)> = sqlx::query_as(
        "SELECT s.name, host(e.dst_ip), x.at, x.from_state, x.to_state \
         FROM edge_events x JOIN edges e ON e.id = x.edge_id JOIN nodes s ON s.id = e.src_id \
         WHERE x.at >= $1 AND x.at < $2 ORDER BY x.at, x.id",
    )
    .bind(day.from)
    .bind(day.to)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("reading the day's state changes"))?;
    let mut out: BTreeMap<EdgeKey, Vec<EventDay>> = BTreeMap::new();
    for (src, ip, at, from, to) in rows {
        out.entry((src, ip)).or_default().push(EventDay { at, from, to });
    }
    Ok(out)
}

/// Destination node (owner of the address at the end of the day, else now) and
/// services of the given edges.
async fn edge_names(
    pool: &PgPool,
    keys: &BTreeSet<EdgeKey>,
) -> Result<BTreeMap<EdgeKey, (Option<String>, Vec<String>)>> {
    let (srcs, ips): (Vec<&str>, Vec<&str>) = keys.iter().map(|(s, i)| (s.as_str(), i.as_str())).unzip();
    let rows: Vec<(String, String, Option<String>, Vec<String>)> = sqlx::query_as(
        "SELECT s.name, host(e.dst_ip), d.name, ARRAY(SELECT x FROM unnest(e.services) AS x ORDER BY x) \
         FROM UNNEST($1::text[], $2::text[]) AS k(src, ip) \
         JOIN nodes s ON s.name = k.src JOIN edges e ON e.src_id = s.id AND e.dst_ip = k.ip::inet \
         LEFT JOIN addresses a ON a.ip = e.dst_ip LEFT JOIN nodes d ON d.id = a.node_id",
    )
    .bind(srcs)
    .bind(ips)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("naming the day's broken edges"))?;
    Ok(rows.into_iter().map(|(src, ip, dst, services)| ((src, ip), (dst, services))).collect())
}

/// A cross-DC pair's sums: edges, consumers, services, queries.
type CrossSum<'a> = (usize, BTreeSet<&'a str>, BTreeSet<String>, i64);

/// An incident_log row: kind, culprit, evidence, since, last seen, edges.
type IncidentRow = (String, String, String, DateTime<Utc>, DateTime<Utc>, i32);

/// An edge (source, destination ip) with its first start and last end inside the day.
type EdgeSpan = (String, String, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// A node with its first start and last end inside the day.
type NodeSpan = (String, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Incidents open at some time of the day, longest first.
async fn incidents_of_day(pool: &PgPool, day: &Day) -> Result<Vec<IncidentDay>> {
    let rows: Vec<IncidentRow> = sqlx::query_as(
        "SELECT kind, culprit, evidence, since, last_seen, edges FROM incident_log \
         WHERE since < $2 AND last_seen >= $1 ORDER BY last_seen - since DESC, since, culprit",
    )
    .bind(day.from)
    .bind(day.to)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("reading the day's incidents"))?;
    Ok(rows
        .into_iter()
        .map(|(kind, culprit, evidence, since, last_seen, edges)| IncidentDay {
            kind,
            culprit,
            evidence,
            since,
            until: (last_seen < day.to).then_some(last_seen),
            edges: usize::try_from(edges).unwrap_or(0),
        })
        .collect())
}

/// When edges and nodes appeared and vanished within the day.
#[derive(Debug, Default)]
struct ChangeTimes {
    edge_from: BTreeMap<EdgeKey, DateTime<Utc>>,
    edge_to: BTreeMap<EdgeKey, DateTime<Utc>>,
    node_from: BTreeMap<String, DateTime<Utc>>,
    node_to: BTreeMap<String, DateTime<Utc>>,
}

async fn change_times(pool: &PgPool, day: &Day) -> Result<ChangeTimes> {
    let edges: Vec<EdgeSpan> = sqlx::query_as(
        "SELECT s.name, host(e.dst_ip), \
                min(h.valid_from) FILTER (WHERE h.valid_from >= $1 AND h.valid_from < $2), \
                max(h.valid_to) FILTER (WHERE h.valid_to >= $1 AND h.valid_to < $2) \
         FROM edge_history h JOIN edges e ON e.id = h.edge_id JOIN nodes s ON s.id = e.src_id \
         WHERE (h.valid_from >= $1 AND h.valid_from < $2) OR (h.valid_to >= $1 AND h.valid_to < $2) \
         GROUP BY 1, 2",
    )
    .bind(day.from)
    .bind(day.to)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("reading when dependencies changed"))?;
    let nodes: Vec<NodeSpan> = sqlx::query_as(
        "SELECT n.name, \
                min(h.valid_from) FILTER (WHERE h.valid_from >= $1 AND h.valid_from < $2), \
                max(h.valid_to) FILTER (WHERE h.valid_to >= $1 AND h.valid_to < $2) \
         FROM node_history h JOIN nodes n ON n.id = h.node_id \
         WHERE (h.valid_from >= $1 AND h.valid_from < $2) OR (h.valid_to >= $1 AND h.valid_to < $2) \
         GROUP BY 1",
    )
    .bind(day.from)
    .bind(day.to)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("reading when nodes changed"))?;
    let mut t = ChangeTimes::default();
    for (src, ip, from, to) in edges {
        if let Some(from) = from {
            t.edge_from.insert((src.clone(), ip.clone()), from);
        }
        if let Some(to) = to {
            t.edge_to.insert((src, ip), to);
        }
    }
    for (name, from, to) in nodes {
        if let Some(from) = from {
            t.node_from.insert(name.clone(), from);
        }
        if let Some(to) = to {
            t.node_to.insert(name, to);
        }
    }
    Ok(t)
}

async fn hygiene(pool: &PgPool) -> Result<Hygiene> {
    let top = |kinds: &'static [&'static str]| async move {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT value, count FROM dns_unknowns WHERE kind = ANY($1) ORDER BY count DESC, value LIMIT $2",
        )
        .bind(kinds)
        .bind(HYGIENE_TOP)
        .fetch_all(pool)
        .await
        .map_err(Error::sql("reading what discovery could not place"))?;
        Ok::<_, Error>(rows.into_iter().map(|(name, count)| Counted { name, count }).collect())
    };
    Ok(Hygiene {
        unknown_clients: top(&["client"]).await?,
        unresolved_names: top(&["consumer", "service"]).await?,
        services_without_provider: top(&["no-provider"]).await?,
    })
}

/// Stores a rendering of a report (one per day, zone and format; made again, replaced).
pub async fn store(pool: &PgPool, date: NaiveDate, tz: &str, format: &str, body: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO reports (day, tz, format, body) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (day, tz, format) DO UPDATE SET body = EXCLUDED.body, generated_at = now()",
    )
    .bind(date)
    .bind(tz)
    .bind(format)
    .bind(body)
    .execute(pool)
    .await
    .map_err(Error::sql("storing the report"))?;
    Ok(())
}

/// Whether a report of `date` in `tz` is stored (in any format), for `edgewatch run`.
pub async fn is_stored(pool: &PgPool, date: NaiveDate, tz: &str) -> Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM reports WHERE day = $1 AND tz = $2)")
        .bind(date)
        .bind(tz)
        .fetch_one(pool)
        .await
        .map_err(Error::sql("looking for a stored report"))
}
