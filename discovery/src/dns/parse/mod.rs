//! PowerDNS query-log lines in, [`Parsed`] out: pure functions, no I/O.
//!
//! The flavour is recognised per line, so mixed files work:
//! - [`auth`]: the Authoritative server's `log-dns-queries` lines (`Remote … wants '…'`);
//! - [`recursor_old`]: the Recursor's old-style `question for '…' from …` lines;
//! - [`recursor_structured`]: the Recursor's `msg="Question" … qname="…"` lines;
//! - [`pipe`]: the pipe backend's `Q` lines (ABI 1–3);
//! - [`journald_json`]: `journalctl -o json` entries, fields or a message of the above;
//!
//! each bare or behind one of the [`prefix`]es (PowerDNS' own time, syslog, journalctl).
//! On the common paths nothing is allocated: records borrow from the line.
//!
//! Each grammar is a nom parser over the line's text, with `()` errors (a branch that
//! does not match costs nothing), run in complete mode (`parse_complete`). Speed
//! matters (`bench/run.sh` checks the rate per flavour on one core), so: the flavour
//! is picked by the message's first byte; where nom's own primitives are slow the
//! [`combinators`] stand in for them (substring searches with `memchr` and searchers
//! built once, byte loops, inlined versions of `map_opt` and `map_parser`), composed
//! with nom's own combinators; dates are plain integer arithmetic; and IPv4 clients
//! have a fast path. A flavour parser's nom error means "not this flavour", a failure
//! after a `cut` "this flavour, but malformed".
//!
//! Issue 18 asks ≥ 3 M lines/s and ≥ 10× the Python `re` baseline per flavour, so a few
//! paths skip nom where it costs most, each held by a test to the answers of the parser
//! it stands in for: the UTF-8 check is simdutf8's; the prefix's time stamps and program
//! tag are read at fixed byte places; and journald entries and structured recursor lines
//! without a backslash are read by pairing their quotes (found eight bytes at a time,
//! `combinators::ByteOffsets`), the member-by-member parsers reading everything else.

mod addr;
mod auth;
mod combinators;
mod journald_json;
mod pipe;
mod prefix;
mod recursor_old;
mod recursor_structured;

use std::borrow::Cow;
use std::net::IpAddr;

use nom::combinator::{eof, opt};
use nom::sequence::{preceded, terminated};
use nom::Parser;

use self::combinators::{byte, take_until_last_byte, take_while_m_n, try_map, Res};
use crate::dns::record::{ParseContext, Parsed, QueryRecord, SkipReason, MAX_LINE};

/// Parses one line (without its newline; a trailing '\r' may be present). Never panics,
/// whatever the bytes.
///
/// NUL bytes at the start (left by copytruncate) are dropped first; then a line over
/// [`MAX_LINE`] bytes is [`SkipReason::TooLong`] and one that is not UTF-8
/// [`SkipReason::InvalidUtf8`]. The record's time is the line's own (`ts=`), else its
/// prefix's, else `None` (the caller uses the time it read the line).
pub fn parse_line<'a>(line: &'a [u8], ctx: &ParseContext) -> Parsed<'a> {
    let start = line.iter().position(|&b| b != 0).unwrap_or(line.len());
    let line = &line[start..];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > MAX_LINE {
        return Parsed::Skipped(SkipReason::TooLong);
    }
    // simdutf8's check: the same answer as `std::str::from_utf8`, checked many bytes at a
    // time (the check was a tenth of the time of a whole parse).
    let Ok(text) = simdutf8::basic::from_utf8(line) else {
        return Parsed::Skipped(SkipReason::InvalidUtf8);
    };
    if text.starts_with('{') {
        journald_json::parse(text, ctx)
    } else {
        parse_message(text, ctx)
    }
}

/// A line of any flavour but JSON: the prefix, then the message.
fn parse_message<'a>(text: &'a str, ctx: &ParseContext) -> Parsed<'a> {
    let prefixed = prefix::split(text);
    let message = prefixed.message;
    let parsed =
        by_first_byte(message).or_else(|| auth::find(message)).unwrap_or(Parsed::Skipped(SkipReason::NotAQuery));
    match parsed {
        Parsed::Query(mut query) => {
            query.time_us = query.time_us.or_else(|| prefixed.time_us(ctx));
            Parsed::Query(query)
        }
        skipped => skipped,
    }
}

/// The flavour parser for a message, chosen by its first byte: each recognises only
/// messages that start in its own way, so at most one can answer and none need be tried
/// in vain.
/// - `Remote …`, `TCP Remote …`: [`auth`];
/// - `3 [1/1] question for …`, `[7] …`, `question for …`, `TCP question for …` (the
///   thread and counters are optional): [`recursor_old`];
/// - `msg=…`: [`recursor_structured`];
/// - `Q<TAB>…`: [`pipe`].
fn by_first_byte(message: &str) -> Option<Parsed<'_>> {
    match message.as_bytes().first()? {
        b'R' => auth::parse(message),
        b'T' => auth::parse(message).or_else(|| recursor_old::parse(message)),
        b'0'..=b'9' | b'[' | b'q' => recursor_old::parse(message),
        b'm' => recursor_structured::parse(message),
        b'Q' => pipe::parse(message),
        _ => None,
    }
}

