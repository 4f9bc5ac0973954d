//! The systemd units of deploy/systemd: `systemd-analyze verify` accepts them without a
//! warning (their ExecStart pointed at the binary under test, which must exist for it), and
//! they are hardened as the README says: a dedicated user, a strict read-only system,
//! a state directory, no new privileges, CAP_NET_RAW only where ICMP is sent.

use std::path::Path;
use std::process::Command;

const UNITS: [&str; 6] = [
    "edgewatch-serve.service",
    "edgewatch-probe.service",
    "edgewatch-agent@.service",
    "edgewatch-dns-tail.service",
    "edgewatch-cmdb-watch.service",
    "edgewatch-run.service",
];

fn unit(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/systemd").join(name)).unwrap()
}

fn has_analyze() -> bool {
    Command::new("systemd-analyze").arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn systemd_analyze_verify_accepts_every_unit() {
    if !has_analyze() {
        assert!(std::env::var_os("CI").is_none(), "CI must have systemd-analyze (scripts/install-deps.sh deploy)");
        println!("SKIP: systemd-analyze is not installed (scripts/install-deps.sh deploy)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for name in UNITS {
        let text = unit(name).replace("/usr/local/bin/edgewatch", env!("CARGO_BIN_EXE_edgewatch"));
        // A template is verified as one of its instances.
        let name = name.replace("@.service", "@be5.host58.service");
        std::fs::write(dir.path().join(&name), text).unwrap();
        files.push(dir.path().join(name));
    }
    let out = Command::new("systemd-analyze").args(["verify", "--man=no"]).args(&files).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify failed:\n{said}");
    assert!(said.trim().is_empty(), "systemd-analyze verify warns:\n{said}");

    // And it does catch a mistake.
    std::fs::write(dir.path().join("edgewatch-run.service"), unit("edgewatch-run.service") + "Bogus=1\n").unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.path().join("edgewatch-run.service"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("Bogus"), "a bad key is reported");
}

#[test]
fn units_are_hardened_and_only_icmp_senders_keep_cap_net_raw() {
    for name in UNITS {
        let text = unit(name);
        for line in ["User=edgewatch", "ProtectSystem=strict", "StateDirectory=edgewatch", "NoNewPrivileges=yes"] {
            assert!(text.lines().any(|l| l == line), "{name} lacks {line}");
        }
        assert!(text.lines().any(|l| l.starts_with("ExecStart=/usr/local/bin/edgewatch ")), "{name}");
        let raw = text.lines().any(|l| l == "AmbientCapabilities=CAP_NET_RAW");
        let sends_icmp = name.contains("probe") || name.contains("agent");
        assert_eq!(raw, sends_icmp, "{name}: CAP_NET_RAW only where ICMP is sent");
        let bounding = text.lines().find(|l| l.starts_with("CapabilityBoundingSet=")).unwrap_or("");
        assert_eq!(bounding, if sends_icmp { "CapabilityBoundingSet=CAP_NET_RAW" } else { "CapabilityBoundingSet=" });
    }
}
