//! The agent: runs beside a container, asks the server for that node's targets every
//! interval, probes them from where the traffic starts, and posts the results with the
//! node's local figures (load average; nginx request and error rates when given an
//! access log).
//!
//! Probing never waits for the server: one task probes on the interval and puts each
//! cycle's report in a bounded buffer; another delivers the buffer oldest first, backing
//! off (exponentially, with jitter) while the server cannot take it. When the server is
//! unreachable the agent keeps probing the targets it last had, and the reports made
//! meanwhile are delivered once it is back. The server recognises a report sent twice
//! (after an answer that got lost), so resending is always safe. When the buffer is full
//! the oldest reports go first, and are counted.
//!
//! TLS: an `https://` server is verified against the `--ca` bundle, else the system's
//! roots (rustls, ring; see [`crate::tls`]). A handshake that fails on first contact
//! (unknown CA, name mismatch) stops the agent with the reason before any token is sent;
//! plain `http://` to a server off this host is refused before anything is sent, unless
//! `insecure_http`.
//!
//! - [`wire`]: the API's JSON and the checks the server applies to it.
//! - [`local`]: load average and the nginx access log.
//! - [`trace_wire`], `traces`: path tracing from this host — the pairs the server leases
//!   to the agent are traced beside the probing, and the runs delivered the same way
//!   (kept, bounded, while the server cannot take them). Needs raw sockets; without them
//!   the agent says so once and only probes.

pub mod failover;
pub mod local;
pub mod spool;
pub mod trace_wire;
mod traces;
pub mod wire;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use reqwest::{StatusCode, Url};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::error::{Error, Result};
use crate::Engine;
use crate::ProbeKind;
use local::AccessLog;
use spool::{Replayed, Spool, SpooledReport};
use wire::{Accepted, ErrorBody, Local, ResultItem, Results, Targets};

/// How an agent behaves. [`AgentConfig::new`] gives the defaults.
#[derive(Clone)]
pub struct AgentConfig {
    /// The server's base URL, e.g. `http://127.0.0.1:8440`.
    pub server: String,
    /// This agent's node, as in the CMDB.
    pub node: String,
    /// The token made by `edgewatch agent-token create NODE`. Never logged.
    pub token: String,
    /// Time between two cycles.
    pub interval: Duration,
    /// nginx access log to report rates from.
    pub nginx_access_log: Option<PathBuf>,
    /// Its format: `combined` (the default) or the site's own `log_format`.
    pub nginx_log_format: crate::nginx_format::LineFormat,
    /// Where to read the load average.
    pub loadavg: PathBuf,
    /// Results kept while the server cannot take them, at most (oldest dropped first).
    pub max_buffered_results: usize,
    /// Results per request at most (halved while the server answers 413).
    pub max_results_per_post: usize,
    /// How long one request may take.
    pub request_timeout: Duration,
    /// The longest wait between two delivery attempts.
    pub max_backoff: Duration,
    /// How long to keep trying to deliver at shutdown.
    pub final_flush: Duration,
    /// Trace the paths the server leases to this host (when raw sockets allow).
    pub trace: bool,
    /// Trace runs kept while the server cannot take them, at most (oldest dropped first).
    pub max_buffered_runs: usize,
    /// The roots an `https://` server's certificate is verified against.
    pub roots: crate::tls::Roots,
    /// Allow plain `http://` to a server that is not on this host's loopback.
    pub insecure_http: bool,
    /// Where reports the server has not acknowledged are kept on disk (a directory per
    /// server and node is made under it: [`spool::dir_for`]); `None`: in memory only.
    pub spool: Option<PathBuf>,
    /// The spool's cap in bytes: past it the oldest reports go, counted.
    pub spool_max: u64,
}

impl std::fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentConfig")
            .field("server", &self.server)
            .field("node", &self.node)
            .field("token", &"<hidden>")
            .field("interval", &self.interval)
            .field("nginx_access_log", &self.nginx_access_log)
            .field("max_buffered_results", &self.max_buffered_results)
            .field("roots", &self.roots)
            .field("insecure_http", &self.insecure_http)
            .finish_non_exhaustive()
    }
}

impl AgentConfig {
    pub fn new(server: impl Into<String>, node: impl Into<String>, token: impl Into<String>) -> Self {
        AgentConfig {
            server: server.into(),
            node: node.into(),
            token: token.into(),
            interval: Duration::from_secs(120),
            nginx_access_log: None,
            nginx_log_format: crate::nginx_format::LineFormat::Combined,
            loadavg: PathBuf::from(local::LOADAVG),
            max_buffered_results: 100_000,
            max_results_per_post: 1000,
            request_timeout: Duration::from_secs(10),
            max_backoff: Duration::from_secs(30),
            final_flush: Duration::from_secs(5),
            trace: true,
            max_buffered_runs: 10_000,
            roots: crate::tls::Roots::System,
            insecure_http: false,
            spool: None,
            spool_max: 64 << 20,
        }
    }

