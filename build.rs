//! Build script: the git commit edgewatch is built from, for `--version`
//! (`EDGEWATCH_GIT_COMMIT`; "unknown" outside a git checkout, e.g. from a crate archive).

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=EDGEWATCH_GIT_COMMIT={commit}");
    // Built again when the checkout moves to another commit.
    if let Some(dir) = git_dir() {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/refs/heads");
        println!("cargo:rerun-if-changed={dir}/packed-refs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}

fn git_dir() -> Option<String> {
    let out = Command::new("git").args(["rev-parse", "--git-dir"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
