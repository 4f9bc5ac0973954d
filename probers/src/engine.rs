//! The probe engine: every target passes the allow-list first, then is probed by ICMP echo
//! or TCP connect, many targets at once, under one packets-per-second cap.
//!
//! ```no_run
//! # async fn demo() -> probers::Result<()> {
//! use probers::{AllowList, Engine, ProbeTarget};
//! let engine = Engine::builder(AllowList::loopback()).packets(5).build()?;
//! let results = engine.probe_all(vec![ProbeTarget::icmp("127.0.0.1".parse().unwrap())]).await;
//! for (target, outcome) in results {
//!     println!("{target}: {} of {} answered", outcome.received, outcome.sent);
//! }
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::allow::AllowList;
use crate::error::{Error, Result};
use crate::icmp::{self, Family, IcmpMode, PingSettings, Pinger};
use crate::pace::Pacer;
use crate::stats::ProbeOutcome;
use crate::target::{ProbeKind, ProbeTarget};
use crate::tcp::{self, TcpSettings};

/// Packets (echo requests, connect attempts) per target per cycle, by default.
pub const DEFAULT_PACKETS: u32 = 5;
/// Gap between one target's packets, by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(200);
/// How long each packet is waited for, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// The engine-wide packets-per-second cap, by default.
pub const DEFAULT_PPS: u32 = 1000;
/// Targets probed at the same time at most, by default.
pub const DEFAULT_MAX_CONCURRENT_TARGETS: usize = 4096;

/// The validated settings of an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeSettings {
    pub packets: u32,
    pub interval: Duration,
    pub timeout: Duration,
    pub pps: u32,
    pub max_concurrent_targets: usize,
}

/// Builds an [`Engine`]; every setting has a default and is checked by [`build`](Self::build).
#[derive(Debug, Clone)]
pub struct EngineBuilder {
    allow: AllowList,
    settings: ProbeSettings,
    identifier: Option<u16>,
    prefer_unprivileged: bool,
    icmp: bool,
}

/// Probes targets. Cheap to clone (clones share sockets, the rate cap and the counters).
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    allow: AllowList,
    settings: ProbeSettings,
    pinger: std::result::Result<Pinger, String>,
    pacer: Arc<Pacer>,
    counters: Arc<Counters>,
    targets: Arc<Semaphore>,
}

/// Running totals of an engine, for metrics and for tests that must prove nothing was sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStats {
    /// Packets that left: echo requests handed to the kernel, TCP connect attempts started.
    pub packets_sent: u64,
    /// Echo replies and completed handshakes within the timeout.
    pub replies_received: u64,
    /// Targets the allow-list refused (nothing sent to them).
    pub refused: u64,
    /// Targets that passed the allow-list and were probed.
    pub targets_probed: u64,
    /// Packets the ICMP receive threads read (after the kernel's filter), ours or not.
    pub icmp_packets_read: u64,
}

/// The engine's counters, updated by the ICMP and TCP senders.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    packets_sent: AtomicU64,
    replies_received: AtomicU64,
    refused: AtomicU64,
    targets_probed: AtomicU64,
    icmp_packets_read: AtomicU64,
}

impl Counters {
    pub(crate) fn packet_sent(&self) {
        self.packets_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn replies_received(&self, n: usize) {
        self.replies_received.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn icmp_packet_read(&self) {
        self.icmp_packets_read.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> EngineStats {
        EngineStats {
            packets_sent: self.packets_sent.load(Ordering::Relaxed),
            replies_received: self.replies_received.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            targets_probed: self.targets_probed.load(Ordering::Relaxed),
            icmp_packets_read: self.icmp_packets_read.load(Ordering::Relaxed),
        }
    }
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            packets: DEFAULT_PACKETS,
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            pps: DEFAULT_PPS,
            max_concurrent_targets: DEFAULT_MAX_CONCURRENT_TARGETS,
        }
    }
}

impl ProbeSettings {
    /// Checks every setting is in range.
    pub fn validate(&self) -> Result<()> {
        if !(1..=100).contains(&self.packets) {
            return Err(Error::setting("packets", format!("{} is not within 1..=100", self.packets)));
        }
        if self.interval > Duration::from_secs(60) {
            return Err(Error::setting("interval", format!("{:?} is over 60 s", self.interval)));
        }
        if self.timeout < Duration::from_millis(1) || self.timeout > Duration::from_secs(60) {
            return Err(Error::setting("timeout", format!("{:?} is not within 1 ms..=60 s", self.timeout)));
        }
        if !(1..=1_000_000).contains(&self.pps) {
            return Err(Error::setting("pps", format!("{} is not within 1..=1000000", self.pps)));
        }
        if !(1..=1_000_000).contains(&self.max_concurrent_targets) {
            return Err(Error::setting(
                "max_concurrent_targets",
                format!("{} is not within 1..=1000000", self.max_concurrent_targets),
            ));
        }
        Ok(())
    }
}

impl EngineBuilder {
    /// A builder with default settings probing only inside `allow`.
    pub fn new(allow: AllowList) -> Self {
        EngineBuilder {
            allow,
            settings: ProbeSettings::default(),
            identifier: None,
            prefer_unprivileged: false,
            icmp: true,
        }
    }

