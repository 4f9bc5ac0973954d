//! Settings, merged in one place: command-line flags and environment variables win over
//! the configuration file (`--config FILE`, TOML), the file over the defaults. Commands
//! read the resolved values from [`Settings`] and never look at the file themselves.
//!
//! ```toml
//! database_url = "postgres://edgewatch@db.example.com/edgewatch"   # or DATABASE_URL
//! data_dir = "/var/lib/edgewatch"          # embedded cluster, when no database_url
//!
//! [database]                               # reads on a standby (docs/scaling.md)
//! read_url = "postgres://edgewatch@db-standby.example.com/edgewatch"  # or --read-database-url
//! max_read_lag = "30s"                     # standby further behind: reads go to the primary
//! pooler = "transaction"                   # behind pgbouncer, pool_mode = transaction (or --pooler)
//!
//! [dns]
//! zones = ["example.com"]                  # zones holding the service names
//! batch_lines = 5000000
//! log_utc_offset = "+00:00"                # of year-less log prefixes
//! expire_after = "7d"                      # retire DNS edges unused this long ("never")
//! rotated = "{}.*"                         # rotated copies beside a log (default {}.* and {}-*)
//!
//! [thresholds]                             # a probe cycle's verdict
//! degraded_loss_pct = 20.0
//! failed_loss_pct = 90.0
//! degraded_rtt_ms = 500.0
//!
//! [health]                                 # hysteresis and flap damping
//! k_down = 2
//! m_up = 2
//! k_degraded = 2
//! stale_after_intervals = 3
//! flap_window = 21
//! flap_high_pct = 50.0
//! flap_low_pct = 25.0
//!
//! [probe]
//! retention_days = 14                      # probe history kept, in days
//! workers = 2                              # and any `edgewatch probe` flag (crate::file_flags)
//!
//! [serve]                                  # any `edgewatch serve` flag
//! listen = "127.0.0.1:8440"
//!
//! [agent]                                  # any `edgewatch agent` flag
//! server = "https://edgewatch.example.com:8440"
//! spool_max = "64MB"
//! ca = "/etc/edgewatch/tls/ca.pem"         # CA bundle for an https:// server (or --ca; default: system roots)
//! insecure_http = false                    # token over plain http:// off loopback (or --insecure-http)
//!
//! [api]                                    # edgewatch serve
//! read_token = "…"                         # graph questions and /metrics need it (or EDGEWATCH_READ_TOKEN)
//! snapshot_max_age = "5s"                  # topology answers may be this old
//! tls_cert = "/etc/edgewatch/tls/cert.pem" # serve HTTPS (or --tls-cert); reloaded on SIGHUP
//! tls_key = "/etc/edgewatch/tls/key.pem"   # its private key (or --tls-key)
//! insecure_http = false                    # plain HTTP off loopback (or --insecure-http)
//!
//! [diagnosis]                              # grouping broken edges into incidents
//! most_pct = 60.0                          # a group is failing from this percent down
//! fine_pct = 20.0                          # the rest is fine up to this percent down
//! min_edges = 2                            # fewest broken edges of a group incident
//!
//! [check]
//! diagnosis_max_age = "30s"                # the check reuses a diagnosis this fresh
//!
//! [report]                                 # edgewatch report / edgewatch run
//! at = "00:15"                             # when `run` makes the day before's report
//! tz = "Europe/Berlin"                     # default: this machine's time zone
//! dir = "/var/lib/edgewatch/reports"       # also write the reports here
//! keep_days = 400                          # hourly rollups kept
//!
//! [owners]                                 # whose network a hop address is (longest prefix wins)
//! "10.0.0.0/8" = "ours"
//! "52.93.0.0/16" = "AWS"
//!
//! [trace]                                  # path history (docs/paths.md, "What is traced")
//! enabled = true                           # `probe --no-trace` / `agent --no-trace` for one process
//! interval = "2m"                          # host pairs across data centers, external targets
//! intra_dc_every = 10                      # host pairs within a data center: every 10 intervals
//! keep_days = 14                           # raw runs kept (hourly rollups: [report] keep_days)
//! probes = 3                               # probes per TTL per run
//! max_ttl = 30
//! protocol = "icmp"                        # host pairs: icmp, udp or tcp (SYN to `port`, default 80)
//! port = 33434                             # with protocol = "udp": a closed port
//! vantage = "prober-fra1"                  # where workers trace targets from (default: hostname)
//! agent_silence = "10m"                    # a host's pairs fall to workers when its agents are silent
//! k_runs = 2                               # runs on a new path (or loss) that make it an event
//! loss_min_pct = 20.0                      # loss that counts, when it persists to the end
//!
//! [[trace.targets]]                        # traced by the workers every interval
//! name = "search-cloud"
//! address = "52.93.1.10"
//! protocol = "udp"                         # icmp (default), udp or tcp
//! port = 33434
//! ```
//! Unknown keys are refused, naming the file and the key, so a typo never goes unseen.
//! deploy/edgewatch.toml is the complete sample: every key at its default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::NaiveTime;
use chrono_tz::Tz;
use discovery::dns::ingest::IngestOptions;
use graph_store::db::Target;
use graph_store::diagnosis::DiagnosisConfig;
use graph_store::paths::Owners;
use graph_store::Pooler;
use probers::record::RecordConfig;
use serde::Deserialize;

