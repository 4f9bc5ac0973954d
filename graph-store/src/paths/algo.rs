//! Route changes and loss onset on one host pair's traces: pure functions and two small
//! state machines, no I/O. A [`Run`] is one Paris-style trace (per TTL the addresses that
//! answered, with sent/received counts and RTT figures).
//!
//! # The path of a run
//!
//! A [`PathShape`] is per TTL the set of addresses that answered (empty: silent, `*`),
//! with the silent hops after the last answering hop dropped, and whether the last hop is
//! the destination ([`PathShape::reached`]). A shape that did not reach its destination
//! *ends silent*: what comes after its last hop is unknown.
//!
//! Two shapes are **the same path** when
//! 1. at every TTL both have, either side is silent (`*` matches anything) or their
//!    address sets intersect, and
//! 2. they are as long, or the shorter one ends silent. A shape that reached its
//!    destination says where the path ends: the destination at TTL 6 on one run and at
//!    TTL 8 on another is a change (two hops more on the way). A shape that ends silent
//!    says nothing about what follows, so a destination that stops answering (the last
//!    hops silent) is not a route change: it is loss, and the loss rule names it.
//!
//! [`first_divergence`] names the first TTL where rule 1 fails, or else where rule 2 does
//! (the TTL after the shorter path's destination, with that path's side empty); `None`
//! exactly when the shapes are the same path.
//!
//! **ECMP.** A path absorbs the runs that match it: per TTL the union of the addresses
//! seen, so a set of addresses seen at one TTL (the branches of a load-balanced diamond)
//! is one hop, and a later run on any branch seen before matches. A branch never seen
//! before is a different path until absorbed: agents keep the flow fields of a host pair
//! constant across runs, not only within one, so that a per-flow load balancer sends every
//! run down the same branch. Per-packet balancing shows up as several addresses at one TTL
//! of one run. So does a route change that happens while a run is under way (its first
//! rounds on the old path, its last on the new): to tell the two apart, addresses new at a
//! TTL where the path has others are *learnt* only once `k_runs` runs matching the path
//! have shown them (per-packet balancing shows them again and again; a change shows them
//! once, and the runs after it are on the new path only, a change after `k_runs` of them).
//! If the flow fields did vary between runs, branch switches would read as path flapping
//! (below): limited to two events, not a stream.
//!
//! # Route changes ([`RouteTracker`], defaults of [`RouteConfig`])
//!
//! The first run establishes the path. A run on the current path is absorbed into it. A
//! run on another path becomes the *candidate* (or extends it, if it matches it): a single
//! odd run changes nothing. When the candidate has held for `k_runs` (2) runs in a row it
//! becomes the current path, with a [`RouteChange`] dated at its first run and quoting the
//! destination's RTT and loss on the last run of the old path and on the runs of the new.
//! A run in which no hop answered says nothing about the route and is ignored (the loss
//! rule sees it).
//!
//! **Flapping** is detected as Nagios does, like edge health in `probers::health`: over
//! the last `flap_window` (21) runs, each *switch* (a run on another path than the run
//! before: current, candidate, or a new candidate) is weighted linearly from 0.75 (oldest
//! of the 20 possible) to 1.25 (newest), the sum divided by the 20 possible switches; a
//! shorter history counts as if padded with no switches at the old end. Per-run paths are
//! used, not the current path, so two paths alternating every run — which the `k_runs`
//! rule alone never reports — are caught. Flapping starts at ≥ `flap_high_pct` (50) and
//! stops at ≤ `flap_low_pct` (25); in between the flag keeps its value. While flapping the
//! current path is still tracked, but its changes make no [`RouteEvent::Changed`]: one
//! [`RouteEvent::FlapStart`] when it starts (after a change on the same run, if any) and
//! one [`RouteEvent::FlapEnd`] with the path then current when it stops.
//!
//! # Loss
//!
//! Routers answer probes addressed to themselves at low priority and rate-limit them;
//! packets they forward are another matter. So a hop losing its own answers while a later
//! hop answers with less loss is **rate-limited** ([`HopLoss::rate_limited`]), not lossy:
//! forward loss counts only when it persists to every later hop, the destination included.
//! A router dropping 30 % of what it forwards makes every hop *after* it lose about 30 %;
//! [`loss_onset`] is the first TTL from which loss at or above the threshold persists to
//! the end, and the figure is the least loss among those hops. A run that did not reach
//! its destination ends with its silent hops (as mtr and traceroute write them); they
//! count as 100 % loss, so a destination cut off shows as an onset at the first silent hop
//! of the end. The rule sees only the hops the run has.
//!
//! [`LossTracker`] applies the same `k_runs` hysteresis: loss is reported
//! ([`LossEvent::Started`]) when `k_runs` runs in a row name the same onset, cleared when
//! `k_runs` runs in a row have none. An onset moving to another TTL for `k_runs` runs is
//! one [`LossEvent::Moved`] (the old onset cleared and the new one started at once), so a
//! tracker's events form a chain: each names the onset the previous one left.

use std::collections::VecDeque;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Upper bound for the run counts in [`RouteConfig`] and [`LossConfig`] (bounded memory).
pub const MAX_RUNS: u32 = 1000;

/// Nagios' weight of the oldest switch in the flap window.
const FLAP_WEIGHT_OLDEST: f64 = 0.75;
/// Nagios' weight of the newest switch in the flap window.
const FLAP_WEIGHT_NEWEST: f64 = 1.25;

/// One TTL of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = TraceHop)]
pub struct Hop {
    pub ttl: u8,
    /// The addresses that answered, sorted and deduplicated; empty: a silent hop (`*`).
    #[schema(value_type = Vec<String>)]
    pub addrs: Vec<IpAddr>,
    pub sent: u32,
    pub received: u32,
    pub rtt_best_ms: Option<f32>,
    pub rtt_avg_ms: Option<f32>,
    pub rtt_worst_ms: Option<f32>,
    pub rtt_stddev_ms: Option<f32>,
    pub jitter_ms: Option<f32>,
}

impl Hop {
    /// Percent of the probes not answered, 0–100 (`received` capped at `sent`; a hop sent
    /// nothing counts as 100 %).
    pub fn loss_pct(&self) -> f32 {
        if self.sent == 0 {
            return 100.0;
        }
        let lost = self.sent - self.received.min(self.sent);
        (f64::from(lost) * 100.0 / f64::from(self.sent)) as f32
    }
}

