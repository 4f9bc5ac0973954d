//! Shared helpers for the binary's integration tests: run `edgewatch` against a test
//! database and read its JSON.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use graph_store::testing::TestDb;
use serde_json::Value;

/// A file of the bundled sample fleet, as a path string.
pub fn sample(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample-fleet").join(name).to_str().unwrap().to_string()
}

/// `edgewatch --database-url <test db> ARGS…`
pub fn edgewatch(db: &TestDb, args: &[&str]) -> Output {
    Command::cargo_bin("edgewatch")
        .unwrap()
        .env_remove("DATABASE_URL")
        .env_remove("EDGEWATCH_LOG")
        .arg("--database-url")
        .arg(&db.url)
        .args(args)
        .output()
        .unwrap()
}

/// Runs and insists on success; returns stdout.
pub fn ok(db: &TestDb, args: &[&str]) -> String {
    let out = edgewatch(db, args);
    assert!(
        out.status.success(),
        "edgewatch {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn json(db: &TestDb, args: &[&str]) -> Value {
    let text = ok(db, args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("edgewatch {args:?}: not JSON ({e}):\n{text}"))
}

/// Keeps only `keys` of every object in a JSON array, sorted by its text.
pub fn project(items: &Value, keys: &[&str]) -> Vec<Value> {
    let mut out: Vec<Value> = items
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|item| keys.iter().map(|k| (k.to_string(), item[*k].clone())).collect::<serde_json::Map<_, _>>().into())
        .collect();
    out.sort_by_key(|v: &Value| v.to_string());
    out
}

