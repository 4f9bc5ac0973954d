//! Six hours of one pair's runs in one row of `trace_blocks`, and each hour's per-TTL
//! rollup in one row of `trace_hourly`. Runs land in `trace_runs` one row each; once their
//! six hours (00–06, 06–12, 12–18, 18–24 UTC) are over, compaction
//! (`paths::store::compact_runs`) packs each pair's into a block: the per-row overhead of
//! ~100 bytes a run (row header, index entry, page) becomes about one, and a block of a
//! cross-DC pair (180 runs, ~13 kB) is big enough to be compressed and stored in full
//! TOAST pages. Pure, no I/O.
//!
//! # A block (version 1)
//!
//! A version byte (1); the distinct path ids of the block as a varint count and varints;
//! the number of runs as a varint; then per run, oldest first: its time as a varint of
//! microseconds after the previous run's (the first: after the block's start), the index
//! of its path in the list, and its figures (`paths::packed`, version 2, without the
//! version byte) as a varint length and the bytes.
//!
//! # An hourly rollup (version 1)
//!
//! A version byte (1) and the number of TTLs as a varint, then per TTL from 1: runs that
//! reached it, probes sent, answers, and the least, average and greatest RTT, each RTT a
//! varint of 0 for none or 1 + tens of microseconds.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Timelike, Utc};

use super::algo::Run;
use super::compare::{max_opt, min_opt};
use super::packed::{self, put_varint, Reader, UnpackError};

const BLOCK_VERSION: u8 = 1;
const ROLLUP_VERSION: u8 = 1;

/// One run as a block keeps it: when, on which path, its packed figures (version 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRun {
    pub at: DateTime<Utc>,
    pub path_id: i64,
    pub figures: Vec<u8>,
}

/// Hours a block spans.
pub const BLOCK_HOURS: u32 = 6;

/// The start of the block `at` falls in.
pub fn block_of(at: DateTime<Utc>) -> DateTime<Utc> {
    let hour = crate::rollup::hour_of(at);
    hour - Duration::hours(i64::from(hour.hour() % BLOCK_HOURS))
}

/// The hour `at` falls in (a rollup's).
pub fn hour_of(at: DateTime<Utc>) -> DateTime<Utc> {
    crate::rollup::hour_of(at)
}

/// `runs` merged: ordered by time, one run per time (the first given wins: pass what a
/// block already holds first, so a resent run changes nothing).
pub fn merge(runs: impl IntoIterator<Item = BlockRun>) -> Vec<BlockRun> {
    let mut by_time: BTreeMap<DateTime<Utc>, BlockRun> = BTreeMap::new();
    for run in runs {
        by_time.entry(run.at).or_insert(run);
    }
    by_time.into_values().collect()
}

/// What a block could not be made of, or read back from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("a run at {at} is not in the block starting {start}")]
    OutsideBlock { at: DateTime<Utc>, start: DateTime<Utc> },
    #[error("runs of a block must be in time order, one per time ({at} out of order)")]
    Unordered { at: DateTime<Utc> },
    #[error("a run's figures are not of version {}", packed::VERSION)]
    Figures,
    #[error("trace block of version {0}; this edgewatch reads version {BLOCK_VERSION}")]
    Version(u8),
    #[error("trace block is damaged: {0}")]
    Damaged(UnpackError),
    #[error("trace block names path index {0}, beyond its list")]
    PathIndex(u64),
    #[error("a run names trace path {0}, which is not stored")]
    MissingPath(i64),
}

impl From<UnpackError> for BlockError {
    fn from(e: UnpackError) -> Self {
        BlockError::Damaged(e)
    }
}