use crate::cli::{AgentArgs, DnsArgs, Global, OptionalDuration, ProbeArgs, ServeArgs};
use crate::tls::TlsFiles;

/// The embedded cluster's directory when no flag, variable or file names one.
pub const DEFAULT_DATA_DIR: &str = ".edgewatch";

/// The settings of one run: the global flags over the configuration file over the
/// defaults, with what each command needs resolved by one method each.
#[derive(Debug, Clone)]
pub struct Settings {
    file: Config,
    /// The file as read, for saying what a reload changed.
    raw: toml::Table,
    database_url: Option<String>,
    read_database_url: Option<String>,
    max_read_lag: Duration,
    pooler: Pooler,
    data_dir: PathBuf,
    check_diagnosis_max_age: Duration,
    stop_timeout: Duration,
    config_path: Option<PathBuf>,
}

/// What `edgewatch serve` runs with.
pub struct ServeSettings {
    /// How agents' results are judged, at `--interval`.
    pub record: RecordConfig,
    pub diagnosis: DiagnosisConfig,
    /// `EDGEWATCH_READ_TOKEN`, else `[api] read_token`; none when empty.
    pub read_token: Option<String>,
    /// `[api] snapshot_max_age` (none: the server's default).
    pub snapshot_max_age: Option<Duration>,
    /// `--tls-cert`/`--tls-key`, else `[api] tls_cert`/`tls_key`: serve HTTPS.
    pub tls: Option<TlsFiles>,
    /// `--insecure-http`, or `[api] insecure_http = true`.
    pub insecure_http: bool,
}

/// What `edgewatch agent` runs with, besides its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSettings {
    /// `--ca`, else `[agent] ca`; none: the system's roots.
    pub ca: Option<PathBuf>,
    /// `--insecure-http`, or `[agent] insecure_http = true`.
    pub insecure_http: bool,
}

impl std::fmt::Debug for ServeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeSettings")
            .field("record", &self.record)
            .field("diagnosis", &self.diagnosis)
            .field("read_token", &self.read_token.as_ref().map(|_| "(secret)"))
            .field("snapshot_max_age", &self.snapshot_max_age)
            .field("tls", &self.tls)
            .field("insecure_http", &self.insecure_http)
            .finish()
    }
}

/// What the prober workers of `edgewatch probe` run with.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSettings {
    /// How results are judged, at `--interval`.
    pub record: RecordConfig,
    /// `[probe] retention_days` (none: the workers' default).
    pub retention_days: Option<u32>,
}

/// What `edgewatch check nagios` diagnoses with.
#[derive(Debug, Clone, Copy)]
pub struct CheckSettings {
    pub diagnosis: DiagnosisConfig,
    /// `[check] diagnosis_max_age`: a stored diagnosis this fresh is reused.
    pub diagnosis_max_age: Duration,
}

