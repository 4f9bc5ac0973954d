//! DNS discovery's SQL: the CMDB snapshot resolution needs, batched edge upserts with
//! their queries per hour (`query_hourly`), counters and the read position in one
//! transaction, retirement of DNS edges nobody asks for any more, and the hygiene
//! statistics.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::{PgConnection, PgPool};

/// A live node, as resolution needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotNode {
    pub id: i64,
    pub name: String,
    pub host: String,
    pub dc: String,
    pub serving: bool,
}

/// The live part of the CMDB: nodes, who owns which address, who provides what.
#[derive(Debug, Clone, Default)]
pub struct CmdbSnapshot {
    pub nodes: Vec<SnapshotNode>,
    pub addresses: Vec<(IpAddr, i64)>,
    pub providers: Vec<(String, i64)>,
}

/// Loads the snapshot in three bulk queries.
#[tracing::instrument(skip_all)]
pub async fn load_snapshot(pool: &PgPool) -> Result<CmdbSnapshot> {
    let nodes: Vec<(i64, String, String, String, bool)> =
        sqlx::query_as("SELECT id, name, host, dc, serving FROM nodes WHERE retired_at IS NULL ORDER BY id")
            .fetch_all(pool)
            .await
            .map_err(Error::sql("loading nodes"))?;
    let addresses: Vec<(String, i64)> = sqlx::query_as(
        "SELECT host(a.ip), a.node_id FROM addresses a JOIN nodes n ON n.id = a.node_id \
         WHERE a.retired_at IS NULL AND n.retired_at IS NULL",
    )
    .fetch_all(pool)
    .await
    .map_err(Error::sql("loading addresses"))?;
    let providers: Vec<(String, i64)> = sqlx::query_as(
        "SELECT sp.service, sp.node_id FROM service_providers sp JOIN nodes n ON n.id = sp.node_id \
         WHERE n.retired_at IS NULL ORDER BY sp.service, sp.node_id",
    )
    .fetch_all(pool)
    .await
    .map_err(Error::sql("loading providers"))?;
    Ok(CmdbSnapshot {
        nodes: nodes
            .into_iter()
            .map(|(id, name, host, dc, serving)| SnapshotNode { id, name, host, dc, serving })
            .collect(),
        addresses: addresses.into_iter().filter_map(|(ip, id)| Some((ip.parse().ok()?, id))).collect(),
        providers,
    })
}

/// DNS edges to add, as columns (one row per consumer and destination address), and
/// their queries per UTC hour, as columns too (one row per consumer, destination address
/// and hour: the `hour_*` columns). Over its hours, an edge's queries add up to its
/// `queries`.
#[derive(Debug, Clone, Default)]
pub struct DnsEdgeBatch {
    pub src_ids: Vec<i64>,
    pub dst_ips: Vec<String>,
    /// The services of each edge, comma-separated.
    pub services: Vec<String>,
    pub queries: Vec<i64>,
    pub first_seen: Vec<DateTime<Utc>>,
    pub last_seen: Vec<DateTime<Utc>>,
    /// The edge (`src_ids`, `dst_ips` of a row above) of each hourly row.
    pub hour_src_ids: Vec<i64>,
    pub hour_dst_ips: Vec<String>,
    /// The start of the UTC hour.
    pub hours: Vec<DateTime<Utc>>,
    pub hour_queries: Vec<i64>,
}

impl DnsEdgeBatch {
    pub fn len(&self) -> usize {
        self.src_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.src_ids.is_empty()
    }
}

/// Counters that go with a batch.
#[derive(Debug, Clone, Default)]
pub struct DnsCounters {
    /// (reason, count)
    pub skips: Vec<(String, i64)>,
    /// (kind, value, count)
    pub unknowns: Vec<(String, String, i64)>,
}

/// A file's identity and how far it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub device: i64,
    pub inode: i64,
    pub fingerprint: String,
    /// The followed path the file was read under (not where it was rotated to).
    pub path: String,
    pub byte_offset: i64,
    pub lines: i64,
    /// The length of the run of NULs the file starts with.
    pub hole: i64,
    /// Its first bytes after them as read (up to 4 KiB, never past `byte_offset`).
    pub head: Vec<u8>,
}

/// Where a batch's bytes came from: the new position, and the position the store must
/// still hold (else another reader moved it, and the batch is refused).
#[derive(Debug, Clone)]
pub struct CheckpointAdvance {
    pub to: Checkpoint,
    pub expected_offset: i64,
}

