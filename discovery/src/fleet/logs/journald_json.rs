//! The recursor's log through the systemd journal, as `journalctl -o json` prints it: its
//! start-up, then per query a cache hit, or a `Question` entry and its `Answer`.

use std::io::Write;

use super::super::plan::Query;
use super::{Expected, LogGen};

impl LogGen<'_> {
    pub(super) fn journald_startup(&mut self, expect: &mut Option<&mut Vec<Expected>>) {
        for (priority, subsystem, message) in JOURNALD_STARTUP {
            self.tick(0, 300);
            let (rt, ts) = (self.now_us.to_string(), self.ts_ms());
            let _ = write!(
                self.line,
                "{{\"_TRANSPORT\": \"journal\", \"PRIORITY\": \"{priority}\", \
                 \"SUBSYSTEM\": \"{subsystem}\", \"__REALTIME_TIMESTAMP\": \"{rt}\", \
                 \"SYSLOG_IDENTIFIER\": \"pdns_recursor\", \"_HOSTNAME\": \"ns1\", \
                 \"MESSAGE\": \"{message}\", \"TIMESTAMP\": \"{ts}\", \"TID\": \"0\", \
                 \"LEVEL\": \"0\", \"_PID\": \"1211\"}}"
            );
            self.emit(None, expect);
        }
    }

    pub(super) fn journald_query(&mut self, q: &Query, expect: &mut Option<&mut Vec<Expected>>) {
        let (tid, port) = (self.decor.range(1, 3) as usize, self.port());
        let (rt, ts) = (self.now_us, self.ts_ms());
        if self.decor.chance(30) {
            let _ = write!(
                self.line,
                "{{\"_HOSTNAME\": \"ns1\", \"_TRANSPORT\": \"journal\", \"SOURCE\": \"{c}:{port}\", \
                 \"_PID\": \"1211\", \"SUBSYSTEM\": \"in\", \
                 \"MESSAGE\": \"Question answered from packet cache\", \"LEVEL\": \"0\", \
                 \"PRIORITY\": \"5\", \"QNAME\": \"{}\", \"QTYPE\": \"{}\", \"TID\": \"{tid}\", \
                 \"__REALTIME_TIMESTAMP\": \"{rt}\", \"PROTO\": \"udp\", \
                 \"REMOTE\": \"{c}:{port}\", \"TIMESTAMP\": \"{ts}\", \
                 \"SYSLOG_IDENTIFIER\": \"pdns_recursor\"}}",
                self.qname,
                q.qtype,
                c = q.client,
            );
            return self.emit_query(q, expect);
        }
        self.mtid[tid] += 1;
        let mtid = self.mtid[tid];
        let _ = write!(
            self.line,
            "{{\"LEVEL\": \"0\", \"PROTO\": \"udp\", \"QTYPE\": \"{qtype}\", \
             \"__REALTIME_TIMESTAMP\": \"{rt}\", \"PRIORITY\": \"6\", \"SUBSYSTEM\": \"syncres\", \
             \"QNAME\": \"{qname}\", \"MESSAGE\": \"Question\", \"MTID\": \"{mtid}\", \
             \"_PID\": \"1211\", \"SYSLOG_IDENTIFIER\": \"pdns_recursor\", \
             \"_HOSTNAME\": \"ns1\", \"ECS\": \"\", \"REMOTE\": \"{c}:{port}\", \
             \"TIMESTAMP\": \"{ts}\", \"TID\": \"{tid}\", \"_TRANSPORT\": \"journal\"}}",
            qtype = q.qtype,
            qname = self.qname,
            c = q.client,
        );
        self.emit_query(q, expect);

        let (netw, tot, _) = self.answer_times();
        self.tick(netw, tot);
        let (rt, ts) = (self.now_us, self.ts_ms());
        let _ = write!(
            self.line,
            "{{\"_HOSTNAME\": \"ns1\", \"ECS\": \"\", \"TID\": \"{tid}\", \"PRIORITY\": \"6\", \
             \"__REALTIME_TIMESTAMP\": \"{rt}\", \"SYSLOG_IDENTIFIER\": \"pdns_recursor\", \
             \"QNAME\": \"{qname}\", \"LEVEL\": \"0\", \"_PID\": \"1211\", \
             \"_TRANSPORT\": \"journal\", \"PROTO\": \"udp\", \"MESSAGE\": \"Answer\", \
             \"REMOTE\": \"{c}:{port}\", \"SUBSYSTEM\": \"syncres\", \"TIMESTAMP\": \"{ts}\", \
             \"QTYPE\": \"{qtype}\", \"MTID\": \"{mtid}\"}}",
            qtype = q.qtype,
            qname = self.qname,
            c = q.client,
        );
        self.emit(None, expect);
    }
}

const JOURNALD_STARTUP: [(u8, &str, &str); 4] = [
    (5, "config", "Enabling IPv4 transport for outgoing queries"),
    (6, "config", "Setting access control"),
    (6, "config", "Listening for queries"),
    (5, "config", "Launching worker threads"),
];
