//! The `edgewatch` command: argument parsing, wiring of the crates, output.

mod cli;
mod commands;
mod config;
mod dot;
mod file_flags;
mod hints;
mod http;
mod labels;
mod leader;
mod nagios;
mod not_found;
mod output;
mod path_evidence;
mod read_pool;
mod reload;
pub mod report;
mod route_query;
mod route_view;
mod tls;
mod trace_config;
mod trace_view;
mod when;

use std::process::ExitCode;

pub use cli::Cli;

/// Parses the command line, runs the command, prints any error, and gives the exit code.
pub fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(Refused::Args(e)) => return refuse_arguments(e),
        Err(Refused::File(e)) => {
            eprintln!("edgewatch: error: {}", error_chain(&e));
            return ExitCode::from(2);
        }
    };
    // The network daemons keep Rust's default of ignoring SIGPIPE: a peer that drops a
    // connection (a TLS client refusing the certificate, mid-alert) must cost that
    // connection an EPIPE, not the whole process its life.
    if !matches!(cli.command, cli::Command::Serve(_) | cli::Command::Agent(_)) {
        restore_sigpipe();
    }
    init_tracing(cli.global.verbose);
    // `ping` is fping's kind of work: one thread sending, the ICMP receive threads reading.
    // A second runtime worker only adds wake-ups between threads: about a quarter more CPU
    // at 10,000 targets.
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if matches!(cli.command, cli::Command::Ping(_)) {
        runtime.worker_threads(1);
    }
    let runtime = match runtime.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("edgewatch: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("edgewatch: error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

enum Refused {
    Args(clap::Error),
    File(anyhow::Error),
}

/// The command line, with the daemon flags of the config file (`[serve]`, `[probe]`,
/// `[agent]`) as their defaults.
fn parse() -> Result<Cli, Refused> {
    use clap::{CommandFactory, FromArgMatches};
    let args: Vec<String> = std::env::args().collect();
    let flags = match file_flags::config_path(&args) {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => file_flags::read(&path, &text, &Cli::command()).map_err(Refused::File)?,
            // Said, naming the file, when the settings are read.
            Err(_) => Vec::new(),
        },
        None => Vec::new(),
    };
    let matches = file_flags::apply(Cli::command(), &flags).try_get_matches_from(&args).map_err(Refused::Args)?;
    Cli::from_arg_matches(&matches).map_err(Refused::Args)
}

/// Bad arguments: clap's message and exit code 2, except for `check nagios`, whose caller
/// (Nagios) reads 2 as CRITICAL: a plugin that cannot run says UNKNOWN (3).
fn refuse_arguments(e: clap::Error) -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let is_check = args.windows(2).any(|w| w[0] == "check" && w[1] == "nagios");
    if !is_check || !e.use_stderr() {
        e.exit();
    }
    let message = e.kind().to_string();
    let detail = e.to_string();
    let first = detail.lines().next().unwrap_or(&message).trim_start_matches("error: ");
    println!("EDGEWATCH UNKNOWN - bad arguments: {first}");
    let _ = e.print();
    ExitCode::from(3)
}

/// The error and its causes, each said once (our errors often quote their source), with
/// the flag that fixes a cause when there is one.
fn error_chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let said = cause.to_string();
        if text.is_empty() {
            text = said;
        } else if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        if let Some(hint) = hints::flag_hint(cause) {
            text.push_str(hint);
        }
    }
    text
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("EDGEWATCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// Dies quietly on a closed pipe (`edgewatch graph edges | head`), as Unix tools do,
/// instead of panicking on the write error Rust's default of ignoring SIGPIPE gives.
#[allow(unsafe_code)]
fn restore_sigpipe() {
    // SAFETY: called in main before any thread exists (the runtime starts later); setting a signal's
    // disposition to the default installs no handler code.
    let _ =
        unsafe { nix::sys::signal::signal(nix::sys::signal::Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl) };
}
