//! `edgewatch dns tail`, SIGKILLed and restarted at random points while its log is rotated
//! under it (renamed with a number or a date, copied and truncated, deleted and re-created,
//! or by Debian's own logrotate), ends with exactly the edges and query counts of the whole
//! log: nothing it read is lost, nothing is counted twice.

mod common;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{hourly_mismatches, json, ok, project, sample};
use graph_store::testing::TestDb;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use wait_timeout::ChildExt;

const EDGE_KEYS: [&str; 6] = ["src", "dst_ip", "dst", "services", "sources", "queries"];
/// The log written under the tailer (230 lines) and the edges it gives when read whole.
const LOG: &str = "pdns-rec-structured.log";
const EXPECTED: &str = "expected-edges-rec-structured.json";
/// The log is rotated after every this many pieces.
const ROTATE_EVERY: usize = 9;
/// Each run kills the tailer at least this often.
const MIN_KILLS: usize = 20;
/// Runs per rotation of the kill tests, and per logrotate configuration.
const KILL_RUNS: u64 = 20;
const LOGROTATE_RUNS: u64 = 3;
/// Runs of a test at the same time.
const LANES: u64 = 4;
/// How long the store may take to catch up with what was written.
const CATCH_UP: Duration = Duration::from_secs(15);

/// How the log is rotated.
#[derive(Debug, Clone, Copy)]
enum Rotation {
    /// `mv pdns.log pdns.log.N` (N the piece just written), then a new empty `pdns.log`.
    RenameNumbered,
    /// `mv pdns.log pdns.log-202612DD` (logrotate's `dateext` name, a day per rotation),
    /// then a new empty `pdns.log`.
    RenameDateext,
    /// `cp pdns.log pdns.log.N`, then `pdns.log` truncated, nothing written between.
    Copytruncate,
    /// `rm pdns.log`, then a new empty one; only once the store has counted every line
    /// written, since a deleted file's unread lines are gone by definition.
    DeleteRecreate,
    /// `logrotate -f` with these directives besides `rotate 1000`, `missingok`, `nomail`.
    Logrotate(&'static str),
}

/// The seed of a test's runs: `DNS_TAIL_KILL_SEED` to replay one, else a random one.
fn seed() -> u64 {
    let seed = match std::env::var("DNS_TAIL_KILL_SEED") {
        Ok(s) => s.parse().expect("DNS_TAIL_KILL_SEED: a number"),
        Err(_) => rand::rng().random(),
    };
    eprintln!("DNS_TAIL_KILL_SEED={seed}");
    seed
}

fn edges(db: &TestDb) -> Vec<Value> {
    project(&json(db, &["graph", "edges", "--format", "json"]), &EDGE_KEYS)
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(sample(EXPECTED)).unwrap()).unwrap()
}

/// What each line of the log adds to the sum of the expected edges' queries, as this test
/// reads the line (not with discovery's parser): a question for the A, AAAA or ANY record of
/// SERVICE.example.com from a container's address, or of SERVICE.CONSUMER.example.com,
/// counts once on every expected edge from that consumer that carries the service.
fn query_weights(log: &str, expected: &Value) -> Vec<i64> {
    let inventory: Value = serde_json::from_str(&std::fs::read_to_string(sample("inventory.json")).unwrap()).unwrap();
    let owner = |client: &str| -> Option<String> {
        inventory["containers"].as_array().unwrap().iter().find_map(|c| {
            c["ips"].as_array().unwrap().iter().any(|ip| ip == client).then(|| c["name"].as_str().unwrap().to_string())
        })
    };
    let edges = expected.as_array().unwrap();
    let weight = |line: &str| -> Option<i64> {
        let quoted = |key: &str| -> Option<&str> { line.split(&format!(" {key}=\"")).nth(1)?.split('"').next() };
        if !matches!(quoted("msg")?, "Question" | "Question answered from packet cache") {
            return None;
        }
        if !["A", "AAAA", "ANY"].contains(&quoted("qtype")?) {
            return None;
        }
        let qname = quoted("qname")?.trim_end_matches('.').to_ascii_lowercase();
        let labels: Vec<&str> = qname.strip_suffix(".example.com")?.split('.').collect();
        let (consumer, service) = match labels.len() {
            1 => (owner(quoted("remote")?.rsplit_once(':')?.0)?, labels[0]),
            2 => return None,
            _ => (labels[1..].join("."), labels[0]),
        };
        let carries = |e: &&Value| {
            e["src"].as_str().unwrap().eq_ignore_ascii_case(&consumer)
                && e["services"].as_array().unwrap().iter().any(|s| s == service)
        };
        Some(edges.iter().filter(carries).count() as i64)
    };
    let weights: Vec<i64> = log.lines().map(|line| weight(line).unwrap_or(0)).collect();
    let total: i64 = edges.iter().map(|e| e["queries"].as_i64().unwrap()).sum();
    assert_eq!(weights.iter().sum::<i64>(), total, "this test's reading of {LOG} disagrees with {EXPECTED}");
    weights
}

