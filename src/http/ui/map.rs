//! The map (`/ui/map…`): the graph grouped so that it stays readable at thousands of
//! nodes — data centers (with the edges between each pair), a data center's hosts, a
//! host's containers, and services with their providers — each tile coloured by the worst
//! state of its edges (red: some down; amber: some degraded or flapping) and linking one
//! level down, to the node pages at the bottom. Counted in SQL
//! ([`graph_store::ui_map`]): no page lists the graph's edges one by one.
//!
//! `?at=TIME` (RFC 3339) shows the graph as it was then, and every map link carries it.
//!
//! The counts that read every edge (the data centers and the pairs between them, one data
//! center's hosts, the services) take a second or more at 1,000,000 edges: they are kept
//! for [`FRESH`] per page and time ([`Memo`]), one count at a time, and the page says when
//! it was counted.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, SecondsFormat, Utc};
use graph_store::ui_map::{
    self, Container, DcDetail, DcLink, DcSize, EdgeGroup, HostTile, ServiceEnd, ServiceTile, Tally,
};
use maud::{html, Markup};
use serde::Deserialize;

use super::super::error::{with_store_timeout, ApiError};
use super::super::graph::{parse_time, ApiPath, ApiQuery};
use super::super::App;
use super::{node_link, segment, when, UiError, UiResult};

/// Service tiles shown beyond the troubled ones (every troubled one is shown).
const QUIET_SERVICES: usize = 2000;

/// How long a count is reused as it is.
const FRESH: Duration = Duration::from_secs(15);
/// How long an older count is still shown while a new one is made in the background
/// (older: the page waits for a new one).
const STALE: Duration = Duration::from_secs(120);
/// Counts kept per kind of page (the oldest dropped first).
const KEPT: usize = 16;

/// A count, when it was made, and whether a new one is being made.
struct Entry<K, V> {
    key: K,
    made: Instant,
    value: Arc<V>,
    recounting: bool,
}

/// Counts by key (a page's data center and time): reused for [`FRESH`]; up to [`STALE`]
/// shown while a new one is made in the background, so that a page does not wait for a
/// join over a million edges; else made while the page waits, one at a time.
struct Memo<K, V> {
    entries: std::sync::Mutex<Vec<Entry<K, V>>>,
    counting: tokio::sync::Mutex<()>,
}

