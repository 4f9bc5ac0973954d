//! Aggregating query records in memory between writes: per edge (consumer, address) a
//! query count, the services and the time span; plus counters of what gave no edge.
//! Pure; [`super::ingest`] writes what [`Aggregator::take`] hands over.

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use graph_store::dns::{DnsCounters, DnsEdgeBatch};

use super::parse::parse_line;
use super::record::{ParseContext, Parsed, SkipReason};
use super::resolve::{NoEdge, Resolution, Resolver};

#[derive(Debug, Clone)]
struct EdgeAgg {
    queries: i64,
    services: Vec<u32>,
    first_us: i64,
    last_us: i64,
}

/// Line-level totals, for reports and progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub lines: u64,
    pub queries: u64,
    pub resolved: u64,
}

/// Everything learned from lines since the last [`Aggregator::take`].
#[derive(Debug, Default)]
pub struct Aggregator {
    edges: HashMap<(u32, IpAddr), EdgeAgg>,
    skips: HashMap<&'static str, i64>,
    unknowns: HashMap<(&'static str, String), i64>,
    pending_lines: u64,
    totals: Totals,
    skip_totals: HashMap<&'static str, u64>,
}

impl Aggregator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Lines added since the last take.
    pub fn pending_lines(&self) -> u64 {
        self.pending_lines
    }

    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Lines and records that gave no edge since this aggregator was made, by reason.
    pub fn skip_totals(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.skip_totals.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// Parses, resolves and aggregates one line (without its newline). `read_us` is the
    /// time used when the line carries none.
    pub fn add_line(&mut self, resolver: &mut Resolver, line: &[u8], ctx: &ParseContext) {
        self.pending_lines += 1;
        self.totals.lines += 1;
        let record = match parse_line(line, ctx) {
            Parsed::Query(record) => record,
            Parsed::Skipped(reason) => {
                self.skip(reason);
                return;
            }
        };
        self.totals.queries += 1;
        let at = record.time_us.unwrap_or(ctx.now_us);
        match resolver.resolve(&record) {
            Resolution::Edge(resolved) => {
                self.totals.resolved += 1;
                for ip in resolved.targets {
                    let agg = self.edges.entry((resolved.consumer, *ip)).or_insert(EdgeAgg {
                        queries: 0,
                        services: Vec::new(),
                        first_us: at,
                        last_us: at,
                    });
                    agg.queries += 1;
                    if !agg.services.contains(&resolved.service) {
                        agg.services.push(resolved.service);
                    }
                    agg.first_us = agg.first_us.min(at);
                    agg.last_us = agg.last_us.max(at);
                }
            }
            Resolution::NoEdge(reason, value) => {
                *self.skips.entry(reason.as_str()).or_default() += 1;
                *self.skip_totals.entry(reason.as_str()).or_default() += 1;
                let kind = match reason {
                    NoEdge::UnknownClient => Some("client"),
                    NoEdge::UnknownConsumer => Some("consumer"),
                    NoEdge::UnknownService => Some("service"),
                    NoEdge::NoProvider => Some("no-provider"),
                    _ => None,
                };
                if let (Some(kind), Some(value)) = (kind, value) {
                    *self.unknowns.entry((kind, value)).or_default() += 1;
                }
            }
        }
    }

    /// Counts a line skipped before parsing (too long, say).
    pub fn skip(&mut self, reason: SkipReason) {
        *self.skips.entry(reason.as_str()).or_default() += 1;
        *self.skip_totals.entry(reason.as_str()).or_default() += 1;
    }

    /// Counts a line that was skipped without being handed over (over-long lines).
    pub fn skip_line(&mut self, reason: SkipReason) {
        self.pending_lines += 1;
        self.totals.lines += 1;
        self.skip(reason);
    }

    /// Hands over what was aggregated, as batch columns, and starts afresh.
    pub fn take(&mut self, resolver: &Resolver) -> (DnsEdgeBatch, DnsCounters) {
        let mut batch = DnsEdgeBatch::default();
        let mut keys: Vec<((u32, IpAddr), EdgeAgg)> = self.edges.drain().collect();
        // A stable order keeps concurrent writers from deadlocking on row locks.
        keys.sort_by_key(|((consumer, ip), _)| (resolver.node_id(*consumer), *ip));
        for ((consumer, ip), agg) in keys {
            let mut services: Vec<&str> = agg.services.iter().map(|s| resolver.service_name(*s)).collect();
            services.sort_unstable();
            batch.src_ids.push(resolver.node_id(consumer));
            batch.dst_ips.push(ip.to_string());
            batch.services.push(services.join(","));
            batch.queries.push(agg.queries);
            batch.first_seen.push(time(agg.first_us));
            batch.last_seen.push(time(agg.last_us));
        }
        let mut counters = DnsCounters {
            skips: self.skips.drain().map(|(r, c)| (r.to_string(), c)).collect(),
            unknowns: self.unknowns.drain().map(|((k, v), c)| (k.to_string(), v, c)).collect(),
        };
        counters.skips.sort();
        counters.unknowns.sort();
        self.pending_lines = 0;
        (batch, counters)
    }
}

fn time(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_else(Utc::now)
}
