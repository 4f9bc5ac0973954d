//! What stands in front of a PowerDNS message, and the time it gives:
//!
//! - PowerDNS' own `%b %d %H:%M:%S ` (`Nov 22 01:36:00 `), year-less local time;
//! - syslog traditional `Nov 22 01:36:00 vm pdns[123]: ` and journalctl `short`;
//! - RFC 3339 `2026-11-22T01:36:05.080405+00:00 vm pdns[11882]: ` (rsyslog) and
//!   journalctl `short-iso-precise` (`…+0000 vm pdns_server[123]: `);
//! - raw syslog datagrams `<30>Nov 22 01:36:00 pdns[123]: `;
//! - nothing at all (`--log-timestamp=no`).
//!
//! After a time, a program tag (`name[pid]:` or `name:`) may follow, with or without a
//! host name before it. Query messages never start like a tag, so stripping one is safe.

use chrono::{DateTime, Datelike, NaiveDate};
use nom::branch::alt;
use nom::bytes::complete::{take, take_while1, take_while_m_n};
use nom::character::complete::{char, digit1, one_of};
use nom::combinator::{eof, map_res, opt, value};
use nom::sequence::{delimited, preceded};
use nom::{IResult, Parser};

use crate::dns::record::ParseContext;

type Res<'a, O> = IResult<&'a str, O, ()>;

const MICROS: i64 = 1_000_000;
const DAY_US: i64 = 86_400 * MICROS;

/// A line split into its message and the time its prefix gave, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Prefixed<'a> {
    pub(super) message: &'a str,
    pub(super) time_us: Option<i64>,
}

/// Splits the known prefixes off `line`. A line without one is all message.
pub(super) fn split<'a>(line: &'a str, ctx: &ParseContext) -> Prefixed<'a> {
    let (rest, has_priority) = match priority(line) {
        Ok((rest, ())) => (rest, true),
        Err(_) => (line, false),
    };
    let (rest, time_us) = if let Ok((rest, stamp)) = iso_stamp(rest) {
        (rest, stamp.to_us(ctx))
    } else if let Ok((rest, stamp)) = bsd_stamp(rest) {
        (rest, stamp.to_us(ctx))
    } else if has_priority {
        (rest, None)
    } else {
        return Prefixed { message: line, time_us: None };
    };
    let rest = match program(rest).or_else(|_| host_and_program(rest)) {
        // PowerDNS' own time behind the tag (stdout captured with --log-timestamp=yes):
        // the outer one is kept, it is at least as precise.
        Ok((rest, ())) => bsd_stamp(rest).map_or(rest, |(rest, _)| rest),
        Err(_) => rest,
    };
    Prefixed { message: rest, time_us }
}

/// A time of day with microseconds.
#[derive(Debug, Clone, Copy)]
struct Clock {
    hour: u32,
    min: u32,
    sec: u32,
    micros: u32,
}

#[derive(Debug, Clone, Copy)]
enum Stamp {
    /// RFC 3339 / ISO 8601; without an offset, local time.
    Full { year: i32, month: u32, day: u32, clock: Clock, offset_secs: Option<i32> },
    /// `%b %d %H:%M:%S`, local time of a year to be guessed.
    YearLess { month: u32, day: u32, clock: Clock },
}

impl Stamp {
    fn to_us(self, ctx: &ParseContext) -> Option<i64> {
        match self {
            Stamp::Full { year, month, day, clock, offset_secs } => {
                let offset = offset_secs.unwrap_or(ctx.local_offset_secs);
                utc_us(year, month, day, clock, offset)
            }
            Stamp::YearLess { month, day, clock } => {
                let offset = ctx.local_offset_secs;
                let local_now = ctx.now_us.div_euclid(MICROS).saturating_add(i64::from(offset));
                let year = DateTime::from_timestamp(local_now, 0)?.year();
                let latest = ctx.now_us.saturating_add(DAY_US);
                match utc_us(year, month, day, clock, offset) {
                    Some(t) if t <= latest => Some(t),
                    _ => utc_us(year.checked_sub(1)?, month, day, clock, offset),
                }
            }
        }
    }
}

/// Microseconds since the epoch of a local time `offset_secs` east of UTC.
fn utc_us(year: i32, month: u32, day: u32, clock: Clock, offset_secs: i32) -> Option<i64> {
    let local = NaiveDate::from_ymd_opt(year, month, day)?
        .and_hms_micro_opt(clock.hour, clock.min, clock.sec, clock.micros)?
        .and_utc()
        .timestamp_micros();
    local.checked_sub(i64::from(offset_secs).checked_mul(MICROS)?)
}

/// `<30>`: the priority of a raw syslog datagram.
fn priority(i: &str) -> Res<'_, ()> {
    value((), delimited(char('<'), take_while_m_n(1, 3, is_digit), char('>'))).parse(i)
}

