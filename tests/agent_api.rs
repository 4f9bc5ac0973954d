//! The agent API over real HTTP: `edgewatch serve` on port 0 against a fresh database on
//! a real PostgreSQL, spoken to with an HTTP client and by real `edgewatch agent`
//! processes. Every probe target is in 127.0.0.0/8 (the sample fleet) and every agent's
//! allow-list is 127.0.0.0/8,::1/128.
//!
//! Covered: each token rule (401, 403, 404), bodies refused with what is wrong (400) or
//! for size (413), results recorded once and moving edge health, tokens stored only as
//! hashes, an agent process probing and reporting local figures (nginx rates, load), the
//! server going away (results made meanwhile arrive later) and PostgreSQL stopped for a
//! minute under a running server, agent and prober worker (no result lost, no restart).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{edgewatch, json, ok, sample};
use graph_store::testing::TestDb;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const AGENT_ALLOW: &str = "127.0.0.0/8,::1/128";

/// A fresh database holding the sample fleet: inventory, published links, DNS edges.
async fn fleet() -> TestDb {
    let db = TestDb::new().await;
    load_fleet(&db);
    db
}

fn load_fleet(db: &TestDb) {
    ok(db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
}

fn token(db: &TestDb, node: &str) -> String {
    ok(db, &["agent-token", "create", node]).trim().to_string()
}

/// A scratch directory others can traverse (the embedded cluster's owner, as root).
fn scratch() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A running `edgewatch` process; its stderr goes to a file, shown when something fails.
/// Killed if the test ends while it runs.
struct Proc {
    child: Child,
    what: String,
    log: PathBuf,
}

impl Proc {
    fn spawn(url: &str, args: &[&str], dir: &Path, stdout: Stdio) -> Proc {
        Proc::spawn_with(url, args, dir, stdout, &[])
    }

    /// [`Proc::spawn`] with more environment (over the defaults).
    fn spawn_with(url: &str, args: &[&str], dir: &Path, stdout: Stdio, env: &[(&str, &str)]) -> Proc {
        let what = args.iter().take(2).cloned().collect::<Vec<_>>().join(" ");
        let log = dir.join(format!("{}-{}.log", args[0], rand::random::<u32>()));
        let child = Command::new(env!("CARGO_BIN_EXE_edgewatch"))
            .env_remove("DATABASE_URL")
            .env("EDGEWATCH_LOG", "info,sqlx=warn")
            .env("NO_COLOR", "1")
            // The test's own spool directory (a spool outlives its agent).
            .env("EDGEWATCH_SPOOL", dir.join("spool"))
            .envs(env.iter().copied())
            .arg("--database-url")
            .arg(url)
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Proc { child, what, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Ctrl-C, as an operator would stop it.
    fn interrupt(&self) {
        let status = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -INT {}", self.what);
    }

    /// SIGTERM, as systemd stops it.
    fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM {}", self.what);
    }

    /// Waits for the process to end by itself; fails the test after `limit`.
    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < limit, "{} still runs after {limit:?}:\n{}", self.what, self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_ok(&mut self, limit: Duration) -> String {
        let status = self.wait(limit);
        let log = self.log();
        assert!(status.success(), "{} failed ({status}):\n{log}", self.what);
        log
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.alive() {
            self.kill();
        }
    }
}

/// `edgewatch serve`, with the address it printed.
struct Server {
    proc: Proc,
    base: String,
}

impl Server {
    fn start(url: &str, listen: &str, interval: &str, dir: &Path) -> Server {
        let mut proc = Proc::spawn(url, &["serve", "--listen", listen, "--interval", interval], dir, Stdio::piped());
        let stdout = proc.child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(120)).unwrap_or_else(|_| {
            panic!("serve printed no address:\n{}", proc.log());
        });
        let base = line.strip_prefix("listening on ").unwrap_or_else(|| panic!("first line {line:?}")).to_string();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        Server { proc, base }
    }

    fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    fn url(&self, node: &str, leaf: &str) -> String {
        format!("{}/api/v1/agents/{node}/{leaf}", self.base)
    }

    fn stop(mut self) {
        self.proc.interrupt();
        self.proc.wait_ok(Duration::from_secs(30));
    }
}

/// An HTTP answer: status, `WWW-Authenticate`, JSON body.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    www_authenticate: Option<String>,
    body: Value,
}

impl Answer {
    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_else(|| panic!("no error message: {self:?}"))
    }
}

async fn send(req: reqwest::RequestBuilder, auth: Option<&str>) -> Answer {
    let req = match auth {
        Some(value) => req.header("authorization", value),
        None => req,
    };
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let www_authenticate = resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer { status, www_authenticate, body }
}

