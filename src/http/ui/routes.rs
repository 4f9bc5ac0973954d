//! The route pages. `/ui/routes`: the route events newest first, as `edgewatch route
//! changes` lists them (`?since=` a duration back from now or a time; `?kind=`; `?dc=`), each
//! linking to its pair's page around the event. `/ui/routes/pair?src=…&dst=…`: the hops of
//! a window as `route show` has them (address, the node holding it, owner, AS, loss, RTT),
//! and two windows side by side as `route diff` compares them, the first diverging hop
//! marked, and the pair's newest route events. `from`, `to` (window starts) and `window` (width) pick the windows; without
//! them the later window is the last 5 minutes and the earlier one the same 30 minutes
//! before.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use graph_store::hop_names::HopName;
use graph_store::paths::{DiffRules, EventFilter, HopStatus, RouteEventView};
use maud::{html, Markup};
use serde::Deserialize;

use super::super::error::{with_store_timeout, ApiError};
use super::super::graph::ApiQuery;
use super::super::App;
use super::{node_link, segment, when, UiResult};
use crate::labels::{AddrView, Labels};
use crate::route_query;
use crate::route_view::{Comparison, HopView, RouteDiff, WindowView};

/// The event kinds `?kind=` takes.
const KINDS: [&str; 6] = ["changed", "flap-start", "flap-end", "loss-started", "loss-moved", "loss-cleared"];
/// The quick choices of `/ui/routes?since=`.
const SINCE_CHOICES: [&str; 5] = ["1h", "6h", "24h", "7d", "30d"];
const DEFAULT_SINCE: &str = "24h";
/// At most this many events listed; on a pair's page, its newest.
const EVENTS: i64 = 500;
const PAIR_EVENTS: i64 = 20;
/// A window's default width, and the longest.
const DEFAULT_WIDTH: &str = "5m";
const MAX_WIDTH: Duration = Duration::from_secs(31 * 86_400);
/// How far back the earlier window starts when only the later one is given.
const COMPARE_BACK: &str = "30m";
/// The quick comparisons of the pair page: the latest window against this long before.
const COMPARE_CHOICES: [(&str, &str); 3] =
    [("30m", "now vs 30 min ago"), ("1h", "now vs 1 h ago"), ("24h", "now vs 24 h ago")];

/// `/ui/routes`'s parameters.
#[derive(Debug, Deserialize)]
pub struct ChangesParams {
    /// A duration back from now (`24h`, `7d`), or a time (RFC 3339, or `2026-12-05 16:00` UTC).
    since: Option<String>,
    /// One event kind.
    kind: Option<String>,
    /// One data center (pairs from or to it) or two, comma-separated (pairs between them).
    dc: Option<String>,
}

/// `/ui/routes/pair`'s parameters.
#[derive(Debug, Deserialize)]
pub struct PairParams {
    src: Option<String>,
    dst: Option<String>,
    /// The earlier window's start: a time, or a duration before `to`.
    from: Option<String>,
    /// The later window's start: a time, or a duration back from now.
    to: Option<String>,
    /// Each window's width (default 5m).
    window: Option<String>,
}

/// A parameter that was given and is not blank (an empty form field is not given).
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn bad(m: String) -> ApiError {
    ApiError::BadRequest(m)
}

/// A duration such as `30m` or `7d`, if `v` is one.
fn duration(v: &str) -> Option<Duration> {
    humantime::parse_duration(v).ok()
}

/// A time as the forms take it: RFC 3339, or `2026-12-05 16:00[:00]` (also with `T`) in UTC.
fn parse_when(name: &str, v: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(v, f).ok())
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            bad(format!(
                "{name}: {v:?} is neither a time such as 2026-12-05T16:00:00Z (or 2026-12-05 16:00, UTC) \
                 nor a duration such as 30m"
            ))
        })
}

