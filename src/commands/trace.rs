//! `edgewatch trace DEST`: one Paris-style trace now, printed like `mtr --report`. Needs no
//! store: the allow-list comes from the flags and the owners from the config file. With
//! `--from-host H` the tracer of the pair from H (its agent, else a worker) traces it now
//! through the store, and the run is printed the same way.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use probers::trace::{TraceTarget, Tracer};
use probers::AllowList;

use crate::cli::{ListFormat, TraceArgs, TraceProtocolArg};
use crate::config::Settings;
use crate::labels::Labels;
use crate::output;
use crate::trace_view::TraceView;

pub async fn run(settings: &Settings, args: TraceArgs) -> Result<ExitCode> {
    if let Some(host) = &args.from_host {
        return from_host(settings, &args, host).await;
    }
    let (target, protocol) = match (args.protocol, args.port) {
        (TraceProtocolArg::Icmp, None) => (TraceTarget::new(args.dest), "icmp".to_string()),
        (TraceProtocolArg::Icmp, Some(_)) => bail!("--port is for --protocol udp or tcp"),
        (TraceProtocolArg::Udp, port) => {
            let port = port.unwrap_or(33434);
            (TraceTarget::udp(args.dest, port), format!("udp:{port}"))
        }
        (TraceProtocolArg::Tcp, port) => {
            let port = port.unwrap_or(80);
            (TraceTarget::tcp(args.dest, port), format!("tcp:{port}"))
        }
    };
    let allow = AllowList::parse(&args.allow).with_context(|| format!("--allow {}", args.allow.join(",")))?;
    let tracer = Tracer::builder(allow)
        .probes(args.probes)
        .max_ttl(args.max_ttl)
        .timeout(args.timeout)
        .build()
        .context("starting the tracer")?;
    let result = tracer.trace(target).await;
    tracer.shutdown().await;
    let run = result.with_context(|| format!("tracing {}", args.dest))?;
    let view = TraceView::new(args.dest, protocol, &run, &Labels::new(settings.owners(), Default::default()));
    match args.format {
        ListFormat::Json => output::json(&view)?,
        ListFormat::Table => {
            println!("{}", view.table());
            println!("{}", view.summary());
        }
    }
    Ok(if run.reached { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

/// `--from-host H`: the pair's tracer traces it now (through the store); the run is shown
/// like a trace made here.
async fn from_host(settings: &Settings, args: &TraceArgs, host: &str) -> Result<ExitCode> {
    let db = super::shared::connect(settings).await?;
    let dest = args.dest.to_string();
    let pair = crate::route_query::resolve(&db.pool, host, &dest).await?;
    let asked = graph_store::paths::request_trace(&db.pool, pair.id).await?;
    eprintln!(
        "asked the tracer of {} → {} ({}) to trace now; waiting up to {} …",
        pair.src,
        pair.dst,
        pair.dst_ip,
        humantime::format_duration(args.wait)
    );
    let deadline = tokio::time::Instant::now() + args.wait;
    let run = loop {
        if let Some(run) = graph_store::paths::run_after(&db.pool, pair.id, asked).await? {
            break run;
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "no trace of {} → {} within {}: is an agent running on {} (or a prober worker, `edgewatch probe`)?",
                pair.src,
                pair.dst,
                humantime::format_duration(args.wait),
                pair.src
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    let ips: Vec<std::net::IpAddr> = run.hops.iter().flat_map(|h| h.addrs.iter().copied()).collect();
    let labels = crate::route_query::labels(&db.pool, &settings.owners(), ips).await?;
    let protocol = match pair.port {
        Some(port) => format!("{}:{port}", pair.protocol),
        None => pair.protocol.clone(),
    };
    let view = TraceView::new(args.dest, protocol, &run, &labels);
    match args.format {
        ListFormat::Json => output::json(&view)?,
        ListFormat::Table => {
            println!("from {} (traced {})", pair.src, graph_store::format_utc(&run.at));
            println!("{}", view.table());
            println!("{}", view.summary());
        }
    }
    Ok(if run.reached { ExitCode::SUCCESS } else { ExitCode::from(2) })
}
