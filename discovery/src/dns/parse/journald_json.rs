//! journald's JSON export (`journalctl -o json`), one entry per line.
//!
//! The recursor's native journal backend puts the question in fields
//! (`"MESSAGE": "Question", "QNAME": …, "QTYPE": …, "REMOTE": …, "TIMESTAMP": …`); any
//! other program's entry carries its line in `MESSAGE`, which is parsed like a line of
//! the other flavours. `__REALTIME_TIMESTAMP` (µs) is the time when the entry gives none.
//!
//! A small nom scanner rather than a JSON library: journald writes flat objects of
//! strings (arrays of bytes for binary fields), and only a few fields matter. It borrows
//! from the line and allocates only to undo escapes in a name or a message.

use std::borrow::Cow;

use nom::branch::alt;
use nom::bytes::take_till1;
use nom::character::one_of;
use nom::combinator::{eof, opt, peek, value};
use nom::sequence::{preceded, terminated};
use nom::Parser;

use super::addr::parse_client;
use super::combinators::{byte, fail, quoted_string, take_while_m_n, ByteOffsets, Res};
use super::recursor_structured::QUESTION_MESSAGES;
use super::{epoch_seconds_us, is_qtype, parse_message};
use crate::dns::record::{ParseContext, Parsed, QueryRecord, SkipReason};

/// Parses a line that starts with `{`.
pub(super) fn parse<'a>(line: &'a str, ctx: &ParseContext) -> Parsed<'a> {
    let Some(entry) = scan(line) else {
        return Parsed::Skipped(SkipReason::Malformed);
    };
    let parsed = if let Some(qname) = entry.qname {
        from_fields(&entry, qname)
    } else if let Some(message) = entry.message {
        if message.escaped {
            let text = decode(message.raw);
            reborrow(parse_message(&text, ctx), line)
        } else {
            parse_message(message.raw, ctx)
        }
    } else {
        Parsed::Skipped(SkipReason::NotAQuery)
    };
    match parsed {
        Parsed::Query(mut query) => {
            let received_us = || entry.realtime.and_then(JStr::plain).and_then(|us| us.parse::<i64>().ok());
            query.time_us = query.time_us.or_else(received_us);
            Parsed::Query(query)
        }
        skipped => skipped,
    }
}

/// The recursor's native fields.
fn from_fields<'a>(entry: &Entry<'a>, qname: JStr<'a>) -> Parsed<'a> {
    if let Some(message) = entry.message {
        if !QUESTION_MESSAGES.contains(&&*message.text()) {
            return Parsed::Skipped(SkipReason::NotAQuery);
        }
    }
    let query = || {
        let qname = qname.text();
        let qtype = entry.qtype?.plain()?;
        if qname.is_empty() || !is_qtype(qtype) {
            return None;
        }
        Some(QueryRecord {
            client: parse_client(entry.remote?.plain()?)?,
            qname,
            qtype,
            time_us: entry.timestamp.and_then(JStr::plain).and_then(epoch_seconds_us),
        })
    };
    query().map_or(Parsed::Skipped(SkipReason::Malformed), Parsed::Query)
}

/// A result parsed from a decoded copy of the message, made to borrow from the line:
/// the name is owned, and the type (letters and digits, so never escaped) is found in
/// the line itself.
fn reborrow<'a>(parsed: Parsed<'_>, line: &'a str) -> Parsed<'a> {
    match parsed {
        Parsed::Query(q) => match line.find(q.qtype) {
            Some(at) => Parsed::Query(QueryRecord {
                client: q.client,
                qname: Cow::Owned(q.qname.into_owned()),
                qtype: &line[at..at + q.qtype.len()],
                time_us: q.time_us,
            }),
            None => Parsed::Skipped(SkipReason::Malformed),
        },
        Parsed::Skipped(reason) => Parsed::Skipped(reason),
    }
}

/// The fields of an entry that matter, as string values in the line.
#[derive(Debug, Default, PartialEq)]
struct Entry<'a> {
    qname: Option<JStr<'a>>,
    qtype: Option<JStr<'a>>,
    remote: Option<JStr<'a>>,
    message: Option<JStr<'a>>,
    timestamp: Option<JStr<'a>>,
    realtime: Option<JStr<'a>>,
}

