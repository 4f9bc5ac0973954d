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
//!
//! Each part is a nom parser over the line; the time is kept as parsed and
//! worked out (plain integer arithmetic) only when a record needs it.

use nom::branch::alt;
use nom::combinator::opt;
use nom::sequence::{delimited, preceded};
use nom::Parser;

use super::combinators::{byte, take_while_m_n, Res};
use crate::dns::record::ParseContext;

const MICROS: i64 = 1_000_000;
const DAY_US: i64 = 86_400 * MICROS;

/// The years chrono can represent: times outside them are `None`, as they always were.
const MIN_YEAR: i64 = -262_143;
const MAX_YEAR: i64 = 262_142;

/// A line split into its message and the time stamp its prefix had, if any.
#[derive(Debug, Clone, Copy)]
pub(super) struct Prefixed<'a> {
    pub(super) message: &'a str,
    stamp: Option<Stamp>,
}

impl Prefixed<'_> {
    /// The time the prefix gave: `None` without a stamp or when the stamp's date or time
    /// does not exist. Worked out only when asked (most query lines carry their own
    /// time, or are not queries at all).
    pub(super) fn time_us(&self, ctx: &ParseContext) -> Option<i64> {
        self.stamp?.to_us(ctx)
    }
}

/// Splits the known prefixes off `line`. A line without one is all message.
#[inline]
pub(super) fn split(line: &str) -> Prefixed<'_> {
    match prefix(line) {
        Ok((message, stamp)) => Prefixed { message, stamp },
        Err(_) => Prefixed { message: line, stamp: None },
    }
}

/// `[<30>]time [[host ]tag: [time ]]`: the time stamp, if any. Fails when there is
/// neither a priority nor a time.
#[inline]
fn prefix(i: &str) -> Res<'_, Option<Stamp>> {
    let stamp = || alt((iso_stamp, bsd_stamp));
    let (i, stamp) = alt((preceded(priority, opt(stamp())), stamp().map(Some))).parse_complete(i)?;
    // PowerDNS' own time behind the tag (stdout captured with --log-timestamp=yes): the
    // outer one is kept, it is at least as precise.
    let (i, _) = opt((alt((program, host_and_program)), opt(bsd_stamp))).parse_complete(i)?;
    Ok((i, stamp))
}

/// A time of day with microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Clock {
    hour: u32,
    min: u32,
    sec: u32,
    micros: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stamp {
    /// RFC 3339 / ISO 8601; without an offset, local time.
    Full { year: u32, month: u32, day: u32, clock: Clock, offset_secs: Option<i32> },
    /// `%b %d %H:%M:%S`, local time of a year to be guessed.
    YearLess { month: u32, day: u32, clock: Clock },
}

impl Stamp {
    fn to_us(self, ctx: &ParseContext) -> Option<i64> {
        match self {
            Stamp::Full { year, month, day, clock, offset_secs } => {
                let offset = offset_secs.unwrap_or(ctx.local_offset_secs);
                utc_us(i64::from(year), month, day, clock, offset)
            }
            Stamp::YearLess { month, day, clock } => {
                let offset = ctx.local_offset_secs;
                let local_now = ctx.now_us.div_euclid(MICROS).saturating_add(i64::from(offset));
                let year = year_of_day(local_now.div_euclid(86_400));
                if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
                    return None;
                }
                let latest = ctx.now_us.saturating_add(DAY_US);
                match utc_us(year, month, day, clock, offset) {
                    Some(t) if t <= latest => Some(t),
                    _ => utc_us(year - 1, month, day, clock, offset),
                }
            }
        }
    }
}

