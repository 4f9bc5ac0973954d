//! `edgewatch serve` over HTTPS, with real processes and a CA made in the test (rcgen):
//! an agent given the CA (`--ca`) reports and its results are stored; an agent without it
//! (the system's roots) or with another CA stops with "unknown CA" and sends nothing (the
//! server counts no agent request); an agent told `http://` to an address off loopback
//! refuses before it connects anywhere (strace sees no connect to it); `curl --cacert`
//! reads the API; SIGHUP reloads the certificate for new handshakes while an open
//! connection keeps working, and a bad new file keeps the old certificate. Every probe
//! target is in 127.0.0.0/8 (the sample fleet), every agent's allow-list is
//! 127.0.0.0/8,::1/128, and the only non-loopback address, 198.18.0.1 (RFC 2544), is never
//! connected to.

mod common;
mod tls_ca;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{ok, sample};
use graph_store::testing::TestDb;
use tls_ca::TestCa;

const NODE: &str = "be1.host101"; // DNS edges to db1, auth, cache: TCP to ports nothing listens on
const AGENT_ALLOW: &str = "127.0.0.0/8,::1/128";

/// `edgewatch serve` with its stderr in a file; killed when dropped.
struct Serve {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Serve {
    fn start(url: &str, args: &[&str], dir: &Path) -> Serve {
        let log = dir.join("serve.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgewatch"))
            .env_remove("DATABASE_URL")
            .env_remove("EDGEWATCH_READ_TOKEN")
            .env("EDGEWATCH_LOG", "info,sqlx=warn")
            .env("NO_COLOR", "1")
            .args(["--database-url", url, "serve", "--interval", "1s"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line.trim().strip_prefix("listening on ").unwrap_or_default().to_string();
        let serve = Serve { child, base, log };
        assert!(!serve.base.is_empty(), "serve said {line:?}:\n{}", serve.log());
        serve
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits until the log has `n` lines containing `text`.
    fn wait_for_log(&self, text: &str, n: usize) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.matches(text).count() >= n {
                return log;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "no {text:?} (x{n}) in the log:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent_command(url: &str, server: &str, token: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgewatch"));
    cmd.env_remove("DATABASE_URL")
        .env_remove("EDGEWATCH_CA")
        .env("EDGEWATCH_LOG", "info,sqlx=warn")
        .env("NO_COLOR", "1")
        .args(["--database-url", url, "agent", "--server", server, "--name", NODE, "--token", token])
        .args(["--allow", AGENT_ALLOW, "--interval", "1s", "--packets", "2", "--timeout", "200ms", "--no-trace"])
        // Results in memory only: the spool is not what these tests are about.
        .args(["--spool", "off"])
        .args(extra)
        .stdin(Stdio::null());
    cmd
}

fn run(mut cmd: Command) -> Output {
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `N cycles, N results made, N delivered, …`: the agent's last line.
fn summary(log: &str, what: &str) -> u64 {
    let line =
        log.lines().rev().find(|l| l.contains(" results made, ")).unwrap_or_else(|| panic!("no summary:\n{log}"));
    let part = line.split(", ").find(|p| p.ends_with(what)).unwrap_or_else(|| panic!("no {what:?} in {line}"));
    part.split(' ').next().unwrap().parse().unwrap()
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl").args(["--silent", "--show-error", "--max-time", "10"]).args(args).output().unwrap()
}

/// Requests the server answered on the agents' routes, from its Prometheus metrics.
fn agent_requests(base: &str, ca: &Path) -> u64 {
    let out = curl(&["--cacert", ca.to_str().unwrap(), &format!("{base}/metrics")]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("_count{") && l.contains("/api/v1/agents/"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
        .sum()
}

/// A client trusting only `ca`, keeping its connections open between requests.
fn client(ca: &Path) -> reqwest::Client {
    let tls = probers::tls::client_config(&probers::tls::Roots::Bundle(ca.to_path_buf())).unwrap();
    reqwest::Client::builder().tls_backend_preconfigured(tls).build().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_report_over_tls_and_refuse_what_they_cannot_verify() {
    let Some(_) = common::tool("curl", "curl") else { return };
    let Some(strace) = common::tool("strace", "strace") else { return };
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    let token = ok(&db, &["agent-token", "create", NODE]).trim().to_string();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "ca");
    let other = TestCa::new(dir.path(), "other-ca");
    let (cert, key) = ca.server(dir.path(), "server", &["localhost", "127.0.0.1", "::1"]);
    let (cert_s, key_s) = (cert.to_str().unwrap(), key.to_str().unwrap());

    let serve =
        Serve::start(&db.url, &["--listen", "127.0.0.1:0", "--tls-cert", cert_s, "--tls-key", key_s], dir.path());
    assert!(serve.base.starts_with("https://127.0.0.1:"), "{}", serve.base);
    let port = serve.base.rsplit(':').next().unwrap().to_string();

    // curl with the CA sees the API; without it, it cannot verify the server.
    let out = curl(&["--cacert", ca.cert.to_str().unwrap(), &format!("{}/api/v1/nodes", serve.base)]);
    assert!(out.status.success(), "{}", text(&out));
    let nodes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(nodes.to_string().contains(NODE), "{nodes}");
    let out = curl(&["--cacert", other.cert.to_str().unwrap(), &format!("{}/healthz", serve.base)]);
    assert_eq!(out.status.code(), Some(60), "curl trusting another CA: {}", text(&out));

    // An agent with the CA reports; every result it made is stored. strace sees its
    // connections to the server (so the check further down can see one if it were made).
    let start = Utc::now();
    let trace_ok = dir.path().join("agent-ok.strace");
    let mut cmd = Command::new(&strace);
    cmd.args(["-f", "-qq", "-e", "trace=connect", "-o", trace_ok.to_str().unwrap()]);
    let agent = agent_command(&db.url, &serve.base, &token, &["--ca", ca.cert.to_str().unwrap(), "--run-for", "4s"]);
    cmd.arg(agent.get_program()).args(agent.get_args()).envs(agent.get_envs().filter_map(|(k, v)| Some((k, v?))));
    cmd.env_remove("DATABASE_URL");
    let out = run(cmd);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    let made = summary(&log, "results made");
    assert!(made > 0, "{log}");
    assert_eq!(summary(&log, "delivered"), made, "{log}");
    let stored = graph_store::agents::results_of(&db.pool, &format!("agent:{NODE}"), start).await.unwrap();
    assert_eq!(stored.len() as u64, made, "every result made is stored, once");
    let connects = std::fs::read_to_string(&trace_ok).unwrap();
    assert!(connects.contains(&format!("sin_port=htons({port})")), "strace saw no connect to the server:\n{connects}");

    // Without the CA (the system's roots), or with another CA: a clear error, exit 1, and
    // nothing sent — the server answered no agent request meanwhile.
    let before = agent_requests(&serve.base, &ca.cert);
    assert!(before > 0, "the metrics count the verified agent's requests");
    for extra in [vec![], vec!["--ca", other.cert.to_str().unwrap()]] {
        let started = Utc::now();
        let out = run(agent_command(&db.url, &serve.base, &token, &[&extra[..], &["--run-for", "3s"]].concat()));
        let log = text(&out);
        assert_eq!(out.status.code(), Some(1), "{log}");
        assert!(log.contains(&format!("TLS handshake with {} failed: unknown CA", serve.base)), "{log}");
        assert!(log.contains("nothing was sent"), "{log}");
        let stored = graph_store::agents::results_of(&db.pool, &format!("agent:{NODE}"), started).await.unwrap();
        assert!(stored.is_empty(), "{stored:?}");
    }
    assert_eq!(agent_requests(&serve.base, &ca.cert), before, "an unverified agent's request reached the server");
    // The server says so too: the peer, and why.
    let log = serve.wait_for_log("TLS handshake from 127.0.0.1:", 1);
    let said = log.lines().find(|l| l.contains("TLS handshake from 127.0.0.1:")).unwrap();
    assert!(said.contains("failed") && said.contains("UnknownCA"), "{said}");

    // A CA bundle that cannot be read: named.
    let missing = dir.path().join("no-such-ca.pem");
    let out = run(agent_command(&db.url, &serve.base, &token, &["--ca", missing.to_str().unwrap(), "--run-for", "2s"]));
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains(&format!("{}: cannot read it", missing.display())), "{log}");

    // Plain http:// to an address off loopback: refused before any connection.
    let trace_refused = dir.path().join("agent-refused.strace");
    let mut cmd = Command::new(&strace);
    cmd.args(["-f", "-qq", "-e", "trace=connect", "-o", trace_refused.to_str().unwrap()]);
    let agent = agent_command(&db.url, "http://198.18.0.1:1", &token, &["--run-for", "3s"]);
    cmd.arg(agent.get_program()).args(agent.get_args()).envs(agent.get_envs().filter_map(|(k, v)| Some((k, v?))));
    cmd.env_remove("DATABASE_URL");
    let out = run(cmd);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("refusing to send the agent's token over plain HTTP to http://198.18.0.1:1")
            && log.contains("--insecure-http"),
        "{log}"
    );
    let connects = std::fs::read_to_string(&trace_refused).unwrap();
    assert!(!connects.contains("198.18.0.1"), "a connection to 198.18.0.1 was attempted:\n{connects}");
    assert!(!log.contains(" results made, "), "the agent ran a cycle:\n{log}");

    sighup_reloads_for_new_handshakes(&serve, &ca, &cert, &key, &db.url, &token).await;
}

/// SIGHUP with a certificate for another name: a connection opened before keeps working,
/// new handshakes get the new certificate (name mismatch for 127.0.0.1); a bad key file
/// keeps the current one; the good files again and all is as before.
async fn sighup_reloads_for_new_handshakes(
    serve: &Serve,
    ca: &TestCa,
    cert: &Path,
    key: &Path,
    url: &str,
    token: &str,
) {
    let dir = cert.parent().unwrap();
    let healthz = format!("{}/healthz", serve.base);
    let cacert = ca.cert.to_str().unwrap();
    let http = client(&ca.cert);
    assert!(http.get(&healthz).send().await.unwrap().status().is_success());

    let (good_cert, good_key) = (std::fs::read(cert).unwrap(), std::fs::read(key).unwrap());
    let (elsewhere_cert, elsewhere_key) = ca.server(dir, "elsewhere", &["db.example.invalid"]);
    std::fs::copy(&elsewhere_cert, cert).unwrap();
    std::fs::copy(&elsewhere_key, key).unwrap();
    serve.signal("HUP");
    serve.wait_for_log("read again; new connections use them", 1);

    let answer = http.get(&healthz).send().await.expect("the connection opened before the reload broke");
    assert!(answer.status().is_success());
    let out = curl(&["--cacert", cacert, &healthz]);
    assert_eq!(out.status.code(), Some(60), "a new handshake still got the old certificate: {}", text(&out));
    let out = run(agent_command(url, &serve.base, token, &["--ca", cacert, "--run-for", "2s"]));
    let log = text(&out);
    let alive = std::path::Path::new(&format!("/proc/{}", serve.child.id())).exists();
    assert_eq!(out.status.code(), Some(1), "{log}\nserve (alive: {alive}):\n{}", serve.log());
    assert!(log.contains("name mismatch"), "{log}");

    std::fs::write(key, "not a key\n").unwrap();
    serve.signal("HUP");
    let log = serve.wait_for_log("keeping the current TLS certificate", 1);
    assert!(log.contains(key.to_str().unwrap()), "the bad file is not named:\n{log}");
    let out = curl(&["--cacert", cacert, &healthz]);
    assert_eq!(out.status.code(), Some(60), "the bad reload changed the certificate: {}", text(&out));

    std::fs::write(cert, good_cert).unwrap();
    std::fs::write(key, good_key).unwrap();
    serve.signal("HUP");
    serve.wait_for_log("read again; new connections use them", 2);
    let out = curl(&["--cacert", cacert, &healthz]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(serve.log().contains("serving HTTPS"), "{}", serve.log());
}

#[test]
fn plain_http_is_served_only_on_loopback_unless_insecure_http() {
    let dir = tempfile::tempdir().unwrap();
    let url = "postgres://nobody@127.0.0.1:1/none";
    // Refused before the store is even opened: the database URL here leads nowhere.
    let out = run({
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgewatch"));
        cmd.env_remove("DATABASE_URL").args(["--database-url", url, "serve", "--listen", "0.0.0.0:0"]);
        cmd
    });
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("refusing to serve plain HTTP on 0.0.0.0:")
            && log.contains("--tls-cert FILE --tls-key FILE")
            && log.contains("--insecure-http"),
        "{log}"
    );
    assert!(!log.contains("cannot connect to PostgreSQL"), "{log}");

    // A certificate without its key, and a key file that cannot be read, are named.
    let ca = TestCa::new(dir.path(), "ca");
    let (cert, _) = ca.server(dir.path(), "server", &["127.0.0.1"]);
    let out = run({
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgewatch"));
        cmd.env_remove("DATABASE_URL").args(["--database-url", url, "serve", "--tls-cert", cert.to_str().unwrap()]);
        cmd
    });
    assert!(!out.status.success() && text(&out).contains("--tls-key"), "{}", text(&out));
    let missing = dir.path().join("missing.key");
    let out = run({
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgewatch"));
        cmd.env_remove("DATABASE_URL").args(["--database-url", url, "serve", "--tls-cert", cert.to_str().unwrap()]);
        cmd.args(["--tls-key", missing.to_str().unwrap()]);
        cmd
    });
    let log = text(&out);
    assert!(!out.status.success() && log.contains("missing.key") && log.contains("cannot read"), "{log}");
}
