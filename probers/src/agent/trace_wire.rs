//! The agent API's path-tracing JSON, shared by the server and the agent, and the checks a
//! runs body must pass. Pure: values in, values or a message out.
//!
//! - `POST /api/v1/agents/{node}/traces/claim` with [`TraceClaim`] (or no body) →
//!   [`TraceLease`]: the due host pairs from the agent's host, leased to it, each with
//!   the target to trace (destination, protocol, the pair's flow) and the settings.
//! - `POST /api/v1/agents/{node}/traces` with [`TraceRuns`] → [`TracesAccepted`]: the
//!   runs made, and the leased pairs the agent could not trace (given back).
//!
//! Authorization and errors as for the other agent calls ([`super::wire`]). A run is
//! stored once per pair and time, so a resend after a lost answer is safe.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use graph_store::paths::{Hop, Run};
use serde::{Deserialize, Serialize};

use super::wire::{iso, store_precision, Problem, MAX_CLOCK_SKEW, MAX_RESULT_AGE};
use crate::trace::TraceTarget;

/// Pairs leased in one claim, at most.
pub const MAX_CLAIM: u32 = 1000;
/// Runs in one request at most; more are answered 413.
pub const MAX_RUNS_PER_REQUEST: usize = 1000;
/// Pairs given back in one request at most.
pub const MAX_RELEASE_PER_REQUEST: usize = 10_000;
/// Probes per hop at most (the tracer's own limit).
pub const MAX_PROBES: u32 = 100;
/// Addresses answering at one TTL of a run, at most.
pub const MAX_ADDRS_PER_HOP: usize = 64;
/// Round-trip times above this (ms) are refused as nonsense.
pub const MAX_RTT_MS: f32 = 600_000.0;

/// `POST …/traces/claim`: how many due pairs to lease at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TraceClaim {
    #[serde(default = "default_limit")]
    pub limit: u32,
}

fn default_limit() -> u32 {
    100
}

impl Default for TraceClaim {
    fn default() -> Self {
        TraceClaim { limit: default_limit() }
    }
}

/// The answer to a claim: the pairs leased to this agent until `lease_s` from now, and how
/// to trace them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TraceLease {
    pub node: String,
    /// The agent's host: the source of its pairs.
    pub host: String,
    /// Whether the server wants traces at all (`[trace] enabled`); when not, `pairs` is
    /// empty and asking again later is enough.
    pub tracing: bool,
    /// How often a pair is traced (across data centers).
    pub interval_s: u64,
    pub lease_s: u64,
    /// Probes per TTL, and the highest TTL, for every run.
    pub probes: u32,
    pub max_ttl: u8,
    pub pairs: Vec<LeasedPair>,
}

/// One pair to trace now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LeasedPair {
    pub pair_id: i64,
    /// Destination, protocol and flow (the same flow in every run of the pair).
    pub target: TraceTarget,
}

/// `POST …/traces`: runs made, and pairs leased but not traced.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TraceRuns {
    #[serde(default)]
    pub runs: Vec<TraceRunItem>,
    /// Leased pairs the agent could not trace (allow-list, no raw sockets for the family):
    /// traced again an interval later.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub release: Vec<i64>,
}

/// One run of one pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TraceRunItem {
    pub pair_id: i64,
    pub run: Run,
}

/// The answer to a runs body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TracesAccepted {
    /// Runs the body carried.
    pub accepted: usize,
    /// Of them, runs stored now (the others had arrived before).
    pub stored: u64,
    pub released: usize,
}