/// `logrotate` on PATH, else in /usr/sbin (not on a non-root PATH).
fn logrotate_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("logrotate"))
        .find(|bin| bin.is_file())
}

/// One run in its own database and directory: `logs/pdns.log`, the tailer following it,
/// and what a failure should tell.
struct Run {
    db: TestDb,
    dir: tempfile::TempDir,
    log: PathBuf,
    rotation: Rotation,
    /// Rotation, run and seed, for failure messages.
    context: String,
    tailer: Option<Child>,
    starts: usize,
    logrotate: Option<PathBuf>,
    last_logrotate: Option<Instant>,
}

impl Run {
    async fn new(rotation: Rotation, seed: u64, run: u64) -> Run {
        let db = TestDb::new().await;
        ok(&db, &["cmdb", "import", &sample("inventory.json")]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        let log = dir.path().join("logs/pdns.log");
        File::create(&log).unwrap();
        let logrotate = match rotation {
            Rotation::Logrotate(directives) => {
                let config = dir.path().join("logrotate.conf");
                let text = format!(
                    "\"{}\" {{\n    rotate 1000\n    missingok\n    nomail\n    {}\n}}\n",
                    log.display(),
                    directives.replace('\n', "\n    ")
                );
                std::fs::write(&config, text).unwrap();
                // logrotate ignores a configuration others may write to.
                std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
                Some(config)
            }
            _ => None,
        };
        let context = format!("{rotation:?}, run {run} of DNS_TAIL_KILL_SEED={seed}");
        let mut r = Run { db, dir, log, rotation, context, tailer: None, starts: 0, logrotate, last_logrotate: None };
        r.start();
        r
    }

    /// `edgewatch dns tail` on `logs/pdns.log`, from the run's directory as a service unit
    /// would run it; what it says (`EDGEWATCH_LOG=debug` for more) goes to `tailer.out`
    /// there. It writes every 100 ms (not every second) so that one living the fraction of a
    /// second between two kills commits some of what it read.
    fn start(&mut self) {
        self.starts += 1;
        let mut out = OpenOptions::new().create(true).append(true).open(self.dir.path().join("tailer.out")).unwrap();
        writeln!(out, "--- start {} ---", self.starts).unwrap();
        let child = Command::new(assert_cmd::cargo::cargo_bin("edgewatch"))
            .current_dir(self.dir.path())
            .env_remove("DATABASE_URL")
            .env_remove("EDGEWATCH_ZONES")
            .args(["--database-url", &self.db.url, "dns", "tail", "--expire-after", "never"])
            .args(["--flush-every", "100ms", "--zone", "example.com", "logs/pdns.log"])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        self.tailer = Some(child);
    }

    /// SIGKILL, as the OOM killer would; a tailer that stopped by itself fails the run.
    fn kill(&mut self) {
        let mut child = self.tailer.take().unwrap();
        if let Some(status) = child.try_wait().unwrap() {
            self.fail(&format!("the tailer stopped by itself ({status})"));
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Ctrl-C, as `dns tail` says to stop it; the tailer's exit status.
    fn stop(&mut self) -> ExitStatus {
        let mut child = self.tailer.take().unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        match child.wait_timeout(Duration::from_secs(10)).unwrap() {
            Some(status) => status,
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                self.fail("the tailer did not stop within 10 s of Ctrl-C")
            }
        }
    }

    /// Panics with `what`, where it happened and what the tailer said.
    fn fail(&self, what: &str) -> ! {
        let out = std::fs::read_to_string(self.dir.path().join("tailer.out")).unwrap_or_default();
        let cut = out.char_indices().rev().nth(20_000).map_or(0, |(i, _)| i);
        panic!("{}: {what}\n\nthe tailer said ({} starts):\n{}", self.context, self.starts, &out[cut..]);
    }

    fn append(&self, text: &str) {
        OpenOptions::new().append(true).create(true).open(&self.log).unwrap().write_all(text.as_bytes()).unwrap();
    }

    /// Waits until the store's edges have `queries` queries in all.
    fn wait_for_queries(&self, queries: i64, lines: usize) {
        let deadline = Instant::now() + CATCH_UP;
        loop {
            let stored: i64 = edges(&self.db).iter().map(|e| e["queries"].as_i64().unwrap()).sum();
            if stored > queries {
                self.fail(&format!("the first {lines} lines give {queries} queries, the store counts {stored}"));
            }
            if stored == queries {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!(
                    "the first {lines} lines give {queries} queries, the store counts {stored} after {CATCH_UP:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Rotates the log after piece `n`.
    fn rotate(&mut self, n: usize) {
        let logs = self.log.parent().unwrap().to_path_buf();
        match self.rotation {
            Rotation::RenameNumbered => {
                std::fs::rename(&self.log, logs.join(format!("pdns.log.{n}"))).unwrap();
                File::create(&self.log).unwrap();
            }
            Rotation::RenameDateext => {
                std::fs::rename(&self.log, logs.join(format!("pdns.log-202612{:02}", n / ROTATE_EVERY))).unwrap();
                File::create(&self.log).unwrap();
            }
            Rotation::Copytruncate => {
                std::fs::copy(&self.log, logs.join(format!("pdns.log.{n}"))).unwrap();
                OpenOptions::new().write(true).open(&self.log).unwrap().set_len(0).unwrap();
            }
            Rotation::DeleteRecreate => {
                std::fs::remove_file(&self.log).unwrap();
                File::create(&self.log).unwrap();
            }
            Rotation::Logrotate(_) => {
                // `dateext` names a rotation by the second, so rotations are a second apart.
                if let Some(last) = self.last_logrotate {
                    std::thread::sleep(Duration::from_millis(1100).saturating_sub(last.elapsed()));
                }
                let state = self.dir.path().join("logrotate.state");
                let out = Command::new(logrotate_binary().unwrap())
                    .args(["-f", "-s"])
                    .args([&state, self.logrotate.as_ref().unwrap()])
                    .output()
                    .unwrap();
                self.last_logrotate = Some(Instant::now());
                if !out.status.success() || !out.stderr.is_empty() {
                    self.fail(&format!(
                        "logrotate failed ({}): {}{}",
                        out.status,
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
            }
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut child) = self.tailer.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One run: the log written in pieces of 1–5 whole lines 50 ms apart and rotated after
/// every [`ROTATE_EVERY`]th; after a random third of the pieces (and after as many of the
/// last ones as it takes to reach [`MIN_KILLS`]), 0–0.4 s later, the tailer is SIGKILLed and
/// started again at once. When a piece is followed by both, the rotation happens while the
/// tailer is down or just before the kill, at random. At the end the store must hold the
/// expected edges, and their hours must add up to their queries.
async fn run(rotation: Rotation, seed: u64, run: u64) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(run));
    let text = std::fs::read_to_string(sample(LOG)).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let expected = expected();
    let weights = query_weights(&text, &expected);
    let mut pieces: Vec<usize> = Vec::new();
    while pieces.iter().sum::<usize>() < lines.len() {
        pieces.push(rng.random_range(1..=5).min(lines.len() - pieces.iter().sum::<usize>()));
    }
    assert!(pieces.len() >= MIN_KILLS);

    let mut r = Run::new(rotation, seed, run).await;
    let (mut written, mut kills) = (0, 0);
    for (i, &size) in pieces.iter().enumerate() {
        let n = i + 1;
        r.append(&lines[written..written + size].concat());
        written += size;
        let rotate = n % ROTATE_EVERY == 0;
        if rotate && matches!(rotation, Rotation::DeleteRecreate) {
            // A deleted file's unread lines are gone by definition, so the test asks only
            // that nothing read is lost or doubled: before the deletion the store must count
            // exactly the queries of the lines written so far (as this test reads them).
            r.wait_for_queries(weights[..written].iter().sum(), written);
        }
        let kill = rng.random_ratio(1, 3) || kills + (pieces.len() - i) <= MIN_KILLS;
        if kill {
            let while_down = rotate && rng.random_bool(0.5);
            if rotate && !while_down {
                r.rotate(n);
            }
            std::thread::sleep(Duration::from_millis(rng.random_range(0..=400)));
            r.kill();
            kills += 1;
            if while_down {
                r.rotate(n);
            }
            r.start();
        } else if rotate {
            r.rotate(n);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(kills >= MIN_KILLS, "{}: only {kills} kills", r.context);

    let want = project(&expected, &EDGE_KEYS);
    let deadline = Instant::now() + CATCH_UP;
    while edges(&r.db) != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = r.stop();
    let ours = edges(&r.db);
    if ours != want {
        let missing: Vec<String> = want.iter().filter(|e| !ours.contains(e)).map(Value::to_string).collect();
        let extra: Vec<String> = ours.iter().filter(|e| !want.contains(e)).map(Value::to_string).collect();
        let sum = |edges: &[Value]| edges.iter().map(|e| e["queries"].as_i64().unwrap()).sum::<i64>();
        r.fail(&format!(
            "after {kills} kills the store counts {} queries of {}\nmissing (expected, not stored):\n  {}\n\
             extra (stored, not expected):\n  {}",
            sum(&ours),
            sum(&want),
            missing.join("\n  "),
            extra.join("\n  ")
        ));
    }
    if !status.success() {
        r.fail(&format!("stopped with Ctrl-C, the tailer exited with {status}"));
    }
    let mismatches = hourly_mismatches(&r.db);
    if mismatches != serde_json::json!([]) {
        r.fail(&format!("edges whose hours do not add up to their queries: {mismatches:#}"));
    }
}

/// `count` runs, [`LANES`] at a time: a run mostly sleeps, and on a two-core machine the
/// harness runs only two tests at a time. After a failure no new run starts; the first
/// failure is the test's.
fn runs(rotation: Rotation, count: u64) {
    let seed = seed();
    let failed = AtomicBool::new(false);
    let results: Vec<std::thread::Result<()>> = std::thread::scope(|s| {
        let lanes: Vec<_> = (0..LANES)
            .map(|lane| {
                let failed = &failed;
                s.spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                    for i in (lane..count).step_by(LANES as usize) {
                        if failed.load(Ordering::Relaxed) {
                            return;
                        }
                        let result = std::panic::catch_unwind(AssertUnwindSafe(|| rt.block_on(run(rotation, seed, i))));
                        if let Err(panic) = result {
                            failed.store(true, Ordering::Relaxed);
                            std::panic::resume_unwind(panic);
                        }
                    }
                })
            })
            .collect();
        lanes.into_iter().map(|lane| lane.join()).collect()
    });
    for result in results {
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn killed_around_numbered_renames_the_tailer_loses_and_doubles_nothing() {
    runs(Rotation::RenameNumbered, KILL_RUNS);
}

#[test]
fn killed_around_dated_renames_the_tailer_loses_and_doubles_nothing() {
    runs(Rotation::RenameDateext, KILL_RUNS);
}

#[test]
fn killed_around_copytruncates_the_tailer_loses_and_doubles_nothing() {
    runs(Rotation::Copytruncate, KILL_RUNS);
}

#[test]
fn killed_around_deletions_the_tailer_loses_and_doubles_nothing_it_read() {
    runs(Rotation::DeleteRecreate, KILL_RUNS);
}

/// Runs with logrotate and `directives`, or says why not.
fn logrotate_runs(directives: &'static str) {
    if logrotate_binary().is_none() {
        eprintln!("skipped: no logrotate on PATH or in /usr/sbin (`scripts/install-deps.sh tail` installs it)");
        return;
    }
    runs(Rotation::Logrotate(directives), LOGROTATE_RUNS);
}

#[test]
fn killed_around_logrotate_create_the_tailer_loses_and_doubles_nothing() {
    logrotate_runs("create");
}

#[test]
fn killed_around_logrotate_copytruncate_the_tailer_loses_and_doubles_nothing() {
    logrotate_runs("copytruncate");
}

#[test]
fn killed_around_logrotate_dateext_the_tailer_loses_and_doubles_nothing() {
    logrotate_runs("create\ndateext\ndateformat -%Y%m%d-%s");
}

#[test]
fn killed_around_logrotate_delaycompress_the_tailer_loses_and_doubles_nothing() {
    // pdns.log.1 is read as it is; at the next rotation it becomes pdns.log.2.gz.
    logrotate_runs("create\ncompress\ndelaycompress");
}
