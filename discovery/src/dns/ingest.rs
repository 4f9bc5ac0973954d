//! Writing what the logs say: aggregated records go to the store in batches, each in one
//! transaction with the read positions of the files they came from, so a crash at any
//! point neither loses a line nor counts one twice.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use graph_store::dns::{self as store, CheckpointAdvance};
use graph_store::PgPool;
use serde::Serialize;

use super::aggregate::{Aggregator, Totals};
use super::follow::{Followed, Opened, Reading};
use super::record::ParseContext;
use super::resolve::Resolver;
use super::source::LogFile;
use crate::{Error, Result};

/// How DNS discovery reads and writes.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Zones whose names are service names (`example.com`).
    pub zones: Vec<String>,
    /// Write after this many lines at most (a crash re-reads no more than this).
    pub batch_lines: u64,
    /// Write when this many (consumer, service, UTC hour) counts are held: memory is
    /// bounded by this, whatever the length of the logs.
    pub max_pairs: usize,
    /// Write at least this often while reading.
    pub flush_interval: std::time::Duration,
    /// UTC offset of the year-less time prefixes, in seconds.
    pub local_offset_secs: i32,
    /// Read buffer size.
    pub read_buffer: usize,
    /// Which names beside a followed file are its rotated siblings: a glob in which `{}`
    /// stands for the file's name (None: `NAME.*` and `NAME-*`).
    pub rotated: Option<String>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            zones: Vec::new(),
            batch_lines: 5_000_000,
            max_pairs: 250_000,
            flush_interval: std::time::Duration::from_secs(10),
            local_offset_secs: 0,
            read_buffer: 1 << 20,
            rotated: None,
        }
    }
}

impl IngestOptions {
    /// Checks the options; zones are required.
    pub fn validated(mut self) -> Result<Self> {
        self.zones = self.zones.iter().map(|z| z.trim().trim_matches('.').to_ascii_lowercase()).collect();
        self.zones.retain(|z| !z.is_empty());
        if self.zones.is_empty() {
            return Err(Error::Config(
                "no DNS zone given: say which zone holds the service names, e.g. --zone example.com \
                 (or `zones` under [dns] in the config file)"
                    .into(),
            ));
        }
        if self.batch_lines == 0 || self.max_pairs == 0 || self.read_buffer < 4096 {
            return Err(Error::Config("batch lines must be positive and the read buffer at least 4 KiB".into()));
        }
        if let Some(pattern) = &self.rotated {
            super::rotated::RotatedNames::new("pdns.log", Some(pattern)).map_err(Error::Config)?;
        }
        Ok(self)
    }
}

/// What an ingest read, per file and in all.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestSummary {
    pub files: Vec<FileSummary>,
    #[serde(flatten)]
    pub totals: Totals,
    pub skipped: std::collections::BTreeMap<&'static str, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileSummary {
    pub path: String,
    /// Where reading started (a stored position when the file was read before).
    pub from: u64,
    pub to: u64,
    pub lines: u64,
    /// Not read: the file has no complete first line yet.
    pub not_ready: bool,
}

/// Now, for parsing, in microseconds.
pub fn parse_context(opts: &IngestOptions) -> ParseContext {
    ParseContext { now_us: chrono::Utc::now().timestamp_micros(), local_offset_secs: opts.local_offset_secs }
}

/// Loads the CMDB snapshot and indexes it for resolution.
pub async fn load_resolver(pool: &PgPool, opts: &IngestOptions) -> Result<Resolver> {
    let snapshot = store::load_snapshot(pool).await?;
    Ok(Resolver::new(&snapshot, &opts.zones))
}

/// Is it time to write?
pub fn batch_due(agg: &Aggregator, opts: &IngestOptions, last_flush: std::time::Instant) -> bool {
    agg.pending_lines() >= opts.batch_lines
        || agg.pending_pair_hours() >= opts.max_pairs
        || (agg.pending_lines() > 0 && last_flush.elapsed() >= opts.flush_interval)
}

