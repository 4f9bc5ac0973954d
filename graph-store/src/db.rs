//! Connecting to the store and keeping its schema current.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::ConnectOptions;

use crate::embedded::{self, EmbeddedCluster};
use crate::error::{Error, Result};
use crate::pool::{PgConnection, PgPool, Pooler};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Where the store is: a server named by URL, or the embedded cluster in a data directory.
#[derive(Debug, Clone)]
pub enum Target {
    Url(String),
    Embedded(PathBuf),
}

/// An open, migrated store.
#[derive(Debug, Clone)]
pub struct Database {
    pub pool: PgPool,
    /// Where it is, for messages; never contains a password.
    pub location: String,
}

/// Connects (starting the embedded cluster if that is the target) and applies pending
/// migrations. `pooler` is what sits between edgewatch and a server named by URL (see
/// [`crate::pool`]); the embedded cluster has none.
pub async fn connect(target: &Target, pooler: Pooler) -> Result<Database> {
    let (options, location) = match target {
        Target::Url(url) => {
            let options: PgConnectOptions =
                url.parse().map_err(|source| Error::Connect { target: redact(url), source })?;
            (options, redact(url))
        }
        Target::Embedded(dir) => {
            let cluster = EmbeddedCluster::new(dir)?;
            let started = cluster.start()?;
            if started.initialised {
                tracing::info!(dir = %cluster.cluster_dir().display(), "initialised the embedded PostgreSQL cluster");
            }
            cluster.ensure_database(embedded::DATABASE).await?;
            (cluster.connect_options(embedded::DATABASE), cluster.url(embedded::DATABASE))
        }
    };
    let pool = pool(options, &location, pooler_of(target, pooler)).await?;
    migrate(&pool).await?;
    Ok(Database { pool, location })
}

/// Connects to a store that must already be running, without starting the embedded
/// cluster or applying migrations: for the Nagios check, which must say UNKNOWN when the
/// database is away rather than bring one up.
pub async fn open_existing(target: &Target, pooler: Pooler) -> Result<PgPool> {
    let (options, location) = match target {
        Target::Url(url) => {
            let options: PgConnectOptions =
                url.parse().map_err(|source| Error::Connect { target: redact(url), source })?;
            (options, redact(url))
        }
        Target::Embedded(dir) => {
            let cluster = EmbeddedCluster::new(dir)?;
            (cluster.connect_options(embedded::DATABASE), cluster.url(embedded::DATABASE))
        }
    };
    pool(options, &location, pooler_of(target, pooler)).await
}

/// The pooler in front of `target`: none in front of the embedded cluster.
fn pooler_of(target: &Target, pooler: Pooler) -> Pooler {
    match target {
        Target::Url(_) => pooler,
        Target::Embedded(_) => Pooler::None,
    }
}

/// A pool for the server at `url` that connects on first use, not now: for a standby
/// that may be down when edgewatch starts (reads then go to the primary).
pub fn lazy_pool(url: &str, pooler: Pooler) -> Result<PgPool> {
    let options: PgConnectOptions = url.parse().map_err(|source| Error::Connect { target: redact(url), source })?;
    let options = options.log_statements(tracing::log::LevelFilter::Trace);
    let pool =
        PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(5)).connect_lazy_with(options);
    Ok(PgPool::new(pool, pooler))
}

/// A pool over `options` through `pooler`, with statement logging at trace level only.
pub async fn pool(options: PgConnectOptions, location: &str, pooler: Pooler) -> Result<PgPool> {
    // One direct attempt first: it fails at once with the real reason (refused, bad
    // password, no such database) where the pool would only time out.
    let options = options.log_statements(tracing::log::LevelFilter::Trace);
    let probe =
        tokio::time::timeout(Duration::from_secs(30), <sqlx::PgConnection as sqlx::Connection>::connect_with(&options))
            .await;
    match probe {
        Ok(Ok(conn)) => {
            let _ = sqlx::Connection::close(conn).await;
        }
        Ok(Err(source)) => return Err(Error::Connect { target: location.to_string(), source }),
        Err(_) => {
            return Err(Error::Connect { target: location.to_string(), source: sqlx::Error::PoolTimedOut });
        }
    }
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .map_err(|source| Error::Connect { target: location.to_string(), source })?;
    Ok(PgPool::new(pool, pooler))
}

/// Applies every pending migration. Safe to run from several processes at once.
///
/// All in one transaction that holds a transaction-level advisory lock, each migration in
/// a savepoint, instead of sqlx's session-level `pg_advisory_lock`: through a pooler in
/// transaction mode (pgbouncer) a session lock is taken on one server connection and
/// released (or not) on another, and the next process to migrate waits forever. The
/// migrator's own statements are named; behind a transaction pooler the commit closes
/// them (see [`crate::pool`]).
pub async fn migrate(pool: &PgPool) -> Result<()> {
    let migrator = sqlx::migrate::Migrator {
        migrations: MIGRATOR.migrations.clone(),
        ignore_missing: MIGRATOR.ignore_missing,
        locking: false,
        no_tx: MIGRATOR.no_tx,
    };
    let mut tx = pool.begin().await.map_err(Error::sql("starting the migrations"))?;
    let applied = apply(&migrator, &mut tx).await;
    if applied.is_err() {
        // Rolled back here rather than on drop: behind a transaction pooler that closes
        // the migrator's named statements first.
        let _ = tx.rollback().await;
        return applied;
    }
    tx.commit().await.map_err(Error::sql("committing the migrations"))?;
    Ok(())
}

/// The migrations of `migrator` that `conn` lacks, under the migration lock.
async fn apply(migrator: &sqlx::migrate::Migrator, conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('edgewatch:migrate'))")
        .execute(&mut *conn)
        .await
        .map_err(Error::sql("waiting for other processes' migrations"))?;
    migrator.run_direct(conn.sqlx()).await?;
    Ok(())
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme_end + 3], &userinfo[..colon], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Is the store ready to serve: reachable, and every migration this build knows applied?
/// Returns the number of applied migrations, or why not.
pub async fn readiness(pool: &PgPool) -> Result<std::result::Result<i64, String>> {
    let known = MIGRATOR.iter().count() as i64;
    let applied: std::result::Result<i64, sqlx::Error> =
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success").fetch_one(pool).await;
    match applied {
        Ok(n) if n >= known => Ok(Ok(n)),
        Ok(n) => Ok(Err(format!("{n} of {known} migrations applied"))),
        Err(e @ sqlx::Error::Database(_)) => Ok(Err(format!("migrations table unreadable: {e}"))),
        Err(source) => Err(Error::Sql { op: "checking readiness", source }),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_never_printed() {
        assert_eq!(redact("postgres://u:secret@db:5432/x"), "postgres://u:***@db:5432/x");
        assert_eq!(redact("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(redact("postgresql:///x?host=/tmp"), "postgresql:///x?host=/tmp");
    }
}
