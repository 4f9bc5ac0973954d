//! TCP SYN traces through real routers: through a firewall that drops the service's port
//! (the case TCP tracing exists for), and through a per-flow load balancer. Every router is
//! a network namespace the test creates (and removes, on failure too). Root only: without
//! root, `ip` or `nft` each test prints why and skips.
//!
//! ```text
//!   firewall:  S ──── R1 ──── R2 ──── D   (D listens on TCP 443; 444 is closed)
//!
//!                      ┌── R2a ──┐
//!   ECMP:      S ──── R1         D        (D: 198.18.180.1 on its loopback)
//!                      └── R2b ──┘
//! ```
//!
//! Every address lives only inside these namespaces. In the firewall chain link `h` joins
//! hop `h-1` (the source is hop 0) and hop `h`, on 198.18.16h.0/24 and fd00:ee:16h::/64, the
//! nearer side `.1`/`::1`, the farther `.2`/`::2`; so hop `h` answers from the `.2`/`::2` of
//! link `h`. In the ECMP lab links 171–175 join S–R1, R1–R2a, R1–R2b, R2a–D, R2b–D. Routers
//! forward and answer every probe (`icmp_ratelimit=0`) from the address the probe came in
//! on.
//!
//! **Firewall.** The test runs itself again twice: in D, a listener on port 443 that also
//! captures the SYNs reaching it (to see their flow fields on the wire); in S, the tracer,
//! which traces over both families at once — TCP to the open and to the closed port, and
//! ICMP — and checks that all take the same hops and reach D; then loads an nftables rule
//! in R2's forward chain dropping TCP to port 443, and checks that the TCP trace to 443
//! stops at R2 while ICMP, and TCP to 444, still reach D.
//!
//! **ECMP.** R1 balances D's address over R2a and R2b per flow (`fib_multipath_hash_policy=1`:
//! addresses, protocol, ports). In S the tracer traces many TCP flows (flow numbers, so
//! source ports) once each: they take both branches, and every run keeps one branch at all
//! its probes; then a flow on each branch, traced again and again, keeps its branch.

mod common;

use std::io::Read;
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{ip, is_root, sweep_leftovers};
use graph_store::paths::Run;
use probers::trace::{TraceTarget, Tracer};
use probers::Family;

const FIREWALL_TEST: &str = "tcp_takes_the_services_path_and_stops_at_its_firewall";
const ECMP_TEST: &str = "tcp_flows_spread_over_ecmp_and_each_keeps_its_branch";
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
const ALLOW: [&str; 2] = ["198.18.160.0/19", "fd00:ee::/32"];
/// The ECMP lab's destination, and the branch routers' addresses towards R1.
const ECMP_DEST: &str = "198.18.180.1";
const R2A: &str = "198.18.172.2";
const R2B: &str = "198.18.173.2";
/// TCP flows traced once each to see the balancing (all on one branch with probability
/// 2^-31 if the hash spreads them evenly).
const FLOWS: u16 = 32;

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
        return firewall_child(&Lab::named(base, &CHAIN));
    }
    if std::env::var_os(LISTEN_CHILD).is_some() {
        return listen_child();
    }
    let Some(lab) = lab_or_skip(FIREWALL_TEST, build_chain) else { return };
    let mut listening = spawn_in(&lab.ns("d"), FIREWALL_TEST, LISTEN_CHILD, "1");
    wait_for_ready(&mut listening);
    let tracing = spawn_in(&lab.ns("s"), FIREWALL_TEST, TRACE_CHILD, &lab.base);
    let stdout = output_of(tracing, "the tracing child");
    println!("{stdout}");
    drop(listening.stdin.take()); // the listener stops capturing and prints what it saw
    let captured = output_of(listening, "the listening child");
    for family in [Family::V4, Family::V6] {
        paris_on_the_wire(&captured, family);
    }
    drop(lab);
}

