//! Points in time as operators type them: `--at 16:00`, `--from "2026-11-21 23:00"`,
//! `--at 2h`, `--to now`, or full RFC 3339 as scripts write it.

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// What `--at`, `--from` and `--to` accept, for error messages and `--help`.
pub const FORMATS: &str = "RFC 3339 (2026-11-22T16:00:00Z, 2026-11-22T17:00:00+01:00), \
     local date and time (\"2026-11-22 16:00\", 2026-11-22T16:00:05), local time today (16:00), \
     a duration ago (15m, 2h30m, 1d, \"2h ago\"), or now";

/// Parses a point in time (see [`FORMATS`]); local times are in this machine's time zone.
pub fn parse(s: &str) -> Result<DateTime<Utc>, String> {
    parse_relative_to(s, Utc::now(), &Local)
}

/// [`parse`] against a given clock and time zone (for tests).
pub fn parse_relative_to<Tz: TimeZone>(s: &str, now: DateTime<Utc>, tz: &Tz) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return local(tz, t, s);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return local(tz, d.and_time(NaiveTime::MIN), s);
    }
    for format in ["%H:%M:%S", "%H:%M"] {
        if let Ok(t) = NaiveTime::parse_from_str(s, format) {
            let today = now.with_timezone(tz).date_naive();
            return local(tz, today.and_time(t), s);
        }
    }
    let ago = s.strip_suffix("ago").map(str::trim_end).unwrap_or(s);
    let ago = ago.strip_prefix('-').unwrap_or(ago);
    if let Ok(d) = humantime::parse_duration(ago) {
        let d = chrono::Duration::from_std(d).map_err(|_| format!("{s:?} is too long ago"))?;
        return now.checked_sub_signed(d).ok_or_else(|| format!("{s:?} is too long ago"));
    }
    Err(format!("{s:?} is not a time; use {FORMATS}"))
}

fn local<Tz: TimeZone>(tz: &Tz, t: NaiveDateTime, s: &str) -> Result<DateTime<Utc>, String> {
    // The earlier of the two when the clock went back; none when it jumped forward.
    tz.from_local_datetime(&t)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("{s:?} does not exist in the local time zone (the clocks skipped it)"))
}

#[cfg(test)]
mod tests {
    use chrono::FixedOffset;

    use super::*;

    fn at(s: &str) -> Result<String, String> {
        let now = DateTime::parse_from_rfc3339("2026-11-22T17:30:00Z").unwrap().with_timezone(&Utc);
        let tz = FixedOffset::east_opt(3600).unwrap();
        parse_relative_to(s, now, &tz).map(|t| t.to_rfc3339())
    }

    #[test]
    fn accepts_every_documented_form() {
        assert_eq!(at("2026-11-22T16:00:00Z").unwrap(), "2026-11-22T16:00:00+00:00");
        assert_eq!(at("2026-11-22T17:00:00+01:00").unwrap(), "2026-11-22T16:00:00+00:00");
        assert_eq!(at("2026-11-22 16:00").unwrap(), "2026-11-22T15:00:00+00:00");
        assert_eq!(at("2026-11-22T16:00:05").unwrap(), "2026-11-22T15:00:05+00:00");
        assert_eq!(at("2026-11-22").unwrap(), "2026-11-21T23:00:00+00:00");
        assert_eq!(at("16:00").unwrap(), "2026-11-22T15:00:00+00:00");
        assert_eq!(at("15m").unwrap(), "2026-11-22T17:15:00+00:00");
        assert_eq!(at("2h ago").unwrap(), "2026-11-22T15:30:00+00:00");
        assert_eq!(at("-1d").unwrap(), "2026-11-21T17:30:00+00:00");
        assert_eq!(at("now").unwrap(), "2026-11-22T17:30:00+00:00");
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in ["", "yesterday-ish", "25:00", "2026-13-01", "16:00 tomorrow"] {
            let err = at(bad).unwrap_err();
            assert!(err.contains("RFC 3339"), "{bad:?}: {err}");
        }
    }
}
