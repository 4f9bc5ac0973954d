//! `edgewatch trace DEST`: one Paris-style trace now, printed like `mtr --report`. Needs no
//! store: the allow-list comes from the flags and the owners from the config file.

use std::process::ExitCode;

use anyhow::{Context, Result};
use probers::trace::{TraceTarget, Tracer};
use probers::AllowList;

use crate::cli::{ListFormat, TraceArgs, TraceProtocolArg};
use crate::config::Settings;
use crate::labels::Labels;
use crate::output;
use crate::trace_view::TraceView;

pub async fn run(settings: &Settings, args: TraceArgs) -> Result<ExitCode> {
    let allow = AllowList::parse(&args.allow).with_context(|| format!("--allow {}", args.allow.join(",")))?;
    let tracer = Tracer::builder(allow)
        .probes(args.probes)
        .max_ttl(args.max_ttl)
        .timeout(args.timeout)
        .build()
        .context("starting the tracer")?;
    let (target, protocol) = match args.protocol {
        TraceProtocolArg::Icmp => (TraceTarget::new(args.dest), "icmp".to_string()),
        TraceProtocolArg::Udp => (TraceTarget::udp(args.dest, args.port), format!("udp:{}", args.port)),
    };
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
