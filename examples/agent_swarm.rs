//! A load generator of agents for `make bench` and `make soak-agents`: N simulated agents,
//! each with its own node and token, checking in with a real `edgewatch serve` over
//! loopback. A check-in is what an agent does each cycle: `GET …/agents/NODE/targets`,
//! then `POST …/agents/NODE/results` with one result per target (and the node's local
//! figures). The results are made up — no probe packet is ever sent — so the only traffic
//! is HTTP to the loopback server. The fleet (nodes, edges, tokens) comes from
//! `bench/agents_fill.sql`, which writes the `--agents` file.
//!
//! ```text
//! cargo run --release --example agent_swarm -- --url http://127.0.0.1:PORT \
//!     --agents agents.tsv [--cycle 10s] [--run-for 60s] [--connections 32] [--format json]
//! ```
//!
//! Each agent starts at its own offset within the first cycle (so N agents on a 10 s
//! cycle check in at N/10 a second, evenly), then once per cycle; `--cycle 0` makes every
//! agent check in again as soon as its last check-in is done, which with `--connections`
//! bounding how many are in flight measures the server's ceiling. A results post that
//! fails in transport or with a 5xx is sent again, the same body, as the real agent does;
//! `--resend-every K` also sends every K-th body a second time after it was answered (an
//! answer lost on the way), and the server must call all of that copy duplicates.
//!
//! Prints check-ins per second, latency percentiles (the whole check-in; fetch and post
//! apart), errors, and the results the server acknowledged, which a stored-exactly-once
//! check compares with `probe_results` (bench/agents_bench.sh does). Exits 1 when some
//! results were never acknowledged or a resent copy was stored again.

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::Parser;
use probers::agent::wire::{self, Accepted, Local, ResultItem, Results, Targets, API_PREFIX};
use probers::{ProbeKind, ProbeOutcome};
use serde_json::json;
use tokio::sync::{Mutex, Semaphore};

/// A request slower than this counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Tries of one results body (transport errors, 5xx) before it is given up.
const POST_TRIES: u32 = 5;
/// Upper bounds, so a typo cannot turn the benchmark into a flood.
const MAX_CONNECTIONS: usize = 1024;

/// Simulated agents checking in with a running `edgewatch serve` (loopback only).
#[derive(Debug, Parser)]
#[command(
    name = "agent_swarm",
    after_help = "Make a fleet first (an empty, migrated database):\n  \
        psql -X -q -A -t -v agents=5000 -v edges=5 -v tokens=agents.tsv -f bench/agents_fill.sql URL\n\
        then start `edgewatch --database-url URL serve --listen 127.0.0.1:0` and point --url at it.\n\
        bench/agents_bench.sh does all of it (make bench, BENCH_ONLY=agents; make soak-agents)."
)]
struct Args {
    /// The server's base URL: http:// to a loopback address (127.0.0.0/8, ::1).
    #[arg(long)]
    url: String,
    /// The agents: a file of `NODE<TAB>TOKEN` lines (bench/agents_fill.sql writes it).
    #[arg(long)]
    agents: std::path::PathBuf,
    /// Simulate only the first N agents of the file.
    #[arg(long)]
    limit: Option<usize>,
    /// Each agent's cycle (the real one is 2 minutes); 0: back to back.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    cycle: Duration,
    /// How long to run; check-ins under way then are finished, none started.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    run_for: Duration,
    /// Check-ins in flight at most (and keep-alive connections to the server).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Send every K-th results body (counting over all agents) a second time after it
    /// was answered; the server must answer every result of the copy a duplicate. 0: never.
    #[arg(long, default_value_t = 0)]
    resend_every: u64,
    /// A line on stderr this often: check-ins/s and latency of the last period. 0: none.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    progress: Duration,
    /// `text` or `json` (one object, for scripts).
    #[arg(long, default_value = "text")]
    format: String,
}

/// One simulated agent: its node and its token.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Agent {
    node: String,
    token: String,
}

/// The agents of a `NODE<TAB>TOKEN` file; blank lines are skipped, anything else that is
/// not two fields is an error naming the line.
fn parse_agents(text: &str) -> Result<Vec<Agent>, String> {
    let mut agents = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match line.split('\t').collect::<Vec<_>>()[..] {
            [node, token] if !node.is_empty() && token.starts_with("ewa_") => {
                agents.push(Agent { node: node.to_string(), token: token.to_string() })
            }
            _ => return Err(format!("line {}: want NODE<TAB>ewa_TOKEN, got {line:?}", n + 1)),
        }
    }
    if agents.is_empty() {
        return Err("no agents in the file".into());
    }
    Ok(agents)
}

