//! The tracer's runs through a load-balanced lab of real routers, read by the route and loss
//! rules of `graph_store::paths`: ECMP is real and a fixed flow stays on its branch; a route
//! change is named at the hop where it happens; a router that rate-limits its own answers
//! is not blamed; forward loss is located after the router that drops; a destination cut
//! off ends at the last router. Every router is a network namespace this test creates (and
//! removes, on failure too). Root only: without root, `ip` or `nft` each test prints why and
//! skips.
//!
//! ```text
//!                    ┌── R2a ──┐
//!   S ──── R1 ───────┼── R2b ──┼──── R3 ──── D
//!                    └── R4 ───┘   (R4: the other route, unused until a test switches to it)
//! ```
//!
//! R1 balances the destination's network over R2a and R2b per flow (`nexthop via … nexthop
//! via …` with `fib_multipath_hash_policy=1`: addresses, protocol and ports), its hash seed
//! fixed (`fib_multipath_hash_seed`, Linux 6.11+) so that a flow takes the same branch in
//! every lab. Every address lives only inside these namespaces: link `n` is 198.18.n.0/24
//! (RFC 2544's benchmarking range; `trace_netns.rs` uses 198.18.101–104), its nearer side
//! `.1`, its farther side `.2`. Routers answer every probe (`icmp_ratelimit=0`) from the
//! address it came in on (`icmp_errors_use_inbound_ifaddr`), so TTL 1 is R1 (.201.2), TTL 2
//! the branch (R2a .211.2, R2b .212.2, R4 .214.2), TTL 3 R3 on that branch's link (.221.2,
//! .222.2, .224.2) and TTL 4 the destination (.231.2). Answers come back any way (R3 sends
//! all of them via R2a): a trace reads only the forward hops.
//!
//! Each test builds its own lab (the tests run in parallel) and runs itself again under `ip
//! netns exec` in S, where the child traces, changes the lab (`ip -n`; `nft` in a router's
//! namespace) and asserts; the parent prints the child's output, and fails with it.
//!
//! What Linux (6.18) showed while this was written: under hash policy 1 UDP flows spread
//! over both branches by their ports, but every ICMP echo between two addresses takes one
//! branch whatever its identifier and checksum — the kernel's flow keys hold no ports for
//! ICMP (policy 0 puts UDP on one branch too). So against Linux routers the ICMP traces
//! here stay on one branch by themselves; the UDP traces are the ones that show Paris at
//! work. Routers that hash ICMP's first bytes in the ports' place are why the tracer keeps
//! its ICMP identifier and checksum fixed (checked on the wire by `trace_netns.rs`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ip, is_root, sweep_leftovers};
use graph_store::paths::{
    hop_losses, loss_onset, Hop, LossConfig, LossEvent, LossTracker, RouteConfig, RouteEvent, RouteTracker, Run,
};
use probers::trace::{TraceTarget, Tracer};

const CHILD: &str = "EDGEWATCH_TRACE_ROUTES_CHILD";
const PREFIX: &str = "ewrt-";

/// The namespaces: source, routers, destination.
const NODES: [&str; 7] = ["s", "r1", "r2a", "r2b", "r4", "r3", "d"];
const ROUTERS: [&str; 5] = ["r1", "r2a", "r2b", "r4", "r3"];
/// (nearer node, farther node, n): the veth pair `to-<farther>` / `from-<nearer>` on
/// 198.18.n.0/24.
const LINKS: [(&str, &str, u8); 8] = [
    ("s", "r1", 201),
    ("r1", "r2a", 211),
    ("r1", "r2b", 212),
    ("r1", "r4", 214),
    ("r2a", "r3", 221),
    ("r2b", "r3", 222),
    ("r4", "r3", 224),
    ("r3", "d", 231),
];
/// What the tracer and the pings may reach: the lab's links.
const LAB_NET: &str = "198.18.192.0/18";
const SOURCE_NET: &str = "198.18.201.0/24";
const DEST_NET: &str = "198.18.231.0/24";
const DEST: &str = "198.18.231.2";
const R1: &str = "198.18.201.2";
const R2A: &str = "198.18.211.2";
const R2B: &str = "198.18.212.2";
const R4: &str = "198.18.214.2";
/// R3 on the link from each branch.
const R3S: [&str; 3] = ["198.18.221.2", "198.18.222.2", "198.18.224.2"];
/// A closed port at the destination: UDP probes are answered with port unreachable.
const PORT: u16 = 33434;
const BRANCH_TTL: u8 = 2;
const R3_TTL: u8 = 3;
const DEST_TTL: u8 = 4;
/// Flows traced once each to see the balancing: with a random seed (kernels before 6.11)
/// all on one branch with probability 2^-31.
const FLOWS: u16 = 32;

