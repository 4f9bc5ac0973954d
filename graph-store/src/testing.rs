//! Test support: a fresh, migrated database per test on a real PostgreSQL.
//!
//! The server is `EDGEWATCH_TEST_DATABASE_URL` when set (any database on it; tests
//! create their own next to it), else an embedded cluster shared by all tests in
//! `EDGEWATCH_TEST_DATA_DIR` (default `$TMPDIR/edgewatch-test-<uid>`), started on first
//! use and left running for the next test; `make test` stops it at the end.

use std::path::PathBuf;

use rand::Rng;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::embedded::EmbeddedCluster;
use crate::{PgPool, Pooler};

/// A database of a test's own.
#[derive(Debug)]
pub struct TestDb {
    pub pool: PgPool,
    /// The database's URL, for running the `edgewatch` binary against it.
    pub url: String,
    pub name: String,
}

/// Where the shared embedded test cluster lives.
pub fn test_data_dir() -> PathBuf {
    match std::env::var_os("EDGEWATCH_TEST_DATA_DIR") {
        Some(dir) => dir.into(),
        None => std::env::temp_dir().join(format!("edgewatch-test-{}", nix::unistd::geteuid())),
    }
}

impl TestDb {
    /// Creates and migrates a fresh database. Panics with the reason when no PostgreSQL
    /// can be had: a store test without a real database must fail, not pass.
    pub async fn new() -> TestDb {
        let name = format!("ew_test_{:016x}", rand::rng().random::<u64>());
        let (admin, options, url) = match std::env::var("EDGEWATCH_TEST_DATABASE_URL") {
            Ok(url) => {
                let admin: PgConnectOptions = url.parse().expect("EDGEWATCH_TEST_DATABASE_URL");
                let db_url = replace_database(&url, &name);
                (admin.clone(), admin.database(&name), db_url)
            }
            Err(_) => {
                let dir = test_data_dir();
                let cluster =
                    EmbeddedCluster::new(&dir).unwrap_or_else(|e| panic!("test PostgreSQL in {}: {e}", dir.display()));
                cluster.start().unwrap_or_else(|e| panic!("starting test PostgreSQL: {e}"));
                (cluster.connect_options("postgres"), cluster.connect_options(&name), cluster.url(&name))
            }
        };
        let mut conn = PgConnection::connect_with(&admin).await.expect("connecting to test PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut conn).await.expect("CREATE DATABASE");
        let pool = crate::db::pool(options, &url, Pooler::None).await.expect("connecting to the test database");
        crate::db::migrate(&pool).await.expect("migrating the test database");
        TestDb { pool, url, name }
    }

    /// Every row of the graph's tables, in a stable order, as text: compare two dumps to
    /// prove that nothing changed.
    pub async fn dump(&self) -> String {
        dump(&self.pool).await
    }
}

/// See [`TestDb::dump`].
pub async fn dump(pool: &PgPool) -> String {
    dump_without(pool, &[]).await
}

/// Like [`dump`], leaving out the named columns (such as `last_seen`) of every table.
pub async fn dump_without(pool: &PgPool, columns: &[&str]) -> String {
    let tables = [
        ("hosts", "name"),
        ("nodes", "id"),
        ("addresses", "ip"),
        ("services", "name"),
        ("service_providers", "service, node_id"),
        ("edges", "id"),
        ("edge_health", "edge_id"),
        ("edge_events", "id"),
    ];
    let mut out = String::new();
    for (table, order) in tables {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("SELECT (to_jsonb(t) - $1::text[])::text FROM {table} t ORDER BY {order}"))
                .bind(columns)
                .fetch_all(pool)
                .await
                .unwrap_or_else(|e| panic!("dumping {table}: {e}"));
        out.push_str(&format!("-- {table} ({} rows)\n", rows.len()));
        for row in rows {
            out.push_str(&row);
            out.push('\n');
        }
    }
    out
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Every node's `last_seen`, by name.
pub async fn node_last_seen(pool: &PgPool) -> Vec<(String, chrono::DateTime<chrono::Utc>)> {
    sqlx::query_as("SELECT name, last_seen FROM nodes ORDER BY name").fetch_all(pool).await.expect("reading last_seen")
}

/// Moves the time every DNS edge was last asked for back by `days`, as if no query had
/// used it since.
pub async fn age_dns_edges(pool: &PgPool, days: i32) {
    sqlx::query(
        "UPDATE edges SET dns_last_seen = dns_last_seen - make_interval(days => $1) WHERE dns_last_seen IS NOT NULL",
    )
    .bind(days)
    .execute(pool)
    .await
    .expect("ageing dns edges");
}

/// Whole days (rounded up) since the newest query of any dns edge: the age of the logs
/// ingested, for tests that must mean the same on any day they run.
pub async fn dns_age_days(pool: &PgPool) -> i32 {
    sqlx::query_scalar("SELECT ceil(extract(epoch FROM now() - max(dns_last_seen)) / 86400)::int FROM edges")
        .fetch_one(pool)
        .await
        .expect("reading the age of the dns edges")
}

/// Every probe result's (edge, time, prober), oldest first per edge.
pub async fn probe_results(pool: &PgPool) -> Vec<(i64, chrono::DateTime<chrono::Utc>, String)> {
    sqlx::query_as("SELECT edge_id, at, prober FROM probe_results ORDER BY edge_id, at")
        .fetch_all(pool)
        .await
        .expect("reading probe results")
}

/// Every edge event (edge, from, to), in order.
pub async fn edge_events(pool: &PgPool) -> Vec<(i64, String, String)> {
    sqlx::query_as("SELECT edge_id, from_state, to_state FROM edge_events ORDER BY id")
        .fetch_all(pool)
        .await
        .expect("reading edge events")
}

/// Creates the probe-history partition of the day `days_ago` days back.
pub async fn ensure_partitions_from(pool: &PgPool, days_ago: i32) {
    sqlx::query("SELECT edgewatch_ensure_probe_partitions(current_date - $1, 1)")
        .bind(days_ago)
        .execute(pool)
        .await
        .expect("creating an old partition");
}

/// Runs one statement: for tests that set up a state no command makes on its own (an
/// edge flapping, say).
pub async fn execute(pool: &PgPool, sql: &str) {
    sqlx::query(sql).execute(pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// (id, consumer name, destination address) of every live edge.
pub async fn edge_ids(pool: &PgPool) -> Vec<(i64, String, String)> {
    sqlx::query_as(
        "SELECT e.id, s.name, host(e.dst_ip) FROM edges e JOIN nodes s ON s.id = e.src_id WHERE e.retired_at IS NULL",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// A serving container of `host` in `dc` with one address and no services.
pub fn container(name: &str, host: &str, dc: &str, ip: &str) -> crate::model::ContainerRecord {
    crate::model::ContainerRecord {
        name: name.into(),
        host: host.into(),
        dc: dc.into(),
        role: None,
        ips: vec![ip.parse().expect("a container's address")],
        services: vec![],
        serving: true,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_is_replaced_in_urls() {
        assert_eq!(super::replace_database("postgres://u@h:5/db?x=1", "t"), "postgres://u@h:5/t?x=1");
        assert_eq!(super::replace_database("postgres://u@h", "t"), "postgres://u@h/t");
    }
}
