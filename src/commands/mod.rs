//! One module per top-level command, each with its `run`; [`run`] dispatches. What several
//! commands share is in [`shared`] (opening the store, stopping, the probe engine) and
//! [`reporting`] (making one day's report).

mod agent;
mod agent_token;
mod asn;
mod check;
mod cmdb;
mod config;
mod db;
mod demo;
mod dns;
mod fleet;
mod graph;
mod incidents;
mod migrate;
mod ping;
mod probe;
mod report;
mod reporting;
mod route;
mod run;
mod serve;
mod shared;
mod sql;
mod trace;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::config::Settings;

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let settings = &Settings::new(&cli.global)?;
    match cli.command {
        Command::Demo => demo::run(settings).await,
        Command::Migrate => migrate::run(settings).await,
        Command::Db(cmd) => db::run(settings, cmd).await,
        Command::Cmdb(cmd) => cmdb::run(settings, cmd).await,
        Command::Dns(cmd) => dns::run(settings, cmd).await,
        Command::Graph(args) => graph::run(settings, args).await,
        Command::Fleet(cmd) => fleet::run(cmd),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "edgewatch", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(cmd) => config::run(settings, cmd),
        Command::Man => {
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sql { query, format, timeout } => sql::run(settings, &query, format, timeout).await,
        Command::Probe(args) => probe::run(settings, args).await,
        Command::Serve(args) => serve::run(settings, args).await,
        Command::Agent(args) => agent::run(settings, args).await,
        Command::Trace(args) => trace::run(settings, args).await,
        Command::Ping(args) => ping::run(args).await,
        Command::Route(cmd) => route::run(settings, cmd).await,
        Command::AgentToken(cmd) => agent_token::run(settings, cmd).await,
        Command::Asn(cmd) => asn::run(settings, cmd).await,
        Command::Incidents { format, fresh } => incidents::run(settings, format, fresh).await,
        Command::Check(cmd) => check::run(settings, cmd).await,
        Command::Report(args) => report::run(settings, args).await,
        Command::Run(args) => run::run(settings, args).await,
    }
}