/// Answer every probe: no per-destination limit, and a global one far above the tests'
/// rates.
const ANSWER_ALL: [&str; 3] =
    ["net.ipv4.icmp_ratelimit=0", "net.ipv4.icmp_msgs_per_sec=100000", "net.ipv4.icmp_msgs_burst=100000"];
const FORWARD: [&str; 2] = ["net.ipv4.ip_forward=1", "net.ipv4.icmp_errors_use_inbound_ifaddr=1"];

const TIMEOUT: Duration = Duration::from_millis(500);
const INTERVAL: Duration = Duration::from_millis(10);
const MAX_TTL: u8 = 8;
const MAX_UNKNOWN: u8 = 2;

// ---- the tests ----

#[test]
fn ecmp_is_real_and_paris_holds_it() {
    in_lab("ecmp_is_real_and_paris_holds_it", "ecmp", ecmp_and_paris);
}

#[test]
fn a_route_change_is_named_at_the_branch_hop() {
    in_lab("a_route_change_is_named_at_the_branch_hop", "chg", route_change);
}

#[test]
fn a_rate_limiting_router_is_not_blamed() {
    in_lab("a_rate_limiting_router_is_not_blamed", "rl", rate_limiting_router);
}

#[test]
fn forward_loss_is_located_after_the_dropping_router() {
    in_lab("forward_loss_is_located_after_the_dropping_router", "loss", forward_loss);
}

#[test]
fn a_cut_destination_ends_at_the_last_router() {
    in_lab("a_cut_destination_ends_at_the_last_router", "cut", destination_cut);
}

// ---- the scenarios (run in the child, in the source namespace) ----

/// Many flows, one trace each, take both branches (and so does mtr's classic UDP trace);
/// 20 cycles of the same targets keep each on its branch, and the route rules see no change.
fn ecmp_and_paris(_lab: &Lab) {
    let tracing = Tracing::new(3);
    let [on_a, on_b] = udp_on_each_branch(&tracing);
    let icmp_runs = tracing.runs(&(0..FLOWS).map(icmp).collect::<Vec<_>>());
    let icmp_branches: BTreeSet<IpAddr> = icmp_runs.iter().map(branch_of).collect();
    println!("ICMP flows 0..{FLOWS} took {icmp_branches:?} (Linux hashes no ICMP field but the protocol)");
    classic_mtr_sees_both_branches();

    let mut watches: Vec<Watch> = [on_a, on_b, icmp(0)].into_iter().map(Watch::new).collect();
    let said = cycles(&tracing, &mut watches, 20);
    assert_quiet(&watches, &said, "20 cycles on an unchanged lab");
    let want = [addr(R2A), addr(R2B), branch_of(&watches[2].runs[0])];
    for (watch, want) in watches.iter().zip(want) {
        let branches: BTreeSet<IpAddr> = watch.runs.iter().map(branch_of).collect();
        assert_eq!(branches, BTreeSet::from([want]), "one branch, every run: {}", watch.history());
    }
    println!("{}", history(&watches));
}

