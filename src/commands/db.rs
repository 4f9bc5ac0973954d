//! `edgewatch db start|stop|status|url` and the embedded cluster.

use std::process::ExitCode;

use anyhow::{bail, Result};
use graph_store::embedded::{EmbeddedCluster, Status, DATABASE};
use graph_store::Pooler;
use serde_json::json;

use crate::cli::{DbCommand, TextFormat};
use crate::config::Settings;

pub async fn run(settings: &Settings, cmd: DbCommand) -> Result<ExitCode> {
    if settings.database_url().is_some() {
        bail!(
            "`edgewatch db` manages the embedded cluster, but --database-url / DATABASE_URL \
             points at another server; unset it to manage the cluster in {}",
            settings.data_dir().display()
        );
    }
    let cluster = EmbeddedCluster::new(settings.data_dir())?;
    match cmd {
        DbCommand::Start => {
            let started = cluster.start()?;
            cluster.ensure_database(DATABASE).await?;
            let pool =
                graph_store::db::pool(cluster.connect_options(DATABASE), &cluster.url(DATABASE), Pooler::None).await?;
            graph_store::migrate(&pool).await?;
            let how = match (started.initialised, started.was_running) {
                (true, _) => "initialised and started",
                (false, true) => "already running",
                (false, false) => "started",
            };
            println!("embedded PostgreSQL {how}: {}", cluster.cluster_dir().display());
            println!("url: {}", cluster.url(DATABASE));
            Ok(ExitCode::SUCCESS)
        }
        DbCommand::Stop => {
            if cluster.stop()? {
                println!("embedded PostgreSQL stopped: {}", cluster.cluster_dir().display());
            } else {
                println!("embedded PostgreSQL was not running: {}", cluster.cluster_dir().display());
            }
            Ok(ExitCode::SUCCESS)
        }
        DbCommand::Status { format } => {
            let status = cluster.status()?;
            let word = match status {
                Status::Running => "running",
                Status::Stopped => "stopped",
                Status::NotInitialised => "not initialised",
            };
            match format {
                TextFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "status": word,
                        "cluster_dir": cluster.cluster_dir(),
                        "server_binaries": cluster.bindir(),
                        "os_user": cluster.os_user(),
                        "log": cluster.log_file(),
                        "url": cluster.url(DATABASE),
                    }))?
                ),
                TextFormat::Text => {
                    println!("status:          {word}");
                    println!("cluster:         {}", cluster.cluster_dir().display());
                    println!("server binaries: {}", cluster.bindir().display());
                    println!("runs as:         {}", cluster.os_user());
                    println!("log:             {}", cluster.log_file().display());
                    println!("url:             {}", cluster.url(DATABASE));
                }
            }
            // LSB status codes: 0 running, 3 not running.
            Ok(if status == Status::Running { ExitCode::SUCCESS } else { ExitCode::from(3) })
        }
        DbCommand::Url => {
            println!("{}", cluster.url(DATABASE));
            Ok(ExitCode::SUCCESS)
        }
    }
}
