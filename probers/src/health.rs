//! Edge health: pure logic, no I/O and no SQL.
//!
//! Each probe cycle of an edge gets a [`Verdict`] from [`Thresholds`] (ok, degraded or
//! failed, by loss and average RTT). [`EdgeHealth::observe`] feeds verdicts through a state
//! machine with hysteresis and Nagios-style flap detection and returns the [`Event`]s to
//! record; [`EdgeHealth::check_stale`] turns an edge whose results stopped coming `stale`.
//! Every field of [`EdgeHealth`] maps to one column of the `edge_health` table, and every
//! [`Event`] to one row of `edge_events` (`from_state`, `to_state`, `reason`).
//!
//! # Verdicts (defaults of [`Thresholds`])
//!
//! A cycle is **failed** when loss ≥ 90 %, **degraded** when loss ≥ 20 % or the average RTT
//! ≥ 500 ms, **ok** otherwise. With the usual 5 packets per cycle loss moves in steps of
//! 20 %: 0 lost is ok, 1–4 lost is degraded, all 5 lost is failed. So a link with 30 %
//! random loss is degraded in ~83 % of its cycles and failed in only 0.24 % of them
//! (0.3⁵); two failed cycles in a row (what makes `down`) happen about once in 170,000
//! cycles — such a link reads `degraded`, not `down`. With 80 % as the failure line the
//! same link would fail 3 % of its cycles and go `down` about every day and a half at
//! one cycle every 2 minutes. 90 % (rather than 100 %) keeps a 10- or 20-packet cycle
//! with a lone straggler reply counted as failed. 500 ms is well above any terrestrial
//! round trip (the longest great-circle paths are ~300 ms), so only queueing or a broken
//! path gets there.
//!
//! # States and hysteresis (defaults of [`HealthConfig`])
//!
//! `unknown` is the initial state. Every transition needs a run of cycles in a row, so a
//! single bad (or good) cycle never changes anything:
//!
//! * to `down` after `k_down` (2) failed cycles in a row, from any state;
//! * to `up` after `m_up` (2) ok cycles in a row, from any state — also from `unknown`:
//!   a new edge stays `unknown` until its first run decides it (2 cycles by default),
//!   because deciding on one cycle would let a single failure make `down`;
//! * to `degraded` after `k_degraded` (2) cycles in a row that were in between: coming
//!   from above (`up`), cycles that were not ok (degraded or failed, so a mix of the two
//!   still counts); coming from below (`down`), cycles that were not failed (the link
//!   partly works again, but not yet `m_up` clean cycles); from `unknown` or `stale`,
//!   either. `down` wins over `degraded` when both runs are long enough.
//! * to `stale` when no result came for `stale_after_intervals` (3) probe intervals, see
//!   [`EdgeHealth::check_stale`]. A stale edge starts afresh (streaks and history
//!   cleared) and, like `unknown`, stays `stale` until a run of results decides its state.
//!
//! # Flapping
//!
//! [`EdgeHealth::recent_states`] keeps one character per cycle (`o` ok, `d` degraded, `f`
//! failed), newest last. The percent state change is computed as Nagios does: over the
//! last `flap_window` (21) cycles, each change between consecutive cycles is weighted
//! linearly from 0.75 (oldest) to 1.25 (newest), the sum is divided by the 20 possible
//! changes; a history shorter than the window counts as if padded with its oldest entry
//! (Nagios seeds its history with the current state). The edge starts flapping when the
//! percentage is ≥ `flap_high_pct` (50) and stops when it is ≤ `flap_low_pct` (25); in
//! between the flag keeps its value. Per-cycle verdicts are used (not states) so that a
//! link that goes down and up every cycle — which the hysteresis alone never reports —
//! is caught. A change is a cycle that failed after one that did not, or the other way
//! round: ok↔degraded is no change. Loss makes a healthy link's cycles degraded now and
//! then (one lost packet of five is 20%): with 2% loss on each of two links, 18% of the
//! cycles came out degraded in the lab, and counting ok↔degraded made half the edges
//! "flap" without a single failed cycle. That is degradation, which has its own state.
//!
//! While an edge is flapping its state is still tracked (`state` and `since` follow the
//! rules above) but state changes emit no events, so its ups and downs are not new
//! failures.
//!
//! # Events
//!
//! Events use the five states plus the pseudo-state `flapping`: flapping starts with an
//! event `<state> → flapping` and ends with one event `flapping → <current state>`. A
//! state change on the very cycle that flapping starts is emitted first. So the events
//! of an edge always form a chain — each event's `from` is the previous event's `to`,
//! starting at `unknown` — and a report can read both state and flapping intervals from
//! `edge_events` alone. Going `stale` ends flapping (`flapping → stale`): with no
//! results there is nothing to flap.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

pub use graph_store::vocab::{EventState, HealthState, Verdict};

/// Upper bound for every cycle count in [`HealthConfig`] (bounded memory per edge).
pub const MAX_CYCLES: u32 = 1000;

/// Nagios' weight of the oldest state change in the flap window.
const FLAP_WEIGHT_OLDEST: f64 = 0.75;
/// Nagios' weight of the newest state change in the flap window.
const FLAP_WEIGHT_NEWEST: f64 = 1.25;

/// A health setting out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid health setting `{field}`: {reason}")]
pub struct HealthConfigError {
    pub field: &'static str,
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> HealthConfigError {
    HealthConfigError { field, reason: reason.into() }
}

/// Where a cycle's loss and RTT turn its verdict to degraded or failed. See the module
/// documentation for why the defaults are what they are.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Loss (percent) from which a cycle is degraded. Default 20 (one packet in five).
    pub degraded_loss_pct: f64,
    /// Loss (percent) from which a cycle is failed. Default 90 (all of five packets).
    pub failed_loss_pct: f64,
    /// Average RTT (milliseconds) from which a cycle is degraded. Default 500.
    pub degraded_rtt_ms: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { degraded_loss_pct: 20.0, failed_loss_pct: 90.0, degraded_rtt_ms: 500.0 }
    }
}

impl Thresholds {
    /// Validated thresholds: `0 < degraded_loss_pct <= failed_loss_pct <= 100` and
    /// `degraded_rtt_ms > 0`.
    pub fn new(degraded_loss_pct: f64, failed_loss_pct: f64, degraded_rtt_ms: f64) -> Result<Self, HealthConfigError> {
        let t = Thresholds { degraded_loss_pct, failed_loss_pct, degraded_rtt_ms };
        t.validate()?;
        Ok(t)
    }

