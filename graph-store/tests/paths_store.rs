//! The path history's store on a real PostgreSQL: pairs kept from the graph, leases,
//! runs recorded once with their paths and rollups, the trackers' events, the reads.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeZone, Utc};
use graph_store::cmdb::{apply_inventory, apply_links, lock_graph};
use graph_store::model::{Inventory, Link, LinkSet};
use graph_store::paths::{self, EventFilter, ExternalTarget, Hop, PairSchedule, Run, TraceRecord, Tracer, TrackConfig};
use graph_store::testing::{container, execute, TestDb};
use sqlx::Row;

/// web.h1 (DC A) uses search.h2 (DC B) and cache.h3 (DC A); web2.h1 uses search.h2 too.
async fn graph(db: &TestDb, with_cache: bool) {
    let inventory = Inventory {
        containers: vec![
            container("web.h1", "h1", "A", "127.2.0.1"),
            container("web2.h1", "h1", "A", "127.2.0.2"),
            container("search.h2", "h2", "B", "127.2.0.3"),
            container("cache.h3", "h3", "A", "127.2.0.4"),
        ],
        services: vec![],
    };
    let ip = |s: &str| s.parse().unwrap();
    let mut links = vec![
        Link { container: "web.h1".into(), targets: vec![ip("127.2.0.3")], origin: "t".into() },
        Link { container: "web2.h1".into(), targets: vec![ip("127.2.0.3")], origin: "t".into() },
    ];
    if with_cache {
        links.push(Link { container: "web.h1".into(), targets: vec![ip("127.2.0.4")], origin: "t".into() });
    }
    let mut tx = db.pool.begin().await.unwrap();
    lock_graph(&mut tx).await.unwrap();
    apply_inventory(&mut tx, &inventory, true).await.unwrap();
    apply_links(&mut tx, &LinkSet { links }).await.unwrap();
    tx.commit().await.unwrap();
}

fn at(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 5, 16, 0, 0).unwrap() + chrono::Duration::minutes(min)
}

fn hop(ttl: u8, addr: &str, rtt: f32) -> Hop {
    Hop {
        ttl,
        addrs: if addr == "*" { vec![] } else { vec![addr.parse().unwrap()] },
        sent: 3,
        received: if addr == "*" { 0 } else { 3 },
        rtt_best_ms: (addr != "*").then_some(rtt),
        rtt_avg_ms: (addr != "*").then_some(rtt),
        rtt_worst_ms: (addr != "*").then_some(rtt),
        rtt_stddev_ms: (addr != "*").then_some(0.0),
        jitter_ms: (addr != "*").then_some(0.0),
    }
}

/// A run through `hops` (the last one the destination).
fn run(min: i64, hops: &[&str]) -> Run {
    Run {
        at: at(min),
        hops: hops.iter().enumerate().map(|(i, a)| hop(i as u8 + 1, a, 10.0 * (i as f32 + 1.0))).collect(),
        reached: true,
    }
}

const OLD: [&str; 4] = ["10.0.0.1", "52.93.0.1", "52.93.1.1", "127.2.0.3"];
const NEW: [&str; 4] = ["10.0.0.1", "52.93.0.1", "52.93.9.9", "127.2.0.3"];