/// A JSON string between its quotes, escapes not yet undone.
#[derive(Debug, Clone, Copy, PartialEq)]
struct JStr<'a> {
    raw: &'a str,
    escaped: bool,
}

impl<'a> JStr<'a> {
    fn text(self) -> Cow<'a, str> {
        if self.escaped {
            Cow::Owned(decode(self.raw))
        } else {
            Cow::Borrowed(self.raw)
        }
    }

    fn plain(self) -> Option<&'a str> {
        (!self.escaped).then_some(self.raw)
    }
}

/// Reads one JSON object; `None` if the line is not one.
fn scan(line: &str) -> Option<Entry<'_>> {
    flat_scan(line).or_else(|| full_scan(line))
}

/// The fields of a string-valued member, first of each kept (as [`full_scan`] keeps them).
/// By length first: most keys of an entry are none of these, and most are told apart
/// without comparing a byte.
#[inline]
fn keep<'a>(entry: &mut Entry<'a>, key: &str, value: JStr<'a>) {
    let slot = match (key.len(), key.as_bytes().first()) {
        (5, Some(b'Q')) if key == "QNAME" => &mut entry.qname,
        (5, Some(b'Q')) if key == "QTYPE" => &mut entry.qtype,
        (6, Some(b'R')) if key == "REMOTE" => &mut entry.remote,
        (7, Some(b'M')) if key == "MESSAGE" => &mut entry.message,
        (9, Some(b'T')) if key == "TIMESTAMP" => &mut entry.timestamp,
        (20, Some(b'_')) if key == "__REALTIME_TIMESTAMP" => &mut entry.realtime,
        _ => return,
    };
    slot.get_or_insert(value);
}

/// The common entry, read the fast way: a line without a backslash whose members are all
/// strings, so that its quotes pair up as key, value, key, value, … and only `:` and `,`
/// (and white space) stand between them. `None` for anything else, which [`full_scan`]
/// then reads: whatever this accepts, that reads the same.
fn flat_scan(line: &str) -> Option<Entry<'_>> {
    let bytes = line.as_bytes();
    if memchr::memchr(b'\\', bytes).is_some() {
        return None;
    }
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    // Between two quotes (or a quote and an end of the line): white space, then exactly
    // `sep`, then white space.
    let only = |from: usize, to: usize, sep: u8| {
        let between = &bytes[from..to];
        // journald's own spacing first: `": "`, `", "`.
        if between.len() == 2 && between[0] == sep && between[1] == b' ' {
            return true;
        }
        let start = between.iter().position(|b| !is_ws(b));
        let end = between.iter().rposition(|b| !is_ws(b));
        matches!((start, end), (Some(s), Some(e)) if s == e && between[s] == sep)
    };
    let mut quotes = ByteOffsets::new(bytes, b'"');
    let mut entry = Entry::default();
    let mut after = 0;
    let mut sep = b'{';
    while let Some(key_open) = quotes.next() {
        let (key_close, value_open, value_close) = (quotes.next()?, quotes.next()?, quotes.next()?);
        if !(only(after, key_open, sep) && only(key_close + 1, value_open, b':')) {
            return None;
        }
        let key = line.get(key_open + 1..key_close)?;
        let raw = line.get(value_open + 1..value_close)?;
        keep(&mut entry, key, JStr { raw, escaped: false });
        after = value_close + 1;
        sep = b',';
    }
    // At least one member, then `}` and the end of the line.
    (sep == b',' && only(after, bytes.len(), b'}')).then_some(entry)
}

/// Reads one JSON object, member by member; `None` if the line is not one.
fn full_scan(line: &str) -> Option<Entry<'_>> {
    let mut entry = Entry::default();
    let (mut i, empty) = object_start(line).ok()?;
    let mut more = !empty;
    while more {
        let (rest, (key, string)) = member(i).ok()?;
        if let Some((raw, escaped)) = string {
            keep(&mut entry, key, JStr { raw, escaped });
        }
        (i, more) = separator(rest).ok()?;
    }
    object_end(i).ok()?;
    Some(entry)
}

/// JSON white space (nom's `multispace0`, over bytes).
fn ws(i: &str) -> Res<'_, &str> {
    take_while_m_n(0, usize::MAX, |b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')).parse_complete(i)
}

/// `{` and white space; whether the object closes at once (`{}`).
fn object_start(i: &str) -> Res<'_, bool> {
    preceded((ws, byte(b'{'), ws), opt(byte(b'}'))).map(|close| close.is_some()).parse_complete(i)
}