    /// Checks the ranges [`Thresholds::new`] enforces (for values read from a config file).
    pub fn validate(&self) -> Result<(), HealthConfigError> {
        let pct = |field, v: f64| {
            if v.is_finite() && v > 0.0 && v <= 100.0 {
                Ok(())
            } else {
                Err(invalid(field, format!("{v} is not a percentage in (0, 100]")))
            }
        };
        pct("degraded_loss_pct", self.degraded_loss_pct)?;
        pct("failed_loss_pct", self.failed_loss_pct)?;
        if self.degraded_loss_pct > self.failed_loss_pct {
            return Err(invalid(
                "degraded_loss_pct",
                format!("{} is above failed_loss_pct {}", self.degraded_loss_pct, self.failed_loss_pct),
            ));
        }
        if !(self.degraded_rtt_ms.is_finite() && self.degraded_rtt_ms > 0.0) {
            return Err(invalid("degraded_rtt_ms", format!("{} is not a positive duration", self.degraded_rtt_ms)));
        }
        Ok(())
    }

    /// The verdict of a cycle that sent `sent` probes and got `received` answers with the
    /// given average RTT. A cycle that sent nothing counts as 100 % loss (callers should
    /// not feed cycles that were refused by the allow-list: they say nothing about the
    /// network). `received` is capped at `sent`; a missing or non-finite RTT is ignored.
    pub fn verdict(&self, sent: u32, received: u32, rtt_avg_ms: Option<f64>) -> Verdict {
        let received = received.min(sent);
        let lost = f64::from(sent - received);
        let sent_f = f64::from(sent.max(1));
        let lost = if sent == 0 { 1.0 } else { lost };
        // Compare lost/sent ≥ pct/100 as lost·100 ≥ pct·sent: exact for whole packets, so
        // 1 of 5 lost is exactly 20 %.
        let at_least = |pct: f64| lost * 100.0 >= pct * sent_f;
        if at_least(self.failed_loss_pct) {
            Verdict::Failed
        } else if at_least(self.degraded_loss_pct)
            || rtt_avg_ms.is_some_and(|rtt| rtt.is_finite() && rtt >= self.degraded_rtt_ms)
        {
            Verdict::Degraded
        } else {
            Verdict::Ok
        }
    }

    /// [`Thresholds::verdict`] together with the figures, for [`EdgeHealth::observe`] to
    /// quote in event reasons.
    pub fn assess(&self, sent: u32, received: u32, rtt_avg_ms: Option<f64>) -> Observation {
        let received_c = received.min(sent);
        let loss_pct = if sent == 0 { 100.0 } else { f64::from(sent - received_c) * 100.0 / f64::from(sent) };
        Observation {
            verdict: self.verdict(sent, received, rtt_avg_ms),
            loss_pct: Some(loss_pct),
            rtt_avg_ms: rtt_avg_ms.filter(|r| r.is_finite() && received_c > 0),
        }
    }
}

/// Hysteresis, staleness and flap detection settings. See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Failed cycles in a row that make an edge `down`.
    pub k_down: u32,
    /// Ok cycles in a row that make an edge `up`.
    pub m_up: u32,
    /// In-between cycles in a row that make an edge `degraded`.
    pub k_degraded: u32,
    /// Probe intervals without any result after which an edge is `stale`.
    pub stale_after_intervals: u32,
    /// Cycles over which the percent state change is computed (Nagios: 21).
    pub flap_window: u32,
    /// Percent state change at or above which an edge starts flapping (Nagios: 50).
    pub flap_high_pct: f64,
    /// Percent state change at or below which a flapping edge stops (Nagios: 25).
    pub flap_low_pct: f64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            k_down: 2,
            m_up: 2,
            k_degraded: 2,
            stale_after_intervals: 3,
            flap_window: 21,
            flap_high_pct: 50.0,
            flap_low_pct: 25.0,
        }
    }
}

impl HealthConfig {
    /// Checks the ranges: every count in `1..=MAX_CYCLES`, `flap_window >= 3` (the Nagios
    /// weighting needs at least two changes), `0 <= flap_low_pct <= flap_high_pct <= 100`
    /// and `flap_high_pct > 0`.
    pub fn validate(&self) -> Result<(), HealthConfigError> {
        let count = |field, v: u32, min: u32| {
            if (min..=MAX_CYCLES).contains(&v) {
                Ok(())
            } else {
                Err(invalid(field, format!("{v} is not in {min}..={MAX_CYCLES}")))
            }
        };
        count("k_down", self.k_down, 1)?;
        count("m_up", self.m_up, 1)?;
        count("k_degraded", self.k_degraded, 1)?;
        count("stale_after_intervals", self.stale_after_intervals, 1)?;
        count("flap_window", self.flap_window, 3)?;
        let pct = |field, v: f64| {
            if v.is_finite() && (0.0..=100.0).contains(&v) {
                Ok(())
            } else {
                Err(invalid(field, format!("{v} is not a percentage in [0, 100]")))
            }
        };
        pct("flap_high_pct", self.flap_high_pct)?;
        pct("flap_low_pct", self.flap_low_pct)?;
        if self.flap_high_pct <= 0.0 {
            return Err(invalid("flap_high_pct", "0 would mark every edge flapping"));
        }
        if self.flap_low_pct > self.flap_high_pct {
            return Err(invalid(
                "flap_low_pct",
                format!("{} is above flap_high_pct {}", self.flap_low_pct, self.flap_high_pct),
            ));
        }
        Ok(())
    }

    /// Cycles kept in [`EdgeHealth::recent_states`]: the flap window, or `k_degraded` if
    /// that is longer (the run of not-failed cycles is read from the history).
    pub fn history_len(&self) -> usize {
        self.flap_window.max(self.k_degraded).min(MAX_CYCLES) as usize
    }
}

/// A string that is not a verdict history (one `o`, `d` or `f` per cycle).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {what}: {value:?}")]
pub struct ParseHealthError {
    what: &'static str,
    value: String,
}

/// A cycle's verdict with the figures behind it (quoted in event reasons).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub verdict: Verdict,
    pub loss_pct: Option<f64>,
    pub rtt_avg_ms: Option<f64>,
}

