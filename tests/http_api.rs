//! The read API of a real `edgewatch serve`: every question answered over HTTP as
//! `edgewatch graph … --format json` answers it (now and `at` a past time), the errors,
//! the optional read token, and `/metrics` against figures counted another way.

mod common;

use std::collections::BTreeMap;

use chrono::{SecondsFormat, Utc};
use common::{edgewatch, json, ok, sample, Server};
use graph_store::testing::TestDb;
use serde_json::Value;

/// The sample fleet after discovery, and a probe run (nothing listens on the service
/// ports, so the DNS edges go down). Returns a time between discovery and probing.
fn fleet_with_probes(db: &TestDb) -> String {
    ok(db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    let discovered = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
    std::thread::sleep(std::time::Duration::from_millis(20));
    ok(db, &["probe", "--interval", "1s", "--packets", "1", "--timeout", "200ms", "--run-for", "4s"]);
    discovered
}

async fn get(base: &str, path: &str) -> (u16, Value) {
    let resp = common::get(format!("{base}{path}")).await.unwrap();
    let status = resp.status().as_u16();
    let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(kind, "application/json", "{path}");
    (status, resp.json().await.unwrap())
}

/// The CLI's JSON, also when it exits 1 (`graph path` with no chain).
fn cli(db: &TestDb, args: &[&str]) -> Value {
    let out = edgewatch(db, args);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test]
async fn every_question_over_http_answers_as_the_cli_does() {
    let db = TestDb::new().await;
    let discovered = fleet_with_probes(&db);
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
    let server = Server::start(&db, &[], &[]);

    let pairs: Vec<(String, Vec<&str>)> = vec![
        ("/api/v1/nodes".into(), vec!["graph", "nodes"]),
        ("/api/v1/nodes?dc=Tx&role=be".into(), vec!["graph", "nodes", "--dc", "Tx", "--role", "be"]),
        ("/api/v1/nodes?service=db1".into(), vec!["graph", "nodes", "--service", "db1"]),
        ("/api/v1/edges".into(), vec!["graph", "edges"]),
        ("/api/v1/edges?state=down&source=dns".into(), vec!["graph", "edges", "--state", "down", "--source", "dns"]),
        ("/api/v1/edges?all=true&host=host101".into(), vec!["graph", "edges", "--all", "--host", "host101"]),
        ("/api/v1/broken".into(), vec!["graph", "broken"]),
        ("/api/v1/nodes/fe1.host101/deps?depth=2".into(), vec!["graph", "deps", "fe1.host101", "--depth", "2"]),
        ("/api/v1/nodes/fe1.host101/deps".into(), vec!["graph", "deps", "fe1.host101"]),
        (
            "/api/v1/nodes/db1a.host101/dependents?depth=0".into(),
            vec!["graph", "dependents", "db1a.host101", "--depth", "0"],
        ),
        ("/api/v1/blast/host102".into(), vec!["graph", "blast", "host102"]),
        ("/api/v1/blast/VA".into(), vec!["graph", "blast", "VA"]),
        ("/api/v1/spof".into(), vec!["graph", "spof"]),
        ("/api/v1/path?from=fe1.host101&to=db2a.host102".into(), vec!["graph", "path", "fe1.host101", "db2a.host102"]),
        ("/api/v1/path?from=db2a.host102&to=fe1.host101".into(), vec!["graph", "path", "db2a.host102", "fe1.host101"]),
        (format!("/api/v1/nodes?at={discovered}"), vec!["graph", "nodes", "--at", &discovered]),
        (format!("/api/v1/history/edges?at={discovered}"), vec!["graph", "edges", "--at", &discovered]),
        (format!("/api/v1/history/edges?at={now}&state=down"), vec!["graph", "edges", "--at", &now, "--state", "down"]),
        (format!("/api/v1/broken?at={now}"), vec!["graph", "broken", "--at", &now]),
        (format!("/api/v1/spof?at={discovered}"), vec!["graph", "spof", "--at", &discovered]),
        (format!("/api/v1/blast/Tx?at={discovered}"), vec!["graph", "blast", "Tx", "--at", &discovered]),
        (
            format!("/api/v1/diff?from={discovered}&to={now}"),
            vec!["graph", "diff", "--from", &discovered, "--to", &now],
        ),
    ];
    for (path, mut args) in pairs {
        args.extend(["--format", "json"]);
        let (status, answer) = get(&server.base, &path.replace('+', "%2B")).await;
        assert_eq!(status, 200, "{path}: {answer}");
        assert_eq!(answer, cli(&db, &args), "{path} vs edgewatch {}", args.join(" "));
    }

    // The answers are not trivially empty, and their times are UTC.
    let (_, broken) = get(&server.base, "/api/v1/broken").await;
    assert!(!broken.as_array().unwrap().is_empty());
    let (_, diff) = get(&server.base, &format!("/api/v1/diff?from={discovered}&to={now}")).await;
    assert!(!diff["edges_changed"].as_array().unwrap().is_empty(), "{diff}");
    let (_, edges) = get(&server.base, "/api/v1/edges").await;
    for e in edges.as_array().unwrap() {
        for field in ["first_seen", "last_seen"] {
            let t = e[field].as_str().unwrap();
            assert!(t.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(t).is_ok(), "{field} {t}");
        }
    }

    // Errors are JSON and say what is wrong.
    for (path, status, says) in [
        ("/api/v1/nodes/no.such.node/deps", 404, "no.such.node"),
        ("/api/v1/blast/nowhere", 404, "nowhere"),
        ("/api/v1/path?from=fe1.host101&to=ghost", 404, "ghost"),
        ("/api/v1/spof?at=yesterday", 400, "at: \"yesterday\" is not an RFC 3339 time"),
        ("/api/v1/diff?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", 400, "from is after to"),
        ("/api/v1/nodes/fe1.host101/deps?depth=-1", 400, "depth"),
        ("/api/v1/history/edges", 400, "at"),
        ("/api/v1/nodes?dc=T%00x", 400, "NUL"),
        ("/api/v1/nodes?all=true&at=2026-01-01T00:00:00Z", 400, "all"),
    ] {
        let (got, body) = get(&server.base, path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(body["error"].as_str().unwrap().contains(says), "{path}: {body}");
    }
}

#[tokio::test]
async fn a_configured_read_token_guards_the_questions_and_metrics_only() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgewatch.toml");
    std::fs::write(&config, "[api]\nread_token = \"s3cret-from-file\"\n").unwrap();

    for (server, token) in [
        (Server::start(&db, &["--config", config.to_str().unwrap()], &[]), "s3cret-from-file"),
        (Server::start(&db, &[], &[("EDGEWATCH_READ_TOKEN", "s3cret-from-env")]), "s3cret-from-env"),
    ] {
        let http = common::http();
        for path in ["/api/v1/nodes", "/api/v1/spof", "/metrics"] {
            let url = format!("{}{path}", server.base);
            let none = http.get(&url).send().await.unwrap();
            assert_eq!(none.status(), 401, "{path}");
            assert_eq!(none.headers()["www-authenticate"], "Bearer");
            let wrong = http.get(&url).bearer_auth("not-it").send().await.unwrap();
            assert_eq!(wrong.status(), 401, "{path}");
            let body: Value = wrong.json().await.unwrap();
            assert!(body["error"].as_str().unwrap().contains("read token"), "{body}");
            let right = http.get(&url).bearer_auth(token).send().await.unwrap();
            assert_eq!(right.status(), 200, "{path}");
        }
        for path in ["/healthz", "/readyz", "/api/v1/openapi.json"] {
            assert_eq!(http.get(format!("{}{path}", server.base)).send().await.unwrap().status(), 200, "{path}");
        }
    }
    // Without a token configured, the questions are open.
    let open = Server::start(&db, &[], &[]);
    assert_eq!(common::get(format!("{}/api/v1/nodes", open.base)).await.unwrap().status(), 200);
}

/// `name{labels} value` lines of an OpenMetrics text, by name and labels.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').unwrap();
            (key.to_string(), value.parse().unwrap())
        })
        .collect()
}

