//! What to probe: an address and how (ICMP echo, or TCP connect to a port).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// One probe target. Whether it may be probed is the allow-list's decision, made by the
/// engine before anything is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProbeTarget {
    pub ip: IpAddr,
    pub kind: ProbeKind,
}

/// How a target is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum ProbeKind {
    /// ICMP (or ICMPv6) echo request / reply.
    Icmp,
    /// TCP connect to this port; a completed handshake is a reply, its duration the RTT.
    /// Port 0 is never probed (the outcome says so).
    Tcp { port: u16 },
}

impl ProbeTarget {
    /// An ICMP echo target.
    pub fn icmp(ip: IpAddr) -> Self {
        ProbeTarget { ip, kind: ProbeKind::Icmp }
    }

    /// A TCP connect target.
    pub fn tcp(ip: IpAddr, port: u16) -> Self {
        ProbeTarget { ip, kind: ProbeKind::Tcp { port } }
    }

    /// A TCP connect target for a socket address.
    pub fn tcp_addr(addr: SocketAddr) -> Self {
        ProbeTarget::tcp(addr.ip(), addr.port())
    }
}

/// `icmp 127.0.0.1`, `tcp 127.0.0.1:5432`, `tcp [::1]:80`.
impl fmt::Display for ProbeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ProbeKind::Icmp => write!(f, "icmp {}", self.ip),
            ProbeKind::Tcp { port } => write!(f, "tcp {}", SocketAddr::new(self.ip, port)),
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
}
