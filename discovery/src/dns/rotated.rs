//! Which files to read, and from where, when a followed log rotates: the decisions, pure.
//!
//! A followed path names one file after another. When edgewatch starts, and whenever the
//! path moves on (renamed away, truncated, deleted), it looks at the path's rotated
//! siblings in the same directory (`pdns.log.1`, `pdns.log-20261204`, `pdns.log.2.gz`, or
//! what `--rotated` says) and finishes what is unread in them:
//! - a sibling whose identity (device, inode, first line) has a checkpoint, and whose first
//!   bytes are still those the checkpoint saw, is the same file, rotated by rename: read
//!   from the checkpoint on;
//! - a sibling whose first bytes are those of a file read before, under another identity,
//!   is a copy (copytruncate) or a compressed form of it: read from that file's checkpoint
//!   on (the furthest, if several match);
//! - a sibling that is a copy of the file still being followed (copied, not yet truncated)
//!   is left alone: the followed file is read instead;
//! - a sibling no checkpoint knows, written since the path was first followed, was at the
//!   path while edgewatch followed it and was rotated away before edgewatch opened it
//!   (created and rotated while edgewatch was down, or between two looks): read whole.
//!   (Every file edgewatch opens gets a checkpoint at once, so a file it opened is never
//!   unknown. Modification times lag the clock by up to a timer tick: "since" allows
//!   [`MTIME_SLACK`].)
//! - older unknown siblings are history from before edgewatch followed the path: left
//!   alone (`dns ingest` reads them on request).

use chrono::{DateTime, Utc};
use graph_store::dns::Checkpoint;

use super::source::FileId;

/// How much earlier than the start of following a file's modification time may be and
/// still count as "since": the kernel stamps files with a clock that lags by a tick.
pub const MTIME_SLACK: chrono::TimeDelta = chrono::TimeDelta::seconds(1);

/// How many of a file's first bytes identify its content.
pub const HEAD_BYTES: usize = 4096;

/// Which names in a followed file's directory are its rotated siblings.
#[derive(Debug, Clone)]
pub struct RotatedNames {
    base: String,
    pattern: Option<glob::Pattern>,
}

impl RotatedNames {
    /// For the followed file named `base`: by default `BASE.*` and `BASE-*` (numbered,
    /// dated, compressed); else the glob `pattern`, in which `{}` stands for `base`.
    pub fn new(base: &str, pattern: Option<&str>) -> Result<RotatedNames, String> {
        if pattern.is_some_and(|p| p.contains('/')) {
            return Err(format!(
                "--rotated {:?}: a pattern for names in the log's own directory, without `/`",
                pattern.unwrap_or_default()
            ));
        }
        let pattern = pattern
            .map(|p| {
                let p = p.replace("{}", &glob::Pattern::escape(base));
                glob::Pattern::new(&p).map_err(|e| format!("--rotated {p:?}: {e}"))
            })
            .transpose()?;
        Ok(RotatedNames { base: base.to_string(), pattern })
    }

    pub fn matches(&self, name: &str) -> bool {
        if name == self.base {
            return false;
        }
        match &self.pattern {
            Some(p) => p.matches(name),
            None => name
                .strip_prefix(self.base.as_str())
                .is_some_and(|rest| rest.len() > 1 && (rest.starts_with('.') || rest.starts_with('-'))),
        }
    }
}

/// A file as found on disk: its identity and its first bytes (decompressed).
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub id: FileId,
    pub fingerprint: &'a str,
    /// The NULs it starts with (a copytruncate's hole).
    pub hole: u64,
    /// Up to [`HEAD_BYTES`] first bytes after them.
    pub head: &'a [u8],
}

/// Where to start reading a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Read from `offset` on (`lines` lines were before it). `stored` is the offset the
    /// store holds under the file's own identity (None: no row yet), which the first
    /// commit must find there.
    Read { offset: u64, lines: u64, stored: Option<i64> },
    /// A copy of the file being followed, not yet truncated: the followed file is read.
    CopyOfFollowed,
    /// Unknown and older than the following of the path.
    Older,
}

fn same_key(c: &Checkpoint, seen: &Seen<'_>) -> bool {
    (c.device, c.inode) == (seen.id.device as i64, seen.id.inode as i64) && c.fingerprint == seen.fingerprint
}

/// Does a file with this hole and head begin with the bytes the checkpoint saw? (A
/// checkpoint stored before heads were kept saw none.)
pub fn head_matches(c: &Checkpoint, hole: u64, head: &[u8]) -> bool {
    c.head.is_empty() || (c.hole == hole as i64 && head.starts_with(&c.head))
}

