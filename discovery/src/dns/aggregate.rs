//! Aggregating query records in memory between writes, plus counters of what gave no
//! edge. Pure; [`super::ingest`] writes what [`Aggregator::take`] hands over.
//!
//! Records are counted per (consumer, service) and, within a pair, per UTC hour of their
//! time: one hash lookup per query, whatever the number of provider addresses. They are
//! spread over the provider addresses (the edges) only when handed over, so memory is
//! bounded by the (pair, hour) counts held, not the lines.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use graph_store::dns::{DnsCounters, DnsEdgeBatch};
use rustc_hash::FxHashMap;

use super::parse::parse_line;
use super::record::{ParseContext, Parsed, SkipReason};
use super::resolve::{NoEdge, Resolution, Resolver};

/// Microseconds in an hour: queries are counted per UTC hour, numbered from the epoch.
const HOUR_US: i64 = 3_600_000_000;

/// Queries of one consumer for one service since the last take.
#[derive(Debug, Clone)]
struct PairAgg {
    first_us: i64,
    last_us: i64,
    hours: HourCounts,
}

/// Queries per UTC hour (hours since the epoch), never empty. A batch mostly spans one or
/// two hours and a log runs forward, so the hour of the latest query is kept inline (one
/// comparison per query) and the others, few, in a small vector.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HourCounts {
    hour: i64,
    queries: i64,
    others: Vec<(i64, i64)>,
}

impl HourCounts {
    /// One query in `hour`.
    fn one(hour: i64) -> Self {
        HourCounts { hour, queries: 1, others: Vec::new() }
    }

    /// Adds one query in `hour`; true when the hour is new to these counts.
    fn add(&mut self, hour: i64) -> bool {
        if hour == self.hour {
            self.queries += 1;
            return false;
        }
        // The hour of this query becomes the inline one.
        let held = (self.hour, self.queries);
        let (new, counted) = match self.others.iter_mut().find(|(h, _)| *h == hour) {
            Some(slot) => (false, std::mem::replace(slot, held).1),
            None => {
                self.others.push(held);
                (true, 0)
            }
        };
        self.hour = hour;
        self.queries = counted + 1;
        new
    }

    /// The queries of every hour, in no particular order.
    fn iter(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        std::iter::once((self.hour, self.queries)).chain(self.others.iter().copied())
    }
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
    /// (pair, hour) counts in `pairs`.
    pair_hours: usize,
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