/// White space, then the end of the line.
fn object_end(i: &str) -> Res<'_, ()> {
    value((), (ws, eof)).parse_complete(i)
}

/// After a member, `,` (another follows: `true`) or `}` (the last one: `false`).
fn separator(i: &str) -> Res<'_, bool> {
    alt((value(true, (byte(b','), ws)), value(false, byte(b'}')))).parse_complete(i)
}

/// `"KEY": value` and the white space after it: the key as it stands, and the value if
/// it is a string.
fn member(i: &str) -> Res<'_, (&str, Option<(&str, bool)>)> {
    let key = quoted_string.map(|(key, _)| key);
    let value = alt((quoted_string.map(Some), value(None, other_value)));
    (terminated(key, (ws, byte(b':'), ws)), terminated(value, ws)).parse_complete(i)
}

/// Any value but a string: an array or object (journald's byte arrays), or a number,
/// `true` or `null`, not checked further.
fn other_value(i: &str) -> Res<'_, ()> {
    let scalar = take_till1(|c| matches!(c, ',' | '}' | ']' | '"' | ' ' | '\t' | '\r' | '\n'));
    alt((nested, value((), scalar))).parse_complete(i)
}

/// `[…]` or `{…}`, nested to any depth without recursion; strings inside may hold
/// brackets.
fn nested(i: &str) -> Res<'_, ()> {
    let (_, _) = peek(one_of("[{")).parse_complete(i)?;
    let mut depth = 0usize;
    let mut at = 0;
    loop {
        match i.as_bytes().get(at) {
            None => return fail(),
            Some(b'"') => {
                let (rest, _) = quoted_string(&i[at..])?;
                at = i.len() - rest.len();
                continue;
            }
            Some(b'[' | b'{') => depth += 1,
            Some(b']' | b'}') => {
                depth -= 1;
                if depth == 0 {
                    return Ok((&i[at + 1..], ()));
                }
            }
            Some(_) => {}
        }
        at += 1;
    }
}

/// Undoes JSON string escapes; what cannot be decoded becomes U+FFFD.
fn decode(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let decoded = match chars.next() {
            None => break,
            Some('n') => '\n',
            Some('t') => '\t',
            Some('r') => '\r',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('u') => match hex4(&mut chars) {
                Some(high @ 0xD800..=0xDBFF) => {
                    let mut ahead = chars.clone();
                    let low = (ahead.next() == Some('\\') && ahead.next() == Some('u'))
                        .then(|| hex4(&mut ahead))
                        .flatten()
                        .filter(|low| (0xDC00..=0xDFFF).contains(low));
                    match low {
                        Some(low) => {
                            chars = ahead;
                            char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
                                .unwrap_or(char::REPLACEMENT_CHARACTER)
                        }
                        None => char::REPLACEMENT_CHARACTER,
                    }
                }
                Some(code) => char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER),
                None => char::REPLACEMENT_CHARACTER,
            },
            Some(other) => other, // `\"`, `\\`, `\/`
        };
        out.push(decoded);
    }
    out
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    (0..4).try_fold(0, |acc, _| Some(acc * 16 + chars.next()?.to_digit(16)?))
}

#[cfg(test)]
mod tests {
    use super::super::prefix::tests::{ctx, utc};
    use super::super::testing::{summary, want, Want};
    use super::*;

