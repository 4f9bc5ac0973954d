//! Path tracing: mtr-style, Paris-style traces (ICMP echo, UDP, or TCP SYN to a service's
//! port), many destinations at once over one set of raw sockets per address family.
//!
//! A trace sends, in each of `probes` rounds, one probe per TTL from 1 up, and reads who
//! answers at each TTL: routers with Time Exceeded, the destination with an echo reply (UDP:
//! port unreachable; TCP: SYN-ACK or reset), or someone with Destination Unreachable. Every
//! probe of a trace has the same flow fields (ICMP: identifier and checksum; UDP and TCP:
//! ports), so per-flow load balancers keep it on one path, and those come from a hash of
//! the flow key, so the pair keeps that path run after run ([`packet`]). The rounds, the stop past the destination
//! and the per-hop figures are [`round`]'s; the sockets are `socket`'s. Every destination
//! passes the [`AllowList`] before anything is sent. Needs raw sockets: root or
//! `CAP_NET_RAW`. See docs/paths.md.
//!
//! ```no_run
//! # async fn demo() -> probers::Result<()> {
//! use probers::trace::{TraceTarget, Tracer};
//! use probers::AllowList;
//! let tracer = Tracer::builder(AllowList::loopback()).probes(3).max_ttl(30).build()?;
//! for (target, run) in tracer.trace_all(vec![TraceTarget::new("127.0.0.1".parse().unwrap())]).await {
//!     let run = run?;
//!     println!("{target}: {} hops, reached: {}", run.hops.len(), run.reached);
//! }
//! # Ok(()) }
//! ```

pub mod packet;
pub mod round;
mod socket;
mod spare;

use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use graph_store::paths::Run;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use self::packet::Flow;
use self::round::TraceLog;
use self::socket::{Arrival, Registration, TraceSocket};
use self::spare::SpareSlots;
use crate::allow::{AllowList, AllowedIp};
use crate::error::{Error, Result};
use crate::icmp::Family;
use crate::lock::lock;
use crate::pace::Pacer;

/// Probes per TTL per trace (mtr's cycles), by default.
pub const DEFAULT_PROBES: u32 = 3;
/// The highest TTL probed, by default.
pub const DEFAULT_MAX_TTL: u8 = 30;
/// Silent TTLs probed past the last answering hop when the destination is not found, by default.
pub const DEFAULT_MAX_UNKNOWN: u8 = 5;
/// How long each probe is waited for, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// The least time between the starts of a trace's rounds, by default (mtr's interval).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// The tracer-wide packets-per-second cap, by default.
pub const DEFAULT_PPS: u32 = 1000;
/// Traces in flight at once at most, by default.
pub const DEFAULT_MAX_CONCURRENT_TRACES: usize = 1024;

/// What to trace: a destination, how (ICMP echo, UDP to a port, or TCP SYN to a port), and a
/// flow number that picks the flow (with the addresses: the ICMP identifier, or the UDP or
/// TCP source port). Keep it the same for a pair from run to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TraceTarget {
    #[schema(value_type = String)]
    pub ip: IpAddr,
    #[serde(default)]
    pub protocol: TraceProtocol,
    #[serde(default)]
    pub flow: u16,
}

/// The probes a trace sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum TraceProtocol {
    /// ICMP (ICMPv6) echo requests; the destination answers with echo replies.
    #[default]
    Icmp,
    /// UDP datagrams to `port`, which should be closed: the destination answers with port
    /// unreachable (traceroute's ports start at 33434). An open port answers nothing, and
    /// the run does not reach its destination.
    Udp { port: u16 },
    /// TCP SYNs to `port`, the service's: they cross firewalls as the service's own
    /// connection attempts do. The destination answers with SYN-ACK (open) or reset
    /// (closed); either reaches it. A firewall on the way that drops them ends the run at
    /// the last hop before it.
    Tcp { port: u16 },
}

impl TraceTarget {
    /// An ICMP target with flow number 0.
    pub fn new(ip: IpAddr) -> Self {
        TraceTarget { ip, protocol: TraceProtocol::Icmp, flow: 0 }
    }

    /// A UDP target (to `port`) with flow number 0.
    pub fn udp(ip: IpAddr, port: u16) -> Self {
        TraceTarget { ip, protocol: TraceProtocol::Udp { port }, flow: 0 }
    }