#[test]
fn tcp_flows_spread_over_ecmp_and_each_keeps_its_branch() {
    if std::env::var_os(TRACE_CHILD).is_some() {
        return ecmp_child();
    }
    let Some(lab) = lab_or_skip(ECMP_TEST, build_ecmp) else { return };
    let stdout = output_of(spawn_in(&lab.ns("s"), ECMP_TEST, TRACE_CHILD, &lab.base), "the tracing child");
    println!("{stdout}");
    drop(lab);
}

/// The lab `build` makes, or none after printing why the test skips (not root, tools or
/// namespaces missing; under CI that fails instead).
fn lab_or_skip(test: &str, build: fn() -> Result<Lab, String>) -> Option<Lab> {
    if !is_root() {
        println!("SKIP {test}: needs root (network namespaces, raw sockets)");
        return None;
    }
    match missing_tools().map_or_else(build, Err) {
        Ok(lab) => Some(lab),
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "CI runs as root, so {test} must run, but: {e}");
            println!("SKIP {test}: cannot build the lab: {e}");
            None
        }
    }
}

// ---- in the source namespace ----

/// Traces TCP (open and closed port) and ICMP over both families, before and after R2's
/// firewall, and checks the hops.
fn firewall_child(lab: &Lab) {
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
    let families = [Family::V4, Family::V6];
    settle_pings(families.iter().flat_map(|&f| (1..=HOPS).map(move |h| hop(f, h))).collect()).await;
}

async fn settle_pings(addrs: Vec<IpAddr>) {
    use probers::{Engine, ProbeTarget};
    let allow = probers::AllowList::parse(&ALLOW).unwrap();
    let engine = Engine::builder(allow).packets(2).interval(Duration::from_millis(10)).build().unwrap();
    let pings: Vec<ProbeTarget> = addrs.into_iter().map(ProbeTarget::icmp).collect();
    for _ in 0..10 {
        let results = engine.probe_all(pings.clone()).await;
        if results.iter().all(|(_, out)| out.received == out.sent) {
            return;
        }
    }
    panic!("the lab did not settle: some addresses still lose pings");
}

/// In the ECMP lab: TCP flows traced once each take both branches, each run on one branch
/// at every probe; a flow of each branch keeps it over ten more runs.
fn ecmp_child() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        // Each branch router, and D over each branch (its link addresses).
        let settle: Vec<IpAddr> = [R2A, R2B, "198.18.174.2", "198.18.175.2"].map(addr).to_vec();
        settle_pings(settle).await;
        let allow = probers::AllowList::parse(&ALLOW).unwrap();
        let builder = Tracer::builder(allow).probes(3).timeout(Duration::from_millis(500));
        let tracer = builder.interval(Duration::from_millis(10)).max_ttl(6).max_unknown(2).build().unwrap();
        let flows: Vec<TraceTarget> =
            (0..FLOWS).map(|f| TraceTarget::tcp(addr(ECMP_DEST), CLOSED).with_flow(f)).collect();
        let runs = traced(&tracer, &flows).await;
        let branches: Vec<IpAddr> = runs.iter().map(branch_of).collect();
        let on = |b: &str| branches.iter().position(|&x| x == addr(b));
        let (Some(a), Some(b)) = (on(R2A), on(R2B)) else {
            panic!("TCP flows 0..{FLOWS} all took one branch: R1 does not balance by ports: {branches:?}");
        };
        let count = |b: &str| branches.iter().filter(|&&x| x == addr(b)).count();
        println!("TCP flows 0..{FLOWS}: {} via R2a, {} via R2b", count(R2A), count(R2B));
        for _ in 0..10 {
            let again = traced(&tracer, &[flows[a], flows[b]]).await;
            assert_eq!(
                again.iter().map(branch_of).collect::<Vec<_>>(),
                [addr(R2A), addr(R2B)],
                "each keeps its branch"
            );
        }
        tracer.shutdown().await;
    });
}

