//! `edgewatch agent`: one agent, probing its node's edges from where the traffic starts
//! and reporting to the server.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use probers::agent::{run_agent, AgentConfig};
use probers::tls::Roots;

use crate::cli::AgentArgs;
use crate::config::Settings;

pub async fn run(settings: &Settings, args: AgentArgs) -> Result<ExitCode> {
    let tls = settings.agent(&args);
    let mut cfg = AgentConfig::new(&args.server, &args.name, &args.token).interval(args.probe.interval);
    cfg.nginx_access_log = args.nginx_access_log.clone();
    cfg.trace = !args.no_trace;
    cfg.roots = match tls.ca {
        Some(ca) => Roots::Bundle(ca),
        None => Roots::System,
    };
    cfg.insecure_http = tls.insecure_http;
    cfg.check().context("checking the agent's settings")?;
    let engine = Arc::new(super::shared::probe_engine(&args.probe)?);
    let shutdown = super::shared::shutdown_on_ctrl_c_or_after(args.run_for);
    eprintln!(
        "agent for {} probing every {} and reporting to {}; Ctrl-C stops",
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
