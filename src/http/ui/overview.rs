//! The overview (`/`, `/ui/overview`): edges by state, the incidents with their culprit
//! and evidence, the broken edges; refreshed in place every 10 s by ui.js from
//! `?fragment=1`. With `?at=TIME`, the graph as it was then (and no refresh).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, SecondsFormat, Utc};
use graph_store::diagnosis::Diagnosis;
use graph_store::history;
use graph_store::query::{self, BrokenEdge};
use maud::{html, Markup};
use serde::Deserialize;
use tokio::sync::Notify;

use super::super::error::{with_store_timeout, ApiError};
use super::super::graph::{parse_time, ApiQuery};
use super::super::App;
use super::{markup, node_link, state, when, UiResult};

/// How old a diagnosis that saw the broken edges of the page may be before the overview
/// asks for a fresh one anyway (the edges around them may have changed).
const DIAGNOSIS_MAX_AGE: chrono::Duration = chrono::Duration::minutes(10);

/// How long a page waits for a fresh diagnosis before it shows the last one, saying how
/// old it is (the fresh one goes on being made, for the next refresh).
const DIAGNOSIS_WAIT: Duration = Duration::from_millis(700);

/// Incidents and broken edges listed on the page, at most (`?all=1`: every one).
const INCIDENTS_SHOWN: usize = 50;
const BROKEN_SHOWN: usize = 200;
/// Edges listed under one incident, at most.
const INCIDENT_EDGES_SHOWN: usize = 50;

#[derive(Debug, Deserialize)]
pub struct Params {
    /// A past time, RFC 3339: the graph as it was then.
    at: Option<String>,
    /// Only the `<main>` element (for the refresh).
    fragment: Option<String>,
    /// Every incident and broken edge, not only the first ones.
    all: Option<String>,
}

/// What the overview shows of the live graph, shared by the pages of a few seconds
/// (`[api] snapshot_max_age`): an overview kept open by many operators costs one read.
#[derive(Debug)]
pub struct Live {
    /// When it was read.
    made: DateTime<Utc>,
    counts: Vec<(String, i64)>,
    diagnosis: Option<Arc<Diagnosis>>,
    broken: Arc<Vec<BrokenEdge>>,
    /// The ids of the edges listed without `?all`.
    ids: Arc<HashMap<(String, String), i64>>,
}

/// How old the live reads may be and still be shown while newer ones are read in the
/// background (older: the page waits for new ones).
const STALE_LIMIT: Duration = Duration::from_secs(60);

/// The overview's live reads: the last ones, and one reading at a time.
#[derive(Debug, Default)]
pub struct LiveSlot {
    last: std::sync::Mutex<Option<(Instant, Arc<Live>)>>,
    reading: Arc<tokio::sync::Mutex<()>>,
}

impl LiveSlot {
    fn last(&self) -> Option<(Instant, Arc<Live>)> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn keep(&self, live: Arc<Live>) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), live));
    }
}

/// The live reads for a page: the last ones when younger than `snapshot_max_age`; when
/// older (up to [`STALE_LIMIT`]) the last ones too, while new ones are read in the
/// background, so a page never waits for a store busy with a million edges; else new ones.
async fn live(app: &Arc<App>) -> Result<Arc<Live>, ApiError> {
    let slot = &app.live.overview;
    if let Some((at, live)) = slot.last() {
        if at.elapsed() <= app.snapshot_max_age {
            return Ok(live);
        }
        if at.elapsed() <= STALE_LIMIT {
            if let Ok(reading) = slot.reading.clone().try_lock_owned() {
                let app = app.clone();
                tokio::spawn(async move {
                    match load_live(&app).await {
                        Ok(fresh) => app.live.overview.keep(Arc::new(fresh)),
                        Err(e) => tracing::warn!("reading the overview failed: {e:?}"),
                    }
                    drop(reading);
                });
            }
            return Ok(live);
        }
    }
    let _reading = slot.reading.lock().await;
    if let Some((_, live)) = slot.last().filter(|(at, _)| at.elapsed() <= app.snapshot_max_age) {
        return Ok(live);
    }
    let fresh = Arc::new(load_live(app).await?);
    slot.keep(fresh.clone());
    Ok(fresh)
}

/// What one page shows.
struct Overview {
    at: Option<DateTime<Utc>>,
    /// When the live graph was read (none with `at`).
    read_at: Option<DateTime<Utc>>,
    /// (state, edges): health states, and `flapping` in the past.
    counts: Vec<(String, i64)>,
    /// `None` with `at` (incidents are diagnosed on the live graph).
    diagnosis: Option<Arc<Diagnosis>>,
    broken: Arc<Vec<BrokenEdge>>,
    /// (consumer, destination address) → edge id, for the edges shown.
    ids: Arc<HashMap<(String, String), i64>>,
    all: bool,
}

