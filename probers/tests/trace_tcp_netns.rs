//! TCP SYN traces through real routers, and through a firewall that drops the service's
//! port: the case TCP tracing exists for. A source, two routers in a chain and a
//! destination, each a network namespace this test creates (and removes, on failure too).
//! Root only: without root, `ip` or `nft` the test prints why and skips.
//!
//! ```text
//!   S ──── R1 ──── R2 ──── D   (D listens on TCP 443; 444 is closed)
//! ```
//!
//! Every address lives only inside these namespaces: link `h` joins hop `h-1` (the source
//! is hop 0) and hop `h`, on 198.18.16h.0/24 and fd00:ee:16h::/64, the nearer side `.1`/`::1`,
//! the farther `.2`/`::2`; so hop `h` answers from the `.2`/`::2` of link `h`. Routers
//! forward, answer every probe (`icmp_ratelimit=0`) from the address the probe came in on.
//!
//! The test runs itself again twice: in D, a listener on port 443 that also captures the
//! SYNs reaching it (to see their flow fields on the wire); in S, the tracer, which traces
//! over both families at once — TCP to the open and to the closed port, and ICMP — and
//! checks that all take the same hops and reach D; then loads an nftables rule in R2's
//! forward chain dropping TCP to port 443, and checks that the TCP trace to 443 stops at
//! R2 while ICMP, and TCP to 444, still reach D.

mod common;

use std::io::Read;
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{ip, is_root, sweep_leftovers};
use graph_store::paths::Run;
use probers::trace::{TraceTarget, Tracer};
use probers::Family;

const TEST: &str = "tcp_takes_the_services_path_and_stops_at_its_firewall";
const TRACE_CHILD: &str = "EDGEWATCH_TRACE_TCP_CHILD";
const LISTEN_CHILD: &str = "EDGEWATCH_TRACE_TCP_LISTEN";
const PREFIX: &str = "ewtcp-";
/// R1, R2, then the destination.
const HOPS: usize = 3;
/// The hop whose forward chain drops TCP to [`PORT`].
const FIREWALL_HOP: usize = 2;
/// The service's port: D listens on it.
const PORT: u16 = 443;
/// A port nothing listens on at D: answered with a reset.
const CLOSED: u16 = 444;
const ALLOW: [&str; 2] = ["198.18.160.0/20", "fd00:ee::/32"];

/// R2 drops every TCP segment to the service's port that it would forward, both families.
const FIREWALL: &str = r#"table inet lab {
    chain forward {
        type filter hook forward priority 0;
        tcp dport 443 drop
    }
}"#;

#[test]
fn tcp_takes_the_services_path_and_stops_at_its_firewall() {
    if let Ok(base) = std::env::var(TRACE_CHILD) {
        return trace_child(&base);
    }
    if std::env::var_os(LISTEN_CHILD).is_some() {
        return listen_child();
    }
    if !is_root() {
        println!("SKIP {TEST}: needs root (network namespaces, raw sockets)");
        return;
    }
    let lab = match missing_tools().map_or_else(build_lab, Err) {
        Ok(lab) => lab,
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "CI runs as root, so {TEST} must run, but: {e}");
            println!("SKIP {TEST}: cannot build the lab: {e}");
            return;
        }
    };
    let mut listening = spawn_in(&lab.ns("d"), LISTEN_CHILD, "1");
    wait_for_ready(&mut listening);
    let tracing = spawn_in(&lab.ns("s"), TRACE_CHILD, &lab.base);
    let stdout = output_of(tracing, "the tracing child");
    println!("{stdout}");
    drop(listening.stdin.take()); // the listener stops capturing and prints what it saw
    let captured = output_of(listening, "the listening child");
    for family in [Family::V4, Family::V6] {
        paris_on_the_wire(&captured, family);
    }
    drop(lab);
}

// ---- in the source namespace ----