/// Microseconds since the epoch of a local time `offset_secs` east of UTC; `None` when
/// the date or the time of day does not exist.
fn utc_us(year: i64, month: u32, day: u32, clock: Clock, offset_secs: i32) -> Option<i64> {
    let valid_date = (MIN_YEAR..=MAX_YEAR).contains(&year)
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day);
    let valid_time = clock.hour < 24 && clock.min < 60 && clock.sec < 60 && clock.micros < 1_000_000;
    if !(valid_date && valid_time) {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + i64::from(clock.hour * 3600 + clock.min * 60 + clock.sec);
    let local = secs * MICROS + i64::from(clock.micros);
    local.checked_sub(i64::from(offset_secs).checked_mul(MICROS)?)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a (proleptic Gregorian) date, by Howard Hinnant's
/// `days_from_civil`: plain integer arithmetic, no calendar library in the hot path.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400; // 0..=399
    let month_from_march = i64::from((month + 9) % 12); // March = 0
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1; // 0..=365
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The year of the day `days` after 1970-01-01 (Hinnant's `civil_from_days`).
fn year_of_day(days: i64) -> i64 {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097; // 0..=146096
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153; // March = 0
    let year = era * 400 + year_of_era;
    // January and February belong to the next civil year.
    if month_from_march >= 10 {
        year + 1
    } else {
        year
    }
}

/// `<30>`: the priority of a raw syslog datagram.
#[inline]
fn priority(i: &str) -> Res<'_, &str> {
    delimited(byte(b'<'), take_while_m_n(1, 3, |b| b.is_ascii_digit()), byte(b'>')).parse_complete(i)
}

/// The leaf parsers below read bytes at fixed places (they were nom compositions, the
/// most of a prefix's time); [`tests::reference`] keeps those, and a test holds the two
/// to the same answers.
/// A place in a line, moved on as its bytes are read.
#[derive(Debug, Clone, Copy)]
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn new(i: &'a str) -> Self {
        Cursor { bytes: i.as_bytes(), at: 0 }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// `want` next: taken, and `Some`.
    #[inline]
    fn byte(&mut self, want: u8) -> Option<()> {
        self.eat(want).then_some(())
    }

    /// Takes `want` if it is next; whether it was.
    #[inline]
    fn eat(&mut self, want: u8) -> bool {
        let next = self.peek() == Some(want);
        self.at += usize::from(next);
        next
    }

    /// Up to `max` bytes that satisfy `cond`, at least `min` (as `take_while_m_n`).
    #[inline]
    fn span(&mut self, min: usize, max: usize, cond: impl Fn(u8) -> bool) -> Option<&'a [u8]> {
        let rest = &self.bytes[self.at..];
        let n = rest.iter().take(max).take_while(|&&b| cond(b)).count();
        (n >= min).then(|| {
            self.at += n;
            &rest[..n]
        })
    }

    /// `min..=max` (at most 9) ASCII digits, as a number (as [`number`]).
    #[inline]
    fn number(&mut self, min: usize, max: usize) -> Option<u32> {
        let digits = self.span(min, max, |b| b.is_ascii_digit())?;
        Some(digits.iter().fold(0, |acc, &d| acc * 10 + u32::from(d - b'0')))
    }

    /// The rest of `i` after what was read, and `out`.
    #[inline]
    fn done<O>(self, i: &'a str, out: Option<O>) -> Res<'a, O> {
        match (out, i.get(self.at..)) {
            (Some(out), Some(rest)) => Ok((rest, out)),
            _ => Err(nom::Err::Error(())),
        }
    }
}

/// `2026-11-22T01:36:05.080405+00:00 ` (also `+0000`, `Z`, no offset, or a space for `T`).
#[inline]
fn iso_stamp(i: &str) -> Res<'_, Stamp> {
    let mut c = Cursor::new(i);
    let stamp = (|| {
        let year = c.number(4, 4)?;
        c.byte(b'-')?;
        let month = c.number(2, 2)?;
        c.byte(b'-')?;
        let day = c.number(2, 2)?;
        if !(c.eat(b'T') || c.eat(b' ')) {
            return None;
        }
        let clock = clock(&mut c)?;
        let offset_secs = utc_offset(&mut c);
        c.byte(b' ')?;
        Some(Stamp::Full { year, month, day, clock, offset_secs })
    })();
    c.done(i, stamp)
}

