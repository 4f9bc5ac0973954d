//! A node's page (`/ui/nodes/{name}`): what it depends on, what depends on it, what its
//! loss would break (blast radius), its edges both ways with state and since-when, and
//! the latest load and nginx rates its agent sent.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use graph_store::agents::AgentReport;
use graph_store::topology::{Blast, Reached};
use graph_store::ui::{NodeEdge, NodePlace};
use maud::{html, Markup};

use super::super::error::{with_store_timeout, ApiError};
use super::super::graph::{snapshot, ApiPath};
use super::super::App;
use super::{node_link, state, when, UiResult};
use crate::not_found::{not_in_graph, Named};

/// How far back the agent's reports are looked for.
const AGENT_LOOKBACK: chrono::Duration = chrono::Duration::hours(1);

/// `GET /ui/nodes/{name}`.
pub async fn page(State(app): State<Arc<App>>, ApiPath(name): ApiPath) -> UiResult {
    let pool = app.reads.pool();
    let place = with_store_timeout(graph_store::ui::node(&pool, &name))
        .await?
        .ok_or_else(|| ApiError::NotFound(not_in_graph(&name, Named::Node)))?;
    let snap = snapshot(&app, &None).await?;
    let deps = snap.deps(&name, None).unwrap_or_default();
    let dependents = snap.dependents(&name, None).unwrap_or_default();
    let blast = snap.blast(&name);
    let edges = with_store_timeout(graph_store::ui::node_edges(&pool, &name)).await?;
    let reports =
        with_store_timeout(graph_store::agents::reports_of(&pool, &name, Utc::now() - AGENT_LOOKBACK)).await?;
    let main = html! {
        main #main {
            h1 { "Node " span.name { (name) } }
            (place_line(&place))
            (reached("Dependencies", "deps", &deps))
            (reached("Dependents", "dependents", &dependents))
            (blast_section(blast.as_ref()))
            (edges_section(&edges))
            (agent_section(reports.last()))
        }
    };
    Ok(super::page(StatusCode::OK, &format!("Node {name}"), main))
}

fn place_line(p: &NodePlace) -> Markup {
    html! {
        p.meta {
            "host " b { (p.host) } " · data center " b { (p.dc) }
            @if let Some(r) = &p.role { " · role " b { (r) } }
            @if p.retired { " · " span.state.stale { "retired" } }
        }
    }
}

fn reached(title: &str, id: &str, nodes: &[Reached]) -> Markup {
    html! {
        section id=(id) {
            h2 { (title) " " span.n { "(" (nodes.len()) ")" } }
            @if nodes.is_empty() { p.none { "None." } }
            @else {
                table {
                    thead { tr { th { "Node" } th { "Host" } th { "DC" } th { "Hops" } th { "Via" } th { "Services" } } }
                    tbody {
                        @for r in nodes {
                            tr {
                                td { (node_link(&r.name)) }
                                td { (r.host) } td { (r.dc) } td { (r.hops) }
                                td { @if r.hops > 1 { (node_link(&r.via)) } }
                                td { (r.services.join(", ")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn blast_section(blast: Option<&Blast>) -> Markup {
    html! {
        section #blast {
            h2 { "Blast radius" }
            @match blast {
                Some(b) if !b.consumers.is_empty() => {
                    p { "If it went away, " (b.consumers.len()) " consumer(s) would lose every provider of something they use:" }
                    ul {
                        @for c in &b.consumers {
                            li {
                                (node_link(&c.name)) " (" (c.dc) ") loses "
                                @for (i, l) in c.lost.iter().enumerate() {
                                    @if i > 0 { ", " }
                                    (l.service.as_deref().unwrap_or("a linked dependency"))
                                }
                            }
                        }
                    }
                },
                _ => { p.none { "Nothing would lose every provider of a service." } },
            }
        }
    }
}

fn edges_section(edges: &[NodeEdge]) -> Markup {
    html! {
        section #edges {
            h2 { "Edges " span.n { "(" (edges.len()) ")" } }
            @if edges.is_empty() { p.none { "None." } }
            @else {
                table {
                    thead { tr { th { "Way" } th { "Edge" } th { "Services" } th { "State" } th { "Since" } } }
                    tbody {
                        @for e in edges {
                            tr data-state=(e.state.as_str()) {
                                td { @if e.outgoing { "uses" } @else { "used by" } }
                                td {
                                    @if e.outgoing {
                                        @if let Some(d) = &e.dst { (node_link(d)) " " }
                                        a.edge href={ "/ui/edges/" (e.id) } { "(" (e.dst_ip) ")" }
                                    } @else {
                                        (node_link(&e.src)) " " a.edge href={ "/ui/edges/" (e.id) } { "→ " (e.dst_ip) }
                                    }
                                }
                                td { (e.services.join(", ")) }
                                td { (state(e.state)) }
                                td { @if let Some(s) = e.since { (when(s)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn agent_section(report: Option<&AgentReport>) -> Markup {
    let f = |v: Option<f32>| v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "–".into());
    html! {
        section #agent {
            h2 { "Agent" }
            @match report {
                None => { p.none { "No report from an agent on this node in the last hour." } },
                Some(r) => {
                    p.meta { "latest report " (when(r.at)) }
                    p { "load " b.load { (f(r.load1)) " " (f(r.load5)) " " (f(r.load15)) } " (1, 5, 15 min)" }
                    @if let Some(n) = &r.nginx {
                        p {
                            "nginx " b { (format!("{:.2}", n.requests_per_s)) } " requests/s, "
                            b { (format!("{:.2}", n.errors_per_s)) } " errors/s"
                        }
                        @if !n.by_status.is_empty() {
                            ul.counts { @for (code, rate) in &n.by_status { li { (code) " " b { (format!("{rate:.2}")) } "/s" } } }
                        }
                    }
                },
            }
        }
    }
}
