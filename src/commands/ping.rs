//! `edgewatch ping TARGET… | -f FILE`: fping-like one-shot pings on the probe engine. Every
//! target is parsed and checked against the allow-list before the engine is even built, so
//! one bad or refused target means nothing is sent to any target (exit 2).

mod targets;

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, Result};
use probers::{AllowList, Engine, Family, ProbeTarget};

use self::targets::{BadTarget, Target};
use crate::cli::{ListFormat, PingArgs};
use crate::output::{self, PingRow};

/// Bad lines and refused targets said at most this many times each (then a count).
const SHOW_AT_MOST: usize = 10;

/// Exit status: every target answered at least once.
const ALL_ANSWERED: u8 = 0;
/// Exit status: some target did not answer at all.
const SOME_SILENT: u8 = 1;
/// Exit status: bad input or no ICMP socket; nothing was sent.
const REFUSED: u8 = 2;

pub async fn run(args: PingArgs) -> Result<ExitCode> {
    let targets = match checked_targets(&args) {
        Ok(targets) => targets,
        Err(e) => {
            eprintln!("edgewatch: error: {e:#}");
            return Ok(ExitCode::from(REFUSED));
        }
    };
    let engine = match engine(&args, &targets) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("edgewatch: error: {e:#}");
            return Ok(ExitCode::from(REFUSED));
        }
    };
    let probes = targets.iter().map(|t| ProbeTarget::icmp(t.ip)).collect();
    let outcomes = engine.probe_all(probes).await;
    engine.shutdown().await;
    let rows: Vec<PingRow> = outcomes.into_iter().map(|(target, outcome)| PingRow::new(target.ip, outcome)).collect();
    let silent = rows.iter().filter(|r| r.received == 0).count();
    match args.format {
        ListFormat::Json => output::json(&rows)?,
        ListFormat::Table => output::ping_table(&rows),
    }
    let noun = if rows.len() == 1 { "target" } else { "targets" };
    eprintln!("{} {noun}: {} answered, {} did not", rows.len(), rows.len() - silent, silent);
    Ok(ExitCode::from(if silent == 0 { ALL_ANSWERED } else { SOME_SILENT }))
}

/// The targets, parsed and every one inside the allow-list; else an error naming each bad
/// one (up to [`SHOW_AT_MOST`]) and where it was given.
fn checked_targets(args: &PingArgs) -> Result<Vec<Target>> {
    let allow = AllowList::parse(&args.allow).with_context(|| format!("--allow {}", args.allow.join(",")))?;
    let parsed = match &args.file {
        Some(path) => {
            let name = path.display().to_string();
            let text = if name == "-" {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text).context("reading the targets from stdin")?;
                text
            } else {
                std::fs::read_to_string(path).with_context(|| format!("reading the targets from {name}"))?
            };
            targets::from_file(&name, &text)
        }
        None => targets::from_args(&args.targets),
    };
    let targets = parsed.map_err(|bad| anyhow::anyhow!(bad_targets(&bad)))?;
    if targets.is_empty() {
        anyhow::bail!("no targets (the file holds only comments and blank lines); nothing was sent");
    }
    let refused: Vec<String> = targets
        .iter()
        .filter_map(|t| allow.check(t.ip).err().map(|refused| format!("{}: {refused}", t.origin)))
        .collect();
    if !refused.is_empty() {
        anyhow::bail!(
            "{}\n{} of {} targets refused: nothing was sent to any target (--allow NET lets a network in)",
            at_most(&refused),
            refused.len(),
            targets.len()
        );
    }
    Ok(targets)
}

fn bad_targets(bad: &[BadTarget]) -> String {
    let said: Vec<String> = bad.iter().map(ToString::to_string).collect();
    format!("{}\n{} bad target(s): nothing was sent to any target", at_most(&said), bad.len())
}

/// The first [`SHOW_AT_MOST`] lines, and how many more there are.
fn at_most(lines: &[String]) -> String {
    let mut text = lines.iter().take(SHOW_AT_MOST).cloned().collect::<Vec<_>>().join("\n");
    if lines.len() > SHOW_AT_MOST {
        text.push_str(&format!("\n… and {} more", lines.len() - SHOW_AT_MOST));
    }
    text
}

/// The probe engine for these settings, with an ICMP socket for every family the targets
/// need (else an error saying why there is none).
fn engine(args: &PingArgs, targets: &[Target]) -> Result<Engine> {
    let allow = AllowList::parse(&args.allow)?;
    let engine = Engine::builder(allow)
        .packets(args.count)
        .interval(args.period)
        .timeout(args.timeout)
        .pps(args.pps)
        // Every target in flight at once, as fping does; the engine still bounds the
        // requests in flight per socket.
        .max_concurrent_targets(targets.len().clamp(1, 1_000_000))
        .prefer_unprivileged(true)
        .build()
        .context("starting the probe engine")?;
    for family in [Family::V4, Family::V6] {
        if targets.iter().any(|t| Family::of(t.ip.to_canonical()) == family) {
            if let Err(why) = engine.icmp_mode(family) {
                anyhow::bail!("cannot ping over {family}: {why}; nothing was sent");
            }
        }
    }
    Ok(engine)
}
