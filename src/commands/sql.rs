//! `edgewatch sql`: one read-only query, printed as a table or JSON.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use crate::cli::ListFormat;
use crate::config::Settings;
use crate::output;

pub async fn run(settings: &Settings, query: &str, format: ListFormat, timeout: Duration) -> Result<ExitCode> {
    let db = super::shared::connect(settings).await?;
    let read = crate::read_pool::for_command(settings, &db.pool).await?.pool;
    let result = graph_store::sql::read_only(&read, query, timeout.as_millis() as u64).await?;
    match format {
        ListFormat::Json => output::json(&output::rows_as_objects(&result))?,
        ListFormat::Table => output::rows_table(&result),
    }
    Ok(ExitCode::SUCCESS)
}