/// When and how `edgewatch run` makes the daily reports.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// `[report] tz`, else this machine's time zone, else UTC.
    pub tz: Tz,
    /// `[report] at`, default 00:15.
    pub at: NaiveTime,
    /// `[report] dir`: also write the reports there.
    pub dir: Option<PathBuf>,
    /// `[report] keep_days`, default 400.
    pub keep_days: u32,
}

impl Settings {
    /// The global flags (and their environment variables) over `--config` when given.
    pub fn new(global: &Global) -> Result<Settings> {
        let (file, raw) = match &global.config {
            Some(path) => Config::load(path)?,
            None => Default::default(),
        };
        Ok(Settings {
            raw,
            database_url: global.database_url.clone().or_else(|| file.database_url.clone()),
            read_database_url: global.read_database_url.clone().or_else(|| file.database.read_url.clone()),
            max_read_lag: file.database.max_read_lag().map_err(anyhow::Error::msg)?,
            pooler: match global.pooler {
                Some(pooler) => pooler,
                None => file.database.pooler().map_err(anyhow::Error::msg)?,
            },
            data_dir: global
                .data_dir
                .clone()
                .or_else(|| file.data_dir.clone())
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            check_diagnosis_max_age: file.check_diagnosis_max_age().map_err(anyhow::Error::msg)?,
            stop_timeout: global.stop_timeout,
            config_path: global.config.clone(),
            file,
        })
    }

    /// The config file read again (SIGHUP), checked as at start, daemon sections included.
    /// What came from flags and the environment stays; so do the database and the data
    /// directory, which only a restart changes.
    pub fn reloaded(&self) -> Result<Settings> {
        use clap::CommandFactory;
        let path = self.config_path.as_deref().context("no config file (--config) to read again")?;
        let text = Config::read(path)?;
        let (file, raw) = Config::parse(path, &text)?;
        crate::file_flags::read(path, &text, &crate::cli::Cli::command())?;
        Ok(Settings {
            check_diagnosis_max_age: file.check_diagnosis_max_age().map_err(anyhow::Error::msg)?,
            file,
            raw,
            ..self.clone()
        })
    }

    /// The config file's keys as read (empty without one).
    pub fn raw(&self) -> &toml::Table {
        &self.raw
    }

    /// The config file given (`--config`, EDGEWATCH_CONFIG), if any.
    pub fn config_path(&self) -> Option<&Path> {
        self.config_path.as_deref()
    }

    /// How long a long-running command has to stop after SIGTERM or SIGINT.
    pub fn stop_timeout(&self) -> Duration {
        self.stop_timeout
    }

    /// `--database-url` / DATABASE_URL, else `database_url`.
    pub fn database_url(&self) -> Option<&str> {
        self.database_url.as_deref()
    }

    /// `--read-database-url` / EDGEWATCH_READ_DATABASE_URL, else `[database] read_url`:
    /// the standby the read-only questions go to.
    pub fn read_database_url(&self) -> Option<&str> {
        self.read_database_url.as_deref()
    }

    /// `[database] max_read_lag`, default 30 s: a standby further behind is not read.
    pub fn max_read_lag(&self) -> Duration {
        self.max_read_lag
    }

    /// `--pooler` / EDGEWATCH_POOLER, else `[database] pooler`, else none: what sits between
    /// edgewatch and PostgreSQL (a database URL's; the embedded cluster has none).
    pub fn pooler(&self) -> Pooler {
        self.pooler
    }

    /// The embedded cluster's directory: `--data-dir` / EDGEWATCH_DATA_DIR, else
    /// `data_dir`, else `.edgewatch`.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where the store is: the database URL when there is one, else the embedded cluster.
    pub fn target(&self) -> Target {
        match &self.database_url {
            Some(url) => Target::Url(url.clone()),
            None => Target::Embedded(self.data_dir.clone()),
        }
    }

    /// Whose network an address is: `[owners]` (checked when the file was read).
    pub fn owners(&self) -> Owners {
        Owners::new(&self.file.owners).expect("[owners] was checked when the file was read")
    }

