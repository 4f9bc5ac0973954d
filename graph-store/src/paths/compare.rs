//! A pair's runs over a window, aggregated per TTL the way `mtr --report` shows one trace
//! (`route show`), and two windows compared hop by hop (`route diff`): what was added,
//! removed or changed, where the paths first part, which hop got slower, where loss
//! started. Pure, no I/O.

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::algo::{first_divergence, hop_losses, loss_onset, Hop, PathShape, Run};

/// One TTL over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowHop {
    pub ttl: u8,
    /// The addresses that answered here, each with the number of runs it answered in,
    /// most first.
    pub addrs: Vec<(IpAddr, u32)>,
    /// Runs that probed this TTL.
    pub runs: u32,
    pub sent: u32,
    pub received: u32,
    pub loss_pct: f32,
    pub rtt_best_ms: Option<f32>,
    /// Over every answer (each run's average weighted by its answers).
    pub rtt_avg_ms: Option<f32>,
    pub rtt_worst_ms: Option<f32>,
    /// The runs' standard deviations, averaged.
    pub rtt_stddev_ms: Option<f32>,
    pub jitter_ms: Option<f32>,
    /// This hop drops its own answers while a later hop answers with less loss: the
    /// router rate-limits, it does not lose what it forwards.
    pub rate_limited: bool,
}

impl WindowHop {
    /// The addresses, without their counts, sorted.
    pub fn addresses(&self) -> Vec<IpAddr> {
        let mut a: Vec<IpAddr> = self.addrs.iter().map(|(ip, _)| *ip).collect();
        a.sort_unstable();
        a
    }
}

/// A pair's runs over `[from, to)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    #[serde(serialize_with = "crate::time::serialize_utc")]
    pub from: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::serialize_utc")]
    pub to: DateTime<Utc>,
    pub runs: u32,
    /// Runs that reached the destination.
    pub reached: u32,
    /// Distinct paths the runs took (their exact hop addresses).
    pub paths: u32,
    pub hops: Vec<WindowHop>,
    /// The first TTL from which loss of at least the threshold persists to the end.
    pub loss_onset: Option<u8>,
    #[serde(skip)]
    pub shape: PathShape,
}

impl Window {
    /// The last hop's figures, when the runs reached the destination.
    pub fn destination(&self) -> Option<&WindowHop> {
        self.hops.last().filter(|_| self.reached > 0)
    }
}

/// Per-TTL sums while aggregating.
#[derive(Default)]
struct Sums {
    addrs: BTreeMap<IpAddr, u32>,
    runs: u32,
    sent: u32,
    received: u32,
    best: Option<f32>,
    worst: Option<f32>,
    rtt_sum: f64,
    rtt_n: u32,
    sd_sum: f64,
    sd_n: u32,
    jitter_sum: f64,
    jitter_n: u32,
}

/// Aggregates `runs` (of one pair, within `[from, to)`); `loss_min_pct` is the loss rule's
/// threshold (default 20).
pub fn summarize(from: DateTime<Utc>, to: DateTime<Utc>, runs: &[Run], loss_min_pct: f32) -> Window {
    let mut per_ttl: BTreeMap<u8, Sums> = BTreeMap::new();
    let mut distinct: Vec<Vec<&[IpAddr]>> = Vec::new();
    for run in runs {
        let path: Vec<&[IpAddr]> = run.hops.iter().map(|h| h.addrs.as_slice()).collect();
        if !distinct.contains(&path) {
            distinct.push(path);
        }
        for hop in &run.hops {
            add(per_ttl.entry(hop.ttl).or_default(), hop);
        }
    }
    let mut hops: Vec<WindowHop> = per_ttl.into_iter().map(|(ttl, s)| window_hop(ttl, s)).collect();
    let reached = runs.iter().filter(|r| r.reached).count() as u32;
    let whole = Run { at: to, hops: hops.iter().map(as_hop).collect(), reached: reached > 0 };
    for loss in hop_losses(&whole) {
        if let Some(h) = hops.iter_mut().find(|h| h.ttl == loss.ttl) {
            h.rate_limited = loss.rate_limited;
        }
    }
    Window {
        from,
        to,
        runs: runs.len() as u32,
        reached,
        paths: distinct.len() as u32,
        loss_onset: loss_onset(&whole, loss_min_pct),
        shape: PathShape::of(&whole),
        hops,
    }
}