/// Traces TCP (open and closed port) and ICMP over both families, before and after R2's
/// firewall, and checks the hops.
fn trace_child(base: &str) {
    let lab = Lab { base: base.to_string(), owned: false };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        settle().await;
        let allow = probers::AllowList::parse(&ALLOW).unwrap();
        let builder = Tracer::builder(allow).probes(3).timeout(Duration::from_millis(500));
        let tracer = builder.interval(Duration::from_millis(10)).max_ttl(8).max_unknown(2).build().unwrap();
        let mut targets = Vec::new();
        for family in [Family::V4, Family::V6] {
            let d = hop(family, HOPS);
            targets.extend([TraceTarget::tcp(d, PORT), TraceTarget::new(d), TraceTarget::tcp(d, CLOSED)]);
        }

        let before = traced(&tracer, &targets).await;
        for (target, run) in targets.iter().zip(&before) {
            assert!(run.reached, "{target} reaches D: {}", show(run));
            assert_eq!(addrs(run), path(target, HOPS), "{target}: the same hops as ICMP's: {}", show(run));
            for h in &run.hops {
                assert_eq!((h.sent, h.received), (3, 3), "{target}: no loss at TTL {}: {}", h.ttl, show(run));
            }
        }

        lab.nft("r2", FIREWALL).unwrap();
        let after = traced(&tracer, &targets).await;
        for (target, run) in targets.iter().zip(&after) {
            if target.protocol == (probers::TraceProtocol::Tcp { port: PORT }) {
                assert!(!run.reached, "{target} is dropped after R2: {}", show(run));
                let hops = addrs(run);
                assert_eq!(hops[..FIREWALL_HOP], path(target, FIREWALL_HOP), "{target}: R1, R2: {}", show(run));
                assert!(hops[FIREWALL_HOP..].iter().all(Vec::is_empty), "then silence: {}", show(run));
                assert_eq!(hops.len(), FIREWALL_HOP + 2, "max_unknown silent hops: {}", show(run));
            } else {
                assert!(run.reached, "{target} still reaches D: {}", show(run));
                assert_eq!(addrs(run), path(target, HOPS), "{target}: {}", show(run));
            }
        }
        tracer.shutdown().await;
    });
}

/// One run per target, all at once, each printed.
async fn traced(tracer: &Tracer, targets: &[TraceTarget]) -> Vec<Run> {
    let results = tracer.trace_all(targets.to_vec()).await;
    let runs: Vec<Run> =
        results.into_iter().map(|(target, run)| run.unwrap_or_else(|e| panic!("tracing {target}: {e}"))).collect();
    for (target, run) in targets.iter().zip(&runs) {
        println!("{target}: {}", show(run));
    }
    runs
}

/// Waits (up to 10 rounds) until D and the routers answer pings without loss, so that no
/// first neighbour resolution shows as loss in a trace.
async fn settle() {
    use probers::{Engine, ProbeTarget};
    let allow = probers::AllowList::parse(&ALLOW).unwrap();
    let engine = Engine::builder(allow).packets(2).interval(Duration::from_millis(10)).build().unwrap();
    let families = [Family::V4, Family::V6];
    let pings: Vec<ProbeTarget> =
        families.iter().flat_map(|&f| (1..=HOPS).map(move |h| ProbeTarget::icmp(hop(f, h)))).collect();
    for _ in 0..10 {
        let results = engine.probe_all(pings.clone()).await;
        if results.iter().all(|(_, out)| out.received == out.sent) {
            return;
        }
    }
    panic!("the lab did not settle: some addresses still lose pings");
}

/// The address hop `h` answers from.
fn hop(family: Family, h: usize) -> IpAddr {
    let text = match family {
        Family::V4 => format!("198.18.{}.2", 160 + h),
        Family::V6 => format!("fd00:ee:{}::2", 160 + h),
    };
    text.parse().unwrap()
}

/// The first `n` hops towards the target's destination, one address each.
fn path(target: &TraceTarget, n: usize) -> Vec<Vec<IpAddr>> {
    let family = Family::of(target.ip);
    (1..=n).map(|h| vec![hop(family, h)]).collect()
}

fn addrs(run: &Run) -> Vec<Vec<IpAddr>> {
    run.hops.iter().map(|h| h.addrs.clone()).collect()
}

/// A run as `ttl:addresses:answered/sent` per hop (`*`: silent), then whether it reached.
fn show(run: &Run) -> String {
    let hops: Vec<String> = run
        .hops
        .iter()
        .map(|h| {
            let addrs: Vec<String> = h.addrs.iter().map(IpAddr::to_string).collect();
            let addrs = if addrs.is_empty() { "*".to_string() } else { addrs.join(",") };
            format!("{}:{addrs}:{}/{}", h.ttl, h.received, h.sent)
        })
        .collect();
    format!("{} {}", hops.join(" "), if run.reached { "reached" } else { "NOT reached" })
}

// ---- in the destination namespace ----