/// R1 sends the destination's network via R4, then balances it again: each is one route
/// change, named at the branch hop, for targets on either branch.
fn route_change(lab: &Lab) {
    let tracing = Tracing::new(3);
    let targets = udp_on_each_branch(&tracing).into_iter().chain([icmp(0)]);
    let mut watches: Vec<Watch> = targets.map(Watch::new).collect();
    let said = cycles(&tracing, &mut watches, 3);
    assert_quiet(&watches, &said, "warming up");
    let branches: Vec<IpAddr> = watches.iter().map(|w| branch_of(w.last())).collect();

    lab.route_via_r4().unwrap();
    let said = cycles(&tracing, &mut watches, 2);
    for ((watch, said), &branch) in watches.iter().zip(&said).zip(&branches) {
        assert_one_change(watch, said, branch, addr(R4));
    }
    lab.route_ecmp("replace").unwrap();
    let said = cycles(&tracing, &mut watches, 2);
    for ((watch, said), &branch) in watches.iter().zip(&said).zip(&branches) {
        assert_one_change(watch, said, addr(R4), branch);
    }
    println!("{}", history(&watches));
}

/// R3 answers almost no probes that end with it while forwarding everything: first by the
/// kernel's own limits (no answer at all), then by nftables (one in four). Its hop is
/// rate-limited, no loss onset is named, and the route and loss rules stay quiet.
fn rate_limiting_router(lab: &Lab) {
    let tracing = Tracing::new(4);
    let mut watches = vec![Watch::new(udp(0)), Watch::new(icmp(0))];
    let said = cycles(&tracing, &mut watches, 2);
    assert_quiet(&watches, &said, "before R3 limits its answers");

    // Per destination one answer per 100 s (a new peer starts with 60 s of credit), and one
    // per second in all.
    let limits = ["net.ipv4.icmp_ratelimit=100000", "net.ipv4.icmp_msgs_per_sec=1", "net.ipv4.icmp_msgs_burst=1"];
    lab.sysctl("r3", &limits).unwrap();
    let said = cycles(&tracing, &mut watches, 2);
    assert_quiet(&watches, &said, "R3 limited by the kernel");
    for watch in &watches {
        for run in &watch.runs[2..] {
            let r3 = assert_rate_limited(run, &watch.history());
            assert_eq!(r3.received, 0, "the kernel's limit leaves R3 silent: {}", watch.history());
        }
    }

    lab.sysctl("r3", &ANSWER_ALL).unwrap();
    lab.nft("r3", ONE_ANSWER_IN_FOUR).unwrap();
    let said = cycles(&tracing, &mut watches, 2);
    assert_quiet(&watches, &said, "R3 limited by nftables");
    let mut answered = 0;
    for watch in &watches {
        for run in &watch.runs[4..] {
            let r3 = assert_rate_limited(run, &watch.history());
            let branch = &run.hops[usize::from(BRANCH_TTL) - 1].addrs;
            let from_r3 = branch.len() == 1 && r3.addrs.iter().all(|&a| a == r3_behind(branch[0]));
            assert!(from_r3, "R3 answers from its address on the branch's link: {}", watch.history());
            answered += r3.received;
        }
    }
    assert!(answered > 0, "R3 answers one probe in four: {}", history(&watches));
    println!("{}", history(&watches));
}

