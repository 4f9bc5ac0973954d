//! PowerDNS Recursor structured lines (`structured-logging=yes`, the 4.8 default):
//! `key="value"` pairs, values quoted with `\"` and `\\` escapes (`std::quoted`).
//!
//! ```text
//! msg="Question" subsystem="syncres" … ts="1795310995.698" ecs="" mtid="1" proto="udp" qname="db1.be5.host58.example.com" qtype="A" remote="127.0.0.2:33949"
//! msg="Question answered from packet cache" subsystem="in" … qname="…" qtype="A" remote="127.0.0.2:54549" source="127.0.0.2:54549" tag="0"
//! msg="Answer" …                                                            (not a query)
//! ```
//!
//! Both question messages carry the name, so a packet-cache hit is a query here.

use std::borrow::Cow;

use nom::branch::alt;
use nom::bytes::{tag, take_till, take_till1};
use nom::combinator::{eof, iterator, peek};
use nom::sequence::{preceded, terminated};
use nom::Parser;

use super::addr::parse_client;
use super::combinators::{byte, quoted_string, take_while_m_n, ByteOffsets, Res};
use super::{epoch_seconds, is_qtype};
use crate::dns::record::{Parsed, QueryRecord, SkipReason};

/// The `msg` values that announce a question; the same words are journald's MESSAGE.
pub(super) const QUESTION_MESSAGES: [&str; 2] = ["Question", "Question answered from packet cache"];

/// Parses a message that starts with `msg=`; `None` if it does not.
pub(super) fn parse(message: &str) -> Option<Parsed<'_>> {
    // After `msg=` a pair always follows (a bare value may be empty).
    let (rest, msg) = preceded(peek(tag("msg=")), pair).parse_complete(message).ok()?;
    let is_question = !msg.escaped && QUESTION_MESSAGES.contains(&msg.raw);
    if !is_question {
        return Some(Parsed::Skipped(SkipReason::NotAQuery));
    }
    Some(question(rest).unwrap_or(Parsed::Skipped(SkipReason::Malformed)))
}

/// The fields a question needs, as they stand in the line.
#[derive(Debug, Default, PartialEq)]
struct Fields<'a> {
    qname: Option<Value<'a>>,
    qtype: Option<Value<'a>>,
    remote: Option<Value<'a>>,
    ts: Option<Value<'a>>,
}

impl<'a> Fields<'a> {
    /// Keeps the first of each field that matters. By length first: most keys are none
    /// of these, and most are told apart without comparing a byte.
    #[inline]
    fn keep(&mut self, value: Value<'a>) {
        let key = value.key;
        let slot = match (key.len(), key.as_bytes().first()) {
            (5, Some(b'q')) if key == "qname" => &mut self.qname,
            (5, Some(b'q')) if key == "qtype" => &mut self.qtype,
            (6, Some(b'r')) if key == "remote" => &mut self.remote,
            (2, Some(b't')) if key == "ts" => &mut self.ts,
            _ => return,
        };
        slot.get_or_insert(value);
    }
}

/// The pairs after `msg="…"`, all of them well-formed.
fn question(rest: &str) -> Option<Parsed<'_>> {
    let fields = quoted_pairs(rest).or_else(|| pairs(rest))?;
    let qname = fields.qname?.text();
    let qtype = fields.qtype?.plain()?;
    if qname.is_empty() || !is_qtype(qtype) {
        return None;
    }
    let ts = fields.ts.and_then(Value::plain);
    Some(Parsed::Query(QueryRecord {
        client: parse_client(fields.remote?.plain()?)?,
        qname,
        qtype,
        time_us: ts.and_then(|ts| epoch_seconds(ts).ok()).map(|(_, us)| us),
    }))
}

/// Every pair of `rest`, read with [`pair`]; `None` unless all of it is well-formed pairs.
fn pairs(rest: &str) -> Option<Fields<'_>> {
    let mut fields = Fields::default();
    let mut pairs = iterator(rest, pair);
    for value in &mut pairs {
        fields.keep(value);
    }
    let (rest, ()) = pairs.finish().ok()?;
    eof::<_, ()>(rest).ok()?;
    Some(fields)
}