/// When agent `i` of `n` first checks in: evenly over the first cycle.
fn start_offset(i: usize, n: usize, cycle: Duration) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    cycle.mul_f64(i as f64 / n as f64)
}

/// The `p`-th percentile (0-100, nearest rank) of sorted values, in milliseconds.
fn percentile_ms(sorted_us: &[u32], p: f64) -> Option<f64> {
    if sorted_us.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil().max(1.0) as usize;
    Some(f64::from(sorted_us[rank.min(sorted_us.len()) - 1]) / 1e3)
}

/// A made-up, healthy result for every target at `at`: one packet answered, an RTT that
/// depends only on the edge; and the node's load. What a real agent would post.
fn synthesize(targets: &Targets, at: DateTime<Utc>) -> Results {
    let results = targets
        .targets
        .iter()
        .map(|t| {
            let rtt = Duration::from_micros(200 + (t.edge_id.unsigned_abs() % 800));
            ResultItem {
                edge_id: t.edge_id,
                at,
                kind: t.kind,
                port: if t.kind == ProbeKind::Tcp { t.port } else { None },
                outcome: ProbeOutcome::from_samples(1, &[rtt], None),
            }
        })
        .collect();
    let local = Local {
        at: Some(at),
        load1: Some(0.5),
        load5: Some(0.4),
        load15: Some(0.3),
        nginx: None,
        results_dropped: None,
    };
    Results { results, local: Some(local) }
}

/// What one agent, or all of them, did.
#[derive(Debug, Default)]
struct Tally {
    checkins: u64,
    checkin_us: Vec<u32>,
    fetch_us: Vec<u32>,
    post_us: Vec<u32>,
    /// How late check-ins started against their schedule (cycle > 0).
    lag_us: Vec<u32>,
    fetch_errors: u64,
    post_errors: u64,
    refused: u64,
    targets: u64,
    acknowledged: u64,
    unacknowledged: u64,
    duplicates: u64,
    resent: u64,
    resent_duplicates: u64,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.checkins += o.checkins;
        self.checkin_us.extend(o.checkin_us);
        self.fetch_us.extend(o.fetch_us);
        self.post_us.extend(o.post_us);
        self.lag_us.extend(o.lag_us);
        self.fetch_errors += o.fetch_errors;
        self.post_errors += o.post_errors;
        self.refused += o.refused;
        self.targets += o.targets;
        self.acknowledged += o.acknowledged;
        self.unacknowledged += o.unacknowledged;
        self.duplicates += o.duplicates;
        self.resent += o.resent;
        self.resent_duplicates += o.resent_duplicates;
    }
}

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u128::from(u32::MAX)) as u32
}

/// Check-ins done in the current progress period (for the periodic line).
#[derive(Default)]
struct Period {
    checkin_us: Vec<u32>,
    errors: u64,
}

struct Swarm {
    client: reqwest::Client,
    base: reqwest::Url,
    slots: Semaphore,
    resend_every: u64,
    posts: std::sync::atomic::AtomicU64,
    period: Mutex<Period>,
}

enum PostError {
    /// 4xx: the body is refused; sending it again would not help.
    Refused(String),
    /// Transport error or 5xx: worth another try.
    Retry(String),
}

impl Swarm {
    fn url(&self, agent: &Agent, what: &str) -> reqwest::Url {
        let mut url = self.base.clone();
        url.set_path(&format!("{API_PREFIX}/{}/{what}", agent.node));
        url
    }

