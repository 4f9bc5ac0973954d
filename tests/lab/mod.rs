//! Harness for the tests that run edgewatch as real, long-lived processes: [`Procs`]
//! starts them with their output in log files, stops them with Ctrl-C, and kills whatever
//! is left when it goes out of scope (a failing test included, whose logs it then
//! prints); [`Lab`] builds test hosts in network namespaces of the test's own.
//!
//! The lab follows the safety rule of DESIGN.md: every address is in 198.18.0.0/15
//! (RFC 2544's benchmarking range) and exists only inside the lab's namespaces. A router
//! namespace `ewlab-<pid>-<n>-r` is joined to each host namespace `ewlab-<pid>-<n>-h<i>`
//! by a veth pair made directly inside the two namespaces (`vh<i>` in the router with
//! 198.18.<i>.1/24, `eth0` in host i with 198.18.<i>.2/24 and a default route via .1); the
//! router forwards (`ip_forward` set inside its namespace only) and has 198.18.0.1 on its
//! loopback for a server. Nothing is added to, or changed in, the root namespace. The
//! namespaces (and so the veths) and every process in them are removed when the [`Lab`]
//! is dropped, and a new lab first removes what a crashed earlier run left behind.
//! Root only: see [`lab_unavailable`].

#![allow(dead_code)]

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The network every lab address is in; agents and probers in the lab get it as
/// `--allow`.
pub const LAB_NET: &str = "198.18.0.0/15";
/// The router's own address (on its loopback), reachable from every host.
pub const ROUTER_IP: &str = "198.18.0.1";
const PREFIX: &str = "ewlab-";

/// The `edgewatch` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_edgewatch")
}

/// `edgewatch --database-url URL ARGS…`, run to its end; panics unless it succeeds.
/// Returns stdout.
pub fn edgewatch_ok(url: &str, args: &[&str]) -> String {
    let mut cmd = edgewatch_command();
    cmd.arg("--database-url").arg(url).args(args);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "edgewatch {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `edgewatch` with none of the caller's edgewatch settings in its environment.
pub fn edgewatch_command() -> Command {
    let mut cmd = Command::new(bin());
    strip_env(&mut cmd);
    cmd
}

fn strip_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k == "DATABASE_URL" || k.starts_with("EDGEWATCH_")) {
            cmd.env_remove(key);
        }
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Why a lab cannot be built here (not root, or `ip`/`nft` missing), if it cannot.
pub fn lab_unavailable() -> Option<String> {
    if !is_root() {
        return Some("needs root to create network namespaces".into());
    }
    let missing: Vec<&str> = [("ip", "iproute2"), ("nft", "nftables")]
        .into_iter()
        .filter(|(tool, _)| Command::new(tool).arg("-V").output().map(|o| !o.status.success()).unwrap_or(true))
        .map(|(_, package)| package)
        .collect();
    if !missing.is_empty() {
        return Some(format!("{} not installed (`make test` installs them)", missing.join(" and ")));
    }
    None
}

/// For a root-only test: prints why and returns `true` (the test then returns at once)
/// when the lab cannot be built here. Where `CI` is set and we are root, a lab that cannot
/// be built fails the test instead of skipping it: CI runs as root so that these run.
pub fn skip_unless_lab() -> bool {
    let Some(why) = lab_unavailable() else { return false };
    assert!(!(is_root() && std::env::var_os("CI").is_some()), "CI runs as root, so this lab test must run, but: {why}");
    eprintln!("SKIP: {why}");
    true
}

/// Asserts that a dropped lab left nothing behind: no namespace named `prefix…`, none of
/// `pids` alive, the root namespace's interfaces as they were (`links_before`).
pub fn assert_removed(prefix: &str, pids: &[u32], links_before: &[String]) {
    let left: Vec<String> = netns_names().into_iter().filter(|n| n.starts_with(prefix)).collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    let alive: Vec<&u32> = pids.iter().filter(|p| pid_alive(**p)).collect();
    assert!(alive.is_empty(), "processes left behind: {alive:?}");
    assert_eq!(root_links(), links_before, "the root namespace's interfaces changed");
}

/// Runs a command to its end; panics with its output unless it succeeds.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip(args: &[&str]) -> String {
    run(Command::new("ip").args(args))
}

/// The names of the network namespaces that exist now.
pub fn netns_names() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().map(|o| o.stdout).unwrap_or_default();
    String::from_utf8_lossy(&out).lines().filter_map(|l| l.split_whitespace().next()).map(String::from).collect()
}

/// The interfaces of the root namespace, by name: to show that a lab left none behind.
pub fn root_links() -> Vec<String> {
    let out = ip(&["-o", "link", "show"]);
    let mut names: Vec<String> = out
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .collect();
    names.sort();
    names
}

