//! The store's CMDB functions, and registering a followed log path, on a real PostgreSQL (a
//! fresh database per test).

use std::net::IpAddr;

use graph_store::cmdb::{apply_inventory, apply_links, lock_graph};
use graph_store::model::{ContainerRecord, Inventory, Link, LinkSet, ServiceRecord};
use graph_store::query::{self, ListOptions};
use graph_store::testing::TestDb;
use graph_store::Error;

fn container(name: &str, host: &str, dc: &str, ips: &[&str], services: &[&str]) -> ContainerRecord {
    ContainerRecord {
        name: name.into(),
        host: host.into(),
        dc: dc.into(),
        role: Some("be".into()),
        ips: ips.iter().map(|ip| ip.parse::<IpAddr>().unwrap()).collect(),
        services: services.iter().map(|s| s.to_string()).collect(),
        serving: true,
    }
}

fn fleet() -> Inventory {
    Inventory {
        containers: vec![
            container("a.h1", "h1", "Tx", &["127.1.0.1"], &["api"]),
            container("b.h1", "h1", "Tx", &["127.1.0.2", "::1"], &["db"]),
            container("c.h2", "h2", "VA", &["127.1.0.3"], &["api"]),
            container("d.h2", "h2", "VA", &["127.1.0.4"], &[]),
            container("e.h3", "h3", "VA", &["127.1.0.5"], &[]),
        ],
        services: vec![ServiceRecord { name: "api".into(), port: Some(8080) }],
    }
}

fn link(container: &str, targets: &[&str]) -> Link {
    Link {
        container: container.into(),
        targets: targets.iter().map(|ip| ip.parse().unwrap()).collect(),
        origin: format!("test {container}"),
    }
}

async fn apply(db: &TestDb, inventory: Option<&Inventory>, links: Option<&LinkSet>, allow: bool) -> Result<(), Error> {
    let mut tx = db.pool.begin().await.unwrap();
    lock_graph(&mut tx).await?;
    if let Some(inventory) = inventory {
        apply_inventory(&mut tx, inventory, allow).await?;
    }
    if let Some(links) = links {
        apply_links(&mut tx, links).await?;
    }
    tx.commit().await.unwrap();
    Ok(())
}

#[tokio::test]
async fn nodes_addresses_and_providers_follow_the_snapshot() {
    let db = TestDb::new().await;
    apply(&db, Some(&fleet()), None, false).await.unwrap();
    let nodes = query::nodes(&db.pool, ListOptions::default()).await.unwrap();
    assert_eq!(nodes.len(), 5);
    let b = nodes.iter().find(|n| n.name == "b.h1").unwrap();
    assert_eq!(b.ips, vec!["127.1.0.2", "::1"]);
    assert_eq!(b.services, vec!["db"]);

    // Next snapshot: d.h2 gone (20% of 5: allowed), an address moves from b to a, c stops
    // providing api and provides db instead.
    let mut next = fleet();
    next.containers.retain(|c| c.name != "d.h2");
    next.containers[0].ips.push("::1".parse().unwrap());
    next.containers[1].ips.retain(|ip| ip.to_string() != "::1");
    next.containers[2].services = vec!["db".into()];
    apply(&db, Some(&next), None, false).await.unwrap();

    let all = query::nodes(&db.pool, ListOptions { include_retired: true, ..Default::default() }).await.unwrap();
    let by = |name: &str| all.iter().find(|n| n.name == name).unwrap().clone();
    assert!(by("d.h2").retired);
    assert_eq!(by("d.h2").ips, vec!["127.1.0.4"], "a retired node keeps its last addresses");
    assert_eq!(by("a.h1").ips, vec!["127.1.0.1", "::1"]);
    assert_eq!(by("b.h1").ips, vec!["127.1.0.2"]);
    assert_eq!(by("c.h2").services, vec!["db"]);
}

