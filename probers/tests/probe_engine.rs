//! The probe engine against real sockets, loopback only.
//!
//! Every engine here has the loopback allow-list (127.0.0.0/8 and ::1/128) and every target
//! is a loopback address — except the ones that exist to be refused, which the tests prove
//! are never sent (the engine's packet counter stays where it was). ICMP tests need a raw
//! socket (root) or an ICMP datagram socket (`net.ipv4.ping_group_range`); without either
//! they skip with a printed reason. The datagram-socket test runs itself again inside a
//! network namespace it creates and removes, where it may set `ping_group_range`.

mod common;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::is_root;
use probers::{AllowList, Engine, EngineBuilder, Family, IcmpMode, ProbeOutcome, ProbeTarget};
use tokio::net::{TcpListener, TcpSocket};

fn engine() -> EngineBuilder {
    Engine::builder(AllowList::loopback())
        .packets(3)
        .interval(Duration::from_millis(10))
        .timeout(Duration::from_secs(1))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The ICMP mode for `family`, or `None` after printing why the test skips.
fn icmp_or_skip(engine: &Engine, family: Family, test: &str) -> Option<IcmpMode> {
    match engine.icmp_mode(family) {
        Ok(mode) => Some(mode),
        Err(reason) => {
            println!("SKIP {test}: no ICMP socket for {family}: {reason}");
            None
        }
    }
}

fn assert_all_answered(target: &ProbeTarget, out: &ProbeOutcome, sent: u32) {
    assert_eq!((out.sent, out.received), (sent, sent), "{target}: {out:?}");
    assert_eq!(out.loss_pct, 0.0, "{target}");
    assert_eq!(out.error, None, "{target}");
    let rtt = out.rtt().unwrap_or_else(|| panic!("{target}: no RTT in {out:?}"));
    assert!(rtt.min_ms <= rtt.avg_ms && rtt.avg_ms <= rtt.max_ms, "{target}: {rtt:?}");
    assert!(rtt.max_ms <= 1000.0, "{target}: RTT over the timeout: {rtt:?}");
}

/// A listener on 127.0.0.1 that accepts and drops every connection. Its backlog is deep
/// enough for a burst of hundreds of connects while the runtime is busy probing.
async fn listener() -> SocketAddr {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(4096).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            drop(conn);
        }
    });
    addr
}

/// A port on 127.0.0.1 with nothing listening (bound once, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn icmp_echo_to_loopback_addresses() {
    let engine = engine().build().unwrap();
    let Some(mode) = icmp_or_skip(&engine, Family::V4, "icmp_echo_to_loopback_addresses") else { return };
    println!("IPv4 ICMP socket: {mode}");
    for addr in ["127.0.0.1", "127.20.1.2"] {
        let target = ProbeTarget::icmp(ip(addr));
        let out = engine.probe(target).await;
        assert_all_answered(&target, &out, 3);
    }
    let stats = engine.stats();
    assert_eq!(stats.packets_sent, 6);
    assert_eq!(stats.replies_received, 6);
    assert_eq!(stats.refused, 0);
    // The socket reads our replies, not our own requests looping back nor other engines'
    // traffic (a raw socket's kernel filter; a datagram socket's own demultiplexing).
    assert!(stats.icmp_packets_read >= 6 && stats.icmp_packets_read < 12, "{stats:?}");
    engine.shutdown().await;
}

#[tokio::test]
async fn icmpv6_echo_to_loopback() {
    let engine = engine().build().unwrap();
    let Some(mode) = icmp_or_skip(&engine, Family::V6, "icmpv6_echo_to_loopback") else { return };
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        println!("SKIP icmpv6_echo_to_loopback: ::1 is not configured here");
        return;
    }
    println!("IPv6 ICMP socket: {mode}");
    let target = ProbeTarget::icmp(ip("::1"));
    let out = engine.probe(target).await;
    assert_all_answered(&target, &out, 3);
}

#[tokio::test]
async fn tcp_connect_to_listener_and_closed_port() {
    let engine = engine().icmp(false).build().unwrap();
    let open = ProbeTarget::tcp_addr(listener().await);
    let closed = ProbeTarget::tcp(ip("127.0.0.1"), closed_port());
    let results = engine.probe_all(vec![open, closed]).await;

    assert_eq!(results[0].0, open);
    assert_all_answered(&open, &results[0].1, 3);

    let (target, out) = &results[1];
    assert_eq!(*target, closed);
    assert_eq!((out.sent, out.received, out.loss_pct), (3, 0, 100.0), "{out:?}");
    assert_eq!(out.rtt(), None);
    assert!(!out.refused);
    let error = out.error.as_deref().unwrap();
    assert!(error.contains("refused") && error.contains(&closed.ip.to_string()), "{error}");
    // Six connect attempts left, three handshakes completed.
    assert_eq!((engine.stats().packets_sent, engine.stats().replies_received), (6, 3));
}

