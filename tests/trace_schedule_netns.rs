//! What is traced, end to end, through real routers: a cross-DC host pair of the graph is
//! traced on the `[trace]` schedule by a real `edgewatch probe` worker, and by a real
//! `edgewatch agent` talking to a real `edgewatch serve`, both in the source host's
//! namespace; the runs land in `trace_runs` with the routers' hops; an `ip route replace`
//! at the first router is one `changed` route event, at TTL 2, within 2 cycles.
//!
//! ```text
//!   S ──── R1 ──── R2 ──── D        S: host hs (DC A), container web.s, 198.18.201.1
//!           └───── R3 ─────┘        D: host hd (DC B), container search.d, 198.18.221.2
//! ```
//!
//! Link `n` is 198.18.n.0/24 (RFC 2544's range, only inside these namespaces), its nearer
//! side `.1`, its farther side `.2`: S–R1 201, R1–R2 211, R2–D 221, R1–R3 213, R3–D 223.
//! R1 sends D's network via R2 until the test switches it to R3 (`ip route replace`); D
//! answers for 198.18.221.2 on either link. Routers answer from the address a probe came
//! in on, without rate limits. Every namespace is this test's own (`ewsched-<pid>-…`) and
//! is removed afterwards, on failure too. Needs root and iproute2; skips saying why
//! otherwise. The database is reached over its unix socket, which no namespace hides.

mod lab;

use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use graph_store::paths::{self, EventFilter, PairInfo, Run};
use graph_store::testing::TestDb;
use graph_store::PgPool;
use lab::Procs;

const PREFIX: &str = "ewsched-";
const NODES: [&str; 5] = ["s", "r1", "r2", "r3", "d"];
/// (nearer, farther, n): veth `to-<farther>` / `from-<nearer>` on 198.18.n.0/24.
const LINKS: [(&str, &str, u8); 5] =
    [("s", "r1", 201), ("r1", "r2", 211), ("r2", "d", 221), ("r1", "r3", 213), ("r3", "d", 223)];
const SRC: &str = "198.18.201.1";
const DEST: &str = "198.18.221.2";
const DEST_NET: &str = "198.18.221.0/24";
const R1: &str = "198.18.201.2";
const R2: &str = "198.18.211.2";
const R3: &str = "198.18.213.2";
const ALLOW: &str = "198.18.0.0/15";
/// Traces every second (plus the run's own ~2 s), two runs on a new path make a change.
const CONFIG: &str = "[trace]\ninterval = \"1s\"\nmax_ttl = 8\nk_runs = 2\nvantage = \"lab\"\n\
                      [owners]\n\"198.18.201.0/24\" = \"ours\"\n\"198.18.211.0/24\" = \"transit-a\"\n\
                      \"198.18.213.0/24\" = \"transit-b\"\n\"198.18.221.0/24\" = \"cloud\"\n";

