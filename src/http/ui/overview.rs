//! The overview (`/`, `/ui/overview`): edges by state, the incidents with their culprit
//! and evidence, the broken edges; refreshed in place every 10 s by ui.js from
//! `?fragment=1`. With `?at=TIME`, the graph as it was then (and no refresh).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, SecondsFormat, Utc};
use graph_store::diagnosis::{Diagnosis, Incident};
use graph_store::history;
use graph_store::query::{self, BrokenEdge, ListOptions};
use maud::{html, Markup};
use serde::Deserialize;

use super::super::error::with_store_timeout;
use super::super::graph::{parse_time, ApiQuery};
use super::super::App;
use super::{markup, node_link, state, when, UiResult};

/// How old the stored diagnosis may be before the overview makes a fresh one.
const DIAGNOSIS_MAX_AGE: chrono::Duration = chrono::Duration::seconds(60);

#[derive(Debug, Deserialize)]
pub struct Params {
    /// A past time, RFC 3339: the graph as it was then.
    at: Option<String>,
    /// Only the `<main>` element (for the refresh).
    fragment: Option<String>,
}

/// What the overview shows.
struct Overview {
    at: Option<DateTime<Utc>>,
    /// (state, edges): health states, and `flapping` in the past.
    counts: Vec<(String, i64)>,
    /// `None` with `at` (incidents are diagnosed on the live graph).
    incidents: Option<Vec<Incident>>,
    broken: Vec<BrokenEdge>,
    /// (consumer, destination address) → edge id.
    ids: HashMap<(String, String), i64>,
}

async fn load(app: &App, at: Option<DateTime<Utc>>) -> Result<Overview, super::UiError> {
    let pool = app.reads.pool();
    let (counts, incidents, broken) = match at {
        Some(at) => {
            let edges = with_store_timeout(history::edges_at(&pool, at, &ListOptions::default())).await?;
            let mut counts: HashMap<String, i64> = HashMap::new();
            for e in &edges {
                *counts.entry(e.state.as_str().to_string()).or_default() += 1;
            }
            let broken = with_store_timeout(history::broken_at(&pool, at)).await?;
            (counts.into_iter().collect(), None, broken)
        }
        None => {
            let counts = with_store_timeout(graph_store::ui::edge_counts(&pool)).await?;
            let counts: Vec<(String, i64)> = counts.into_iter().map(|(s, n)| (s.as_str().to_string(), n)).collect();
            let broken = with_store_timeout(query::broken(&pool)).await?;
            let diagnosis = diagnosis_of(app, &broken).await?;
            (counts, Some(diagnosis.incidents), broken)
        }
    };
    let mut pairs: Vec<(String, String)> = broken.iter().map(|b| (b.src.clone(), b.dst_ip.clone())).collect();
    if let Some(incidents) = &incidents {
        pairs.extend(incidents.iter().flat_map(|i| i.edges.iter().map(|e| (e.src.clone(), e.dst_ip.clone()))));
    }
    let ids = with_store_timeout(graph_store::ui::edge_ids(&pool, &pairs)).await?;
    let mut counts = counts;
    counts.sort();
    Ok(Overview { at, counts, incidents, broken, ids })
}

/// The incidents of `broken`: the stored diagnosis (serve's leader refreshes it every
/// interval) when it is recent and groups exactly these edges, else a fresh one (stored
/// by the leader; only computed on a process that does not write).
async fn diagnosis_of(app: &App, broken: &[BrokenEdge]) -> Result<Diagnosis, super::UiError> {
    let pool = app.reads.pool();
    let now: HashSet<(&str, &str)> = broken.iter().map(|b| (b.src.as_str(), b.dst_ip.as_str())).collect();
    if let Some(d) = with_store_timeout(graph_store::diagnosis::stored(&pool)).await? {
        let grouped: HashSet<(&str, &str)> =
            d.incidents.iter().flat_map(|i| i.edges.iter().map(|e| (e.src.as_str(), e.dst_ip.as_str()))).collect();
        if grouped == now && Utc::now() - d.computed_at <= DIAGNOSIS_MAX_AGE {
            return Ok(d);
        }
    }
    let cfg = app.tuning().diagnosis;
    let writes = app.leading.as_ref().is_none_or(|l| *l.borrow());
    Ok(if writes {
        with_store_timeout(graph_store::diagnosis::refresh(&app.pool, &cfg)).await?
    } else {
        with_store_timeout(graph_store::diagnosis::compute(&pool, &cfg)).await?
    })
}

/// `GET /` and `GET /ui/overview`.
pub async fn page_handler(app: Arc<App>, p: Params) -> UiResult {
    let at = p.at.as_deref().filter(|s| !s.is_empty()).map(|v| parse_time("at", v)).transpose()?;
    let o = load(&app, at).await?;
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
    html! {
        main #main data-refresh=[refresh] {
            h1 {
                "Overview"
                @if let Some(at) = o.at { " " span.at { "as it was at " (when(at)) } }
            }
            form.at method="get" action="/ui/overview" {
                label { "Show the graph at " input type="text" name="at" placeholder="2026-11-22T16:00:00Z"
                    value=[o.at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))]; }
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
            @if let Some(incidents) = &o.incidents { (incidents_section(incidents, &o.ids)) }
            @else { section #incidents { h2 { "Incidents" } p.none { "Incidents are diagnosed on the live graph only." } } }
            (broken_section(&o.broken, &o.ids))
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

fn incidents_section(incidents: &[Incident], ids: &HashMap<(String, String), i64>) -> Markup {
    html! {
        section #incidents {
            h2 { "Incidents" }
            @if incidents.is_empty() { p.none { "None." } }
            @for i in incidents {
                article.incident {
                    h3 {
                        span.kind { (serde_json::to_value(i.kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()) }
                        " " span.culprit { (i.culprit) }
                    }
                    p.evidence { (i.evidence) }
                    p.meta { "since " (when(i.since)) " · " (i.affected_nodes) " consumer(s) · " (i.edges.len()) " edge(s)" }
                    details {
                        summary { "Edges" }
                        ul { @for e in &i.edges { li { (edge_link(ids, &e.src, &e.dst_ip, &e.dst)) } } }
                    }
                }
            }
        }
    }
}

fn broken_section(broken: &[BrokenEdge], ids: &HashMap<(String, String), i64>) -> Markup {
    html! {
        section #broken {
            h2 { "Broken edges" }
            @if broken.is_empty() { p.none { "None." } }
            @else {
                table.broken {
                    thead { tr { th { "Edge" } th { "Services" } th { "State" } th { "Since" } th { "Loss" } th { "Consumers failing" } } }
                    tbody {
                        @for b in broken {
                            tr.broken-edge data-state=(b.state.as_str()) {
                                td { (edge_link(ids, &b.src, &b.dst_ip, &b.dst)) }
                                td { (b.services.join(", ")) }
                                td { (state(b.state)) }
                                td { (when(b.since)) }
                                td { @if let Some(l) = b.loss_pct { (format!("{l:.0} %")) } }
                                td { (b.consumers_failing) }
                            }
                        }
                    }
                }
            }
        }
    }
}
