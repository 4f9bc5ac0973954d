//! An edge's page (`/ui/edges/{id}`): its consumer and destination, state and since-when,
//! its state changes, and a chart of loss and RTT over the last 24 h (its probe results
//! in 5-minute bins).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use maud::html;

use super::super::error::{with_store_timeout, ApiError};
use super::super::App;
use super::{chart, node_link, state, when, UiResult};

/// The chart's window, and its bins.
const WINDOW: chrono::Duration = chrono::Duration::hours(24);
const BIN_S: i64 = 300;
/// State changes listed.
const EVENTS: i64 = 50;

/// `GET /ui/edges/{id}`.
pub async fn page(State(app): State<Arc<App>>, Path(id): Path<String>) -> UiResult {
    let id: i64 = id.parse().map_err(|_| ApiError::BadRequest(format!("{id:?} is not an edge id (a number)")))?;
    let pool = app.reads.pool();
    let e = with_store_timeout(graph_store::ui::edge(&pool, id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no edge with id {id}")))?;
    let to = Utc::now();
    let from = to - WINDOW;
    let events = with_store_timeout(graph_store::ui::edge_events(&pool, id, EVENTS)).await?;
    let series = with_store_timeout(graph_store::ui::edge_series(&pool, id, from, BIN_S)).await?;
    let main = html! {
        main #main {
            h1 { "Edge " (node_link(&e.src)) " → " @if let Some(d) = &e.dst { (node_link(d)) " " } span.ip { "(" (e.dst_ip) ")" } }
            p.meta {
                "consumer in " b { (e.src_dc) }
                " · services " b { (e.services.join(", ")) }
                " · learned from " b { (e.sources.join(", ")) }
                " · first seen " (when(e.first_seen)) " · last seen " (when(e.last_seen))
                @if let Some(r) = e.retired_at { " · " span.state.stale { "retired" } " " (when(r)) }
                " · " a.route href=(super::routes::pair_href(&e.src, &e.dst_ip, None, None, None)) { "its path (route)" }
            }
            section #health {
                h2 { "State" }
                p {
                    (state(e.state))
                    @if let Some(s) = e.since { " since " (when(s)) }
                    @if let Some(l) = e.loss_pct { " · loss " b { (format!("{l:.0} %")) } }
                    @if let Some(r) = e.rtt_avg_ms { " · RTT " b { (format!("{r:.2} ms")) } }
                    @if let Some(t) = e.last_result_at { " · last result " (when(t)) }
                }
            }
            section #chart {
                h2 { "Loss and RTT, last 24 h" }
                p.legend { span.key.loss { "loss (left axis)" } " " span.key.rtt { "RTT (right axis)" } " · 5-minute bins of the probe results" }
                (chart::chart(&series, from, to))
                @if series.is_empty() { p.none { "No probe results in the last 24 h." } }
            }
            section #events {
                h2 { "State changes" }
                @if events.is_empty() { p.none { "None." } }
                @else {
                    table {
                        thead { tr { th { "At" } th { "From" } th { "To" } th { "Why" } } }
                        tbody {
                            @for ev in &events {
                                tr { td { (when(ev.at)) } td { (ev.from_state) } td { (ev.to_state) } td { (ev.reason) } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(super::page(StatusCode::OK, &format!("Edge {} → {}", e.src, e.dst_ip), main))
}
