//! `edgewatch dns ingest` end to end: each sample-fleet log gives exactly its expected
//! edges; reading again changes nothing; a kill at any point neither loses nor doubles.

mod common;

use std::time::Duration;

use common::{edgewatch, json, ok, project, sample};
use graph_store::testing::TestDb;
use rand::Rng;
use serde_json::Value;

const EDGE_KEYS: [&str; 6] = ["src", "dst_ip", "dst", "services", "sources", "queries"];

fn expected(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(sample(name)).unwrap();
    project(&serde_json::from_str(&text).unwrap(), &EDGE_KEYS)
}

async fn ingest_and_compare(log: &str, links: bool, expected_file: &str) {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    if links {
        ok(&db, &["cmdb", "import", &sample("links.txt")]);
    }
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample(log)]);
    let edges = json(&db, &["graph", "edges", "--format", "json"]);
    let ours = project(&edges, &EDGE_KEYS);
    let want = expected(expected_file);
    let missing: Vec<&Value> = want.iter().filter(|e| !ours.contains(e)).collect();
    let extra: Vec<&Value> = ours.iter().filter(|e| !want.contains(e)).collect();
    assert!(missing.is_empty() && extra.is_empty(), "{log}: missing {missing:#?}\nextra {extra:#?}");
}

#[tokio::test]
async fn auth_console_log_gives_its_expected_edges() {
    ingest_and_compare("pdns-auth-console.log", false, "expected-edges-auth-console.json").await;
}

#[tokio::test]
async fn auth_plain_log_gives_its_expected_edges() {
    ingest_and_compare("pdns-auth-plain.log", false, "expected-edges-auth-plain.json").await;
}

#[tokio::test]
async fn auth_syslog_log_gives_its_expected_edges() {
    ingest_and_compare("pdns-auth-syslog.log", false, "expected-edges-auth-syslog.json").await;
}

#[tokio::test]
async fn recursor_old_log_gives_its_expected_edges() {
    ingest_and_compare("pdns-rec-old.log", false, "expected-edges-rec-old.json").await;
}

#[tokio::test]
async fn recursor_structured_log_gives_its_expected_edges() {
    ingest_and_compare("pdns-rec-structured.log", false, "expected-edges-rec-structured.json").await;
}

#[tokio::test]
async fn auth_console_log_with_links_gives_its_expected_edges() {
    ingest_and_compare("pdns-auth-console.log", true, "expected-edges-auth-console+links.json").await;
}

#[tokio::test]
async fn ingesting_a_file_twice_changes_nothing() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-rec-structured.log")]);
    let before = db.dump().await;
    let stats_before = json(&db, &["dns", "stats", "--format", "json"]);
    let again = ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-rec-structured.log")]);
    assert!(again.contains("0 lines"), "{again}");
    assert_eq!(before, db.dump().await);
    let stats_after = json(&db, &["dns", "stats", "--format", "json"]);
    assert_eq!(stats_before["skipped"], stats_after["skipped"]);
    assert_eq!(stats_before["unknown_clients"], stats_after["unknown_clients"]);
}

#[tokio::test]
async fn dns_stats_name_what_the_cmdb_lacks() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    let stats = json(&db, &["dns", "stats", "--format", "json"]);
    // queries.txt sends noise on purpose: a client no container owns, a consumer the CMDB
    // does not have, services nobody provides.
    let pairs = |key: &str| -> Vec<(String, i64)> {
        stats[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap().to_string(), c["count"].as_i64().unwrap()))
            .collect()
    };
    assert_eq!(pairs("unknown_clients"), vec![("127.9.9.9".to_string(), 1)]);
    assert_eq!(pairs("unknown_consumers"), vec![("nosuch.host999".to_string(), 1)]);
    let services: Vec<String> = pairs("unknown_services").into_iter().map(|(n, _)| n).collect();
    assert!(services.contains(&"nosuch".to_string()) && services.contains(&"www".to_string()), "{services:?}");
    // 13 start-up lines are no queries; the other 151 lines are.
    assert!(pairs("skipped").contains(&("not-a-query".to_string(), 13)), "{stats:#}");
}

