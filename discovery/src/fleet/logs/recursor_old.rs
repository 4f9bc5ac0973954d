//! The recursor's log with `structured-logging=no`: its start-up, then per query a
//! nameless cache hit, or a question and its answer.

use std::io::Write;

use super::super::plan::Query;
use super::{answer_counts, Expected, LogGen, Millis};

impl LogGen<'_> {
    pub(super) fn recursor_old_startup(&mut self, expect: &mut Option<&mut Vec<Expected>>) {
        for message in RECURSOR_OLD_STARTUP {
            self.begin_line();
            self.line.extend_from_slice(message.as_bytes());
            self.emit(None, expect);
        }
    }

    pub(super) fn recursor_old_query(&mut self, q: &Query, expect: &mut Option<&mut Vec<Expected>>) {
        let (tid, port) = (self.decor.range(1, 3) as usize, self.port());
        if self.decor.chance(30) {
            self.begin_line();
            let _ = write!(self.line, "{tid} question answered from packet cache tag=0 from {}:{port}", q.client);
            return self.emit(None, expect);
        }
        self.mtid[tid] += 1;
        let mtid = self.mtid[tid];
        self.begin_line();
        let tcp = if self.decor.chance_permille(15) { "TCP " } else { "" };
        let _ = write!(
            self.line,
            "{tid} [{mtid}/1] {tcp}question for '{}|{}' from {}:{port}",
            self.qname, q.qtype, q.client
        );
        if self.decor.chance_permille(10) {
            self.line.extend_from_slice(b" (ecs 10.9.8.0/24)");
        }
        self.emit_query(q, expect);

        let (netw, tot, packets) = self.answer_times();
        self.tick(netw, tot);
        self.begin_line();
        let (answers, rcode) = answer_counts(q, &mut self.decor);
        let _ = write!(
            self.line,
            "{tid} [{mtid}/1] answer to question '{}|{}': {answers} answers, 1 additional, \
             took {packets} packets, {} netw ms, {} tot ms, 0 throttled, 0 timeouts, \
             0/0 tcp/dot connections, rcode={rcode}",
            self.qname,
            q.qtype,
            Millis(netw, 3),
            Millis(tot, 3),
        );
        self.emit(None, expect);
    }
}

const RECURSOR_OLD_STARTUP: [&str; 18] = [
    "Asked to run with pdns-distributes-queries set but no distributor threads, raising to 1",
    "PowerDNS Recursor 4.8.8 (C) 2001-2022 PowerDNS.COM BV",
    "Using 64-bits mode. Built using gcc 12.2.0.",
    "PowerDNS comes with ABSOLUTELY NO WARRANTY. This is free software, and you are welcome to redistribute it according to the terms of the GPL version 2.",
    "Enabling IPv4 transport for outgoing queries",
    "NOT using IPv6 for outgoing queries - add an IPv6 address (like '::') to query-local-address to enable",
    "allow-from: 127.0.0.0/8",
    "PowerDNS Recursor itself will distribute queries over threads",
    "Redirecting queries for zone 'example.com' to: 127.0.0.1:5300",
    "Redirecting queries for zone '.' with recursion to: 127.0.0.1:5300",
    "Inserting rfc 1918 private space zones",
    "Aggressive NSEC/NSEC3 caching is enabled but DNSSEC validation is not set to 'validate', 'log-fail' or 'process', ignoring",
    "Listening for UDP queries on 127.0.0.1:53",
    "Enabled TCP data-ready filter for (slight) DoS protection",
    "Listening for TCP queries on 127.0.0.1:53",
    "Launching 1 distributor threads",
    "Launching 3 worker threads",
    "Enabled 'epoll' multiplexer",
];
