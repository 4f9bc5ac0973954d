//! The nightly report's sections as pure functions of what the day's reads returned
//! ([`Inputs`]): no I/O, each with its unit test. The parent module does the reads.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::model::*;
use super::Day;
use crate::history::{Diff, EdgeAt};
use crate::model::NodeView;
use crate::vocab::EventState;

/// An edge by consumer name and destination address.
pub(crate) type EdgeKey = (String, String);

/// Per edge of the day, from the rollups.
#[derive(Debug, Clone, Default)]
pub(crate) struct EdgeDay {
    pub cycles: i64,
    pub failed: i64,
    pub down_seconds: i64,
    pub queries: i64,
}

/// Per hour of the day: (cycles, failed cycles, edges down some time in it).
pub(crate) type HourTotals = BTreeMap<DateTime<Utc>, (i64, i64, usize)>;

/// When edges and nodes appeared and vanished within the day.
#[derive(Debug, Default)]
pub(crate) struct ChangeTimes {
    pub edge_from: BTreeMap<EdgeKey, DateTime<Utc>>,
    pub edge_to: BTreeMap<EdgeKey, DateTime<Utc>>,
    pub node_from: BTreeMap<String, DateTime<Utc>>,
    pub node_to: BTreeMap<String, DateTime<Utc>>,
}

/// Everything the report is made of, as read from the store.
#[derive(Debug)]
pub(crate) struct Inputs {
    /// The live graph at the end of the day.
    pub nodes_end: Vec<NodeView>,
    pub edges_end: Vec<EdgeAt>,
    /// From the start of the day to its end.
    pub diff: Diff,
    pub per_edge: BTreeMap<EdgeKey, EdgeDay>,
    pub hours: HourTotals,
    /// Edges not `up` at the start of the day, with their state then.
    pub start_states: BTreeMap<EdgeKey, EventState>,
    /// The day's state changes per edge, in order.
    pub events: BTreeMap<EdgeKey, Vec<EventDay>>,
    /// Destination node and services of the [`troubled`] edges.
    pub edge_info: BTreeMap<EdgeKey, (Option<String>, Vec<String>)>,
    pub incidents: Vec<IncidentDay>,
    pub times: ChangeTimes,
    pub hygiene: Hygiene,
    /// The day's route events.
    pub route_events: Vec<crate::paths::RouteEventView>,
}

/// Makes the report from its inputs; `local_hour` writes an hour start in the report's zone.
pub(crate) fn assemble(
    inputs: Inputs,
    day: &Day,
    local_hour: &dyn Fn(DateTime<Utc>) -> String,
    generated_at: DateTime<Utc>,
) -> Report {
    let summary = summary(&inputs, local_hour);
    let (has_data, notes) = notes(&inputs, summary.cycles);
    Report {
        date: day.date,
        tz: day.tz.clone(),
        from: day.from,
        to: day.to,
        generated_at,
        has_data,
        notes,
        summary,
        services: services(&inputs),
        roles: roles(&inputs),
        changes: changes(&inputs, day),
        cross_dc: cross_dc(&inputs),
        broken: broken(&inputs),
        service_graph: service_graph(&inputs),
        route_changes: super::routes::route_changes(&inputs.route_events, day.from, day.to.min(generated_at)),
        incidents: inputs.incidents,
        hygiene: inputs.hygiene,
    }
}

/// Edges broken during the day: down some time, or an event into trouble, or already in
/// trouble at the start.
pub(crate) fn troubled(
    per_edge: &BTreeMap<EdgeKey, EdgeDay>,
    start_states: &BTreeMap<EdgeKey, EventState>,
    events: &BTreeMap<EdgeKey, Vec<EventDay>>,
) -> BTreeSet<EdgeKey> {
    let down = per_edge.iter().filter(|(_, d)| d.down_seconds > 0).map(|(k, _)| k);
    let at_start = start_states.iter().filter(|(_, s)| s.is_trouble()).map(|(k, _)| k);
    let into_trouble = events.iter().filter(|(_, evs)| evs.iter().any(|e| e.to.is_trouble())).map(|(k, _)| k);
    down.chain(at_start).chain(into_trouble).cloned().collect()
}

