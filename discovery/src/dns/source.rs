//! Reading a log file line by line from where edgewatch left off.
//!
//! A file is known by its device and inode plus a fingerprint of its first line (at most
//! 256 bytes), not by its path: a renamed (rotated) file is the same file, a file that
//! was truncated and rewritten with other content is a new one. The read position only
//! ever moves past complete lines, so a partial last line is read again once complete.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use graph_store::dns::{Checkpoint, CheckpointAdvance};

use super::aggregate::Aggregator;
use super::record::{ParseContext, SkipReason, MAX_LINE};
use super::resolve::Resolver;

/// How many leading bytes (at most, up to the first newline) identify a file.
pub const FINGERPRINT_BYTES: usize = 256;

/// A log file being read.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: File,
    device: u64,
    inode: u64,
    fingerprint: String,
    /// Offset just past the last complete line consumed.
    pos: u64,
    /// Offset up to which the file has been read (pos plus the pending partial line).
    read_to: u64,
    /// The offset the store holds for this file.
    committed: u64,
    lines: u64,
    /// The start of an incomplete line (never more than MAX_LINE bytes).
    pending: Vec<u8>,
    /// Inside a line longer than MAX_LINE: discard up to its newline.
    skipping: bool,
}

/// A file opened and identified, not yet positioned.
#[derive(Debug)]
pub struct Probed {
    pub path: PathBuf,
    pub file: File,
    pub id: FileId,
    pub fingerprint: String,
}

/// The identity of what a path names now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub device: u64,
    pub inode: u64,
}

pub fn file_id(path: &Path) -> Option<FileId> {
    std::fs::metadata(path).ok().map(|m| FileId { device: m.dev(), inode: m.ino() })
}

