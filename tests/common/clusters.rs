//! PostgreSQL clusters of a test's own (not the shared test cluster): a primary, a
//! streaming standby made from it with `pg_basebackup -R`, and a pgbouncer in front of
//! one. Each is stopped when dropped, and its directory removed.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use graph_store::embedded::EmbeddedCluster;
use graph_store::testing::TestDb;

/// The read-only questions both the standby and the pgbouncer tests compare, as JSON.
pub const READ_QUESTIONS: [&[&str]; 5] = [
    &["graph", "nodes", "--format", "json"],
    &["graph", "edges", "--format", "json"],
    &["graph", "broken", "--format", "json"],
    &["graph", "deps", "be1.host101", "--format", "json"],
    &["incidents", "--format", "json"],
];

/// A private directory under /tmp that the cluster's OS user can enter (the clusters run
/// as an unprivileged user when the test runs as root).
pub fn scratch() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("ew-standby-").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A running cluster, stopped on drop.
pub struct Cluster {
    pub cluster: EmbeddedCluster,
}

impl Cluster {
    /// The `edgewatch` database's URL (socket in the cluster's directory).
    pub fn url(&self) -> String {
        self.cluster.url("edgewatch")
    }

    pub async fn pool(&self) -> graph_store::PgPool {
        graph_store::db::pool(self.cluster.connect_options("edgewatch"), &self.url(), graph_store::Pooler::None)
            .await
            .unwrap()
    }

    /// The primary as a [`TestDb`] (migrated), for the helpers in `common`.
    pub async fn test_db(&self) -> TestDb {
        let pool = self.pool().await;
        graph_store::db::migrate(&pool).await.unwrap();
        TestDb { pool, url: self.url(), name: "edgewatch".into() }
    }

    /// Runs one of the server's client programs (pg_basebackup) as the cluster's owner.
    fn run_as_owner(&self, program: &str, args: &[&str], cwd: &Path) -> std::process::Output {
        let mut cmd = Command::new(self.cluster.bindir().join(program));
        cmd.args(args).current_dir(cwd).env("LC_ALL", "C");
        if let Some((uid, gid)) = owner_ids(&self.cluster) {
            cmd.uid(uid).gid(gid);
        }
        cmd.output().unwrap_or_else(|e| panic!("running {program}: {e}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(e) = self.cluster.stop() {
            eprintln!("stopping the test cluster in {}: {e}", self.cluster.cluster_dir().display());
        }
    }
}

/// (uid, gid) of the cluster's owner when that is not us (we are root).
fn owner_ids(cluster: &EmbeddedCluster) -> Option<(u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let user = nix::unistd::User::from_name(&cluster.os_user()).unwrap().expect("the cluster's owner exists");
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

/// Starts a fresh primary in `dir/primary` with the `edgewatch` database.
pub async fn primary(dir: &Path) -> Cluster {
    let cluster = EmbeddedCluster::new(dir.join("primary")).unwrap();
    cluster.start().unwrap();
    cluster.ensure_database("edgewatch").await.unwrap();
    Cluster { cluster }
}

/// A streaming standby of `primary` in `dir/standby`: `pg_basebackup -R` (which writes
/// `standby.signal` and `primary_conninfo`), its own socket directory, started.
pub fn standby(primary: &Cluster, dir: &Path) -> Cluster {
    let data_dir = dir.join("standby");
    std::fs::create_dir_all(&data_dir).unwrap();
    if let Some((uid, gid)) = owner_ids(&primary.cluster) {
        nix::unistd::chown(&data_dir, Some(uid.into()), Some(gid.into())).unwrap();
    }
    let pg = data_dir.join("pg");
    let host = primary.cluster.cluster_dir().to_str().unwrap().to_string();
    let out = primary.run_as_owner(
        "pg_basebackup",
        &["-D", pg.to_str().unwrap(), "-R", "-X", "stream", "-c", "fast", "-h", &host, "-U", "edgewatch"],
        dir,
    );
    assert!(out.status.success(), "pg_basebackup: {}", String::from_utf8_lossy(&out.stderr));
    // The primary's socket lock file and log came along (they live in its data directory).
    for copied in [".s.PGSQL.5432.lock", "postgres.log"] {
        let _ = std::fs::remove_file(pg.join(copied));
    }
    // The copied postgresql.conf names the primary's socket directory: the standby gets its own.
    let conf = pg.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str(&format!(
        "\n# the test's standby\nunix_socket_directories = '{}'\nhot_standby = on\n",
        pg.to_str().unwrap()
    ));
    std::fs::write(&conf, text).unwrap();
    let cluster = EmbeddedCluster::new(&data_dir).unwrap();
    assert_eq!(cluster.cluster_dir(), pg, "the standby lives where pg_basebackup put it");
    cluster.start().unwrap();
    Cluster { cluster }
}

/// Waits until the standby has replayed everything the primary has written so far.
pub async fn catch_up(primary: &graph_store::PgPool, standby: &graph_store::PgPool) {
    let lsn = graph_store::replica::current_lsn(primary).await.unwrap();
    let start = Instant::now();
    while !graph_store::replica::replayed(standby, &lsn).await.unwrap() {
        assert!(start.elapsed() < Duration::from_secs(60), "the standby did not replay up to {lsn} in 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// pgbouncer (Debian's) on 127.0.0.1:`port` in front of `cluster`'s socket, run as the
/// cluster's owner; killed on drop.
pub struct Bouncer {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Bouncer {
    /// Starts pgbouncer with `pool_mode`, the extra parameters `server` of the database's
    /// line in `[databases]` (such as `connect_query`) and the extra `settings` lines of
    /// `[pgbouncer]` (which may set `default_pool_size`, 20 otherwise).
    pub fn start(
        binary: &Path,
        cluster: &Cluster,
        dir: &Path,
        pool_mode: &str,
        server: &str,
        settings: &str,
    ) -> Bouncer {
        let port = free_port();
        let dir = &dir.join(format!("pgbouncer-{pool_mode}"));
        std::fs::create_dir_all(dir).unwrap();
        if let Some((uid, gid)) = owner_ids(&cluster.cluster) {
            nix::unistd::chown(dir, Some(uid.into()), Some(gid.into())).unwrap();
        }
        let conf = dir.join("pgbouncer.ini");
        let users = dir.join("userlist.txt");
        std::fs::write(&users, "\"edgewatch\" \"\"\n").unwrap();
        let pool_size = if settings.contains("default_pool_size") { "" } else { "default_pool_size = 20\n" };
        std::fs::write(
            &conf,
            format!(
                "[databases]\nedgewatch = host={host} dbname=edgewatch user=edgewatch {server}\n\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {users}\npool_mode = {pool_mode}\n\
                 max_client_conn = 500\n{pool_size}logfile = {log}\n{settings}\n",
                host = cluster.cluster.cluster_dir().display(),
                users = users.display(),
                log = dir.join("pgbouncer.log").display(),
            ),
        )
        .unwrap();
        let mut cmd = Command::new(binary);
        cmd.arg(&conf).stdout(Stdio::null()).stderr(Stdio::piped());
        if let Some((uid, gid)) = owner_ids(&cluster.cluster) {
            cmd.uid(uid).gid(gid);
        }
        let child = cmd.spawn().unwrap();
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(20), "pgbouncer did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Bouncer { child, port, dir: dir.to_path_buf() }
    }

    /// The URL of the `edgewatch` database through pgbouncer.
    pub fn url(&self) -> String {
        format!("postgres://edgewatch@127.0.0.1:{}/edgewatch?sslmode=disable", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
