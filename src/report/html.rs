//! The report as one self-contained HTML page: inline CSS, the picture as inline SVG, no
//! script and no external resource (a Content-Security-Policy says so to the browser too).
//! `maud` escapes every name put into the page.

use std::collections::BTreeMap;

use graph_store::report::{BrokenDay, Counted, DepChange, NodeChange, Report};
use graph_store::vocab::EventState;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::{
    broken_into, figures, int, minutes, percent, rtt_change, trouble, Clock, BROKEN, CHANGES, CROSS_DC, EVENTS_SHOWN,
    GRAPH, HYGIENE, INCIDENTS, ROLES, ROUTES, ROUTES_LEAD, SERVICES, SUMMARY,
};

/// Names longer than this are clamped to a few lines on screen (all of it stays in the page).
const LONG_NAME: usize = 120;

/// A picture wider than this (in points, as Graphviz sizes it) is not shrunk to the page,
/// whose width it would make unreadable, but scrolls sideways.
const WIDE_PICTURE_PT: f64 = 2400.0;

const CSS: &str = include_str!("report.css");

/// The page. `svg` is the picture from [`super::svg`], put in as markup (so it must come
/// from there, not from elsewhere); without it the page says there is no picture.
pub fn html(r: &Report, svg: Option<&str>) -> String {
    let clock = Clock::new(r);
    let title = format!("Dependency report for {} ({})", r.date, clock.zone());
    let mut sections: Vec<(&str, &str)> = Vec::new();
    if r.has_data {
        sections.extend([SUMMARY, GRAPH]);
    }
    let show = |empty: bool| r.has_data || !empty;
    let c = &r.changes;
    let h = &r.hygiene;
    for (section, empty) in [
        (SERVICES, r.services.is_empty()),
        (ROLES, r.roles.is_empty()),
        (
            CHANGES,
            c.new_dependencies.is_empty()
                && c.vanished_dependencies.is_empty()
                && c.new_nodes.is_empty()
                && c.retired_nodes.is_empty(),
        ),
        (CROSS_DC, r.cross_dc.is_empty()),
        (BROKEN, r.broken.is_empty()),
        (INCIDENTS, r.incidents.is_empty()),
        (ROUTES, r.route_changes.is_empty()),
        (
            HYGIENE,
            h.unknown_clients.is_empty() && h.unresolved_names.is_empty() && h.services_without_provider.is_empty(),
        ),
    ] {
        if show(empty) {
            sections.push(section);
        }
    }
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                div.page {
                    header {
                        h1 { "Dependency report " span.date { (r.date.to_string()) } }
                        p.meta {
                            "Time zone " b { (clock.zone()) } " · from " (clock.stamp(&r.from)) " to " (clock.stamp(&r.to))
                            " · generated " (clock.stamp(&r.generated_at))
                        }
                        @if sections.len() > 1 {
                            nav {
                                @for (id, heading) in &sections {
                                    a href=(format!("#{id}")) { (heading) }
                                }
                            }
                        }
                    }
                    @if !r.has_data {
                        div.nodata #nodata {
                            p { strong { "No data for this day." } " The store has no graph and no probe results for it, so there are no figures to report." }
                            (notes(&r.notes))
                        }
                    } @else if !r.notes.is_empty() {
                        div.notes { (notes(&r.notes)) }
                    }
                    @for (id, _) in &sections {
                        @match *id {
                            "summary" => (summary(r)),
                            "graph" => (picture(r, svg)),
                            "services" => (services(r)),
                            "roles" => (roles(r)),
                            "changes" => (changes(r, &clock)),
                            "cross-dc" => (cross_dc(r)),
                            "broken" => (broken(r, &clock)),
                            "incidents" => (incidents(r, &clock)),
                            "routes" => (routes(r, &clock)),
                            "hygiene" => (hygiene(r)),
                            _ => {}
                        }
                    }
                    footer { "edgewatch · " (title) }
                }
            }
        }
    };
    page.into_string()
}

fn notes(notes: &[String]) -> Markup {
    html! {
        @if !notes.is_empty() {
            ul { @for n in notes { li { (n) } } }
        }
    }
}

