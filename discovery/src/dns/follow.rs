//! A followed log path: registering it, opening the file it names where its checkpoint
//! says, and finishing what its rotated siblings hold unread (the decisions are
//! [`super::rotated`]'s; this module does the looking and reading).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use graph_store::dns::{self as store, Checkpoint};
use graph_store::PgPool;

use super::aggregate::Aggregator;
use super::ingest::{batch_due, parse_context, IngestOptions, Writer};
use super::resolve::Resolver;
use super::rotated::{alike, start_of_followed, start_of_rotated, RotatedNames, Start};
use super::source::{file_id, FileId, LogFile, Probed};
use crate::path::absolute;
use crate::{Error, Result};

/// What reading needs at hand: where batches go, what they are made of.
#[derive(Debug)]
pub struct Reading<'a, 'p> {
    pub writer: &'a mut Writer<'p>,
    pub agg: &'a mut Aggregator,
    pub resolver: &'a mut Resolver,
    pub buf: &'a mut [u8],
    pub opts: &'a IngestOptions,
}

impl Reading<'_, '_> {
    /// Reads `file` to its end, writing a batch whenever one is due and at the end.
    pub async fn finish(&mut self, file: &mut LogFile) -> Result<()> {
        let ctx = parse_context(self.opts);
        let mut last_flush = Instant::now();
        let path = file.path().to_path_buf();
        loop {
            let read_err = |source| Error::Read { path: path.clone(), source };
            if file.read_some(self.buf, self.agg, self.resolver, &ctx).map_err(read_err)? == 0 {
                break;
            }
            if batch_due(self.agg, self.opts, last_flush) {
                self.writer.flush(self.agg, self.resolver, &mut [&mut *file]).await?;
                last_flush = Instant::now();
            }
        }
        self.writer.flush(self.agg, self.resolver, &mut [file]).await
    }
}

/// A sibling as a scan saw it: its first bytes and its length (decompressed, for a
/// compressed one whose length is known).
#[derive(Debug, Clone)]
pub struct Sibling {
    pub hole: u64,
    pub head: Vec<u8>,
    pub len: u64,
}

/// What a scan of the rotated siblings found.
#[derive(Debug, Default)]
pub struct Scan {
    pub siblings: Vec<Sibling>,
    /// A compressed sibling was still being written: look again soon.
    pub retry: bool,
}

/// How a look at the followed path ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    Yes,
    /// Missing, or no complete first line yet.
    NotReady,
    /// The path names another file than at the last scan: scan first.
    Moved,
}

/// One followed path.
#[derive(Debug)]
pub struct Followed {
    /// Absolute, with the directory's symbolic links resolved: checkpoints are stored
    /// under it.
    path: PathBuf,
    names: RotatedNames,
    /// Since when the path is followed (see [`super::rotated`]).
    since: DateTime<Utc>,
    /// The file being read.
    pub file: Option<LogFile>,
    /// What the path named at the last scan.
    seen: Glimpse,
    scan: bool,
    retry_at: Option<Instant>,
}

/// What a path named at a moment: the file's identity, and its content's when it had a
/// complete first line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Glimpse {
    id: Option<FileId>,
    content: Option<(String, u64, Vec<u8>)>,
}

impl Glimpse {
    fn of(path: &Path, probed: Option<&Probed>) -> Glimpse {
        match probed {
            Some(p) => Glimpse { id: Some(p.id), content: Some((p.fingerprint.clone(), p.hole, p.head.clone())) },
            None => Glimpse { id: file_id(path), content: None },
        }
    }

    /// Is `now` the same file with the same content as far as both were seen (it may
    /// have grown)?
    fn still(&self, now: &Glimpse) -> bool {
        self.id == now.id
            && match (&self.content, &now.content) {
                (None, None) => true,
                (Some((fp, hole, head)), Some((fp_now, hole_now, head_now))) => {
                    fp == fp_now && alike(*hole, head, *hole_now, head_now).is_some()
                }
                _ => false,
            }
    }
}

