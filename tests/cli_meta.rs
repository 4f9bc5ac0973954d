//! What the binary says about itself: `--version` with the git commit it was built from,
//! shell completions that the shells accept, and a manual page.

use std::process::Command;

fn edgewatch(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_edgewatch")).args(args).output().unwrap();
    assert!(out.status.success(), "edgewatch {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn version_names_the_commit_built_from() {
    let version = edgewatch(&["--version"]);
    let head = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    assert!(version.starts_with(&format!("edgewatch {} (git ", env!("CARGO_PKG_VERSION"))), "{version}");
    if head.is_empty() {
        assert!(version.contains("(git unknown)"), "{version}");
    } else {
        assert!(version.contains(&format!("(git {head})")), "{version} is not of HEAD {head}");
    }
}

#[test]
fn completions_are_scripts_the_shells_accept() {
    let bash = edgewatch(&["completions", "bash"]);
    assert!(bash.contains("route") && bash.contains("--nginx-log-format"), "every command and flag");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edgewatch.bash");
    std::fs::write(&file, &bash).unwrap();
    let check = Command::new("bash").arg("-n").arg(&file).status().unwrap();
    assert!(check.success(), "bash -n refuses the completion script");
    for shell in ["zsh", "fish"] {
        let script = edgewatch(&["completions", shell]);
        assert!(script.contains("edgewatch") && script.contains("spool"), "{shell}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_edgewatch")).args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("possible values"), "the shells are listed");
}

#[test]
fn the_manual_page_is_roff_that_man_reads() {
    let page = edgewatch(&["man"]);
    assert!(page.contains(".TH edgewatch 1"), "{page}");
    assert!(page.contains("Who cannot reach whom"));
    // `man` renders it when installed (man-db); the roff itself is checked above.
    if Command::new("man").arg("--version").output().is_ok_and(|o| o.status.success()) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("edgewatch.1");
        std::fs::write(&file, &page).unwrap();
        let out = Command::new("man").arg("-l").arg(&file).env("MANPAGER", "cat").env("PAGER", "cat").output().unwrap();
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("edgewatch"));
    } else {
        println!("man is not installed: the page is checked as roff text only");
    }
}