/// A time, or a duration before `base`.
fn parse_point(name: &str, v: &str, base: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    match duration(v) {
        Some(d) => chrono::Duration::from_std(d)
            .ok()
            .and_then(|d| base.checked_sub_signed(d))
            .ok_or_else(|| bad(format!("{name}: {v:?} is too long ago"))),
        None => parse_when(name, v),
    }
}

/// A window's width: `5m` unless given, at most 31 days.
fn parse_width(v: Option<&str>) -> Result<Duration, ApiError> {
    let v = v.unwrap_or(DEFAULT_WIDTH);
    duration(v)
        .filter(|d| !d.is_zero() && *d <= MAX_WIDTH)
        .ok_or_else(|| bad(format!("window: {v:?} is not a duration such as 5m (at most 31 days)")))
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The pair page's address: every value percent-encoded, so any name is one value.
pub fn pair_href(src: &str, dst: &str, from: Option<&str>, to: Option<&str>, window: Option<&str>) -> String {
    let mut href = format!("/ui/routes/pair?src={}&dst={}", segment(src), segment(dst));
    for (k, v) in [("from", from), ("to", to), ("window", window)] {
        if let Some(v) = v {
            href.push_str(&format!("&{k}={}", segment(v)));
        }
    }
    href
}

/// An event's pair, around the event: the window before it against the one it starts.
fn event_href(e: &RouteEventView) -> String {
    let before = e.at - chrono::Duration::minutes(5);
    pair_href(&e.src, &e.dst, Some(&rfc(before)), Some(&rfc(e.at)), None)
}

fn changes_href(since: &str, kind: Option<&str>, dc: Option<&str>) -> String {
    let mut href = format!("/ui/routes?since={}", segment(since));
    for (k, v) in [("kind", kind), ("dc", dc)] {
        if let Some(v) = v {
            href.push_str(&format!("&{k}={}", segment(v)));
        }
    }
    href
}

/// `GET /ui/routes`.
pub async fn changes(State(app): State<Arc<App>>, q: Result<ApiQuery<ChangesParams>, ApiError>) -> UiResult {
    let ApiQuery(p) = q?;
    let since_text = given(&p.since).unwrap_or(DEFAULT_SINCE);
    let since = parse_point("since", since_text, Utc::now())?;
    let kind = given(&p.kind);
    if let Some(k) = kind.filter(|k| !KINDS.contains(k)) {
        return Err(bad(format!("kind: {k:?} is not one of {}", KINDS.join(", "))).into());
    }
    let dc = given(&p.dc);
    let dcs = dc.map(|d| d.split(',').map(str::trim).filter(|d| !d.is_empty()).map(String::from).collect());
    let filter = EventFilter {
        since: Some(since),
        kinds: kind.map(|k| vec![k.to_string()]).unwrap_or_default(),
        dcs: dcs.unwrap_or_default(),
        limit: EVENTS,
        ..EventFilter::default()
    };
    let (events, labels) =
        with_store_timeout(route_query::changes(&app.reads.pool(), &app.tuning().owners, &filter)).await?;
    let main = html! {
        main #main {
            h1 { "Route changes" }
            nav.picker {
                "Since: "
                @for c in SINCE_CHOICES {
                    a href=(changes_href(c, kind, dc)) class=[(c == since_text).then_some("current")] { (c) } " "
                }
            }
            form.picker method="get" action="/ui/routes" {
                label { "since " input name="since" value=(since_text) placeholder="24h, or 2026-12-05T16:00:00Z"; }
                " "
                label {
                    "kind "
                    select name="kind" {
                        option value="" { "any" }
                        @for k in KINDS { option value=(k) selected[kind == Some(k)] { (k) } }
                    }
                }
                " "
                label { "data centers " input.short name="dc" value=(dc.unwrap_or("")) placeholder="A or A,B"; }
                " " button type="submit" { "Show" }
            }
            section #changes {
                h2 {
                    "Since " (when(since)) ", newest first " span.n { "(" (events.len()) ")" }
                    @if events.len() as i64 >= EVENTS { " " span.meta { "the newest " (EVENTS) " only" } }
                }
                @if events.is_empty() { p.none { "No route event since then." } }
                @else { (events_table(&events, &labels)) }
            }
        }
    };
    Ok(super::page(StatusCode::OK, "Route changes", main))
}

