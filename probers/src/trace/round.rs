//! The bookkeeping of one trace, round by round, and its summary as a [`Run`]: pure, no
//! I/O (the tracer's socket code drives it).
//!
//! A trace is mtr-style: `probes` rounds; each round sends one probe per TTL from 1 up to
//! the current limit, then waits for every probe's answer or timeout. The limit starts at
//! `max_ttl` and only comes down:
//! - **Stop past the destination.** The *end* of the path is the lowest TTL answered by an
//!   echo reply, a destination unreachable, or anything from the destination itself. Once
//!   known, no higher TTL is sent (within the round too, as soon as the answer is in) and
//!   none is reported: probes sent past it before it was known are left out of the run,
//!   so the destination's figures are those of the probes that reached it at its TTL.
//! - **Silence.** After a round without an end, TTLs more than `max_unknown` past the last
//!   answering hop are no longer probed or reported (mtr's `--max-unknown`): a run that did
//!   not reach its destination ends with at most that many silent hops.
//!
//! **Honest loss.** A hop's `sent` counts the probes that left at its TTL (a probe whose
//! send failed is not counted), `received` those answered within the per-probe timeout: a
//! late answer counts as lost, whenever it arrives, and a probe is never resent. Because
//! the limit only comes down, every reported TTL was probed in every round that came
//! before the limit passed below it.
//!
//! Per hop: the addresses that answered at its TTL (several if they differ: per-packet
//! load balancing, or a route change during the trace), RTT best/average/worst and
//! population standard deviation (as `ping`'s `mdev` and [`crate::RttStats`]), and
//! **jitter**: the mean absolute difference between consecutive answered probes' RTTs, in
//! the order sent (mtr's `Javg`; 0 with a single answer, none without).

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use graph_store::paths::{Hop, Run};

use super::packet::AnswerKind;
use crate::stats::RttStats;

/// An answer to one probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reply {
    pub from: IpAddr,
    pub rtt: Duration,
    pub kind: AnswerKind,
}

/// Which probe of a trace: the index [`TraceLog::sent`] gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProbeId(pub usize);

#[derive(Debug, Clone)]
struct Probe {
    round: u32,
    ttl: u8,
    reply: Option<Reply>,
}

/// Every probe of one trace so far, and what to probe next.
#[derive(Debug, Clone)]
pub struct TraceLog {
    dst: IpAddr,
    timeout: Duration,
    max_unknown: u8,
    limit: u8,
    /// The lowest TTL that answered as the end of the path.
    end: Option<u8>,
    probes: Vec<Probe>,
}

impl TraceLog {
    /// A trace to `dst` probing TTLs up to `max_ttl` (at least 1), counting answers within
    /// `timeout`.
    pub fn new(dst: IpAddr, max_ttl: u8, max_unknown: u8, timeout: Duration) -> Self {
        TraceLog { dst, timeout, max_unknown, limit: max_ttl.max(1), end: None, probes: Vec::new() }
    }

    /// The highest TTL the coming round probes.
    pub fn limit(&self) -> u8 {
        self.limit
    }

    /// The lowest TTL answered as the end of the path (destination or unreachable), if any.
    pub fn end(&self) -> Option<u8> {
        self.end
    }

    /// Whether a probe at `ttl` should be sent now: within the limit and not past the end.
    pub fn should_send(&self, ttl: u8) -> bool {
        ttl >= 1 && ttl <= self.limit && self.end.is_none_or(|end| ttl <= end)
    }

    /// The id the next [`sent`](Self::sent) will give.
    pub fn next_probe(&self) -> ProbeId {
        ProbeId(self.probes.len())
    }

    /// Notes a probe at `ttl` that left in `round`.
    pub fn sent(&mut self, round: u32, ttl: u8) -> ProbeId {
        self.probes.push(Probe { round, ttl, reply: None });
        ProbeId(self.probes.len() - 1)
    }