#[tokio::test]
async fn pairs_follow_the_graph_between_hosts() {
    let db = TestDb::new().await;
    graph(&db, true).await;
    let schedule = PairSchedule { interval: Duration::from_secs(120), intra_dc_every: 10, protocol: "tcp" };
    assert_eq!(paths::sync_pairs(&db.pool, &schedule).await.unwrap(), (2, 0));
    assert_eq!(paths::sync_pairs(&db.pool, &schedule).await.unwrap(), (0, 0), "idempotent");
    let rows = sqlx::query("SELECT src, dst, host(dst_ip) AS ip, every_s FROM trace_pairs ORDER BY dst")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    let got: Vec<(String, String, String, i32)> =
        rows.iter().map(|r| (r.get("src"), r.get("dst"), r.get("ip"), r.get("every_s"))).collect();
    // Two containers of h1 using h2 are one pair; h1 → h3 is within DC A: ten intervals.
    assert_eq!(
        got,
        [("h1".into(), "h2".into(), "127.2.0.3".into(), 120), ("h1".into(), "h3".into(), "127.2.0.4".into(), 1200)]
    );
    // The cache edge gone: its pair retired; back: revived, the same row.
    graph(&db, false).await;
    execute(&db.pool, "UPDATE edges SET retired_at = now() WHERE dst_ip = '127.2.0.4'").await;
    assert_eq!(paths::sync_pairs(&db.pool, &schedule).await.unwrap(), (0, 1));
    execute(&db.pool, "UPDATE edges SET retired_at = NULL WHERE dst_ip = '127.2.0.4'").await;
    assert_eq!(paths::sync_pairs(&db.pool, &schedule).await.unwrap(), (1, 0));
    assert_eq!(paths::find_pairs(&db.pool, "web.h1", "cache.h3").await.unwrap().len(), 1);
    assert_eq!(paths::find_pairs(&db.pool, "h1", "127.2.0.3").await.unwrap()[0].dst, "h2");
    assert!(paths::find_pairs(&db.pool, "h2", "h1").await.unwrap().is_empty());

    // The least CMDB port of the services of a pair's edges (a TCP trace's SYNs go there).
    execute(&db.pool, "INSERT INTO services (name, port) VALUES ('search', 9300), ('search-http', 9200), ('x', NULL)")
        .await;
    execute(&db.pool, "UPDATE edges SET services = '{search}' WHERE dst_ip = '127.2.0.3'").await;
    execute(
        &db.pool,
        "UPDATE edges SET services = '{search-http,x}' WHERE dst_ip = '127.2.0.3' \
         AND src_id = (SELECT id FROM nodes WHERE name = 'web2.h1')",
    )
    .await;
    paths::sync_pairs(&db.pool, &schedule).await.unwrap();
    let ports: Vec<(String, String, Option<u16>)> =
        paths::list_pairs(&db.pool, 10).await.unwrap().into_iter().map(|p| (p.dst, p.protocol, p.port)).collect();
    let tcp = || "tcp".to_string();
    assert_eq!(
        ports,
        [("h2".to_string(), tcp(), Some(9200)), ("h3".to_string(), tcp(), None)],
        "[trace] protocol kept"
    );
}

#[tokio::test]
async fn leases_hand_each_pair_to_one_tracer() {
    let db = TestDb::new().await;
    graph(&db, true).await;
    paths::sync_pairs(&db.pool, &PairSchedule::default()).await.unwrap();
    let targets = [ExternalTarget {
        name: "dns".into(),
        ip: "127.0.0.53".parse().unwrap(),
        protocol: "udp".into(),
        port: Some(53),
    }];
    paths::sync_targets(&db.pool, "prober1", &targets, &PairSchedule::default()).await.unwrap();
    execute(&db.pool, "UPDATE trace_pairs SET next_trace_at = now() - interval '1 s'").await;
    let lease = Duration::from_secs(60);
    let agent = paths::claim_due(&db.pool, Tracer::Agent { host: "h1" }, "a1", 10, lease).await.unwrap();
    assert_eq!(agent.iter().map(|p| p.dst.as_str()).collect::<Vec<_>>(), ["h2", "h3"]);
    let silence = Duration::from_secs(600);
    let worker = Tracer::Worker { vantage: "prober1", agent_silence: silence };
    let got = paths::claim_due(&db.pool, worker, "w1", 10, lease).await.unwrap();
    assert_eq!(got.iter().map(|p| (p.dst.as_str(), p.port)).collect::<Vec<_>>(), [("dns", Some(53))]);
    // Released (not traced): free again, one interval later.
    paths::release(&db.pool, "a1", &[agent[0].id]).await.unwrap();
    execute(&db.pool, "UPDATE trace_pairs SET next_trace_at = now() - interval '1 s' WHERE dst = 'h2'").await;
    let again = paths::claim_due(&db.pool, worker, "w1", 10, lease).await.unwrap();
    assert_eq!(again.iter().map(|p| p.dst.as_str()).collect::<Vec<_>>(), ["h2"], "no agent on h1 has reported");

    // An agent on h1 reports: its pairs are its own ...
    execute(
        &db.pool,
        "UPDATE trace_pairs SET lease_owner = NULL, lease_until = NULL, next_trace_at = now() - interval '1 s'",
    )
    .await;
    execute(&db.pool, "INSERT INTO agent_reports (node_id, at) SELECT id, now() FROM nodes WHERE name = 'web.h1'")
        .await;
    assert!(paths::claim_due(&db.pool, worker, "w1", 10, lease).await.unwrap().iter().all(|p| p.external));
    // ... until nobody has traced one of them for the silence (an agent without raw sockets).
    execute(&db.pool, "UPDATE trace_pairs SET first_seen = now() - interval '11 minutes' WHERE dst = 'h3'").await;
    let stale = paths::claim_due(&db.pool, worker, "w1", 10, lease).await.unwrap();
    assert_eq!(stale.iter().map(|p| p.dst.as_str()).collect::<Vec<_>>(), ["h3"], "untraced for 11 min");
}