/// One trace between a host pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = TraceRun)]
pub struct Run {
    pub at: DateTime<Utc>,
    /// TTL 1 up, in order.
    pub hops: Vec<Hop>,
    /// The destination answered: the last hop is the destination.
    pub reached: bool,
}

/// What identifies a path; see the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathShape {
    /// Per TTL from 1, the addresses seen there, sorted; empty: silent. The last is not.
    hops: Vec<Vec<IpAddr>>,
    /// The last hop is the destination (else the shape ends silent).
    reached: bool,
}

impl PathShape {
    /// The shape of one run: the answering hops up to the last one, each TTL's addresses
    /// sorted and deduplicated.
    pub fn of(run: &Run) -> PathShape {
        let answering = run.hops.iter().filter(|h| h.ttl > 0 && !h.addrs.is_empty());
        let Some(last) = answering.map(|h| h.ttl).max() else { return PathShape::default() };
        let mut hops = vec![Vec::new(); usize::from(last)];
        for h in run.hops.iter().filter(|h| (1..=last).contains(&h.ttl)) {
            hops[usize::from(h.ttl) - 1].extend(&h.addrs);
        }
        for set in &mut hops {
            set.sort_unstable();
            set.dedup();
        }
        let ends_here = run.hops.iter().map(|h| h.ttl).max() == Some(last);
        PathShape { hops, reached: run.reached && ends_here }
    }

    /// No hop answered.
    pub fn is_empty(&self) -> bool {
        self.hops.is_empty()
    }

    /// TTLs up to the last answering hop.
    pub fn len(&self) -> usize {
        self.hops.len()
    }

    /// The last hop is the destination.
    pub fn reached(&self) -> bool {
        self.reached
    }

    /// The addresses seen at `ttl` (empty: silent, or beyond the end).
    pub fn at(&self, ttl: u8) -> &[IpAddr] {
        usize::from(ttl).checked_sub(1).and_then(|i| self.hops.get(i)).map_or(&[], Vec::as_slice)
    }

    /// Per TTL from 1, the addresses seen there.
    pub fn hops(&self) -> &[Vec<IpAddr>] {
        &self.hops
    }

    /// Both are the same path (see the module documentation).
    pub fn matches(&self, other: &PathShape) -> bool {
        first_divergence(self, other).is_none()
    }

    /// `other` has addresses at a TTL where this path has others, none of them those: a
    /// branch not seen before (a silent TTL filled in is not one).
    fn new_branches(&self, other: &PathShape) -> bool {
        self.hops
            .iter()
            .zip(&other.hops)
            .any(|(mine, theirs)| !mine.is_empty() && theirs.iter().any(|a| mine.binary_search(a).is_err()))
    }

    /// Takes in a shape of the same path: per TTL the union of the addresses; the longer
    /// shape's end.
    pub fn absorb(&mut self, other: &PathShape) {
        if other.len() > self.len() {
            self.hops.resize(other.len(), Vec::new());
            self.reached = other.reached;
        } else if other.len() == self.len() {
            self.reached |= other.reached;
        }
        for (mine, theirs) in self.hops.iter_mut().zip(&other.hops) {
            mine.extend(theirs);
            mine.sort_unstable();
            mine.dedup();
        }
    }
}

/// Where two paths part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Divergence {
    pub ttl: u8,
    /// The addresses there on each path (empty: silent, or the path ended before).
    pub old: Vec<IpAddr>,
    pub new: Vec<IpAddr>,
}

/// The first TTL where `old` and `new` are not the same path; `None` when they are.
pub fn first_divergence(old: &PathShape, new: &PathShape) -> Option<Divergence> {
    let both = old.len().min(new.len());
    let disjoint = |i: usize| {
        let (a, b) = (&old.hops[i], &new.hops[i]);
        !a.is_empty() && !b.is_empty() && !a.iter().any(|x| b.binary_search(x).is_ok())
    };
    let shorter = if old.len() < new.len() { old } else { new };
    let i = (0..both).find(|&i| disjoint(i)).or((old.len() != new.len() && shorter.reached).then_some(both))?;
    let ttl = u8::try_from(i + 1).unwrap_or(u8::MAX);
    Some(Divergence { ttl, old: old.at(ttl).to_vec(), new: new.at(ttl).to_vec() })
}

/// Where the route rules draw their lines; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteConfig {
    /// Runs in a row on another path that make it the current one.
    pub k_runs: u32,
    /// Runs over which the percent of path switches is computed (Nagios: 21).
    pub flap_window: u32,
    /// Percent of switches at or above which a pair starts flapping (Nagios: 50).
    pub flap_high_pct: f64,
    /// Percent of switches at or below which a flapping pair stops (Nagios: 25).
    pub flap_low_pct: f64,
}

impl Default for RouteConfig {
    fn default() -> Self {
        RouteConfig { k_runs: 2, flap_window: 21, flap_high_pct: 50.0, flap_low_pct: 25.0 }
    }
}

impl RouteConfig {
    /// Checks `1 <= k_runs <= MAX_RUNS`, `3 <= flap_window <= MAX_RUNS` (the weighting needs
    /// two switches) and `0 <= flap_low_pct <= flap_high_pct <= 100`, `flap_high_pct > 0`.
    pub fn validate(&self) -> Result<(), String> {
        check_runs("k_runs", self.k_runs, 1)?;
        check_runs("flap_window", self.flap_window, 3)?;
        let (low, high) = (self.flap_low_pct, self.flap_high_pct);
        if !(low.is_finite() && high.is_finite() && 0.0 <= low && low <= high && 0.0 < high && high <= 100.0) {
            return Err(format!(
                "need 0 <= flap_low_pct <= flap_high_pct <= 100 and flap_high_pct > 0, got flap_low_pct = {low} \
                 and flap_high_pct = {high}"
            ));
        }
        Ok(())
    }
}

fn check_runs(field: &str, v: u32, min: u32) -> Result<(), String> {
    if (min..=MAX_RUNS).contains(&v) {
        Ok(())
    } else {
        Err(format!("{field} must be in {min}..={MAX_RUNS}, got {v}"))
    }
}

/// The destination as runs saw it: the last hop's figures, or 100 % loss when the run did
/// not reach it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DestFigures {
    pub loss_pct: f32,
    pub rtt_avg_ms: Option<f32>,
}

impl DestFigures {
    pub fn of(run: &Run) -> DestFigures {
        match run.hops.last() {
            Some(h) if run.reached => DestFigures { loss_pct: h.loss_pct(), rtt_avg_ms: h.rtt_avg_ms },
            _ => DestFigures { loss_pct: 100.0, rtt_avg_ms: None },
        }
    }
}