    /// A TCP SYN target (to `port`) with flow number 0.
    pub fn tcp(ip: IpAddr, port: u16) -> Self {
        TraceTarget { ip, protocol: TraceProtocol::Tcp { port }, flow: 0 }
    }

    /// The same target on another flow.
    pub fn with_flow(self, flow: u16) -> Self {
        TraceTarget { flow, ..self }
    }
}

impl fmt::Display for TraceTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.protocol {
            TraceProtocol::Icmp => write!(f, "icmp {} flow {}", self.ip, self.flow),
            TraceProtocol::Udp { port } => {
                write!(f, "udp {} flow {}", std::net::SocketAddr::new(self.ip, port), self.flow)
            }
            TraceProtocol::Tcp { port } => {
                write!(f, "tcp {} flow {}", std::net::SocketAddr::new(self.ip, port), self.flow)
            }
        }
    }
}

/// The validated settings of a tracer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceSettings {
    /// Rounds per trace: probes per TTL (1–100).
    pub probes: u32,
    /// The highest TTL probed (1–255).
    pub max_ttl: u8,
    /// Silent TTLs kept past the last answering hop of a trace that finds no end (1–255).
    pub max_unknown: u8,
    /// Per-probe timeout (1 ms–60 s): a later answer counts as lost.
    pub timeout: Duration,
    /// The least time between the starts of two rounds of a trace (up to 60 s).
    pub interval: Duration,
    /// Tracer-wide probes per second (1–1,000,000).
    pub pps: u32,
    /// Traces in flight at once (1–100,000).
    pub max_concurrent_traces: usize,
}

impl Default for TraceSettings {
    fn default() -> Self {
        TraceSettings {
            probes: DEFAULT_PROBES,
            max_ttl: DEFAULT_MAX_TTL,
            max_unknown: DEFAULT_MAX_UNKNOWN,
            timeout: DEFAULT_TIMEOUT,
            interval: DEFAULT_INTERVAL,
            pps: DEFAULT_PPS,
            max_concurrent_traces: DEFAULT_MAX_CONCURRENT_TRACES,
        }
    }
}

impl TraceSettings {
    /// Checks every setting is in range.
    pub fn validate(&self) -> Result<()> {
        if !(1..=100).contains(&self.probes) {
            return Err(Error::setting("probes", format!("{} is not within 1..=100", self.probes)));
        }
        if self.max_ttl == 0 {
            return Err(Error::setting("max_ttl", "0 is not within 1..=255"));
        }
        if self.max_unknown == 0 {
            return Err(Error::setting("max_unknown", "0 is not within 1..=255"));
        }
        if self.timeout < Duration::from_millis(1) || self.timeout > Duration::from_secs(60) {
            return Err(Error::setting("timeout", format!("{:?} is not within 1 ms..=60 s", self.timeout)));
        }
        if self.interval > Duration::from_secs(60) {
            return Err(Error::setting("interval", format!("{:?} is over 60 s", self.interval)));
        }
        if !(1..=1_000_000).contains(&self.pps) {
            return Err(Error::setting("pps", format!("{} is not within 1..=1000000", self.pps)));
        }
        if !(1..=100_000).contains(&self.max_concurrent_traces) {
            return Err(Error::setting(
                "max_concurrent_traces",
                format!("{} is not within 1..=100000", self.max_concurrent_traces),
            ));
        }
        Ok(())
    }
}

/// Running totals of a tracer, for metrics and for tests that must prove nothing was sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracerStats {
    /// Probes that left.
    pub probes_sent: u64,
    /// Answers counted (within the timeout, one per probe).
    pub answers_received: u64,
    /// Targets the allow-list refused (nothing sent to them).
    pub refused: u64,
    /// Traces that passed the allow-list and ran.
    pub traces: u64,
    /// Packets the receive tasks read (after the kernel filter), ours or not.
    pub packets_read: u64,
}

#[derive(Debug, Default)]
struct Counters {
    probes_sent: AtomicU64,
    answers_received: AtomicU64,
    refused: AtomicU64,
    traces: AtomicU64,
}

/// Builds a [`Tracer`]; every setting has a default and is checked by [`build`](Self::build).
#[derive(Debug, Clone)]
pub struct TracerBuilder {
    allow: AllowList,
    settings: TraceSettings,
    own_thread: bool,
}

impl TracerBuilder {
    /// A builder with default settings tracing only inside `allow`.
    pub fn new(allow: AllowList) -> Self {
        TracerBuilder { allow, settings: TraceSettings::default(), own_thread: false }
    }