impl TraceRuns {
    /// Checks every field against `now` and cuts times to microseconds. The message names
    /// the field (`runs[2].run.hops[4].received`) and what would be right.
    pub fn validate(&mut self, now: DateTime<Utc>) -> Result<(), Problem> {
        if self.runs.len() > MAX_RUNS_PER_REQUEST || self.release.len() > MAX_RELEASE_PER_REQUEST {
            return Err(Problem::TooMany(format!(
                "{} runs and {} released pairs in one request; send at most {MAX_RUNS_PER_REQUEST} runs \
                 and {MAX_RELEASE_PER_REQUEST} released pairs per request",
                self.runs.len(),
                self.release.len()
            )));
        }
        let mut seen = HashSet::new();
        for (i, item) in self.runs.iter_mut().enumerate() {
            let field = format!("runs[{i}]");
            if item.pair_id <= 0 {
                return Err(invalid(format!("{field}.pair_id: {} is not a pair id", item.pair_id)));
            }
            item.run.at = store_precision(item.run.at);
            check_time(&format!("{field}.run.at"), item.run.at, now)?;
            if !seen.insert((item.pair_id, item.run.at)) {
                return Err(invalid(format!(
                    "{field}: pair {} at {} appears twice in this request",
                    item.pair_id,
                    iso(item.run.at)
                )));
            }
            check_run(&format!("{field}.run"), &item.run)?;
        }
        if let Some((i, id)) = self.release.iter().enumerate().find(|(_, id)| **id <= 0) {
            return Err(invalid(format!("release[{i}]: {id} is not a pair id")));
        }
        Ok(())
    }
}

fn invalid(message: String) -> Problem {
    Problem::Invalid(message)
}