/// The path a pair's runs follow now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrentPath {
    pub shape: PathShape,
    /// The first run on it.
    pub since: DateTime<Utc>,
    /// The destination on the last run on it.
    pub dest: DestFigures,
}

/// The route changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteChange {
    /// The first run on the new path.
    pub at: DateTime<Utc>,
    pub old: PathShape,
    pub new: PathShape,
    pub divergence: Divergence,
    /// To the destination: on the last run of the old path, and over the runs of the new.
    pub rtt_before_ms: Option<f32>,
    pub rtt_after_ms: Option<f32>,
    pub loss_before_pct: f32,
    pub loss_after_pct: f32,
}

/// What a run changed, for the pair's event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum RouteEvent {
    Changed(RouteChange),
    /// The pair started flapping; `path` is the current one.
    FlapStart {
        at: DateTime<Utc>,
        flap_pct: f64,
        path: PathShape,
    },
    /// The pair stopped flapping; on `path` since `since`.
    FlapEnd {
        at: DateTime<Utc>,
        flap_pct: f64,
        path: PathShape,
        since: DateTime<Utc>,
    },
}

/// Which path a run followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum On {
    Current,
    Candidate,
}

/// Another path the last runs followed, not yet the current one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Candidate {
    shape: PathShape,
    since: DateTime<Utc>,
    runs: u32,
    last: DestFigures,
    loss_pct_sum: f64,
    rtt_ms_sum: f64,
    rtt_runs: u32,
}

impl Candidate {
    fn new(shape: PathShape, dest: DestFigures, at: DateTime<Utc>) -> Self {
        let mut c =
            Candidate { shape, since: at, runs: 0, last: dest, loss_pct_sum: 0.0, rtt_ms_sum: 0.0, rtt_runs: 0 };
        c.count(dest);
        c
    }

    fn add(&mut self, shape: &PathShape, dest: DestFigures) {
        self.shape.absorb(shape);
        self.count(dest);
    }

    fn count(&mut self, dest: DestFigures) {
        self.runs = self.runs.saturating_add(1);
        self.last = dest;
        self.loss_pct_sum += f64::from(dest.loss_pct);
        if let Some(rtt) = dest.rtt_avg_ms {
            self.rtt_ms_sum += f64::from(rtt);
            self.rtt_runs += 1;
        }
    }

    /// Mean loss and RTT to the destination over its runs.
    fn figures(&self) -> (f32, Option<f32>) {
        let loss = self.loss_pct_sum / f64::from(self.runs.max(1));
        let rtt = (self.rtt_runs > 0).then(|| (self.rtt_ms_sum / f64::from(self.rtt_runs)) as f32);
        (loss as f32, rtt)
    }
}

/// The route of one host pair: load it, [`observe`](RouteTracker::observe) each run, store
/// it back together with the returned events (it round-trips through serde).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteTracker {
    current: Option<CurrentPath>,
    candidate: Option<Candidate>,
    /// The path of the last run observed.
    last_on: Option<On>,
    /// Per run, oldest first, whether it switched path (at most `flap_window - 1`).
    switches: VecDeque<bool>,
    flapping: bool,
    /// Runs on the current path that showed branches it has not learnt yet, and the union
    /// of their shapes (see the module documentation: ECMP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    learning: Option<(PathShape, u32)>,
}

impl RouteTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current path (none before the first run with an answer).
    pub fn current(&self) -> Option<&CurrentPath> {
        self.current.as_ref()
    }

    pub fn flapping(&self) -> bool {
        self.flapping
    }

    /// Percent of path switches over the last runs, 0–100 (computed from the stored
    /// history, so that a stored tracker holds no float that JSON might round).
    pub fn flap_pct(&self, cfg: &RouteConfig) -> f64 {
        percent_switched(&self.switches, cfg.flap_window as usize)
    }

    /// Takes one run; returns the events it caused, in order (none, one, or a change and
    /// the start of flapping on the same run).
    pub fn observe(&mut self, run: &Run, cfg: &RouteConfig) -> Vec<RouteEvent> {
        let shape = PathShape::of(run);
        if shape.is_empty() {
            return Vec::new();
        }
        let dest = DestFigures::of(run);
        if self.current.is_none() {
            self.current = Some(CurrentPath { shape, since: run.at, dest });
            self.last_on = Some(On::Current);
            return Vec::new();
        }
        let (switched, change) = self.follow(shape, dest, run.at, cfg.k_runs);
        let was_flapping = self.record(switched, cfg);
        self.events(was_flapping, change, run.at, cfg)
    }

    /// Puts the run on the current path, the candidate, or a new candidate, and promotes
    /// the candidate once it has held. Returns whether the run switched path and the
    /// change, if any.
    fn follow(
        &mut self,
        shape: PathShape,
        dest: DestFigures,
        at: DateTime<Utc>,
        k_runs: u32,
    ) -> (bool, Option<RouteChange>) {
        let prev = self.last_on;
        if let Some(current) = self.current.as_mut().filter(|c| c.shape.matches(&shape)) {
            if current.shape.new_branches(&shape) {
                let (seen, runs) = self.learning.get_or_insert_with(|| (shape.clone(), 0));
                seen.absorb(&shape);
                *runs += 1;
                if *runs >= k_runs {
                    current.shape.absorb(seen);
                    self.learning = None;
                }
            } else {
                current.shape.absorb(&shape);
            }
            current.dest = dest;
            self.candidate = None;
            self.last_on = Some(On::Current);
            return (prev != Some(On::Current), None);
        }
        let switched = match self.candidate.as_mut().filter(|c| c.shape.matches(&shape)) {
            Some(c) => {
                c.add(&shape, dest);
                prev != Some(On::Candidate)
            }
            None => {
                self.candidate = Some(Candidate::new(shape, dest, at));
                true
            }
        };
        self.last_on = Some(On::Candidate);
        (switched, self.promote_if_held(k_runs))
    }

    /// The candidate becomes the current path after `k_runs` runs. If it grew to match the
    /// current path (absorbing runs can do that), the two are one path: no change.
    fn promote_if_held(&mut self, k_runs: u32) -> Option<RouteChange> {
        if self.candidate.as_ref()?.runs < k_runs {
            return None;
        }
        let cand = self.candidate.take()?;
        let current = self.current.as_mut()?;
        self.last_on = Some(On::Current);
        let Some(divergence) = first_divergence(&current.shape, &cand.shape) else {
            current.shape.absorb(&cand.shape);
            current.dest = cand.last;
            return None;
        };
        let (loss_after_pct, rtt_after_ms) = cand.figures();
        self.learning = None;
        let new = CurrentPath { shape: cand.shape, since: cand.since, dest: cand.last };
        let old = std::mem::replace(current, new);
        Some(RouteChange {
            at: cand.since,
            old: old.shape,
            new: current.shape.clone(),
            divergence,
            rtt_before_ms: old.dest.rtt_avg_ms,
            rtt_after_ms,
            loss_before_pct: old.dest.loss_pct,
            loss_after_pct,
        })
    }

    /// Adds the run to the switch history and updates the flapping flag; returns the flag
    /// as it was.
    fn record(&mut self, switched: bool, cfg: &RouteConfig) -> bool {
        let window = cfg.flap_window as usize;
        self.switches.push_back(switched);
        while self.switches.len() > window.saturating_sub(1).max(1) {
            self.switches.pop_front();
        }
        let pct = self.flap_pct(cfg);
        let was = self.flapping;
        // Nagios' order: undecided strictly between the thresholds, then "≤ low" stops.
        self.flapping = if pct > cfg.flap_low_pct && pct < cfg.flap_high_pct { was } else { pct > cfg.flap_low_pct };
        was
    }

    fn events(
        &self,
        was_flapping: bool,
        change: Option<RouteChange>,
        at: DateTime<Utc>,
        cfg: &RouteConfig,
    ) -> Vec<RouteEvent> {
        let Some(current) = &self.current else { return Vec::new() };
        let flap_pct = self.flap_pct(cfg);
        match (was_flapping, self.flapping) {
            (false, false) => change.map(RouteEvent::Changed).into_iter().collect(),
            (false, true) => {
                let start = RouteEvent::FlapStart { at, flap_pct, path: current.shape.clone() };
                change.map(RouteEvent::Changed).into_iter().chain([start]).collect()
            }
            // Still flapping: the path is tracked, but its changes are not news.
            (true, true) => Vec::new(),
            (true, false) => {
                vec![RouteEvent::FlapEnd { at, flap_pct, path: current.shape.clone(), since: current.since }]
            }
        }
    }
}