    /// Probes per TTL (rounds) per trace: 1–100, default 3.
    pub fn probes(mut self, n: u32) -> Self {
        self.settings.probes = n;
        self
    }

    /// The highest TTL probed: 1–255, default 30.
    pub fn max_ttl(mut self, ttl: u8) -> Self {
        self.settings.max_ttl = ttl;
        self
    }

    /// Silent TTLs kept past the last answering hop when no end is found: default 5.
    pub fn max_unknown(mut self, n: u8) -> Self {
        self.settings.max_unknown = n;
        self
    }

    /// How long each probe is waited for: 1 ms–60 s, default 1 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    /// The least time between the starts of a trace's rounds: up to 60 s, default 1 s.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.settings.interval = interval;
        self
    }

    /// Tracer-wide probes-per-second cap: 1–1,000,000, default 1000.
    pub fn pps(mut self, pps: u32) -> Self {
        self.settings.pps = pps;
        self
    }

    /// Traces in flight at once at most: default 1024.
    pub fn max_concurrent_traces(mut self, n: usize) -> Self {
        self.settings.max_concurrent_traces = n;
        self
    }

    /// All settings at once.
    pub fn settings(mut self, settings: TraceSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Runs the tracer's sockets and traces on a thread of its own (a single-threaded
    /// runtime) instead of the caller's runtime: what the agents and prober workers do, so
    /// that answers and pacer slots wake one thread rather than park and wake a pool
    /// (docs/BENCHMARKS.md, "Path tracing": the CPU this saves). Default: off.
    pub fn own_thread(mut self, own: bool) -> Self {
        self.own_thread = own;
        self
    }

    /// Checks the settings and opens the raw sockets of each family. Must run inside a tokio
    /// runtime. A family whose socket cannot be opened (not root, no `CAP_NET_RAW`) is not
    /// an error here: its traces' results say why (see [`Tracer::available`]).
    pub fn build(self) -> Result<Tracer> {
        self.settings.validate()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::NoRuntime);
        }
        let cancel = CancellationToken::new();
        let (sockets, runtime) = if self.own_thread {
            let (sockets, handle) = own_runtime(cancel.clone())?;
            (sockets, Some(handle))
        } else {
            (open_sockets(&cancel), None)
        };
        let Sockets { v4, v6, receivers } = sockets;
        let inner = Inner {
            allow: self.allow,
            settings: self.settings,
            v4,
            v6,
            pacer: Pacer::new(self.settings.pps),
            spare: SpareSlots::new(self.settings.pps),
            counters: Counters::default(),
            traces: Arc::new(Semaphore::new(self.settings.max_concurrent_traces)),
            cancel,
            receivers: Mutex::new(receivers),
            runtime,
        };
        Ok(Tracer { inner: Arc::new(inner) })
    }
}

/// A tracer's sockets of each family (or why not), and their receive tasks.
struct Sockets {
    v4: std::result::Result<Arc<TraceSocket>, String>,
    v6: std::result::Result<Arc<TraceSocket>, String>,
    receivers: Vec<JoinHandle<()>>,
}

/// Opens the raw sockets and spawns their receive tasks on the current runtime.
fn open_sockets(cancel: &CancellationToken) -> Sockets {
    let mut receivers = Vec::new();
    let mut open = |family| match TraceSocket::open(family) {
        Ok(socket) => {
            let socket = Arc::new(socket);
            receivers.push(tokio::spawn(socket::receive(socket.clone(), cancel.clone())));
            if socket.tcp_unavailable().is_none() {
                receivers.push(tokio::spawn(socket::receive_tcp(socket.clone(), cancel.clone())));
            }
            Ok(socket)
        }
        Err(e) => {
            // Said by each trace's error, and once by the callers that trace on a schedule.
            tracing::debug!(%family, error = %e, "tracing unavailable");
            Err(e.to_string())
        }
    };
    let (v4, v6) = (open(Family::V4), open(Family::V6));
    Sockets { v4, v6, receivers }
}

/// A thread running a single-threaded runtime until `cancel`, with the sockets opened (and
/// so registered) there; the runtime's handle for the traces.
fn own_runtime(cancel: CancellationToken) -> Result<(Sockets, tokio::runtime::Handle)> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::Runtime)?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("ew-tracer".into())
        .spawn(move || {
            runtime.block_on(async {
                let _ = tx.send((open_sockets(&cancel), tokio::runtime::Handle::current()));
                cancel.cancelled().await;
            })
        })
        .map_err(Error::Runtime)?;
    rx.recv().map_err(|_| Error::Runtime(std::io::Error::other("the tracer's thread ended at its start")))
}

