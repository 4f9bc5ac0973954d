//! Traces every destination of a file (one address a line) or of the command line with
//! `probers::trace::Tracer`, one cycle or several, and prints JSON figures per cycle: the
//! edgewatch side of the path-tracing benchmark (`bench/trace_bench.sh`).
//!
//! ```text
//! trace_bench --allow PREFIX[,PREFIX…] [--targets FILE] [DEST…] [--probes 3] [--pps 1000]
//!             [--timeout-ms 1000] [--interval-ms 1000] [--max-ttl 30] [--cycles 1]
//!             [--paths FILE] [--worker-threads N] [--own-thread]
//! ```
//!
//! Needs raw sockets (root or `CAP_NET_RAW`). Settings not given are the tracer's defaults;
//! the runtime is tokio's multi-threaded one, a worker per core unless `--worker-threads`;
//! `--own-thread` runs the tracer on a thread of its own, as the agents and workers do
//! (`TracerBuilder::own_thread`).
//! Per cycle one JSON line: targets, reached, `hops` (TTLs that answered, summed over the
//! traces), `path_ttls` (the highest answering TTL, summed), probes sent, answers, errors and
//! the cycle's wall time. `--paths FILE` writes the last cycle's traces, one a line:
//! `DEST reached|not-reached ANSWERING_TTLS HIGHEST_ANSWERING_TTL`.

use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use probers::trace::{TraceTarget, Tracer};
use probers::AllowList;

const USAGE: &str = "usage: trace_bench --allow PREFIX[,PREFIX...] [--targets FILE] [DEST...] [--probes N] \
                     [--pps N] [--timeout-ms N] [--interval-ms N] [--max-ttl N] [--cycles N] [--paths FILE] \
                     [--worker-threads N] [--own-thread]";

#[derive(Debug, Default)]
struct Args {
    allow: Option<AllowList>,
    targets: Vec<IpAddr>,
    probes: Option<u32>,
    pps: Option<u32>,
    timeout: Option<Duration>,
    interval: Option<Duration>,
    max_ttl: Option<u8>,
    cycles: u32,
    paths: Option<String>,
    worker_threads: Option<usize>,
    own_thread: bool,
}

fn value<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, String> {
    let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
    v.parse().map_err(|_| format!("{flag}: bad value {v:?}"))
}

fn read_targets(file: &str, into: &mut Vec<IpAddr>) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        into.push(line.parse().map_err(|_| format!("{file}:{}: not an address: {line:?}", n + 1))?);
    }
    Ok(())
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { cycles: 1, ..Args::default() };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--allow" => {
                let list: String = value(&arg, args.next())?;
                let nets: Vec<&str> = list.split(',').collect();
                a.allow = Some(AllowList::parse(&nets).map_err(|e| format!("--allow: {e}"))?);
            }
            "--targets" => read_targets(&value::<String>(&arg, args.next())?, &mut a.targets)?,
            "--probes" => a.probes = Some(value(&arg, args.next())?),
            "--pps" => a.pps = Some(value(&arg, args.next())?),
            "--timeout-ms" => a.timeout = Some(Duration::from_millis(value(&arg, args.next())?)),
            "--interval-ms" => a.interval = Some(Duration::from_millis(value(&arg, args.next())?)),
            "--max-ttl" => a.max_ttl = Some(value(&arg, args.next())?),
            "--cycles" => a.cycles = value(&arg, args.next())?,
            "--paths" => a.paths = Some(value(&arg, args.next())?),
            "--worker-threads" => a.worker_threads = Some(value(&arg, args.next())?),
            "--own-thread" => a.own_thread = true,
            _ if !arg.starts_with('-') => a.targets.push(value("DEST", Some(arg))?),
            _ => return Err(format!("unknown option {arg}")),
        }
    }
    if a.allow.is_none() || a.targets.is_empty() || a.cycles == 0 || a.worker_threads == Some(0) {
        return Err("--allow, at least one destination, --cycles ≥ 1 and --worker-threads ≥ 1 are needed".into());
    }
    Ok(a)
}

fn tracer(a: &Args) -> probers::Result<Tracer> {
    let mut b = Tracer::builder(a.allow.clone().expect("checked by parse_args")).own_thread(a.own_thread);
    if let Some(n) = a.probes {
        b = b.probes(n);
    }
    if let Some(n) = a.pps {
        b = b.pps(n);
    }
    if let Some(t) = a.timeout {
        b = b.timeout(t);
    }
    if let Some(t) = a.interval {
        b = b.interval(t);
    }
    if let Some(t) = a.max_ttl {
        b = b.max_ttl(t);
    }
    b.build()
}

/// One cycle's figures, and its traces for `--paths`.
async fn cycle(tracer: &Tracer, a: &Args, n: u32) -> (serde_json::Value, Vec<String>) {
    let before = tracer.stats();
    let started = Instant::now();
    let runs = tracer.trace_all(a.targets.iter().map(|&ip| TraceTarget::new(ip)).collect()).await;
    let wall = started.elapsed().as_secs_f64();
    let after = tracer.stats();
    let (mut reached, mut hops, mut path_ttls, mut errors, mut lines) = (0u64, 0u64, 0u64, 0u64, Vec::new());
    for (target, run) in &runs {
        match run {
            Ok(run) => {
                let answering: Vec<u8> = run.hops.iter().filter(|h| !h.addrs.is_empty()).map(|h| h.ttl).collect();
                let last = answering.iter().copied().max().unwrap_or(0);
                reached += u64::from(run.reached);
                hops += answering.len() as u64;
                path_ttls += u64::from(last);
                let state = if run.reached { "reached" } else { "not-reached" };
                lines.push(format!("{} {state} {} {last}", target.ip, answering.len()));
            }
            Err(e) => {
                errors += 1;
                eprintln!("trace_bench: {target}: {e}");
                lines.push(format!("{} error 0 0", target.ip));
            }
        }
    }
    let s = tracer.settings();
    let figures = serde_json::json!({
        "tool": "edgewatch",
        "cycle": n,
        "targets": runs.len(),
        "reached": reached,
        "hops": hops,
        "path_ttls": path_ttls,
        "probes_sent": after.probes_sent - before.probes_sent,
        "answers": after.answers_received - before.answers_received,
        "errors": errors,
        "wall_secs": wall,
        "probes": s.probes,
        "pps": s.pps,
        "timeout_ms": s.timeout.as_millis() as u64,
        "interval_ms": s.interval.as_millis() as u64,
        "max_ttl": s.max_ttl,
        "worker_threads": a.worker_threads,
        "own_thread": a.own_thread,
    });
    (figures, lines)
}

fn write_paths(file: &str, lines: &[String]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(file)?);
    for line in lines {
        writeln!(f, "{line}")?;
    }
    f.flush()
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("trace_bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = a.worker_threads {
        runtime.worker_threads(n);
    }
    match runtime.enable_all().build() {
        Ok(runtime) => runtime.block_on(run(&a)),
        Err(e) => {
            eprintln!("trace_bench: runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the tracer, runs the cycles and prints their figures.
async fn run(a: &Args) -> ExitCode {
    let tracer = match tracer(a) {
        Ok(tracer) => tracer,
        Err(e) => {
            eprintln!("trace_bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut last = Vec::new();
    for n in 1..=a.cycles {
        let (figures, lines) = cycle(&tracer, a, n).await;
        println!("{figures}");
        last = lines;
    }
    tracer.shutdown().await;
    if let Some(file) = &a.paths {
        if let Err(e) = write_paths(file, &last) {
            eprintln!("trace_bench: {file}: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