async fn load(app: &Arc<App>, at: Option<DateTime<Utc>>, all: bool) -> Result<Overview, super::UiError> {
    let pool = app.reads.pool();
    let (counts, diagnosis, broken, read_at, cached_ids) = match at {
        Some(at) => {
            let counts = with_store_timeout(graph_store::ui::edge_counts_at(&pool, at)).await?;
            let broken = with_store_timeout(history::broken_at(&pool, at)).await?;
            (counts, None, Arc::new(broken), None, None)
        }
        None => {
            let live = live(app).await?;
            (live.counts.clone(), live.diagnosis.clone(), live.broken.clone(), Some(live.made), Some(live.ids.clone()))
        }
    };
    let ids = match (&cached_ids, all) {
        (Some(ids), false) => ids.clone(),
        _ => Arc::new(edge_ids(&pool, &broken, diagnosis.as_deref(), all).await?),
    };
    Ok(Overview { at, read_at, counts, diagnosis, broken, ids, all })
}

/// The ids of the edges a page links to: the first ones listed, or with `all` every one.
async fn edge_ids(
    pool: &graph_store::PgPool,
    broken: &[BrokenEdge],
    diagnosis: Option<&Diagnosis>,
    all: bool,
) -> Result<HashMap<(String, String), i64>, ApiError> {
    let shown = |n: usize| if all { usize::MAX } else { n };
    let mut pairs: Vec<(String, String)> =
        broken.iter().take(shown(BROKEN_SHOWN)).map(|b| (b.src.clone(), b.dst_ip.clone())).collect();
    if let Some(d) = diagnosis {
        pairs.extend(
            d.incidents.iter().take(shown(INCIDENTS_SHOWN)).flat_map(|i| {
                i.edges.iter().take(shown(INCIDENT_EDGES_SHOWN)).map(|e| (e.src.clone(), e.dst_ip.clone()))
            }),
        );
    }
    with_store_timeout(graph_store::ui::edge_ids(pool, &pairs)).await
}

/// The live counts, broken edges and diagnosis, read side by side.
async fn load_live(app: &Arc<App>) -> Result<Live, ApiError> {
    let pool = app.reads.pool();
    let made = Utc::now();
    let (counts, broken, stored) = tokio::try_join!(
        with_store_timeout(graph_store::ui::edge_counts(&pool)),
        with_store_timeout(query::broken(&pool)),
        with_store_timeout(graph_store::diagnosis::stored(&pool)),
    )?;
    let counts = counts.into_iter().map(|(s, n)| (s.as_str().to_string(), n)).collect();
    let diagnosis = diagnosis_of(app, &broken, stored).await;
    let ids = Arc::new(edge_ids(&pool, &broken, diagnosis.as_deref(), false).await?);
    Ok(Live { made, counts, diagnosis, broken: Arc::new(broken), ids })
}

/// The diagnosis to show beside `broken`: the newest of the stored one (`serve`'s leader
/// refreshes it every interval) and the last one made here, when it saw exactly these
/// broken edges and is at most [`DIAGNOSIS_MAX_AGE`] old; else a fresh one is asked for and waited for a little
/// (`DIAGNOSIS_WAIT`), and when it is not ready by then the newest there is (the page
/// says when it was made).
async fn diagnosis_of(app: &Arc<App>, broken: &[BrokenEdge], stored: Option<Diagnosis>) -> Option<Arc<Diagnosis>> {
    let fits = |d: &Diagnosis| {
        graph_store::diagnosis::saw_exactly(d, broken) && Utc::now() - d.computed_at <= DIAGNOSIS_MAX_AGE
    };
    let newest = |stored: Option<Arc<Diagnosis>>| {
        let made = app.live.diagnosing.last();
        match (stored, made) {
            (Some(a), Some(b)) => Some(if b.computed_at > a.computed_at { b } else { a }),
            (a, b) => a.or(b),
        }
    };
    let stored = stored.map(Arc::new);
    if let Some(d) = newest(stored.clone()).filter(|d| fits(d)) {
        return Some(d);
    }
    app.live.diagnosing.fresh(app, DIAGNOSIS_WAIT).await;
    newest(stored)
}

/// The diagnoses the overview makes itself, one at a time, in the background: a page
/// waits for one a little, never for long (at a million edges one takes seconds).
#[derive(Debug, Default)]
pub struct Diagnosing {
    /// The newest one made here.
    last: std::sync::Mutex<Option<Arc<Diagnosis>>>,
    /// One is being made.
    running: AtomicBool,
    /// A diagnosis was made (or failed).
    done: Notify,
}

