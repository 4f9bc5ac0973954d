//! Reads on a real streaming standby (`--read-database-url`): the test starts a primary
//! of its own, makes a standby of it with `pg_basebackup -R`, fills the primary with the
//! sample fleet (probed over loopback), and once the standby has caught up checks that
//! `graph`, `check nagios` and `report` answer from the standby exactly as from the
//! primary. Then it pauses replay on the standby (`pg_wal_replay_pause()`), writes on the
//! primary, and checks that the lag is reported (`/readyz`, `/metrics`, the GETs'
//! headers, the CLI's note) and that past `[database] max_read_lag` reads fall back to
//! the primary (the answer has the new write), while within a larger bound they still
//! come from the standby (the answer does not).

#[path = "common/clusters.rs"]
mod clusters;
mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::{edgewatch, json, ok, sample};
use graph_store::testing::TestDb;
use serde_json::Value;

/// `edgewatch --database-url <primary> --read-database-url <standby> [--config cfg] ARGS…`
fn on_standby(db: &TestDb, standby: &str, config: &str, args: &[&str]) -> Output {
    let mut all = vec!["--read-database-url", standby, "--config", config];
    all.extend_from_slice(args);
    edgewatch(db, &all)
}

fn stdout(out: &Output, what: &str) -> String {
    assert!(out.status.code().is_some_and(|c| c <= 2), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn config(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// The report without what depends on the moment it was made: its bounds (`--since` ends
/// now), the down time of edges still down (it grows until now), and so the order of the
/// lists ranked by it.
fn report_json(text: &str) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for key in ["generated_at", "from", "to", "until", "down_minutes"] {
                    map.remove(key);
                }
                map.values_mut().for_each(strip);
            }
            // Lists ordered by down time: near-ties order by when "now" was.
            Value::Array(items) => {
                items.iter_mut().for_each(strip);
                items.sort_by_key(|item| item.to_string());
            }
            _ => {}
        }
    }
    let mut v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("report: {e}\n{text}"));
    strip(&mut v);
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_answers_like_the_primary_and_reads_fall_back_past_the_lag_bound() {
    let dir = clusters::scratch();
    let primary = clusters::primary(dir.path()).await;
    let db = primary.test_db().await;
    let standby = clusters::standby(&primary, dir.path());
    let standby_url = standby.url();
    let standby_pool = standby.pool().await;

    // The sample fleet, probed over loopback: nothing listens on the service ports, so the
    // DNS edges go down and the check has something to say.
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    ok(&db, &["probe", "--interval", "1s", "--packets", "1", "--timeout", "200ms", "--run-for", "4s"]);
    // The check reuses the diagnosis it stored on the primary for as long as the test runs.
    let bounded =
        config(dir.path(), "bounded.toml", "[database]\nmax_read_lag = \"1s\"\n[check]\ndiagnosis_max_age = \"1h\"\n");
    let lenient = config(dir.path(), "lenient.toml", "[database]\nmax_read_lag = \"1h\"\n");
    // The check stores its diagnosis on the primary; the standby's check reuses it.
    let check = ["check", "nagios", "--max-age", "10m"];
    let primary_check =
        stdout(&edgewatch(&db, &[&["--config", bounded.as_str()][..], &check].concat()), "check on the primary");
    let primary_report = report_json(&ok(&db, &["report", "--since", "1h", "--format", "json"]));
    clusters::catch_up(&db.pool, &standby_pool).await;

    let is_standby =
        on_standby(&db, &standby_url, &bounded, &["sql", "--format", "json", "SELECT pg_is_in_recovery() AS r"]);
    assert_eq!(json_of(&is_standby)[0]["r"], Value::Bool(true), "the reads went to the standby");
    assert!(String::from_utf8_lossy(&is_standby.stderr).is_empty(), "{}", String::from_utf8_lossy(&is_standby.stderr));

    for args in clusters::READ_QUESTIONS {
        let want = json(&db, args);
        let got = on_standby(&db, &standby_url, &bounded, args);
        assert_eq!(json_of(&got), want, "{args:?} from the standby");
        assert!(got.stderr.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&got.stderr));
    }
    let standby_check = stdout(&on_standby(&db, &standby_url, &bounded, &check), "check on the standby");
    assert!(primary_check.starts_with("EDGEWATCH CRITICAL"), "{primary_check}");
    assert_eq!(without_data_age(&standby_check), without_data_age(&primary_check));
    let out = on_standby(&db, &standby_url, &bounded, &["report", "--since", "1h", "--format", "json"]);
    assert_eq!(report_json(&stdout(&out, "report on the standby")), primary_report);

    // A server reading from the standby says so, and how old its answers may be.
    let server = common::Server::start(&db, &["--read-database-url", &standby_url, "--config", &bounded], &[]);
    let ready = readyz(&server).await;
    assert_eq!(ready["read_side"]["reading_from"], "standby", "{ready}");
    assert!(ready["read_side"]["lag_seconds"].as_f64().unwrap() <= 1.0, "{ready}");
    let nodes = common::get(format!("{}/api/v1/nodes", server.base)).await.unwrap();
    assert_eq!(nodes.headers()["x-edgewatch-read-from"], "standby");
    assert!(nodes.headers()["x-edgewatch-read-lag"].to_str().unwrap().parse::<f64>().unwrap() <= 1.0);

    // Replay paused, a write on the primary: the standby falls behind.
    graph_store::testing::execute(&standby_pool, "SELECT pg_wal_replay_pause()").await;
    let node = "be1.host101";
    let renamed = "paused-replay";
    graph_store::testing::execute(&db.pool, &format!("UPDATE nodes SET role = '{renamed}' WHERE name = '{node}'"))
        .await;
    let role_of = |nodes: &Value| {
        nodes.as_array().unwrap().iter().find(|n| n["name"] == node).map(|n| n["role"].clone()).unwrap()
    };
    let started = Instant::now();
    let ready = loop {
        let ready = readyz(&server).await;
        if ready["read_side"]["reading_from"] == "primary" {
            break ready;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no fall-back to the primary: {ready}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(ready["read_side"]["lag_seconds"].as_f64().unwrap() > 1.0, "{ready}");
    assert!(ready["read_side"]["reason"].as_str().unwrap().contains("max_read_lag"), "{ready}");
    let metrics = common::get(format!("{}/metrics", server.base)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("edgewatch_read_fallback 1"), "{metrics}");
    let lag_line = metrics.lines().find(|l| l.starts_with("edgewatch_read_replica_lag_seconds ")).unwrap();
    assert!(lag_line.split(' ').nth(1).unwrap().parse::<f64>().unwrap() > 1.0, "{lag_line}");
    let nodes = common::get(format!("{}/api/v1/nodes", server.base)).await.unwrap();
    assert_eq!(nodes.headers()["x-edgewatch-read-from"], "primary");
    assert!(nodes.headers().get("x-edgewatch-read-lag").is_none());
    assert_eq!(role_of(&nodes.json().await.unwrap()), renamed, "the fallback reads the primary's write");

    // The CLI past the bound: the primary's answer, and a note saying why.
    let out = on_standby(&db, &standby_url, &bounded, &["graph", "nodes", "--format", "json"]);
    assert_eq!(role_of(&json_of(&out)), renamed);
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(note.contains("reading from the primary") && note.contains("behind"), "{note}");
    assert_eq!(note.lines().count(), 1, "one note, no log line besides: {note}");
    // Within a bound of an hour the standby still answers, as it was before the write.
    let out = on_standby(&db, &standby_url, &lenient, &["graph", "nodes", "--format", "json"]);
    assert_ne!(role_of(&json_of(&out)), renamed, "{}", String::from_utf8_lossy(&out.stderr));

    graph_store::testing::execute(&standby_pool, "SELECT pg_wal_replay_resume()").await;
    drop(server);
    standby_pool.close().await;
    db.pool.close().await;
}

/// The check's answer without its perfdata `data_age=Ns` (seconds since the newest
/// result: it grows between the two checks).
fn without_data_age(text: &str) -> String {
    let Some((head, tail)) = text.split_once("data_age=") else { return text.to_string() };
    format!("{head}data_age=…{}", tail.trim_start_matches(|c: char| c.is_ascii_digit()))
}

fn json_of(out: &Output) -> Value {
    let text = stdout(out, "edgewatch");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

async fn readyz(server: &common::Server) -> Value {
    common::get(format!("{}/readyz", server.base)).await.unwrap().json().await.unwrap()
}
