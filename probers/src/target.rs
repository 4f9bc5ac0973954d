//! What to probe: an address and how (ICMP echo, or TCP connect to a port).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

pub use graph_store::vocab::ProbeKind;

/// One probe target. Whether it may be probed is the allow-list's decision, made by the
/// engine before anything is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProbeTarget {
    pub ip: IpAddr,
    /// ICMP (or ICMPv6) echo request / reply; or TCP connect to `port`, a completed
    /// handshake being a reply and its duration the RTT.
    pub kind: ProbeKind,
    /// The TCP port (none for ICMP). A TCP target without a port, or with port 0, is never
    /// probed (the outcome says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl ProbeTarget {
    /// An ICMP echo target.
    pub fn icmp(ip: IpAddr) -> Self {
        ProbeTarget { ip, kind: ProbeKind::Icmp, port: None }
    }

    /// A TCP connect target.
    pub fn tcp(ip: IpAddr, port: u16) -> Self {
        ProbeTarget { ip, kind: ProbeKind::Tcp, port: Some(port) }
    }

    /// A TCP connect target for a socket address.
    pub fn tcp_addr(addr: SocketAddr) -> Self {
        ProbeTarget::tcp(addr.ip(), addr.port())
    }

    /// The target for an edge: TCP to its service's port when it has one, else ICMP
    /// ([`ProbeKind::for_port`]).
    pub fn for_edge(ip: IpAddr, port: Option<u16>) -> Self {
        match ProbeKind::for_port(port) {
            ProbeKind::Tcp => ProbeTarget { ip, kind: ProbeKind::Tcp, port },
            ProbeKind::Icmp => ProbeTarget::icmp(ip),
        }
    }
}

/// `icmp 127.0.0.1`, `tcp 127.0.0.1:5432`, `tcp [::1]:80`.
impl fmt::Display for ProbeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, self.port) {
            (ProbeKind::Tcp, Some(port)) => write!(f, "tcp {}", SocketAddr::new(self.ip, port)),
            (kind, _) => write!(f, "{kind} {}", self.ip),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        let cases = [
            (ProbeTarget::icmp("127.0.0.1".parse().unwrap()), "icmp 127.0.0.1"),
            (ProbeTarget::tcp("127.0.0.1".parse().unwrap(), 5432), "tcp 127.0.0.1:5432"),
            (ProbeTarget::tcp_addr("[::1]:80".parse().unwrap()), "tcp [::1]:80"),
        ];
        for (target, want) in cases {
            assert_eq!(target.to_string(), want);
        }
    }

    #[test]
    fn an_edge_is_probed_over_tcp_when_its_service_has_a_port() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(ProbeTarget::for_edge(ip, Some(5432)), ProbeTarget::tcp(ip, 5432));
        assert_eq!(ProbeTarget::for_edge(ip, None), ProbeTarget::icmp(ip));
    }
}