/// Nagios' weighted percent of switches (0–100) over a window of `window` runs, that is
/// `window - 1` possible switches: weighted linearly from 0.75 (oldest) to 1.25 (newest),
/// the history right-aligned (a short one is padded with no switches at the old end).
/// The same weighting as `probers::health::VerdictHistory::percent_state_change`, over
/// switch flags instead of verdicts.
fn percent_switched(switches: &VecDeque<bool>, window: usize) -> f64 {
    if window < 3 {
        return 0.0;
    }
    let slots = window - 1;
    let recent = switches.iter().skip(switches.len().saturating_sub(slots));
    let offset = slots - recent.len();
    let step = (FLAP_WEIGHT_NEWEST - FLAP_WEIGHT_OLDEST) / (window - 2) as f64;
    let sum: f64 =
        recent.enumerate().filter(|(_, &s)| s).map(|(i, _)| FLAP_WEIGHT_OLDEST + (offset + i) as f64 * step).sum();
    // `+ 0.0` turns the -0.0 of an empty sum into 0.
    (sum * 100.0 / slots as f64).clamp(0.0, 100.0) + 0.0
}

/// One hop's loss as the loss rule reads it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HopLoss {
    pub ttl: u8,
    pub loss_pct: f32,
    /// A later hop answers with less loss: this hop limits its own answers.
    pub rate_limited: bool,
}

/// Per hop of the run, its loss and whether it is rate-limited.
pub fn hop_losses(run: &Run) -> Vec<HopLoss> {
    let losses: Vec<f32> = run.hops.iter().map(Hop::loss_pct).collect();
    let persisting = suffix_min(&losses);
    run.hops
        .iter()
        .zip(&losses)
        .enumerate()
        .map(|(i, (h, &loss))| HopLoss {
            ttl: h.ttl,
            loss_pct: loss,
            rate_limited: persisting.get(i + 1).is_some_and(|&later| loss > later),
        })
        .collect()
}

/// The first TTL from which loss of at least `min_pct` persists to the end of the run.
pub fn loss_onset(run: &Run, min_pct: f32) -> Option<u8> {
    onset_and_loss(run, min_pct).map(|(ttl, _)| ttl)
}

/// The onset and the least loss from it to the end.
fn onset_and_loss(run: &Run, min_pct: f32) -> Option<(u8, f32)> {
    let losses: Vec<f32> = run.hops.iter().map(Hop::loss_pct).collect();
    let persisting = suffix_min(&losses);
    let i = persisting.iter().position(|&p| p >= min_pct)?;
    Some((run.hops[i].ttl, persisting[i]))
}

/// Element `i`: the least of `v[i..]`.
fn suffix_min(v: &[f32]) -> Vec<f32> {
    let mut out = v.to_vec();
    for i in (1..out.len()).rev() {
        out[i - 1] = out[i - 1].min(out[i]);
    }
    out
}

/// Where the loss rule draws its lines; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LossConfig {
    /// Runs in a row that start, clear or move the onset.
    pub k_runs: u32,
    /// Loss (percent) that counts, when it persists to the end. Default 20, probers'
    /// line for a degraded cycle.
    pub min_pct: f32,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig { k_runs: 2, min_pct: 20.0 }
    }
}

impl LossConfig {
    /// Checks `1 <= k_runs <= MAX_RUNS` and `0 < min_pct <= 100`.
    pub fn validate(&self) -> Result<(), String> {
        check_runs("k_runs", self.k_runs, 1)?;
        if !(self.min_pct > 0.0 && self.min_pct <= 100.0) {
            return Err(format!("min_pct must be a percentage in (0, 100], got {}", self.min_pct));
        }
        Ok(())
    }
}

/// A change of where a pair's loss starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum LossEvent {
    /// Loss from `ttl` on, since the first of the runs that showed it; `loss_pct` is their
    /// mean of the least loss from the onset to the end.
    Started { at: DateTime<Utc>, ttl: u8, loss_pct: f32 },
    /// The loss from `ttl` on is gone.
    Cleared { at: DateTime<Utc>, ttl: u8 },
    /// The onset moved from `from_ttl` to `ttl` (a clear and a start in one).
    Moved { at: DateTime<Utc>, from_ttl: u8, ttl: u8, loss_pct: f32 },
}

