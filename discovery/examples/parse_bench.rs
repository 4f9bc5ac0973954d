//! Times `discovery::dns::parse::parse_line` over every line of a file on one thread and
//! prints the best of several passes as JSON (lines/s, MB/s).
//!
//! ```text
//! cargo run --release -p discovery --example parse_bench -- FILE [--reps 5] [--label NAME] [--digest]
//! ```
//!
//! The file is read into memory first; each pass splits it into lines with `memchr` and
//! parses each line, as the ingest does, so the time is splitting plus parsing, no I/O.
//! `--digest` adds a hash of every line's outcome (the record's fields, or the reason it
//! was skipped) to the report, to check that a change to the parsers reads every line as
//! before.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use discovery::dns::parse::parse_line;
use discovery::dns::record::{ParseContext, Parsed};

#[derive(Debug, Default, Clone, Copy)]
struct Pass {
    lines: u64,
    queries: u64,
    /// Sum of the query names' lengths, so the work cannot be optimised away.
    name_bytes: u64,
}

fn pass(data: &[u8], ctx: &ParseContext) -> Pass {
    let mut p = Pass::default();
    let mut start = 0;
    let parse = |line: &[u8], p: &mut Pass| {
        p.lines += 1;
        if let Parsed::Query(q) = parse_line(line, ctx) {
            p.queries += 1;
            p.name_bytes += q.qname.len() as u64 + q.qtype.len() as u64;
            black_box(&q.client);
        }
    };
    for end in memchr::memchr_iter(b'\n', data) {
        parse(&data[start..end], &mut p);
        start = end + 1;
    }
    if start < data.len() {
        parse(&data[start..], &mut p);
    }
    p
}

/// A hash of every line's outcome, in order (the same for the same outcomes, run to run).
fn digest(data: &[u8], ctx: &ParseContext) -> String {
    let mut h = DefaultHasher::new();
    for line in data.split(|&b| b == b'\n') {
        match parse_line(line, ctx) {
            Parsed::Query(q) => (0u8, q.client, &*q.qname, q.qtype, q.time_us).hash(&mut h),
            Parsed::Skipped(reason) => (1u8, reason).hash(&mut h),
        }
    }
    format!("{:016x}", h.finish())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut file, mut reps, mut label, mut want_digest) = (None, 5u32, None, false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--reps" => match args.next().and_then(|v| v.parse().ok()) {
                Some(n) if n > 0 => reps = n,
                _ => {
                    eprintln!("--reps needs a positive number");
                    return ExitCode::from(2);
                }
            },
            "--label" => label = args.next(),
            "--digest" => want_digest = true,
            _ if file.is_none() => file = Some(arg),
            _ => {
                eprintln!("usage: parse_bench FILE [--reps N] [--label NAME] [--digest]");
                return ExitCode::from(2);
            }
        }
    }
    let Some(file) = file else {
        eprintln!("usage: parse_bench FILE [--reps N] [--label NAME] [--digest]");
        return ExitCode::from(2);
    };
    let data = match std::fs::read(&file) {
        Ok(data) => data,
        Err(e) => {
            eprintln!("parse_bench: {file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ctx = ParseContext { now_us: chrono::Utc::now().timestamp_micros(), local_offset_secs: 0 };
    // One warm-up pass, then the timed ones.
    let expected = pass(&data, &ctx);
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        let p = black_box(pass(black_box(&data), &ctx));
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(p.queries, expected.queries);
    }
    let mut report = serde_json::json!({
        "label": label.unwrap_or_else(|| file.clone()),
        "file": file,
        "lines": expected.lines,
        "bytes": data.len(),
        "queries": expected.queries,
        "reps": reps,
        "best_secs": best,
        "lines_per_sec": expected.lines as f64 / best,
        "mb_per_sec": data.len() as f64 / 1e6 / best,
    });
    if want_digest {
        report["digest"] = digest(&data, &ctx).into();
    }
    println!("{report}");
    ExitCode::SUCCESS
}