/// Is a process with this id still there (and not a zombie)?
pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Sends SIGINT (what Ctrl-C sends) to a process.
fn interrupt(pid: u32) {
    let _ = Command::new("kill").args(["-INT", &pid.to_string()]).status();
}

struct Proc {
    label: String,
    child: Child,
    log: PathBuf,
}

/// Long-running processes of one test, each with its stdout and stderr in a log file.
/// Dropping it kills what still runs; when the test is failing, it prints every log's end.
pub struct Procs {
    dir: tempfile::TempDir,
    procs: Vec<Proc>,
}

impl Default for Procs {
    fn default() -> Self {
        Self::new()
    }
}

impl Procs {
    pub fn new() -> Self {
        Procs { dir: tempfile::Builder::new().prefix("ewlab").tempdir().unwrap(), procs: Vec::new() }
    }

    /// A scratch directory that lives as long as this (logs are in it too).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts `cmd` under `label` (unique); returns its process id.
    pub fn spawn(&mut self, label: &str, mut cmd: Command) -> u32 {
        assert!(self.procs.iter().all(|p| p.label != label), "two processes labelled {label}");
        let log = self.dir.path().join(format!("{label}.log"));
        let out = File::create(&log).unwrap();
        // An agent's spool of this test's own (a spool outlives its agent).
        let child = cmd
            .env("EDGEWATCH_SPOOL", self.dir.path().join(format!("{label}-spool")))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {label} ({cmd:?}): {e}"));
        let pid = child.id();
        self.procs.push(Proc { label: label.to_string(), child, log });
        pid
    }

    fn get(&mut self, label: &str) -> &mut Proc {
        self.procs.iter_mut().find(|p| p.label == label).unwrap_or_else(|| panic!("no process labelled {label}"))
    }