/// The common case of [`pairs`], the fast way: no backslash anywhere and every value
/// quoted, so that the quotes pair up and each key is what stands between a closing quote
/// (after spaces) and the next `="`. `None` for anything else, which [`pairs`] then reads:
/// whatever this accepts, that reads the same.
fn quoted_pairs(rest: &str) -> Option<Fields<'_>> {
    let bytes = rest.as_bytes();
    if memchr::memchr(b'\\', bytes).is_some() {
        return None;
    }
    let mut quotes = ByteOffsets::new(bytes, b'"');
    let mut fields = Fields::default();
    let mut key_start = 0;
    while key_start < bytes.len() {
        let (open, close) = (quotes.next()?, quotes.next()?);
        // `key=` right before the opening quote: at least one byte, no `=` or space.
        let key = bytes.get(key_start..open.checked_sub(1)?)?;
        if key.is_empty() || bytes[open - 1] != b'=' || key.iter().any(|&b| b == b'=' || b == b' ') {
            return None;
        }
        fields.keep(Value { key: rest.get(key_start..open - 1)?, raw: rest.get(open + 1..close)?, escaped: false });
        key_start = close + 1;
        while matches!(bytes.get(key_start), Some(b' ' | b'\t')) {
            key_start += 1;
        }
    }
    quotes.next().is_none().then_some(fields)
}

/// One `key="value"` (or `key=value`) pair as it stands in the line.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Value<'a> {
    key: &'a str,
    /// Between the quotes, escapes not yet undone.
    raw: &'a str,
    escaped: bool,
}

impl<'a> Value<'a> {
    /// The value, allocating only to undo escapes.
    fn text(self) -> Cow<'a, str> {
        if self.escaped {
            Cow::Owned(unescape(self.raw))
        } else {
            Cow::Borrowed(self.raw)
        }
    }

    /// The value if it has no escapes (addresses, types and times never do).
    fn plain(self) -> Option<&'a str> {
        (!self.escaped).then_some(self.raw)
    }
}

/// `key="value" ` with the spaces (and tabs) after it. The key is at least one byte and
/// has no `=`, space or `"`. A value that opens a quote but never closes it is read as
/// an empty bare value, which leaves the `"` for the next pair to fail on.
fn pair(i: &str) -> Res<'_, Value<'_>> {
    let key = terminated(take_till1(|c| matches!(c, '=' | ' ' | '"')), byte(b'='));
    let bare = take_till(|c| c == ' ' || c == '"').map(|raw| (raw, false));
    let spaces = take_while_m_n(0, usize::MAX, |b| b == b' ' || b == b'\t');
    (key, alt((quoted_string, bare)), spaces)
        .map(|(key, (raw, escaped), _)| Value { key, raw, escaped })
        .parse_complete(i)
}