fn routes(r: &Report, clock: &Clock) -> Markup {
    let addrs = |a: &[String]| if a.is_empty() { "*".to_string() } else { a.join(", ") };
    let body = html! {
        @if r.route_changes.is_empty() { (none()) } @else {
            table {
                thead { tr {
                    th { "From data center" } th { "To data center" } th.num { "Changes" } th { "Pair" } th { "Time" }
                    th.num { "First different hop" } th { "Old → new" } th { "RTT before → after" }
                } }
                tbody { @for x in &r.route_changes { @for p in &x.pairs { @for c in &p.changes { tr {
                    td { (name(&x.from_dc)) }
                    td { (name(&x.to_dc)) }
                    td.num { (int(x.changes as i64)) }
                    td { (name(&p.src)) " → " (name(&p.dst)) }
                    td { (clock.time(&c.at)) }
                    td.num { (c.ttl.map(|t| t.to_string()).unwrap_or_default()) }
                    td { (addrs(&c.old_addrs)) " → " (addrs(&c.new_addrs)) }
                    td { (rtt_change(c.rtt_before_ms, c.rtt_after_ms)) }
                } } } } }
            }
            table {
                thead { tr { th { "Pair" } th { "Path (hops in order)" } th.num { "Minutes" } } }
                tbody { @for x in &r.route_changes { @for p in &x.pairs { @for m in &p.paths { tr {
                    td { (name(&p.src)) " → " (name(&p.dst)) }
                    td { (m.path) }
                    td.num { (format!("{:.0}", m.minutes)) }
                } } } } }
            }
        }
    };
    section(ROUTES, Some(ROUTES_LEAD), body)
}

/// A section: its anchor, heading and an optional line saying what it shows.
fn section(which: (&str, &str), lead: Option<&str>, body: Markup) -> Markup {
    html! {
        section id=(which.0) {
            h2 { (which.1) }
            @if let Some(lead) = lead { p.lead { (lead) } }
            (body)
        }
    }
}

/// A name from the CMDB or DNS, as text; very long ones clamped on screen.
fn name(s: &str) -> Markup {
    if s.chars().count() > LONG_NAME {
        html! { span.name.long title=(format!("{} characters", s.chars().count())) { (s) } }
    } else {
        html! { span.name { (s) } }
    }
}

fn none() -> Markup {
    html! { p.none { "None." } }
}

fn chips(map: &BTreeMap<String, usize>) -> Markup {
    let mut items: Vec<(&String, &usize)> = map.iter().collect();
    items.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    html! {
        @if items.is_empty() { span.muted { "–" } }
        @for (k, v) in items {
            span.chip { (name(k)) " " b { (int(*v as i64)) } }
        }
    }
}

fn list(names: &[String]) -> Markup {
    html! {
        @if names.is_empty() { span.muted { "–" } }
        @for (i, s) in names.iter().enumerate() {
            @if i > 0 { ", " }
            (name(s))
        }
    }
}

fn target(dst: &Option<String>, ip: &str) -> Markup {
    html! {
        @match dst {
            Some(n) => { (name(n)) " " span.ip { (ip) } },
            None => { span.ip { (ip) } " " span.muted { "(no node)" } },
        }
    }
}

fn summary(r: &Report) -> Markup {
    let body = html! {
        div.cards {
            @for f in figures(&r.summary) {
                div.card.alarm[f.alarm] {
                    div.label { (f.label) }
                    div.value { (f.value) }
                    @if let Some(d) = &f.detail { div.detail { (d) } }
                }
            }
        }
    };
    section(SUMMARY, None, body)
}

fn picture(r: &Report, svg: Option<&str>) -> Markup {
    let body = html! {
        @if r.service_graph.is_empty() {
            p.none { "No service dependencies at the end of the day." }
        } @else if let Some(svg) = svg {
            div.picture.wide[wider_than(svg, WIDE_PICTURE_PT)] { (PreEscaped(svg)) }
            p.legend {
                span.key.ok { "→" } " an arrow per consumer group and service, labelled with its number of edges · "
                span.key.bad { "→" } " red: edges down during the day (how many in brackets) · "
                span.key.dashed { "⇢" } " dashed: crosses data centers · grey boxes: consumers grouped by role"
            }
        } @else {
            p.none { "No picture: Graphviz's dot was not available to draw the graph (install graphviz)." }
        }
    };
    section(GRAPH, None, body)
}

