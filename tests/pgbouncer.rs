//! Every command through a real pgbouncer (Debian's) in front of the test's own primary,
//! in both pool modes, whatever pgbouncer's version (Debian 12 ships 1.18, which does not
//! track prepared statements):
//!
//! - `pool_mode = transaction` with `--pooler transaction`: `migrate`, `cmdb import`,
//!   `dns ingest`, `probe --run-for` (loopback only), the graph questions several at once,
//!   `sql`, `check nagios`, `report`, and `serve` with an agent posting results, through
//!   a pool of two server connections, so that clients really share them. Answers equal
//!   the answers straight from PostgreSQL. PostgreSQL's log of the statements that came
//!   through pgbouncer runs no named prepared statement (`sqlx_s_…`) but those sqlx
//!   makes itself (the migrator's, describing a query), and no named statement is left
//!   on a server connection afterwards.
//! - `pool_mode = session` with `--pooler session`: the questions again.
//!
//! See docs/scaling.md, "pgbouncer".

#[path = "common/clusters.rs"]
mod clusters;
mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use chrono::Utc;
use common::{json, sample};
use graph_store::testing::TestDb;
use serde_json::Value;

/// pgbouncer's version as (major, minor), from `pgbouncer --version`.
fn version(binary: &std::path::Path) -> (u32, u32) {
    let out = Command::new(binary).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or_default();
    let number = first.split_whitespace().nth(1).unwrap_or_else(|| panic!("pgbouncer --version said {text:?}"));
    let mut parts = number.split('.').map(|p| p.parse::<u32>().unwrap());
    (parts.next().unwrap(), parts.next().unwrap())
}

/// The settings every pool mode needs (docs/scaling.md): sqlx sends extra_float_digits.
const COMMON: &str = "ignore_startup_parameters = extra_float_digits\n";

/// edgewatch through pgbouncer: its URL, and the `--pooler` edgewatch is told.
struct Through {
    db: TestDb,
    pooler: &'static str,
}

impl Through {
    fn run(&self, args: &[&str]) -> Output {
        assert_cmd::Command::cargo_bin("edgewatch")
            .unwrap()
            .env_remove("DATABASE_URL")
            .env_remove("EDGEWATCH_LOG")
            .env_remove("EDGEWATCH_POOLER")
            .args(["--database-url", &self.db.url, "--pooler", self.pooler])
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{args:?} through pgbouncer ({}):\n{text}{}", self.pooler, stderr(&out));
        text
    }