fn comparable(db: &TestDb) -> (Vec<Value>, Value) {
    let edges = project(&json(db, &["graph", "edges", "--format", "json"]), &EDGE_KEYS);
    let stats = json(db, &["dns", "stats", "--format", "json"]);
    (
        edges,
        serde_json::json!([stats["skipped"], stats["unknown_clients"], stats["unknown_consumers"], stats["queries"]]),
    )
}

#[tokio::test]
async fn killed_at_random_points_the_ingest_neither_loses_nor_doubles() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("growing.log");
    let chunk = std::fs::read_to_string(sample("pdns-rec-structured.log")).unwrap().repeat(60);
    let log = path.to_str().unwrap();
    let args = ["dns", "ingest", "--zone", "example.com", "--batch-lines", "1500", log];

    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    let seed: u64 = rand::rng().random();
    eprintln!("kill delays from seed {seed}");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let (mut killed_mid_way, mut attempts) = (0, 0);
    while killed_mid_way < 24 && attempts < 100 {
        attempts += 1;
        // The log grows between runs, as a live one does, so every run has work left.
        std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap().write_all(chunk.as_bytes()).unwrap();
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("edgewatch"))
            .env_remove("DATABASE_URL")
            .args(["--database-url", &db.url])
            .args(args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(5..150)));
        if child.try_wait().unwrap().is_none() {
            killed_mid_way += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    ok(&db, &args);
    eprintln!("{killed_mid_way} of {attempts} kills landed mid-ingest");
    assert!(killed_mid_way >= 20, "only {killed_mid_way} of {attempts} kills landed mid-ingest");

    // One clean run over the final file.
    let clean = TestDb::new().await;
    ok(&clean, &["cmdb", "import", &sample("inventory.json")]);
    ok(&clean, &args);
    assert_eq!(comparable(&db), comparable(&clean));
}