    /// Packets (echo requests or connect attempts) per target per cycle: 1–100, default 5.
    pub fn packets(mut self, n: u32) -> Self {
        self.settings.packets = n;
        self
    }

    /// Gap between one target's packets: up to 60 s, default 200 ms.
    pub fn interval(mut self, gap: Duration) -> Self {
        self.settings.interval = gap;
        self
    }

    /// How long each packet is waited for: 1 ms–60 s, default 1 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    /// Engine-wide packets-per-second cap: 1–1,000,000, default 1000.
    pub fn pps(mut self, pps: u32) -> Self {
        self.settings.pps = pps;
        self
    }

    /// Targets probed at the same time at most, default 4096.
    pub fn max_concurrent_targets(mut self, n: usize) -> Self {
        self.settings.max_concurrent_targets = n;
        self
    }

    /// All settings at once.
    pub fn settings(mut self, settings: ProbeSettings) -> Self {
        self.settings = settings;
        self
    }

    /// The ICMP identifier on raw sockets (datagram sockets get the kernel's). Default: a
    /// value unique in this process, from a random start.
    pub fn identifier(mut self, id: u16) -> Self {
        self.identifier = Some(id);
        self
    }

    /// Try the unprivileged ICMP datagram socket before the raw one (default: raw first).
    pub fn prefer_unprivileged(mut self, yes: bool) -> Self {
        self.prefer_unprivileged = yes;
        self
    }

    /// Whether to open ICMP sockets at all (default yes). Without them, ICMP targets get an
    /// outcome saying so; TCP-only probers need no privileges.
    pub fn icmp(mut self, enabled: bool) -> Self {
        self.icmp = enabled;
        self
    }

    /// Checks the settings and opens the ICMP sockets. Must run inside a tokio runtime.
    /// An ICMP family that cannot be opened is not an error here: its targets' outcomes say
    /// why (see [`Engine::icmp_mode`]).
    pub fn build(self) -> Result<Engine> {
        self.settings.validate()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::NoRuntime);
        }
        let ProbeSettings { packets, interval, timeout, pps, max_concurrent_targets } = self.settings;
        let pacer = Arc::new(Pacer::new(pps));
        let counters = Arc::new(Counters::default());
        let pinger = if self.icmp {
            let settings = PingSettings {
                packets,
                interval,
                timeout,
                identifier: self.identifier.unwrap_or_else(icmp::next_identifier),
                prefer_unprivileged: self.prefer_unprivileged,
            };
            let pinger = Pinger::open(settings, pacer.clone(), counters.clone());
            for family in [Family::V4, Family::V6] {
                if let Err(reason) = pinger.mode(family) {
                    tracing::warn!(%family, %reason, "ICMP probing unavailable");
                }
            }
            Ok(pinger)
        } else {
            Err("ICMP probing is disabled in this engine".to_string())
        };
        let inner = Inner {
            allow: self.allow,
            settings: self.settings,
            pinger,
            pacer,
            counters,
            targets: Arc::new(Semaphore::new(max_concurrent_targets)),
        };
        Ok(Engine { inner: Arc::new(inner) })
    }
}

impl Engine {
    /// A builder probing only inside `allow`.
    pub fn builder(allow: AllowList) -> EngineBuilder {
        EngineBuilder::new(allow)
    }

    /// The allow-list in force.
    pub fn allow_list(&self) -> &AllowList {
        &self.inner.allow
    }

    /// The settings in force.
    pub fn settings(&self) -> ProbeSettings {
        self.inner.settings
    }

    /// The ICMP socket kind for a family, or why ICMP over it is unavailable.
    pub fn icmp_mode(&self, family: Family) -> std::result::Result<IcmpMode, String> {
        match &self.inner.pinger {
            Ok(pinger) => pinger.mode(family).map_err(str::to_string),
            Err(reason) => Err(reason.clone()),
        }
    }

    /// Running totals since the engine was built.
    pub fn stats(&self) -> EngineStats {
        self.inner.counters.snapshot()
    }

    /// Packets that left so far (echo requests sent, connect attempts started).
    pub fn packets_sent(&self) -> u64 {
        self.stats().packets_sent
    }

    /// One cycle against one target (waits for a concurrency slot first).
    pub async fn probe(&self, target: ProbeTarget) -> ProbeOutcome {
        let _slot = self.inner.targets.acquire().await.expect("the target semaphore is never closed");
        self.inner.probe(target).await
    }

