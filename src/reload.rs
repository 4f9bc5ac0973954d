//! SIGHUP for the long-running commands: the config file is read again and checked as at
//! start; what changed is said one key a line, each marked applied (the command's
//! [`Live`] keys: thresholds, diagnosis, trace targets, TLS files, …) or waiting for a
//! restart (the rest: listen address, database, daemon flags). A file that does not load
//! changes nothing and says why. Without `--config` a SIGHUP only re-reads what the
//! command reads itself (`serve`'s TLS files).
//!
//! [`changes`] and [`Live::split`] are pure; [`on_sighup`] is the signal's edge.

use std::sync::Arc;

use anyhow::Result;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::config::Settings;

/// One key whose value differs between the file in use and the file read again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `section.key`, or a top-level key alone.
    pub key: String,
    /// As written in the file (TOML); `None`: not in that file (the default).
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Keys whose values are secrets: a change is said, its values are not.
const SECRET: [&str; 4] = ["database_url", "read_url", "token", "read_token"];

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (section, key) = match self.key.split_once('.') {
            Some((section, key)) => (format!("[{section}] "), key),
            None => (String::new(), self.key.as_str()),
        };
        if SECRET.contains(&key) {
            return write!(f, "{section}{key} changed (value not shown)");
        }
        let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "(default)".to_string());
        write!(f, "{section}{key}: {} → {}", shown(&self.before), shown(&self.after))
    }
}

/// Every key that differs between two config files, sorted by key. A section's keys are
/// compared one by one (`thresholds.degraded_loss_pct`); arrays (`trace.targets`) whole.
pub fn changes(old: &toml::Table, new: &toml::Table) -> Vec<Change> {
    let (old, new) = (flatten(old), flatten(new));
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| Change { key: k.clone(), before: old.get(k).cloned(), after: new.get(k).cloned() })
        .collect()
}

fn flatten(table: &toml::Table) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for (key, value) in table {
        match value {
            toml::Value::Table(section) => {
                for (k, v) in section {
                    out.insert(format!("{key}.{k}"), v.to_string());
                }
            }
            other => {
                out.insert(key.clone(), other.to_string());
            }
        }
    }
    out
}

/// The keys a command applies while running: whole sections (`thresholds`) or single
/// keys (`api.tls_cert`).
#[derive(Debug, Clone, Copy)]
pub struct Live(pub &'static [&'static str]);

impl Live {
    pub const SERVE: Live =
        Live(&["thresholds", "health", "diagnosis", "owners", "trace", "api.tls_cert", "api.tls_key"]);
    pub const PROBE: Live = Live(&["thresholds", "health", "trace", "probe.retention_days"]);
    pub const RUN: Live = Live(&["report"]);
    /// `agent`, `dns tail`, `cmdb watch`: their settings are fixed while they run (an
    /// agent's thresholds and targets are the server's).
    pub const NONE: Live = Live(&[]);

    pub fn applies(&self, key: &str) -> bool {
        self.0.iter().any(|live| key == *live || key.strip_prefix(live).is_some_and(|rest| rest.starts_with('.')))
    }

    /// The changes applied now, and those that wait for a restart.
    pub fn split(&self, changes: Vec<Change>) -> (Vec<Change>, Vec<Change>) {
        changes.into_iter().partition(|c| self.applies(&c.key))
    }
}

/// What a SIGHUP gave: the settings to run with from now on (the same when the file did
/// not load or nothing changed) and how many changes were applied.
#[derive(Debug, Clone)]
pub struct Reloaded {
    pub settings: Arc<Settings>,
    pub applied: usize,
}