/// R3 drops 30 % of what it forwards to D (nftables; this kernel has no netem). Pooled over
/// 20 traces of 10 probes, the loss onset is D's TTL and no hop up to R3 loses anything;
/// two such pools in a row make the loss rule start loss at D's TTL.
///
/// Why 200 probes: D's losses are Binomial(200, 0.3), mean 60; the onset is missed only if
/// fewer than 30 are lost (15 %): P = 2.6e-7 per pool, 5.2e-7 for the test (a single trace
/// of 10 probes would miss it with P = 0.15). Hops up to R3 are not forwarded through the
/// rule (a probe expiring at R3 is answered before its forward hook), so they lose nothing
/// unless an answer takes over 500 ms.
fn forward_loss(lab: &Lab) {
    let tracing = Tracing::new(10);
    lab.nft("r3", FORWARD_LOSS_TO_D).unwrap();
    let cfg = LossConfig { k_runs: 2, min_pct: 15.0 };
    let (mut tracker, mut events) = (LossTracker::new(), Vec::new());
    for pool in 1..=2 {
        let runs = tracing.runs(&[icmp(0); 20]);
        let pooled = pooled(&runs);
        let context = format!("pool {pool}: {}\nits runs:\n{}", show(&pooled), show_all(&runs));
        assert_eq!(loss_onset(&pooled, cfg.min_pct), Some(DEST_TTL), "loss from D's hop on: {context}");
        for hop in hop_losses(&pooled).iter().filter(|h| h.ttl <= R3_TTL) {
            assert_eq!(hop.loss_pct, 0.0, "no loss up to R3 (TTL {R3_TTL}): {context}");
        }
        println!("pool {pool}: {}", show(&pooled));
        events.extend(tracker.observe(&pooled, &cfg));
    }
    assert!(matches!(events.as_slice(), [LossEvent::Started { ttl: DEST_TTL, .. }]), "{events:?}");
}

/// D drops everything that reaches it, then its link goes down: runs end at R3, not reached.
/// While D is silent the route rules see no change (loss, not a route) and the loss rule
/// starts loss at D's TTL.
fn destination_cut(lab: &Lab) {
    let tracing = Tracing::new(3);
    let mut watches = vec![Watch::new(udp(0)), Watch::new(icmp(0))];
    let said = cycles(&tracing, &mut watches, 2);
    assert_quiet(&watches, &said, "before the cut");

    lab.nft("d", DROP_ALL_INPUT).unwrap();
    let said = cycles(&tracing, &mut watches, 2);
    for (watch, said) in watches.iter().zip(&said) {
        for run in &watch.runs[2..] {
            assert_ends_at_r3(run, &watch.history());
            assert_eq!(loss_onset(run, 20.0), Some(DEST_TTL), "the first silent hop: {}", watch.history());
        }
        assert!(said.route.is_empty(), "a silent destination is not a route change: {said:?}\n{}", watch.history());
        let started = matches!(said.loss.as_slice(), [LossEvent::Started { ttl: DEST_TTL, .. }]);
        assert!(started, "loss from D's TTL: {said:?}\n{}", watch.history());
    }

    // D's interface goes down; R3 keeps its route and forwards into a link without carrier.
    // (Deleting the link would take R3's route with it: R3 would then answer even TTL 3 with
    // net unreachable — the route lookup comes before the TTL check — at most one a second
    // after a burst of five that its time exceeded answers keep empty: R3's hop goes silent.)
    lab.ip("d", &["link", "set", "from-r3", "down"]).unwrap();
    cycles(&tracing, &mut watches, 1);
    for watch in &watches {
        assert_ends_at_r3(watch.last(), &watch.history());
    }
    println!("{}", history(&watches));
}

// ---- nftables rule sets (table `inet lab`) ----

/// R3 drops 30 % of what it forwards towards D.
const FORWARD_LOSS_TO_D: &str = r#"table inet lab {
    chain forward {
        type filter hook forward priority 0;
        oifname "to-d" numgen random mod 100 < 30 drop
    }
}"#;

/// R3 sends one time exceeded in four (a counter, not chance: any 4 in a row pass one; the
/// traces running at once share them).
const ONE_ANSWER_IN_FOUR: &str = r#"table inet lab {
    chain output {
        type filter hook output priority 0;
        icmp type time-exceeded numgen inc mod 4 != 0 drop
    }
}"#;

/// D takes in nothing (ARP still works: the neighbour entry at R3 stays).
const DROP_ALL_INPUT: &str = r#"table inet lab {
    chain input {
        type filter hook input priority 0; policy drop;
    }
}"#;

// ---- checks ----