impl Followed {
    /// Registers `path` as followed (from now on, unless it already was). `rotated` is
    /// the `--rotated` pattern.
    pub async fn register(pool: &PgPool, path: &Path, rotated: Option<&str>) -> Result<Followed> {
        let path = absolute(path);
        let base = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let names = RotatedNames::new(&base, rotated).map_err(Error::Config)?;
        let since = store::follow_path(pool, &path.display().to_string(), Utc::now()).await?;
        Ok(Followed { path, names, since, file: None, seen: Glimpse::default(), scan: true, retry_at: None })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Is a look at the rotated siblings due?
    pub fn scan_due(&self) -> bool {
        self.scan || self.retry_at.is_some_and(|t| t <= Instant::now())
    }

    /// Asks for a look at the rotated siblings before the path is read again.
    pub fn rescan(&mut self) {
        self.scan = true;
    }

    /// Finishes what the rotated siblings hold unread, oldest first. `followed` are every
    /// followed path (none of them is anyone's sibling).
    pub async fn finish_rotated(&mut self, r: &mut Reading<'_, '_>, followed: &[PathBuf]) -> Result<Scan> {
        self.scan = false;
        self.retry_at = None;
        let read_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Read { path, source }
        };
        let live = LogFile::probe(&self.path).map_err(read_err(&self.path))?;
        self.seen = Glimpse::of(&self.path, live.as_ref());
        let mut siblings = self.siblings(followed);
        let keys: Vec<(i64, i64, String)> = siblings.iter().map(Probed::key).collect();
        let mut checkpoints = store::checkpoints_for(r.writer.pool(), &self.path.display().to_string(), &keys).await?;
        siblings.sort_by(|a, b| (a.modified, &a.path).cmp(&(b.modified, &b.path)));
        let mut scan = Scan::default();
        for sibling in siblings {
            let live = live.as_ref().map(Probed::seen);
            let start = start_of_rotated(&sibling.seen(), sibling.modified, &checkpoints, live.as_ref(), self.since);
            let len = if sibling.compressed {
                match sibling.complete_length().map_err(read_err(&sibling.path))? {
                    Some(len) => len,
                    None => {
                        tracing::info!(file = %sibling.path.display(), "still being compressed; looking again soon");
                        scan.retry = true;
                        continue;
                    }
                }
            } else {
                sibling.file.metadata().map_err(read_err(&sibling.path))?.len()
            };
            tracing::debug!(file = %sibling.path.display(), ?start, len, "a rotated file");
            scan.siblings.push(Sibling { hole: sibling.hole, head: sibling.head.clone(), len });
            let Start::Read { offset, .. } = start else {
                tracing::debug!(file = %sibling.path.display(), ?start, "rotated file left alone");
                continue;
            };
            if len <= offset {
                continue;
            }
            let name = sibling.path.clone();
            let mut file = LogFile::open(sibling, start).map_err(read_err(&name))?;
            // The read position is stored under the followed path's name.
            file.set_path(self.path.clone());
            r.finish(&mut file).await?;
            tracing::info!(rotated = %name.display(), from = offset, to = file.position(), "finished a rotated file");
            let now = file.checkpoint();
            checkpoints.retain(|c| (c.device, c.inode, &c.fingerprint) != (now.device, now.inode, &now.fingerprint));
            checkpoints.push(now);
        }
        if scan.retry {
            self.retry_at = Some(Instant::now() + Duration::from_secs(1));
        }
        Ok(scan)
    }

    /// The rotated siblings there are now, identified (those without a complete first line
    /// are left for later).
    fn siblings(&self, followed: &[PathBuf]) -> Vec<Probed> {
        let Some(dir) = self.path.parent() else { return Vec::new() };
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), "cannot list rotated files: {e}");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let path = entry.path();
            if !self.names.matches(&name.to_string_lossy()) || followed.contains(&path) {
                continue;
            }
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            match LogFile::probe(&path) {
                Ok(Some(probed)) => out.push(probed),
                Ok(None) => {}
                Err(e) => tracing::warn!(file = %path.display(), "cannot read a rotated file: {e}"),
            }
        }
        out
    }

    /// Opens what the path names now, where its checkpoint says.
    pub async fn open_current(&mut self, pool: &PgPool) -> Result<Opened> {
        let read_err = |source| Error::Read { path: self.path.clone(), source };
        let probed = LogFile::probe(&self.path).map_err(read_err)?;
        // Anything else than at the last scan (another file, or this one truncated and
        // rewritten, or grown a first line: its earlier content may be in a copy now)
        // means a look at the siblings first.
        if !self.seen.still(&Glimpse::of(&self.path, probed.as_ref())) {
            return Ok(Opened::Moved);
        }
        let Some(probed) = probed else {
            return Ok(Opened::NotReady);
        };
        let (device, inode, fingerprint) = probed.key();
        let own = store::find_checkpoint(pool, device, inode, &fingerprint).await?;
        let mut start = start_of_followed(&probed.seen(), own.as_slice());
        let len = probed.file.metadata().map_err(read_err)?.len();
        if let Start::Read { offset, lines, .. } = &mut start {
            if *offset > len && !probed.compressed {
                // Shorter than what was read: truncated while no one was following.
                (*offset, *lines) = (0, 0);
            }
        }
        if let Start::Read { stored: stored @ None, .. } = &mut start {
            // Known from now on, wherever it is rotated to, even if nothing of it is
            // committed before a crash.
            let path = self.path.display().to_string();
            let at_start =
                Checkpoint { device, inode, fingerprint, path, byte_offset: 0, lines: 0, hole: 0, head: Vec::new() };
            store::register_checkpoint(pool, &at_start).await?;
            *stored = Some(0);
        }
        let mut file = LogFile::open(probed, start).map_err(read_err)?;
        file.set_path(self.path.clone());
        self.file = Some(file);
        Ok(Opened::Yes)
    }
}