#[tokio::test]
async fn runs_are_stored_once_and_a_held_change_is_one_event() {
    let db = TestDb::new().await;
    graph(&db, false).await;
    paths::sync_pairs(&db.pool, &PairSchedule::default()).await.unwrap();
    let pair = paths::find_pairs(&db.pool, "h1", "h2").await.unwrap().remove(0);
    let cfg = TrackConfig::default();
    let rec = |r: Run| TraceRecord { pair_id: pair.id, run: r };
    let first: Vec<TraceRecord> = (0..3).map(|i| rec(run(i * 2, &OLD))).collect();
    let t = paths::record_runs(&db.pool, &first, &cfg).await.unwrap();
    assert_eq!((t.runs, t.new_paths, t.events), (3, 1, 0));
    // One odd run: no event. Then the new path twice in a row: one change, dated at its first run.
    let t = paths::record_runs(&db.pool, &[rec(run(6, &NEW)), rec(run(8, &OLD))], &cfg).await.unwrap();
    assert_eq!((t.runs, t.new_paths, t.events), (2, 1, 0));
    let t = paths::record_runs(&db.pool, &[rec(run(10, &NEW)), rec(run(12, &NEW))], &cfg).await.unwrap();
    assert_eq!((t.runs, t.new_paths, t.events), (2, 0, 1));
    // A resend of stored runs (an agent retrying) stores nothing and moves nothing.
    let t = paths::record_runs(&db.pool, &[rec(run(10, &NEW)), rec(run(12, &NEW))], &cfg).await.unwrap();
    assert_eq!((t.runs, t.events), (0, 0));
    // A run of a pair that is not stored is not kept.
    let t = paths::record_runs(&db.pool, &[TraceRecord { pair_id: 999_999, run: run(14, &NEW) }], &cfg).await.unwrap();
    assert_eq!((t.runs, t.unknown), (0, 1));

    let events = paths::events(&db.pool, &EventFilter::default()).await.unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!((e.kind.as_str(), e.ttl, e.at), ("changed", Some(3), at(10)));
    assert_eq!(
        (e.old_addrs.clone(), e.new_addrs.clone()),
        (vec!["52.93.1.1".to_string()], vec!["52.93.9.9".to_string()])
    );
    assert_eq!((e.src.as_str(), e.dst.as_str(), e.src_dc.as_str(), e.dst_dc.as_str()), ("h1", "h2", "A", "B"));
    let f = |dcs: &[&str]| EventFilter { dcs: dcs.iter().map(|d| d.to_string()).collect(), ..EventFilter::default() };
    assert_eq!(paths::events(&db.pool, &f(&["A", "B"])).await.unwrap().len(), 1);
    assert_eq!(paths::events(&db.pool, &f(&["B"])).await.unwrap().len(), 1);
    assert!(paths::events(&db.pool, &f(&["C"])).await.unwrap().is_empty());
    assert!(paths::events(&db.pool, &f(&["A", "A"])).await.unwrap().is_empty(), "A to A: within a DC");

    // The runs come back whole, in order.
    let runs = paths::runs_between(&db.pool, pair.id, at(0), at(13)).await.unwrap();
    assert_eq!(runs.len(), 7);
    assert_eq!(runs[3], run(6, &NEW));
    let stored = paths::pair(&db.pool, pair.id).await.unwrap().unwrap();
    assert_eq!((stored.runs, stored.last_run_at), (7, Some(at(12))));
    assert_eq!(paths::counts(&db.pool).await.unwrap().events, [("changed".to_string(), 1)]);
}