/// Listens for SIGHUP from now on (instead of its default, ending the process). Each one
/// reads the config file again, says what changed, and sends the new settings (every
/// SIGHUP sends, so that files read by the command itself — TLS — are read again too).
/// `command` names the command in what is said.
pub fn on_sighup(settings: &Settings, live: Live, command: &'static str) -> Result<watch::Receiver<Reloaded>> {
    use anyhow::Context;
    let mut hangups = signal(SignalKind::hangup()).context("listening for SIGHUP (which reloads the config file)")?;
    let current = Arc::new(settings.clone());
    let (tx, rx) = watch::channel(Reloaded { settings: current.clone(), applied: 0 });
    tokio::spawn(async move {
        let mut current = current;
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                got = hangups.recv() => if got.is_none() { return },
            }
            let (next, applied) = reread(&current, live, command);
            current = next;
            if tx.send(Reloaded { settings: current.clone(), applied }).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// One SIGHUP: the settings to go on with, and how many changes were applied.
fn reread(current: &Arc<Settings>, live: Live, command: &str) -> (Arc<Settings>, usize) {
    let Some(path) = current.config_path() else {
        eprintln!("SIGHUP: {command} runs without a config file (--config); nothing to read again");
        return (current.clone(), 0);
    };
    let next = match current.reloaded() {
        Ok(next) => next,
        Err(e) => {
            eprintln!("SIGHUP: {}: keeping the settings in use: {}", path.display(), crate::error_chain(&e));
            return (current.clone(), 0);
        }
    };
    let (applied, waiting) = live.split(changes(current.raw(), next.raw()));
    if applied.is_empty() && waiting.is_empty() {
        eprintln!("SIGHUP: {} read again; nothing changed", path.display());
    }
    for change in &applied {
        eprintln!("SIGHUP: {change} (applied)");
    }
    for change in &waiting {
        eprintln!("SIGHUP: {change} (not applied: {command} takes it at its next start)");
    }
    (Arc::new(next), applied.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn changes_are_said_key_by_key_with_defaults_and_secrets() {
        let old = table("data_dir = \"/a\"\n[thresholds]\ndegraded_loss_pct = 20.0\n[api]\nread_token = \"s1\"\n");
        let new = table(
            "data_dir = \"/a\"\n[thresholds]\ndegraded_loss_pct = 35.0\nfailed_loss_pct = 95.0\n\
             [api]\nread_token = \"s2\"\n[[trace.targets]]\nname = \"x\"\naddress = \"127.0.0.9\"\n",
        );
        let said: Vec<String> = changes(&old, &new).iter().map(ToString::to_string).collect();
        assert_eq!(
            said,
            [
                "[api] read_token changed (value not shown)",
                "[thresholds] degraded_loss_pct: 20.0 → 35.0",
                "[thresholds] failed_loss_pct: (default) → 95.0",
                "[trace] targets: (default) → [{ address = \"127.0.0.9\", name = \"x\" }]",
            ]
        );
        assert!(changes(&new, &new).is_empty());
        let back: Vec<String> = changes(&new, &old).iter().map(ToString::to_string).collect();
        assert!(back.contains(&"[thresholds] failed_loss_pct: 95.0 → (default)".to_string()), "{back:?}");
    }

    #[test]
    fn each_command_applies_its_own_keys_and_leaves_the_rest_for_a_restart() {
        let keys = ["thresholds.k", "trace.targets", "api.tls_cert", "api.read_token", "serve.listen", "data_dir"];
        let all: Vec<Change> = keys.iter().map(|k| Change { key: k.to_string(), before: None, after: None }).collect();
        let names = |cs: Vec<Change>| cs.into_iter().map(|c| c.key).collect::<Vec<_>>();
        let (now, later) = Live::SERVE.split(all.clone());
        assert_eq!(names(now), ["thresholds.k", "trace.targets", "api.tls_cert"]);
        assert_eq!(names(later), ["api.read_token", "serve.listen", "data_dir"]);
        let (now, later) = Live::NONE.split(all.clone());
        assert!(now.is_empty() && later.len() == keys.len());
        // A prefix of a key's name is not its section.
        assert!(!Live(&["trace"]).applies("traceroute.x") && Live(&["trace"]).applies("trace.x"));
    }
}