/// `Nov 22 01:36:00 ` (syslog pads the day with a space: `Nov  2`).
#[inline]
fn bsd_stamp(i: &str) -> Res<'_, Stamp> {
    let mut c = Cursor::new(i);
    let stamp = (|| {
        let month = month(c.span(3, 3, |b| b.is_ascii_alphabetic())?)?;
        c.byte(b' ')?;
        c.eat(b' ');
        let day = c.number(1, 2)?;
        c.byte(b' ')?;
        let clock = clock(&mut c)?;
        c.byte(b' ')?;
        Some(Stamp::YearLess { month, day, clock })
    })();
    c.done(i, stamp)
}

/// `Jan` … `Dec`: 1 … 12.
#[inline]
fn month(name: &[u8]) -> Option<u32> {
    match name {
        b"Jan" => Some(1),
        b"Feb" => Some(2),
        b"Mar" => Some(3),
        b"Apr" => Some(4),
        b"May" => Some(5),
        b"Jun" => Some(6),
        b"Jul" => Some(7),
        b"Aug" => Some(8),
        b"Sep" => Some(9),
        b"Oct" => Some(10),
        b"Nov" => Some(11),
        b"Dec" => Some(12),
        _ => None,
    }
}

/// `01:36:05` or `01:36:05.080405`; the cursor is left where it was read to.
#[inline]
fn clock(c: &mut Cursor<'_>) -> Option<Clock> {
    let hour = c.number(2, 2)?;
    c.byte(b':')?;
    let min = c.number(2, 2)?;
    c.byte(b':')?;
    let sec = c.number(2, 2)?;
    // A fraction only if a digit follows the dot; otherwise the dot is left.
    let mut micros = 0;
    if c.peek() == Some(b'.') && c.bytes.get(c.at + 1).is_some_and(u8::is_ascii_digit) {
        c.at += 1;
        let digits = c.span(1, usize::MAX, |b| b.is_ascii_digit())?;
        micros = micros_of_fraction_bytes(digits);
    }
    Some(Clock { hour, min, sec, micros })
}

/// `Z`, `+00:00`, `-0500`: seconds east of UTC; `None`, and nothing read, when none is
/// there.
#[inline]
fn utc_offset(c: &mut Cursor<'_>) -> Option<i32> {
    if c.eat(b'Z') {
        return Some(0);
    }
    let mut ahead = *c;
    let sign = ahead.peek().filter(|&b| b == b'+' || b == b'-')?;
    ahead.at += 1;
    let hours = ahead.number(2, 2)?;
    ahead.eat(b':');
    let minutes = ahead.number(2, 2)?;
    *c = ahead;
    let secs = (hours * 3600 + minutes * 60) as i32;
    Some(if sign == b'-' { -secs } else { secs })
}

/// `pdns[123]: ` or `pdns_recursor: ` (or the tag ending the line).
#[inline]
fn program(i: &str) -> Res<'_, ()> {
    let mut c = Cursor::new(i);
    let ok = program_at(&mut c);
    c.done(i, ok)
}

#[inline]
fn program_at(c: &mut Cursor<'_>) -> Option<()> {
    c.span(1, 64, is_tag_char)?;
    // `[123]`, or nothing read.
    if c.peek() == Some(b'[') {
        let mut ahead = *c;
        ahead.at += 1;
        if ahead.span(1, usize::MAX, |b| b.is_ascii_digit()).is_some() && ahead.eat(b']') {
            *c = ahead;
        }
    }
    c.byte(b':')?;
    (c.at == c.bytes.len() || c.eat(b' ')).then_some(())
}

/// `vm pdns[123]: `.
#[inline]
fn host_and_program(i: &str) -> Res<'_, ()> {
    let mut c = Cursor::new(i);
    let ok = (|| {
        c.span(1, usize::MAX, is_host_char)?;
        c.byte(b' ')?;
        program_at(&mut c)
    })();
    c.done(i, ok)
}