#[tokio::test]
async fn tcp_connect_to_ipv6_loopback() {
    let Ok(listener) = TcpListener::bind("[::1]:0").await else {
        println!("SKIP tcp_connect_to_ipv6_loopback: ::1 is not configured here");
        return;
    };
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { while listener.accept().await.is_ok() {} });
    let engine = engine().icmp(false).build().unwrap();
    let target = ProbeTarget::tcp_addr(addr);
    assert_all_answered(&target, &engine.probe(target).await, 3);
}

#[tokio::test]
async fn tcp_port_zero_is_not_probed() {
    let engine = engine().icmp(false).build().unwrap();
    let out = engine.probe(ProbeTarget::tcp(ip("127.0.0.1"), 0)).await;
    assert_eq!((out.sent, out.received, out.loss_pct), (0, 0, 100.0));
    assert!(out.error.unwrap().contains("port 0"));
    assert_eq!(engine.packets_sent(), 0);
}

/// Captures events as `LEVEL field=value …` lines.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Fields<'a>(&'a mut String);
        impl tracing::field::Visit for Fields<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                let _ = write!(self.0, " {}={:?}", field.name(), value);
            }
        }
        let mut line = event.metadata().level().to_string();
        event.record(&mut Fields(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn allow_list_refuses_outside_targets_and_sends_nothing() {
    let capture = Capture::default();
    let _log = tracing::subscriber::set_default(capture.clone());
    // ICMP stays enabled: the refusal must come before any socket is used.
    let engine = engine().build().unwrap();
    let outside = [
        ProbeTarget::icmp(ip("10.1.2.3")),
        ProbeTarget::icmp(ip("192.0.2.1")),
        ProbeTarget::tcp(ip("192.0.2.1"), 80),
        ProbeTarget::tcp(ip("::ffff:10.1.2.3"), 443),
        ProbeTarget::icmp(ip("2001:db8::1")),
        ProbeTarget::icmp(ip("0.0.0.0")),
    ];
    for target in outside {
        let out = engine.probe(target).await;
        assert!(out.refused, "{target}: {out:?}");
        assert_eq!((out.sent, out.received, out.loss_pct), (0, 0, 100.0), "{target}");
        let error = out.error.unwrap();
        assert!(error.contains(&target.ip.to_string()) && error.contains("no packet sent"), "{error}");
    }
    let stats = engine.stats();
    assert_eq!(stats.packets_sent, 0, "nothing may leave for a refused target");
    assert_eq!((stats.refused, stats.targets_probed), (outside.len() as u64, 0));

    let lines = capture.0.lock().unwrap().clone();
    let refusal = lines
        .iter()
        .find(|l| l.contains("10.1.2.3"))
        .unwrap_or_else(|| panic!("no log line names 10.1.2.3: {lines:#?}"));
    assert!(refusal.starts_with("WARN"), "{refusal}");
    assert!(refusal.contains("refused by the allow-list; no packet sent"), "{refusal}");
    assert!(refusal.contains("allow_list=127.0.0.0/8, ::1/128"), "{refusal}");
    assert!(refusal.contains("probe_target=icmp 10.1.2.3"), "{refusal}");
    assert_eq!(lines.iter().filter(|l| l.contains("refused by the allow-list")).count(), outside.len());
}

#[tokio::test]
async fn thousand_targets_at_once() {
    // A generous per-packet timeout: the assertions are on counts, and a loaded CI machine
    // must not turn a slow reply into a loss. On an idle machine this takes well under 1 s.
    let engine = engine()
        .packets(2)
        .interval(Duration::from_millis(20))
        .timeout(Duration::from_secs(3))
        .pps(50_000)
        .build()
        .unwrap();
    let icmp = engine.icmp_mode(Family::V4).is_ok();
    if !icmp {
        println!("thousand_targets_at_once: no IPv4 ICMP socket, probing TCP only");
    }
    let server = listener().await;
    let mut targets: Vec<ProbeTarget> = Vec::new();
    if icmp {
        targets.extend((0..1000u32).map(|i| {
            ProbeTarget::icmp(IpAddr::V4(Ipv4Addr::new(127, 1 + (i / 250) as u8, (i % 7) as u8, (i % 250) as u8 + 1)))
        }));
    }
    targets.extend((0..200).map(|_| ProbeTarget::tcp_addr(server)));
    let refused = ProbeTarget::icmp(ip("192.0.2.1"));
    targets.insert(targets.len() / 2, refused);

    let results = engine.probe_all(targets.clone()).await;

    assert_eq!(results.len(), targets.len());
    for (want, (got, out)) in targets.iter().zip(&results) {
        assert_eq!(want, got, "results come back in the order given");
        if *got == refused {
            assert!(out.refused);
        } else {
            assert_eq!((out.sent, out.received), (2, 2), "{got}: {out:?}");
        }
    }
    let probed = targets.len() as u64 - 1;
    let stats = engine.stats();
    assert_eq!((stats.targets_probed, stats.refused), (probed, 1));
    assert_eq!(stats.packets_sent, probed * 2);
    assert_eq!(stats.replies_received, probed * 2);
}

#[tokio::test]
async fn disabled_icmp_says_so() {
    let engine = engine().icmp(false).build().unwrap();
    let out = engine.probe(ProbeTarget::icmp(ip("127.0.0.1"))).await;
    assert_eq!((out.sent, out.received), (0, 0));
    assert!(out.error.unwrap().contains("disabled"));
    assert!(engine.icmp_mode(Family::V4).is_err());
    assert_eq!(engine.packets_sent(), 0);
}

/// Whether `net.ipv4.ping_group_range` admits this process's group (gid read from /proc).
fn ping_group_admits_us() -> bool {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap_or_default();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let gid = status
        .lines()
        .find_map(|l| l.strip_prefix("Gid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|g| g.parse::<u64>().ok());
    let mut bounds = range.split_whitespace().filter_map(|b| b.parse::<u64>().ok());
    matches!((bounds.next(), bounds.next(), gid), (Some(lo), Some(hi), Some(g)) if lo <= g && g <= hi)
}

#[tokio::test]
async fn prefer_unprivileged_falls_back_when_not_allowed() {
    let engine = engine().prefer_unprivileged(true).build().unwrap();
    let Some(mode) = icmp_or_skip(&engine, Family::V4, "prefer_unprivileged_falls_back_when_not_allowed") else {
        return;
    };
    let want = if ping_group_admits_us() { IcmpMode::Datagram } else { IcmpMode::Raw };
    assert_eq!(mode, want, "ping_group_range admits us: {}", ping_group_admits_us());
    let target = ProbeTarget::icmp(ip("127.0.0.1"));
    assert_all_answered(&target, &engine.probe(target).await, 3);
}

const NETNS_CHILD: &str = "EDGEWATCH_PROBERS_NETNS_CHILD";
const CHILD_DONE: &str = "datagram-child-passed";

/// Removes the namespace when the test ends, however it ends.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip_cmd(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("ip").args(args).output().map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// The unprivileged ICMP datagram socket, for real: runs this test again inside a fresh
/// network namespace (its own loopback, its own `ping_group_range`, which the child opens
/// to group 0), where the engine is told to prefer the datagram socket.
#[test]
fn icmp_datagram_socket_in_own_namespace() {
    if std::env::var_os(NETNS_CHILD).is_some() {
        return datagram_child();
    }
    if !is_root() {
        println!("SKIP icmp_datagram_socket_in_own_namespace: needs root to create a network namespace");
        return;
    }
    let name = format!("ewprobe-{}-{}", std::process::id(), rand_suffix());
    if let Err(e) = ip_cmd(&["netns", "add", &name]) {
        println!("SKIP icmp_datagram_socket_in_own_namespace: cannot create a network namespace: {e}");
        return;
    }
    let ns = Netns(name);
    ip_cmd(&["-n", &ns.0, "link", "set", "lo", "up"]).unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(exe)
        .args(["--exact", "icmp_datagram_socket_in_own_namespace", "--nocapture", "--test-threads=1"])
        .env(NETNS_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(CHILD_DONE), "the child did not run the test:\n{stdout}\n{stderr}");
    drop(ns);
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
}

/// Inside the namespace: open ICMP datagram sockets to group 0 and probe loopback with them.
fn datagram_child() {
    std::fs::write("/proc/sys/net/ipv4/ping_group_range", "0 0").expect("set ping_group_range in the test namespace");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dgram = engine().prefer_unprivileged(true).build().unwrap();
        assert_eq!(dgram.icmp_mode(Family::V4), Ok(IcmpMode::Datagram));
        let mut targets = vec![ProbeTarget::icmp(ip("127.0.0.1")), ProbeTarget::icmp(ip("127.3.4.5"))];
        match dgram.icmp_mode(Family::V6) {
            Ok(mode) if std::net::UdpSocket::bind("[::1]:0").is_ok() => {
                assert_eq!(mode, IcmpMode::Datagram);
                targets.push(ProbeTarget::icmp(ip("::1")));
            }
            other => println!("IPv6 part skipped: {other:?}"),
        }
        for (target, out) in dgram.probe_all(targets.clone()).await {
            assert_all_answered(&target, &out, 3);
        }
        // A datagram socket and a raw one side by side: each gets only its own replies.
        let raw = engine().build().unwrap();
        let (a, b) = tokio::join!(dgram.probe_all(targets.clone()), raw.probe_all(targets.clone()));
        for (target, out) in a.iter().chain(&b) {
            assert_all_answered(target, out, 3);
        }
        assert_eq!(dgram.stats().replies_received, 2 * 3 * targets.len() as u64);
        println!("{CHILD_DONE}: {} targets over datagram sockets", targets.len());
    });
}
