//! Fault location end to end: real faults in a lab of network namespaces, and what
//! `edgewatch incidents` and `edgewatch check nagios` make of them.
//!
//! The fleet: 2 data centers (`VA`, `Tx`) × 2 hosts × 2 containers, each container a
//! namespace of its own on the lab router (container n is `198.18.<n>.2`, see
//! `lab/mod.rs`); which host and data center a container is on is only what the CMDB
//! inventory says. Every container publishes every other one (ICMP edges): 56 edges.
//! `edgewatch serve` runs in the router, one `edgewatch agent` per container with a 1 s
//! interval (5 echoes 100 ms apart, 300 ms timeout) and `--allow 198.18.0.0/15`, the
//! default hysteresis (K = 2 failed cycles make `down`, M = 2 good ones `up`). The check
//! and `incidents` run with `[check] diagnosis_max_age = "0s"`, so they diagnose afresh.
//!
//! Each fault is a set of nftables rules in the router's forward chain (a table of the
//! test's own), added, then flushed (the repair):
//!
//! - a container isolated: its echo requests (and TCP SYNs) dropped, replies to others'
//!   probes pass → `node-isolated`, the container;
//! - a container unreachable: echo requests (and SYNs) to it dropped → `node-unreachable`;
//! - a host down: everything from and to its containers, between them too → `host`;
//! - a host's uplink cut: everything between its containers and the rest → `host`;
//! - two hosts cut apart, in two data centers and in one: everything between their
//!   containers → `host-pair` `X<->Y` (names sorted);
//! - the link between the data centers cut → `dc-link` `Tx<->VA` (sorted).
//!
//! Which edges a fault breaks is computed from the rules and the topology (an edge is
//! broken when its request or its reply is dropped), never written down by hand. For each
//! fault the test polls until `incidents` shows exactly one incident, of the fault's kind
//! and culprit, covering exactly the broken edges, and the check is `EDGEWATCH CRITICAL`
//! naming it (exit 2) — within K + 2 intervals and a little slack of applying the rules —
//! then flushes them and wants `EDGEWATCH OK` (exit 0) within M + 2 intervals and slack.
//! Between faults it waits until every edge is `up` and no edge's flap percentage is high
//! enough for the next fault to make it flap (a flapping edge is not broken, which would
//! blur the next diagnosis). Every fault runs even when an earlier one failed; the test
//! fails at the end with all that went wrong. It prints how long each took.
//!
//! `each_fault_is_diagnosed_from_the_edge_states_alone` feeds the same faults' broken
//! edges straight to the diagnosis (no namespaces, no root): a wrong answer there is the
//! diagnosis's, not the lab's timing.
//!
//! The soak (`make soak`, `#[ignore]`d otherwise): the same lab with 2 % random loss on
//! every packet the router forwards, for `SOAK_MINUTES` (default 10) minutes, the check
//! run every few seconds must stay OK throughout; then one edge flaps (its echo requests
//! dropped every other cycle until it is flagged, then two cycles in four) and the check
//! must say WARNING at most, listing the edge as flapping.
//!
//! Root only, with iproute2 and nftables (skips with a printed reason otherwise, except
//! as root on CI, where that fails).

mod common;
mod lab;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use graph_store::diagnosis::{diagnose, DiagnosisConfig, EdgeFact};
use graph_store::probe::HealthRow;
use graph_store::testing::{edge_events, TestDb};
use graph_store::vocab::HealthState;
use lab::{Lab, LAB_NET, ROUTER_IP};
use probers::health::HealthConfig;

/// The agents' (and the server's) interval. A cycle of 5 echoes 100 ms apart with a
/// 300 ms timeout takes at most 0.7 s of it.
const INTERVAL: Duration = Duration::from_secs(1);
const INTERVAL_ARG: &str = "1s";
const PROBE_ARGS: [&str; 6] = ["--packets", "5", "--packet-interval", "100ms", "--timeout", "300ms"];
/// What the deadlines allow beyond whole intervals: starting the two commands, a late
/// result delivery on a busy machine.
const SLACK: Duration = Duration::from_secs(2);
/// How long a diagnosis that is late is still watched for, to tell "late" from "wrong".
const GRACE: Duration = Duration::from_secs(20);
const SERVER_PORT: u16 = 8440;
/// Data centers and their hosts, in the order the containers are numbered.
const DCS: [(&str, [&str; 2]); 2] = [("VA", ["h1", "h2"]), ("Tx", ["h3", "h4"])];
const CONTAINERS_PER_HOST: usize = 2;
/// The test's table in the router: faults, random loss and the flapping link each in a
/// chain of its own, so that each can be flushed alone.
const NFT_TABLE: &str = "table inet ewfault {
    chain forward { type filter hook forward priority 0; policy accept; jump fault; jump loss; jump flap; }
    chain fault { }
    chain loss { }
    chain flap { }
}
";

