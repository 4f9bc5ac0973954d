//! nginx access logs in the `combined` format (a site's own `log_format`:
//! [`crate::nginx_format`]): the status code of each line, counts by status over the bytes
//! read in one interval, and the rates an agent reports. Pure: bytes
//! in, numbers out (reading the file is [`crate::agent::local`]'s job).
//!
//! ```text
//! 127.0.0.1 - alice [22/Nov/2026:01:43:53 +0000] "GET /a HTTP/1.1" 502 157 "-" "curl/8.5"
//! ```
//! nginx escapes `"` inside a field as `\x22`, so the request ends at the next quote; the
//! status is the three digits after it.

use std::collections::BTreeMap;

use crate::nginx_format::LineFormat;

/// The most bytes one line may have; longer ones are counted as malformed and skipped.
pub const MAX_LINE: usize = 64 * 1024;

/// The status code of one `combined` (or `common`) line, without its newline; `None`
/// when the line is not in that format.
pub fn status_of(line: &[u8]) -> Option<u16> {
    let start = find(line, b"] \"")? + 3;
    let rest = &line[start..];
    let end = rest.iter().position(|&b| b == b'"')?;
    let after = rest.get(end + 1..)?;
    let digits = after.strip_prefix(b" ")?;
    let code = digits.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) || !matches!(digits.get(3), None | Some(b' ')) {
        return None;
    }
    let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    (100..=599).contains(&status).then_some(status)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Requests by status code over some stretch of a log, and the lines that were not
/// access-log lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub by_status: BTreeMap<u16, u64>,
    pub malformed: u64,
}

impl StatusCounts {
    /// Counts one `combined` line (without its newline). Empty lines are ignored.
    pub fn add_line(&mut self, line: &[u8]) {
        self.add_line_in(line, &LineFormat::Combined);
    }

    /// Counts one line of `format` (without its newline). Empty lines are ignored.
    pub fn add_line_in(&mut self, line: &[u8], format: &LineFormat) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return;
        }
        match format.status_of(line) {
            Some(status) => *self.by_status.entry(status).or_default() += 1,
            None => self.malformed += 1,
        }
    }

    /// All requests counted.
    pub fn requests(&self) -> u64 {
        self.by_status.values().sum()
    }

    /// Requests answered with a server error (5xx).
    pub fn errors(&self) -> u64 {
        self.by_status.range(500..).map(|(_, n)| n).sum()
    }

    /// The counts as rates over `seconds`; `None` when `seconds` is not positive.
    pub fn rates(&self, seconds: f64) -> Option<Rates> {
        if !(seconds.is_finite() && seconds > 0.0) {
            return None;
        }
        Some(Rates {
            interval_s: seconds,
            requests_per_s: self.requests() as f64 / seconds,
            errors_per_s: self.errors() as f64 / seconds,
            by_status: self.by_status.iter().map(|(code, n)| (*code, *n as f64 / seconds)).collect(),
        })
    }
}

/// Request rates over one interval: all requests, server errors (5xx), and each status
/// code seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Rates {
    pub interval_s: f64,
    pub requests_per_s: f64,
    pub errors_per_s: f64,
    pub by_status: BTreeMap<u16, f64>,
}

/// Splits bytes arriving in chunks into complete lines, keeping a partial last line for
/// the next chunk. Lines over [`MAX_LINE`] are dropped (and counted), never buffered whole.
#[derive(Debug, Clone, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
    /// The partial line has grown past [`MAX_LINE`]: skip to its end.
    skipping: bool,
    /// Lines dropped for being too long.
    pub too_long: u64,
}

impl LineSplitter {
    /// Feeds a chunk; calls `line` for every line it completes (without the newline).
    pub fn feed(&mut self, mut chunk: &[u8], mut line: impl FnMut(&[u8])) {
        while let Some(nl) = chunk.iter().position(|&b| b == b'\n') {
            let (head, rest) = (&chunk[..nl], &chunk[nl + 1..]);
            if self.skipping {
                self.skipping = false;
            } else if self.partial.is_empty() {
                if head.len() > MAX_LINE {
                    self.too_long += 1;
                } else {
                    line(head);
                }
            } else if self.partial.len() + head.len() > MAX_LINE {
                self.too_long += 1;
                self.partial.clear();
            } else {
                self.partial.extend_from_slice(head);
                line(&self.partial);
                self.partial.clear();
            }
            chunk = rest;
        }
        if self.skipping {
            return;
        }
        if self.partial.len() + chunk.len() > MAX_LINE {
            self.too_long += 1;
            self.partial.clear();
            self.skipping = true;
        } else {
            self.partial.extend_from_slice(chunk);
        }
    }

    /// Bytes of a line not yet complete.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }

    /// Forgets a partial line (the file it came from was truncated or replaced).
    pub fn reset(&mut self) {
        self.partial.clear();
        self.skipping = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        let cases: [(&str, Option<u16>); 9] = [
            (r#"127.0.0.1 - - [22/Nov/2026:01:43:53 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.5""#, Some(200)),
            (r#"::1 - bob [22/Nov/2026:01:43:53 +0100] "POST /x?a=\x22b HTTP/2.0" 502 0 "-" "-""#, Some(502)),
            (r#"10.0.0.1 - - [22/Nov/2026:01:43:53 +0000] "-" 400 0 "-" "-""#, Some(400)),
            (r#"10.0.0.1 - - [22/Nov/2026:01:43:53 +0000] "GET / HTTP/1.1" 404"#, Some(404)),
            (r#"10.0.0.1 - - [22/Nov/2026:01:43:53 +0000] "GET / HTTP/1.1" 2000 1 "-" "-""#, None),
            (r#"10.0.0.1 - - [22/Nov/2026:01:43:53 +0000] "GET / HTTP/1.1" 099 1 "-" "-""#, None),
            (r#"10.0.0.1 - - [22/Nov/2026:01:43:53 +0000] "GET / HTTP/1.1 200 1"#, None),
            ("2026/11/22 01:43:53 [error] 12#12: *1 connect() failed", None),
            ("", None),
        ];
        for (line, want) in cases {
            assert_eq!(status_of(line.as_bytes()), want, "{line}");
        }
    }

    #[test]
    fn rates_and_errors() {
        let mut counts = StatusCounts::default();
        for status in [200, 200, 200, 404, 502, 503] {
            counts.add_line(
                format!(r#"1.2.3.4 - - [22/Nov/2026:01:43:53 +0000] "GET / HTTP/1.1" {status} 1 "-" "-""#).as_bytes(),
            );
        }
        counts.add_line(b"garbage");
        counts.add_line(b"");
        assert_eq!((counts.requests(), counts.errors(), counts.malformed), (6, 2, 1));
        let rates = counts.rates(2.0).unwrap();
        assert_eq!((rates.requests_per_s, rates.errors_per_s), (3.0, 1.0));
        assert_eq!(rates.by_status, BTreeMap::from([(200, 1.5), (404, 0.5), (502, 0.5), (503, 0.5)]));
        assert!(counts.rates(0.0).is_none());
    }
}
