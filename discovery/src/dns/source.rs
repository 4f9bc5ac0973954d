//! Reading a log file line by line from where edgewatch left off.
//!
//! A file is known by its device and inode plus a fingerprint of its first line (at most
//! 256 bytes), not by its path: a renamed (rotated) file is the same file. Its first bytes
//! (up to [`HEAD_BYTES`]) are kept with each checkpoint too, so a copy or a compressed
//! form of it is recognised, and a file that was truncated and rewritten is a new one
//! even when its first line is the same. A compressed file (gzip, as logrotate's
//! `compress` leaves it) is read through a decoder, its offsets counted in decompressed
//! bytes. The read position only ever moves past complete lines, so a partial last line
//! is read again once complete.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use flate2::read::MultiGzDecoder;
use graph_store::dns::{Checkpoint, CheckpointAdvance};

use super::aggregate::Aggregator;
use super::lines::{Line, LineSplitter};
use super::record::{ParseContext, SkipReason};
use super::resolve::Resolver;
use super::rotated::{Seen, Start, HEAD_BYTES};

/// How many leading bytes (at most, up to the first newline) identify a file.
pub const FINGERPRINT_BYTES: usize = 256;

/// The identity of what a path names now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub device: u64,
    pub inode: u64,
}

pub fn file_id(path: &Path) -> Option<FileId> {
    std::fs::metadata(path).ok().map(|m| FileId { device: m.dev(), inode: m.ino() })
}

/// Reads a file by position (`pread`), leaving its cursor alone.
struct At<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Reads up to `limit` bytes (fewer only at the end).
fn read_up_to(r: &mut impl Read, limit: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(limit.min(HEAD_BYTES));
    r.take(limit as u64).read_to_end(&mut out)?;
    Ok(out)
}

/// What identifies a file's content: the length of the run of NULs it starts with (the
/// hole a copytruncate leaves before a writer's next line: not content), the fingerprint
/// of its first line after them, and its first bytes after them (up to [`HEAD_BYTES`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub hole: u64,
    pub fingerprint: String,
    pub head: Vec<u8>,
}

/// The identity of what `r` reads, or None while its first line is still incomplete (and
/// shorter than [`FINGERPRINT_BYTES`]).
fn identify(r: &mut impl Read) -> io::Result<Option<Identity>> {
    const MAX_HOLE: u64 = 64 << 20;
    let mut chunk = [0u8; 4096];
    let mut hole = 0u64;
    let mut head = loop {
        let n = r.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        match chunk[..n].iter().position(|b| *b != 0) {
            Some(i) => {
                hole += i as u64;
                break chunk[i..n].to_vec();
            }
            None if hole + (n as u64) < MAX_HOLE => hole += n as u64,
            None => return Ok(None),
        }
    };
    if head.len() < HEAD_BYTES {
        head.extend(read_up_to(r, HEAD_BYTES - head.len())?);
    }
    head.truncate(HEAD_BYTES);
    let first = &head[..head.len().min(FINGERPRINT_BYTES)];
    let id = match memchr::memchr(b'\n', first) {
        Some(i) => &first[..i],
        None if first.len() == FINGERPRINT_BYTES => first,
        None => return Ok(None),
    };
    let hash = id.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    Ok(Some(Identity { hole, fingerprint: format!("{}:{hash:016x}", id.len()), head }))
}

/// The fingerprint of an open (uncompressed) file, or None while its first line is still
/// incomplete.
pub fn fingerprint(file: &File) -> io::Result<Option<String>> {
    Ok(identify(&mut At { file, pos: 0 })?.map(|i| i.fingerprint))
}

/// Does the file start with gzip's magic bytes?
fn is_gzip(file: &File) -> io::Result<bool> {
    let mut magic = [0u8; 2];
    Ok(file.read_at(&mut magic, 0)? == 2 && magic == [0x1f, 0x8b])
}

/// A file opened and identified, not yet positioned.
#[derive(Debug)]
pub struct Probed {
    pub path: PathBuf,
    pub file: File,
    pub id: FileId,
    pub fingerprint: String,
    /// The NULs it starts with.
    pub hole: u64,
    /// Its first bytes after them (up to [`HEAD_BYTES`], decompressed).
    pub head: Vec<u8>,
    pub compressed: bool,
    pub modified: DateTime<Utc>,
}

