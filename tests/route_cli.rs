//! `edgewatch route show|diff|changes` on a stored story: web.h1 (on-premise) → search.h2
//! (cloud) traced every 2 minutes from 15:50 to 16:40; from 16:13 to 16:26 the path
//! changed after a hop that belongs to the cloud provider. The runs are recorded through
//! the store as the tracers record them; the questions are asked through the binary.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::{edgewatch, json, ok};
use graph_store::cmdb::{apply_inventory, apply_links, lock_graph};
use graph_store::model::{Inventory, Link, LinkSet};
use graph_store::paths::{self, Hop, PairSchedule, Run, TraceRecord, TrackConfig};
use graph_store::testing::{container, TestDb};

/// The day of the story: yesterday, 16:00 UTC.
fn t(h: u32, m: u32) -> DateTime<Utc> {
    let day = (Utc::now() - Duration::days(1)).date_naive();
    day.and_hms_opt(h, m, 0).unwrap().and_utc()
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

const BEFORE: [&str; 5] = ["10.0.0.1", "10.0.1.1", "52.93.0.1", "52.93.1.1", "127.3.0.2"];
const DURING: [&str; 6] = ["10.0.0.1", "10.0.1.1", "52.93.0.1", "52.93.128.156", "52.93.128.200", "127.3.0.2"];

fn run(at: DateTime<Utc>, hops: &[&str], slow: bool) -> Run {
    let hops = hops
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let rtt = if slow && i >= 3 { 40.0 + i as f32 } else { 1.0 + 5.0 * i as f32 };
            Hop {
                ttl: i as u8 + 1,
                addrs: vec![a.parse().unwrap()],
                sent: 3,
                received: 3,
                rtt_best_ms: Some(rtt - 0.5),
                rtt_avg_ms: Some(rtt),
                rtt_worst_ms: Some(rtt + 0.5),
                rtt_stddev_ms: Some(0.3),
                jitter_ms: Some(0.2),
            }
        })
        .collect();
    Run { at, hops, reached: true }
}

async fn story(db: &TestDb) {
    let inventory = Inventory {
        containers: vec![
            container("web.h1", "h1", "onprem", "127.3.0.1"),
            container("search.h2", "h2", "cloud", "127.3.0.2"),
        ],
        services: vec![],
    };
    let links = LinkSet {
        links: vec![Link {
            container: "web.h1".into(),
            targets: vec!["127.3.0.2".parse().unwrap()],
            origin: "t".into(),
        }],
    };
    let mut tx = db.pool.begin().await.unwrap();
    lock_graph(&mut tx).await.unwrap();
    apply_inventory(&mut tx, &inventory, true).await.unwrap();
    apply_links(&mut tx, &links).await.unwrap();
    tx.commit().await.unwrap();
    paths::sync_pairs(&db.pool, &PairSchedule::default()).await.unwrap();
    let pair = paths::find_pairs(&db.pool, "h1", "h2").await.unwrap().remove(0);
    let mut at = t(15, 50);
    while at <= t(16, 40) {
        let during = at >= t(16, 13) && at < t(16, 26);
        let r = run(at, if during { &DURING } else { &BEFORE }, during);
        paths::record_runs(&db.pool, &[TraceRecord { pair_id: pair.id, run: r }], &TrackConfig::default())
            .await
            .unwrap();
        at += Duration::minutes(2);
    }
}

fn config(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("edgewatch.toml");
    std::fs::write(&path, "[owners]\n\"10.0.0.0/8\" = \"ours\"\n\"52.93.0.0/16\" = \"AWS\"\n").unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test]