/// `2026-11-22T01:36:05.080405+00:00 ` (also `+0000`, `Z`, no offset, or a space for `T`).
fn iso_stamp(i: &str) -> Res<'_, Stamp> {
    let (i, (year, _, month, _, day, _, clock, offset_secs, _)) = (
        number(4, 4),
        char('-'),
        number(2, 2),
        char('-'),
        number(2, 2),
        one_of("T "),
        clock,
        opt(utc_offset),
        char(' '),
    )
        .parse(i)?;
    let year = i32::try_from(year).map_err(|_| nom::Err::Error(()))?;
    Ok((i, Stamp::Full { year, month, day, clock, offset_secs }))
}

/// `Nov 22 01:36:00 ` (syslog pads the day with a space: `Nov  2`).
fn bsd_stamp(i: &str) -> Res<'_, Stamp> {
    let (i, (month, _, _, day, _, clock, _)) =
        (month, char(' '), opt(char(' ')), number(1, 2), char(' '), clock, char(' ')).parse(i)?;
    Ok((i, Stamp::YearLess { month, day, clock }))
}

fn month(i: &str) -> Res<'_, u32> {
    map_res(take(3usize), |name: &str| {
        const NAMES: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        NAMES.iter().position(|n| *n == name).map(|p| p as u32 + 1).ok_or(())
    })
    .parse(i)
}

/// `01:36:05` or `01:36:05.080405`.
fn clock(i: &str) -> Res<'_, Clock> {
    let (i, (hour, _, min, _, sec, fraction)) =
        (number(2, 2), char(':'), number(2, 2), char(':'), number(2, 2), opt(preceded(char('.'), digit1))).parse(i)?;
    Ok((i, Clock { hour, min, sec, micros: fraction.map_or(0, micros_of_fraction) }))
}

/// `Z`, `+00:00`, `-0500`: seconds east of UTC.
fn utc_offset(i: &str) -> Res<'_, i32> {
    alt((
        value(0, char('Z')),
        (one_of("+-"), number(2, 2), opt(char(':')), number(2, 2)).map(|(sign, hours, _, minutes)| {
            let secs = (hours * 3600 + minutes * 60) as i32;
            if sign == '-' {
                -secs
            } else {
                secs
            }
        }),
    ))
    .parse(i)
}

/// `pdns[123]: ` or `pdns_recursor: `.
fn program(i: &str) -> Res<'_, ()> {
    value(
        (),
        (
            take_while_m_n(1, 64, is_tag_char),
            opt(delimited(char('['), digit1, char(']'))),
            char(':'),
            alt((value((), char(' ')), value((), eof))),
        ),
    )
    .parse(i)
}

/// `vm pdns[123]: `.
fn host_and_program(i: &str) -> Res<'_, ()> {
    let (i, _) = (take_while1(is_host_char), char(' ')).parse(i)?;
    program(i)
}

/// A decimal number of `min..=max` digits (at most 9, so it fits).
fn number<'a>(min: usize, max: usize) -> impl Parser<&'a str, Output = u32, Error = ()> {
    map_res(take_while_m_n(min, max, is_digit), |d: &str| d.parse::<u32>())
}

/// `080405123` → 80405: the first six digits of a decimal fraction, as microseconds.
pub(super) fn micros_of_fraction(digits: &str) -> u32 {
    digits
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(6)
        .fold(0, |acc, b| acc * 10 + u32::from(b.wrapping_sub(b'0') % 10))
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
}

/// Host names, or addresses when the sender has no name.
fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
}

