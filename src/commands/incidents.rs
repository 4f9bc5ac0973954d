//! `edgewatch incidents`: the broken edges grouped into incidents, each with its likely
//! culprit.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use graph_store::diagnosis::{self, Incident};
use graph_store::format_utc;

use crate::cli::ListFormat;
use crate::config::Settings;
use crate::output;

/// The stored diagnosis is reused while at most this old (and seeing exactly the edges
/// broken now): `serve`'s leader remakes it every interval (at most 30 s), which at a
/// million edges itself takes seconds.
const REUSE_MAX_AGE: Duration = Duration::from_secs(120);

pub async fn run(settings: &Settings, format: ListFormat, fresh: bool) -> Result<ExitCode> {
    let db = super::shared::connect(settings).await?;
    let read = crate::read_pool::for_command(settings, &db.pool).await?;
    let reused = if fresh { None } else { diagnosis::stored_if_current(&read.pool, REUSE_MAX_AGE).await? };
    let diagnosis = if let Some(d) = reused {
        d
    } else if read.on_standby {
        diagnosis::current_read_only(&read.pool, &settings.diagnosis(), Duration::ZERO).await?
    } else {
        diagnosis::current(&db.pool, &settings.diagnosis(), Duration::ZERO).await?
    };
    match format {
        ListFormat::Json => output::json(&diagnosis.incidents)?,
        ListFormat::Table => {
            let mut t = output::table(&["kind", "culprit", "edges", "consumers", "since", "evidence"]);
            for i in &diagnosis.incidents {
                t.add_row(vec![
                    i.kind.as_str().to_string(),
                    i.culprit.clone(),
                    i.edges.len().to_string(),
                    i.affected_nodes.to_string(),
                    format_utc(&i.since),
                    i.evidence.clone(),
                ]);
            }
            println!("{t}");
            let labels = crate::path_evidence::labels(&read.pool, settings.owners(), &diagnosis.incidents).await;
            for i in diagnosis.incidents.iter().filter(|i| !i.paths.is_empty()) {
                println!("{} {}:", i.kind.as_str(), i.culprit);
                for e in &i.paths {
                    println!("  {}", crate::path_evidence::line(e, &labels));
                }
            }
            println!(
                "{} incident(s), {} broken edge(s)",
                diagnosis.incidents.len(),
                broken_count(&diagnosis.incidents)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn broken_count(incidents: &[Incident]) -> usize {
    incidents.iter().map(|i| i.edges.len()).sum()
}
