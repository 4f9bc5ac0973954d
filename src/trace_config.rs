//! `[trace]` and `[[trace.targets]]` of the configuration file (documented in `config.rs`'s
//! header and docs/paths.md): the keys as written, and their check into the
//! [`TraceConfig`] the tracers run with. Pure: values in, a value or a message naming the
//! key out.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use graph_store::paths::{ExternalTarget, LossConfig, PairSchedule, RouteConfig, TrackConfig};
use probers::trace::TraceProtocol;
use probers::trace_loop::{TraceConfig, DEFAULT_UDP_PORT};
use serde::Deserialize;

/// `[trace]` as written; every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceFile {
    enabled: Option<bool>,
    interval: Option<String>,
    intra_dc_every: Option<u32>,
    keep_days: Option<u32>,
    probes: Option<u32>,
    max_ttl: Option<u32>,
    protocol: Option<String>,
    port: Option<u32>,
    vantage: Option<String>,
    agent_silence: Option<String>,
    k_runs: Option<u32>,
    loss_min_pct: Option<f32>,
    #[serde(default)]
    targets: Vec<TargetFile>,
}

/// One `[[trace.targets]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFile {
    name: String,
    address: String,
    protocol: Option<String>,
    port: Option<u32>,
}

/// A TCP trace's port when none is given (as `traceroute -T`).
const DEFAULT_TCP_PORT: u16 = 80;

impl TraceFile {
    /// The checked settings (hourly rollups kept `hourly_keep_days`), `None` when
    /// `enabled = false`; or what is wrong, starting with the key (`[trace] interval = …`).
    pub fn resolve(&self, hourly_keep_days: u32) -> Result<Option<TraceConfig>, String> {
        let key = |k: &str| format!("[trace] {k}");
        let interval = duration(&key("interval"), self.interval.as_deref(), "2m")?;
        if !(Duration::from_secs(1)..=Duration::from_secs(24 * 3600)).contains(&interval) {
            return Err(format!("{} = {:?}: must be within 1s..=24h", key("interval"), self.interval));
        }
        let intra_dc_every = within(&key("intra_dc_every"), self.intra_dc_every.unwrap_or(10), 1, 1000)?;
        let keep_days = within(&key("keep_days"), self.keep_days.unwrap_or(14), 1, 3650)?;
        let probes = within(&key("probes"), self.probes.unwrap_or(3), 1, 100)?;
        let max_ttl = within(&key("max_ttl"), self.max_ttl.unwrap_or(30), 1, 255)?;
        let protocol = protocol(&key("protocol"), self.protocol.as_deref(), self.port, &key("port"))?;
        let vantage = match &self.vantage {
            Some(v) if v.trim().is_empty() => {
                return Err(format!("{} is empty: name where workers trace from", key("vantage")))
            }
            Some(v) => v.trim().to_string(),
            None => hostname(),
        };
        let agent_silence = duration(&key("agent_silence"), self.agent_silence.as_deref(), "10m")?;
        let k_runs = self.k_runs.unwrap_or(2);
        let route = RouteConfig { k_runs, ..RouteConfig::default() };
        route.validate().map_err(|e| format!("{} = {k_runs}: {e}", key("k_runs")))?;
        let loss = LossConfig { k_runs, min_pct: self.loss_min_pct.unwrap_or(20.0) };
        loss.validate().map_err(|e| format!("{} = {}: {e}", key("loss_min_pct"), loss.min_pct))?;
        let targets = targets(&self.targets)?;
        if self.enabled == Some(false) {
            return Ok(None);
        }
        Ok(Some(TraceConfig {
            schedule: PairSchedule {
                interval,
                intra_dc_every,
                protocol: match protocol {
                    TraceProtocol::Icmp => "icmp",
                    TraceProtocol::Udp { .. } => "udp",
                    TraceProtocol::Tcp { .. } => "tcp",
                },
            },
            keep_days,
            hourly_keep_days,
            probes,
            max_ttl: max_ttl as u8,
            protocol,
            vantage,
            agent_silence,
            track: TrackConfig { route, loss },
            targets,
            ..TraceConfig::default()
        }))
    }
}

