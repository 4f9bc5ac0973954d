//! `edgewatch agent`: one agent, probing its node's edges from where the traffic starts
//! and reporting to the server.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use probers::agent::{run_agent, AgentConfig};
use probers::nginx_format::{LineFormat, LogFormat};

use crate::cli::AgentArgs;
use crate::config::Settings;

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
    let engine = Arc::new(super::shared::probe_engine(&args.probe)?);
    let mut cfg = AgentConfig::new(&args.server, &args.name, &args.token).interval(args.probe.interval);
    cfg.nginx_access_log = args.nginx_access_log.clone();
    if let Some(text) = &args.nginx_log_format {
        cfg.nginx_log_format = log_format(text)?;
    }
    cfg.trace = !args.no_trace;
    let shutdown = super::shared::shutdown_on_signal_or_after(settings.stop_timeout(), args.run_for);
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
        "{} cycles, {} results made, {} delivered, {} refused by the server, {} dropped, {} undelivered",
        totals.cycles,
        totals.results_made,
        totals.results_delivered,
        totals.results_refused,
        totals.results_dropped,
        totals.undelivered
    );
    Ok(ExitCode::SUCCESS)
}
