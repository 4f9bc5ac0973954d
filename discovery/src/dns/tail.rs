//! `dns tail`: follow log files (or standard input) and keep writing what they say.
//!
//! Each path is watched through `notify` on its directory, with a polling fallback that
//! backs off at end of file. Per path, the tailer holds the file it is reading:
//! - rotation by rename (the path names another file now): the old file is read to its
//!   end and written first, then the rotated siblings are looked at (files that came and
//!   went meanwhile), then the new file is read from its start;
//! - copytruncate (the file is shorter than what we read, or its first bytes changed):
//!   what was read is written, the rest is read from the copy, then the file again from
//!   its start, dropping the NULs a writer may leave before its next line;
//! - deletion: the old file is finished; the path is read again once re-created.
//!
//! On start, the rotated siblings are looked at first ([`super::rotated`] decides what
//! is unread in them). Every batch is written with the read positions, so a restart
//! resumes exactly; DNS edges past the expiry horizon are retired in the batch that moves
//! it ([`super::ingest::expiry_horizon`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use graph_store::PgPool;
use notify::{RecursiveMode, Watcher};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::aggregate::{Aggregator, Totals};
use super::follow::{Followed, Opened, Reading};
use super::ingest::{batch_due, load_resolver, parse_context, IngestOptions, Writer};
use super::record::{SkipReason, MAX_LINE};
use super::rotated::alike;
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