/// `080405123` → 80405: the first six digits of a decimal fraction, as microseconds.
#[inline]
pub(super) fn micros_of_fraction(digits: &str) -> u32 {
    micros_of_fraction_bytes(digits.as_bytes())
}

#[inline]
fn micros_of_fraction_bytes(b: &[u8]) -> u32 {
    (0..6).fold(0, |acc, at| acc * 10 + b.get(at).map_or(0, |&c| u32::from(c.wrapping_sub(b'0') % 10)))
}

/// Host names, or addresses when the sender has no name.
#[inline]
fn is_host_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':')
}

#[inline]
fn is_tag_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/' | b'@')
}

#[cfg(test)]
pub(super) mod tests {
    use chrono::{DateTime, Datelike, NaiveDate};

    use super::*;

    /// The leaf parsers as nom compositions, as they were: the reference for the
    /// hand-written ones.
    pub(super) mod reference {
        use nom::branch::alt;
        use nom::bytes::tag;
        use nom::character::{digit1, one_of};
        use nom::combinator::{eof, opt, value};
        use nom::sequence::{delimited, preceded};
        use nom::Parser;

        use super::super::super::combinators::{byte, number, take_while_m_n, try_map, Res};
        use super::super::{is_host_char, is_tag_char, micros_of_fraction, Clock, Stamp};

        /// `2026-11-22T01:36:05.080405+00:00 ` (also `+0000`, `Z`, no offset, or a space for `T`).
        pub(in super::super) fn iso_stamp_nom(i: &str) -> Res<'_, Stamp> {
            let date = (number(4, 4), byte(b'-'), number(2, 2), byte(b'-'), number(2, 2));
            (date, one_of("T "), clock_nom, opt(utc_offset_nom), byte(b' '))
                .map(|((year, _, month, _, day), _, clock, offset_secs, _)| Stamp::Full {
                    year,
                    month,
                    day,
                    clock,
                    offset_secs,
                })
                .parse_complete(i)
        }