/// The fingerprint of an open file, or None while its first line is still incomplete
/// (and shorter than [`FINGERPRINT_BYTES`]).
pub fn fingerprint(file: &File) -> io::Result<Option<String>> {
    // Leading NULs (the hole a copytruncate leaves before a writer's next line) are not
    // content: skip them, up to a bound.
    const MAX_HOLE: u64 = 64 << 20;
    let mut chunk = [0u8; 4096];
    let mut start = 0u64;
    loop {
        let n = file.read_at(&mut chunk, start)?;
        if n == 0 {
            return Ok(None);
        }
        match chunk[..n].iter().position(|b| *b != 0) {
            Some(i) => {
                start += i as u64;
                break;
            }
            None if start + (n as u64) < MAX_HOLE => start += n as u64,
            None => return Ok(None),
        }
    }
    let mut head = [0u8; FINGERPRINT_BYTES];
    let mut n = 0;
    while n < head.len() {
        match file.read_at(&mut head[n..], start + n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    let head = &head[..n];
    let id = match memchr::memchr(b'\n', head) {
        Some(i) => &head[..i],
        None if n == FINGERPRINT_BYTES => head,
        None => return Ok(None),
    };
    let hash = id.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    Ok(Some(format!("{}:{hash:016x}", id.len())))
}

impl LogFile {
    /// Opens `path` and tells its identity. None while the file is missing or has no
    /// complete first line yet.
    pub fn probe(path: &Path) -> io::Result<Option<Probed>> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        let Some(fingerprint) = fingerprint(&file)? else {
            return Ok(None);
        };
        let id = FileId { device: meta.dev(), inode: meta.ino() };
        Ok(Some(Probed { path: path.to_path_buf(), file, id, fingerprint }))
    }

    /// Opens a probed file at the stored position (or the start).
    pub fn open(probed: Probed, stored: Option<Checkpoint>) -> io::Result<LogFile> {
        let Probed { path, file, id, fingerprint } = probed;
        let meta = file.metadata()?;
        let (committed, lines) = stored.map_or((0, 0), |c| (c.byte_offset as u64, c.lines as u64));
        // A stored position past the end: the file was truncated while we were away.
        let pos = if committed > meta.len() { 0 } else { committed };
        let mut log = LogFile {
            path,
            file,
            device: id.device,
            inode: id.inode,
            fingerprint,
            pos,
            read_to: pos,
            committed,
            lines: if pos == committed { lines } else { 0 },
            pending: Vec::new(),
            skipping: false,
        };
        log.file.seek(SeekFrom::Start(pos))?;
        Ok(log)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Names the file by the path it is followed under (its read position is stored
    /// under that name), not by where it was rotated to.
    pub fn set_path(&mut self, path: PathBuf) {
        self.path = path;
    }

    pub fn id(&self) -> FileId {
        FileId { device: self.device, inode: self.inode }
    }

    pub fn position(&self) -> u64 {
        self.pos
    }

    pub fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Was the file truncated (copytruncate)? It is when it is shorter than what we read,
    /// or when its first line is another one (truncated and written past our position
    /// before we looked).
    pub fn truncated(&self) -> io::Result<bool> {
        if self.size()? < self.read_to {
            return Ok(true);
        }
        Ok(matches!(fingerprint(&self.file)?, Some(fp) if fp != self.fingerprint))
    }

    /// Starts again from the beginning of a truncated file. The file's first line may
    /// have changed, so the fingerprint is taken again (None while not ready).
    pub fn restart(&mut self) -> io::Result<bool> {
        let Some(fingerprint) = fingerprint(&self.file)? else {
            return Ok(false);
        };
        if fingerprint != self.fingerprint {
            // New content: a new identity, read from the start.
            self.fingerprint = fingerprint;
            self.committed = 0;
        }
        self.pos = 0;
        self.read_to = 0;
        self.lines = 0;
        self.pending.clear();
        self.skipping = false;
        self.file.seek(SeekFrom::Start(0))?;
        Ok(true)
    }

    /// Reads up to `buf.len()` bytes and feeds every completed line to `agg`. Returns the
    /// bytes read (0 at end of file).
    pub fn read_some(
        &mut self,
        buf: &mut [u8],
        agg: &mut Aggregator,
        resolver: &mut Resolver,
        ctx: &ParseContext,
    ) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        if n == 0 {
            return Ok(0);
        }
        let chunk_start = self.read_to;
        self.read_to += n as u64;
        let data = &buf[..n];
        let mut at = 0;
        while let Some(i) = memchr::memchr(b'\n', &data[at..]) {
            let end = at + i;
            if self.skipping {
                self.skipping = false;
                agg.skip_line(SkipReason::TooLong);
            } else if !self.pending.is_empty() {
                if self.pending.len() + (end - at) > MAX_LINE {
                    agg.skip_line(SkipReason::TooLong);
                } else {
                    self.pending.extend_from_slice(&data[at..end]);
                    agg.add_line(resolver, &self.pending, ctx);
                }
                self.pending.clear();
            } else if end - at > MAX_LINE {
                agg.skip_line(SkipReason::TooLong);
            } else {
                agg.add_line(resolver, &data[at..end], ctx);
            }
            self.lines += 1;
            at = end + 1;
            self.pos = chunk_start + at as u64;
        }
        let mut tail = &data[at..];
        if !self.skipping {
            if self.pending.is_empty() {
                // NULs left by copytruncate before the first real line are dropped.
                let start = tail.iter().position(|b| *b != 0).unwrap_or(tail.len());
                tail = &tail[start..];
            }
            if self.pending.len() + tail.len() > MAX_LINE {
                self.pending.clear();
                self.skipping = true;
            } else {
                self.pending.extend_from_slice(tail);
            }
        }
        Ok(n)
    }

    /// The position to store, if it moved since the last commit.
    pub fn advance(&self) -> Option<CheckpointAdvance> {
        (self.pos != self.committed).then(|| CheckpointAdvance {
            to: Checkpoint {
                device: self.device as i64,
                inode: self.inode as i64,
                fingerprint: self.fingerprint.clone(),
                path: self.path.display().to_string(),
                byte_offset: self.pos as i64,
                lines: self.lines as i64,
            },
            expected_offset: self.committed as i64,
        })
    }

    /// The store now holds [`LogFile::advance`]'s position.
    pub fn committed(&mut self, advance: &CheckpointAdvance) {
        self.committed = advance.to.byte_offset as u64;
    }
}
