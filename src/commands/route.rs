//! `edgewatch route show|diff|changes`: the path history questions, answered by
//! [`crate::route_query`] and shown by [`crate::route_view`].

use std::process::ExitCode;

use anyhow::Result;
use chrono::Utc;
use graph_store::paths::{DiffRules, EventFilter};

use crate::cli::{ListFormat, RouteCommand};
use crate::config::Settings;
use crate::output;
use crate::route_query;
use crate::route_view::events_table;

const KINDS: [&str; 6] = ["changed", "flap-start", "flap-end", "loss-started", "loss-moved", "loss-cleared"];

pub async fn run(settings: &Settings, cmd: RouteCommand) -> Result<ExitCode> {
    let db = super::shared::connect(settings).await?;
    let read = crate::read_pool::for_command(settings, &db.pool).await?.pool;
    let owners = settings.owners();
    match cmd {
        RouteCommand::Show { src, dst, at, window, format } => {
            let show = route_query::show(&read, &owners, &src, &dst, at, window).await?;
            match format {
                ListFormat::Json => output::json(&show)?,
                ListFormat::Table => {
                    println!("{}", show.heading());
                    if show.window.runs == 0 {
                        println!("no runs in this window (last run: {})", last_run(&show.pair));
                    } else {
                        println!("{}", show.table());
                    }
                }
            }
        }
        RouteCommand::Diff { src, dst, from, to, at, window, rtt_worse_ms, rtt_worse_pct, format } => {
            let starts = match (from, to) {
                (Some(from), Some(to)) => vec![from, to],
                _ if !at.is_empty() => at,
                _ => {
                    let now = route_query::window_start(None, window, Utc::now());
                    vec![now - chrono::Duration::minutes(30), now]
                }
            };
            let rules = DiffRules { rtt_worse_ms, rtt_worse_pct, ..DiffRules::default() };
            let diff = route_query::diff(&read, &owners, &src, &dst, &starts, window, &rules).await?;
            match format {
                ListFormat::Json => output::json(&diff)?,
                ListFormat::Table => {
                    println!("{} → {} ({})", diff.pair.src, diff.pair.dst, diff.pair.dst_ip);
                    println!("{}", diff.table());
                    for c in &diff.comparisons {
                        println!("{} → {}: {}", diff.windows[c.from].label(), diff.windows[c.to].label(), c.summary);
                    }
                }
            }
        }
        RouteCommand::Changes { since, until, dc, kind, limit, format } => {
            if let Some(bad) = kind.iter().find(|k| !KINDS.contains(&k.as_str())) {
                anyhow::bail!("--kind {bad:?}: expected one of {}", KINDS.join(", "));
            }
            let filter = EventFilter { since: Some(since), until, dcs: dc, pair_id: None, kinds: kind, limit };
            let (events, labels) = route_query::changes(&read, &owners, &filter).await?;
            match format {
                ListFormat::Json => output::json(&events)?,
                ListFormat::Table => {
                    println!("{}", events_table(&events, &labels));
                    println!("{} event(s)", events.len());
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn last_run(pair: &graph_store::paths::PairInfo) -> String {
    pair.last_run_at.map(|t| graph_store::format_utc(&t)).unwrap_or_else(|| "never".into())
}