#[tokio::test]
async fn the_guard_counts_live_nodes_only() {
    let db = TestDb::new().await;
    apply(&db, Some(&fleet()), None, false).await.unwrap();
    let mut two_gone = fleet();
    two_gone.containers.truncate(3);
    match apply(&db, Some(&two_gone), None, false).await {
        Err(Error::MassRetire { would_retire: 2, live: 5, .. }) => {}
        other => panic!("expected the guard, got {other:?}"),
    }
    apply(&db, Some(&two_gone), None, true).await.unwrap();
    // Now 3 live; losing 1 of 3 (33%) is refused, even though 5 nodes exist in all.
    let mut one_more = two_gone.clone();
    one_more.containers.truncate(2);
    assert!(matches!(
        apply(&db, Some(&one_more), None, false).await,
        Err(Error::MassRetire { would_retire: 1, live: 3, .. })
    ));
}

#[tokio::test]
async fn links_ignore_own_addresses_and_refuse_unknown_or_retired_containers() {
    let db = TestDb::new().await;
    apply(&db, Some(&fleet()), None, false).await.unwrap();
    let links = LinkSet { links: vec![link("a.h1", &["127.1.0.1", "127.1.0.2", "10.99.0.1"])] };
    apply(&db, None, Some(&links), false).await.unwrap();
    let edges = query::edges(&db.pool, ListOptions::default()).await.unwrap();
    let got: Vec<(&str, Option<&str>)> = edges.iter().map(|e| (e.dst_ip.as_str(), e.dst.as_deref())).collect();
    assert_eq!(got, vec![("10.99.0.1", None), ("127.1.0.2", Some("b.h1"))]);

    let unknown = LinkSet { links: vec![link("a.h1", &[]), link("zz.h9", &["127.1.0.1"])] };
    match apply(&db, None, Some(&unknown), false).await {
        Err(Error::UnknownContainer { name, origin }) => {
            assert_eq!(name, "zz.h9");
            assert_eq!(origin, "test zz.h9");
        }
        other => panic!("expected UnknownContainer, got {other:?}"),
    }
    // Nothing of the refused export was applied: a.h1 still has its links.
    assert_eq!(query::edges(&db.pool, ListOptions::default()).await.unwrap().len(), 2);

    // A retired container cannot be given links.
    let mut smaller = fleet();
    smaller.containers.retain(|c| c.name != "e.h3");
    apply(&db, Some(&smaller), None, false).await.unwrap();
    let retired = LinkSet { links: vec![link("e.h3", &["127.1.0.1"])] };
    assert!(matches!(apply(&db, None, Some(&retired), false).await, Err(Error::UnknownContainer { .. })));
}

#[tokio::test]
async fn retiring_a_node_retires_edges_from_and_to_it_and_links_bring_them_back() {
    let db = TestDb::new().await;
    apply(&db, Some(&fleet()), None, false).await.unwrap();
    let links = LinkSet { links: vec![link("a.h1", &["127.1.0.5", "127.1.0.3"]), link("e.h3", &["127.1.0.1"])] };
    apply(&db, None, Some(&links), false).await.unwrap();
    assert_eq!(query::edges(&db.pool, ListOptions::default()).await.unwrap().len(), 3);

    let mut without_e = fleet();
    without_e.containers.retain(|c| c.name != "e.h3");
    apply(&db, Some(&without_e), None, false).await.unwrap();
    let live = query::edges(&db.pool, ListOptions::default()).await.unwrap();
    assert_eq!(live.iter().map(|e| e.dst_ip.as_str()).collect::<Vec<_>>(), vec!["127.1.0.3"]);

    // e.h3 returns; its edges come back when a source lists them again.
    apply(&db, Some(&fleet()), Some(&links), false).await.unwrap();
    let live = query::edges(&db.pool, ListOptions::default()).await.unwrap();
    assert_eq!(live.len(), 3);
    assert!(live.iter().all(|e| e.sources == vec!["cmdb"]));
}