async fn get_targets(server: &Server, node: &str, auth: Option<&str>) -> Answer {
    send(common::http().get(server.url(node, "targets")), auth).await
}

async fn post_results(server: &Server, node: &str, auth: Option<&str>, body: impl Into<reqwest::Body>) -> Answer {
    let req = common::http().post(server.url(node, "results")).header("content-type", "application/json").body(body);
    send(req, auth).await
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A failed cycle (3 connects, none answered) of `edge` at `at`.
fn failed(edge: i64, at: DateTime<Utc>) -> Value {
    json!({"edge_id": edge, "at": iso(at), "kind": "icmp", "outcome": {
        "sent": 3, "received": 0, "loss_pct": 100.0, "error": "timed out"}})
}

fn edge_ids(targets: &Answer) -> Vec<i64> {
    targets.body["targets"].as_array().unwrap().iter().map(|t| t["edge_id"].as_i64().unwrap()).collect()
}

fn states_of(db: &TestDb, node: &str) -> BTreeMap<String, String> {
    json(db, &["graph", "edges", "--format", "json"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["src"] == node)
        .map(|e| (e["dst_ip"].as_str().unwrap().to_string(), e["state"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_token_rule_over_http() {
    let db = fleet().await;
    let (mine, theirs) = (token(&db, "fe1.host101"), token(&db, "fe1.host103"));
    let dir = scratch();
    let server = Server::start(&db.url, "127.0.0.1:0", "120s", dir.path());
    let (mine_h, theirs_h) = (bearer(&mine), bearer(&theirs));

    for post in [false, true] {
        let call = |node: &'static str, auth: Option<String>| {
            let server = &server;
            async move {
                if post {
                    post_results(server, node, auth.as_deref(), r#"{"results": []}"#).await
                } else {
                    get_targets(server, node, auth.as_deref()).await
                }
            }
        };
        // No token at all: 401, saying how to send one.
        let a = call("fe1.host101", None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{a:?}");
        assert_eq!(a.www_authenticate.as_deref(), Some("Bearer"));
        assert!(a.error().contains("Authorization: Bearer"), "{a:?}");
        // Not a bearer token, an empty one, one nobody made: 401.
        for bad in ["Basic Zm9vOmJhcg==", "Bearer", "Bearer   ", "Bearer ewa_00000000"] {
            let a = call("fe1.host101", Some(bad.to_string())).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{bad}: {a:?}");
        }
        // Authentication comes first: an unknown node without a token is 401, not 404.
        assert_eq!(call("nosuch.host999", None).await.status, StatusCode::UNAUTHORIZED);
        // A good token for another node: 403, naming whose token it is.
        let a = call("fe1.host103", Some(mine_h.clone())).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{a:?}");
        assert!(a.error().contains("fe1.host101") && a.error().contains("only its own node"), "{a:?}");
        // A good token and a node the graph does not have: 404, naming it.
        let a = call("nosuch.host999", Some(mine_h.clone())).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{a:?}");
        assert!(a.error().contains("nosuch.host999"), "{a:?}");
        // Each token on its own node: 200.
        assert_eq!(call("fe1.host101", Some(mine_h.clone())).await.status, StatusCode::OK);
        assert_eq!(call("fe1.host103", Some(theirs_h.clone())).await.status, StatusCode::OK);
    }

    // The targets are the node's edges: TCP to the service port where the edge has a
    // service with one, else ICMP.
    let a = get_targets(&server, "fe1.host101", Some(&mine_h)).await;
    assert_eq!(a.body["node"], "fe1.host101");
    assert_eq!(a.body["interval_s"], 120);
    let targets: BTreeSet<(String, String)> = a.body["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert!(t["edge_id"].as_i64().unwrap() > 0, "{t}");
            assert_eq!(t["kind"] == "tcp", t["port"].is_u64(), "{t}");
            (t["ip"].as_str().unwrap().to_string(), t["kind"].as_str().unwrap().to_string())
        })
        .collect();
    let want: BTreeSet<(String, String)> = json(&db, &["graph", "edges", "--format", "json"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["src"] == "fe1.host101")
        .map(|e| {
            let kind = if e["services"].as_array().unwrap().is_empty() { "icmp" } else { "tcp" };
            (e["dst_ip"].as_str().unwrap().to_string(), kind.to_string())
        })
        .collect();
    assert_eq!(targets, want);
    assert!(want.contains(&("127.20.3.2".to_string(), "icmp".to_string())), "a published link: {want:?}");
    // DNS edges go to a service port: TCP.
    let be = token(&db, "be1.host101");
    let a = get_targets(&server, "be1.host101", Some(&bearer(&be))).await;
    let db1 = a.body["targets"].as_array().unwrap().iter().find(|t| t["ip"] == "127.20.1.4").cloned();
    assert_eq!(db1.map(|t| (t["kind"].clone(), t["port"].clone())), Some((json!("tcp"), json!(5432))), "{a:?}");

    // A revoked token is no token: at once for a server that has not seen it lately,
    // within the token cache's time (5 s) for one that has.
    ok(&db, &["agent-token", "revoke", "fe1.host101"]);
    let revoked = Instant::now();
    let a = loop {
        let a = get_targets(&server, "fe1.host101", Some(&mine_h)).await;
        if a.status != StatusCode::OK || revoked.elapsed() > Duration::from_secs(8) {
            break a;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{a:?}");
    assert!(revoked.elapsed() < Duration::from_secs(7), "a revoked token worked for {:?}", revoked.elapsed());
    assert!(a.error().contains("revoked"), "{a:?}");
    assert_eq!(get_targets(&server, "fe1.host103", Some(&theirs_h)).await.status, StatusCode::OK);
    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_are_refused_saying_what_is_wrong() {
    let db = fleet().await;
    let (mine, theirs) = (bearer(&token(&db, "fe1.host101")), bearer(&token(&db, "fe1.host103")));
    let dir = scratch();
    let server = Server::start(&db.url, "127.0.0.1:0", "120s", dir.path());
    let edge = edge_ids(&get_targets(&server, "fe1.host101", Some(&mine)).await)[0];
    let foreign = edge_ids(&get_targets(&server, "fe1.host103", Some(&theirs)).await)[0];
    let now = Utc::now();
    let with = |edit: fn(&mut Value)| {
        let mut item = failed(edge, now);
        edit(&mut item);
        json!({ "results": [item] }).to_string()
    };

    let bad_requests: Vec<(String, &str)> = vec![
        ("this is not json".into(), "not valid JSON"),
        (r#"{"results": ["#.into(), "not valid JSON"),
        ("[]".into(), "must be an object"),
        (r#"{"result": []}"#.into(), "unknown field `result`"),
        (with(|v| drop(v.as_object_mut().unwrap().remove("at"))), "results[0]: missing field `at`"),
        (with(|v| v["at"] = json!("yesterday")), "results[0].at"),
        (with(|v| v["kind"] = json!("udp")), "results[0].kind: unknown variant `udp`"),
        (with(|v| v["kind"] = json!("tcp")), "results[0].port: a tcp result needs its port"),
        (with(|v| v["outcome"]["received"] = json!(4)), "results[0].outcome.received: 4 is more than sent (3)"),
        (with(|v| v["outcome"]["rtt_avg_ms"] = json!(1.5)), "results[0].outcome.rtt_avg_ms: given, but nothing"),
        (with(|v| v["at"] = json!("2020-01-01T00:00:00Z")), "results that old are not accepted"),
        (with(|v| v["at"] = json!(iso(Utc::now() + chrono::Duration::hours(2)))), "in the future"),
        (
            json!({"results": [], "local": {"nginx": {"requests_per_s": 1, "errors_per_s": 0, "by_status": {"2xx": 1}}}})
                .to_string(),
            "local.nginx.by_status",
        ),
        (json!({"results": [], "local": {"load1": -1}}).to_string(), "local.load1"),
    ];
    for (body, want) in bad_requests {
        let a = post_results(&server, "fe1.host101", Some(&mine), body.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {a:?}");
        assert!(a.error().contains(want), "{body}:\n  got {:?}\n  want {want:?}", a.error());
    }
    let a = send(
        common::http().post(server.url("fe1.host101", "results")).header("content-type", "text/plain").body("{}"),
        Some(&mine),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("application/json"), "{a:?}");

    // Over 1 MiB: 413 (and without a token, still 401 first).
    let huge = format!(r#"{{"results": [], "local": {{"load1": 1{}}}}}"#, " ".repeat(1024 * 1024));
    let a = post_results(&server, "fe1.host101", Some(&mine), huge.clone()).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", a.status);
    assert!(a.error().contains("1048576 bytes"), "{a:?}");
    assert_eq!(post_results(&server, "fe1.host101", None, huge).await.status, StatusCode::UNAUTHORIZED);
    // More results than one request may carry: 413.
    let start = Utc::now() - chrono::Duration::hours(1);
    let many: Vec<Value> = (0..5001).map(|i| failed(edge, start + chrono::Duration::milliseconds(i))).collect();
    let a = post_results(&server, "fe1.host101", Some(&mine), json!({ "results": many }).to_string()).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{a:?}");
    assert!(a.error().contains("at most 5000"), "{a:?}");

    // Results about another node's edge: 403, naming the edge; nothing recorded.
    let body = json!({ "results": [failed(edge, now), failed(foreign, now)] }).to_string();
    let a = post_results(&server, "fe1.host101", Some(&mine), body).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{a:?}");
    assert!(a.error().contains(&format!("edge(s) {foreign} ")), "{a:?}");
    assert!(graph_store::agents::results_of(&db.pool, "agent:fe1.host101", start).await.unwrap().is_empty());
    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn results_are_recorded_once_and_move_edge_health() {
    let db = fleet().await;
    let mine = bearer(&token(&db, "fe1.host101"));
    let dir = scratch();
    let server = Server::start(&db.url, "127.0.0.1:0", "10s", dir.path());
    let edges = edge_ids(&get_targets(&server, "fe1.host101", Some(&mine)).await);
    let n = edges.len();
    assert!(n >= 4, "{edges:?}");
    assert!(states_of(&db, "fe1.host101").values().all(|s| s == "unknown"));

    // Three failed cycles, the last 12 s ago: past one interval (10 s), within two.
    let now = Utc::now();
    let cycles: Vec<DateTime<Utc>> = (0..3).map(|i| now - chrono::Duration::seconds(14 - i)).collect();
    let local = json!({"at": iso(cycles[0]), "load1": 0.25, "load5": 0.5, "load15": 1.0,
        "nginx": {"interval_s": 120.0, "requests_per_s": 2.0, "errors_per_s": 0.5,
                  "by_status": {"200": 1.5, "502": 0.5}}});
    for (i, at) in cycles.iter().enumerate() {
        let mut body = json!({ "results": edges.iter().map(|e| failed(*e, *at)).collect::<Vec<_>>() });
        if i == 0 {
            body["local"] = local.clone();
        }
        let a = post_results(&server, "fe1.host101", Some(&mine), body.to_string()).await;
        assert_eq!((a.status, a.body.clone()), (StatusCode::OK, json!({"accepted": n, "duplicates": 0})));
    }
    let states = states_of(&db, "fe1.host101");
    assert!(states.values().all(|s| s == "down"), "two failed cycles in a row make an edge down: {states:?}");
    assert!(states_of(&db, "fe1.host103").values().all(|s| s == "unknown"), "other nodes untouched");

    // The same cycle sent again (its answer was lost, say) is recognised, not counted twice.
    let again = json!({ "results": edges.iter().map(|e| failed(*e, cycles[2])).collect::<Vec<_>>(), "local": local });
    let a = post_results(&server, "fe1.host101", Some(&mine), again.to_string()).await;
    assert_eq!((a.status, a.body.clone()), (StatusCode::OK, json!({"accepted": n, "duplicates": n})));
    let recorded =
        graph_store::agents::results_of(&db.pool, "agent:fe1.host101", now - chrono::Duration::hours(1)).await.unwrap();
    let mut per_edge: BTreeMap<i64, usize> = BTreeMap::new();
    for (edge, _) in &recorded {
        *per_edge.entry(*edge).or_default() += 1;
    }
    assert_eq!(per_edge, edges.iter().map(|e| (*e, 3)).collect::<BTreeMap<_, _>>());

    // Prober workers leave the agent's edges alone: without the deferral the last result
    // (12 s old, interval 10 s) would make them due now.
    let claimed = graph_store::probe::claim_due(&db.pool, "test-worker", 1000, Duration::from_secs(30)).await.unwrap();
    let claimed: HashSet<i64> = claimed.iter().map(|d| d.edge_id).collect();
    assert!(edges.iter().all(|e| !claimed.contains(e)), "claimed {claimed:?}, agent's {edges:?}");

    // The local figures, once.
    let reports =
        graph_store::agents::reports_of(&db.pool, "fe1.host101", now - chrono::Duration::hours(1)).await.unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let r = &reports[0];
    assert_eq!((r.load1, r.load5, r.load15), (Some(0.25), Some(0.5), Some(1.0)));
    let nginx = r.nginx.as_ref().unwrap();
    assert_eq!((nginx.requests_per_s, nginx.errors_per_s, nginx.interval_s), (2.0, 0.5, Some(120.0)));
    assert_eq!(nginx.by_status, vec![("200".to_string(), 1.5), ("502".to_string(), 0.5)]);
    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_token_create_prints_the_token_once_and_stores_only_its_hash() {
    let db = fleet().await;
    let out = edgewatch(&db, &["agent-token", "create", "fe1.host101"]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let first = stdout.trim();
    assert!(first.starts_with("ewa_") && first.len() == 68, "{first}");
    let second = token(&db, "fe1.host101");
    assert_ne!(first, second);

    let rows = graph_store::agents::tokens_of(&db.pool, "fe1.host101").await.unwrap();
    let hashes: Vec<&str> = rows.iter().map(|r| r.token_hash.as_str()).collect();
    let sha = |t: &str| Sha256::digest(t.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(hashes, vec![sha(first), sha(&second)]);
    assert!(rows.iter().all(|r| r.revoked_at.is_none()));

    let out = edgewatch(&db, &["agent-token", "create", "nosuch.host999"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown node \"nosuch.host999\""), "{stderr}");

    ok(&db, &["agent-token", "revoke", "fe1.host101"]);
    let rows = graph_store::agents::tokens_of(&db.pool, "fe1.host101").await.unwrap();
    assert!(rows.iter().all(|r| r.revoked_at.is_some()), "{rows:?}");
}

/// Appends combined-format lines to `path` every 50 ms until `stop`: three 200s and a
/// 502 in every four.
fn write_access_log(
    path: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
        let mut n = 0u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let status = if n % 4 == 3 { 502 } else { 200 };
            writeln!(
                file,
                "127.0.0.1 - - [22/Nov/2026:01:43:53 +0000] \"GET /api HTTP/1.1\" {status} 12 \"-\" \"test\""
            )
            .unwrap();
            n += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        n
    })
}

fn spawn_agent(url: &str, server: &str, node: &str, token: &str, extra: &[&str], dir: &Path) -> Proc {
    let mut args = vec!["agent", "--server", server, "--name", node, "--token", token, "--allow", AGENT_ALLOW];
    args.extend_from_slice(&["--interval", "1s", "--packets", "2", "--timeout", "200ms"]);
    args.extend_from_slice(extra);
    Proc::spawn(url, &args, dir, Stdio::null())
}

/// `N cycles, N results made, N delivered, N refused by the server, N dropped, N undelivered`
fn agent_summary(log: &str) -> BTreeMap<String, u64> {
    let line =
        log.lines().rev().find(|l| l.contains(" results made, ")).unwrap_or_else(|| panic!("no summary:\n{log}"));
    line.split(", ")
        .map(|part| {
            let (n, what) = part.split_once(' ').unwrap();
            (what.to_string(), n.parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_probes_its_targets_and_reports_local_figures() {
    let db = fleet().await;
    let node = "be1.host101"; // DNS edges to db1, auth, cache: TCP to ports nothing listens on
    let tok = token(&db, node);
    let dir = scratch();
    let server = Server::start(&db.url, "127.0.0.1:0", "1s", dir.path());
    let log_path = dir.path().join("access.log");
    std::fs::write(&log_path, "").unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = write_access_log(log_path.clone(), stop.clone());
    let start = Utc::now();

    let mut agent = spawn_agent(
        &db.url,
        &server.base,
        node,
        &tok,
        &["--run-for", "5s", "--nginx-access-log", log_path.to_str().unwrap()],
        dir.path(),
    );
    let log = agent.wait_ok(Duration::from_secs(60));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().unwrap();
    let summary = agent_summary(&log);
    assert!(summary["cycles"] >= 4, "{log}");
    assert_eq!(summary["results made"], summary["delivered"], "{log}");
    assert_eq!((summary["dropped"], summary["undelivered"], summary["refused by the server"]), (0, 0, 0), "{log}");

    let results = graph_store::agents::results_of(&db.pool, &format!("agent:{node}"), start).await.unwrap();
    assert_eq!(results.len() as u64, summary["results made"], "every result made is recorded, once");
    let targets = get_targets(&server, node, Some(&bearer(&tok))).await;
    let mine: BTreeSet<i64> = edge_ids(&targets).into_iter().collect();
    let mut per_edge: BTreeMap<i64, usize> = BTreeMap::new();
    for (edge, _) in &results {
        *per_edge.entry(*edge).or_default() += 1;
    }
    assert_eq!(per_edge.keys().cloned().collect::<BTreeSet<_>>(), mine, "every target, and only those");
    assert!(per_edge.values().all(|n| *n >= 4), "{per_edge:?}");
    let states = states_of(&db, node);
    assert!(states.values().all(|s| s == "down"), "nothing listens on the service ports: {states:?}");

    let reports = graph_store::agents::reports_of(&db.pool, node, start).await.unwrap();
    assert_eq!(reports.len() as u64, summary["cycles"], "{reports:?}");
    assert!(reports.iter().all(|r| r.load1.is_some() && r.load15.is_some()), "{reports:?}");
    let total: f64 = reports
        .iter()
        .filter_map(|r| r.nginx.as_ref())
        .map(|n| f64::from(n.requests_per_s) * f64::from(n.interval_s.unwrap_or(0.0)))
        .sum();
    assert!(total > 0.0 && total <= written as f64 + 0.5, "{total} requests counted, {written} written");
    let errors: f64 = reports
        .iter()
        .filter_map(|r| r.nginx.as_ref())
        .map(|n| f64::from(n.errors_per_s) * f64::from(n.interval_s.unwrap_or(0.0)))
        .sum();
    assert!(errors > 0.0 && (errors / total - 0.25).abs() < 0.1, "{errors} errors of {total}");
    assert!(
        reports.iter().filter_map(|r| r.nginx.as_ref()).any(|n| n.by_status.iter().any(|(code, _)| code == "502")),
        "{reports:?}"
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_reads_its_sites_own_log_format() {
    let db = fleet().await;
    let node = "be1.host101";
    let tok = token(&db, node);
    let dir = scratch();
    let server = Server::start(&db.url, "127.0.0.1:0", "1s", dir.path());
    let log_path = dir.path().join("access.log");
    std::fs::write(&log_path, "").unwrap();
    // The directive as nginx.conf has it: another order than combined, extra fields.
    let conf = dir.path().join("log_format.conf");
    std::fs::write(
        &conf,
        "log_format timed escape=json '$request_time $host \"$request\" '\n    \
         '[$time_local] $status $remote_addr $body_bytes_sent \"$http_user_agent\" $upstream_addr';\n",
    )
    .unwrap();
    let start = Utc::now();
    let format = format!("@{}", conf.display());
    let extra = ["--run-for", "7s", "--nginx-access-log", log_path.to_str().unwrap(), "--nginx-log-format", &format];
    let mut agent = spawn_agent(&db.url, &server.base, node, &tok, &extra, dir.path());
    // Once the agent has reported, it follows the log (from its end): then the lines.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while graph_store::agents::reports_of(&db.pool, node, start).await.unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no report from the agent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let statuses = [200u16, 200, 504, 200, 404, 200, 502, 200, 301, 200, 200, 504];
    let mut lines: Vec<String> = statuses
        .iter()
        .enumerate()
        .map(|(i, status)| {
            format!(
                "0.{i:03} api.example.com \"GET /q?n={i} HTTP/1.1\" [05/Dec/2026:16:00:0{} +0000] {status} \
                 10.0.0.{i} {} \"curl/8.5 \\\"x\\\"\" 10.9.0.1:8080",
                i % 10,
                100 + i
            )
        })
        .collect();
    // Two lines in combined: not this site's format, counted as malformed, not guessed at.
    lines.insert(3, "127.0.0.1 - - [05/Dec/2026:16:00:00 +0000] \"GET / HTTP/1.1\" 500 1 \"-\" \"x\"".into());
    lines.push("127.0.0.1 - - [05/Dec/2026:16:00:00 +0000] \"GET / HTTP/1.1\" 500 1 \"-\" \"x\"".into());
    let mut file = std::fs::OpenOptions::new().append(true).open(&log_path).unwrap();
    for chunk in lines.chunks(5) {
        file.write_all((chunk.join("\n") + "\n").as_bytes()).unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let log = agent.wait_ok(Duration::from_secs(60));
    assert!(log.contains("not in the log format are not counted"), "{log}");

    // Independently: the status field of each line written in the site's format.
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for line in lines.iter().filter(|l| l.starts_with("0.")) {
        let status = line.split("] ").nth(1).unwrap().split(' ').next().unwrap();
        *want.entry(status.to_string()).or_default() += 1;
    }
    let mut got: BTreeMap<String, f64> = BTreeMap::new();
    for report in graph_store::agents::reports_of(&db.pool, node, start).await.unwrap() {
        let Some(n) = report.nginx else { continue };
        for (code, rate) in &n.by_status {
            *got.entry(code.clone()).or_default() += f64::from(*rate) * f64::from(n.interval_s.unwrap_or(0.0));
        }
    }
    let got: BTreeMap<String, u64> = got.into_iter().map(|(code, n)| (code, n.round() as u64)).collect();
    assert_eq!(got, want, "the agent's counts by status, from its rates");
    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_agent_and_probe_stop_cleanly_on_sigterm_with_their_work_flushed() {
    let db = fleet().await;
    let node = "be1.host101";
    let tok = token(&db, node);
    let dir = scratch();
    let mut server = Server::start(&db.url, "127.0.0.1:0", "1s", dir.path());
    let start = Utc::now();
    let mut agent = spawn_agent(&db.url, &server.base, node, &tok, &[], dir.path());
    let probe_args = ["probe", "--allow", AGENT_ALLOW, "--interval", "1s", "--packets", "1", "--timeout", "200ms"];
    let mut probe = Proc::spawn(
        &db.url,
        &[&probe_args[..], &["--workers", "2", "--name", "w"]].concat(),
        dir.path(),
        Stdio::null(),
    );
    // Both at work: the agent's results and the workers' are in the store.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let agent_results = graph_store::agents::results_of(&db.pool, &format!("agent:{node}"), start).await.unwrap();
        let worker_results = graph_store::testing::probe_results(&db.pool).await;
        if agent_results.len() >= 2 && worker_results.iter().any(|(_, _, prober)| prober.starts_with('w')) {
            break;
        }
        assert!(Instant::now() < deadline, "no results yet:\n{}\n{}", agent.log(), probe.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    for (proc, what) in [(&mut agent, "agent"), (&mut probe, "probe")] {
        let t = Instant::now();
        proc.terminate();
        let status = proc.wait(Duration::from_secs(10));
        assert!(status.success(), "{what} exited with {status} on SIGTERM:\n{}", proc.log());
        eprintln!("{what} stopped {:?} after SIGTERM", t.elapsed());
    }
    // The agent delivered every result it made before it went.
    let summary = agent_summary(&agent.log());
    assert_eq!(summary["results made"], summary["delivered"], "{}", agent.log());
    assert_eq!(summary["undelivered"], 0, "{}", agent.log());
    let stored = graph_store::agents::results_of(&db.pool, &format!("agent:{node}"), start).await.unwrap();
    assert_eq!(stored.len() as u64, summary["results made"], "every result made is stored");
    // The workers gave their leases back.
    let leased = json(
        &db,
        &[
            "sql",
            "--format",
            "json",
            "SELECT count(*) AS n FROM edge_health WHERE lease_owner LIKE 'w%' AND lease_until > now()",
        ],
    );
    assert_eq!(leased[0]["n"], 0, "leases held after the workers stopped:\n{}", probe.log());

    let t = Instant::now();
    server.proc.terminate();
    let status = server.proc.wait(Duration::from_secs(10));
    assert!(status.success(), "serve exited with {status} on SIGTERM:\n{}", server.proc.log());
    eprintln!("serve stopped {:?} after SIGTERM", t.elapsed());
}

/// Results of `prober` per edge with `at` strictly inside (from, to).
async fn results_between(
    db: &TestDb,
    prober: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> (BTreeMap<i64, usize>, Vec<(i64, DateTime<Utc>)>) {
    let all = graph_store::agents::results_of(&db.pool, prober, from - chrono::Duration::hours(1)).await.unwrap();
    let mut inside: BTreeMap<i64, usize> = BTreeMap::new();
    for (edge, at) in &all {
        if *at > from && *at < to {
            *inside.entry(*edge).or_default() += 1;
        }
    }
    (inside, all)
}

fn assert_no_duplicates(results: &[(i64, DateTime<Utc>)]) {
    let unique: HashSet<&(i64, DateTime<Utc>)> = results.iter().collect();
    assert_eq!(unique.len(), results.len(), "a result recorded twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn results_made_while_the_server_is_away_arrive_after_it() {
    let db = fleet().await;
    let node = "fe1.host101";
    let tok = token(&db, node);
    let dir = scratch();
    let server = Server::start(&db.url, "127.0.0.1:0", "1s", dir.path());
    let addr = server.addr().to_string();
    let n = edge_ids(&get_targets(&server, node, Some(&bearer(&tok))).await).len();
    let start = Utc::now();
    let mut agent = spawn_agent(&db.url, &server.base, node, &tok, &["--run-for", "18s"], dir.path());

    // Running: results arrive.
    let deadline = Instant::now() + Duration::from_secs(20);
    while graph_store::agents::results_of(&db.pool, "agent:fe1.host101", start).await.unwrap().len() < 8 {
        assert!(Instant::now() < deadline && agent.alive(), "no results arrive:\n{}", agent.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The server dies (no goodbye), stays away 5 s, comes back on the same address.
    let mut dead = server;
    dead.proc.kill();
    let down = Utc::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let up = Utc::now();
    let server = Server::start(&db.url, &addr, "1s", dir.path());

    let log = agent.wait_ok(Duration::from_secs(60));
    let summary = agent_summary(&log);
    assert_eq!((summary["dropped"], summary["undelivered"], summary["refused by the server"]), (0, 0, 0), "{log}");
    let (inside, all) = results_between(&db, "agent:fe1.host101", down, up).await;
    assert_no_duplicates(&all);
    assert_eq!(all.len() as u64, summary["results made"], "every result made arrived:\n{log}");
    assert_eq!(inside.len(), n, "results made while the server was away, per edge: {inside:?}");
    assert!(inside.values().all(|n| *n >= 3), "about one per second of the 5 s: {inside:?}");
    server.stop();
}

/// Results per report the agent says it made (`report made` at debug level), summed.
fn made_in(log: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains("report made"))
        .filter_map(|l| l.split("results=").nth(1)?.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The spool: the server away 60 s, the agent killed (SIGKILL) during the outage and
/// started again, the server back: every result made is stored once.
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_killed_during_a_server_outage_loses_nothing_it_made() {
    let db = fleet().await;
    let node = "fe1.host101";
    let tok = token(&db, node);
    let dir = scratch();
    let spool = dir.path().join("agent-spool");
    let server = Server::start(&db.url, "127.0.0.1:0", "1s", dir.path());
    let addr = server.addr().to_string();
    let start = Utc::now();
    let base = server.base.clone();
    let args = ["agent", "--server", &base, "--name", node, "--token", &tok, "--allow", AGENT_ALLOW];
    let mut args: Vec<&str> = args.to_vec();
    let spool_arg = spool.to_str().unwrap().to_string();
    args.extend(["--interval", "1s", "--packets", "1", "--timeout", "200ms", "--spool", &spool_arg]);
    let env = [("EDGEWATCH_LOG", "info,sqlx=warn,probers::agent=debug")];
    let mut first = Proc::spawn_with(&db.url, &args, dir.path(), Stdio::null(), &env);
    let deadline = Instant::now() + Duration::from_secs(30);
    while graph_store::agents::results_of(&db.pool, &format!("agent:{node}"), start).await.unwrap().len() < 4 {
        assert!(Instant::now() < deadline && first.alive(), "no results arrive:\n{}", first.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The server goes away for 60 s; 20 s in, the agent is killed and started again.
    let mut dead = server;
    dead.proc.terminate();
    dead.proc.wait(Duration::from_secs(10));
    tokio::time::sleep(Duration::from_secs(20)).await;
    first.kill();
    let first_log = first.log();
    let mut second = Proc::spawn_with(&db.url, &args, dir.path(), Stdio::null(), &env);
    tokio::time::sleep(Duration::from_secs(40)).await;
    let server = Server::start(&db.url, &addr, "1s", dir.path());

    // Back: the spooled results go first; then the agent stops cleanly.
    tokio::time::sleep(Duration::from_secs(8)).await;
    second.terminate();
    let second_log = second.wait_ok(Duration::from_secs(15));
    let summary = agent_summary(&second_log);
    assert!(summary["restored from the spool"] > 0, "the killed agent's results came from the spool:\n{second_log}");
    assert_eq!((summary["dropped"], summary["undelivered"]), (0, 0), "{second_log}");
    let made = made_in(&first_log) + made_in(&second_log);
    let (_, all) = results_between(&db, &format!("agent:{node}"), start, Utc::now()).await;
    assert_no_duplicates(&all);
    assert_eq!(all.len() as u64, made, "every result made, stored once:\n{first_log}\n{second_log}");
    assert!(made >= 60, "results were made all through the outage: {made}");
    server.stop();
}

/// A spool too small for an outage: the oldest results are dropped, the agent's summary
/// counts them, and once the server is back its metric says the same number.
#[tokio::test(flavor = "multi_thread")]
async fn results_dropped_from_a_full_spool_are_counted_by_the_server() {
    let db = fleet().await;
    let node = "fe1.host101";
    let tok = token(&db, node);
    let dir = scratch();
    let spool = dir.path().join("agent-spool");
    let server = Server::start(&db.url, "127.0.0.1:0", "1s", dir.path());
    let addr = server.addr().to_string();
    let base = server.base.clone();
    let spool_arg = spool.to_str().unwrap().to_string();
    let args = [
        "agent",
        "--server",
        &base,
        "--name",
        node,
        "--token",
        &tok,
        "--allow",
        AGENT_ALLOW,
        "--interval",
        "1s",
        "--packets",
        "1",
        "--timeout",
        "200ms",
        "--spool",
        &spool_arg,
        "--spool-max",
        "2KB",
        "--run-for",
        "24s",
    ];
    let mut agent = Proc::spawn(&db.url, &args, dir.path(), Stdio::null());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut dead = server;
    dead.proc.terminate();
    dead.proc.wait(Duration::from_secs(10));
    tokio::time::sleep(Duration::from_secs(12)).await;
    let server = Server::start(&db.url, &addr, "1s", dir.path());
    let log = agent.wait_ok(Duration::from_secs(30));
    let dropped = agent_summary(&log)["dropped"];
    assert!(dropped > 0, "12 s of results do not fit in 2 KB:\n{log}");
    assert!(log.contains("dropping the oldest undelivered report"), "{log}");
    let metrics = common::get(format!("{}/metrics", server.base)).await.unwrap().text().await.unwrap();
    let counted = metrics
        .lines()
        .find_map(|l| l.strip_prefix("edgewatch_agent_results_dropped_total "))
        .unwrap_or_else(|| panic!("no edgewatch_agent_results_dropped_total:\n{metrics}"));
    assert_eq!(counted.trim().parse::<u64>().unwrap(), dropped, "{metrics}\n{}", server.proc.log());
    assert!(server.proc.log().contains("the agent dropped results it could not deliver"), "{}", server.proc.log());
    server.stop();
}
