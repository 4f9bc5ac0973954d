//! `edgewatch serve`, `edgewatch agent`, `edgewatch agent-token` (being written).

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{AgentArgs, AgentTokenCommand, Global, ServeArgs};

pub async fn serve(_global: &Global, _args: ServeArgs) -> Result<ExitCode> {
    anyhow::bail!("not yet")
}

pub async fn agent(_global: &Global, _args: AgentArgs) -> Result<ExitCode> {
    anyhow::bail!("not yet")
}

pub async fn agent_token(_global: &Global, _cmd: AgentTokenCommand) -> Result<ExitCode> {
    anyhow::bail!("not yet")
}