/// The expiry horizon: DNS edges last asked for before it are retired. It follows the
/// logs' own clock (the newest query time stored), never past the wall clock, minus
/// `after`, rounded down to the hour: so replaying old logs retires the same edges however
/// the reading was cut into batches or interrupted, and a live log moves it once an hour.
pub fn expiry_horizon(newest_query: DateTime<Utc>, now: DateTime<Utc>, after: Duration) -> DateTime<Utc> {
    let after = chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
    let at = newest_query.min(now).checked_sub_signed(after).unwrap_or(DateTime::<Utc>::MIN_UTC);
    let hour = at.timestamp().div_euclid(3600) * 3600;
    DateTime::from_timestamp(hour, 0).unwrap_or(at)
}

/// Writes batches, each in one transaction with the read positions of the files its
/// lines came from; with an expiry, retires DNS edges past the horizon in the same
/// transaction whenever a batch moves it.
#[derive(Debug)]
pub struct Writer<'p> {
    pool: &'p PgPool,
    expire_after: Option<Duration>,
    /// The horizon last expired at.
    horizon: Option<DateTime<Utc>>,
}

impl<'p> Writer<'p> {
    pub fn new(pool: &'p PgPool, expire_after: Option<Duration>) -> Self {
        Writer { pool, expire_after, horizon: None }
    }

    pub fn pool(&self) -> &'p PgPool {
        self.pool
    }

    /// Retires what is past the horizon now (at start: the clock may have moved since, and
    /// the window may be another).
    pub async fn expire_now(&mut self) -> Result<()> {
        let Some(after) = self.expire_after else { return Ok(()) };
        let mut tx =
            self.pool.begin().await.map_err(|source| graph_store::Error::Sql { op: "starting dns expiry", source })?;
        if let Some(clock) = store::dns_clock(&mut tx).await? {
            self.expire(&mut tx, clock, after).await?;
        }
        tx.commit().await.map_err(|source| graph_store::Error::Sql { op: "committing dns expiry", source })?;
        Ok(())
    }

    async fn expire(
        &mut self,
        conn: &mut graph_store::PgConnection,
        clock: DateTime<Utc>,
        after: Duration,
    ) -> Result<()> {
        let horizon = expiry_horizon(clock, Utc::now(), after);
        if self.horizon.is_some_and(|h| h >= horizon) {
            return Ok(());
        }
        let (lost, retired) = store::expire_dns_edges(conn, horizon).await?;
        if lost > 0 {
            tracing::info!(lost, retired, %horizon, "dns edges not asked for since the horizon expired");
        }
        self.horizon = Some(horizon);
        Ok(())
    }

    /// Writes everything aggregated and the files' new positions in one transaction.
    pub async fn flush(&mut self, agg: &mut Aggregator, resolver: &Resolver, files: &mut [&mut LogFile]) -> Result<()> {
        let advances: Vec<(usize, CheckpointAdvance)> =
            files.iter_mut().enumerate().filter_map(|(i, f)| f.advance().map(|a| (i, a))).collect();
        if !agg.has_pending() && advances.is_empty() {
            return Ok(());
        }
        let (batch, counters) = agg.take(resolver);
        let checkpoints: Vec<CheckpointAdvance> = advances.iter().map(|(_, a)| a.clone()).collect();
        let mut tx =
            self.pool.begin().await.map_err(|source| graph_store::Error::Sql { op: "starting a dns batch", source })?;
        let clock = store::apply_batch(&mut tx, &batch, &counters, &checkpoints).await?;
        let expired_before = self.horizon;
        if let (Some(clock), Some(after)) = (clock, self.expire_after) {
            self.expire(&mut tx, clock, after).await?;
        }
        if let Err(source) = tx.commit().await {
            self.horizon = expired_before;
            return Err(graph_store::Error::Sql { op: "committing a dns batch", source }.into());
        }
        for (i, advance) in &advances {
            files[*i].committed(advance);
        }
        Ok(())
    }
}