    /// How paths are traced: `[trace]` (checked when the file was read), or `None` when
    /// `enabled = false`.
    pub fn trace(&self) -> Option<probers::trace_loop::TraceConfig> {
        let keep = self.file.report.keep_days.unwrap_or(400);
        self.file.trace.resolve(keep).expect("[trace] was checked when the file was read")
    }

    /// How incidents are found: `[diagnosis]`.
    pub fn diagnosis(&self) -> DiagnosisConfig {
        self.file.diagnosis
    }

    pub fn check(&self) -> CheckSettings {
        CheckSettings { diagnosis: self.file.diagnosis, diagnosis_max_age: self.check_diagnosis_max_age }
    }

    pub fn probe(&self, args: &ProbeArgs) -> ProbeSettings {
        ProbeSettings { record: self.record(args.probe.interval), retention_days: self.file.probe.retention_days }
    }

    pub fn serve(&self, args: &ServeArgs) -> Result<ServeSettings> {
        let api = &self.file.api;
        let read_token = std::env::var("EDGEWATCH_READ_TOKEN").ok().or_else(|| api.read_token.clone());
        let snapshot_max_age = match &api.snapshot_max_age {
            None => None,
            Some(age) => Some(humantime::parse_duration(age).with_context(|| {
                format!("[api] snapshot_max_age = {age:?} is not a duration (examples: 0s, 5s, 1m)")
            })?),
        };
        Ok(ServeSettings {
            record: self.record(args.interval),
            diagnosis: self.file.diagnosis,
            read_token: read_token.filter(|t| !t.is_empty()),
            snapshot_max_age,
            tls: tls_files(
                args.tls_cert.as_ref().or(api.tls_cert.as_ref()),
                args.tls_key.as_ref().or(api.tls_key.as_ref()),
            )?,
            insecure_http: args.insecure_http || api.insecure_http.unwrap_or(false),
        })
    }

    /// The agent's TLS settings: the flags over `[agent]`.
    pub fn agent(&self, args: &AgentArgs) -> AgentSettings {
        let file = &self.file.agent;
        AgentSettings {
            ca: args.ca.clone().or_else(|| file.ca.clone()),
            insecure_http: args.insecure_http || file.insecure_http.unwrap_or(false),
        }
    }

    /// How DNS logs are read: the flags over `[dns]` over the defaults.
    pub fn ingest(&self, args: &DnsArgs) -> Result<IngestOptions> {
        let file = &self.file.dns;
        let defaults = IngestOptions::default();
        let offset = match (args.log_utc_offset, &file.log_utc_offset) {
            (Some(offset), _) => offset,
            (None, Some(text)) => {
                crate::cli::parse_offset(text).map_err(|e| anyhow::anyhow!("config [dns] log_utc_offset: {e}"))?
            }
            (None, None) => defaults.local_offset_secs,
        };
        Ok(IngestOptions {
            zones: if args.zones.is_empty() { file.zones.clone() } else { args.zones.clone() },
            batch_lines: args.batch_lines.or(file.batch_lines).unwrap_or(defaults.batch_lines),
            local_offset_secs: offset,
            rotated: args.rotated.clone().or_else(|| file.rotated.clone()),
            ..defaults
        }
        .validated()?)
    }

    /// How long DNS edges live unused: `--expire-after`, else `[dns] expire_after`, else
    /// 7 days (none: never).
    pub fn expire_after(&self, flag: Option<OptionalDuration>) -> Result<Option<Duration>> {
        match (flag, &self.file.dns.expire_after) {
            (Some(d), _) => Ok(d.0),
            (None, Some(text)) => crate::cli::parse_optional_duration(text)
                .map(|d| d.0)
                .map_err(|e| anyhow::anyhow!("config [dns] expire_after: {e}")),
            (None, None) => Ok(Some(Duration::from_secs(7 * 24 * 3600))),
        }
    }

    /// The reports' time zone: `--tz`, else `[report] tz`, else this machine's, else UTC.
    pub fn report_zone(&self, flag: Option<&str>) -> Result<Tz> {
        zone(flag.or(self.file.report.tz.as_deref()))
    }