impl Diagnosing {
    fn last(&self) -> Option<Arc<Diagnosis>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Starts a diagnosis unless one is being made, and waits up to `wait` for it: stored
    /// by the process that holds the lease on the once-only work, else only kept here.
    async fn fresh(&self, app: &Arc<App>, wait: Duration) {
        let done = self.done.notified();
        tokio::pin!(done);
        done.as_mut().enable();
        if !self.running.swap(true, Ordering::AcqRel) {
            let app = app.clone();
            tokio::spawn(async move {
                let cfg = app.tuning().diagnosis;
                let writes = app.leading.as_ref().is_none_or(|l| *l.borrow());
                let made = if writes {
                    graph_store::diagnosis::refresh(&app.pool, &cfg).await
                } else {
                    graph_store::diagnosis::compute(&app.reads.pool(), &cfg).await
                };
                let me = &app.live.diagnosing;
                match made {
                    Ok(d) => *me.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(d)),
                    Err(e) => tracing::warn!("diagnosing for the overview failed: {e}"),
                }
                me.running.store(false, Ordering::Release);
                me.done.notify_waiters();
            });
        }
        let _ = tokio::time::timeout(wait, done).await;
    }
}

/// `GET /` and `GET /ui/overview`.
pub async fn page_handler(app: Arc<App>, p: Params) -> UiResult {
    let at = p.at.as_deref().filter(|s| !s.is_empty()).map(|v| parse_time("at", v)).transpose()?;
    let o = load(&app, at, p.all.is_some()).await?;
    let main = main(&o);
    if p.fragment.is_some() {
        return Ok(markup(StatusCode::OK, main));
    }
    Ok(super::page(StatusCode::OK, "Overview", main))
}

/// The handler (axum's signature).
pub async fn page(State(app): State<Arc<App>>, ApiQuery(p): ApiQuery<Params>) -> UiResult {
    page_handler(app, p).await
}

fn main(o: &Overview) -> Markup {
    let refresh = o.at.is_none().then_some("/ui/overview?fragment=1");
    let total: i64 = o.counts.iter().map(|(_, n)| n).sum();
    let at = o.at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
    // The link that lists everything (kept in the refresh when followed).
    let all_href = match &at {
        Some(at) => format!("/ui/overview?all=1&at={}", super::segment(at)),
        None => "/ui/overview?all=1".to_string(),
    };
    let refresh = refresh.map(|r| if o.all { format!("{r}&all=1") } else { r.to_string() });
    html! {
        main #main data-refresh=[refresh] {
            h1 {
                "Overview"
                @if let Some(at) = o.at { " " span.at { "as it was at " (when(at)) } }
            }
            @if let Some(t) = o.read_at { p.meta.read-at { "Read from the store at " (when(t)) "." } }
            form.at method="get" action="/ui/overview" {
                label { "Show the graph at " input type="text" name="at" placeholder="2026-11-22T16:00:00Z" value=[at.clone()]; }
                button type="submit" { "Go" }
                @if o.at.is_some() { " " a href="/" { "back to now" } }
            }
            section #counts {
                h2 { "Edges by state" }
                ul.counts {
                    li { b { (total) } " edges" }
                    @for (s, n) in &o.counts { li { span class={ "state " (s) } { (s) } " " b.count data-state=(s) { (n) } } }
                }
            }
            @if o.at.is_some() { section #incidents { h2 { "Incidents" } p.none { "Incidents are diagnosed on the live graph only." } } }
            @else if let Some(d) = &o.diagnosis { (incidents_section(d, o, &all_href)) }
            @else { section #incidents { h2 { "Incidents" } p.none { "No diagnosis yet: one is being made; this page shows it when it is ready." } } }
            (broken_section(o, &all_href))
        }
    }
}

/// "Showing the first N of M": a link to every one.
fn more(shown: usize, total: usize, what: &str, all_href: &str) -> Markup {
    html! {
        @if shown < total {
            p.more { "The first " (shown) " of " (total) " " (what) ". " a href=(all_href) { "Show all" } }
        }
    }
}

fn edge_link(ids: &HashMap<(String, String), i64>, src: &str, dst_ip: &str, dst: &Option<String>) -> Markup {
    let id = ids.get(&(src.to_string(), dst_ip.to_string()));
    html! {
        (node_link(src)) " → "
        @if let Some(d) = dst { (node_link(d)) " " }
        @match id {
            Some(id) => { a.edge href={ "/ui/edges/" (id) } { "(" (dst_ip) ")" } },
            None => { span.ip { "(" (dst_ip) ")" } },
        }
    }
}

