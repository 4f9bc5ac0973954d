//! Writes a generated fleet: `DIR/inventory.json` and PowerDNS query logs.
//!
//! ```text
//! cargo run --release -p discovery --example gen_fleet -- \
//!     --seed 1 --out DIR --lines N --flavour auth-console|…|all \
//!     [--dcs 6] [--hosts 1000] [--containers 5000] [--zone example.com] [--name FILE]
//! ```
//!
//! Each log is `DIR/pdns-<flavour>.log` (or `DIR/FILE` with `--name`, one flavour only).

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use discovery::fleet::{self, Flavour, FleetSpec};

const USAGE: &str = "usage: gen_fleet --out DIR [--seed N] [--lines N] \
[--flavour auth-console|auth-plain|auth-syslog|rec-old|rec-structured|pipe|journald-json|all] \
[--dcs N] [--hosts N] [--containers N] [--zone ZONE] [--name FILE]";

struct Args {
    spec: FleetSpec,
    out: PathBuf,
    lines: u64,
    flavours: Vec<Flavour>,
    name: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut spec = FleetSpec::default();
    let (mut out, mut lines, mut flavours, mut name) = (None, 100_000, Flavour::ALL.to_vec(), None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_owned());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = |v: &str| v.replace('_', "").parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--seed" => spec.seed = number(&value)?,
            "--dcs" => spec.dcs = number(&value)? as usize,
            "--hosts" => spec.hosts = number(&value)? as usize,
            "--containers" => spec.containers = number(&value)? as usize,
            "--zone" => spec.zone = value,
            "--lines" => lines = number(&value)?,
            "--out" => out = Some(PathBuf::from(value)),
            "--name" => name = Some(value),
            "--flavour" | "--flavor" => {
                flavours = if value == "all" { Flavour::ALL.to_vec() } else { vec![value.parse::<Flavour>()?] }
            }
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    if spec.dcs == 0 || spec.hosts == 0 || spec.containers == 0 {
        return Err("--dcs, --hosts and --containers must be at least 1".to_owned());
    }
    if name.is_some() && flavours.len() != 1 {
        return Err("--name needs exactly one --flavour".to_owned());
    }
    let out = out.ok_or_else(|| format!("--out is required\n{USAGE}"))?;
    Ok(Args { spec, out, lines, flavours, name })
}

fn run(args: &Args) -> std::io::Result<()> {
    std::fs::create_dir_all(&args.out)?;
    let started = Instant::now();
    let inventory = args.out.join("inventory.json");
    std::fs::write(&inventory, fleet::inventory_json(&args.spec))?;
    eprintln!(
        "{}: {} containers on {} hosts in {} DCs (seed {})",
        inventory.display(),
        args.spec.containers,
        args.spec.hosts,
        args.spec.dcs,
        args.spec.seed
    );
    for &flavour in &args.flavours {
        let path = args.out.join(args.name.clone().unwrap_or_else(|| flavour.file_name()));
        let t = Instant::now();
        let mut file = BufWriter::with_capacity(1 << 20, File::create(&path)?);
        fleet::write_log(&args.spec, flavour, args.lines, &mut file)?;
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        eprintln!(
            "{}: {} lines, {} bytes in {:.2} s",
            path.display(),
            args.lines,
            std::fs::metadata(&path)?.len(),
            t.elapsed().as_secs_f64()
        );
    }
    eprintln!("done in {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_fleet: {e}");
            ExitCode::FAILURE
        }
    }
}
