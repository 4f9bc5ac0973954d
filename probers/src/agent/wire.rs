//! The agent API's JSON, shared by the server (`edgewatch serve`) and the agent, and the
//! checks a results body must pass. Pure: values in, values or a message out.
//!
//! - `GET  /api/v1/agents/{node}/targets` → [`Targets`]
//! - `POST /api/v1/agents/{node}/results` with [`Results`] → [`Accepted`]
//!
//! Both need `Authorization: Bearer <token>`; errors are `{"error": "…"}` ([`ErrorBody`]).
//! Timestamps are UTC, ISO-8601 (`2026-11-22T01:43:53.123456Z`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use crate::stats::loss_pct;
use crate::{ProbeKind, ProbeOutcome, ProbeTarget};

/// Where the agent API lives under the server's base URL.
pub const API_PREFIX: &str = "/api/v1/agents";
/// The largest results body the server reads; larger ones are answered 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Results in one request at most; more are answered 413.
pub const MAX_RESULTS_PER_REQUEST: usize = 5000;
/// Results older than this are refused: the history they would go to may be gone.
pub const MAX_RESULT_AGE: Duration = Duration::from_secs(12 * 3600);
/// How far ahead of the server's clock a result may be.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);
/// Packets per target per cycle, at most, in a result.
pub const MAX_PACKETS: u32 = 1000;

/// `GET …/targets`: the node's edges to probe, and how often the server expects results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    pub node: String,
    pub interval_s: u64,
    pub targets: Vec<Target>,
}

/// One edge to probe: ICMP echo to `ip`, or TCP connect to `ip`:`port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub edge_id: i64,
    pub ip: IpAddr,
    pub kind: ProbeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl Target {
    /// The target for an edge: TCP when its service has a port, else ICMP.
    pub fn new(edge_id: i64, ip: IpAddr, port: Option<u16>) -> Self {
        let ProbeTarget { ip, kind, port } = ProbeTarget::for_edge(ip, port);
        Target { edge_id, ip, kind, port }
    }

    /// What the probe engine takes; `None` for a TCP target without a port.
    pub fn probe_target(&self) -> Option<ProbeTarget> {
        match (self.kind, self.port) {
            (ProbeKind::Icmp, _) => Some(ProbeTarget::icmp(self.ip)),
            (ProbeKind::Tcp, Some(port)) if port > 0 => Some(ProbeTarget::tcp(self.ip, port)),
            (ProbeKind::Tcp, _) => None,
        }
    }
}

/// `POST …/results`: probe results, and the node's local figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Results {
    pub results: Vec<ResultItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<Local>,
}

/// One cycle against one edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultItem {
    pub edge_id: i64,
    /// When the cycle ended.
    pub at: DateTime<Utc>,
    pub kind: ProbeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub outcome: ProbeOutcome,
}

/// The node's own figures at the end of a cycle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Local {
    /// When measured; the server's time of receipt when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load5: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load15: Option<f64>,
    /// From the nginx access log, when the agent reads one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx: Option<Nginx>,
    /// Results the agent dropped undelivered (its buffer or spool full, or too old) since
    /// the reports before this one were made: counted by the server
    /// (`edgewatch_agent_results_dropped_total`). Sent only when some were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_dropped: Option<u64>,
}

/// nginx request rates over one interval (per second): all requests, server errors
/// (5xx), and each status code seen, keyed by the code (`"502"`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nginx {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<f64>,
    pub requests_per_s: f64,
    pub errors_per_s: f64,
    #[serde(default)]
    pub by_status: BTreeMap<String, f64>,
}

impl From<crate::nginx::Rates> for Nginx {
    fn from(r: crate::nginx::Rates) -> Self {
        Nginx {
            interval_s: Some(r.interval_s),
            requests_per_s: r.requests_per_s,
            errors_per_s: r.errors_per_s,
            by_status: r.by_status.into_iter().map(|(code, rate)| (code.to_string(), rate)).collect(),
        }
    }
}

/// The answer to a results body: how many results it carried, and how many of them had
/// arrived before (a resend after a lost answer; they are not counted twice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub accepted: usize,
    #[serde(default)]
    pub duplicates: usize,
}

/// Every error answer: what is wrong and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// Why a results body is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// More results than one request may carry (413).
    TooMany(String),
    /// A field is out of range or inconsistent (400); the message names it.
    Invalid(String),
}