/// How many first bytes two files (each a hole of NULs and the bytes after it) have in
/// common as far as both were seen: None when they differ within that, or in their holes.
/// A copy made before the original grew further is shorter than what was read of the
/// original: it begins alike.
pub fn alike(hole_a: u64, a: &[u8], hole_b: u64, b: &[u8]) -> Option<usize> {
    let n = a.len().min(b.len());
    (hole_a == hole_b && a[..n] == b[..n]).then_some(n)
}

/// Do a file with this hole and head and the file the checkpoint saw begin alike, for at
/// least a whole line?
pub fn same_start(c: &Checkpoint, hole: u64, head: &[u8]) -> bool {
    alike(c.hole as u64, &c.head, hole, head).is_some_and(|n| c.head[..n].contains(&b'\n'))
}

/// The row stored under the file's own identity, and whether it is this file's (its first
/// bytes unchanged) rather than an earlier file's with a recycled inode.
fn own<'c>(seen: &Seen<'_>, checkpoints: &'c [Checkpoint]) -> (Option<&'c Checkpoint>, bool) {
    match checkpoints.iter().find(|c| same_key(c, seen)) {
        Some(c) => (Some(c), head_matches(c, seen.hole, seen.head)),
        None => (None, false),
    }
}

/// Where to read the file the followed path names now: from its checkpoint when it has
/// one, else from the start (whatever its age: the followed file is always read).
pub fn start_of_followed(seen: &Seen<'_>, checkpoints: &[Checkpoint]) -> Start {
    match own(seen, checkpoints) {
        (Some(c), true) => {
            Start::Read { offset: c.byte_offset as u64, lines: c.lines as u64, stored: Some(c.byte_offset) }
        }
        (row, _) => Start::Read { offset: 0, lines: 0, stored: row.map(|c| c.byte_offset) },
    }
}

/// Is `seen` (a sibling) a copy of `live` (the followed file): the same hole and the same
/// bytes as far as both go, and more than one line of them (one equal line is not enough
/// to call two files the same).
fn is_copy(seen: &Seen<'_>, live: &Seen<'_>) -> bool {
    alike(seen.hole, seen.head, live.hole, live.head)
        .is_some_and(|n| seen.head[..n].iter().filter(|b| **b == b'\n').count() > 1)
}

