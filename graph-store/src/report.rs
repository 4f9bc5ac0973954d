//! The nightly dependency report's figures, from the rollups, the history tables, the
//! state-change events and the incident log — never from raw probe rows — so any past
//! day can be made again while its rollups are kept (400 days). Rendering (Markdown,
//! HTML, the picture) is the binary's.

pub mod model;
mod routes;
mod sections;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};

pub use model::*;

use crate::error::{Error, Result};
use crate::history;
use crate::query::ListOptions;
use crate::vocab::EventState;
use crate::PgPool;
use sections::{ChangeTimes, EdgeDay, EdgeKey, HourTotals, Inputs};

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

/// Makes the report for `day`; `local_hour` writes an hour start in the report's zone.
#[tracing::instrument(skip(pool, local_hour))]
pub async fn compute(pool: &PgPool, day: &Day, local_hour: &dyn Fn(DateTime<Utc>) -> String) -> Result<Report> {
    crate::rollup::fill_down(pool, day.from, day.to).await?;
    compute_filled(pool, day, local_hour).await
}

/// [`compute`] once the day's rollups are filled in (on the primary, by
/// [`crate::rollup::fill_down`]): reads only, so `pool` may be a standby that has
/// replayed them.
pub async fn compute_filled(pool: &PgPool, day: &Day, local_hour: &dyn Fn(DateTime<Utc>) -> String) -> Result<Report> {
    compute_filled_early(pool, day, local_hour, &mut |_| {}).await
}

/// [`compute_filled`], handing `early` the service graph (the report's `service_graph`)
/// as soon as the reads it comes from are done, before the rest: a caller can start
/// drawing the picture while the other sections are read.
pub async fn compute_filled_early(
    pool: &PgPool,
    day: &Day,
    local_hour: &dyn Fn(DateTime<Utc>) -> String,
    early: &mut dyn FnMut(&[ServiceLink]),
) -> Result<Report> {
    let inputs = load(pool, day, early).await?;
    Ok(sections::assemble(inputs, day, local_hour, Utc::now()))
}

/// Every read the report needs: the service graph's first (then `early` has it), then the
/// rest at once, each on a connection of its own, so PostgreSQL works on them side by side
/// (and beside whatever `early` started).
async fn load(pool: &PgPool, day: &Day, early: &mut dyn FnMut(&[ServiceLink])) -> Result<Inputs> {
    let all = ListOptions::default();
    let (nodes_end, edges_end, per_edge) = tokio::try_join!(
        history::nodes_at(pool, day.to, &all),
        history::edges_at(pool, day.to, &all),
        edge_days(pool, day),
    )?;
    early(&sections::service_links(&nodes_end, &edges_end, &per_edge));
    let troubles = async {
        let (start_states, events) = tokio::try_join!(states_at(pool, day.from), events_of_day(pool, day))?;
        let edge_info = edge_names(pool, &sections::troubled(&per_edge, &start_states, &events)).await?;
        Ok::<_, Error>((start_states, events, edge_info))
    };
    let route_filter = crate::paths::EventFilter {
        since: Some(day.from),
        until: Some(day.to),
        kinds: vec!["changed".into()],
        ..Default::default()
    };
    let (nodes_start, edges_start, (start_states, events, edge_info), hours, incidents, times, hygiene, route_events) =
        tokio::try_join!(
            history::nodes_at(pool, day.from, &all),
            history::edges_at(pool, day.from, &all),
            troubles,
            hour_totals(pool, day),
            incidents_of_day(pool, day),
            change_times(pool, day),
            hygiene(pool),
            crate::paths::events(pool, &route_filter),
        )?;
    let diff = history::compare(day.from, day.to, (&nodes_start, &edges_start), (&nodes_end, &edges_end));
    drop((nodes_start, edges_start));
    Ok(Inputs {
        nodes_end,
        edges_end,
        diff,
        per_edge,
        hours,
        start_states,
        events,
        edge_info,
        incidents,
        times,
        hygiene,
        route_events,
    })
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
async fn hour_totals(pool: &PgPool, day: &Day) -> Result<HourTotals> {
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