/// `name|type`, all of the input, as the auth and the old-style recursor quote a
/// question: split at the last `|` (a type never has one), both parts non-empty.
#[inline]
fn question(i: &str) -> Res<'_, (&str, &str)> {
    let qname = try_map(take_until_last_byte(b'|'), |qname: &str| (!qname.is_empty()).then_some(qname));
    terminated((qname, preceded(byte(b'|'), qtype)), eof).parse_complete(i)
}

/// `A`, `AAAA`, `ANY`, `TYPE65534`: letters and digits.
#[inline]
fn qtype(i: &str) -> Res<'_, &str> {
    take_while_m_n(1, 16, |b| b.is_ascii_alphanumeric()).parse_complete(i)
}

#[inline]
fn is_qtype(s: &str) -> bool {
    terminated(qtype, eof).parse_complete(s).is_ok()
}

/// `1795311372.334` (epoch seconds with a fraction) in microseconds.
fn epoch_seconds_us(s: &str) -> Option<i64> {
    epoch_seconds(s).ok().map(|(_, us)| us)
}

/// `1795311372.334`, all of the input: epoch seconds with a fraction, in microseconds.
#[inline]
fn epoch_seconds(i: &str) -> Res<'_, i64> {
    let secs = take_while_m_n(1, 12, |b| b.is_ascii_digit())
        .map(|digits: &str| digits.bytes().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')));
    let fraction = take_while_m_n(0, usize::MAX, |b| b.is_ascii_digit());
    terminated((secs, opt(preceded(byte(b'.'), fraction))), eof)
        .map(|(secs, fraction)| secs * 1_000_000 + i64::from(prefix::micros_of_fraction(fraction.unwrap_or_default())))
        .parse_complete(i)
}

/// A query record that borrows its name and type from the line.
#[inline]
fn borrowed<'a>(client: IpAddr, (qname, qtype): (&'a str, &'a str)) -> Parsed<'a> {
    Parsed::Query(QueryRecord { client, qname: Cow::Borrowed(qname), qtype, time_us: None })
}

/// Compact expectations for the table-driven tests of every flavour.
#[cfg(test)]
mod testing {
    use std::net::IpAddr;

    use crate::dns::record::{Parsed, SkipReason};

