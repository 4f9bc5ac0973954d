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

#[test]
fn config_check_takes_the_sample_and_refuses_unknown_keys_naming_file_line_and_key() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/edgewatch.toml");
    let out = edgewatch(&["config", "check", sample, "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let setting = |section: &str, key: &str| {
        doc["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["section"] == section && s["key"] == key)
            .cloned()
            .unwrap()
    };
    assert_eq!(setting("agent", "spool_max")["source"], "file");
    assert_eq!(setting("agent", "spool_max")["value"], "64MB");

    let dir = tempfile::tempdir().unwrap();
    for (text, line, key) in
        [("[probe]\nworkers = 2\nworkerz = 3\n", 3, "workerz"), ("[dns]\nzonez = []\n", 2, "zonez")]
    {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_edgewatch")).args(["config", "check"]).arg(&file).output().unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text} was taken");
        assert!(said.contains(&file.display().to_string()) && said.contains(key), "{said}");
        assert!(said.contains(&format!(":{line}")) || said.contains(&format!("line {line}")), "{said}");
    }
    // Flags from the file are defaults: the command line wins, and an agent's server can
    // come from the file alone.
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, "[agent]\nserver = \"https://ew.example:8440\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_edgewatch"))
        .args(["--config", file.to_str().unwrap(), "config", "check", "--format", "json"])
        .env_remove("EDGEWATCH_SERVER")
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let server = doc["settings"].as_array().unwrap().iter().find(|s| s["key"] == "server").unwrap().clone();
    assert_eq!((server["value"].as_str(), server["source"].as_str()), (Some("https://ew.example:8440"), Some("file")));
}