    /// (consumer, service, UTC hour) counts held since the last take: what memory and the
    /// size of the next batch grow with.
    pub fn pending_pair_hours(&self) -> usize {
        self.pair_hours
    }

    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Lines and records that gave no edge since this aggregator was made, by reason.
    pub fn skip_totals(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.skip_totals.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// Parses, resolves and aggregates one line (without its newline). A line without a
    /// time of its own counts at `ctx.now_us` (for the edges' times and its hour).
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
                let hour = at.div_euclid(HOUR_US);
                match self.pairs.entry(key) {
                    Entry::Occupied(mut slot) => {
                        let agg = slot.get_mut();
                        agg.first_us = agg.first_us.min(at);
                        agg.last_us = agg.last_us.max(at);
                        if agg.hours.add(hour) {
                            self.pair_hours += 1;
                        }
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(PairAgg { first_us: at, last_us: at, hours: HourCounts::one(hour) });
                        self.pair_hours += 1;
                    }
                }
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

    /// Counts a copytruncate after which lines may be lost: the copy lacks bytes the
    /// truncated file was seen to have (a writer wrote between copy and truncation), or no
    /// copy was found. An event, not a line.
    pub fn count_truncation_loss(&mut self) {
        self.count_skip("copytruncate-loss");
    }

    /// Is there anything to write (lines, or counted events)?
    pub fn has_pending(&self) -> bool {
        self.pending_lines > 0 || !self.skips.is_empty()
    }

    /// Counts a line that was skipped without being handed over (over-long lines).
    pub fn skip_line(&mut self, reason: SkipReason) {
        self.pending_lines += 1;
        self.totals.lines += 1;
        self.skip(reason);
    }

    /// Hands over what was aggregated, spread over the provider addresses as edge
    /// columns, and starts afresh. `resolver` must be the one the lines were added with.
    ///
    /// Every address of the pair's tier gets all the pair's queries (each query counts
    /// on every edge it may have used), and so do its hours: an edge's hourly rows add up
    /// to its queries.
    pub fn take(&mut self, resolver: &Resolver) -> (DnsEdgeBatch, DnsCounters) {
        struct EdgeAgg {
            queries: i64,
            services: Vec<u32>,
            first_us: i64,
            last_us: i64,
            /// (hour, queries), an hour possibly more than once (from several services).
            hours: Vec<(i64, i64)>,
        }
        let mut edges: FxHashMap<(u32, IpAddr), EdgeAgg> = FxHashMap::default();
        for (key, pair) in self.pairs.drain() {
            let (consumer, service) = ((key >> 32) as u32, key as u32);
            let queries: i64 = pair.hours.iter().map(|(_, q)| q).sum();
            for ip in resolver.targets(service, consumer) {
                let edge = edges.entry((consumer, *ip)).or_insert(EdgeAgg {
                    queries: 0,
                    services: Vec::new(),
                    first_us: pair.first_us,
                    last_us: pair.last_us,
                    hours: Vec::new(),
                });
                edge.queries += queries;
                edge.services.push(service);
                edge.first_us = edge.first_us.min(pair.first_us);
                edge.last_us = edge.last_us.max(pair.last_us);
                edge.hours.extend(pair.hours.iter());
            }
        }
        self.pair_hours = 0;
        let mut rows: Vec<((u32, IpAddr), EdgeAgg)> = edges.into_iter().collect();
        // A stable order keeps concurrent writers from deadlocking on row locks.
        rows.sort_unstable_by_key(|((consumer, ip), _)| (resolver.node_id(*consumer), *ip));
        let mut batch = DnsEdgeBatch::default();
        for ((consumer, ip), mut edge) in rows {
            let mut services: Vec<&str> = edge.services.iter().map(|s| resolver.service_name(*s)).collect();
            services.sort_unstable();
            services.dedup();
            let (src, ip) = (resolver.node_id(consumer), ip.to_string());
            edge.hours.sort_unstable_by_key(|(hour, _)| *hour);
            for group in edge.hours.chunk_by(|a, b| a.0 == b.0) {
                batch.hour_src_ids.push(src);
                batch.hour_dst_ips.push(ip.clone());
                batch.hours.push(time(group[0].0 * HOUR_US));
                batch.hour_queries.push(group.iter().map(|(_, q)| q).sum());
            }
            batch.src_ids.push(src);
            batch.dst_ips.push(ip);
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use graph_store::dns::{CmdbSnapshot, SnapshotNode};

    use super::*;

    fn utc_us(h: u32, m: u32) -> i64 {
        Utc.with_ymd_and_hms(2026, 11, 22, h, m, 0).unwrap().timestamp_micros()
    }

    #[test]
    fn hour_counts_keep_every_hour_and_say_which_are_new() {
        type Case = (&'static [i64], &'static [(i64, i64)], usize);
        // (hours added after the first, the counts by hour, how many were new)
        let cases: [Case; 5] = [
            (&[], &[(10, 1)], 0),
            (&[10, 10], &[(10, 3)], 0),
            (&[11, 11, 12], &[(10, 1), (11, 2), (12, 1)], 2),
            (&[9, 10, 9, 11, 10, 9], &[(9, 3), (10, 3), (11, 1)], 2),
            (&[-1, 10, -1], &[(-1, 2), (10, 2)], 1),
        ];
        for (added, want, new_hours) in cases {
            let mut counts = HourCounts::one(10);
            let new = added.iter().filter(|h| counts.add(**h)).count();
            let mut got: Vec<(i64, i64)> = counts.iter().collect();
            got.sort_unstable();
            assert_eq!((got.as_slice(), new), (want, new_hours), "after 10 then {added:?}");
            assert_eq!(counts.hour, *added.last().unwrap_or(&10), "the latest hour is inline");
        }
    }

    fn node(id: i64, name: &str, host: &str) -> SnapshotNode {
        SnapshotNode { id, name: name.into(), host: host.into(), dc: "dc1".into(), serving: true }
    }

    #[test]
    fn every_edge_of_a_pair_gets_its_queries_per_hour() {
        // fe1 asks for `db` (provided by db1a and db1b, both in its data center) and
        // `cache` (provided by db1a): fe1 -> db1a has both services' queries.
        let snapshot = CmdbSnapshot {
            nodes: vec![node(1, "fe1.h1", "h1"), node(2, "db1a.h2", "h2"), node(3, "db1b.h3", "h3")],
            addresses: vec![
                ("10.0.0.1".parse().unwrap(), 1),
                ("10.0.0.2".parse().unwrap(), 2),
                ("10.0.0.3".parse().unwrap(), 3),
            ],
            providers: vec![("cache".into(), 2), ("db".into(), 2), ("db".into(), 3)],
        };
        let mut resolver = Resolver::new(&snapshot, &["example.com".to_string()]);
        let ctx = ParseContext { now_us: utc_us(5, 30), local_offset_secs: 0 };
        let mut agg = Aggregator::new();
        let line = |time: Option<&str>, service: &str| {
            let query =
                format!("Remote 10.0.0.1 wants '{service}.example.com|A', do = 0, bufsize = 1232: packetcache MISS");
            match time {
                Some(t) => format!("2026-11-22T{t}:00.000000+00:00 vm pdns[1]: {query}"),
                None => query,
            }
        };
        let lines = [
            line(Some("01:10"), "db"),
            line(Some("01:50"), "db"),
            line(Some("02:05"), "db"),
            line(Some("00:59"), "db"),
            line(Some("01:20"), "db"),
            line(Some("01:40"), "cache"),
            // No time of its own: at ctx.now.
            line(None, "db"),
        ];
        for l in &lines {
            agg.add_line(&mut resolver, l.as_bytes(), &ctx);
        }
        assert_eq!(agg.totals().resolved, 7);
        // db: hours 0, 1, 2, 5; cache: hour 1.
        assert_eq!(agg.pending_pair_hours(), 5);

        let (batch, _) = agg.take(&resolver);
        assert_eq!(agg.pending_pair_hours(), 0);
        let hour = |h| time(utc_us(h, 0));
        let edges: Vec<(&str, i64)> =
            batch.dst_ips.iter().map(String::as_str).zip(batch.queries.iter().copied()).collect();
        assert_eq!(edges, [("10.0.0.2", 7), ("10.0.0.3", 6)]);
        let hourly: Vec<(i64, &str, DateTime<Utc>, i64)> = (0..batch.hours.len())
            .map(|i| (batch.hour_src_ids[i], batch.hour_dst_ips[i].as_str(), batch.hours[i], batch.hour_queries[i]))
            .collect();
        assert_eq!(
            hourly,
            [
                (1, "10.0.0.2", hour(0), 1),
                (1, "10.0.0.2", hour(1), 4),
                (1, "10.0.0.2", hour(2), 1),
                (1, "10.0.0.2", hour(5), 1),
                (1, "10.0.0.3", hour(0), 1),
                (1, "10.0.0.3", hour(1), 3),
                (1, "10.0.0.3", hour(2), 1),
                (1, "10.0.0.3", hour(5), 1),
            ]
        );
        // Per edge, the hours add up to the queries.
        for (ip, queries) in edges {
            let hours: i64 = hourly.iter().filter(|r| r.1 == ip).map(|r| r.3).sum();
            assert_eq!(hours, queries, "{ip}");
        }
        // Taken: nothing is left for the next batch.
        let (empty, _) = agg.take(&resolver);
        assert!(empty.is_empty() && empty.hours.is_empty());
    }
}