#[tokio::test]
async fn a_missing_zone_and_a_missing_file_are_clear_errors() {
    let db = TestDb::new().await;
    let out = edgewatch(&db, &["dns", "ingest", &sample("pdns-rec-old.log")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--zone"));
    let out = edgewatch(&db, &["dns", "ingest", "--zone", "example.com", "/nonexistent/pdns.log"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/pdns.log"));
}

#[tokio::test]
async fn junk_is_skipped_and_counted_never_a_panic() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.log");
    let good = "Remote 127.20.3.2 wants 'cache.example.com|A', do = 0, bufsize = 1232: packetcache MISS\n";
    let mut junk: Vec<u8> = Vec::new();
    junk.extend_from_slice(good.as_bytes());
    junk.extend_from_slice(b"\xff\xfe invalid utf-8 \xc3\x28 Remote 127.20.3.2 wants 'x|A'\n");
    junk.extend(std::iter::repeat_n(b'a', 200 * 1024));
    junk.push(b'\n');
    let mut x: u32 = 12345;
    for _ in 0..2000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        junk.push((x >> 16) as u8);
    }
    junk.push(b'\n');
    junk.extend_from_slice(&good.as_bytes()[..40]);
    junk.push(b'\n');
    junk.extend_from_slice(good.as_bytes());
    std::fs::write(&path, &junk).unwrap();
    let out = json(&db, &["dns", "ingest", "--zone", "example.com", "--format", "json", path.to_str().unwrap()]);
    assert_eq!(out["resolved"], 2, "{out:#}");
    assert_eq!(out["skipped"]["too-long"], 1, "{out:#}");
    assert_eq!(
        out["skipped"]["invalid-utf8"].as_u64().unwrap_or(0)
            + out["skipped"]["not-a-query"].as_u64().unwrap_or(0)
            + out["skipped"]["malformed"].as_u64().unwrap_or(0),
        out["lines"].as_u64().unwrap() - 3,
        "{out:#}"
    );
    let edges = json(&db, &["graph", "edges", "--format", "json"]);
    assert_eq!(edges.as_array().unwrap().iter().map(|e| e["queries"].as_i64().unwrap()).sum::<i64>(), 2);
}

#[tokio::test]
async fn tail_reads_standard_input() {
    use std::io::Write;
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("edgewatch"))
        .env_remove("DATABASE_URL")
        .args(["--database-url", &db.url, "dns", "tail", "--zone", "example.com", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = std::fs::read(sample("pdns-auth-plain.log")).unwrap();
    child.stdin.take().unwrap().write_all(&log).unwrap();
    // End of input ends the tail, after a last write.
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ours = project(&json(&db, &["graph", "edges", "--format", "json"]), &EDGE_KEYS);
    assert_eq!(ours, expected("expected-edges-auth-plain.json"));
}

#[tokio::test]
async fn dns_edges_nobody_asks_for_retire_and_come_back() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    let all = json(&db, &["graph", "edges", "--format", "json"]).as_array().unwrap().len();
    let only_cmdb = expected("expected-edges-auth-console+links.json")
        .iter()
        .filter(|e| e["sources"] == serde_json::json!(["cmdb"]))
        .count();
    let both = expected("expected-edges-auth-console+links.json")
        .iter()
        .filter(|e| e["sources"] == serde_json::json!(["cmdb", "dns"]))
        .count();

    // Nothing is old enough yet.
    ok(&db, &["dns", "expire", "--older-than", "7d"]);
    assert_eq!(json(&db, &["graph", "edges", "--format", "json"]).as_array().unwrap().len(), all);

    graph_store::testing::age_dns_edges(&db.pool, 8).await;
    let said = ok(&db, &["dns", "expire", "--older-than", "7d"]);
    let dns_only = all - only_cmdb - both;
    assert!(said.contains(&format!("{dns_only} retired, {both} kept by other sources")), "{said}");
    let live = json(&db, &["graph", "edges", "--format", "json"]);
    // What is left: the published links, without `dns` now.
    assert_eq!(live.as_array().unwrap().len(), only_cmdb + both);
    assert!(live.as_array().unwrap().iter().all(|e| e["sources"] == serde_json::json!(["cmdb"])));

    // Asked for again (a new log), they are back.
    let dir = tempfile::tempdir().unwrap();
    let again = dir.path().join("again.log");
    std::fs::write(&again, std::fs::read(sample("pdns-auth-syslog.log")).unwrap()).unwrap();
    ok(&db, &["dns", "ingest", "--zone", "example.com", again.to_str().unwrap()]);
    assert_eq!(json(&db, &["graph", "edges", "--format", "json"]).as_array().unwrap().len(), all);
}

#[tokio::test]
async fn zones_come_from_the_config_file_and_bad_keys_are_named() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgewatch.toml");
    std::fs::write(&config, "[dns]\nzones = [\"example.com\"]\n").unwrap();
    ok(&db, &["--config", config.to_str().unwrap(), "dns", "ingest", &sample("pdns-rec-old.log")]);
    let ours = project(&json(&db, &["graph", "edges", "--format", "json"]), &EDGE_KEYS);
    assert_eq!(ours, expected("expected-edges-rec-old.json"));

    std::fs::write(&config, "[dns]\nzone = [\"example.com\"]\n").unwrap();
    let out = edgewatch(&db, &["--config", config.to_str().unwrap(), "dns", "ingest", &sample("pdns-rec-old.log")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("edgewatch.toml") && stderr.contains("zone"), "{stderr}");
}

#[tokio::test]
async fn a_generated_fleet_is_deterministic_and_every_flavour_gives_edges() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        let status = std::process::Command::new(assert_cmd::cargo::cargo_bin("edgewatch"))
            .args([
                "fleet",
                "generate",
                "--seed",
                "7",
                "--lines",
                "3000",
                "--containers",
                "60",
                "--hosts",
                "12",
                "--dcs",
                "3",
            ])
            .arg("--out")
            .arg(out)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }
    let mut logs: Vec<std::path::PathBuf> = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    assert_eq!(logs.len(), 7, "{logs:?}");
    for log in &logs {
        let twin = b.join(log.file_name().unwrap());
        assert!(std::fs::read(log).unwrap() == std::fs::read(twin).unwrap(), "{} differs between runs", log.display());
    }
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", a.join("inventory.json").to_str().unwrap()]);
    for log in &logs {
        let out = json(&db, &["dns", "ingest", "--zone", "example.com", "--format", "json", log.to_str().unwrap()]);
        let resolved = out["resolved"].as_u64().unwrap();
        assert!(resolved > 500, "{}: only {resolved} of 3000 lines gave edges: {out:#}", log.display());
    }
}