/// The branch router a run went through, after checking it is one whole path: R1, one
/// branch, R3 on that branch's link, the destination.
fn branch_of(run: &Run) -> IpAddr {
    let addrs: Vec<&[IpAddr]> = run.hops.iter().map(|h| h.addrs.as_slice()).collect();
    let [[r1], [branch], [r3], [dest]] = addrs.as_slice() else {
        panic!("not one path of 4 hops: {}", show(run));
    };
    assert!(run.reached, "{}", show(run));
    assert!([R2A, R2B, R4].map(addr).contains(branch), "TTL {BRANCH_TTL} is a branch: {}", show(run));
    assert_eq!([*r1, *r3, *dest], [addr(R1), r3_behind(*branch), addr(DEST)], "{}", show(run));
    *branch
}

/// R3's address on the link from `branch` (the one it answers probes from that way).
fn r3_behind(branch: IpAddr) -> IpAddr {
    let i = [R2A, R2B, R4].map(addr).iter().position(|&b| b == branch);
    addr(R3S[i.unwrap_or_else(|| panic!("{branch} is no branch"))])
}

/// Exactly one route change in `said`: at the branch hop, from `old` to `new`; and the
/// last run on `new`.
fn assert_one_change(watch: &Watch, said: &Said, old: IpAddr, new: IpAddr) {
    let history = watch.history();
    let [RouteEvent::Changed(change)] = said.route.as_slice() else {
        panic!("want one route change from {old} to {new}, got {:?}\n{history}", said.route);
    };
    let d = &change.divergence;
    assert_eq!((d.ttl, d.old.as_slice(), d.new.as_slice()), (BRANCH_TTL, &[old][..], &[new][..]), "{history}");
    assert!(said.loss.is_empty(), "{:?}\n{history}", said.loss);
    assert_eq!(branch_of(watch.last()), new, "{history}");
}

/// R3's hop of a run in which R3 limits its answers: the run reached D, R3 lost answers
/// and is marked rate-limited, and no loss onset is named.
fn assert_rate_limited(run: &Run, context: &str) -> Hop {
    assert!(run.reached && run.hops.len() == usize::from(DEST_TTL), "{context}");
    let r3 = hop_losses(run).into_iter().find(|h| h.ttl == R3_TTL).unwrap();
    assert!(r3.loss_pct > 0.0 && r3.rate_limited, "R3 is rate-limited, {r3:?}: {context}");
    assert_eq!(loss_onset(run, 20.0), None, "{context}");
    run.hops[usize::from(R3_TTL) - 1].clone()
}

/// The run did not reach D, and the last hop that answered is R3 on the run's branch.
fn assert_ends_at_r3(run: &Run, context: &str) {
    assert!(!run.reached, "{context}");
    let branch = run.hops.get(usize::from(BRANCH_TTL) - 1).map(|h| h.addrs.clone());
    let want = branch.filter(|b| b.len() == 1).map(|b| vec![r3_behind(b[0])]);
    let last = run.hops.iter().rev().find(|h| !h.addrs.is_empty()).map(|h| h.addrs.clone());
    assert!(want.is_some() && last == want, "the last answer is R3's ({want:?}): {context}");
}

fn assert_quiet(watches: &[Watch], said: &[Said], when: &str) {
    for (watch, said) in watches.iter().zip(said) {
        let quiet = said.route.is_empty() && said.loss.is_empty();
        assert!(quiet, "{when}: no route or loss event, got {said:?}\n{}", watch.history());
    }
}

/// mtr's UDP mode is a classic trace (the destination port changes with every probe): its
/// 30 rounds see both branches at TTL 2. Skipped when mtr is not installed.
fn classic_mtr_sees_both_branches() {
    // 30 rounds 50 ms apart, then half a second for the last answers (not mtr's 5 s).
    let args = ["-n", "-u", "-c", "30", "-i", "0.05", "-G", "0.5", "--report", DEST];
    let Ok(out) = Command::new("mtr").args(args).output() else {
        println!("mtr is not installed (`make test` installs mtr-tiny): the classic trace is skipped");
        return;
    };
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "mtr failed: {report}{}", String::from_utf8_lossy(&out.stderr));
    let seen: BTreeSet<&str> = mtr_hop(&report, BRANCH_TTL).into_iter().collect();
    assert_eq!(seen, BTreeSet::from([R2A, R2B]), "mtr -u at TTL {BRANCH_TTL}:\n{report}");
}

