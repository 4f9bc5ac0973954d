//! Agents' results posts written together (`probers::record::record_posts`, the group
//! commit behind `serve`'s results endpoint), on a real PostgreSQL with the sample fleet:
//! a resend in the same batch and one of an earlier batch count as duplicates and are
//! stored once, a report sent twice is new once, results for an edge without a health
//! row are skipped and counted, and workers are kept off the agents' edges for two
//! intervals past their newest result, which is now their health's.

mod common;

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use common::{ok, sample};
use graph_store::agents::AgentReport;
use graph_store::testing::{probe_results, TestDb};
use probers::record::{record_posts, AgentPost, CycleResult, PostOutcome, RecordConfig};
use probers::{ProbeKind, ProbeOutcome};

/// Two nodes with at least two probed edges each: (name, id, edge ids).
async fn two_consumers(db: &TestDb) -> [(String, i64, Vec<i64>); 2] {
    let rows: Vec<(String, i64, Vec<i64>)> = sqlx::query_as(
        "SELECT n.name, n.id, array_agg(e.id ORDER BY e.id) FROM nodes n JOIN edges e ON e.src_id = n.id \
         JOIN edge_health h ON h.edge_id = e.id GROUP BY n.name, n.id HAVING count(*) >= 2 ORDER BY n.name LIMIT 2",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    rows.try_into().expect("two nodes with two probed edges each in the sample fleet")
}

fn cycle(edge_id: i64, at: DateTime<Utc>) -> CycleResult {
    let rtts = [Duration::from_micros(300), Duration::from_micros(500)];
    CycleResult { edge_id, at, kind: ProbeKind::Icmp, outcome: ProbeOutcome::from_samples(2, &rtts, None) }
}

fn post(node: &str, node_id: i64, cycles: Vec<CycleResult>, at: Option<DateTime<Utc>>) -> AgentPost {
    AgentPost {
        prober: format!("agent:{node}"),
        node_id,
        cycles,
        report: at.map(|at| AgentReport { at, load1: Some(0.5), ..AgentReport::default() }),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn posts_written_together_store_each_result_and_report_once() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    graph_store::probe::sync_health(&db.pool, Duration::from_secs(60)).await.unwrap();
    graph_store::probe::ensure_partitions(&db.pool).await.unwrap();
    let [(fe_name, fe, fe_edges), (be_name, be, be_edges)] = two_consumers(&db).await;
    let (fe_name, be_name) = (fe_name.as_str(), be_name.as_str());
    let cfg = RecordConfig { interval: Duration::from_secs(60), ..RecordConfig::default() };
    let t = Utc::now().trunc_subsecs(6) - chrono::Duration::seconds(30);

    // A first batch: one result of be1's.
    let first = record_posts(&db.pool, &[post(be_name, be, vec![cycle(be_edges[0], t)], None)], &cfg).await;
    assert_eq!(first.unwrap(), vec![PostOutcome { accepted: 1, ..PostOutcome::default() }]);

    // The batch: fe1's post, the same post again (a resend that met the first in the
    // queue), be1's post with the result already stored and a new one, and a result for
    // an edge that has no health row.
    let fe_post = post(fe_name, fe, vec![cycle(fe_edges[0], t), cycle(fe_edges[1], t)], Some(t));
    let be_post = post(be_name, be, vec![cycle(be_edges[0], t), cycle(be_edges[1], t)], Some(t));
    let stray = post(be_name, be, vec![cycle(i64::MAX, t)], None);
    let outcomes = record_posts(&db.pool, &[fe_post.clone(), fe_post, be_post, stray], &cfg).await.unwrap();
    assert_eq!(
        outcomes,
        vec![
            PostOutcome { accepted: 2, duplicates: 0, unknown_edges: 0, report_new: true },
            PostOutcome { accepted: 2, duplicates: 2, unknown_edges: 0, report_new: false },
            PostOutcome { accepted: 2, duplicates: 1, unknown_edges: 0, report_new: true },
            PostOutcome { accepted: 1, duplicates: 0, unknown_edges: 1, report_new: false },
        ]
    );

    let mut stored: Vec<(i64, String)> =
        probe_results(&db.pool).await.into_iter().map(|(edge, _, prober)| (edge, prober)).collect();
    stored.sort();
    let mut want = vec![
        (fe_edges[0], format!("agent:{fe_name}")),
        (fe_edges[1], format!("agent:{fe_name}")),
        (be_edges[0], format!("agent:{be_name}")),
        (be_edges[1], format!("agent:{be_name}")),
    ];
    want.sort();
    assert_eq!(stored, want, "each result once");
    let reports: i64 = sqlx::query_scalar("SELECT count(*) FROM agent_reports").fetch_one(&db.pool).await.unwrap();
    assert_eq!(reports, 2, "each report once");

    // Prober workers leave the agents' edges alone for two intervals past the result,
    // and the results moved the edges' health.
    let rows: Vec<(i64, DateTime<Utc>, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT edge_id, next_probe_at, last_result_at FROM edge_health WHERE edge_id = ANY($1) ORDER BY edge_id",
    )
    .bind([&fe_edges[..2], &be_edges[..2]].concat())
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 4);
    for (edge, next, last) in rows {
        assert!(next >= t + chrono::Duration::seconds(120), "edge {edge}: next probe at {next}, result at {t}");
        assert_eq!(last, Some(t), "edge {edge}");
    }
}
