//! `edgewatch ping`, the built binary on real sockets: loopback targets answer, the table
//! and the JSON say so, a target file with comments is read, bad input is refused naming
//! the argument or the file and line (exit 2), a target outside the allow-list stops the
//! command before any packet leaves, and loss is counted for a target that does not answer
//! (a network namespace of the test's own whose nftables drop echo requests to one address).
//!
//! Traffic: 127.0.0.0/8 only, and 198.18.77.0/24 inside the test's own namespaces (root
//! only; those tests skip saying why when not root). Refused targets are loopback
//! addresses outside a narrowed --allow, so even a bug could not send a packet off this host.

mod lab;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// `edgewatch ping ARGS…` with none of the caller's edgewatch settings.
fn ping(args: &[&str]) -> Output {
    lab::edgewatch_command().arg("ping").args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

fn json_rows(out: &Output) -> Vec<Value> {
    let value: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout {} stderr {}", text(&out.stdout), text(&out.stderr)));
    value.as_array().expect("an array").clone()
}

/// ICMP needs a raw socket (root) or the unprivileged ICMP socket (ping_group_range).
fn cannot_ping() -> Option<String> {
    let out = ping(&["--count", "1", "127.0.0.1"]);
    let err = text(&out.stderr);
    (code(&out) == 2 && err.contains("cannot ping")).then(|| format!("no ICMP socket here: {err}"))
}

#[test]
fn loopback_targets_answer() {
    if let Some(why) = cannot_ping() {
        eprintln!("SKIP: {why}");
        return;
    }
    let out = ping(&["--count", "3", "--period", "10", "127.0.0.1", "127.0.0.2", "::1"]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    let table = text(&out.stdout);
    for header in ["target", "sent", "received", "loss", "min ms", "avg ms", "max ms"] {
        assert!(table.contains(header), "{header} missing:\n{table}");
    }
    for target in ["127.0.0.1", "127.0.0.2", "::1"] {
        let line = table.lines().find(|l| l.contains(&format!(" {target} "))).unwrap_or_else(|| panic!("{table}"));
        let cells: Vec<&str> = line.split_whitespace().filter(|c| *c != "│").collect();
        assert_eq!(&cells[..4], [target, "3", "3", "0%"], "{line}");
        let rtts: Vec<f64> = cells[4..7].iter().map(|c| c.parse().unwrap()).collect();
        assert!(rtts[0] <= rtts[1] && rtts[1] <= rtts[2] && rtts[0] >= 0.0, "{line}");
    }
    assert!(text(&out.stderr).contains("3 targets: 3 answered, 0 did not"), "{}", text(&out.stderr));
}

#[test]
fn json_is_an_array_of_targets() {
    if let Some(why) = cannot_ping() {
        eprintln!("SKIP: {why}");
        return;
    }
    let out = ping(&["-c", "2", "-p", "5", "--format", "json", "127.0.0.3", "127.0.0.4"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let rows = json_rows(&out);
    assert_eq!(rows.len(), 2);
    for (row, target) in rows.iter().zip(["127.0.0.3", "127.0.0.4"]) {
        assert_eq!(row["target"], target);
        assert_eq!(row["sent"], 2);
        assert_eq!(row["received"], 2);
        assert_eq!(row["loss_pct"], 0.0);
        for key in ["rtt_min_ms", "rtt_avg_ms", "rtt_max_ms"] {
            assert!(row[key].as_f64().is_some_and(|v| v >= 0.0), "{key}: {row}");
        }
        assert!(row.get("error").is_none(), "{row}");
    }
}

#[test]
fn target_file_with_comments_and_stdin() {
    if let Some(why) = cannot_ping() {
        eprintln!("SKIP: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.txt");
    std::fs::write(&file, "# loopback\n127.0.0.5\n\n127.0.0.6  # second\n   \n#127.0.0.7\n").unwrap();
    let out = ping(&["-c", "1", "--format", "json", "-f", file.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let targets: Vec<Value> = json_rows(&out).iter().map(|r| r["target"].clone()).collect();
    assert_eq!(targets, ["127.0.0.5", "127.0.0.6"]);

    let mut child = lab::edgewatch_command()
        .args(["ping", "-c", "1", "--format", "json", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"127.0.0.8\n::1\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let targets: Vec<Value> = json_rows(&out).iter().map(|r| r["target"].clone()).collect();
    assert_eq!(targets, ["127.0.0.8", "::1"]);
}

#[test]
fn bad_lines_are_named_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.txt");
    std::fs::write(&file, "127.0.0.1\n# fine\nlocalhost.invalid\n127.0.0.2\n127.0.0.300\n").unwrap();
    let out = ping(&["-f", file.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(code(&out), 2, "{err}");
    let name = file.display();
    assert!(err.contains(&format!("{name}:3: \"localhost.invalid\" is not an IPv4 or IPv6 address")), "{err}");
    assert!(err.contains(&format!("{name}:5: \"127.0.0.300\"")), "{err}");
    assert!(err.contains("2 bad target(s): nothing was sent to any target"), "{err}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));

    let out = ping(&["-f", dir.path().join("missing.txt").to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("missing.txt"), "{}", text(&out.stderr));

    std::fs::write(&file, "# only a comment\n\n").unwrap();
    let out = ping(&["-f", file.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("no targets"), "{}", text(&out.stderr));
}

#[test]
fn bad_arguments_are_refused() {
    let cases: [(&[&str], &str); 9] = [
        (&["--count", "0", "127.0.0.1"], "--count"),
        (&["--count", "101", "127.0.0.1"], "--count"),
        (&["--count", "five", "127.0.0.1"], "--count"),
        (&["--period", "soon", "127.0.0.1"], "--period"),
        (&["--period", "61s", "127.0.0.1"], "--period"),
        (&["--timeout", "0", "127.0.0.1"], "--timeout"),
        (&["--pps", "0", "127.0.0.1"], "--pps"),
        (&["--allow", "loopback", "127.0.0.1"], "--allow"),
        (&[], "TARGET"),
    ];
    for (args, says) in cases {
        let out = ping(args);
        let err = text(&out.stderr);
        assert_eq!(code(&out), 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?} should mention {says}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    }
    let out = ping(&["-f", "x", "127.0.0.1"]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    let out = ping(&["127.0.0.1", "not-an-address"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("argument 2: \"not-an-address\""), "{}", text(&out.stderr));
}

#[test]
fn help_teaches() {
    let out = lab::edgewatch_command().args(["ping", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = text(&out.stdout);
    for says in ["Examples:", "Exit status", "-f FILE", "--count", "[default: 5]", "--allow", "127.0.0.0/8"] {
        assert!(help.contains(says), "--help should say {says}:\n{help}");
    }
}

/// A network namespace of this test's own, removed when dropped (a failing test included).
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("ewping-{}-{tag}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        lab::run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns(name);
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    fn ip(&self, args: &[&str]) {
        lab::run(Command::new("ip").arg("-n").arg(&self.0).args(args));
    }

    fn nft(&self, ruleset: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.0, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(ruleset.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success(), "nft -f:\n{ruleset}");
    }

    /// `edgewatch ping ARGS…` inside the namespace.
    fn ping(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.0, lab::bin(), "ping"]).args(args);
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|k| k == "DATABASE_URL" || k.starts_with("EDGEWATCH_")) {
                cmd.env_remove(key);
            }
        }
        cmd.output().unwrap()
    }

    /// The packets the nftables counter `name` has counted.
    fn counted(&self, name: &str) -> u64 {
        let out = lab::run(
            Command::new("ip").args(["netns", "exec", &self.0, "nft", "list", "counter", "inet", "ewping", name]),
        );
        let packets = out.split_whitespace().skip_while(|w| *w != "packets").nth(1).unwrap_or_else(|| panic!("{out}"));
        packets.parse().unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// The test's namespace with 198.18.77.1 and .2 on its loopback, echo requests to .2
/// dropped, and every echo request leaving any interface counted.
fn lossy_netns(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.ip(&["addr", "add", "198.18.77.1/32", "dev", "lo"]);
    ns.ip(&["addr", "add", "198.18.77.2/32", "dev", "lo"]);
    ns.nft(
        "table inet ewping {\n\
         counter echo_out { }\n\
         chain output { type filter hook output priority 0; icmp type echo-request counter name echo_out; \
         icmpv6 type echo-request counter name echo_out; }\n\
         chain input { type filter hook input priority 0; ip daddr 198.18.77.2 icmp type echo-request drop; }\n\
         }\n",
    );
    ns
}

#[test]
fn loss_is_counted_for_a_silent_target() {
    if lab::skip_unless_lab() {
        return;
    }
    let ns = lossy_netns("loss");
    let out = ns.ping(&[
        "--allow",
        "198.18.77.0/24",
        "-c",
        "3",
        "-p",
        "20",
        "-t",
        "300",
        "--format",
        "json",
        "198.18.77.1",
        "198.18.77.2",
    ]);
    assert_eq!(code(&out), 1, "{}{}", text(&out.stdout), text(&out.stderr));
    let rows = json_rows(&out);
    assert_eq!(rows[0]["target"], "198.18.77.1");
    assert_eq!((rows[0]["sent"].as_u64(), rows[0]["received"].as_u64()), (Some(3), Some(3)), "{}", rows[0]);
    assert_eq!(rows[0]["loss_pct"], 0.0);
    assert_eq!(rows[1]["target"], "198.18.77.2");
    assert_eq!((rows[1]["sent"].as_u64(), rows[1]["received"].as_u64()), (Some(3), Some(0)), "{}", rows[1]);
    assert_eq!(rows[1]["loss_pct"], 100.0);
    assert_eq!(rows[1]["rtt_avg_ms"], Value::Null);
    assert!(rows[1]["error"].as_str().is_some_and(|e| e.contains("no echo reply within 300ms")), "{}", rows[1]);
    assert_eq!(ns.counted("echo_out"), 6, "3 requests to each target left");
    assert!(text(&out.stderr).contains("2 targets: 1 answered, 1 did not"), "{}", text(&out.stderr));

    // All silent: exit 1 too, in the table as well.
    let out = ns.ping(&["--allow", "198.18.77.2", "-c", "1", "-t", "100", "198.18.77.2"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("100%"), "{}", text(&out.stdout));
}

#[test]
fn a_refused_target_stops_everything_before_a_packet_leaves() {
    let allowed = ["--allow", "127.0.0.1/32,198.18.77.0/24"];
    let mixed = [&allowed[..], &["-c", "2", "127.0.0.1", "198.18.77.1", "127.0.0.9", "::1"]].concat();
    let check = |out: &Output| {
        let err = text(&out.stderr);
        assert_eq!(code(out), 2, "{err}");
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
        assert!(err.contains("argument 3: probe target 127.0.0.9 refused: not in the allow-list"), "{err}");
        assert!(err.contains("argument 4: probe target ::1 refused"), "{err}");
        assert!(err.contains("2 of 4 targets refused: nothing was sent to any target"), "{err}");
        assert!(!err.contains("127.0.0.1 refused"), "{err}");
    };
    // Anywhere: the refusal and exit 2 (loopback only, whatever happens).
    check(&ping(&mixed));

    // In a namespace that counts every echo request leaving: none left for the mixed list,
    // while the same allowed targets alone are pinged (so the counter does count).
    if lab::skip_unless_lab() {
        return;
    }
    let ns = lossy_netns("refuse");
    check(&ns.ping(&mixed));
    assert_eq!(ns.counted("echo_out"), 0, "nothing may leave when a target is refused");
    let out = ns.ping(&[&allowed[..], &["-c", "2", "127.0.0.1", "198.18.77.1"]].concat());
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(ns.counted("echo_out"), 4);

    // A refused line in a file is named by file and line.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.txt");
    std::fs::write(&file, "127.0.0.1\n# comment\n127.0.0.2\n").unwrap();
    let out = ns.ping(&["--allow", "127.0.0.1", "-f", file.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{}:3: probe target 127.0.0.2 refused", file.display())), "{err}");
    assert_eq!(ns.counted("echo_out"), 4, "still nothing more sent");
}