fn add(s: &mut Sums, hop: &Hop) {
    for a in &hop.addrs {
        *s.addrs.entry(*a).or_default() += 1;
    }
    s.runs += 1;
    s.sent += hop.sent;
    s.received += hop.received;
    s.best = min_opt(s.best, hop.rtt_best_ms);
    s.worst = max_opt(s.worst, hop.rtt_worst_ms);
    if let Some(avg) = hop.rtt_avg_ms {
        s.rtt_sum += f64::from(avg) * f64::from(hop.received.max(1));
        s.rtt_n += hop.received.max(1);
    }
    if let Some(sd) = hop.rtt_stddev_ms {
        s.sd_sum += f64::from(sd);
        s.sd_n += 1;
    }
    if let Some(j) = hop.jitter_ms {
        s.jitter_sum += f64::from(j);
        s.jitter_n += 1;
    }
}

fn window_hop(ttl: u8, s: Sums) -> WindowHop {
    let mean = |sum: f64, n: u32| (n > 0).then(|| (sum / f64::from(n)) as f32);
    let mut addrs: Vec<(IpAddr, u32)> = s.addrs.into_iter().collect();
    addrs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let lost = s.sent.saturating_sub(s.received.min(s.sent));
    WindowHop {
        ttl,
        addrs,
        runs: s.runs,
        sent: s.sent,
        received: s.received,
        loss_pct: if s.sent == 0 { 100.0 } else { (f64::from(lost) * 100.0 / f64::from(s.sent)) as f32 },
        rtt_best_ms: s.best,
        rtt_avg_ms: mean(s.rtt_sum, s.rtt_n),
        rtt_worst_ms: s.worst,
        rtt_stddev_ms: mean(s.sd_sum, s.sd_n),
        jitter_ms: mean(s.jitter_sum, s.jitter_n),
        rate_limited: false,
    }
}

/// The window's hop as one run's hop, for the loss rules.
fn as_hop(h: &WindowHop) -> Hop {
    Hop {
        ttl: h.ttl,
        addrs: h.addresses(),
        sent: h.sent,
        received: h.received,
        rtt_best_ms: h.rtt_best_ms,
        rtt_avg_ms: h.rtt_avg_ms,
        rtt_worst_ms: h.rtt_worst_ms,
        rtt_stddev_ms: h.rtt_stddev_ms,
        jitter_ms: h.jitter_ms,
    }
}

/// The smaller of two optional figures (either may be missing).
pub(super) fn min_opt(a: Option<f32>, b: Option<f32>) -> Option<f32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The larger of two optional figures (either may be missing).
pub(super) fn max_opt(a: Option<f32>, b: Option<f32>) -> Option<f32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// When a hop counts as slower, or lossy, in a diff.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DiffRules {
    /// RTT worse by more than this many milliseconds …
    pub rtt_worse_ms: f32,
    /// … and by more than this percent (default 10 ms and 20 %).
    pub rtt_worse_pct: f32,
    /// Loss at or above this percent, where there was less before (default 20).
    pub loss_min_pct: f32,
}

impl Default for DiffRules {
    fn default() -> Self {
        DiffRules { rtt_worse_ms: 10.0, rtt_worse_pct: 20.0, loss_min_pct: 20.0 }
    }
}

/// How one TTL compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HopStatus {
    /// The same addresses (or one side silent: `*` matches anything).
    Same,
    /// Both answered, from different addresses.
    Changed,
    /// Only the later window has this TTL.
    Added,
    /// Only the earlier window has this TTL.
    Removed,
}

/// One TTL of two windows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HopDiff {
    pub ttl: u8,
    pub status: HopStatus,
    pub old: Vec<IpAddr>,
    pub new: Vec<IpAddr>,
    pub rtt_old_ms: Option<f32>,
    pub rtt_new_ms: Option<f32>,
    /// Slower by more than the rules' milliseconds and percent.
    pub rtt_worse: bool,
    pub loss_old_pct: Option<f32>,
    pub loss_new_pct: Option<f32>,
    /// Loss at or above the rules' line that was not there before (a rate-limiting
    /// router's own answers do not count).
    pub loss_started: bool,
}