/// One container: its names from the CMDB and its lab namespace's number.
#[derive(Debug, Clone)]
struct Container {
    name: String,
    host: String,
    dc: String,
    /// 1-based: the lab's namespace `hosts[n - 1]`, address `198.18.<n>.2`.
    n: usize,
}

impl Container {
    fn ip(&self) -> String {
        Lab::host_ip(self.n)
    }

    fn net(&self) -> String {
        Lab::host_net(self.n)
    }
}

/// The lab's fleet; containers are referred to by their index in it.
struct Fleet {
    containers: Vec<Container>,
}

impl Fleet {
    fn new() -> Fleet {
        let mut containers = Vec::new();
        for (dc, hosts) in DCS {
            for host in hosts {
                for _ in 0..CONTAINERS_PER_HOST {
                    let n = containers.len() + 1;
                    containers.push(Container { name: format!("c{n}.{host}"), host: host.into(), dc: dc.into(), n });
                }
            }
        }
        Fleet { containers }
    }

    fn on_host(&self, host: &str) -> Vec<usize> {
        (0..self.containers.len()).filter(|&i| self.containers[i].host == host).collect()
    }

    fn in_dc(&self, dc: &str) -> Vec<usize> {
        (0..self.containers.len()).filter(|&i| self.containers[i].dc == dc).collect()
    }

    /// Every edge (consumer, destination): each container uses every other one.
    fn edges(&self) -> Vec<(usize, usize)> {
        let n = self.containers.len();
        (0..n).flat_map(|s| (0..n).filter(move |&d| d != s).map(move |d| (s, d))).collect()
    }

    /// An edge as `incidents` names it: consumer and destination address.
    fn edge_ref(&self, (s, d): (usize, usize)) -> (String, String) {
        (self.containers[s].name.clone(), self.containers[d].ip())
    }

    /// The CMDB: the inventory (JSON) and the published links, written to `dir`.
    fn write_cmdb(&self, dir: &std::path::Path) -> (String, String) {
        let containers: Vec<serde_json::Value> = self
            .containers
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name, "host": c.host, "dc": c.dc, "role": "app",
                    "ips": [c.ip()], "services": [], "serving": true,
                })
            })
            .collect();
        let inventory = dir.join("inventory.json");
        std::fs::write(&inventory, serde_json::json!({ "containers": containers, "services": [] }).to_string())
            .unwrap();
        let mut links = String::from("# every container uses every other one\n");
        for c in &self.containers {
            let others: Vec<String> = self.containers.iter().filter(|o| o.name != c.name).map(Container::ip).collect();
            links.push_str(&format!("{} {}\n", c.name, others.join(" ")));
        }
        let links_file = dir.join("links.txt");
        std::fs::write(&links_file, links).unwrap();
        (common::path_str(&inventory).to_string(), common::path_str(&links_file).to_string())
    }
}

/// Which containers a rule's side matches.
#[derive(Debug, Clone)]
enum Side {
    Any,
    In(Vec<usize>),
    NotIn(Vec<usize>),
}

impl Side {
    fn has(&self, c: usize) -> bool {
        match self {
            Side::Any => true,
            Side::In(set) => set.contains(&c),
            Side::NotIn(set) => !set.contains(&c),
        }
    }