#[tokio::test]
async fn a_failing_edge_asks_for_a_trace_once_per_interval() {
    let db = TestDb::new().await;
    graph(&db, false).await;
    paths::sync_pairs(&db.pool, &PairSchedule::default()).await.unwrap();
    execute(&db.pool, "UPDATE trace_pairs SET next_trace_at = now() + interval '1 minute'").await;
    let edges: Vec<i64> = sqlx::query_scalar("SELECT id FROM edges").fetch_all(&db.pool).await.unwrap();
    let mut tx = db.pool.begin().await.unwrap();
    assert_eq!(paths::trace_now(&mut tx, &edges).await.unwrap(), 1, "two edges, one host pair");
    tx.commit().await.unwrap();
    execute(&db.pool, "UPDATE trace_pairs SET next_trace_at = now() + interval '1 minute'").await;
    let mut tx = db.pool.begin().await.unwrap();
    assert_eq!(paths::trace_now(&mut tx, &edges).await.unwrap(), 0, "not twice in an interval");
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn old_trace_partitions_go() {
    let db = TestDb::new().await;
    execute(&db.pool, "SELECT edgewatch_ensure_trace_partitions(current_date - 20, 3)").await;
    let dropped = paths::drop_old_partitions(&db.pool, 14).await.unwrap();
    assert_eq!(dropped.len(), 6, "{dropped:?}");
    assert_eq!(dropped.iter().filter(|n| n.starts_with("trace_runs_")).count(), 3, "{dropped:?}");
    assert_eq!(dropped.iter().filter(|n| n.starts_with("trace_blocks_")).count(), 3, "{dropped:?}");
    assert!(paths::drop_old_partitions(&db.pool, 14).await.unwrap().is_empty());
}

/// The pair h1 → h2 and its runs at these minutes after 16:00 (the same path).
async fn pair_with_runs(db: &TestDb, minutes: &[i64]) -> (i64, Vec<Run>) {
    graph(db, false).await;
    paths::sync_pairs(&db.pool, &PairSchedule::default()).await.unwrap();
    let pair = paths::find_pairs(&db.pool, "h1", "h2").await.unwrap().remove(0);
    let runs: Vec<Run> = minutes.iter().map(|&m| run(m, &OLD)).collect();
    let records: Vec<TraceRecord> = runs.iter().map(|r| TraceRecord { pair_id: pair.id, run: r.clone() }).collect();
    paths::record_runs(&db.pool, &records, &TrackConfig::default()).await.unwrap();
    (pair.id, runs)
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.pool).await.unwrap()
}

#[tokio::test]
async fn compaction_moves_past_blocks_of_runs_into_one_row_and_reads_do_not_change() {
    let db = TestDb::new().await;
    // Blocks are six hours (12:00–18:00, 18:00–24:00): two runs in the hour from 16:00,
    // one at 17:00, one after 18:00.
    let (pair, _) = pair_with_runs(&db, &[0, 58, 60, 125]).await;
    let before = paths::runs_between(&db.pool, pair, at(-60), at(180)).await.unwrap();
    assert_eq!(before.len(), 4);
    let last = paths::last_run_before(&db.pool, pair, at(59)).await.unwrap();

    // Only the runs before 18:00 go: the next block is still running.
    let done = paths::compact_runs(&db.pool, at(120), Duration::from_secs(30)).await.unwrap().unwrap();
    assert_eq!((done.runs, done.blocks, done.duplicates), (3, 1, 0));
    assert_eq!(count(&db, "SELECT count(*) FROM trace_runs").await, 1);
    assert_eq!(count(&db, "SELECT count(*) FROM trace_blocks").await, 1);
    assert_eq!(paths::runs_between(&db.pool, pair, at(-60), at(180)).await.unwrap(), before);
    assert_eq!(paths::runs_between(&db.pool, pair, at(58), at(61)).await.unwrap(), before[1..3]);
    assert_eq!(paths::last_run_before(&db.pool, pair, at(59)).await.unwrap(), last);
    assert_eq!(paths::run_after(&db.pool, pair, at(0)).await.unwrap().map(|r| r.at), Some(at(58)));
    assert_eq!(paths::run_after(&db.pool, pair, at(60)).await.unwrap().map(|r| r.at), Some(at(125)));

    // Each hour's rollup, written once: TTL 1 of 2 runs of 3 probes, 10 ms each at 16:00.
    assert_eq!(count(&db, "SELECT count(*) FROM trace_hourly").await, 2, "16:00 and 17:00");
    let data: Vec<u8> = sqlx::query_scalar("SELECT data FROM trace_hourly WHERE pair_id = $1 AND hour = $2")
        .bind(pair as i32)
        .bind(at(0))
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let ttls = paths::block::decode_rollup(&data).unwrap();
    assert_eq!(ttls.len(), 4);
    assert_eq!((ttls[0].runs, ttls[0].sent, ttls[0].received, ttls[0].rtt_avg_ms), (2, 6, 6, Some(10.0)));

    // A resend of a compacted run is not stored again; a late run of that block joins it
    // at the next compaction, with its hour's rollup.
    let cfg = TrackConfig::default();
    let late = [TraceRecord { pair_id: pair, run: run(0, &OLD) }, TraceRecord { pair_id: pair, run: run(30, &OLD) }];
    assert_eq!(paths::record_runs(&db.pool, &late, &cfg).await.unwrap().runs, 1);
    let done = paths::compact_runs(&db.pool, at(480), Duration::from_secs(30)).await.unwrap().unwrap();
    assert_eq!((done.runs, done.blocks), (2, 2), "16:30 into the 12:00 block, 18:05 a new one");
    assert_eq!(count(&db, "SELECT count(*) FROM trace_runs").await, 0);
    let runs: Vec<DateTime<Utc>> =
        paths::runs_between(&db.pool, pair, at(-60), at(180)).await.unwrap().iter().map(|r| r.at).collect();
    assert_eq!(runs, [at(0), at(30), at(58), at(60), at(125)]);
    assert_eq!(count(&db, "SELECT sum(runs)::bigint FROM trace_hourly").await, 5);
    assert_eq!(count(&db, "SELECT sum(runs)::bigint FROM trace_blocks").await, 5);
    // Nothing left to do.
    let done = paths::compact_runs(&db.pool, at(480), Duration::from_secs(30)).await.unwrap();
    assert_eq!(done.map(|d| d.runs), Some(0));
}