fn duration(key: &str, text: Option<&str>, default: &str) -> Result<Duration, String> {
    let text = text.unwrap_or(default);
    humantime::parse_duration(text).map_err(|e| format!("{key} = {text:?}: {e} (examples: 30s, 2m, 1h)"))
}

fn within(key: &str, value: u32, min: u32, max: u32) -> Result<u32, String> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{key} = {value}: must be within {min}..={max}"))
    }
}

/// `protocol` with its `port`: icmp (no port), udp (a port, default 33434) or tcp (SYN to a
/// port, default 80).
fn protocol(key: &str, text: Option<&str>, port: Option<u32>, port_key: &str) -> Result<TraceProtocol, String> {
    match text.unwrap_or("icmp") {
        "icmp" => match port {
            None => Ok(TraceProtocol::Icmp),
            Some(p) => Err(format!("{port_key} = {p}: an icmp trace has no port (set protocol = \"udp\")")),
        },
        "udp" => {
            let port = within(port_key, port.unwrap_or(u32::from(DEFAULT_UDP_PORT)), 1, 65535)?;
            Ok(TraceProtocol::Udp { port: port as u16 })
        }
        "tcp" => {
            let port = within(port_key, port.unwrap_or(u32::from(DEFAULT_TCP_PORT)), 1, 65535)?;
            Ok(TraceProtocol::Tcp { port: port as u16 })
        }
        other => Err(format!("{key} = {other:?}: not a trace protocol (icmp, udp or tcp)")),
    }
}

fn targets(list: &[TargetFile]) -> Result<Vec<ExternalTarget>, String> {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let key = |k: &str| format!("[[trace.targets]] #{} {k}", i + 1);
        let name = t.name.trim();
        if name.is_empty() {
            return Err(format!("{} is empty", key("name")));
        }
        if !names.insert(name.to_string()) {
            return Err(format!("{} = {name:?}: two targets have this name", key("name")));
        }
        let ip: IpAddr = t.address.trim().parse().map_err(|_| {
            format!("{} = {:?}: not an IP address (a target is traced by address)", key("address"), t.address)
        })?;
        let protocol = protocol(&key("protocol"), t.protocol.as_deref(), t.port, &key("port"))?;
        let (protocol, port) = match protocol {
            TraceProtocol::Icmp => ("icmp", None),
            TraceProtocol::Udp { port } => ("udp", Some(port)),
            TraceProtocol::Tcp { port } => ("tcp", Some(port)),
        };
        out.push(ExternalTarget { name: name.to_string(), ip, protocol: protocol.into(), port });
    }
    Ok(out)
}

