//! The embedded PostgreSQL cluster: edgewatch's default store when no `DATABASE_URL` is
//! given.
//!
//! The cluster lives in `<data-dir>/pg` and listens only on a unix socket in that
//! directory (`listen_addresses = ''`), so it never takes a TCP port and only its owner
//! (and root) can connect. It is initialised once, started on demand, reused when it is
//! already running, and stopped by `edgewatch db stop`.
//!
//! PostgreSQL refuses to run as root. When edgewatch runs as root, the cluster belongs to
//! an unprivileged system user (`edgewatch`, created with `useradd` when missing;
//! `EDGEWATCH_PG_USER` names another) and every server binary runs as that user. If that
//! user cannot reach `<data-dir>` (a parent directory such as `/root` is private), the
//! cluster is kept in `/var/lib/edgewatch/clusters/<id>` instead and
//! `<data-dir>/cluster-location` says where.

use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::ConnectOptions;

use crate::error::{Error, Result};

/// The database edgewatch keeps its graph in, inside the embedded cluster.
pub const DATABASE: &str = "edgewatch";
/// The cluster's superuser role (trust authentication over the private socket).
pub const ROLE: &str = "edgewatch";
const SERVER_BINARIES: [&str; 3] = ["initdb", "pg_ctl", "postgres"];
const FALLBACK_ROOT: &str = "/var/lib/edgewatch/clusters";
/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// The unprivileged OS user that owns and runs the cluster when edgewatch runs as root.
#[derive(Debug, Clone)]
struct Owner {
    name: String,
    uid: u32,
    gid: u32,
}

/// Is the cluster running?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Running,
    Stopped,
    NotInitialised,
}

/// What [`EmbeddedCluster::start`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    pub initialised: bool,
    pub was_running: bool,
}

/// A private PostgreSQL cluster in a data directory of edgewatch's own.
#[derive(Debug, Clone)]
pub struct EmbeddedCluster {
    data_dir: PathBuf,
    cluster_dir: PathBuf,
    bindir: PathBuf,
    owner: Option<Owner>,
}

impl EmbeddedCluster {
    /// Finds the server binaries and decides where the cluster lives and who runs it.
    /// Creates nothing on disk except, as root, the unprivileged user.
    pub fn new(data_dir: impl AsRef<Path>) -> Result<Self> {
        let data_dir = absolute(data_dir.as_ref())?;
        let owner = if nix::unistd::geteuid().is_root() { Some(ensure_owner()?) } else { None };
        let cluster_dir = choose_cluster_dir(&data_dir, owner.as_ref())?;
        let socket = cluster_dir.join(".s.PGSQL.5432");
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(Error::SocketPathTooLong { dir: data_dir, socket, max: MAX_SOCKET_PATH });
        }
        let wanted_version = fs::read_to_string(cluster_dir.join("PG_VERSION")).ok();
        let bindir = find_bindir(wanted_version.as_deref().map(str::trim))?;
        Ok(EmbeddedCluster { data_dir, cluster_dir, bindir, owner })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The PostgreSQL data directory (`PGDATA`), which also holds the socket.
    pub fn cluster_dir(&self) -> &Path {
        &self.cluster_dir
    }

    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    pub fn log_file(&self) -> PathBuf {
        self.cluster_dir.join("postgres.log")
    }

    /// The OS user the server runs as.
    pub fn os_user(&self) -> String {
        match &self.owner {
            Some(owner) => owner.name.clone(),
            None => nix::unistd::User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_else(|| nix::unistd::geteuid().to_string()),
        }
    }