    /// One cycle against every target, at most `max_concurrent_targets` at a time, results
    /// in the order given. Dropping the future stops the probes still running.
    pub async fn probe_all(&self, targets: Vec<ProbeTarget>) -> Vec<(ProbeTarget, ProbeOutcome)> {
        let mut outcomes: Vec<Option<ProbeOutcome>> = vec![None; targets.len()];
        let mut running = JoinSet::new();
        let store = |outcomes: &mut Vec<Option<ProbeOutcome>>, joined| match joined {
            Ok((i, outcome)) => outcomes[i] = Some(outcome),
            Err(e) => tracing::error!(error = %e, "probe task failed"),
        };
        for (i, &target) in targets.iter().enumerate() {
            let slot = loop {
                tokio::select! {
                    biased;
                    slot = self.inner.targets.clone().acquire_owned() => {
                        break slot.expect("the target semaphore is never closed");
                    }
                    Some(joined) = running.join_next(), if !running.is_empty() => store(&mut outcomes, joined),
                }
            };
            let inner = self.inner.clone();
            running.spawn(async move {
                let _slot = slot;
                (i, inner.probe(target).await)
            });
        }
        while let Some(joined) = running.join_next().await {
            store(&mut outcomes, joined);
        }
        targets
            .into_iter()
            .zip(outcomes)
            .map(|(target, outcome)| {
                (target, outcome.unwrap_or_else(|| ProbeOutcome::not_sent("the probe task failed (see the log)")))
            })
            .collect()
    }

    /// Stops the ICMP receive threads and waits for them. Probes after this time out.
    pub async fn shutdown(&self) {
        if let Ok(pinger) = &self.inner.pinger {
            pinger.shutdown().await;
        }
    }
}

impl Inner {
    async fn probe(&self, target: ProbeTarget) -> ProbeOutcome {
        let ip = match self.allow.check(target.ip) {
            Ok(ip) => ip,
            Err(refused) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    probe_target = %target,
                    allow_list = %self.allow,
                    reason = %refused.reason,
                    "probe target refused by the allow-list; no packet sent"
                );
                return ProbeOutcome::refused(&refused);
            }
        };
        self.counters.targets_probed.fetch_add(1, Ordering::Relaxed);
        let span = tracing::debug_span!("probe", probe_target = %target);
        let outcome = match target.kind {
            ProbeKind::Icmp => match &self.pinger {
                Ok(pinger) => pinger.ping(ip).instrument(span).await,
                Err(reason) => ProbeOutcome::not_sent(reason.clone()),
            },
            ProbeKind::Tcp => {
                let port = target.port.unwrap_or(0);
                let settings = TcpSettings {
                    attempts: self.settings.packets,
                    interval: self.settings.interval,
                    timeout: self.settings.timeout,
                };
                tcp::probe(ip, port, settings, self.pacer.clone(), self.counters.clone()).instrument(span).await
            }
        };
        tracing::debug!(
            probe_target = %target,
            sent = outcome.sent,
            received = outcome.received,
            loss_pct = outcome.loss_pct,
            rtt_avg_ms = outcome.rtt_avg_ms,
            error = outcome.error.as_deref(),
            "probed"
        );
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_validated() {
        let ok = ProbeSettings::default();
        assert!(ok.validate().is_ok());
        let cases = [
            ("packets", ProbeSettings { packets: 0, ..ok }),
            ("packets", ProbeSettings { packets: 101, ..ok }),
            ("interval", ProbeSettings { interval: Duration::from_secs(61), ..ok }),
            ("timeout", ProbeSettings { timeout: Duration::ZERO, ..ok }),
            ("timeout", ProbeSettings { timeout: Duration::from_secs(61), ..ok }),
            ("pps", ProbeSettings { pps: 0, ..ok }),
            ("max_concurrent_targets", ProbeSettings { max_concurrent_targets: 0, ..ok }),
        ];
        for (name, settings) in cases {
            match settings.validate() {
                Err(Error::InvalidSetting { setting, .. }) => assert_eq!(setting, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn build_needs_a_runtime() {
        let err = Engine::builder(AllowList::loopback()).icmp(false).build().unwrap_err();
        assert!(matches!(err, Error::NoRuntime), "{err}");
    }

    #[tokio::test]
    async fn build_refuses_bad_settings() {
        let err = Engine::builder(AllowList::loopback()).packets(0).build().unwrap_err();
        assert_eq!(err.to_string(), "invalid probe setting packets: 0 is not within 1..=100");
    }

    #[tokio::test]
    async fn refused_targets_send_nothing() {
        let engine = Engine::builder(AllowList::loopback()).icmp(false).build().unwrap();
        let out = engine.probe(ProbeTarget::tcp("192.0.2.1".parse().unwrap(), 80)).await;
        assert!(out.refused);
        assert_eq!(engine.stats(), EngineStats { refused: 1, ..EngineStats::default() });
    }
}
