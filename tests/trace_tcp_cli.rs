//! `edgewatch trace --protocol tcp`: a TCP SYN trace over loopback (root: raw sockets) to a
//! listening port and to a closed one, both one hop and reached; `--port` refused with
//! ICMP; the help names the protocol.

use std::net::TcpListener;

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
fn a_tcp_trace_reaches_open_and_closed_ports_over_loopback() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgewatch.toml");
    std::fs::write(&config, "[owners]\n\"127.0.0.0/8\" = \"loopback\"\n").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port().to_string();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();

    for port in [&open, &closed] {
        let out = trace(&["127.0.0.1", "--protocol", "tcp", "--port", port, "--format", "json"], &config);
        assert!(out.status.success(), "port {port}: {}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!((&v["reached"], &v["protocol"]), (&Value::Bool(true), &Value::from(format!("tcp:{port}"))), "{v}");
        let hops = v["hops"].as_array().unwrap();
        assert_eq!(hops.len(), 1, "{v}");
        assert_eq!(hops[0]["addrs"], serde_json::json!([{"ip": "127.0.0.1", "owner": "loopback"}]));
        assert_eq!((hops[0]["sent"].as_u64(), hops[0]["received"].as_u64()), (Some(3), Some(3)), "{v}");
    }

    let out = trace(&["::1", "--protocol", "tcp", "--port", &closed, "--probes", "2"], &config);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.trim_end().ends_with("::1 reached in 1 hop(s)"), "{text}");
}

#[test]
fn port_is_for_udp_and_tcp_and_the_help_says_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgewatch.toml");
    std::fs::write(&config, "").unwrap();
    let out = trace(&["127.0.0.1", "--port", "443"], &config);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--port is for --protocol udp or tcp"), "{err}");

    let out = trace(&["--help"], &config);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && help.contains("--protocol tcp --port N")
            && help.contains("[possible values: icmp, udp, tcp]"),
        "{help}"
    );
}
