//! How a trace run is kept in `trace_runs`: its path once in `trace_paths` (per TTL the
//! answering addresses as text), its per-hop figures packed in one `bytea`. Pure, no I/O.
//!
//! # The packed figures (version 1)
//!
//! A version byte (1), then per hop of the path, in TTL order: `sent` and `received` as
//! one byte each (saturating at 255), then the five RTT figures — best, avg, worst,
//! stddev, jitter — each an unsigned LEB128 varint of 0 for none, else 1 + the value in
//! microseconds (rounded). A silent hop takes 7 bytes, an answering hop on a WAN about
//! 14: a 15-hop run about 200 bytes.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use super::algo::{Hop, Run};

/// The format written by [`pack`].
pub const VERSION: u8 = 1;

/// One run's path as stored: per TTL from 1 the answering addresses (sorted, joined by
/// `,`; empty: silent), and whether the last hop is the destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoredPath {
    pub hops: Vec<String>,
    pub reached: bool,
}

impl StoredPath {
    /// The path of `run`, every hop it has (silent ones included, so the figures align).
    pub fn of(run: &Run) -> StoredPath {
        StoredPath { hops: run.hops.iter().map(|h| hop_text(&h.addrs)).collect(), reached: run.reached }
    }
}

/// A hop's addresses as stored: sorted, deduplicated, joined by `,`.
pub fn hop_text(addrs: &[IpAddr]) -> String {
    let mut sorted = addrs.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(",")
}

/// The addresses of a stored hop (empty text: a silent hop).
pub fn parse_hop_text(text: &str) -> Result<Vec<IpAddr>, UnpackError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',').map(|a| a.parse().map_err(|_| UnpackError::Address(a.to_string()))).collect()
}

/// What a stored run could not be read back from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnpackError {
    #[error("packed trace figures of version {0}; this edgewatch reads version {VERSION}")]
    Version(u8),
    #[error("packed trace figures end early (hop {0} of the path)")]
    Short(usize),
    #[error("packed trace figures have {0} bytes left over after the last hop")]
    Trailing(usize),
    #[error("stored hop address {0:?} is not an IP address")]
    Address(String),
}

/// The per-hop figures of `run`, packed (see the module documentation).
pub fn pack(run: &Run) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + run.hops.len() * 14);
    out.push(VERSION);
    for hop in &run.hops {
        out.push(u8::try_from(hop.sent).unwrap_or(u8::MAX));
        out.push(u8::try_from(hop.received).unwrap_or(u8::MAX));
        for figure in [hop.rtt_best_ms, hop.rtt_avg_ms, hop.rtt_worst_ms, hop.rtt_stddev_ms, hop.jitter_ms] {
            put_varint(&mut out, figure.map_or(0, |ms| 1 + micros(ms)));
        }
    }
    out
}

/// The run made at `at` on `path` with `figures` from [`pack`].
pub fn unpack(at: DateTime<Utc>, path: &StoredPath, figures: &[u8]) -> Result<Run, UnpackError> {
    let (&version, mut rest) = figures.split_first().ok_or(UnpackError::Short(0))?;
    if version != VERSION {
        return Err(UnpackError::Version(version));
    }
    let mut hops = Vec::with_capacity(path.hops.len());
    for (i, text) in path.hops.iter().enumerate() {
        let short = || UnpackError::Short(i + 1);
        let [sent, received, tail @ ..] = rest else { return Err(short()) };
        rest = tail;
        let mut figure = || -> Result<Option<f32>, UnpackError> {
            let (v, tail) = take_varint(rest).ok_or_else(short)?;
            rest = tail;
            Ok(v.checked_sub(1).map(|us| (us as f64 / 1000.0) as f32))
        };
        let (best, avg, worst, stddev, jitter) = (figure()?, figure()?, figure()?, figure()?, figure()?);
        hops.push(Hop {
            ttl: u8::try_from(i + 1).unwrap_or(u8::MAX),
            addrs: parse_hop_text(text)?,
            sent: u32::from(*sent),
            received: u32::from(*received),
            rtt_best_ms: best,
            rtt_avg_ms: avg,
            rtt_worst_ms: worst,
            rtt_stddev_ms: stddev,
            jitter_ms: jitter,
        });
    }
    if !rest.is_empty() {
        return Err(UnpackError::Trailing(rest.len()));
    }
    Ok(Run { at, hops, reached: path.reached })
}