/// Whether the `<svg width="…pt">` Graphviz wrote is wider than `limit` points.
fn wider_than(svg: &str, limit: f64) -> bool {
    let head = &svg[..svg.find('>').unwrap_or(svg.len())];
    head.split_once(" width=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .and_then(|(w, _)| w.trim_end_matches("pt").parse::<f64>().ok())
        .is_some_and(|w| w > limit)
}

fn services(r: &Report) -> Markup {
    let body = html! {
        @if r.services.is_empty() { (none()) } @else {
            table {
                thead { tr {
                    th { "Service" } th.num { "Providers" } th.num { "Consumers" }
                    th { "Consumers by data center" } th { "Consumers by role" } th.num { "Queries" }
                } }
                tbody {
                    @for s in &r.services {
                        @let down = broken_into(r, &s.service);
                        tr.broken[down > 0] {
                            td {
                                (name(&s.service))
                                @if down > 0 { " " span.badge.down { (down) " down" } }
                            }
                            td.num { (int(s.providers as i64)) }
                            td.num { (int(s.consumers as i64)) }
                            td { (chips(&s.consumers_by_dc)) }
                            td { (chips(&s.consumers_by_role)) }
                            td.num { (int(s.queries)) }
                        }
                    }
                }
            }
        }
    };
    section(
        SERVICES,
        Some("Consumers at the end of the day, by data center and by role; DNS queries of the day."),
        body,
    )
}

fn roles(r: &Report) -> Markup {
    let body = html! {
        @if r.roles.is_empty() { (none()) } @else {
            table {
                thead { tr { th { "Role" } th.num { "Nodes" } th { "Services used (nodes)" } th { "Depends on roles (edges)" } } }
                tbody {
                    @for role in &r.roles {
                        tr {
                            td { (name(&role.role)) }
                            td.num { (int(role.nodes as i64)) }
                            td { (chips(&role.services)) }
                            td { (chips(&role.depends_on_roles)) }
                        }
                    }
                }
            }
        }
    };
    section(ROLES, None, body)
}

fn changes(r: &Report, clock: &Clock) -> Markup {
    let c = &r.changes;
    let deps = |title: &str, changes: &[DepChange], class: &str| {
        html! {
            h3 { (title) " " span.count { (changes.len()) } }
            @if changes.is_empty() { (none()) } @else {
                table.(class) {
                    thead { tr { th.time { "Time" } th { "Consumer" } th { "Provider" } th { "Services" } } }
                    tbody { @for d in changes { tr {
                        td.time { (clock.time(&d.at)) }
                        td { (name(&d.src)) }
                        td { (target(&d.dst, &d.dst_ip)) }
                        td { (list(&d.services)) }
                    } } }
                }
            }
        }
    };
    let nodes = |title: &str, changes: &[NodeChange], class: &str| {
        html! {
            h3 { (title) " " span.count { (changes.len()) } }
            @if changes.is_empty() { (none()) } @else {
                table.(class) {
                    thead { tr { th.time { "Time" } th { "Node" } th { "Host" } th { "Data center" } th { "Role" } } }
                    tbody { @for n in changes { tr {
                        td.time { (clock.time(&n.at)) }
                        td { (name(&n.name)) }
                        td { (name(&n.host)) }
                        td { (name(&n.dc)) }
                        td { @match &n.role { Some(role) => (name(role)), None => span.muted { "–" } } }
                    } } }
                }
            }
        }
    };
    let body = html! {
        (deps("New dependencies", &c.new_dependencies, "added"))
        (deps("Vanished dependencies", &c.vanished_dependencies, "removed"))
        (nodes("New nodes", &c.new_nodes, "added"))
        (nodes("Retired nodes", &c.retired_nodes, "removed"))
    };
    section(
        CHANGES,
        Some("Between the report's start and end (the day, or the --since span); times in the report's time zone."),
        body,
    )
}

fn cross_dc(r: &Report) -> Markup {
    let body = html! {
        @if r.cross_dc.is_empty() { (none()) } @else {
            table {
                thead { tr {
                    th { "From data center" } th { "To data center" } th.num { "Edges" } th.num { "Consumers" }
                    th { "Services" } th.num { "Queries" }
                } }
                tbody { @for x in &r.cross_dc { tr {
                    td { (name(&x.from_dc)) }
                    td { (name(&x.to_dc)) }
                    td.num { (int(x.edges as i64)) }
                    td.num { (int(x.consumers as i64)) }
                    td { (list(&x.services)) }
                    td.num { (int(x.queries)) }
                } } }
            }
        }
    };
    section(
        CROSS_DC,
        Some("Consumers in one data center using providers in another: the usual cause of 504s when routing changes."),
        body,
    )
}

fn broken(r: &Report, clock: &Clock) -> Markup {
    let body = html! {
        @if r.broken.is_empty() { (none()) } @else {
            table.trouble {
                thead { tr {
                    th.status { "State" } th { "Consumer" } th { "Provider" } th { "Services" } th.num { "Down" }
                    th.num { "Failed / cycles" } th.events { "State changes" }
                } }
                tbody { @for b in &r.broken {
                    @let what = trouble(b).as_str();
                    tr.broken.(what) {
                        td {
                            span.badge.(what) { (what.to_uppercase()) }
                            @if b.flapping && trouble(b) != EventState::Flapping { " " span.badge.flapping { "FLAPPING" } }
                        }
                        td { (name(&b.src)) }
                        td { (target(&b.dst, &b.dst_ip)) }
                        td { (list(&b.services)) }
                        td.num { (minutes(b.down_minutes)) }
                        td.num {
                            (int(b.failed_cycles)) " / " (int(b.cycles))
                            br; span.muted { (percent(b.failed_cycles as f64, b.cycles as f64)) }
                        }
                        td { (events(b, clock)) }
                    }
                } }
            }
        }
    };
    section(BROKEN, Some("Edges down, degraded or flapping at some time of the day, longest down first."), body)
}

fn events(b: &BrokenDay, clock: &Clock) -> Markup {
    html! {
        @if b.events.is_empty() { span.muted { "–" } }
        ul.events {
            @for e in b.events.iter().take(EVENTS_SHOWN) {
                li {
                    span.time { (clock.time_s(&e.at)) } " "
                    span.state.(state_class(e.from)) { (e.from) } " → " span.state.(state_class(e.to)) { (e.to) }
                }
            }
            @if b.events.len() > EVENTS_SHOWN { li.muted { "and " (b.events.len() - EVENTS_SHOWN) " more" } }
        }
    }
}

/// A CSS class for a state: only the ones we style, never the data itself.
fn state_class(state: EventState) -> &'static str {
    match state {
        EventState::Up => "s-up",
        EventState::Down => "s-down",
        EventState::Degraded | EventState::Flapping => "s-warn",
        EventState::Stale | EventState::Unknown => "s-other",
    }
}

