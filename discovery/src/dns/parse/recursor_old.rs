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

use std::borrow::Cow;
use std::sync::LazyLock;

use memchr::memmem::FinderRev;

use super::addr::parse_client;
use super::question;
use crate::dns::record::{Parsed, QueryRecord, SkipReason};

const FROM: &str = "' from ";

/// The searcher, built once rather than per line.
static FROM_FINDER: LazyLock<FinderRev<'static>> = LazyLock::new(|| FinderRev::new(FROM));

/// Parses a recursor question or packet-cache line; `None` if it is neither.
pub(super) fn parse(message: &str) -> Option<Parsed<'_>> {
    let rest = skip_thread_and_query_id(message);
    if rest.starts_with("question answered from packet cache") {
        return Some(Parsed::Skipped(SkipReason::CacheHitWithoutName));
    }
    let rest = rest.strip_prefix("TCP ").unwrap_or(rest);
    let rest = rest.strip_prefix("question for '")?;
    Some(query(rest).unwrap_or(Parsed::Skipped(SkipReason::Malformed)))
}

/// Skips `3 [1/1] `: the worker thread and the query counters, each optional.
fn skip_thread_and_query_id(i: &str) -> &str {
    let digits = i.bytes().take_while(u8::is_ascii_digit).count();
    let i = match i[digits..].strip_prefix(' ') {
        Some(rest) if digits > 0 => rest,
        _ => i,
    };
    let Some(counters) = i.strip_prefix('[') else {
        return i;
    };
    match memchr::memchr(b']', counters.as_bytes()) {
        Some(at) => counters[at + 1..].strip_prefix(' ').unwrap_or(i),
        None => i,
    }
}

/// `name|type' from client[ (…)]`.
fn query(rest: &str) -> Option<Parsed<'_>> {
    let end = FROM_FINDER.rfind(rest.as_bytes())?;
    let (qname, qtype) = question(&rest[..end])?;
    let remote = rest[end + FROM.len()..].split(' ').next()?;
    Some(Parsed::Query(QueryRecord {
        client: parse_client(remote)?,
        qname: Cow::Borrowed(qname),
        qtype,
        time_us: None,
    }))
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