impl From<Verdict> for Observation {
    fn from(verdict: Verdict) -> Self {
        Observation { verdict, loss_pct: None, rtt_avg_ms: None }
    }
}

impl Observation {
    /// " (loss 40%, rtt 12.3 ms)", or "" without figures.
    fn detail(&self) -> String {
        let mut parts = Vec::new();
        if let Some(loss) = self.loss_pct {
            parts.push(format!("loss {loss:.0}%"));
        }
        if let Some(rtt) = self.rtt_avg_ms {
            parts.push(format!("rtt {rtt:.1} ms"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        }
    }
}

/// A change of an edge's state or flapping flag (one row of `edge_events`; the caller
/// adds the edge).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub from: EventState,
    pub to: EventState,
    /// Human-readable, e.g. "2 failed cycles in a row (loss 100%)".
    pub reason: String,
}

/// The verdicts of the last cycles, oldest first, stored as one character per cycle
/// (`o`, `d`, `f`) in `edge_health.recent_states`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VerdictHistory(VecDeque<Verdict>);

impl VerdictHistory {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Verdict> + '_ {
        self.0.iter().copied()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Appends `v`, dropping the oldest entries beyond `cap`.
    pub fn push(&mut self, v: Verdict, cap: usize) {
        self.0.push_back(v);
        while self.0.len() > cap.max(1) {
            self.0.pop_front();
        }
    }

    /// How many of the newest verdicts in a row satisfy `pred`.
    pub fn trailing_run(&self, pred: impl Fn(Verdict) -> bool) -> usize {
        self.iter().rev().take_while(|&v| pred(v)).count()
    }

    /// Nagios' weighted percent state change over the last `window` verdicts (0–100).
    /// Changes are weighted linearly from 0.75 (oldest possible) to 1.25 (newest) and the
    /// sum is divided by the `window - 1` possible changes; a shorter history counts as if
    /// it were padded at the old end with its oldest verdict.
    pub fn percent_state_change(&self, window: usize) -> f64 {
        if window < 3 {
            return 0.0;
        }
        let skip = self.0.len().saturating_sub(window);
        let recent: Vec<Verdict> = self.iter().skip(skip).collect();
        // Position of recent[i] in the window, right-aligned: the newest is at window - 1.
        let offset = window - recent.len();
        let step = (FLAP_WEIGHT_NEWEST - FLAP_WEIGHT_OLDEST) / (window - 2) as f64;
        let failed = |v: Verdict| v == Verdict::Failed;
        let changes: f64 = (1..recent.len())
            .filter(|&i| failed(recent[i]) != failed(recent[i - 1]))
            .map(|i| FLAP_WEIGHT_OLDEST + (offset + i - 1) as f64 * step)
            .sum();
        // `+ 0.0` turns the -0.0 of an empty sum into 0.
        (changes * 100.0 / (window - 1) as f64).clamp(0.0, 100.0) + 0.0
    }
}

impl fmt::Display for VerdictHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.iter().try_for_each(|v| fmt::Write::write_char(f, v.as_char()))
    }
}

impl FromStr for VerdictHistory {
    type Err = ParseHealthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.chars()
            .map(Verdict::from_char)
            .collect::<Option<VecDeque<_>>>()
            .map(VerdictHistory)
            .ok_or_else(|| ParseHealthError { what: "verdict history", value: s.to_owned() })
    }
}

impl TryFrom<String> for VerdictHistory {
    type Error = ParseHealthError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<VerdictHistory> for String {
    fn from(h: VerdictHistory) -> String {
        h.to_string()
    }
}

/// The health of one edge: what `edge_health` stores (besides the last cycle's figures
/// and the probe schedule). Load it, [`observe`](EdgeHealth::observe) each cycle's
/// verdict, store it back together with the returned events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeHealth {
    pub state: HealthState,
    /// When `state` was entered.
    pub since: DateTime<Utc>,
    /// Time of the newest observed cycle (`edge_health.last_result_at`).
    pub last_result_at: Option<DateTime<Utc>>,
    /// Failed cycles in a row.
    pub fail_streak: u32,
    /// Ok cycles in a row.
    pub ok_streak: u32,
    /// Cycles in a row that were not ok (degraded or failed).
    pub degraded_streak: u32,
    /// Verdicts of the last cycles (`edge_health.recent_states`).
    pub recent_states: VerdictHistory,
    pub flapping: bool,
    /// Percent state change at the last cycle, 0–100.
    pub flap_pct: f64,
}

impl EdgeHealth {
    /// A new edge: `unknown` since `at`, no history.
    pub fn new(at: DateTime<Utc>) -> Self {
        EdgeHealth {
            state: HealthState::Unknown,
            since: at,
            last_result_at: None,
            fail_streak: 0,
            ok_streak: 0,
            degraded_streak: 0,
            recent_states: VerdictHistory::new(),
            flapping: false,
            flap_pct: 0.0,
        }
    }

    /// What the event log says the edge is: `flapping` while flapping, else the state.
    pub fn event_state(&self) -> EventState {
        if self.flapping {
            EventState::Flapping
        } else {
            self.state.into()
        }
    }

