//! Cutting a byte stream into lines: complete lines are handed over, the start of an
//! incomplete last line is held until its end arrives, and a line longer than
//! [`MAX_LINE`] is reported as too long without being held whole. Pure: bytes in, lines
//! out; the readers in [`super::source`] feed it.

use super::record::MAX_LINE;

/// What the splitter hands over for each line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// A complete line, without its newline.
    Complete(&'a [u8]),
    /// A line longer than [`MAX_LINE`] (its bytes were dropped).
    TooLong,
}

/// The state between two chunks: the start of an incomplete line.
#[derive(Debug, Default)]
pub struct LineSplitter {
    /// The start of an incomplete line (never more than MAX_LINE bytes).
    pending: Vec<u8>,
    /// Inside a line longer than MAX_LINE: discard up to its newline.
    skipping: bool,
}

impl LineSplitter {
    pub fn new() -> Self {
        LineSplitter::default()
    }

    /// Forgets a held incomplete line (the stream starts again).
    pub fn reset(&mut self) {
        self.pending.clear();
        self.skipping = false;
    }

    /// Feeds one chunk; `on_line` hears every line it completes. Returns the offset in
    /// `data` just past the last newline, if it had one: bytes before it are consumed,
    /// bytes after it are the held start of the next line.
    pub fn feed(&mut self, data: &[u8], mut on_line: impl FnMut(Line<'_>)) -> Option<usize> {
        let mut at = 0;
        let mut consumed = None;
        while let Some(i) = memchr::memchr(b'\n', &data[at..]) {
            let end = at + i;
            if self.skipping {
                self.skipping = false;
                on_line(Line::TooLong);
            } else if !self.pending.is_empty() {
                if self.pending.len() + (end - at) > MAX_LINE {
                    on_line(Line::TooLong);
                } else {
                    self.pending.extend_from_slice(&data[at..end]);
                    on_line(Line::Complete(&self.pending));
                }
                self.pending.clear();
            } else if end - at > MAX_LINE {
                on_line(Line::TooLong);
            } else {
                on_line(Line::Complete(&data[at..end]));
            }
            at = end + 1;
            consumed = Some(at);
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
        consumed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` and returns the lines (`None` for too long) and each chunk's result.
    fn split(chunks: &[&[u8]]) -> (Vec<Option<Vec<u8>>>, Vec<Option<usize>>) {
        let mut splitter = LineSplitter::new();
        let mut lines = Vec::new();
        let mut ends = Vec::new();
        for chunk in chunks {
            ends.push(splitter.feed(chunk, |line| {
                lines.push(match line {
                    Line::Complete(l) => Some(l.to_vec()),
                    Line::TooLong => None,
                })
            }));
        }
        (lines, ends)
    }

    #[test]
    fn lines_across_chunks() {
        let long = vec![b'x'; MAX_LINE + 1];
        let mut long_line = long.clone();
        long_line.push(b'\n');
        type Case<'a> = (Vec<&'a [u8]>, Vec<Option<&'a [u8]>>, Vec<Option<usize>>);
        let table: Vec<Case<'_>> = vec![
            (vec![b"a\nb\n"], vec![Some(b"a"), Some(b"b")], vec![Some(4)]),
            (vec![b"ab", b"c\nd"], vec![Some(b"abc")], vec![None, Some(2)]),
            (vec![b"a", b"", b"b\n"], vec![Some(b"ab")], vec![None, None, Some(2)]),
            (vec![b"\n\n"], vec![Some(b""), Some(b"")], vec![Some(2)]),
            // NULs before the first line of a copytruncated file are not content.
            (vec![b"\0\0\0", b"a\n"], vec![Some(b"a")], vec![None, Some(2)]),
            (vec![b"\0\0a", b"\n"], vec![Some(b"a")], vec![None, Some(1)]),
            (vec![&long_line, b"ok\n"], vec![None, Some(b"ok")], vec![Some(MAX_LINE + 2), Some(3)]),
            (vec![&long, b"more\nok\n"], vec![None, Some(b"ok")], vec![None, Some(8)]),
            (vec![&long[..10], &long[10..], b"\n"], vec![None], vec![None, None, Some(1)]),
        ];
        for (chunks, want_lines, want_ends) in table {
            let (lines, ends) = split(&chunks);
            let want: Vec<Option<Vec<u8>>> = want_lines.into_iter().map(|l| l.map(<[u8]>::to_vec)).collect();
            assert_eq!(lines, want, "{chunks:?}");
            assert_eq!(ends, want_ends, "{chunks:?}");
        }
    }

    #[test]
    fn reset_forgets_the_held_line() {
        let mut splitter = LineSplitter::new();
        assert_eq!(splitter.feed(b"torn", |_| panic!("no line yet")), None);
        splitter.reset();
        let mut got = Vec::new();
        splitter.feed(b"new\n", |l| got.push(format!("{l:?}")));
        assert_eq!(got, vec![format!("{:?}", Line::Complete(b"new"))]);
    }
}
