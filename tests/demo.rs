//! `edgewatch demo` (what `make demo` runs) from a fresh data directory: its own embedded
//! PostgreSQL, the bundled sample fleet, probing over loopback and, as root, one traced
//! path shown as `route show` shows it.

use assert_cmd::Command;

#[test]
fn the_demo_runs_on_a_fresh_data_dir_and_shows_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ew");
    let data = data.to_str().unwrap();
    let out = Command::cargo_bin("edgewatch")
        .unwrap()
        .env_remove("DATABASE_URL")
        .args(["--data-dir", data, "demo"])
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .unwrap();
    let _ = Command::cargo_bin("edgewatch").unwrap().args(["--data-dir", data, "db", "stop"]).output();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{text}\n{err}");
    assert!(text.contains("The graph now holds 29 containers in 2 data centers"), "{text}");
    assert!(text.contains("down"), "the demo breaks one provider's edges for real:\n{text}");
    if nix::unistd::geteuid().is_root() {
        assert!(text.contains("three times, as the probers do every 2 minutes"), "{text}\n{err}");
        assert!(text.contains("3 run(s), 3 reached, 1 path(s)"), "{text}");
        assert!(text.contains("The sample fleet lives on loopback, so its path is one hop"), "{text}");
        assert!(text.contains("route show host"), "{text}");
    } else {
        eprintln!("not root: the traced path is skipped (raw sockets); checking that the demo says so");
        assert!(err.contains("no path tracing here"), "{err}");
    }
}