    async fn fetch(&self, agent: &Agent) -> Result<Targets, String> {
        let response = self
            .client
            .get(self.url(agent, "targets"))
            .bearer_auth(&agent.token)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)])));
        }
        serde_json::from_slice(&body).map_err(|e| format!("the targets are not JSON of the wire shape: {e}"))
    }

    async fn post_once(&self, agent: &Agent, body: &Results) -> Result<Accepted, PostError> {
        let response = self
            .client
            .post(self.url(agent, "results"))
            .bearer_auth(&agent.token)
            .json(body)
            .send()
            .await
            .map_err(|e| PostError::Retry(e.to_string()))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| PostError::Retry(e.to_string()))?;
        let text = || format!("{status}: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)]));
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| PostError::Retry(format!("the answer is not JSON: {e}")))
        } else if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(PostError::Retry(text()))
        } else {
            Err(PostError::Refused(text()))
        }
    }

    /// Posts `body` until it is answered (at most [`POST_TRIES`] times); the answer.
    async fn post(&self, agent: &Agent, body: &Results, tally: &mut Tally) -> Option<Accepted> {
        for attempt in 1..=POST_TRIES {
            match self.post_once(agent, body).await {
                Ok(accepted) => return Some(accepted),
                Err(PostError::Refused(why)) => {
                    tally.refused += 1;
                    eprintln!("agent_swarm: {}: results refused: {why}", agent.node);
                    return None;
                }
                Err(PostError::Retry(why)) => {
                    tally.post_errors += 1;
                    if attempt == POST_TRIES {
                        eprintln!("agent_swarm: {}: results not delivered after {POST_TRIES} tries: {why}", agent.node);
                    } else {
                        tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                    }
                }
            }
        }
        None
    }

    /// One check-in: targets, then one result per target. Returns whether it went through.
    async fn check_in(&self, agent: &Agent, tally: &mut Tally) -> bool {
        let start = Instant::now();
        let targets = match self.fetch(agent).await {
            Ok(t) => t,
            Err(why) => {
                tally.fetch_errors += 1;
                if tally.fetch_errors == 1 {
                    eprintln!("agent_swarm: {}: cannot get targets: {why}", agent.node);
                }
                return false;
            }
        };
        let fetched = Instant::now();
        tally.fetch_us.push(micros(fetched - start));
        let body = synthesize(&targets, wire::store_precision(Utc::now()));
        let n = body.results.len() as u64;
        tally.targets += n;
        let Some(accepted) = self.post(agent, &body, tally).await else {
            tally.unacknowledged += n;
            return false;
        };
        let done = Instant::now();
        tally.post_us.push(micros(done - fetched));
        tally.checkin_us.push(micros(done - start));
        tally.checkins += 1;
        tally.acknowledged += n;
        tally.duplicates += accepted.duplicates as u64;
        let seq = self.posts.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if self.resend_every > 0 && seq.is_multiple_of(self.resend_every) {
            if let Some(again) = self.post(agent, &body, tally).await {
                tally.resent += n;
                tally.resent_duplicates += again.duplicates as u64;
                tally.duplicates += again.duplicates as u64;
            }
        }
        true
    }

    /// One agent's life: check in at its offset, then every cycle, until `deadline`.
    async fn agent(self: Arc<Self>, agent: Agent, offset: Duration, cycle: Duration, deadline: Instant) -> Tally {
        let mut tally = Tally::default();
        let mut due = Instant::now() + offset;
        loop {
            if !cycle.is_zero() {
                tokio::time::sleep_until(due.into()).await;
            }
            if Instant::now() >= deadline {
                break;
            }
            let Ok(_slot) = self.slots.acquire().await else { break };
            // Agents queued for a slot when the time ran out do not start another check-in.
            if Instant::now() >= deadline {
                break;
            }
            if !cycle.is_zero() {
                tally.lag_us.push(micros(Instant::now().saturating_duration_since(due)));
            }
            let before = tally.checkin_us.len();
            let ok = self.check_in(&agent, &mut tally).await;
            let mut period = self.period.lock().await;
            period.checkin_us.extend_from_slice(&tally.checkin_us[before..]);
            period.errors += u64::from(!ok);
            drop(period);
            due += cycle;
        }
        tally
    }
}

fn client(connections: usize) -> reqwest::Result<reqwest::Client> {
    // reqwest has no crypto provider of its own here (edgewatch uses ring).
    probers::tls::install_default_provider();
    reqwest::Client::builder().no_proxy().pool_max_idle_per_host(connections).timeout(REQUEST_TIMEOUT).build()
}

fn check_args(args: &Args) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(&args.url).map_err(|e| format!("--url {:?}: {e}", args.url))?;
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let loopback = url.scheme() == "http" && host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(format!("--url {url}: only http:// to a loopback address (127.0.0.0/8, ::1) is allowed"));
    }
    if !(1..=MAX_CONNECTIONS).contains(&args.connections) {
        return Err(format!("--connections must be 1..={MAX_CONNECTIONS}"));
    }
    if !matches!(args.format.as_str(), "text" | "json") {
        return Err(format!("--format {:?}: text or json", args.format));
    }
    if args.run_for.is_zero() {
        return Err("--run-for must be more than 0".into());
    }
    Ok(url)
}