        /// `Nov 22 01:36:00 ` (syslog pads the day with a space: `Nov  2`).
        pub(in super::super) fn bsd_stamp_nom(i: &str) -> Res<'_, Stamp> {
            (month_nom, byte(b' '), opt(byte(b' ')), number(1, 2), byte(b' '), clock_nom, byte(b' '))
                .map(|(month, _, _, day, _, clock, _)| Stamp::YearLess { month, day, clock })
                .parse_complete(i)
        }

        /// `Jan` … `Dec`: 1 … 12.
        fn month_nom(i: &str) -> Res<'_, u32> {
            let number = |name: &str| match name {
                "Jan" => Some(1),
                "Feb" => Some(2),
                "Mar" => Some(3),
                "Apr" => Some(4),
                "May" => Some(5),
                "Jun" => Some(6),
                "Jul" => Some(7),
                "Aug" => Some(8),
                "Sep" => Some(9),
                "Oct" => Some(10),
                "Nov" => Some(11),
                "Dec" => Some(12),
                _ => None,
            };
            try_map(take_while_m_n(3, 3, |b| b.is_ascii_alphabetic()), number).parse_complete(i)
        }

        /// `01:36:05` or `01:36:05.080405`.
        fn clock_nom(i: &str) -> Res<'_, Clock> {
            let fraction = opt(preceded(byte(b'.'), digit1()));
            (number(2, 2), byte(b':'), number(2, 2), byte(b':'), number(2, 2), fraction)
                .map(|(hour, _, min, _, sec, fraction)| Clock {
                    hour,
                    min,
                    sec,
                    micros: fraction.map_or(0, micros_of_fraction),
                })
                .parse_complete(i)
        }

        /// `Z`, `+00:00`, `-0500`: seconds east of UTC.
        fn utc_offset_nom(i: &str) -> Res<'_, i32> {
            let signed =
                (one_of("+-"), number(2, 2), opt(byte(b':')), number(2, 2)).map(|(sign, hours, _, minutes)| {
                    let secs = (hours * 3600 + minutes * 60) as i32;
                    if sign == '-' {
                        -secs
                    } else {
                        secs
                    }
                });
            alt((value(0, byte(b'Z')), signed)).parse_complete(i)
        }

        /// `pdns[123]: ` or `pdns_recursor: ` (or the tag ending the line).
        pub(in super::super) fn program_nom(i: &str) -> Res<'_, ()> {
            let pid = delimited(byte(b'['), digit1(), byte(b']'));
            let end = alt((tag(" "), eof));
            value((), (take_while_m_n(1, 64, is_tag_char), opt(pid), byte(b':'), end)).parse_complete(i)
        }

        /// `vm pdns[123]: `.
        pub(in super::super) fn host_and_program_nom(i: &str) -> Res<'_, ()> {
            preceded((take_while_m_n(1, usize::MAX, is_host_char), byte(b' ')), program_nom).parse_complete(i)
        }
    }

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
            let got = split(line);
            assert_eq!((got.message, got.time_us(&ctx())), (*message, *time_us), "{line:?}");
        }
    }

    /// Every leaf parser against its nom reference, on every suffix of every fixture
    /// line (each place a prefix could start) and on those suffixes with bytes changed.
    #[test]
    fn the_leaf_parsers_answer_as_their_nom_references() {
        let fixtures = [
            include_str!("../../../tests/data/pdns-formats/auth-4.7.3-formats.log"),
            include_str!("../../../tests/data/pdns-formats/recursor-4.8.8-formats.log"),
            include_str!("../../../../examples/sample-fleet/pdns-auth-syslog.log"),
            include_str!("../../../../examples/sample-fleet/pdns-rec-old.log"),
        ];
        let handmade = [
            "2026-11-22T01:36:05.080405+00:00 vm pdns[11882]: x",
            "2026-11-22 01:31:52.+0500 x",
            "2026-11-22T01:31:52.9-05:3 x",
            "2026-11-22T01:31:52+05:30 x",
            "2026-11-22T01:31:52Z x",
            "2026-11-22T01:31:52+0 x",
            "Nov  2 01:28:50 vm pdns[8023]: x",
            "Nov 2 01:28:50. x",
            "Nov 123 01:28:50 x",
            "nov 22 01:28:50 x",
            "Nov 22 1:28:50 x",
            "pdns[]: x",
            "pdns[12: x",
            "pdns[12]:x",
            "pdns:",
            "a b: c",
            "vm  pdns: x",
        ];
        let mut inputs: Vec<String> = handmade.iter().map(|s| (*s).to_owned()).collect();
        for line in fixtures.iter().flat_map(|text| text.lines()) {
            for (at, _) in line.char_indices() {
                inputs.push(line[at..].to_owned());
            }
        }
        let mut x: u64 = 0x0123_4567_89AB_CDEF;
        let interesting = b"0123456789 :.-+TZ[]<>Nov\tpdns_@/";
        let seeds = inputs.len();
        for n in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut bytes = inputs[(x as usize) % seeds].clone().into_bytes();
            if bytes.is_empty() {
                continue;
            }
            let at = ((x >> 20) as usize) % bytes.len().min(48);
            bytes[at] = interesting[((x >> 40) as usize) % interesting.len()];
            if n % 3 == 0 {
                bytes.truncate(((x >> 50) as usize) % (bytes.len() + 1));
            }
            if let Ok(s) = String::from_utf8(bytes) {
                inputs.push(s);
            }
        }
        for i in &inputs {
            let i = i.as_str();
            assert_eq!(iso_stamp(i), reference::iso_stamp_nom(i), "{i:?}");
            assert_eq!(bsd_stamp(i), reference::bsd_stamp_nom(i), "{i:?}");
            assert_eq!(program(i), reference::program_nom(i), "{i:?}");
            assert_eq!(host_and_program(i), reference::host_and_program_nom(i), "{i:?}");
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
            assert_eq!(split(line).time_us(ctx), Some(*want), "{line:?}");
        }
    }

    #[test]
    fn fractions() {
        let cases = [("0", 0), ("5", 500_000), ("080405", 80_405), ("080405999", 80_405), ("334", 334_000)];
        for (digits, want) in cases {
            assert_eq!(micros_of_fraction(digits), want, "{digits:?}");
        }
    }

    /// The calendar arithmetic as it was, with chrono: the reference for the tests below.
    fn chrono_utc_us(year: i64, month: u32, day: u32, clock: Clock, offset_secs: i32) -> Option<i64> {
        let local = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?
            .and_hms_micro_opt(clock.hour, clock.min, clock.sec, clock.micros)?
            .and_utc()
            .timestamp_micros();
        local.checked_sub(i64::from(offset_secs).checked_mul(MICROS)?)
    }

    #[test]
    fn year_range_is_chronos() {
        assert_eq!((MIN_YEAR, MAX_YEAR), (i64::from(NaiveDate::MIN.year()), i64::from(NaiveDate::MAX.year())));
    }

    #[test]
    fn calendar_arithmetic_agrees_with_chrono() {
        let clock = Clock { hour: 23, min: 59, sec: 58, micros: 999_999 };
        let years = (1500..=2600).chain([-262_144, -262_143, -262_142, -1, 0, 1, 9999, 262_141, 262_142, 262_143]);
        for year in years {
            for month in 0..=13 {
                for day in 0..=32 {
                    for offset in [0, -18_000, 3600] {
                        let got = utc_us(year, month, day, clock, offset);
                        assert_eq!(
                            got,
                            chrono_utc_us(year, month, day, clock, offset),
                            "{year}-{month}-{day} {offset}"
                        );
                    }
                }
            }
        }
        let times = [(0, 0, 0, 0), (24, 0, 0, 0), (0, 60, 0, 0), (0, 0, 60, 0), (12, 34, 56, 789_012), (23, 59, 59, 0)];
        for (hour, min, sec, micros) in times {
            let clock = Clock { hour, min, sec, micros };
            assert_eq!(utc_us(2026, 11, 22, clock, 0), chrono_utc_us(2026, 11, 22, clock, 0), "{clock:?}");
        }
    }

    #[test]
    fn year_of_a_day_agrees_with_chrono() {
        let chrono_year = |secs: i64| DateTime::from_timestamp(secs, 0).map(|t| i64::from(t.year()));
        let ours = |secs: i64| Some(year_of_day(secs.div_euclid(86_400))).filter(|y| (MIN_YEAR..=MAX_YEAR).contains(y));
        let mut days: Vec<i64> = (-800_000..800_000).step_by(7).collect();
        days.extend([-100_000_000, -95_000_000, 95_000_000, 100_000_000]);
        for edge in [NaiveDate::MIN, NaiveDate::MAX] {
            let day = edge.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp().div_euclid(86_400);
            days.extend(day - 2..=day + 2);
        }
        for day in days {
            for secs in [day * 86_400, day * 86_400 + 86_399] {
                assert_eq!(ours(secs), chrono_year(secs), "{secs}");
            }
        }
        for now_us in [i64::MIN, i64::MIN / 2, -1, 0, i64::MAX / 2, i64::MAX] {
            let ctx = ParseContext { now_us, local_offset_secs: 3600 };
            // Whatever the clock says, no panic; out of chrono's range, no time.
            let t = split("Dec 31 23:59:59 x").time_us(&ctx);
            assert_eq!(t.is_some(), chrono_year(now_us.div_euclid(MICROS) + 3600).is_some(), "{now_us}");
        }
    }
}