/// The broken section: every [`troubled`] edge with its figures, longest down first.
pub(crate) fn broken(i: &Inputs) -> Vec<BrokenDay> {
    let mut broken: Vec<BrokenDay> = troubled(&i.per_edge, &i.start_states, &i.events)
        .into_iter()
        .map(|k| {
            let d = i.per_edge.get(&k).cloned().unwrap_or_default();
            let evs = i.events.get(&k).cloned().unwrap_or_default();
            let (dst, services) = i.edge_info.get(&k).cloned().unwrap_or_default();
            let flapping = i.start_states.get(&k) == Some(&EventState::Flapping)
                || evs.iter().any(|e| e.to == EventState::Flapping);
            BrokenDay {
                src: k.0,
                dst_ip: k.1,
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
    broken
}

/// Edges down some time of the day.
fn down_keys(per_edge: &BTreeMap<EdgeKey, EdgeDay>) -> BTreeSet<&EdgeKey> {
    per_edge.iter().filter(|(_, d)| d.down_seconds > 0).map(|(k, _)| k).collect()
}

/// The summary: the graph at the end of the day and the day's cycles, downs and worst hour.
pub(crate) fn summary(i: &Inputs, local_hour: &dyn Fn(DateTime<Utc>) -> String) -> Summary {
    let cycles: i64 = i.hours.values().map(|h| h.0).sum();
    let failed_cycles: i64 = i.hours.values().map(|h| h.1).sum();
    let worst_hour = i
        .hours
        .iter()
        .filter(|(_, h)| h.1 > 0)
        .max_by(|a, b| a.1 .1.cmp(&b.1 .1).then(b.0.cmp(a.0)))
        .map(|(hour, h)| WorstHour { hour: *hour, local: local_hour(*hour), failed_cycles: h.1, edges_down: h.2 });
    let services_end: BTreeSet<&str> = i.nodes_end.iter().flat_map(|n| n.services.iter().map(String::as_str)).collect();
    Summary {
        nodes: i.nodes_end.len(),
        edges: i.edges_end.len(),
        services: services_end.len(),
        dcs: i.nodes_end.iter().map(|n| n.dc.as_str()).collect::<BTreeSet<_>>().len(),
        cycles,
        failed_cycles,
        edges_down: down_keys(&i.per_edge).len(),
        down_minutes: round1(i.per_edge.values().map(|d| d.down_seconds).sum::<i64>() as f64 / 60.0),
        incidents: i.incidents.len(),
        worst_hour,
    }
}

/// The day's DNS queries of an edge.
fn queries_of(i: &Inputs, e: &EdgeAt) -> i64 {
    i.per_edge.get(&(e.src.clone(), e.dst_ip.clone())).map_or(0, |d| d.queries)
}

fn node_by_name(nodes: &[NodeView]) -> BTreeMap<&str, &NodeView> {
    nodes.iter().map(|n| (n.name.as_str(), n)).collect()
}

/// Who depends on each service at the end of the day.
pub(crate) fn services(i: &Inputs) -> Vec<ServiceDeps> {
    let node_by_name = node_by_name(&i.nodes_end);
    let mut providers: BTreeMap<&str, usize> = BTreeMap::new();
    for s in i.nodes_end.iter().flat_map(|n| &n.services) {
        *providers.entry(s).or_default() += 1;
    }
    let mut services: BTreeMap<String, ServiceDeps> = BTreeMap::new();
    let mut service_consumers: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for e in &i.edges_end {
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
            entry.queries += queries_of(i, e);
            if service_consumers.entry(s.clone()).or_default().insert(&src.name) {
                entry.consumers += 1;
                *entry.consumers_by_dc.entry(src.dc.clone()).or_default() += 1;
                *entry.consumers_by_role.entry(role(src)).or_default() += 1;
            }
        }
    }
    services.into_values().collect()
}

/// What each role depends on at the end of the day.
pub(crate) fn roles(i: &Inputs) -> Vec<RoleDeps> {
    let node_by_name = node_by_name(&i.nodes_end);
    let mut roles: BTreeMap<String, RoleDeps> = BTreeMap::new();
    for n in &i.nodes_end {
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
    for e in &i.edges_end {
        let Some(src) = node_by_name.get(e.src.as_str()) else { continue };
        let r = roles.get_mut(&role(src)).expect("every node's role is listed");
        for s in &e.services {
            if role_uses.insert((role(src), s.clone(), &src.name)) {
                *r.services.entry(s.clone()).or_default() += 1;
            }
        }
        if let Some(dst) = e.dst.as_deref().and_then(|d| node_by_name.get(d)) {
            *r.depends_on_roles.entry(role(dst)).or_default() += 1;
        }
    }
    roles.into_values().collect()
}

/// A cross-DC pair's sums: edges, consumers, services, queries.
type CrossSum<'a> = (usize, BTreeSet<&'a str>, BTreeSet<String>, i64);

/// Dependencies from one data center to another at the end of the day, most edges first.
pub(crate) fn cross_dc(i: &Inputs) -> Vec<CrossDc> {
    let node_by_name = node_by_name(&i.nodes_end);
    let mut cross: BTreeMap<(String, String), CrossSum<'_>> = BTreeMap::new();
    for e in &i.edges_end {
        let Some(src) = node_by_name.get(e.src.as_str()) else { continue };
        let Some(dst) = e.dst.as_deref().and_then(|d| node_by_name.get(d)) else { continue };
        if dst.dc != src.dc {
            let c = cross.entry((src.dc.clone(), dst.dc.clone())).or_default();
            c.0 += 1;
            c.1.insert(&src.name);
            c.2.extend(e.services.iter().cloned());
            c.3 += queries_of(i, e);
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
    cross_dc
}

/// The picture: consumers by the service they provide (else their role) → what they use
/// (its services, else the destination's first service or role).
pub(crate) fn service_graph(i: &Inputs) -> Vec<ServiceLink> {
    service_links(&i.nodes_end, &i.edges_end, &i.per_edge)
}

/// [`service_graph`] from the three reads it needs (the graph at the end of the day and the
/// day's rollups), so it can be made before the rest is read.
pub(crate) fn service_links(
    nodes_end: &[NodeView],
    edges_end: &[EdgeAt],
    per_edge: &BTreeMap<EdgeKey, EdgeDay>,
) -> Vec<ServiceLink> {
    let node_by_name = node_by_name(nodes_end);
    let down_keys = down_keys(per_edge);
    let mut links: BTreeMap<(String, String), ServiceLink> = BTreeMap::new();
    for e in edges_end {
        let Some(src) = node_by_name.get(e.src.as_str()) else { continue };
        let dst = e.dst.as_deref().and_then(|d| node_by_name.get(d));
        let from = src.services.first().cloned().unwrap_or_else(|| format!("role:{}", role(src)));
        let targets: Vec<String> = if !e.services.is_empty() {
            e.services.clone()
        } else if let Some(dst) = dst {
            vec![dst.services.first().cloned().unwrap_or_else(|| format!("role:{}", role(dst)))]
        } else {
            vec![]
        };
        let is_down = down_keys.contains(&(e.src.clone(), e.dst_ip.clone()));
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
    links.into_values().collect()
}

/// What changed from the start of the day to its end, each with when (the day's bound
/// when the history does not say).
pub(crate) fn changes(i: &Inputs, day: &Day) -> Changes {
    let key = |e: &EdgeAt| (e.src.clone(), e.dst_ip.clone());
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
    let (t, d) = (&i.times, &i.diff);
    Changes {
        new_dependencies: d.edges_appeared.iter().map(|e| dep(e, t.edge_from.get(&key(e)), day.from)).collect(),
        vanished_dependencies: d.edges_vanished.iter().map(|e| dep(e, t.edge_to.get(&key(e)), day.to)).collect(),
        new_nodes: d.nodes_appeared.iter().map(|n| node(n, t.node_from.get(&n.name), day.from)).collect(),
        retired_nodes: d.nodes_vanished.iter().map(|n| node(n, t.node_to.get(&n.name), day.to)).collect(),
    }
}

/// Whether the day has data at all, and why there is little or nothing when so.
pub(crate) fn notes(i: &Inputs, cycles: i64) -> (bool, Vec<String>) {
    let no_graph = i.nodes_end.is_empty() && i.diff.nodes_vanished.is_empty();
    let mut notes = Vec::new();
    if no_graph {
        notes.push(
            "the graph was empty on this day: edgewatch knew of no node yet, or every node had been retired".into(),
        );
    }
    if cycles == 0 {
        notes.push("no probe results for this day: no prober ran, or their rollups have been pruned".into());
    }
    (!no_graph || cycles > 0, notes)
}

fn role(n: &NodeView) -> String {
    n.role.clone().unwrap_or_else(|| "-".into())
}

pub(crate) fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::history;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, h, m, 0).unwrap()
    }

    fn day() -> Day {
        Day { date: at(0, 0).date_naive(), tz: "UTC".into(), from: at(0, 0), to: at(0, 0) + chrono::Duration::days(1) }
    }

    fn node(name: &str, dc: &str, role: Option<&str>, services: &[&str]) -> NodeView {
        NodeView {
            name: name.into(),
            host: format!("{name}-host"),
            dc: dc.into(),
            role: role.map(Into::into),
            ips: vec![],
            services: services.iter().map(|s| s.to_string()).collect(),
            serving: !services.is_empty(),
            retired: false,
        }
    }

    fn edge(src: &str, dst_ip: &str, dst: Option<&str>, services: &[&str]) -> EdgeAt {
        EdgeAt {
            src: src.into(),
            dst_ip: dst_ip.into(),
            dst: dst.map(Into::into),
            services: services.iter().map(|s| s.to_string()).collect(),
            sources: vec!["dns".into()],
            first_seen: at(0, 0),
            state: EventState::Up,
            state_since: None,
        }
    }

    fn key(src: &str, ip: &str) -> EdgeKey {
        (src.into(), ip.into())
    }

    fn ev(h: u32, from: EventState, to: EventState) -> EventDay {
        EventDay { at: at(h, 0), from, to }
    }

    /// fe1 (dc a) uses db (dc b, down 90 minutes) and cache (dc a); fe2 (dc a) uses db;
    /// ops1 (no role) uses an address nobody owns; web1 appeared during the day.
    fn inputs() -> Inputs {
        let nodes_start = vec![
            node("fe1", "a", Some("fe"), &[]),
            node("fe2", "a", Some("fe"), &[]),
            node("db1", "b", Some("db"), &["postgres"]),
            node("cache1", "a", Some("cache"), &["redis"]),
            node("ops1", "a", None, &[]),
        ];
        let mut nodes_end = nodes_start.clone();
        nodes_end.push(node("web1", "b", Some("web"), &["http"]));
        let edges_start = vec![
            edge("fe1", "10.0.0.2", Some("db1"), &["postgres"]),
            edge("fe1", "10.0.0.3", Some("cache1"), &["redis"]),
            edge("fe2", "10.0.0.2", Some("db1"), &["postgres"]),
        ];
        let mut edges_end = edges_start.clone();
        edges_end.push(edge("ops1", "10.9.9.9", None, &[]));
        edges_end.push(edge("web1", "10.0.0.3", Some("cache1"), &[]));
        let diff = history::compare(at(0, 0), at(23, 59), (&nodes_start, &edges_start), (&nodes_end, &edges_end));
        let per_edge = BTreeMap::from([
            (key("fe1", "10.0.0.2"), EdgeDay { cycles: 720, failed: 45, down_seconds: 5400, queries: 100 }),
            (key("fe1", "10.0.0.3"), EdgeDay { cycles: 720, failed: 0, down_seconds: 0, queries: 7 }),
            (key("fe2", "10.0.0.2"), EdgeDay { cycles: 720, failed: 1, down_seconds: 0, queries: 3 }),
        ]);
        let hours = BTreeMap::from([(at(14, 0), (90, 45, 1)), (at(15, 0), (90, 1, 0)), (at(16, 0), (90, 45, 1))]);
        let start_states = BTreeMap::from([(key("fe2", "10.0.0.2"), EventState::Flapping)]);
        let events = BTreeMap::from([
            (
                key("fe1", "10.0.0.2"),
                vec![ev(14, EventState::Up, EventState::Down), ev(16, EventState::Down, EventState::Up)],
            ),
            (key("fe1", "10.0.0.3"), vec![ev(9, EventState::Unknown, EventState::Up)]),
        ]);
        let edge_info = BTreeMap::from([
            (key("fe1", "10.0.0.2"), (Some("db1".to_string()), vec!["postgres".to_string()])),
            (key("fe2", "10.0.0.2"), (Some("db1".to_string()), vec!["postgres".to_string()])),
        ]);
        let mut times = ChangeTimes::default();
        times.node_from.insert("web1".into(), at(11, 0));
        times.edge_from.insert(key("web1", "10.0.0.3"), at(11, 5));
        Inputs {
            nodes_end,
            edges_end,
            diff,
            per_edge,
            hours,
            start_states,
            events,
            edge_info,
            incidents: vec![],
            times,
            hygiene: Hygiene::default(),
            route_events: Vec::new(),
        }
    }

    #[test]
    fn troubled_is_down_some_time_in_trouble_at_the_start_or_moved_into_trouble() {
        let i = inputs();
        let t = troubled(&i.per_edge, &i.start_states, &i.events);
        assert_eq!(t, BTreeSet::from([key("fe1", "10.0.0.2"), key("fe2", "10.0.0.2")]));
        let mut events = i.events.clone();
        events.insert(key("fe1", "10.0.0.3"), vec![ev(9, EventState::Up, EventState::Degraded)]);
        assert!(troubled(&i.per_edge, &i.start_states, &events).contains(&key("fe1", "10.0.0.3")));
    }

    #[test]
    fn broken_lists_the_longest_down_first_with_names_and_the_flapping_flag() {
        let b = broken(&inputs());
        let rows: Vec<_> = b.iter().map(|b| (b.src.as_str(), b.down_minutes, b.flapping, b.events.len())).collect();
        assert_eq!(rows, [("fe1", 90.0, false, 2), ("fe2", 0.0, true, 0)]);
        assert_eq!((b[0].dst.as_deref(), b[0].services.as_slice()), (Some("db1"), &["postgres".to_string()][..]));
        assert_eq!((b[0].cycles, b[0].failed_cycles), (720, 45));
    }

    #[test]
    fn summary_counts_the_end_of_the_day_and_finds_the_earliest_worst_hour() {
        let s = summary(&inputs(), &|h| h.format("%H:%M").to_string());
        assert_eq!((s.nodes, s.edges, s.services, s.dcs), (6, 5, 3, 2));
        assert_eq!((s.cycles, s.failed_cycles, s.edges_down, s.down_minutes, s.incidents), (270, 91, 1, 90.0, 0));
        let worst = s.worst_hour.unwrap();
        assert_eq!(
            (worst.hour, worst.local.as_str(), worst.failed_cycles, worst.edges_down),
            (at(14, 0), "14:00", 45, 1)
        );
    }

    #[test]
    fn services_count_each_consumer_once_by_dc_and_role() {
        let s = services(&inputs());
        let pg = s.iter().find(|s| s.service == "postgres").unwrap();
        assert_eq!((pg.providers, pg.consumers, pg.queries), (1, 2, 103));
        assert_eq!(pg.consumers_by_dc, BTreeMap::from([("a".to_string(), 2)]));
        assert_eq!(pg.consumers_by_role, BTreeMap::from([("fe".to_string(), 2)]));
        assert_eq!(s.iter().map(|s| s.service.as_str()).collect::<Vec<_>>(), ["postgres", "redis"]);
    }

    #[test]
    fn roles_list_every_role_with_its_services_and_the_roles_it_reaches() {
        let r = roles(&inputs());
        assert_eq!(
            r.iter().map(|r| (r.role.as_str(), r.nodes)).collect::<Vec<_>>(),
            [("-", 1), ("cache", 1), ("db", 1), ("fe", 2), ("web", 1)]
        );
        let fe = r.iter().find(|r| r.role == "fe").unwrap();
        assert_eq!(fe.services, BTreeMap::from([("postgres".to_string(), 2), ("redis".to_string(), 1)]));
        assert_eq!(fe.depends_on_roles, BTreeMap::from([("cache".to_string(), 1), ("db".to_string(), 2)]));
    }

    #[test]
    fn cross_dc_sums_edges_consumers_services_and_queries_per_pair() {
        let c = cross_dc(&inputs());
        let pairs: Vec<_> = c.iter().map(|c| (c.from_dc.as_str(), c.to_dc.as_str(), c.edges, c.consumers)).collect();
        assert_eq!(pairs, [("a", "b", 2, 2), ("b", "a", 1, 1)]);
        assert_eq!((c[0].services.as_slice(), c[0].queries), (&["postgres".to_string()][..], 103));
    }

    #[test]
    fn the_service_graph_groups_consumers_and_marks_down_and_cross_dc_links() {
        let g = service_graph(&inputs());
        let links: Vec<_> = g.iter().map(|l| (l.from.as_str(), l.to.as_str(), l.edges, l.broken, l.cross_dc)).collect();
        assert_eq!(
            links,
            [("http", "redis", 1, 0, true), ("role:fe", "postgres", 2, 1, true), ("role:fe", "redis", 1, 0, false)]
        );
    }

    #[test]
    fn changes_carry_their_time_or_the_days_bound() {
        let c = changes(&inputs(), &day());
        let new: Vec<_> = c.new_dependencies.iter().map(|d| (d.src.as_str(), d.at)).collect();
        assert_eq!(new, [("ops1", day().from), ("web1", at(11, 5))]);
        assert_eq!(c.new_nodes.iter().map(|n| (n.name.as_str(), n.at)).collect::<Vec<_>>(), [("web1", at(11, 0))]);
        assert!(c.vanished_dependencies.is_empty() && c.retired_nodes.is_empty());
    }

    #[test]
    fn notes_say_why_a_day_is_empty() {
        let mut i = inputs();
        assert_eq!(notes(&i, 270), (true, vec![]));
        let (has, n) = notes(&i, 0);
        assert!(has && n.len() == 1 && n[0].starts_with("no probe results"), "{n:?}");
        i.nodes_end.clear();
        i.diff.nodes_vanished.clear();
        let (has, n) = notes(&i, 0);
        assert!(!has && n.len() == 2 && n[0].starts_with("the graph was empty"), "{n:?}");
        assert!(notes(&i, 5).0, "cycles alone are data");
    }
}
