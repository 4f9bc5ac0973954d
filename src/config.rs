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
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    #[serde(default)]
    pub zones: Vec<String>,
    pub batch_lines: Option<u64>,
    pub log_utc_offset: Option<String>,
    pub expire_after: Option<String>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading the config file {}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))
    }
}
