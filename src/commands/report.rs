//! `edgewatch report`: one day's dependency report (or the last `--since`), printed or
//! written to a file, and stored when it is a whole day.

use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::Utc;
use graph_store::report::{self as store, Day};

use super::reporting::{day_in, make_reading, render, write_atomically, yesterday};
use crate::cli::{ReportArgs, ReportFormat};
use crate::config::Settings;

pub async fn run(settings: &Settings, args: ReportArgs) -> Result<ExitCode> {
    let tz = settings.report_zone(args.tz.as_deref())?;
    let now = Utc::now();
    let (day, stored) = match (args.date, args.since) {
        (_, Some(since)) => {
            let from = now - chrono::Duration::from_std(since).context("--since is too long")?;
            (Day { date: now.with_timezone(&tz).date_naive(), tz: tz.name().to_string(), from, to: now }, false)
        }
        (Some(date), None) => (day_in(date, tz)?, true),
        (None, None) => (day_in(yesterday(now, tz), tz)?, true),
    };
    let db = super::shared::connect(settings).await?;
    let (r, picture) = make_reading(settings, &db.pool, &day, tz, args.format == ReportFormat::Html).await?;
    let body = render(&r, args.format, picture)?;
    if stored {
        store::store(&db.pool, day.date, &day.tz, args.format.name(), &body).await?;
    }
    match &args.out {
        Some(path) => write_atomically(path, &body)?,
        None => print!("{body}"),
    }
    Ok(ExitCode::SUCCESS)
}
