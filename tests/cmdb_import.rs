//! `edgewatch cmdb import` end to end: the real binary against a fresh database on a real
//! PostgreSQL per test.

mod common;

use std::collections::BTreeSet;

use common::{edgewatch, json, ok, path_str, project, sample};
use graph_store::testing::{dump_without, node_last_seen, TestDb};
use serde_json::Value;

const EDGE_KEYS: [&str; 6] = ["src", "dst_ip", "dst", "services", "sources", "queries"];

fn import(db: &TestDb, files: &[&str]) {
    let mut args = vec!["cmdb", "import"];
    args.extend_from_slice(files);
    ok(db, &args);
}

#[tokio::test]
async fn json_and_csv_inventories_give_the_same_graph() {
    let (a, b) = (TestDb::new().await, TestDb::new().await);
    import(&a, &[&sample("inventory.json")]);
    import(&b, &[&sample("inventory.csv")]);
    let nodes_a = json(&a, &["graph", "nodes", "--format", "json"]);
    let nodes_b = json(&b, &["graph", "nodes", "--format", "json"]);
    assert_eq!(nodes_a.as_array().unwrap().len(), 29);
    assert_eq!(nodes_a, nodes_b);
    let first = &nodes_a[0];
    for key in ["name", "host", "dc", "role", "ips", "services", "serving", "retired"] {
        assert!(first.get(key).is_some(), "node JSON lacks {key}: {first}");
    }

    // The CSV over the JSON import changes nothing either (the CSV has no ports; known
    // ports stay).
    let before = dump_without(&a.pool, &["last_seen"]).await;
    import(&a, &[&sample("inventory.csv")]);
    assert_eq!(before, dump_without(&a.pool, &["last_seen"]).await);
}

#[tokio::test]
async fn importing_the_same_files_again_changes_nothing_but_last_seen() {
    let db = TestDb::new().await;
    let (inventory, links) = (sample("inventory.json"), sample("links.txt"));
    let files = [inventory.as_str(), links.as_str()];
    import(&db, &files);
    let before = dump_without(&db.pool, &["last_seen"]).await;
    let seen_before = node_last_seen(&db.pool).await;
    import(&db, &files);
    assert_eq!(before, dump_without(&db.pool, &["last_seen"]).await);
    let seen_after = node_last_seen(&db.pool).await;
    // last_seen is "the last import that still listed it": it moves forward, nothing else.
    assert!(seen_after.iter().zip(&seen_before).all(|(after, before)| after.0 == before.0 && after.1 > before.1));
}

#[tokio::test]
async fn links_give_the_expected_cmdb_edges() {
    let db = TestDb::new().await;
    import(&db, &[&sample("inventory.json")]);
    let out = ok(&db, &["cmdb", "import", &sample("links.txt")]);
    assert!(out.contains("16 links"), "{out}");
    let ours = json(&db, &["graph", "edges", "--format", "json"]);
    for edge in ours.as_array().unwrap() {
        assert_eq!(edge["state"], "unknown");
        assert!(edge["first_seen"].as_str().unwrap().ends_with('Z'));
    }

    let text = std::fs::read_to_string(sample("expected-edges-auth-console+links.json")).unwrap();
    let expected: Value = serde_json::from_str(&text).unwrap();
    let with_cmdb: Vec<&Value> = expected
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["sources"].as_array().unwrap().iter().any(|s| s == "cmdb"))
        .collect();
    // Exactly the edges the expected file owes to links.txt…
    let key = |e: &Value| (e["src"].to_string(), e["dst_ip"].to_string(), e["dst"].to_string());
    let ours_keys: BTreeSet<_> = ours.as_array().unwrap().iter().map(key).collect();
    let expected_keys: BTreeSet<_> = with_cmdb.iter().map(|e| key(e)).collect();
    assert_eq!(ours_keys, expected_keys);
    // …and those whose only source is cmdb are equal in every field.
    let cmdb_only: Vec<Value> =
        with_cmdb.into_iter().filter(|e| e["sources"] == serde_json::json!(["cmdb"])).cloned().collect();
    assert!(!cmdb_only.is_empty());
    let ours_projected = project(&ours, &EDGE_KEYS);
    for edge in project(&Value::Array(cmdb_only), &EDGE_KEYS) {
        assert!(ours_projected.contains(&edge), "missing {edge}");
    }
}

