//! `edgewatch run`: the scheduled jobs. Yesterday's report when it is due and not stored
//! yet, then every day at `[report] at`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use graph_store::report as store;
use graph_store::PgPool;

use super::reporting::{day_in, make, render, write_atomically, yesterday};
use crate::cli::{ReportFormat, RunArgs};
use crate::config::{Schedule, Settings};
use crate::leader;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub async fn run(settings: &Settings, args: RunArgs) -> Result<ExitCode> {
    let mut schedule = settings.schedule()?;
    let db = super::shared::connect(settings).await?;
    let shutdown = super::shared::shutdown_on_signal(settings.stop_timeout());
    let mut reloads = crate::reload::on_sighup(settings, crate::reload::Live::RUN, "run")?;
    // Several `run`s (a standby) make each report once: the holder of the lease makes it.
    let lease_stop = CancellationToken::new();
    let (mut leading, lease) = if args.once {
        (watch::channel(true).1, None)
    } else {
        let (leading, task) = leader::lead(db.pool.clone(), "run", leader::holder("run"), lease_stop.clone());
        (leading, Some(task))
    };
    let stopped = async {
        lease_stop.cancel();
        if let Some(task) = lease {
            let _ = task.await;
        }
        Ok(ExitCode::SUCCESS)
    };
    loop {
        let holds = {
            let quick = tokio::time::timeout(Duration::from_secs(1), leading.wait_for(|holds| *holds)).await;
            matches!(quick, Ok(Ok(_)))
        };
        if !holds {
            eprintln!("waiting for the run lease (another `run` makes the reports while it holds it)");
            tokio::select! {
                _ = shutdown.cancelled() => return stopped.await,
                _ = leading.wait_for(|holds| *holds) => {}
            }
        }
        let (tz, at) = (schedule.tz, schedule.at);
        // Catch up: yesterday's report once today's run time has passed.
        let now = Utc::now();
        let day = yesterday(now, tz);
        let due = next_run(now - chrono::Duration::days(1), at, tz) <= now;
        if due && !store::is_stored(&db.pool, day, tz.name()).await? {
            daily(&db.pool, &schedule, day).await?;
        }
        if args.once {
            return Ok(ExitCode::SUCCESS);
        }
        let next = next_run(Utc::now(), at, tz);
        eprintln!(
            "next report at {} ({})",
            next.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z"),
            graph_store::format_utc(&next)
        );
        let wait = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = shutdown.cancelled() => return stopped.await,
            _ = tokio::time::sleep(wait) => {}
            // Lost (the store was away): wait for it again before the next report.
            _ = leading.wait_for(|holds| !*holds) => {}
            // `[report]` from a SIGHUP: the next run is worked out again.
            Ok(()) = reloads.changed() => {
                let reloaded = reloads.borrow_and_update().settings.clone();
                match reloaded.schedule() {
                    Ok(new) => schedule = new,
                    Err(e) => eprintln!("SIGHUP: keeping the report schedule in use: {e:#}"),
                }
            }
        }
    }
}

/// The next time `at` (local) comes after `now`.
fn next_run(now: DateTime<Utc>, at: NaiveTime, tz: Tz) -> DateTime<Utc> {
    let today = now.with_timezone(&tz).date_naive();
    let mut day = today;
    loop {
        if let Some(t) = tz.from_local_datetime(&day.and_time(at)).earliest() {
            let t = t.with_timezone(&Utc);
            if t > now {
                return t;
            }
        }
        day = day.succ_opt().expect("a next day");
    }
}

/// One day's reports in every format, stored (and written to `[report] dir`); then the
/// rollups past `keep_days` pruned.
async fn daily(pool: &PgPool, schedule: &Schedule, date: NaiveDate) -> Result<()> {
    let tz = schedule.tz;
    let day = day_in(date, tz)?;
    let (r, mut picture) = make(pool, &day, tz, true).await?;
    for format in [ReportFormat::Json, ReportFormat::Md, ReportFormat::Html] {
        let body = render(&r, format, if format == ReportFormat::Html { picture.take() } else { None })?;
        store::store(pool, date, tz.name(), format.name(), &body).await?;
        if let Some(dir) = &schedule.dir {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            write_atomically(&dir.join(format!("edgewatch-{date}.{}", format.name())), &body)?;
        }
    }
    let pruned = graph_store::rollup::prune(pool, schedule.keep_days).await?;
    eprintln!("report for {date} ({tz}) made; {pruned} rollup rows past retention dropped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_next_run_is_the_next_local_time() {
        let at = NaiveTime::from_hms_opt(0, 15, 0).unwrap();
        assert_eq!(next_run(utc("2026-11-22T10:00:00Z"), at, Tz::UTC), utc("2026-11-23T00:15:00Z"));
        assert_eq!(next_run(utc("2026-11-22T00:10:00Z"), at, Tz::UTC), utc("2026-11-22T00:15:00Z"));
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(next_run(utc("2026-11-22T10:00:00Z"), at, berlin), utc("2026-11-22T23:15:00Z"));
    }
}
