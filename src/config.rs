//! The configuration file (`--config FILE`, TOML), merged in one place: command-line
//! flags and environment variables win over the file, the file over the defaults.
//!
//! ```toml
//! database_url = "postgres://edgewatch@db.example.com/edgewatch"   # or DATABASE_URL
//! data_dir = "/var/lib/edgewatch"          # embedded cluster, when no database_url
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
//!
//! [api]                                    # edgewatch serve
//! read_token = "…"                         # graph questions and /metrics need it (or EDGEWATCH_READ_TOKEN)
//! snapshot_max_age = "5s"                  # topology answers may be this old
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
//! ```
//! Unknown keys are refused, naming the file and the key, so a typo never goes unseen.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub database_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub dns: DnsConfig,
    #[serde(default)]
    pub thresholds: probers::health::Thresholds,
    #[serde(default)]
    pub health: probers::health::HealthConfig,
    #[serde(default)]
    pub probe: ProbeConfig,
    #[serde(default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub diagnosis: graph_store::diagnosis::DiagnosisConfig,
    #[serde(default)]
    pub check: CheckConfig,
    #[serde(default)]
    pub report: ReportConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Local time `edgewatch run` makes the day before's report (default "00:15").
    pub at: Option<String>,
    /// IANA time zone of the reports (default: this machine's).
    pub tz: Option<String>,
    /// Also write each report here, as `edgewatch-YYYY-MM-DD.{json,md,html}`.
    pub dir: Option<PathBuf>,
    /// Days of hourly rollups kept (default 400).
    pub keep_days: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    /// The check reuses the stored diagnosis when it is at most this old (default 30s).
    pub diagnosis_max_age: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub read_token: Option<String>,
    pub snapshot_max_age: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    pub retention_days: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    #[serde(default)]
    pub zones: Vec<String>,
    pub batch_lines: Option<u64>,
    pub log_utc_offset: Option<String>,
    pub expire_after: Option<String>,
    pub rotated: Option<String>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading the config file {}", path.display()))?;
        let config: Config =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
        config.thresholds.validate().map_err(|e| anyhow::anyhow!("{}: [thresholds] {e}", path.display()))?;
        config.health.validate().map_err(|e| anyhow::anyhow!("{}: [health] {e}", path.display()))?;
        config.diagnosis.validate().map_err(|e| anyhow::anyhow!("{}: [diagnosis] {e}", path.display()))?;
        config.check_diagnosis_max_age().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(config)
    }

    /// `[check] diagnosis_max_age`, default 30 s.
    pub fn check_diagnosis_max_age(&self) -> Result<std::time::Duration, String> {
        match &self.check.diagnosis_max_age {
            None => Ok(std::time::Duration::from_secs(30)),
            Some(age) => humantime::parse_duration(age)
                .map_err(|e| format!("[check] diagnosis_max_age = {age:?}: {e} (examples: 0s, 30s, 2m)")),
        }
    }

    /// How probe results are judged, with this probe interval.
    pub fn record(&self, interval: std::time::Duration) -> probers::record::RecordConfig {
        probers::record::RecordConfig {
            thresholds: self.thresholds,
            health: self.health,
            interval,
            ..Default::default()
        }
    }
}
