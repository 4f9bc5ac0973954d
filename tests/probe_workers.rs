//! Prober workers against a real PostgreSQL: two processes share the graph and probe
//! every due edge exactly once per interval; results become health states.
//! Every target is in 127.0.0.0/8 (the sample fleet) and the allow-list says so.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};

use common::{json, ok, sample};
use graph_store::testing::{probe_results, TestDb};

fn spawn_prober(db: &TestDb, name: &str, run_for: &str) -> std::process::Child {
    Command::new(assert_cmd::cargo::cargo_bin("edgewatch"))
        .env_remove("DATABASE_URL")
        .args(["--database-url", &db.url, "probe", "--allow", "127.0.0.0/8", "--interval", "2s", "--packets", "2"])
        .args(["--timeout", "300ms", "--workers", "2", "--name", name, "--run-for", run_for])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn two_worker_processes_probe_every_edge_exactly_once_per_interval() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    let edges = json(&db, &["graph", "edges", "--format", "json"]).as_array().unwrap().len();

    let (mut a, mut b) = (spawn_prober(&db, "a", "11s"), spawn_prober(&db, "b", "11s"));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());

    let results = probe_results(&db.pool).await;
    let mut by_edge: BTreeMap<i64, Vec<chrono::DateTime<chrono::Utc>>> = BTreeMap::new();
    let mut probers = BTreeSet::new();
    for (edge, at, prober) in &results {
        by_edge.entry(*edge).or_default().push(*at);
        probers.insert(prober.split('/').next().unwrap().to_string());
    }
    assert_eq!(by_edge.len(), edges, "every edge was probed");
    assert_eq!(probers, BTreeSet::from(["a".to_string(), "b".to_string()]), "both processes took a share");
    for (edge, times) in &by_edge {
        // About 11 s / 2 s = 5 cycles; never two probes of one edge within one interval
        // (less the 10% jitter either way).
        assert!((3..=7).contains(&times.len()), "edge {edge}: {} probes in 11 s", times.len());
        for pair in times.windows(2) {
            let gap = (pair[1] - pair[0]).num_milliseconds();
            assert!(gap >= 1500, "edge {edge} probed twice within {gap} ms");
        }
    }

    // The DNS edges go to service ports nothing listens on here: down. The published
    // links have no port: ICMP echo to 127/8 answers (as root; else no ICMP socket).
    let states: Vec<(String, String)> = json(&db, &["graph", "edges", "--format", "json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["sources"].to_string(), e["state"].as_str().unwrap().to_string()))
        .collect();
    assert!(states.iter().filter(|(s, _)| s.contains("dns")).all(|(_, state)| state == "down"), "{states:?}");
    if nix::unistd::geteuid().is_root() {
        assert!(states.iter().filter(|(s, _)| s == r#"["cmdb"]"#).all(|(_, state)| state == "up"), "{states:?}");
    }
}

#[tokio::test]
async fn health_settings_come_from_the_config_file_and_are_checked() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgewatch.toml");
    let probe = |db: &TestDb| {
        common::edgewatch(
            db,
            &["--config", config.to_str().unwrap(), "probe", "--interval", "1s", "--packets", "1", "--run-for", "1s"],
        )
    };
    for (text, must_name) in [
        ("[health]\nk_dwn = 3\n", "k_dwn"),
        ("[health]\nflap_high_pct = 20.0\nflap_low_pct = 40.0\n", "flap"),
        ("[thresholds]\nfailed_loss_pct = 10.0\n", "loss"),
    ] {
        std::fs::write(&config, text).unwrap();
        let out = probe(&db);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text} was accepted");
        assert!(stderr.contains("edgewatch.toml") && stderr.contains(must_name), "{text}: {stderr}");
    }
    std::fs::write(&config, "[health]\nk_down = 3\nm_up = 1\n\n[probe]\nretention_days = 30\n").unwrap();
    let out = probe(&db);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn newly_discovered_edges_are_probed_within_one_interval_without_a_restart() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    let mut prober = spawn_prober(&db, "n", "14s");
    std::thread::sleep(std::time::Duration::from_secs(4));
    // DNS discovery adds edges while the workers run (interval 2 s).
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    let added = chrono::Utc::now();
    assert!(prober.wait().unwrap().success());
    let edges = json(&db, &["graph", "edges", "--format", "json"]).as_array().unwrap().len();
    let results = probe_results(&db.pool).await;
    let mut first: BTreeMap<i64, chrono::DateTime<chrono::Utc>> = BTreeMap::new();
    for (edge, at, _) in &results {
        first.entry(*edge).or_insert(*at);
    }
    assert_eq!(first.len(), edges, "every edge, old and new, was probed");
    let latest_first = first.values().max().unwrap();
    // Within one interval (2 s) of being added, plus the housekeeping period (≤ 2 s) and
    // a probe cycle.
    assert!(
        (*latest_first - added).num_milliseconds() < 6000,
        "a new edge waited until {latest_first} (added {added})"
    );
}