    /// Connection options for `database` over the private socket.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .socket(&self.cluster_dir)
            .username(ROLE)
            .database(database)
            .application_name("edgewatch")
            .log_statements(tracing::log::LevelFilter::Trace)
    }

    /// A libpq-style URL for `database`, usable with `psql` and `--database-url`.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgresql:///{database}?host={}&user={ROLE}",
            percent_encode_path(&self.cluster_dir.to_string_lossy())
        )
    }

    pub fn status(&self) -> Result<Status> {
        if !self.cluster_dir.join("PG_VERSION").exists() {
            return Ok(Status::NotInitialised);
        }
        let out = self.run_pg_ctl(&["status"])?;
        match out.status.code() {
            Some(0) => Ok(Status::Running),
            Some(3) => Ok(Status::Stopped),
            _ => Err(self.failure("pg_ctl status", &out)),
        }
    }

    /// Initialises the cluster if needed and starts it unless it is already running.
    /// Safe to call from several processes at once: they take turns on a lock file.
    pub fn start(&self) -> Result<Started> {
        self.prepare_dirs()?;
        let _lock = self.lock()?;
        let initialised = if self.cluster_dir.join("PG_VERSION").exists() {
            false
        } else {
            self.initdb()?;
            true
        };
        let was_running = self.status()? == Status::Running;
        if !was_running {
            let log = self.log_file();
            let out = self.run_pg_ctl(&["start", "-w", "-t", "120", "-l", &log.to_string_lossy()])?;
            if !out.status.success() {
                let tail = fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return Err(Error::Embedded {
                    dir: self.cluster_dir.clone(),
                    message: format!(
                        "pg_ctl start failed ({}): {}\n--- last lines of {} ---\n{}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim(),
                        log.display(),
                        tail.join("\n")
                    ),
                });
            }
        }
        Ok(Started { initialised, was_running })
    }

    /// Stops the cluster (fast shutdown). Returns false when it was not running.
    pub fn stop(&self) -> Result<bool> {
        if self.status()? != Status::Running {
            return Ok(false);
        }
        let _lock = self.lock()?;
        let out = self.run_pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"])?;
        if !out.status.success() {
            return Err(self.failure("pg_ctl stop", &out));
        }
        Ok(true)
    }

    /// Creates `database` unless it exists. The cluster must be running.
    pub async fn ensure_database(&self, database: &str) -> Result<()> {
        let mut conn = self
            .connect_options("postgres")
            .connect()
            .await
            .map_err(|source| Error::Connect { target: self.url("postgres"), source })?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&mut conn)
            .await
            .map_err(Error::sql("looking up the database"))?;
        if !exists {
            let sql = format!("CREATE DATABASE \"{}\"", database.replace('"', "\"\""));
            match sqlx::query(&sql).execute(&mut conn).await {
                Ok(_) => {}
                // Another process created it between our check and our CREATE.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
                Err(e) => return Err(Error::Sql { op: "creating the database", source: e }),
            }
        }
        Ok(())
    }

    fn prepare_dirs(&self) -> Result<()> {
        mkdir(&self.data_dir, 0o755)?;
        if self.cluster_dir.starts_with(FALLBACK_ROOT) {
            mkdir(Path::new(FALLBACK_ROOT), 0o755)?;
            fs::write(self.data_dir.join("cluster-location"), format!("{}\n", self.cluster_dir.display())).map_err(
                |source| Error::Io { what: "writing", path: self.data_dir.join("cluster-location"), source },
            )?;
        }
        mkdir(&self.cluster_dir, 0o700)?;
        if let Some(owner) = &self.owner {
            let meta = fs::metadata(&self.cluster_dir).map_err(|source| Error::Io {
                what: "inspecting",
                path: self.cluster_dir.clone(),
                source,
            })?;
            if meta.uid() != owner.uid {
                nix::unistd::chown(
                    &self.cluster_dir,
                    Some(nix::unistd::Uid::from_raw(owner.uid)),
                    Some(nix::unistd::Gid::from_raw(owner.gid)),
                )
                .map_err(|e| Error::Embedded {
                    dir: self.cluster_dir.clone(),
                    message: format!("cannot give the cluster directory to {}: {e}", owner.name),
                })?;
            }
        }
        Ok(())
    }

    fn lock(&self) -> Result<File> {
        let path = self.data_dir.join("edgewatch.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Io { what: "opening", path: path.clone(), source })?;
        file.lock().map_err(|source| Error::Io { what: "locking", path, source })?;
        Ok(file)
    }

    fn initdb(&self) -> Result<()> {
        let dir = self.cluster_dir.to_string_lossy().into_owned();
        let out = self.run(
            "initdb",
            &["-D", &dir, "-U", ROLE, "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-instructions"],
        )?;
        if !out.status.success() {
            return Err(self.failure("initdb", &out));
        }
        let conf = self.cluster_dir.join("postgresql.conf");
        let settings = format!(
            "\n# edgewatch: a private cluster, reachable only through the socket in this directory\n\
             listen_addresses = ''\n\
             unix_socket_directories = '{}'\n\
             unix_socket_permissions = 0700\n\
             max_connections = 200\n\
             shared_buffers = 128MB\n\
             timezone = 'UTC'\n\
             log_timezone = 'UTC'\n",
            dir.replace('\'', "''")
        );
        let mut text =
            fs::read_to_string(&conf).map_err(|source| Error::Io { what: "reading", path: conf.clone(), source })?;
        text.push_str(&settings);
        fs::write(&conf, text).map_err(|source| Error::Io { what: "writing", path: conf, source })?;
        Ok(())
    }

    fn run_pg_ctl(&self, args: &[&str]) -> Result<Output> {
        let dir = self.cluster_dir.to_string_lossy().into_owned();
        let mut all = vec![args[0], "-D", &dir];
        all.extend_from_slice(&args[1..]);
        self.run("pg_ctl", &all)
    }

    /// Runs a server binary as the cluster's owner.
    fn run(&self, program: &str, args: &[&str]) -> Result<Output> {
        let path = self.bindir.join(program);
        let mut cmd = Command::new(&path);
        cmd.args(args).current_dir(&self.cluster_dir).env("LC_ALL", "C").env_remove("PGDATA");
        if let Some(owner) = &self.owner {
            cmd.uid(owner.uid).gid(owner.gid).env("HOME", &self.cluster_dir).env("USER", &owner.name);
        }
        // pg_ctl start leaves the postmaster running with its output redirected to the log;
        // our pipes must not be inherited by it, or reading them would never finish.
        if program == "pg_ctl" && args.first() == Some(&"start") {
            cmd.stdout(std::process::Stdio::null());
        }
        cmd.output().map_err(|source| Error::Io { what: "running", path, source })
    }

    fn failure(&self, what: &str, out: &Output) -> Error {
        Error::Embedded {
            dir: self.cluster_dir.clone(),
            message: format!(
                "{what} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            ),
        }
    }
}

/// How long to wait for a just-started cluster to accept connections.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

fn absolute(path: &Path) -> Result<PathBuf> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|source| Error::Io { what: "finding the current directory for", path: path.into(), source })?
            .join(path)
    };
    // Canonicalise what exists, so the same directory always maps to the same cluster.
    let mut existing = path.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => break,
        }
    }
    let mut out = fs::canonicalize(existing).unwrap_or_else(|_| existing.to_path_buf());
    for name in rest.iter().rev() {
        out.push(name);
    }
    Ok(out)
}

