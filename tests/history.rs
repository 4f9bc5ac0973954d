//! `graph … --at TIME` and `graph diff`: the graph is changed in four stages (discovery, a
//! re-import that retires nodes, a probe run that brings edges up, one that breaks some of
//! them); after each stage the live answers are captured with the time. At the end, every
//! question asked `--at` each of those times must give the answer captured live then, and
//! `graph diff` between stages must list exactly what the captures say changed.
//! Probe traffic goes to 127.0.0.0/8 only (the sample fleet), where this test listens.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use common::{edgewatch, json, ok, project, sample};
use graph_store::testing::TestDb;
use serde_json::Value;

/// Containers the second import leaves out: a front end, a back end, a database.
const RETIRED: [&str; 3] = ["fe1.host101", "be1.host101", "db1a.host101"];
const EDGE_KEYS: [&str; 6] = ["src", "dst_ip", "dst", "services", "sources", "state"];
const BROKEN_KEYS: [&str; 8] = ["src", "src_dc", "dst_ip", "dst", "services", "state", "since", "consumers_failing"];

/// Everything asked live at one moment.
struct Capture {
    at: DateTime<Utc>,
    answers: BTreeMap<String, Value>,
    edges: Value,
}

/// The questions: `graph ARGS… --format json`, compared whole (edges and broken on the
/// fields an edge had at the time; query counts and last_seen are not history).
fn questions() -> Vec<Vec<&'static str>> {
    vec![
        vec!["nodes"],
        vec!["nodes", "--dc", "Tx"],
        vec!["dependents", "db1a.host104", "--depth", "0"],
        vec!["deps", "fe1.host103", "--depth", "0"],
        vec!["deps", "fe1.host201", "--depth", "2"],
        vec!["blast", "host102"],
        vec!["blast", "Tx"],
        vec!["spof"],
    ]
}

fn graph_json(db: &TestDb, args: &[&str], at: Option<&str>) -> Value {
    let mut full = vec!["graph"];
    full.extend_from_slice(args);
    full.extend(["--format", "json"]);
    if let Some(at) = at {
        full.extend(["--at", at]);
    }
    json(db, &full)
}

fn capture(db: &TestDb) -> Capture {
    let at = Utc::now();
    let mut answers = BTreeMap::new();
    for q in questions() {
        answers.insert(q.join(" "), graph_json(db, &q, None));
    }
    answers.insert("broken".into(), Value::Array(project(&graph_json(db, &["broken"], None), &BROKEN_KEYS)));
    let edges = graph_json(db, &["edges"], None);
    answers.insert("edges".into(), Value::Array(project(&edges, &EDGE_KEYS)));
    std::thread::sleep(Duration::from_millis(20));
    Capture { at, answers, edges }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn edge_keys(edges: &Value) -> BTreeSet<(String, String)> {
    edges
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["src"].as_str().unwrap().into(), e["dst_ip"].as_str().unwrap().into()))
        .collect()
}

