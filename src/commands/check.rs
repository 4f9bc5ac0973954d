//! `edgewatch check nagios`: the Nagios plugin (active, or `--passive` writing results to
//! Nagios's command file). This is its I/O: reading the store within `--timeout`, printing,
//! writing the command file, the exit code; the answer itself is made in [`crate::nagios`].
//!
//! Follows the Monitoring Plugins development guidelines: one first line
//! `EDGEWATCH STATE - summary | perfdata`, long output after it, exit 0/1/2/3, UNKNOWN
//! (never OK) when the answer cannot be known.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::Utc;
use graph_store::diagnosis;
use graph_store::PgPool;

use crate::cli::{CheckArgs, CheckCommand};
use crate::config::Settings;
use crate::nagios::{self, clean, Answer, Filter, State, Thresholds};

pub async fn run(settings: &Settings, cmd: CheckCommand) -> Result<ExitCode> {
    match cmd {
        CheckCommand::Nagios(args) => plugin(settings, args).await,
    }
}

/// `edgewatch check nagios`: prints the plugin's answer; the exit code is the state.
async fn plugin(settings: &Settings, args: CheckArgs) -> Result<ExitCode> {
    let answer = match evaluate(settings, &args).await {
        Ok(view) => view,
        Err(reason) => {
            println!("EDGEWATCH UNKNOWN - {}", clean(&reason));
            return Ok(ExitCode::from(State::Unknown.code()));
        }
    };
    if let Some(path) = &args.command_file {
        let written = match connect_quietly(settings, &args).await {
            Ok(pool) => passive(&pool, &answer, &args, path).await.map_err(|e| format!("{e:#}")),
            Err(e) => Err(e),
        };
        match written {
            Ok(n) => eprintln!("wrote {n} passive result(s) to {}", path.display()),
            Err(reason) => {
                println!("EDGEWATCH UNKNOWN - passive results not written: {}", clean(&reason));
                return Ok(ExitCode::from(State::Unknown.code()));
            }
        }
    }
    let thresholds = thresholds(&args);
    print!("{}", answer.text(&thresholds));
    Ok(ExitCode::from(answer.state(&thresholds).code()))
}

async fn connect_quietly(settings: &Settings, args: &CheckArgs) -> Result<PgPool, String> {
    let target = settings.target();
    let connect = graph_store::db::open_existing(&target, settings.pooler());
    match tokio::time::timeout(args.timeout, connect).await {
        Ok(Ok(pool)) => Ok(pool),
        Ok(Err(e)) => Err(format!("cannot reach the database: {}", crate::hints::message(&e))),
        Err(_) => Err(format!("the database did not answer within {}", humantime::format_duration(args.timeout))),
    }
}

/// What the check saw, within `--timeout`: the diagnosis, filtered, when the probe results
/// are fresh enough.
async fn evaluate(settings: &Settings, args: &CheckArgs) -> Result<Answer, String> {
    let primary = connect_quietly(settings, args).await?;
    let read = crate::read_pool::for_command(settings, &primary).await.map_err(|e| format!("{e:#}"))?;
    let pool = read.pool;
    let work = async {
        let newest = diagnosis::last_result_at(&pool).await.map_err(|e| format!("cannot read the store: {e}"))?;
        let data_age = nagios::data_age(newest, Utc::now(), args.max_age)?;
        let check = settings.check();
        let diagnosis = if read.on_standby {
            diagnosis::current_read_only(&pool, &check.diagnosis, check.diagnosis_max_age).await
        } else {
            diagnosis::current(&pool, &check.diagnosis, check.diagnosis_max_age).await
        };
        let diagnosis = diagnosis.map_err(|e| format!("cannot diagnose: {e}"))?;
        Ok::<_, String>((diagnosis, data_age))
    };
    let (diagnosis, data_age) = tokio::time::timeout(args.timeout, work)
        .await
        .map_err(|_| format!("the database did not answer within {}", humantime::format_duration(args.timeout)))??;
    let filter = Filter { dc: args.dc.clone(), role: args.role.clone(), service: args.service.clone() };
    let answer = Answer::new(diagnosis, &filter, data_age);
    let labels =
        tokio::time::timeout(args.timeout, crate::path_evidence::labels(&pool, settings.owners(), answer.incidents()))
            .await
            .unwrap_or_default();
    Ok(answer.with_labels(labels))
}

fn thresholds(args: &CheckArgs) -> Thresholds {
    Thresholds {
        warning: args.warning.clone(),
        critical: args.critical.clone(),
        by: args.by,
        flapping_is_critical: args.flapping_is_critical,
    }
}

/// Writes one PROCESS_SERVICE_CHECK_RESULT per problem host (the consumers' hosts), and a
/// recovery for each host that had a problem last time and has none now; remembers what
/// it sent. Returns how many lines were written.
async fn passive(pool: &PgPool, answer: &Answer, args: &CheckArgs, path: &Path) -> Result<usize> {
    let service = &args.service_description;
    let previous = diagnosis::passive_problems(pool, service).await?;
    let results = nagios::passive_results(answer, args.flapping_is_critical, &previous);
    let lines = nagios::command_lines(&results, service, Utc::now().timestamp());
    let mut file = std::fs::OpenOptions::new().append(true).open(path).with_context(|| {
        format!(
            "opening the Nagios command file {} (is Nagios running, with check_external_commands=1?)",
            path.display()
        )
    })?;
    file.write_all(lines.as_bytes()).with_context(|| format!("writing to {}", path.display()))?;
    let sent: Vec<(String, i32, String)> =
        results.into_iter().map(|r| (r.host, i32::from(r.state.code()), r.text)).collect();
    diagnosis::record_passive(pool, service, &sent).await?;
    Ok(sent.len())
}
