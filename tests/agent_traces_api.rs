//! The agent API's path tracing over real HTTP: `edgewatch serve` on port 0 (`[trace]
//! interval = "1s"`, so it makes the sample fleet's host pairs at once) against a fresh
//! database on a real PostgreSQL, spoken to with an HTTP client. No packet is sent: the
//! runs are made up.
//!
//! Covered: a claim leases only the due pairs of the agent's own host, each with the
//! pair's flow; the token and node rules (401, 403, 404); bodies refused saying what is
//! wrong (400) and runs of another host's pairs refused naming them (403); a run stored
//! once however often it is sent; a pair given back is free again.

mod common;

use chrono::{SubsecRound, Utc};
use common::{json, ok, sample, Server};
use graph_store::testing::{execute, TestDb};
use reqwest::StatusCode;
use serde_json::{json, Value};

const CONFIG: &str = "[trace]\ninterval = \"1s\"\n";

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn post(&self, node: &str, leaf: &str, token: Option<&str>, body: &str) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!("{}/api/v1/agents/{node}/{leaf}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

fn error(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_else(|| panic!("no error message: {body}"))
}

/// A made-up run of three hops that reached its destination `dst`.
fn run(at: &str, dst: &str) -> Value {
    let hop = |ttl: u8, addr: &str| {
        json!({"ttl": ttl, "addrs": [addr], "sent": 3, "received": 3, "rtt_best_ms": 1.0, "rtt_avg_ms": 1.5,
               "rtt_worst_ms": 2.0, "rtt_stddev_ms": 0.4, "jitter_ms": 0.5})
    };
    json!({"at": at, "hops": [hop(1, "10.0.0.1"), hop(2, "10.0.1.1"), hop(3, dst)], "reached": true})
}

/// The one column of a query's rows (`edgewatch sql`).
fn column(db: &TestDb, query: &str) -> Vec<Value> {
    let rows = json(db, &["sql", "--format", "json", query]);
    rows.as_array().unwrap().iter().map(|r| r.as_object().unwrap().values().next().unwrap().clone()).collect()
}

async fn pairs_of(db: &TestDb, host: &str) -> Vec<i64> {
    let q = format!("SELECT id FROM trace_pairs WHERE src = '{host}' ORDER BY id");
    column(db, &q).iter().map(|v| v.as_i64().unwrap()).collect()
}

#[tokio::test]
async fn agents_lease_their_hosts_pairs_and_what_is_refused_says_why() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    let mine = ok(&db, &["agent-token", "create", "fe1.host101"]).trim().to_string();
    let theirs = ok(&db, &["agent-token", "create", "fe1.host201"]).trim().to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgewatch.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let server = Server::start(&db, &["--config", config.to_str().unwrap()], &[]);
    let api = Api { base: server.base.clone(), http: common::http() };

    // serve makes the pairs from the graph within a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (own, other) = loop {
        let (own, other) = (pairs_of(&db, "host101").await, pairs_of(&db, "host201").await);
        if !own.is_empty() && !other.is_empty() {
            break (own, other);
        }
        assert!(std::time::Instant::now() < deadline, "serve made no trace pairs");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    execute(&db.pool, "UPDATE trace_pairs SET next_trace_at = now() - interval '1 s'").await;

    // Tokens and nodes.
    let (status, body) = api.post("fe1.host101", "traces/claim", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = api.post("fe1.host101", "traces/claim", Some(&theirs), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(error(&body).contains("fe1.host201"), "{body}");
    let (status, _) = api.post("nobody", "traces/claim", Some(&mine), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let bad_claims =
        [(r#"{"limit": 0}"#, "limit"), (r#"{"limt": 1}"#, "limt"), ("[]", "a JSON object"), ("{", "not valid JSON")];
    for (bad, field) in bad_claims {
        let (status, body) = api.post("fe1.host101", "traces/claim", Some(&mine), bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(error(&body).contains(field), "{bad}: {body}");
    }

    // A claim leases the due pairs of host101 only, each on its own flow.
    let (status, lease) = api.post("fe1.host101", "traces/claim", Some(&mine), "{}").await;
    assert_eq!(status, StatusCode::OK, "{lease}");
    assert_eq!(
        (lease["host"].as_str(), lease["tracing"].as_bool(), lease["probes"].as_u64()),
        (Some("host101"), Some(true), Some(3))
    );
    let leased: Vec<i64> = lease["pairs"].as_array().unwrap().iter().map(|p| p["pair_id"].as_i64().unwrap()).collect();
    assert_eq!(leased, own, "{lease}");
    for p in lease["pairs"].as_array().unwrap() {
        assert_eq!(p["target"]["flow"].as_i64(), p["pair_id"].as_i64(), "{p}");
        assert_eq!(p["target"]["protocol"]["kind"], "icmp", "{p}");
    }
    let (_, again) = api.post("fe1.host101", "traces/claim", Some(&mine), "{}").await;
    assert_eq!(again["pairs"], json!([]), "leased pairs are not handed out twice");

    // Runs: checked field by field; another host's pair refused, naming it.
    let at = Utc::now().trunc_subsecs(3).to_rfc3339();
    let pair = own[0];
    let dst = column(&db, &format!("SELECT host(dst_ip) FROM trace_pairs WHERE id = {pair}"))[0]
        .as_str()
        .unwrap()
        .to_string();
    let foreign = json!({"runs": [{"pair_id": other[0], "run": run(&at, &dst)}]}).to_string();
    let (status, body) = api.post("fe1.host101", "traces", Some(&mine), &foreign).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(error(&body).contains(&other[0].to_string()) && error(&body).contains("host101"), "{body}");
    let mut gap = run(&at, &dst);
    gap["hops"][1]["ttl"] = json!(5);
    let bad = [
        (json!({"runs": [{"pair_id": pair, "run": gap}]}).to_string(), "runs[0].run.hops[1].ttl"),
        (json!({"runs": [{"pair_id": pair}]}).to_string(), "run"),
        (json!({"runs": [], "release": [0]}).to_string(), "release[0]"),
        ("{\"runs\": [".to_string(), "not valid JSON"),
    ];
    for (body_text, field) in bad {
        let (status, body) = api.post("fe1.host101", "traces", Some(&mine), &body_text).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body_text}: {body}");
        assert!(error(&body).contains(field), "{body_text}: {body}");
    }
    let (status, _) = api.post("fe1.host101", "traces", Some(&theirs), "{}").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A good run is stored once however often it comes; a pair given back is free again.
    let good = json!({"runs": [{"pair_id": pair, "run": run(&at, &dst)}]}).to_string();
    let (status, body) = api.post("fe1.host101", "traces", Some(&mine), &good).await;
    assert_eq!(
        (status, body["accepted"].as_u64(), body["stored"].as_u64()),
        (StatusCode::OK, Some(1), Some(1)),
        "{body}"
    );
    let (status, body) = api.post("fe1.host101", "traces", Some(&mine), &good).await;
    assert_eq!((status, body["stored"].as_u64()), (StatusCode::OK, Some(0)), "a resend is not stored twice: {body}");
    let stored = column(&db, &format!("SELECT count(*) FROM trace_runs WHERE pair_id = {pair}"));
    assert_eq!(stored, [json!(1)]);
    if let Some(&last) = own.get(1) {
        let back = json!({"release": [last]}).to_string();
        let (status, body) = api.post("fe1.host101", "traces", Some(&mine), &back).await;
        assert_eq!((status, body["released"].as_u64()), (StatusCode::OK, Some(1)), "{body}");
        let owner = column(&db, &format!("SELECT lease_owner FROM trace_pairs WHERE id = {last}"));
        assert_eq!(owner, [Value::Null], "the pair given back is no longer leased");
    }
}