    /// The nftables match, `field` being `saddr` or `daddr`.
    fn nft(&self, fleet: &Fleet, field: &str) -> String {
        let set = |set: &[usize]| set.iter().map(|&c| fleet.containers[c].net()).collect::<Vec<_>>().join(", ");
        match self {
            Side::Any => String::new(),
            Side::In(s) => format!("ip {field} {{ {} }} ", set(s)),
            Side::NotIn(s) => format!("ip {field} != {{ {} }} ", set(s)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Dropped {
    /// Only what opens a probe: ICMP echo requests and TCP SYNs (replies pass).
    Requests,
    /// Every packet.
    All,
}

/// Packets from `from` to `to` that the router drops.
#[derive(Debug, Clone)]
struct Rule {
    from: Side,
    to: Side,
    what: Dropped,
}

/// A fault, and the incident it should make.
struct Fault {
    name: String,
    rules: Vec<Rule>,
    kind: &'static str,
    culprit: String,
}

impl Fault {
    /// Is the edge broken: its request or its reply dropped?
    fn breaks(&self, (s, d): (usize, usize)) -> bool {
        let request = self.rules.iter().any(|r| r.from.has(s) && r.to.has(d));
        let reply = self.rules.iter().any(|r| r.what == Dropped::All && r.from.has(d) && r.to.has(s));
        request || reply
    }

    /// The edges it breaks, as `incidents` names them.
    fn broken(&self, fleet: &Fleet) -> BTreeSet<(String, String)> {
        fleet.edges().into_iter().filter(|e| self.breaks(*e)).map(|e| fleet.edge_ref(e)).collect()
    }

    /// The rules for the `fault` chain.
    fn nft(&self, fleet: &Fleet) -> String {
        let mut script = String::new();
        for r in &self.rules {
            let m = format!("{}{}", r.from.nft(fleet, "saddr"), r.to.nft(fleet, "daddr"));
            match r.what {
                Dropped::Requests => {
                    script.push_str(&format!("add rule inet ewfault fault {m}icmp type echo-request drop\n"));
                    script.push_str(&format!("add rule inet ewfault fault {m}tcp flags & (syn | ack) == syn drop\n"));
                }
                Dropped::All => script.push_str(&format!("add rule inet ewfault fault {m}drop\n")),
            }
        }
        script
    }
}

/// `a<->b`, the smaller name first, as the diagnosis names pairs.
fn pair(a: &str, b: &str) -> String {
    if a <= b {
        format!("{a}<->{b}")
    } else {
        format!("{b}<->{a}")
    }
}

/// Both ways between `a` and `b`, every packet.
fn cut(a: Vec<usize>, b: Vec<usize>) -> Vec<Rule> {
    vec![
        Rule { from: Side::In(a.clone()), to: Side::In(b.clone()), what: Dropped::All },
        Rule { from: Side::In(b), to: Side::In(a), what: Dropped::All },
    ]
}

/// The faults, in the order the lab applies them.
fn faults(fleet: &Fleet) -> Vec<Fault> {
    let isolated = &fleet.containers[0];
    let unreachable = &fleet.containers[5];
    let (down, uplink) = ("h2", "h3");
    let (far, near) = (("h4", "h1"), ("h2", "h1"));
    let (dc_a, dc_b) = (DCS[0].0, DCS[1].0);
    let dc_of = |host: &str| fleet.containers[fleet.on_host(host)[0]].dc.clone();
    assert_ne!(dc_of(far.0), dc_of(far.1), "{far:?} should be in two data centers");
    assert_eq!(dc_of(near.0), dc_of(near.1), "{near:?} should be in one data center");
    vec![
        Fault {
            name: format!("container {} isolated", isolated.name),
            rules: vec![Rule { from: Side::In(vec![0]), to: Side::Any, what: Dropped::Requests }],
            kind: "node-isolated",
            culprit: isolated.name.clone(),
        },
        Fault {
            name: format!("container {} unreachable", unreachable.name),
            rules: vec![Rule { from: Side::Any, to: Side::In(vec![5]), what: Dropped::Requests }],
            kind: "node-unreachable",
            culprit: unreachable.name.clone(),
        },
        Fault {
            name: format!("host {down} down"),
            rules: vec![
                Rule { from: Side::In(fleet.on_host(down)), to: Side::Any, what: Dropped::All },
                Rule { from: Side::Any, to: Side::In(fleet.on_host(down)), what: Dropped::All },
            ],
            kind: "host",
            culprit: down.into(),
        },
        Fault {
            name: format!("host {uplink}'s uplink cut"),
            rules: vec![
                Rule {
                    from: Side::In(fleet.on_host(uplink)),
                    to: Side::NotIn(fleet.on_host(uplink)),
                    what: Dropped::All,
                },
                Rule {
                    from: Side::NotIn(fleet.on_host(uplink)),
                    to: Side::In(fleet.on_host(uplink)),
                    what: Dropped::All,
                },
            ],
            kind: "host",
            culprit: uplink.into(),
        },
        Fault {
            name: format!("hosts {} and {} cut apart (two data centers)", far.0, far.1),
            rules: cut(fleet.on_host(far.0), fleet.on_host(far.1)),
            kind: "host-pair",
            culprit: pair(far.0, far.1),
        },
        Fault {
            name: format!("hosts {} and {} cut apart (one data center)", near.0, near.1),
            rules: cut(fleet.on_host(near.0), fleet.on_host(near.1)),
            kind: "host-pair",
            culprit: pair(near.0, near.1),
        },
        Fault {
            name: format!("data centers {dc_a} and {dc_b} cut apart"),
            rules: cut(fleet.in_dc(dc_a), fleet.in_dc(dc_b)),
            kind: "dc-link",
            culprit: pair(dc_a, dc_b),
        },
    ]
}

/// One incident as `incidents --format json` shows it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    kind: String,
    culprit: String,
    edges: BTreeSet<(String, String)>,
}

fn describe(seen: &[Seen]) -> String {
    if seen.is_empty() {
        return "no incident".into();
    }
    seen.iter().map(|i| format!("{} {} ({} edges)", i.kind, i.culprit, i.edges.len())).collect::<Vec<_>>().join(", ")
}

/// `Ok` when `seen` is exactly the fault's one incident with exactly its broken edges;
/// else what differs.
fn verdict(fault: &Fault, fleet: &Fleet, seen: &[Seen]) -> Result<(), String> {
    let want = fault.broken(fleet);
    let Some(mine) = seen.iter().find(|i| i.kind == fault.kind && i.culprit == fault.culprit) else {
        return Err(format!("no {} {} incident; seen {}", fault.kind, fault.culprit, describe(seen)));
    };
    let mut wrong = Vec::new();
    let missing: Vec<&(String, String)> = want.difference(&mine.edges).collect();
    let extra: Vec<&(String, String)> = mine.edges.difference(&want).collect();
    if !missing.is_empty() {
        wrong.push(format!("{} of the {} broken edges missing: {missing:?}", missing.len(), want.len()));
    }
    if !extra.is_empty() {
        wrong.push(format!("{} edges the fault does not break: {extra:?}", extra.len()));
    }
    if seen.len() > 1 {
        wrong.push(format!("other incidents beside it: {}", describe(seen)));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("{} {}: {}", fault.kind, fault.culprit, wrong.join("; ")))
    }
}

#[test]
fn each_fault_is_diagnosed_from_the_edge_states_alone() {
    let fleet = Fleet::new();
    let mut wrong = Vec::new();
    for fault in faults(&fleet) {
        let facts: Vec<EdgeFact> = fleet
            .edges()
            .into_iter()
            .map(|e| {
                let (s, d) = (&fleet.containers[e.0], &fleet.containers[e.1]);
                EdgeFact {
                    src: s.name.as_str().into(),
                    src_host: s.host.as_str().into(),
                    src_dc: s.dc.as_str().into(),
                    src_role: Some("app".into()),
                    dst_ip: d.ip().into(),
                    dst: Some(d.name.as_str().into()),
                    dst_host: Some(d.host.as_str().into()),
                    dst_dc: Some(d.dc.as_str().into()),
                    services: std::sync::Arc::new([]),
                    state: if fault.breaks(e) { HealthState::Down } else { HealthState::Up },
                    flapping: false,
                    since: DateTime::UNIX_EPOCH,
                }
            })
            .collect();
        let seen: Vec<Seen> = diagnose(&facts, &DiagnosisConfig::default())
            .into_iter()
            .map(|i| Seen {
                kind: i.kind.as_str().into(),
                culprit: i.culprit,
                edges: i.edges.into_iter().map(|e| (e.src, e.dst_ip)).collect(),
            })
            .collect();
        match verdict(&fault, &fleet, &seen) {
            Ok(()) => eprintln!("{}: {}", fault.name, describe(&seen)),
            Err(why) => wrong.push(format!("{}: {why}", fault.name)),
        }
    }
    assert!(wrong.is_empty(), "diagnosed wrong:\n{}", wrong.join("\n"));
}

/// What one run of `edgewatch check nagios` said.
#[derive(Debug, Clone)]
struct Check {
    code: i32,
    text: String,
}

impl Check {
    fn first_line(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }

    /// `OK`, `WARNING`, `CRITICAL`, `UNKNOWN` (or what else the line says).
    fn state(&self) -> &str {
        self.first_line().split_whitespace().nth(1).unwrap_or("(nothing)")
    }

    fn is_ok(&self) -> bool {
        self.code == 0 && self.first_line().starts_with("EDGEWATCH OK - ")
    }

    /// CRITICAL (exit 2) naming the fault's incident in its first line.
    fn names(&self, fault: &Fault, edges: usize) -> bool {
        let line = self.first_line();
        self.code == 2
            && line.starts_with("EDGEWATCH CRITICAL - ")
            && line.contains(&format!("{} {} ({edges} edges)", fault.kind, fault.culprit))
    }
}

/// One lab edge.
#[derive(Debug, Clone, Copy)]
struct LabEdge {
    id: i64,
    src: usize,
    dst: usize,
}

/// The running lab: the fleet's containers in namespaces, the server and agents, the
/// test's database.
struct Net {
    fleet: Fleet,
    db: TestDb,
    lab: Lab,
    config: PathBuf,
    edges: Vec<LabEdge>,
    health: HealthConfig,
}

impl Net {
    /// Builds the lab, imports the CMDB, starts the server and the agents, and waits until
    /// every edge is `up`.
    async fn start() -> Net {
        let started = Instant::now();
        let fleet = Fleet::new();
        let db = TestDb::new().await;
        let mut lab = Lab::new(fleet.containers.len());
        let (inventory, links) = fleet.write_cmdb(lab.procs.dir());
        lab::edgewatch_ok(&db.url, &["cmdb", "import", &inventory, &links]);
        let config = lab.procs.dir().join("edgewatch.toml");
        std::fs::write(&config, "[check]\ndiagnosis_max_age = \"0s\"\n").unwrap();
        lab.nft(NFT_TABLE);

        let router = lab.router.clone();
        let listen = format!("{ROUTER_IP}:{SERVER_PORT}");
        // The lab's own network, off loopback: plain HTTP needs saying so.
        let serve =
            ["--database-url", &db.url, "serve", "--listen", &listen, "--interval", INTERVAL_ARG, "--insecure-http"];
        lab.spawn_edgewatch(&router, "serve", &serve);
        lab.procs.wait_for_line("serve", "listening on", Duration::from_secs(60));
        let server = format!("http://{listen}");
        for c in &fleet.containers {
            let out = lab::edgewatch_ok(&db.url, &["agent-token", "create", &c.name]);
            let token = out.split_whitespace().last().unwrap_or_else(|| panic!("no token for {}", c.name)).to_string();
            let ns = lab.hosts[c.n - 1].clone();
            let args = ["agent", "--server", &server, "--name", &c.name, "--token", &token, "--interval", INTERVAL_ARG];
            let allow = ["--allow", LAB_NET, "--insecure-http"];
            lab.spawn_edgewatch(&ns, &format!("agent-{}", c.name), &[&args[..], &PROBE_ARGS[..], &allow[..]].concat());
        }

        let mut edges = Vec::new();
        for (src, c) in fleet.containers.iter().enumerate() {
            for due in graph_store::probe::targets_of(&db.pool, &c.name).await.unwrap() {
                let ip = due.dst_ip.to_string();
                let dst = fleet.containers.iter().position(|d| d.ip() == ip);
                let dst = dst.unwrap_or_else(|| panic!("{} has an edge to {ip}, not in the lab", c.name));
                edges.push(LabEdge { id: due.edge_id, src, dst });
            }
        }
        assert_eq!(edges.len(), fleet.edges().len(), "the CMDB's edges: {edges:?}");
        let net = Net { fleet, db, lab, config, edges, health: HealthConfig::default() };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let health = net.health().await;
            if net.edges.iter().all(|e| health.get(&e.id).is_some_and(|h| h.state == HealthState::Up)) {
                break;
            }
            assert!(Instant::now() < deadline, "not every edge up within a minute: {}", net.states(&health));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!(
            "lab of {} containers, {} edges up after {:?}",
            net.fleet.containers.len(),
            net.edges.len(),
            started.elapsed()
        );
        net
    }

    fn name(&self, e: &LabEdge) -> String {
        format!("{} -> {}", self.fleet.containers[e.src].name, self.fleet.containers[e.dst].name)
    }

    /// Every lab edge's health row, by edge id.
    async fn health(&self) -> BTreeMap<i64, HealthRow> {
        let ids: Vec<i64> = self.edges.iter().map(|e| e.id).collect();
        // The only reader of whole health rows takes them FOR UPDATE: for a moment, and
        // in edge order like the server's writers, so it never deadlocks with them.
        let mut tx = self.db.pool.begin().await.unwrap();
        let rows = graph_store::probe::lock_health(&mut tx, &ids).await.unwrap();
        tx.rollback().await.unwrap();
        rows.into_iter().map(|r| (r.edge_id, r)).collect()
    }

    /// How many edges are in each state (flapping counted apart).
    fn states(&self, health: &BTreeMap<i64, HealthRow>) -> String {
        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        for e in &self.edges {
            let state = health.get(&e.id).map_or("missing".to_string(), |h| {
                if h.flapping {
                    format!("{} (flapping)", h.state)
                } else {
                    h.state.to_string()
                }
            });
            *count.entry(state).or_default() += 1;
        }
        format!("{count:?}")
    }

    /// The rows of edges not `up`, or flapping, or above `flap_pct`, one per line.
    fn unusual(&self, health: &BTreeMap<i64, HealthRow>, flap_pct: f32) -> String {
        self.edges
            .iter()
            .filter_map(|e| {
                let h = health.get(&e.id)?;
                (h.state != HealthState::Up || h.flapping || h.flap_pct > flap_pct).then(|| {
                    format!(
                        "  {}: {}{}, flap {:.0}%, last cycles {}",
                        self.name(e),
                        h.state,
                        if h.flapping { " flapping" } else { "" },
                        h.flap_pct + 0.0, // never "-0"
                        h.recent_states
                    )
                })
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn edgewatch(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = lab::edgewatch_command();
        cmd.arg("--database-url").arg(&self.db.url).arg("--config").arg(&self.config).args(args);
        cmd.output().unwrap()
    }

    fn check(&self) -> Check {
        let out = self.edgewatch(&["check", "nagios"]);
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.stderr.is_empty() {
            text.push_str(&format!("(stderr) {}", String::from_utf8_lossy(&out.stderr)));
        }
        Check { code: out.status.code().unwrap_or(-1), text }
    }

    fn incidents(&self) -> Vec<Seen> {
        let out = self.edgewatch(&["incidents", "--format", "json"]);
        assert!(out.status.success(), "edgewatch incidents failed: {}", String::from_utf8_lossy(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json.as_array()
            .unwrap_or_else(|| panic!("incidents: not a JSON array: {json}"))
            .iter()
            .map(|i| Seen {
                kind: i["kind"].as_str().unwrap().into(),
                culprit: i["culprit"].as_str().unwrap().into(),
                edges: i["edges"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| (e["src"].as_str().unwrap().into(), e["dst_ip"].as_str().unwrap().into()))
                    .collect(),
            })
            .collect()
    }

    /// The flap percentage below which one more fault (at most four verdict changes per
    /// edge: ok → degraded → failed at the start, back at the repair, each weighted at most
    /// 1.25 of the window's changes) cannot make an edge flap.
    fn flap_guard(&self) -> f32 {
        let most = 4.0 * 1.25 * 100.0 / f64::from(self.health.flap_window - 1);
        (self.health.flap_high_pct - most) as f32
    }

    /// Waits until the check is OK, every edge `up` and below the flap guard.
    async fn settle(&self) -> Duration {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(90);
        let guard = self.flap_guard();
        loop {
            let health = self.health().await;
            let calm = self.edges.iter().all(|e| {
                health.get(&e.id).is_some_and(|h| h.state == HealthState::Up && !h.flapping && h.flap_pct < guard)
            });
            if calm {
                let check = self.check();
                if check.is_ok() {
                    return started.elapsed();
                }
                assert!(Instant::now() < deadline, "the check is not OK in a calm lab:\n{}", check.text);
            }
            assert!(
                Instant::now() < deadline,
                "the lab did not calm down (every edge up, flap < {guard:.0}%) within 90 s: {}\n{}",
                self.states(&health),
                self.unusual(&health, guard)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// How one fault went.
struct Outcome {
    name: String,
    settle: Duration,
    /// Until `incidents` showed exactly the fault's incident.
    incident: Option<Duration>,
    /// Until the check was CRITICAL naming it.
    critical: Option<Duration>,
    /// From the repair until the check was OK.
    ok: Option<Duration>,
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("never".into(), |d| format!("{:.1} s", d.as_secs_f64()))
}

#[tokio::test]
async fn faults_are_located_and_the_check_names_them() {
    if lab::skip_unless_lab() {
        return;
    }
    let started = Instant::now();
    let links_before = lab::root_links();
    let mut net = Net::start().await;
    let (k, m) = (net.health.k_down, net.health.m_up);
    let detect_within = INTERVAL * (k + 2) + SLACK;
    let recover_within = INTERVAL * (m + 2) + SLACK;
    let mut outcomes = Vec::new();
    let mut wrong = Vec::new();

    for fault in faults(&net.fleet) {
        let broken = fault.broken(&net.fleet).len();
        let settle = net.settle().await;
        let applied = Instant::now();
        net.lab.nft(&fault.nft(&net.fleet));
        let (mut incident, mut critical) = (None, None);
        let (mut last_seen, mut last_check) = (Vec::new(), None);
        while applied.elapsed() < detect_within + GRACE && critical.is_none() {
            last_seen = net.incidents();
            if verdict(&fault, &net.fleet, &last_seen).is_ok() {
                incident.get_or_insert(applied.elapsed());
                let check = net.check();
                if check.names(&fault, broken) {
                    critical = Some(applied.elapsed());
                }
                last_check = Some(check);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match (incident, critical) {
            (Some(i), Some(c)) if c <= detect_within => eprintln!(
                "{}: {} {} ({broken} edges) after {:.1} s, the check CRITICAL naming it after {:.1} s",
                fault.name,
                fault.kind,
                fault.culprit,
                i.as_secs_f64(),
                c.as_secs_f64()
            ),
            (Some(_), Some(c)) => wrong.push(format!(
                "{}: the check named {} {} only after {:.1} s, more than K + 2 intervals and slack ({:?})",
                fault.name,
                fault.kind,
                fault.culprit,
                c.as_secs_f64(),
                detect_within
            )),
            (Some(_), None) => wrong.push(format!(
                "{}: incidents right, but the check never CRITICAL naming {} {} ({broken} edges); it said:\n{}",
                fault.name,
                fault.kind,
                fault.culprit,
                last_check.map_or(String::new(), |c| format!("(exit {}) {}", c.code, c.text))
            )),
            (None, _) => {
                let edges = net.unusual(&net.health().await, 100.0);
                let check = net.check();
                wrong.push(format!(
                    "{}: not diagnosed within {:?}: {}\nthe edges not up:\n{edges}\nthe check (exit {}):\n{}",
                    fault.name,
                    detect_within + GRACE,
                    verdict(&fault, &net.fleet, &last_seen).unwrap_err(),
                    check.code,
                    check.text
                ))
            }
        }

        net.lab.nft("flush chain inet ewfault fault\n");
        let repaired = Instant::now();
        let mut last = net.check();
        while !last.is_ok() && repaired.elapsed() < recover_within + GRACE {
            tokio::time::sleep(Duration::from_millis(100)).await;
            last = net.check();
        }
        let ok = last.is_ok().then(|| repaired.elapsed());
        match ok {
            Some(t) if t <= recover_within => {
                eprintln!("{}: repaired, the check OK after {:.1} s", fault.name, t.as_secs_f64())
            }
            Some(t) => wrong.push(format!(
                "{}: the check OK only {:.1} s after the repair, more than M + 2 intervals and slack \
                 ({recover_within:?})",
                fault.name,
                t.as_secs_f64()
            )),
            None => wrong.push(format!(
                "{}: the check not OK {:?} after the repair (exit {}):\n{}",
                fault.name,
                recover_within + GRACE,
                last.code,
                last.text
            )),
        }
        outcomes.push(Outcome { name: fault.name.clone(), settle, incident, critical, ok });
    }

    eprintln!(
        "\nseconds from applying a fault to the right incident and to the check CRITICAL naming it (at most {:.0}), \
         from the repair to the check OK (at most {:.0}); \"calm\": waiting before the fault for every edge up, \
         none near flapping",
        detect_within.as_secs_f64(),
        recover_within.as_secs_f64()
    );
    eprintln!("{:<48} {:>8} {:>9} {:>9} {:>9}", "fault", "calm", "incident", "CRITICAL", "OK again");
    for o in &outcomes {
        eprintln!(
            "{:<48} {:>8} {:>9} {:>9} {:>9}",
            o.name,
            secs(Some(o.settle)),
            secs(o.incident),
            secs(o.critical),
            secs(o.ok)
        );
    }
    for c in &net.fleet.containers {
        assert!(net.lab.procs.is_running(&format!("agent-{}", c.name)), "agent {} exited", c.name);
    }
    assert!(net.lab.procs.is_running("serve"), "serve exited");
    assert!(wrong.is_empty(), "{} of {} faults went wrong:\n{}", wrong.len(), outcomes.len(), wrong.join("\n\n"));

    let Net { lab, .. } = net;
    let (prefix, pids) = (lab.prefix.clone(), lab.procs.pids());
    drop(lab);
    lab::assert_removed(&prefix, &pids, &links_before);
    eprintln!("fault lab done in {:?}", started.elapsed());
}

/// The flapping edge's rule in the router, set or cleared.
struct Flap<'a> {
    net: &'a Net,
    rule: String,
    blocked: bool,
    toggles: usize,
}

impl Flap<'_> {
    fn set(&mut self, blocked: bool) {
        if blocked != self.blocked {
            self.net.lab.nft(if blocked { &self.rule } else { "flush chain inet ewfault flap\n" });
            self.blocked = blocked;
            self.toggles += 1;
        }
    }
}

/// How many checks said what (by state), and the first notable answers in full.
#[derive(Default)]
struct Tally {
    states: BTreeMap<String, usize>,
    notable: Vec<String>,
    notable_count: usize,
}

impl Tally {
    fn add(&mut self, at: Duration, check: &Check, note: bool) {
        *self.states.entry(check.state().to_string()).or_default() += 1;
        if note {
            self.notable_count += 1;
            if self.notable.len() < 3 {
                self.notable.push(format!("after {:.0} s (exit {}):\n{}", at.as_secs_f64(), check.code, check.text));
            }
        }
    }

    fn total(&self) -> usize {
        self.states.values().sum()
    }
}

#[tokio::test]
#[ignore = "takes SOAK_MINUTES (default 10) minutes; `make soak` runs it"]
async fn soak_random_loss_never_alerts_and_a_flapping_link_only_warns() {
    if lab::skip_unless_lab() {
        return;
    }
    let minutes: f64 = match std::env::var("SOAK_MINUTES") {
        Ok(m) => m.parse().unwrap_or_else(|_| panic!("SOAK_MINUTES={m:?} is not a number of minutes")),
        Err(_) => 10.0,
    };
    let links_before = lab::root_links();
    let net = Net::start().await;
    let mut findings = Vec::new();

    // 1. 2 % of every forwarded packet lost, for the soak's minutes: always OK.
    let events_before = edge_events(&net.db.pool).await.len();
    net.lab.nft("add rule inet ewfault loss numgen random mod 100 < 2 drop\n");
    let soak = Instant::now();
    let length = Duration::from_secs_f64(minutes * 60.0);
    let mut tally = Tally::default();
    let mut max_flap: BTreeMap<i64, f32> = BTreeMap::new();
    while soak.elapsed() < length {
        let check = net.check();
        let health = net.health().await;
        for (id, h) in &health {
            let max = max_flap.entry(*id).or_default();
            *max = max.max(h.flap_pct);
        }
        if !check.is_ok() {
            let detail = format!("{}\n edges then:\n{}", check.text, net.unusual(&health, 100.0));
            tally.add(soak.elapsed(), &Check { code: check.code, text: detail }, true);
        } else {
            tally.add(soak.elapsed(), &check, false);
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let events = edge_events(&net.db.pool).await;
    let mut changes: BTreeMap<String, usize> = BTreeMap::new();
    let mut flagged: BTreeSet<i64> = BTreeSet::new();
    for (id, from, to) in &events[events_before..] {
        *changes.entry(format!("{from}->{to}")).or_default() += 1;
        if to == "flapping" {
            flagged.insert(*id);
        }
    }
    let health = net.health().await;
    let cycles: Vec<&str> = health.values().map(|h| h.recent_states.as_str()).collect();
    let degraded_cycles = cycles.iter().map(|s| s.matches('d').count()).sum::<usize>();
    let all_cycles = cycles.iter().map(|s| s.len()).sum::<usize>();
    let mut flap_pcts: Vec<f32> = max_flap.values().copied().collect();
    flap_pcts.sort_by(f32::total_cmp);
    eprintln!(
        "soak: {:.1} min of 2 % loss, {} checks: {:?}; edge events {changes:?}; edges now {}; \
         {degraded_cycles} of the last {all_cycles} cycles degraded; highest flap % per edge: median {:.0}, max {:.0}",
        minutes,
        tally.total(),
        tally.states,
        net.states(&health),
        flap_pcts.get(flap_pcts.len() / 2).copied().unwrap_or_default(),
        flap_pcts.last().copied().unwrap_or_default()
    );
    if !tally.notable.is_empty() {
        findings.push(format!(
            "under 2 % random loss the check left OK in {} of {} runs ({:?}); {} of the {} edges were flagged \
             flapping at some time; the first answers not OK:\n{}",
            tally.notable_count,
            tally.total(),
            tally.states,
            flagged.len(),
            net.edges.len(),
            tally.notable.join("\n")
        ));
    }

    // 2. One edge flaps: its echo requests dropped every other cycle until it is flagged
    //    (never two failed cycles in a row, so it never goes down first), then two cycles
    //    in four (down and up again, while flagged). The check: WARNING at most, with the
    //    edge on its flapping line.
    let (a, b) = (2, 6);
    let edge = *net.edges.iter().find(|e| e.src == a && e.dst == b).unwrap();
    let (ca, cb) = (&net.fleet.containers[a], &net.fleet.containers[b]);
    let flapping_line = format!("{} -> {}", ca.name, cb.ip());
    let rule =
        format!("add rule inet ewfault flap ip saddr {} ip daddr {} icmp type echo-request drop\n", ca.net(), cb.net());
    let mut flap = Flap { net: &net, rule, blocked: false, toggles: 0 };
    let mut tally = Tally::default();
    let mut listed = 0;
    let phase = Instant::now();
    let since: DateTime<Utc> = Utc::now();
    let mut last = -1;
    let mut flagged_after = None;
    let mut states_seen: Vec<HealthState> = Vec::new();
    let mut after_flagged: i64 = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while after_flagged < 20 {
        let n = graph_store::probe::result_counts(&net.db.pool, since)
            .await
            .unwrap()
            .into_iter()
            .find(|(id, _)| *id == edge.id)
            .map_or(0, |(_, n)| n);
        if n != last {
            last = n;
            let health = net.health().await;
            let h = &health[&edge.id];
            if states_seen.last() != Some(&h.state) {
                states_seen.push(h.state);
            }
            if h.flapping && flagged_after.is_none() {
                flagged_after = Some(n);
            }
            match flagged_after {
                None => flap.set(n % 2 == 0),
                Some(at) => {
                    after_flagged = n - at;
                    flap.set(after_flagged % 4 < 2);
                }
            }
            // The check right after the rule changed, in the gap before the next cycle.
            let check = net.check();
            listed += usize::from(
                check.code == 1
                    && check.text.lines().any(|l| l.starts_with("flapping (") && l.contains(&flapping_line)),
            );
            tally.add(phase.elapsed(), &check, check.code > 1);
            assert!(
                flagged_after.is_some() || n < 40,
                "{flapping_line} not flagged flapping after {n} alternating cycles: {}",
                net.unusual(&health, 100.0)
            );
        }
        assert!(Instant::now() < deadline, "the flapping edge's cycles stalled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    flap.set(false);
    let stopped = Instant::now();
    let mut calm = None;
    while stopped.elapsed() < Duration::from_secs(90) {
        let health = net.health().await;
        if health[&edge.id].state == HealthState::Up && !health[&edge.id].flapping {
            calm = Some(stopped.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let end = net.check();
    eprintln!(
        "flapping {flapping_line}: flagged after {flagged_after:?} alternating cycles, then 2 in 4 cycles \
         dropped for 20 ({} rule changes); its states {states_seen:?}; checks {:?}, {listed} WARNING with it \
         listed as flapping; up and no longer flapping {} after the drops stopped; the check then: {}",
        flap.toggles,
        tally.states,
        calm.map_or("not within 90 s".into(), |d| format!("{:.0} s", d.as_secs_f64())),
        end.first_line()
    );
    if !tally.notable.is_empty() {
        findings
            .push(format!("while {flapping_line} flapped the check went above WARNING:\n{}", tally.notable.join("\n")));
    }
    if listed == 0 {
        findings.push(format!("while {flapping_line} flapped no WARNING listed it as flapping: {:?}", tally.states));
    }
    assert!(findings.is_empty(), "{}", findings.join("\n\n"));

    let Net { lab, .. } = net;
    let (prefix, pids) = (lab.prefix.clone(), lab.procs.pids());
    drop(lab);
    lab::assert_removed(&prefix, &pids, &links_before);
}
