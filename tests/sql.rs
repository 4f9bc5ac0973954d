//! The live table `node_health` and `edgewatch sql`: the operators' queries work as
//! written, the figures agree with the graph, and nothing can be written.

mod common;

use std::collections::BTreeMap;

use common::{edgewatch, json, ok, sample};
use graph_store::testing::TestDb;

#[tokio::test]
async fn node_health_answers_the_operators_queries() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    // Nothing listens on the sample services' ports here: the DNS edges go down.
    ok(&db, &["probe", "--interval", "1s", "--packets", "1", "--timeout", "200ms", "--run-for", "5s"]);

    let edges = json(&db, &["graph", "edges", "--format", "json"]);
    let mut want: BTreeMap<String, (i64, Vec<String>)> = BTreeMap::new();
    for e in edges.as_array().unwrap().iter().filter(|e| e["state"] == "down") {
        let entry = want.entry(e["src"].as_str().unwrap().to_string()).or_default();
        entry.0 += 1;
        entry.1.push(e["dst_ip"].as_str().unwrap().to_string());
    }
    assert!(!want.is_empty());

    let rows = json(
        &db,
        &["sql", "--format", "json", "SELECT name, disconnects, connectivity FROM node_health WHERE disconnects > 0"],
    );
    let got: BTreeMap<String, (i64, Vec<String>)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let ips: Vec<String> = r["connectivity"].as_str().unwrap().split(',').map(str::to_string).collect();
            (r["name"].as_str().unwrap().to_string(), (r["disconnects"].as_i64().unwrap(), ips))
        })
        .collect();
    let mut want_sorted = want.clone();
    for v in want_sorted.values_mut() {
        v.1.sort_by_key(|ip| ip.parse::<std::net::IpAddr>().unwrap());
    }
    assert_eq!(got, want_sorted);

    // The two queries of the issue, as written.
    let worst = json(&db, &["sql", "--format", "json", "SELECT name FROM node_health ORDER BY disconnects DESC"]);
    let first = worst[0]["name"].as_str().unwrap();
    assert_eq!(want[first].0, want.values().map(|v| v.0).max().unwrap());
    assert_eq!(worst.as_array().unwrap().len(), 29);
    let by_dc = json(
        &db,
        &[
            "sql",
            "--format",
            "json",
            "SELECT sum(nginx_access_rate), sum(nginx_err_rate), dc FROM node_health GROUP BY dc",
        ],
    );
    assert_eq!(by_dc.as_array().unwrap().len(), 2);

    // Read-only: writes are refused, and nothing changed.
    let before = db.dump().await;
    for write in ["DELETE FROM nodes", "UPDATE nodes SET role = 'x' RETURNING name", "SELECT 1; DELETE FROM nodes"] {
        let out = edgewatch(&db, &["sql", write]);
        assert!(!out.status.success(), "{write} ran");
    }
    assert_eq!(before, db.dump().await);
}

/// Every query in docs/queries.md runs (the page stays true to the schema).
#[tokio::test]
async fn the_documented_queries_run() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    let page =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/queries.md")).unwrap();
    let block = page.split("```sql").nth(1).unwrap().split("```").next().unwrap();
    let queries: Vec<String> = block
        .split(";\n")
        .map(|q| q.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n"))
        .filter(|q| !q.trim().is_empty())
        .collect();
    assert!(queries.len() >= 12, "{} queries", queries.len());
    for q in &queries {
        ok(&db, &["sql", q]);
    }
}

/// A query may end as one typed into psql does, in `;` and comments; a `;` or `--` inside a
/// string, a quoted name or a dollar quote is the query's own. Only one statement runs.
#[tokio::test]
async fn trailing_semicolons_and_comments_are_the_operators_not_the_wrappers() {
    let db = TestDb::new().await;
    let x1 = serde_json::json!([{"x": 1}]);
    let cases = [
        ("SELECT 1 AS x -- note", x1.clone()),
        ("SELECT 1 AS x;  -- done", x1.clone()),
        ("SELECT 1 AS x;\n", x1.clone()),
        ("SELECT 1 AS x;;", x1.clone()),
        ("SELECT 1 AS x -- one;\n-- two\n", x1.clone()),
        ("SELECT 1 AS x /* one /* nested */ */ ; /* two */", x1.clone()),
        ("SELECT 1 -- first line\n  AS x -- second line", x1),
        ("SELECT 'a;b -- c' AS s; -- d", serde_json::json!([{"s": "a;b -- c"}])),
        ("SELECT E'it\\'s;' AS s ;", serde_json::json!([{"s": "it's;"}])),
        ("SELECT $q$ ; -- $q$ AS \"x;--\" -- e\n;", serde_json::json!([{"x;--": " ; -- "}])),
        ("VALUES (1), (2) -- values\n;", serde_json::json!([{"column1": 1}, {"column1": 2}])),
    ];
    for (query, want) in cases {
        assert_eq!(json(&db, &["sql", "--format", "json", query]), want, "{query:?}");
    }
    let before = db.dump().await;
    for query in ["SELECT 1; SELECT 2", "SELECT 1; DELETE FROM nodes; -- gone", "SELECT 1 /* never closed ;"] {
        let out = edgewatch(&db, &["sql", query]);
        assert!(!out.status.success(), "{query:?} ran");
    }
    assert_eq!(before, db.dump().await);
}