fn incidents_section(d: &Diagnosis, o: &Overview, all_href: &str) -> Markup {
    let incidents = &d.incidents;
    let shown = if o.all { incidents.len() } else { incidents.len().min(INCIDENTS_SHOWN) };
    let edges_shown = if o.all { usize::MAX } else { INCIDENT_EDGES_SHOWN };
    html! {
        section #incidents {
            h2 { "Incidents" }
            p.meta.diagnosed { "Diagnosed at " (when(d.computed_at)) " over " (d.live_edges) " live edges." }
            @if incidents.is_empty() { p.none { "None." } }
            @for i in &incidents[..shown] {
                article.incident {
                    h3 {
                        span.kind { (serde_json::to_value(i.kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()) }
                        " " span.culprit { (i.culprit) }
                    }
                    p.evidence { (i.evidence) }
                    p.meta { "since " (when(i.since)) " · " (i.affected_nodes) " consumer(s) · " (i.edges.len()) " edge(s)" }
                    details {
                        summary { "Edges" }
                        ul { @for e in i.edges.iter().take(edges_shown) { li { (edge_link(&o.ids, &e.src, &e.dst_ip, &e.dst)) } } }
                        (more(i.edges.len().min(edges_shown), i.edges.len(), "edges", all_href))
                    }
                }
            }
            (more(shown, incidents.len(), "incidents", all_href))
        }
    }
}

fn broken_section(o: &Overview, all_href: &str) -> Markup {
    let broken = &o.broken;
    let shown = if o.all { broken.len() } else { broken.len().min(BROKEN_SHOWN) };
    html! {
        section #broken {
            h2 { "Broken edges" }
            @if broken.is_empty() { p.none { "None." } }
            @else {
                table.broken {
                    thead { tr { th { "Edge" } th { "Services" } th { "State" } th { "Since" } th { "Loss" } th { "Consumers failing" } } }
                    tbody {
                        @for b in &broken[..shown] {
                            tr.broken-edge data-state=(b.state.as_str()) {
                                td { (edge_link(&o.ids, &b.src, &b.dst_ip, &b.dst)) }
                                td { (b.services.join(", ")) }
                                td { (state(b.state)) }
                                td { (when(b.since)) }
                                td { @if let Some(l) = b.loss_pct { (format!("{l:.0} %")) } }
                                td { (b.consumers_failing) }
                            }
                        }
                    }
                }
                (more(shown, broken.len(), "broken edges", all_href))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graph_store::vocab::HealthState;

    fn broken(n: usize) -> Vec<BrokenEdge> {
        (0..n)
            .map(|i| BrokenEdge {
                src: format!("fe{i}.host1"),
                src_dc: "Tx".into(),
                dst_ip: format!("10.0.{}.{}", i / 250, i % 250),
                dst: None,
                services: vec!["db".into()],
                state: HealthState::Down,
                since: Utc::now(),
                loss_pct: Some(100.0),
                consumers_failing: 1,
            })
            .collect()
    }

    fn page(n: usize, all: bool) -> String {
        let o = Overview {
            at: None,
            read_at: Some(Utc::now()),
            counts: vec![("down".into(), n as i64)],
            diagnosis: None,
            broken: Arc::new(broken(n)),
            ids: Default::default(),
            all,
        };
        main(&o).into_string()
    }

    #[test]
    fn long_lists_are_cut_with_a_link_to_every_one() {
        let cut = page(BROKEN_SHOWN + 50, false);
        assert_eq!(cut.matches("<tr class=\"broken-edge\"").count(), BROKEN_SHOWN);
        assert!(cut.contains(&format!("The first {BROKEN_SHOWN} of {} broken edges", BROKEN_SHOWN + 50)), "{cut}");
        assert!(cut.contains("href=\"/ui/overview?all=1\""));
        assert!(cut.contains("data-refresh=\"/ui/overview?fragment=1\""));

        let all = page(BROKEN_SHOWN + 50, true);
        assert_eq!(all.matches("<tr class=\"broken-edge\"").count(), BROKEN_SHOWN + 50);
        assert!(!all.contains("Show all"));
        // The refresh keeps listing every one.
        assert!(all.contains("data-refresh=\"/ui/overview?fragment=1&amp;all=1\""), "{all}");

        let short = page(3, false);
        assert_eq!(short.matches("<tr class=\"broken-edge\"").count(), 3);
        assert!(!short.contains("Show all"));
        assert!(short.contains("No diagnosis yet"));
    }
}