/// Follows `paths` until `shutdown`, then writes what it has and returns the totals.
pub async fn tail(pool: &PgPool, paths: &[PathBuf], opts: &TailOptions, shutdown: CancellationToken) -> Result<Totals> {
    let mut resolver = load_resolver(pool, &opts.ingest).await?;
    let mut agg = Aggregator::new();
    let mut buf = vec![0u8; opts.ingest.read_buffer];
    let mut writer = Writer::new(pool, opts.expire_after);
    // A reader killed a moment ago may still have a commit in flight: read the stored
    // positions only after it landed.
    graph_store::dns::batch_barrier(pool).await?;
    writer.expire_now().await?;
    let mut followed = Vec::with_capacity(paths.len());
    for path in paths {
        followed.push(Followed::register(pool, path, opts.ingest.rotated.as_deref()).await?);
    }
    let names: Vec<PathBuf> = followed.iter().map(|f| f.path().to_path_buf()).collect();

    let (tx, mut events) = mpsc::channel::<()>(64);
    let _watcher = watch_dirs(&names, tx)?;
    let mut last_flush = Instant::now();
    let mut last_refresh = Instant::now();
    let mut idle = Duration::from_millis(10);

    loop {
        let mut progressed = false;
        for f in followed.iter_mut() {
            let mut r = Reading {
                writer: &mut writer,
                agg: &mut agg,
                resolver: &mut resolver,
                buf: &mut buf,
                opts: &opts.ingest,
            };
            progressed |= step(&mut r, f, &names).await?;
        }
        let due = last_flush.elapsed() >= opts.flush_every;
        let refresh = last_refresh.elapsed() >= opts.cmdb_refresh;
        if due || refresh || batch_due(&agg, &opts.ingest, last_flush) {
            let mut files: Vec<&mut LogFile> = followed.iter_mut().filter_map(|f| f.file.as_mut()).collect();
            writer.flush(&mut agg, &resolver, &mut files).await?;
            last_flush = Instant::now();
        }
        if refresh {
            resolver = load_resolver(pool, &opts.ingest).await?;
            last_refresh = Instant::now();
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
    for f in followed.iter_mut() {
        let mut r =
            Reading { writer: &mut writer, agg: &mut agg, resolver: &mut resolver, buf: &mut buf, opts: &opts.ingest };
        while step(&mut r, f, &names).await? {}
    }
    let mut files: Vec<&mut LogFile> = followed.iter_mut().filter_map(|f| f.file.as_mut()).collect();
    writer.flush(&mut agg, &resolver, &mut files).await?;
    Ok(agg.totals())
}

/// One look at one path. Returns whether any byte was read or the file changed.
async fn step(r: &mut Reading<'_, '_>, f: &mut Followed, names: &[PathBuf]) -> Result<bool> {
    let path = f.path().to_path_buf();
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Read { path, source }
    };
    if f.scan_due() {
        f.finish_rotated(r, names).await?;
    }
    if f.file.is_none() {
        match f.open_current(r.writer.pool()).await? {
            Opened::Yes => tracing::info!(path = %path.display(), "following"),
            Opened::NotReady => return Ok(false),
            Opened::Moved => {
                // Files came and went at the path since the last look: finish them first.
                f.rescan();
                return Ok(true);
            }
        }
    }
    let file = f.file.as_mut().expect("opened above");
    // Truncated (copytruncate) since we last looked? Checked before reading: once the
    // writer has written past our old position, reading there would give torn lines.
    if file.truncated().map_err(read_err(&path))? {
        truncated(r, f, names).await?;
        return Ok(true);
    }
    let mut progressed = false;
    // Read what there is, in bounded rounds so other files get their turn.
    for _ in 0..64 {
        let ctx = parse_context(r.opts);
        let n = file.read_some(r.buf, r.agg, r.resolver, &ctx).map_err(read_err(&path))?;
        if n == 0 {
            break;
        }
        progressed = true;
        if r.agg.pending_lines() >= r.opts.batch_lines || r.agg.pending_pair_hours() >= r.opts.max_pairs {
            break;
        }
    }
    if progressed {
        return Ok(true);
    }
    // At the end of the file: has the path moved on to another file?
    if file_id(&path) != Some(file.id()) {
        // Lines written to the old file after our last read and before the rename are
        // still there: finish it before leaving it, then look at what else was rotated.
        tracing::info!(path = %path.display(), "rotated or deleted; finishing the old file");
        let mut old = f.file.take().expect("a file");
        r.finish(&mut old).await?;
        f.rescan();
        return Ok(true);
    }
    Ok(false)
}

/// The file being read was truncated (copytruncate): write what was read, read the rest
/// from the copy (a rotated sibling that begins with the same bytes), then start the
/// file again. When no copy has every byte the file was seen to have, lines may be lost:
/// that is counted (`copytruncate-loss` in `dns stats`) and logged.
async fn truncated(r: &mut Reading<'_, '_>, f: &mut Followed, names: &[PathBuf]) -> Result<()> {
    let mut file = f.file.take().expect("a file");
    r.writer.flush(r.agg, r.resolver, &mut [&mut file]).await?;
    let (pos, seen_to) = (file.position(), file.read_to());
    let (hole, head) = file.read_prefix();
    let scan = f.finish_rotated(r, names).await?;
    let copy =
        scan.siblings.iter().filter(|s| alike(s.hole, &s.head, hole, head).is_some_and(|n| n > 0)).map(|s| s.len).max();
    match copy {
        Some(len) if len >= seen_to => {
            tracing::info!(path = %f.path().display(), "truncated; the copy was read, reading the file from its start");
        }
        _ => {
            let missing = seen_to.saturating_sub(copy.unwrap_or(0).max(pos));
            tracing::warn!(
                path = %f.path().display(),
                copy = copy.is_some(),
                read_up_to = pos,
                seen_up_to = seen_to,
                missing_bytes = missing,
                "truncated, and no rotated copy has all it held: lines written after the last read may be lost"
            );
            r.agg.count_truncation_loss();
        }
    }
    f.rescan();
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
    let mut writer = Writer::new(pool, opts.expire_after);
    writer.expire_now().await?;
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
            writer.flush(&mut agg, &resolver, &mut []).await?;
            last_flush = Instant::now();
        }
    }
    writer.flush(&mut agg, &resolver, &mut []).await?;
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
