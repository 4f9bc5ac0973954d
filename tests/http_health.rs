//! `/healthz`, `/readyz` and `/api/v1/broken` of a real `edgewatch serve` on port 0.

mod common;

use common::{json, ok, sample, Server};
use graph_store::testing::TestDb;

#[tokio::test]
async fn health_readiness_and_broken_over_http() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    ok(&db, &["probe", "--interval", "1s", "--packets", "1", "--timeout", "200ms", "--run-for", "4s"]);

    let server = Server::start(&db, &[], &[]);
    let base = server.base.clone();

    let http = common::http();
    let get = |path: &str| http.get(format!("{base}{path}")).send();
    let health = get("/healthz").await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert!(ready["migrations"].as_i64().unwrap() >= 3);

    let broken: serde_json::Value = get("/api/v1/broken").await.unwrap().json().await.unwrap();
    assert!(!broken.as_array().unwrap().is_empty());
    assert_eq!(broken, json(&db, &["graph", "broken", "--format", "json"]));

    let missing = get("/api/v1/nosuch").await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("/api/v1/openapi.json"), "{body}");
}