async fn the_1600_1615_1630_story() {
    let db = TestDb::new().await;
    story(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir);

    let show = json(
        &db,
        &["--config", &cfg, "route", "show", "web.h1", "search.h2", "--at", &rfc(t(16, 0)), "--format", "json"],
    );
    assert_eq!(show["window"]["runs"], 3, "{show}");
    assert_eq!(show["window"]["paths"], 1);
    assert_eq!(
        show["window"]["hops"][3]["addrs"][0],
        serde_json::json!({"ip": "52.93.1.1", "owner": "AWS", "runs": 3})
    );
    assert_eq!(show["pair"]["src_dc"], "onprem");

    // With an ASN table imported, every hop shown carries its AS too.
    let asn = dir.path().join("ip2asn.tsv");
    std::fs::write(
        &asn,
        "52.93.0.0\t52.93.255.255\t16509\tUS\tAMAZON-02\n10.0.0.0\t10.255.255.255\t0\tNone\tNot routed\n",
    )
    .unwrap();
    ok(&db, &["asn", "import", asn.to_str().unwrap()]);
    let args = ["--config", &cfg, "route", "diff", "web.h1", "127.3.0.2"];
    let at = |h, m| rfc(t(h, m));
    let (a, b, c) = (at(16, 0), at(16, 15), at(16, 30));
    let mut with = args.to_vec();
    with.extend(["--at", &a, "--at", &b, "--at", &c, "--format", "json"]);
    let diff = json(&db, &with);
    // Once the hour is compacted into its block (what serve does ten minutes after it), the
    // answers are the same.
    let done = paths::compact_runs(&db.pool, t(17, 0), std::time::Duration::from_secs(30)).await.unwrap().unwrap();
    assert!(done.runs >= 20 && done.blocks >= 1 && done.duplicates == 0, "{done:?}");
    assert_eq!(json(&db, &with), diff, "the same answer from the hour's block");
    let first = &diff["comparisons"][0]["first_divergence"];
    assert_eq!(first["ttl"], 4, "{diff}");
    assert_eq!(first["old"][0]["ip"], "52.93.1.1");
    assert_eq!(
        first["new"][0],
        serde_json::json!({"ip": "52.93.128.156", "owner": "AWS", "asn": 16509, "as_name": "AMAZON-02"})
    );
    assert_eq!(
        diff["windows"][0]["hops"][0]["addrs"][0],
        serde_json::json!({"ip": "10.0.0.1", "owner": "ours", "runs": 3})
    );
    assert_eq!(diff["comparisons"][1]["first_divergence"]["ttl"], 4);
    let statuses: Vec<&str> =
        diff["comparisons"][0]["hops"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["same", "same", "same", "changed", "changed", "added"]);
    assert_eq!(diff["comparisons"][0]["hops"][3]["rtt_worse"], true);

    let mut table = args.to_vec();
    table.extend(["--from", &a, "--to", &b]);
    let text = ok(&db, &table);
    println!("{text}");
    assert!(
        text.contains("path changed: first different hop 4: 52.93.1.1 (AWS AS16509) → 52.93.128.156 (AWS AS16509)"),
        "{text}"
    );
    assert!(text.contains("≠ 52.93.128.156 (AWS AS16509)"), "{text}");

    let since = at(15, 0);
    let changes = json(&db, &["route", "changes", "--since", &since, "--format", "json"]);
    let got: Vec<(String, u64, String)> = changes
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "changed")
        .map(|e| {
            (
                e["at"].as_str().unwrap().to_string(),
                e["ttl"].as_u64().unwrap(),
                e["new_addrs"][0].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let z = |t: DateTime<Utc>| graph_store::format_utc(&t);
    assert_eq!(
        got,
        [(z(t(16, 26)), 4, "52.93.1.1".to_string()), (z(t(16, 14)), 4, "52.93.128.156".to_string())],
        "newest first, each dated at the first run of its new path"
    );
    let between =
        json(&db, &["route", "changes", "--since", &since, "--dc", "cloud", "--dc", "onprem", "--format", "json"]);
    assert_eq!(between.as_array().unwrap().len(), changes.as_array().unwrap().len());
    let within =
        json(&db, &["route", "changes", "--since", &since, "--dc", "cloud", "--dc", "cloud", "--format", "json"]);
    assert_eq!(within.as_array().unwrap().len(), 0);
    // The nightly report of that day has them, per DC pair, with the time on each path.
    let date = t(0, 0).date_naive().to_string();
    let report = json(&db, &["report", "--date", &date, "--tz", "UTC", "--format", "json"]);
    let routes = &report["route_changes"][0];
    assert_eq!(
        (routes["from_dc"].as_str(), routes["to_dc"].as_str(), routes["changes"].as_u64()),
        (Some("onprem"), Some("cloud"), Some(2)),
        "{routes}"
    );
    let minutes: Vec<f64> =
        routes["pairs"][0]["paths"].as_array().unwrap().iter().map(|p| p["minutes"].as_f64().unwrap()).collect();
    assert_eq!(minutes, [24.0 * 60.0 - 12.0, 12.0], "16:14 to 16:26 on the other path");
    let md = ok(&db, &["report", "--date", &date, "--tz", "UTC"]);
    assert!(md.contains("## Route changes") && md.contains("52.93.1.1 → 52.93.128.156"), "{md}");
    let mut three = args.to_vec();
    three.extend(["--at", &a, "--at", &b, "--at", &c]);
    println!("{}", ok(&db, &three));
    println!("{}", ok(&db, &["--config", &cfg, "route", "show", "web.h1", "search.h2", "--at", &b]));
    let text = ok(&db, &["--config", &cfg, "route", "changes", "--since", &since, "--kind", "changed"]);
    println!("{text}");
    assert!(
        text.contains("52.93.1.1 (AWS AS16509) → 52.93.128.156 (AWS AS16509)") && text.contains("2 event(s)"),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_pairs_and_bad_arguments_say_what_is_wrong() {
    let db = TestDb::new().await;
    story(&db).await;
    let out = edgewatch(&db, &["route", "show", "search.h2", "web.h1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no traced path from \"search.h2\" to \"web.h1\""), "{err}");
    let out = edgewatch(&db, &["route", "changes", "--kind", "moved"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kind \"moved\": expected one of changed"));
    let out = edgewatch(&db, &["route", "diff", "h1", "h2", "--at", "16:00"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("compares 2 to 12 windows (got 1)"));
    // A window with no runs says so, and when the last one was.
    let text = ok(&db, &["route", "show", "h1", "h2", "--at", "2001-01-01T00:00:00Z"]);
    assert!(text.contains("no runs in this window (last run: "), "{text}");
}

#[tokio::test]
async fn the_api_answers_as_the_cli_does() {
    let db = TestDb::new().await;
    story(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir);
    let server = common::Server::start(&db, &["--config", &cfg], &[]);
    let get = |path: String| {
        let url = format!("{}{path}", server.base);
        async move {
            let r = common::get(&url).await.unwrap();
            (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (a, b) = (rfc(t(16, 0)), rfc(t(16, 15)));
    let enc = |s: &str| s.replace('+', "%2B").replace(':', "%3A");
    let (status, api) = get(format!("/api/v1/routes/diff?src=web.h1&dst=search.h2&at={},{}", enc(&a), enc(&b))).await;
    assert_eq!(status, 200, "{api}");
    let cli = json(
        &db,
        &["--config", &cfg, "route", "diff", "web.h1", "search.h2", "--at", &a, "--at", &b, "--format", "json"],
    );
    assert_eq!(api, cli);
    assert_eq!(api["comparisons"][0]["first_divergence"]["new"][0]["owner"], "AWS");
    let (status, show) = get(format!("/api/v1/routes/show?src=h1&dst=h2&at={}&window=10m", enc(&a))).await;
    assert_eq!((status, show["window"]["runs"].as_u64()), (200, Some(5)));
    let since = enc(&rfc(t(15, 0)));
    let (status, changes) = get(format!("/api/v1/routes/changes?since={since}&dc=onprem,cloud&kind=changed")).await;
    assert_eq!((status, changes.as_array().map(Vec::len)), (200, Some(2)), "{changes}");
    let (status, err) = get("/api/v1/routes/show?src=nobody&dst=h2".into()).await;
    assert_eq!(status, 404);
    assert!(err["error"].as_str().unwrap().contains("no traced path from \"nobody\""), "{err}");
    let (status, err) = get(format!("/api/v1/routes/diff?src=h1&dst=h2&at={}", enc(&a))).await;
    assert_eq!(status, 400, "{err}");
    let (status, _) = get("/api/v1/routes/show?src=h1&dst=h2&window=forever".into()).await;
    assert_eq!(status, 400);
    // /metrics counts the traces and the route events.
    let metrics = common::get(format!("{}/metrics", server.base)).await.unwrap().text().await.unwrap();
    for line in [
        "edgewatch_trace_runs_total 26",
        "edgewatch_trace_pairs 1",
        "edgewatch_route_events_total{kind=\"changed\"} 2",
        "edgewatch_route_events_total{kind=\"loss-started\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} not in:\n{metrics}");
    }
}

#[tokio::test]
async fn an_incident_carries_the_path_evidence_of_its_host_pairs() {
    let db = TestDb::new().await;
    story(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir);
    // The edge broke at 16:13, when the path changed.
    graph_store::testing::execute(
        &db.pool,
        &format!(
            "INSERT INTO edge_health (edge_id, state, since, last_result_at) \
             SELECT id, 'down', '{}', now() FROM edges",
            rfc(t(16, 13))
        ),
    )
    .await;
    let incidents = json(&db, &["incidents", "--format", "json"]);
    let paths = &incidents[0]["paths"];
    assert_eq!(paths.as_array().map(Vec::len), Some(1), "{incidents}");
    assert_eq!(paths[0]["src"], "h1");
    assert_eq!(paths[0]["changed_ttl"], 4);
    assert_eq!(paths[0]["changed_at"], graph_store::format_utc(&t(16, 14)), "the change that came with it");
    assert_eq!(paths[0]["new_addrs"][0], "52.93.128.156");
    let text = ok(&db, &["--config", &cfg, "incidents"]);
    assert!(
        text.contains(&format!(
            "path h1 → h2 changed at {}, first different hop 4: 52.93.1.1 (AWS) → 52.93.128.156 (AWS)",
            graph_store::format_utc(&t(16, 14))
        )),
        "{text}"
    );
}

#[tokio::test]
async fn trace_from_a_host_asks_its_tracer_and_prints_the_run() {
    let db = TestDb::new().await;
    story(&db).await;
    let pair = paths::find_pairs(&db.pool, "h1", "h2").await.unwrap().remove(0);
    graph_store::testing::execute(&db.pool, "UPDATE trace_pairs SET next_trace_at = now() + interval '1 hour'").await;
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("edgewatch"))
        .env_remove("DATABASE_URL")
        .args([
            "--database-url",
            &db.url,
            "trace",
            "127.3.0.2",
            "--from-host",
            "web.h1",
            "--wait",
            "30s",
            "--format",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Play the pair's tracer, the agent on h1: once the pair is due, lease and trace it.
    let lease = std::time::Duration::from_secs(60);
    let start = std::time::Instant::now();
    while paths::claim_due(&db.pool, paths::Tracer::Agent { host: "h1" }, "agent", 10, lease).await.unwrap().is_empty()
    {
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "the pair was never asked for");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let r = run(Utc::now(), &DURING, true);
    paths::record_runs(&db.pool, &[TraceRecord { pair_id: pair.id, run: r }], &TrackConfig::default()).await.unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["hops"].as_array().map(Vec::len), Some(6), "{v}");
    assert_eq!(v["hops"][3]["addrs"][0]["ip"], "52.93.128.156");
    assert_eq!(v["reached"], true);

    // Nobody traces: it says so after --wait.
    let out = edgewatch(&db, &["trace", "127.3.0.2", "--from-host", "h1", "--wait", "1s"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no trace of h1 → h2 within 1s: is an agent running on h1"));
}
