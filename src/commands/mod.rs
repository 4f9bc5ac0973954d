//! One module per command family; [`run`] dispatches.

mod check;
mod cmdb;
mod db;
mod demo;
mod dns;
mod fleet;
mod graph;
mod probe;
mod report;
mod serve;
pub mod topology;

use std::process::ExitCode;

use anyhow::{Context, Result};
use graph_store::db::Target;
use graph_store::Database;

use crate::cli::{Cli, Command, Global};

pub async fn run(mut cli: Cli) -> Result<ExitCode> {
    if let Some(path) = &cli.global.config {
        cli.global.file = crate::config::Config::load(path)?;
    }
    let global = &cli.global;
    match cli.command {
        Command::Demo => demo::run(global).await,
        Command::Migrate => {
            let db = connect(global).await?;
            println!("migrations applied: {}", db.location);
            Ok(ExitCode::SUCCESS)
        }
        Command::Db(cmd) => db::run(global, cmd).await,
        Command::Cmdb(cmd) => cmdb::run(global, cmd).await,
        Command::Dns(cmd) => dns::run(global, cmd).await,
        Command::Graph(cmd) => graph::run(global, cmd).await,
        Command::Fleet(cmd) => fleet::run(cmd),
        Command::Sql { query, format, timeout } => {
            let db = connect(global).await?;
            let result = graph_store::sql::read_only(&db.pool, &query, timeout.as_millis() as u64).await?;
            match format {
                crate::cli::ListFormat::Json => crate::output::json(&crate::output::rows_as_objects(&result))?,
                crate::cli::ListFormat::Table => crate::output::rows_table(&result),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Probe(args) => probe::run(global, args).await,
        Command::Serve(args) => serve::serve(global, args).await,
        Command::Agent(args) => serve::agent(global, args).await,
        Command::AgentToken(cmd) => serve::agent_token(global, cmd).await,
        Command::Incidents { format } => check::incidents(global, format).await,
        Command::Check(crate::cli::CheckCommand::Nagios(args)) => check::nagios(global, args).await,
        Command::Report(args) => report::report(global, args).await,
        Command::Run(args) => report::run(global, args).await,
    }
}

/// Where the store is, from the global flags.
pub fn target(global: &Global) -> Target {
    match global.database_url() {
        Some(url) => Target::Url(url),
        None => Target::Embedded(global.data_dir()),
    }
}

/// Opens the store (starting the embedded cluster if needed) with migrations applied.
pub async fn connect(global: &Global) -> Result<Database> {
    let target = target(global);
    graph_store::connect(&target).await.with_context(|| match target {
        Target::Url(_) => "opening the database given by --database-url / DATABASE_URL".to_string(),
        Target::Embedded(dir) => format!("opening the embedded database in {}", dir.display()),
    })
}

/// A token cancelled by Ctrl-C (SIGINT), for the long-running commands.
pub fn shutdown_on_ctrl_c() -> tokio_util::sync::CancellationToken {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_signal.cancel();
    });
    shutdown
}

/// Like [`shutdown_on_ctrl_c`], also cancelled once `limit` has passed (`--run-for`).
pub fn shutdown_on_ctrl_c_or_after(limit: Option<std::time::Duration>) -> tokio_util::sync::CancellationToken {
    let shutdown = shutdown_on_ctrl_c();
    if let Some(limit) = limit {
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            stop.cancel();
        });
    }
    shutdown
}