    /// Notes the answer to a probe. Ignored (returns false) when late (over the timeout),
    /// for a probe already answered, or an unknown one.
    pub fn answer(&mut self, probe: ProbeId, reply: Reply) -> bool {
        let Some(p) = self.probes.get_mut(probe.0) else { return false };
        if p.reply.is_some() || reply.rtt > self.timeout {
            return false;
        }
        p.reply = Some(reply);
        let ends_path = reply.kind != AnswerKind::TimeExceeded || reply.from == self.dst;
        if ends_path && self.end.is_none_or(|end| p.ttl < end) {
            self.end = Some(p.ttl);
        }
        true
    }

    /// Probes of `round` still without an answer.
    pub fn outstanding(&self, round: u32) -> usize {
        self.probes.iter().filter(|p| p.round == round && p.reply.is_none()).count()
    }

    /// Closes a round: brings the limit down to the end of the path, or else to
    /// `max_unknown` past the last answering hop.
    pub fn end_round(&mut self) {
        let new = match self.end {
            Some(end) => end,
            None => {
                let last = self.probes.iter().filter(|p| p.reply.is_some()).map(|p| p.ttl).max().unwrap_or(0);
                last.saturating_add(self.max_unknown)
            }
        };
        self.limit = self.limit.min(new).max(1);
    }

    /// The run so far: one hop per TTL from 1 to the limit (or the end, if lower).
    pub fn run(&self, at: DateTime<Utc>) -> Run {
        let last = self.end.map_or(self.limit, |end| end.min(self.limit));
        let hops: Vec<Hop> = (1..=last).map(|ttl| self.hop(ttl)).collect();
        let reached = self.end == Some(last) && hops.last().is_some_and(|h| h.addrs.contains(&self.dst));
        Run { at, hops, reached }
    }