/// Where to read a rotated sibling (see the module's rules). `modified` is its last
/// change, `live` the file the followed path names now (its identity and first bytes).
pub fn start_of_rotated(
    seen: &Seen<'_>,
    modified: DateTime<Utc>,
    checkpoints: &[Checkpoint],
    live: Option<&Seen<'_>>,
    followed_since: DateTime<Utc>,
) -> Start {
    let (row, ours) = own(seen, checkpoints);
    let stored = row.map(|c| c.byte_offset);
    let read_before = || checkpoints.iter().filter(|c| !same_key(c, seen) && same_start(c, seen.hole, seen.head));
    if !ours {
        if let Some(live) = live {
            let of_live = |c: &Checkpoint| (c.device, c.inode) == (live.id.device as i64, live.id.inode as i64);
            let live_unchanged = |c: &Checkpoint| of_live(c) && head_matches(c, live.hole, live.head);
            if read_before().any(live_unchanged) || (live.id != seen.id && is_copy(seen, live)) {
                return Start::CopyOfFollowed;
            }
        }
    }
    // Its own checkpoint, or that of a file with the same first bytes read under another
    // identity (a copy, a compressed form; or, on a recycled inode, the own row of an
    // earlier file with this content): the furthest is where the content was read to.
    let own = row.filter(|_| ours);
    if let Some(c) = own.into_iter().chain(read_before()).max_by_key(|c| c.byte_offset) {
        return Start::Read { offset: c.byte_offset as u64, lines: c.lines as u64, stored };
    }
    if modified >= followed_since - MTIME_SLACK {
        Start::Read { offset: 0, lines: 0, stored }
    } else {
        Start::Older
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = b"a1 first\na2 second\na3 third\n";
    const B: &[u8] = b"b1 first\nb2 second\n";

    /// The followed file: inode and first bytes (its fingerprint does not matter here).
    fn live(inode: u64, head: &[u8]) -> Seen<'_> {
        Seen { id: id(inode), fingerprint: "", hole: 0, head }
    }

    fn id(inode: u64) -> FileId {
        FileId { device: 1, inode }
    }

    fn checkpoint(inode: u64, content: &[u8], offset: usize) -> Checkpoint {
        Checkpoint {
            device: 1,
            inode: inode as i64,
            fingerprint: fingerprint(content),
            path: "/logs/pdns.log".into(),
            byte_offset: offset as i64,
            lines: content[..offset].iter().filter(|b| **b == b'\n').count() as i64,
            hole: 0,
            head: content[..offset.min(HEAD_BYTES)].to_vec(),
        }
    }

    fn fingerprint(content: &[u8]) -> String {
        let first = content.split(|b| *b == b'\n').next().unwrap();
        String::from_utf8_lossy(first).into_owned()
    }

    fn t(minute: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(1_764_806_400 + i64::from(minute) * 60, 0).unwrap()
    }

    fn read(offset: usize, lines: u64, stored: Option<usize>) -> Start {
        Start::Read { offset: offset as u64, lines, stored: stored.map(|s| s as i64) }
    }

    #[test]
    fn rotated_sibling_decisions() {
        let since = t(10);
        let fp_a = fingerprint(A);
        let fp_b = fingerprint(B);
        let a_at_9 = checkpoint(7, A, 9);
        let a_whole = checkpoint(7, A, A.len());
        let recycled = checkpoint(7, B, 12); // inode 7 once held B
        type Case<'a> = (&'a str, Seen<'a>, DateTime<Utc>, Vec<Checkpoint>, Option<Seen<'a>>, Start);
        let cases: Vec<Case<'_>> = vec![
            (
                "renamed, part read",
                Seen { id: id(7), fingerprint: &fp_a, hole: 0, head: A },
                t(11),
                vec![a_at_9.clone()],
                None,
                read(9, 1, Some(9)),
            ),
            (
                "renamed, all read",
                Seen { id: id(7), fingerprint: &fp_a, hole: 0, head: A },
                t(11),
                vec![a_whole.clone()],
                None,
                read(A.len(), 3, Some(A.len())),
            ),
            (
                "a copy (copytruncate), the original truncated",
                Seen { id: id(8), fingerprint: &fp_a, hole: 0, head: A },
                t(11),
                vec![a_at_9.clone()],
                Some(live(7, b"")),
                read(9, 1, None),
            ),
            (
                "compressed copy: the furthest checkpoint wins",
                Seen { id: id(9), fingerprint: &fp_a, hole: 0, head: A },
                t(11),
                vec![a_at_9.clone(), checkpoint(8, A, 19)],
                None,
                read(19, 2, None),
            ),
            (
                "a copy of the followed file, not yet truncated",
                Seen { id: id(8), fingerprint: &fp_a, hole: 0, head: A },
                t(11),
                vec![a_at_9.clone()],
                Some(live(7, A)),
                Start::CopyOfFollowed,
            ),
            (
                "a copy of the followed file, nothing committed",
                Seen { id: id(8), fingerprint: &fp_a, hole: 0, head: A },
                t(11),
                vec![],
                Some(live(7, A)),
                Start::CopyOfFollowed,
            ),
            (
                "one equal first line is no copy",
                Seen { id: id(8), fingerprint: &fp_a, hole: 0, head: b"a1 first\nzz\n" },
                t(11),
                vec![],
                Some(live(7, b"a1 first\n")),
                read(0, 0, None),
            ),
            (
                "unknown, written while followed",
                Seen { id: id(9), fingerprint: &fp_b, hole: 0, head: B },
                t(11),
                vec![a_at_9.clone()],
                Some(live(7, A)),
                read(0, 0, None),
            ),
            (
                "unknown, written before following",
                Seen { id: id(9), fingerprint: &fp_b, hole: 0, head: B },
                t(9),
                vec![a_at_9.clone()],
                None,
                Start::Older,
            ),
            (
                "unknown, stamped by a lagging clock just before following began",
                Seen { id: id(9), fingerprint: &fp_b, hole: 0, head: B },
                since - chrono::TimeDelta::milliseconds(500),
                vec![a_at_9.clone()],
                None,
                read(0, 0, None),
            ),
            (
                "a recycled inode's own row is behind a copy of the same content read further",
                Seen { id: id(7), fingerprint: &fp_a, hole: 0, head: A },
                t(11),
                vec![a_at_9.clone(), checkpoint(8, A, 19)],
                None,
                read(19, 2, Some(9)),
            ),
            (
                "recycled inode and first line, other bytes",
                Seen { id: id(7), fingerprint: &fp_b, hole: 0, head: b"b1 first\nxx other\n" },
                t(11),
                vec![recycled],
                None,
                read(0, 0, Some(12)),
            ),
        ];
        for (what, seen, modified, checkpoints, live, want) in cases {
            assert_eq!(start_of_rotated(&seen, modified, &checkpoints, live.as_ref(), since), want, "{what}");
        }
    }

    #[test]
    fn files_that_begin_with_nuls_are_told_apart_by_what_follows() {
        // Two files a copytruncate left with 8 KiB of NULs before their first line: the
        // NULs are no identity, the lines after them are.
        let (hole, a, b): (u64, &[u8], &[u8]) = (8192, b"x1 one\nx2 two\n", b"y1 one\ny2 two\n");
        let read_a = Checkpoint {
            byte_offset: hole as i64 + 14,
            lines: 2,
            hole: hole as i64,
            head: a.to_vec(),
            ..checkpoint(7, a, 14)
        };
        let since = t(10);
        let fp = fingerprint(a);
        let copy_of_a = Seen { id: id(8), fingerprint: &fp, hole, head: a };
        let other = Seen { id: id(9), fingerprint: &fp, hole, head: b };
        let a_moved = Seen { id: id(10), fingerprint: &fp, hole: 0, head: a };
        let cps = vec![read_a];
        assert_eq!(start_of_rotated(&copy_of_a, t(9), &cps, None, since), read(8206, 2, None));
        assert_eq!(start_of_rotated(&other, t(9), &cps, None, since), Start::Older);
        assert_eq!(start_of_rotated(&a_moved, t(9), &cps, None, since), Start::Older);
    }

    #[test]
    fn a_copy_shorter_than_what_was_read_is_known() {
        // Copied, then the writer went on, and the tailer read on before the truncation.
        let fp = fingerprint(A);
        let copy = Seen { id: id(8), fingerprint: &fp, hole: 0, head: &A[..19] };
        let cps = vec![checkpoint(7, A, A.len())];
        assert_eq!(start_of_rotated(&copy, t(11), &cps, None, t(10)), read(A.len(), 3, None));
        // Another file with the same first line only is not a copy.
        let other = Seen { id: id(9), fingerprint: &fp, hole: 0, head: b"a1 first\nzz\n" };
        assert_eq!(start_of_rotated(&other, t(11), &cps, None, t(10)), read(0, 0, None));
    }

    #[test]
    fn the_followed_file_resumes_only_when_its_bytes_are_unchanged() {
        let fp_a = fingerprint(A);
        let stored = vec![checkpoint(7, A, 19)];
        let same = Seen { id: id(7), fingerprint: &fp_a, hole: 0, head: A };
        assert_eq!(start_of_followed(&same, &stored), read(19, 2, Some(19)));
        // Truncated and rewritten with the same first line.
        let rewritten = Seen { id: id(7), fingerprint: &fp_a, hole: 0, head: b"a1 first\nnew content\n" };
        assert_eq!(start_of_followed(&rewritten, &stored), read(0, 0, Some(19)));
        let other = Seen { id: id(8), fingerprint: &fp_a, hole: 0, head: A };
        assert_eq!(start_of_followed(&other, &stored), read(0, 0, None));
        // A row from before heads were kept (none) still resumes.
        let legacy = vec![Checkpoint { head: Vec::new(), ..checkpoint(7, A, 19) }];
        assert_eq!(start_of_followed(&same, &legacy), read(19, 2, Some(19)));
    }

    #[test]
    fn rotated_names() {
        let default = RotatedNames::new("pdns.log", None).unwrap();
        for (name, want) in [
            ("pdns.log.1", true),
            ("pdns.log.2.gz", true),
            ("pdns.log-20261204", true),
            ("pdns.log-20261204.gz", true),
            ("pdns.log", false),
            ("pdns.log.", false),
            ("pdns.logger", false),
            ("other.log.1", false),
        ] {
            assert_eq!(default.matches(name), want, "{name}");
        }
        let custom = RotatedNames::new("pdns.log", Some("old-{}.*")).unwrap();
        assert!(custom.matches("old-pdns.log.3"));
        assert!(!custom.matches("pdns.log.3"));
        let err = RotatedNames::new("pdns.log", Some("{}.[")).unwrap_err();
        assert!(err.contains("--rotated"), "{err}");
        let err = RotatedNames::new("pdns.log", Some("old/{}.*")).unwrap_err();
        assert!(err.contains("without `/`"), "{err}");
    }
}
