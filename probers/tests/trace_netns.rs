//! The tracer through real routers: a source, three routers in a chain and a destination,
//! each a network namespace this test creates (and removes, on failure too). Root only:
//! without root the test prints why and skips.
//!
//! Every address lives only inside those namespaces: 198.18.101–104.0/24 (RFC 2544's
//! benchmarking range) and fd00:ee:101–104::/64 (unique local). Link `h` joins hop `h-1`
//! (the source is hop 0) and hop `h`: the nearer side has `.1`/`::1`, the farther `.2`/`::2`.
//! So hop `h`'s inbound address — the one a router answers from (IPv4:
//! `icmp_errors_use_inbound_ifaddr`; IPv6: the address on the way back to the source) — is
//! the `.2` of link `h`. The routers forward, answer every probe (`icmp_ratelimit=0`), and
//! route the source's network back the way it came.
//!
//! The test runs itself again under `ip netns exec` in the source namespace, where the
//! child traces and prints each run as JSON; the parent checks them, and compares the hops
//! with `mtr --json` run in the same namespace when mtr is installed.

mod common;

use std::net::IpAddr;
use std::process::Command;

use common::{ip, is_root, sweep_leftovers};
use graph_store::paths::Run;

const CHILD: &str = "EDGEWATCH_TRACE_NETNS_CHILD";
const CAPTURE: &str = "EDGEWATCH_TRACE_NETNS_CAPTURE";
const PREFIX: &str = "ewtr-";
/// Hops between source and destination: 3 routers, then the destination.
const HOPS: usize = 4;

fn sysctl(ns: &str, settings: &[&str]) {
    for setting in settings {
        ip(&["netns", "exec", ns, "sysctl", "-qw", setting]).unwrap();
    }
}

