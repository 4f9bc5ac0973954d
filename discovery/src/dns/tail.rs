//! `dns tail`: follow log files (or standard input) and keep writing what they say.
//!
//! Each path is watched through `notify` on its directory, with a polling fallback that
//! backs off at end of file. Per path, the tailer holds the file it is reading:
//! - rotation by rename (the path names another file now): the old file is read to its
//!   end and written first, then the new file is read from its start;
//! - copytruncate (the file is shorter than what we read): read again from the start,
//!   dropping the NULs a writer may leave before its next line;
//! - deletion: the old file is finished; the path is read again once re-created.
//!
//! Every batch is written with the read positions, so a restart resumes exactly.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use graph_store::dns as store;
use graph_store::PgPool;
use notify::{RecursiveMode, Watcher};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::aggregate::{Aggregator, Totals};
use super::ingest::{batch_due, flush, load_resolver, parse_context, IngestOptions};
use super::record::{SkipReason, MAX_LINE};
use super::source::{file_id, LogFile};
use crate::{Error, Result};

/// How `dns tail` follows its files, beyond [`IngestOptions`].
#[derive(Debug, Clone)]
pub struct TailOptions {
    pub ingest: IngestOptions,
    /// Write at least this often while lines arrive.
    pub flush_every: Duration,
    /// Longest wait between looks at a quiet file (the back-off grows up to it).
    pub max_poll: Duration,
    /// Reload the CMDB snapshot this often.
    pub cmdb_refresh: Duration,
    /// Retire DNS edges nobody asked for in this long (None: never).
    pub expire_after: Option<Duration>,
}

