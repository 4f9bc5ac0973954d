//! Printing results: aligned tables for people, JSON for scripts.

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{ContentArrangement, Table};
use graph_store::format_utc;
use graph_store::model::{EdgeView, NodeView};
use serde::Serialize;

/// Pretty JSON on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY).set_content_arrangement(ContentArrangement::Disabled).set_header(header);
    t
}

pub fn nodes_table(nodes: &[NodeView]) {
    let mut t = table(&["name", "host", "dc", "role", "ips", "services", "serving"]);
    for n in nodes {
        t.add_row(vec![
            if n.retired { format!("{} (retired)", n.name) } else { n.name.clone() },
            n.host.clone(),
            n.dc.clone(),
            n.role.clone().unwrap_or_default(),
            n.ips.join(" "),
            n.services.join(" "),
            if n.serving { "yes" } else { "no" }.to_string(),
        ]);
    }
    println!("{t}");
    println!("{} nodes", nodes.len());
}

pub fn edges_table(edges: &[EdgeView]) {
    let mut t = table(&["src", "dst_ip", "dst", "services", "sources", "queries", "last_seen", "state"]);
    for e in edges {
        t.add_row(vec![
            if e.retired { format!("{} (retired)", e.src) } else { e.src.clone() },
            e.dst_ip.clone(),
            e.dst.clone().unwrap_or_else(|| "?".into()),
            e.services.join(" "),
            e.sources.join(" "),
            e.queries.to_string(),
            format_utc(&e.last_seen),
            e.state.to_string(),
        ]);
    }
    println!("{t}");
    println!("{} edges", edges.len());
}

pub fn dns_stats(s: &graph_store::dns::DnsStats) {
    println!("dns edges: {} ({} queries)", s.dns_edges, s.queries);
    let section = |title: &str, rows: &[graph_store::dns::CountBy]| {
        if rows.is_empty() {
            return;
        }
        let mut t = table(&[title, "count"]);
        for r in rows {
            t.add_row(vec![r.name.clone(), r.count.to_string()]);
        }
        println!("{t}");
    };
    section("no edge, because", &s.skipped);
    section("unknown client address", &s.unknown_clients);
    section("unknown consumer", &s.unknown_consumers);
    section("unknown service", &s.unknown_services);
    section("service without provider", &s.services_without_provider);
    if !s.sources.is_empty() {
        let mut t = table(&["log file", "read to byte", "lines", "updated"]);
        for src in &s.sources {
            t.add_row(vec![
                src.path.clone(),
                src.byte_offset.to_string(),
                src.lines.to_string(),
                format_utc(&src.updated_at),
            ]);
        }
        println!("{t}");
    }
}

/// A query result as a table; NULL shows as an empty cell.
pub fn rows_table(result: &graph_store::sql::QueryResult) {
    let names: Vec<&str> = result.columns.iter().map(String::as_str).collect();
    let mut t = table(&names);
    for row in &result.rows {
        t.add_row(row.iter().map(cell).collect::<Vec<_>>());
    }
    println!("{t}");
    println!("({} rows)", result.rows.len());
}

fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A query result as one JSON object per row.
pub fn rows_as_objects(result: &graph_store::sql::QueryResult) -> Vec<serde_json::Map<String, serde_json::Value>> {
    result.rows.iter().map(|row| result.columns.iter().cloned().zip(row.iter().cloned()).collect()).collect()
}

pub fn broken_table(edges: &[graph_store::query::BrokenEdge]) {
    let mut t = table(&["src", "dst", "dst_ip", "services", "state", "since", "loss", "consumers failing"]);
    for e in edges {
        t.add_row(vec![
            e.src.clone(),
            e.dst.clone().unwrap_or_else(|| "?".into()),
            e.dst_ip.clone(),
            e.services.join(" "),
            e.state.to_string(),
            format_utc(&e.since),
            e.loss_pct.map(|l| format!("{l:.0}%")).unwrap_or_default(),
            e.consumers_failing.to_string(),
        ]);
    }
    println!("{t}");
    println!("{} broken edges", edges.len());
}

/// One target's line of `edgewatch ping`, as printed and as JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PingRow {
    pub target: std::net::IpAddr,
    pub sent: u32,
    pub received: u32,
    pub loss_pct: f64,
    pub rtt_min_ms: Option<f64>,
    pub rtt_avg_ms: Option<f64>,
    pub rtt_max_ms: Option<f64>,
    /// Why packets were lost, when known ("no echo reply within 1s", "host unreachable …").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PingRow {
    pub fn new(target: std::net::IpAddr, o: probers::ProbeOutcome) -> Self {
        PingRow {
            target,
            sent: o.sent,
            received: o.received,
            loss_pct: o.loss_pct,
            rtt_min_ms: o.rtt_min_ms,
            rtt_avg_ms: o.rtt_avg_ms,
            rtt_max_ms: o.rtt_max_ms,
            error: o.error,
        }
    }

    /// The row's cells: target, sent, received, loss, min, avg, max (ms, 3 decimals as
    /// fping prints them; empty when nothing came back), and the cause of any loss.
    pub fn cells(&self) -> [String; 8] {
        let ms = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_default();
        [
            self.target.to_string(),
            self.sent.to_string(),
            self.received.to_string(),
            format!("{:.0}%", self.loss_pct),
            ms(self.rtt_min_ms),
            ms(self.rtt_avg_ms),
            ms(self.rtt_max_ms),
            self.error.clone().unwrap_or_default(),
        ]
    }
}

/// `edgewatch ping`'s table, one row per target in the order given.
pub fn ping_table(rows: &[PingRow]) {
    let mut t = table(&["target", "sent", "received", "loss", "min ms", "avg ms", "max ms", "why lost"]);
    for r in rows {
        t.add_row(r.cells().to_vec());
    }
    println!("{t}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_rows() {
        let ms = |v: &[u64]| v.iter().map(|&m| std::time::Duration::from_micros(m)).collect::<Vec<_>>();
        let answered = PingRow::new(
            "127.0.0.1".parse().unwrap(),
            probers::ProbeOutcome::from_samples(5, &ms(&[30, 45, 60, 45, 45]), None),
        );
        assert_eq!(answered.cells(), ["127.0.0.1", "5", "5", "0%", "0.030", "0.045", "0.060", ""].map(String::from));
        let some = PingRow::new(
            "::1".parse().unwrap(),
            probers::ProbeOutcome::from_samples(3, &ms(&[1500]), Some("no echo reply within 1s".into())),
        );
        assert_eq!(
            some.cells(),
            ["::1", "3", "1", "67%", "1.500", "1.500", "1.500", "no echo reply within 1s"].map(String::from)
        );
        let lost = PingRow::new("127.0.0.9".parse().unwrap(), probers::ProbeOutcome::from_samples(5, &[], None));
        assert_eq!(lost.cells(), ["127.0.0.9", "5", "0", "100%", "", "", "", ""].map(String::from));

        let json = serde_json::to_value(&answered).unwrap();
        let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["loss_pct", "received", "rtt_avg_ms", "rtt_max_ms", "rtt_min_ms", "sent", "target"]);
        assert_eq!(serde_json::to_value(&lost).unwrap()["rtt_avg_ms"], serde_json::Value::Null);
    }
}
