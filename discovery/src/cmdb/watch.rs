//! `cmdb watch`: import the exports again whenever one of them changes.
//!
//! A writer that rewrites a file in place is seen mid-write. So after a change the
//! watcher waits until every file has kept the same size and modification time for the
//! settle period, then reads and parses them all before touching the graph: a file that
//! is still half-written fails to parse (or, if it happens to parse, is caught by the
//! mass-retire guard) and the graph stays as it was until the next change. Writers that
//! write a temporary file and rename it over the export are always safe.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use graph_store::PgPool;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{apply_exports, read_exports, ImportOptions, ImportReport};
use crate::path::absolute;
use crate::{Error, Result};

/// How `cmdb watch` behaves.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub import: ImportOptions,
    /// How long the files must stay unchanged before they are read.
    pub settle: Duration,
    /// Re-check the files this often even without a notification (network file systems
    /// and some editors do not produce reliable events).
    pub poll: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions { import: ImportOptions::default(), settle: Duration::from_secs(1), poll: Duration::from_secs(30) }
    }
}

/// What happened to one attempt, for the caller to report.
#[derive(Debug)]
pub enum WatchEvent {
    Imported(ImportReport),
    Unchanged,
    Refused(Error),
}

/// Imports `files` now and again after every change, until `shutdown`. `on_event` hears
/// about each attempt. Errors in an attempt are reported, never fatal: the graph keeps
/// the last good import.
pub async fn watch(
    pool: &PgPool,
    files: &[PathBuf],
    opts: WatchOptions,
    shutdown: CancellationToken,
    mut on_event: impl FnMut(&WatchEvent),
) -> Result<()> {
    let (tx, mut rx) = mpsc::channel::<()>(16);
    let wanted: HashSet<PathBuf> = files.iter().map(|f| absolute(f)).collect();
    let watched_names = wanted.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if event.paths.iter().any(|p| watched_names.contains(p)) {
                let _ = tx.try_send(());
            }
        }
    })
    .map_err(|source| Error::Watch { path: files.first().cloned().unwrap_or_default(), source })?;
    let dirs: HashSet<PathBuf> = wanted.iter().filter_map(|f| f.parent().map(Path::to_path_buf)).collect();
    for dir in &dirs {
        watcher.watch(dir, RecursiveMode::NonRecursive).map_err(|source| Error::Watch { path: dir.clone(), source })?;
    }

    let mut last_state = None;
    loop {
        let state = settled_state(files, opts.settle, &shutdown).await;
        if shutdown.is_cancelled() {
            return Ok(());
        }
        if state.is_some() && state == last_state {
            on_event(&WatchEvent::Unchanged);
        } else {
            let attempt = match read_exports(files) {
                Ok(exports) => apply_exports(pool, &exports, opts.import).await,
                Err(e) => Err(e),
            };
            match attempt {
                Ok(report) => {
                    last_state = state;
                    on_event(&WatchEvent::Imported(report));
                }
                Err(e) => on_event(&WatchEvent::Refused(e)),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = rx.recv() => {}
            _ = tokio::time::sleep(opts.poll) => {}
        }
        // Coalesce a burst of events into one attempt.
        while rx.try_recv().is_ok() {}
    }
}

/// Size and modification time of every file (None for a missing one).
type FileState = Vec<Option<(u64, SystemTime)>>;

fn file_state(files: &[PathBuf]) -> FileState {
    files.iter().map(|f| std::fs::metadata(f).ok().and_then(|m| Some((m.len(), m.modified().ok()?)))).collect()
}

/// Waits until the files have not changed for `settle`; returns their state then.
async fn settled_state(files: &[PathBuf], settle: Duration, shutdown: &CancellationToken) -> Option<FileState> {
    let mut state = file_state(files);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(settle) => {}
        }
        let now = file_state(files);
        if now == state {
            return Some(now);
        }
        state = now;
    }
}
