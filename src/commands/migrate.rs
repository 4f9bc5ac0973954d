//! `edgewatch migrate`: apply pending database migrations (every command also does).

use std::process::ExitCode;

use anyhow::Result;

use crate::config::Settings;

pub async fn run(settings: &Settings) -> Result<ExitCode> {
    let db = super::shared::connect(settings).await?;
    println!("migrations applied: {}", db.location);
    Ok(ExitCode::SUCCESS)
}