/// The addresses `mtr --report` lists for hop `ttl`: on its line, and on the lines below it
/// that hold only an address.
fn mtr_hop(report: &str, ttl: u8) -> Vec<&str> {
    let (mut addrs, mut in_hop) = (Vec::new(), false);
    for line in report.lines().map(str::trim_start) {
        if let Some((number, rest)) = line.split_once(".|--") {
            in_hop = number == ttl.to_string();
            addrs.extend(rest.split_whitespace().next().filter(|_| in_hop));
        } else if in_hop {
            addrs.extend(line.split_whitespace().next());
        }
    }
    addrs
}

// ---- tracing and the rules ----

/// Traces from the source namespace (where the child runs): a runtime and a tracer.
struct Tracing {
    tracer: Tracer,
    rt: tokio::runtime::Runtime,
}

impl Tracing {
    /// A tracer with `probes` rounds per trace, once the lab answers pings.
    fn new(probes: u32) -> Tracing {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let tracer = rt.block_on(async {
            settle().await;
            let allow = probers::AllowList::parse(&[LAB_NET]).unwrap();
            let builder = Tracer::builder(allow).probes(probes).timeout(TIMEOUT).interval(INTERVAL);
            builder.max_ttl(MAX_TTL).max_unknown(MAX_UNKNOWN).build().unwrap()
        });
        Tracing { tracer, rt }
    }

    /// One run per target, all at once, in the order given.
    fn runs(&self, targets: &[TraceTarget]) -> Vec<Run> {
        let results = self.rt.block_on(self.tracer.trace_all(targets.to_vec()));
        results.into_iter().map(|(target, run)| run.unwrap_or_else(|e| panic!("tracing {target}: {e}"))).collect()
    }
}

/// Waits (up to 10 rounds) until the destination and every router behind R1 answer pings
/// without loss, so that no first neighbour resolution shows as loss in a trace.
async fn settle() {
    use probers::{Engine, ProbeTarget};
    let allow = probers::AllowList::parse(&[LAB_NET]).unwrap();
    let engine = Engine::builder(allow).packets(2).interval(Duration::from_millis(10)).build().unwrap();
    let pings: Vec<ProbeTarget> = [DEST, R2A, R2B, R4].iter().chain(&R3S).map(|a| ProbeTarget::icmp(addr(a))).collect();
    for _ in 0..10 {
        let results = engine.probe_all(pings.clone()).await;
        if results.iter().all(|(_, out)| out.received == out.sent) {
            return;
        }
    }
    panic!("the lab did not settle: some addresses still lose pings");
}

/// UDP flows 0..FLOWS, traced once each: each run one path, and both branches taken.
/// Returns a flow that takes R2a and one that takes R2b.
fn udp_on_each_branch(tracing: &Tracing) -> [TraceTarget; 2] {
    let targets: Vec<TraceTarget> = (0..FLOWS).map(udp).collect();
    let runs = tracing.runs(&targets);
    let branches: Vec<IpAddr> = runs.iter().map(branch_of).collect();
    [R2A, R2B].map(|branch| {
        let i = branches.iter().position(|&b| b == addr(branch));
        let i = i.unwrap_or_else(|| panic!("no UDP flow took {branch}: R1 does not balance\n{}", show_all(&runs)));
        println!("UDP flows 0..{FLOWS}: {} of them via {branch}, the first flow {i}", count(&branches, branch));
        targets[i]
    })
}

fn count(branches: &[IpAddr], branch: &str) -> usize {
    branches.iter().filter(|&&b| b == addr(branch)).count()
}