const CHECKPOINT_COLUMNS: &str = "device, inode, fingerprint, path, byte_offset, lines, hole, head";
type CheckpointRow = (i64, i64, String, String, i64, i64, i64, Vec<u8>);

fn checkpoint((device, inode, fingerprint, path, byte_offset, lines, hole, head): CheckpointRow) -> Checkpoint {
    Checkpoint { device, inode, fingerprint, path, byte_offset, lines, hole, head }
}

/// The read position of the file with this identity, if it was read before.
pub async fn find_checkpoint(pool: &PgPool, device: i64, inode: i64, fingerprint: &str) -> Result<Option<Checkpoint>> {
    let row: Option<CheckpointRow> = sqlx::query_as(&format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM ingest_checkpoints WHERE device = $1 AND inode = $2 AND fingerprint = $3"
    ))
    .bind(device)
    .bind(inode)
    .bind(fingerprint)
    .fetch_optional(pool)
    .await
    .map_err(Error::sql("reading a checkpoint"))?;
    Ok(row.map(checkpoint))
}

/// The read positions stored under `path` (the files that were at that path, newest
/// first, at most 1,000), and those of the files with the identities `keys` (device,
/// inode, fingerprint) wherever they were read.
pub async fn checkpoints_for(pool: &PgPool, path: &str, keys: &[(i64, i64, String)]) -> Result<Vec<Checkpoint>> {
    let devices: Vec<i64> = keys.iter().map(|k| k.0).collect();
    let inodes: Vec<i64> = keys.iter().map(|k| k.1).collect();
    let fingerprints: Vec<&str> = keys.iter().map(|k| k.2.as_str()).collect();
    let rows: Vec<CheckpointRow> = sqlx::query_as(&format!(
        "(SELECT {CHECKPOINT_COLUMNS} FROM ingest_checkpoints WHERE path = $1 ORDER BY updated_at DESC LIMIT 1000) \
         UNION \
         SELECT {CHECKPOINT_COLUMNS} FROM ingest_checkpoints \
         WHERE (device, inode, fingerprint) IN (SELECT * FROM UNNEST($2::bigint[], $3::bigint[], $4::text[]))"
    ))
    .bind(path)
    .bind(devices)
    .bind(inodes)
    .bind(fingerprints)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("listing checkpoints of a path"))?;
    Ok(rows.into_iter().map(checkpoint).collect())
}

/// Stores a checkpoint for a file about to be read for the first time (at its start),
/// unless one is stored already: from now on the file is known, wherever it is rotated
/// to, even if nothing of it gets committed before a crash.
pub async fn register_checkpoint(pool: &PgPool, c: &Checkpoint) -> Result<()> {
    sqlx::query(
        "INSERT INTO ingest_checkpoints (device, inode, fingerprint, path, byte_offset, lines, hole, head) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (device, inode, fingerprint) DO NOTHING",
    )
    .bind(c.device)
    .bind(c.inode)
    .bind(&c.fingerprint)
    .bind(&c.path)
    .bind(c.byte_offset)
    .bind(c.lines)
    .bind(c.hole)
    .bind(&c.head)
    .execute(pool)
    .await
    .map_err(Error::sql("registering a checkpoint"))?;
    Ok(())
}

/// The advisory lock every DNS batch holds until it commits (a constant: "dns-ingest").
const BATCH_LOCK: i64 = 0x646e_732d_696e_6773;

/// Takes the DNS batch lock for the caller's transaction: see [`batch_barrier`].
async fn lock_batches(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(BATCH_LOCK)
        .execute(conn)
        .await
        .map_err(Error::sql("taking the dns batch lock"))?;
    Ok(())
}

/// Waits until every DNS batch that is being committed now has committed. A reader that
/// was killed may have sent its last COMMIT just before it died, and PostgreSQL may not
/// have carried it out yet: a new reader that read the checkpoints before that commit
/// lands would read from stale positions. Every batch holds the batch lock from its start
/// until it commits, so taking the lock once, after the killed reader is gone, waits for
/// its commit.
pub async fn batch_barrier(pool: &PgPool) -> Result<()> {
    let mut tx = pool.begin().await.map_err(Error::sql("starting the dns batch barrier"))?;
    lock_batches(&mut tx).await?;
    tx.commit().await.map_err(Error::sql("ending the dns batch barrier"))?;
    Ok(())
}

