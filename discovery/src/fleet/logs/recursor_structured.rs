//! The recursor's log with `structured-logging=yes`: its start-up, then per query a cache
//! hit, or a `msg="Question"` line and its `msg="Answer"`.

use std::io::Write;

use super::super::plan::Query;
use super::{answer_counts, Expected, LogGen, Millis};

impl LogGen<'_> {
    pub(super) fn recursor_structured_startup(&mut self, expect: &mut Option<&mut Vec<Expected>>) {
        for message in RECURSOR_STRUCTURED_STARTUP {
            self.tick(0, 300);
            self.begin_line();
            let ts = self.ts_ms();
            self.line.extend_from_slice(message.replace("{ts}", &ts).as_bytes());
            self.emit(None, expect);
        }
    }

    pub(super) fn recursor_structured_query(&mut self, q: &Query, expect: &mut Option<&mut Vec<Expected>>) {
        let (tid, port) = (self.decor.range(1, 3) as usize, self.port());
        let proto = if self.decor.chance_permille(15) { "tcp" } else { "udp" };
        self.begin_line();
        let ts = self.ts_ms();
        if self.decor.chance(30) {
            let _ = write!(
                self.line,
                "msg=\"Question answered from packet cache\" subsystem=\"in\" level=\"0\" \
                 prio=\"Notice\" tid=\"{tid}\" ts=\"{ts}\" proto=\"{proto}\" qname=\"{}\" \
                 qtype=\"{}\" remote=\"{c}:{port}\" source=\"{c}:{port}\" tag=\"0\"",
                self.qname,
                q.qtype,
                c = q.client,
            );
            return self.emit_query(q, expect);
        }
        self.mtid[tid] += 1;
        let mtid = self.mtid[tid];
        let ecs = if self.decor.chance_permille(10) { "10.9.8.0/24" } else { "" };
        let _ = write!(
            self.line,
            "msg=\"Question\" subsystem=\"syncres\" level=\"0\" prio=\"Info\" tid=\"{tid}\" \
             ts=\"{ts}\" ecs=\"{ecs}\" mtid=\"{mtid}\" proto=\"{proto}\" qname=\"{}\" \
             qtype=\"{}\" remote=\"{}:{port}\"",
            self.qname, q.qtype, q.client,
        );
        self.emit_query(q, expect);

        let (netw, tot, packets) = self.answer_times();
        self.tick(netw, tot);
        self.begin_line();
        let ts = self.ts_ms();
        let (answers, rcode) = answer_counts(q, &mut self.decor);
        let _ = write!(
            self.line,
            "msg=\"Answer\" subsystem=\"syncres\" level=\"0\" prio=\"Info\" tid=\"{tid}\" \
             ts=\"{ts}\" additional=\"1\" answers=\"{answers}\" dotout=\"0\" ecs=\"{ecs}\" \
             mtid=\"{mtid}\" netms=\"{}\" outqueries=\"{packets}\" proto=\"{proto}\" \
             qname=\"{}\" qtype=\"{}\" rcode=\"{rcode}\" rd=\"1\" remote=\"{}:{port}\" \
             tcpout=\"0\" throttled=\"0\" timeouts=\"0\" totms=\"{}\" \
             validationState=\"Indeterminate\"",
            Millis(netw, 6),
            self.qname,
            q.qtype,
            q.client,
            Millis(tot, 6),
        );
        self.emit(None, expect);
    }
}

const RECURSOR_STRUCTURED_STARTUP: [&str; 16] = [
    "PowerDNS Recursor 4.8.8 (C) 2001-2022 PowerDNS.COM BV",
    "Using 64-bits mode. Built using gcc 12.2.0.",
    "PowerDNS comes with ABSOLUTELY NO WARRANTY. This is free software, and you are welcome to redistribute it according to the terms of the GPL version 2.",
    r#"msg="Enabling IPv4 transport for outgoing queries" subsystem="config" level="0" prio="Notice" tid="0" ts="{ts}""#,
    r#"msg="NOT using IPv6 for outgoing queries - add an IPv6 address (like '::') to query-local-address to enable" subsystem="config" level="0" prio="Warning" tid="0" ts="{ts}""#,
    r#"msg="Setting access control" subsystem="config" level="0" prio="Info" tid="0" ts="{ts}" acl="allow-from" addresses="127.0.0.0/8""#,
    r#"msg="PowerDNS Recursor itself will distribute queries over threads" subsystem="config" level="0" prio="Notice" tid="0" ts="{ts}""#,
    r#"msg="Redirecting queries" subsystem="config" level="0" prio="Info" tid="0" ts="{ts}" addresses="127.0.0.1:5300" recursion="0" zone="example.com""#,
    r#"msg="Redirecting queries" subsystem="config" level="0" prio="Info" tid="0" ts="{ts}" addresses="127.0.0.1:5300" recursion="1" zone=".""#,
    r#"msg="Inserting rfc 1918 private space zones" subsystem="config" level="0" prio="Notice" tid="0" ts="{ts}""#,
    r#"msg="Aggressive NSEC/NSEC3 caching is enabled but DNSSEC validation is not set to 'validate', 'log-fail' or 'process', ignoring" subsystem="config" level="0" prio="Warning" tid="0" ts="{ts}""#,
    r#"msg="Listening for queries" subsystem="config" level="0" prio="Info" tid="0" ts="{ts}" address="127.0.0.1:53" proto="UDP""#,
    r#"msg="Enabled TCP data-ready filter for (slight) DoS protection" subsystem="config" level="0" prio="Info" tid="0" ts="{ts}""#,
    r#"msg="Listening for queries" subsystem="config" level="0" prio="Info" tid="0" ts="{ts}" address="127.0.0.1:53" protocol="TCP""#,
    r#"msg="Launching distributor threads" subsystem="config" level="0" prio="Notice" tid="0" ts="{ts}" count="1""#,
    r#"msg="Launching worker threads" subsystem="config" level="0" prio="Notice" tid="0" ts="{ts}" count="3""#,
];
