//! `edgewatch report` on a history with known faults, built for a day two days ago: the
//! sample fleet discovered the day before; at 09:30 a node is retired (a real re-import,
//! its times moved to 09:30); at 14:00 a dependency is added (a real links import, moved
//! to 14:00); probe results every 2 minutes all day for every edge live all day, through
//! the same write path as the probers, one edge failing from 10:00 to 10:37. The JSON
//! report must have exactly those figures; a day without data says so.

mod common;

use graph_store::vocab::{EventState, ProbeKind, Verdict};
use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use common::{json, ok, sample};
use graph_store::probe::{EventRow, ResultRow};
use graph_store::testing::{execute, TestDb};
use serde_json::Value;

/// Left out of the second import.
const RETIRED: &str = "be2.host202";
/// Gets a new published link at 14:00 (it has none before).
const NEW_LINK_FROM: &str = "auth1.host203";
const NEW_LINK_TO: &str = "db2a.host202";

fn at(day: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(h, m, 0).unwrap())
}

fn sql_time(t: DateTime<Utc>) -> String {
    format!("'{}'::timestamptz", t.to_rfc3339())
}

/// Moves every history period that started (`valid_from`) or ended (`valid_to`) since
/// `mark` to `to`.
async fn move_history(db: &TestDb, column: &str, mark: DateTime<Utc>, to: DateTime<Utc>) {
    for table in ["node_history", "address_history", "edge_history", "provider_history"] {
        execute(
            &db.pool,
            &format!("UPDATE {table} SET {column} = {} WHERE {column} >= {}", sql_time(to), sql_time(mark)),
        )
        .await;
    }
}

fn edges(db: &TestDb) -> Vec<Value> {
    json(db, &["graph", "edges", "--format", "json"]).as_array().unwrap().clone()
}