    /// Sets the interval, and the back-off ceiling that goes with it (four intervals,
    /// within 2–30 s): no point waiting much longer than a few cycles between attempts.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self.max_backoff = (interval * 4).clamp(Duration::from_secs(2), Duration::from_secs(30));
        self
    }

    /// Checks the settings (the URL, the loopback rule for plain HTTP, the name, the
    /// token) without contacting anyone; [`run_agent`] checks them too.
    pub fn check(&self) -> Result<()> {
        self.validate().map(|_| ())
    }

    /// The servers given (`--server URL1,URL2,…`), in the order given.
    pub fn servers(&self) -> Vec<&str> {
        self.server.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()
    }

    /// Each server's base URL, checked.
    fn validate(&self) -> Result<Vec<Url>> {
        let servers = self.servers();
        if servers.is_empty() {
            return Err(Error::setting("server", "no server given, e.g. https://edgewatch.example.com:8440"));
        }
        let bases = servers.into_iter().map(|s| self.base_url(s)).collect::<Result<Vec<Url>>>()?;
        if self.node.is_empty() {
            return Err(Error::setting("name", "the node name is empty"));
        }
        if self.token.is_empty() || self.token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::setting("token", "empty, or has spaces or control characters"));
        }
        if self.interval < Duration::from_millis(100) {
            return Err(Error::setting("interval", format!("{:?} is under 100 ms", self.interval)));
        }
        if self.max_buffered_results == 0 || self.max_results_per_post == 0 {
            return Err(Error::setting("max_buffered_results", "the buffer and the batch need room for a result"));
        }
        Ok(bases)
    }

    fn base_url(&self, server: &str) -> Result<Url> {
        let mut base = Url::parse(server).map_err(|e| {
            Error::setting("server", format!("{server:?} is not a URL ({e}), e.g. http://127.0.0.1:8440"))
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::setting("server", format!("{server:?} is not an http:// URL")));
        }
        let host = base.host_str().unwrap_or_default();
        if base.scheme() == "http" && !self.insecure_http && !crate::tls::is_loopback_host(host) {
            return Err(Error::PlainHttp { server: server.to_string(), host: host.to_string() });
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(base)
    }
}

/// What an agent did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentTotals {
    pub cycles: u64,
    /// Results made by probing.
    pub results_made: u64,
    /// Results the server accepted (resends it recognised included).
    pub results_delivered: u64,
    /// Results dropped because the buffer was full or they grew too old.
    pub results_dropped: u64,
    /// Results the server refused as invalid (400/413) and that were not sent again.
    pub results_refused: u64,
    /// Requests that failed and were retried later.
    pub failed_requests: u64,
    /// Results still in the buffer when the agent stopped (kept in the spool when there is
    /// one: sent at the next start).
    pub undelivered: u64,
    /// Results read back from the spool at start (made before a restart).
    pub results_restored: u64,
    /// Trace runs made, delivered (resends the server recognised included), and lost
    /// (buffer full, refused, or still held at the end).
    pub runs_traced: u64,
    pub runs_delivered: u64,
    pub runs_lost: u64,
}

/// One cycle's report, as buffered.
#[derive(Debug)]
struct Report {
    seq: u64,
    results: Vec<ResultItem>,
    /// Results already delivered (a large report goes in several requests).
    sent: usize,
    local: Option<Local>,
    made: chrono::DateTime<Utc>,
    /// Bytes its record takes in the spool.
    spooled: u64,
}

impl Report {
    /// What the spool keeps of it: the results not done yet (and the local figures while
    /// none was).
    fn spooled(&self) -> SpooledReport {
        SpooledReport {
            seq: self.seq,
            made: self.made,
            results: self.results[self.sent..].to_vec(),
            local: if self.sent == 0 { self.local.clone() } else { None },
        }
    }
}

/// The reports not delivered yet, bounded by their results (and the spool's cap), kept on
/// disk too when there is a spool.
#[derive(Debug, Default)]
struct Buffer {
    reports: VecDeque<Report>,
    results: usize,
    next_seq: u64,
    dropped: u64,
    spool: Option<Spool>,
    spool_max: u64,
    /// Bytes of the live reports' records (what a rewrite would leave).
    spool_live: u64,
    /// Results read back from the spool at start.
    restored: u64,
}

impl Buffer {
    /// A buffer kept in `spool`, holding what it held (`replayed`), oldest first.
    fn with_spool(spool: Spool, replayed: Replayed, spool_max: u64) -> Buffer {
        let mut b = Buffer { spool_max, ..Buffer::default() };
        for r in replayed.reports {
            let spooled = spool::report_record(&r).len() as u64;
            b.results += r.results.len();
            b.restored += r.results.len() as u64;
            b.spool_live += spooled;
            b.next_seq = b.next_seq.max(r.seq + 1);
            b.reports.push_back(Report {
                seq: r.seq,
                results: r.results,
                sent: 0,
                local: r.local,
                made: r.made,
                spooled,
            });
        }
        b.spool = Some(spool);
        b
    }