/// Listens on [`PORT`] (both families; never accepts: the tracer's kernel resets every
/// SYN-ACK), prints `READY`, and captures the SYNs to [`PORT`] until standard input closes;
/// then prints `SYN<4|6> <source port> <destination port> <sequence number>` for each.
fn listen_child() {
    use socket2::{Domain, Protocol, Socket, Type};
    let _listener = std::net::TcpListener::bind(("::", PORT)).unwrap();
    let open = |domain| {
        let socket = std::net::UdpSocket::from(Socket::new(domain, Type::RAW, Some(Protocol::TCP)).unwrap());
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        socket
    };
    let (v4, v6) = (open(Domain::IPV4), open(Domain::IPV6));
    let done = std::sync::atomic::AtomicBool::new(false);
    println!("READY");
    let lines = std::thread::scope(|s| {
        let v4 = s.spawn(|| read_syns(&v4, Family::V4, &done));
        let v6 = s.spawn(|| read_syns(&v6, Family::V6, &done));
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        [v4.join().unwrap(), v6.join().unwrap()].concat()
    });
    for line in lines {
        println!("{line}");
    }
}

/// The SYNs to [`PORT`] a raw TCP socket reads until `done`.
fn read_syns(socket: &std::net::UdpSocket, family: Family, done: &std::sync::atomic::AtomicBool) -> Vec<String> {
    let (mut buf, mut lines) = ([0u8; 2048], Vec::new());
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        let Ok(n) = socket.recv(&mut buf) else { continue };
        let at = if family == Family::V4 { usize::from(buf[0] & 0xf) * 4 } else { 0 };
        let Some(tcp) = buf[..n].get(at..).filter(|t| t.len() >= 20) else { continue };
        let word = |i: usize| u16::from_be_bytes([tcp[i], tcp[i + 1]]);
        if word(2) == PORT && tcp[13] & 0x17 == 0x02 {
            let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
            lines.push(format!("SYN{} {} {} {seq}", if family == Family::V4 { 4 } else { 6 }, word(0), word(2)));
        }
    }
    lines
}

/// The SYNs that reached D over `family` (from the TCP runs to the open port before the
/// firewall): one pair of ports — the source port the flow's — and sequence numbers that
/// carry the tracer's tag and tell the probes apart.
fn paris_on_the_wire(captured: &str, family: Family) {
    use probers::trace::packet::{flow_identifier, probe_number, udp_source_port};
    let tag = format!("SYN{} ", if family == Family::V4 { 4 } else { 6 });
    let syns: Vec<(u16, u16, u32)> = captured
        .lines()
        .filter_map(|l| l.split_once(&tag).map(|(_, rest)| rest))
        .map(|rest| {
            let f: Vec<u32> = rest.split(' ').map(|x| x.parse().unwrap()).collect();
            (f[0] as u16, f[1] as u16, f[2])
        })
        .collect();
    assert!(syns.len() >= 3, "{family}: a run of three rounds reaches D: {captured}");
    let source = match family {
        Family::V4 => "198.18.161.1",
        Family::V6 => "fd00:ee:161::1",
    };
    let flow = flow_identifier(source.parse().unwrap(), hop(family, HOPS), 0);
    assert!(syns.iter().all(|&(s, d, _)| (s, d) == (udp_source_port(flow), PORT)), "one pair of ports: {syns:?}");
    assert!(syns.iter().all(|&(_, _, seq)| probe_number(seq).is_some()), "tagged sequence numbers: {syns:?}");
    let mut seqs: Vec<u32> = syns.iter().map(|s| s.2).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), syns.len(), "sequence numbers tell the probes apart: {syns:?}");
    println!("{family}: {} SYNs reached D, all {}→{PORT}, each its own sequence number", syns.len(), syns[0].0);
}

// ---- the lab ----

/// The namespaces `<base>-<node>`. The parent's lab owns them and deletes them when dropped
/// (and so their veths); the child's only names them.
struct Lab {
    base: String,
    owned: bool,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.owned {
            for node in ["s", "r1", "r2", "d"] {
                let _ = ip(&["netns", "del", &self.ns(node)]);
            }
        }
    }
}

impl Lab {
    fn ns(&self, node: &str) -> String {
        format!("{}-{node}", self.base)
    }