    fn hop(&self, ttl: u8) -> Hop {
        let probes: Vec<&Probe> = self.probes.iter().filter(|p| p.ttl == ttl).collect();
        let replies: Vec<&Reply> = probes.iter().filter_map(|p| p.reply.as_ref()).collect();
        let mut addrs: Vec<IpAddr> = replies.iter().map(|r| r.from).collect();
        addrs.sort_unstable();
        addrs.dedup();
        let rtts: Vec<Duration> = replies.iter().map(|r| r.rtt).collect();
        let stats = RttStats::from_samples(&rtts);
        let ms: Vec<f64> = rtts.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        let jitter = match ms.len() {
            0 => None,
            1 => Some(0.0),
            n => Some(ms.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / (n - 1) as f64),
        };
        Hop {
            ttl,
            addrs,
            sent: probes.len() as u32,
            received: replies.len() as u32,
            rtt_best_ms: stats.map(|s| s.min_ms as f32),
            rtt_avg_ms: stats.map(|s| s.avg_ms as f32),
            rtt_worst_ms: stats.map(|s| s.max_ms as f32),
            rtt_stddev_ms: stats.map(|s| s.stddev_ms as f32),
            jitter_ms: jitter.map(|j| j as f32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DST: &str = "198.18.9.2";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A token's reply: `*` none, `D` echo reply from the destination, `aN` time exceeded
    /// from 198.18.N.1, `uN` unreachable from 198.18.N.1, `uD` unreachable from the
    /// destination, `late` an echo reply over the timeout; `@ms` sets the RTT (default 1 ms).
    fn reply(token: &str) -> Option<Reply> {
        let (what, ms) = token.split_once('@').map_or((token, 1.0), |(w, ms)| (w, ms.parse::<f64>().unwrap()));
        let rtt = Duration::from_secs_f64(ms / 1000.0);
        let router = |n: &str| ip(&format!("198.18.{n}.1"));
        let (from, kind) = match what {
            "*" => return None,
            "D" => (ip(DST), AnswerKind::EchoReply),
            "late" => return Some(Reply { from: ip(DST), rtt: Duration::from_secs(2), kind: AnswerKind::EchoReply }),
            "uD" => (ip(DST), AnswerKind::Unreachable { code: 13 }),
            w if w.starts_with('a') => (router(&w[1..]), AnswerKind::TimeExceeded),
            w if w.starts_with('u') => (router(&w[1..]), AnswerKind::Unreachable { code: 1 }),
            other => panic!("bad token {other}"),
        };
        Some(Reply { from, rtt, kind })
    }

    /// Plays rounds (each a space-separated token per TTL from 1) through a log the way the
    /// tracer does: send while `should_send` says so, then the answers — each right after
    /// its send when `prompt`, else after the whole round was sent.
    fn play(rounds: &[&str], max_ttl: u8, prompt: bool) -> TraceLog {
        let mut log = TraceLog::new(ip(DST), max_ttl, 3, Duration::from_secs(1));
        for (round, tokens) in rounds.iter().enumerate() {
            let tokens: Vec<&str> = tokens.split_whitespace().collect();
            let mut pending = Vec::new();
            for ttl in 1..=max_ttl {
                if !log.should_send(ttl) {
                    break;
                }
                let id = log.sent(round as u32, ttl);
                let answer = reply(tokens.get(usize::from(ttl) - 1).copied().unwrap_or("*"));
                if prompt {
                    answer.map(|a| log.answer(id, a));
                } else {
                    pending.push((id, answer));
                }
            }
            for (id, answer) in pending {
                answer.map(|a| log.answer(id, a));
            }
            log.end_round();
        }
        log
    }

    /// A run as `ttl:addr,addr:sent/received` per hop ("-" for silent), then `reached` or not.
    fn summary(run: &Run) -> String {
        let mut out: Vec<String> = run
            .hops
            .iter()
            .map(|h| {
                let addrs: Vec<String> = h.addrs.iter().map(|a| a.to_string().replace("198.18.", "")).collect();
                let addrs = if addrs.is_empty() { "-".to_string() } else { addrs.join(",") };
                format!("{}:{addrs}:{}/{}", h.ttl, h.sent, h.received)
            })
            .collect();
        out.push(if run.reached { "reached" } else { "not reached" }.to_string());
        out.join(" ")
    }

    #[test]
    fn rounds_make_hops() {
        let cases: &[(&str, &[&str], u8, bool, &str)] = &[
            (
                "a clean path",
                &["a1 a2 a3 D", "a1 a2 a3 D", "a1 a2 a3 D"],
                30,
                true,
                "1:1.1:3/3 2:2.1:3/3 3:3.1:3/3 4:9.2:3/3 reached",
            ),
            (
                // Probes past the destination left before its answer came; not reported.
                "answers after the round was sent",
                &["a1 a2 D D D D", "a1 a2 D", "a1 a2 D"],
                6,
                false,
                "1:1.1:3/3 2:2.1:3/3 3:9.2:3/3 reached",
            ),
            (
                "the destination's first probe lost: found one TTL further, then corrected",
                &["a1 a2 * D", "a1 a2 D", "a1 a2 D"],
                30,
                true,
                "1:1.1:3/3 2:2.1:3/3 3:9.2:3/2 reached",
            ),
            (
                "loss and a silent router",
                &["a1 * a3 D", "* * a3 D", "a1 * * D"],
                30,
                true,
                "1:1.1:3/2 2:-:3/0 3:3.1:3/2 4:9.2:3/3 reached",
            ),
            (
                "two addresses at one TTL (per-packet balancing)",
                &["a1 a2 D", "a1 a5 D", "a1 a2 D"],
                30,
                true,
                "1:1.1:3/3 2:2.1,5.1:3/3 3:9.2:3/3 reached",
            ),
            (
                "unreachable from a router ends the path, not reached",
                &["a1 u2 u2 u2", "a1 u2", "a1 u2"],
                30,
                false,
                "1:1.1:3/3 2:2.1:3/3 not reached",
            ),
            (
                "unreachable from the destination itself: reached",
                &["a1 uD", "a1 uD", "a1 uD"],
                30,
                true,
                "1:1.1:3/3 2:9.2:3/3 reached",
            ),
            (
                // Round 1 probes to 8; then 3 (max_unknown) past the last answer (2).
                "destination silent: trailing silence is cut to max_unknown",
                &["a1 a2", "a1 a2", "a1 a2"],
                8,
                false,
                "1:1.1:3/3 2:2.1:3/3 3:-:3/0 4:-:3/0 5:-:3/0 not reached",
            ),
            ("nothing answers at all", &["", "", ""], 30, false, "1:-:3/0 2:-:3/0 3:-:3/0 not reached"),
            (
                "a late echo reply is loss, and does not end the path",
                &["a1 late", "a1 D", "a1 D"],
                30,
                true,
                "1:1.1:3/3 2:9.2:3/2 reached",
            ),
            ("max_ttl short of the destination", &["a1 a2 a3 D"; 3], 2, true, "1:1.1:3/3 2:2.1:3/3 not reached"),
        ];
        for (name, rounds, max_ttl, prompt, want) in cases {
            let log = play(rounds, *max_ttl, *prompt);
            let run = log.run(DateTime::UNIX_EPOCH);
            assert_eq!(summary(&run), *want, "{name}");
            assert_eq!(run.at, DateTime::UNIX_EPOCH);
            for (i, hop) in run.hops.iter().enumerate() {
                assert_eq!(usize::from(hop.ttl), i + 1, "{name}: TTLs from 1, in order");
                assert_eq!(hop.rtt_avg_ms.is_some(), hop.received > 0, "{name}: RTTs exactly when answered");
            }
        }
    }

    #[test]
    fn early_stop_sends_nothing_past_the_destination() {
        // Answers come back at once: nothing past TTL 3 ever leaves, in any round.
        let log = play(&["a1 a2 D D D", "a1 a2 D", "a1 a2 D"], 30, true);
        assert_eq!(log.probes.len(), 9);
        assert!(log.probes.iter().all(|p| p.ttl <= 3));
        assert_eq!((log.end(), log.limit()), (Some(3), 3));
        // Answers after the round: round 1 probes all 5 tokens' TTLs (and on to max_ttl).
        let log = play(&["a1 a2 D D D", "a1 a2 D", "a1 a2 D"], 6, false);
        assert_eq!(log.probes.len(), 6 + 3 + 3);
    }

    #[test]
    fn rtt_figures_and_jitter() {
        /// best, avg, worst, stddev, jitter
        type Figures = [Option<f32>; 5];
        let cases: &[(&str, &[&str], Figures)] = &[
            // best, avg, worst, stddev (population), jitter (mean |consecutive difference|)
            (
                "five rounds, one lost",
                &["D@10", "D@12", "D@11", "*", "D@15"],
                [Some(10.0), Some(12.0), Some(15.0), Some(1.870_829), Some(7.0 / 3.0)],
            ),
            ("one answer", &["*", "D@4"], [Some(4.0), Some(4.0), Some(4.0), Some(0.0), Some(0.0)]),
            ("none", &["*", "*"], [None; 5]),
            ("steady", &["D@2", "D@2", "D@2"], [Some(2.0), Some(2.0), Some(2.0), Some(0.0), Some(0.0)]),
        ];
        for (name, rounds, want) in cases {
            let log = play(rounds, 1, true);
            let hop = &log.run(DateTime::UNIX_EPOCH).hops[0];
            let got = [hop.rtt_best_ms, hop.rtt_avg_ms, hop.rtt_worst_ms, hop.rtt_stddev_ms, hop.jitter_ms];
            for (field, (g, w)) in ["best", "avg", "worst", "stddev", "jitter"].iter().zip(got.iter().zip(want)) {
                match (g, w) {
                    (Some(g), Some(w)) => assert!((g - w).abs() < 1e-3, "{name}: {field} {g} != {w}"),
                    _ => assert_eq!(g, w, "{name}: {field}"),
                }
            }
            assert_eq!(hop.sent, rounds.len() as u32, "{name}");
        }
    }

    #[test]
    fn duplicate_and_unknown_answers_are_ignored() {
        let mut log = TraceLog::new(ip(DST), 30, 5, Duration::from_secs(1));
        let id = log.sent(0, 1);
        let r = reply("a1").unwrap();
        assert!(log.answer(id, r));
        assert!(!log.answer(id, reply("a2").unwrap()), "a second answer to one probe");
        assert!(!log.answer(ProbeId(7), r), "no such probe");
        assert_eq!(log.outstanding(0), 0);
        let id2 = log.sent(0, 2);
        assert_eq!(log.outstanding(0), 1);
        assert!(!log.answer(id2, reply("late").unwrap()));
        assert_eq!(log.outstanding(0), 1, "a late answer leaves the probe lost");
        let hop = &log.run(DateTime::UNIX_EPOCH).hops[0];
        assert_eq!(hop.addrs, vec![ip("198.18.1.1")]);
    }
}
