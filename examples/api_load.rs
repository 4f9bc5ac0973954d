//! A bounded HTTP load generator for `make bench`: `--connections` keep-alive connections
//! each sending GET requests to one URL back to back for `--secs` seconds, then stopping.
//! Loopback only: a URL whose host is not a loopback IP literal is refused.
//!
//! ```text
//! cargo run --release --example api_load -- --url http://127.0.0.1:PORT/api/v1/broken \
//!     [--connections 4] [--secs 10]
//! ```
//!
//! One request is sent first, alone, to check the answer (200, a JSON array) and to warm
//! the server. Prints one JSON line: requests completed in the window and per second,
//! latency percentiles, non-200 answers and transport errors, response size, and the
//! length of the JSON array answered.

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;

/// Upper bounds, so a typo cannot turn the benchmark into a flood.
const MAX_CONNECTIONS: usize = 64;
const MAX_SECS: u64 = 120;
/// A request slower than this counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct Tally {
    latencies_us: Vec<u64>,
    ok: u64,
    non_200: u64,
    errors: u64,
    bytes: u64,
}

fn parse_args() -> Result<(reqwest::Url, usize, u64), String> {
    let (mut url, mut connections, mut secs) = (None, 4usize, 10u64);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--url" => url = Some(value),
            "--connections" => connections = value.parse().map_err(|_| "--connections needs a number")?,
            "--secs" => secs = value.parse().map_err(|_| "--secs needs a number")?,
            other => return Err(format!("unknown argument {other:?} (see the head of api_load.rs)")),
        }
    }
    let url = url.ok_or("--url is required")?;
    let url = reqwest::Url::parse(&url).map_err(|e| format!("--url {url:?}: {e}"))?;
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let loopback = url.scheme() == "http" && host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(format!("--url {url}: only http:// to a loopback address (127.0.0.0/8, ::1) is allowed"));
    }
    if !(1..=MAX_CONNECTIONS).contains(&connections) {
        return Err(format!("--connections must be 1..={MAX_CONNECTIONS}"));
    }
    if !(1..=MAX_SECS).contains(&secs) {
        return Err(format!("--secs must be 1..={MAX_SECS}"));
    }
    Ok((url, connections, secs))
}

/// A client holding at most one connection, kept alive between requests.
fn client() -> reqwest::Result<reqwest::Client> {
    // reqwest has no crypto provider of its own here (edgewatch uses ring).
    probers::tls::install_default_provider();
    reqwest::Client::builder().no_proxy().pool_max_idle_per_host(1).timeout(REQUEST_TIMEOUT).build()
}

/// Sends requests one after another on one connection until `deadline`.
async fn worker(client: reqwest::Client, url: reqwest::Url, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    while Instant::now() < deadline {
        let start = Instant::now();
        let answer = match client.get(url.clone()).send().await {
            Ok(response) => {
                let status = response.status();
                response.bytes().await.map(|body| (status, body.len()))
            }
            Err(e) => Err(e),
        };
        match answer {
            Ok((status, len)) => {
                tally.latencies_us.push(start.elapsed().as_micros() as u64);
                tally.bytes += len as u64;
                if status == reqwest::StatusCode::OK {
                    tally.ok += 1;
                } else {
                    tally.non_200 += 1;
                }
            }
            Err(_) => tally.errors += 1,
        }
    }
    tally
}

fn percentile_ms(sorted_us: &[u64], p: f64) -> Option<f64> {
    if sorted_us.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil().max(1.0) as usize;
    Some(sorted_us[rank.min(sorted_us.len()) - 1] as f64 / 1e3)
}

async fn run(url: reqwest::Url, connections: usize, secs: u64) -> Result<serde_json::Value, String> {
    let first = client().map_err(|e| e.to_string())?;
    let response = first.get(url.clone()).send().await.map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| format!("GET {url}: reading the body: {e}"))?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("GET {url}: {status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)])));
    }
    let items = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .ok_or_else(|| format!("GET {url}: the answer is not a JSON array"))?;

    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        tasks.spawn(worker(client().map_err(|e| e.to_string())?, url.clone(), deadline));
    }
    let mut all = Tally::default();
    while let Some(done) = tasks.join_next().await {
        let t = done.map_err(|e| format!("a worker failed: {e}"))?;
        all.latencies_us.extend(t.latencies_us);
        all.ok += t.ok;
        all.non_200 += t.non_200;
        all.errors += t.errors;
        all.bytes += t.bytes;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    let done = all.latencies_us.len() as u64;
    Ok(json!({
        "url": url.as_str(),
        "connections": connections,
        "secs": elapsed,
        "requests": done,
        "ok": all.ok,
        "non_200": all.non_200,
        "errors": all.errors,
        "req_per_sec": done as f64 / elapsed,
        "ok_per_sec": all.ok as f64 / elapsed,
        "latency_ms": {
            "p50": percentile_ms(&all.latencies_us, 50.0),
            "p90": percentile_ms(&all.latencies_us, 90.0),
            "p99": percentile_ms(&all.latencies_us, 99.0),
            "max": percentile_ms(&all.latencies_us, 100.0),
        },
        "response_bytes": body.len(),
        "mean_response_bytes": all.bytes.checked_div(done).unwrap_or(0),
        "items": items,
    }))
}

fn main() -> ExitCode {
    let (url, connections, secs) = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("api_load: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("api_load: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(url, connections, secs)) {
        Ok(result) => {
            println!("{result}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("api_load: {e}");
            ExitCode::FAILURE
        }
    }
}
