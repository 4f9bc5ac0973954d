//! `edgewatch fleet generate`: a synthetic fleet from `discovery::fleet`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use discovery::fleet::{self, Flavour, FleetSpec};

use crate::cli::FleetCommand;

pub fn run(cmd: FleetCommand) -> Result<ExitCode> {
    let FleetCommand::Generate { out, seed, lines, flavour, dcs, hosts, containers, zone } = cmd;
    if dcs == 0 || hosts == 0 || containers == 0 {
        bail!("--dcs, --hosts and --containers must be at least 1");
    }
    let flavours: Vec<Flavour> = if flavour == "all" {
        Flavour::ALL.to_vec()
    } else {
        vec![flavour.parse::<Flavour>().map_err(|e| anyhow::anyhow!("--flavour {flavour}: {e}"))?]
    };
    let spec = FleetSpec { seed, dcs, hosts, containers, zone };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let inventory = out.join("inventory.json");
    std::fs::write(&inventory, fleet::inventory_json(&spec))
        .with_context(|| format!("writing {}", inventory.display()))?;
    println!("{}: {} containers on {} hosts in {} data centers", inventory.display(), containers, hosts, dcs);
    for flavour in flavours {
        let path = out.join(flavour.file_name());
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        fleet::write_log(&spec, flavour, lines, &mut w).with_context(|| format!("writing {}", path.display()))?;
        w.flush().with_context(|| format!("writing {}", path.display()))?;
        println!("{}: {lines} lines", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