/// Registers `path` as followed from `now` on, unless it already is; returns since when it
/// is followed. A registration committed by another process while this one waits (a
/// tailer killed just after sending it) is the one returned: `DO UPDATE` hands back the
/// row that won, where `DO NOTHING` plus a read in the same statement would see neither.
pub async fn follow_path(pool: &PgPool, path: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    sqlx::query_scalar(
        "INSERT INTO log_paths (path, followed_since) VALUES ($1, $2) \
         ON CONFLICT (path) DO UPDATE SET followed_since = log_paths.followed_since RETURNING followed_since",
    )
    .bind(path)
    .bind(now)
    .fetch_one(pool)
    .await
    .map_err(Error::sql("registering a followed log path"))
}

/// The newest query time the DNS logs have shown, if any.
pub async fn dns_clock(conn: &mut PgConnection) -> Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar("SELECT newest FROM dns_clock")
        .fetch_optional(conn)
        .await
        .map(Option::flatten)
        .map_err(Error::sql("reading the dns clock"))
}

/// Moves the DNS clock to `newest` when that is later; returns the clock.
async fn advance_dns_clock(conn: &mut PgConnection, newest: DateTime<Utc>) -> Result<DateTime<Utc>> {
    sqlx::query_scalar(
        "INSERT INTO dns_clock (id, newest) VALUES (true, $1) \
         ON CONFLICT (id) DO UPDATE SET newest = GREATEST(dns_clock.newest, EXCLUDED.newest) RETURNING newest",
    )
    .bind(newest)
    .fetch_one(conn)
    .await
    .map_err(Error::sql("advancing the dns clock"))
}

/// Writes one batch: edges, their queries per hour, counters, the DNS clock and (for
/// files) the new read position, all on the caller's transaction (one statement per kind
/// of row). Returns the DNS clock when the batch moved it (see [`dns_clock`]). Fails with
/// [`Error::CheckpointMoved`] when the stored position is not the expected one.
#[tracing::instrument(skip_all, fields(edges = edges.len()))]
pub async fn apply_batch(
    conn: &mut PgConnection,
    edges: &DnsEdgeBatch,
    counters: &DnsCounters,
    checkpoints: &[CheckpointAdvance],
) -> Result<Option<DateTime<Utc>>> {
    lock_batches(conn).await?;
    for advance in checkpoints {
        advance_checkpoint(conn, advance).await?;
    }
    let mut clock = None;
    if !edges.is_empty() {
        upsert_dns_edges(conn, edges).await?;
        if let Some(newest) = edges.last_seen.iter().max() {
            clock = Some(advance_dns_clock(conn, *newest).await?);
        }
    }
    if !edges.hours.is_empty() {
        add_query_hours(conn, edges).await?;
    }
    if !counters.skips.is_empty() {
        add_skips(conn, &counters.skips).await?;
    }
    if !counters.unknowns.is_empty() {
        add_unknowns(conn, &counters.unknowns).await?;
    }
    Ok(clock)
}

/// Moves a file's stored position from `expected_offset` to the new one: inserts the
/// row for a file read for the first time, updates it otherwise; refuses when the
/// stored position is not the expected one (another reader moved it).
async fn advance_checkpoint(conn: &mut PgConnection, advance: &CheckpointAdvance) -> Result<()> {
    let c = &advance.to;
    let sql = if advance.expected_offset == 0 {
        "INSERT INTO ingest_checkpoints AS k (device, inode, fingerprint, path, byte_offset, lines, hole, head) \
         VALUES ($1, $2, $3, $4, $5, $6, $8, $9) \
         ON CONFLICT (device, inode, fingerprint) DO UPDATE \
         SET path = EXCLUDED.path, byte_offset = $5, lines = $6, hole = $8, head = $9, updated_at = now() \
         WHERE k.byte_offset = $7 \
         RETURNING 1"
    } else {
        "UPDATE ingest_checkpoints SET path = $4, byte_offset = $5, lines = $6, hole = $8, head = $9, \
                updated_at = now() \
         WHERE device = $1 AND inode = $2 AND fingerprint = $3 AND byte_offset = $7 RETURNING 1"
    };
    let moved: Option<i32> = sqlx::query_scalar(sql)
        .bind(c.device)
        .bind(c.inode)
        .bind(&c.fingerprint)
        .bind(&c.path)
        .bind(c.byte_offset)
        .bind(c.lines)
        .bind(advance.expected_offset)
        .bind(c.hole)
        .bind(&c.head)
        .fetch_optional(conn)
        .await
        .map_err(Error::sql("advancing a checkpoint"))?;
    match moved {
        Some(_) => Ok(()),
        None => Err(Error::CheckpointMoved { path: c.path.clone(), expected: advance.expected_offset }),
    }
}

