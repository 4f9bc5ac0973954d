//! `edgewatch probe`: the prober worker pool.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Global, ProbeArgs};

pub async fn run(_global: &Global, _args: ProbeArgs) -> Result<ExitCode> {
    anyhow::bail!("not yet")
}
