//! `edgewatch graph …`: topology queries.

use std::process::ExitCode;

use anyhow::Result;
use graph_store::query::{self, ListOptions};

use crate::cli::{Global, GraphCommand, ListFormat};
use crate::output;

pub async fn run(global: &Global, cmd: GraphCommand) -> Result<ExitCode> {
    let db = super::connect(global).await?;
    match cmd {
        GraphCommand::Nodes(args) => {
            let nodes = query::nodes(&db.pool, ListOptions { include_retired: args.all }).await?;
            match args.format {
                ListFormat::Json => output::json(&nodes)?,
                ListFormat::Table => output::nodes_table(&nodes),
            }
        }
        GraphCommand::Edges(args) => {
            let edges = query::edges(&db.pool, ListOptions { include_retired: args.all }).await?;
            match args.format {
                ListFormat::Json => output::json(&edges)?,
                ListFormat::Table => output::edges_table(&edges),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