fn micros(ms: f32) -> u64 {
    (f64::from(ms.max(0.0)) * 1000.0).round() as u64
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, &bytes[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(ttl: u8, addrs: &[&str], received: u32, avg: Option<f32>) -> Hop {
        Hop {
            ttl,
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            sent: 3,
            received,
            rtt_best_ms: avg.map(|a| a * 0.9),
            rtt_avg_ms: avg,
            rtt_worst_ms: avg.map(|a| a * 1.5),
            rtt_stddev_ms: avg.map(|a| a * 0.1),
            jitter_ms: avg.map(|_| 0.0),
        }
    }

    fn run() -> Run {
        Run {
            at: "2026-12-05T16:00:00Z".parse().unwrap(),
            hops: vec![
                hop(1, &["10.0.0.1"], 3, Some(0.051)),
                hop(2, &[], 0, None),
                hop(3, &["10.1.0.1", "10.2.0.1"], 2, Some(12.5)),
                hop(4, &["2001:db8::9"], 3, Some(1234.567)),
            ],
            reached: true,
        }
    }

    #[test]
    fn a_run_comes_back_from_its_path_and_figures() {
        let run = run();
        let path = StoredPath::of(&run);
        assert_eq!(path.hops, ["10.0.0.1", "", "10.1.0.1,10.2.0.1", "2001:db8::9"]);
        let packed = pack(&run);
        let back = unpack(run.at, &path, &packed).unwrap();
        assert_eq!(back.hops.len(), 4);
        assert_eq!(back.reached, run.reached);
        for (a, b) in run.hops.iter().zip(&back.hops) {
            assert_eq!((a.ttl, &a.addrs, a.sent, a.received), (b.ttl, &b.addrs, b.sent, b.received));
            for (x, y) in [(a.rtt_best_ms, b.rtt_best_ms), (a.rtt_avg_ms, b.rtt_avg_ms), (a.jitter_ms, b.jitter_ms)] {
                match (x, y) {
                    (Some(x), Some(y)) => assert!((x - y).abs() <= 0.0005, "{x} vs {y}"),
                    (x, y) => assert_eq!(x, y),
                }
            }
        }
    }

    #[test]
    fn a_wan_hop_packs_small() {
        let packed = pack(&run());
        // version + silent hop (7) + three answering hops of at most 2 + 5 × 3 bytes.
        assert!(packed.len() <= 1 + 7 + 3 * 17, "{} bytes", packed.len());
        assert_eq!(pack(&Run { hops: vec![hop(1, &[], 0, None)], ..run() }).len(), 8);
    }

    #[test]
    fn damaged_figures_are_refused_not_guessed() {
        let run = run();
        let path = StoredPath::of(&run);
        let packed = pack(&run);
        assert_eq!(unpack(run.at, &path, &packed[..packed.len() - 1]), Err(UnpackError::Short(4)));
        assert_eq!(unpack(run.at, &path, &[]), Err(UnpackError::Short(0)));
        let mut longer = packed.clone();
        longer.push(0);
        assert_eq!(unpack(run.at, &path, &longer), Err(UnpackError::Trailing(1)));
        let mut other = packed;
        other[0] = 9;
        assert_eq!(unpack(run.at, &path, &other), Err(UnpackError::Version(9)));
        let bad = StoredPath { hops: vec!["10.0.0.1".into(), "nope".into(), "".into(), "".into()], reached: false };
        assert!(matches!(unpack(run.at, &bad, &pack(&run)), Err(UnpackError::Address(a)) if a == "nope"));
    }

    #[test]
    fn varints_round_trip_at_their_edges() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(take_varint(&out), Some((v, &[][..])), "{v}");
        }
        assert_eq!(take_varint(&[0x80]), None);
    }
}