/// The block of `runs` (in time order, one per time, all in the block from `start`).
pub fn encode(start: DateTime<Utc>, runs: &[BlockRun]) -> Result<Vec<u8>, BlockError> {
    let mut paths: Vec<i64> = runs.iter().map(|r| r.path_id).collect();
    paths.sort_unstable();
    paths.dedup();
    let mut out = Vec::with_capacity(8 + runs.iter().map(|r| r.figures.len() + 6).sum::<usize>());
    out.push(BLOCK_VERSION);
    put_varint(&mut out, paths.len() as u64);
    for id in &paths {
        put_varint(&mut out, *id as u64);
    }
    put_varint(&mut out, runs.len() as u64);
    let mut last = start;
    for (i, run) in runs.iter().enumerate() {
        if block_of(run.at) != start {
            return Err(BlockError::OutsideBlock { at: run.at, start });
        }
        if i > 0 && run.at <= last {
            return Err(BlockError::Unordered { at: run.at });
        }
        let Some((&packed::VERSION, figures)) = run.figures.split_first() else { return Err(BlockError::Figures) };
        put_varint(&mut out, (run.at - last).num_microseconds().unwrap_or(0) as u64);
        last = run.at;
        put_varint(&mut out, paths.binary_search(&run.path_id).unwrap_or(0) as u64);
        put_varint(&mut out, figures.len() as u64);
        out.extend_from_slice(figures);
    }
    Ok(out)
}

/// The runs of a block made by [`encode`] for the block from `start`.
pub fn decode(start: DateTime<Utc>, bytes: &[u8]) -> Result<Vec<BlockRun>, BlockError> {
    let mut r = Reader(bytes);
    match r.byte(0)? {
        BLOCK_VERSION => {}
        other => return Err(BlockError::Version(other)),
    }
    let paths = (0..r.varint(0)?).map(|_| r.varint(0).map(|id| id as i64)).collect::<Result<Vec<_>, _>>()?;
    let n = r.varint(0)?;
    let mut runs = Vec::with_capacity(n.min(4096) as usize);
    let mut at = start;
    for i in 0..n as usize {
        at += Duration::microseconds(r.varint(i + 1)? as i64);
        let index = r.varint(i + 1)?;
        let path_id = *paths.get(index as usize).ok_or(BlockError::PathIndex(index))?;
        let len = r.varint(i + 1)? as usize;
        let mut figures = Vec::with_capacity(len + 1);
        figures.push(packed::VERSION);
        figures.extend_from_slice(r.take(len, i + 1)?);
        runs.push(BlockRun { at, path_id, figures });
    }
    r.end()?;
    Ok(runs)
}

/// One TTL of an hour's rollup.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TtlRollup {
    /// Runs that reached this TTL.
    pub runs: u32,
    pub sent: u32,
    pub received: u32,
    pub rtt_min_ms: Option<f32>,
    pub rtt_avg_ms: Option<f32>,
    pub rtt_max_ms: Option<f32>,
}

/// Per TTL from 1, the hour of `runs` summed: probes, answers, the least and greatest RTT,
/// and the average over every answer.
pub fn rollup(runs: &[Run]) -> Vec<TtlRollup> {
    let ttls = runs.iter().flat_map(|r| r.hops.iter().map(|h| h.ttl)).max().unwrap_or(0) as usize;
    let mut sums: Vec<(TtlRollup, f64)> = vec![(TtlRollup::default(), 0.0); ttls];
    for hop in runs.iter().flat_map(|r| &r.hops).filter(|h| h.ttl >= 1) {
        let (t, sum) = &mut sums[usize::from(hop.ttl) - 1];
        t.runs += 1;
        t.sent += hop.sent;
        t.received += hop.received;
        t.rtt_min_ms = min_opt(t.rtt_min_ms, hop.rtt_best_ms);
        t.rtt_max_ms = max_opt(t.rtt_max_ms, hop.rtt_worst_ms);
        if let Some(avg) = hop.rtt_avg_ms {
            *sum += f64::from(avg) * f64::from(hop.received);
        }
    }
    sums.into_iter()
        .map(|(mut t, sum)| {
            t.rtt_avg_ms = (t.received > 0 && t.rtt_min_ms.is_some()).then(|| (sum / f64::from(t.received)) as f32);
            t
        })
        .collect()
}