fn is_tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '@')
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Microseconds since the epoch of a UTC date and time.
    pub(crate) fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, mo, d).unwrap().and_hms_opt(h, mi, s).unwrap().and_utc().timestamp_micros()
    }

    /// 2026-11-22T02:00:00Z, UTC: shortly after the fixtures were captured.
    pub(crate) fn ctx() -> ParseContext {
        ParseContext { now_us: utc(2026, 11, 22, 2, 0, 0), local_offset_secs: 0 }
    }

    #[test]
    fn prefixes() {
        let cases: &[(&str, &str, Option<i64>)] = &[
            ("Remote 127.0.0.1 wants", "Remote 127.0.0.1 wants", None),
            ("Nov 22 01:28:18 Remote 127.0.0.1 wants", "Remote 127.0.0.1 wants", Some(utc(2026, 11, 22, 1, 28, 18))),
            ("Nov 22 01:28:50 vm pdns[8023]: Remote ::1 wants", "Remote ::1 wants", Some(utc(2026, 11, 22, 1, 28, 50))),
            ("Nov  2 01:28:50 vm pdns[8023]: x", "x", Some(utc(2026, 11, 2, 1, 28, 50))),
            ("Nov 02 01:28:50 x", "x", Some(utc(2026, 11, 2, 1, 28, 50))),
            (
                "<29>Nov 22 01:28:50 pdns[8023]: Remote 127.0.0.1",
                "Remote 127.0.0.1",
                Some(utc(2026, 11, 22, 1, 28, 50)),
            ),
            (
                "<30>Nov 22 01:30:07 pdns_recursor[9058]: msg=\"Question\"",
                "msg=\"Question\"",
                Some(utc(2026, 11, 22, 1, 30, 7)),
            ),
            (
                "2026-11-22T01:36:05.080405+00:00 vm pdns[11882]: This is",
                "This is",
                Some(utc(2026, 11, 22, 1, 36, 5) + 80_405),
            ),
            (
                "2026-11-22T01:31:52.950531+0000 vm pdns_server[10409]: Remote",
                "Remote",
                Some(utc(2026, 11, 22, 1, 31, 52) + 950_531),
            ),
            ("2026-11-22T02:31:52.9+01:00 vm pdns: Remote", "Remote", Some(utc(2026, 11, 22, 1, 31, 52) + 900_000)),
            ("2026-11-21T20:31:52-0500 vm pdns-recursor[1]: x", "x", Some(utc(2026, 11, 22, 1, 31, 52))),
            ("2026-11-22T01:31:52Z pdns_recursor: x", "x", Some(utc(2026, 11, 22, 1, 31, 52))),
            ("2026-11-22 01:31:52 x", "x", Some(utc(2026, 11, 22, 1, 31, 52))),
            (
                "Nov 22 01:31:54 vm pdns-recursor[10410]: Nov 22 01:31:53 3 [1/1] question",
                "3 [1/1] question",
                Some(utc(2026, 11, 22, 1, 31, 54)),
            ),
            // A message that merely starts with a word and a colon loses it: harmless.
            ("Nov 22 01:36:08 allow-from: 127.0.0.0/8", "127.0.0.0/8", Some(utc(2026, 11, 22, 1, 36, 8))),
            (
                "Nov 22 01:29:54 msg=\"Not a tag: really\" subsystem=\"config\"",
                "msg=\"Not a tag: really\" subsystem=\"config\"",
                Some(utc(2026, 11, 22, 1, 29, 54)),
            ),
            ("Nov 22 01:29:54 fd00::1 pdns: x", "x", Some(utc(2026, 11, 22, 1, 29, 54))),
            // Not prefixes.
            ("Nov 22 01:28 x", "Nov 22 01:28 x", None),
            ("Foo 22 01:28:18 x", "Foo 22 01:28:18 x", None),
            ("<30 x", "<30 x", None),
            ("2026-11-22X01:31:52 x", "2026-11-22X01:31:52 x", None),
            ("Q\tfd00::\tIN\tA", "Q\tfd00::\tIN\tA", None),
            // A time that does not exist: the message is still found.
            ("Feb 30 01:28:18 x", "x", None),
            ("2026-13-22T01:31:52Z x", "x", None),
        ];
        for (line, message, time_us) in cases {
            let got = split(line, &ctx());
            assert_eq!(got, Prefixed { message, time_us: *time_us }, "{line:?}");
        }
    }

    #[test]
    fn year_less_times_take_the_year_before_when_they_would_be_in_the_future() {
        let new_year = ParseContext { now_us: utc(2027, 1, 1, 0, 30, 0), local_offset_secs: 0 };
        let cases: &[(&str, ParseContext, i64)] = &[
            ("Dec 31 23:59:00 x", new_year, utc(2026, 12, 31, 23, 59, 0)),
            ("Jan  1 00:10:00 x", new_year, utc(2027, 1, 1, 0, 10, 0)),
            // Less than a day ahead (a clock a little fast): still this year.
            ("Jan  1 23:00:00 x", new_year, utc(2027, 1, 1, 23, 0, 0)),
            ("Jan  2 01:00:00 x", new_year, utc(2026, 1, 2, 1, 0, 0)),
            // Local time one hour east of UTC.
            ("Nov 22 03:00:00 x", ParseContext { local_offset_secs: 3600, ..ctx() }, utc(2026, 11, 22, 2, 0, 0)),
            // Just after midnight UTC but already in the new year locally.
            (
                "Jan  1 00:30:00 x",
                ParseContext { now_us: utc(2026, 12, 31, 23, 45, 0), local_offset_secs: 3600 },
                utc(2026, 12, 31, 23, 30, 0),
            ),
            // 29 February read in a year that has none.
            (
                "Feb 29 12:00:00 x",
                ParseContext { now_us: utc(2029, 1, 1, 0, 0, 0), local_offset_secs: 0 },
                utc(2028, 2, 29, 12, 0, 0),
            ),
        ];
        for (line, ctx, want) in cases {
            assert_eq!(split(line, ctx).time_us, Some(*want), "{line:?}");
        }
    }

    #[test]
    fn fractions() {
        let cases = [("0", 0), ("5", 500_000), ("080405", 80_405), ("080405999", 80_405), ("334", 334_000)];
        for (digits, want) in cases {
            assert_eq!(micros_of_fraction(digits), want, "{digits:?}");
        }
    }
}
