//! The SQL functions that unpack the path history for plain SQL readers (migration
//! `20261205000021_grafana_views.sql`, read by the Grafana dashboards) give what the
//! Rust reader gives: runs recorded with `record_runs`, some compacted into blocks, read
//! both ways and compared hop by hop.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use graph_store::cmdb::{apply_inventory, apply_links, lock_graph};
use graph_store::model::{Inventory, Link, LinkSet};
use graph_store::paths::{self, block, Hop, PairSchedule, Run, TraceRecord, TrackConfig};
use graph_store::testing::{container, TestDb};
use sqlx::Row;

/// web.h1 (DC A) uses search.h2 (DC B): one traced pair h1 → h2.
async fn graph(db: &TestDb) -> i64 {
    let inventory = Inventory {
        containers: vec![container("web.h1", "h1", "A", "127.2.0.1"), container("search.h2", "h2", "B", "127.2.0.3")],
        services: vec![],
    };
    let links =
        vec![Link { container: "web.h1".into(), targets: vec!["127.2.0.3".parse().unwrap()], origin: "t".into() }];
    let mut tx = db.pool.begin().await.unwrap();
    lock_graph(&mut tx).await.unwrap();
    apply_inventory(&mut tx, &inventory, true).await.unwrap();
    apply_links(&mut tx, &LinkSet { links }).await.unwrap();
    tx.commit().await.unwrap();
    paths::sync_pairs(&db.pool, &PairSchedule::default()).await.unwrap();
    paths::find_pairs(&db.pool, "h1", "h2").await.unwrap().remove(0).id
}

/// A hop of `sent` probes, `received` answers around `rtt` ms (spread growing with it).
fn hop(ttl: u8, addr: &str, sent: u32, received: u32, rtt: f32) -> Hop {
    let answered = received > 0;
    Hop {
        ttl,
        addrs: if answered { vec![addr.parse().unwrap()] } else { vec![] },
        sent,
        received,
        rtt_best_ms: answered.then_some(rtt * 0.9),
        rtt_avg_ms: answered.then_some(rtt),
        rtt_worst_ms: answered.then_some(rtt * 1.3 + 0.05),
        rtt_stddev_ms: answered.then_some(rtt * 0.1),
        jitter_ms: answered.then_some(rtt * 0.05),
    }
}

/// Run `i` at `at`: the usual three probes a hop, every third run five probes (the
/// counts stored as varints), a silent hop, partial answers, RTTs from 0.05 ms to 400 ms.
fn run(i: usize, at: DateTime<Utc>) -> Run {
    let sent = if i.is_multiple_of(3) { 5 } else { 3 };
    let k = i as f32;
    let third = if i.is_multiple_of(4) { "52.93.9.9" } else { "52.93.1.1" };
    Run {
        at,
        hops: vec![
            hop(1, "10.0.0.1", sent, sent, 0.05 + k * 0.01),
            hop(2, "52.93.0.1", sent, 0, 0.0),
            hop(3, third, sent, (i % 3) as u32 + 1, 12.5 + k),
            hop(4, "127.2.0.3", sent, sent - u32::from(i.is_multiple_of(5)), 40.0 + 9.0 * k),
        ],
        reached: true,
    }
}

#[tokio::test]
async fn the_sql_unpacking_gives_what_the_rust_reader_gives() {
    let db = TestDb::new().await;
    let pair = graph(&db).await;
    // Runs every 25 minutes over the last 18 hours: some blocks over (compacted below),
    // the running one still in trace_runs.
    let now = Utc::now().trunc_subsecs(6);
    let runs: Vec<Run> = (0..44)
        .map(|i| {
            run(i, now - chrono::Duration::minutes(25 * (44 - i as i64)) + chrono::Duration::microseconds(i as i64))
        })
        .collect();
    let records: Vec<TraceRecord> = runs.iter().map(|r| TraceRecord { pair_id: pair, run: r.clone() }).collect();
    paths::record_runs(&db.pool, &records, &TrackConfig::default()).await.unwrap();
    paths::compact_runs(&db.pool, block::block_of(now), Duration::from_secs(60)).await.unwrap();
    let blocks: i64 = sqlx::query_scalar("SELECT count(*) FROM trace_blocks").fetch_one(&db.pool).await.unwrap();
    assert!(blocks >= 2, "some runs were compacted ({blocks} blocks)");

    let (from, to) = (now - chrono::Duration::hours(19), now + chrono::Duration::minutes(1));
    let want = paths::runs_between(&db.pool, pair, from, to).await.unwrap();
    assert_eq!(want.len(), runs.len());
    let rows = sqlx::query(
        "SELECT at, ttl, addrs, sent, received, loss_pct, rtt_best_ms, rtt_avg_ms, rtt_worst_ms, last_hop \
         FROM edgewatch_trace_hops($1, $2, $3) ORDER BY at, ttl",
    )
    .bind(pair)
    .bind(from)
    .bind(to)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let want_hops: Vec<(DateTime<Utc>, &Hop, bool)> =
        want.iter().flat_map(|r| r.hops.iter().map(move |h| (r.at, h, h.ttl as usize == r.hops.len()))).collect();
    assert_eq!(rows.len(), want_hops.len());
    let close = |a: Option<f32>, b: Option<f32>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() < 0.001,
        (a, b) => a == b,
    };
    for (row, (at, hop, last)) in rows.iter().zip(want_hops) {
        let what = format!("run at {at}, TTL {}", hop.ttl);
        assert_eq!(row.get::<DateTime<Utc>, _>("at"), at, "{what}");
        assert_eq!(row.get::<i16, _>("ttl"), i16::from(hop.ttl), "{what}");
        assert_eq!(row.get::<String, _>("addrs"), paths::packed::hop_text(&hop.addrs), "{what}");
        assert_eq!((row.get::<i32, _>("sent"), row.get::<i32, _>("received")), (hop.sent as i32, hop.received as i32));
        let loss = 100.0 * (hop.sent - hop.received) as f32 / hop.sent as f32;
        assert!(close(row.get("loss_pct"), Some(loss)), "{what}: loss");
        assert!(close(row.get("rtt_best_ms"), hop.rtt_best_ms), "{what}: best {:?}", hop.rtt_best_ms);
        assert!(close(row.get("rtt_avg_ms"), hop.rtt_avg_ms), "{what}: avg {:?}", hop.rtt_avg_ms);
        assert!(close(row.get("rtt_worst_ms"), hop.rtt_worst_ms), "{what}: worst {:?}", hop.rtt_worst_ms);
        assert_eq!(row.get::<bool, _>("last_hop"), last, "{what}");
    }

    // A window inside one block, and one of nothing.
    let (a, b) = (runs[5].at, runs[9].at);
    let n: i64 = sqlx::query_scalar("SELECT count(DISTINCT at) FROM edgewatch_trace_hops($1, $2, $3)")
        .bind(pair)
        .bind(a)
        .bind(b)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(n, 4, "[runs 5, 9)");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM edgewatch_trace_hops($1, $2, $3)")
        .bind(pair + 1000)
        .bind(from)
        .bind(to)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "no such pair");
}