    /// Loads an nftables rule set in the node's namespace.
    fn nft(&self, node: &str, rules: &str) -> Result<(), String> {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns(node), "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("nft in {node}: {e}"))?;
        child.stdin.take().unwrap().write_all(rules.as_bytes()).map_err(|e| format!("nft in {node}: {e}"))?;
        let out = child.wait_with_output().map_err(|e| format!("nft in {node}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("nft in {node}: {}\n{rules}", String::from_utf8_lossy(&out.stderr).trim()))
        }
    }
}

fn sysctl(ns: &str, settings: &[&str]) -> Result<(), String> {
    ip(&[&["netns", "exec", ns, "sysctl", "-qw"], settings].concat()).map(drop)
}

/// Builds the chain of the module documentation, in namespaces named after this process.
fn build_lab() -> Result<Lab, String> {
    sweep_leftovers(PREFIX);
    let lab = Lab { base: format!("{PREFIX}{}-tcp", std::process::id()), owned: true };
    let nodes = ["s", "r1", "r2", "d"].map(|n| lab.ns(n));
    for ns in &nodes {
        ip(&["netns", "add", ns])?;
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        sysctl(ns, &["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"])?;
    }
    for h in 1..=HOPS {
        let (near, far) = (&nodes[h - 1], &nodes[h]);
        let (up, down) = (format!("up{h}"), format!("dn{h}"));
        ip(&["-n", near, "link", "add", &down, "type", "veth", "peer", "name", &up, "netns", far])?;
        for (ns, dev, side) in [(near, &down, 1), (far, &up, 2)] {
            ip(&["-n", ns, "addr", "add", &format!("198.18.{}.{side}/24", 160 + h), "dev", dev])?;
            ip(&["-n", ns, "-6", "addr", "add", &format!("fd00:ee:{}::{side}/64", 160 + h), "dev", dev, "nodad"])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
    }
    for (h, ns) in nodes.iter().enumerate() {
        // Onwards via the next hop; the destination back via the last router.
        let (v4, v6) = if h < HOPS {
            (format!("198.18.{}.2", 161 + h), format!("fd00:ee:{}::2", 161 + h))
        } else {
            (format!("198.18.{}.1", 160 + h), format!("fd00:ee:{}::1", 160 + h))
        };
        ip(&["-n", ns, "route", "add", "default", "via", &v4])?;
        ip(&["-n", ns, "-6", "route", "add", "default", "via", &v6])?;
        if (2..HOPS).contains(&h) {
            // Back to the source's link: via the previous hop.
            ip(&["-n", ns, "route", "add", "198.18.161.0/24", "via", &format!("198.18.{}.1", 160 + h)])?;
            ip(&["-n", ns, "-6", "route", "add", "fd00:ee:161::/64", "via", &format!("fd00:ee:{}::1", 160 + h)])?;
        }
        if (1..HOPS).contains(&h) {
            let router = [
                "net.ipv4.ip_forward=1",
                "net.ipv4.icmp_ratelimit=0",
                "net.ipv4.icmp_errors_use_inbound_ifaddr=1",
                "net.ipv6.conf.all.forwarding=1",
                "net.ipv6.icmp.ratelimit=0",
            ];
            sysctl(ns, &router)?;
        }
    }
    Ok(lab)
}

fn missing_tools() -> Option<String> {
    let missing: Vec<&str> = [("ip", "iproute2"), ("nft", "nftables")]
        .into_iter()
        .filter(|(tool, _)| !Command::new(tool).arg("-V").output().is_ok_and(|o| o.status.success()))
        .map(|(_, package)| package)
        .collect();
    (!missing.is_empty()).then(|| format!("needs {}", missing.join(" and ")))
}

/// Runs this test again in namespace `ns` with `key=value` in its environment (standard
/// input and output piped).
fn spawn_in(ns: &str, key: &str, value: &str) -> Child {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(key, value)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads the child's output up to its `READY` line, byte by byte (so that nothing after it
/// is taken from the pipe).
fn wait_for_ready(child: &mut Child) {
    let (pipe, mut seen, mut byte) = (child.stdout.as_mut().unwrap(), Vec::new(), [0u8]);
    while !seen.ends_with(b"READY\n") {
        let read = pipe.read(&mut byte).unwrap();
        assert_eq!(read, 1, "the child ended before READY: {}", String::from_utf8_lossy(&seen));
        seen.push(byte[0]);
    }
}

/// Waits for a child; panics with its output unless it succeeded. Returns stdout.
fn output_of(child: Child, what: &str) -> String {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}