fn sum(samples: &BTreeMap<String, f64>, prefix: &str) -> f64 {
    samples.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum()
}

#[tokio::test]
async fn metrics_agree_with_the_store_counted_another_way() {
    let db = TestDb::new().await;
    fleet_with_probes(&db);
    let server = Server::start(&db, &[], &[]);
    let scrape = || async {
        let resp = common::get(format!("{}/metrics", server.base)).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
        let text = resp.text().await.unwrap();
        assert!(text.ends_with("# EOF\n"), "{text}");
        samples(&text)
    };
    let m = scrape().await;

    // Edges by state, as `graph edges` counts them.
    let edges = json(&db, &["graph", "edges", "--format", "json"]);
    for state in ["up", "down", "degraded", "stale", "unknown"] {
        let n = edges.as_array().unwrap().iter().filter(|e| e["state"] == state).count();
        assert_eq!(m[&format!("edgewatch_edges{{state=\"{state}\"}}")], n as f64, "{state}");
    }
    // Probe results: every row of the history, by verdict.
    let rows =
        json(&db, &["sql", "--format", "json", "SELECT kind, verdict, count(*) AS n FROM probe_results GROUP BY 1, 2"]);
    let rows = rows.as_array().unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        let key = format!(
            "edgewatch_probe_results_total{{kind=\"{}\",verdict=\"{}\"}}",
            r["kind"].as_str().unwrap(),
            r["verdict"].as_str().unwrap()
        );
        assert_eq!(m[&key], r["n"].as_i64().unwrap() as f64, "{key}");
    }
    let total: i64 = rows.iter().map(|r| r["n"].as_i64().unwrap()).sum();
    assert_eq!(sum(&m, "edgewatch_probe_results_total"), total as f64);
    // DNS lines: every line of the log, once, by result.
    let lines = std::fs::read_to_string(sample("pdns-auth-console.log")).unwrap().lines().count();
    assert_eq!(sum(&m, "edgewatch_dns_log_lines_total"), lines as f64);
    let stats = json(&db, &["dns", "stats", "--format", "json"]);
    for s in stats["skipped"].as_array().unwrap() {
        let key = format!("edgewatch_dns_log_lines_total{{result=\"{}\"}}", s["name"].as_str().unwrap());
        assert_eq!(m[&key], s["count"].as_i64().unwrap() as f64, "{key}");
    }
    // Nodes by data center; the store answered; the pool is there.
    assert_eq!(m["edgewatch_nodes{dc=\"Tx\"}"] + m["edgewatch_nodes{dc=\"VA\"}"], 29.0);
    assert_eq!(m["edgewatch_store_up"], 1.0);
    assert!(m["edgewatch_db_pool_max_connections"] >= 1.0);
    assert!(m.contains_key("edgewatch_db_pool_connections{state=\"idle\"}"));

    // API latency: three questions on one route are three observations of it.
    for _ in 0..3 {
        common::get(format!("{}/api/v1/nodes/fe1.host101/deps", server.base)).await.unwrap();
    }
    let m = scrape().await;
    let key = "edgewatch_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/nodes/{name}/deps\",status=\"200\"}";
    assert_eq!(m[key], 3.0, "{m:?}");
}
