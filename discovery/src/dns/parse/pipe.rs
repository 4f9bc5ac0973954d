//! PowerDNS pipe-backend questions, as the coprocess reads them on stdin (TAB-separated):
//!
//! ```text
//! Q<TAB>qname<TAB>qclass<TAB>qtype<TAB>id<TAB>remote-ip                         (ABI 1)
//! Q<TAB>qname<TAB>qclass<TAB>qtype<TAB>id<TAB>remote-ip<TAB>local-ip            (ABI 2)
//! Q<TAB>qname<TAB>qclass<TAB>qtype<TAB>id<TAB>remote-ip<TAB>local-ip<TAB>subnet (ABI 3)
//! ```
//!
//! The server's own SOA look-ups come from `0.0.0.0` and are skipped.

use std::borrow::Cow;

use super::addr::parse_client;
use super::is_qtype;
use crate::dns::record::{Parsed, QueryRecord, SkipReason};

/// Parses a `Q` line; `None` if the message is not one.
pub(super) fn parse(message: &str) -> Option<Parsed<'_>> {
    let rest = message.strip_prefix("Q\t")?;
    Some(question(rest).unwrap_or(Parsed::Skipped(SkipReason::Malformed)))
}

fn question(rest: &str) -> Option<Parsed<'_>> {
    let mut fields = rest.split('\t');
    let (qname, _qclass, qtype, _id, remote) =
        (fields.next()?, fields.next()?, fields.next()?, fields.next()?, fields.next()?);
    // ABI 2 adds the local address, ABI 3 the EDNS subnet; nothing comes after.
    let _local = fields.next();
    let _subnet = fields.next();
    if fields.next().is_some() || qname.is_empty() || !is_qtype(qtype) {
        return None;
    }
    if remote == "0.0.0.0" && qtype.eq_ignore_ascii_case("SOA") {
        return Some(Parsed::Skipped(SkipReason::PipeSoaLookup));
    }
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
