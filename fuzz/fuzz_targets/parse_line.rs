//! Fuzzes the PowerDNS query-log line parser: any bytes, no panic, and every record it
//! returns is well-formed.

#![no_main]

use discovery::dns::parse::parse_line;
use discovery::dns::record::{ParseContext, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ctx = ParseContext {
        // 2026-11-22T02:00:00Z, one hour east of UTC.
        now_us: 1_795_312_800_000_000,
        local_offset_secs: 3600,
    };
    if let Parsed::Query(q) = parse_line(data, &ctx) {
        assert!(!q.qname.is_empty());
        assert!(!q.qtype.is_empty() && q.qtype.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
});
