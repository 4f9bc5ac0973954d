//! `edgewatch trace DEST`: one Paris-style trace now, printed like `mtr --report`. Needs no
//! store: the allow-list comes from the flags and the owners from the config file.

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