/// The branch router of a run, after checking it is one whole path: R1, one branch (at all
/// three probes), D.
fn branch_of(run: &Run) -> IpAddr {
    let hops = addrs(run);
    let [r1, branch, d] = hops.as_slice() else { panic!("not one path of 3 hops: {}", show(run)) };
    assert!(run.reached, "{}", show(run));
    assert_eq!([r1, d], [&vec![addr("198.18.171.2")], &vec![addr(ECMP_DEST)]], "R1, then D: {}", show(run));
    let [branch] = branch.as_slice() else { panic!("one branch at TTL 2, all probes: {}", show(run)) };
    assert!([R2A, R2B].map(addr).contains(branch), "{}", show(run));
    *branch
}

fn addr(text: &str) -> IpAddr {
    text.parse().unwrap()
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

// ---- the labs ----

/// The firewall chain's namespaces, hop by hop.
const CHAIN: [&str; 4] = ["s", "r1", "r2", "d"];
/// The ECMP lab's namespaces.
const ECMP: [&str; 5] = ["s", "r1", "r2a", "r2b", "d"];

/// The namespaces `<base>-<node>`. The parent's lab owns them and deletes them when dropped
/// (and so their veths); the child's only names them.
struct Lab {
    base: String,
    nodes: &'static [&'static str],
    owned: bool,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.owned {
            for node in self.nodes {
                let _ = ip(&["netns", "del", &self.ns(node)]);
            }
        }
    }
}