async fn upsert_dns_edges(conn: &mut PgConnection, b: &DnsEdgeBatch) -> Result<()> {
    sqlx::query(
        "INSERT INTO edges AS e (src_id, dst_ip, services, sources, queries, first_seen, last_seen, dns_last_seen) \
         SELECT t.src, t.ip::inet, string_to_array(t.services, ','), ARRAY['dns'], t.queries, \
                t.first_seen, t.last_seen, t.last_seen \
         FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[], $6::timestamptz[]) \
              AS t(src, ip, services, queries, first_seen, last_seen) \
         ON CONFLICT (src_id, dst_ip) DO UPDATE SET \
             services = CASE WHEN e.services @> EXCLUDED.services THEN e.services \
                        ELSE ARRAY(SELECT DISTINCT x FROM unnest(e.services || EXCLUDED.services) AS x ORDER BY x) END, \
             sources = CASE WHEN e.retired_at IS NOT NULL THEN ARRAY['dns'] \
                            WHEN 'dns' = ANY(e.sources) THEN e.sources \
                            ELSE e.sources || 'dns'::text END, \
             queries = e.queries + EXCLUDED.queries, \
             first_seen = LEAST(e.first_seen, EXCLUDED.first_seen), \
             last_seen = GREATEST(e.last_seen, EXCLUDED.last_seen), \
             dns_last_seen = GREATEST(e.dns_last_seen, EXCLUDED.dns_last_seen), \
             retired_at = NULL",
    )
    .bind(&b.src_ids)
    .bind(&b.dst_ips)
    .bind(&b.services)
    .bind(&b.queries)
    .bind(&b.first_seen)
    .bind(&b.last_seen)
    .execute(conn)
    .await
    .map_err(Error::sql("upserting dns edges"))?;
    Ok(())
}

/// Adds the batch's hourly rows to `query_hourly`, on the edges [`upsert_dns_edges`] has
/// just written (so it must run after it, in the same transaction). In key order, so
/// concurrent writers never wait on each other in a cycle.
async fn add_query_hours(conn: &mut PgConnection, b: &DnsEdgeBatch) -> Result<()> {
    sqlx::query(
        "INSERT INTO query_hourly AS q (hour, edge_id, queries) \
         SELECT t.hour, e.id, t.queries \
         FROM UNNEST($1::bigint[], $2::text[], $3::timestamptz[], $4::bigint[]) AS t(src, ip, hour, queries) \
         JOIN edges e ON e.src_id = t.src AND e.dst_ip = t.ip::inet \
         ORDER BY t.hour, e.id \
         ON CONFLICT (hour, edge_id) DO UPDATE SET queries = q.queries + EXCLUDED.queries",
    )
    .bind(&b.hour_src_ids)
    .bind(&b.hour_dst_ips)
    .bind(&b.hours)
    .bind(&b.hour_queries)
    .execute(conn)
    .await
    .map_err(Error::sql("adding dns queries per hour"))?;
    Ok(())
}

async fn add_skips(conn: &mut PgConnection, skips: &[(String, i64)]) -> Result<()> {
    let (reasons, counts): (Vec<&str>, Vec<i64>) = skips.iter().map(|(r, c)| (r.as_str(), *c)).unzip();
    sqlx::query(
        "INSERT INTO dns_skips AS s (reason, count) SELECT * FROM UNNEST($1::text[], $2::bigint[]) \
         ON CONFLICT (reason) DO UPDATE SET count = s.count + EXCLUDED.count, updated_at = now()",
    )
    .bind(reasons)
    .bind(counts)
    .execute(conn)
    .await
    .map_err(Error::sql("counting skipped lines"))?;
    Ok(())
}