/// Prints a progress line every `every` until `deadline`.
async fn progress(swarm: Arc<Swarm>, every: Duration, deadline: Instant) {
    let start = Instant::now();
    let mut tick = tokio::time::interval_at((start + every).into(), every);
    while Instant::now() + every / 2 < deadline {
        tick.tick().await;
        let mut period = std::mem::take(&mut *swarm.period.lock().await);
        period.checkin_us.sort_unstable();
        let ms = |p| percentile_ms(&period.checkin_us, p).map_or("-".into(), |v| format!("{v:.1}"));
        eprintln!(
            "agent_swarm: {:>5.0} s: {:.0} check-ins/s, p50 {} ms, p99 {} ms, errors {}",
            start.elapsed().as_secs_f64(),
            period.checkin_us.len() as f64 / every.as_secs_f64(),
            ms(50.0),
            ms(99.0),
            period.errors
        );
    }
}

async fn run(args: Args, base: reqwest::Url) -> Result<(serde_json::Value, bool), String> {
    let text = std::fs::read_to_string(&args.agents).map_err(|e| format!("--agents {}: {e}", args.agents.display()))?;
    let mut agents = parse_agents(&text).map_err(|e| format!("--agents {}: {e}", args.agents.display()))?;
    agents.truncate(args.limit.unwrap_or(usize::MAX));
    let swarm = Arc::new(Swarm {
        client: client(args.connections).map_err(|e| e.to_string())?,
        base,
        slots: Semaphore::new(args.connections),
        resend_every: args.resend_every,
        posts: Default::default(),
        period: Mutex::default(),
    });
    // The first agent's targets alone first: a wrong URL or fleet fails here, clearly.
    let first = swarm.fetch(&agents[0]).await.map_err(|e| format!("{}: cannot get targets: {e}", agents[0].node))?;
    if first.targets.is_empty() {
        return Err(format!("{} has no targets: is the fleet made (bench/agents_fill.sql)?", agents[0].node));
    }
    let start = Instant::now();
    let deadline = start + args.run_for;
    let n = agents.len();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, agent) in agents.into_iter().enumerate() {
        tasks.spawn(swarm.clone().agent(agent, start_offset(i, n, args.cycle), args.cycle, deadline));
    }
    let reporter = (!args.progress.is_zero()).then(|| tokio::spawn(progress(swarm.clone(), args.progress, deadline)));
    let mut all = Tally::default();
    while let Some(done) = tasks.join_next().await {
        all.merge(done.map_err(|e| format!("an agent failed: {e}"))?);
    }
    if let Some(r) = reporter {
        r.abort();
    }
    let secs = start.elapsed().as_secs_f64();
    for v in [&mut all.checkin_us, &mut all.fetch_us, &mut all.post_us, &mut all.lag_us] {
        v.sort_unstable();
    }
    let lat = |v: &[u32]| {
        json!({"p50": percentile_ms(v, 50.0), "p90": percentile_ms(v, 90.0), "p99": percentile_ms(v, 99.0),
               "max": percentile_ms(v, 100.0)})
    };
    let ok = all.unacknowledged == 0 && all.refused == 0 && all.resent_duplicates == all.resent;
    Ok((
        json!({
            "agents": n,
            "cycle_s": args.cycle.as_secs_f64(),
            "connections": args.connections,
            "secs": secs,
            "checkins": all.checkins,
            "checkins_per_sec": all.checkins as f64 / secs,
            "offered_per_sec": if args.cycle.is_zero() { None } else { Some(n as f64 / args.cycle.as_secs_f64()) },
            "latency_ms": lat(&all.checkin_us),
            "fetch_ms": lat(&all.fetch_us),
            "post_ms": lat(&all.post_us),
            "start_lag_ms": if args.cycle.is_zero() { serde_json::Value::Null } else { lat(&all.lag_us) },
            "fetch_errors": all.fetch_errors,
            "post_errors": all.post_errors,
            "refused": all.refused,
            "results_made": all.targets,
            "results_acknowledged": all.acknowledged,
            "results_unacknowledged": all.unacknowledged,
            "duplicates_answered": all.duplicates,
            "results_resent": all.resent,
            "resent_answered_duplicate": all.resent_duplicates,
            "results_per_sec": all.acknowledged as f64 / secs,
        }),
        ok,
    ))
}

