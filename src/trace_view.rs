//! One trace as `edgewatch trace` shows it: per hop the addresses with their owners (from
//! `[owners]`, and AS when imported), loss and RTT figures, as a table like `mtr --report` or as JSON. Pure: a
//! [`Run`] in, a [`TraceView`] out.

use std::net::IpAddr;

use comfy_table::Table;
use graph_store::paths::Run;
use serde::Serialize;

use crate::labels::{AddrView, Labels};
use crate::output;

/// A trace for people and scripts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceView {
    pub dest: IpAddr,
    /// `icmp`, `udp:PORT` or `tcp:PORT`.
    pub protocol: String,
    #[serde(serialize_with = "graph_store::serialize_utc")]
    pub at: chrono::DateTime<chrono::Utc>,
    /// The destination answered (it is the last hop).
    pub reached: bool,
    pub hops: Vec<HopView>,
}

/// One TTL of the trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HopView {
    pub ttl: u8,
    /// Who answered at this TTL (none: a silent hop, `???` in the table).
    pub addrs: Vec<AddrView>,
    pub loss_pct: f32,
    pub sent: u32,
    pub received: u32,
    pub rtt_avg_ms: Option<f32>,
    pub rtt_best_ms: Option<f32>,
    pub rtt_worst_ms: Option<f32>,
    pub rtt_stddev_ms: Option<f32>,
    pub jitter_ms: Option<f32>,
}

impl TraceView {
    pub fn new(dest: IpAddr, protocol: String, run: &Run, labels: &Labels) -> TraceView {
        let hops = run
            .hops
            .iter()
            .map(|h| HopView {
                ttl: h.ttl,
                addrs: labels.addrs(&h.addrs),
                loss_pct: h.loss_pct(),
                sent: h.sent,
                received: h.received,
                rtt_avg_ms: h.rtt_avg_ms,
                rtt_best_ms: h.rtt_best_ms,
                rtt_worst_ms: h.rtt_worst_ms,
                rtt_stddev_ms: h.rtt_stddev_ms,
                jitter_ms: h.jitter_ms,
            })
            .collect();
        TraceView { dest, protocol, at: run.at, reached: run.reached, hops }
    }

    /// `mtr --report`'s columns, plus the owner and jitter.
    pub fn table(&self) -> Table {
        let mut t =
            output::table(&["hop", "address", "owner", "loss%", "sent", "avg", "best", "worst", "stdev", "jitter"]);
        let ms = |v: Option<f32>| v.map(|v| format!("{v:.1}")).unwrap_or_default();
        for h in &self.hops {
            let (addrs, owners) = if h.addrs.is_empty() {
                ("???".to_string(), String::new())
            } else {
                let owners: Vec<String> = h.addrs.iter().map(AddrView::whose).collect();
                let addrs: Vec<String> = h.addrs.iter().map(|a| a.ip.to_string()).collect();
                (addrs.join(" "), owners.join(" "))
            };
            t.add_row(vec![
                format!("{}.", h.ttl),
                addrs,
                owners,
                format!("{:.1}%", h.loss_pct),
                h.sent.to_string(),
                ms(h.rtt_avg_ms),
                ms(h.rtt_best_ms),
                ms(h.rtt_worst_ms),
                ms(h.rtt_stddev_ms),
                ms(h.jitter_ms),
            ]);
        }
        t
    }

    /// One line under the table: reached or not, and where the path ends.
    pub fn summary(&self) -> String {
        let last = self.hops.iter().rev().find(|h| !h.addrs.is_empty());
        match (self.reached, last) {
            (true, _) => format!("{} reached in {} hop(s)", self.dest, self.hops.len()),
            (false, Some(h)) => format!(
                "{} not reached: the last hop that answers is {} at TTL {}",
                self.dest,
                h.addrs.iter().map(|a| a.ip.to_string()).collect::<Vec<_>>().join(" "),
                h.ttl
            ),
            (false, None) => format!("{} not reached: no hop answered", self.dest),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use graph_store::paths::{Hop, Owners};

    use super::*;

    fn hop(ttl: u8, addrs: &[&str], received: u32) -> Hop {
        let rtt = (received > 0).then_some(1.5);
        Hop {
            ttl,
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            sent: 3,
            received,
            rtt_best_ms: rtt,
            rtt_avg_ms: rtt,
            rtt_worst_ms: rtt,
            rtt_stddev_ms: rtt.map(|_| 0.0),
            jitter_ms: rtt.map(|_| 0.0),
        }
    }

    fn run(hops: Vec<Hop>, reached: bool) -> Run {
        Run { at: Utc.with_ymd_and_hms(2026, 12, 4, 16, 15, 0).unwrap(), hops, reached }
    }

    fn owners() -> Labels {
        Labels::new(Owners::new([("10.0.0.0/8", "ours"), ("52.93.0.0/16", "AWS")]).unwrap(), Default::default())
    }

    #[test]
    fn hops_carry_their_owners_and_silent_hops_show_as_question_marks() {
        let r = run(vec![hop(1, &["10.0.0.1"], 3), hop(2, &[], 0), hop(3, &["52.93.1.1", "52.93.2.1"], 2)], true);
        let v = TraceView::new("52.93.2.1".parse().unwrap(), "icmp".into(), &r, &owners());
        assert_eq!(v.hops[0].addrs[0].owner.as_deref(), Some("ours"));
        assert!(v.hops[1].addrs.is_empty());
        assert_eq!(v.hops[1].loss_pct, 100.0);
        let text = v.table().to_string();
        let rows: Vec<&str> = text.lines().filter(|l| l.contains('.') && !l.contains("hop")).collect();
        assert!(rows[0].contains("10.0.0.1") && rows[0].contains("ours") && rows[0].contains("0.0%"), "{text}");
        assert!(rows[1].contains("???") && rows[1].contains("100.0%"), "{text}");
        assert!(rows[2].contains("52.93.1.1 52.93.2.1") && rows[2].contains("AWS AWS"), "{text}");
        assert!(rows[2].contains("33.3%"), "{text}");
        assert_eq!(v.summary(), "52.93.2.1 reached in 3 hop(s)");
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["hops"][0]["addrs"][0], serde_json::json!({"ip": "10.0.0.1", "owner": "ours"}));
        assert_eq!(json["hops"][2]["addrs"][1], serde_json::json!({"ip": "52.93.2.1", "owner": "AWS"}));
        assert_eq!(json["at"], "2026-12-04T16:15:00Z");
    }

    #[test]
    fn a_path_that_stops_names_its_last_answering_hop() {
        let r = run(vec![hop(1, &["10.0.0.1"], 3), hop(2, &["192.0.2.1"], 3), hop(3, &[], 0)], false);
        let v = TraceView::new("198.51.100.7".parse().unwrap(), "icmp".into(), &r, &owners());
        assert_eq!(v.summary(), "198.51.100.7 not reached: the last hop that answers is 192.0.2.1 at TTL 2");
        assert_eq!(v.hops[1].addrs[0].owner, None);
        assert!(serde_json::to_value(&v).unwrap()["hops"][1]["addrs"][0].get("owner").is_none());
        let none = TraceView::new("198.51.100.7".parse().unwrap(), "icmp".into(), &run(vec![], false), &owners());
        assert_eq!(none.summary(), "198.51.100.7 not reached: no hop answered");
    }
}