    pub fn schedule(&self) -> Result<Schedule> {
        let report = &self.file.report;
        let tz = zone(report.tz.as_deref())?;
        let at_text = report.at.as_deref().unwrap_or("00:15");
        let at = NaiveTime::parse_from_str(at_text, "%H:%M")
            .with_context(|| format!("[report] at = {at_text:?} is not a time of day such as 00:15"))?;
        Ok(Schedule { tz, at, dir: report.dir.clone(), keep_days: report.keep_days.unwrap_or(400) })
    }

    /// How probe results are judged, with this probe interval.
    fn record(&self, interval: Duration) -> RecordConfig {
        RecordConfig { thresholds: self.file.thresholds, health: self.file.health, interval, ..Default::default() }
    }
}

/// Both TLS files, or neither; one without the other is an error naming the missing one.
fn tls_files(cert: Option<&PathBuf>, key: Option<&PathBuf>) -> Result<Option<TlsFiles>> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert: cert.clone(), key: key.clone() })),
        (None, None) => Ok(None),
        (Some(cert), None) => anyhow::bail!(
            "a TLS certificate ({}) but no private key: give --tls-key FILE (or [api] tls_key)",
            cert.display()
        ),
        (None, Some(key)) => anyhow::bail!(
            "a TLS private key ({}) but no certificate: give --tls-cert FILE (or [api] tls_cert)",
            key.display()
        ),
    }
}

/// The time zone by name, else this machine's, else UTC.
fn zone(name: Option<&str>) -> Result<Tz> {
    match name {
        Some(name) => name.parse::<Tz>().map_err(|_| {
            anyhow::anyhow!("unknown time zone {name:?}: give an IANA name such as UTC, Europe/Berlin, America/Chicago")
        }),
        None => Ok(iana_time_zone::get_timezone().ok().and_then(|n| n.parse::<Tz>().ok()).unwrap_or(Tz::UTC)),
    }
}

/// The configuration file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    database_url: Option<String>,
    data_dir: Option<PathBuf>,
    #[serde(default)]
    database: DatabaseConfig,
    #[serde(default)]
    dns: DnsConfig,
    #[serde(default)]
    thresholds: probers::health::Thresholds,
    #[serde(default)]
    health: probers::health::HealthConfig,
    #[serde(default)]
    probe: ProbeConfig,
    /// `edgewatch serve`'s flags: checked and applied by [`crate::file_flags`].
    #[serde(default, rename = "serve")]
    _serve: toml::Table,
    #[serde(default)]
    api: ApiConfig,
    #[serde(default)]
    agent: AgentFileConfig,
    #[serde(default)]
    diagnosis: DiagnosisConfig,
    #[serde(default)]
    check: CheckConfig,
    #[serde(default)]
    report: ReportConfig,
    /// Prefix → owner label, for the hops of traced paths.
    #[serde(default)]
    owners: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    trace: crate::trace_config::TraceFile,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportConfig {
    /// Local time `edgewatch run` makes the day before's report (default "00:15").
    at: Option<String>,
    /// IANA time zone of the reports (default: this machine's).
    tz: Option<String>,
    /// Also write each report here, as `edgewatch-YYYY-MM-DD.{json,md,html}`.
    dir: Option<PathBuf>,
    /// Days of hourly rollups kept (default 400).
    keep_days: Option<u32>,
}

/// `[database]`: the read side (a streaming standby), how stale it may be, and the pooler
/// in front of both.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseConfig {
    read_url: Option<String>,
    /// Replay lag beyond which reads go to the primary (default 30s).
    max_read_lag: Option<String>,
    /// `none`, `session` or `transaction` (default none).
    pooler: Option<String>,
}

impl DatabaseConfig {
    fn max_read_lag(&self) -> Result<Duration, String> {
        match &self.max_read_lag {
            None => Ok(Duration::from_secs(30)),
            Some(lag) => humantime::parse_duration(lag)
                .map_err(|e| format!("[database] max_read_lag = {lag:?}: {e} (examples: 1s, 30s, 2m)")),
        }
    }