fn events_table(events: &[RouteEventView], labels: &Labels) -> Markup {
    html! {
        table.route-events {
            thead { tr {
                th { "When" } th { "Pair" } th { "DCs" } th { "Event" } th { "Hop" }
                th { "Before → after" } th { "RTT before → after (ms)" } th { "Loss %" } th { "Paths" }
            } }
            tbody { @for e in events { (event_row(e, labels)) } }
        }
    }
}

fn event_row(e: &RouteEventView, labels: &Labels) -> Markup {
    let hop = match (e.old_ttl, e.ttl) {
        (Some(a), Some(b)) => format!("{a} → {b}"),
        (a, b) => b.or(a).map(|t| t.to_string()).unwrap_or_default(),
    };
    let ms = |v: Option<f32>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "–".into());
    html! {
        tr.route-event data-kind=(e.kind) {
            td { (when(e.at)) }
            td { a.pair href=(event_href(e)) { span.name { (e.src) } " → " span.name { (e.dst) } } }
            td { (e.src_dc) " → " (e.dst_dc) }
            td { span class={ "kind " (e.kind) } { (e.kind) } }
            td.ttl { (hop) }
            td {
                @match e.kind.as_str() {
                    "changed" => { (event_addrs(&e.old_addrs, labels)) " → " (event_addrs(&e.new_addrs, labels)) },
                    "loss-started" | "loss-moved" => { "loss from " (event_addrs(&e.new_addrs, labels)) },
                    _ => {},
                }
            }
            td { @if e.rtt_before_ms.is_some() || e.rtt_after_ms.is_some() { (ms(e.rtt_before_ms)) " → " (ms(e.rtt_after_ms)) } }
            td { @if let Some(l) = e.loss_after_pct { (format!("{l:.0}")) } }
            td.paths {
                @if let Some(h) = &e.old_hops { div.path { span.meta { "before " } (path_text(h)) } }
                @if let Some(h) = &e.new_hops { div.path { span.meta { "after " } (path_text(h)) } }
            }
        }
    }
}

/// An event's addresses at its hop, each with whose network it is (`*`: silent).
fn event_addrs(addrs: &[String], labels: &Labels) -> Markup {
    html! {
        @if addrs.is_empty() { "*" }
        @for (i, a) in addrs.iter().enumerate() {
            @if i > 0 { ", " }
            @match a.parse::<IpAddr>() {
                Ok(ip) => { (addr(&labels.addr(ip))) },
                Err(_) => { span.ip { (a) } },
            }
        }
    }
}

/// A stored path, per TTL its addresses: `a › b › *`.
fn path_text(hops: &[String]) -> String {
    let ttl = |h: &String| if h.is_empty() { "*".to_string() } else { h.replace(',', " | ") };
    hops.iter().map(ttl).collect::<Vec<_>>().join(" › ")
}

/// An address with whose network it is.
fn addr(a: &AddrView) -> Markup {
    let whose = a.whose();
    html! { span.addr { span.ip { (a.ip) } @if whose != "-" { " " span.whose { "(" (whose) ")" } } } }
}

