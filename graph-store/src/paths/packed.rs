//! How a trace run is kept: its path once in `trace_paths` (per TTL the answering
//! addresses as text), its per-hop figures packed in one `bytea` — in `trace_runs` while
//! recent, inside its pair's hour block (`paths::block`) after. Pure, no I/O.
//!
//! # The packed figures (version 2, written)
//!
//! A version byte (2), then the counts: a mode byte `m`; `m` of 1–3 says every hop was
//! sent `m` probes (a run of mtr-style rounds: the usual case) and the hops' `received`
//! follow two bits each, four hops a byte; `m` = 0 says each hop's `sent` and `received`
//! follow as varints. Then per hop that answered (`received` > 0), in TTL order: the
//! average RTT as an unsigned LEB128 varint (0: none, else 1 + tens of microseconds), and
//! if there is one, one byte each of [`log_code`] for avg − best, worst − avg and the
//! jitter, and for a hop of more than three answers its standard deviation (with up to
//! three answers it is recomputed: best, worst and the average give every sample). A
//! silent hop costs two bits; a WAN hop answering three probes five bytes: a 15-hop run
//! about 75 bytes.
//!
//! RTTs are kept to 10 µs; the spreads (best, worst, jitter, deviation) exactly up to
//! 0.31 ms and within ±1.8 % above, to 1 s.
//!
//! Version 1 (read only, the runs written before): per hop two count bytes and the five
//! figures as varints of 1 + microseconds.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use super::algo::{Hop, Run};

/// The format written by [`pack`].
pub const VERSION: u8 = 2;
/// The format of the runs written before version 2, still read.
const VERSION_1: u8 = 1;

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
    #[error("packed trace figures of version {0}; this edgewatch reads versions 1 and {VERSION}")]
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
    let mut out = Vec::with_capacity(2 + run.hops.len() * 5);
    out.push(VERSION);
    let uniform = run
        .hops
        .first()
        .map(|h| h.sent)
        .filter(|&s| (1..=3).contains(&s) && run.hops.iter().all(|h| h.sent == s && h.received <= s));
    match uniform {
        Some(sent) => {
            out.push(sent as u8);
            for four in run.hops.chunks(4) {
                out.push(four.iter().enumerate().fold(0u8, |b, (i, h)| b | ((h.received as u8) << (2 * i))));
            }
        }
        None => {
            out.push(0);
            for hop in &run.hops {
                put_varint(&mut out, u64::from(hop.sent));
                put_varint(&mut out, u64::from(hop.received));
            }
        }
    }
    for hop in run.hops.iter().filter(|h| h.received > 0) {
        let Some(avg) = hop.rtt_avg_ms else {
            out.push(0);
            continue;
        };
        let units = tens_of_us(avg);
        put_varint(&mut out, 1 + units);
        // Best and worst relative to the average as stored, so only their own rounding shows.
        let kept = units as f32 / 100.0;
        let spread = |v: Option<f32>| log_code(tens_of_us(v.unwrap_or(0.0)));
        out.push(spread(hop.rtt_best_ms.map(|b| kept - b)));
        out.push(spread(hop.rtt_worst_ms.map(|w| w - kept)));
        out.push(spread(hop.jitter_ms));
        if hop.received > 3 {
            out.push(spread(hop.rtt_stddev_ms));
        }
    }
    out
}

/// The run made at `at` on `path` with `figures` from [`pack`] (or version 1's).
pub fn unpack(at: DateTime<Utc>, path: &StoredPath, figures: &[u8]) -> Result<Run, UnpackError> {
    let (&version, rest) = figures.split_first().ok_or(UnpackError::Short(0))?;
    let hops = match version {
        VERSION => unpack_v2(path, rest)?,
        VERSION_1 => unpack_v1(path, rest)?,
        other => return Err(UnpackError::Version(other)),
    };
    Ok(Run { at, hops, reached: path.reached })
}