#[test]
fn a_worker_traces_the_cross_dc_pair_and_names_a_route_change() {
    let Some(lab) = Chain::build("w") else { return };
    let rt = runtime();
    let db = rt.block_on(TestDb::new());
    lab.load_graph(&db.url);
    let mut procs = Procs::new();
    let config = write_config(&procs);
    let args = ["probe", "--allow", ALLOW, "--interval", "1s", "--packets", "1", "--workers", "1"];
    procs.spawn("probe", lab.edgewatch_in("s", &db.url, &config, &args));
    procs.wait_for_line("probe", "tracing paths every 1s from lab", Duration::from_secs(20));

    let pair = rt.block_on(wait_for_pair(&db.pool));
    let runs = rt.block_on(wait_for_runs(&db.pool, pair.id, Utc::now(), 2));
    for run in &runs {
        assert_eq!(hops(run), [R1, R2, DEST], "the path through R1 and R2: {run:?}");
        assert!(run.reached, "{run:?}");
    }

    // R1 sends D's network via R3: one change at TTL 2, within 2 runs made after it.
    lab.ip("r1", &["route", "replace", DEST_NET, "via", R3]);
    let changed_at = Utc::now();
    let event = rt.block_on(wait_for_change(&db.pool, pair.id, changed_at));
    assert_eq!(
        (event.ttl, event.old_addrs.clone(), event.new_addrs.clone()),
        (Some(2), vec![R2.into()], vec![R3.into()])
    );
    assert_eq!(
        (event.src.as_str(), event.dst.as_str(), event.src_dc.as_str(), event.dst_dc.as_str()),
        ("hs", "hd", "A", "B")
    );
    let after = rt.block_on(paths::runs_between(&db.pool, pair.id, changed_at, Utc::now())).unwrap();
    assert!(after.len() <= 3, "the change took more than 2 cycles: {} runs since it", after.len());
    // One more cycle on the new path: still the one event.
    let later = rt.block_on(wait_for_runs(&db.pool, pair.id, Utc::now(), 1));
    assert_eq!(hops(&later[0]), [R1, R3, DEST]);
    let changes = rt.block_on(changed_events(&db.pool, pair.id));
    assert_eq!(changes.len(), 1, "exactly one route change: {changes:?}");

    // `route diff` across it (the two runs before, the runs after) shows exactly that.
    let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let width = format!("{}ms", (runs[1].at - runs[0].at).num_milliseconds() + 1);
    let (w1, w2) = (rfc(runs[0].at), rfc(later[0].at));
    let args = ["route", "diff", "web.s", "search.d", "--at", &w1, "--at", &w2, "--window", &width];
    let text = run(lab.edgewatch_in("s", &db.url, &config, &args).arg("--format").arg("table"));
    println!("{text}");
    assert!(
        text.contains(&format!("path changed: first different hop 2: {R2} (transit-a) → {R3} (transit-b)")),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&run(lab.edgewatch_in("s", &db.url, &config, &args).args(["--format", "json"]))).unwrap();
    let hops: Vec<&str> =
        json["comparisons"][0]["hops"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect();
    assert_eq!(hops, ["same", "changed", "same"], "{json}");

    // Restored: a second event, back from R3 to R2.
    lab.ip("r1", &["route", "replace", DEST_NET, "via", R2]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let back = loop {
        let changes = rt.block_on(changed_events(&db.pool, pair.id));
        if changes.len() >= 2 {
            assert_eq!(changes.len(), 2, "{changes:?}");
            break changes[0].clone();
        }
        assert!(Instant::now() < deadline, "no second route change within 60 s of restoring");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!((back.ttl, back.old_addrs, back.new_addrs), (Some(2), vec![R3.to_string()], vec![R2.to_string()]));
    println!("{}", run(&mut lab.edgewatch_in("s", &db.url, &config, &["route", "changes", "--kind", "changed"])));

    procs.interrupt("probe", Duration::from_secs(20));
    let log = procs.log("probe");
    assert!(log.contains("recorded") && !log.contains("not tracing"), "{log}");
}

#[test]
fn an_agent_traces_its_hosts_pair_through_serve() {
    let Some(lab) = Chain::build("a") else { return };
    let rt = runtime();
    let db = rt.block_on(TestDb::new());
    lab.load_graph(&db.url);
    let token = lab::edgewatch_ok(&db.url, &["agent-token", "create", "web.s"]).trim().to_string();
    let mut procs = Procs::new();
    let config = write_config(&procs);
    procs.spawn(
        "serve",
        lab.edgewatch_in("s", &db.url, &config, &["serve", "--listen", "127.0.0.1:0", "--interval", "1s"]),
    );
    let line = procs.wait_for_line("serve", "listening on http://", Duration::from_secs(20));
    let server = line.trim().trim_start_matches("listening on ").to_string();
    let agent = [
        "agent",
        "--server",
        &server,
        "--name",
        "web.s",
        "--token",
        &token,
        "--allow",
        ALLOW,
        "--interval",
        "1s",
        "--packets",
        "1",
    ];
    procs.spawn("agent", lab.edgewatch_in("s", &db.url, &config, &agent));

    let pair = rt.block_on(wait_for_pair(&db.pool));
    let runs = rt.block_on(wait_for_runs(&db.pool, pair.id, Utc::now(), 2));
    for run in &runs {
        assert_eq!(hops(run), [R1, R2, DEST], "the path through R1 and R2: {run:?}");
        assert!(run.reached, "{run:?}");
    }
    procs.interrupt("agent", Duration::from_secs(20));
    let log = procs.log("agent");
    let delivered = log.lines().find(|l| l.contains("paths traced")).unwrap_or_default();
    let n: u64 = delivered
        .split(" runs delivered")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(n >= 2, "the agent delivered the runs: {log}");
    procs.interrupt("serve", Duration::from_secs(20));
}

// ---- reading the store ----

async fn wait_for_pair(pool: &PgPool) -> PairInfo {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(p) = paths::find_pairs(pool, "hs", "hd").await.unwrap().into_iter().next() {
            assert_eq!((p.src_dc.as_str(), p.dst_dc.as_str(), p.dst_ip.as_str()), ("A", "B", DEST));
            return p;
        }
        assert!(Instant::now() < deadline, "no trace pair hs → hd was made from the graph");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The pair's runs made since `since`, once there are `n` of them.
async fn wait_for_runs(pool: &PgPool, pair: i64, since: DateTime<Utc>, n: usize) -> Vec<Run> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = paths::runs_between(pool, pair, since, Utc::now() + chrono::Duration::hours(1)).await.unwrap();
        if runs.len() >= n {
            return runs;
        }
        assert!(Instant::now() < deadline, "{} of {n} runs of pair {pair} within 60 s: {runs:?}", runs.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn changed_events(pool: &PgPool, pair: i64) -> Vec<paths::RouteEventView> {
    let filter = EventFilter { pair_id: Some(pair), kinds: vec!["changed".into()], ..EventFilter::default() };
    paths::events(pool, &filter).await.unwrap()
}

async fn wait_for_change(pool: &PgPool, pair: i64, since: DateTime<Utc>) -> paths::RouteEventView {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut changes = changed_events(pool, pair).await;
        if let Some(e) = changes.pop() {
            assert!(changes.is_empty(), "one change: {changes:?} and {e:?}");
            return e;
        }
        let runs = paths::runs_between(pool, pair, since, Utc::now()).await.unwrap();
        assert!(runs.len() <= 2, "no route change after {} runs made since the route changed: {runs:?}", runs.len());
        assert!(Instant::now() < deadline, "no route change within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A run's hops as the addresses answering at each TTL (one each, or `*`).
fn hops(run: &Run) -> Vec<String> {
    run.hops
        .iter()
        .map(|h| match h.addrs.as_slice() {
            [one] => one.to_string(),
            [] => "*".to_string(),
            many => many.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(","),
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn write_config(procs: &Procs) -> String {
    let path = procs.dir().join("edgewatch.toml");
    std::fs::write(&path, CONFIG).unwrap();
    path.to_str().unwrap().to_string()
}

// ---- the lab ----

/// The namespaces `<base>-<node>`, deleted (with their veths and processes) when dropped.
struct Chain {
    base: String,
}

impl Drop for Chain {
    fn drop(&mut self) {
        for node in NODES {
            let ns = self.ns(node);
            if let Ok(out) = Command::new("ip").args(["netns", "pids", &ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
    }
}

impl Chain {
    /// The lab of the module documentation, or `None` (said why) where it cannot be built.
    fn build(tag: &str) -> Option<Chain> {
        if let Some(why) = unavailable() {
            assert!(std::env::var_os("CI").is_none(), "CI runs as root, so this lab test must run, but: {why}");
            eprintln!("SKIP: {why}");
            return None;
        }
        sweep_leftovers();
        let lab = Chain { base: format!("{PREFIX}{}-{tag}", std::process::id()) };
        for node in NODES {
            run(Command::new("ip").args(["netns", "add", &lab.ns(node)]));
            lab.ip(node, &["link", "set", "lo", "up"]);
            lab.sysctl(node, &["net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"]);
        }
        for (near, far, n) in LINKS {
            let (out, back) = (format!("to-{far}"), format!("from-{near}"));
            lab.ip(near, &["link", "add", &out, "type", "veth", "peer", "name", &back, "netns", &lab.ns(far)]);
            for (node, dev, side) in [(near, &out, 1), (far, &back, 2)] {
                lab.ip(node, &["addr", "add", &format!("198.18.{n}.{side}/24"), "dev", dev]);
                lab.ip(node, &["link", "set", dev, "up"]);
            }
        }
        let routes = [
            ("s", "default", R1),
            ("r1", DEST_NET, R2),
            ("r2", "198.18.201.0/24", "198.18.211.1"),
            ("r3", "198.18.201.0/24", "198.18.213.1"),
            ("r3", DEST_NET, "198.18.223.2"),
            ("d", "default", "198.18.221.1"),
        ];
        for (node, dst, via) in routes {
            lab.ip(node, &["route", "replace", dst, "via", via]);
        }
        for node in ["r1", "r2", "r3", "d"] {
            lab.sysctl(
                node,
                &[
                    "net.ipv4.ip_forward=1",
                    "net.ipv4.icmp_errors_use_inbound_ifaddr=1",
                    "net.ipv4.icmp_ratelimit=0",
                    "net.ipv4.icmp_msgs_per_sec=100000",
                    "net.ipv4.icmp_msgs_burst=100000",
                ],
            );
        }
        // The first neighbour resolutions out of the way (fping, when installed), so no
        // first run shows them as loss; the hops are the same either way.
        let _ = Command::new("ip")
            .args(["netns", "exec", &lab.ns("s"), "fping", "-q", "-c", "2", "-p", "200", DEST])
            .output();
        Some(lab)
    }

    fn ns(&self, node: &str) -> String {
        format!("{}-{node}", self.base)
    }

    fn ip(&self, node: &str, args: &[&str]) -> String {
        run(Command::new("ip").args(["-n", &self.ns(node)]).args(args))
    }

    fn sysctl(&self, node: &str, settings: &[&str]) {
        run(Command::new("ip").args(["netns", "exec", &self.ns(node), "sysctl", "-qw"]).args(settings));
    }

    /// The CMDB of the module documentation: web.s on hs (DC A) uses search.d on hd (DC B).
    fn load_graph(&self, url: &str) {
        let dir = tempfile::tempdir().unwrap();
        let inventory = serde_json::json!({
            "containers": [
                {"name": "web.s", "host": "hs", "dc": "A", "role": "web", "ips": [SRC], "services": [], "serving": true},
                {"name": "search.d", "host": "hd", "dc": "B", "role": "search", "ips": [DEST], "services": [], "serving": true},
            ],
            "services": [],
        });
        let inv = dir.path().join("inventory.json");
        std::fs::write(&inv, inventory.to_string()).unwrap();
        let links = dir.path().join("links.txt");
        std::fs::write(&links, format!("web.s {DEST}\n")).unwrap();
        lab::edgewatch_ok(url, &["cmdb", "import", inv.to_str().unwrap(), links.to_str().unwrap()]);
    }

    /// `edgewatch --database-url URL --config FILE ARGS…` in `node`'s namespace.
    fn edgewatch_in(&self, node: &str, url: &str, config: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(node), lab::bin(), "--database-url", url, "--config", config]).args(args);
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|k| k == "DATABASE_URL" || k.starts_with("EDGEWATCH_")) {
                cmd.env_remove(key);
            }
        }
        cmd.env("EDGEWATCH_LOG", "info,sqlx=warn").env("NO_COLOR", "1");
        cmd
    }
}

fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root to create network namespaces and trace (raw sockets)".into());
    }
    if !Command::new("ip").arg("-V").output().is_ok_and(|o| o.status.success()) {
        return Some("iproute2 is not installed (`make test` installs it)".into());
    }
    None
}

/// Removes namespaces of earlier runs of this test whose process is gone.
fn sweep_leftovers() {
    let out = Command::new("ip").args(["netns", "list"]).output().map(|o| o.stdout).unwrap_or_default();
    for ns in String::from_utf8_lossy(&out).lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = ns.strip_prefix(PREFIX).and_then(|rest| rest.split('-').next()) else { continue };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn run(cmd: &mut Command) -> String {
    lab::run(cmd)
}