fn check_time(field: &str, at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Problem> {
    let span = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    if at < now - span(MAX_RESULT_AGE) {
        Err(invalid(format!(
            "{field}: {} is more than {}h old; runs that old are not accepted",
            iso(at),
            MAX_RESULT_AGE.as_secs() / 3600
        )))
    } else if at > now + span(MAX_CLOCK_SKEW) {
        Err(invalid(format!(
            "{field}: {} is in the future (server time {}); check the agent's clock",
            iso(at),
            iso(now)
        )))
    } else {
        Ok(())
    }
}

/// A run as the tracer makes it: hops TTL 1 up without gaps, counts and times that agree.
fn check_run(field: &str, run: &Run) -> Result<(), Problem> {
    if run.hops.is_empty() || run.hops.len() > 255 {
        return Err(invalid(format!("{field}.hops: {} hops; a run has 1 to 255", run.hops.len())));
    }
    for (i, hop) in run.hops.iter().enumerate() {
        check_hop(&format!("{field}.hops[{i}]"), i, hop)?;
    }
    if run.reached && run.hops.last().is_some_and(|h| h.addrs.is_empty()) {
        return Err(invalid(format!("{field}.reached: true, but the last hop is silent")));
    }
    Ok(())
}

fn check_hop(field: &str, i: usize, hop: &Hop) -> Result<(), Problem> {
    if usize::from(hop.ttl) != i + 1 {
        return Err(invalid(format!(
            "{field}.ttl: {} where {} belongs (hops go TTL 1 up, none left out)",
            hop.ttl,
            i + 1
        )));
    }
    if hop.sent > MAX_PROBES {
        return Err(invalid(format!("{field}.sent: {} is over {MAX_PROBES}", hop.sent)));
    }
    if hop.received > hop.sent {
        return Err(invalid(format!("{field}.received: {} is more than sent ({})", hop.received, hop.sent)));
    }
    if hop.addrs.len() > MAX_ADDRS_PER_HOP {
        return Err(invalid(format!("{field}.addrs: {} addresses; at most {MAX_ADDRS_PER_HOP}", hop.addrs.len())));
    }
    if hop.addrs.is_empty() != (hop.received == 0) {
        return Err(invalid(format!(
            "{field}.addrs: {} address(es) with {} answer(s); a hop has addresses exactly when it was answered",
            hop.addrs.len(),
            hop.received
        )));
    }
    let rtts = [
        ("rtt_best_ms", hop.rtt_best_ms),
        ("rtt_avg_ms", hop.rtt_avg_ms),
        ("rtt_worst_ms", hop.rtt_worst_ms),
        ("rtt_stddev_ms", hop.rtt_stddev_ms),
        ("jitter_ms", hop.jitter_ms),
    ];
    for (name, value) in rtts {
        match value {
            Some(_) if hop.received == 0 => {
                return Err(invalid(format!("{field}.{name}: given, but nothing was answered")));
            }
            Some(v) if !(v.is_finite() && (0.0..=MAX_RTT_MS).contains(&v)) => {
                return Err(invalid(format!("{field}.{name}: {v} is not within 0..={MAX_RTT_MS} ms")));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(ttl: u8, addr: Option<&str>) -> Hop {
        let answered = addr.is_some();
        Hop {
            ttl,
            addrs: addr.map(|a| vec![a.parse().unwrap()]).unwrap_or_default(),
            sent: 3,
            received: if answered { 3 } else { 0 },
            rtt_best_ms: answered.then_some(1.0),
            rtt_avg_ms: answered.then_some(1.5),
            rtt_worst_ms: answered.then_some(2.0),
            rtt_stddev_ms: answered.then_some(0.4),
            jitter_ms: answered.then_some(0.5),
        }
    }

    fn body(now: DateTime<Utc>) -> TraceRuns {
        let run = Run {
            at: now,
            hops: vec![hop(1, Some("198.18.1.1")), hop(2, None), hop(3, Some("198.18.3.2"))],
            reached: true,
        };
        TraceRuns { runs: vec![TraceRunItem { pair_id: 4, run }], release: vec![5] }
    }

    #[test]
    fn valid_bodies_pass_with_times_cut_to_microseconds() {
        let now: DateTime<Utc> = "2026-12-05T16:00:00.123456789Z".parse().unwrap();
        let mut ok = body(now);
        ok.validate(now).unwrap();
        assert_eq!(ok.runs[0].run.at, store_precision(now));
    }

    #[test]
    fn problems_name_the_field() {
        let now = Utc::now();
        type Edit = fn(&mut TraceRuns);
        let cases: [(Edit, &str); 12] = [
            (|b| b.runs[0].pair_id = 0, "runs[0].pair_id"),
            (|b| b.runs[0].run.at -= chrono::Duration::hours(13), "runs[0].run.at"),
            (|b| b.runs[0].run.at += chrono::Duration::hours(1), "runs[0].run.at"),
            (|b| b.runs.push(b.runs[0].clone()), "runs[1]"),
            (|b| b.runs[0].run.hops.clear(), "runs[0].run.hops"),
            (|b| b.runs[0].run.hops[1].ttl = 7, "runs[0].run.hops[1].ttl"),
            (|b| b.runs[0].run.hops[0].received = 4, "runs[0].run.hops[0].received"),
            (|b| b.runs[0].run.hops[0].sent = 101, "runs[0].run.hops[0].sent"),
            (|b| b.runs[0].run.hops[1].received = 1, "runs[0].run.hops[1].addrs"),
            (|b| b.runs[0].run.hops[0].rtt_avg_ms = Some(f32::NAN), "runs[0].run.hops[0].rtt_avg_ms"),
            (|b| b.runs[0].run.hops[1].jitter_ms = Some(1.0), "runs[0].run.hops[1].jitter_ms"),
            (|b| b.release.push(-1), "release[1]"),
        ];
        for (edit, field) in cases {
            let mut b = body(now);
            edit(&mut b);
            match b.validate(now) {
                Err(Problem::Invalid(msg)) => assert!(msg.starts_with(field), "{field}: {msg}"),
                other => panic!("{field}: {other:?}"),
            }
        }
        let mut silent_end = body(now);
        silent_end.runs[0].run.hops.truncate(2);
        assert!(matches!(silent_end.validate(now), Err(Problem::Invalid(m)) if m.starts_with("runs[0].run.reached")));
        let mut many = body(now);
        many.runs = (1..=MAX_RUNS_PER_REQUEST as i64 + 1)
            .map(|id| TraceRunItem { pair_id: id, run: many.runs[0].run.clone() })
            .collect();
        assert!(matches!(many.validate(now), Err(Problem::TooMany(_))));
    }

    #[test]
    fn json_shape() {
        let pair =
            LeasedPair { pair_id: 9, target: TraceTarget::udp("198.18.3.2".parse().unwrap(), 33434).with_flow(9) };
        assert_eq!(
            serde_json::to_value(pair).unwrap(),
            serde_json::json!({"pair_id": 9, "target": {"ip": "198.18.3.2", "protocol": {"kind": "udp", "port": 33434}, "flow": 9}})
        );
        let claim: TraceClaim = serde_json::from_str("{}").unwrap();
        assert_eq!(claim.limit, 100);
        assert!(serde_json::from_str::<TraceRuns>(r#"{"runs": [], "extra": 1}"#).is_err());
    }
}
