//! The stored daily reports (`reports` table, written by `edgewatch report --store` and
//! `run`): `/ui/reports` lists them, `/ui/reports/{day}` shows one day's (the HTML
//! rendering in a sandboxed frame, the Markdown as text), `/ui/reports/{day}/html` is the
//! stored HTML page itself, served with a sandboxing content policy.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use chrono::NaiveDate;
use maud::html;
use serde::Deserialize;

use super::super::error::{with_store_timeout, ApiError};
use super::super::App;
use super::{segment, when, UiResult};

/// The stored HTML report: no script, its own inline style, shown only in a frame of ours.
const REPORT_CSP: &str =
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'";

#[derive(Debug, Deserialize)]
pub struct TzParam {
    tz: Option<String>,
}

fn parse_day(day: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| ApiError::BadRequest(format!("{day:?} is not a day such as 2026-11-22")))
}

/// `GET /ui/reports`.
pub async fn list(State(app): State<Arc<App>>) -> UiResult {
    let reports = with_store_timeout(graph_store::ui::stored_reports(&app.reads.pool())).await?;
    let main = html! {
        main #main {
            h1 { "Reports" }
            @if reports.is_empty() { p.none { "No report is stored yet (" code { "edgewatch report --store" } ", or " code { "edgewatch run" } ")." } }
            @else {
                table {
                    thead { tr { th { "Day" } th { "Time zone" } th { "Format" } th { "Made" } } }
                    tbody {
                        @for r in &reports {
                            tr.report {
                                td { a href={ "/ui/reports/" (r.day) "?tz=" (segment(&r.tz)) } { (r.day) } }
                                td { (r.tz) } td { (r.format) } td { (when(r.generated_at)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(super::page(StatusCode::OK, "Reports", main))
}

/// `GET /ui/reports/{day}`.
pub async fn day(State(app): State<Arc<App>>, Path(day): Path<String>, Query(p): Query<TzParam>) -> UiResult {
    let date = parse_day(&day)?;
    let pool = app.reads.pool();
    let tz = p.tz.as_deref();
    let html_body = with_store_timeout(graph_store::ui::stored_report(&pool, date, tz, "html")).await?;
    let md = with_store_timeout(graph_store::ui::stored_report(&pool, date, tz, "md")).await?;
    if html_body.is_none() && md.is_none() {
        let json = with_store_timeout(graph_store::ui::stored_report(&pool, date, tz, "json")).await?;
        if json.is_none() {
            return Err(ApiError::NotFound(format!("no report of {date} is stored")).into());
        }
    }
    let frame = format!("/ui/reports/{date}/html{}", tz.map(|t| format!("?tz={}", segment(t))).unwrap_or_default());
    let main = html! {
        main #main {
            h1 { "Report of " (date) @if let Some(t) = tz { " (" (t) ")" } }
            @if html_body.is_some() {
                p { a href=(frame) { "Open the HTML report on its own" } }
                iframe.report src=(frame) sandbox="" title="The HTML report" {}
            } @else if let Some(md) = &md {
                pre.report { (md) }
            } @else {
                p.none { "Only the JSON rendering is stored: " code { "edgewatch report --format html --store" } " stores the page." }
            }
        }
    };
    Ok(super::page(StatusCode::OK, &format!("Report {date}"), main))
}

/// `GET /ui/reports/{day}/html`: the stored page, as made by the report (maud-escaped).
pub async fn html(State(app): State<Arc<App>>, Path(day): Path<String>, Query(p): Query<TzParam>) -> UiResult {
    let date = parse_day(&day)?;
    let body = with_store_timeout(graph_store::ui::stored_report(&app.reads.pool(), date, p.tz.as_deref(), "html"))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no HTML report of {date} is stored")))?;
    let mut resp = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(REPORT_CSP));
    resp.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Ok(resp)
}
