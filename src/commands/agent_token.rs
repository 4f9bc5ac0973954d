//! `edgewatch agent-token create|revoke`: the agents' tokens (the store keeps only their
//! hashes).

use std::process::ExitCode;

use anyhow::{Context, Result};
use graph_store::agents as store;
use graph_store::PgPool;

use crate::cli::AgentTokenCommand;
use crate::config::Settings;
use crate::http::token;

pub async fn run(settings: &Settings, cmd: AgentTokenCommand) -> Result<ExitCode> {
    let db = super::shared::connect(settings).await?;
    match cmd {
        AgentTokenCommand::Create { node } => {
            let node_id = live_node(&db.pool, &node).await?;
            let token = token::generate();
            store::create_token(&db.pool, node_id, &token::hash(&token)).await?;
            println!("{token}");
            eprintln!("token for {node} made; it is shown only now (the store keeps only its hash)");
        }
        AgentTokenCommand::Revoke { node } => {
            let node_id = live_node(&db.pool, &node).await?;
            let n = store::revoke_tokens(&db.pool, node_id).await?;
            eprintln!("revoked {n} token(s) of {node}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn live_node(pool: &PgPool, node: &str) -> Result<i64> {
    store::live_node(pool, node)
        .await?
        .with_context(|| format!("unknown node {node:?}: not in the graph, or retired (see `edgewatch graph nodes`)"))
}
