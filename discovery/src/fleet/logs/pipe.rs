//! The pipe backend's `Q` lines (ABI 2), as the coprocess reads them: its `HELO`s, then
//! the look-ups the server makes for each query.

use std::io::Write;
use std::net::IpAddr;

use super::super::plan::Query;
use super::{Expected, LogGen};

impl LogGen<'_> {
    pub(super) fn pipe_startup(&mut self, expect: &mut Option<&mut Vec<Expected>>) {
        for _ in 0..3 {
            self.line.extend_from_slice(b"HELO\t2");
            self.emit(None, expect);
        }
    }

    /// What a pipe coprocess reads for one query: the server's SOA look-ups from
    /// `0.0.0.0` for the name and each parent up to the zone, then (for names in the zone)
    /// the `ANY` look-ups from the client for the name and each parent below the zone,
    /// and the name once more.
    pub(super) fn pipe_query(&mut self, q: &Query, expect: &mut Option<&mut Vec<Expected>>) {
        let zone = self.fleet.zone.as_str();
        let qname = std::mem::take(&mut self.qname);
        let in_zone = qname == zone || qname.ends_with(&format!(".{zone}"));
        let suffixes = || std::iter::successors(Some(qname.as_str()), |s| s.split_once('.').map(|(_, r)| r));
        for name in suffixes() {
            let _ = write!(self.line, "Q\t{name}\tIN\tSOA\t-1\t0.0.0.0\t0.0.0.0");
            self.emit(None, expect);
            if name == zone {
                break;
            }
        }
        if in_zone {
            let qtype = if q.qtype == "SOA" { "SOA" } else { "ANY" };
            let below_zone = suffixes().take_while(|s| *s != zone);
            for name in below_zone.chain(std::iter::once(qname.as_str())) {
                let _ = write!(self.line, "Q\t{name}\tIN\t{qtype}\t-1\t{}\t127.0.0.1", q.client);
                let expected = expect.is_some().then(|| (IpAddr::V4(q.client), name.to_owned(), qtype));
                self.emit(expected, expect);
                if name == zone {
                    break;
                }
            }
        }
        self.qname = qname;
    }
}