impl Lab {
    /// A lab built elsewhere (by the parent), by its base name.
    fn named(base: String, nodes: &'static [&'static str]) -> Lab {
        Lab { base, nodes, owned: false }
    }

    /// New namespaces for `nodes`, named after this process and `tag`, loopback up, no
    /// duplicate address detection, no reverse-path filter (set before any veth exists,
    /// so every interface has it off).
    fn create(tag: &str, nodes: &'static [&'static str]) -> Result<Lab, String> {
        sweep_leftovers(PREFIX);
        let lab = Lab { base: format!("{PREFIX}{}-{tag}", std::process::id()), nodes, owned: true };
        for node in nodes {
            ip(&["netns", "add", &lab.ns(node)])?;
            lab.ip(node, &["link", "set", "lo", "up"])?;
            let settings = [
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
                "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.default.rp_filter=0",
            ];
            lab.sysctl(node, &settings)?;
        }
        Ok(lab)
    }

    fn ns(&self, node: &str) -> String {
        format!("{}-{node}", self.base)
    }

    /// A veth pair `dn<n>` (in `near`) / `up<n>` (in `far`) on 198.18.n.0/24 — and
    /// fd00:ee:n::/64 when `v6` — the near side `.1`, the far side `.2`.
    fn link(&self, near: &str, far: &str, n: u8, v6: bool) -> Result<(), String> {
        let (down, up) = (format!("dn{n}"), format!("up{n}"));
        self.ip(near, &["link", "add", &down, "type", "veth", "peer", "name", &up, "netns", &self.ns(far)])?;
        for (node, dev, side) in [(near, &down, 1), (far, &up, 2)] {
            self.ip(node, &["addr", "add", &format!("198.18.{n}.{side}/24"), "dev", dev])?;
            if v6 {
                self.ip(node, &["-6", "addr", "add", &format!("fd00:ee:{n}::{side}/64"), "dev", dev, "nodad"])?;
            }
            self.ip(node, &["link", "set", dev, "up"])?;
        }
        Ok(())
    }

    /// `ip -n <node's namespace> ARGS…`.
    fn ip(&self, node: &str, args: &[&str]) -> Result<String, String> {
        let ns = self.ns(node);
        ip(&[&["-n", ns.as_str()], args].concat())
    }

    fn sysctl(&self, node: &str, settings: &[&str]) -> Result<(), String> {
        let ns = self.ns(node);
        ip(&[&["netns", "exec", ns.as_str(), "sysctl", "-qw"], settings].concat()).map(drop)
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

/// Routers forward and answer every probe, from the address it came in on.
const ROUTER: [&str; 5] = [
    "net.ipv4.ip_forward=1",
    "net.ipv4.icmp_ratelimit=0",
    "net.ipv4.icmp_errors_use_inbound_ifaddr=1",
    "net.ipv6.conf.all.forwarding=1",
    "net.ipv6.icmp.ratelimit=0",
];

/// Builds the firewall chain of the module documentation.
fn build_chain() -> Result<Lab, String> {
    let lab = Lab::create("fw", &CHAIN)?;
    for h in 1..=HOPS {
        lab.link(CHAIN[h - 1], CHAIN[h], (160 + h) as u8, true)?;
    }
    for (h, node) in CHAIN.into_iter().enumerate() {
        // Onwards via the next hop; the destination back via the last router.
        let (v4, v6) = if h < HOPS {
            (format!("198.18.{}.2", 161 + h), format!("fd00:ee:{}::2", 161 + h))
        } else {
            (format!("198.18.{}.1", 160 + h), format!("fd00:ee:{}::1", 160 + h))
        };
        lab.ip(node, &["route", "add", "default", "via", &v4])?;
        lab.ip(node, &["-6", "route", "add", "default", "via", &v6])?;
        if (2..HOPS).contains(&h) {
            // Back to the source's link: via the previous hop.
            lab.ip(node, &["route", "add", "198.18.161.0/24", "via", &format!("198.18.{}.1", 160 + h)])?;
            lab.ip(node, &["-6", "route", "add", "fd00:ee:161::/64", "via", &format!("fd00:ee:{}::1", 160 + h)])?;
        }
        if (1..HOPS).contains(&h) {
            lab.sysctl(node, &ROUTER)?;
        }
    }
    Ok(lab)
}

/// Builds the ECMP lab of the module documentation (IPv4 only).
fn build_ecmp() -> Result<Lab, String> {
    let lab = Lab::create("ecmp", &ECMP)?;
    for (near, far, n) in
        [("s", "r1", 171), ("r1", "r2a", 172), ("r1", "r2b", 173), ("r2a", "d", 174), ("r2b", "d", 175)]
    {
        lab.link(near, far, n, false)?;
    }
    lab.ip("d", &["addr", "add", &format!("{ECMP_DEST}/32"), "dev", "lo"])?;
    let routes = [
        ("s", "default", "198.18.171.2"),
        // D's link addresses through their branch (for the pings that settle the lab).
        ("r1", "198.18.174.0/24", R2A),
        ("r1", "198.18.175.0/24", R2B),
        ("r2a", "default", "198.18.174.2"),
        ("r2a", "198.18.171.0/24", "198.18.172.1"),
        ("r2b", "default", "198.18.175.2"),
        ("r2b", "198.18.171.0/24", "198.18.173.1"),
        ("d", "default", "198.18.174.1"),
    ];
    for (node, dst, via) in routes {
        lab.ip(node, &["route", "add", dst, "via", via])?;
    }
    let dest = format!("{ECMP_DEST}/32");
    lab.ip("r1", &["route", "add", &dest, "nexthop", "via", R2A, "nexthop", "via", R2B])?;
    for router in ["r1", "r2a", "r2b"] {
        lab.sysctl(router, &ROUTER)?;
    }
    lab.sysctl("r1", &["net.ipv4.fib_multipath_hash_policy=1"])?;
    // Older kernels have no such setting: R1 then hashes with a random seed.
    let _ = lab.sysctl("r1", &["net.ipv4.fib_multipath_hash_seed=1234567"]);
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

/// Runs `test` again in namespace `ns` with `key=value` in its environment (standard input
/// and output piped).
fn spawn_in(ns: &str, test: &str, key: &str, value: &str) -> Child {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
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
