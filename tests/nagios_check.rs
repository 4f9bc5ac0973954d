//! `edgewatch check nagios` and `edgewatch incidents` on a real store: the plugin's first
//! line, perfdata and exit codes against the broken edges counted another way, ranges,
//! filters, flapping, UNKNOWN when the results are too old or the database is away, and
//! passive results with their recoveries.

mod common;

use std::collections::BTreeSet;
use std::process::Output;

use common::{edgewatch, json, ok, sample, Server};
use graph_store::testing::TestDb;

/// The sample fleet with a probe run: nothing listens on the service ports, so every DNS
/// edge goes down.
fn probed_fleet(db: &TestDb) {
    ok(db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    ok(db, &["probe", "--interval", "1s", "--packets", "1", "--timeout", "200ms", "--run-for", "4s"]);
}

/// A config file that makes the check diagnose afresh every time (the tests change the
/// store between checks; the default reuses a diagnosis up to 30 s old).
fn fresh_config() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("edgewatch-nagios-check-{}.toml", std::process::id()));
        std::fs::write(&path, "[check]\ndiagnosis_max_age = \"0s\"\n").unwrap();
        path.to_str().unwrap().to_string()
    })
}

fn check(db: &TestDb, args: &[&str]) -> (i32, String) {
    let mut all = vec!["--config", fresh_config(), "check", "nagios", "--max-age", "10m"];
    all.extend_from_slice(args);
    let out: Output = edgewatch(db, &all);
    (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap())
}

/// `label=value` of the first line's performance data.
fn perf(first_line: &str, label: &str) -> String {
    let data = first_line.split_once(" | ").unwrap().1;
    let item = data.split(' ').find(|i| i.starts_with(&format!("{label}="))).unwrap();
    item.split_once('=').unwrap().1.to_string()
}

fn down_edges(db: &TestDb, filter: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["graph", "edges", "--state", "down", "--format", "json"];
    args.extend_from_slice(filter);
    json(db, &args).as_array().unwrap().clone()
}

