//! The agent's local figures: load average from `/proc/loadavg`, and request rates from
//! an nginx access log read from where the last interval stopped. This is the I/O; the
//! log lines are understood by [`crate::nginx`].
//!
//! The log is followed like `tail -F`: at start the agent begins at the end of the file
//! (history is not a rate); a file that shrinks was truncated and is read from its start;
//! a file replaced under the same path was rotated: the old one is read to its end, then
//! the new one from its start.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::nginx::{LineSplitter, Rates, StatusCounts};
use crate::nginx_format::LineFormat;

/// Where Linux keeps the load average.
pub const LOADAVG: &str = "/proc/loadavg";

/// The 1, 5 and 15 minute load averages of `/proc/loadavg` text (`0.52 0.58 0.59 1/467 1234`).
pub fn parse_loadavg(text: &str) -> Option<(f64, f64, f64)> {
    let mut fields = text.split_ascii_whitespace().map(|f| f.parse::<f64>().ok().filter(|v| v.is_finite()));
    Some((fields.next()??, fields.next()??, fields.next()??))
}

/// The load averages now, if the file can be read.
pub fn read_loadavg(path: &Path) -> Option<(f64, f64, f64)> {
    std::fs::read_to_string(path).ok().as_deref().and_then(parse_loadavg)
}

/// An nginx access log followed across intervals.
#[derive(Debug)]
pub struct AccessLog {
    path: PathBuf,
    /// The file being read, its identity (device, inode) and the read position.
    open: Option<(File, (u64, u64), u64)>,
    splitter: LineSplitter,
    format: LineFormat,
    /// Lines read that were not in the format, since the start.
    malformed: u64,
    last: Instant,
    /// Whether a file was ever opened: a file appearing later is read from its start.
    opened_once: bool,
}

impl AccessLog {
    /// Starts following `path`: what it holds now is not counted.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let mut log = AccessLog {
            path: path.into(),
            open: None,
            splitter: LineSplitter::default(),
            format: LineFormat::Combined,
            malformed: 0,
            last: Instant::now(),
            opened_once: false,
        };
        if let Err(e) = log.reopen(true) {
            tracing::warn!(path = %log.path.display(), "cannot open the nginx access log yet: {e}");
        }
        log
    }

    /// Reads the lines in `format` (default: `combined`).
    pub fn with_format(mut self, format: LineFormat) -> Self {
        self.format = format;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lines read that were not in the log's format (not counted as requests), so far.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// Rates over the lines appended since the last call (or since [`AccessLog::new`]);
    /// `None` while there is no file to read.
    pub fn rates(&mut self) -> Option<Rates> {
        let mut counts = StatusCounts::default();
        let now = Instant::now();
        let seconds = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        let read = self.read(&mut counts);
        if counts.malformed > 0 {
            if self.malformed == 0 {
                tracing::warn!(
                    path = %self.path.display(),
                    lines = counts.malformed,
                    "access-log lines not in the log format are not counted (see --nginx-log-format); said once"
                );
            }
            self.malformed += counts.malformed;
        }
        match read {
            Ok(true) => counts.rates(seconds),
            Ok(false) => None,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), "reading the nginx access log: {e}");
                None
            }
        }
    }

    /// Reads what was appended (following truncation and rotation) into `counts`;
    /// false when there is no file.
    fn read(&mut self, counts: &mut StatusCounts) -> io::Result<bool> {
        if self.open.is_some() {
            self.drain(counts)?;
        }
        let current = match std::fs::metadata(&self.path) {
            Ok(meta) => Some((meta.dev(), meta.ino())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let ours = self.open.as_ref().map(|(_, id, _)| *id);
        if current.is_some() && current != ours {
            // Rotated (or created since we started): the old file is finished, the new
            // one is read from its start.
            self.reopen(false)?;
            self.drain(counts)?;
        }
        Ok(self.open.is_some())
    }

    fn reopen(&mut self, at_end: bool) -> io::Result<()> {
        let mut file = File::open(&self.path)?;
        let meta = file.metadata()?;
        let offset = if at_end && !self.opened_once { meta.len() } else { 0 };
        file.seek(SeekFrom::Start(offset))?;
        self.splitter.reset();
        self.open = Some((file, (meta.dev(), meta.ino()), offset));
        self.opened_once = true;
        Ok(())
    }

    fn drain(&mut self, counts: &mut StatusCounts) -> io::Result<()> {
        let Some((file, _, offset)) = self.open.as_mut() else {
            return Ok(());
        };
        if file.metadata()?.len() < *offset {
            // Truncated (copytruncate): start again at the beginning.
            file.seek(SeekFrom::Start(0))?;
            *offset = 0;
            self.splitter.reset();
        }
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            *offset += n as u64;
            let format = &self.format;
            self.splitter.feed(&buf[..n], |line| counts.add_line_in(line, format));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loadavg() {
        assert_eq!(parse_loadavg("0.52 0.58 0.59 1/467 12345\n"), Some((0.52, 0.58, 0.59)));
        assert_eq!(parse_loadavg("12.00 3.5 0 2/9 1"), Some((12.0, 3.5, 0.0)));
        assert_eq!(parse_loadavg("0.52 0.58"), None);
        assert_eq!(parse_loadavg("a b c"), None);
        assert_eq!(parse_loadavg(""), None);
    }
}
