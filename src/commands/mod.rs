//! One module per top-level command, each with its `run`; [`run`] dispatches. What several
//! commands share is in [`shared`] (opening the store, stopping, the probe engine) and
//! [`reporting`] (making one day's report).

mod agent;
mod agent_token;
mod check;
mod cmdb;
mod db;
mod demo;
mod dns;
mod fleet;
mod graph;
mod incidents;
mod migrate;
mod probe;
mod report;
mod reporting;
mod run;
mod serve;
mod shared;
mod sql;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command};

pub async fn run(mut cli: Cli) -> Result<ExitCode> {
    if let Some(path) = &cli.global.config {
        cli.global.file = crate::config::Config::load(path)?;
    }
    let global = &cli.global;
    match cli.command {
        Command::Demo => demo::run(global).await,
        Command::Migrate => migrate::run(global).await,
        Command::Db(cmd) => db::run(global, cmd).await,
        Command::Cmdb(cmd) => cmdb::run(global, cmd).await,
        Command::Dns(cmd) => dns::run(global, cmd).await,
        Command::Graph(args) => graph::run(global, args).await,
        Command::Fleet(cmd) => fleet::run(cmd),
        Command::Sql { query, format, timeout } => sql::run(global, &query, format, timeout).await,
        Command::Probe(args) => probe::run(global, args).await,
        Command::Serve(args) => serve::run(global, args).await,
        Command::Agent(args) => agent::run(global, args).await,
        Command::AgentToken(cmd) => agent_token::run(global, cmd).await,
        Command::Incidents { format } => incidents::run(global, format).await,
        Command::Check(cmd) => check::run(global, cmd).await,
        Command::Report(args) => report::run(global, args).await,
        Command::Run(args) => run::run(global, args).await,
    }
}