    /// `(client, qname, qtype, time_us)` or why the line is skipped.
    pub(super) type Want = Result<(&'static str, &'static str, &'static str, Option<i64>), SkipReason>;
    pub(super) type Got = Result<(IpAddr, String, String, Option<i64>), SkipReason>;

    pub(super) fn summary(parsed: &Parsed<'_>) -> Got {
        match parsed {
            Parsed::Query(q) => Ok((q.client, q.qname.to_string(), q.qtype.to_owned(), q.time_us)),
            Parsed::Skipped(reason) => Err(*reason),
        }
    }

    pub(super) fn want(w: Want) -> Got {
        w.map(|(client, qname, qtype, time_us)| {
            let client = client.parse().expect("a client address in the test table");
            (client, qname.to_owned(), qtype.to_owned(), time_us)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::IpAddr;

    use super::prefix::tests::{ctx, utc};
    use super::testing::{summary, want, Want};
    use super::*;

    const AUTH_FORMATS: &str = include_str!("../../../tests/data/pdns-formats/auth-4.7.3-formats.log");
    const RECURSOR_FORMATS: &str = include_str!("../../../tests/data/pdns-formats/recursor-4.8.8-formats.log");

    const FLEET_AUTH_CONSOLE: &str = include_str!("../../../../examples/sample-fleet/pdns-auth-console.log");
    const FLEET_AUTH_PLAIN: &str = include_str!("../../../../examples/sample-fleet/pdns-auth-plain.log");
    const FLEET_AUTH_SYSLOG: &str = include_str!("../../../../examples/sample-fleet/pdns-auth-syslog.log");
    const FLEET_REC_OLD: &str = include_str!("../../../../examples/sample-fleet/pdns-rec-old.log");
    const FLEET_REC_STRUCTURED: &str = include_str!("../../../../examples/sample-fleet/pdns-rec-structured.log");
    const FLEET_QUERIES: &str = include_str!("../../../../examples/sample-fleet/queries.txt");

    const FIXTURES: [(&str, &str); 7] = [
        ("auth-4.7.3-formats.log", AUTH_FORMATS),
        ("recursor-4.8.8-formats.log", RECURSOR_FORMATS),
        ("pdns-auth-console.log", FLEET_AUTH_CONSOLE),
        ("pdns-auth-plain.log", FLEET_AUTH_PLAIN),
        ("pdns-auth-syslog.log", FLEET_AUTH_SYSLOG),
        ("pdns-rec-old.log", FLEET_REC_OLD),
        ("pdns-rec-structured.log", FLEET_REC_STRUCTURED),
    ];

    type Triple = (IpAddr, String, String);

    fn parse(line: &str) -> Parsed<'_> {
        parse_line(line.as_bytes(), &ctx())
    }

    fn triple(parsed: &Parsed<'_>) -> Option<Triple> {
        match parsed {
            Parsed::Query(q) => Some((q.client, q.qname.to_lowercase(), q.qtype.to_owned())),
            Parsed::Skipped(_) => None,
        }
    }

    /// The question on a line, found the naive way (string splitting, no parser), to
    /// check the parsers against.
    fn naive(line: &str) -> Option<Triple> {
        fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
            s.split_once(start)?.1.split(end).next()
        }
        let strip_port = |remote: &str| -> String {
            match remote.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap().to_owned(),
                None if remote.matches(':').count() == 1 => remote.split(':').next().unwrap().to_owned(),
                None => remote.to_owned(),
            }
        };
        let (client, question) = if line.contains(" wants '") {
            let client = between(line, "Remote ", " wants")?.split("<-").next()?.to_owned();
            (client, between(line, "wants '", "', do")?)
        } else if line.contains("question for '") {
            let remote = between(line, "' from ", " ")?;
            (strip_port(remote), between(line, "question for '", "' from")?)
        } else if line.contains("msg=\"Question") {
            let question = between(line, "qname=\"", "\"")?;
            let qtype = between(line, "qtype=\"", "\"")?;
            let client = strip_port(between(line, "remote=\"", "\"")?);
            return Some((client.parse().ok()?, question.to_lowercase(), qtype.to_owned()));
        } else if line.contains("\"MESSAGE\": \"Question") {
            let question = between(line, "\"QNAME\": \"", "\"")?;
            let qtype = between(line, "\"QTYPE\": \"", "\"")?;
            let client = strip_port(between(line, "\"REMOTE\": \"", "\"")?);
            return Some((client.parse().ok()?, question.to_lowercase(), qtype.to_owned()));
        } else {
            return None;
        };
        let (qname, qtype) = question.rsplit_once('|')?;
        Some((client.parse().ok()?, qname.to_lowercase(), qtype.to_owned()))
    }

    /// The pipe-backend lines of the fixture are Python reprs; these are the real lines.
    fn pipe_lines(text: &str) -> Vec<String> {
        text.lines().filter_map(|l| l.strip_prefix('\'')?.strip_suffix('\'')).map(|l| l.replace("\\t", "\t")).collect()
    }

    fn count(text: &str, reason: SkipReason) -> usize {
        text.lines().filter(|l| parse(l) == Parsed::Skipped(reason)).count()
    }

    #[test]
    fn every_fixture_line_gives_what_the_naive_reading_gives() {
        for (name, text) in FIXTURES {
            for (n, line) in text.lines().enumerate() {
                let parsed = parse(line);
                assert_eq!(triple(&parsed), naive(line), "{name} line {}: {line}", n + 1);
                if let Parsed::Skipped(reason) = parsed {
                    assert!(
                        matches!(reason, SkipReason::NotAQuery | SkipReason::CacheHitWithoutName),
                        "{name} line {}: {reason:?}: {line}",
                        n + 1
                    );
                }
            }
        }
    }

    #[test]
    fn auth_formats_fixture() {
        let queries = AUTH_FORMATS.lines().filter(|l| matches!(parse(l), Parsed::Query(_))).count();
        let wants = AUTH_FORMATS.lines().filter(|l| l.contains(" wants '")).count();
        assert_eq!((queries, wants), (110, 110));
        assert_eq!(count(AUTH_FORMATS, SkipReason::NotAQuery), AUTH_FORMATS.lines().count() - 110);

        let pipe = pipe_lines(AUTH_FORMATS);
        let outcome = |reason| pipe.iter().filter(|l| parse(l) == Parsed::Skipped(reason)).count();
        assert_eq!(pipe.len(), 84);
        assert_eq!(outcome(SkipReason::NotAQuery), 9, "HELO");
        assert_eq!(outcome(SkipReason::PipeSoaLookup), 39);
        let mut asked: HashMap<Triple, usize> = HashMap::new();
        for line in &pipe {
            if let Some(t) = triple(&parse(line)) {
                *asked.entry(t).or_default() += 1;
            }
        }
        assert_eq!(asked.values().sum::<usize>(), 36);
        let any = |client: &str, qname: &str| (client.parse().unwrap(), qname.to_owned(), "ANY".to_owned());
        assert_eq!(asked.get(&any("127.0.0.2", "db1.be5.host58.example.com")), Some(&6));
        assert_eq!(asked.get(&any("127.0.0.3", "api.be5.host12.example.com")), Some(&6));
        assert_eq!(asked.get(&any("127.0.0.4", "host58.example.com")), Some(&3));
    }

    #[test]
    fn auth_formats_lines_field_by_field() {
        let t = |h, mi, s, us| Some(utc(2026, 11, 22, h, mi, s) + us);
        let db1 = "db1.be5.host58.example.com";
        let cases: &[(&str, Want)] = &[
            (
                "Nov 22 01:28:19 Remote 127.0.0.2 wants 'db1.be5.host58.example.com|A', do = 0, bufsize = 1232: packetcache HIT",
                Ok(("127.0.0.2", db1, "A", t(1, 28, 19, 0))),
            ),
            (
                "Nov 22 01:28:20 TCP Remote 127.0.0.4 wants 'cache.be7.host3.example.com|A', do = 0, bufsize = 1232: packetcache MISS",
                Ok(("127.0.0.4", "cache.be7.host3.example.com", "A", t(1, 28, 20, 0))),
            ),
            (
                "Remote 127.0.0.5<-10.9.8.0/24 wants 'db1.be5.host58.example.com|A', do = 0, bufsize = 1232: packetcache MISS",
                Ok(("127.0.0.5", db1, "A", None)),
            ),
            (
                "Remote 127.0.0.6 wants 'db1.be5.host58.example.com|A', do = 0, bufsize = 1232 (4096): packetcache MISS",
                Ok(("127.0.0.6", db1, "A", None)),
            ),
            (
                "Nov 22 01:28:35 Remote 127.0.0.3 wants 'db1.be5.host58.example.com|AAAA', do = 1, bufsize = 1232",
                Ok(("127.0.0.3", db1, "AAAA", t(1, 28, 35, 0))),
            ),
            (
                "Nov 22 01:28:34 Returning: 'A' of 'db1.be5.host58.example.com', content: '10.0.5.58'",
                Err(SkipReason::NotAQuery),
            ),
            (
                "<29>Nov 22 01:28:52 pdns[8023]: TCP Remote 127.0.0.4 wants 'cache.be7.host3.example.com|A', do = 0, bufsize = 1232: packetcache MISS",
                Ok(("127.0.0.4", "cache.be7.host3.example.com", "A", t(1, 28, 52, 0))),
            ),
            (
                "<27>Nov 22 01:28:50 pdns[8023]: UDP server bound to 127.0.0.1:5300",
                Err(SkipReason::NotAQuery),
            ),
            (
                "2026-11-22T01:28:53.631489+00:00 vm pdns[8023]: Remote 127.0.0.6 wants 'notmyzone.org|A', do = 0, bufsize = 1232: packetcache MISS",
                Ok(("127.0.0.6", "notmyzone.org", "A", t(1, 28, 53, 631_489))),
            ),
            (
                "Nov 22 01:28:53 vm pdns[8023]: Remote 127.0.0.6 wants 'db1.be5.host58.example.com|A', do = 0, bufsize = 1232 (4096): packetcache MISS",
                Ok(("127.0.0.6", db1, "A", t(1, 28, 53, 0))),
            ),
            (
                "fac=daemon sev=notice tag=pdns[8023]: programname=pdns procid=8023 msg= Remote 127.0.0.2 wants 'db1.be5.host58.example.com|A', do = 0, bufsize = 1232: packetcache HIT",
                Ok(("127.0.0.2", db1, "A", None)),
            ),
            (
                "Nov 22 01:31:53 vm pdns_server[10409]: Remote 127.0.0.1 wants '.|NS', do = 0, bufsize = 1232: packetcache MISS",
                Ok(("127.0.0.1", ".", "NS", t(1, 31, 53, 0))),
            ),
            (
                "2026-11-22T01:31:54.004383+0000 vm pdns_server[10409]: Remote 127.0.0.1 wants 'api.be5.host12.example.com|A', do = 0, bufsize = 1232: packetcache MISS",
                Ok(("127.0.0.1", "api.be5.host12.example.com", "A", t(1, 31, 54, 4_383))),
            ),
            (
                "Nov 22 01:31:09 Remote 127.0.0.3<-10.9.8.0/24 wants 'api.be5.host12.example.com|A', do = 0, bufsize = 1232",
                Ok(("127.0.0.3", "api.be5.host12.example.com", "A", t(1, 31, 9, 0))),
            ),
            (
                "Nov 22 01:32:52 Remote fd00:99::2 wants 'db1.be5.host58.example.com|AAAA', do = 0, bufsize = 1232: packetcache MISS",
                Ok(("fd00:99::2", db1, "AAAA", t(1, 32, 52, 0))),
            ),
            (
                "Nov 22 01:32:51 Remote ::1 wants 'example.com|SOA', do = 0, bufsize = 1232: packetcache MISS",
                Ok(("::1", "example.com", "SOA", t(1, 32, 51, 0))),
            ),
            ("'Q\\tdb1.be5.host58.example.com\\tIN\\tANY\\t-1\\t127.0.0.2'", Err(SkipReason::NotAQuery)),
        ];
        for (line, expected) in cases {
            assert!(AUTH_FORMATS.lines().any(|l| l == *line), "not in the fixture: {line}");
            assert_eq!(summary(&parse(line)), want(*expected), "{line}");
        }
    }

    #[test]
    fn recursor_formats_fixture() {
        let lines = RECURSOR_FORMATS.lines();
        let queries = lines.clone().filter(|l| matches!(parse(l), Parsed::Query(_))).count();
        let questions = lines
            .clone()
            .filter(|l| {
                l.contains("question for '") || l.contains("msg=\"Question") || l.contains("\"MESSAGE\": \"Question")
            })
            .count();
        assert_eq!((queries, questions), (32, 32));
        let hits = lines.clone().filter(|l| l.contains("question answered from packet cache tag=")).count();
        assert_eq!((count(RECURSOR_FORMATS, SkipReason::CacheHitWithoutName), hits), (6, 6));
        assert_eq!(count(RECURSOR_FORMATS, SkipReason::NotAQuery), lines.count() - 32 - 6);
    }

    #[test]
    fn recursor_formats_lines_field_by_field() {
        let t = |h, mi, s, us| Some(utc(2026, 11, 22, h, mi, s) + us);
        let ts = |us: i64| Some(us * 1000);
        let db1 = "db1.be5.host58.example.com";
        let api = "api.be5.host12.example.com";
        let cases: &[(&str, Want)] = &[
            (
                "Nov 22 01:29:50 3 [1/1] question for 'db1.be5.host58.example.com|A' from 127.0.0.2:56889",
                Ok(("127.0.0.2", db1, "A", t(1, 29, 50, 0))),
            ),
            (
                "Nov 22 01:29:51 3 question answered from packet cache tag=0 from 127.0.0.2:35066",
                Err(SkipReason::CacheHitWithoutName),
            ),
            (
                "Nov 22 01:29:52 1 [1/1] TCP question for 'cache.be7.host3.example.com|A' from 127.0.0.4:34395",
                Ok(("127.0.0.4", "cache.be7.host3.example.com", "A", t(1, 29, 52, 0))),
            ),
            (
                "Nov 22 01:29:53 3 [5/1] question for 'db1.be5.host58.example.com|A' from 127.0.0.6:52831 (ecs 10.9.8.0/24)",
                Ok(("127.0.0.6", db1, "A", t(1, 29, 53, 0))),
            ),
            (
                "Nov 22 01:29:53 3 [6/1] answer to non-rd question 'db1.be5.host58.example.com|A': 1 answers, 1 additional, took 0 packets, 0 netw ms, 0 tot ms, 0 throttled, 0 timeouts, 0/0 tcp/dot connections, rcode=0",
                Err(SkipReason::NotAQuery),
            ),
            (
                "Nov 22 01:29:55 msg=\"Question\" subsystem=\"syncres\" level=\"0\" prio=\"Info\" tid=\"2\" ts=\"1795310995.698\" ecs=\"\" mtid=\"1\" proto=\"udp\" qname=\"db1.be5.host58.example.com\" qtype=\"A\" remote=\"127.0.0.2:33949\"",
                Ok(("127.0.0.2", db1, "A", ts(1_795_310_995_698))),
            ),
            (
                "Nov 22 01:29:56 msg=\"Question answered from packet cache\" subsystem=\"in\" level=\"0\" prio=\"Notice\" tid=\"2\" ts=\"1795310996.345\" proto=\"udp\" qname=\"db1.be5.host58.example.com\" qtype=\"A\" remote=\"127.0.0.3:49713\" source=\"127.0.0.3:49713\" tag=\"0\"",
                Ok(("127.0.0.3", db1, "A", ts(1_795_310_996_345))),
            ),
            (
                "<30>Nov 22 01:30:07 pdns_recursor[9058]: msg=\"Question\" subsystem=\"syncres\" level=\"0\" prio=\"Info\" tid=\"3\" ts=\"1795311007.423\" ecs=\"\" mtid=\"1\" proto=\"udp\" qname=\"db1.be5.host58.example.com\" qtype=\"A\" remote=\"127.0.0.2:41850\"",
                Ok(("127.0.0.2", db1, "A", ts(1_795_311_007_423))),
            ),
            (
                "2026-11-22T01:30:08.079745+00:00 vm pdns_recursor[9058]: msg=\"Question answered from packet cache\" subsystem=\"in\" level=\"0\" prio=\"Notice\" tid=\"3\" ts=\"1795311008.079\" proto=\"udp\" qname=\"db1.be5.host58.example.com\" qtype=\"A\" remote=\"127.0.0.3:34241\" source=\"127.0.0.3:34241\" tag=\"0\"",
                Ok(("127.0.0.3", db1, "A", ts(1_795_311_008_079))),
            ),
            (
                "<28>Nov 22 01:30:12 pdns_recursor[9125]: 3 [1/1] question for 'db1.be5.host58.example.com|A' from 127.0.0.2:60827",
                Ok(("127.0.0.2", db1, "A", t(1, 30, 12, 0))),
            ),
            (
                "2026-11-22T01:30:13.074286+00:00 vm pdns_recursor[9125]: 3 question answered from packet cache tag=0 from 127.0.0.3:57559",
                Err(SkipReason::CacheHitWithoutName),
            ),
            (
                "Nov 22 01:31:54 vm pdns-recursor[10410]: msg=\"Question answered from packet cache\" subsystem=\"in\" level=\"0\" prio=\"Notice\" tid=\"2\" ts=\"1795311114.027\" proto=\"udp\" qname=\"api.be5.host12.example.com\" qtype=\"A\" remote=\"127.0.0.3:35840\" source=\"127.0.0.3:35840\" tag=\"0\"",
                Ok(("127.0.0.3", api, "A", ts(1_795_311_114_027))),
            ),
            ("Nov 22 01:32:00 vm pdns_recursor[10528]: Question", Err(SkipReason::NotAQuery)),
            (
                r#"{"_HOSTNAME": "vm", "_TRANSPORT": "journal", "SOURCE": "127.0.0.3:36805", "_PID": "10528", "SUBSYSTEM": "in", "MESSAGE": "Question answered from packet cache", "LEVEL": "0", "PRIORITY": "5", "QNAME": "api.be5.host12.example.com", "QTYPE": "A", "TID": "2", "__REALTIME_TIMESTAMP": "1795311120900459", "PROTO": "udp", "REMOTE": "127.0.0.3:36805", "TIMESTAMP": "1795311120.900", "SYSLOG_IDENTIFIER": "pdns_recursor"}"#,
                Ok(("127.0.0.3", api, "A", ts(1_795_311_120_900))),
            ),
            (
                "Nov 22 01:32:52 3 [1/1] question for 'api.be5.host12.example.com|A' from [fd00:99::2]:40402",
                Ok(("fd00:99::2", api, "A", t(1, 32, 52, 0))),
            ),
            (
                "Nov 22 01:32:54 msg=\"Question\" subsystem=\"syncres\" level=\"0\" prio=\"Info\" tid=\"2\" ts=\"1795311174.329\" ecs=\"\" mtid=\"1\" proto=\"udp\" qname=\"cache.be7.host3.example.com\" qtype=\"A\" remote=\"[fd00:99::2]:34418\"",
                Ok(("fd00:99::2", "cache.be7.host3.example.com", "A", ts(1_795_311_174_329))),
            ),
        ];
        for (line, expected) in cases {
            assert!(RECURSOR_FORMATS.lines().any(|l| l == *line), "not in the fixture: {line}");
            assert_eq!(summary(&parse(line)), want(*expected), "{line}");
        }
    }

    fn multiset(items: impl IntoIterator<Item = Triple>) -> HashMap<Triple, usize> {
        let mut counts = HashMap::new();
        for item in items {
            *counts.entry(item).or_default() += 1;
        }
        counts
    }

    /// `a - b`, as multisets: how many of each `a` has beyond `b`.
    fn minus(a: &HashMap<Triple, usize>, b: &HashMap<Triple, usize>) -> HashMap<Triple, usize> {
        a.iter()
            .filter_map(|(k, &n)| {
                let extra = n.saturating_sub(b.get(k).copied().unwrap_or(0));
                (extra > 0).then(|| (k.clone(), extra))
            })
            .collect()
    }

    #[test]
    fn sample_fleet_logs_give_the_queries_that_were_sent() {
        let sent = multiset(FLEET_QUERIES.lines().filter_map(|l| {
            let mut words = l.split_whitespace();
            let (client, qname, qtype) = (words.next()?, words.next()?, words.next()?);
            Some((client.parse().unwrap(), qname.to_lowercase(), qtype.to_owned()))
        }));
        assert_eq!(sent.values().sum::<usize>(), 150);
        let soa_probe = multiset([("127.0.0.1".parse().unwrap(), "example.com".to_owned(), "SOA".to_owned())]);
        let window = utc(2026, 11, 22, 1, 35, 0)..utc(2026, 11, 22, 1, 37, 0);

        for (name, text, timed) in [
            ("pdns-auth-console.log", FLEET_AUTH_CONSOLE, true),
            ("pdns-auth-plain.log", FLEET_AUTH_PLAIN, false),
            ("pdns-auth-syslog.log", FLEET_AUTH_SYSLOG, true),
            ("pdns-rec-old.log", FLEET_REC_OLD, true),
            ("pdns-rec-structured.log", FLEET_REC_STRUCTURED, true),
        ] {
            let parsed: Vec<Parsed<'_>> = text.lines().map(parse).collect();
            let got: Vec<Triple> = parsed.iter().filter_map(triple).collect();
            let naive: Vec<Triple> = text.lines().filter_map(naive).collect();
            assert_eq!(got, naive, "{name}");
            for p in &parsed {
                if let Parsed::Query(q) = p {
                    let in_window = q.time_us.is_some_and(|t| window.contains(&t));
                    assert_eq!(in_window, timed, "{name}: {q:?}");
                }
            }

            let got = multiset(got);
            let cache_hits = count(text, SkipReason::CacheHitWithoutName);
            match name {
                "pdns-rec-old.log" => {
                    assert!(minus(&got, &sent).is_empty(), "{name}: queries nobody sent");
                    let lost = minus(&sent, &got).values().sum::<usize>();
                    assert_eq!((lost, cache_hits), (87, 87), "{name}: only cache hits lose queries");
                }
                "pdns-rec-structured.log" => {
                    assert_eq!(got, sent, "{name}");
                    assert_eq!(cache_hits, 0);
                }
                _ => {
                    assert!(minus(&sent, &got).is_empty(), "{name}: queries missing");
                    assert_eq!(minus(&got, &sent), soa_probe, "{name}: only the start-up probe is extra");
                }
            }
        }
    }

    #[test]
    fn line_hygiene() {
        let query = "Remote 127.0.0.1 wants 'a.example.com|A', do = 0, bufsize = 1232: packetcache MISS";
        let ok = |line: &[u8]| triple(&parse_line(line, &ctx())).map(|t| t.1);
        assert_eq!(ok(query.as_bytes()), Some("a.example.com".to_owned()));
        assert_eq!(ok(format!("\0\0\0\0{query}").as_bytes()), Some("a.example.com".to_owned()));
        assert_eq!(ok(format!("{query}\r").as_bytes()), Some("a.example.com".to_owned()));
        assert_eq!(
            summary(&parse_line(b"Q\ta.example.com\tIN\tA\t-1\t127.0.0.1\r", &ctx())),
            want(Ok(("127.0.0.1", "a.example.com", "A", None)))
        );
        assert_eq!(parse_line(b"", &ctx()), Parsed::Skipped(SkipReason::NotAQuery));
        assert_eq!(parse_line(b"\0\0\0", &ctx()), Parsed::Skipped(SkipReason::NotAQuery));
        assert_eq!(
            parse_line(b"Remote 127.0.0.1 wants 'caf\xe9.example.com|A', do = 0", &ctx()),
            Parsed::Skipped(SkipReason::InvalidUtf8)
        );
        assert_eq!(parse_line(b"\xff\xfe{", &ctx()), Parsed::Skipped(SkipReason::InvalidUtf8));

        // Exactly the limit is fine; one byte more is not.
        let head = "Remote 127.0.0.1 wants '";
        let tail = ".example.com|A', do = 0";
        let at_limit = format!("{head}{}{tail}", "a".repeat(MAX_LINE - head.len() - tail.len()));
        assert_eq!(at_limit.len(), MAX_LINE);
        assert!(matches!(parse(&at_limit), Parsed::Query(_)));
        let over = format!("{head}{}{tail}", "a".repeat(MAX_LINE + 1 - head.len() - tail.len()));
        assert_eq!(parse(&over), Parsed::Skipped(SkipReason::TooLong));
        let huge = vec![b'x'; 200 * 1024];
        assert_eq!(parse_line(&huge, &ctx()), Parsed::Skipped(SkipReason::TooLong));
        let huge_invalid = vec![0xff; 200 * 1024];
        assert_eq!(parse_line(&huge_invalid, &ctx()), Parsed::Skipped(SkipReason::TooLong));
    }

    /// simdutf8 checks whole blocks at a time: a bad byte anywhere in a long line, and
    /// the sequences std refuses (overlong, surrogates, beyond U+10FFFF, cut short), must
    /// still make the line `InvalidUtf8`, and nothing else must.
    #[test]
    fn the_utf8_check_is_stds() {
        let base = "2026-11-22T01:36:05.080405+00:00 vm pdns[11882]: Remote 127.0.0.1 wants 'a.example.com|A', do = 0, bufsize = 1232: packetcache MISS";
        let bad: [&[u8]; 9] = [
            b"\xff",
            b"\xc0\xaf",
            b"\xe0\x80\xaf",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xf0\x9f\x98",
            b"\xc3",
            b"\x80",
            b"\xfe",
        ];
        let good: [&[u8]; 4] = [b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\xed\x9f\xbf"];
        for at in 0..=base.len() {
            for bytes in bad.iter().chain(&good) {
                let mut line = base.as_bytes()[..at].to_vec();
                line.extend_from_slice(bytes);
                line.extend_from_slice(&base.as_bytes()[at..]);
                let invalid = std::str::from_utf8(&line).is_err();
                assert_eq!(parse_line(&line, &ctx()) == Parsed::Skipped(SkipReason::InvalidUtf8), invalid, "{line:?}");
            }
        }
    }

    #[test]
    fn the_flavour_is_found_per_line() {
        let mixed = [
            "Remote 127.0.0.1 wants 'a.example.com|A', do = 0",
            "Nov 22 01:29:50 3 [1/1] question for 'b.example.com|A' from 127.0.0.2:1",
            "msg=\"Question\" qname=\"c.example.com\" qtype=\"A\" remote=\"127.0.0.3:1\"",
            "Q\td.example.com\tIN\tANY\t-1\t127.0.0.4",
            r#"{"MESSAGE":"Remote 127.0.0.5 wants 'e.example.com|A', do = 0"}"#,
        ];
        let names: Vec<String> = mixed.iter().filter_map(|l| triple(&parse(l))).map(|t| t.1).collect();
        assert_eq!(names, ["a", "b", "c", "d", "e"].map(|n| format!("{n}.example.com")));
    }

    /// How the flavour was found before [`by_first_byte`]: every parser in turn.
    fn every_parser_in_turn(message: &str) -> Option<Parsed<'_>> {
        auth::parse(message)
            .or_else(|| recursor_structured::parse(message))
            .or_else(|| recursor_old::parse(message))
            .or_else(|| pipe::parse(message))
    }

    #[test]
    fn the_first_byte_picks_the_parser_that_would_have_answered() {
        let pipe = pipe_lines(AUTH_FORMATS);
        let lines = FIXTURES.iter().flat_map(|(_, text)| text.lines()).chain(pipe.iter().map(String::as_str));
        let messages = lines.map(|line| prefix::split(line).message);
        let mut rng = XorShift(0x51_7C_C1_B7_27_22_0A_95);
        for message in messages {
            assert_eq!(by_first_byte(message), every_parser_in_turn(message), "{message:?}");
            for _ in 0..8 {
                let cut = &message.as_bytes()[rng.below(message.len() + 1)..];
                if let Ok(cut) = std::str::from_utf8(cut) {
                    assert_eq!(by_first_byte(cut), every_parser_in_turn(cut), "{cut:?}");
                }
            }
        }
        for first in 0..=127u8 {
            let message = format!("{}3 [1/1] question for 'a|A' from 10.0.0.1", char::from(first));
            assert_eq!(by_first_byte(&message), every_parser_in_turn(&message), "{message:?}");
        }
    }

    /// A small deterministic generator, so failures reproduce.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// What any record must satisfy, whatever the line.
    fn check_invariants(line: &[u8]) {
        if let Parsed::Query(q) = parse_line(line, &ctx()) {
            assert!(!q.qname.is_empty(), "{line:?}");
            assert!(is_qtype(q.qtype), "{line:?}");
        }
    }

    #[test]
    fn fixture_lines_cut_anywhere_do_not_panic() {
        for (_, text) in FIXTURES {
            for line in text.lines().map(str::as_bytes) {
                for at in 0..=line.len() {
                    check_invariants(&line[..at]);
                    check_invariants(&line[at..]);
                }
            }
        }
    }

    #[test]
    fn random_bytes_do_not_panic() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        // Bytes that matter to some parser, so the junk gets past the first checks.
        let interesting = b"\0\t\r \"'\\{}[]:<>-/.|=,0123456789aAQTZ\xc3\xa9\xff";
        let seeds: Vec<&[u8]> = FIXTURES.iter().flat_map(|(_, text)| text.lines().map(str::as_bytes)).collect();
        for round in 0..20_000 {
            let mut line: Vec<u8> = if round % 2 == 0 { seeds[rng.below(seeds.len())].to_vec() } else { Vec::new() };
            for _ in 0..rng.below(24) {
                let byte = if rng.below(2) == 0 { interesting[rng.below(interesting.len())] } else { rng.next() as u8 };
                match rng.below(3) {
                    0 if !line.is_empty() => {
                        let at = rng.below(line.len());
                        line[at] = byte;
                    }
                    1 => {
                        let at = rng.below(line.len() + 1);
                        line.insert(at, byte);
                    }
                    _ => line.push(byte),
                }
            }
            check_invariants(&line);
        }
    }

    #[test]
    fn epoch_seconds() {
        let cases = [
            ("1795311372.334", Some(1_795_311_372_334_000)),
            ("1795311372", Some(1_795_311_372_000_000)),
            ("1795311372.", Some(1_795_311_372_000_000)),
            ("1795311372.1234567", Some(1_795_311_372_123_456)),
            ("", None),
            (".5", None),
            ("-1.5", None),
            ("17953x.5", None),
            ("1.5e3", None),
            ("9999999999999.0", None),
        ];
        for (s, want) in cases {
            assert_eq!(epoch_seconds_us(s), want, "{s:?}");
        }
    }
}