#[tokio::test]
async fn the_plugin_answers_with_state_summary_perfdata_and_long_output() {
    let db = TestDb::new().await;
    probed_fleet(&db);
    let down = down_edges(&db, &[]);
    assert!(down.len() > 10, "{}", down.len());
    let consumers: BTreeSet<&str> = down.iter().map(|e| e["src"].as_str().unwrap()).collect();

    // Default: any broken edge is CRITICAL.
    let (code, text) = check(&db, &[]);
    let first = text.lines().next().unwrap();
    assert_eq!(code, 2, "{text}");
    assert!(first.starts_with("EDGEWATCH CRITICAL - "), "{first}");
    assert_eq!(perf(first, "broken_edges"), format!("{};;0;0", down.len()));
    assert_eq!(perf(first, "affected_nodes"), format!("{};;;0", consumers.len()));
    assert!(perf(first, "data_age").ends_with("s;;;0"));
    let incidents = json(&db, &["incidents", "--format", "json"]);
    assert_eq!(perf(first, "incidents"), format!("{};;;0", incidents.as_array().unwrap().len()));
    // The top culprit is named; the worst problem server comes first in the long output.
    let top = incidents[0]["culprit"].as_str().unwrap();
    assert!(first.contains(top), "{first}");
    let worst = text.lines().find(|l| l.contains(" disconnects: ")).unwrap();
    let most = consumers.iter().map(|c| down.iter().filter(|e| e["src"] == *c).count()).max().unwrap();
    assert!(worst.contains(&format!(": {most} disconnects: ")), "{worst}");

    // Ranges (guidelines syntax) on the count, and --by nodes.
    let n = down.len();
    for (args, want) in [
        (vec!["-c", &format!("{n}")], 0),
        (vec!["-w", "5", "-c", &format!("{}", n + 1)], 1),
        (vec!["-w", "@0:5", "-c", "~:1000"], 0),
        (vec!["-c", &format!("@{n}:{n}")], 2),
        (vec!["-c", &format!("{}:", n + 1)], 2),
        (vec!["--by", "nodes", "-c", &format!("{}", consumers.len())], 0),
        (vec!["--by", "nodes", "-c", &format!("{}", consumers.len() - 1)], 2),
    ] {
        let (code, text) = check(&db, &args.iter().map(|s| s.as_ref()).collect::<Vec<&str>>());
        assert_eq!(code, want, "{args:?}: {text}");
        let name = ["OK", "WARNING", "CRITICAL"][want as usize];
        assert!(text.starts_with(&format!("EDGEWATCH {name} - ")), "{args:?}: {text}");
    }
    // Filters count only their edges.
    let va = down_edges(&db, &["--dc", "VA"]);
    let (_, text) = check(&db, &["--dc", "VA"]);
    assert_eq!(perf(text.lines().next().unwrap(), "broken_edges"), format!("{};;0;0", va.len()));
    let (_, text) = check(&db, &["--service", "db1"]);
    let db1 = down.iter().filter(|e| e["services"].as_array().unwrap().iter().any(|s| s == "db1")).count();
    assert_eq!(perf(text.lines().next().unwrap(), "broken_edges"), format!("{db1};;0;0"));
    let (code, text) = check(&db, &["--role", "no-such-role"]);
    assert_eq!((code, text.lines().next().unwrap().starts_with("EDGEWATCH OK - no broken edges")), (0, true), "{text}");

    // Bad arguments are UNKNOWN (3), not clap's 2, which Nagios would read as CRITICAL.
    for bad in [&["-c", "20:10"][..], &["-w", ""], &["--no-such-flag"]] {
        let mut args = vec!["check", "nagios"];
        args.extend_from_slice(bad);
        let out = edgewatch(&db, &args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(3), "{bad:?}: {text}");
        assert!(text.starts_with("EDGEWATCH UNKNOWN - bad arguments: "), "{bad:?}: {text}");
    }
    let out = edgewatch(&db, &["check", "nagios", "-c", "20:10"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Monitoring Plugins syntax"));
    // Elsewhere clap's usual exit code stays.
    assert_eq!(edgewatch(&db, &["graph", "nodes", "--no-such-flag"]).status.code(), Some(2));

    // Flapping: its own line; WARNING at most, CRITICAL only when asked.
    graph_store::testing::execute(&db.pool, "UPDATE edge_health SET state = 'up', flapping = false").await;
    graph_store::testing::execute(
        &db.pool,
        "UPDATE edge_health SET flapping = true WHERE edge_id = (SELECT min(edge_id) FROM edge_health)",
    )
    .await;
    let (code, text) = check(&db, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("flapping (1): "), "{text}");
    assert_eq!(perf(text.lines().next().unwrap(), "flapping_edges"), "1;;;0");
    let (code, _) = check(&db, &["--flapping-is-critical"]);
    assert_eq!(code, 2);
    graph_store::testing::execute(&db.pool, "UPDATE edge_health SET flapping = false").await;
    let (code, text) = check(&db, &[]);
    assert_eq!(code, 0, "{text}");
}

#[tokio::test]
async fn unknown_when_results_are_older_than_max_age_never_ok() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    // No probe result at all yet.
    let out = edgewatch(&db, &["check", "nagios"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("EDGEWATCH UNKNOWN - no probe result at all yet"));
    // The probers stop; after --max-age the check says so.
    ok(&db, &["probe", "--interval", "1s", "--packets", "1", "--timeout", "200ms", "--run-for", "2s"]);
    let fresh = edgewatch(&db, &["check", "nagios", "--max-age", "1m", "-c", "1000"]);
    assert_eq!(fresh.status.code(), Some(0), "{}", String::from_utf8_lossy(&fresh.stdout));
    std::thread::sleep(std::time::Duration::from_secs(3));
    let old = edgewatch(&db, &["check", "nagios", "--max-age", "2s", "-c", "1000"]);
    let text = String::from_utf8_lossy(&old.stdout);
    assert_eq!(old.status.code(), Some(3), "{text}");
    assert!(text.starts_with("EDGEWATCH UNKNOWN - no probe result newer than 2s"), "{text}");
}

#[tokio::test]
async fn unknown_when_the_database_is_away_and_the_check_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let run = |args: &[&str]| {
        assert_cmd::Command::cargo_bin("edgewatch")
            .unwrap()
            .env_remove("DATABASE_URL")
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .unwrap()
    };
    let must = |args: &[&str]| {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    must(&["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    must(&["probe", "--interval", "1s", "--packets", "1", "--timeout", "200ms", "--run-for", "2s"]);
    must(&["db", "stop"]);
    let out = run(&["check", "nagios", "--timeout", "5s"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.starts_with("EDGEWATCH UNKNOWN - cannot reach the database"), "{text}");
    assert_eq!(text.lines().count(), 1);
    // The check did not bring the cluster back up.
    let status = run(&["db", "status"]);
    assert!(
        !String::from_utf8_lossy(&status.stdout).contains("running"),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
}

#[tokio::test]
async fn passive_results_per_problem_host_and_one_recovery_when_it_clears() {
    let db = TestDb::new().await;
    probed_fleet(&db);
    let dir = tempfile::tempdir().unwrap();
    let cmd = dir.path().join("nagios.cmd");
    std::fs::write(&cmd, "").unwrap();
    let passive = |db: &TestDb| {
        let before = std::fs::read_to_string(&cmd).unwrap().len();
        let out = edgewatch(
            db,
            &[
                "--config",
                fresh_config(),
                "check",
                "nagios",
                "--max-age",
                "10m",
                "--passive",
                "--command-file",
                cmd.to_str().unwrap(),
            ],
        );
        assert!(out.status.code().unwrap() <= 2, "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::read_to_string(&cmd).unwrap()[before..].to_string()
    };
    let parse = |text: &str| -> Vec<(String, String, String)> {
        text.lines()
            .map(|l| {
                let (stamp, rest) = l.split_once(' ').unwrap();
                assert!(stamp.starts_with('[') && stamp.ends_with(']'), "{l}");
                let f: Vec<&str> = rest.splitn(5, ';').collect();
                assert_eq!(f[0], "PROCESS_SERVICE_CHECK_RESULT");
                assert_eq!(f[2], "edgewatch connectivity");
                (f[1].to_string(), f[3].to_string(), f[4].to_string())
            })
            .collect()
    };

    // One CRITICAL result per host with broken edges from its containers.
    let down = down_edges(&db, &[]);
    let nodes = json(&db, &["graph", "nodes", "--format", "json"]);
    let host_of = |name: &str| {
        nodes.as_array().unwrap().iter().find(|n| n["name"] == name).unwrap()["host"].as_str().unwrap().to_string()
    };
    let problem_hosts: BTreeSet<String> = down.iter().map(|e| host_of(e["src"].as_str().unwrap())).collect();
    let first = parse(&passive(&db));
    assert_eq!(first.iter().map(|r| r.0.clone()).collect::<BTreeSet<_>>(), problem_hosts);
    assert!(first.iter().all(|r| r.1 == "2" && r.2.starts_with("EDGEWATCH CRITICAL - ")), "{first:?}");

    // Repaired: one recovery per host, then nothing more.
    graph_store::testing::execute(&db.pool, "UPDATE edge_health SET state = 'up'").await;
    let second = parse(&passive(&db));
    assert_eq!(second.iter().map(|r| r.0.clone()).collect::<BTreeSet<_>>(), problem_hosts);
    assert!(second.iter().all(|r| r.1 == "0" && r.2.starts_with("EDGEWATCH OK - ")), "{second:?}");
    assert_eq!(passive(&db), "");

    // Flapping makes a WARNING for its host, and its end a recovery.
    graph_store::testing::execute(
        &db.pool,
        "UPDATE edge_health SET flapping = true WHERE edge_id = (SELECT min(edge_id) FROM edge_health)",
    )
    .await;
    let third = parse(&passive(&db));
    assert_eq!(third.len(), 1, "{third:?}");
    assert_eq!(third[0].1, "1");
    graph_store::testing::execute(&db.pool, "UPDATE edge_health SET flapping = false").await;
    let fourth = parse(&passive(&db));
    assert_eq!(fourth, vec![(third[0].0.clone(), "0".to_string(), fourth[0].2.clone())]);
    assert_eq!(passive(&db), "");

    // A missing command file (Nagios not running): UNKNOWN, saying so.
    let out = edgewatch(&db, &["check", "nagios", "--passive", "--command-file", "/nonexistent/nagios.cmd"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.starts_with("EDGEWATCH UNKNOWN - passive results not written: "), "{text}");
    assert!(text.contains("is Nagios running"), "{text}");
}

#[tokio::test]
async fn edges_whose_prober_went_silent_turn_stale_under_serve_and_the_check_lists_them() {
    let db = TestDb::new().await;
    probed_fleet(&db);
    let total = json(&db, &["graph", "edges", "--format", "json"]).as_array().unwrap().len();
    // No prober runs any more; serve alone, judging by a 1 s interval (stale after 3).
    let _server = Server::start_with(&db, &[], &["--interval", "1s"], &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let stale = down_edges_in(&db, "stale").len();
        if stale == total {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{stale} of {total} edges stale after 30 s");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let (code, text) = check(&db, &[]);
    let first = text.lines().next().unwrap();
    assert_eq!(perf(first, "stale_edges"), format!("{total};;;0"), "{text}");
    assert_eq!(perf(first, "broken_edges"), "0;;0;0", "stale edges are not broken ones");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&format!("stale ({total}, no recent results): ")), "{text}");
}

fn down_edges_in(db: &TestDb, state: &str) -> Vec<serde_json::Value> {
    json(db, &["graph", "edges", "--state", state, "--format", "json"]).as_array().unwrap().clone()
}

/// `incidents` prints the stored diagnosis only while a `serve` leader keeps it fresh and
/// it saw exactly the edges broken now; otherwise, and with `--fresh`, it makes a new one.
#[tokio::test]
async fn incidents_reuse_the_leaders_diagnosis_only_while_it_is_the_graphs() {
    let db = TestDb::new().await;
    probed_fleet(&db);
    let made = json(&db, &["incidents", "--format", "json"]);
    assert!(!made.as_array().unwrap().is_empty(), "{made}");
    // Mark the stored one, so its reuse shows.
    let mark = || async {
        sqlx::query(
            "UPDATE diagnosis SET computed_at = now(), \
             payload = jsonb_set(payload::jsonb, '{incidents,0,evidence}', '\"from the store\"')::json",
        )
        .execute(&db.pool)
        .await
        .unwrap();
    };
    let evidence = |v: &serde_json::Value| v[0]["evidence"].as_str().unwrap().to_string();
    mark().await;
    // No leader: a new one.
    assert_ne!(evidence(&json(&db, &["incidents", "--format", "json"])), "from the store");
    mark().await;
    let lease =
        graph_store::lease::acquire(&db.pool, graph_store::lease::SERVE, "test", std::time::Duration::from_secs(60));
    assert!(lease.await.unwrap());
    assert_eq!(evidence(&json(&db, &["incidents", "--format", "json"])), "from the store");
    assert_ne!(evidence(&json(&db, &["incidents", "--fresh", "--format", "json"])), "from the store");
    // The broken edges change: the stored one is no longer the graph's.
    mark().await;
    sqlx::query("UPDATE edge_health SET state = 'up' WHERE edge_id = (SELECT min(edge_id) FROM edge_health WHERE state = 'down')")
        .execute(&db.pool)
        .await
        .unwrap();
    assert_ne!(evidence(&json(&db, &["incidents", "--format", "json"])), "from the store");
}
