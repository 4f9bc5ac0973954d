//! Leases on once-only work: several processes share one database, and what must happen
//! once (the diagnosis refresh, stale marking, partitions, trace upkeep, the nightly
//! report) is done by the holder of its lease. A holder renews its lease well before it
//! expires; when it dies, the lease expires (the database's clock) and the next process
//! to ask takes it over. A clean stop gives it back at once.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::PgPool;

/// The lease of `serve`'s once-only work (housekeeping, the diagnosis, the packed
/// topology).
pub const SERVE: &str = "serve";

/// Whether some process holds the lease `name` now (its holder is alive and doing the work).
pub async fn held(pool: &PgPool, name: &str) -> Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM leases WHERE name = $1 AND expires_at > now())")
        .bind(name)
        .fetch_one(pool)
        .await
        .map_err(Error::sql("reading a lease"))
}

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Takes the lease `name` for `holder` for `ttl` when it is free, expired or already
/// `holder`'s (a renewal); true when `holder` holds it now.
pub async fn acquire(pool: &PgPool, name: &str, holder: &str, ttl: Duration) -> Result<bool> {
    let held: Option<String> = sqlx::query_scalar(
        "INSERT INTO leases AS l (name, holder, acquired_at, expires_at) \
         VALUES ($1, $2, now(), now() + make_interval(secs => $3)) \
         ON CONFLICT (name) DO UPDATE SET \
             holder = EXCLUDED.holder, \
             expires_at = EXCLUDED.expires_at, \
             acquired_at = CASE WHEN l.holder = EXCLUDED.holder THEN l.acquired_at ELSE now() END \
         WHERE l.holder = EXCLUDED.holder OR l.expires_at < now() \
         RETURNING holder",
    )
    .bind(name)
    .bind(holder)
    .bind(ttl.as_secs_f64())
    .fetch_optional(pool)
    .await
    .map_err(Error::sql("taking or renewing a lease"))?;
    Ok(held.is_some())
}

/// Gives the lease back when `holder` holds it (a clean stop), so that another process
/// takes it over at its next try instead of at expiry.
pub async fn release(pool: &PgPool, name: &str, holder: &str) -> Result<()> {
    sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
        .bind(name)
        .bind(holder)
        .execute(pool)
        .await
        .map_err(Error::sql("giving a lease back"))?;
    Ok(())
}

/// Every lease, expired ones included, by name.
pub async fn all(pool: &PgPool) -> Result<Vec<Lease>> {
    let rows: Vec<(String, String, DateTime<Utc>, DateTime<Utc>)> =
        sqlx::query_as("SELECT name, holder, acquired_at, expires_at FROM leases ORDER BY name")
            .fetch_all(pool)
            .await
            .map_err(Error::sql("reading the leases"))?;
    Ok(rows
        .into_iter()
        .map(|(name, holder, acquired_at, expires_at)| Lease { name, holder, acquired_at, expires_at })
        .collect())
}
