//! `edgewatch trace`: one trace over loopback (root: raw sockets), printed as a table and
//! as JSON with the owners of `[owners]`; a destination outside the allow-list refused with
//! nothing sent.

use assert_cmd::Command;
use serde_json::Value;

fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIPPED: edgewatch trace needs raw sockets (root or CAP_NET_RAW); CI runs as root");
    false
}

fn trace(args: &[&str], config: &std::path::Path) -> std::process::Output {
    Command::cargo_bin("edgewatch").unwrap().arg("--config").arg(config).arg("trace").args(args).output().unwrap()
}

#[test]
fn a_loopback_trace_is_one_hop_with_its_owner() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgewatch.toml");
    std::fs::write(&config, "[owners]\n\"127.0.0.0/8\" = \"loopback\"\n\"127.0.0.0/16\" = \"this host\"\n").unwrap();

    let out = trace(&["127.0.0.1", "--format", "json"], &config);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reached"], true, "{v}");
    assert_eq!(v["protocol"], "icmp");
    let hops = v["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 1, "{v}");
    assert_eq!(hops[0]["addrs"], serde_json::json!([{"ip": "127.0.0.1", "owner": "this host"}]));
    assert_eq!((hops[0]["sent"].as_u64(), hops[0]["received"].as_u64()), (Some(3), Some(3)), "{v}");

    let out = trace(&["::1", "--protocol", "udp", "--probes", "2"], &config);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("::1") && text.contains("0.0%"), "{text}");
    assert!(text.trim_end().ends_with("::1 reached in 1 hop(s)"), "{text}");
}

#[test]
fn a_destination_outside_the_allow_list_is_refused_with_nothing_sent() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgewatch.toml");
    std::fs::write(&config, "").unwrap();
    let out = trace(&["192.0.2.1"], &config);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("192.0.2.1 refused: not in the allow-list") && err.contains("no packet sent"), "{err}");
    assert!(out.stdout.is_empty());
}