    /// Adds a cycle's report — on disk first when there is a spool (synced: it survives a
    /// crash from here on) — then drops the oldest while over the bounds.
    fn push(&mut self, results: Vec<ResultItem>, local: Option<Local>, max_results: usize) {
        self.results += results.len();
        let made = Utc::now();
        let mut report = Report { seq: self.next_seq, results, sent: 0, local, made, spooled: 0 };
        if let Some(spool) = self.spool.as_mut() {
            match spool.append_report(&report.spooled()) {
                Ok(bytes) => report.spooled = bytes,
                Err(e) => self.spool_failed("writing a report", &e),
            }
        }
        self.spool_live += report.spooled;
        self.reports.push_back(report);
        self.next_seq += 1;
        let too_old = made - chrono::Duration::from_std(wire::MAX_RESULT_AGE).unwrap_or(chrono::Duration::MAX);
        let mut dropped_any = false;
        // Dropped results, with what the dropped reports carried: said by the newest.
        let mut carried = 0;
        while self.reports.len() > 1
            && (self.results > max_results
                || self.spool_live > self.spool_max && self.spool.is_some()
                || self.reports.front().is_some_and(|r| r.made < too_old))
        {
            let Some(old) = self.reports.pop_front() else { break };
            let lost = old.results.len() - old.sent;
            self.results -= lost;
            self.dropped += lost as u64;
            self.spool_live -= old.spooled;
            carried += lost as u64 + old.local.as_ref().and_then(|l| l.results_dropped).unwrap_or(0);
            dropped_any = true;
            tracing::warn!(
                lost,
                dropped_so_far = self.dropped,
                "agent buffer or spool full, or results too old: dropping the oldest undelivered report"
            );
        }
        if dropped_any {
            if let Some(newest) = self.reports.back_mut() {
                let at = newest.made;
                let local = newest.local.get_or_insert_with(|| Local { at: Some(at), ..Local::default() });
                local.results_dropped = Some(local.results_dropped.unwrap_or(0) + carried);
                if self.spool.is_some() {
                    let spooled = spool::report_record(&newest.spooled()).len() as u64;
                    self.spool_live = self.spool_live - newest.spooled + spooled;
                    newest.spooled = spooled;
                }
            }
            self.rewrite_spool();
        }
    }

    /// The spool rewritten with just the live reports.
    fn rewrite_spool(&mut self) {
        let live: Vec<SpooledReport> = self.reports.iter().map(Report::spooled).collect();
        if let Some(spool) = self.spool.as_mut() {
            if let Err(e) = spool.rewrite(&live) {
                self.spool_failed("rewriting", &e);
            }
        }
    }

    /// A spool that cannot be written is given up, loudly: the reports stay in memory.
    fn spool_failed(&mut self, doing: &str, e: &std::io::Error) {
        if let Some(spool) = self.spool.take() {
            tracing::error!(
                spool = %spool.dir().display(),
                "{doing} the spool failed ({e}); keeping undelivered reports in memory only from now on"
            );
        }
    }

    /// The next request to send: the front report's next `chunk` results (and its local
    /// figures with the first of them).
    fn next_request(&self, chunk: usize) -> Option<(u64, usize, Results)> {
        let r = self.reports.front()?;
        let end = (r.sent + chunk).min(r.results.len());
        let body = Results {
            results: r.results[r.sent..end].to_vec(),
            local: if r.sent == 0 { r.local.clone() } else { None },
        };
        Some((r.seq, end - r.sent, body))
    }

    /// Marks `n` results of report `seq` as done (delivered or refused).
    fn done(&mut self, seq: u64, n: usize) {
        let Some(front) = self.reports.front_mut().filter(|r| r.seq == seq) else {
            return; // dropped meanwhile
        };
        front.sent += n;
        self.results -= n;
        let (sent, finished, spooled) = (front.sent, front.sent >= front.results.len(), front.spooled);
        if finished {
            self.reports.pop_front();
            self.spool_live -= spooled;
        }
        let Some(spool) = self.spool.as_mut() else { return };
        if let Err(e) = spool.ack(seq, sent) {
            self.spool_failed("acknowledging in", &e);
        } else if self.reports.is_empty() || spool.bytes > 4 * self.spool_live + (1 << 20) {
            self.rewrite_spool();
        }
    }

    fn drop_front(&mut self, seq: u64) -> usize {
        match self.reports.front() {
            Some(r) if r.seq == seq => {
                let n = r.results.len() - r.sent;
                self.done(seq, n);
                self.reports.retain(|r| r.seq != seq);
                n
            }
            _ => 0,
        }
    }
}

/// Why a request did not succeed.
#[derive(Debug)]
enum Failure {
    /// Worth trying again later: the server is unreachable, busy, or refused us for a
    /// reason an operator can fix (token, node).
    Retry(String),
    /// The server will never take this body (400, 413).
    Refused { status: StatusCode, message: String },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Retry(m) => f.write_str(m),
            Failure::Refused { status, message } => write!(f, "{status}: {message}"),
        }
    }
}

