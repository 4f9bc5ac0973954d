//! Behind a transaction pooler ([`Pooler::Transaction`]) the store leaves no named
//! statement on a server connection and runs every statement in a transaction; without
//! one ([`Pooler::None`]) it keeps sqlx's named, cached statements. On a real PostgreSQL,
//! through a pool of one connection, so that the statements of every function below run
//! on the same server session, whose `pg_prepared_statements` lists what they left.

use std::net::IpAddr;

use graph_store::model::{ContainerRecord, Inventory, ServiceRecord};
use graph_store::query::{self, ListOptions};
use graph_store::testing::TestDb;
use graph_store::{PgPool, Pooler};

/// A pool of exactly one connection to `db`, through `pooler`.
async fn one_connection(db: &TestDb, pooler: Pooler) -> PgPool {
    let options: sqlx::postgres::PgConnectOptions = db.url.parse().unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
    PgPool::new(pool, pooler)
}

fn inventory() -> Inventory {
    let container = |name: &str, ip: &str, services: &[&str]| ContainerRecord {
        name: name.into(),
        host: "h1".into(),
        dc: "Tx".into(),
        role: Some("be".into()),
        ips: vec![ip.parse::<IpAddr>().unwrap()],
        services: services.iter().map(|s| s.to_string()).collect(),
        serving: true,
    };
    Inventory {
        containers: vec![container("a.h1", "127.1.0.1", &["api"]), container("b.h1", "127.1.0.2", &[])],
        services: vec![ServiceRecord { name: "api".into(), port: Some(8080) }],
    }
}

/// Store functions of every kind: the migrations, a transaction of several statements,
/// statements on the pool, `describe` (`edgewatch sql`), leases.
async fn exercise(pool: &PgPool) {
    graph_store::migrate(pool).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    graph_store::cmdb::lock_graph(&mut tx).await.unwrap();
    graph_store::cmdb::apply_inventory(&mut tx, &inventory(), false).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(query::nodes(pool, ListOptions::default()).await.unwrap().len(), 2);
    let answer = graph_store::sql::read_only(pool, "SELECT name FROM nodes ORDER BY name", 5_000).await.unwrap();
    assert_eq!(answer.rows.len(), 2);
    assert!(graph_store::lease::acquire(pool, "pooler-test", "me", std::time::Duration::from_secs(30)).await.unwrap());
    graph_store::lease::release(pool, "pooler-test", "me").await.unwrap();
    graph_store::figures::read(pool).await.unwrap();
}

async fn named_statements(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pg_prepared_statements").fetch_one(pool).await.unwrap()
}

/// Whether a statement on the pool runs in a transaction block: `SAVEPOINT` fails outside
/// one ("can only be used in transaction blocks").
async fn in_a_transaction(pool: &PgPool) -> bool {
    sqlx::query("SAVEPOINT pooler_test").execute(pool).await.is_ok()
}

#[tokio::test]
async fn behind_a_transaction_pooler_no_named_statement_is_left_and_each_statement_has_a_transaction() {
    let db = TestDb::new().await;
    let pool = one_connection(&db, Pooler::Transaction).await;
    exercise(&pool).await;
    assert_eq!(named_statements(&pool).await, 0, "named statements left on the server connection");
    assert!(in_a_transaction(&pool).await);
    // `edgewatch sql` failing after sqlx described the query, or refused for want of
    // columns: the description is closed all the same. Counted at once, before the next
    // commit on this connection closes what sqlx still holds.
    for bad in ["SELECT 1 / (count(*) - 2) FROM nodes", "SELECT FROM nodes"] {
        assert!(graph_store::sql::read_only(&pool, bad, 5_000).await.is_err(), "{bad}");
        assert_eq!(named_statements(&pool).await, 0, "named statements left by {bad:?}");
    }
    pool.close().await;
}

#[tokio::test]
async fn without_a_pooler_statements_stay_named_and_autocommit() {
    let db = TestDb::new().await;
    let pool = one_connection(&db, Pooler::None).await;
    exercise(&pool).await;
    assert!(named_statements(&pool).await > 0, "sqlx's statement cache is in use");
    assert!(!in_a_transaction(&pool).await);
    pool.close().await;
}
