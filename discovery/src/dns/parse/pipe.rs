//! PowerDNS pipe-backend questions, as the coprocess reads them on stdin (TAB-separated):
//!
//! ```text
//! Q<TAB>qname<TAB>qclass<TAB>qtype<TAB>id<TAB>remote-ip                         (ABI 1)
//! Q<TAB>qname<TAB>qclass<TAB>qtype<TAB>id<TAB>remote-ip<TAB>local-ip            (ABI 2)
//! Q<TAB>qname<TAB>qclass<TAB>qtype<TAB>id<TAB>remote-ip<TAB>local-ip<TAB>subnet (ABI 3)
//! ```
//!
//! The server's own SOA look-ups come from `0.0.0.0` and are skipped.

use nom::bytes::tag;
use nom::combinator::{cut, eof, opt};
use nom::sequence::{preceded, terminated};
use nom::Parser;

use super::addr::parse_client;
use super::combinators::{byte, flavour, take_till_byte, try_map, within, Res};
use super::{borrowed, qtype};
use crate::dns::record::{Parsed, SkipReason};

/// Parses a `Q` line; `None` if the message is not one.
pub(super) fn parse(message: &str) -> Option<Parsed<'_>> {
    flavour(preceded(tag("Q\t"), cut(fields)).map(question).parse_complete(message))
}

/// `qname<TAB>qclass<TAB>qtype<TAB>id<TAB>remote[<TAB>local[<TAB>subnet]]`, all of the
/// input: the name (not empty), the type and the remote address as they stand.
#[inline]
fn fields(i: &str) -> Res<'_, (&str, &str, &str)> {
    let field = || take_till_byte(b'\t');
    let tab = || byte(b'\t');
    let qname = try_map(field(), |qname: &str| (!qname.is_empty()).then_some(qname));
    terminated(
        (
            qname,
            tab(),
            field(),
            tab(),
            within(field(), terminated(qtype, eof)),
            tab(),
            field(),
            tab(),
            field(),
            // ABI 2 adds the local address, ABI 3 the EDNS subnet; nothing comes after.
            opt(preceded(tab(), field())),
            opt(preceded(tab(), field())),
        ),
        eof,
    )
    .map(|(qname, _, _qclass, _, qtype, _, _id, _, remote, _local, _subnet)| (qname, qtype, remote))
    .parse_complete(i)
}

fn question<'a>((qname, qtype, remote): (&'a str, &'a str, &'a str)) -> Parsed<'a> {
    if remote == "0.0.0.0" && qtype.eq_ignore_ascii_case("SOA") {
        return Parsed::Skipped(SkipReason::PipeSoaLookup);
    }
    match parse_client(remote) {
        Some(client) => borrowed(client, (qname, qtype)),
        None => Parsed::Skipped(SkipReason::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{summary, want, Want};
    use super::*;

    #[test]
    fn lines() {
        let q = |client, qname, qtype| Some(Ok((client, qname, qtype, None)));
        let cases: &[(&str, Option<Want>)] = &[
            (
                "Q\tdb1.be5.host58.example.com\tIN\tANY\t-1\t127.0.0.2",
                q("127.0.0.2", "db1.be5.host58.example.com", "ANY"),
            ),
            (
                "Q\tdb1.be5.host58.example.com\tIN\tANY\t-1\t127.0.0.2\t127.0.0.1",
                q("127.0.0.2", "db1.be5.host58.example.com", "ANY"),
            ),
            (
                "Q\tapi.be5.host12.example.com\tIN\tANY\t-1\t127.0.0.3\t127.0.0.1\t10.9.8.0/24",
                q("127.0.0.3", "api.be5.host12.example.com", "ANY"),
            ),
            ("Q\ta.example.com\tIN\tAAAA\t7\tfd00::2\t::1\tfd00::/56", q("fd00::2", "a.example.com", "AAAA")),
            ("Q\texample.com\tIN\tSOA\t-1\t0.0.0.0", Some(Err(SkipReason::PipeSoaLookup))),
            ("Q\texample.com\tIN\tSOA\t-1\t0.0.0.0\t0.0.0.0", Some(Err(SkipReason::PipeSoaLookup))),
            ("Q\texample.com\tIN\tSOA\t-1\t0.0.0.0\t0.0.0.0\t0.0.0.0/0", Some(Err(SkipReason::PipeSoaLookup))),
            // A SOA question from a real client is a question like any other.
            ("Q\texample.com\tIN\tSOA\t-1\t127.0.0.1", q("127.0.0.1", "example.com", "SOA")),
            ("Q\texample.com\tIN\tSOA\t-1", Some(Err(SkipReason::Malformed))),
            ("Q\texample.com\tIN\tA\t-1\tsomewhere", Some(Err(SkipReason::Malformed))),
            ("Q\t\tIN\tA\t-1\t127.0.0.1", Some(Err(SkipReason::Malformed))),
            ("Q\ta\tIN\tA\t-1\t127.0.0.1\t127.0.0.1\t0.0.0.0/0\textra", Some(Err(SkipReason::Malformed))),
            ("HELO\t1", None),
            ("AXFR\t1", None),
            // What the fixture shows: Python's repr of the line, not the line.
            (r"'Q\texample.com\tIN\tSOA\t-1\t0.0.0.0'", None),
            ("Q example.com IN A -1 127.0.0.1", None),
        ];
        for (line, expected) in cases {
            assert_eq!(parse(line).map(|p| summary(&p)), expected.map(want), "{line:?}");
        }
    }
}
