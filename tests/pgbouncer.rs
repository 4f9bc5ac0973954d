//! Every command through a real pgbouncer (Debian's) in front of the test's own primary:
//! `cmdb import`, `dns ingest`, `graph`, `probe --run-for` (loopback only), `check
//! nagios`, `report`, `sql`, and `serve` with an agent posting results. Answers through
//! pgbouncer equal the answers straight from PostgreSQL.
//!
//! The pool mode is the one docs/scaling.md gives for the installed version: transaction
//! pooling with `max_prepared_statements` from pgbouncer 1.21 on, session pooling before
//! (Debian 12 ships 1.18, whose transaction pooling cannot carry sqlx's prepared
//! statements: see docs/scaling.md, "pgbouncer").

#[path = "common/clusters.rs"]
mod clusters;
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use common::{json, ok, sample};
use graph_store::testing::TestDb;

/// pgbouncer's version as (major, minor), from `pgbouncer --version`.
fn version(binary: &std::path::Path) -> (u32, u32) {
    let out = Command::new(binary).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or_default();
    let number = first.split_whitespace().nth(1).unwrap_or_else(|| panic!("pgbouncer --version said {text:?}"));
    let mut parts = number.split('.').map(|p| p.parse::<u32>().unwrap());
    (parts.next().unwrap(), parts.next().unwrap())
}

/// The pool mode and settings docs/scaling.md gives for this pgbouncer.
/// `EDGEWATCH_TEST_PGBOUNCER_MODE=transaction` forces transaction pooling, to see what it
/// does on an older pgbouncer (on 1.18: `prepared statement "sqlx_s_1" already exists` at
/// the second command).
fn mode_for(version: (u32, u32)) -> (&'static str, String) {
    let common = "ignore_startup_parameters = extra_float_digits\n";
    let transaction = match std::env::var("EDGEWATCH_TEST_PGBOUNCER_MODE").as_deref() {
        Ok("transaction") => true,
        Ok("session") => false,
        _ => version >= (1, 21),
    };
    let statements = if version >= (1, 21) { "max_prepared_statements = 200\n" } else { "" };
    if transaction {
        ("transaction", format!("{common}{statements}"))
    } else {
        ("session", common.to_string())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_works_through_pgbouncer() {
    // Debian installs it in /usr/sbin, which not every PATH has.
    let installed = std::path::Path::new("/usr/sbin/pgbouncer");
    let found =
        if installed.is_file() { Some(installed.to_path_buf()) } else { common::tool("pgbouncer", "pgbouncer") };
    let Some(binary) = found else { return };
    let dir = clusters::scratch();
    let primary = clusters::primary(dir.path()).await;
    let direct = primary.test_db().await;
    let (mode, settings) = mode_for(version(&binary));
    let bouncer = clusters::Bouncer::start(&binary, &primary, dir.path(), mode, &settings);
    eprintln!("pgbouncer {:?} in {mode} pooling", version(&binary));
    // The helpers of `common` run edgewatch against `url`: pgbouncer's.
    let db = TestDb { pool: direct.pool.clone(), url: bouncer.url(), name: "edgewatch".into() };

    ok(&db, &["migrate"]);
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    ok(&db, &["probe", "--interval", "1s", "--packets", "1", "--timeout", "200ms", "--run-for", "4s"]);
    let health: &[&str] = &["sql", "--format", "json", "SELECT name, disconnects FROM node_health ORDER BY name"];
    for args in clusters::READ_QUESTIONS.iter().copied().chain([health]) {
        assert_eq!(json(&db, args), json(&direct, args), "{args:?} through pgbouncer");
    }
    let check = common::edgewatch(&db, &["check", "nagios", "--max-age", "10m"]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(2), "{text}{}", String::from_utf8_lossy(&check.stderr));
    assert!(text.starts_with("EDGEWATCH CRITICAL"), "{text}");
    let report: serde_json::Value =
        serde_json::from_str(&ok(&db, &["report", "--since", "1h", "--format", "json"])).unwrap();
    assert_eq!(report["has_data"], true, "{report}");

    // serve through pgbouncer, and an agent posting its results to it.
    let node = "be1.host101";
    let token = ok(&db, &["agent-token", "create", node]).trim().to_string();
    let server = common::Server::start(&db, &[], &[]);
    let start = Utc::now();
    let agent = Command::new(env!("CARGO_BIN_EXE_edgewatch"))
        .env_remove("DATABASE_URL")
        .env("EDGEWATCH_SPOOL", dir.path().join("spool"))
        .args(["agent", "--server", &server.base, "--name", node, "--token", &token])
        .args(["--allow", "127.0.0.0/8,::1/128", "--interval", "1s", "--packets", "2", "--timeout", "200ms"])
        .args(["--run-for", "4s"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&agent.stderr);
    assert!(agent.status.success(), "{log}");
    let results = graph_store::agents::results_of(&direct.pool, &format!("agent:{node}"), start).await.unwrap();
    assert!(!results.is_empty(), "the agent's results reached the store through serve and pgbouncer: {log}");
    let ready = common::get(format!("{}/readyz", server.base)).await.unwrap();
    assert_eq!(ready.status(), 200);
    let nodes: serde_json::Value =
        common::get(format!("{}/api/v1/nodes", server.base)).await.unwrap().json().await.unwrap();
    assert_eq!(
        nodes.as_array().unwrap().len(),
        json(&direct, &["graph", "nodes", "--format", "json"]).as_array().unwrap().len()
    );
    drop(server);

    let errors: Vec<String> =
        bouncer.log().lines().filter(|l| l.contains("ERROR") || l.contains("FATAL")).map(String::from).collect();
    assert!(errors.is_empty(), "pgbouncer logged errors:\n{}", errors.join("\n"));
    tokio::time::sleep(Duration::from_millis(10)).await;
    direct.pool.close().await;
}
