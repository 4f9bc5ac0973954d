//! `edgewatch graph …`: topology queries.

use std::process::ExitCode;

use anyhow::Result;
use graph_store::query::{self, ListOptions};

use crate::cli::{Global, GraphCommand, ListArgs, ListFormat};
use crate::output;

pub async fn run(global: &Global, cmd: GraphCommand) -> Result<ExitCode> {
    if let GraphCommand::Topology(cmd) = cmd {
        return super::topology::run(global, cmd).await;
    }
    let db = super::connect(global).await?;
    match cmd {
        GraphCommand::Nodes(args) => {
            if args.state.is_some() || args.source.is_some() {
                anyhow::bail!("--state and --source filter edges, not nodes");
            }
            let nodes = query::nodes(&db.pool, list_options(&args)).await?;
            match args.format {
                ListFormat::Json => output::json(&nodes)?,
                ListFormat::Table => output::nodes_table(&nodes),
            }
        }
        GraphCommand::Edges(args) => {
            let edges = query::edges(&db.pool, list_options(&args)).await?;
            match args.format {
                ListFormat::Json => output::json(&edges)?,
                ListFormat::Table => output::edges_table(&edges),
            }
        }
        GraphCommand::Topology(_) => unreachable!("answered above"),
        GraphCommand::Broken { format } => {
            let broken = query::broken(&db.pool).await?;
            match format {
                ListFormat::Json => output::json(&broken)?,
                ListFormat::Table => output::broken_table(&broken),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list_options(args: &ListArgs) -> ListOptions {
    ListOptions {
        include_retired: args.all,
        dc: args.dc.clone(),
        role: args.role.clone(),
        host: args.host.clone(),
        service: args.service.clone(),
        state: args.state.clone(),
        source: args.source.clone(),
    }
}
