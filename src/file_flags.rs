//! The daemons' flags from the config file: `[serve]`, `[probe]` and `[agent]` take any of
//! their command's flags as keys (`--spool-max 64MB` is `spool_max = "64MB"`, lists as
//! arrays: `allow = ["10.0.0.0/8"]`, switches as booleans). A key becomes the flag's
//! default, so flags and environment variables still win over the file, and the file over
//! the built-in default. An unknown key is refused naming the file, line and key.
//!
//! [`apply`] changes the clap command before the real parse; [`sources`] says, for
//! `config check`, where each effective value came from.

use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::parser::ValueSource;

/// The config sections that hold daemon flags, and their subcommands.
pub const SECTIONS: [&str; 3] = ["serve", "probe", "agent"];

/// Keys of those sections that are not flags (read by [`crate::config`]).
const FILE_ONLY: [(&str, &str); 1] = [("probe", "retention_days")];

/// The config file the command line or the environment names, read before the command
/// line is parsed for real (its daemon flags become defaults).
pub fn config_path(args: &[String]) -> Option<std::path::PathBuf> {
    let mut it = args.iter().skip(1);
    while let Some(arg) = it.next() {
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return it.next().map(std::path::PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(path.into());
        }
    }
    std::env::var_os("EDGEWATCH_CONFIG").filter(|p| !p.is_empty()).map(Into::into)
}

/// One key of a daemon section: its flag's id, its value as the flag would take it, and
/// the line it is on.
#[derive(Debug, Clone, PartialEq)]
pub struct FileFlag {
    pub section: &'static str,
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// The daemon sections of a config file's text, checked against `cmd`'s flags.
pub fn read(path: &Path, text: &str, cmd: &clap::Command) -> Result<Vec<FileFlag>> {
    let table: toml::Table = toml::from_str(text).with_context(|| format!("{}", path.display()))?;
    let mut flags = Vec::new();
    for section in SECTIONS {
        let Some(value) = table.get(section) else { continue };
        let Some(keys) = value.as_table() else {
            bail!("{}:{}: [{section}] must be a table of flags", path.display(), line_of(text, section, None));
        };
        let sub = cmd.find_subcommand(section).expect("every section is a subcommand");
        for (key, value) in keys.iter().filter(|(k, _)| !FILE_ONLY.contains(&(section, k.as_str()))) {
            let line = line_of(text, section, Some(key));
            let Some(arg) = sub.get_arguments().find(|a| a.get_id().as_str() == key && a.get_long().is_some()) else {
                let known: Vec<String> = sub
                    .get_arguments()
                    .filter(|a| a.get_long().is_some() && !a.is_hide_set() && !a.is_global_set())
                    .map(|a| a.get_id().to_string())
                    .collect();
                bail!(
                    "{}:{line}: [{section}] unknown key `{key}` (the keys are {}'s flags: {})",
                    path.display(),
                    section,
                    known.join(", ")
                );
            };
            let value = flag_value(value).with_context(|| {
                format!("{}:{line}: [{section}] {key} = {value}: not a value for --{}", path.display(), arg_long(arg))
            })?;
            flags.push(FileFlag { section, key: key.clone(), value, line });
        }
    }
    Ok(flags)
}

fn arg_long(arg: &clap::Arg) -> &str {
    arg.get_long().unwrap_or_default()
}

/// A TOML value as a flag takes it: strings as they are, numbers and booleans as text,
/// arrays joined by commas.
fn flag_value(value: &toml::Value) -> Result<String> {
    Ok(match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Array(items) => items.iter().map(flag_value).collect::<Result<Vec<_>>>()?.join(","),
        other => bail!("a {} cannot be a flag's value", other.type_str()),
    })
}

/// The line (from 1) of `key` in `[section]` of `text`, or of the section's header.
fn line_of(text: &str, section: &str, key: Option<&str>) -> usize {
    let mut in_section = false;
    let mut header = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            in_section = line.trim_start_matches('[').trim_end_matches(']').trim() == section;
            if in_section {
                header = i + 1;
            }
            continue;
        }
        if let (true, Some(key)) = (in_section, key) {
            let name = line.split('=').next().unwrap_or_default().trim().trim_matches('"');
            if name == key {
                return i + 1;
            }
        }
    }
    header
}

/// `cmd` with the file's daemon flags as the defaults of those flags.
pub fn apply(mut cmd: clap::Command, flags: &[FileFlag]) -> clap::Command {
    for flag in flags {
        // clap keeps defaults for the life of the program: one small leak per key.
        let value: &'static str = Box::leak(flag.value.clone().into_boxed_str());
        let key = flag.key.clone();
        // A required flag (the agent's --server) given by the file is not required any more.
        cmd = cmd
            .mut_subcommand(flag.section, move |sub| sub.mut_arg(key, move |a| a.default_value(value).required(false)));
    }
    cmd
}