fn unpack_v2(path: &StoredPath, bytes: &[u8]) -> Result<Vec<Hop>, UnpackError> {
    let mut r = Reader(bytes);
    let n = path.hops.len();
    let mut counts = Vec::with_capacity(n);
    match r.byte(0)? {
        0 => {
            for i in 0..n {
                counts.push((r.varint(i + 1)? as u32, r.varint(i + 1)? as u32));
            }
        }
        sent @ 1..=3 => {
            let packed = r.take(n.div_ceil(4), n)?;
            counts.extend((0..n).map(|i| (u32::from(sent), u32::from((packed[i / 4] >> (2 * (i % 4))) & 3))));
        }
        _ => return Err(UnpackError::Short(0)),
    }
    let mut hops = Vec::with_capacity(n);
    for (i, (text, (sent, received))) in path.hops.iter().zip(counts).enumerate() {
        let mut hop = Hop {
            ttl: u8::try_from(i + 1).unwrap_or(u8::MAX),
            addrs: parse_hop_text(text)?,
            sent,
            received,
            rtt_best_ms: None,
            rtt_avg_ms: None,
            rtt_worst_ms: None,
            rtt_stddev_ms: None,
            jitter_ms: None,
        };
        if received > 0 {
            if let Some(avg) = r.varint(i + 1)?.checked_sub(1) {
                let spread = |code: u8| log_value(code) as f64 / 100.0;
                let avg = avg as f64 / 100.0;
                let best = avg - spread(r.byte(i + 1)?);
                let worst = avg + spread(r.byte(i + 1)?);
                let jitter = spread(r.byte(i + 1)?);
                let stddev = if received > 3 { spread(r.byte(i + 1)?) } else { stddev_of(received, best, avg, worst) };
                hop.rtt_best_ms = Some(best.max(0.0) as f32);
                hop.rtt_avg_ms = Some(avg as f32);
                hop.rtt_worst_ms = Some(worst as f32);
                hop.rtt_stddev_ms = Some(stddev as f32);
                hop.jitter_ms = Some(jitter as f32);
            }
        }
        hops.push(hop);
    }
    r.end()?;
    Ok(hops)
}

/// The population standard deviation of up to three samples known by their least,
/// average and greatest.
fn stddev_of(n: u32, best: f64, avg: f64, worst: f64) -> f64 {
    let samples: &[f64] = match n {
        2 => &[best, worst],
        3 => &[best, 3.0 * avg - best - worst, worst],
        _ => return 0.0,
    };
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    (samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

fn unpack_v1(path: &StoredPath, bytes: &[u8]) -> Result<Vec<Hop>, UnpackError> {
    let mut r = Reader(bytes);
    let mut hops = Vec::with_capacity(path.hops.len());
    for (i, text) in path.hops.iter().enumerate() {
        let (sent, received) = (r.byte(i + 1)?, r.byte(i + 1)?);
        let mut figure = || -> Result<Option<f32>, UnpackError> {
            Ok(r.varint(i + 1)?.checked_sub(1).map(|us| (us as f64 / 1000.0) as f32))
        };
        let (best, avg, worst, stddev, jitter) = (figure()?, figure()?, figure()?, figure()?, figure()?);
        hops.push(Hop {
            ttl: u8::try_from(i + 1).unwrap_or(u8::MAX),
            addrs: parse_hop_text(text)?,
            sent: u32::from(sent),
            received: u32::from(received),
            rtt_best_ms: best,
            rtt_avg_ms: avg,
            rtt_worst_ms: worst,
            rtt_stddev_ms: stddev,
            jitter_ms: jitter,
        });
    }
    r.end()?;
    Ok(hops)
}

/// Reads packed bytes front to back; `hop` in each call is what a short read reports.
pub(crate) struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn byte(&mut self, hop: usize) -> Result<u8, UnpackError> {
        let (&b, rest) = self.0.split_first().ok_or(UnpackError::Short(hop))?;
        self.0 = rest;
        Ok(b)
    }

    pub fn take(&mut self, n: usize, hop: usize) -> Result<&'a [u8], UnpackError> {
        if self.0.len() < n {
            return Err(UnpackError::Short(hop));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub fn varint(&mut self, hop: usize) -> Result<u64, UnpackError> {
        let (v, rest) = take_varint(self.0).ok_or(UnpackError::Short(hop))?;
        self.0 = rest;
        Ok(v)
    }

    pub fn end(&self) -> Result<(), UnpackError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(UnpackError::Trailing(self.0.len()))
        }
    }
}

/// Milliseconds as tens of microseconds, rounded (negative: 0).
fn tens_of_us(ms: f32) -> u64 {
    (f64::from(ms.max(0.0)) * 100.0).round() as u64
}

/// Codes 0–31 are the value itself (tens of µs); above, a geometric scale from 0.32 ms to
/// 1 s in 224 steps of 3.7 %.
const LOG_EXACT: u64 = 32;
const LOG_TOP: f64 = 100_000.0;

fn log_step() -> f64 {
    (LOG_TOP / LOG_EXACT as f64).ln() / (255.0 - LOG_EXACT as f64)
}