fn states(edges: &Value) -> BTreeMap<(String, String), String> {
    edges
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                (e["src"].as_str().unwrap().into(), e["dst_ip"].as_str().unwrap().into()),
                e["state"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn probe(db: &TestDb) {
    ok(
        db,
        &["probe", "--allow", "127.0.0.0/8", "--interval", "1s", "--packets", "1", "--timeout", "300ms"]
            .into_iter()
            .chain(["--run-for", "5s"])
            .collect::<Vec<_>>(),
    );
}

/// The (address, port) each live edge with a service port is probed on.
fn tcp_targets(db: &TestDb) -> BTreeSet<(String, u16)> {
    let rows = json(
        db,
        &[
            "sql",
            "--format",
            "json",
            "SELECT DISTINCT host(e.dst_ip) AS ip, p.port FROM edges e, LATERAL ( \
                 SELECT min(sv.port) AS port FROM services sv WHERE sv.name = ANY(e.services)) p \
             WHERE e.retired_at IS NULL AND p.port IS NOT NULL",
        ],
    );
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| (r["ip"].as_str().unwrap().to_string(), u16::try_from(r["port"].as_i64().unwrap()).unwrap()))
        .collect()
}

#[tokio::test]
async fn the_graph_at_each_past_time_is_what_was_live_then_and_diff_lists_the_changes() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();

    // 1. Discovery.
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    let discovered = capture(&db);

    // 2. A re-import without three containers: they and their edges retire.
    let mut inventory: Value =
        serde_json::from_str(&std::fs::read_to_string(sample("inventory.json")).unwrap()).unwrap();
    let containers = inventory["containers"].as_array_mut().unwrap();
    let before = containers.len();
    containers.retain(|c| !RETIRED.contains(&c["name"].as_str().unwrap()));
    assert_eq!(containers.len(), before - RETIRED.len(), "the fixture has the containers this test retires");
    let smaller = dir.path().join("inventory.json");
    std::fs::write(&smaller, serde_json::to_string(&inventory).unwrap()).unwrap();
    ok(&db, &["cmdb", "import", smaller.to_str().unwrap()]);
    let reimported = capture(&db);

    // 3. Something listens on every service port: a probe run brings those edges up.
    let targets = tcp_targets(&db);
    assert!(targets.len() >= 4, "{targets:?}");
    let mut listeners: Vec<((String, u16), TcpListener)> = targets
        .iter()
        .map(|(ip, port)| ((ip.clone(), *port), TcpListener::bind((ip.as_str(), *port)).unwrap()))
        .collect();
    probe(&db);
    let probed = capture(&db);

    // 4. Half of them stop listening: another run breaks their edges.
    let stopped: BTreeSet<String> = listeners.drain(..targets.len() / 2).map(|((ip, _), _)| ip).collect();
    probe(&db);
    let broken = capture(&db);
    drop(listeners);

    let stages = [&discovered, &reimported, &probed, &broken];
    // Each stage changed something the questions see, so equal answers below mean something.
    for pair in stages.windows(2) {
        assert_ne!(pair[0].answers, pair[1].answers, "a stage changed nothing");
    }
    let went_down: BTreeSet<_> =
        states(&broken.edges).into_iter().filter(|(_, s)| s == "down").map(|(k, _)| k).collect();
    assert!(
        went_down.iter().any(|(_, ip)| stopped.contains(ip)),
        "edges to the stopped listeners are down: {went_down:?}"
    );
    assert!(states(&probed.edges).values().any(|s| s == "up"), "the first probe run brought edges up");

    // Every question asked --at each stage's time answers what was live then.
    for stage in stages {
        let at = rfc3339(stage.at);
        for q in questions() {
            assert_eq!(graph_json(&db, &q, Some(&at)), stage.answers[&q.join(" ")], "graph {} --at {at}", q.join(" "));
        }
        let edges = project(&graph_json(&db, &["edges"], Some(&at)), &EDGE_KEYS);
        assert_eq!(Value::Array(edges), stage.answers["edges"], "graph edges --at {at}");
        let past_broken = project(&graph_json(&db, &["broken"], Some(&at)), &BROKEN_KEYS);
        assert_eq!(Value::Array(past_broken), stage.answers["broken"], "graph broken --at {at}");
    }

    // diff across the re-import: exactly the retired nodes and the edges gone with them.
    let d = graph_json(&db, &["diff", "--from", &rfc3339(discovered.at), "--to", &rfc3339(reimported.at)], None);
    let names = |v: &Value| -> BTreeSet<String> {
        v.as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names(&d["nodes_vanished"]), RETIRED.iter().map(|s| s.to_string()).collect());
    assert!(names(&d["nodes_appeared"]).is_empty());
    let vanished: BTreeSet<_> =
        edge_keys(&discovered.edges).difference(&edge_keys(&reimported.edges)).cloned().collect();
    assert!(!vanished.is_empty());
    assert_eq!(edge_keys(&d["edges_vanished"]), vanished);
    assert!(d["edges_appeared"].as_array().unwrap().is_empty());
    // Edges to the retired containers' addresses stay, with no owner now.
    let orphaned: BTreeSet<_> = d["edges_changed"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|c| assert!(c["dst_to"].is_null() && c["state_from"] == c["state_to"], "{c}"))
        .map(|c| c["dst_from"].as_str().unwrap().to_string())
        .collect();
    assert!(orphaned.is_subset(&RETIRED.iter().map(|s| s.to_string()).collect()), "{orphaned:?}");

    // diff across the breaking probe run: the edges whose state changed, from what to what.
    let d = graph_json(&db, &["diff", "--from", &rfc3339(probed.at), "--to", &rfc3339(broken.at)], None);
    let (before, after) = (states(&probed.edges), states(&broken.edges));
    let changed: BTreeMap<_, _> = before
        .iter()
        .filter(|(k, s)| after.get(*k) != Some(*s))
        .map(|(k, s)| (k.clone(), (s.clone(), after[k].clone())))
        .collect();
    assert!(changed.values().any(|(from, to)| from == "up" && to == "down"), "{changed:?}");
    let listed: BTreeMap<_, _> = d["edges_changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let key = (c["src"].as_str().unwrap().to_string(), c["dst_ip"].as_str().unwrap().to_string());
            (key, (c["state_from"].as_str().unwrap().to_string(), c["state_to"].as_str().unwrap().to_string()))
        })
        .collect();
    assert_eq!(listed, changed);
    assert!(d["edges_appeared"].as_array().unwrap().is_empty() && d["edges_vanished"].as_array().unwrap().is_empty());

    // The table form says the same in words.
    let table = ok(&db, &["graph", "diff", "--from", &rfc3339(discovered.at), "--to", &rfc3339(reimported.at)]);
    assert!(table.contains("0 node(s) appeared, 3 vanished"), "{table}");
    for name in RETIRED {
        assert!(table.lines().any(|l| l.contains("- node") && l.contains(name)), "{table}");
    }
}

#[tokio::test]
async fn bad_times_and_contradictory_flags_are_refused_with_the_reason() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    for (args, says) in [
        (vec!["graph", "nodes", "--at", "yesterday-ish"], "is not a time; use RFC 3339"),
        (vec!["graph", "nodes", "--all", "--at", "now"], "--all lists retired rows too"),
        (vec!["graph", "diff", "--from", "now", "--to", "1h"], "is after --to"),
        (vec!["graph", "diff", "--from", "1h", "--at", "now"], "not --at"),
    ] {
        let out = edgewatch(&db, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(says), "{args:?}: {stderr}");
    }
    // Before anything was imported the graph was empty.
    let past = json(&db, &["graph", "nodes", "--format", "json", "--at", "2000-01-01T00:00:00Z"]);
    assert_eq!(past, Value::Array(vec![]));
}