#[tokio::test]
async fn probe_history_partitions_are_made_ahead_and_dropped_past_retention() {
    let db = TestDb::new().await;
    graph_store::probe::ensure_partitions(&db.pool).await.unwrap();
    // An old day's partition, as a long-running deployment would have.
    graph_store::testing::ensure_partitions_from(&db.pool, 20).await;
    let dropped = graph_store::probe::drop_old_partitions(&db.pool, 14).await.unwrap();
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    // Today's and the next days' partitions are kept.
    assert!(graph_store::probe::drop_old_partitions(&db.pool, 14).await.unwrap().is_empty());
    graph_store::probe::ensure_partitions(&db.pool).await.unwrap();
}

/// A path registered by a process that committed while this one's registration waited
/// on it (a tailer killed just after sending its own): the waiting call returns the time
/// that won, not an error and not its own.
#[tokio::test]
async fn follow_path_returns_a_registration_committed_while_it_waited() {
    use chrono::{TimeZone, Utc};
    let db = TestDb::new().await;
    let first = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
    let later = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap();
    let mut other = db.pool.begin().await.unwrap();
    sqlx::query("INSERT INTO log_paths (path, followed_since) VALUES ('/var/log/pdns.log', $1)")
        .bind(first)
        .execute(&mut *other)
        .await
        .unwrap();
    let pool = db.pool.clone();
    let waiting = tokio::spawn(async move { graph_store::dns::follow_path(&pool, "/var/log/pdns.log", later).await });
    // Let the registration reach the row the open transaction holds, then commit that one.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the registration waits for the other transaction");
    other.commit().await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), first);
    // And once registered, later calls keep the first time.
    assert_eq!(graph_store::dns::follow_path(&db.pool, "/var/log/pdns.log", later).await.unwrap(), first);
}

/// Results written by two open transactions at once, as when agents post together: the
/// second does not wait for the first's commit on the counters /metrics reads (each
/// backend adds to its own slot), and the figures add the slots up.
#[tokio::test]
async fn concurrent_result_writers_do_not_queue_on_the_counters() {
    use chrono::Utc;
    use graph_store::probe::{write_cycle, ResultRow, COUNTER_SLOTS};
    use graph_store::vocab::{ProbeKind, Verdict};
    let db = TestDb::new().await;
    graph_store::probe::ensure_partitions(&db.pool).await.unwrap();
    let row = |edge_id| ResultRow {
        edge_id,
        at: Utc::now(),
        kind: ProbeKind::Icmp,
        prober: "agent:test".into(),
        sent: 1,
        received: 1,
        rtt_min_ms: Some(0.5),
        rtt_avg_ms: Some(0.5),
        rtt_max_ms: Some(0.5),
        rtt_sd_ms: Some(0.0),
        verdict: Verdict::Ok,
    };
    async fn slot(tx: &mut graph_store::PgConnection) -> i32 {
        sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()").fetch_one(tx).await.unwrap() % COUNTER_SLOTS
    }
    // Two transactions on connections of different slots (held ones are skipped).
    let mut first = db.pool.begin().await.unwrap();
    let first_slot = slot(&mut first).await;
    let mut held = Vec::new();
    let mut second = loop {
        let mut tx = db.pool.begin().await.unwrap();
        if slot(&mut tx).await != first_slot {
            break tx;
        }
        held.push(tx);
    };
    write_cycle(&mut first, &[row(1)], &[], &[]).await.unwrap();
    let rows = [row(2)];
    let written = tokio::time::timeout(std::time::Duration::from_secs(10), write_cycle(&mut second, &rows, &[], &[]));
    written.await.expect("the second writer waited for the first one's commit").unwrap();
    second.commit().await.unwrap();
    first.commit().await.unwrap();
    drop(held);
    let figures = graph_store::figures::read(&db.pool).await.unwrap();
    let ok = figures.probe_results.iter().find(|(k, v, _)| k == "icmp" && v == "ok").unwrap();
    assert_eq!(ok.2, 2, "{:?}", figures.probe_results);
}
