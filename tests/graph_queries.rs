//! `graph nodes|edges` filters and `graph broken`, checked against the unfiltered lists.

mod common;

use common::{json, ok, sample};
use graph_store::testing::TestDb;
use serde_json::Value;

fn list(db: &TestDb, args: &[&str]) -> Vec<Value> {
    json(db, args).as_array().unwrap().clone()
}

#[tokio::test]
async fn filters_and_broken_agree_with_the_whole_graph() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    ok(&db, &["probe", "--interval", "1s", "--packets", "1", "--timeout", "200ms", "--run-for", "5s"]);

    let nodes = list(&db, &["graph", "nodes", "--format", "json"]);
    let edges = list(&db, &["graph", "edges", "--format", "json"]);
    let node = |name: &str| nodes.iter().find(|n| n["name"] == name).unwrap().clone();

    for (flag, value) in [("--dc", "VA"), ("--role", "db"), ("--host", "host101"), ("--service", "db1")] {
        let got = list(&db, &["graph", "nodes", flag, value, "--format", "json"]);
        let want: Vec<&Value> = nodes
            .iter()
            .filter(|n| match flag {
                "--dc" => n["dc"] == value,
                "--role" => n["role"] == value,
                "--host" => n["host"] == value,
                _ => n["services"].as_array().unwrap().iter().any(|s| s == value),
            })
            .collect();
        assert!(!want.is_empty(), "{flag} {value}");
        assert_eq!(got.iter().collect::<Vec<_>>(), want, "nodes {flag} {value}");
    }
    for (flag, value) in
        [("--source", "cmdb"), ("--state", "down"), ("--service", "api"), ("--dc", "Tx"), ("--role", "fe")]
    {
        let got = list(&db, &["graph", "edges", flag, value, "--format", "json"]);
        let want: Vec<&Value> = edges
            .iter()
            .filter(|e| match flag {
                "--source" => e["sources"].as_array().unwrap().iter().any(|s| s == value),
                "--state" => e["state"] == value,
                "--service" => e["services"].as_array().unwrap().iter().any(|s| s == value),
                "--dc" => node(e["src"].as_str().unwrap())["dc"] == value,
                _ => node(e["src"].as_str().unwrap())["role"] == value,
            })
            .collect();
        assert!(!want.is_empty(), "{flag} {value}");
        assert_eq!(got.iter().collect::<Vec<_>>(), want, "edges {flag} {value}");
    }

    // Broken now: exactly the down and degraded edges, longest broken first, each with
    // the number of consumers failing to reach its destination.
    let broken = list(&db, &["graph", "broken", "--format", "json"]);
    let bad: Vec<&Value> = edges.iter().filter(|e| e["state"] == "down" || e["state"] == "degraded").collect();
    assert!(!bad.is_empty());
    assert_eq!(broken.len(), bad.len());
    let since: Vec<&str> = broken.iter().map(|b| b["since"].as_str().unwrap()).collect();
    let mut sorted = since.clone();
    sorted.sort();
    assert_eq!(since, sorted, "longest broken first");
    for b in &broken {
        let failing = bad.iter().filter(|e| e["dst_ip"] == b["dst_ip"]).count() as i64;
        assert_eq!(b["consumers_failing"].as_i64().unwrap(), failing, "{b}");
        assert!(bad.iter().any(|e| e["src"] == b["src"] && e["dst_ip"] == b["dst_ip"]));
    }
}