/// Traces destinations. Cheap to clone (clones share sockets, the rate cap and counters).
#[derive(Debug, Clone)]
pub struct Tracer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    allow: AllowList,
    settings: TraceSettings,
    v4: std::result::Result<Arc<TraceSocket>, String>,
    v6: std::result::Result<Arc<TraceSocket>, String>,
    pacer: Pacer,
    /// Pacer slots traces took and did not use, for the next trace to send in.
    spare: SpareSlots,
    counters: Counters,
    traces: Arc<Semaphore>,
    cancel: CancellationToken,
    receivers: Mutex<Vec<JoinHandle<()>>>,
    /// The tracer's own runtime ([`TracerBuilder::own_thread`]), or none: the caller's.
    runtime: Option<tokio::runtime::Handle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Tracer {
    /// A builder tracing only inside `allow`.
    pub fn builder(allow: AllowList) -> TracerBuilder {
        TracerBuilder::new(allow)
    }

    /// The settings in force.
    pub fn settings(&self) -> TraceSettings {
        self.inner.settings
    }

    /// The allow-list in force.
    pub fn allow_list(&self) -> &AllowList {
        &self.inner.allow
    }

    /// Whether traces over `family` can run, or why not.
    pub fn available(&self, family: Family) -> std::result::Result<(), String> {
        self.inner.socket(family).map(|_| ()).map_err(|e| e.to_string())
    }

    /// Running totals since the tracer was built.
    pub fn stats(&self) -> TracerStats {
        let c = &self.inner.counters;
        let read = |s: &std::result::Result<Arc<TraceSocket>, String>| {
            s.as_ref().map_or(0, |s| s.packets_read.load(Ordering::Relaxed))
        };
        TracerStats {
            probes_sent: c.probes_sent.load(Ordering::Relaxed),
            answers_received: c.answers_received.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            traces: c.traces.load(Ordering::Relaxed),
            packets_read: read(&self.inner.v4) + read(&self.inner.v6),
        }
    }

    /// One trace (waits for a concurrency slot first).
    pub async fn trace(&self, target: TraceTarget) -> Result<Run> {
        let _slot = self.inner.traces.acquire().await.expect("the trace semaphore is never closed");
        match &self.inner.runtime {
            Some(runtime) => {
                let inner = self.inner.clone();
                runtime.spawn(async move { inner.trace(target).await }).await.unwrap_or_else(|e| {
                    Err(Error::TraceFailed { dst: target.ip, reason: format!("the trace task failed: {e}") })
                })
            }
            None => self.inner.trace(target).await,
        }
    }

    /// One trace per target, at most `max_concurrent_traces` at a time, all on the same
    /// sockets; results in the order given. Dropping the future stops the traces.
    pub async fn trace_all(&self, targets: Vec<TraceTarget>) -> Vec<(TraceTarget, Result<Run>)> {
        let mut results: Vec<Option<Result<Run>>> = targets.iter().map(|_| None).collect();
        let mut running = JoinSet::new();
        let store = |results: &mut Vec<Option<Result<Run>>>, joined| match joined {
            Ok((i, run)) => results[i] = Some(run),
            Err(e) => tracing::error!(error = %e, "trace task failed"),
        };
        for (i, &target) in targets.iter().enumerate() {
            let slot = loop {
                tokio::select! {
                    biased;
                    slot = self.inner.traces.clone().acquire_owned() => {
                        break slot.expect("the trace semaphore is never closed");
                    }
                    Some(joined) = running.join_next(), if !running.is_empty() => store(&mut results, joined),
                }
            };
            let inner = self.inner.clone();
            let task = async move {
                let _slot = slot;
                (i, inner.trace(target).await)
            };
            match &self.inner.runtime {
                Some(runtime) => running.spawn_on(task, runtime),
                None => running.spawn(task),
            };
        }
        while let Some(joined) = running.join_next().await {
            store(&mut results, joined);
        }
        targets
            .into_iter()
            .zip(results)
            .map(|(target, run)| {
                let failed =
                    || Error::TraceFailed { dst: target.ip, reason: "the trace task failed (see the log)".into() };
                (target, run.unwrap_or_else(|| Err(failed())))
            })
            .collect()
    }

    /// Stops the receive tasks and waits for them. Traces after this see no answers.
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        let handles = std::mem::take(&mut *lock(&self.inner.receivers));
        for handle in handles {
            let _ = handle.await;
        }
    }
}