/// A rollup as `trace_hourly.data`.
pub fn encode_rollup(ttls: &[TtlRollup]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + ttls.len() * 10);
    out.push(ROLLUP_VERSION);
    put_varint(&mut out, ttls.len() as u64);
    let rtt = |v: Option<f32>| v.map_or(0, |ms| 1 + (f64::from(ms.max(0.0)) * 100.0).round() as u64);
    for t in ttls {
        for v in [u64::from(t.runs), u64::from(t.sent), u64::from(t.received)] {
            put_varint(&mut out, v);
        }
        for v in [t.rtt_min_ms, t.rtt_avg_ms, t.rtt_max_ms] {
            put_varint(&mut out, rtt(v));
        }
    }
    out
}

/// A rollup read back from `trace_hourly.data`.
pub fn decode_rollup(bytes: &[u8]) -> Result<Vec<TtlRollup>, BlockError> {
    let mut r = Reader(bytes);
    match r.byte(0)? {
        ROLLUP_VERSION => {}
        other => return Err(BlockError::Version(other)),
    }
    let n = r.varint(0)? as usize;
    let mut ttls = Vec::with_capacity(n.min(255));
    for i in 1..=n {
        let mut count = || r.varint(i).map(|v| u32::try_from(v).unwrap_or(u32::MAX));
        let (runs, sent, received) = (count()?, count()?, count()?);
        let mut rtt = || r.varint(i).map(|v| v.checked_sub(1).map(|u| (u as f64 / 100.0) as f32));
        let (rtt_min_ms, rtt_avg_ms, rtt_max_ms) = (rtt()?, rtt()?, rtt()?);
        ttls.push(TtlRollup { runs, sent, received, rtt_min_ms, rtt_avg_ms, rtt_max_ms });
    }
    r.end()?;
    Ok(ttls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::algo::Hop;
    use crate::paths::packed::StoredPath;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn hop(ttl: u8, addr: &str, rtt: Option<f32>) -> Hop {
        Hop {
            ttl,
            addrs: if rtt.is_some() { vec![addr.parse().unwrap()] } else { Vec::new() },
            sent: 3,
            received: if rtt.is_some() { 3 } else { 0 },
            rtt_best_ms: rtt.map(|r| r - 0.5),
            rtt_avg_ms: rtt,
            rtt_worst_ms: rtt.map(|r| r + 1.0),
            rtt_stddev_ms: rtt.map(|_| 0.6),
            jitter_ms: rtt.map(|_| 0.4),
        }
    }

    fn run(t: &str, rtts: &[Option<f32>]) -> Run {
        Run {
            at: at(t),
            hops: rtts.iter().enumerate().map(|(i, r)| hop(i as u8 + 1, "10.0.0.1", *r)).collect(),
            reached: true,
        }
    }

    fn block_run(r: &Run, path_id: i64) -> BlockRun {
        BlockRun { at: r.at, path_id, figures: packed::pack(r) }
    }

    #[test]
    fn six_hours_of_runs_come_back_whole() {
        let hour = at("2026-12-05T12:00:00Z");
        assert_eq!(block_of(at("2026-12-05T16:59:59Z")), hour);
        assert_eq!(block_of(at("2026-12-05T18:00:00Z")), at("2026-12-05T18:00:00Z"));
        assert_eq!(block_of(at("2026-12-05T05:59:59.999999Z")), at("2026-12-05T00:00:00Z"));
        let runs = [
            run("2026-12-05T12:00:00.000001Z", &[Some(1.0), None, Some(20.0)]),
            run("2026-12-05T12:02:00.123456Z", &[Some(1.1), Some(9.0), Some(21.0)]),
            run("2026-12-05T17:59:59.999999Z", &[Some(1.2), None, Some(19.5)]),
        ];
        let stored = vec![block_run(&runs[0], 7), block_run(&runs[1], 300_000), block_run(&runs[2], 7)];
        let bytes = encode(hour, &stored).unwrap();
        assert_eq!(decode(hour, &bytes).unwrap(), stored);
        // Per run: up to 5 bytes of time, 1 of path, 1 of length; 2 path ids.
        let figures: usize = stored.iter().map(|r| r.figures.len() - 1).sum();
        assert!(bytes.len() <= 1 + 1 + 1 + 3 + 1 + figures + 3 * 7, "{} bytes", bytes.len());
        let path = StoredPath::of(&runs[1]);
        let back = packed::unpack(stored[1].at, &path, &decode(hour, &bytes).unwrap()[1].figures).unwrap();
        assert_eq!(back.hops[1].received, 3);
    }

    #[test]
    fn a_block_refuses_runs_it_cannot_keep() {
        let hour = at("2026-12-05T12:00:00Z");
        let late = block_run(&run("2026-12-05T18:00:00Z", &[Some(1.0)]), 1);
        assert!(matches!(encode(hour, &[late]), Err(BlockError::OutsideBlock { .. })));
        let a = block_run(&run("2026-12-05T12:10:00Z", &[Some(1.0)]), 1);
        assert!(matches!(encode(hour, &[a.clone(), a.clone()]), Err(BlockError::Unordered { .. })));
        let v1 = BlockRun { figures: vec![1, 3, 3], ..a.clone() };
        assert_eq!(encode(hour, &[v1]), Err(BlockError::Figures));
        let bytes = encode(hour, &[a]).unwrap();
        assert!(matches!(decode(hour, &bytes[..bytes.len() - 1]), Err(BlockError::Damaged(_))));
        assert_eq!(decode(hour, &[9]), Err(BlockError::Version(9)));
        let mut bad_index = bytes.clone();
        // Version, 1 path, id 1, 1 run, 10 minutes in µs (5 bytes): then the path index.
        assert_eq!(bad_index[9], 0);
        bad_index[9] = 5;
        assert_eq!(decode(hour, &bad_index), Err(BlockError::PathIndex(5)));
    }

    #[test]
    fn merging_keeps_one_run_per_time_the_first_given() {
        let a = block_run(&run("2026-12-05T16:10:00Z", &[Some(1.0)]), 1);
        let b = block_run(&run("2026-12-05T16:04:00Z", &[Some(2.0)]), 2);
        let resent = BlockRun { path_id: 9, ..a.clone() };
        let merged = merge([a.clone(), b.clone(), resent]);
        assert_eq!(merged, [b, a]);
    }

    #[test]
    fn the_rollup_sums_each_ttl_over_the_hour() {
        let runs = [
            run("2026-12-05T16:00:00Z", &[Some(1.0), None, Some(20.0)]),
            run("2026-12-05T16:02:00Z", &[Some(3.0), Some(9.0)]),
        ];
        let ttls = rollup(&runs);
        assert_eq!(ttls.len(), 3);
        assert_eq!((ttls[0].runs, ttls[0].sent, ttls[0].received), (2, 6, 6));
        assert_eq!((ttls[0].rtt_min_ms, ttls[0].rtt_avg_ms, ttls[0].rtt_max_ms), (Some(0.5), Some(2.0), Some(4.0)));
        assert_eq!((ttls[1].runs, ttls[1].received, ttls[1].rtt_avg_ms), (2, 3, Some(9.0)));
        assert_eq!((ttls[2].runs, ttls[2].rtt_avg_ms), (1, Some(20.0)));
        assert_eq!(decode_rollup(&encode_rollup(&ttls)).unwrap(), ttls);
        assert!(decode_rollup(&encode_rollup(&ttls)[..5]).is_err());
        assert_eq!(rollup(&[]), []);
    }
}