/// The agent API, from the agent's side, on one or several servers. (No `Debug`: it
/// holds the token.)
struct Client {
    servers: Vec<Server>,
    auth: String,
    /// The roots an `https://` server is verified against, for messages.
    roots: crate::tls::Roots,
    /// Which server the next request goes to.
    choice: Mutex<failover::Choice>,
}

/// One server's endpoints.
struct Server {
    http: reqwest::Client,
    targets: Url,
    results: Url,
    trace_claim: Url,
    traces: Url,
    /// The server's base URL as given, for messages.
    name: String,
}

impl Server {
    fn new(base: &Url, name: &str, cfg: &AgentConfig) -> Result<Server> {
        let endpoint = |leaf: &str| -> Result<Url> {
            let mut url = base.clone();
            url.path_segments_mut()
                .map_err(|()| Error::setting("server", "not a base URL"))?
                .pop_if_empty()
                .extend(wire::API_PREFIX.trim_start_matches('/').split('/'))
                .push(&cfg.node)
                .extend(leaf.split('/'));
            Ok(url)
        };
        // A client configuration is always given (reqwest has no crypto provider of its
        // own here); for http:// it trusts nothing, and is never used.
        let https = base.scheme() == "https";
        let tls = if https { crate::tls::client_config(&cfg.roots)? } else { empty_tls() };
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(https)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout.min(Duration::from_secs(3)))
            .user_agent(concat!("edgewatch-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::setting("server", format!("cannot make an HTTP client: {e}")))?;
        Ok(Server {
            http,
            targets: endpoint("targets")?,
            results: endpoint("results")?,
            trace_claim: endpoint("traces/claim")?,
            traces: endpoint("traces")?,
            name: name.to_string(),
        })
    }
}

impl Client {
    fn new(bases: &[Url], cfg: &AgentConfig) -> Result<Client> {
        let servers = bases.iter().zip(cfg.servers()).map(|(base, name)| Server::new(base, name, cfg));
        let servers = servers.collect::<Result<Vec<Server>>>()?;
        let choice = Mutex::new(failover::Choice::new(servers.len(), &cfg.node));
        Ok(Client { servers, auth: format!("Bearer {}", cfg.token), roots: cfg.roots.clone(), choice })
    }

    /// For each `https://` server: one request without the token, to see the TLS
    /// handshake through. A handshake refused for a reason an operator must fix (unknown
    /// CA, name mismatch) is an error; an unreachable server is not (the agent waits for it).
    async fn check_tls(&self, timeout: Duration) -> Result<()> {
        for server in self.servers.iter().filter(|s| s.targets.scheme() == "https") {
            match server.http.get(server.targets.clone()).timeout(timeout).send().await {
                Err(e) => match crate::tls::failure_reason(&e) {
                    Some(reason) => {
                        let trusted = match &self.roots {
                            crate::tls::Roots::Bundle(path) => format!("the CAs in {} (--ca)", path.display()),
                            crate::tls::Roots::System => "the system's roots (give --ca FILE for a private CA)".into(),
                        };
                        return Err(Error::Tls {
                            server: server.name.clone(),
                            reason: format!("{reason}; trusted here: {trusted}"),
                        });
                    }
                    // The probe loop says so (once) when it asks for targets.
                    None => tracing::debug!("cannot reach the server {} yet: {}", server.name, describe(&e)),
                },
                Ok(_) => tracing::info!("TLS to {} verified", server.name),
            }
        }
        Ok(())
    }

    /// The server for the next request (its index, to say how it went).
    fn pick(&self) -> (usize, &Server) {
        let (i, back_from) = crate::lock::lock(&self.choice).pick(std::time::Instant::now());
        if let Some(from) = back_from {
            tracing::info!(
                "trying the first choice of server {} again (after {} s on {})",
                self.servers[i].name,
                failover::RETURN_AFTER.as_secs(),
                self.servers[from].name
            );
        }
        (i, &self.servers[i])
    }

    /// What a request to server `i` gave; a failure another server may not have moves the
    /// next requests on to the next server (when there are several).
    fn judge<T>(&self, i: usize, got: std::result::Result<T, Failure>) -> std::result::Result<T, Failure> {
        if let Err(Failure::Retry(why)) = &got {
            if let Some(next) = crate::lock::lock(&self.choice).failed(i, std::time::Instant::now()) {
                tracing::warn!(
                    "server {} failed ({why}); the next requests go to {}",
                    self.servers[i].name,
                    self.servers[next].name
                );
            }
        }
        got
    }

    async fn targets(&self, timeout: Duration) -> std::result::Result<Targets, Failure> {
        let (i, s) = self.pick();
        let resp = s.http.get(s.targets.clone()).header("authorization", &self.auth).timeout(timeout).send().await;
        self.judge(i, answer(resp).await)
    }

    async fn post(&self, body: &Results) -> std::result::Result<Accepted, Failure> {
        let (i, s) = self.pick();
        let resp = s.http.post(s.results.clone()).header("authorization", &self.auth).json(body).send().await;
        self.judge(i, answer(resp).await)
    }

