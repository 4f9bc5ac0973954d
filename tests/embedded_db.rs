//! The embedded PostgreSQL cluster through the CLI: `db start|status|url|stop`, reuse,
//! the unprivileged owner when run as root, and the message when no server is installed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use assert_cmd::Command;

fn edgewatch(data_dir: &Path, args: &[&str]) -> Output {
    Command::cargo_bin("edgewatch")
        .unwrap()
        .env_remove("DATABASE_URL")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .unwrap()
}

fn ok(data_dir: &Path, args: &[&str]) -> String {
    let out = edgewatch(data_dir, args);
    assert!(
        out.status.success(),
        "edgewatch {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn status_json(data_dir: &Path) -> serde_json::Value {
    let out = edgewatch(data_dir, &["db", "status", "--format", "json"]);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The uid the postmaster runs as, from its pid file and /proc.
fn postmaster_uid(cluster_dir: &Path) -> u32 {
    let pid_file = std::fs::read_to_string(cluster_dir.join("postmaster.pid")).unwrap();
    let pid = pid_file.lines().next().unwrap().trim();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    uid_line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Runs a full lifecycle in `data_dir` and returns the cluster directory it used.
fn lifecycle(data_dir: &Path) -> std::path::PathBuf {
    let out = edgewatch(data_dir, &["db", "status"]);
    assert_eq!(out.status.code(), Some(3), "status before init");
    assert!(String::from_utf8_lossy(&out.stdout).contains("not initialised"));

    let first = ok(data_dir, &["db", "start"]);
    assert!(first.contains("initialised and started"), "{first}");
    let status = status_json(data_dir);
    assert_eq!(status["status"], "running");
    let cluster_dir = std::path::PathBuf::from(status["cluster_dir"].as_str().unwrap());

    // PostgreSQL never runs as root.
    let uid = postmaster_uid(&cluster_dir);
    assert_ne!(uid, 0, "the postmaster runs as root");
    if is_root() {
        assert_eq!(status["os_user"], "edgewatch");
    } else {
        assert_eq!(uid, nix::unistd::geteuid().as_raw());
    }

    // A second start reuses the running cluster.
    assert!(ok(data_dir, &["db", "start"]).contains("already running"));

    // The printed URL works for edgewatch itself, and the server takes no TCP.
    let url = ok(data_dir, &["db", "url"]).trim().to_string();
    assert!(url.starts_with("postgresql:///edgewatch?host="), "{url}");
    let nodes = Command::cargo_bin("edgewatch")
        .unwrap()
        .args(["--database-url", &url, "graph", "nodes", "--format", "json"])
        .output()
        .unwrap();
    assert!(nodes.status.success(), "{}", String::from_utf8_lossy(&nodes.stderr));
    assert_eq!(String::from_utf8_lossy(&nodes.stdout).trim(), "[]");
    let conf = std::fs::read_to_string(cluster_dir.join("postgresql.conf")).unwrap();
    assert!(conf.contains("listen_addresses = ''"));
    assert!(cluster_dir.join(".s.PGSQL.5432").exists(), "no socket in the cluster directory");

    assert!(ok(data_dir, &["db", "stop"]).contains("stopped"));
    assert_eq!(edgewatch(data_dir, &["db", "status"]).status.code(), Some(3));
    assert!(ok(data_dir, &["db", "stop"]).contains("was not running"));

    // Started again, it keeps what it had (no second initdb).
    let again = ok(data_dir, &["db", "start"]);
    assert!(again.contains("embedded PostgreSQL started"), "{again}");
    ok(data_dir, &["db", "stop"]);
    cluster_dir
}

#[test]
fn embedded_cluster_lifecycle() {
    let base = tempfile::tempdir().unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = base.path().join("data");
    let cluster_dir = lifecycle(&data_dir);
    assert_eq!(cluster_dir, data_dir.canonicalize().unwrap().join("pg"));
}

#[test]
fn as_root_a_private_data_dir_moves_the_cluster_where_its_owner_can_reach_it() {
    if !is_root() {
        eprintln!("SKIP: needs root (the unprivileged cluster owner is only used when edgewatch runs as root)");
        return;
    }
    let base = tempfile::tempdir().unwrap();
    // Like /root: the unprivileged owner cannot get through it.
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let data_dir = base.path().join("data");
    let cluster_dir = lifecycle(&data_dir);
    assert!(cluster_dir.starts_with("/var/lib/edgewatch/clusters"), "{}", cluster_dir.display());
    let pointer = std::fs::read_to_string(data_dir.join("cluster-location")).unwrap();
    assert_eq!(pointer.trim(), cluster_dir.to_str().unwrap());
    std::fs::remove_dir_all(&cluster_dir).unwrap();
}

#[test]
fn missing_server_binaries_say_how_to_install_them() {
    let base = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("edgewatch")
        .unwrap()
        .env_remove("DATABASE_URL")
        .env("PG_BINDIR", "/nonexistent")
        .args(["--data-dir", base.path().to_str().unwrap(), "graph", "nodes"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("apt-get install postgresql"), "{stderr}");
    assert!(stderr.contains("--database-url"), "{stderr}");
}