    /// Takes one cycle's verdict (a [`Verdict`] or, for reasons that quote loss and RTT,
    /// an [`Observation`] from [`Thresholds::assess`]) at time `at`; returns the events
    /// it caused, in order (none, one, or two when a state change and the start of
    /// flapping coincide).
    pub fn observe(&mut self, obs: impl Into<Observation>, at: DateTime<Utc>, cfg: &HealthConfig) -> Vec<Event> {
        let obs = obs.into();
        let verdict = obs.verdict;
        self.last_result_at = Some(self.last_result_at.map_or(at, |t| t.max(at)));
        match verdict {
            Verdict::Ok => {
                self.ok_streak = self.ok_streak.saturating_add(1);
                self.fail_streak = 0;
                self.degraded_streak = 0;
            }
            Verdict::Degraded => {
                self.ok_streak = 0;
                self.fail_streak = 0;
                self.degraded_streak = self.degraded_streak.saturating_add(1);
            }
            Verdict::Failed => {
                self.ok_streak = 0;
                self.fail_streak = self.fail_streak.saturating_add(1);
                self.degraded_streak = self.degraded_streak.saturating_add(1);
            }
        }
        self.recent_states.push(verdict, cfg.history_len());

        let mut events = Vec::new();
        let old = self.state;
        let change = self.next_state(cfg).map(|(new, why)| {
            self.state = new;
            self.since = at;
            Event { at, from: old.into(), to: new.into(), reason: format!("{why}{}", obs.detail()) }
        });

        let pct = self.recent_states.percent_state_change(cfg.flap_window as usize);
        self.flap_pct = pct;
        let was_flapping = self.flapping;
        // Nagios' order: undecided strictly between the thresholds, then "≤ low" stops.
        self.flapping =
            if pct > cfg.flap_low_pct && pct < cfg.flap_high_pct { was_flapping } else { pct > cfg.flap_low_pct };
        let cycles = self.recent_states.len().min(cfg.flap_window as usize);
        match (was_flapping, self.flapping) {
            (false, false) => events.extend(change),
            (false, true) => {
                events.extend(change);
                events.push(Event {
                    at,
                    from: self.state.into(),
                    to: EventState::Flapping,
                    reason: format!(
                        "flapping: {pct:.0}% state change over the last {cycles} cycles (start at {:.0}%)",
                        cfg.flap_high_pct
                    ),
                });
            }
            // Still flapping: the state is tracked, but its changes are not news.
            (true, true) => {}
            (true, false) => events.push(Event {
                at,
                from: EventState::Flapping,
                to: self.state.into(),
                reason: format!(
                    "flapping stopped: {pct:.0}% state change over the last {cycles} cycles (stop at {:.0}%); {} since {}",
                    cfg.flap_low_pct,
                    self.state,
                    self.since.format("%Y-%m-%d %H:%M:%S UTC")
                ),
            }),
        }
        events
    }

    /// The state the streaks call for, with the reason, if it differs from the current.
    fn next_state(&self, cfg: &HealthConfig) -> Option<(HealthState, String)> {
        let not_failed_run = self.recent_states.trailing_run(|v| v != Verdict::Failed) as u64;
        let from_above = u64::from(self.degraded_streak) >= u64::from(cfg.k_degraded);
        let from_below = not_failed_run >= u64::from(cfg.k_degraded);
        let (new, why) = if self.fail_streak >= cfg.k_down {
            (HealthState::Down, format!("{} failed cycles in a row", self.fail_streak))
        } else if self.ok_streak >= cfg.m_up {
            (HealthState::Up, format!("{} good cycles in a row", self.ok_streak))
        } else {
            let above = || {
                let all_degraded =
                    self.recent_states.trailing_run(|v| v == Verdict::Degraded) >= self.degraded_streak as usize;
                let (d, f) = (Verdict::Degraded, Verdict::Failed);
                let kind = if all_degraded { d.to_string() } else { format!("{d} or {f}") };
                (HealthState::Degraded, format!("{} {kind} cycles in a row", self.degraded_streak))
            };
            let below = || {
                (
                    HealthState::Degraded,
                    format!("{not_failed_run} cycles in a row not failed but not {} good ones", cfg.m_up),
                )
            };
            match self.state {
                HealthState::Up if from_above => above(),
                HealthState::Down if from_below => below(),
                HealthState::Unknown | HealthState::Stale if from_above => above(),
                HealthState::Unknown | HealthState::Stale if from_below => below(),
                _ => return None,
            }
        };
        (new != self.state).then_some((new, why))
    }

