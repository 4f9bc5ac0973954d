//! PostgreSQL over TLS: a real PostgreSQL cluster of its own (made by edgewatch's embedded
//! manager, then given `ssl = on`, a server certificate from a CA made in the test, and a
//! TCP port on 127.0.0.1 only), reached by the `edgewatch` binary with
//! `sslmode=verify-full&sslrootcert=…` in the database URL. With the CA that signed the
//! server's certificate edgewatch connects, over TLS (PostgreSQL's `pg_stat_ssl` says
//! so); with another CA, or a name the certificate does not carry, it refuses with an
//! error that says why.

mod tls_ca;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use graph_store::embedded::{EmbeddedCluster, DATABASE, ROLE};
use tls_ca::TestCa;

fn edgewatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgewatch"))
        .env_remove("DATABASE_URL")
        .env_remove("EDGEWATCH_LOG")
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = edgewatch(args);
    assert!(
        out.status.success(),
        "edgewatch {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Stops the test's own cluster however the test ends.
struct Cluster {
    data_dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = edgewatch(&["--data-dir", self.data_dir.to_str().unwrap(), "db", "stop"]);
    }
}

/// Starts the cluster with `pg_ctl` as its owner: `db start` would look for its socket
/// under the default port, and this cluster has a port of its own.
fn pg_start(cluster: &EmbeddedCluster) {
    use std::os::unix::process::CommandExt;
    let dir = cluster.cluster_dir();
    let meta = std::fs::metadata(dir).unwrap();
    let log = dir.join("tls-test.log");
    let out = Command::new(cluster.bindir().join("pg_ctl"))
        .args(["start", "-w", "-t", "60", "-D", dir.to_str().unwrap(), "-l", log.to_str().unwrap()])
        .current_dir(dir)
        .env("LC_ALL", "C")
        .uid(meta.uid())
        .gid(meta.gid())
        .stdout(std::process::Stdio::null())
        .output()
        .unwrap();
    let tail = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        out.status.success(),
        "pg_ctl start: {}
{tail}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A free TCP port on 127.0.0.1 (free a moment ago).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Gives `path` to whoever owns `dir` (the cluster's owner, who must read the key).
fn give_to_owner_of(path: &Path, dir: &Path) {
    let meta = std::fs::metadata(dir).unwrap();
    std::os::unix::fs::chown(path, Some(meta.uid()), Some(meta.gid())).unwrap();
}

#[test]
fn edgewatch_speaks_tls_to_postgres_and_refuses_a_server_the_ca_did_not_sign() {
    let dir = tempfile::tempdir().unwrap();
    // The cluster's owner (an unprivileged user, when the test runs as root) must reach it.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = dir.path().join("pg");
    let data = data_dir.to_str().unwrap();
    let ca = TestCa::new(dir.path(), "ca");
    let other = TestCa::new(dir.path(), "other-ca");

    // A cluster of the test's own: made and migrated by edgewatch, stopped, then given TLS
    // on 127.0.0.1 and started again.
    let _cluster = Cluster { data_dir: data_dir.clone() };
    ok(&["--data-dir", data, "db", "start"]);
    ok(&["--data-dir", data, "db", "stop"]);
    let cluster = EmbeddedCluster::new(&data_dir).unwrap();
    let cluster_dir = cluster.cluster_dir().to_path_buf();
    let (cert, key) = ca.server(&cluster_dir, "server", &["localhost", "127.0.0.1"]);
    give_to_owner_of(&cert, &cluster_dir);
    give_to_owner_of(&key, &cluster_dir);
    let port = free_port();
    let mut conf = std::fs::OpenOptions::new().append(true).open(cluster_dir.join("postgresql.conf")).unwrap();
    write!(
        conf,
        "\n# tests/tls_postgres.rs\nlisten_addresses = '127.0.0.1'\nport = {port}\nssl = on\n\
         ssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
    )
    .unwrap();
    drop(conf);
    pg_start(&cluster);

    let url = |host: &str, root: &Path| {
        format!("postgres://{ROLE}@{host}:{port}/{DATABASE}?sslmode=verify-full&sslrootcert={}", root.to_str().unwrap())
    };

    // The CA that signed the server's certificate: connected, over TLS.
    let good = url("127.0.0.1", &ca.cert);
    let ssl = ok(&[
        "--database-url",
        &good,
        "sql",
        "--format",
        "json",
        "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    ]);
    let ssl: serde_json::Value = serde_json::from_str(&ssl).unwrap();
    assert_eq!(ssl[0]["ssl"], serde_json::Value::Bool(true), "{ssl}");
    assert!(ssl[0]["version"].as_str().unwrap_or_default().starts_with("TLSv1."), "{ssl}");
    let nodes = ok(&["--database-url", &good, "graph", "nodes", "--format", "json"]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&nodes).unwrap(), serde_json::json!([]));
    ok(&["--database-url", &url("localhost", &ca.cert), "graph", "nodes"]);

    // Another CA: refused, saying why and where.
    let out = edgewatch(&["--database-url", &url("127.0.0.1", &other.cert), "graph", "nodes"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "connected with a CA that did not sign the server's certificate:\n{err}");
    assert!(err.contains("unknown CA"), "{err}");
    eprintln!("another CA, refused:\n{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "the error names the server:\n{err}");
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));

    // A CA bundle that is not there: the file is named.
    let missing = dir.path().join("no-such-ca.pem");
    let out = edgewatch(&["--database-url", &url("127.0.0.1", &missing), "graph", "nodes"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no-such-ca.pem"), "{err}");

    // The server restarted with a certificate (from the same CA) for another name only:
    // refused as a name mismatch.
    let (cert2, key2) = ca.server(&cluster_dir, "server", &["db.example.invalid"]);
    give_to_owner_of(&cert2, &cluster_dir);
    give_to_owner_of(&key2, &cluster_dir);
    ok(&["--data-dir", data, "db", "stop"]);
    pg_start(&cluster);
    let out = edgewatch(&["--database-url", &good, "graph", "nodes"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "connected although the certificate names another host:\n{err}");
    assert!(err.contains("name mismatch"), "{err}");
    eprintln!("another name, refused:\n{err}");
}