impl Probed {
    pub fn seen(&self) -> Seen<'_> {
        Seen { id: self.id, fingerprint: &self.fingerprint, hole: self.hole, head: &self.head }
    }

    /// The key its checkpoint is stored under.
    pub fn key(&self) -> (i64, i64, String) {
        (self.id.device as i64, self.id.inode as i64, self.fingerprint.clone())
    }

    /// Reads a compressed file through to its end: Some(its decompressed length) when the
    /// stream is whole, None while it is still being written (or is damaged).
    pub fn complete_length(&self) -> io::Result<Option<u64>> {
        if !self.compressed {
            return Ok(Some(self.file.metadata()?.len()));
        }
        let mut decoder = MultiGzDecoder::new(At { file: &self.file, pos: 0 });
        match io::copy(&mut decoder, &mut io::sink()) {
            Ok(n) => Ok(Some(n)),
            Err(e) if matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidInput) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A log file being read.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: File,
    /// The decompressed stream, for a gzip file.
    decoder: Option<Box<MultiGzDecoder<File>>>,
    device: u64,
    inode: u64,
    fingerprint: String,
    /// The NULs it starts with, and its first bytes after them as read (up to HEAD_BYTES).
    hole: u64,
    head: Vec<u8>,
    /// Offset just past the last complete line consumed.
    pos: u64,
    /// Offset up to which the file has been read (pos plus the pending partial line).
    read_to: u64,
    /// The offset the store holds for this file (None: no row yet).
    committed: Option<i64>,

    lines: u64,
    splitter: LineSplitter,
    /// The file changed under a read (see [`LogFile::read_some`]): read no more of it.
    torn: bool,
    /// Where reading started.
    opened_at: u64,
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
        let compressed = is_gzip(&file)?;
        let identity = if compressed {
            match identify(&mut MultiGzDecoder::new(At { file: &file, pos: 0 })) {
                Ok(identity) => identity,
                // Still being compressed: not ready.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => None,
                Err(e) => return Err(e),
            }
        } else {
            identify(&mut At { file: &file, pos: 0 })?
        };
        let Some(Identity { hole, fingerprint, head }) = identity else {
            return Ok(None);
        };
        let id = FileId { device: meta.dev(), inode: meta.ino() };
        let modified = meta.modified().map(DateTime::<Utc>::from).unwrap_or_else(|_| Utc::now());
        Ok(Some(Probed { path: path.to_path_buf(), file, id, fingerprint, hole, head, compressed, modified }))
    }

    /// Opens a probed file where `start` says ([`Start::Read`]; anything else reads from
    /// the start).
    pub fn open(probed: Probed, start: Start) -> io::Result<LogFile> {
        let Probed { path, mut file, id, fingerprint, hole, head, compressed, .. } = probed;
        let (offset, lines, stored) = match start {
            Start::Read { offset, lines, stored } => (offset, lines, stored),
            Start::CopyOfFollowed | Start::Older => (0, 0, None),
        };
        let mut decoder = None;
        let pos = if compressed {
            let mut d = Box::new(MultiGzDecoder::new(file.try_clone()?));
            // Past the end of the stream: nothing more to read in it.
            let skipped = io::copy(&mut (&mut d).take(offset), &mut io::sink())?;
            decoder = Some(d);
            if skipped < offset {
                offset
            } else {
                skipped
            }
        } else {
            // Past the end means the file was truncated since it was probed: the position
            // stays (so the checkpoint keeps what was read), and the first look finds the
            // file truncated.
            file.seek(SeekFrom::Start(offset))?;
            offset
        };
        Ok(LogFile {
            path,
            file,
            decoder,
            device: id.device,
            inode: id.inode,
            fingerprint,
            hole,
            head,
            pos,
            read_to: pos,
            committed: stored,
            lines,
            splitter: LineSplitter::new(),
            torn: false,
            opened_at: pos,
        })
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

    /// How far the file was read: the position plus a held incomplete line.
    pub fn read_to(&self) -> u64 {
        self.read_to
    }

    /// The NULs it starts with.
    pub fn hole(&self) -> u64 {
        self.hole
    }

    /// Its first bytes after them, as far as they were read (up to HEAD_BYTES).
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Its hole and the bytes after it up to the position: what a copy of what was read
    /// begins with.
    pub fn read_prefix(&self) -> (u64, &[u8]) {
        let n = (self.pos.saturating_sub(self.hole) as usize).min(self.head.len());
        (self.hole, &self.head[..n])
    }

    /// Was the file truncated (copytruncate)? It is when it is shorter than what we read,
    /// or when its first bytes are other ones (truncated and written past our position
    /// before we looked, or a writer's hole of NULs).
    pub fn truncated(&self) -> io::Result<bool> {
        if self.decoder.is_some() {
            return Ok(false);
        }
        if self.torn || self.file.metadata()?.len() < self.read_to {
            return Ok(true);
        }
        self.head_changed()
    }

    /// Are the file's first bytes other ones than those read?
    fn head_changed(&self) -> io::Result<bool> {
        let now = read_up_to(&mut At { file: &self.file, pos: self.hole }, self.head.len())?;
        Ok(now != self.head)
    }

    /// Reads up to `buf.len()` bytes and feeds every completed line to `agg`. Returns the
    /// bytes read (0 at end of file, or once the file was found truncated under a read:
    /// [`LogFile::truncated`] then says so).
    pub fn read_some(
        &mut self,
        buf: &mut [u8],
        agg: &mut Aggregator,
        resolver: &mut Resolver,
        ctx: &ParseContext,
    ) -> io::Result<usize> {
        let n = match &mut self.decoder {
            Some(d) => d.read(buf)?,
            None => self.file.read(buf)?,
        };
        if n == 0 || self.torn {
            return Ok(0);
        }
        // A file truncated and rewritten while we read (copytruncate racing us) gives
        // bytes that are neither the old content nor a line of the new: checked after the
        // read, before any of it counts. The bytes are then read from the copy.
        if self.decoder.is_none() && self.head_changed()? {
            self.torn = true;
            return Ok(0);
        }
        let chunk_start = self.read_to;
        self.read_to += n as u64;
        // The first bytes are kept as read (never read again from the file, which may
        // have been truncated and rewritten meanwhile).
        let have = self.hole + self.head.len() as u64;
        if self.head.len() < HEAD_BYTES && chunk_start <= have && self.read_to > have {
            let from = (have - chunk_start) as usize;
            let to = n.min((self.hole + HEAD_BYTES as u64 - chunk_start) as usize);
            self.head.extend_from_slice(&buf[from..to]);
        }
        let mut lines = 0;
        let end = self.splitter.feed(&buf[..n], |line| {
            lines += 1;
            match line {
                Line::Complete(l) => agg.add_line(resolver, l, ctx),
                Line::TooLong => agg.skip_line(SkipReason::TooLong),
            }
        });
        self.lines += lines;
        if let Some(end) = end {
            self.pos = chunk_start + end as u64;
        }
        Ok(n)
    }

    /// Reads to the end of what is there now.
    pub fn read_to_end(
        &mut self,
        buf: &mut [u8],
        agg: &mut Aggregator,
        resolver: &mut Resolver,
        ctx: &ParseContext,
    ) -> io::Result<()> {
        while self.read_some(buf, agg, resolver, ctx)? > 0 {}
        Ok(())
    }

    /// The checkpoint of where reading is now.
    pub fn checkpoint(&self) -> Checkpoint {
        let (hole, head) = self.read_prefix();
        Checkpoint {
            device: self.device as i64,
            inode: self.inode as i64,
            fingerprint: self.fingerprint.clone(),
            path: self.path.display().to_string(),
            byte_offset: self.pos as i64,
            lines: self.lines as i64,
            hole: hole as i64,
            head: head.to_vec(),
        }
    }

    /// The position to store, if it (or the file it is stored for) changed since the last
    /// commit.
    pub fn advance(&mut self) -> Option<CheckpointAdvance> {
        // Nothing consumed since it was opened: the stored checkpoint says all there is,
        // and must not be rewritten (the file may be another by now, truncated after it
        // was identified; the checkpoint is what finds its copy).
        if self.pos == self.opened_at {
            return None;
        }
        let to = self.checkpoint();
        let changed = match self.committed {
            Some(offset) => to.byte_offset != offset,
            None => self.pos > 0,
        };
        changed.then(|| CheckpointAdvance { to, expected_offset: self.committed.unwrap_or(0) })
    }

    /// The store now holds [`LogFile::advance`]'s position.
    pub fn committed(&mut self, advance: &CheckpointAdvance) {
        self.committed = Some(advance.to.byte_offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_gzip_file_is_identified_by_its_decompressed_content() {
        let dir = tempfile::tempdir().unwrap();
        let content = b"first line\nsecond line\n";
        let plain = dir.path().join("pdns.log.1");
        std::fs::write(&plain, content).unwrap();
        let gz = dir.path().join("pdns.log.2.gz");
        let mut enc = flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        enc.write_all(content).unwrap();
        enc.finish().unwrap();
        let a = LogFile::probe(&plain).unwrap().unwrap();
        let b = LogFile::probe(&gz).unwrap().unwrap();
        assert!(!a.compressed && b.compressed);
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.head, b.head);
        assert_eq!(b.complete_length().unwrap(), Some(content.len() as u64));

        // A stream cut short (still being written) is not complete, and a very short one
        // is not even identified yet.
        let long: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(long.as_bytes()).unwrap();
        let bytes = enc.finish().unwrap();
        let torn = dir.path().join("pdns.log.3.gz");
        std::fs::write(&torn, &bytes[..bytes.len() / 2]).unwrap();
        let probed = LogFile::probe(&torn).unwrap().unwrap();
        assert_eq!(probed.head, long.as_bytes()[..HEAD_BYTES]);
        assert_eq!(probed.complete_length().unwrap(), None);
        std::fs::write(&torn, &bytes[..bytes.len() - 6]).unwrap();
        assert_eq!(LogFile::probe(&torn).unwrap().unwrap().complete_length().unwrap(), None);
        let short = std::fs::read(&gz).unwrap();
        std::fs::write(&torn, &short[..short.len() - 6]).unwrap();
        assert!(LogFile::probe(&torn).unwrap().is_none());
    }

    #[test]
    fn truncation_is_seen_by_length_and_by_first_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pdns.log");
        std::fs::write(&path, b"one\ntwo\n").unwrap();
        let probed = LogFile::probe(&path).unwrap().unwrap();
        let log = LogFile::open(probed, Start::Read { offset: 8, lines: 2, stored: Some(8) }).unwrap();
        assert!(!log.truncated().unwrap());
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"three\n").unwrap();
        assert!(!log.truncated().unwrap(), "appending is no truncation");
        // Truncated and rewritten past our position, with the same first line.
        std::fs::write(&path, b"one\nTWO\nfour\nfive\n").unwrap();
        assert!(log.truncated().unwrap());
    }
}