    /// Makes the edge `stale` if no result came for `cfg.stale_after_intervals` probe
    /// intervals before `now` (counted from the last result, or from `since` if there never
    /// was one). The event and the new `since` are dated when the edge became stale by that
    /// rule (`last result + intervals`), not `now`. Clears streaks, history and the
    /// flapping flag (the event then goes `flapping → stale`). Does nothing to an edge
    /// already stale, or for a zero interval.
    pub fn check_stale(&mut self, now: DateTime<Utc>, interval: Duration, cfg: &HealthConfig) -> Option<Event> {
        if self.state == HealthState::Stale || interval.is_zero() {
            return None;
        }
        let limit = interval.checked_mul(cfg.stale_after_intervals)?;
        let stale_at =
            self.last_result_at.unwrap_or(self.since).checked_add_signed(TimeDelta::from_std(limit).ok()?)?;
        if now < stale_at {
            return None;
        }
        let reason = match self.last_result_at {
            Some(t) => format!(
                "no probe result for {} ({} intervals of {}); last at {}",
                human_duration(limit),
                cfg.stale_after_intervals,
                human_duration(interval),
                t.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            None => format!(
                "never probed in {} ({} intervals of {})",
                human_duration(limit),
                cfg.stale_after_intervals,
                human_duration(interval)
            ),
        };
        let from = self.event_state();
        self.state = HealthState::Stale;
        self.since = stale_at;
        self.fail_streak = 0;
        self.ok_streak = 0;
        self.degraded_streak = 0;
        self.recent_states.clear();
        self.flapping = false;
        self.flap_pct = 0.0;
        Some(Event { at: stale_at, from, to: EventState::Stale, reason })
    }
}

/// "6m", "1h 30m", "90s" style, for reasons.
fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if sec > 0 {
        parts.push(format!("{sec}s"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const INTERVAL: Duration = Duration::from_secs(120);

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn at(cycle: usize) -> DateTime<Utc> {
        t0() + TimeDelta::from_std(INTERVAL).unwrap() * cycle as i32
    }

    fn verdicts(s: &str) -> Vec<Verdict> {
        s.chars().filter(|c| !c.is_whitespace()).map(|c| Verdict::from_char(c).unwrap()).collect()
    }

    /// Feeds `seq` (one char per cycle, spaces ignored) to a new edge; returns the edge and
    /// its events as "from>to" strings.
    fn run(seq: &str, cfg: &HealthConfig) -> (EdgeHealth, Vec<Event>) {
        let mut h = EdgeHealth::new(t0());
        let mut events = Vec::new();
        for (i, v) in verdicts(seq).into_iter().enumerate() {
            events.extend(h.observe(v, at(i + 1), cfg));
        }
        (h, events)
    }

    fn names(events: &[Event]) -> Vec<String> {
        events.iter().map(|e| format!("{}>{}", e.from, e.to)).collect()
    }

    fn assert_chain(events: &[Event], h: &EdgeHealth) {
        let mut cur = EventState::Unknown;
        for e in events {
            assert_eq!(e.from, cur, "broken chain at {e:?} in {events:#?}");
            cur = e.to;
        }
        assert_eq!(cur, h.event_state(), "last event vs edge {h:?}");
    }

    #[test]
    fn health_state_machine_table() {
        let d = HealthConfig::default();
        let k1 = HealthConfig { k_down: 1, m_up: 1, k_degraded: 1, ..d };
        let k3 = HealthConfig { k_down: 3, m_up: 3, k_degraded: 3, ..d };
        // (name, config, verdicts, final state, events)
        let table: &[(&str, &HealthConfig, &str, HealthState, &[&str])] = &[
            ("nothing yet", &d, "", HealthState::Unknown, &[]),
            ("one good cycle decides nothing", &d, "o", HealthState::Unknown, &[]),
            ("unknown becomes up after m_up good cycles", &d, "oo", HealthState::Up, &["unknown>up"]),
            ("one failure from unknown is not down", &d, "f", HealthState::Unknown, &[]),
            ("unknown becomes down after k_down failures", &d, "ff", HealthState::Down, &["unknown>down"]),
            ("single failure never makes down", &d, "oo f o f o f oo", HealthState::Up, &["unknown>up"]),
            ("down after k_down in a row", &d, "oo ff", HealthState::Down, &["unknown>up", "up>down"]),
            ("one good cycle does not recover", &d, "oo ff o f o", HealthState::Down, &["unknown>up", "up>down"]),
            ("recovery after m_up good", &d, "oo ff oo", HealthState::Up, &["unknown>up", "up>down", "down>up"]),
            ("degraded after k_degraded", &d, "oo dd", HealthState::Degraded, &["unknown>up", "up>degraded"]),
            ("single degraded cycle is a blip", &d, "oo d o d o", HealthState::Up, &["unknown>up"]),
            ("degraded and failed mix is degraded", &d, "oo df", HealthState::Degraded, &["unknown>up", "up>degraded"]),
            ("failed and degraded mix is degraded", &d, "oo fd", HealthState::Degraded, &["unknown>up", "up>degraded"]),
            ("down beats degraded", &d, "oo ff", HealthState::Down, &["unknown>up", "up>down"]),
            ("degraded then down", &d, "oo dd ff", HealthState::Down, &["unknown>up", "up>degraded", "degraded>down"]),
            ("degraded then up", &d, "oo dd oo", HealthState::Up, &["unknown>up", "up>degraded", "degraded>up"]),
            (
                "degraded holds through one ok",
                &d,
                "oo dd o d o d",
                HealthState::Degraded,
                &["unknown>up", "up>degraded"],
            ),
            (
                "down to degraded when partly back",
                &d,
                "ff dd",
                HealthState::Degraded,
                &["unknown>down", "down>degraded"],
            ),
            ("down to degraded on degraded+ok", &d, "ff do", HealthState::Degraded, &["unknown>down", "down>degraded"]),
            ("down stays down on one degraded", &d, "ff d f d f", HealthState::Down, &["unknown>down"]),
            ("down, degraded, up", &d, "ff do o", HealthState::Up, &["unknown>down", "down>degraded", "degraded>up"]),
            ("unknown to degraded", &d, "dd", HealthState::Degraded, &["unknown>degraded"]),
            ("unknown to degraded on ok+degraded", &d, "od", HealthState::Degraded, &["unknown>degraded"]),
            ("k=1 follows every cycle", &k1, "o f o", HealthState::Up, &["unknown>up", "up>down", "down>up"]),
            ("k=3 needs three", &k3, "ooo ff o ff", HealthState::Up, &["unknown>up"]),
            ("k=3 down", &k3, "ooo fff", HealthState::Down, &["unknown>up", "up>down"]),
        ];
        for (name, cfg, seq, state, want) in table {
            let (h, events) = run(seq, cfg);
            assert_eq!(h.state, *state, "{name}: state for {seq:?}");
            assert_eq!(names(&events), *want, "{name}: events for {seq:?}");
            assert_chain(&events, &h);
            assert!(!h.flapping, "{name}: should not flap");
        }
    }

    #[test]
    fn health_streaks_and_since() {
        let cfg = HealthConfig::default();
        let (h, events) = run("oo d f f", &cfg);
        assert_eq!((h.ok_streak, h.fail_streak, h.degraded_streak), (0, 2, 3));
        assert_eq!(h.recent_states.to_string(), "oodff");
        assert_eq!(h.last_result_at, Some(at(5)));
        assert_eq!(h.since, at(5));
        assert_eq!(events.last().unwrap().at, at(5));
        let (h, _) = run("oo ff o", &cfg);
        assert_eq!((h.ok_streak, h.fail_streak, h.degraded_streak), (1, 0, 0));
        assert_eq!(h.since, at(4), "one good cycle does not move since");
    }

    #[test]
    fn health_reasons_quote_figures() {
        let cfg = HealthConfig::default();
        let th = Thresholds::default();
        let mut h = EdgeHealth::new(t0());
        h.observe(th.assess(5, 5, Some(0.4)), at(1), &cfg);
        let ev = h.observe(th.assess(5, 5, Some(0.5)), at(2), &cfg);
        assert_eq!(ev[0].reason, "2 good cycles in a row (loss 0%, rtt 0.5 ms)");
        h.observe(th.assess(5, 0, None), at(3), &cfg);
        let ev = h.observe(th.assess(5, 0, None), at(4), &cfg);
        assert_eq!(ev[0].reason, "2 failed cycles in a row (loss 100%)");
        let ev = run("oo dd", &cfg).1;
        assert_eq!(ev[1].reason, "2 degraded cycles in a row");
        let ev = run("oo df", &cfg).1;
        assert_eq!(ev[1].reason, "2 degraded or failed cycles in a row");
        let ev = run("ff dd", &cfg).1;
        assert_eq!(ev[1].reason, "2 cycles in a row not failed but not 2 good ones");
    }

    #[test]
    fn health_verdict_table() {
        let th = Thresholds::default();
        // (sent, received, rtt, verdict)
        let table = [
            (5, 5, Some(1.0), Verdict::Ok),
            (5, 4, Some(1.0), Verdict::Degraded), // exactly 20 %
            (5, 3, Some(1.0), Verdict::Degraded),
            (5, 2, Some(1.0), Verdict::Degraded),
            (5, 1, Some(1.0), Verdict::Degraded), // 80 % is bad, but not failed
            (5, 0, None, Verdict::Failed),
            (5, 5, Some(499.9), Verdict::Ok),
            (5, 5, Some(500.0), Verdict::Degraded),
            (5, 5, Some(f64::NAN), Verdict::Ok),
            (5, 5, None, Verdict::Ok),
            (10, 1, Some(1.0), Verdict::Failed), // 90 %
            (10, 2, Some(1.0), Verdict::Degraded),
            (10, 9, Some(1.0), Verdict::Ok), // 10 %
            (1, 1, Some(1.0), Verdict::Ok),  // one TCP connect
            (1, 0, None, Verdict::Failed),
            (3, 1, Some(1.0), Verdict::Degraded),
            (0, 0, None, Verdict::Failed),  // nothing sent counts as total loss
            (5, 7, Some(1.0), Verdict::Ok), // duplicates capped
        ];
        for (sent, received, rtt, want) in table {
            assert_eq!(th.verdict(sent, received, rtt), want, "{received}/{sent} rtt {rtt:?}");
            assert_eq!(th.assess(sent, received, rtt).verdict, want);
        }
        let o = th.assess(5, 3, Some(2.0));
        assert_eq!((o.loss_pct, o.rtt_avg_ms), (Some(40.0), Some(2.0)));
        assert_eq!(th.assess(5, 0, Some(2.0)).rtt_avg_ms, None);
    }

    #[test]
    fn health_threshold_validation() {
        assert!(Thresholds::default().validate().is_ok());
        assert!(Thresholds::new(20.0, 90.0, 500.0).is_ok());
        assert!(Thresholds::new(50.0, 50.0, 1.0).is_ok());
        let bad = [
            (0.0, 90.0, 500.0, "degraded_loss_pct"),
            (-1.0, 90.0, 500.0, "degraded_loss_pct"),
            (f64::NAN, 90.0, 500.0, "degraded_loss_pct"),
            (20.0, 101.0, 500.0, "failed_loss_pct"),
            (20.0, 0.0, 500.0, "failed_loss_pct"),
            (60.0, 50.0, 500.0, "degraded_loss_pct"),
            (20.0, 90.0, 0.0, "degraded_rtt_ms"),
            (20.0, 90.0, f64::INFINITY, "degraded_rtt_ms"),
        ];
        for (d, f, r, field) in bad {
            assert_eq!(Thresholds::new(d, f, r).unwrap_err().field, field, "{d} {f} {r}");
        }
    }

    #[test]
    fn health_config_validation() {
        let d = HealthConfig::default();
        assert!(d.validate().is_ok());
        assert_eq!((d.k_down, d.m_up, d.k_degraded, d.stale_after_intervals, d.flap_window), (2, 2, 2, 3, 21));
        assert_eq!((d.flap_high_pct, d.flap_low_pct), (50.0, 25.0));
        let bad: Vec<(HealthConfig, &str)> = vec![
            (HealthConfig { k_down: 0, ..d }, "k_down"),
            (HealthConfig { m_up: 0, ..d }, "m_up"),
            (HealthConfig { k_degraded: 0, ..d }, "k_degraded"),
            (HealthConfig { k_down: MAX_CYCLES + 1, ..d }, "k_down"),
            (HealthConfig { stale_after_intervals: 0, ..d }, "stale_after_intervals"),
            (HealthConfig { flap_window: 2, ..d }, "flap_window"),
            (HealthConfig { flap_window: MAX_CYCLES + 1, ..d }, "flap_window"),
            (HealthConfig { flap_high_pct: 0.0, flap_low_pct: 0.0, ..d }, "flap_high_pct"),
            (HealthConfig { flap_high_pct: 101.0, ..d }, "flap_high_pct"),
            (HealthConfig { flap_low_pct: -1.0, ..d }, "flap_low_pct"),
            (HealthConfig { flap_low_pct: 60.0, ..d }, "flap_low_pct"),
            (HealthConfig { flap_low_pct: f64::NAN, ..d }, "flap_low_pct"),
        ];
        for (cfg, field) in bad {
            let err = cfg.validate().unwrap_err();
            assert_eq!(err.field, field, "{cfg:?}");
            assert!(err.to_string().contains(field));
        }
        assert!(HealthConfig { flap_low_pct: 50.0, ..d }.validate().is_ok());
        assert_eq!(HealthConfig { k_degraded: 30, ..d }.history_len(), 30);
        assert_eq!(d.history_len(), 21);
    }

    #[test]
    fn health_nagios_percent_state_change() {
        let pct = |s: &str| s.parse::<VerdictHistory>().unwrap().percent_state_change(21);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert_eq!(pct(""), 0.0);
        assert_eq!(pct(&"o".repeat(21)), 0.0);
        // All 20 changes: weights 0.75..1.25 average 1.0, so 100 %.
        assert!(close(pct(&"of".repeat(11)[..21]), 100.0));
        // One change, newest: weight 1.25 of 20 changes.
        assert!(close(pct(&format!("{}f", "o".repeat(20))), 6.25));
        // One change, oldest: weight 0.75.
        assert!(close(pct(&format!("f{}", "o".repeat(20))), 3.75));
        // A short history is right-aligned: its newest change is the newest of the window.
        assert!(close(pct("of"), 6.25));
        // Older entries beyond the window are ignored.
        assert!(close(pct(&format!("fo{}", "o".repeat(20))), 0.0));
        // Only changes into or out of failed count: ok↔degraded is degradation, not flapping.
        assert_eq!(pct(&format!("{}d", "o".repeat(20))), 0.0);
        assert_eq!(pct(&"od".repeat(11)[..21]), 0.0);
        assert!(close(pct(&format!("{}df", "o".repeat(19))), 6.25));
        assert!(close(pct(&"df".repeat(11)[..21]), 100.0));
        // Alternating from a steady start: 9 newest changes are the first to pass 50 %.
        let steady_then =
            |n: usize| format!("{}{}", "o".repeat(21 - n), "fo".repeat(n).chars().take(n).collect::<String>());
        assert!(pct(&steady_then(8)) < 50.0);
        assert!(close(pct(&steady_then(9)), (9.0 * 1.25 - 36.0 * 0.5 / 19.0) * 5.0));
        assert!(pct(&steady_then(9)) >= 50.0);
    }

    #[test]
    fn health_alternating_link_is_flagged_flapping() {
        // One verdict per cycle: o o f o f o ...
        let cfg = HealthConfig::default();
        let (h, events) = run(&format!("oo{}", "fo".repeat(15)), &cfg);
        assert!(h.flapping);
        assert!(h.flap_pct > 90.0, "{}", h.flap_pct);
        assert_eq!(h.state, HealthState::Up, "hysteresis alone never reports this link");
        assert_eq!(names(&events), ["unknown>up", "up>flapping"]);
        assert!(events[1].reason.starts_with("flapping: "), "{}", events[1].reason);
        // Flagged after 9 alternations: 11 cycles seen when it started.
        assert_eq!(events[1].reason, "flapping: 52% state change over the last 11 cycles (start at 50%)");
        assert_eq!(events[1].at, at(11));
        assert_chain(&events, &h);
    }

    #[test]
    fn health_flapping_stops_down_up_events() {
        // A link that goes down and up every cycle, with hysteresis 1 so that each change
        // would be an event: events stop once flapping is detected.
        let cfg = HealthConfig { k_down: 1, m_up: 1, k_degraded: 1, ..HealthConfig::default() };
        let seq = format!("o{}", "fo".repeat(20));
        let mut h = EdgeHealth::new(t0());
        let mut events = Vec::new();
        let mut flap_at = None;
        for (i, v) in verdicts(&seq).into_iter().enumerate() {
            let ev = h.observe(v, at(i + 1), &cfg);
            if flap_at.is_none() && h.flapping {
                flap_at = Some(i);
            }
            if flap_at.is_some_and(|f| f < i) {
                assert!(ev.is_empty(), "cycle {i}: {ev:?}");
            }
            events.extend(ev);
        }
        let flap_at = flap_at.expect("never flagged flapping");
        assert!(flap_at <= 12, "flagged only at cycle {flap_at}");
        let n = names(&events);
        assert!(["up>flapping", "down>flapping"].contains(&n.last().unwrap().as_str()), "{n:?}");
        assert!(n[..n.len() - 1].iter().all(|e| ["unknown>up", "up>down", "down>up"].contains(&e.as_str())));
        // The state is still tracked while flapping.
        assert_eq!(h.state, HealthState::Up);
        h.observe(Verdict::Failed, at(100), &cfg);
        assert_eq!(h.state, HealthState::Down);
        assert_eq!(h.since, at(100));
        assert!(h.flapping);
        assert_chain(&events, &h);
    }

    #[test]
    fn health_flapping_with_default_hysteresis() {
        // Down two cycles, up two cycles: each half-period is a real down/up under K=M=2.
        let cfg = HealthConfig::default();
        let (h, events) = run(&"ffoo".repeat(12), &cfg);
        assert!(h.flapping, "pct {}", h.flap_pct);
        let n = names(&events);
        let flap = n.iter().position(|e| e.ends_with(">flapping")).unwrap();
        assert_eq!(flap, n.len() - 1, "no events after flapping: {n:?}");
        assert!(flap >= 4, "some real changes before the window filled: {n:?}");
        assert_chain(&events, &h);
    }

    #[test]
    fn health_flap_end_emits_one_event_to_current_state() {
        let cfg = HealthConfig::default();
        let alternating = "fo".repeat(15);
        for (tail, state) in [("o", HealthState::Up), ("f", HealthState::Down), ("d", HealthState::Degraded)] {
            let seq = format!("oo{alternating}{}", tail.repeat(30));
            let (h, events) = run(&seq, &cfg);
            assert!(!h.flapping);
            assert_eq!(h.state, state);
            let n = names(&events);
            assert_eq!(&n[n.len() - 2..], ["up>flapping".to_string(), format!("flapping>{state}")], "{tail}");
            let last = events.last().unwrap();
            assert!(last.reason.starts_with("flapping stopped: "), "{}", last.reason);
            assert!(h.flap_pct <= cfg.flap_low_pct);
            assert_chain(&events, &h);
        }
        // Between the thresholds the flag keeps its value (Nagios' dead band).
        let (h, _) = run(&format!("oo{alternating}"), &cfg);
        assert!(h.flapping);
        let mut h2 = h.clone();
        let mut i = 0;
        while h2.flap_pct > cfg.flap_low_pct {
            h2.observe(Verdict::Ok, at(100 + i), &cfg);
            if h2.flap_pct < cfg.flap_high_pct && h2.flap_pct > cfg.flap_low_pct {
                assert!(h2.flapping, "dead band at {}", h2.flap_pct);
            }
            i += 1;
        }
        assert!(!h2.flapping);
    }

    #[test]
    fn health_state_change_on_flap_start_cycle_is_emitted_first() {
        // k=1: the cycle that starts flapping also changes the state; both events come, in
        // chain order.
        let cfg = HealthConfig { k_down: 1, m_up: 1, k_degraded: 1, ..HealthConfig::default() };
        let (h, events) = run(&format!("o{}", "fo".repeat(20)), &cfg);
        let i = events.iter().position(|e| e.to == EventState::Flapping).unwrap();
        assert_eq!(events[i - 1].at, events[i].at, "{events:#?}");
        assert_eq!(events[i - 1].to, events[i].from);
        assert_chain(&events, &h);
    }

    #[test]
    fn health_thirty_percent_loss_is_degraded_not_down() {
        let cfg = HealthConfig::default();
        let th = Thresholds::default();
        for seed in 0..20u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut h = EdgeHealth::new(t0());
            let mut events = Vec::new();
            let mut degraded_cycles = 0;
            let cycles = 300;
            for i in 0..cycles {
                let received = (0..5).filter(|_| !rng.random_bool(0.3)).count() as u32;
                let v = th.assess(5, received, (received > 0).then_some(1.0));
                events.extend(h.observe(v, at(i + 1), &cfg));
                assert_ne!(h.state, HealthState::Down, "seed {seed} cycle {i}");
                degraded_cycles += usize::from(h.state == HealthState::Degraded);
            }
            assert!(degraded_cycles * 100 >= cycles * 80, "seed {seed}: degraded {degraded_cycles}/{cycles}");
            assert!(events.iter().all(|e| e.to != EventState::Down), "seed {seed}");
            assert_chain(&events, &h);
        }
    }

    #[test]
    fn health_stale() {
        let cfg = HealthConfig::default();
        let (mut h, _) = run("oo", &cfg);
        let last = at(2);
        assert_eq!(h.last_result_at, Some(last));
        let limit = TimeDelta::minutes(6);
        assert_eq!(h.check_stale(last + limit - TimeDelta::seconds(1), INTERVAL, &cfg), None);
        let ev = h.check_stale(last + TimeDelta::hours(1), INTERVAL, &cfg).unwrap();
        assert_eq!((ev.from, ev.to, ev.at), (EventState::Up, EventState::Stale, last + limit));
        assert!(ev.reason.starts_with("no probe result for 6m (3 intervals of 2m)"), "{}", ev.reason);
        assert_eq!((h.state, h.since), (HealthState::Stale, last + limit));
        assert_eq!(h.check_stale(last + TimeDelta::hours(2), INTERVAL, &cfg), None, "already stale");
        // Results come back: stale until a run decides, like unknown.
        let back = last + TimeDelta::hours(2);
        assert!(h.observe(Verdict::Ok, back, &cfg).is_empty());
        assert_eq!(h.state, HealthState::Stale);
        let ev = h.observe(Verdict::Ok, back + TimeDelta::minutes(2), &cfg);
        assert_eq!(names(&ev), ["stale>up"]);
        assert_eq!(h.check_stale(back + TimeDelta::minutes(3), INTERVAL, &cfg), None);

        // Back from stale as down.
        let (mut h, _) = run("oo", &cfg);
        h.check_stale(at(100), INTERVAL, &cfg).unwrap();
        assert!(h.observe(Verdict::Failed, at(101), &cfg).is_empty());
        assert_eq!(names(&h.observe(Verdict::Failed, at(102), &cfg)), ["stale>down"]);

        // Never probed: stale 3 intervals after it was created.
        let mut h = EdgeHealth::new(t0());
        assert_eq!(h.check_stale(t0() + TimeDelta::minutes(5), INTERVAL, &cfg), None);
        let ev = h.check_stale(t0() + TimeDelta::minutes(6), INTERVAL, &cfg).unwrap();
        assert_eq!((ev.from, ev.to), (EventState::Unknown, EventState::Stale));
        assert!(ev.reason.starts_with("never probed"), "{}", ev.reason);

        // Zero interval: never stale.
        let mut h = EdgeHealth::new(t0());
        assert_eq!(h.check_stale(t0() + TimeDelta::days(1), Duration::ZERO, &cfg), None);
    }

    #[test]
    fn health_stale_ends_flapping() {
        let cfg = HealthConfig::default();
        let (mut h, mut events) = run(&format!("oo{}", "fo".repeat(15)), &cfg);
        assert!(h.flapping);
        let ev = h.check_stale(at(200), INTERVAL, &cfg).unwrap();
        assert_eq!((ev.from, ev.to), (EventState::Flapping, EventState::Stale));
        assert!(!h.flapping);
        assert!(h.recent_states.is_empty());
        assert_eq!((h.ok_streak, h.fail_streak, h.degraded_streak, h.flap_pct), (0, 0, 0, 0.0));
        events.push(ev);
        assert_chain(&events, &h);
    }

    #[test]
    fn health_history_string_round_trip() {
        use serde::de::value::{Error as DeError, StringDeserializer};
        use serde::de::IntoDeserializer;
        let (h, _) = run("oodffdo", &HealthConfig::default());
        let s = h.recent_states.to_string();
        assert_eq!(s, "oodffdo");
        assert_eq!(s.parse::<VerdictHistory>().unwrap(), h.recent_states);
        let de: StringDeserializer<DeError> = s.clone().into_deserializer();
        assert_eq!(VerdictHistory::deserialize(de).unwrap(), h.recent_states);
        assert_eq!(String::from(h.recent_states.clone()), s);
        assert_eq!("".parse::<VerdictHistory>().unwrap(), VerdictHistory::new());
        for bad in ["x", "ooO", "o d", "up"] {
            assert!(bad.parse::<VerdictHistory>().is_err(), "{bad}");
            let de: StringDeserializer<DeError> = bad.to_string().into_deserializer();
            assert!(VerdictHistory::deserialize(de).is_err(), "{bad}");
        }
        // Bounded by the window.
        let (h, _) = run(&"o".repeat(100), &HealthConfig::default());
        assert_eq!(h.recent_states.len(), 21);
    }

    /// Stores the edge as the columns would hold it and loads it back.
    fn through_columns(h: &EdgeHealth) -> EdgeHealth {
        let (state, since, last, fs, os, ds, recent, flapping, pct) = (
            h.state.as_str().to_string(),
            h.since,
            h.last_result_at,
            h.fail_streak as i32,
            h.ok_streak as i32,
            h.degraded_streak as i32,
            h.recent_states.to_string(),
            h.flapping,
            h.flap_pct as f32,
        );
        EdgeHealth {
            state: state.parse().unwrap(),
            since,
            last_result_at: last,
            fail_streak: fs as u32,
            ok_streak: os as u32,
            degraded_streak: ds as u32,
            recent_states: recent.parse().unwrap(),
            flapping,
            flap_pct: f64::from(pct),
        }
    }

    #[test]
    fn health_persisted_state_behaves_like_live_state() {
        // Random runs with stale gaps: storing and reloading through the columns each cycle
        // gives the same events as keeping the value in memory, and events always chain.
        let cfg = HealthConfig::default();
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let mut live = EdgeHealth::new(t0());
            let mut stored = through_columns(&live);
            let (mut ev_live, mut ev_stored) = (Vec::new(), Vec::new());
            let mut now = t0();
            for _ in 0..rng.random_range(0..80) {
                now += TimeDelta::minutes(if rng.random_bool(0.05) { 10 } else { 2 });
                ev_live.extend(live.check_stale(now, INTERVAL, &cfg));
                ev_stored.extend(stored.check_stale(now, INTERVAL, &cfg));
                stored = through_columns(&stored);
                // Runs of one verdict, sometimes alternating, to hit every path.
                let v = Verdict::ALL[rng.random_range(0..3)];
                ev_live.extend(live.observe(v, now, &cfg));
                ev_stored.extend(stored.observe(v, now, &cfg));
                stored = through_columns(&stored);
                assert_eq!(live.state, stored.state);
                assert_eq!(live.flapping, stored.flapping);
            }
            assert_eq!(ev_live, ev_stored);
            assert_chain(&ev_live, &live);
        }
    }

    #[test]
    fn health_human_duration() {
        assert_eq!(human_duration(Duration::from_secs(360)), "6m");
        assert_eq!(human_duration(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(human_duration(Duration::from_secs(90)), "1m 30s");
        assert_eq!(human_duration(Duration::from_millis(300)), "300ms");
    }
}