/// This machine's name, the default vantage.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "edgewatch".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<TraceConfig>, String> {
        #[derive(Deserialize)]
        struct File {
            trace: TraceFile,
        }
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        file.trace.resolve(400)
    }

    #[test]
    fn defaults_are_the_issue_s() {
        let cfg = parse("[trace]\n").unwrap().unwrap();
        assert_eq!(
            cfg.schedule,
            PairSchedule { interval: Duration::from_secs(120), intra_dc_every: 10, protocol: "icmp" }
        );
        assert_eq!((cfg.keep_days, cfg.hourly_keep_days, cfg.probes, cfg.max_ttl), (14, 400, 3, 30));
        assert_eq!((cfg.protocol, cfg.agent_silence), (TraceProtocol::Icmp, Duration::from_secs(600)));
        assert_eq!((cfg.track.route.k_runs, cfg.track.loss.k_runs, cfg.track.loss.min_pct), (2, 2, 20.0));
        assert_eq!(cfg.vantage, hostname());
        assert!(parse("[trace]\nenabled = false\n").unwrap().is_none());
    }

    #[test]
    fn keys_are_read() {
        let cfg = parse(
            "[trace]\ninterval = \"1s\"\nintra_dc_every = 3\nprotocol = \"udp\"\nport = 33500\nvantage = \"p1\"\n\
             k_runs = 3\nloss_min_pct = 15\n\
             [[trace.targets]]\nname = \"dns\"\naddress = \"127.0.0.53\"\nprotocol = \"udp\"\nport = 53\n\
             [[trace.targets]]\nname = \"lo6\"\naddress = \"::1\"\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(cfg.schedule, PairSchedule { interval: Duration::from_secs(1), intra_dc_every: 3, protocol: "udp" });
        assert_eq!((cfg.protocol, cfg.vantage.as_str()), (TraceProtocol::Udp { port: 33500 }, "p1"));
        assert_eq!((cfg.track.route.k_runs, cfg.track.loss.min_pct), (3, 15.0));
        let got: Vec<(&str, String, &str, Option<u16>)> =
            cfg.targets.iter().map(|t| (t.name.as_str(), t.ip.to_string(), t.protocol.as_str(), t.port)).collect();
        assert_eq!(got, [("dns", "127.0.0.53".into(), "udp", Some(53)), ("lo6", "::1".into(), "icmp", None)]);
        let tcp = parse("[trace]\nprotocol = \"tcp\"\n[[trace.targets]]\nname = \"web\"\naddress = \"::1\"\nprotocol = \"tcp\"\nport = 443\n")
            .unwrap()
            .unwrap();
        assert_eq!(tcp.protocol, TraceProtocol::Tcp { port: 80 });
        assert_eq!((tcp.targets[0].protocol.as_str(), tcp.targets[0].port), ("tcp", Some(443)));
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases = [
            ("[trace]\ninterval = \"soon\"", "[trace] interval = \"soon\""),
            ("[trace]\ninterval = \"100ms\"", "[trace] interval"),
            ("[trace]\nintra_dc_every = 0", "[trace] intra_dc_every = 0"),
            ("[trace]\nprobes = 101", "[trace] probes = 101"),
            ("[trace]\nmax_ttl = 256", "[trace] max_ttl = 256"),
            ("[trace]\nprotocol = \"tcp\"\nport = 0", "[trace] port = 0: must be within 1..=65535"),
            ("[trace]\nprotocol = \"sctp\"", "[trace] protocol = \"sctp\""),
            ("[trace]\nport = 53", "[trace] port = 53: an icmp trace has no port"),
            ("[trace]\nprotocol = \"udp\"\nport = 70000", "[trace] port = 70000"),
            ("[trace]\nvantage = \" \"", "[trace] vantage is empty"),
            ("[trace]\nagent_silence = \"x\"", "[trace] agent_silence"),
            ("[trace]\nk_runs = 0", "[trace] k_runs = 0"),
            ("[trace]\nloss_min_pct = 0", "[trace] loss_min_pct = 0"),
            ("[trace]\nkeep_days = 0", "[trace] keep_days = 0"),
            ("[[trace.targets]]\nname = \"a\"\naddress = \"a.example\"", "[[trace.targets]] #1 address"),
            ("[[trace.targets]]\nname = \"\"\naddress = \"::1\"", "[[trace.targets]] #1 name is empty"),
            (
                "[[trace.targets]]\nname = \"a\"\naddress = \"::1\"\n[[trace.targets]]\nname = \"a\"\naddress = \"::1\"",
                "[[trace.targets]] #2 name = \"a\": two targets",
            ),
            (
                "[[trace.targets]]\nname = \"a\"\naddress = \"::1\"\nprotocol = \"tcp\"\nport = 70000",
                "[[trace.targets]] #1 port = 70000",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
        assert!(parse("[trace]\ninterva = \"2m\"").unwrap_err().contains("unknown field `interva`"));
    }
}