/// Undoes `\x` → `x`.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::{summary, want, Want};
    use super::*;

    #[test]
    fn lines() {
        let q = |client, qname, qtype, ts| Some(Ok((client, qname, qtype, ts)));
        let cases: &[(&str, Option<Want>)] = &[
            (
                r#"msg="Question" subsystem="syncres" level="0" prio="Info" tid="2" ts="1795310995.698" ecs="" mtid="1" proto="udp" qname="db1.be5.host58.example.com" qtype="A" remote="127.0.0.2:33949""#,
                q("127.0.0.2", "db1.be5.host58.example.com", "A", Some(1_795_310_995_698_000)),
            ),
            (
                r#"msg="Question answered from packet cache" subsystem="in" level="0" prio="Notice" tid="2" ts="1795310996.027" proto="udp" qname="db1.be5.host58.example.com" qtype="A" remote="127.0.0.2:54549" source="127.0.0.2:54549" tag="0""#,
                q("127.0.0.2", "db1.be5.host58.example.com", "A", Some(1_795_310_996_027_000)),
            ),
            (
                r#"msg="Question" ts="1795311174.329" ecs="10.9.8.0/24" qname="cache.be7.host3.example.com" qtype="AAAA" remote="[fd00:99::2]:34418""#,
                q("fd00:99::2", "cache.be7.host3.example.com", "AAAA", Some(1_795_311_174_329_000)),
            ),
            // No ts: the prefix or the reader gives the time.
            (
                r#"msg="Question" qname="a.example.com." qtype="ANY" remote="10.0.0.1:53""#,
                q("10.0.0.1", "a.example.com.", "ANY", None),
            ),
            // Escapes in the name are undone; elsewhere they do not matter.
            (
                r#"msg="Question" note="say \"hi\" \\o/" qname="we\"ird\\.example.com" qtype="A" remote="10.0.0.1:53""#,
                q("10.0.0.1", "we\"ird\\.example.com", "A", None),
            ),
            // Unquoted values and the first of duplicate keys.
            (
                r#"msg="Question" qname=a.example.com qtype=A remote=10.0.0.1:53 remote="10.9.9.9:1""#,
                q("10.0.0.1", "a.example.com", "A", None),
            ),
            (r#"msg="Answer" qname="a.example.com" qtype="A" remote="10.0.0.1:53""#, Some(Err(SkipReason::NotAQuery))),
            (
                r#"msg="Enabling IPv4 transport for outgoing queries" subsystem="config""#,
                Some(Err(SkipReason::NotAQuery)),
            ),
            (r#"msg="Quest"#, Some(Err(SkipReason::NotAQuery))),
            (r#"msg="Question" qname="a.example.com" qtype="A""#, Some(Err(SkipReason::Malformed))),
            (r#"msg="Question" qname="a.example.com" remote="10.0.0.1:53""#, Some(Err(SkipReason::Malformed))),
            (r#"msg="Question" qtype="A" remote="10.0.0.1:53""#, Some(Err(SkipReason::Malformed))),
            (r#"msg="Question" qname="" qtype="A" remote="10.0.0.1:53""#, Some(Err(SkipReason::Malformed))),
            (r#"msg="Question" qname="a" qtype="A" remote="nowhere:53""#, Some(Err(SkipReason::Malformed))),
            (r#"msg="Question" qname="a" qtype="A\"" remote="10.0.0.1:53""#, Some(Err(SkipReason::Malformed))),
            (r#"msg="Question" qname="a" qtype="A" remote="10.0.0.1:53" ts="17953"#, Some(Err(SkipReason::Malformed))),
            (r#"msg="Question" qname="a\"#, Some(Err(SkipReason::Malformed))),
            ("Question", None),
            (r#"  msg="Question""#, None),
        ];
        for (line, expected) in cases {
            assert_eq!(parse(line).map(|p| summary(&p)), expected.map(want), "{line:?}");
        }
    }

    #[test]
    fn the_fast_reading_of_the_pairs_reads_what_the_parser_reads() {
        let a =
            r#"subsystem="syncres" ts="1795310995.698" ecs="" qname="a.example.com" qtype="A" remote="10.0.0.1:53""#;
        let cases: &[(&str, bool)] = &[
            (a, true),
            ("qname=\"a\"\t \tqtype=\"A\"  remote=\"10.0.0.1\"  ", true),
            ("", true),
            (r#"qname="a" qname="b" qtype="A" remote="10.0.0.1""#, true),
            ("k\tx=\"1\" qname=\"a\"", true),
            // No space is needed between pairs.
            (r#"qname="a"qtype="A""#, true),
            // Bare values or escapes: the parser reads it.
            (r#"qname=a qtype="A" remote="10.0.0.1""#, false),
            (r#"qname="a" qtype=A"#, false),
            (r#"qname="a" empty= qtype="A""#, false),
            (r#"qname="a"b" qtype="A""#, false),
            // Broken: both refuse it.
            (r#"qname="a" ="A""#, false),
            (r#"qname="a" q type="A""#, false),
            (r#"qname="a" q=type="A""#, false),
            (r#"qname="a" qtype="A"#, false),
            (r#"qname="a" "A""#, false),
            (r#"qname=="a""#, false),
            (r#" qname="a""#, false),
        ];
        for (rest, fast) in cases {
            assert_eq!(quoted_pairs(rest).is_some(), *fast, "{rest}");
            if let Some(fields) = quoted_pairs(rest) {
                assert_eq!(Some(fields), pairs(rest), "{rest}");
            }
        }
        for at in 0..=a.len() {
            for part in [&a[..at], &a[at..]] {
                if let Some(fields) = quoted_pairs(part) {
                    assert_eq!(Some(fields), pairs(part), "{part}");
                }
            }
        }
    }

    #[test]
    fn borrows_unless_escaped() {
        let line = r#"msg="Question" qname="a.example.com" qtype="A" remote="10.0.0.1:53""#;
        let Some(Parsed::Query(q)) = parse(line) else {
            panic!("no query");
        };
        assert!(matches!(q.qname, Cow::Borrowed(_)));
        let line = r#"msg="Question" qname="a\\b.example.com" qtype="A" remote="10.0.0.1:53""#;
        let Some(Parsed::Query(q)) = parse(line) else {
            panic!("no query");
        };
        assert!(matches!(q.qname, Cow::Owned(_)));
        assert_eq!(q.qname, "a\\b.example.com");
    }
}