impl<K: PartialEq + Clone + Send + 'static, V: Send + Sync + 'static> Memo<K, V> {
    const fn new() -> Self {
        Memo { entries: std::sync::Mutex::new(Vec::new()), counting: tokio::sync::Mutex::const_new(()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry<K, V>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `value` as the count of `key`.
    fn keep(&self, key: K, value: Arc<V>) -> Instant {
        let mut entries = self.lock();
        entries.retain(|e| e.key != key && e.made.elapsed() < STALE);
        if entries.len() >= KEPT {
            entries.remove(0);
        }
        let made = Instant::now();
        entries.push(Entry { key, made, value, recounting: false });
        made
    }

    /// The count of `key` and when it was made: see [`Memo`]. `make` makes a new one.
    async fn get<F, Fut>(&'static self, key: K, make: F) -> Result<(Arc<V>, DateTime<Utc>), UiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, ApiError>> + Send + 'static,
    {
        let counted = |made: Instant| Utc::now() - chrono::Duration::from_std(made.elapsed()).unwrap_or_default();
        let shown = {
            let mut entries = self.lock();
            match entries.iter_mut().find(|e| e.key == key && e.made.elapsed() < STALE) {
                Some(e) if e.made.elapsed() < FRESH => return Ok((e.value.clone(), counted(e.made))),
                Some(e) => {
                    let recount = !e.recounting;
                    e.recounting = true;
                    Some((e.value.clone(), counted(e.made), recount))
                }
                None => None,
            }
        };
        if let Some((value, at, recount)) = shown {
            if recount {
                let fresh = make();
                tokio::spawn(async move {
                    match fresh.await {
                        Ok(v) => {
                            self.keep(key, Arc::new(v));
                        }
                        Err(e) => {
                            tracing::warn!("counting for the map failed: {e:?}");
                            if let Some(e) = self.lock().iter_mut().find(|e| e.key == key) {
                                e.recounting = false;
                            }
                        }
                    }
                });
            }
            return Ok((value, at));
        }
        let _counting = self.counting.lock().await;
        if let Some(e) = self.lock().iter().find(|e| e.key == key && e.made.elapsed() < FRESH) {
            return Ok((e.value.clone(), counted(e.made)));
        }
        let value = Arc::new(make().await?);
        let made = self.keep(key, value.clone());
        Ok((value, counted(made)))
    }
}

type Dcs = (Vec<DcSize>, Vec<DcLink>);
static DCS: Memo<Option<DateTime<Utc>>, Dcs> = Memo::new();
static DC: Memo<(String, Option<DateTime<Utc>>), Option<DcDetail>> = Memo::new();
static SERVICES: Memo<Option<DateTime<Utc>>, Vec<ServiceTile>> = Memo::new();

/// "counted at …", under a heading.
fn counted(t: DateTime<Utc>) -> Markup {
    html! { p.meta.counted { "Counted at " (when(t)) "; a count is reused for " (FRESH.as_secs()) " s, and shown up to " (STALE.as_secs() / 60) " min while a new one is made." } }
}

#[derive(Debug, Deserialize)]
pub struct Params {
    /// A past time, RFC 3339: the graph as it was then.
    at: Option<String>,
}

/// The time a page shows (None: now), carried on its links.
#[derive(Debug, Clone, Copy)]
struct At(Option<DateTime<Utc>>);

impl At {
    fn parse(q: Result<ApiQuery<Params>, ApiError>) -> Result<At, UiError> {
        let ApiQuery(p) = q?;
        Ok(At(p.at.as_deref().filter(|s| !s.is_empty()).map(|v| parse_time("at", v)).transpose()?))
    }

    /// `path` with `?at=` when the page is in the past.
    fn href(&self, path: &str) -> String {
        match self.0 {
            Some(t) => format!("{path}?at={}", segment(&t.to_rfc3339_opts(SecondsFormat::Micros, true))),
            None => path.to_string(),
        }
    }

    /// " as it was at …", for a heading.
    fn note(&self) -> Markup {
        html! { @if let Some(t) = self.0 { " " span.at { "as it was at " (when(t)) } } }
    }

    /// The form that picks the time, answering to `action`.
    fn form(&self, action: &str) -> Markup {
        html! {
            form.at method="get" action=(action) {
                label { "Show the graph at " input type="text" name="at" placeholder="2026-11-22T16:00:00Z"
                    value=[self.0.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))]; }
                button type="submit" { "Go" }
                @if self.0.is_some() { " " a href=(action) { "back to now" } }
            }
        }
    }
}

fn dc_href(at: At, dc: &str) -> String {
    at.href(&format!("/ui/map/dc/{}", segment(dc)))
}

fn host_href(at: At, host: &str) -> String {
    at.href(&format!("/ui/map/host/{}", segment(host)))
}

fn service_href(at: At, service: &str) -> String {
    at.href(&format!("/ui/map/services/{}", segment(service)))
}

/// "12 edges: 10 up, 1 down, 1 degraded", for a tooltip.
fn summary(t: &Tally) -> String {
    let parts: Vec<String> = [
        ("down", t.down),
        ("degraded", t.degraded),
        ("flapping", t.flapping),
        ("up", t.up),
        ("stale", t.stale),
        ("unknown", t.unknown),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(s, n)| format!("{n} {s}"))
    .collect();
    match parts.is_empty() {
        true => "no edges".into(),
        false => format!("{} edge(s): {}", t.total(), parts.join(", ")),
    }
}

/// The counts of a tally as coloured words (the states with edges; "none" without).
fn counts(t: &Tally) -> Markup {
    let states = [
        ("down", t.down),
        ("degraded", t.degraded),
        ("flapping", t.flapping),
        ("up", t.up),
        ("stale", t.stale),
        ("unknown", t.unknown),
    ];
    html! {
        span.tally {
            @if t.total() == 0 { span.none { "none" } }
            @for (s, n) in states {
                @if n > 0 { span class={ "state " (s) } { (n) " " (s) } " " }
            }
        }
    }
}

/// `GET /ui/map`: the data centers, and the edges between each pair.
pub async fn index(State(app): State<Arc<App>>, q: Result<ApiQuery<Params>, ApiError>) -> UiResult {
    let at = At::parse(q)?;
    let pool = app.reads.pool();
    let (counted_dcs, made) = DCS
        .get(at.0, || async move {
            let dcs = with_store_timeout(ui_map::dcs(&pool, at.0)).await?;
            let links = with_store_timeout(ui_map::dc_links(&pool, at.0)).await?;
            Ok((dcs, links))
        })
        .await?;
    let (dcs, links) = (&counted_dcs.0, &counted_dcs.1);
    // Each data center's edges both ways (an edge within it counted once).
    let mut out = BTreeMap::<&str, Tally>::new();
    let mut inc = BTreeMap::<&str, Tally>::new();
    for l in links {
        out.entry(l.src_dc.as_str()).or_default().merge(&l.edges);
        if let Some(d) = l.dst_dc.as_deref().filter(|d| *d != l.src_dc) {
            inc.entry(d).or_default().merge(&l.edges);
        }
    }
    let main = html! {
        main #main {
            h1 { "Map" (at.note()) }
            (at.form("/ui/map"))
            (counted(made))
            p.crumbs { b { "Data centers" } " · " a href=(at.href("/ui/map/services")) { "Services → providers" } }
            section #dcs {
                h2 { "Data centers " span.n { "(" (dcs.len()) ")" } }
                @if dcs.is_empty() { p.none { "No nodes." } }
                div.tiles.dcs {
                    @for d in dcs {
                        @let (o, i) = (out.get(d.dc.as_str()).copied().unwrap_or_default(), inc.get(d.dc.as_str()).copied().unwrap_or_default());
                        @let all = { let mut a = o; a.merge(&i); a };
                        a class={ "tile dc " (all.level().as_str()) } data-level=(all.level().as_str()) href=(dc_href(at, &d.dc))
                            title=(format!("{}: {} host(s), {} container(s); out: {}; in from other data centers: {}", d.dc, d.hosts, d.nodes, summary(&o), summary(&i))) {
                            span.name { (d.dc) }
                            span.sub { (d.hosts) " hosts · " (d.nodes) " containers" }
                            span.sub { "out " (counts(&o)) }
                            span.sub { "in " (counts(&i)) }
                        }
                    }
                }
            }
            (matrix(at, &dcs.iter().map(|d| d.dc.clone()).collect::<Vec<_>>(), links))
        }
    };
    Ok(super::page(StatusCode::OK, "Map", main))
}