/// The edges whose queries are not the sum of their hours in `query_hourly` (with the
/// hours of edges that do not exist).
pub fn hourly_mismatches(db: &TestDb) -> Value {
    json(
        db,
        &[
            "sql",
            "--format",
            "json",
            "SELECT e.id, e.queries, h.queries AS hours FROM edges e \
             FULL JOIN (SELECT edge_id, sum(queries)::bigint AS queries FROM query_hourly GROUP BY edge_id) h \
             ON h.edge_id = e.id WHERE e.queries IS DISTINCT FROM COALESCE(h.queries, 0)",
        ],
    )
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `edgewatch serve` on a free loopback port, stopped when dropped.
pub struct Server {
    pub base: String,
    child: std::process::Child,
}

impl Server {
    /// Starts `edgewatch --database-url <db> [GLOBAL…] serve --listen 127.0.0.1:0` with
    /// `env` set, and waits until it says where it listens.
    pub fn start(db: &TestDb, global: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_with(db, global, &[], env)
    }

    /// [`Server::start`] with more `serve` flags.
    pub fn start_with(db: &TestDb, global: &[&str], serve: &[&str], env: &[(&str, &str)]) -> Server {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("edgewatch"))
            .env_remove("DATABASE_URL")
            .env_remove("EDGEWATCH_READ_TOKEN")
            .envs(env.iter().copied())
            .args(["--database-url", &db.url])
            .args(global)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(serve)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        let base =
            line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("serve said {line:?}")).to_string();
        Server { base, child }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Hostile names for the CMDB: markup, quotes, SQL, shell and format strings, non-ASCII
/// scripts, bidirectional controls, combining marks. None has leading or trailing
/// whitespace (the importer trims that) and none is a prefix-decorated form of another;
/// each test adds a 10 KB one of its own.
pub fn hostile_names() -> Vec<String> {
    let p: Vec<String> = [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>&amp;&lt;",
        "\"quoted\" 'single'",
        "'; DROP TABLE nodes; --",
        "Robert'); DELETE FROM edges;--",
        "1' OR '1'='1",
        "$$; DROP TABLE hosts; $$",
        "Zürich-DC",
        "数据库",
        "🔥💥👩\u{200d}💻🏳\u{fe0f}\u{200d}🌈",
        "שלום-עולם",
        "مرحبا-بالعالم",
        "\u{202e}evil\u{202c}.exe",
        "Z\u{337}\u{34e}a\u{338}l\u{336}g\u{335}o\u{334}",
        // The same word twice, decomposed and precomposed: two different names.
        "cafe\u{301}",
        "caf\u{e9}",
        "C:\\Windows\\",
        "\\\\server\\share\\n\\\"",
        "%s %n {} {0} ${HOME} $(id) `id`",
        "with space",
        "with\ttab",
        "non\u{a0}breaking\u{3000}ideographic",
        "#not-a-comment",
        "=cmd|' /C calc'!A0,\"a,b\"",
        "--version",
        "-rf",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for s in &p {
        assert_eq!(s.trim(), s, "hostile names must not start or end with whitespace");
    }
    p
}

/// The path of a tool on PATH, or `None` (skip, saying why) when it is missing and we are
/// neither root nor under CI.
pub fn tool(name: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(found) = std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file()) {
        return Some(found);
    }
    let why = format!("{name} is not installed (Debian package {package}; `make test` installs it)");
    assert!(std::env::var_os("CI").is_none(), "CI must have {name}: {why}");
    assert!(!nix::unistd::geteuid().is_root(), "{why}: run scripts/install-deps.sh report");
    eprintln!("SKIPPED: {why}, and not root to install it: no {name} output checked");
    None
}

/// An HTTP client for the tests. reqwest is built with rustls and no crypto provider of
/// its own (edgewatch names ring wherever it makes a TLS configuration), so the process's
/// default provider is set first.
pub fn http() -> reqwest::Client {
    probers::tls::install_default_provider();
    reqwest::Client::new()
}

/// An agent's targets: `GET {base}/api/v1/agents/{node}/targets` with its token (`node`
/// as a path segment, already escaped if it needs to be), the answer's JSON.
pub async fn agent_targets(base: &str, node: &str, token: &str) -> Value {
    let url = format!("{base}/api/v1/agents/{node}/targets");
    http().get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap()
}

/// `GET url` with [`http`].
pub async fn get(url: impl reqwest::IntoUrl) -> reqwest::Result<reqwest::Response> {
    http().get(url).send().await
}

/// A long-running `edgewatch` process for signal tests: stderr in a file (shown when
/// something fails), killed if the test ends while it runs.
pub struct Daemon {
    child: std::process::Child,
    log: PathBuf,
}

impl Daemon {
    /// `edgewatch --database-url <db> ARGS…` with `EDGEWATCH_LOG=info`, stderr to a file in `dir`.
    pub fn spawn(db: &TestDb, args: &[&str], dir: &Path) -> Daemon {
        let log = dir.join(format!("{}-{}.log", args[0], rand::random::<u32>()));
        let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("edgewatch"))
            .env_remove("DATABASE_URL")
            .env("EDGEWATCH_LOG", "info,sqlx=warn")
            .env("NO_COLOR", "1")
            .env("EDGEWATCH_SPOOL", dir.join("spool"))
            .args(["--database-url", &db.url])
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no clean stop.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `kill -NAME`.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let status = std::process::Command::new("kill").args([&format!("-{name}"), &pid]).status().unwrap();
        assert!(status.success(), "kill -{name} {pid}");
    }

    /// Waits until the log has `text` (a new occurrence: more than `seen` of them); fails
    /// after `limit`, or when the process ended.
    pub fn wait_for(&mut self, text: &str, seen: usize, limit: std::time::Duration) -> String {
        let start = std::time::Instant::now();
        loop {
            let log = self.log();
            if log.matches(text).count() > seen {
                return log;
            }
            assert!(self.child.try_wait().unwrap().is_none(), "ended before saying {text:?}:\n{log}");
            assert!(start.elapsed() < limit, "no {text:?} after {limit:?}:\n{log}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// SIGTERM, then its exit status within `limit` (failing the test after it).
    pub fn stop(&mut self, limit: std::time::Duration) -> std::process::ExitStatus {
        self.signal("TERM");
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < limit, "still runs {limit:?} after SIGTERM:\n{}", self.log());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
