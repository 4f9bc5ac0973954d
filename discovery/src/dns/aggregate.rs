//! Aggregating query records in memory between writes, plus counters of what gave no
//! edge. Pure; [`super::ingest`] writes what [`Aggregator::take`] hands over.
//!
//! Records are counted per (consumer, service): one hash lookup per query, whatever the
//! number of provider addresses. They are spread over the provider addresses (the edges)
//! only when handed over, so memory is bounded by the distinct pairs, not the lines.

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use graph_store::dns::{DnsCounters, DnsEdgeBatch};
use rustc_hash::FxHashMap;

use super::parse::parse_line;
use super::record::{ParseContext, Parsed, SkipReason};
use super::resolve::{NoEdge, Resolution, Resolver};

/// Queries of one consumer for one service since the last take.
#[derive(Debug, Clone, Copy)]
struct PairAgg {
    queries: i64,
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
    /// Keyed by `consumer << 32 | service`.
    pairs: FxHashMap<u64, PairAgg>,
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

    /// Distinct (consumer, service) pairs held since the last take: what memory grows
    /// with.
    pub fn pending_pairs(&self) -> usize {
        self.pairs.len()
    }

    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Lines and records that gave no edge since this aggregator was made, by reason.
    pub fn skip_totals(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.skip_totals.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// Parses, resolves and aggregates one line (without its newline). A line without a
    /// time of its own counts at `ctx.now_us`.
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
                let key = (u64::from(resolved.consumer) << 32) | u64::from(resolved.service);
                let agg = self.pairs.entry(key).or_insert(PairAgg { queries: 0, first_us: at, last_us: at });
                agg.queries += 1;
                agg.first_us = agg.first_us.min(at);
                agg.last_us = agg.last_us.max(at);
            }
            Resolution::NoEdge(reason, value) => {
                self.count_skip(reason.as_str());
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

    /// Counts a reason a line gave no record.
    pub fn skip(&mut self, reason: SkipReason) {
        self.count_skip(reason.as_str());
    }

    fn count_skip(&mut self, reason: &'static str) {
        *self.skips.entry(reason).or_default() += 1;
        *self.skip_totals.entry(reason).or_default() += 1;
    }

    /// Counts a line that was skipped without being handed over (over-long lines).
    pub fn skip_line(&mut self, reason: SkipReason) {
        self.pending_lines += 1;
        self.totals.lines += 1;
        self.skip(reason);
    }

    /// Hands over what was aggregated, spread over the provider addresses as edge
    /// columns, and starts afresh. `resolver` must be the one the lines were added with.
    pub fn take(&mut self, resolver: &Resolver) -> (DnsEdgeBatch, DnsCounters) {
        struct EdgeAgg {
            queries: i64,
            services: Vec<u32>,
            first_us: i64,
            last_us: i64,
        }
        let mut edges: FxHashMap<(u32, IpAddr), EdgeAgg> = FxHashMap::default();
        for (key, pair) in self.pairs.drain() {
            let (consumer, service) = ((key >> 32) as u32, key as u32);
            for ip in resolver.targets(service, consumer) {
                let edge = edges.entry((consumer, *ip)).or_insert(EdgeAgg {
                    queries: 0,
                    services: Vec::new(),
                    first_us: pair.first_us,
                    last_us: pair.last_us,
                });
                edge.queries += pair.queries;
                edge.services.push(service);
                edge.first_us = edge.first_us.min(pair.first_us);
                edge.last_us = edge.last_us.max(pair.last_us);
            }
        }
        let mut rows: Vec<((u32, IpAddr), EdgeAgg)> = edges.into_iter().collect();
        // A stable order keeps concurrent writers from deadlocking on row locks.
        rows.sort_unstable_by_key(|((consumer, ip), _)| (resolver.node_id(*consumer), *ip));
        let mut batch = DnsEdgeBatch::default();
        for ((consumer, ip), edge) in rows {
            let mut services: Vec<&str> = edge.services.iter().map(|s| resolver.service_name(*s)).collect();
            services.sort_unstable();
            services.dedup();
            batch.src_ids.push(resolver.node_id(consumer));
            batch.dst_ips.push(ip.to_string());
            batch.services.push(services.join(","));
            batch.queries.push(edge.queries);
            batch.first_seen.push(time(edge.first_us));
            batch.last_seen.push(time(edge.last_us));
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
