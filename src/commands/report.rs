//! `edgewatch report` (one day's dependency report) and `edgewatch run` (the daily
//! schedule).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use graph_store::report::{self as store, Day, Report};
use graph_store::PgPool;

use crate::cli::{Global, ReportArgs, ReportFormat, RunArgs};

/// Rollups kept by default, in days.
const KEEP_DAYS: u32 = 400;

pub async fn report(global: &Global, args: ReportArgs) -> Result<ExitCode> {
    let tz = zone(args.tz.as_deref().or(global.file.report.tz.as_deref()))?;
    let now = Utc::now();
    let (day, stored) = match (args.date, args.since) {
        (_, Some(since)) => {
            let from = now - chrono::Duration::from_std(since).context("--since is too long")?;
            (Day { date: now.with_timezone(&tz).date_naive(), tz: tz.name().to_string(), from, to: now }, false)
        }
        (Some(date), None) => (day_in(date, tz)?, true),
        (None, None) => (day_in(yesterday(now, tz), tz)?, true),
    };
    let db = super::connect(global).await?;
    let r = make(&db.pool, &day, tz).await?;
    let body = render(&r, args.format)?;
    if stored {
        store::store(&db.pool, day.date, &day.tz, args.format.name(), &body).await?;
    }
    match &args.out {
        Some(path) => write_atomically(path, &body)?,
        None => print!("{body}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The time zone by name, else this machine's, else UTC.
fn zone(name: Option<&str>) -> Result<Tz> {
    match name {
        Some(name) => name.parse::<Tz>().map_err(|_| {
            anyhow::anyhow!("unknown time zone {name:?}: give an IANA name such as UTC, Europe/Berlin, America/Chicago")
        }),
        None => Ok(iana_time_zone::get_timezone().ok().and_then(|n| n.parse::<Tz>().ok()).unwrap_or(Tz::UTC)),
    }
}

fn yesterday(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    now.with_timezone(&tz).date_naive().pred_opt().expect("a day before today")
}

/// The day's bounds in UTC: local midnight to the next local midnight (23 or 25 hours on
/// the days the clocks change).
fn day_in(date: NaiveDate, tz: Tz) -> Result<Day> {
    let midnight = |d: NaiveDate| {
        tz.from_local_datetime(&d.and_time(NaiveTime::MIN))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .with_context(|| format!("{d} has no midnight in {tz}"))
    };
    let next = date.succ_opt().with_context(|| format!("{date} is the last day there is"))?;
    Ok(Day { date, tz: tz.name().to_string(), from: midnight(date)?, to: midnight(next)? })
}

async fn make(pool: &PgPool, day: &Day, tz: Tz) -> Result<Report> {
    let local = move |t: DateTime<Utc>| t.with_timezone(&tz).format("%H:%M").to_string();
    Ok(store::compute(pool, day, &local).await?)
}

fn render(r: &Report, format: ReportFormat) -> Result<String> {
    Ok(match format {
        ReportFormat::Json => serde_json::to_string_pretty(r)? + "\n",
        ReportFormat::Md => crate::report::markdown(r),
        ReportFormat::Html => {
            let svg = match crate::report::svg(&crate::report::dot(r)) {
                Ok(svg) => Some(svg),
                Err(e) => {
                    eprintln!("edgewatch: warning: no picture of the service graph: {e:#}");
                    None
                }
            };
            crate::report::html(r, svg.as_deref())
        }
    })
}

/// Writes `body` to a temporary file beside `path`, then renames it over `path`: a reader
/// never sees half a report.
fn write_atomically(path: &Path, body: &str) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("writing a report in {}", dir.display()))?;
    std::fs::write(tmp.path(), body).with_context(|| format!("writing {}", tmp.path().display()))?;
    // Readable like any report file (a temporary file starts private).
    std::fs::set_permissions(tmp.path(), std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    tmp.persist(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The next time `at` (local) comes after `now`.
pub fn next_run(now: DateTime<Utc>, at: NaiveTime, tz: Tz) -> DateTime<Utc> {
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

/// `edgewatch run`: yesterday's report when it is due and not stored yet, then every day
/// at `[report] at`.
pub async fn run(global: &Global, args: RunArgs) -> Result<ExitCode> {
    let cfg = &global.file.report;
    let tz = zone(cfg.tz.as_deref())?;
    let at_text = cfg.at.as_deref().unwrap_or("00:15");
    let at = NaiveTime::parse_from_str(at_text, "%H:%M")
        .with_context(|| format!("[report] at = {at_text:?} is not a time of day such as 00:15"))?;
    let db = super::connect(global).await?;
    let shutdown = super::shutdown_on_ctrl_c();
    loop {
        // Catch up: yesterday's report once today's run time has passed.
        let now = Utc::now();
        let day = yesterday(now, tz);
        let due = next_run(now - chrono::Duration::days(1), at, tz) <= now;
        if due && !store::is_stored(&db.pool, day, tz.name()).await? {
            daily(&db.pool, cfg, day, tz).await?;
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
            _ = shutdown.cancelled() => return Ok(ExitCode::SUCCESS),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One day's reports in every format, stored (and written to `[report] dir`); then the
/// rollups past `keep_days` pruned.
async fn daily(pool: &PgPool, cfg: &crate::config::ReportConfig, date: NaiveDate, tz: Tz) -> Result<()> {
    let day = day_in(date, tz)?;
    let r = make(pool, &day, tz).await?;
    for format in [ReportFormat::Json, ReportFormat::Md, ReportFormat::Html] {
        let body = render(&r, format)?;
        store::store(pool, date, tz.name(), format.name(), &body).await?;
        if let Some(dir) = &cfg.dir {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            write_atomically(&dir.join(format!("edgewatch-{date}.{}", format.name())), &body)?;
        }
    }
    let pruned = graph_store::rollup::prune(pool, cfg.keep_days.unwrap_or(KEEP_DAYS)).await?;
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
    fn days_follow_the_local_clock() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let d = day_in(NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(), berlin).unwrap();
        assert_eq!((d.from, d.to), (utc("2026-11-20T23:00:00Z"), utc("2026-11-21T23:00:00Z")));
        // The day the clocks go back has 25 hours.
        let d = day_in(NaiveDate::from_ymd_opt(2026, 10, 25).unwrap(), berlin).unwrap();
        assert_eq!((d.to - d.from).num_hours(), 25);
        assert_eq!(yesterday(utc("2026-11-21T23:30:00Z"), berlin), NaiveDate::from_ymd_opt(2026, 11, 21).unwrap());
    }

    #[test]
    fn the_next_run_is_the_next_local_time() {
        let at = NaiveTime::from_hms_opt(0, 15, 0).unwrap();
        assert_eq!(next_run(utc("2026-11-22T10:00:00Z"), at, Tz::UTC), utc("2026-11-23T00:15:00Z"));
        assert_eq!(next_run(utc("2026-11-22T00:10:00Z"), at, Tz::UTC), utc("2026-11-22T00:15:00Z"));
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(next_run(utc("2026-11-22T10:00:00Z"), at, berlin), utc("2026-11-22T23:15:00Z"));
    }

    #[test]
    fn unknown_zones_are_refused() {
        assert!(zone(Some("Mars/Olympus")).unwrap_err().to_string().contains("IANA"));
        assert_eq!(zone(Some("UTC")).unwrap(), Tz::UTC);
    }
}