#[tokio::test]
async fn a_links_import_replaces_the_links_of_the_containers_it_names() {
    let db = TestDb::new().await;
    import(&db, &[&sample("inventory.json"), &sample("links.txt")]);
    let dir = tempfile::tempdir().unwrap();
    let links = dir.path().join("links.txt");
    // fe1.host101 now talks to one backend only (and to itself, which is ignored);
    // fe1.host103 has no links any more; the others are not named and keep theirs.
    std::fs::write(&links, "fe1.host101 127.20.1.3 127.20.1.1\nfe1.host103\n").unwrap();
    import(&db, &[path_str(&links)]);
    let live = json(&db, &["graph", "edges", "--format", "json"]);
    let of = |src: &str| -> Vec<String> {
        live.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["src"] == src)
            .map(|e| e["dst_ip"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(of("fe1.host101"), vec!["127.20.1.3"]);
    assert!(of("fe1.host103").is_empty());
    assert_eq!(of("fe1.host201").len(), 4);
    // Dropped links are retired, not deleted.
    let all = json(&db, &["graph", "edges", "--all", "--format", "json"]);
    let retired = all.as_array().unwrap().iter().filter(|e| e["retired"] == true).count();
    assert_eq!(retired, 3 + 4);
}

/// Each bad export: (name, content, what the message must name).
const BAD_EXPORTS: &[(&str, &str, &[&str])] = &[
    ("invalid.json", "{\"containers\": [ {\"name\": \"a\",, } ]}", &["invalid.json", "line 1"]),
    (
        "truncated.json",
        "{\"containers\": [\n {\"name\": \"x.h1\", \"host\": \"h1\", \"dc\": \"Tx\",\n  \"ips\": [\"127.0.0.9\"",
        &["truncated.json", "line 3"],
    ),
    (
        "missing.json",
        "{\"containers\": [\n {\"name\": \"x.h1\", \"host\": \"h1\", \"dc\": \"Tx\", \"ips\": [\"127.0.0.9\"]},\n {\"name\": \"y.h1\", \"dc\": \"Tx\", \"ips\": [\"127.0.0.10\"]}\n]}",
        &["missing.json", "$.containers[1]", "host"],
    ),
    (
        "badip.json",
        "{\"containers\": [{\"name\": \"x.h1\", \"host\": \"h1\", \"dc\": \"Tx\", \"ips\": [\"127.0.0.9\", \"127.0.0.300\"]}]}",
        &["badip.json", "$.containers[0].ips[1]", "ips", "127.0.0.300"],
    ),
    (
        "dupname.json",
        "{\"containers\": [{\"name\": \"x.h1\", \"host\": \"h1\", \"dc\": \"Tx\", \"ips\": [\"127.0.0.9\"]},\n{\"name\": \"x.h1\", \"host\": \"h1\", \"dc\": \"Tx\", \"ips\": [\"127.0.0.10\"]}]}",
        &["dupname.json", "$.containers[1]", "name", "x.h1"],
    ),
    (
        "dupip.json",
        "{\"containers\": [{\"name\": \"x.h1\", \"host\": \"h1\", \"dc\": \"Tx\", \"ips\": [\"127.0.0.9\"]},\n{\"name\": \"y.h1\", \"host\": \"h1\", \"dc\": \"Tx\", \"ips\": [\"127.0.0.9\"]}]}",
        &["dupip.json", "$.containers[1]", "ips", "127.0.0.9", "x.h1", "y.h1"],
    ),
    (
        "columns.csv",
        "name,host,dc,role,ips,services,serving\nx.h1,h1,Tx,be,127.0.0.9,api,true\ny.h1,h1,Tx,be,127.0.0.10,api\n",
        &["columns.csv", "line 3"],
    ),
    ("unknown.txt", "# links\nfe1.host101 127.20.1.3\nnosuch.host9 127.20.1.2\n", &["unknown.txt", "line 3", "container", "nosuch.host9"]),
    ("badlink.txt", "fe1.host101 127.20.1.3 not-an-ip\n", &["badlink.txt", "line 1", "targets", "not-an-ip"]),
];

#[tokio::test]
async fn bad_exports_are_refused_whole_and_change_nothing() {
    let db = TestDb::new().await;
    import(&db, &[&sample("inventory.json"), &sample("links.txt")]);
    let before = db.dump().await;
    let dir = tempfile::tempdir().unwrap();
    for (name, content, must_name) in BAD_EXPORTS {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        // Given with a good export before it: the good one must not be applied either.
        let out = edgewatch(&db, &["cmdb", "import", &sample("links.txt"), path_str(&path)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} was accepted:\n{stderr}");
        for needle in *must_name {
            assert!(stderr.contains(needle), "{name}: message does not name {needle:?}:\n{stderr}");
        }
        assert_eq!(before, db.dump().await, "{name} changed the graph");
    }
}

#[tokio::test]
async fn the_mass_retire_guard_refuses_and_can_be_overridden() {
    let db = TestDb::new().await;
    import(&db, &[&sample("inventory.json"), &sample("links.txt")]);
    // An export that lost the whole VA data center (14 of 29 containers, 48%).
    let csv = std::fs::read_to_string(sample("inventory.csv")).unwrap();
    let tx_only: String = csv.lines().filter(|l| !l.contains(",VA,")).map(|l| format!("{l}\n")).collect();
    let dir = tempfile::tempdir().unwrap();
    let partial = dir.path().join("partial.csv");
    std::fs::write(&partial, tx_only).unwrap();

    let before = db.dump().await;
    let out = edgewatch(&db, &["cmdb", "import", path_str(&partial)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("refusing to retire 14 of 29") && stderr.contains("--allow-mass-retire"), "{stderr}");
    assert_eq!(before, db.dump().await);

    ok(&db, &["cmdb", "import", "--allow-mass-retire", path_str(&partial)]);
    let nodes = json(&db, &["graph", "nodes", "--all", "--format", "json"]);
    let retired: Vec<&Value> = nodes.as_array().unwrap().iter().filter(|n| n["retired"] == true).collect();
    assert_eq!(retired.len(), 14);
    assert!(retired.iter().all(|n| n["dc"] == "VA"));
    // Their edges went with them: fe1.host201 and fe1.host203 had 8 links between them.
    let edges = json(&db, &["graph", "edges", "--format", "json"]);
    assert!(edges.as_array().unwrap().iter().all(|e| !e["src"].as_str().unwrap().ends_with("host201")));
    assert_eq!(edges.as_array().unwrap().len(), 8);

    // A later full export brings them back (the edges stay retired until seen again).
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    assert_eq!(json(&db, &["graph", "nodes", "--format", "json"]).as_array().unwrap().len(), 29);
}

#[tokio::test]
async fn concurrent_imports_leave_one_whole_winner() {
    let db = TestDb::new().await;
    import(&db, &[&sample("inventory.json")]);
    // Variant B differs from A in every container (role) and retires nothing.
    let csv = std::fs::read_to_string(sample("inventory.csv")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = std::path::PathBuf::from(sample("inventory.csv"));
    let b = dir.path().join("b.csv");
    let b_text: String = csv
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("{l}\n")
            } else {
                let mut cols: Vec<&str> = l.split(',').collect();
                cols[3] = "variant-b";
                format!("{}\n", cols.join(","))
            }
        })
        .collect();
    std::fs::write(&b, b_text).unwrap();

    for round in 0..6 {
        let first = if round % 2 == 0 { &a } else { &b };
        let second = if round % 2 == 0 { &b } else { &a };
        let spawn = |file: &std::path::Path| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("edgewatch"))
                .env_remove("DATABASE_URL")
                .args(["--database-url", &db.url, "cmdb", "import", path_str(file)])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        };
        let (mut p1, mut p2) = (spawn(first), spawn(second));
        assert!(p1.wait().unwrap().success() && p2.wait().unwrap().success());
        let nodes = json(&db, &["graph", "nodes", "--format", "json"]);
        let roles: BTreeSet<bool> = nodes.as_array().unwrap().iter().map(|n| n["role"] == "variant-b").collect();
        assert_eq!(roles.len(), 1, "round {round}: a mix of both imports: {nodes}");
        assert_eq!(nodes.as_array().unwrap().len(), 29);
    }
}