/// One byte for a spread of `v` tens of microseconds (see [`log_value`]).
pub fn log_code(v: u64) -> u8 {
    if v < LOG_EXACT {
        return v as u8;
    }
    let steps = ((v as f64 / LOG_EXACT as f64).ln() / log_step()).round();
    (LOG_EXACT as f64 + steps).min(255.0) as u8
}

/// The tens of microseconds a [`log_code`] stands for.
pub fn log_value(code: u8) -> u64 {
    let code = u64::from(code);
    if code < LOG_EXACT {
        return code;
    }
    (LOG_EXACT as f64 * ((code - LOG_EXACT) as f64 * log_step()).exp()).round() as u64
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
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

    /// A hop of three probes with these RTTs (ms), or silent.
    fn hop(ttl: u8, addrs: &[&str], rtts: &[f32]) -> Hop {
        let n = rtts.len() as f32;
        let avg = (!rtts.is_empty()).then(|| rtts.iter().sum::<f32>() / n);
        let stddev = avg.map(|a| (rtts.iter().map(|r| (r - a).powi(2)).sum::<f32>() / n).sqrt());
        let jitter = avg.map(|_| rtts.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f32>() / (n - 1.0).max(1.0));
        Hop {
            ttl,
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            sent: 3,
            received: rtts.len() as u32,
            rtt_best_ms: avg.map(|_| rtts.iter().copied().fold(f32::MAX, f32::min)),
            rtt_avg_ms: avg,
            rtt_worst_ms: avg.map(|_| rtts.iter().copied().fold(0.0, f32::max)),
            rtt_stddev_ms: stddev,
            jitter_ms: jitter,
        }
    }

    fn run() -> Run {
        Run {
            at: "2026-12-05T16:00:00Z".parse().unwrap(),
            hops: vec![
                hop(1, &["10.0.0.1"], &[0.051, 0.048, 0.062]),
                hop(2, &[], &[]),
                hop(3, &["10.1.0.1", "10.2.0.1"], &[12.5, 14.25]),
                hop(4, &["2001:db8::9"], &[96.3, 103.9, 99.1]),
                hop(5, &["2001:db8::a"], &[1234.567]),
            ],
            reached: true,
        }
    }

    /// Within 10 µs, or the log code's ±1.9 % of the spread `of`.
    fn close(name: &str, got: Option<f32>, want: Option<f32>, of: f32) {
        let (Some(g), Some(w)) = (got, want) else { return assert_eq!(got, want, "{name}") };
        let slack = 0.006_f32.max(of.abs() * 0.019 + 0.006);
        assert!((g - w).abs() <= slack, "{name}: {g} vs {w} (slack {slack})");
    }

    #[test]
    fn a_run_comes_back_from_its_path_and_figures() {
        let run = run();
        let path = StoredPath::of(&run);
        assert_eq!(path.hops, ["10.0.0.1", "", "10.1.0.1,10.2.0.1", "2001:db8::9", "2001:db8::a"]);
        let back = unpack(run.at, &path, &pack(&run)).unwrap();
        assert_eq!((back.at, back.reached, back.hops.len()), (run.at, run.reached, 5));
        for (a, b) in run.hops.iter().zip(&back.hops) {
            assert_eq!((a.ttl, &a.addrs, a.sent, a.received), (b.ttl, &b.addrs, b.sent, b.received));
            let avg = a.rtt_avg_ms.unwrap_or(0.0);
            close("avg", b.rtt_avg_ms, a.rtt_avg_ms, 0.0);
            close("best", b.rtt_best_ms, a.rtt_best_ms, avg - a.rtt_best_ms.unwrap_or(0.0));
            close("worst", b.rtt_worst_ms, a.rtt_worst_ms, a.rtt_worst_ms.unwrap_or(0.0) - avg);
            close("jitter", b.jitter_ms, a.jitter_ms, a.jitter_ms.unwrap_or(0.0));
            // Recomputed from best, average and worst: the spreads' rounding carries over.
            close("stddev", b.rtt_stddev_ms, a.rtt_stddev_ms, a.rtt_worst_ms.unwrap_or(0.0) - avg);
        }
    }

    #[test]
    fn more_than_three_answers_keep_their_deviation_and_odd_counts_their_bytes() {
        let mut run = run();
        run.hops[3].sent = 5;
        run.hops[3].received = 4;
        run.hops[3].rtt_stddev_ms = Some(7.5);
        let back = unpack(run.at, &StoredPath::of(&run), &pack(&run)).unwrap();
        assert_eq!((back.hops[3].sent, back.hops[3].received), (5, 4));
        assert_eq!((back.hops[0].sent, back.hops[4].received), (3, 1));
        close("stddev", back.hops[3].rtt_stddev_ms, Some(7.5), 7.5);
    }

    #[test]
    fn a_wan_hop_packs_in_five_bytes() {
        let one = |h: Hop| pack(&Run { hops: vec![h], ..run() }).len();
        // version, mode, one byte of counts: then 2 bytes of average, 3 of spreads.
        assert_eq!(one(hop(1, &["198.51.100.1"], &[96.3, 103.9, 99.1])), 3 + 5);
        assert_eq!(one(hop(1, &[], &[])), 3);
        // 15 hops of WAN RTTs, 2 of them silent: 2 + 4 + 13 × 5.
        let hops: Vec<Hop> = (1..=15)
            .map(|t| if t % 7 == 0 { hop(t, &[], &[]) } else { hop(t, &["10.9.0.1"], &[80.0, 81.5, 80.7]) })
            .collect();
        assert_eq!(pack(&Run { hops, ..run() }).len(), 2 + 4 + 13 * 5);
    }

    #[test]
    fn damaged_figures_are_refused_not_guessed() {
        let run = run();
        let path = StoredPath::of(&run);
        let packed = pack(&run);
        assert_eq!(unpack(run.at, &path, &packed[..packed.len() - 1]), Err(UnpackError::Short(5)));
        assert_eq!(unpack(run.at, &path, &[]), Err(UnpackError::Short(0)));
        assert_eq!(unpack(run.at, &path, &[VERSION]), Err(UnpackError::Short(0)));
        let mut longer = packed.clone();
        longer.push(0);
        assert_eq!(unpack(run.at, &path, &longer), Err(UnpackError::Trailing(1)));
        let mut other = packed.clone();
        other[0] = 9;
        assert_eq!(unpack(run.at, &path, &other), Err(UnpackError::Version(9)));
        let bad = StoredPath {
            hops: vec!["10.0.0.1".into(), "nope".into(), "".into(), "".into(), "".into()],
            reached: false,
        };
        assert!(matches!(unpack(run.at, &bad, &packed), Err(UnpackError::Address(a)) if a == "nope"));
    }

    #[test]
    fn version_1_runs_are_still_read() {
        // Version 1: per hop sent, received, then 1 + µs of best, avg, worst, stddev, jitter.
        let mut v1 = vec![VERSION_1, 3, 3];
        for us in [1_000u64, 2_000, 4_000, 1_250, 500] {
            put_varint(&mut v1, 1 + us);
        }
        v1.extend([3, 0, 0, 0, 0, 0, 0]);
        let path = StoredPath { hops: vec!["10.0.0.1".into(), "".into()], reached: false };
        let back = unpack(run().at, &path, &v1).unwrap();
        let h = &back.hops[0];
        assert_eq!(
            (h.rtt_best_ms, h.rtt_avg_ms, h.rtt_worst_ms, h.rtt_stddev_ms, h.jitter_ms),
            (Some(1.0), Some(2.0), Some(4.0), Some(1.25), Some(0.5))
        );
        assert_eq!((back.hops[1].received, back.hops[1].rtt_avg_ms), (0, None));
    }

    #[test]
    fn the_log_code_is_exact_below_a_third_of_a_millisecond_and_close_above() {
        for v in 0..LOG_EXACT {
            assert_eq!(log_value(log_code(v)), v);
        }
        for code in 0..=255u8 {
            assert_eq!(log_code(log_value(code)), code, "code {code}");
        }
        for v in (LOG_EXACT..120_000).step_by(7) {
            let back = log_value(log_code(v)) as f64;
            let bound = if v as f64 > LOG_TOP { LOG_TOP * 1.02 } else { v as f64 * 0.019 + 0.5 };
            assert!((back - v as f64).abs() <= bound.max(back - LOG_TOP), "{v} came back {back}");
        }
        assert_eq!(log_code(u64::MAX), 255);
    }

    #[test]
    fn three_samples_are_known_by_their_least_average_and_greatest() {
        let (b, m, w) = (10.0, 11.0, 15.0);
        let mean = (b + m + w) / 3.0;
        let want = (((b - mean) * (b - mean) + (m - mean) * (m - mean) + (w - mean) * (w - mean)) / 3.0_f64).sqrt();
        assert!((stddev_of(3, b, mean, w) - want).abs() < 1e-9);
        assert_eq!(stddev_of(2, 4.0, 5.0, 6.0), 1.0);
        assert_eq!(stddev_of(1, 4.0, 4.0, 4.0), 0.0);
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