/// The edges between each pair of data centers: consumers' data center by row,
/// destinations' by column.
fn matrix(at: At, dcs: &[String], links: &[DcLink]) -> Markup {
    let cell: BTreeMap<(&str, Option<&str>), &Tally> =
        links.iter().map(|l| ((l.src_dc.as_str(), l.dst_dc.as_deref()), &l.edges)).collect();
    let mut cols: Vec<Option<&str>> = dcs.iter().map(|d| Some(d.as_str())).collect();
    let extra: BTreeSet<&str> =
        links.iter().filter_map(|l| l.dst_dc.as_deref()).filter(|d| !dcs.iter().any(|x| x == d)).collect();
    cols.extend(extra.into_iter().map(Some));
    if links.iter().any(|l| l.dst_dc.is_none()) {
        cols.push(None);
    }
    html! {
        section #links {
            h2 { "Between data centers" }
            p.legend { "Edges from the consumers' data center (row) to the destinations' (column): all, and broken. Red: some down; amber: some degraded." }
            @if links.is_empty() { p.none { "No edges." } }
            @else {
                table.matrix {
                    thead { tr { th { "from \\ to" } @for c in &cols { th { @match c { Some(d) => { a href=(dc_href(at, d)) { (d) } }, None => { span.meta { "no node" } } } } } } }
                    tbody {
                        @for s in dcs {
                            tr {
                                th { a href=(dc_href(at, s)) { (s) } }
                                @for c in &cols {
                                    @match cell.get(&(s.as_str(), *c)) {
                                        Some(t) => {
                                            td class={ "cell " (t.level().as_str()) } data-level=(t.level().as_str())
                                                title=(format!("{} → {}: {}", s, c.unwrap_or("no node"), summary(t))) {
                                                b { (t.total()) }
                                                @if t.broken() > 0 { " " span.broken { (t.broken()) " broken" } }
                                            }
                                        },
                                        None => { td.cell.empty { "·" } },
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /ui/map/dc/{dc}`: its hosts, troubled first, and its edges by the other end's
/// data center.
pub async fn dc(
    State(app): State<Arc<App>>,
    path: Result<ApiPath, ApiError>,
    q: Result<ApiQuery<Params>, ApiError>,
) -> UiResult {
    let ApiPath(name) = path?;
    let at = At::parse(q)?;
    let pool = app.reads.pool();
    let (key, dc) = ((name.clone(), at.0), name.clone());
    let (d, made) = DC.get(key, || async move { with_store_timeout(ui_map::dc(&pool, at.0, &dc)).await }).await?;
    let d = Option::as_ref(&d)
        .ok_or_else(|| ApiError::NotFound(format!("no data center {name:?} (no node in it{})", then(at))))?;
    let nodes: i64 = d.hosts.iter().map(|h| h.nodes).sum();
    let main = html! {
        main #main {
            h1 { "Data center " span.name { (name) } (at.note()) }
            (at.form(&format!("/ui/map/dc/{}", segment(&name))))
            (counted(made))
            p.crumbs { a href=(at.href("/ui/map")) { "Map" } " › " b { (name) } }
            section #hosts {
                h2 { "Hosts " span.n { "(" (d.hosts.len()) " hosts, " (nodes) " containers)" } }
                p.legend { "Each host by the worst state of the edges from and to its containers (the number: its broken edges); troubled hosts first." }
                div.tiles.hosts {
                    @for h in &d.hosts { (host_tile(at, h)) }
                }
            }
            section #deps {
                h2 { "By data center" }
                table {
                    thead { tr { th { "Way" } th { "Data center" } th { "Edges" } } }
                    tbody {
                        @for (other, t) in &d.outgoing {
                            tr data-state=(t.level().as_str()) {
                                td { "uses" }
                                td { @match other { Some(o) => { a href=(dc_href(at, o)) { (o) } }, None => { span.meta { "addresses of no node" } } } }
                                td { (counts(t)) }
                            }
                        }
                        @for (other, t) in &d.incoming {
                            tr data-state=(t.level().as_str()) {
                                td { "used by" }
                                td { a href=(dc_href(at, other)) { (other) } }
                                td { (counts(t)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(super::page(StatusCode::OK, &format!("Map: {name}"), main))
}

fn then(at: At) -> String {
    at.0.map(|t| format!(" at {}", t.to_rfc3339_opts(SecondsFormat::Secs, true))).unwrap_or_default()
}

fn host_tile(at: At, h: &HostTile) -> Markup {
    let all = h.all();
    let level = all.level().as_str();
    html! {
        a class={ "tile host " (level) } data-level=(level) href=(host_href(at, &h.host))
            title=(format!("{}: {} container(s); out: {}; in: {}", h.host, h.nodes, summary(&h.out), summary(&h.inc))) {
            (h.host) @if all.broken() > 0 { " " b { (all.broken()) } }
        }
    }
}

/// `GET /ui/map/host/{host}`: its containers, each with its edges grouped by the host at
/// the other end.
pub async fn host(
    State(app): State<Arc<App>>,
    path: Result<ApiPath, ApiError>,
    q: Result<ApiQuery<Params>, ApiError>,
) -> UiResult {
    let ApiPath(name) = path?;
    let at = At::parse(q)?;
    let pool = app.reads.pool();
    let (dc, containers) = with_store_timeout(ui_map::host(&pool, at.0, &name))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no host {name:?} (no node on it{})", then(at))))?;
    let main = html! {
        main #main {
            h1 { "Host " span.name { (name) } (at.note()) }
            (at.form(&format!("/ui/map/host/{}", segment(&name))))
            p.crumbs { a href=(at.href("/ui/map")) { "Map" } " › " a href=(dc_href(at, &dc)) { (dc) } " › " b { (name) } }
            section #containers {
                h2 { "Containers " span.n { "(" (containers.len()) ")" } }
                @for c in &containers { (container(at, c)) }
            }
        }
    };
    Ok(super::page(StatusCode::OK, &format!("Map: {name}"), main))
}

fn container(at: At, c: &Container) -> Markup {
    let level = c.all().level().as_str();
    html! {
        article class={ "container " (level) } data-level=(level) {
            h3 { (node_link(&c.name)) @if let Some(r) = &c.role { " " span.meta { "(" (r) ")" } } " " (counts(&c.all())) }
            @if c.out.is_empty() && c.inc.is_empty() { p.none { "No edges." } }
            @else {
                table.groups {
                    thead { tr { th { "Way" } th { "Host" } th { "Data center" } th { "Services" } th { "Edges" } } }
                    tbody {
                        @for g in &c.out { (group(at, "uses", g)) }
                        @for g in &c.inc { (group(at, "used by", g)) }
                    }
                }
            }
        }
    }
}

fn group(at: At, way: &str, g: &EdgeGroup) -> Markup {
    html! {
        tr data-state=(g.edges.level().as_str()) {
            td { (way) }
            td { @match &g.host { Some(h) => { a.host href=(host_href(at, h)) { (h) } }, None => { span.meta { "no node" } } } }
            td { @if let Some(d) = &g.dc { a href=(dc_href(at, d)) { (d) } } }
            td { (g.services.join(", ")) }
            td { (counts(&g.edges)) }
        }
    }
}

/// `GET /ui/map/services`: every service with its providers and edges, troubled first.
pub async fn services(State(app): State<Arc<App>>, q: Result<ApiQuery<Params>, ApiError>) -> UiResult {
    let at = At::parse(q)?;
    let pool = app.reads.pool();
    let (tiles, made) =
        SERVICES.get(at.0, || async move { with_store_timeout(ui_map::services(&pool, at.0)).await }).await?;
    let troubled = tiles.iter().filter(|t| t.unreachable > 0 || t.edges.broken() > 0).count();
    let shown = tiles.len().min(troubled + QUIET_SERVICES);
    let main = html! {
        main #main {
            h1 { "Services → providers" (at.note()) }
            (at.form("/ui/map/services"))
            (counted(made))
            p.crumbs { a href=(at.href("/ui/map")) { "Map" } " › " b { "Services" } }
            section #services {
                h2 { "Services " span.n { "(" (tiles.len()) ", " (troubled) " with broken edges)" } }
                p.legend { "Each service by the worst state of the edges that use it; the number: providers every edge to which is down. Troubled first." }
                div.tiles.services { @for t in &tiles[..shown] { (service_tile(at, t)) } }
                @if shown < tiles.len() { p.meta { (tiles.len() - shown) " more services, none with a broken edge, not shown." } }
            }
        }
    };
    Ok(super::page(StatusCode::OK, "Map: services", main))
}

fn service_tile(at: At, t: &ServiceTile) -> Markup {
    let level = t.edges.level().as_str();
    html! {
        a class={ "tile service " (level) } data-level=(level) href=(service_href(at, &t.service))
            title=(format!("{}: {} provider(s), {} unreachable; {}", t.service, t.providers, t.unreachable, summary(&t.edges))) {
            (t.service) " " span.sub { (t.providers) " prov." } @if t.unreachable > 0 { " " b { (t.unreachable) " down" } }
        }
    }
}

/// `GET /ui/map/services/{service}`: its providers (and other destinations) and its
/// consumers, with the state of the service's edges to and from each.
pub async fn service(
    State(app): State<Arc<App>>,
    path: Result<ApiPath, ApiError>,
    q: Result<ApiQuery<Params>, ApiError>,
) -> UiResult {
    let ApiPath(name) = path?;
    let at = At::parse(q)?;
    let pool = app.reads.pool();
    let (dsts, consumers) = with_store_timeout(ui_map::service(&pool, at.0, &name))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no service {name:?} (no provider, no edge{})", then(at))))?;
    let main = html! {
        main #main {
            h1 { "Service " span.name { (name) } (at.note()) }
            (at.form(&format!("/ui/map/services/{}", segment(&name))))
            p.crumbs { a href=(at.href("/ui/map")) { "Map" } " › " a href=(at.href("/ui/map/services")) { "Services" } " › " b { (name) } }
            (ends(at, "providers", "Providers and other destinations", "Edges to it", &dsts))
            (ends(at, "consumers", "Consumers", "Its edges", &consumers))
        }
    };
    Ok(super::page(StatusCode::OK, &format!("Map: service {name}"), main))
}

fn ends(at: At, id: &str, title: &str, edges: &str, list: &[ServiceEnd]) -> Markup {
    html! {
        section id=(id) {
            h2 { (title) " " span.n { "(" (list.len()) ")" } }
            @if list.is_empty() { p.none { "None." } }
            @else {
                table {
                    thead { tr { th { "Node" } th { "Host" } th { "Data center" } th { (edges) } } }
                    tbody {
                        @for e in list {
                            tr data-state=(e.edges.level().as_str()) {
                                td {
                                    @match &e.name { Some(n) => { (node_link(n)) }, None => { span.meta { "addresses of no node" } } }
                                    @if e.provider { " " span.meta { "(provider)" } }
                                }
                                td { @if let Some(h) = &e.host { a.host href=(host_href(at, h)) { (h) } } }
                                td { @if let Some(d) = &e.dc { a href=(dc_href(at, d)) { (d) } } }
                                td { (counts(&e.edges)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_the_time() {
        let t = DateTime::parse_from_rfc3339("2026-11-22T16:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(dc_href(At(None), "a/b <c>"), "/ui/map/dc/a%2Fb%20%3Cc%3E");
        assert_eq!(host_href(At(Some(t)), "host1"), "/ui/map/host/host1?at=2026-11-22T16%3A00%3A00.000000Z");
        assert_eq!(service_href(At(Some(t)), "db?x"), "/ui/map/services/db%3Fx?at=2026-11-22T16%3A00%3A00.000000Z");
    }

    #[test]
    fn tallies_read_as_words() {
        let mut t = Tally::default();
        assert_eq!(summary(&t), "no edges");
        t.add("up", 10);
        t.add("down", 1);
        t.add("degraded", 2);
        assert_eq!(summary(&t), "13 edge(s): 1 down, 2 degraded, 10 up");
        let m = counts(&t).into_string();
        assert!(m.contains("<span class=\"state down\">1 down</span>"), "{m}");
        assert!(!m.contains("unknown"), "{m}");
    }
}