    fn pooler(&self) -> Result<Pooler, String> {
        match &self.pooler {
            None => Ok(Pooler::None),
            Some(name) => name.parse().map_err(|e| format!("[database] pooler = {name:?}: {e}")),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckConfig {
    /// The check reuses the stored diagnosis when it is at most this old (default 30s).
    diagnosis_max_age: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiConfig {
    read_token: Option<String>,
    snapshot_max_age: Option<String>,
    /// PEM certificate chain and key: serve HTTPS.
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    /// Plain HTTP off loopback.
    insecure_http: Option<bool>,
}

/// `[agent]`: any `edgewatch agent` flag (checked and applied by [`crate::file_flags`],
/// which refuses unknown keys); `ca` and `insecure_http` are also read here.
#[derive(Debug, Clone, Default, Deserialize)]
struct AgentFileConfig {
    /// PEM CA bundle the server's certificate is verified against.
    ca: Option<PathBuf>,
    /// The token over plain http:// off loopback.
    insecure_http: Option<bool>,
    #[serde(flatten)]
    _flags: toml::Table,
}

/// `[probe]`: `retention_days`, and `edgewatch probe`'s flags (checked and applied by
/// [`crate::file_flags`], which refuses unknown keys).
#[derive(Debug, Clone, Default, Deserialize)]
struct ProbeConfig {
    retention_days: Option<u32>,
    #[serde(flatten)]
    _flags: toml::Table,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DnsConfig {
    #[serde(default)]
    zones: Vec<String>,
    batch_lines: Option<u64>,
    log_utc_offset: Option<String>,
    expire_after: Option<String>,
    rotated: Option<String>,
}

/// Reads and checks a whole config file as every command reads it (`config check`).
pub fn check_file(path: &Path) -> Result<()> {
    Config::load(path).map(|_| ())
}

impl Config {
    /// The file checked, and its keys as written.
    fn load(path: &Path) -> Result<(Config, toml::Table)> {
        Config::parse(path, &Config::read(path)?)
    }

    fn read(path: &Path) -> Result<String> {
        std::fs::read_to_string(path).with_context(|| format!("reading the config file {}", path.display()))
    }

    /// `text`, the file at `path`, checked.
    fn parse(path: &Path, text: &str) -> Result<(Config, toml::Table)> {
        let config: Config =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
        let raw: toml::Table = toml::from_str(text).expect("what parsed as the config parses as a table");
        config.thresholds.validate().map_err(|e| anyhow::anyhow!("{}: [thresholds] {e}", path.display()))?;
        config.health.validate().map_err(|e| anyhow::anyhow!("{}: [health] {e}", path.display()))?;
        config.diagnosis.validate().map_err(|e| anyhow::anyhow!("{}: [diagnosis] {e}", path.display()))?;
        config.check_diagnosis_max_age().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        config.database.max_read_lag().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        config.database.pooler().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Owners::new(&config.owners).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        config.trace.resolve(400).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok((config, raw))
    }

    /// `[check] diagnosis_max_age`, default 30 s.
    fn check_diagnosis_max_age(&self) -> Result<Duration, String> {
        match &self.check.diagnosis_max_age {
            None => Ok(Duration::from_secs(30)),
            Some(age) => humantime::parse_duration(age)
                .map_err(|e| format!("[check] diagnosis_max_age = {age:?}: {e} (examples: 0s, 30s, 2m)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample's file-only sections are the defaults: the settings they resolve to equal
    /// an empty file's.
    #[test]
    fn the_sample_config_resolves_to_the_defaults() {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/edgewatch.toml");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.toml");
        std::fs::write(&empty, "").unwrap();
        let settings = |config: &Path| {
            Settings::new(&Global {
                database_url: None,
                read_database_url: None,
                pooler: None,
                data_dir: None,
                config: Some(config.to_path_buf()),
                verbose: 0,
                stop_timeout: Duration::from_secs(10),
            })
            .unwrap()
        };
        let (s, d) = (settings(&sample), settings(&empty));
        assert_eq!(s.data_dir(), d.data_dir());
        assert_eq!((s.read_database_url(), s.max_read_lag()), (d.read_database_url(), d.max_read_lag()));
        assert_eq!(s.pooler(), d.pooler());
        assert_eq!(s.trace(), d.trace());
        assert_eq!(s.diagnosis(), d.diagnosis());
        assert_eq!(format!("{:?}", s.check()), format!("{:?}", d.check()));
        assert_eq!(format!("{:?}", s.schedule().unwrap()), format!("{:?}", d.schedule().unwrap()));
        assert_eq!(s.expire_after(None).unwrap(), d.expire_after(None).unwrap());
        assert_eq!(s.file.thresholds, probers::health::Thresholds::default());
        assert_eq!(s.file.health, probers::health::HealthConfig::default());
        assert_eq!(s.file.dns.batch_lines, Some(discovery::dns::ingest::IngestOptions::default().batch_lines));
        assert_eq!(s.file.probe.retention_days, Some(14));
        assert_eq!(s.file.api.snapshot_max_age.as_deref(), Some("5s"));
        assert_eq!(s.file.report.keep_days, Some(400));
    }

    fn settings(file: &str, args: &[&str]) -> (Settings, crate::cli::Cli) {
        use clap::Parser;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edgewatch.toml");
        std::fs::write(&path, file).unwrap();
        let mut all = vec!["edgewatch", "--config", path.to_str().unwrap()];
        all.extend_from_slice(args);
        let cli = crate::cli::Cli::try_parse_from(all).unwrap();
        (Settings::new(&cli.global).unwrap(), cli)
    }

    fn serve_args(cli: crate::cli::Cli) -> ServeArgs {
        match cli.command {
            crate::cli::Command::Serve(args) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tls_files_and_insecure_http_come_from_the_flags_over_the_file() {
        let file = "[api]\ntls_cert = \"/f/cert.pem\"\ntls_key = \"/f/key.pem\"\n";
        let (s, cli) = settings(file, &["serve"]);
        let serve = s.serve(&serve_args(cli)).unwrap();
        let want = TlsFiles { cert: "/f/cert.pem".into(), key: "/f/key.pem".into() };
        assert_eq!((serve.tls, serve.insecure_http), (Some(want), false));

        let (s, cli) = settings(file, &["serve", "--tls-cert", "/c/cert.pem"]);
        let tls = s.serve(&serve_args(cli)).unwrap().tls.unwrap();
        assert_eq!((tls.cert.to_str(), tls.key.to_str()), (Some("/c/cert.pem"), Some("/f/key.pem")));

        let (s, cli) = settings("[api]\ninsecure_http = true\n", &["serve"]);
        let serve = s.serve(&serve_args(cli)).unwrap();
        assert_eq!((serve.tls, serve.insecure_http), (None, true));
        let (s, cli) = settings("", &["serve", "--insecure-http"]);
        assert!(s.serve(&serve_args(cli)).unwrap().insecure_http);
        let (s, cli) = settings("", &["serve"]);
        assert!(!s.serve(&serve_args(cli)).unwrap().insecure_http);

        let (s, cli) = settings("[api]\ntls_key = \"/f/key.pem\"\n", &["serve"]);
        let err = s.serve(&serve_args(cli)).unwrap_err().to_string();
        assert!(err.contains("/f/key.pem") && err.contains("--tls-cert"), "{err}");
    }

    #[test]
    fn the_agent_ca_and_insecure_http_come_from_the_flags_over_the_file() {
        let agent = |file: &str, extra: &[&str]| {
            let mut args = vec!["agent", "--server", "https://s:1", "--name", "n", "--token", "t"];
            args.extend_from_slice(extra);
            let (s, cli) = settings(file, &args);
            match cli.command {
                crate::cli::Command::Agent(a) => s.agent(&a),
                other => panic!("{other:?}"),
            }
        };
        let file = "[agent]\nca = \"/f/ca.pem\"\ninsecure_http = true\n";
        assert_eq!(agent(file, &[]), AgentSettings { ca: Some("/f/ca.pem".into()), insecure_http: true });
        assert_eq!(agent(file, &["--ca", "/c/ca.pem"]).ca, Some(PathBuf::from("/c/ca.pem")));
        assert_eq!(agent("", &[]), AgentSettings { ca: None, insecure_http: false });
        assert!(agent("", &["--insecure-http"]).insecure_http);

        let bad = Path::new("bad.toml");
        let err = crate::file_flags::read(
            bad,
            "[agent]\ncafile = \"/x\"\n",
            &<crate::cli::Cli as clap::CommandFactory>::command(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("bad.toml:2: [agent] unknown key `cafile`"), "{err}");
    }

    #[test]
    fn the_read_side_comes_from_the_flag_over_the_file_and_a_bad_lag_names_the_key() {
        let file = "[database]\nread_url = \"postgres://f/standby\"\nmax_read_lag = \"2s\"\n";
        let (s, _) = settings(file, &["graph", "nodes"]);
        assert_eq!((s.read_database_url(), s.max_read_lag()), (Some("postgres://f/standby"), Duration::from_secs(2)));
        let (s, _) = settings(file, &["--read-database-url", "postgres://c/standby", "graph", "nodes"]);
        assert_eq!(s.read_database_url(), Some("postgres://c/standby"));
        let (s, _) = settings("", &["graph", "nodes"]);
        assert_eq!((s.read_database_url(), s.max_read_lag()), (None, Duration::from_secs(30)));

        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[database]\nmax_read_lag = \"soon\"\n").unwrap();
        let err = Config::load(&bad).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: [database] max_read_lag = \"soon\"", bad.display())), "{err}");
    }

    #[test]
    fn the_pooler_comes_from_the_flag_over_the_file_and_a_bad_one_names_the_key() {
        let file = "[database]\npooler = \"transaction\"\n";
        assert_eq!(settings(file, &["graph", "nodes"]).0.pooler(), Pooler::Transaction);
        assert_eq!(settings(file, &["--pooler", "session", "graph", "nodes"]).0.pooler(), Pooler::Session);
        assert_eq!(settings("", &["graph", "nodes"]).0.pooler(), Pooler::None);

        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[database]\npooler = \"statement\"\n").unwrap();
        let err = Config::load(&bad).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: [database] pooler = \"statement\"", bad.display())), "{err}");
    }

    #[test]
    fn unknown_zones_are_refused() {
        assert!(zone(Some("Mars/Olympus")).unwrap_err().to_string().contains("IANA"));
        assert_eq!(zone(Some("UTC")).unwrap(), Tz::UTC);
    }

    #[test]
    fn owners_come_from_the_file_and_a_bad_prefix_is_refused_naming_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(&good, "[owners]\n\"10.0.0.0/8\" = \"ours\"\n\"10.1.0.0/16\" = \"lab\"\n").unwrap();
        let (config, _) = Config::load(&good).unwrap();
        let owners = Owners::new(&config.owners).unwrap();
        assert_eq!(owners.owner("10.1.2.3".parse().unwrap()), Some("lab"));
        assert_eq!(owners.owner("10.2.0.1".parse().unwrap()), Some("ours"));
        assert_eq!(owners.owner("192.0.2.1".parse().unwrap()), None);

        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[owners]\n\"10.0.0.0/33\" = \"ours\"\n").unwrap();
        let err = Config::load(&bad).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: [owners] \"10.0.0.0/33\": not a prefix", bad.display())), "{err}");
    }

    #[test]
    fn trace_comes_from_the_file_and_a_bad_key_is_refused_naming_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(&good, "[report]\nkeep_days = 30\n[trace]\ninterval = \"90s\"\nvantage = \"p1\"\n").unwrap();
        let (config, _) = Config::load(&good).unwrap();
        let trace = config.trace.resolve(30).unwrap().unwrap();
        assert_eq!((trace.schedule.interval, trace.vantage.as_str()), (Duration::from_secs(90), "p1"));

        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[trace]\nprotocol = \"sctp\"\n").unwrap();
        let err = Config::load(&bad).unwrap_err().to_string();
        let want = format!("{}: [trace] protocol = \"sctp\": not a trace protocol (icmp, udp or tcp)", bad.display());
        assert!(err.starts_with(&want), "{err}");
        std::fs::write(&bad, "[trace]\nprobs = 3\n").unwrap();
        let err = Config::load(&bad).unwrap_err().to_string();
        assert!(err.contains(&bad.display().to_string()) && err.contains("probs"), "{err}");
    }
}