    async fn claim_traces(
        &self,
        body: &trace_wire::TraceClaim,
    ) -> std::result::Result<trace_wire::TraceLease, Failure> {
        let (i, s) = self.pick();
        let resp = s.http.post(s.trace_claim.clone()).header("authorization", &self.auth).json(body).send().await;
        self.judge(i, answer(resp).await)
    }

    /// Runs to the server. A 403 is a refusal too: the runs are of pairs not this host's
    /// (the container moved), and sending them again would not change that.
    async fn post_traces(
        &self,
        body: &trace_wire::TraceRuns,
    ) -> std::result::Result<trace_wire::TracesAccepted, Failure> {
        let (i, s) = self.pick();
        let resp = s.http.post(s.traces.clone()).header("authorization", &self.auth).json(body).send().await;
        self.judge(i, answer_refusing(resp, &[StatusCode::FORBIDDEN]).await)
    }
}

async fn answer<T: serde::de::DeserializeOwned>(
    resp: std::result::Result<reqwest::Response, reqwest::Error>,
) -> std::result::Result<T, Failure> {
    answer_refusing(resp, &[]).await
}

/// [`answer`], with `also` refusals besides 400, 413 and 422.
async fn answer_refusing<T: serde::de::DeserializeOwned>(
    resp: std::result::Result<reqwest::Response, reqwest::Error>,
    also: &[StatusCode],
) -> std::result::Result<T, Failure> {
    let resp = resp.map_err(|e| Failure::Retry(describe(&e)))?;
    let status = resp.status();
    if status.is_success() {
        return resp.json::<T>().await.map_err(|e| Failure::Retry(format!("unreadable answer: {}", describe(&e))));
    }
    let text = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<ErrorBody>(&text).map(|b| b.error).unwrap_or(text);
    let refused =
        matches!(status, StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNPROCESSABLE_ENTITY);
    if refused || also.contains(&status) {
        Err(Failure::Refused { status, message })
    } else {
        Err(Failure::Retry(format!("{status}: {message}")))
    }
}

/// A client configuration that trusts no one (for http:// only).
fn empty_tls() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}