fn udp(flow: u16) -> TraceTarget {
    TraceTarget::udp(addr(DEST), PORT).with_flow(flow)
}

fn icmp(flow: u16) -> TraceTarget {
    TraceTarget::new(addr(DEST)).with_flow(flow)
}

fn addr(ip: &str) -> IpAddr {
    ip.parse().unwrap()
}

/// A target traced once per cycle (its flow fixed), the rules' state for it and its runs.
struct Watch {
    target: TraceTarget,
    route: RouteTracker,
    loss: LossTracker,
    runs: Vec<Run>,
}

/// What the rules said over some cycles, for one target.
#[derive(Debug, Default)]
struct Said {
    route: Vec<RouteEvent>,
    loss: Vec<LossEvent>,
}

impl Watch {
    fn new(target: TraceTarget) -> Watch {
        Watch { target, route: RouteTracker::new(), loss: LossTracker::new(), runs: Vec::new() }
    }

    fn last(&self) -> &Run {
        self.runs.last().expect("traced at least once")
    }

    /// The target and its runs, one a line.
    fn history(&self) -> String {
        format!("{}, runs so far:\n{}", self.target, show_all(&self.runs))
    }
}

fn history(watches: &[Watch]) -> String {
    watches.iter().map(Watch::history).collect::<Vec<_>>().join("\n")
}

/// `n` cycles: each traces every watched target once (all at once) and hands each run to its
/// target's route and loss rules (default settings). Returns what they said, per target.
fn cycles(tracing: &Tracing, watches: &mut [Watch], n: usize) -> Vec<Said> {
    let mut said: Vec<Said> = watches.iter().map(|_| Said::default()).collect();
    for _ in 0..n {
        let targets: Vec<TraceTarget> = watches.iter().map(|w| w.target).collect();
        for ((watch, run), said) in watches.iter_mut().zip(tracing.runs(&targets)).zip(&mut said) {
            said.route.extend(watch.route.observe(&run, &RouteConfig::default()));
            said.loss.extend(watch.loss.observe(&run, &LossConfig::default()));
            watch.runs.push(run);
        }
    }
    said
}

/// Runs as one longer run: per TTL the probes sent and answered added up, the addresses
/// united; reached if every run reached.
fn pooled(runs: &[Run]) -> Run {
    let mut hops: BTreeMap<u8, Hop> = BTreeMap::new();
    for hop in runs.iter().flat_map(|r| &r.hops) {
        let pool =
            hops.entry(hop.ttl).or_insert_with(|| Hop { addrs: Vec::new(), sent: 0, received: 0, ..hop.clone() });
        pool.sent += hop.sent;
        pool.received += hop.received;
        pool.addrs.extend(&hop.addrs);
        pool.addrs.sort_unstable();
        pool.addrs.dedup();
    }
    Run { at: runs[0].at, hops: hops.into_values().collect(), reached: runs.iter().all(|r| r.reached) }
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

fn show_all(runs: &[Run]) -> String {
    runs.iter().map(|r| format!("  {}", show(r))).collect::<Vec<_>>().join("\n")
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
            for node in NODES {
                let _ = ip(&["netns", "del", &self.ns(node)]);
            }
        }
    }
}

impl Lab {
    fn ns(&self, node: &str) -> String {
        format!("{}-{node}", self.base)
    }

