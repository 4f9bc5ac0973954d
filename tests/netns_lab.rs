//! Probing end to end in a lab of network namespaces: real agents on three test hosts,
//! real faults on the router between them, and the health the server makes of it.
//!
//! Three host namespaces (containers c1.h1, c2.h2, c3.h3 at 198.18.{1,2,3}.2) hang off a
//! router namespace (see `lab/mod.rs`); every container publishes the other two, so the
//! CMDB has 6 edges, probed by ICMP. `edgewatch serve` runs in the router (on 198.18.0.1)
//! against the test's database, one `edgewatch agent` per host with a 1.5 s interval and
//! `--allow 198.18.0.0/15`. Faults are nftables rules in a table of the test's own in the
//! router's namespace:
//!
//! - all traffic between c1 and c2 dropped: c1→c2 and c2→c1 go `down` within K+1 cycles
//!   while the other four stay `up`; the rule removed, they are `up` within M+1 cycles;
//! - 30 % of c1's echo requests to c3 dropped at random (`numgen random mod 100 < 30`; the
//!   kernel here has no netem): c1→c3 turns `degraded` and is never `down` over 15 cycles;
//! - c2's echo requests to c3 dropped every other cycle: c2→c3 gets an event to
//!   `flapping`; then dropped three cycles in every six (which without flap detection
//!   makes a down and an up event every six cycles), its state still follows but no
//!   event is written; the drops stopped, flapping ends with one event.
//!
//! "Within N cycles" is checked by counting the edge's results made after the fault, not
//! by a clock. Every namespace, veth and process is removed afterwards, also when the
//! test fails (the second test shows that). Needs root and iproute2 and nftables
//! (skips with a printed reason otherwise); takes about 2 minutes.

mod common;
mod lab;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use graph_store::query::ListOptions;
use graph_store::testing::{edge_events, TestDb};
use graph_store::PgPool;
use lab::{Lab, LAB_NET, ROUTER_IP};
use probers::health::HealthConfig;

/// The agents' interval. A cycle of 5 echoes 200 ms apart with a 300 ms timeout takes
/// up to 1.1 s; the flapping part changes the fault in the rest of the interval, so that
/// each drop covers whole cycles.
const INTERVAL: &str = "1500ms";
const NODES: [&str; 3] = ["c1.h1", "c2.h2", "c3.h3"];
const SERVER_PORT: u16 = 8440;
/// The test's table in the router: one chain per kind of fault, so each can be set and
/// cleared on its own.
const NFT_TABLE: &str = "table inet ewlab {
    chain forward { type filter hook forward priority 0; policy accept; jump cut; jump loss; jump flap; }
    chain cut { }
    chain loss { }
    chain flap { }
}
";
const CUT_C1_C2: &str = "add rule inet ewlab cut ip saddr 198.18.1.0/24 ip daddr 198.18.2.0/24 drop
add rule inet ewlab cut ip saddr 198.18.2.0/24 ip daddr 198.18.1.0/24 drop
";
const LOSS_C1_C3: &str =
    "add rule inet ewlab loss ip saddr 198.18.1.2 ip daddr 198.18.3.2 icmp type echo-request numgen random mod 100 < 30 drop\n";
const BLOCK_C2_C3: &str =
    "add rule inet ewlab flap ip saddr 198.18.2.2 ip daddr 198.18.3.2 icmp type echo-request drop\n";

fn skip() -> bool {
    match lab::lab_unavailable() {
        Some(why) => {
            eprintln!("SKIP: {why}");
            true
        }
        None => false,
    }
}

/// One edge of the lab, named `c<from>→c<to>` by host numbers.
#[derive(Debug, Clone)]
struct Edge {
    id: i64,
    name: String,
    src: String,
    dst_ip: String,
}

/// What one look at the store saw.
#[derive(Debug)]
struct Look {
    /// Each edge's results made since the phase started.
    results: BTreeMap<i64, i64>,
    states: BTreeMap<i64, String>,
    /// Every edge event so far: (edge, from, to).
    events: Vec<(i64, String, String)>,
}