/// The onset the last runs show, not yet reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PendingOnset {
    onset: Option<u8>,
    since: DateTime<Utc>,
    runs: u32,
    loss_pct_sum: f64,
}

/// The loss of one host pair: load it, [`observe`](LossTracker::observe) each run, store it
/// back with the event (it round-trips through serde). Starts clean.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LossTracker {
    onset: Option<u8>,
    since: Option<DateTime<Utc>>,
    pending: Option<PendingOnset>,
}

impl LossTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// The TTL loss is reported from (none: clean).
    pub fn onset(&self) -> Option<u8> {
        self.onset
    }

    /// Since when the onset (or the lack of one) is reported; none before the first event.
    pub fn since(&self) -> Option<DateTime<Utc>> {
        self.since
    }

    /// Takes one run; returns the event it caused, if any.
    pub fn observe(&mut self, run: &Run, cfg: &LossConfig) -> Option<LossEvent> {
        let says = onset_and_loss(run, cfg.min_pct);
        let onset = says.map(|(ttl, _)| ttl);
        if onset == self.onset {
            self.pending = None;
            return None;
        }
        let loss = f64::from(says.map_or(0.0, |(_, loss)| loss));
        match self.pending.as_mut().filter(|p| p.onset == onset) {
            Some(p) => {
                p.runs = p.runs.saturating_add(1);
                p.loss_pct_sum += loss;
            }
            None => self.pending = Some(PendingOnset { onset, since: run.at, runs: 1, loss_pct_sum: loss }),
        }
        if self.pending.as_ref()?.runs < cfg.k_runs {
            return None;
        }
        let p = self.pending.take()?;
        let from = std::mem::replace(&mut self.onset, p.onset);
        self.since = Some(p.since);
        let (at, loss_pct) = (p.since, (p.loss_pct_sum / f64::from(p.runs)) as f32);
        match (from, p.onset) {
            (None, Some(ttl)) => Some(LossEvent::Started { at, ttl, loss_pct }),
            (Some(ttl), None) => Some(LossEvent::Cleared { at, ttl }),
            (Some(from_ttl), Some(ttl)) => Some(LossEvent::Moved { at, from_ttl, ttl, loss_pct }),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn at(run: usize) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + TimeDelta::minutes(2 * run as i64)
    }

    fn ip(n: &str) -> IpAddr {
        format!("10.0.0.{n}").parse().unwrap()
    }

    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|n| ip(n)).collect()
    }

    /// A hop from `*` (silent) or `2` or `2,5` (10.0.0.2 and 10.0.0.5), 10 probes sent,
    /// `loss` percent of them lost (all, if silent); RTT 10 ms per TTL.
    fn hop(ttl: usize, token: &str, loss: u32) -> Hop {
        let addrs: Vec<IpAddr> = if token == "*" { Vec::new() } else { token.split(',').map(ip).collect() };
        let received = if addrs.is_empty() { 0 } else { 10 - loss / 10 };
        let rtt = (received > 0).then_some(10.0 * ttl as f32);
        Hop {
            ttl: ttl as u8,
            addrs,
            sent: 10,
            received,
            rtt_best_ms: rtt,
            rtt_avg_ms: rtt,
            rtt_worst_ms: rtt,
            rtt_stddev_ms: rtt.map(|_| 0.5),
            jitter_ms: rtt.map(|_| 0.3),
        }
    }

    /// A run from hop tokens separated by spaces, each hop losing `losses[i]` percent
    /// (none given: no loss). It reached its destination unless the last hop is silent.
    fn lossy_run(n: usize, spec: &str, losses: &[u32]) -> Run {
        let tokens: Vec<&str> = spec.split_whitespace().collect();
        let hops = tokens.iter().enumerate().map(|(i, t)| hop(i + 1, t, losses.get(i).copied().unwrap_or(0))).collect();
        Run { at: at(n), hops, reached: tokens.last().is_some_and(|t| *t != "*") }
    }

    fn run(n: usize, spec: &str) -> Run {
        lossy_run(n, spec, &[])
    }

    fn shape(spec: &str) -> PathShape {
        PathShape::of(&run(0, spec))
    }

    #[test]
    fn shape_of_a_run() {
        let s = shape("1 5,2,2 * 3 * *");
        assert_eq!(s.hops(), [ips(&["1"]), ips(&["2", "5"]), vec![], ips(&["3"])], "sorted, deduplicated, cut");
        assert!(!s.reached(), "the destination did not answer: the shape ends silent");
        assert_eq!((s.at(2), s.at(3), s.at(9), s.at(0)), (&ips(&["2", "5"])[..], &[][..], &[][..], &[][..]));
        let s = shape("1 2 3");
        assert_eq!((s.len(), s.reached()), (3, true));
        assert!(shape("* * *").is_empty());
        // A run claiming to have reached while its last hops are silent did not.
        let mut r = run(0, "1 2 * *");
        r.reached = true;
        assert!(!PathShape::of(&r).reached());
    }

    #[test]
    fn same_path_or_where_they_part() {
        type Case =
            (&'static str, &'static str, &'static str, Option<(u8, &'static [&'static str], &'static [&'static str])>);
        let cases: &[Case] = &[
            ("identical", "1 2 3 4", "1 2 3 4", None),
            ("a silent hop matches anything", "1 * 3 4", "1 2 3 4", None),
            ("silent on the new side", "1 2 3 4", "1 * * 4", None),
            ("an ECMP set and one of its addresses", "1 2,5 3 4", "1 5 3 4", None),
            ("sets that intersect", "1 2,5 3 4", "1 5,7 3 4", None),
            ("another router", "1 2 3 4", "1 7 3 4", Some((2, &["2"], &["7"]))),
            ("the first of two differences", "1 2 3 4", "1 2 8 9", Some((3, &["3"], &["8"]))),
            ("destination cut: the new path ends silent", "1 2 3 4", "1 2 3 * *", None),
            ("the old path ended silent", "1 2 * *", "1 2 3 4", None),
            ("nothing answered", "* * *", "1 2 3 4", None),
            ("the destination a hop further", "1 2 3 4", "1 2 3 * 4", Some((5, &[], &["4"]))),
            ("the destination a hop nearer", "1 2 3 * 4", "1 2 3 4", Some((5, &["4"], &[]))),
            ("reached at 3 and 2", "1 2 3", "1 2", Some((3, &["3"], &[]))),
            ("longer, but the old one ends silent", "1 2 *", "1 2 3 4 5 6", None),
            ("reached at 6 and 8", "1 2 3 4 5 9", "1 2 3 4 5 6 7 9", Some((6, &["9"], &["6"]))),
        ];
        for &(name, old, new, want) in cases {
            let (old, new) = (shape(old), shape(new));
            let want = want.map(|(ttl, o, n)| Divergence { ttl, old: ips(o), new: ips(n) });
            assert_eq!(first_divergence(&old, &new), want, "{name}");
            assert_eq!(old.matches(&new), want.is_none(), "{name}");
            assert_eq!(new.matches(&old), want.is_none(), "{name}: the rule is symmetric");
        }
    }

    #[test]
    fn absorbing_grows_ecmp_sets_and_the_end() {
        let mut s = shape("1 2 3 4");
        s.absorb(&shape("1 2,5 * 4"));
        assert_eq!(s, shape("1 2,5 3 4"));
        assert!(s.matches(&shape("1 5 3 4")), "the other branch of the diamond, seen before");
        let mut open = shape("1 2 *");
        open.absorb(&shape("1 2 3 4"));
        assert_eq!(open, shape("1 2 3 4"), "an open end takes the longer path's end");
        let mut full = shape("1 2 3 4");
        full.absorb(&shape("1 2 * *"));
        assert_eq!(full, shape("1 2 3 4"), "a cut run does not shorten the path");
    }

    /// Feeds the runs (numbered from 0) to a new tracker; the events, one line each.
    fn route_events(specs: &[&str], cfg: &RouteConfig) -> (RouteTracker, Vec<String>) {
        let mut t = RouteTracker::new();
        let mut lines = Vec::new();
        for (n, spec) in specs.iter().enumerate() {
            for e in t.observe(&run(n, spec), cfg) {
                lines.push(summary(&e));
            }
        }
        (t, lines)
    }

    fn summary(e: &RouteEvent) -> String {
        let run = |t: &DateTime<Utc>| (*t - DateTime::UNIX_EPOCH).num_minutes() / 2;
        let last = |a: &[IpAddr]| {
            a.iter().map(|ip| ip.to_string().rsplit('.').next().unwrap().to_string()).collect::<Vec<_>>()
        };
        match e {
            RouteEvent::Changed(c) => {
                format!(
                    "changed@{} ttl {}: {:?} > {:?}",
                    run(&c.at),
                    c.divergence.ttl,
                    last(&c.divergence.old),
                    last(&c.divergence.new)
                )
            }
            RouteEvent::FlapStart { at, .. } => format!("flap-start@{}", run(at)),
            RouteEvent::FlapEnd { at, since, .. } => format!("flap-end@{} since {}", run(at), run(since)),
        }
    }

    const P: &str = "1 2 3 4";
    const Q: &str = "1 2 6 4";
    const R: &str = "1 2 7 4";

    #[test]
    fn route_changes_need_k_runs() {
        let cfg = RouteConfig::default();
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("the first run establishes the path", &[P], &[]),
            ("a single odd run", &[P, P, Q, P, P], &[]),
            ("a single odd run at the end", &[P, P, Q], &[]),
            ("two odd runs on different paths", &[P, Q, R, P], &[]),
            ("K runs: one event at the first", &[P, P, Q, Q, Q, Q], &["changed@2 ttl 3: [\"3\"] > [\"6\"]"]),
            (
                "and back: a second event",
                &[P, P, Q, Q, P, P],
                &["changed@2 ttl 3: [\"3\"] > [\"6\"]", "changed@4 ttl 3: [\"6\"] > [\"3\"]"],
            ),
            (
                "a run where nothing answered says nothing",
                &[P, "* * *", Q, "* *", Q],
                &["changed@2 ttl 3: [\"3\"] > [\"6\"]"],
            ),
            ("nothing answered before the first", &["* *", P, Q, Q], &["changed@2 ttl 3: [\"3\"] > [\"6\"]"]),
            ("silent hops change nothing", &[P, "1 * 3 4", "1 2 * 4", "* * * 4", "1 * * 4"], &[]),
            ("destination cut: the path ends at the last answering hop", &[P, "1 2 * *", "1 2 * *", "1 2 3 * *"], &[]),
            ("a longer path", &[P, "1 2 3 * 4", "1 2 3 * 4"], &["changed@1 ttl 5: [] > [\"4\"]"]),
            ("a longer path, filled in", &[P, "1 2 3 * 4", "1 2 3 9 4"], &["changed@1 ttl 4: [\"4\"] > [\"9\"]"]),
            ("a shorter path", &["1 2 3 9 4", P, P], &["changed@1 ttl 4: [\"9\"] > [\"4\"]"]),
            (
                "ECMP learnt from k_runs runs with both branches",
                &[P, "1 2 3,9 4", P, "1 2 3,9 4", "1 2 9 4", "1 2 9 4"],
                &[],
            ),
            (
                "a change under way in a run: both once, then the new branch only",
                &[P, P, "1 2 3,9 4", "1 2 9 4", "1 2 9 4", "1 2 3,9 4"],
                &["changed@3 ttl 3: [\"3\"] > [\"9\"]"],
            ),
            (
                "a branch a change brings in is not learnt: a change back is one",
                &[P, "1 2 3,9 4", "1 2 9 4", "1 2 9 4", "1 2 3 4", "1 2 3 4"],
                &["changed@2 ttl 3: [\"3\"] > [\"9\"]", "changed@4 ttl 3: [\"9\"] > [\"3\"]"],
            ),
            ("a new branch is a new path", &[P, P, "1 2 9 4", "1 2 9 4"], &["changed@2 ttl 3: [\"3\"] > [\"9\"]"]),
        ];
        for &(name, specs, want) in cases {
            let (_, got) = route_events(specs, &cfg);
            assert_eq!(got, want, "{name}");
        }
        let (_, got) = route_events(&[P, Q, P], &RouteConfig { k_runs: 1, ..cfg });
        assert_eq!(got.len(), 2, "k_runs 1: every switch is a change: {got:?}");
        let (_, got) = route_events(&[P, Q, Q, P, P, P], &RouteConfig { k_runs: 3, ..cfg });
        assert!(got.is_empty(), "k_runs 3: {got:?}");
    }

    #[test]
    fn a_change_says_where_and_what_it_did_to_the_destination() {
        let mut t = RouteTracker::new();
        let cfg = RouteConfig::default();
        let dest = |mut r: Run, rtt: f32, received: u32| {
            let last = r.hops.last_mut().unwrap();
            (last.rtt_avg_ms, last.received) = (Some(rtt), received);
            r
        };
        assert!(t.observe(&dest(run(0, P), 20.0, 10), &cfg).is_empty());
        assert!(t.observe(&dest(run(1, P), 22.0, 9), &cfg).is_empty());
        assert!(t.observe(&dest(run(2, "1 2 6,8 * 4"), 40.0, 10), &cfg).is_empty());
        let events = t.observe(&dest(run(3, "1 2 6 5 4"), 50.0, 8), &cfg);
        let [RouteEvent::Changed(c)] = &events[..] else { panic!("{events:?}") };
        assert_eq!(c.at, at(2), "dated at the first run of the new path");
        assert_eq!(c.divergence, Divergence { ttl: 3, old: ips(&["3"]), new: ips(&["6", "8"]) });
        assert_eq!((c.old.clone(), c.new.clone()), (shape(P), shape("1 2 6,8 5 4")));
        assert_eq!((c.rtt_before_ms, c.loss_before_pct), (Some(22.0), 10.0), "the last run of the old path");
        assert_eq!((c.rtt_after_ms, c.loss_after_pct), (Some(45.0), 10.0), "the mean over the new runs");
        assert_eq!(t.current().unwrap().since, at(2));
    }

    #[test]
    fn percent_switched_is_nagios_weighting() {
        let pct = |s: &str| percent_switched(&s.chars().map(|c| c == 'x').collect(), 21);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert_eq!(pct(""), 0.0);
        assert_eq!(pct(&".".repeat(20)), 0.0);
        assert!(close(pct(&"x".repeat(20)), 100.0), "weights 0.75..1.25 average 1");
        assert!(close(pct(&format!("{}x", ".".repeat(19))), 6.25), "the newest: 1.25 of 20");
        assert!(close(pct(&format!("x{}", ".".repeat(19))), 3.75), "the oldest: 0.75");
        assert!(close(pct(".x"), 6.25), "a short history is right-aligned");
        assert!(close(pct(&format!("x{}", ".".repeat(20))), 0.0), "beyond the window");
    }

    #[test]
    fn flapping_limits_events() {
        // k_runs 1, so that without flap detection every switch would be a change.
        let cfg = RouteConfig { k_runs: 1, ..RouteConfig::default() };
        let mut specs = vec![P; 3];
        specs.extend([Q, P].repeat(15));
        specs.extend([Q; 30]);
        let (t, got) = route_events(&specs, &cfg);
        let start = got.iter().position(|e| e.starts_with("flap-start")).expect("never flapped");
        let end = got.iter().position(|e| e.starts_with("flap-end")).expect("never settled");
        assert_eq!(got.iter().filter(|e| e.starts_with("flap-")).count(), 2, "{got:?}");
        assert!(got[..start].iter().all(|e| e.starts_with("changed")) && start >= 4, "{got:?}");
        assert_eq!(end, start + 1, "no change while flapping: {got:?}");
        // Settled on Q from run 33; the flapping ended with Q current since then.
        assert!(got[end].ends_with("since 33"), "{got:?}");
        assert_eq!(t.current().unwrap().shape, shape(Q));
        assert!(!t.flapping() && t.flap_pct(&cfg) <= cfg.flap_low_pct);

        // The default k_runs: alternating every run never makes a change, but flaps.
        let (t, got) = route_events(&specs[..33], &RouteConfig::default());
        assert_eq!(got, ["flap-start@11"], "9 switches in a row, as probers' health");
        assert!(t.flapping());
        assert_eq!(t.current().unwrap().shape, shape(P));
        // Two runs on each path: changes until the flapping is noticed, then none.
        let mut specs = vec![P; 2];
        specs.extend([Q, Q, P, P].repeat(12));
        let (t, got) = route_events(&specs, &RouteConfig::default());
        let start = got.iter().position(|e| e.starts_with("flap-start")).expect("never flapped");
        assert!(start >= 3 && start == got.len() - 1, "{got:?}");
        assert!(t.flapping());
    }

    #[test]
    fn the_tracker_round_trips_through_json() {
        // Stored and loaded back after every run, it says what the live one says.
        let cfg = RouteConfig::default();
        let mut specs = vec![P, P, "1 2 3,9 4", Q, "* *", Q, R];
        specs.extend([P, Q].repeat(10));
        specs.extend([R; 25]);
        let (mut live, mut stored) = (RouteTracker::new(), RouteTracker::new());
        let (mut ev_live, mut ev_stored) = (Vec::new(), Vec::new());
        for (n, spec) in specs.iter().enumerate() {
            ev_live.extend(live.observe(&run(n, spec), &cfg));
            ev_stored.extend(stored.observe(&run(n, spec), &cfg));
            let json = serde_json::to_string(&stored).unwrap();
            stored = serde_json::from_str(&json).unwrap();
            assert_eq!(stored, live, "run {n}: {json}");
        }
        assert_eq!(ev_live, ev_stored);
        assert!(ev_live.iter().any(|e| matches!(e, RouteEvent::FlapEnd { .. })), "{ev_live:?}");
        let json = serde_json::to_value(&ev_live[0]).unwrap();
        assert_eq!(json["event"], "changed");
        assert_eq!(serde_json::from_value::<RouteEvent>(json).unwrap(), ev_live[0]);
    }

    #[test]
    fn configs_are_checked() {
        assert_eq!(RouteConfig::default().validate(), Ok(()));
        let d = RouteConfig::default();
        let bad = [
            (RouteConfig { k_runs: 0, ..d }, "k_runs"),
            (RouteConfig { flap_window: 2, ..d }, "flap_window"),
            (RouteConfig { flap_window: MAX_RUNS + 1, ..d }, "flap_window"),
            (RouteConfig { flap_low_pct: 60.0, ..d }, "flap_low_pct"),
            (RouteConfig { flap_high_pct: 0.0, flap_low_pct: 0.0, ..d }, "flap_high_pct"),
            (RouteConfig { flap_high_pct: f64::NAN, ..d }, "flap_high_pct"),
        ];
        for (cfg, field) in bad {
            let err = cfg.validate().unwrap_err();
            assert!(err.contains(field), "{cfg:?}: {err}");
        }
        assert_eq!(LossConfig::default().validate(), Ok(()));
        assert!(LossConfig { k_runs: 0, ..Default::default() }.validate().unwrap_err().contains("k_runs"));
        for min_pct in [0.0, 101.0, f32::NAN] {
            assert!(LossConfig { min_pct, ..Default::default() }.validate().unwrap_err().contains("min_pct"));
        }
    }

    #[test]
    fn loss_per_hop_and_onset() {
        // (name, hops, loss per hop, onset at 20 %, rate-limited TTLs)
        type Case = (&'static str, &'static str, &'static [u32], Option<u8>, &'static [u8]);
        let cases: &[Case] = &[
            ("clean", "1 2 3 4 5 6", &[], None, &[]),
            ("a rate-limited middle hop", "1 2 3 4 5 6", &[0, 0, 90, 0, 0, 0], None, &[3]),
            ("a silent middle hop", "1 * 3 4", &[], None, &[2]),
            ("30 % from hop 5 to the end", "1 2 3 4 5 6 7 8", &[0, 0, 0, 0, 30, 30, 30, 30], Some(5), &[]),
            ("with noise", "1 2 3 4 5 6 7 8", &[0, 0, 0, 0, 30, 40, 30, 30], Some(5), &[6]),
            // Hops losing more than a later one lose some of their own answers, lossy
            // stretch or not; the onset holds as long as the least loss is enough.
            ("the least loss counts", "1 2 3 4 5 6 7 8", &[0, 0, 0, 0, 30, 40, 30, 20], Some(5), &[5, 6, 7]),
            ("behind a rate-limited hop", "1 2 3 4 5 6", &[0, 0, 90, 0, 30, 30], Some(5), &[3]),
            ("a rate-limited hop in the lossy stretch", "1 2 3 4 5 6", &[0, 0, 0, 30, 90, 30], Some(4), &[5]),
            ("not to the destination", "1 2 3 4 5 6", &[0, 0, 0, 30, 30, 0], None, &[4, 5]),
            ("under the threshold", "1 2 3 4", &[0, 0, 10, 10], None, &[]),
            ("from the first hop", "1 2 3", &[50, 50, 50], Some(1), &[]),
            ("destination cut", "1 2 3 * *", &[], Some(4), &[]),
            ("the destination alone", "1 2 3 4", &[0, 0, 0, 40], Some(4), &[]),
        ];
        for &(name, spec, losses, onset, limited) in cases {
            let r = lossy_run(0, spec, losses);
            assert_eq!(loss_onset(&r, 20.0), onset, "{name}");
            let hl = hop_losses(&r);
            let got: Vec<u8> = hl.iter().filter(|h| h.rate_limited).map(|h| h.ttl).collect();
            assert_eq!(got, limited, "{name}: rate-limited");
            assert_eq!(hl.iter().map(|h| h.ttl).collect::<Vec<_>>(), (1..=r.hops.len() as u8).collect::<Vec<_>>());
        }
        let r = lossy_run(0, "1 2 3 4 5 6", &[0, 0, 0, 0, 30, 30]);
        let hl = hop_losses(&r);
        assert_eq!((hl[3].loss_pct, hl[3].rate_limited), (0.0, false), "hop 4 is clean");
        assert_eq!(hl[4].loss_pct, 30.0);
        assert_eq!(onset_and_loss(&lossy_run(0, "1 2 3 4", &[0, 40, 30, 50]), 20.0), Some((2, 30.0)));
        let lost = Hop { received: 12, ..hop(1, "1", 0) };
        assert_eq!(lost.loss_pct(), 0.0, "received capped at sent");
        assert_eq!(Hop { sent: 0, ..lost }.loss_pct(), 100.0);
    }

    #[test]
    fn loss_events_need_k_runs() {
        const CLEAN: &[u32] = &[];
        const AT5: &[u32] = &[0, 0, 0, 0, 30, 30];
        const AT5_MORE: &[u32] = &[0, 0, 0, 0, 50, 50];
        const AT4: &[u32] = &[0, 0, 0, 40, 40, 40];
        // (name, loss per hop of each run, events)
        type Case<'a> = (&'a str, &'a [&'a [u32]], &'a [&'a str]);
        let cases: &[Case] = &[
            ("clean", &[CLEAN, CLEAN, CLEAN], &[]),
            ("one lossy run", &[CLEAN, AT5, CLEAN, AT5, CLEAN], &[]),
            ("K lossy runs", &[CLEAN, AT5, AT5_MORE, AT5], &["started@1 ttl 5 40%"]),
            ("lossy from the start", &[AT5, AT5], &["started@0 ttl 5 30%"]),
            ("and clear again", &[AT5, AT5, CLEAN, AT5, CLEAN, CLEAN], &["started@0 ttl 5 30%", "cleared@4 ttl 5"]),
            ("the onset moves", &[AT5, AT5, AT4, AT5, AT4, AT4], &["started@0 ttl 5 30%", "moved@4 ttl 5 > 4 40%"]),
        ];
        for &(name, runs, want) in cases {
            let mut t = LossTracker::new();
            let mut got = Vec::new();
            for (n, losses) in runs.iter().enumerate() {
                let ev = t.observe(&lossy_run(n, "1 2 3 4 5 6", losses), &LossConfig::default());
                let json = serde_json::to_string(&t).unwrap();
                assert_eq!(serde_json::from_str::<LossTracker>(&json).unwrap(), t, "{name}: round trip");
                let run = |t: &DateTime<Utc>| (*t - DateTime::UNIX_EPOCH).num_minutes() / 2;
                got.extend(ev.map(|e| match e {
                    LossEvent::Started { at, ttl, loss_pct } => format!("started@{} ttl {ttl} {loss_pct}%", run(&at)),
                    LossEvent::Cleared { at, ttl } => format!("cleared@{} ttl {ttl}", run(&at)),
                    LossEvent::Moved { at, from_ttl, ttl, loss_pct } => {
                        format!("moved@{} ttl {from_ttl} > {ttl} {loss_pct}%", run(&at))
                    }
                }));
            }
            assert_eq!(got, want, "{name}");
        }
        let mut t = LossTracker::new();
        let cut = run(0, "1 2 3 * *");
        assert_eq!(t.observe(&cut, &LossConfig::default()), None);
        let ev = t.observe(&Run { at: at(1), ..cut }, &LossConfig::default());
        assert_eq!(ev, Some(LossEvent::Started { at: at(0), ttl: 4, loss_pct: 100.0 }));
        assert_eq!((t.onset(), t.since()), (Some(4), Some(at(0))));
    }
}