/// `GET /ui/routes/pair?src=…&dst=…[&from=…][&to=…][&window=…]`.
pub async fn pair(State(app): State<Arc<App>>, q: Result<ApiQuery<PairParams>, ApiError>) -> UiResult {
    let ApiQuery(p) = q?;
    let src = given(&p.src).ok_or_else(|| {
        bad("src: whose path? Give src (a node, a host or a prober's vantage) and dst, e.g. ?src=web.h1&dst=search.h2"
            .into())
    })?;
    let dst = given(&p.dst).ok_or_else(|| {
        bad("dst: to where? Give dst (a node, a host, an address or an external target's name)".into())
    })?;
    let window = given(&p.window);
    let width = parse_width(window)?;
    let now = Utc::now();
    let to = match given(&p.to) {
        Some(v) => parse_point("to", v, now)?,
        None => route_query::window_start(None, width, now),
    };
    let from = parse_point("from", given(&p.from).unwrap_or(COMPARE_BACK), to)?;
    let pool = app.reads.pool();
    let rules = DiffRules::default();
    let diff = with_store_timeout(route_query::diff(&pool, &app.tuning().owners, src, dst, &[from, to], width, &rules))
        .await?;
    let ips: BTreeSet<IpAddr> =
        diff.windows.iter().flat_map(|w| w.hops.iter().flat_map(|h| h.addrs.iter().map(|a| a.addr.ip))).collect();
    let names = with_store_timeout(graph_store::hop_names::of(&pool, &ips.into_iter().collect::<Vec<_>>())).await?;
    let filter = EventFilter { pair_id: Some(diff.pair.id), limit: PAIR_EVENTS, ..EventFilter::default() };
    let (events, labels) = with_store_timeout(route_query::changes(&pool, &app.tuning().owners, &filter)).await?;
    let pair = &diff.pair;
    let later = &diff.windows[1];
    let main = html! {
        main #main {
            h1 { "Route " span.name { (pair.src) } " → " span.name { (pair.dst) } }
            p.meta {
                b { (pair.dst_ip) } " · " (pair.protocol) @if let Some(port) = pair.port { ":" (port) }
                " · " (pair.src_dc) " → " (pair.dst_dc)
                " · traced every " (pair.every_s) " s"
                @if let Some(t) = pair.last_run_at { " · last run " (when(t)) }
                @if pair.retired { " · " span.state.stale { "retired" } }
                " · " a href="/ui/routes" { "all route changes" }
            }
            nav.picker #quick {
                "Compare: "
                @for (i, (back, label)) in COMPARE_CHOICES.iter().enumerate() {
                    @if i > 0 { " · " }
                    a href=(pair_href(src, dst, (*back != COMPARE_BACK).then_some(*back), None, window)) { (label) }
                }
            }
            form.picker #windows method="get" action="/ui/routes/pair" {
                input type="hidden" name="src" value=(src);
                input type="hidden" name="dst" value=(dst);
                label { "from " input name="from" value=(rfc(from)) placeholder="a time, or 30m (before to)"; }
                " "
                label { "to " input name="to" value=(rfc(to)) placeholder="a time, or 5m (ago)"; }
                " "
                label { "window " input.short name="window" value=(window.unwrap_or(DEFAULT_WIDTH)); }
                " " button type="submit" { "Compare" }
            }
            section #hops {
                h2 { "Hops " (later.label()) " UTC" }
                (window_line(later))
                (hop_table(later, &names))
            }
            section #diff {
                h2 { "Side by side" }
                (comparison(&diff, &names))
            }
            section #events {
                h2 { "Its route events " span.n { "(the newest " (PAIR_EVENTS) ")" } }
                @if events.is_empty() { p.none { "None recorded for this pair." } }
                @else { (events_table(&events, &labels)) }
            }
        }
    };
    Ok(super::page(StatusCode::OK, &format!("Route {} → {}", pair.src, pair.dst), main))
}

fn window_line(w: &WindowView) -> Markup {
    html! {
        p.meta {
            (w.runs) " run(s), " (w.reached) " reached the destination, " (w.paths) " distinct path(s)"
            @if let Some(ttl) = w.loss_onset { " · " span.error { "loss from hop " (ttl) } }
        }
    }
}

fn ms(v: Option<f32>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_default()
}