impl Inner {
    fn socket(&self, family: Family) -> Result<&Arc<TraceSocket>> {
        let socket = match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        };
        socket.as_ref().map_err(|reason| Error::TraceUnavailable { family, reason: reason.clone() })
    }

    async fn trace(&self, target: TraceTarget) -> Result<Run> {
        let dst = match self.allow.check(target.ip) {
            Ok(dst) => dst,
            Err(refused) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    trace_target = %target,
                    allow_list = %self.allow,
                    reason = %refused.reason,
                    "trace target refused by the allow-list; no probe sent"
                );
                return Err(refused.into());
            }
        };
        let family = Family::of(dst.ip());
        let socket = self.socket(family)?.clone();
        let src = socket::route_source(dst.ip()).map_err(|source| Error::NoRoute { dst: dst.ip(), source })?;
        let id = packet::flow_identifier(src, dst.ip(), target.flow);
        let flow = match target.protocol {
            TraceProtocol::Icmp => Flow::Icmp { id },
            TraceProtocol::Udp { port } => {
                if let Some(reason) = socket.udp_unavailable() {
                    return Err(Error::TraceUnavailable { family, reason: reason.to_string() });
                }
                Flow::Udp { sport: packet::udp_source_port(id), dport: port }
            }
            TraceProtocol::Tcp { port } => {
                if let Some(reason) = socket.tcp_unavailable() {
                    return Err(Error::TraceUnavailable { family, reason: reason.to_string() });
                }
                Flow::Tcp { sport: packet::udp_source_port(id), dport: port }
            }
        };
        self.counters.traces.fetch_add(1, Ordering::Relaxed);
        let span = tracing::debug_span!("trace", trace_target = %target, %src, ?flow);
        let run = Trace::new(self, socket, src, dst, flow).run().instrument(span).await?;
        tracing::debug!(trace_target = %target, hops = run.hops.len(), reached = run.reached, "traced");
        Ok(run)
    }
}

/// One trace in progress: its log, and the channel its answers arrive on.
struct Trace<'a> {
    inner: &'a Inner,
    socket: Arc<TraceSocket>,
    src: IpAddr,
    dst: AllowedIp,
    flow: Flow,
    log: TraceLog,
    tx: mpsc::UnboundedSender<Arrival>,
    rx: mpsc::UnboundedReceiver<Arrival>,
}

/// What a round's sending left: the registrations to keep until it ends, when the last
/// probe left, and the last send error.
struct RoundOut {
    registrations: Vec<Registration>,
    last_sent: Option<Instant>,
    error: Option<std::io::Error>,
}

impl<'a> Trace<'a> {
    fn new(inner: &'a Inner, socket: Arc<TraceSocket>, src: IpAddr, dst: AllowedIp, flow: Flow) -> Self {
        let s = inner.settings;
        let log = TraceLog::new(dst.ip(), s.max_ttl, s.max_unknown, s.timeout);
        let (tx, rx) = mpsc::unbounded_channel();
        Trace { inner, socket, src, dst, flow, log, tx, rx }
    }

    /// The rounds, then the run.
    async fn run(mut self) -> Result<Run> {
        let s = self.inner.settings;
        let at = Utc::now();
        let (mut sent, mut error) = (0u64, None);
        for round in 0..s.probes {
            let started = Instant::now();
            // The round's slots first, all at once: a round never waits holding some.
            let slots = self.socket.slots.clone().acquire_many_owned(u32::from(self.log.limit())).await;
            let slots = slots.expect("the in-flight semaphore is never closed");
            let out = self.send_round(round).await;
            sent += out.registrations.len() as u64;
            error = out.error.or(error);
            if let Some(last) = out.last_sent {
                self.await_round(round, last + s.timeout).await;
            }
            drop((out.registrations, slots));
            self.log.end_round();
            if round + 1 < s.probes {
                tokio::time::sleep_until(started + s.interval).await;
            }
        }
        let dst = self.dst.ip();
        match (sent, error) {
            (0, Some(source)) => Err(Error::TraceSend { dst, source }),
            (_, error) => {
                if let Some(error) = error {
                    tracing::warn!(%dst, %error, "some trace probes could not be sent");
                }
                Ok(self.log.run(at))
            }
        }
    }