    fn json(&self, args: &[&str]) -> Value {
        let text = self.ok(args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{text}"))
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The read questions, all at once (each its own process and connections), through
/// pgbouncer and straight from PostgreSQL: the answers are equal.
fn ask_all_at_once(through: &Through, direct: &TestDb) {
    let health: &[&str] = &["sql", "--format", "json", "SELECT name, disconnects FROM node_health ORDER BY name"];
    let questions: Vec<&[&str]> = clusters::READ_QUESTIONS.iter().copied().chain([health]).collect();
    let answers: Vec<Value> = std::thread::scope(|s| {
        let asked: Vec<_> = questions.iter().map(|args| s.spawn(|| through.json(args))).collect();
        asked.into_iter().map(|a| a.join().unwrap()).collect()
    });
    for (args, answer) in questions.iter().zip(answers) {
        assert_eq!(answer, json(direct, args), "{args:?} through pgbouncer ({})", through.pooler);
    }
}

/// The nagios check and the report through pgbouncer.
fn check_and_report(through: &Through) {
    let check = through.run(&["check", "nagios", "--max-age", "10m"]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(2), "{text}{}", stderr(&check));
    assert!(text.starts_with("EDGEWATCH CRITICAL"), "{text}");
    let report: Value = serde_json::from_str(&through.ok(&["report", "--since", "1h", "--format", "json"])).unwrap();
    assert_eq!(report["has_data"], true, "{report}");
}

/// `serve` through pgbouncer, and an agent posting its results to it.
async fn serve_with_an_agent(through: &Through, direct: &TestDb, spool: &std::path::Path) {
    let node = "be1.host101";
    let token = through.ok(&["agent-token", "create", node]).trim().to_string();
    let server = common::Server::start(&through.db, &["--pooler", through.pooler], &[]);
    let start = Utc::now();
    let agent = Command::new(env!("CARGO_BIN_EXE_edgewatch"))
        .env_remove("DATABASE_URL")
        .env("EDGEWATCH_SPOOL", spool)
        .args(["agent", "--server", &server.base, "--name", node, "--token", &token])
        .args(["--allow", "127.0.0.0/8,::1/128", "--interval", "1s", "--packets", "2", "--timeout", "200ms"])
        .args(["--run-for", "4s"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = stderr(&agent);
    assert!(agent.status.success(), "{log}");
    let results = graph_store::agents::results_of(&direct.pool, &format!("agent:{node}"), start).await.unwrap();
    assert!(!results.is_empty(), "the agent's results reached the store through serve and pgbouncer: {log}");
    let ready = common::get(format!("{}/readyz", server.base)).await.unwrap();
    assert_eq!(ready.status(), 200);
    let nodes: Value = common::get(format!("{}/api/v1/nodes", server.base)).await.unwrap().json().await.unwrap();
    assert_eq!(
        nodes.as_array().unwrap().len(),
        json(direct, &["graph", "nodes", "--format", "json"]).as_array().unwrap().len()
    );
}

/// Whether a logged statement is one sqlx prepares named whatever edgewatch asks: the
/// migrator's, and those of describing a query for `edgewatch sql` (the query parsed,
/// never run, then its columns' nullability: `EXPLAIN … EXECUTE` it, `attnotnull`).
/// edgewatch closes them before their transaction ends, which [`no_statement_left`]
/// checks.
fn sqlx_own(line: &str) -> bool {
    ["_sqlx_migrations", " parse sqlx_s_", "EXPLAIN (VERBOSE, FORMAT JSON) EXECUTE sqlx_s_", "SELECT NOT attnotnull"]
        .iter()
        .any(|s| line.contains(s))
}

/// No named statement is left on either of pgbouncer's two server connections: two
/// `edgewatch sql` at once hold both, and each counts the statements prepared on its
/// server connection before its own transaction began.
fn no_statement_left(through: &Through) {
    let ask = "SELECT pg_backend_pid() AS pid, \
               (SELECT count(*) FROM pg_prepared_statements WHERE prepare_time < now()) AS left_over, \
               (SELECT 1 FROM pg_sleep(1)) AS slept";
    let answers: Vec<Value> = std::thread::scope(|s| {
        let asked: Vec<_> = (0..2).map(|_| s.spawn(|| through.json(&["sql", "--format", "json", ask]))).collect();
        asked.into_iter().map(|a| a.join().unwrap()[0].clone()).collect()
    });
    assert_ne!(answers[0]["pid"], answers[1]["pid"], "both server connections: {answers:?}");
    for answer in &answers {
        assert_eq!(answer["left_over"], 0, "named statements left on a server connection: {answers:?}");
    }
}

/// pgbouncer logged no error.
fn no_errors(bouncer: &clusters::Bouncer) {
    let errors: Vec<String> =
        bouncer.log().lines().filter(|l| l.contains("ERROR") || l.contains("FATAL")).map(String::from).collect();
    assert!(errors.is_empty(), "pgbouncer logged errors:\n{}", errors.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_works_through_pgbouncer_in_transaction_and_session_pooling() {
    // Debian installs it in /usr/sbin, which not every PATH has.
    let installed = std::path::Path::new("/usr/sbin/pgbouncer");
    let found =
        if installed.is_file() { Some(installed.to_path_buf()) } else { common::tool("pgbouncer", "pgbouncer") };
    let Some(binary) = found else { return };
    eprintln!("pgbouncer {:?}", version(&binary));
    let dir = clusters::scratch();
    let primary = clusters::primary(dir.path()).await;
    let direct = primary.test_db().await;

    // Transaction pooling on two server connections. Each server connection pgbouncer
    // opens logs every statement it runs, with the name of its prepared statement
    // (`parse <unnamed>: …` or `execute sqlx_s_1: …`), in the primary's log.
    let bouncer = clusters::Bouncer::start(
        &binary,
        &primary,
        dir.path(),
        "transaction",
        "connect_query='SET log_min_duration_statement = 0'",
        &format!("{COMMON}default_pool_size = 2\n"),
    );
    let db = TestDb { pool: direct.pool.clone(), url: bouncer.url(), name: "edgewatch".into() };
    let through = Through { db, pooler: "transaction" };
    through.ok(&["migrate"]);
    through.ok(&["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    through.ok(&["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    through.ok(&["probe", "--interval", "1s", "--packets", "1", "--timeout", "200ms", "--run-for", "4s"]);
    ask_all_at_once(&through, &direct);
    check_and_report(&through);
    serve_with_an_agent(&through, &direct, &dir.path().join("spool")).await;
    no_errors(&bouncer);
    no_statement_left(&through);
    let log = std::fs::read_to_string(primary.cluster.log_file()).unwrap();
    let named = |l: &&str| l.contains("sqlx_s_") && !sqlx_own(l);
    let statements: Vec<&str> = log.lines().filter(|l| l.contains("duration: ")).collect();
    assert!(statements.iter().any(|l| l.contains(" <unnamed>: ")), "the primary logged the statements:\n{log}");
    let named: Vec<&str> = statements.into_iter().filter(named).collect();
    assert!(named.is_empty(), "named statements through pgbouncer in transaction pooling:\n{}", named.join("\n"));
    drop(bouncer);

    // Session pooling.
    let bouncer = clusters::Bouncer::start(&binary, &primary, dir.path(), "session", "", COMMON);
    let db = TestDb { pool: direct.pool.clone(), url: bouncer.url(), name: "edgewatch".into() };
    let through = Through { db, pooler: "session" };
    through.ok(&["migrate"]);
    ask_all_at_once(&through, &direct);
    check_and_report(&through);
    no_errors(&bouncer);
    drop(bouncer);

    tokio::time::sleep(Duration::from_millis(10)).await;
    direct.pool.close().await;
}