async fn add_unknowns(conn: &mut PgConnection, unknowns: &[(String, String, i64)]) -> Result<()> {
    let kinds: Vec<&str> = unknowns.iter().map(|u| u.0.as_str()).collect();
    let values: Vec<&str> = unknowns.iter().map(|u| u.1.as_str()).collect();
    let counts: Vec<i64> = unknowns.iter().map(|u| u.2).collect();
    sqlx::query(
        "INSERT INTO dns_unknowns AS u (kind, value, count) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[]) \
         ON CONFLICT (kind, (md5(value))) DO UPDATE SET count = u.count + EXCLUDED.count, last_seen = now()",
    )
    .bind(kinds)
    .bind(values)
    .bind(counts)
    .execute(conn)
    .await
    .map_err(Error::sql("counting unknown names"))?;
    Ok(())
}

/// Retires DNS edges no query has used since `before`: `dns` leaves their sources, and
/// edges left with no source are retired. Returns (edges that lost `dns`, edges retired).
#[tracing::instrument(skip(conn))]
pub async fn expire_dns_edges(conn: &mut PgConnection, before: DateTime<Utc>) -> Result<(u64, u64)> {
    let rows: Vec<bool> = sqlx::query_scalar(
        "UPDATE edges e SET sources = array_remove(e.sources, 'dns'), \
             retired_at = CASE WHEN e.sources = ARRAY['dns'] THEN now() ELSE NULL END \
         WHERE e.retired_at IS NULL AND 'dns' = ANY(e.sources) AND e.dns_last_seen < $1 \
         RETURNING e.retired_at IS NOT NULL",
    )
    .bind(before)
    .fetch_all(conn)
    .await
    .map_err(Error::sql("expiring dns edges"))?;
    Ok((rows.len() as u64, rows.iter().filter(|r| **r).count() as u64))
}

/// What `dns stats` shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DnsStats {
    pub dns_edges: i64,
    pub queries: i64,
    pub skipped: Vec<CountBy>,
    pub unknown_clients: Vec<CountBy>,
    pub unknown_consumers: Vec<CountBy>,
    pub unknown_services: Vec<CountBy>,
    pub services_without_provider: Vec<CountBy>,
    pub sources: Vec<SourceView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CountBy {
    pub name: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    pub path: String,
    pub byte_offset: i64,
    pub lines: i64,
    #[serde(serialize_with = "crate::time::serialize_utc")]
    pub updated_at: DateTime<Utc>,
}

/// Discovery statistics, with the top `limit` unknowns of each kind.
pub async fn stats(pool: &PgPool, limit: i64) -> Result<DnsStats> {
    let (dns_edges, queries): (i64, Option<i64>) = sqlx::query_as(
        "SELECT count(*), sum(queries)::bigint FROM edges WHERE retired_at IS NULL AND 'dns' = ANY(sources)",
    )
    .fetch_one(pool)
    .await
    .map_err(Error::sql("counting dns edges"))?;
    let skipped = count_by(pool, "SELECT reason, count FROM dns_skips ORDER BY count DESC, reason", None).await?;
    let mut out = DnsStats { dns_edges, queries: queries.unwrap_or(0), skipped, ..Default::default() };
    for (kind, slot) in [
        ("client", &mut out.unknown_clients),
        ("consumer", &mut out.unknown_consumers),
        ("service", &mut out.unknown_services),
        ("no-provider", &mut out.services_without_provider),
    ] {
        *slot = count_by(
            pool,
            "SELECT value, count FROM dns_unknowns WHERE kind = $1 ORDER BY count DESC, value LIMIT $2",
            Some((kind, limit)),
        )
        .await?;
    }
    let sources: Vec<(String, i64, i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT path, byte_offset, lines, updated_at FROM ingest_checkpoints ORDER BY updated_at DESC LIMIT 50",
    )
    .fetch_all(pool)
    .await
    .map_err(Error::sql("listing checkpoints"))?;
    out.sources = sources
        .into_iter()
        .map(|(path, byte_offset, lines, updated_at)| SourceView { path, byte_offset, lines, updated_at })
        .collect();
    Ok(out)
}

async fn count_by(pool: &PgPool, sql: &'static str, kind: Option<(&str, i64)>) -> Result<Vec<CountBy>> {
    let mut q = sqlx::query_as::<_, (String, i64)>(sql);
    if let Some((kind, limit)) = kind {
        q = q.bind(kind).bind(limit);
    }
    let rows = q.fetch_all(pool).await.map_err(Error::sql("reading dns statistics"))?;
    Ok(rows.into_iter().map(|(name, count)| CountBy { name, count }).collect())
}