/// Cuts a time to the microseconds PostgreSQL keeps, so a resent result compares equal.
pub fn store_precision(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

impl Results {
    /// Checks every field against `now` and normalises what the store keeps: times to
    /// microseconds, `loss_pct` recomputed from the packet counts. The message names the
    /// field (`results[3].outcome.received`) and what would be right.
    pub fn validate(&mut self, now: DateTime<Utc>) -> Result<(), Problem> {
        if self.results.len() > MAX_RESULTS_PER_REQUEST {
            return Err(Problem::TooMany(format!(
                "{} results in one request; send at most {MAX_RESULTS_PER_REQUEST} per request",
                self.results.len()
            )));
        }
        let oldest = now - chrono::Duration::from_std(MAX_RESULT_AGE).unwrap_or(chrono::Duration::MAX);
        let newest = now + chrono::Duration::from_std(MAX_CLOCK_SKEW).unwrap_or(chrono::Duration::MAX);
        let check_time = |field: &str, at: DateTime<Utc>| {
            if at < oldest {
                Err(Problem::Invalid(format!(
                    "{field}: {} is more than {}h old; results that old are not accepted",
                    iso(at),
                    MAX_RESULT_AGE.as_secs() / 3600
                )))
            } else if at > newest {
                Err(Problem::Invalid(format!(
                    "{field}: {} is in the future (server time {}); check the agent's clock",
                    iso(at),
                    iso(now)
                )))
            } else {
                Ok(())
            }
        };
        let mut seen = std::collections::HashSet::new();
        for (i, r) in self.results.iter_mut().enumerate() {
            let at_field = format!("results[{i}]");
            if r.edge_id <= 0 {
                return Err(Problem::Invalid(format!("{at_field}.edge_id: {} is not an edge id", r.edge_id)));
            }
            match (r.kind, r.port) {
                (ProbeKind::Tcp, None | Some(0)) => {
                    return Err(Problem::Invalid(format!("{at_field}.port: a tcp result needs its port (1-65535)")))
                }
                (ProbeKind::Icmp, Some(_)) => {
                    return Err(Problem::Invalid(format!("{at_field}.port: an icmp result has no port")))
                }
                _ => {}
            }
            r.at = store_precision(r.at);
            check_time(&format!("{at_field}.at"), r.at)?;
            if !seen.insert((r.edge_id, r.at)) {
                return Err(Problem::Invalid(format!(
                    "{at_field}: edge {} at {} appears twice in this request",
                    r.edge_id,
                    iso(r.at)
                )));
            }
            check_outcome(&format!("{at_field}.outcome"), &mut r.outcome)?;
        }
        if let Some(local) = &mut self.local {
            if let Some(at) = local.at.as_mut() {
                *at = store_precision(*at);
                check_time("local.at", *at)?;
            }
            for (name, value) in [("load1", local.load1), ("load5", local.load5), ("load15", local.load15)] {
                if let Some(v) = value {
                    non_negative(&format!("local.{name}"), v)?;
                }
            }
            if let Some(nginx) = &local.nginx {
                if let Some(s) = nginx.interval_s {
                    if !(s.is_finite() && s > 0.0) {
                        return Err(Problem::Invalid(format!(
                            "local.nginx.interval_s: {s} is not a positive number of seconds"
                        )));
                    }
                }
                non_negative("local.nginx.requests_per_s", nginx.requests_per_s)?;
                non_negative("local.nginx.errors_per_s", nginx.errors_per_s)?;
                for (code, rate) in &nginx.by_status {
                    let valid = code.len() == 3 && code.parse::<u16>().is_ok_and(|c| (100..=599).contains(&c));
                    if !valid {
                        return Err(Problem::Invalid(format!(
                            "local.nginx.by_status: {code:?} is not an HTTP status code (100-599)"
                        )));
                    }
                    non_negative(&format!("local.nginx.by_status.{code}"), *rate)?;
                }
            }
        }
        Ok(())
    }
}

fn non_negative(field: &str, v: f64) -> Result<(), Problem> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Problem::Invalid(format!("{field}: {v} is not a finite number >= 0")))
    }
}