    /// Builds the lab of the module documentation, in namespaces named after this process
    /// and `tag`.
    fn build(tag: &str) -> Result<Lab, String> {
        sweep_leftovers(PREFIX);
        let lab = Lab { base: format!("{PREFIX}{}-{tag}", std::process::id()), owned: true };
        for node in NODES {
            ip(&["netns", "add", &lab.ns(node)])?;
            lab.ip(node, &["link", "set", "lo", "up"])?;
            // Before any veth exists, so every interface has it off: R3 takes in the source's
            // packets on links its route back does not use.
            lab.sysctl(node, &["net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"])?;
        }
        for (near, far, n) in LINKS {
            let (out, back) = (format!("to-{far}"), format!("from-{near}"));
            lab.ip(near, &["link", "add", &out, "type", "veth", "peer", "name", &back, "netns", &lab.ns(far)])?;
            for (node, dev, side) in [(near, &out, 1), (far, &back, 2)] {
                lab.ip(node, &["addr", "add", &format!("198.18.{n}.{side}/24"), "dev", dev])?;
                lab.ip(node, &["link", "set", dev, "up"])?;
            }
        }
        lab.add_routes()?;
        for node in ROUTERS {
            lab.sysctl(node, &FORWARD)?;
            lab.sysctl(node, &ANSWER_ALL)?;
        }
        lab.sysctl("d", &ANSWER_ALL)?;
        lab.sysctl("r1", &["net.ipv4.fib_multipath_hash_policy=1"])?;
        // Older kernels have no such setting: each namespace then hashes with a random seed.
        let _ = lab.sysctl("r1", &["net.ipv4.fib_multipath_hash_seed=1234567"]);
        Ok(lab)
    }

    fn add_routes(&self) -> Result<(), String> {
        let routes = [
            ("s", "default", "198.18.201.2"),
            // For the pings that settle the lab: each of R3's links through its branch.
            ("r1", "198.18.221.0/24", R2A),
            ("r1", "198.18.222.0/24", R2B),
            ("r1", "198.18.224.0/24", R4),
            ("r2a", "default", "198.18.221.2"),
            ("r2a", SOURCE_NET, "198.18.211.1"),
            ("r2b", "default", "198.18.222.2"),
            ("r2b", SOURCE_NET, "198.18.212.1"),
            ("r4", "default", "198.18.224.2"),
            ("r4", SOURCE_NET, "198.18.214.1"),
            ("r3", SOURCE_NET, "198.18.221.1"),
            ("d", "default", "198.18.231.1"),
        ];
        for (node, dst, via) in routes {
            self.ip(node, &["route", "add", dst, "via", via])?;
        }
        self.route_ecmp("add").map(drop)
    }

    /// R1 balances the destination's network over R2a and R2b (`verb`: add or replace).
    fn route_ecmp(&self, verb: &str) -> Result<String, String> {
        self.ip("r1", &["route", verb, DEST_NET, "nexthop", "via", R2A, "nexthop", "via", R2B])
    }

    /// R1 sends the destination's network via R4 only.
    fn route_via_r4(&self) -> Result<String, String> {
        self.ip("r1", &["route", "replace", DEST_NET, "via", R4])
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

/// In the child (`CHILD` set): runs `scenario` in the lab named there. In the parent: builds
/// a lab and runs this test again in its source namespace, printing the child's output and
/// failing with it.
fn in_lab(test: &str, tag: &str, scenario: fn(&Lab)) {
    if let Ok(base) = std::env::var(CHILD) {
        return scenario(&Lab { base, owned: false });
    }
    if !is_root() {
        println!("SKIP {test}: needs root (network namespaces, raw sockets)");
        return;
    }
    let lab = match missing_tools().map_or_else(|| Lab::build(tag), Err) {
        Ok(lab) => lab,
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "CI runs as root, so {test} must run, but: {e}");
            println!("SKIP {test}: cannot build the lab: {e}");
            return;
        }
    };
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.ns("s")])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, &lab.base)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{stdout}");
    assert!(out.status.success(), "{test}, run in the lab's source namespace, failed:\n{stdout}\n{stderr}");
}

fn missing_tools() -> Option<String> {
    let missing: Vec<&str> = [("ip", "iproute2"), ("nft", "nftables")]
        .into_iter()
        .filter(|(tool, _)| !Command::new(tool).arg("-V").output().is_ok_and(|o| o.status.success()))
        .map(|(_, package)| package)
        .collect();
    (!missing.is_empty()).then(|| format!("needs {}", missing.join(" and ")))
}
