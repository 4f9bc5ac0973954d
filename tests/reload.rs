//! SIGHUP with real processes: `serve` reads its config file again, says each change,
//! judges results by reloaded thresholds (30 % loss: degraded, then fine), says which
//! changes wait for a restart, keeps everything when the file is bad (naming file and
//! key), and stops with 0 at SIGTERM; `probe` starts its workers and trace loop again with
//! the new settings (a new `[[trace.targets]]` becomes a traced pair); `agent` and `run`
//! go on, `run` with the new report time.
//! No probe leaves the host: the only target is 127.0.0.9, the agent's server 127.0.0.1.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{json, ok, sample, Daemon};
use graph_store::testing::TestDb;

const SAID: Duration = Duration::from_secs(20);

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// External trace targets the store holds pairs for.
fn external_pairs(db: &TestDb) -> Vec<String> {
    let rows = json(db, &["sql", "--format", "json", "SELECT dst FROM trace_pairs WHERE external ORDER BY dst"]);
    rows.as_array().unwrap().iter().map(|r| r["dst"].as_str().unwrap().to_string()).collect()
}

/// One cycle of `edge` losing 3 of 10 packets, as an agent posts it.
async fn post_lossy(base: &str, token: &str, edge: i64, at: chrono::DateTime<chrono::Utc>) {
    let body = serde_json::json!({"results": [{"edge_id": edge, "kind": "icmp",
        "at": at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "outcome": {"sent": 10, "received": 7, "loss_pct": 30.0, "rtt_min_ms": 1.0, "rtt_avg_ms": 1.0,
                    "rtt_max_ms": 1.0, "rtt_stddev_ms": 0.0}}]});
    let answer = common::http()
        .post(format!("{base}/api/v1/agents/fe1.host101/results"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{:?}", answer.text().await);
}

fn verdicts(db: &TestDb, edge: i64) -> Vec<String> {
    let sql = format!("SELECT verdict FROM probe_results WHERE edge_id = {edge} ORDER BY at");
    let rows = json(db, &["sql", "--format", "json", &sql]);
    rows.as_array().unwrap().iter().map(|r| r["verdict"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn serve_applies_a_reloaded_config_file_and_says_what_changed() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    let token = ok(&db, &["agent-token", "create", "fe1.host101"]).trim().to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgewatch.toml");
    write(&config, "");
    let cfg = config.to_str().unwrap();
    let mut serve = Daemon::spawn(&db, &["--config", cfg, "serve", "--listen", "127.0.0.1:0"], dir.path());
    let log = serve.wait_for("SIGHUP reloads the config file", 0, SAID);
    let base = log.split("serving the API on ").nth(1).unwrap().split("/api/v1/").next().unwrap().to_string();
    let targets = common::agent_targets(&base, "fe1.host101", &token).await;
    let edge = targets["targets"][0]["edge_id"].as_i64().expect("fe1.host101 has edges");
    let now = chrono::Utc::now();
    post_lossy(&base, &token, edge, now - chrono::Duration::seconds(20)).await;
    assert_eq!(verdicts(&db, edge), ["degraded"], "30 % loss is degraded at the default 20 %");

    // A new threshold, and a key only a restart changes.
    let reloaded = "[thresholds]\ndegraded_loss_pct = 35.0\n[serve]\nlisten = \"127.0.0.1:9\"\n";
    write(&config, reloaded);
    serve.signal("HUP");
    let log = serve.wait_for("SIGHUP: [thresholds]", 0, SAID);
    assert!(log.contains("SIGHUP: [thresholds] degraded_loss_pct: (default) → 35.0 (applied)"), "{log}");
    let restart = "SIGHUP: [serve] listen: (default) → \"127.0.0.1:9\" (not applied: serve takes it at its next start)";
    assert!(log.contains(restart), "{log}");
    post_lossy(&base, &token, edge, now - chrono::Duration::seconds(10)).await;
    assert_eq!(verdicts(&db, edge), ["degraded", "ok"], "30 % loss is fine below the reloaded 35 %");

    // A bad file changes nothing and says where it is wrong.
    write(&config, "[thresholds]\ndegraded_los_pct = 50.0\n");
    serve.signal("HUP");
    let log = serve.wait_for("keeping the settings in use", 0, SAID);
    let said = &log[log.find("keeping the settings in use").unwrap()..];
    assert!(
        said.contains(&format!("{cfg}: TOML parse error at line 2")) && said.contains("degraded_los_pct"),
        "{said}"
    );
    post_lossy(&base, &token, edge, now).await;
    assert_eq!(verdicts(&db, edge), ["degraded", "ok", "ok"], "the bad file left 35 % in force");
    // The same file again: nothing changed.
    write(&config, reloaded);
    serve.signal("HUP");
    serve.wait_for("read again; nothing changed", 0, SAID);

    let status = serve.stop(Duration::from_secs(10));
    assert!(status.success(), "serve after SIGTERM: {status}\n{}", serve.log());
}

#[tokio::test]
async fn probe_agent_and_run_live_through_sighup() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgewatch.toml");
    write(&config, "[trace]\ninterval = \"2s\"\n");
    let cfg = config.to_str().unwrap();
    let allow = "127.0.0.0/8,::1/128";
    let mut probe = Daemon::spawn(&db, &["--config", cfg, "probe", "--interval", "1s", "--allow", allow], dir.path());
    let mut agent = Daemon::spawn(
        &db,
        &[
            "--config",
            cfg,
            "agent",
            "--server",
            "http://127.0.0.1:1",
            "--name",
            "nowhere",
            "--token",
            "t",
            "--allow",
            allow,
            "--spool",
            "off",
            "--no-trace",
        ],
        dir.path(),
    );
    let mut run = Daemon::spawn(&db, &["--config", cfg, "run"], dir.path());
    probe.wait_for("SIGHUP reloads the config file", 0, SAID);
    run.wait_for("next report at", 0, SAID);
    std::thread::sleep(Duration::from_secs(1));

    write(
        &config,
        "[trace]\ninterval = \"2s\"\n[[trace.targets]]\nname = \"lab-target\"\naddress = \"127.0.0.9\"\n\
         [thresholds]\nfailed_loss_pct = 95.0\n[report]\nat = \"03:30\"\n",
    );
    for d in [&probe, &agent, &run] {
        d.signal("HUP");
    }
    let log = probe.wait_for("the workers and the trace loop start again", 0, SAID);
    assert!(log.contains("SIGHUP: [thresholds] failed_loss_pct: (default) → 95.0 (applied)"), "{log}");
    assert!(
        log.contains("[report] at: (default) → \"03:30\" (not applied: probe takes it at its next start)"),
        "{log}"
    );
    let target = "SIGHUP: [trace] targets: (default) → [{ address = \"127.0.0.9\", name = \"lab-target\" }] (applied)";
    assert!(log.contains(target), "{log}");
    // The new trace loop puts the new target in place (it traces only with raw sockets).
    if nix::unistd::geteuid().is_root() {
        let start = std::time::Instant::now();
        while external_pairs(&db).is_empty() {
            assert!(start.elapsed() < SAID, "the reloaded target never became a pair:\n{}", probe.log());
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(external_pairs(&db), ["lab-target"]);
    } else {
        eprintln!("not root: not checking that the reloaded trace target is traced (the tracer needs raw sockets)");
    }
    let log = agent.wait_for("SIGHUP: [thresholds] failed_loss_pct", 0, SAID);
    assert!(log.contains("(not applied: agent takes it at its next start)"), "{log}");
    let log = run.wait_for("next report at", 1, SAID);
    assert!(log.contains("SIGHUP: [report] at: (default) → \"03:30\" (applied)"), "{log}");
    let next = log.lines().rfind(|l| l.starts_with("next report at")).unwrap();
    assert!(next.contains(" 03:30 "), "run works out the next report from the new time: {next}");

    for (name, d) in [("probe", &mut probe), ("agent", &mut agent), ("run", &mut run)] {
        let status = d.stop(Duration::from_secs(10));
        assert!(status.success(), "{name} after SIGHUP and SIGTERM: {status}\n{}", d.log());
    }
    assert!(probe.log().lines().last().unwrap_or_default().starts_with("probed "), "{}", probe.log());
}