impl Default for TailOptions {
    fn default() -> Self {
        TailOptions {
            ingest: IngestOptions::default(),
            flush_every: Duration::from_secs(1),
            max_poll: Duration::from_secs(1),
            cmdb_refresh: Duration::from_secs(60),
            expire_after: Some(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

struct Followed {
    path: PathBuf,
    file: Option<LogFile>,
}

/// Follows `paths` until `shutdown`, then writes what it has and returns the totals.
pub async fn tail(pool: &PgPool, paths: &[PathBuf], opts: &TailOptions, shutdown: CancellationToken) -> Result<Totals> {
    let mut resolver = load_resolver(pool, &opts.ingest).await?;
    let mut agg = Aggregator::new();
    let mut buf = vec![0u8; opts.ingest.read_buffer];
    let mut followed: Vec<Followed> = paths.iter().map(|p| Followed { path: p.clone(), file: None }).collect();

    let (tx, mut events) = mpsc::channel::<()>(64);
    let _watcher = watch_dirs(paths, tx)?;
    let mut last_flush = Instant::now();
    let mut last_refresh = Instant::now();
    let mut last_expiry: Option<Instant> = None;
    let mut idle = Duration::from_millis(10);

    loop {
        let ctx = parse_context(&opts.ingest);
        let mut progressed = false;
        for f in followed.iter_mut() {
            progressed |= step(pool, f, &mut buf, &mut agg, &mut resolver, &ctx, opts).await?;
        }
        let due = last_flush.elapsed() >= opts.flush_every;
        if due || batch_due(&agg, &opts.ingest, last_flush) {
            let mut files: Vec<&mut LogFile> = followed.iter_mut().filter_map(|f| f.file.as_mut()).collect();
            flush(pool, &mut agg, &resolver, &mut files).await?;
            last_flush = Instant::now();
        }
        if last_refresh.elapsed() >= opts.cmdb_refresh {
            let mut files: Vec<&mut LogFile> = followed.iter_mut().filter_map(|f| f.file.as_mut()).collect();
            flush(pool, &mut agg, &resolver, &mut files).await?;
            resolver = load_resolver(pool, &opts.ingest).await?;
            last_refresh = Instant::now();
        }
        if let Some(after) = opts.expire_after {
            if last_expiry.is_none_or(|t| t.elapsed() >= Duration::from_secs(600)) {
                expire(pool, after).await?;
                last_expiry = Some(Instant::now());
            }
        }
        if progressed {
            idle = Duration::from_millis(10);
            if shutdown.is_cancelled() {
                break;
            }
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = events.recv() => idle = Duration::from_millis(10),
            _ = tokio::time::sleep(idle) => idle = (idle * 2).min(opts.max_poll),
        }
    }
    // Read what was written up to now before leaving (rotations and truncations
    // handled as ever, so nothing torn is read).
    let ctx = parse_context(&opts.ingest);
    for f in followed.iter_mut() {
        while step(pool, f, &mut buf, &mut agg, &mut resolver, &ctx, opts).await? {}
    }
    let mut files: Vec<&mut LogFile> = followed.iter_mut().filter_map(|f| f.file.as_mut()).collect();
    flush(pool, &mut agg, &resolver, &mut files).await?;
    Ok(agg.totals())
}

/// Files that were at `path` when edgewatch last read it, were rotated away (renamed in
/// the same directory) while it was not looking, and still have unread lines: read them
/// to their end now, so a restart across a rotation loses nothing.
async fn finish_rotated(
    pool: &PgPool,
    path: &Path,
    current: Option<super::source::FileId>,
    buf: &mut [u8],
    agg: &mut Aggregator,
    resolver: &mut super::resolve::Resolver,
    ctx: &super::record::ParseContext,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let stored = store::checkpoints_for_path(pool, &absolute.display().to_string()).await?;
    let stale: Vec<_> = stored
        .into_iter()
        .filter(|c| current.is_none_or(|id| (id.device as i64, id.inode as i64) != (c.device, c.inode)))
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    let Some(dir) = absolute.parent() else { return Ok(()) };
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        let Some(checkpoint) = stale.iter().find(|c| (c.device, c.inode) == (meta.dev() as i64, meta.ino() as i64))
        else {
            continue;
        };
        if meta.len() <= checkpoint.byte_offset as u64 {
            continue;
        }
        let rotated = entry.path();
        let read_err = |source| Error::Read { path: rotated.clone(), source };
        let Some(probed) = LogFile::probe(&rotated).map_err(read_err)? else { continue };
        if probed.fingerprint != checkpoint.fingerprint {
            continue;
        }
        let mut file = LogFile::open(probed, Some(checkpoint.clone())).map_err(read_err)?;
        // The read position stays stored under the followed path's name.
        file.set_path(absolute.clone());
        while file.read_some(buf, agg, resolver, ctx).map_err(read_err)? > 0 {}
        tracing::info!(rotated = %rotated.display(), "finished a file rotated away while not following");
        flush(pool, agg, resolver, &mut [&mut file]).await?;
    }
    Ok(())
}

/// One look at one path. Returns whether any byte was read or the file changed.
async fn step(
    pool: &PgPool,
    f: &mut Followed,
    buf: &mut [u8],
    agg: &mut Aggregator,
    resolver: &mut super::resolve::Resolver,
    ctx: &super::record::ParseContext,
    opts: &TailOptions,
) -> Result<bool> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Read { path, source }
    };
    if f.file.is_none() {
        // Open what the path names now (holding it, so a rename from here on is seen as
        // a rotation of this file), then finish the files that were rotated away from
        // the path while no one was following (across a restart, say).
        let probed = LogFile::probe(&f.path).map_err(read_err(&f.path))?;
        let current = probed.as_ref().map(|p| p.id).or_else(|| file_id(&f.path));
        finish_rotated(pool, &f.path, current, buf, agg, resolver, ctx).await?;
        let Some(probed) = probed else {
            return Ok(false);
        };
        let stored =
            store::find_checkpoint(pool, probed.id.device as i64, probed.id.inode as i64, &probed.fingerprint).await?;
        f.file = Some(LogFile::open(probed, stored).map_err(read_err(&f.path))?);
        tracing::info!(path = %f.path.display(), "following");
    }
    let Some(file) = f.file.as_mut() else {
        return Ok(false);
    };
    // Truncated (copytruncate) since we last looked? Checked before reading: once the
    // writer has written past our old position, reading there would give torn lines.
    if file_id(&f.path) == Some(file.id()) && file.truncated().map_err(read_err(&f.path))? {
        tracing::info!(path = %f.path.display(), "truncated; reading from the start");
        flush(pool, agg, resolver, &mut [&mut *file]).await?;
        if !file.restart().map_err(read_err(&f.path))? {
            // Nothing complete yet: look again from scratch later.
            f.file = None;
        }
        return Ok(true);
    }
    let mut progressed = false;
    // Read what there is, in bounded rounds so other files get their turn.
    for _ in 0..64 {
        let n = file.read_some(buf, agg, resolver, ctx).map_err(read_err(&f.path))?;
        if n == 0 {
            break;
        }
        progressed = true;
        if agg.pending_lines() >= opts.ingest.batch_lines || agg.pending_pair_hours() >= opts.ingest.max_pairs {
            break;
        }
    }
    if progressed {
        return Ok(true);
    }
    // At the end of the file: has the path moved on to another file?
    if file_id(&f.path) != Some(file.id()) {
        // Lines written to the old file after our last read and before the rename are
        // still there: finish it before leaving it.
        while file.read_some(buf, agg, resolver, ctx).map_err(read_err(&f.path))? > 0 {}
        tracing::info!(path = %f.path.display(), "rotated or deleted; finished the old file");
        let mut old = f.file.take().expect("a file");
        flush(pool, agg, resolver, &mut [&mut old]).await?;
        return Ok(true);
    }
    Ok(false)
}

async fn expire(pool: &PgPool, after: Duration) -> Result<()> {
    let before = chrono::Utc::now() - chrono::Duration::from_std(after).unwrap_or(chrono::Duration::days(7));
    let mut conn =
        pool.acquire().await.map_err(|source| graph_store::Error::Sql { op: "expiring dns edges", source })?;
    let (lost, retired) = store::expire_dns_edges(&mut conn, before).await?;
    if lost > 0 {
        tracing::info!(lost, retired, "dns edges expired");
    }
    Ok(())
}

fn watch_dirs(paths: &[PathBuf], tx: mpsc::Sender<()>) -> Result<Option<notify::RecommendedWatcher>> {
    let dirs: HashSet<PathBuf> = paths
        .iter()
        .map(|p| match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        })
        .collect();
    let watcher = notify::recommended_watcher(move |_event: notify::Result<notify::Event>| {
        let _ = tx.try_send(());
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("no file notifications ({e}); polling");
            return Ok(None);
        }
    };
    for dir in dirs {
        if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), "cannot watch ({e}); polling");
        }
    }
    Ok(Some(watcher))
}

