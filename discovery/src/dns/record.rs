//! What a PowerDNS log line says, once parsed: a query record, or why it is not one.

use std::borrow::Cow;
use std::net::IpAddr;

/// One DNS question from a log line. Borrowed from the line: parsing allocates only when
/// a quoted value has escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRecord<'a> {
    /// The client address, with port, `<-subnet` and `(…)` suffixes removed.
    pub client: IpAddr,
    /// The query name as logged: not yet lower-cased, trailing dot possibly present.
    pub qname: Cow<'a, str>,
    /// The query type as logged (`A`, `AAAA`, `ANY`, `SOA`, …).
    pub qtype: &'a str,
    /// When the query happened, in microseconds since the Unix epoch, if the line says.
    pub time_us: Option<i64>,
}

/// Why a line gave no query record. Counted, never fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// Start-up messages, answer lines and everything else that is not a question.
    NotAQuery,
    /// The old-style recursor's packet-cache hit line, which has no name.
    CacheHitWithoutName,
    /// A pipe-backend SOA look-up from 0.0.0.0 (the backend asking itself).
    PipeSoaLookup,
    /// Longer than the line limit (64 KiB).
    TooLong,
    /// Not valid UTF-8.
    InvalidUtf8,
    /// Looked like a query line but a field was malformed (bad address, say).
    Malformed,
}

impl SkipReason {
    pub const ALL: [SkipReason; 6] = [
        SkipReason::NotAQuery,
        SkipReason::CacheHitWithoutName,
        SkipReason::PipeSoaLookup,
        SkipReason::TooLong,
        SkipReason::InvalidUtf8,
        SkipReason::Malformed,
    ];

    /// Stable name used in counters, JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NotAQuery => "not-a-query",
            SkipReason::CacheHitWithoutName => "cache-hit-without-name",
            SkipReason::PipeSoaLookup => "pipe-soa-lookup",
            SkipReason::TooLong => "too-long",
            SkipReason::InvalidUtf8 => "invalid-utf8",
            SkipReason::Malformed => "malformed",
        }
    }
}

/// The result of parsing one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    Query(QueryRecord<'a>),
    Skipped(SkipReason),
}

/// What parsing needs to know besides the line: the time now (for year-less prefixes
/// and as a fallback) and the UTC offset the year-less prefixes were written in.
#[derive(Debug, Clone, Copy)]
pub struct ParseContext {
    /// Now, in microseconds since the Unix epoch.
    pub now_us: i64,
    /// Offset of year-less/zone-less prefix times from UTC, in seconds (0 = UTC).
    pub local_offset_secs: i32,
}

/// Lines longer than this are skipped and counted.
pub const MAX_LINE: usize = 64 * 1024;
