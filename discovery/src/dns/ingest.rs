//! Writing what the logs say: aggregated records go to the store in batches, each in one
//! transaction with the read positions of the files they came from, so a crash at any
//! point neither loses a line nor counts one twice.

use std::path::PathBuf;

use graph_store::dns::{self as store, CheckpointAdvance};
use graph_store::PgPool;
use serde::Serialize;

use super::aggregate::{Aggregator, Totals};
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

/// Writes everything aggregated and the files' new positions in one transaction.
pub async fn flush(pool: &PgPool, agg: &mut Aggregator, resolver: &Resolver, files: &mut [&mut LogFile]) -> Result<()> {
    let advances: Vec<(usize, CheckpointAdvance)> =
        files.iter().enumerate().filter_map(|(i, f)| f.advance().map(|a| (i, a))).collect();
    if agg.pending_lines() == 0 && advances.is_empty() {
        return Ok(());
    }
    let (batch, counters) = agg.take(resolver);
    let checkpoints: Vec<CheckpointAdvance> = advances.iter().map(|(_, a)| a.clone()).collect();
    let mut tx = pool.begin().await.map_err(|source| graph_store::Error::Sql { op: "starting a dns batch", source })?;
    store::apply_batch(&mut tx, &batch, &counters, &checkpoints).await?;
    tx.commit().await.map_err(|source| graph_store::Error::Sql { op: "committing a dns batch", source })?;
    for (i, advance) in &advances {
        files[*i].committed(advance);
    }
    Ok(())
}

/// Reads each file from its stored position to its end once. `progress` hears the bytes
/// read so far and the total to read.
pub async fn ingest_files(
    pool: &PgPool,
    paths: &[PathBuf],
    opts: &IngestOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<IngestSummary> {
    let mut resolver = load_resolver(pool, opts).await?;
    let mut agg = Aggregator::new();
    let mut summary = IngestSummary::default();
    let mut buf = vec![0u8; opts.read_buffer];
    let total: u64 = paths.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let mut done = 0u64;
    let mut last_flush = std::time::Instant::now();
    for path in paths {
        let read_err = |source| Error::Read { path: path.clone(), source };
        if !path.exists() {
            return Err(read_err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")));
        }
        let Some(probed) = LogFile::probe(path).map_err(read_err)? else {
            summary.files.push(FileSummary {
                path: path.display().to_string(),
                from: 0,
                to: 0,
                lines: 0,
                not_ready: true,
            });
            continue;
        };
        let stored =
            store::find_checkpoint(pool, probed.id.device as i64, probed.id.inode as i64, &probed.fingerprint).await?;
        let mut file = LogFile::open(probed, stored).map_err(read_err)?;
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
                flush(pool, &mut agg, &resolver, &mut [&mut file]).await?;
                last_flush = std::time::Instant::now();
            }
        }
        flush(pool, &mut agg, &resolver, &mut [&mut file]).await?;
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