    pub fn pid(&mut self, label: &str) -> u32 {
        self.get(label).child.id()
    }

    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(|p| p.child.id()).collect()
    }

    /// Has the process not exited (this is the one process started under `label`, so
    /// "still running" also means "never restarted")?
    pub fn is_running(&mut self, label: &str) -> bool {
        self.get(label).child.try_wait().unwrap().is_none()
    }

    /// Everything the process wrote so far.
    pub fn log(&mut self, label: &str) -> String {
        fs::read_to_string(&self.get(label).log).unwrap_or_default()
    }

    /// Waits for a line containing `needle` in the process's output and returns it;
    /// panics (with the output) when the process exits or `timeout` passes first.
    pub fn wait_for_line(&mut self, label: &str, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log(label);
            if let Some(line) = log.lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            let exited = self.get(label).child.try_wait().unwrap();
            if let Some(status) = exited {
                panic!("{label} exited ({status}) before printing {needle:?}:\n{log}");
            }
            assert!(Instant::now() < deadline, "{label} did not print {needle:?} within {timeout:?}:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the process with Ctrl-C (SIGINT) and waits for it to exit; kills it after
    /// `timeout` and panics.
    pub fn interrupt(&mut self, label: &str, timeout: Duration) -> ExitStatus {
        let proc = self.get(label);
        interrupt(proc.child.id());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = proc.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = proc.child.kill();
                let _ = proc.child.wait();
                let log = fs::read_to_string(&proc.log).unwrap_or_default();
                panic!("{label} did not stop within {timeout:?} of Ctrl-C:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills (SIGKILL) every process still running and reaps them all.
    pub fn kill_all(&mut self) {
        for proc in &mut self.procs {
            if proc.child.try_wait().ok().flatten().is_none() {
                let _ = proc.child.kill();
            }
            let _ = proc.child.wait();
        }
    }

    /// Prints the last lines of every log (for a failing test).
    pub fn print_logs(&self) {
        for proc in &self.procs {
            let log = fs::read_to_string(&proc.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!(
                "----- {} (pid {}), last {} lines -----\n{}",
                proc.label,
                proc.child.id(),
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        self.kill_all();
        if std::thread::panicking() {
            self.print_logs();
        }
    }
}

/// Test hosts in network namespaces behind a router namespace (see the module docs).
/// Dropping it kills its processes and deletes its namespaces, on failure too.
pub struct Lab {
    /// `ewlab-<pid>-<n>`, the start of every namespace's name.
    pub prefix: String,
    pub router: String,
    /// Host namespaces; host `i` (1-based) is `hosts[i - 1]`.
    pub hosts: Vec<String>,
    /// Every namespace made so far (removed on drop).
    made: Vec<String>,
    pub procs: Procs,
}

impl Lab {
    /// Builds a router and `hosts` host namespaces (at most 254). Removes leftovers of
    /// crashed earlier runs first.
    pub fn new(hosts: usize) -> Lab {
        assert!((1..=254).contains(&hosts));
        sweep_leftovers();
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let prefix = format!("{PREFIX}{}-{}", std::process::id(), SERIAL.fetch_add(1, Ordering::Relaxed));
        let mut lab = Lab {
            router: format!("{prefix}-r"),
            hosts: (1..=hosts).map(|i| format!("{prefix}-h{i}")).collect(),
            prefix,
            made: Vec::new(),
            procs: Procs::new(),
        };
        // Each namespace is remembered as soon as it exists, so that a failure half-way
        // still removes it.
        let router = lab.router.clone();
        lab.add_netns(&router);
        ip(&["-n", &router, "link", "set", "lo", "up"]);
        ip(&["-n", &router, "addr", "add", &format!("{ROUTER_IP}/32"), "dev", "lo"]);
        run(Command::new("ip").args(["netns", "exec", &router, "sysctl", "-qw", "net.ipv4.ip_forward=1"]));
        for (i, host) in lab.hosts.clone().iter().enumerate() {
            let i = i + 1;
            lab.add_netns(host);
            let veth = format!("vh{i}");
            ip(&["-n", &router, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", host]);
            ip(&["-n", &router, "addr", "add", &format!("198.18.{i}.1/24"), "dev", &veth]);
            ip(&["-n", &router, "link", "set", &veth, "up"]);
            ip(&["-n", host, "link", "set", "lo", "up"]);
            ip(&["-n", host, "addr", "add", &format!("{}/24", Lab::host_ip(i)), "dev", "eth0"]);
            ip(&["-n", host, "link", "set", "eth0", "up"]);
            ip(&["-n", host, "route", "add", "default", "via", &format!("198.18.{i}.1")]);
        }
        lab
    }

    fn add_netns(&mut self, name: &str) {
        ip(&["netns", "add", name]);
        self.made.push(name.to_string());
    }

    /// Host `i`'s address (1-based).
    pub fn host_ip(i: usize) -> String {
        format!("198.18.{i}.2")
    }

    /// Host `i`'s network (1-based), `198.18.<i>.0/24`: its end of the veth, and the
    /// router's.
    pub fn host_net(i: usize) -> String {
        format!("198.18.{i}.0/24")
    }

    /// `program ARGS…` inside namespace `ns`.
    pub fn command_in(&self, ns: &str, program: &str, args: &[&str]) -> Command {
        assert!(self.made.iter().any(|n| n == ns), "{ns} is not a namespace of this lab");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program]).args(args);
        strip_env(&mut cmd);
        cmd
    }

    /// Starts `edgewatch ARGS…` inside `ns` under `label`; returns its process id
    /// (`ip netns exec` execs the program, so it is edgewatch's own).
    pub fn spawn_edgewatch(&mut self, ns: &str, label: &str, args: &[&str]) -> u32 {
        let cmd = self.command_in(ns, bin(), args);
        self.procs.spawn(label, cmd)
    }

    /// Applies an nftables script (`nft -f -`) in the router namespace.
    pub fn nft(&self, script: &str) {
        let mut child = self
            .command_in(&self.router, "nft", &["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "nft -f - failed:\n{script}\n{}", String::from_utf8_lossy(&out.stderr));
    }

    /// The router's nftables ruleset, as `nft list ruleset` prints it.
    pub fn nft_ruleset(&self) -> String {
        run(&mut self.command_in(&self.router, "nft", &["list", "ruleset"]))
    }

    /// Kills every process and deletes every namespace of the lab (what drop does).
    pub fn teardown(&mut self) {
        self.procs.kill_all();
        for ns in self.made.drain(..).rev() {
            remove_netns(&ns);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // The processes' logs are printed by `Procs` when the test is failing.
        self.teardown();
    }
}

/// Kills whatever still runs in `ns` and deletes it; its veths go with it.
fn remove_netns(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
    let _ = Command::new("ip").args(["netns", "del", ns]).status();
}

/// Removes the namespaces of labs whose test process is gone (a crashed or killed run).
/// A lab's name carries its test process's id; a namespace whose process still runs the
/// same test binary belongs to a live run and is left alone.
fn sweep_leftovers() {
    let me = fs::read_to_string("/proc/self/comm").unwrap_or_default();
    for ns in netns_names() {
        let Some(pid) = ns.strip_prefix(PREFIX).and_then(|rest| rest.split('-').next()) else { continue };
        let live = pid.parse::<u32>().is_ok_and(|pid| {
            pid_alive(pid) && fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm == me)
        });
        if !live {
            eprintln!("removing {ns}, left behind by an earlier run");
            remove_netns(&ns);
        }
    }
}