/// A reqwest error with its causes (the top level alone says only "error sending request");
/// a TLS failure in words first.
fn describe(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    if let Some(reason) = crate::tls::failure_reason(e) {
        return format!("{out}: TLS handshake failed: {reason}");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The first wait after a failed delivery; later ones double up to
/// [`AgentConfig::max_backoff`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Shared between the probing and the delivering task.
struct Shared {
    buffer: Mutex<Buffer>,
    more: Notify,
}

impl Shared {
    fn buffer(&self) -> std::sync::MutexGuard<'_, Buffer> {
        crate::lock::lock(&self.buffer)
    }
}

/// Runs the agent until `shutdown`, then tries for a moment to deliver what it holds.
pub async fn run_agent(engine: Arc<Engine>, cfg: AgentConfig, shutdown: CancellationToken) -> Result<AgentTotals> {
    let bases = cfg.validate()?;
    for base in bases.iter().filter(|b| b.scheme() == "http") {
        if !crate::tls::is_loopback_host(base.host_str().unwrap_or_default()) {
            tracing::warn!(
                server = %base,
                "--insecure-http: sending the token and results over plain HTTP off this host, unencrypted"
            );
        }
    }
    let client = Arc::new(Client::new(&bases, &cfg)?);
    tokio::select! {
        _ = shutdown.cancelled() => {}
        checked = client.check_tls(cfg.request_timeout) => checked?,
    }
    let buffer = match &cfg.spool {
        Some(base) => open_spool(base, &cfg)?,
        None => Buffer::default(),
    };
    let restored = buffer.restored;
    let shared = Arc::new(Shared { buffer: Mutex::new(buffer), more: Notify::new() });
    let delivery = tokio::spawn(deliver(client.clone(), shared.clone(), cfg.clone(), shutdown.clone()));
    let tracing = cfg.trace.then(|| {
        let allow = engine.allow_list().clone();
        tokio::spawn(traces::trace_loop(client.clone(), allow, cfg.clone(), shutdown.clone()))
    });
    let mut totals = probe_loop(&engine, &client, &shared, &cfg, &shutdown).await;
    let delivered = delivery.await.unwrap_or_else(|e| {
        tracing::error!("the delivery task failed: {e}");
        AgentTotals::default()
    });
    totals.results_delivered = delivered.results_delivered;
    totals.results_refused = delivered.results_refused;
    totals.failed_requests += delivered.failed_requests;
    if let Some(task) = tracing {
        match task.await {
            Ok(t) => {
                totals.runs_traced = t.traced;
                totals.runs_delivered = t.delivered;
                totals.runs_lost = t.lost;
                totals.failed_requests += t.failed_requests;
            }
            Err(e) => tracing::error!("the trace task failed: {e}"),
        }
    }
    let buffer = shared.buffer();
    totals.results_dropped = buffer.dropped;
    totals.undelivered = buffer.results as u64;
    totals.results_restored = restored;
    Ok(totals)
}

/// The buffer kept in the spool under `base` for this server and node, holding what the
/// spool held (sent first).
fn open_spool(base: &std::path::Path, cfg: &AgentConfig) -> Result<Buffer> {
    let dir = spool::dir_for(base, &cfg.server, &cfg.node);
    let (spool, replayed) = Spool::open(&dir)
        .map_err(|e| Error::setting("spool", format!("cannot use the spool {}: {e}", dir.display())))?;
    if replayed.torn_bytes > 0 {
        tracing::warn!(
            spool = %dir.display(),
            bytes = replayed.torn_bytes,
            "the spool ended in a torn record (a crash while writing it): skipped"
        );
    }
    let reports = replayed.reports.len();
    let results: usize = replayed.reports.iter().map(|r| r.results.len()).sum();
    if reports > 0 {
        tracing::info!(spool = %dir.display(), reports, results, "sending the spooled reports first");
    }
    Ok(Buffer::with_spool(spool, replayed, cfg.spool_max))
}

/// Every interval: refresh the targets (keeping the last ones if the server does not
/// answer), probe them, measure the local figures, buffer the report.
async fn probe_loop(
    engine: &Engine,
    client: &Client,
    shared: &Shared,
    cfg: &AgentConfig,
    shutdown: &CancellationToken,
) -> AgentTotals {
    let mut totals = AgentTotals::default();
    let mut ticker = tokio::time::interval(cfg.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut targets: Option<Vec<wire::Target>> = None;
    let mut reachable = true;
    let mut nginx =
        cfg.nginx_access_log.clone().map(|path| AccessLog::new(path).with_format(cfg.nginx_log_format.clone()));
    // A slow server must not slow the probing down: past this, the last targets do.
    let fetch_timeout = (cfg.interval / 2).clamp(Duration::from_millis(200), cfg.request_timeout);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let fetched = tokio::select! {
            _ = shutdown.cancelled() => break,
            fetched = client.targets(fetch_timeout) => fetched,
        };
        match fetched {
            Ok(t) => {
                if !reachable {
                    tracing::info!("the server answers again");
                }
                reachable = true;
                if t.interval_s != cfg.interval.as_secs() {
                    tracing::debug!(server = t.interval_s, agent = ?cfg.interval, "the server expects another interval");
                }
                targets = Some(t.targets);
            }
            Err(e) => {
                totals.failed_requests += 1;
                if reachable {
                    tracing::warn!(
                        "cannot get targets ({e}); probing the last known {} target(s) meanwhile",
                        targets.as_ref().map_or(0, Vec::len)
                    );
                }
                reachable = false;
            }
        }
        let list = targets.clone().unwrap_or_default();
        let probes: Vec<(wire::Target, crate::ProbeTarget)> =
            list.iter().filter_map(|t| Some((*t, t.probe_target()?))).collect();
        let outcomes = tokio::select! {
            _ = shutdown.cancelled() => break,
            outcomes = engine.probe_all(probes.iter().map(|(_, p)| *p).collect()) => outcomes,
        };
        let at = wire::store_precision(Utc::now());
        let results: Vec<ResultItem> = probes
            .iter()
            .zip(outcomes)
            .map(|((t, _), (_, outcome))| ResultItem {
                edge_id: t.edge_id,
                at,
                kind: t.kind,
                port: if t.kind == ProbeKind::Tcp { t.port } else { None },
                outcome,
            })
            .collect();
        let local = measure(cfg, &mut nginx, at).await;
        let made = results.len() as u64;
        // Spooled (and synced) before it counts as made.
        shared.buffer().push(results, Some(local), cfg.max_buffered_results);
        totals.cycles += 1;
        totals.results_made += made;
        tracing::debug!(cycle = totals.cycles, results = made, "report made");
        shared.more.notify_one();
    }
    totals
}

async fn measure(cfg: &AgentConfig, nginx: &mut Option<AccessLog>, at: chrono::DateTime<Utc>) -> Local {
    let loadavg = cfg.loadavg.clone();
    let log = nginx.take();
    let joined = tokio::task::spawn_blocking(move || {
        let load = local::read_loadavg(&loadavg);
        let mut log = log;
        let rates = log.as_mut().and_then(AccessLog::rates);
        (load, log, rates)
    })
    .await;
    match joined {
        Ok((load, log, rates)) => {
            *nginx = log;
            Local {
                at: Some(at),
                load1: load.map(|l| l.0),
                load5: load.map(|l| l.1),
                load15: load.map(|l| l.2),
                nginx: rates.map(Into::into),
                results_dropped: None,
            }
        }
        Err(e) => {
            tracing::error!("measuring local figures failed: {e}");
            Local { at: Some(at), ..Local::default() }
        }
    }
}

/// Delivers the buffer oldest first; backs off while the server cannot take it.
async fn deliver(
    client: Arc<Client>,
    shared: Arc<Shared>,
    cfg: AgentConfig,
    shutdown: CancellationToken,
) -> AgentTotals {
    let mut totals = AgentTotals::default();
    let mut backoff = Backoff::new(FIRST_BACKOFF, cfg.max_backoff);
    let mut chunk = cfg.max_results_per_post;
    let mut failing = false;
    while !shutdown.is_cancelled() {
        let next = shared.buffer().next_request(chunk);
        let Some((seq, n, body)) = next else {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = shared.more.notified() => continue,
            }
        };
        let sent = tokio::select! {
            _ = shutdown.cancelled() => break,
            sent = client.post(&body) => sent,
        };
        match sent {
            Ok(_) => {
                if failing {
                    tracing::info!("delivering results again");
                }
                failing = false;
                backoff.reset();
                totals.results_delivered += n as u64;
                shared.buffer().done(seq, n);
            }
            Err(Failure::Refused { status, .. }) if status == StatusCode::PAYLOAD_TOO_LARGE && n > 1 => {
                chunk = (n / 2).max(1);
                tracing::warn!(chunk, "the server finds the request too large; sending fewer results at a time");
            }
            Err(Failure::Refused { status, message }) => {
                let dropped = shared.buffer().drop_front(seq);
                totals.results_refused += dropped as u64;
                tracing::error!(%status, dropped, "the server refused a report, not sending it again: {message}");
            }
            Err(Failure::Retry(why)) => {
                totals.failed_requests += 1;
                let wait = backoff.step();
                if !failing {
                    tracing::warn!(?wait, "cannot deliver results ({why}); keeping them and retrying");
                } else {
                    tracing::debug!(?wait, "still cannot deliver results: {why}");
                }
                failing = true;
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
    // Stopping: one last try for what is left, briefly.
    let deadline = tokio::time::Instant::now() + cfg.final_flush;
    loop {
        let next = shared.buffer().next_request(chunk);
        let Some((seq, n, body)) = next else { break };
        match tokio::time::timeout_at(deadline, client.post(&body)).await {
            Ok(Ok(_)) => {
                totals.results_delivered += n as u64;
                shared.buffer().done(seq, n);
            }
            Ok(Err(Failure::Refused { .. })) => {
                totals.results_refused += shared.buffer().drop_front(seq) as u64;
            }
            Ok(Err(Failure::Retry(why))) => {
                tracing::warn!("stopping with undelivered results: {why}");
                break;
            }
            Err(_) => {
                tracing::warn!("stopping with undelivered results: the server did not answer in time");
                break;
            }
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProbeOutcome;

    fn item(edge_id: i64) -> ResultItem {
        ResultItem { edge_id, at: Utc::now(), kind: ProbeKind::Icmp, port: None, outcome: ProbeOutcome::not_sent("x") }
    }

    #[test]
    fn buffer_is_bounded_oldest_first() {
        let mut b = Buffer::default();
        b.push(vec![item(1), item(2)], None, 5);
        b.push(vec![item(3), item(4)], None, 5);
        b.push(vec![item(5), item(6)], None, 5);
        assert_eq!((b.reports.len(), b.results, b.dropped), (2, 4, 2));
        let (seq, n, body) = b.next_request(10).unwrap();
        assert_eq!((n, body.results[0].edge_id), (2, 3));
        b.done(seq, n);
        assert_eq!((b.reports.len(), b.results), (1, 2));
    }

    fn spool_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("edgewatch-agent-spool-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_spooled_buffer_comes_back_after_a_crash_less_what_was_delivered() {
        let dir = spool_dir("crash");
        {
            let (spool, replayed) = Spool::open(&dir).unwrap();
            let mut b = Buffer::with_spool(spool, replayed, 1 << 20);
            b.push(vec![item(1), item(2)], None, 100);
            b.push(vec![item(3), item(4), item(5)], None, 100);
            let (seq, n, _) = b.next_request(10).unwrap();
            b.done(seq, n); // the first report delivered
            let (seq, _, _) = b.next_request(1).unwrap();
            b.done(seq, 1); // one result of the second
                            // Dropped without a clean stop: what a crash leaves.
        }
        let (spool, replayed) = Spool::open(&dir).unwrap();
        let mut b = Buffer::with_spool(spool, replayed, 1 << 20);
        assert_eq!((b.restored, b.results), (2, 2));
        let (seq, n, body) = b.next_request(10).unwrap();
        assert_eq!(body.results.iter().map(|r| r.edge_id).collect::<Vec<_>>(), [4, 5]);
        b.push(vec![item(6)], None, 100);
        assert!(b.next_seq > seq, "new reports follow the restored ones");
        b.done(seq, n);
        let (seq, n, _) = b.next_request(10).unwrap();
        b.done(seq, n);
        assert_eq!(b.spool.as_ref().unwrap().bytes, 0, "everything delivered: the spool is emptied");
        drop(b);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_full_spool_drops_the_oldest_and_counts_them() {
        let dir = spool_dir("full");
        let (spool, replayed) = Spool::open(&dir).unwrap();
        let one = spool::report_record(&SpooledReport {
            seq: 0,
            made: Utc::now(),
            results: vec![item(1), item(2)],
            local: None,
        })
        .len() as u64;
        // Room for about three reports of two results.
        let mut b = Buffer::with_spool(spool, replayed, 3 * one + one / 2);
        for i in 0..10 {
            b.push(vec![item(2 * i), item(2 * i + 1)], None, 1000);
        }
        assert_eq!((b.reports.len(), b.dropped), (3, 14), "seven reports of two went, counted");
        let said = |r: &Report| r.local.as_ref().and_then(|l| l.results_dropped).unwrap_or(0);
        assert_eq!(b.reports.iter().map(said).sum::<u64>(), 14, "the reports left say every dropped result once");
        assert!(b.spool.as_ref().unwrap().bytes <= 3 * one + one / 2);
        let first = b.next_request(10).unwrap().2.results[0].edge_id;
        assert_eq!(first, 14, "the newest stay");
        drop(b);
        let (_, replayed) = Spool::open(&dir).unwrap();
        assert_eq!(replayed.reports.len(), 3, "and are what the spool holds");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn large_reports_go_in_chunks_with_local_once() {
        let mut b = Buffer::default();
        b.push((1..=5).map(item).collect(), Some(Local::default()), 100);
        let (seq, n, body) = b.next_request(2).unwrap();
        assert_eq!((n, body.local.is_some()), (2, true));
        b.done(seq, n);
        let (seq2, n, body) = b.next_request(2).unwrap();
        assert_eq!((seq2, n, body.local.is_some(), body.results[0].edge_id), (seq, 2, false, 3));
        // A report dropped while its request was out is not marked twice.
        assert_eq!(b.drop_front(seq), 3);
        b.done(seq, n);
        assert_eq!((b.reports.len(), b.results), (0, 0));
    }

    #[test]
    fn backoff_grows_to_the_cap() {
        let mut b = Backoff::new(FIRST_BACKOFF, Duration::from_secs(4));
        let waits: Vec<Duration> = (0..8).map(|_| b.step()).collect();
        assert!(waits[0] <= Duration::from_millis(750));
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(4)));
        assert!(waits[7] >= Duration::from_secs(2));
        b.reset();
        assert!(b.step() <= Duration::from_millis(750));
    }

    #[test]
    fn config_is_checked() {
        let ok = AgentConfig::new("http://127.0.0.1:8440", "fe1.host101", "t0k");
        let base = ok.validate().unwrap();
        let client = Client::new(&base, &ok).unwrap();
        assert_eq!(client.servers[0].targets.as_str(), "http://127.0.0.1:8440/api/v1/agents/fe1.host101/targets");
        let prefixed = AgentConfig::new("http://127.0.0.1:8440/ew", "a b", "t0k");
        let client = Client::new(&prefixed.validate().unwrap(), &prefixed).unwrap();
        assert_eq!(client.servers[0].results.as_str(), "http://127.0.0.1:8440/ew/api/v1/agents/a%20b/results");
        // Several servers, each checked; names as given.
        let two = AgentConfig::new("http://127.0.0.1:8440, http://[::1]:8441/ew", "n", "t0k");
        let client = Client::new(&two.validate().unwrap(), &two).unwrap();
        let names: Vec<&str> = client.servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["http://127.0.0.1:8440", "http://[::1]:8441/ew"]);
        assert_eq!(client.servers[1].targets.as_str(), "http://[::1]:8441/ew/api/v1/agents/n/targets");
        let err = AgentConfig::new("http://127.0.0.1:8440,http://10.0.0.1:8440", "n", "t").validate().unwrap_err();
        assert!(err.to_string().contains("http://10.0.0.1:8440"), "the server at fault is named: {err}");
        assert!(AgentConfig::new(" , ", "n", "t").validate().is_err(), "no server at all");
        for bad in [
            AgentConfig::new("127.0.0.1:8440", "n", "t"),
            AgentConfig::new("ftp://x", "n", "t"),
            AgentConfig::new("http://x", "", "t"),
            AgentConfig::new("http://x", "n", "a b"),
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert_eq!(ok.interval(Duration::from_secs(1)).max_backoff, Duration::from_secs(4));
    }

    #[test]
    fn plain_http_only_to_loopback_unless_insecure() {
        for server in ["http://127.0.0.1:8440", "http://[::1]:8440", "http://localhost:8440", "https://198.18.0.1:1"] {
            assert!(AgentConfig::new(server, "n", "t").validate().is_ok(), "{server}");
        }
        for server in ["http://198.18.0.1:1", "http://[2001:db8::1]:8440", "http://edgewatch.example.com"] {
            let err = AgentConfig::new(server, "n", "t").validate().unwrap_err();
            assert!(matches!(err, Error::PlainHttp { .. }), "{server}: {err}");
            assert!(err.to_string().contains("--insecure-http"), "{err}");
            let mut insecure = AgentConfig::new(server, "n", "t");
            insecure.insecure_http = true;
            assert!(insecure.validate().is_ok(), "{server}");
        }
    }
}
