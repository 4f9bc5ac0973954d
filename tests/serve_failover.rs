//! Two `serve` processes on one database with an agent that knows both: the once-only
//! work is done by the holder of the `serve` lease; SIGKILL it and the other takes the
//! lease over within 10 s (the stored diagnosis stays fresh, `check nagios` never says
//! UNKNOWN), the agent moves on to the other server, and every result it made is stored
//! exactly once. Probes go to the sample fleet's 127.0.0.0/8 addresses only.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{edgewatch, json, ok, sample, Daemon};
use graph_store::testing::TestDb;

const NODE: &str = "fe1.host101";

/// `serve` on a free loopback port, and its base URL.
fn serve(db: &TestDb, dir: &std::path::Path) -> (Daemon, String) {
    let mut d = Daemon::spawn(db, &["serve", "--listen", "127.0.0.1:0", "--interval", "1s"], dir);
    let log = d.wait_for("serving the API on ", 0, Duration::from_secs(20));
    let base = log.split("serving the API on ").nth(1).unwrap().split("/api/v1/").next().unwrap().to_string();
    (d, base)
}

/// The process id in the `serve` lease's holder, when someone holds it.
fn lease_holder(db: &TestDb) -> Option<u32> {
    let rows =
        json(db, &["sql", "--format", "json", "SELECT holder FROM leases WHERE name = 'serve' AND expires_at > now()"]);
    rows.as_array()?.first()?["holder"].as_str()?.rsplit(':').next()?.parse().ok()
}

fn diagnosed_at(db: &TestDb) -> DateTime<Utc> {
    let rows = json(db, &["sql", "--format", "json", "SELECT computed_at FROM diagnosis"]);
    rows[0]["computed_at"].as_str().unwrap().parse().unwrap()
}

fn summary(log: &str, what: &str) -> u64 {
    let line =
        log.lines().rev().find(|l| l.contains(" results made, ")).unwrap_or_else(|| panic!("no summary:\n{log}"));
    let part = line.split(", ").find(|p| p.ends_with(what)).unwrap_or_else(|| panic!("no {what:?} in {line}"));
    part.split(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_other_serve_takes_over_and_the_agent_follows_losing_nothing() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    let token = ok(&db, &["agent-token", "create", NODE]).trim().to_string();
    let dir = tempfile::tempdir().unwrap();
    let (mut a, base_a) = serve(&db, dir.path());
    let (mut b, base_b) = serve(&db, dir.path());

    // One of them holds the lease; the agent's first choice is that one.
    let start = Instant::now();
    let holder = loop {
        if let Some(pid) = lease_holder(&db) {
            break pid;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "nobody took the lease:\n{}\n{}", a.log(), b.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    let (doomed, doomed_base, survivor, survivor_base) =
        if holder == a.id() { (&mut a, &base_a, &mut b, &base_b) } else { (&mut b, &base_b, &mut a, &base_a) };
    assert_eq!(holder, doomed.id());
    let servers = if probers::agent::failover::order(2, NODE)[0] == 0 {
        format!("{doomed_base},{survivor_base}")
    } else {
        format!("{survivor_base},{doomed_base}")
    };
    let since = Utc::now();
    let args = [
        "agent",
        "--server",
        &servers,
        "--name",
        NODE,
        "--token",
        &token,
        "--allow",
        "127.0.0.0/8,::1/128",
        "--interval",
        "1s",
        "--packets",
        "1",
        "--timeout",
        "200ms",
        "--no-trace",
        "--run-for",
        "25s",
    ];
    let mut agent = Daemon::spawn(&db, &args, dir.path());
    let made_before = loop {
        let stored = graph_store::agents::results_of(&db.pool, &format!("agent:{NODE}"), since).await.unwrap();
        if stored.len() >= 6 {
            break stored.len();
        }
        assert!(start.elapsed() < Duration::from_secs(40), "no results arrive:\n{}", agent.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(made_before > 0);
    assert!(doomed.log().contains("holds the serve lease"), "{}", doomed.log());

    // The holder dies without a word; the other takes over within 10 s.
    doomed.kill();
    let killed = Instant::now();
    let killed_at = Utc::now();
    let mut checks = 0;
    loop {
        let out = edgewatch(&db, &["check", "nagios"]);
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        assert_ne!(out.status.code(), Some(3), "the check went UNKNOWN during the takeover: {said}");
        checks += 1;
        if lease_holder(&db) == Some(survivor.id()) {
            break;
        }
        assert!(killed.elapsed() < Duration::from_secs(10), "no takeover within 10 s:\n{}", survivor.log());
        std::thread::sleep(Duration::from_millis(300));
    }
    let took = killed.elapsed();
    assert!(survivor.log().contains("holds the serve lease"), "{}", survivor.log());
    // The survivor keeps the diagnosis fresh from now on.
    let deadline = Instant::now() + Duration::from_secs(10);
    while diagnosed_at(&db) <= killed_at {
        assert!(Instant::now() < deadline, "no diagnosis refreshed after the takeover:\n{}", survivor.log());
        std::thread::sleep(Duration::from_millis(200));
    }

    // The agent ends by itself; it moved on and lost nothing.
    let log = agent.wait_for(" results made, ", 0, Duration::from_secs(60));
    assert!(log.contains(&format!("server {doomed_base} failed")), "the agent did not move on:\n{log}");
    let made = summary(&log, "results made");
    assert_eq!(summary(&log, "delivered"), made, "{log}");
    let stored = graph_store::agents::results_of(&db.pool, &format!("agent:{NODE}"), since).await.unwrap();
    let unique: HashSet<&(i64, DateTime<Utc>)> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "a result stored twice");
    assert_eq!(stored.len() as u64, made, "every result made is stored, once:\n{log}");
    let after: Vec<_> = stored.iter().filter(|(_, at)| *at > killed_at + chrono::Duration::seconds(2)).collect();
    assert!(after.len() > 5, "results kept arriving through the survivor: {}", after.len());
    eprintln!("takeover after {took:?} ({checks} checks, none UNKNOWN); {made} results made, all stored once");
    assert!(survivor.stop(Duration::from_secs(10)).success(), "{}", survivor.log());
}

/// Two `run`s: the holder of the `run` lease makes the day's reports, the other waits; it
/// takes over when the holder dies, and finds the reports made (nothing made twice).
#[tokio::test]
async fn of_two_runs_one_makes_the_reports_and_the_other_takes_over() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgewatch.toml");
    std::fs::write(&config, "[report]\ntz = \"UTC\"\nat = \"00:00\"\n").unwrap();
    let cfg = config.to_str().unwrap();
    let limit = Duration::from_secs(30);
    let mut first = Daemon::spawn(&db, &["--config", cfg, "run"], dir.path());
    let log = first.wait_for("next report at", 0, limit);
    assert!(log.contains("holds the run lease") && log.contains(") made;"), "{log}");
    let mut second = Daemon::spawn(&db, &["--config", cfg, "run"], dir.path());
    second.wait_for("waiting for the run lease", 0, limit);
    first.kill();
    let log = second.wait_for("next report at", 0, Duration::from_secs(15));
    assert!(log.contains("holds the run lease"), "{log}");
    assert!(!log.contains(") made;"), "the reports were made again:\n{log}");
    let stored = json(&db, &["sql", "--format", "json", "SELECT count(*) AS n FROM reports"]);
    assert_eq!(stored[0]["n"], 3, "one report per format");
    assert!(second.stop(Duration::from_secs(10)).success(), "{}", second.log());
}
