//! `edgewatch migrate`: apply pending database migrations (every command also does).

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::Global;

pub async fn run(global: &Global) -> Result<ExitCode> {
    let db = super::shared::connect(global).await?;
    println!("migrations applied: {}", db.location);
    Ok(ExitCode::SUCCESS)
}