/// Where an effective value came from, as `config check` says it.
pub fn source(value: Option<ValueSource>, from_file: bool) -> &'static str {
    match value {
        Some(ValueSource::CommandLine) => "flag",
        Some(ValueSource::EnvVariable) => "environment",
        Some(ValueSource::DefaultValue) if from_file => "file",
        Some(ValueSource::DefaultValue) => "default",
        _ => "unset",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn cmd() -> clap::Command {
        crate::Cli::command()
    }

    #[test]
    fn daemon_sections_become_the_flags_defaults() {
        let text = "database_url = \"postgres://x\"\n\n[agent]\nserver = \"https://ew:8440\"\nallow = [\"10.0.0.0/8\", \"::1/128\"]\n\
                    spool_max = \"1MB\"\nno_trace = true\n\n[serve]\nlisten = \"127.0.0.1:9000\"\n";
        let flags = read(Path::new("e.toml"), text, &cmd()).unwrap();
        let got: Vec<(&str, &str, &str, usize)> =
            flags.iter().map(|f| (f.section, f.key.as_str(), f.value.as_str(), f.line)).collect();
        assert_eq!(
            got,
            [
                ("serve", "listen", "127.0.0.1:9000", 10),
                ("agent", "allow", "10.0.0.0/8,::1/128", 5),
                ("agent", "no_trace", "true", 7),
                ("agent", "server", "https://ew:8440", 4),
                ("agent", "spool_max", "1MB", 6),
            ]
        );
        let matches = apply(cmd(), &flags)
            .try_get_matches_from(["edgewatch", "agent", "--name", "be5.host58", "--token", "t", "--spool-max", "2MB"])
            .unwrap();
        let (_, agent) = matches.subcommand().unwrap();
        assert_eq!(agent.get_one::<String>("server").map(String::as_str), Some("https://ew:8440"));
        assert_eq!(agent.get_one::<u64>("spool_max"), Some(&2_000_000), "the flag wins over the file");
        assert_eq!(source(agent.value_source("spool_max"), true), "flag");
        assert_eq!(source(agent.value_source("server"), true), "file");
        assert!(agent.get_flag("no_trace"));
        let allow: Vec<&String> = agent.get_many::<String>("allow").unwrap().collect();
        assert_eq!(allow, ["10.0.0.0/8", "::1/128"]);
    }

    /// deploy/edgewatch.toml holds every daemon flag (commented out when it has no
    /// default), each at the code's default: the sample cannot drift.
    #[test]
    fn the_sample_config_has_every_daemon_flag_at_its_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/edgewatch.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let cmd = cmd();
        let flags = read(&path, &text, &cmd).unwrap();
        for section in SECTIONS {
            let sub = cmd.find_subcommand(section).unwrap();
            let in_section = section_text(&text, section);
            for arg in sub.get_arguments().filter(|a| a.get_long().is_some() && !a.is_hide_set()) {
                let id = arg.get_id().as_str();
                let mut defaults: Vec<String> =
                    arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
                if matches!(arg.get_action(), clap::ArgAction::SetTrue) && defaults.is_empty() {
                    defaults.push("false".into()); // what clap gives a switch not given
                }
                let set = flags.iter().find(|f| f.section == section && f.key == id);
                match (set, defaults.is_empty()) {
                    (Some(f), false) => assert_eq!(f.value, defaults.join(","), "[{section}] {id}"),
                    (Some(f), true) => panic!("[{section}] {id} = {:?} has no default in the code", f.value),
                    (None, _) => {
                        let commented = in_section.lines().any(|l| l.trim_start().starts_with(&format!("# {id} =")));
                        assert!(commented && defaults.is_empty(), "[{section}] {id} is missing from the sample");
                    }
                }
            }
        }
    }

    /// The lines of `[section]` in `text`.
    fn section_text(text: &str, section: &str) -> String {
        let mut out = String::new();
        let mut inside = false;
        for line in text.lines() {
            if line.starts_with('[') {
                inside = line.trim_start_matches('[').split(']').next() == Some(section);
                continue;
            }
            if inside {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    #[test]
    fn unknown_keys_and_bad_values_name_file_line_and_key() {
        let e = read(Path::new("/etc/edgewatch/e.toml"), "[probe]\nworkers = 2\n\nworkerz = 3\n", &cmd()).unwrap_err();
        let said = e.to_string();
        assert!(said.starts_with("/etc/edgewatch/e.toml:4: [probe] unknown key `workerz`"), "{said}");
        assert!(said.contains("workers"), "the keys are listed: {said}");
        let e = read(Path::new("e.toml"), "[serve]\nlisten = { a = 1 }\n", &cmd()).unwrap_err();
        assert!(format!("{e:#}").starts_with("e.toml:2: [serve] listen"), "{e:#}");
        let e = read(Path::new("e.toml"), "serve = 3\n", &cmd()).unwrap_err();
        assert!(e.to_string().contains("[serve] must be a table"), "{e}");
    }
}
