//! End to end with a real PowerDNS: `pdns_server` (bind backend) and `pdns_recursor` in
//! front of it run with query logging in a private network namespace; the sample
//! fleet's queries are sent with `dig -b <container ip>` to each, while two
//! `edgewatch dns tail` processes follow the two logs live; the edges that appear must be
//! exactly the expected ones. Needs root (network namespaces) and Debian's pdns-server,
//! pdns-backend-bind, pdns-recursor and dnsutils, which `make test` installs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ok, project, sample};
use graph_store::testing::TestDb;
use serde_json::Value;

const EDGE_KEYS: [&str; 6] = ["src", "dst_ip", "dst", "services", "sources", "queries"];

struct Lab {
    ns: String,
    children: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Ok(out) = Command::new("ip").args(["netns", "pids", &self.ns]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").arg(pid).status();
            }
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}

fn in_ns(ns: &str, program: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, program]);
    cmd
}

fn missing_tools() -> Vec<&'static str> {
    ["/usr/sbin/pdns_server", "/usr/sbin/pdns_recursor", "/usr/bin/dig"]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect()
}

fn write_configs(dir: &Path) {
    std::fs::write(
        dir.join("example.com.zone"),
        "$TTL 60\n@ IN SOA ns1.example.com. hostmaster.example.com. 1 3600 600 86400 60\n\
         @ IN NS ns1.example.com.\nns1 IN A 127.0.0.1\n* IN A 127.0.0.1\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("named.conf"),
        format!("zone \"example.com\" {{ type master; file \"{}/example.com.zone\"; }};\n", dir.display()),
    )
    .unwrap();
    let d = dir.display();
    std::fs::write(
        dir.join("pdns.conf"),
        format!(
            "launch=bind\nbind-config={d}/named.conf\nlocal-address=127.0.0.1\nlocal-port=5300\n\
             socket-dir={d}\nlog-dns-queries=yes\nloglevel=5\ndaemon=no\nguardian=no\n\
             write-pid=no\ndisable-syslog=yes\nlog-timestamp=yes\n"
        ),
    )
    .unwrap();
    let rec = dir.join("rec");
    std::fs::create_dir_all(&rec).unwrap();
    std::fs::write(
        rec.join("recursor.conf"),
        format!(
            "local-address=127.0.0.1\nlocal-port=53\nforward-zones=example.com=127.0.0.1:5300\n\
             allow-from=127.0.0.0/8\nsocket-dir={}\nquiet=no\nloglevel=6\ndaemon=no\n\
             disable-syslog=yes\nstructured-logging=yes\nwrite-pid=no\nsecurity-poll-suffix=\n",
            rec.display()
        ),
    )
    .unwrap();
}

/// A `dig -f` batch: every query of queries.txt, from its client address, to `port`.
fn dig_batch(dir: &Path, port: u16) -> PathBuf {
    let queries = std::fs::read_to_string(sample("queries.txt")).unwrap();
    let mut batch = String::new();
    for line in queries.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let f: Vec<&str> = line.split_whitespace().collect();
        batch.push_str(&format!("-b {} -p {port} @127.0.0.1 {} {} +tries=1 +time=2\n", f[0], f[1], f[2]));
    }
    let path = dir.join(format!("digs-{port}.txt"));
    std::fs::write(&path, batch).unwrap();
    path
}

fn spawn_tail(db: &TestDb, log: &Path) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("edgewatch"))
        .env_remove("DATABASE_URL")
        .args(["--database-url", &db.url, "dns", "tail", "--zone", "example.com", "--flush-every", "100ms"])
        .arg(log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn edges(db: &TestDb) -> Vec<Value> {
    project(&common::json(db, &["graph", "edges", "--format", "json"]), &EDGE_KEYS)
}

async fn wait_for(db: &TestDb, want: &[Value], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = edges(db);
        if got == want {
            return;
        }
        if Instant::now() > deadline {
            let missing: Vec<&Value> = want.iter().filter(|e| !got.contains(e)).collect();
            let extra: Vec<&Value> = got.iter().filter(|e| !want.contains(e)).collect();
            panic!("{what}: edges differ\nmissing {missing:#?}\nextra {extra:#?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn wait_ready(ns: &str, port: u16) {
    for _ in 0..100 {
        let out = in_ns(ns, "dig")
            .args(["+tries=1", "+time=1", "-p", &port.to_string(), "@127.0.0.1", "example.com", "SOA"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("status: ") {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing answers on port {port} in {ns}");
}

#[tokio::test]
async fn real_powerdns_logs_followed_live_give_the_expected_edges() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: needs root to create a network namespace for PowerDNS");
        return;
    }
    let missing = missing_tools();
    if !missing.is_empty() {
        eprintln!("SKIP: {missing:?} not installed (`make test` installs pdns-server, pdns-backend-bind, pdns-recursor, dnsutils)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_configs(dir.path());
    let auth_log = dir.path().join("auth.log");
    let rec_log = dir.path().join("rec.log");

    let (auth_db, rec_db) = (TestDb::new().await, TestDb::new().await);
    for db in [&auth_db, &rec_db] {
        ok(db, &["cmdb", "import", &sample("inventory.json")]);
    }

    let ns = format!("ew-pdns-{}", std::process::id());
    run(Command::new("ip").args(["netns", "add", &ns]));
    let mut lab = Lab { ns: ns.clone(), children: Vec::new() };
    run(in_ns(&ns, "ip").args(["link", "set", "lo", "up"]));

    // The tailers start first: the logs do not exist yet.
    lab.children.push(spawn_tail(&auth_db, &auth_log));
    lab.children.push(spawn_tail(&rec_db, &rec_log));

    let log = |path: &Path| Stdio::from(std::fs::File::create(path).unwrap());
    lab.children.push(
        in_ns(&ns, "/usr/sbin/pdns_server")
            .arg(format!("--config-dir={}", dir.path().display()))
            .stdout(log(&dir.path().join("auth.stdout")))
            .stderr(log(&auth_log))
            .spawn()
            .unwrap(),
    );
    wait_ready(&ns, 5300);
    lab.children.push(
        in_ns(&ns, "/usr/sbin/pdns_recursor")
            .arg(format!("--config-dir={}", dir.path().join("rec").display()))
            .stdout(log(&dir.path().join("rec.stdout")))
            .stderr(log(&rec_log))
            .spawn()
            .unwrap(),
    );
    wait_ready(&ns, 53);

    // The fleet asks: every query of queries.txt, to the auth directly and through the
    // recursor, from the container addresses.
    for port in [5300, 53] {
        let batch = dig_batch(dir.path(), port);
        let out = in_ns(&ns, "dig").arg("-f").arg(&batch).output().unwrap();
        assert!(out.status.success(), "dig -f: {}", String::from_utf8_lossy(&out.stderr));
    }

    let expect = |name: &str| -> Vec<Value> {
        project(&serde_json::from_str(&std::fs::read_to_string(sample(name)).unwrap()).unwrap(), &EDGE_KEYS)
    };
    wait_for(&auth_db, &expect("expected-edges-auth-console.json"), "pdns_server log").await;
    wait_for(&rec_db, &expect("expected-edges-rec-structured.json"), "pdns_recursor log").await;
    drop(lab);
}