fn check_outcome(field: &str, o: &mut ProbeOutcome) -> Result<(), Problem> {
    if o.sent > MAX_PACKETS {
        return Err(Problem::Invalid(format!("{field}.sent: {} is over {MAX_PACKETS}", o.sent)));
    }
    if o.received > o.sent {
        return Err(Problem::Invalid(format!("{field}.received: {} is more than sent ({})", o.received, o.sent)));
    }
    let rtts = [
        ("rtt_min_ms", o.rtt_min_ms),
        ("rtt_avg_ms", o.rtt_avg_ms),
        ("rtt_max_ms", o.rtt_max_ms),
        ("rtt_stddev_ms", o.rtt_stddev_ms),
    ];
    for (name, value) in rtts {
        match value {
            Some(_) if o.received == 0 => {
                return Err(Problem::Invalid(format!("{field}.{name}: given, but nothing was received")))
            }
            Some(v) => non_negative(&format!("{field}.{name}"), v)?,
            None => {}
        }
    }
    o.loss_pct = loss_pct(o.sent, o.received);
    Ok(())
}

/// `2026-11-22T01:43:53.123456Z`
pub fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(now: DateTime<Utc>) -> Results {
        Results {
            results: vec![ResultItem {
                edge_id: 1,
                at: now,
                kind: ProbeKind::Tcp,
                port: Some(5432),
                outcome: ProbeOutcome::from_samples(5, &[Duration::from_millis(1)], None),
            }],
            local: Some(Local { at: Some(now), load1: Some(0.5), ..Local::default() }),
        }
    }

    #[test]
    fn valid_bodies_are_normalised() {
        let now = Utc::now();
        let mut ok = body(now);
        ok.results[0].outcome.loss_pct = 3.0;
        ok.validate(now).unwrap();
        assert_eq!(ok.results[0].outcome.loss_pct, 80.0);
        assert_eq!(ok.results[0].at, store_precision(now));
    }

    #[test]
    fn problems_name_the_field() {
        let now = Utc::now();
        type Edit = fn(&mut Results);
        let cases: [(Edit, &str); 9] = [
            (|b| b.results[0].port = None, "results[0].port"),
            (|b| b.results[0].kind = ProbeKind::Icmp, "results[0].port"),
            (|b| b.results[0].outcome.received = 6, "results[0].outcome.received"),
            (|b| b.results[0].outcome.rtt_avg_ms = Some(f64::NAN), "results[0].outcome.rtt_avg_ms"),
            (|b| b.results[0].at -= chrono::Duration::hours(13), "results[0].at"),
            (|b| b.results[0].at += chrono::Duration::hours(1), "results[0].at"),
            (|b| b.results.push(b.results[0].clone()), "results[1]"),
            (|b| b.local.as_mut().unwrap().load5 = Some(-1.0), "local.load5"),
            (
                |b| {
                    b.local.as_mut().unwrap().nginx =
                        Some(Nginx { by_status: BTreeMap::from([("5xx".into(), 1.0)]), ..Nginx::default() })
                },
                "local.nginx.by_status",
            ),
        ];
        for (edit, field) in cases {
            let mut b = body(now);
            edit(&mut b);
            match b.validate(now) {
                Err(Problem::Invalid(msg)) => assert!(msg.starts_with(field), "{field}: {msg}"),
                other => panic!("{field}: {other:?}"),
            }
        }
        let mut many = body(now);
        many.results = vec![many.results[0].clone(); MAX_RESULTS_PER_REQUEST + 1];
        assert!(matches!(many.validate(now), Err(Problem::TooMany(_))));
    }

    #[test]
    fn json_shape() {
        let t = Target::new(7, "127.20.1.4".parse().unwrap(), Some(5432));
        assert_eq!(
            serde_json::to_value(t).unwrap(),
            serde_json::json!({"edge_id": 7, "ip": "127.20.1.4", "kind": "tcp", "port": 5432})
        );
        let icmp = Target::new(8, "::1".parse().unwrap(), None);
        assert_eq!(serde_json::to_value(icmp).unwrap(), serde_json::json!({"edge_id": 8, "ip": "::1", "kind": "icmp"}));
        assert_eq!(icmp.probe_target(), Some(ProbeTarget::icmp("::1".parse().unwrap())));
        let at: DateTime<Utc> = "2026-11-22T01:43:53.5Z".parse().unwrap();
        let v = serde_json::to_value(body(at)).unwrap();
        assert_eq!(v["results"][0]["at"], "2026-11-22T01:43:53.500Z");
        assert_eq!(v["results"][0]["outcome"]["sent"], 5);
        assert_eq!(v["local"]["load1"], 0.5);
    }
}
