//! PowerDNS Authoritative `log-dns-queries` lines:
//!
//! ```text
//! Remote 127.20.3.2 wants 'cache.be1.host103.example.com|A', do = 0, bufsize = 1232: packetcache MISS
//! TCP Remote 127.0.0.4 wants 'cache.be7.host3.example.com|A', do = 0, bufsize = 1232
//! Remote 127.0.0.5<-10.9.8.0/24 wants 'db1.be5.host58.example.com|A', do = 0, bufsize = 1232 (4096): …
//! Remote fd00:99::2 wants 'db1.be5.host58.example.com|AAAA', do = 0, bufsize = 1232: packetcache MISS
//! ```

use std::net::IpAddr;
use std::sync::LazyLock;

use memchr::memmem::Finder;
use nom::branch::alt;
use nom::bytes::tag;
use nom::combinator::{cut, opt};
use nom::sequence::delimited;
use nom::Parser;

use super::addr::parse_client;
use super::combinators::{
    flavour, take_till_byte, take_until_first, take_until_last_byte, try_map, within, Needle, Res,
};
use super::{borrowed, question};
use crate::dns::record::Parsed;

/// The searchers, built once rather than per line.
static WANTS: Needle = LazyLock::new(|| Finder::new(" wants '"));
static DO: Needle = LazyLock::new(|| Finder::new("', do = "));
static REMOTE: Needle = LazyLock::new(|| Finder::new(" Remote "));

/// Parses a message that starts with `Remote ` or `TCP Remote `; `None` if it is not
/// such a line.
pub(super) fn parse(message: &str) -> Option<Parsed<'_>> {
    flavour(query.map(|(client, question)| borrowed(client, question)).parse_complete(message))
}

/// Finds an auth query message somewhere in `message`, after a prefix nobody told us
/// about (an rsyslog template such as `… msg= Remote 127.0.0.1 wants '…'`).
pub(super) fn find(message: &str) -> Option<Parsed<'_>> {
    REMOTE.find_iter(message.as_bytes()).find_map(|at| parse(&message[at + 1..]))
}

/// `[TCP ]Remote <client> wants 'name|type', do = …`; once ` wants '` is seen, it is
/// this flavour, and a bad client or question is a failure.
#[inline]
fn query(i: &str) -> Res<'_, (IpAddr, (&str, &str))> {
    (within(head, cut(client)), cut(within(quoted, question))).parse_complete(i)
}

/// `[TCP ]Remote <client> wants '`: the client text.
#[inline]
fn head(i: &str) -> Res<'_, &str> {
    delimited((opt(tag("TCP ")), tag("Remote ")), take_until_first(&WANTS), tag(" wants '")).parse_complete(i)
}

/// The client is the first word: a later `(…)` note is not part of it.
#[inline]
fn client(i: &str) -> Res<'_, IpAddr> {
    try_map(take_till_byte(b' '), parse_client).parse_complete(i)
}

/// What is quoted: up to `', do = `, or, for older versions without that tail, the last
/// quote.
#[inline]
fn quoted(i: &str) -> Res<'_, &str> {
    alt((take_until_first(&DO), take_until_last_byte(b'\''))).parse_complete(i)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{summary, want, Want};
    use super::*;
    use crate::dns::record::SkipReason;

    #[test]
    fn lines() {
        let q = |client, qname, qtype| Some(Ok((client, qname, qtype, None)));
        let cases: &[(&str, Option<Want>)] = &[
            (
                "Remote 127.20.3.2 wants 'cache.be1.host103.example.com|A', do = 0, bufsize = 1232: packetcache MISS",
                q("127.20.3.2", "cache.be1.host103.example.com", "A"),
            ),
            (
                "TCP Remote 127.0.0.4 wants 'cache.be7.host3.example.com|A', do = 0, bufsize = 1232",
                q("127.0.0.4", "cache.be7.host3.example.com", "A"),
            ),
            (
                "Remote 127.0.0.5<-10.9.8.0/24 wants 'db1.be5.host58.example.com|A', do = 0, bufsize = 1232: packetcache MISS",
                q("127.0.0.5", "db1.be5.host58.example.com", "A"),
            ),
            (
                "Remote 127.0.0.6 wants 'db1.be5.host58.example.com|A', do = 0, bufsize = 1232 (4096): packetcache MISS",
                q("127.0.0.6", "db1.be5.host58.example.com", "A"),
            ),
            (
                "Remote fd00:99::2 wants 'db1.be5.host58.example.com|AAAA', do = 0, bufsize = 1232: packetcache MISS",
                q("fd00:99::2", "db1.be5.host58.example.com", "AAAA"),
            ),
            (
                "Remote ::1 wants '.|NS', do = 0, bufsize = 1232",
                q("::1", ".", "NS"),
            ),
            // Bracketed with a port, and a proxy note after the client.
            (
                "Remote [::1]:53 wants 'X.Example.COM.|ANY', do = 1, bufsize = 4096",
                q("::1", "X.Example.COM.", "ANY"),
            ),
            (
                "Remote 10.0.0.1 (proxied by 10.0.0.2) wants 'a.example.com|A', do = 0, bufsize = 512",
                q("10.0.0.1", "a.example.com", "A"),
            ),
            // Quotes and bars inside the name: the last '|' before the closing quote splits.
            (
                "Remote 10.0.0.1 wants 'it's|a|b.example.com|TXT', do = 0, bufsize = 512",
                q("10.0.0.1", "it's|a|b.example.com", "TXT"),
            ),
            // Older versions: no `, do = …` tail.
            (
                "Remote 10.0.0.1 wants 'a.example.com|A'",
                q("10.0.0.1", "a.example.com", "A"),
            ),
            // Query-looking but broken.
            ("Remote nobody wants 'a.example.com|A', do = 0", Some(Err(SkipReason::Malformed))),
            ("Remote  wants 'a.example.com|A', do = 0", Some(Err(SkipReason::Malformed))),
            ("Remote 10.0.0.1 wants 'a.example.com', do = 0", Some(Err(SkipReason::Malformed))),
            ("Remote 10.0.0.1 wants '|A', do = 0", Some(Err(SkipReason::Malformed))),
            ("Remote 10.0.0.1 wants 'a.example.com|', do = 0", Some(Err(SkipReason::Malformed))),
            ("Remote 10.0.0.1 wants 'a.example.com|A A', do = 0", Some(Err(SkipReason::Malformed))),
            ("Remote 10.0.0.1 wants 'a.example.com|A", Some(Err(SkipReason::Malformed))),
            // Not this flavour.
            ("Remote 10.0.0.1 said hello", None),
            ("UDP server bound to 127.0.0.1:5300", None),
            ("remote 10.0.0.1 wants 'a|A'", None),
            ("", None),
        ];
        for (line, expected) in cases {
            assert_eq!(parse(line).map(|p| summary(&p)), expected.map(want), "{line:?}");
        }
    }

    #[test]
    fn found_behind_an_unknown_prefix() {
        let line = "fac=daemon sev=notice tag=pdns[8023]: programname=pdns procid=8023 msg= Remote 127.0.0.1 wants 'example.com|SOA', do = 0, bufsize = 1232: packetcache MISS";
        let Some(Parsed::Query(q)) = find(line) else {
            panic!("no query in {line:?}");
        };
        assert_eq!((q.client.to_string().as_str(), &*q.qname, q.qtype), ("127.0.0.1", "example.com", "SOA"));
        assert_eq!(find("nothing to see: Remote control enabled"), None);
        assert_eq!(find("Remote 10.0.0.1 wants 'a|A'"), None, "only after a space");
    }
}