/// Reads each file from its stored position to its end once, after finishing what its
/// rotated siblings hold unread (see [`super::rotated`]). `progress` hears the bytes read
/// so far and the total to read.
pub async fn ingest_files(
    pool: &PgPool,
    paths: &[PathBuf],
    opts: &IngestOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<IngestSummary> {
    let mut resolver = load_resolver(pool, opts).await?;
    let mut agg = Aggregator::new();
    let mut writer = Writer::new(pool, None);
    let mut summary = IngestSummary::default();
    let mut buf = vec![0u8; opts.read_buffer];
    let total: u64 = paths.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let mut done = 0u64;
    let mut last_flush = std::time::Instant::now();
    // A reader killed a moment ago may still have a commit in flight: read the stored
    // positions only after it landed.
    store::batch_barrier(pool).await?;
    let mut followed = Vec::with_capacity(paths.len());
    for path in paths {
        if !path.exists() {
            let source = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
            return Err(Error::Read { path: path.clone(), source });
        }
        followed.push(Followed::register(pool, path, opts.rotated.as_deref()).await?);
    }
    let names: Vec<PathBuf> = followed.iter().map(|f| f.path().to_path_buf()).collect();
    for (path, f) in paths.iter().zip(followed.iter_mut()) {
        let read_err = |source| Error::Read { path: path.clone(), source };
        // Finish the rotated siblings, then open the file the path names: again if it was
        // rotated meanwhile.
        let opened = loop {
            let mut reading =
                Reading { writer: &mut writer, agg: &mut agg, resolver: &mut resolver, buf: &mut buf, opts };
            f.finish_rotated(&mut reading, &names).await?;
            match f.open_current(pool).await? {
                Opened::Moved => continue,
                opened => break opened,
            }
        };
        if opened == Opened::NotReady {
            summary.files.push(FileSummary {
                path: path.display().to_string(),
                from: 0,
                to: 0,
                lines: 0,
                not_ready: true,
            });
            continue;
        }
        let file = f.file.as_mut().expect("opened");
        let from = file.position();
        done += from;
        let lines_before = agg.totals().lines;
        let ctx = parse_context(opts);
        loop {
            let n = file.read_some(&mut buf, &mut agg, &mut resolver, &ctx).map_err(read_err)?;
            if n == 0 {
                break;
            }
            done += n as u64;
            progress(done, total);
            if batch_due(&agg, opts, last_flush) {
                writer.flush(&mut agg, &resolver, &mut [&mut *file]).await?;
                last_flush = std::time::Instant::now();
            }
        }
        writer.flush(&mut agg, &resolver, &mut [&mut *file]).await?;
        summary.files.push(FileSummary {
            path: path.display().to_string(),
            from,
            to: file.position(),
            lines: agg.totals().lines - lines_before,
            not_ready: false,
        });
    }
    summary.totals = agg.totals();
    summary.skipped = agg.skip_totals();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expiry_horizon_follows_the_logs_clock_by_the_hour() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let week = Duration::from_secs(7 * 24 * 3600);
        let now = at("2026-12-04T20:00:00Z");
        for (newest, want) in [
            // Replaying old logs: a week before their newest query, not before today.
            ("2026-11-22T01:36:11Z", "2026-11-15T01:00:00Z"),
            ("2026-11-22T01:59:59Z", "2026-11-15T01:00:00Z"),
            // Live logs: the wall clock.
            ("2026-12-04T19:59:58Z", "2026-11-27T19:00:00Z"),
            // A clock ahead of ours (a wrong time zone) is not believed.
            ("2026-12-24T00:00:00Z", "2026-11-27T20:00:00Z"),
        ] {
            assert_eq!(expiry_horizon(at(newest), now, week), at(want), "{newest}");
        }
        assert_eq!(expiry_horizon(now, now, Duration::from_secs(u64::MAX)), DateTime::<Utc>::MIN_UTC);
    }
}