fn mkdir(path: &Path, mode: u32) -> Result<()> {
    if !path.exists() {
        fs::create_dir_all(path).map_err(|source| Error::Io { what: "creating", path: path.into(), source })?;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|source| Error::Io {
            what: "setting permissions on",
            path: path.into(),
            source,
        })?;
    }
    Ok(())
}

/// The unprivileged user for a cluster started by root: `EDGEWATCH_PG_USER`, else
/// `edgewatch`, created as a system user when missing.
fn ensure_owner() -> Result<Owner> {
    let name = std::env::var("EDGEWATCH_PG_USER").unwrap_or_else(|_| "edgewatch".to_string());
    let lookup = |name: &str| nix::unistd::User::from_name(name).ok().flatten();
    let user = match lookup(&name) {
        Some(user) => user,
        None => {
            let out = Command::new("useradd")
                .args(["--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"])
                .args(["--shell", "/usr/sbin/nologin", "--comment", "edgewatch embedded PostgreSQL", &name])
                .output();
            match (out, lookup(&name)) {
                (_, Some(user)) => user,
                (Ok(out), None) => {
                    return Err(Error::Embedded {
                        dir: PathBuf::from("/"),
                        message: format!(
                            "PostgreSQL cannot run as root and the user {name:?} could not be \
                             created: {}",
                            String::from_utf8_lossy(&out.stderr).trim()
                        ),
                    })
                }
                (Err(e), None) => {
                    return Err(Error::Embedded {
                        dir: PathBuf::from("/"),
                        message: format!(
                            "PostgreSQL cannot run as root and `useradd {name}` failed: {e}; \
                             create an unprivileged user and set EDGEWATCH_PG_USER"
                        ),
                    })
                }
            }
        }
    };
    if user.uid.is_root() {
        return Err(Error::Embedded {
            dir: PathBuf::from("/"),
            message: format!("EDGEWATCH_PG_USER={name:?} is root; PostgreSQL refuses to run as root"),
        });
    }
    Ok(Owner { name, uid: user.uid.as_raw(), gid: user.gid.as_raw() })
}