#[tokio::test]
async fn a_compactor_at_work_is_not_joined_and_emptied_run_partitions_go() {
    let db = TestDb::new().await;
    let (pair, _) = pair_with_runs(&db, &[0]).await;
    // Another compactor holds the lock: this one does nothing, and says so.
    let mut other = db.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('edgewatch:trace compaction'))")
        .execute(&mut *other)
        .await
        .unwrap();
    assert_eq!(paths::compact_runs(&db.pool, at(60), Duration::from_secs(5)).await.unwrap(), None);
    other.rollback().await.unwrap();

    // Runs of a day long past, not compacted yet: their partition stays until they are.
    let old = (Utc::now() - chrono::Duration::days(5)).trunc_subsecs(0);
    let rec = TraceRecord { pair_id: pair, run: Run { at: old, ..run(0, &OLD) } };
    paths::record_runs(&db.pool, &[rec], &TrackConfig::default()).await.unwrap();
    let day = format!("trace_runs_{}", old.format("%Y%m%d"));
    assert!(!paths::drop_old_partitions(&db.pool, 14).await.unwrap().contains(&day));
    paths::compact_runs(&db.pool, at(60).max(Utc::now()), Duration::from_secs(30)).await.unwrap();
    let dropped = paths::drop_old_partitions(&db.pool, 14).await.unwrap();
    assert!(dropped.contains(&day), "{dropped:?}");
    assert!(dropped.iter().all(|n| n.starts_with("trace_runs_")), "blocks within retention stay: {dropped:?}");
    assert_eq!(paths::runs_between(&db.pool, pair, old, old + chrono::Duration::seconds(1)).await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_edge_turning_down_or_degraded_asks_for_a_trace_in_the_transaction_of_its_event() {
    use graph_store::probe::{write_cycle, EventRow};
    use graph_store::vocab::EventState;
    let db = TestDb::new().await;
    graph(&db, false).await;
    paths::sync_pairs(&db.pool, &PairSchedule::default()).await.unwrap();
    let edge: i64 = sqlx::query_scalar("SELECT min(id) FROM edges").fetch_one(&db.pool).await.unwrap();
    let due = || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM trace_pairs WHERE next_trace_at <= now()")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        n
    };
    let later = "UPDATE trace_pairs SET next_trace_at = now() + interval '1 minute', urgent_at = NULL";
    let event = |to| EventRow { edge_id: edge, at: Utc::now(), from: EventState::Up, to, reason: "test".into() };
    // (the event, whether it commits, pairs due after)
    let cases = [
        (EventState::Stale, true, 0),
        (EventState::Flapping, true, 0),
        (EventState::Down, false, 0),
        (EventState::Down, true, 1),
        (EventState::Degraded, true, 1),
    ];
    for (to, commit, want) in cases {
        execute(&db.pool, later).await;
        let mut tx = db.pool.begin().await.unwrap();
        write_cycle(&mut tx, &[], &[], &[event(to)]).await.unwrap();
        if commit {
            tx.commit().await.unwrap();
        } else {
            tx.rollback().await.unwrap();
        }
        assert_eq!(due().await, want, "{to:?}, committed: {commit}");
    }
}