    /// Sends one round: TTL 1 up while the log says so, paced.
    async fn send_round(&mut self, round: u32) -> RoundOut {
        let mut out = RoundOut { registrations: Vec::new(), last_sent: None, error: None };
        for ttl in 1..=self.log.limit() {
            // A spare slot only for a round's first probe: TTL 1 is never past the end, and
            // any later one might be, its answer not in yet (the pacer's wait gives the
            // answers time to come).
            if !(ttl == 1 && self.inner.spare.take()) {
                self.inner.pacer.wait().await;
            }
            // Answers so far (up to the moment of sending) may show the end of the path:
            // nothing is sent past it, and the slot goes to another trace (`spare`).
            while let Ok(arrival) = self.rx.try_recv() {
                self.note(arrival);
            }
            if !self.log.should_send(ttl) {
                self.inner.spare.give();
                break;
            }
            match self.socket.send(self.src, self.dst, self.flow, ttl, self.log.next_probe(), &self.tx).await {
                Ok(registration) => {
                    self.log.sent(round, ttl);
                    self.inner.counters.probes_sent.fetch_add(1, Ordering::Relaxed);
                    out.registrations.push(registration);
                    out.last_sent = Some(Instant::now());
                }
                Err(e) => out.error = Some(e),
            }
        }
        out
    }

    /// Waits until every probe of the round is answered or `deadline` passes.
    async fn await_round(&mut self, round: u32, deadline: Instant) {
        while self.log.outstanding(round) > 0 {
            tokio::select! {
                arrival = self.rx.recv() => match arrival {
                    Some(arrival) => self.note(arrival),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
    }

    fn note(&mut self, arrival: Arrival) {
        if self.log.answer(arrival.probe, arrival.reply) {
            self.inner.counters.answers_received.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_validated() {
        let ok = TraceSettings::default();
        assert!(ok.validate().is_ok());
        let cases = [
            ("probes", TraceSettings { probes: 0, ..ok }),
            ("probes", TraceSettings { probes: 101, ..ok }),
            ("max_ttl", TraceSettings { max_ttl: 0, ..ok }),
            ("max_unknown", TraceSettings { max_unknown: 0, ..ok }),
            ("timeout", TraceSettings { timeout: Duration::ZERO, ..ok }),
            ("timeout", TraceSettings { timeout: Duration::from_secs(61), ..ok }),
            ("interval", TraceSettings { interval: Duration::from_secs(61), ..ok }),
            ("pps", TraceSettings { pps: 0, ..ok }),
            ("max_concurrent_traces", TraceSettings { max_concurrent_traces: 0, ..ok }),
        ];
        for (setting, bad) in cases {
            match bad.validate() {
                Err(Error::InvalidSetting { setting: s, .. }) => assert_eq!(s, setting),
                other => panic!("{setting}: {other:?}"),
            }
        }
    }

    #[test]
    fn defaults_are_mtr_like() {
        let s = TraceSettings::default();
        assert_eq!((s.probes, s.max_ttl, s.timeout), (3, 30, Duration::from_secs(1)));
    }

    #[test]
    fn build_needs_a_runtime() {
        assert!(matches!(Tracer::builder(AllowList::loopback()).build(), Err(Error::NoRuntime)));
    }

    #[tokio::test]
    async fn refused_targets_send_nothing() {
        let tracer = Tracer::builder(AllowList::loopback()).build().unwrap();
        let targets = vec![
            TraceTarget::new("10.1.2.3".parse().unwrap()),
            TraceTarget::new("192.0.2.1".parse().unwrap()).with_flow(7),
            TraceTarget::new("::ffff:10.1.2.3".parse().unwrap()),
            TraceTarget::new("2001:db8::1".parse().unwrap()),
        ];
        let results = tracer.trace_all(targets.clone()).await;
        assert_eq!(results.len(), targets.len());
        for ((target, result), want) in results.iter().zip(&targets) {
            assert_eq!(target, want, "in the order given");
            match result {
                Err(Error::Refused(refused)) => assert_eq!(refused.ip, target.ip),
                other => panic!("{target}: {other:?}"),
            }
        }
        let stats = tracer.stats();
        assert_eq!((stats.probes_sent, stats.refused, stats.traces), (0, 4, 0));
    }
}