/// `<data-dir>/pg`, unless the unprivileged owner could not reach it.
fn choose_cluster_dir(data_dir: &Path, owner: Option<&Owner>) -> Result<PathBuf> {
    let inside = data_dir.join("pg");
    let Some(owner) = owner else {
        return Ok(inside);
    };
    let located = data_dir.join("cluster-location");
    if let Ok(text) = fs::read_to_string(&located) {
        return Ok(PathBuf::from(text.trim()));
    }
    if inside.join("PG_VERSION").exists() || reachable_by(data_dir, owner) {
        return Ok(inside);
    }
    Ok(Path::new(FALLBACK_ROOT).join(format!("{:016x}", fnv1a(data_dir.to_string_lossy().as_bytes()))))
}

/// Can `owner` traverse every existing ancestor of `dir`?
fn reachable_by(dir: &Path, owner: &Owner) -> bool {
    dir.ancestors().filter(|a| a.exists()).all(|a| match fs::metadata(a) {
        Ok(meta) => {
            let mode = meta.mode();
            (meta.uid() == owner.uid && mode & 0o100 != 0)
                || (meta.gid() == owner.gid && mode & 0o010 != 0)
                || mode & 0o001 != 0
        }
        Err(_) => false,
    })
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// Finds a directory holding `initdb`, `pg_ctl` and `postgres`: `PG_BINDIR`, then PATH,
/// then `pg_config --bindir`, then `/usr/lib/postgresql/*/bin` (the cluster's own major
/// version first when it already exists, else the newest).
fn find_bindir(cluster_version: Option<&str>) -> Result<PathBuf> {
    let complete = |dir: &Path| SERVER_BINARIES.iter().all(|b| dir.join(b).is_file());
    if let Ok(dir) = std::env::var("PG_BINDIR") {
        return if complete(Path::new(&dir)) { Ok(dir.into()) } else { Err(Error::NoServerBinaries) };
    }
    let mut debian: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| complete(dir))
        .collect();
    debian.sort();
    if let Some(version) = cluster_version.and_then(|v| v.parse::<u32>().ok()) {
        if let Some((_, dir)) = debian.iter().find(|(v, _)| *v == version) {
            return Ok(dir.clone());
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if let Ok(pg_ctl) = fs::canonicalize(dir.join("pg_ctl")) {
                if let Some(real) = pg_ctl.parent().filter(|d| complete(d)) {
                    return Ok(real.to_path_buf());
                }
            }
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && complete(&dir) {
            return Ok(dir);
        }
    }
    debian.pop().map(|(_, dir)| dir).ok_or(Error::NoServerBinaries)
}

fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_unusual_paths() {
        assert_eq!(percent_encode_path("/tmp/a b/pg"), "/tmp/a%20b/pg");
        assert_eq!(percent_encode_path("/x&y=z"), "/x%26y%3Dz");
    }

    #[test]
    fn fallback_ids_are_stable() {
        assert_eq!(fnv1a(b"/root/edgewatch/.edgewatch"), fnv1a(b"/root/edgewatch/.edgewatch"));
        assert_ne!(fnv1a(b"/a"), fnv1a(b"/b"));
    }

    #[test]
    fn absolute_keeps_missing_tail() {
        let base = tempfile::tempdir().unwrap();
        let p = absolute(&base.path().join("x/y")).unwrap();
        assert!(p.is_absolute());
        assert!(p.ends_with("x/y"));
    }
}
