//! Making one day's report, for `edgewatch report` and `edgewatch run`: the day's bounds
//! in its time zone, computing, rendering, and writing a file whole.

use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use graph_store::report::{self as store, Day, Report, ServiceLink};
use graph_store::PgPool;

use crate::cli::ReportFormat;
use crate::report::Drawing;

pub fn yesterday(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    now.with_timezone(&tz).date_naive().pred_opt().expect("a day before today")
}

/// The day's bounds in UTC: local midnight to the next local midnight (23 or 25 hours on
/// the days the clocks change).
pub fn day_in(date: NaiveDate, tz: Tz) -> Result<Day> {
    let midnight = |d: NaiveDate| {
        tz.from_local_datetime(&d.and_time(NaiveTime::MIN))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .with_context(|| format!("{d} has no midnight in {tz}"))
    };
    let next = date.succ_opt().with_context(|| format!("{date} is the last day there is"))?;
    Ok(Day { date, tz: tz.name().to_string(), from: midnight(date)?, to: midnight(next)? })
}

/// The report of `day`, and with `draw` its picture being drawn: started as soon as the
/// service graph is read, so Graphviz's layout runs beside the rest of the reads.
pub async fn make(pool: &PgPool, day: &Day, tz: Tz, draw: bool) -> Result<(Report, Option<Drawing>)> {
    graph_store::rollup::fill_down(pool, day.from, day.to).await?;
    compute(pool, day, tz, draw).await
}

/// [`make`] for `edgewatch report`: the rollups filled in on the primary, the rest read
/// from the standby once it has replayed them (crate::read_pool).
pub async fn make_reading(
    settings: &crate::config::Settings,
    primary: &PgPool,
    day: &Day,
    tz: Tz,
    draw: bool,
) -> Result<(Report, Option<Drawing>)> {
    graph_store::rollup::fill_down(primary, day.from, day.to).await?;
    let read = crate::read_pool::for_command_after_write(settings, primary).await?.pool;
    compute(&read, day, tz, draw).await
}

async fn compute(pool: &PgPool, day: &Day, tz: Tz, draw: bool) -> Result<(Report, Option<Drawing>)> {
    let local = move |t: DateTime<Utc>| t.with_timezone(&tz).format("%H:%M").to_string();
    let mut drawing = None;
    let mut start = |links: &[ServiceLink]| {
        if draw {
            drawing = Some(Drawing::start(crate::report::dot_of(links)));
        }
    };
    let r = store::compute_filled_early(pool, day, &local, &mut start).await?;
    Ok((r, drawing))
}

/// The report in `format`; for HTML with `picture` when it is being drawn already, else
/// drawn here.
pub fn render(r: &Report, format: ReportFormat, picture: Option<Drawing>) -> Result<String> {
    Ok(match format {
        ReportFormat::Json => serde_json::to_string_pretty(r)? + "\n",
        ReportFormat::Md => crate::report::markdown(r),
        ReportFormat::Html => {
            let svg = match picture {
                Some(drawing) => drawing.finish(),
                None => crate::report::svg(&crate::report::dot(r)),
            };
            let svg = match svg {
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
pub fn write_atomically(path: &Path, body: &str) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("writing a report in {}", dir.display()))?;
    std::fs::write(tmp.path(), body).with_context(|| format!("writing {}", tmp.path().display()))?;
    // Readable like any report file (a temporary file starts private).
    std::fs::set_permissions(tmp.path(), std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    tmp.persist(path).with_context(|| format!("writing {}", path.display()))?;
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
}
