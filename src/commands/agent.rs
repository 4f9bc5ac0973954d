//! `edgewatch agent`: one agent, probing its node's edges from where the traffic starts
//! and reporting to the server.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use probers::agent::{run_agent, AgentConfig};
use probers::nginx_format::{LineFormat, LogFormat};
use probers::tls::Roots;

use crate::cli::AgentArgs;
use crate::config::Settings;

/// `--spool`: a directory, `off`, or the default under the state directory.
fn spool_dir(flag: Option<&std::path::Path>) -> Option<std::path::PathBuf> {
    match flag {
        Some(p) if p.as_os_str() == "off" => None,
        Some(p) => Some(p.to_path_buf()),
        None => Some(match std::env::var_os("STATE_DIRECTORY").filter(|d| !d.is_empty()) {
            // systemd may give several, separated by ':': the first is the agent's.
            Some(dirs) => {
                std::path::PathBuf::from(dirs.to_string_lossy().split(':').next().unwrap_or_default().to_string())
                    .join("spool")
            }
            None => std::path::PathBuf::from(".edgewatch/agent-spool"),
        }),
    }
}

/// `--nginx-log-format`: a directive or format string, or @FILE holding one.
fn log_format(text: &str) -> Result<LineFormat> {
    let (what, text) = match text.strip_prefix('@') {
        Some(file) => {
            let body = std::fs::read_to_string(file).with_context(|| format!("--nginx-log-format: reading {file}"))?;
            (format!("--nginx-log-format @{file}"), body)
        }
        None => ("--nginx-log-format".to_string(), text.to_string()),
    };
    let format = LogFormat::parse(&text).with_context(|| format!("{what}: cannot read access logs in this format"))?;
    Ok(LineFormat::Custom(format))
}

pub async fn run(settings: &Settings, args: AgentArgs) -> Result<ExitCode> {
    let tls = settings.agent(&args);
    let mut cfg = AgentConfig::new(&args.server, &args.name, &args.token).interval(args.probe.interval);
    cfg.nginx_access_log = args.nginx_access_log.clone();
    if let Some(text) = &args.nginx_log_format {
        cfg.nginx_log_format = log_format(text)?;
    }
    cfg.trace = !args.no_trace;
    cfg.spool = spool_dir(args.spool.as_deref());
    cfg.spool_max = args.spool_max;
    cfg.roots = match tls.ca {
        Some(ca) => Roots::Bundle(ca),
        None => Roots::System,
    };
    cfg.insecure_http = tls.insecure_http;
    cfg.check().context("checking the agent's settings")?;
    let engine = Arc::new(super::shared::probe_engine(&args.probe)?);
    let shutdown = super::shared::shutdown_on_signal_or_after(settings.stop_timeout(), args.run_for);
    // The agent's targets and thresholds are the server's: a SIGHUP checks the file and says
    // what would change at the next start.
    let _reloads = crate::reload::on_sighup(settings, crate::reload::Live::NONE, "agent")?;
    eprintln!(
        "agent for {} probing every {} and reporting to {}; Ctrl-C or SIGTERM stops",
        args.name,
        humantime::format_duration(args.probe.interval),
        args.server
    );
    let totals = run_agent(engine.clone(), cfg, shutdown).await.context("running the agent")?;
    engine.shutdown().await;
    if !args.no_trace {
        eprintln!(
            "{} paths traced, {} runs delivered, {} lost",
            totals.runs_traced, totals.runs_delivered, totals.runs_lost
        );
    }
    // The summary stays the last line (scripts and tests read it).
    eprintln!(
        "{} cycles, {} results made, {} delivered, {} refused by the server, {} dropped, {} undelivered, \
         {} restored from the spool",
        totals.cycles,
        totals.results_made,
        totals.results_delivered,
        totals.results_refused,
        totals.results_dropped,
        totals.undelivered,
        totals.results_restored
    );
    Ok(ExitCode::SUCCESS)
}
