//! `edgewatch config check`: a config file checked as every command reads it, and the
//! daemons' effective settings with where each comes from.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;
use serde::Serialize;

use crate::cli::{Cli, ConfigCommand, TextFormat};
use crate::config::Settings;
use crate::file_flags::{self, FileFlag, SECTIONS};

/// One effective setting.
#[derive(Debug, Serialize)]
struct Setting {
    section: &'static str,
    key: String,
    value: Option<String>,
    /// flag, environment, file, default, or unset.
    source: &'static str,
}

pub fn run(settings: &Settings, cmd: ConfigCommand) -> Result<ExitCode> {
    let ConfigCommand::Check { file, format } = cmd;
    let path: Option<PathBuf> = file.or_else(|| settings.config_path().map(PathBuf::from));
    let flags: Vec<FileFlag> = match &path {
        Some(path) => {
            crate::config::check_file(path)?;
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            file_flags::read(path, &text, &Cli::command())?
        }
        None => Vec::new(),
    };
    let rows = effective(&flags)?;
    match format {
        TextFormat::Json => crate::output::json(&serde_json::json!({
            "file": path.as_ref().map(|p| p.display().to_string()),
            "settings": rows,
        }))?,
        TextFormat::Text => {
            match &path {
                Some(p) => println!("{}: good", p.display()),
                None => println!("no config file (--config or EDGEWATCH_CONFIG): the defaults"),
            }
            let mut t = crate::output::table(&["section", "key", "value", "from"]);
            for r in &rows {
                let value = r.value.clone().unwrap_or_else(|| "-".into());
                t.add_row(vec![r.section.to_string(), r.key.clone(), value, r.source.to_string()]);
            }
            println!("{t}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Per daemon section, every flag's value as `edgewatch <section>` would run with it here
/// (the environment as it is, the file's keys as defaults). Tokens are not shown.
fn effective(flags: &[FileFlag]) -> Result<Vec<Setting>> {
    let cmd = file_flags::apply(Cli::command(), flags);
    let mut rows = Vec::new();
    for section in SECTIONS {
        let matches = cmd.clone().ignore_errors(true).try_get_matches_from(["edgewatch", section])?;
        let Some((_, sub)) = matches.subcommand() else { continue };
        let spec = cmd.find_subcommand(section).expect("every section is a subcommand");
        for arg in spec.get_arguments().filter(|a| a.get_long().is_some() && !a.is_hide_set()) {
            let id = arg.get_id().as_str();
            let value = sub.get_raw(id).map(|vals| {
                let vals: Vec<String> = vals.map(|v| v.to_string_lossy().into_owned()).collect();
                if id == "token" {
                    "(set, not shown)".to_string()
                } else {
                    vals.join(",")
                }
            });
            let from_file = flags.iter().any(|f| f.section == section && f.key == id);
            rows.push(Setting {
                section,
                key: id.to_string(),
                value,
                source: file_flags::source(sub.value_source(id), from_file),
            });
        }
    }
    Ok(rows)
}