fn incidents(r: &Report, clock: &Clock) -> Markup {
    let body = html! {
        @if r.incidents.is_empty() { (none()) } @else {
            table {
                thead { tr {
                    th.kind { "Kind" } th { "Culprit" } th.time { "Since" } th.time { "Until" } th.num { "Edges" } th { "Evidence" }
                } }
                tbody { @for i in &r.incidents { tr.broken[i.until.is_none()] {
                    td { span.badge.incident { (i.kind) } }
                    td { (name(&i.culprit)) }
                    td.time { (clock.time(&i.since)) }
                    td.time { @match &i.until { Some(u) => (clock.time(u)), None => strong.open { "still open" } } }
                    td.num { (int(i.edges as i64)) }
                    td.evidence { (name(&i.evidence)) }
                } } }
            }
        }
    };
    section(INCIDENTS, Some("Incidents open at some time of the day (from the diagnosis), longest first."), body)
}

fn hygiene(r: &Report) -> Markup {
    let h = &r.hygiene;
    let counted = |title: &str, what: &str, items: &[Counted]| {
        html! {
            div.hygiene {
                h3 { (title) " " span.count { (items.len()) } }
                @if items.is_empty() { (none()) } @else {
                    table {
                        thead { tr { th { (what) } th.num { "Queries" } } }
                        tbody { @for c in items { tr { td { (name(&c.name)) } td.num { (int(c.count)) } } } }
                    }
                }
            }
        }
    };
    let body = html! {
        div.columns {
            (counted("Top unknown clients", "Client address", &h.unknown_clients))
            (counted("Unresolved names", "Name", &h.unresolved_names))
            (counted("Services without a provider", "Service", &h.services_without_provider))
        }
    };
    section(HYGIENE, Some("What the CMDB lacks, as seen in DNS discovery (counts since the store began)."), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_pictures_are_told_by_their_width() {
        assert!(wider_than(r#"<svg width="3000pt" height="20pt" viewBox="0 0 3000 20">"#, 2400.0));
        assert!(!wider_than(r#"<svg width="800pt" height="20pt">"#, 2400.0));
        assert!(!wider_than("<svg>", 2400.0));
        assert!(!wider_than("", 2400.0));
    }
}
