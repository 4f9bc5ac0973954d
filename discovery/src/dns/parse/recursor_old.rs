//! PowerDNS Recursor old-style lines (`structured-logging=no`, `quiet=no`):
//!
//! ```text
//! 3 [1/1] question for 'db1.example.com|A' from 127.21.1.2:44361
//! 1 [1/1] TCP question for 'cache.be7.host3.example.com|A' from 127.0.0.4:34395
//! 3 [5/1] question for 'db1.be5.host58.example.com|A' from 127.0.0.6:52831 (ecs 10.9.8.0/24)
//! 3 [1/1] question for 'api.be5.host12.example.com|A' from [fd00:99::2]:40402
//! 3 question answered from packet cache tag=0 from 127.0.0.1:5555      (no name: skipped)
//! 3 [1/1] answer to question 'db1.example.com|A': 1 answers, …          (not a query)
//! ```

use std::net::IpAddr;
use std::sync::LazyLock;

use memchr::memmem::FinderRev;
use nom::branch::alt;
use nom::bytes::tag;
use nom::character::digit1;
use nom::combinator::{cut, opt, value};
use nom::sequence::preceded;
use nom::Parser;

use super::addr::parse_client;
use super::combinators::{
    byte, flavour, take_till_byte, take_until_byte, take_until_last, try_map, within, NeedleRev, Res,
};
use super::{borrowed, question};
use crate::dns::record::{Parsed, SkipReason};

/// The searcher, built once rather than per line.
static FROM: NeedleRev = LazyLock::new(|| FinderRev::new("' from "));

/// A question (`None` for a packet-cache hit, which has none).
type Question<'a> = Option<(IpAddr, (&'a str, &'a str))>;

/// Parses a recursor question or packet-cache line; `None` if it is neither.
pub(super) fn parse(message: &str) -> Option<Parsed<'_>> {
    let mut parsed = line.map(|question| match question {
        Some((client, question)) => borrowed(client, question),
        None => Parsed::Skipped(SkipReason::CacheHitWithoutName),
    });
    flavour(parsed.parse_complete(message))
}

/// `3 [1/1] question for 'name|type' from client …` or a packet-cache hit.
#[inline]
fn line(i: &str) -> Res<'_, Question<'_>> {
    preceded(
        thread_and_query_id,
        alt((
            value(None, tag("question answered from packet cache")),
            preceded((opt(tag("TCP ")), tag("question for '")), cut(query)).map(Some),
        )),
    )
    .parse_complete(i)
}

/// `3 [1/1] `: the worker thread and the query counters, each optional.
#[inline]
fn thread_and_query_id(i: &str) -> Res<'_, ()> {
    (opt((digit1(), byte(b' '))), opt((byte(b'['), take_until_byte(b']'), tag("] ")))).map(|_| ()).parse_complete(i)
}

/// `name|type' from client[ (…)]`: the name is up to the last `' from `.
#[inline]
fn query(i: &str) -> Res<'_, (IpAddr, (&str, &str))> {
    (within(take_until_last(&FROM), question), preceded(tag("' from "), try_map(take_till_byte(b' '), parse_client)))
        .map(|(question, client)| (client, question))
        .parse_complete(i)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{summary, want, Want};
    use super::*;

    #[test]
    fn lines() {
        let q = |client, qname, qtype| Some(Ok((client, qname, qtype, None)));
        let cases: &[(&str, Option<Want>)] = &[
            ("3 [1/1] question for 'db1.example.com|A' from 127.21.1.2:44361", q("127.21.1.2", "db1.example.com", "A")),
            (
                "1 [1/1] TCP question for 'cache.be7.host3.example.com|A' from 127.0.0.4:34395",
                q("127.0.0.4", "cache.be7.host3.example.com", "A"),
            ),
            (
                "3 [5/1] question for 'db1.be5.host58.example.com|A' from 127.0.0.6:52831 (ecs 10.9.8.0/24)",
                q("127.0.0.6", "db1.be5.host58.example.com", "A"),
            ),
            (
                "3 [1/1] question for 'api.be5.host12.example.com|AAAA' from [fd00:99::2]:40402",
                q("fd00:99::2", "api.be5.host12.example.com", "AAAA"),
            ),
            ("3 [1/1] question for 'a.example.com|A' from fd00:99::2", q("fd00:99::2", "a.example.com", "A")),
            // Older releases: no thread number, or no counters.
            ("[7] question for 'Www.Example.com.|ANY' from 10.1.2.3:53", q("10.1.2.3", "Www.Example.com.", "ANY")),
            ("question for 'a.example.com|A' from 10.1.2.3", q("10.1.2.3", "a.example.com", "A")),
            // A name that contains the separator.
            (
                "3 [1/1] question for 'x' from y.example.com|TXT' from 10.1.2.3:53",
                q("10.1.2.3", "x' from y.example.com", "TXT"),
            ),
            (
                "3 question answered from packet cache tag=0 from 127.0.0.1:5555",
                Some(Err(SkipReason::CacheHitWithoutName)),
            ),
            ("question answered from packet cache from 127.0.0.1:5555", Some(Err(SkipReason::CacheHitWithoutName))),
            ("3 [1/1] question for 'db1.example.com|A' from nowhere:1", Some(Err(SkipReason::Malformed))),
            ("3 [1/1] question for 'db1.example.com|A' from ", Some(Err(SkipReason::Malformed))),
            ("3 [1/1] question for 'db1.example.com' from 10.0.0.1", Some(Err(SkipReason::Malformed))),
            ("3 [1/1] question for 'db1.example.com|A", Some(Err(SkipReason::Malformed))),
            ("3 [1/1] answer to question 'db1.example.com|A': 1 answers, 1 additional", None),
            ("3 [6/1] answer to non-rd question 'db1.example.com|A': 1 answers", None),
            ("Launching 2 worker threads", None),
            ("3 [1/1", None),
            ("", None),
        ];
        for (line, expected) in cases {
            assert_eq!(parse(line).map(|p| summary(&p)), expected.map(want), "{line:?}");
        }
    }
}
