//! The authoritative server's log (`log-dns-queries=yes`): its start-up, and one
//! `Remote … wants '…|…'` line per query, on the console, plain, or through syslog.

use std::io::Write;

use super::super::plan::Query;
use super::{Expected, Flavour, LogGen};

impl LogGen<'_> {
    pub(super) fn auth_startup(&mut self, expect: &mut Option<&mut Vec<Expected>>) {
        if self.flavour == Flavour::AuthSyslog {
            self.begin_line();
            self.line.truncate(self.line.len() - "pdns[1187]: ".len());
            self.line.extend_from_slice(
                b"rsyslogd: [origin software=\"rsyslogd\" swVersion=\"8.2302.0\" \
                  x-pid=\"1183\" x-info=\"https://www.rsyslog.com\"] start",
            );
            self.emit(None, expect);
        }
        for message in AUTH_STARTUP {
            self.tick(0, 400);
            self.begin_line();
            self.line.extend_from_slice(message.as_bytes());
            self.emit(None, expect);
        }
    }

    pub(super) fn auth_query(&mut self, q: &Query, expect: &mut Option<&mut Vec<Expected>>) {
        self.begin_line();
        let rng = &mut self.decor;
        let tcp = if rng.chance_permille(15) { "TCP " } else { "" };
        let _ = write!(self.line, "{tcp}Remote {}", q.client);
        if rng.chance_permille(10) {
            let _ = write!(self.line, "<-10.{}.{}.0/24", rng.below(256), rng.below(256));
        }
        let dnssec_ok = u8::from(rng.chance(5));
        let bufsize = match rng.below(100) {
            0..3 => "512",
            3..8 => "4096",
            8..9 => "1232 (4096)",
            _ => "1232",
        };
        let cache = if rng.chance(65) { "HIT" } else { "MISS" };
        let _ = write!(
            self.line,
            " wants '{}|{}', do = {dnssec_ok}, bufsize = {bufsize}: packetcache {cache}",
            self.qname, q.qtype
        );
        self.emit_query(q, expect);
    }
}

const AUTH_STARTUP: [&str; 13] = [
    "Loading '/usr/lib/x86_64-linux-gnu/pdns/libbindbackend.so'",
    "This is a standalone pdns",
    "Listening on controlsocket in '/var/run/pdns/pdns.controlsocket'",
    "UDP server bound to 0.0.0.0:53",
    "TCP server bound to 0.0.0.0:53",
    "PowerDNS Authoritative Server 4.7.3 (C) 2001-2022 PowerDNS.COM BV",
    "Using 64-bits mode. Built using gcc 12.2.0.",
    "PowerDNS comes with ABSOLUTELY NO WARRANTY. This is free software, and you are welcome to redistribute it according to the terms of the GPL version 2.",
    "[bindbackend] Parsing 1 domain(s), will report when done",
    "[bindbackend] Done parsing domains, 0 rejected, 1 new, 0 removed",
    "Creating backend connection for TCP",
    "About to create 3 backend threads for UDP",
    "Done launching threads, ready to distribute questions",
];