/// The hop table of a window, like `mtr --report` with whose every address is.
fn hop_table(w: &WindowView, names: &HashMap<IpAddr, HopName>) -> Markup {
    html! {
        @if w.hops.is_empty() { p.none { "No run in this window." } }
        @else {
            table.hops {
                thead { tr {
                    th { "TTL" } th { "Address" } th { "Node" } th { "Owner" } th { "AS" } th { "Loss %" } th { "Sent" }
                    th { "Avg" } th { "Best" } th { "Worst" } th { "StDev" } th { "Note" }
                } }
                tbody {
                    @for h in &w.hops {
                        tr.hop data-ttl=(h.ttl) {
                            td.ttl { (h.ttl) }
                            @if h.addrs.is_empty() {
                                td.ip { "???" } td {} td {} td {}
                            } @else {
                                td { @for a in &h.addrs {
                                    div.ip { (a.addr.ip) @if h.addrs.len() > 1 { " " span.meta { "(" (a.runs) " runs)" } } }
                                } }
                                td { @for a in &h.addrs { div { (hop_name(names.get(&a.addr.ip))) } } }
                                td.owner { @for a in &h.addrs { div { (a.addr.owner.as_deref().unwrap_or("")) } } }
                                td.asn { @for a in &h.addrs { div { (as_text(&a.addr)) } } }
                            }
                            td { (format!("{:.1}", h.loss_pct)) }
                            td { (h.sent) }
                            td { (ms(h.rtt_avg_ms)) } td { (ms(h.rtt_best_ms)) } td { (ms(h.rtt_worst_ms)) }
                            td { (ms(h.rtt_stddev_ms)) }
                            td {
                                @if w.loss_onset == Some(h.ttl) { span.error { "loss from here" } }
                                @else if h.rate_limited { "rate-limits its answers" }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn hop_name(n: Option<&HopName>) -> Markup {
    html! { @if let Some(n) = n { (node_link(&n.node)) " " span.meta { "(" (n.host) ")" } } }
}

fn as_text(a: &AddrView) -> String {
    match (a.asn, &a.as_name) {
        (Some(n), Some(name)) => format!("AS{n} {name}"),
        (Some(n), None) => format!("AS{n}"),
        _ => String::new(),
    }
}

/// The two windows side by side, a row per TTL; the first diverging hop marked.
fn comparison(diff: &RouteDiff, names: &HashMap<IpAddr, HopName>) -> Markup {
    let (a, b) = (&diff.windows[0], &diff.windows[1]);
    let Some(cmp) = diff.comparisons.first() else { return html! {} };
    let last = a.hops.iter().chain(&b.hops).map(|h| h.ttl).chain(cmp.hops.iter().map(|h| h.ttl)).max().unwrap_or(0);
    html! {
        @match &cmp.first_divergence {
            Some(d) => {
                p.diverge #divergence {
                    "First divergence at TTL " (d.ttl) ": "
                    (addrs_or_silent(&d.old)) " → " (addrs_or_silent(&d.new))
                }
            },
            None => { p #divergence { "Same path in both windows." } },
        }
        p.summary { (cmp.summary) }
        table.diff {
            thead { tr {
                th { "TTL" }
                th { (a.label()) " " span.meta { "(" (a.runs) " run(s))" } }
                th { (b.label()) " " span.meta { "(" (b.runs) " run(s))" } }
                th { "" }
            } }
            tbody {
                @for ttl in 1..=last {
                    (diff_row(ttl, a, b, cmp, names))
                }
            }
        }
    }
}

fn addrs_or_silent(addrs: &[AddrView]) -> Markup {
    html! {
        @if addrs.is_empty() { "*" }
        @for (i, a) in addrs.iter().enumerate() { @if i > 0 { ", " } (addr(a)) }
    }
}

fn status_word(s: HopStatus) -> &'static str {
    match s {
        HopStatus::Same => "same",
        HopStatus::Changed => "changed",
        HopStatus::Added => "added",
        HopStatus::Removed => "removed",
    }
}

fn diff_row(ttl: u8, a: &WindowView, b: &WindowView, cmp: &Comparison, names: &HashMap<IpAddr, HopName>) -> Markup {
    let d = cmp.hops.iter().find(|h| h.ttl == ttl);
    let status = d.map(|d| status_word(d.status)).unwrap_or("same");
    let diverge = cmp.first_divergence.as_ref().is_some_and(|f| f.ttl == ttl);
    let class = if diverge { format!("{status} diverge") } else { status.to_string() };
    html! {
        tr class=(class) data-ttl=(ttl) {
            td.ttl { (ttl) }
            td.old { (diff_cell(a.hops.iter().find(|h| h.ttl == ttl), names)) }
            td.new { (diff_cell(b.hops.iter().find(|h| h.ttl == ttl), names)) }
            td.mark {
                @if diverge { strong { "◆ first divergence" } }
                @else if status != "same" { (status) }
                @if d.is_some_and(|d| d.rtt_worse) { " " span.error { "slower" } }
                @if d.is_some_and(|d| d.loss_started) { " " span.error { "loss started" } }
            }
        }
    }
}

fn diff_cell(hop: Option<&HopView>, names: &HashMap<IpAddr, HopName>) -> Markup {
    html! {
        @if let Some(h) = hop {
            @if h.addrs.is_empty() { span.ip { "???" } }
            @for s in &h.addrs {
                div {
                    (addr(&s.addr))
                    @if let Some(n) = names.get(&s.addr.ip) { " " span.meta { (n.node) } }
                }
            }
            div.meta { (ms(h.rtt_avg_ms)) " ms · " (format!("{:.0}", h.loss_pct)) " % loss" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn times_and_durations_as_the_forms_take_them() {
        let base = t("2026-12-05T16:30:00Z");
        for (v, want) in [
            ("2026-12-05T16:00:00Z", "2026-12-05T16:00:00Z"),
            ("2026-12-05T17:00:00+01:00", "2026-12-05T16:00:00Z"),
            ("2026-12-05 16:00", "2026-12-05T16:00:00Z"),
            ("2026-12-05T16:00", "2026-12-05T16:00:00Z"),
            ("2026-12-05 16:00:07", "2026-12-05T16:00:07Z"),
            ("2026-12-05T16:00:07.250", "2026-12-05T16:00:07.250Z"),
            ("30m", "2026-12-05T16:00:00Z"),
            ("1h", "2026-12-05T15:30:00Z"),
        ] {
            assert_eq!(parse_point("from", v, base).unwrap(), t(want), "{v}");
        }
        for v in ["yesterday", "16:00", "2026-13-05 16:00", "<script>"] {
            let e = parse_point("from", v, base).unwrap_err().to_string();
            assert!(e.contains("from:"), "{v}: {e}");
        }
        assert_eq!(parse_width(None).unwrap(), Duration::from_secs(300));
        assert_eq!(parse_width(Some("90s")).unwrap(), Duration::from_secs(90));
        for v in ["0s", "32d", "five"] {
            assert!(parse_width(Some(v)).is_err(), "{v}");
        }
    }

    #[test]
    fn pair_links_keep_any_name_one_value() {
        assert_eq!(pair_href("web.h1", "search.h2", None, None, None), "/ui/routes/pair?src=web.h1&dst=search.h2");
        assert_eq!(
            pair_href("a&b=c", "<x> #y", Some("1h"), Some("2026-12-05T16:00:00Z"), Some("5m")),
            "/ui/routes/pair?src=a%26b%3Dc&dst=%3Cx%3E%20%23y&from=1h&to=2026-12-05T16%3A00%3A00Z&window=5m"
        );
        assert_eq!(changes_href("24h", Some("changed"), None), "/ui/routes?since=24h&kind=changed");
        assert_eq!(changes_href("7d", None, Some("a,b")), "/ui/routes?since=7d&dc=a%2Cb");
        assert_eq!(
            path_text(&["10.0.0.1".into(), "".into(), "10.0.0.2,10.0.0.3".into()]),
            "10.0.0.1 › * › 10.0.0.2 | 10.0.0.3"
        );
    }
}