/// The test's namespaces; dropping it deletes them (and so their veths).
struct Lab {
    /// source, router 1..3, destination.
    ns: Vec<String>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in &self.ns {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// The address of hop `h` (1..=HOPS) as the source sees it: on link `h`, the far side.
fn hop_v4(h: usize) -> String {
    format!("198.18.{}.2", 100 + h)
}

fn hop_v6(h: usize) -> String {
    format!("fd00:ee:{}::2", 100 + h)
}

/// Builds the chain. Hop h's namespace is `ns[h]`; link h joins `ns[h-1]` (`.1`) and
/// `ns[h]` (`.2`).
fn build_lab() -> Result<Lab, String> {
    sweep_leftovers(PREFIX);
    let base = format!("{PREFIX}{}-{}", std::process::id(), std::time::UNIX_EPOCH.elapsed().unwrap().subsec_nanos());
    let names = ["s", "r1", "r2", "r3", "d"];
    let mut lab = Lab { ns: Vec::new() };
    for name in names {
        let ns = format!("{base}-{name}");
        ip(&["netns", "add", &ns])?;
        lab.ns.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        sysctl(&ns, &["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]);
    }
    for h in 1..=HOPS {
        let (near, far) = (&lab.ns[h - 1], &lab.ns[h]);
        let (up, down) = (format!("up{h}"), format!("dn{h}"));
        // `up{h}` in the far namespace faces the source; `dn{h}` in the near one faces away.
        ip(&["-n", near, "link", "add", &down, "type", "veth", "peer", "name", &up, "netns", far])?;
        for (ns, dev, side) in [(near, &down, 1), (far, &up, 2)] {
            ip(&["-n", ns, "addr", "add", &format!("198.18.{}.{side}/24", 100 + h), "dev", dev])?;
            ip(&["-n", ns, "-6", "addr", "add", &format!("fd00:ee:{}::{side}/64", 100 + h), "dev", dev, "nodad"])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
    }
    for h in 0..=HOPS {
        let ns = &lab.ns[h];
        if h < HOPS {
            // Onwards: via the next hop's inbound address.
            ip(&["-n", ns, "route", "add", "default", "via", &format!("198.18.{}.2", 101 + h)])?;
            ip(&["-n", ns, "-6", "route", "add", "default", "via", &format!("fd00:ee:{}::2", 101 + h)])?;
        } else {
            ip(&["-n", ns, "route", "add", "default", "via", "198.18.104.1"])?;
            ip(&["-n", ns, "-6", "route", "add", "default", "via", "fd00:ee:104::1"])?;
        }
        if (2..HOPS).contains(&h) {
            // Back to the source's link: via the previous hop.
            ip(&["-n", ns, "route", "add", "198.18.101.0/24", "via", &format!("198.18.{}.1", 100 + h)])?;
            ip(&["-n", ns, "-6", "route", "add", "fd00:ee:101::/64", "via", &format!("fd00:ee:{}::1", 100 + h)])?;
        }
        if (1..HOPS).contains(&h) {
            sysctl(
                ns,
                &[
                    "net.ipv4.ip_forward=1",
                    "net.ipv4.icmp_ratelimit=0",
                    "net.ipv4.icmp_errors_use_inbound_ifaddr=1",
                    "net.ipv6.conf.all.forwarding=1",
                    "net.ipv6.icmp.ratelimit=0",
                ],
            );
        }
        if h == HOPS {
            // The destination answers UDP probes with port unreachable: every one of them.
            sysctl(ns, &["net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"]);
        }
    }
    Ok(lab)
}

/// Inside the source namespace: traces the targets in `CHILD` at once — comma-separated,
/// `icmp:IP` or `udp:IP:PORT` (`udp:[IPv6]:PORT`) — and prints `RUN <token> <json>` or
/// `ERR <token> <error>` for each, then the tracer's stats; then traces the first target
/// once more (`AGAIN <token> <json>`).
fn child(tokens: &str) {
    use probers::trace::{TraceTarget, Tracer};
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let allow = probers::AllowList::parse(&["198.18.0.0/15", "fd00:ee::/32"]).unwrap();
        let tracer = Tracer::builder(allow).probes(3).interval(std::time::Duration::from_millis(500)).build().unwrap();
        let tokens: Vec<&str> = tokens.split(',').collect();
        let targets: Vec<TraceTarget> = tokens
            .iter()
            .map(|t| match t.split_once(':') {
                Some(("icmp", ip)) => TraceTarget::new(ip.parse().unwrap()),
                Some(("udp", addr)) => {
                    let addr: std::net::SocketAddr = addr.parse().unwrap();
                    TraceTarget::udp(addr.ip(), addr.port())
                }
                _ => panic!("bad target {t}"),
            })
            .collect();
        settle(&targets).await;
        for (token, (_, result)) in tokens.iter().zip(tracer.trace_all(targets.clone()).await) {
            match result {
                Ok(run) => println!("RUN {token} {}", serde_json::to_string(&run).unwrap()),
                Err(e) => println!("ERR {token} {e}"),
            }
        }
        println!("STATS {}", serde_json::to_string(&tracer.stats()).unwrap());
        // The next run to the first target: it must take the same flow.
        let again = tracer.trace(targets[0]).await.unwrap();
        println!("AGAIN {} {}", tokens[0], serde_json::to_string(&again).unwrap());
    });
}

/// Waits (up to 10 s) until every allowed target answers pings without loss: on brand-new
/// links the first neighbour discovery can take a retransmission (1 s), which would show
/// as loss in the first round of a trace. Every router on the way resolves its neighbours
/// for the echo request and reply, so the traces then see the settled network.
async fn settle(targets: &[probers::trace::TraceTarget]) {
    use probers::{Engine, ProbeTarget};
    let allow = probers::AllowList::parse(&["198.18.0.0/15", "fd00:ee::/32"]).unwrap();
    let engine =
        Engine::builder(allow.clone()).packets(2).interval(std::time::Duration::from_millis(10)).build().unwrap();
    let pings: Vec<ProbeTarget> =
        targets.iter().filter(|t| allow.contains(t.ip)).map(|t| ProbeTarget::icmp(t.ip)).collect();
    for _ in 0..10 {
        let results = engine.probe_all(pings.clone()).await;
        if results.iter().all(|(_, out)| out.received == out.sent) {
            return;
        }
    }
    panic!("the lab did not settle: some destinations still lose pings");
}

/// Inside the destination namespace: prints `READY`, then for every tracer probe that
/// reaches it (IPv4, with the tracer's payload) `ICMP <id> <checksum> <seq>` or
/// `UDP <source port> <destination port> <checksum>`, until 2 s pass without a packet (or
/// 20 s in all).
fn capture() {
    use socket2::{Domain, Protocol, Socket, Type};
    let open = |protocol| {
        let socket = std::net::UdpSocket::from(Socket::new(Domain::IPV4, Type::RAW, Some(protocol)).unwrap());
        socket.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
        socket
    };
    let (icmp, udp) = (open(Protocol::ICMPV4), open(Protocol::UDP));
    println!("READY");
    let lines = std::thread::scope(|s| {
        let icmp = s.spawn(|| read_probes(&icmp, "ICMP", 8));
        let udp = s.spawn(|| read_probes(&udp, "UDP", 0));
        [icmp.join().unwrap(), udp.join().unwrap()].concat()
    });
    for line in lines {
        println!("{line}");
    }
}

/// Reads tracer probes from a raw IPv4 socket (first byte `first`, 0 for any) as lines
/// `<tag> <word 0> <word 2> <word 6>` of the bytes after the IP header: for ICMP the type
/// and code are skipped (`<id> <checksum> <seq>` after reordering), for UDP ports and checksum.
fn read_probes(socket: &std::net::UdpSocket, tag: &str, first: u8) -> Vec<String> {
    use probers::trace::packet::{MAGIC_AT, TRACE_MAGIC};
    let (start, mut buf, mut lines) = (std::time::Instant::now(), [0u8; 2048], Vec::new());
    while start.elapsed() < std::time::Duration::from_secs(20) {
        let Ok(n) = socket.recv(&mut buf) else { break };
        let ihl = usize::from(buf[0] & 0xf) * 4;
        let p = &buf[ihl..n];
        if p.len() < MAGIC_AT + 16 || &p[MAGIC_AT..MAGIC_AT + 16] != TRACE_MAGIC || (first != 0 && p[0] != first) {
            continue;
        }
        let word = |at: usize| u16::from_be_bytes([p[at], p[at + 1]]);
        lines.push(match tag {
            "ICMP" => format!("ICMP {} {} {}", word(4), word(2), word(6)),
            _ => format!("UDP {} {} {}", word(0), word(2), word(6)),
        });
    }
    lines
}

/// Reads the child's output up to its `READY` line, byte by byte (so that nothing after it
/// is taken from the pipe).
fn wait_for_ready(child: &mut std::process::Child) {
    use std::io::Read;
    let (pipe, mut seen, mut byte) = (child.stdout.as_mut().unwrap(), Vec::new(), [0u8]);
    while !seen.ends_with(b"READY\n") {
        assert_eq!(
            pipe.read(&mut byte).unwrap(),
            1,
            "the child ended before READY: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.push(byte[0]);
    }
}

/// Runs this test's binary in namespace `ns` with `key=value` in its environment.
fn spawn_in(ns: &str, key: &str, value: &str) -> std::process::Child {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "traces_through_three_routers", "--nocapture", "--test-threads=1"])
        .env(key, value)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a child; panics with its output unless it succeeded. Returns stdout.
fn output_of(child: std::process::Child, what: &str) -> String {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// A run printed as `<tag> <dst> <json>` (the first line may follow the harness's
/// "test … ..." on the same line).
fn printed_run(stdout: &str, tag: &str, dst: &str) -> Run {
    let prefix = format!("{tag} {dst} ");
    let line = stdout.lines().find_map(|l| l.split_once(&prefix).map(|(_, json)| json));
    serde_json::from_str(line.unwrap_or_else(|| panic!("no {tag} for {dst}:\n{stdout}"))).unwrap()
}

/// The hop addresses `mtr ARGS…` reports (`???` for a silent hop).
fn mtr_hops(ns: &str, dst: &str, args: &[&str]) -> Option<Vec<String>> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "mtr", "--json", "-n", "-c", "3"])
        .args(args)
        .arg(dst)
        .output()
        .ok()?;
    assert!(out.status.success(), "mtr {args:?} to {dst} failed: {}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hubs = json["report"]["hubs"].as_array().unwrap_or_else(|| panic!("mtr JSON without hubs: {json}"));
    Some(hubs.iter().map(|h| h["host"].as_str().unwrap().to_string()).collect())
}

fn mtr_installed() -> bool {
    Command::new("mtr").arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn traces_through_three_routers() {
    if let Ok(targets) = std::env::var(CHILD) {
        return child(&targets);
    }
    if std::env::var_os(CAPTURE).is_some() {
        return capture();
    }
    if !is_root() {
        println!("SKIP traces_through_three_routers: needs root (network namespaces, raw ICMP sockets)");
        return;
    }
    let lab = match build_lab() {
        Ok(lab) => lab,
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "CI runs as root, so this test must run, but: {e}");
            println!("SKIP traces_through_three_routers: cannot build the namespaces: {e}");
            return;
        }
    };
    let (source, dest) = (lab.ns[0].clone(), lab.ns[HOPS].clone());
    // Catch the probes that reach the destination, to see their flow fields.
    let mut capturing = spawn_in(&dest, CAPTURE, "1");
    wait_for_ready(&mut capturing);
    // Both destinations over both families, and a router's own address, all at once; and
    // one target outside the allow-list, refused with nothing sent.
    let (d4, d6, r2) = (hop_v4(HOPS), hop_v6(HOPS), hop_v4(2));
    let (icmp4, icmp6, icmp_r2) = (format!("icmp:{d4}"), format!("icmp:{d6}"), format!("icmp:{r2}"));
    let (udp4, udp6) = (format!("udp:{d4}:33434"), format!("udp:[{d6}]:33434"));
    let targets = [&icmp4, &icmp6, &icmp_r2, &udp4, &udp6, "icmp:10.9.9.9"].map(|t| t.to_string()).join(",");
    let stdout = output_of(spawn_in(&source, CHILD, &targets), "the tracing child");
    println!("{stdout}");

    let want4: Vec<String> = (1..=HOPS).map(hop_v4).collect();
    let want6: Vec<String> = (1..=HOPS).map(hop_v6).collect();
    let traced =
        [(&icmp4, &want4), (&icmp6, &want6), (&icmp_r2, &want4[..2].to_vec()), (&udp4, &want4), (&udp6, &want6)];
    for (token, want) in traced {
        let run = printed_run(&stdout, "RUN", token);
        let got: Vec<String> = run.hops.iter().map(|h| addrs(&h.addrs)).collect();
        assert_eq!(&got, want, "{token}: the routers' inbound addresses, then the destination");
        assert!(run.reached, "{token}: {run:?}");
        for hop in &run.hops {
            assert_eq!((hop.sent, hop.received), (3, 3), "{token}: no loss at TTL {}: {hop:?}", hop.ttl);
            let (best, avg, worst) = (hop.rtt_best_ms.unwrap(), hop.rtt_avg_ms.unwrap(), hop.rtt_worst_ms.unwrap());
            assert!(0.0 < best && best <= avg && avg <= worst && worst < 1000.0, "{token}: {hop:?}");
            assert!(hop.rtt_stddev_ms.is_some() && hop.jitter_ms.is_some(), "{token}: {hop:?}");
        }
    }
    assert!(stdout.contains("ERR icmp:10.9.9.9 probe target 10.9.9.9 refused"), "{stdout}");
    let stats: probers::TracerStats =
        serde_json::from_str(stdout.lines().find_map(|l| l.strip_prefix("STATS ")).unwrap()).unwrap();
    assert_eq!((stats.refused, stats.traces), (1, traced.len() as u64), "{stats:?}");
    // Every reported probe was answered; probes sent past a destination before its answer
    // came (none on an idle machine) may add to both counts.
    let reported: usize = traced.iter().map(|(_, want)| 3 * want.len()).sum();
    let reported = reported as u64;
    assert!(reported <= stats.answers_received && stats.answers_received <= stats.probes_sent, "{stats:?}");

    paris_on_the_wire(&output_of(capturing, "the capturing child"), &d4);
    let again = printed_run(&stdout, "AGAIN", &icmp4);
    assert_eq!(again.hops.iter().map(|h| addrs(&h.addrs)).collect::<Vec<_>>(), want4, "{again:?}");

    if !mtr_installed() {
        println!("mtr is not installed (`make test` installs mtr-tiny): the comparison with mtr is skipped");
        return;
    }
    let (m4, m6, m4u) = std::thread::scope(|s| {
        let m4 = s.spawn(|| mtr_hops(&source, &d4, &[]));
        let m6 = s.spawn(|| mtr_hops(&source, &d6, &[]));
        let m4u = s.spawn(|| mtr_hops(&source, &d4, &["-u"]));
        (m4.join().unwrap(), m6.join().unwrap(), m4u.join().unwrap())
    });
    assert_eq!(m4.as_ref(), Some(&want4), "mtr's IPv4 hops");
    assert_eq!(m6.as_ref(), Some(&want6), "mtr's IPv6 hops");
    assert_eq!(m4u.as_ref(), Some(&want4), "mtr's IPv4 hops over UDP");
    drop(lab);
}

/// The probes that reached the destination: over ICMP (both runs to it) one identifier —
/// the flow's, from source, destination and flow 0 — and one checksum, the sequence number
/// telling them apart; over UDP one pair of ports — the source port from the flow — the
/// checksum telling them apart.
fn paris_on_the_wire(captured: &str, d4: &str) {
    use probers::trace::packet::{flow_identifier, udp_source_port};
    let probes = |tag: &str| -> Vec<(u16, u16, u16)> {
        let prefix = format!("{tag} ");
        captured
            .lines()
            .filter_map(|l| l.split_once(&prefix).map(|(_, rest)| rest))
            .map(|rest| {
                let f: Vec<u16> = rest.split(' ').map(|x| x.parse().unwrap()).collect();
                (f[0], f[1], f[2])
            })
            .collect()
    };
    let distinct = |values: Vec<u16>| {
        let n = values.len();
        let mut v = values;
        v.sort_unstable();
        v.dedup();
        v.len() == n
    };
    // The source is the near side of link 1.
    let flow = flow_identifier("198.18.101.1".parse().unwrap(), d4.parse().unwrap(), 0);

    let icmp = probes("ICMP");
    assert!(icmp.len() >= 6, "two ICMP runs of three rounds reach the destination: {captured}");
    let (id, checksum, _) = icmp[0];
    assert_eq!(id, flow, "the identifier is the flow's");
    assert!(icmp.iter().all(|&(i, c, _)| (i, c) == (id, checksum)), "one identifier and checksum: {icmp:?}");
    assert!(distinct(icmp.iter().map(|p| p.2).collect()), "sequence numbers tell the probes apart: {icmp:?}");

    let udp = probes("UDP");
    assert!(udp.len() >= 3, "a UDP run of three rounds reaches the destination: {captured}");
    assert!(udp.iter().all(|&(s, d, _)| (s, d) == (udp_source_port(flow), 33434)), "one pair of ports: {udp:?}");
    assert!(distinct(udp.iter().map(|p| p.2).collect()), "checksums tell the probes apart: {udp:?}");
}

fn addrs(addrs: &[IpAddr]) -> String {
    addrs.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(",")
}