fn print_text(v: &serde_json::Value) {
    let ms = |x: &serde_json::Value| x.as_f64().map_or("-".into(), |v| format!("{v:.2} ms"));
    println!(
        "{} agents, cycle {} s, {} connections, {:.1} s",
        v["agents"],
        v["cycle_s"],
        v["connections"],
        v["secs"].as_f64().unwrap_or(0.0)
    );
    println!("check-ins         {} ({:.0}/s)", v["checkins"], v["checkins_per_sec"].as_f64().unwrap_or(0.0));
    for (label, key) in
        [("check-in latency", "latency_ms"), ("  targets fetch", "fetch_ms"), ("  results post", "post_ms")]
    {
        let l = &v[key];
        println!(
            "{label:<17} p50 {}  p90 {}  p99 {}  max {}",
            ms(&l["p50"]),
            ms(&l["p90"]),
            ms(&l["p99"]),
            ms(&l["max"])
        );
    }
    println!(
        "errors            fetch {}, post {} (retried), refused {}",
        v["fetch_errors"], v["post_errors"], v["refused"]
    );
    println!(
        "results           made {}, acknowledged {}, never acknowledged {}; resent {}, answered duplicate {}",
        v["results_made"],
        v["results_acknowledged"],
        v["results_unacknowledged"],
        v["results_resent"],
        v["resent_answered_duplicate"]
    );
}

fn main() -> ExitCode {
    let args = Args::parse();
    let base = match check_args(&args) {
        Ok(url) => url,
        Err(e) => {
            eprintln!("agent_swarm: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("agent_swarm: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json_out = args.format == "json";
    match rt.block_on(run(args, base)) {
        Ok((summary, ok)) => {
            if json_out {
                println!("{summary}");
            } else {
                print_text(&summary);
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                eprintln!("agent_swarm: some results were not acknowledged, refused, or stored twice (see above)");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("agent_swarm: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use probers::agent::wire::Target;

    #[test]
    fn agents_file() {
        let a = parse_agents("ag0.host0\tewa_ab\n\nag1.host0\tewa_cd\n").unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[1], Agent { node: "ag1.host0".into(), token: "ewa_cd".into() });
        for bad in ["ag0.host0 ewa_ab\n", "ag0\tewa_a\textra\n", "ag0\ttoken\n", "\tewa_a\n", "\n"] {
            assert!(parse_agents(bad).is_err(), "{bad:?}");
        }
        assert!(parse_agents("a\tewa_1\nb\n").unwrap_err().starts_with("line 2:"));
    }

    #[test]
    fn offsets_spread_over_the_first_cycle() {
        let cycle = Duration::from_secs(10);
        assert_eq!(start_offset(0, 4, cycle), Duration::ZERO);
        assert_eq!(start_offset(1, 4, cycle), Duration::from_millis(2500));
        assert_eq!(start_offset(3, 4, cycle), Duration::from_millis(7500));
        assert_eq!(start_offset(3, 4, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&v, 50.0), Some(50.0));
        assert_eq!(percentile_ms(&v, 99.0), Some(99.0));
        assert_eq!(percentile_ms(&v, 100.0), Some(100.0));
        assert_eq!(percentile_ms(&v, 0.0), Some(1.0));
        assert_eq!(percentile_ms(&[], 50.0), None);
        assert_eq!(percentile_ms(&[2500], 99.0), Some(2.5));
    }

    #[test]
    fn synthesized_results_pass_the_servers_checks() {
        let targets = Targets {
            node: "ag0.host0".into(),
            interval_s: 120,
            targets: vec![
                Target::new(1, "127.64.0.1".parse().unwrap(), Some(8080)),
                Target::new(2, "127.64.0.2".parse().unwrap(), None),
            ],
        };
        let now = wire::store_precision(Utc::now());
        let mut body = synthesize(&targets, now);
        body.validate(now).unwrap();
        assert_eq!(body.results.len(), 2);
        assert_eq!((body.results[0].kind, body.results[0].port), (ProbeKind::Tcp, Some(8080)));
        assert_eq!((body.results[1].kind, body.results[1].port), (ProbeKind::Icmp, None));
        assert!(body.results.iter().all(|r| r.at == now && r.outcome.received == 1));
        assert_eq!(body.local.unwrap().at, Some(now));
    }
}