fn key(e: &Value) -> (String, String) {
    (e["src"].as_str().unwrap().to_string(), e["dst_ip"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_day_with_known_faults_gives_exactly_those_figures() {
    let db = TestDb::new().await;
    let day = Utc::now().date_naive() - Duration::days(2);
    let dir = tempfile::tempdir().unwrap();

    // The day before: the whole fleet discovered.
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    let before = edges(&db);
    // All of it as of the day before (the periods that discovery itself closed go).
    for table in ["node_history", "address_history", "edge_history", "provider_history"] {
        execute(&db.pool, &format!("DELETE FROM {table} WHERE valid_to IS NOT NULL")).await;
        execute(&db.pool, &format!("UPDATE {table} SET valid_from = {}", sql_time(at(day, 0, 0) - Duration::days(1))))
            .await;
    }

    // 09:30: RETIRED leaves the inventory.
    let mark = Utc::now();
    let mut inventory: Value =
        serde_json::from_str(&std::fs::read_to_string(sample("inventory.json")).unwrap()).unwrap();
    inventory["containers"].as_array_mut().unwrap().retain(|c| c["name"] != RETIRED);
    let smaller = dir.path().join("inventory.json");
    std::fs::write(&smaller, inventory.to_string()).unwrap();
    ok(&db, &["cmdb", "import", smaller.to_str().unwrap()]);
    move_history(&db, "valid_to", mark, at(day, 9, 30)).await;
    // Its edges retire with it (and the published links to it): what the live graph lost.
    let after: BTreeSet<_> = edges(&db).iter().map(key).collect();
    let vanished: BTreeSet<_> = before.iter().map(key).filter(|k| !after.contains(k)).collect();
    assert!(before.iter().filter(|e| e["src"] == RETIRED).all(|e| vanished.contains(&key(e))), "{vanished:?}");

    // 14:00: a new published link.
    let nodes = json(&db, &["graph", "nodes", "--format", "json"]);
    let ip_of = |name: &str| {
        nodes.as_array().unwrap().iter().find(|n| n["name"] == name).unwrap()["ips"][0].as_str().unwrap().to_string()
    };
    let new_ip = ip_of(NEW_LINK_TO);
    assert!(!before.iter().any(|e| key(e) == (NEW_LINK_FROM.to_string(), new_ip.clone())), "the link is new");
    let links = dir.path().join("links.txt");
    std::fs::write(&links, format!("{NEW_LINK_FROM} {new_ip}\n")).unwrap();
    let mark = Utc::now();
    ok(&db, &["cmdb", "import", links.to_str().unwrap()]);
    move_history(&db, "valid_from", mark, at(day, 14, 0)).await;

    // Probe results every 2 minutes for the edges live all day; one fails 10:00–10:37.
    let now_edges = edges(&db);
    let all_day: Vec<&Value> =
        now_edges.iter().filter(|e| !(e["src"] == NEW_LINK_FROM && e["dst_ip"] == new_ip.as_str())).collect();
    let ids = edge_ids(&db).await;
    let faulty = key(all_day.iter().find(|e| !e["services"].as_array().unwrap().is_empty()).unwrap());
    graph_store::testing::ensure_partitions_from(&db.pool, 2).await;
    let (fail_from, fail_to) = (at(day, 10, 0), at(day, 10, 37));
    let mut results = Vec::new();
    for e in &all_day {
        let k = key(e);
        for cycle in 0..720 {
            let t = at(day, 0, 0) + Duration::minutes(2 * cycle);
            let failed = k == faulty && t >= fail_from && t < fail_to;
            results.push(ResultRow {
                edge_id: ids[&k],
                at: t,
                kind: ProbeKind::Tcp,
                prober: "test".into(),
                sent: 5,
                received: if failed { 0 } else { 5 },
                rtt_min_ms: (!failed).then_some(0.1),
                rtt_avg_ms: (!failed).then_some(0.2),
                rtt_max_ms: (!failed).then_some(0.4),
                rtt_sd_ms: (!failed).then_some(0.05),
                verdict: if failed { Verdict::Failed } else { Verdict::Ok },
            });
        }
    }
    let events = vec![
        EventRow {
            edge_id: ids[&faulty],
            at: fail_from,
            from: EventState::Up,
            to: EventState::Down,
            reason: "test".into(),
        },
        EventRow {
            edge_id: ids[&faulty],
            at: fail_to,
            from: EventState::Down,
            to: EventState::Up,
            reason: "test".into(),
        },
    ];
    for chunk in results.chunks(5000) {
        let mut tx = db.pool.begin().await.unwrap();
        graph_store::probe::write_cycle(&mut tx, chunk, &[], &[]).await.unwrap();
        tx.commit().await.unwrap();
    }
    let mut tx = db.pool.begin().await.unwrap();
    graph_store::probe::write_cycle(&mut tx, &[], &[], &events).await.unwrap();
    tx.commit().await.unwrap();

    // The report.
    let r = json(&db, &["report", "--date", &day.to_string(), "--tz", "UTC", "--format", "json"]);
    assert_eq!(r["has_data"], true, "{r}");
    assert_eq!(r["date"], day.to_string());
    let s = &r["summary"];
    let cycles = 720 * all_day.len() as i64;
    assert_eq!(s["cycles"], cycles);
    assert_eq!(s["failed_cycles"], 19, "10:00, 10:02, …, 10:36");
    assert_eq!(s["edges_down"], 1);
    assert_eq!(s["down_minutes"], 37.0);
    assert_eq!(s["worst_hour"]["hour"], at(day, 10, 0).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
    assert_eq!(s["worst_hour"]["local"], "10:00");
    assert_eq!(s["worst_hour"]["failed_cycles"], 19);
    assert_eq!(s["nodes"], 28);
    assert_eq!(s["edges"], now_edges.len());

    let broken = r["broken"].as_array().unwrap();
    assert_eq!(broken.len(), 1, "{broken:?}");
    let b = &broken[0];
    assert_eq!(key(b), faulty);
    assert_eq!(
        (b["down_minutes"].as_f64(), b["failed_cycles"].as_i64(), b["cycles"].as_i64()),
        (Some(37.0), Some(19), Some(720))
    );
    let evs: Vec<(String, String)> =
        b["events"].as_array().unwrap().iter().map(|e| (e["from"].to_string(), e["to"].to_string())).collect();
    assert_eq!(evs, vec![("\"up\"".into(), "\"down\"".into()), ("\"down\"".into(), "\"up\"".into())]);

    let c = &r["changes"];
    let retired: Vec<(&str, &str)> = c["retired_nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["name"].as_str().unwrap(), n["at"].as_str().unwrap()))
        .collect();
    let half_past_nine = at(day, 9, 30).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    assert_eq!(retired, vec![(RETIRED, half_past_nine.as_str())]);
    assert!(c["new_nodes"].as_array().unwrap().is_empty());
    let gone: BTreeSet<_> = c["vanished_dependencies"].as_array().unwrap().iter().map(key).collect();
    assert_eq!(gone, vanished);
    assert!(c["vanished_dependencies"].as_array().unwrap().iter().all(|d| d["at"] == half_past_nine.as_str()));
    let new: Vec<((String, String), &str)> =
        c["new_dependencies"].as_array().unwrap().iter().map(|d| (key(d), d["at"].as_str().unwrap())).collect();
    let two_pm = at(day, 14, 0).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    assert_eq!(new, vec![((NEW_LINK_FROM.to_string(), new_ip.clone()), two_pm.as_str())]);

    // Cross-DC dependencies, counted independently from the graph at the end of the day.
    let dc_of = |name: &str| nodes.as_array().unwrap().iter().find(|n| n["name"] == name).map(|n| n["dc"].clone());
    let mut crossing = std::collections::BTreeMap::<(String, String), usize>::new();
    for e in &now_edges {
        if let (Some(a), Some(b)) = (dc_of(e["src"].as_str().unwrap()), e["dst"].as_str().and_then(dc_of)) {
            if a != b {
                *crossing.entry((a.as_str().unwrap().into(), b.as_str().unwrap().into())).or_default() += 1;
            }
        }
    }
    let reported: std::collections::BTreeMap<(String, String), usize> = r["cross_dc"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                (x["from_dc"].as_str().unwrap().into(), x["to_dc"].as_str().unwrap().into()),
                x["edges"].as_u64().unwrap() as usize,
            )
        })
        .collect();
    assert!(!crossing.is_empty());
    assert_eq!(reported, crossing);

    // Markdown and HTML carry the same facts.
    let md = ok(&db, &["report", "--date", &day.to_string(), "--tz", "UTC", "--format", "md"]);
    assert!(md.contains(RETIRED) && md.contains("37") && md.contains(NEW_LINK_FROM), "{md}");
    let html_path = dir.path().join("report.html");
    ok(
        &db,
        &[
            "report",
            "--date",
            &day.to_string(),
            "--tz",
            "UTC",
            "--format",
            "html",
            "--out",
            html_path.to_str().unwrap(),
        ],
    );
    let html = std::fs::read_to_string(&html_path).unwrap();
    let has_dot = std::process::Command::new("dot").arg("-V").output().is_ok_and(|o| o.status.success());
    assert!(html.contains(RETIRED), "the retired node is named");
    assert!(html.contains("<svg") || !has_dot, "with Graphviz installed the picture is in the page");

    // Stored, and made again the same.
    let stored = json(&db, &["sql", "--format", "json", "SELECT day::text, format FROM reports ORDER BY format"]);
    assert_eq!(stored.as_array().unwrap().len(), 3, "{stored}");
    let again = json(&db, &["report", "--date", &day.to_string(), "--tz", "UTC", "--format", "json"]);
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("generated_at");
        v
    };
    assert_eq!(strip(again), strip(r));
}

#[tokio::test]
async fn a_day_without_data_says_so() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    let r = json(&db, &["report", "--date", "2001-02-03", "--tz", "Europe/Berlin", "--format", "json"]);
    assert_eq!(r["has_data"], false);
    assert_eq!(r["summary"]["nodes"], 0);
    let notes = r["notes"].to_string();
    assert!(notes.contains("graph was empty") && notes.contains("no probe results"), "{notes}");
    assert_eq!(r["from"], "2001-02-02T23:00:00Z");
    let md = ok(&db, &["report", "--date", "2001-02-03", "--tz", "Europe/Berlin", "--format", "md"]);
    assert!(md.contains("No data for this day"), "{md}");
    let bad = common::edgewatch(&db, &["report", "--tz", "Mars/Olympus"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown time zone"));
}

/// (consumer, address) → edge id.
async fn edge_ids(db: &TestDb) -> std::collections::BTreeMap<(String, String), i64> {
    graph_store::testing::edge_ids(&db.pool).await.into_iter().map(|(id, src, ip)| ((src, ip), id)).collect()
}