/// Follows standard input (`dns tail -`) until it ends or `shutdown`. There is no read
/// position to keep: what was read before a restart is not read again.
pub async fn tail_stdin(pool: &PgPool, opts: &TailOptions, shutdown: CancellationToken) -> Result<Totals> {
    let mut resolver = load_resolver(pool, &opts.ingest).await?;
    let mut agg = Aggregator::new();
    let mut reader = tokio::io::BufReader::with_capacity(1 << 20, tokio::io::stdin());
    let mut line = Vec::with_capacity(4096);
    let mut last_flush = Instant::now();
    let stdin_err = |source| Error::Read { path: PathBuf::from("-"), source };
    loop {
        line.clear();
        let read = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(opts.flush_every), if agg.pending_lines() > 0 => None,
            r = read_bounded_line(&mut reader, &mut line) => Some(r.map_err(stdin_err)?),
        };
        match read {
            Some(0) => break,
            Some(_) => {
                if line.len() > MAX_LINE {
                    agg.skip_line(SkipReason::TooLong);
                } else {
                    let end = if line.last() == Some(&b'\n') { line.len() - 1 } else { line.len() };
                    agg.add_line(&mut resolver, &line[..end], &parse_context(&opts.ingest));
                }
            }
            None => {}
        }
        if batch_due(&agg, &opts.ingest, last_flush) || last_flush.elapsed() >= opts.flush_every {
            flush(pool, &mut agg, &resolver, &mut []).await?;
            last_flush = Instant::now();
        }
    }
    flush(pool, &mut agg, &resolver, &mut []).await?;
    Ok(agg.totals())
}

/// Reads one line, keeping at most MAX_LINE + 1 bytes of it (the rest is discarded, so
/// the caller sees it is too long). Returns the bytes consumed (0 at end of input).
async fn read_bounded_line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R, out: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut consumed = 0;
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            return Ok(consumed);
        }
        let (chunk, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let room = (MAX_LINE + 1).saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let n = chunk.len();
        r.consume(n);
        consumed += n;
        if done {
            return Ok(consumed);
        }
    }
}
