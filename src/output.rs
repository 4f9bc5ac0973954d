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