    #[test]
    fn lines() {
        let q = |client, qname, qtype, ts| Ok((client, qname, qtype, ts));
        let cases: &[(&str, Want)] = &[
            // The recursor's native backend: fields, with TIMESTAMP as the time.
            (
                r#"{"LEVEL": "0", "PROTO": "udp", "QTYPE": "A", "__REALTIME_TIMESTAMP": "1795311120875154", "PRIORITY": "6", "SUBSYSTEM": "syncres", "QNAME": "api.be5.host12.example.com", "MESSAGE": "Question", "MTID": "1", "_PID": "10528", "SYSLOG_IDENTIFIER": "pdns_recursor", "_HOSTNAME": "vm", "ECS": "", "REMOTE": "127.0.0.3:59158", "TIMESTAMP": "1795311120.875", "TID": "2", "_TRANSPORT": "journal"}"#,
                q("127.0.0.3", "api.be5.host12.example.com", "A", Some(1_795_311_120_875_000)),
            ),
            (
                r#"{"_HOSTNAME": "vm", "ECS": "", "TID": "2", "PRIORITY": "6", "__REALTIME_TIMESTAMP": "1795311120876576", "SYSLOG_IDENTIFIER": "pdns_recursor", "QNAME": "api.be5.host12.example.com", "LEVEL": "0", "_PID": "10528", "_TRANSPORT": "journal", "PROTO": "udp", "MESSAGE": "Answer", "REMOTE": "127.0.0.3:59158", "SUBSYSTEM": "syncres", "TIMESTAMP": "1795311120.876", "QTYPE": "A", "MTID": "1"}"#,
                Err(SkipReason::NotAQuery),
            ),
            // Without TIMESTAMP, the time journald received it.
            (
                r#"{"MESSAGE":"Question answered from packet cache","QNAME":"a.example.com","QTYPE":"AAAA","REMOTE":"[::1]:5353","__REALTIME_TIMESTAMP":"1795311120900459"}"#,
                q("::1", "a.example.com", "AAAA", Some(1_795_311_120_900_459)),
            ),
            (
                r#"{"QNAME":"a.example.com","QTYPE":"A","REMOTE":"10.0.0.1:53"}"#,
                q("10.0.0.1", "a.example.com", "A", None),
            ),
            (r#"{"QNAME":"a.example.com","QTYPE":"A"}"#, Err(SkipReason::Malformed)),
            (r#"{"QNAME":"a.example.com","QTYPE":"A","REMOTE":"x"}"#, Err(SkipReason::Malformed)),
            (r#"{"QNAME":"","QTYPE":"A","REMOTE":"10.0.0.1"}"#, Err(SkipReason::Malformed)),
            // Another program's line in MESSAGE, unescaped: borrowed as it is.
            (
                r#"{"__REALTIME_TIMESTAMP":"1795310000000001","_HOSTNAME":"vm","SYSLOG_IDENTIFIER":"pdns_server","MESSAGE":"Remote 127.0.0.1 wants 'db1.be5.host58.example.com|A', do = 0, bufsize = 1232: packetcache MISS","_PID":"10409"}"#,
                q("127.0.0.1", "db1.be5.host58.example.com", "A", Some(1_795_310_000_000_001)),
            ),
            // Escaped (a structured recursor line on stdout): its ts wins.
            (
                r#"{"MESSAGE":"msg=\"Question\" subsystem=\"syncres\" ts=\"1795311114.002\" qname=\"api.be5.host12.example.com\" qtype=\"A\" remote=\"127.0.0.3:36904\"","__REALTIME_TIMESTAMP":"1795311114002999"}"#,
                q("127.0.0.3", "api.be5.host12.example.com", "A", Some(1_795_311_114_002_000)),
            ),
            (
                r#"{"MESSAGE":"msg=\"Answer\" qname=\"a\" qtype=\"A\" remote=\"127.0.0.3:36904\""}"#,
                Err(SkipReason::NotAQuery),
            ),
            (
                r#"{"MESSAGE":"3 question answered from packet cache tag=0 from 127.0.0.2:35066"}"#,
                Err(SkipReason::CacheHitWithoutName),
            ),
            // Other value kinds are skipped; a byte-array MESSAGE says nothing.
            (
                r#"{ "A" : [1, [2, {"x": "]"}], 3] , "B":null,"C":-1.5e3,"MESSAGE":[82,101],"QTYPE":"A" }"#,
                Err(SkipReason::NotAQuery),
            ),
            (r#"{}"#, Err(SkipReason::NotAQuery)),
            (r#"{"MESSAGE":"Started pdns.service"}"#, Err(SkipReason::NotAQuery)),
            (r#"{"MESSAGE":"Remote 127.0.0.1 wants"#, Err(SkipReason::Malformed)),
            (r#"{"MESSAGE":"x"} trailing"#, Err(SkipReason::Malformed)),
            (r#"{"MESSAGE" "x"}"#, Err(SkipReason::Malformed)),
            (r#"{"A":}"#, Err(SkipReason::Malformed)),
            (r#"{"A":[1,2}"#, Err(SkipReason::Malformed)),
            (r#"{"#, Err(SkipReason::Malformed)),
        ];
        for (line, expected) in cases {
            assert_eq!(summary(&parse(line, &ctx())), want(*expected), "{line}");
        }
    }

    #[test]
    fn the_fast_scan_reads_what_the_full_scan_reads() {
        let a = r#"{"MESSAGE": "Question", "QNAME": "a.example.com", "QTYPE": "A", "REMOTE": "10.0.0.1:53"}"#;
        let cases: &[(&str, bool)] = &[
            (a, true),
            (r#"{"MESSAGE":"Question","QNAME":"a","QTYPE":"A","REMOTE":"10.0.0.1"}"#, true),
            (" \t{ \"QNAME\" :\t\"a\" ,\r\n\"QTYPE\":\"A\" } \n", true),
            // The first of a key twice is kept.
            (r#"{"QNAME": "a", "QNAME": "b", "QTYPE": "A", "REMOTE": "10.0.0.1"}"#, true),
            // Not flat, or escaped: the full scan reads it.
            (r#"{"QNAME": "a", "_PID": 1211, "QTYPE": "A"}"#, false),
            (r#"{"MESSAGE": [82, 101], "QNAME": "a"}"#, false),
            (r#"{"QNAME": "a\"b", "QTYPE": "A"}"#, false),
            (r#"{"QNAME": "caf\u00e9", "QTYPE": "A"}"#, false),
            (r#"{}"#, false),
            // Broken: both refuse it.
            (r#"{"QNAME": "a" "QTYPE": "A"}"#, false),
            (r#"{"QNAME": "a",, "QTYPE": "A"}"#, false),
            (r#"{"QNAME": "a", "QTYPE": "A"} trailing"#, false),
            (r#"{"QNAME": "a", "QTYPE": "A""#, false),
            (r#"{"QNAME": "a", "QTYPE": "A}"#, false),
            (r#"{"QNAME": "a", "QTYPE"}"#, false),
            (r#"{"QNAME" "a"}"#, false),
            (r#"{"QNAME": "a",}"#, false),
            (r#"x{"QNAME": "a"}"#, false),
        ];
        for (line, fast) in cases {
            assert_eq!(flat_scan(line).is_some(), *fast, "{line}");
            if let Some(entry) = flat_scan(line) {
                assert_eq!(Some(entry), full_scan(line), "{line}");
            }
        }
        // Cut anywhere, a fixture line is read the same whichever way reads it.
        let fixture = include_str!("../../../tests/data/pdns-formats/recursor-4.8.8-formats.log");
        for line in fixture.lines().filter(|l| l.starts_with('{')).chain([a]) {
            for at in 0..=line.len() {
                for part in [line.get(..at), line.get(at..)].into_iter().flatten() {
                    if let Some(entry) = flat_scan(part) {
                        assert_eq!(Some(entry), full_scan(part), "{part}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_inner_line_keeps_its_prefix_time() {
        let line = r#"{"MESSAGE":"Nov 22 01:31:53 Remote 127.0.0.2 wants 'db1.be5.host58.example.com|A', do = 0","__REALTIME_TIMESTAMP":"1"}"#;
        let Parsed::Query(q) = parse(line, &ctx()) else {
            panic!("no query");
        };
        assert_eq!(q.time_us, Some(utc(2026, 11, 22, 1, 31, 53)));
        assert!(matches!(q.qname, Cow::Borrowed(_)));
    }

    #[test]
    fn escaped_names_are_decoded() {
        let line = r#"{"MESSAGE":"Question","QNAME":"caf\u00e9\ud83d\ude00\"\\\/\n.example.com","QTYPE":"A","REMOTE":"10.0.0.1"}"#;
        let Parsed::Query(q) = parse(line, &ctx()) else {
            panic!("no query");
        };
        assert_eq!(q.qname, "café😀\"\\/\n.example.com");
        let cases = [
            (r"\ud83d", "\u{FFFD}"),
            (r"\ud83dx", "\u{FFFD}x"),
            (r"\ud83d\u0041", "\u{FFFD}A"),
            (r"\ude00", "\u{FFFD}"),
            (r"\u12", "\u{FFFD}"),
            (r"\uzzzz", "\u{FFFD}zzz"),
            (r"a\", "a"),
            (r"\q", "q"),
        ];
        for (raw, want) in cases {
            assert_eq!(decode(raw), want, "{raw}");
        }
    }
}