impl Look {
    fn results(&self, edge: &Edge) -> i64 {
        self.results.get(&edge.id).copied().unwrap_or(0)
    }

    fn state(&self, edge: &Edge) -> &str {
        self.states.get(&edge.id).map(String::as_str).unwrap_or("missing")
    }

    /// Events of `edge` after the first `from` events (of all edges).
    fn events_of(&self, edge: &Edge, from: usize) -> Vec<(String, String)> {
        self.events[from..].iter().filter(|e| e.0 == edge.id).map(|e| (e.1.clone(), e.2.clone())).collect()
    }
}

/// The lab's six edges, and reading their health back from the store.
struct Fleet {
    pool: PgPool,
    edges: Vec<Edge>,
}

impl Fleet {
    /// Waits until the server has health rows for all six edges.
    async fn load(pool: &PgPool) -> Fleet {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut edges = Vec::new();
            for (i, node) in NODES.iter().enumerate() {
                for due in graph_store::probe::targets_of(pool, node).await.unwrap() {
                    let to = (1..=NODES.len()).find(|to| Lab::host_ip(*to) == due.dst_ip.to_string());
                    let to = to.unwrap_or_else(|| panic!("{node} has an edge to {}, not in the lab", due.dst_ip));
                    edges.push(Edge {
                        id: due.edge_id,
                        name: format!("c{}→c{to}", i + 1),
                        src: node.to_string(),
                        dst_ip: due.dst_ip.to_string(),
                    });
                }
            }
            if edges.len() == 6 {
                return Fleet { pool: pool.clone(), edges };
            }
            assert!(Instant::now() < deadline, "the lab's 6 edges did not all get health rows: {edges:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn edge(&self, from: usize, to: usize) -> Edge {
        let name = format!("c{from}→c{to}");
        self.edges.iter().find(|e| e.name == name).unwrap().clone()
    }

    fn others(&self, except: &[&Edge]) -> Vec<Edge> {
        self.edges.iter().filter(|e| except.iter().all(|x| x.id != e.id)).cloned().collect()
    }

    /// Results first, then states: a state read after a count of N results reflects at
    /// least those N (a result and the health it changes are written in one transaction).
    async fn look(&self, since: DateTime<Utc>) -> Look {
        let results = graph_store::probe::result_counts(&self.pool, since).await.unwrap().into_iter().collect();
        let views = graph_store::query::edges(&self.pool, ListOptions::default()).await.unwrap();
        let states = self
            .edges
            .iter()
            .filter_map(|e| {
                let view = views.iter().find(|v| v.src == e.src && v.dst_ip == e.dst_ip)?;
                Some((e.id, view.state.to_string()))
            })
            .collect();
        Look { results, states, events: edge_events(&self.pool).await }
    }

    fn describe(&self, look: &Look) -> String {
        self.edges
            .iter()
            .map(|e| format!("{} {} ({} results)", e.name, look.state(e), look.results(e)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Waits until every edge of `edges` is `want`, and fails if any of them has
    /// `max_cycles` results made since `since` while not yet `want` — or if any of
    /// `steady` is ever seen other than `up`. Returns the last look.
    async fn expect(
        &self,
        edges: &[&Edge],
        want: &str,
        since: DateTime<Utc>,
        max_cycles: i64,
        steady: &[Edge],
    ) -> Look {
        let deadline = Instant::now() + Duration::from_secs(10 + 3 * max_cycles as u64);
        loop {
            let look = self.look(since).await;
            for e in steady {
                assert_eq!(
                    look.state(e),
                    "up",
                    "{} left up while waiting for {want}: {}",
                    e.name,
                    self.describe(&look)
                );
            }
            if edges.iter().all(|e| look.state(e) == want) {
                return look;
            }
            for e in edges {
                assert!(
                    look.state(e) == want || look.results(e) < max_cycles,
                    "{} not {want} after {} cycles since the change: {}",
                    e.name,
                    look.results(e),
                    self.describe(&look)
                );
            }
            assert!(Instant::now() < deadline, "no {want} by the deadline (agents stalled?): {}", self.describe(&look));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The host number of a node named `cN.hN`.
fn position_host(node: &str) -> usize {
    NODES.iter().position(|n| *n == node).unwrap() + 1
}

fn write_cmdb(dir: &std::path::Path) -> (String, String) {
    let containers: Vec<serde_json::Value> = NODES
        .iter()
        .map(|node| {
            let i = position_host(node);
            serde_json::json!({
                "name": node, "host": format!("h{i}"), "dc": format!("Lab{i}"), "role": "app",
                "ips": [Lab::host_ip(i)], "services": [], "serving": true,
            })
        })
        .collect();
    let inventory = dir.join("inventory.json");
    std::fs::write(&inventory, serde_json::json!({ "containers": containers, "services": [] }).to_string()).unwrap();
    let mut links = String::from("# every container talks to the other two\n");
    for node in NODES {
        let others: Vec<String> =
            NODES.iter().filter(|n| **n != node).map(|n| Lab::host_ip(position_host(n))).collect();
        links.push_str(&format!("{node} {}\n", others.join(" ")));
    }
    let links_file = dir.join("links.txt");
    std::fs::write(&links_file, links).unwrap();
    (inventory.to_str().unwrap().to_string(), links_file.to_str().unwrap().to_string())
}

/// The token `agent-token create` printed (its last word).
fn create_token(db: &TestDb, node: &str) -> String {
    let out = common::ok(db, &["agent-token", "create", node]);
    out.split_whitespace().last().unwrap_or_else(|| panic!("agent-token create {node} printed nothing")).to_string()
}

#[tokio::test]
async fn agents_in_namespaces_see_cuts_loss_and_flapping() {
    if skip() {
        return;
    }
    let health = HealthConfig::default();
    let (k, m) = (health.k_down as i64, health.m_up as i64);
    let started = Instant::now();
    let links_before = lab::root_links();
    let db = TestDb::new().await;
    let mut lab = Lab::new(3);

    let (inventory, links) = write_cmdb(lab.procs.dir());
    common::ok(&db, &["cmdb", "import", &inventory, &links]);
    let tokens: Vec<String> = NODES.iter().map(|node| create_token(&db, node)).collect();
    lab.nft(NFT_TABLE);

    let router = lab.router.clone();
    let listen = format!("{ROUTER_IP}:{SERVER_PORT}");
    lab.spawn_edgewatch(
        &router,
        "serve",
        // The lab's own network, off loopback: plain HTTP needs saying so.
        &["--database-url", &db.url, "serve", "--listen", &listen, "--interval", INTERVAL, "--insecure-http"],
    );
    lab.procs.wait_for_line("serve", "listening on", Duration::from_secs(60));
    let server = format!("http://{listen}");
    for (i, node) in NODES.iter().enumerate() {
        let host = lab.hosts[i].clone();
        let args = ["agent", "--server", &server, "--name", node, "--token", &tokens[i], "--interval", INTERVAL];
        let probe = ["--packets", "5", "--timeout", "300ms", "--allow", LAB_NET, "--insecure-http"];
        lab.spawn_edgewatch(&host, &format!("agent-{node}"), &[&args[..], &probe[..]].concat());
    }

    let fleet = Fleet::load(&db.pool).await;
    let all: Vec<&Edge> = fleet.edges.iter().collect();
    fleet.expect(&all, "up", Utc::now(), 10, &[]).await;
    eprintln!("all 6 edges up after {:?}", started.elapsed());

    // 1. A cut link: down within K+1 cycles (the cycle under way may still get some
    //    answers), the other four stay up; repaired, up within M+1.
    let (c12, c21) = (fleet.edge(1, 2), fleet.edge(2, 1));
    let steady = fleet.others(&[&c12, &c21]);
    lab.nft(CUT_C1_C2);
    fleet.expect(&[&c12, &c21], "down", Utc::now(), k + 1, &steady).await;
    lab.nft("flush chain inet ewlab cut\n");
    fleet.expect(&[&c12, &c21], "up", Utc::now(), m + 1, &steady).await;
    eprintln!("cut and repair seen after {:?}", started.elapsed());

    // 2. 30 % random loss: degraded, never down, over 15 cycles. (Flapping between ok
    //    and degraded cycles is possible and allowed: the state is tracked all the same.)
    let c13 = fleet.edge(1, 3);
    let steady = fleet.others(&[&c13]);
    let events_before = fleet.look(Utc::now()).await.events.len();
    let since = Utc::now();
    lab.nft(LOSS_C1_C3);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut degraded_after = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let look = fleet.look(since).await;
        for e in &steady {
            assert_eq!(look.state(e), "up", "{} left up under c1→c3's loss: {}", e.name, fleet.describe(&look));
        }
        let state = look.state(&c13).to_string();
        assert_ne!(state, "down", "c1→c3 went down with 30% loss: {}", fleet.describe(&look));
        if state == "degraded" && degraded_after.is_none() {
            degraded_after = Some(look.results(&c13));
        }
        *seen.entry(state).or_default() += 1;
        if look.results(&c13) >= 15 {
            let events = look.events_of(&c13, events_before);
            assert!(events.iter().all(|(_, to)| to != "down"), "c1→c3 events under 30% loss: {events:?}");
            break;
        }
        assert!(
            degraded_after.is_some() || look.results(&c13) < 12,
            "c1→c3 not degraded after 12 cycles of 30% loss: {}",
            fleet.describe(&look)
        );
        assert!(Instant::now() < deadline, "15 cycles of c1→c3 took too long (agents stalled?)");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("30% loss: degraded after {degraded_after:?} cycles; states seen {seen:?}");
    lab.nft("flush chain inet ewlab loss\n");
    // Back to up (and, should the loss have made it flap, done flapping) before the
    // next fault, so that it does not blur what the next one shows.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let look = fleet.look(Utc::now()).await;
        let flapping = look.events.iter().rfind(|e| e.0 == c13.id).is_some_and(|e| e.2 == "flapping");
        if look.state(&c13) == "up" && !flapping {
            break;
        }
        assert!(Instant::now() < deadline, "c1→c3 did not recover from the loss: {}", fleet.describe(&look));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 3. Flapping, driven by c2→c3's own results so that each drop covers whole cycles.
    let c23 = fleet.edge(2, 3);
    let quiet = fleet.others(&[&c23]);
    let events_before = fleet.look(Utc::now()).await.events.len();
    let mut flap = Flap { lab: &lab, blocked: false };
    // 3a. Dropped every other cycle until the edge is flagged.
    let since = Utc::now();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = -1;
    let flagged_after = loop {
        let look = fleet.look(since).await;
        let n = look.results(&c23);
        if n != last {
            flap.set(n % 2 == 0);
            last = n;
        }
        let events = look.events_of(&c23, events_before);
        if events.iter().any(|(_, to)| to == "flapping") {
            break n;
        }
        assert!(n < 25, "c2→c3 not flapping after {n} alternating cycles; its events: {events:?}");
        assert!(Instant::now() < deadline, "c2→c3's cycles stalled: {}", fleet.describe(&look));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("c2→c3 flapping after {flagged_after} alternating cycles");
    // 3b. Three cycles dropped, three not, for 18 cycles: the state still follows (down
    //     and up again), but while flapping that makes no events.
    let since = Utc::now();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = -1;
    let mut states_seen: Vec<String> = Vec::new();
    loop {
        let look = fleet.look(since).await;
        let n = look.results(&c23);
        if n != last {
            flap.set((n / 3) % 2 == 0);
            last = n;
        }
        let state = look.state(&c23).to_string();
        if states_seen.last() != Some(&state) {
            states_seen.push(state);
        }
        if n >= 18 {
            break;
        }
        assert!(Instant::now() < deadline, "c2→c3's cycles stalled: {}", fleet.describe(&look));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        states_seen.iter().any(|s| s == "down") && states_seen.iter().any(|s| s == "up"),
        "c2→c3's state did not follow the drops while flapping: {states_seen:?}"
    );
    // 3c. No more drops: flapping ends with one event, and the edge is up again.
    flap.set(false);
    let since = Utc::now();
    let deadline = Instant::now() + Duration::from_secs(90);
    let look = loop {
        let look = fleet.look(since).await;
        let events = look.events_of(&c23, events_before);
        if events.iter().any(|(from, _)| from == "flapping") && look.state(&c23) == "up" {
            break look;
        }
        assert!(
            look.results(&c23) < 30,
            "c2→c3 still flapping (or not up) 30 cycles after the drops stopped: {events:?}"
        );
        assert!(Instant::now() < deadline, "c2→c3's cycles stalled: {}", fleet.describe(&look));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let events = look.events_of(&c23, events_before);
    let start = events.iter().position(|(_, to)| to == "flapping").unwrap();
    let stop = events.iter().position(|(from, _)| from == "flapping").unwrap();
    assert_eq!(stop, start + 1, "events of c2→c3 while flapping (states seen {states_seen:?}): {events:?}");
    for e in &quiet {
        let events = look.events_of(e, events_before);
        assert!(events.is_empty(), "{} changed while c2→c3 flapped: {events:?}", e.name);
    }
    eprintln!("c2→c3 states while flapping {states_seen:?}, its events {events:?}");

    // The CLI agrees: all six cmdb edges up again.
    let edges = common::json(&db, &["graph", "edges", "--format", "json"]);
    let states: Vec<(String, String)> = edges
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (format!("{} -> {}", e["src"], e["dst"]), e["state"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(states.len(), 6, "{states:?}");
    assert!(states.iter().all(|(_, s)| s == "up"), "{states:?}");
    for node in NODES {
        assert!(lab.procs.is_running(&format!("agent-{node}")), "agent {node} exited");
    }
    assert!(lab.procs.is_running("serve"), "serve exited");

    // Everything made is gone.
    let (prefix, pids) = (lab.prefix.clone(), lab.procs.pids());
    drop(lab);
    assert_clean(&prefix, &pids, &links_before);
    eprintln!("netns lab done in {:?}", started.elapsed());
}

/// The flap rule in the router, set or cleared.
struct Flap<'a> {
    lab: &'a Lab,
    blocked: bool,
}

impl Flap<'_> {
    fn set(&mut self, blocked: bool) {
        if blocked != self.blocked {
            self.lab.nft(if blocked { BLOCK_C2_C3 } else { "flush chain inet ewlab flap\n" });
            self.blocked = blocked;
        }
    }
}

fn assert_clean(prefix: &str, pids: &[u32], links_before: &[String]) {
    let left: Vec<String> = lab::netns_names().into_iter().filter(|n| n.starts_with(prefix)).collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    let alive: Vec<&u32> = pids.iter().filter(|p| lab::pid_alive(**p)).collect();
    assert!(alive.is_empty(), "processes left behind: {alive:?}");
    assert_eq!(lab::root_links(), links_before, "the root namespace's interfaces changed");
}

#[test]
fn the_lab_is_removed_even_when_a_test_fails() {
    if skip() {
        return;
    }
    let links_before = lab::root_links();
    let made = std::sync::Mutex::new((String::new(), Vec::new()));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut lab = Lab::new(2);
        let host = lab.hosts[0].clone();
        let sleeper = lab.command_in(&host, "sleep", &["300"]);
        let pid = lab.procs.spawn("sleeper", sleeper);
        *made.lock().unwrap() = (lab.prefix.clone(), vec![pid]);
        assert!(lab::netns_names().iter().filter(|n| n.starts_with(&lab.prefix)).count() == 3);
        panic!("a deliberate failure, to show the lab is removed anyway");
    }));
    assert!(outcome.is_err());
    let (prefix, pids) = made.into_inner().unwrap();
    assert!(!prefix.is_empty());
    assert_clean(&prefix, &pids, &links_before);
}
