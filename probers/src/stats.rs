//! The result of probing one target for one cycle: packets sent and received, loss, and
//! round-trip statistics. Pure arithmetic, no I/O.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::allow::Refused;

/// What one cycle against one target gave.
///
/// Build it with [`ProbeOutcome::from_samples`], [`ProbeOutcome::refused`] or
/// [`ProbeOutcome::not_sent`], which keep the fields consistent: `received <= sent`,
/// `loss_pct` is `100 * (sent - received) / sent` (100 when nothing was sent), and the RTT
/// figures are present exactly when something was received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeOutcome {
    /// Probe packets (echo requests, connect attempts) the cycle tried to send.
    pub sent: u32,
    /// Replies (echo replies, completed handshakes) within the per-packet timeout.
    pub received: u32,
    /// Lost share in percent, 0–100.
    pub loss_pct: f64,
    pub rtt_min_ms: Option<f64>,
    pub rtt_avg_ms: Option<f64>,
    pub rtt_max_ms: Option<f64>,
    /// Population standard deviation (what `ping` prints as `mdev`).
    pub rtt_stddev_ms: Option<f64>,
    /// Why packets were lost or not sent, when the cause is known (e.g. "connection
    /// refused", "destination unreachable", the allow-list refusal).
    pub error: Option<String>,
    /// The allow-list refused the target: nothing was sent, and the loss says nothing
    /// about the network.
    #[serde(default)]
    pub refused: bool,
}

/// Round-trip figures in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RttStats {
    pub min_ms: f64,
    pub avg_ms: f64,
    pub max_ms: f64,
    pub stddev_ms: f64,
}

impl RttStats {
    /// Min/avg/max/stddev of the samples; `None` when there are none.
    pub fn from_samples(rtts: &[Duration]) -> Option<RttStats> {
        if rtts.is_empty() {
            return None;
        }
        let ms: Vec<f64> = rtts.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        let n = ms.len() as f64;
        let min_ms = ms.iter().copied().fold(f64::INFINITY, f64::min);
        let max_ms = ms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let avg_ms = ms.iter().sum::<f64>() / n;
        let var = ms.iter().map(|x| (x - avg_ms).powi(2)).sum::<f64>() / n;
        Some(RttStats { min_ms, avg_ms, max_ms, stddev_ms: var.sqrt() })
    }
}

impl ProbeOutcome {
    /// The outcome of `sent` attempts of which `rtts.len()` were answered. `rtts.len()` is
    /// capped at `sent`. `error` is the last known cause of a loss, if any.
    pub fn from_samples(sent: u32, rtts: &[Duration], error: Option<String>) -> Self {
        let rtts = &rtts[..rtts.len().min(sent as usize)];
        let received = rtts.len() as u32;
        let stats = RttStats::from_samples(rtts);
        ProbeOutcome {
            sent,
            received,
            loss_pct: loss_pct(sent, received),
            rtt_min_ms: stats.map(|s| s.min_ms),
            rtt_avg_ms: stats.map(|s| s.avg_ms),
            rtt_max_ms: stats.map(|s| s.max_ms),
            rtt_stddev_ms: stats.map(|s| s.stddev_ms),
            error,
            refused: false,
        }
    }

    /// The allow-list refused the target; nothing was sent.
    pub fn refused(refusal: &Refused) -> Self {
        ProbeOutcome { refused: true, ..ProbeOutcome::not_sent(refusal.to_string()) }
    }

    /// Nothing could be sent (no ICMP socket for the family, an invalid target…).
    pub fn not_sent(error: impl Into<String>) -> Self {
        ProbeOutcome::from_samples(0, &[], Some(error.into()))
    }

    /// The RTT figures together, when anything was received.
    pub fn rtt(&self) -> Option<RttStats> {
        Some(RttStats {
            min_ms: self.rtt_min_ms?,
            avg_ms: self.rtt_avg_ms?,
            max_ms: self.rtt_max_ms?,
            stddev_ms: self.rtt_stddev_ms?,
        })
    }

    /// At least one reply came back.
    pub fn reachable(&self) -> bool {
        self.received > 0
    }
}

/// `100 * (sent - received) / sent`, and 100 when nothing was sent.
pub fn loss_pct(sent: u32, received: u32) -> f64 {
    if sent == 0 {
        return 100.0;
    }
    let received = received.min(sent);
    100.0 * f64::from(sent - received) / f64::from(sent)
}

/// `1s`, `250ms`: how timeouts read in outcome messages.
pub(crate) fn human_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn loss() {
        let cases = [(5, 5, 0.0), (5, 4, 20.0), (5, 0, 100.0), (0, 0, 100.0), (3, 1, 200.0 / 3.0), (2, 3, 0.0)];
        for (sent, received, want) in cases {
            assert!((loss_pct(sent, received) - want).abs() < 1e-9, "{sent}/{received}");
        }
    }

    #[test]
    fn rtt_stats() {
        assert_eq!(RttStats::from_samples(&[]), None);
        let one = RttStats::from_samples(&ms(&[7])).unwrap();
        assert_eq!((one.min_ms, one.avg_ms, one.max_ms, one.stddev_ms), (7.0, 7.0, 7.0, 0.0));
        let s = RttStats::from_samples(&ms(&[2, 4, 4, 4, 5, 5, 7, 9])).unwrap();
        assert_eq!((s.min_ms, s.avg_ms, s.max_ms), (2.0, 5.0, 9.0));
        assert!((s.stddev_ms - 2.0).abs() < 1e-9, "{}", s.stddev_ms);
    }

    #[test]
    fn outcome_from_samples() {
        let o = ProbeOutcome::from_samples(5, &ms(&[1, 3]), Some("timed out".into()));
        assert_eq!((o.sent, o.received), (5, 2));
        assert!((o.loss_pct - 60.0).abs() < 1e-9);
        assert_eq!(o.rtt_min_ms, Some(1.0));
        assert_eq!(o.rtt_avg_ms, Some(2.0));
        assert_eq!(o.rtt_max_ms, Some(3.0));
        assert_eq!(o.rtt_stddev_ms, Some(1.0));
        assert!(o.reachable());
        assert_eq!(o.rtt().unwrap().avg_ms, 2.0);

        let lost = ProbeOutcome::from_samples(5, &[], None);
        assert_eq!((lost.received, lost.loss_pct, lost.rtt_avg_ms, lost.rtt()), (0, 100.0, None, None));
        assert!(!lost.reachable());

        // More samples than attempts cannot happen; if it did, it is capped.
        let capped = ProbeOutcome::from_samples(1, &ms(&[1, 2]), None);
        assert_eq!((capped.sent, capped.received, capped.loss_pct), (1, 1, 0.0));
    }

    #[test]
    fn durations_in_messages() {
        let cases = [(1000, "1s"), (2000, "2s"), (250, "250ms"), (1500, "1500ms"), (0, "0ms")];
        for (ms, want) in cases {
            assert_eq!(human_duration(Duration::from_millis(ms)), want);
        }
    }

    #[test]
    fn refused_outcome() {
        let refusal = crate::AllowList::loopback().check("10.1.2.3".parse().unwrap()).unwrap_err();
        let o = ProbeOutcome::refused(&refusal);
        assert!(o.refused);
        assert_eq!((o.sent, o.received, o.loss_pct), (0, 0, 100.0));
        assert!(o.error.unwrap().contains("10.1.2.3"));
    }
}