/// Two windows compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowDiff {
    /// Where the paths first part (none: the same path).
    pub first_divergence: Option<u8>,
    pub hops: Vec<HopDiff>,
    /// The loss onset before and after.
    pub loss_onset_old: Option<u8>,
    pub loss_onset_new: Option<u8>,
}

/// Compares an earlier window with a later one.
pub fn diff(old: &Window, new: &Window, rules: &DiffRules) -> WindowDiff {
    let last = old.hops.iter().chain(&new.hops).map(|h| h.ttl).max().unwrap_or(0);
    let find = |w: &'_ Window, ttl: u8| w.hops.iter().find(|h| h.ttl == ttl).cloned();
    let hops = (1..=last)
        .filter_map(|ttl| {
            let (o, n) = (find(old, ttl), find(new, ttl));
            (o.is_some() || n.is_some()).then(|| hop_diff(ttl, o.as_ref(), n.as_ref(), rules))
        })
        .collect();
    WindowDiff {
        first_divergence: first_divergence(&old.shape, &new.shape).map(|d| d.ttl),
        hops,
        loss_onset_old: old.loss_onset,
        loss_onset_new: new.loss_onset,
    }
}

fn hop_diff(ttl: u8, old: Option<&WindowHop>, new: Option<&WindowHop>, rules: &DiffRules) -> HopDiff {
    let addrs = |h: Option<&WindowHop>| h.map(WindowHop::addresses).unwrap_or_default();
    let (o, n) = (addrs(old), addrs(new));
    let status = match (old, new) {
        (None, _) => HopStatus::Added,
        (_, None) => HopStatus::Removed,
        _ if o.is_empty() || n.is_empty() || o.iter().any(|a| n.contains(a)) => HopStatus::Same,
        _ => HopStatus::Changed,
    };
    let rtt_old = old.and_then(|h| h.rtt_avg_ms);
    let rtt_new = new.and_then(|h| h.rtt_avg_ms);
    let rtt_worse = match (rtt_old, rtt_new) {
        (Some(a), Some(b)) => b - a > rules.rtt_worse_ms && b > a * (1.0 + rules.rtt_worse_pct / 100.0),
        _ => false,
    };
    let loss_old = old.map(|h| h.loss_pct);
    let loss_new = new.map(|h| h.loss_pct);
    let loss_started = new.is_some_and(|h| !h.rate_limited && h.loss_pct >= rules.loss_min_pct)
        && loss_old.is_none_or(|l| l < rules.loss_min_pct);
    HopDiff {
        ttl,
        status,
        old: o,
        new: n,
        rtt_old_ms: rtt_old,
        rtt_new_ms: rtt_new,
        rtt_worse,
        loss_old_pct: loss_old,
        loss_new_pct: loss_new,
        loss_started,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(min: i64) -> DateTime<Utc> {
        "2026-12-05T16:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::minutes(min)
    }

    /// A run from tokens per TTL: `a.b.c.d@ms` (3 of 3 answered), `a.b.c.d@ms/n` (n of 3),
    /// `*` silent.
    fn run(min: i64, tokens: &[&str]) -> Run {
        let hops: Vec<Hop> = tokens
            .iter()
            .enumerate()
            .map(|(i, tok)| {
                let ttl = i as u8 + 1;
                if *tok == "*" {
                    return Hop {
                        ttl,
                        addrs: vec![],
                        sent: 3,
                        received: 0,
                        rtt_best_ms: None,
                        rtt_avg_ms: None,
                        rtt_worst_ms: None,
                        rtt_stddev_ms: None,
                        jitter_ms: None,
                    };
                }
                let (addr, rest) = tok.split_once('@').unwrap();
                let (ms, got) = rest.split_once('/').map_or((rest, 3), |(ms, n)| (ms, n.parse().unwrap()));
                let ms: f32 = ms.parse().unwrap();
                Hop {
                    ttl,
                    addrs: vec![addr.parse().unwrap()],
                    sent: 3,
                    received: got,
                    rtt_best_ms: Some(ms - 1.0),
                    rtt_avg_ms: Some(ms),
                    rtt_worst_ms: Some(ms + 1.0),
                    rtt_stddev_ms: Some(0.5),
                    jitter_ms: Some(0.2),
                }
            })
            .collect();
        Run { at: t(min), hops, reached: true }
    }

    const BEFORE: [&str; 4] = ["10.0.0.1@1", "10.0.1.1@5", "52.93.1.1@20", "10.9.0.2@21"];
    const AFTER: [&str; 5] = ["10.0.0.1@1", "10.0.1.1@5", "52.93.9.9@30", "52.93.9.10@60", "10.9.0.2@61"];

    #[test]
    fn a_window_aggregates_like_mtr() {
        let runs = [run(0, &BEFORE), run(2, &["10.0.0.1@3", "10.0.1.1@5", "52.93.1.1@20/2", "10.9.0.2@21"])];
        let w = summarize(t(0), t(5), &runs, 20.0);
        assert_eq!((w.runs, w.reached, w.paths), (2, 2, 1));
        let h1 = &w.hops[0];
        assert_eq!(h1.addrs, vec![("10.0.0.1".parse().unwrap(), 2)]);
        assert_eq!((h1.sent, h1.received, h1.rtt_best_ms, h1.rtt_worst_ms), (6, 6, Some(0.0), Some(4.0)));
        assert_eq!(h1.rtt_avg_ms, Some(2.0));
        let h3 = &w.hops[2];
        assert!((h3.loss_pct - 100.0 / 6.0).abs() < 0.01);
        assert!(h3.rate_limited, "the destination after it lost nothing");
        assert_eq!(w.loss_onset, None);
    }

    #[test]
    fn the_diff_names_the_first_diverging_hop_and_what_got_slower() {
        let old = summarize(t(0), t(5), &[run(0, &BEFORE), run(2, &BEFORE)], 20.0);
        let new = summarize(t(15), t(20), &[run(15, &AFTER), run(17, &AFTER)], 20.0);
        let d = diff(&old, &new, &DiffRules::default());
        assert_eq!(d.first_divergence, Some(3));
        let status: Vec<HopStatus> = d.hops.iter().map(|h| h.status).collect();
        use HopStatus::*;
        assert_eq!(status, [Same, Same, Changed, Changed, Added]);
        assert!(!d.hops[1].rtt_worse);
        assert!(!d.hops[2].rtt_worse, "20 → 30 ms: +10 ms is not more than 10");
        assert!(d.hops[3].rtt_worse, "21 → 60 ms");
        assert!(d.hops.iter().all(|h| !h.loss_started));
        assert_eq!(diff(&old, &old, &DiffRules::default()).first_divergence, None);
    }

    #[test]
    fn loss_that_persists_to_the_end_started_and_a_silent_hop_matches() {
        let quiet = ["10.0.0.1@1", "*", "52.93.1.1@20", "10.9.0.2@21"];
        let old = summarize(t(0), t(5), &[run(0, &quiet)], 20.0);
        assert_eq!(old.loss_onset, None, "a silent router with answering hops after it is not loss");
        let lossy = ["10.0.0.1@1", "10.0.1.1@5", "52.93.1.1@20/2", "10.9.0.2@21/2"];
        let new = summarize(t(15), t(20), &[run(15, &lossy), run(16, &lossy)], 20.0);
        assert_eq!(new.loss_onset, Some(3));
        let d = diff(&old, &new, &DiffRules::default());
        assert_eq!(d.first_divergence, None, "a silent hop is not a change");
        assert_eq!(d.hops[1].status, HopStatus::Same);
        assert!(d.hops[2].loss_started && d.hops[3].loss_started);
        assert!(!d.hops[0].loss_started);
        assert_eq!((d.loss_onset_old, d.loss_onset_new), (None, Some(3)));
    }

    #[test]
    fn an_empty_window_is_empty() {
        let w = summarize(t(0), t(5), &[], 20.0);
        assert_eq!((w.runs, w.hops.len(), w.loss_onset), (0, 0, None));
        assert!(w.destination().is_none());
    }
}
