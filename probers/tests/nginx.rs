//! nginx access logs: status codes from combined-format lines split anywhere across
//! reads, and an access log followed across intervals through appends, truncation and
//! rotation, the way the agent reads it.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use probers::agent::local::AccessLog;
use probers::nginx::{LineSplitter, StatusCounts, MAX_LINE};

/// A directory of the test's own, removed at the end.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("edgewatch-nginx-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn line(status: u16) -> String {
    format!(
        "127.0.0.1 - - [22/Nov/2026:01:43:53 +0000] \"GET /api/v1/x?q=\\x22a\\x22 HTTP/1.1\" {status} 157 \
         \"https://example.com/\" \"Mozilla/5.0 (X11; Linux x86_64)\"\n"
    )
}

fn append(path: &Path, statuses: &[u16]) {
    let mut f = OpenOptions::new().create(true).append(true).open(path).unwrap();
    for s in statuses {
        f.write_all(line(*s).as_bytes()).unwrap();
    }
}

fn counts(log: &mut AccessLog) -> BTreeMap<u16, f64> {
    // Rates times the interval gives back counts; rounding absorbs the clock.
    let rates = log.rates().expect("the log exists");
    rates.by_status.iter().map(|(code, rate)| (*code, (rate * rates.interval_s).round())).collect()
}

#[test]
fn lines_split_anywhere_count_the_same() {
    let text: String = [200, 200, 404, 502, 200, 503, 301].iter().map(|s| line(*s)).collect::<String>() + "junk\n";
    let bytes = text.as_bytes();
    let mut whole = StatusCounts::default();
    for l in text.lines() {
        whole.add_line(l.as_bytes());
    }
    assert_eq!((whole.requests(), whole.errors(), whole.malformed), (7, 2, 1));
    for chunk in [1, 2, 3, 7, 64, 100, 1000] {
        let (mut counts, mut splitter) = (StatusCounts::default(), LineSplitter::default());
        for piece in bytes.chunks(chunk) {
            splitter.feed(piece, |l| counts.add_line(l));
        }
        assert_eq!(counts, whole, "chunks of {chunk}");
        assert_eq!(splitter.pending(), 0);
    }
}

#[test]
fn overlong_lines_are_skipped_not_buffered() {
    let mut splitter = LineSplitter::default();
    let mut counts = StatusCounts::default();
    let long = vec![b'x'; MAX_LINE + 10];
    for piece in long.chunks(4096) {
        splitter.feed(piece, |l| counts.add_line(l));
        assert!(splitter.pending() <= MAX_LINE);
    }
    splitter.feed(b"\n", |l| counts.add_line(l));
    splitter.feed(line(200).as_bytes(), |l| counts.add_line(l));
    assert_eq!(splitter.too_long, 1);
    assert_eq!((counts.requests(), counts.malformed), (1, 0));
}

#[test]
fn the_log_is_followed_through_truncation_and_rotation() {
    let dir = TempDir::new("follow");
    let path = dir.path().join("access.log");
    append(&path, &[200, 200, 200]);

    // What was there at start is history, not a rate.
    let mut log = AccessLog::new(&path);
    assert_eq!(counts(&mut log), BTreeMap::new());

    append(&path, &[200, 502]);
    assert_eq!(counts(&mut log), BTreeMap::from([(200, 1.0), (502, 1.0)]));

    // A line written in two parts counts once, when complete.
    let half = line(404);
    let (a, b) = half.split_at(40);
    OpenOptions::new().append(true).open(&path).unwrap().write_all(a.as_bytes()).unwrap();
    assert_eq!(counts(&mut log), BTreeMap::new());
    OpenOptions::new().append(true).open(&path).unwrap().write_all(b.as_bytes()).unwrap();
    assert_eq!(counts(&mut log), BTreeMap::from([(404, 1.0)]));

    // copytruncate: the file starts over.
    std::fs::write(&path, line(503)).unwrap();
    assert_eq!(counts(&mut log), BTreeMap::from([(503, 1.0)]));

    // Rotation: the old file gets its last lines, then a new one appears.
    append(&path, &[200]);
    std::fs::rename(&path, dir.path().join("access.log.1")).unwrap();
    append(&dir.path().join("access.log.1"), &[500]);
    append(&path, &[201, 201]);
    assert_eq!(counts(&mut log), BTreeMap::from([(200, 1.0), (201, 2.0), (500, 1.0)]));

    append(&path, &[200]);
    assert_eq!(counts(&mut log), BTreeMap::from([(200, 1.0)]));
}

#[test]
fn a_log_that_appears_later_is_read_from_its_start() {
    let dir = TempDir::new("later");
    let path = dir.path().join("access.log");
    let mut log = AccessLog::new(&path);
    assert!(log.rates().is_none(), "no file, no figures");
    append(&path, &[200, 500]);
    assert_eq!(counts(&mut log), BTreeMap::from([(200, 1.0), (500, 1.0)]));
}
