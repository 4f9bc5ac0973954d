//! The allow-list of target networks: the one gate every probe passes before a packet leaves.
//!
//! [`AllowList::check`] is the only way to get an [`AllowedIp`], and the ICMP and TCP senders
//! take an `AllowedIp`, so a packet to an address the list refuses cannot be written by
//! accident. Checking is pure; the engine logs and counts refusals.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Networks that probes may be sent to. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<IpNet>", into = "Vec<IpNet>")]
pub struct AllowList {
    nets: Vec<IpNet>,
}

/// An address that passed an [`AllowList`]; only [`AllowList::check`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AllowedIp(IpAddr);

/// A target the allow-list refused. Nothing was sent to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("probe target {ip} refused: {reason}; no packet sent")]
pub struct Refused {
    /// The target as given (before IPv4-mapped IPv6 addresses are unwrapped).
    pub ip: IpAddr,
    pub reason: RefusalReason,
}

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusalReason {
    /// The address is in none of the allowed networks (listed, as configured).
    OutsideAllowList { allow_list: String },
    /// Unspecified, multicast or broadcast addresses are never probed, whatever the list says.
    NotUnicast,
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefusalReason::OutsideAllowList { allow_list } => write!(f, "not in the allow-list ({allow_list})"),
            RefusalReason::NotUnicast => f.write_str("not a unicast address (unspecified, multicast or broadcast)"),
        }
    }
}

impl AllowList {
    /// An allow-list of these networks. Host bits are cleared (`127.0.0.1/8` becomes
    /// `127.0.0.0/8`) and duplicates dropped; an empty list is refused, since it would make
    /// every probe fail and is almost certainly a configuration mistake.
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Result<Self> {
        let mut out: Vec<IpNet> = Vec::new();
        for net in nets {
            let net = net.trunc();
            if !out.contains(&net) {
                out.push(net);
            }
        }
        if out.is_empty() {
            return Err(Error::InvalidAllowList("no networks given; list at least one (e.g. 127.0.0.0/8)".into()));
        }
        Ok(AllowList { nets: out })
    }

    /// Loopback only: `127.0.0.0/8` and `::1/128`. What tests and the demo use.
    pub fn loopback() -> Self {
        AllowList { nets: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()] }
    }

    /// Parses entries such as `"127.0.0.0/8"` or a bare address (`"::1"`, taken as a host
    /// network). The error names the entry that is not a network.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self> {
        let nets = entries.iter().map(|e| parse_net(e.as_ref())).collect::<Result<Vec<_>>>()?;
        AllowList::new(nets)
    }

    /// The allowed networks, in configured order.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// Whether `ip` (IPv4-mapped IPv6 addresses are checked as IPv4) lies in an allowed network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// Lets `ip` through if it is a unicast address inside an allowed network. IPv4-mapped
    /// IPv6 addresses (`::ffff:10.1.2.3`) are unwrapped first, so they cannot slip past an
    /// IPv4 list, and the returned address is the unwrapped one.
    pub fn check(&self, ip: IpAddr) -> std::result::Result<AllowedIp, Refused> {
        let canonical = ip.to_canonical();
        let not_unicast = canonical.is_unspecified()
            || canonical.is_multicast()
            || matches!(canonical, IpAddr::V4(v4) if v4.is_broadcast());
        if not_unicast {
            return Err(Refused { ip, reason: RefusalReason::NotUnicast });
        }
        if self.contains(canonical) {
            Ok(AllowedIp(canonical))
        } else {
            Err(Refused { ip, reason: RefusalReason::OutsideAllowList { allow_list: self.to_string() } })
        }
    }
}

fn parse_net(entry: &str) -> Result<IpNet> {
    let entry = entry.trim();
    if let Ok(net) = entry.parse::<IpNet>() {
        return Ok(net);
    }
    entry
        .parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| Error::InvalidAllowList(format!("{entry:?} is not a network (like 127.0.0.0/8) or an address")))
}

impl AllowedIp {
    /// The address itself.
    pub fn ip(self) -> IpAddr {
        self.0
    }
}

impl fmt::Display for AllowedIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.nets.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            net.fmt(f)?;
        }
        Ok(())
    }
}

/// Comma-separated networks, as in a command-line flag: `"127.0.0.0/8, ::1"`.
impl FromStr for AllowList {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let entries: Vec<&str> = s.split(',').map(str::trim).filter(|e| !e.is_empty()).collect();
        AllowList::parse(&entries)
    }
}

impl TryFrom<Vec<IpNet>> for AllowList {
    type Error = Error;

    fn try_from(nets: Vec<IpNet>) -> Result<Self> {
        AllowList::new(nets)
    }
}

impl From<AllowList> for Vec<IpNet> {
    fn from(list: AllowList) -> Self {
        list.nets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_list_checks() {
        let list = AllowList::loopback();
        let cases = [
            ("127.0.0.1", true),
            ("127.20.1.2", true),
            ("127.255.255.254", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("10.1.2.3", false),
            ("192.0.2.1", false),
            ("172.16.0.1", false),
            ("192.168.1.1", false),
            ("8.8.8.8", false),
            ("::2", false),
            ("2001:db8::1", false),
            ("::ffff:10.1.2.3", false),
            ("128.0.0.1", false),
            ("126.255.255.255", false),
        ];
        for (addr, allowed) in cases {
            assert_eq!(list.check(ip(addr)).is_ok(), allowed, "{addr}");
            assert_eq!(list.contains(ip(addr)), allowed, "{addr}");
        }
    }

    #[test]
    fn refusal_names_target_and_list() {
        let list = AllowList::loopback();
        let err = list.check(ip("10.1.2.3")).unwrap_err();
        assert_eq!(err.ip, ip("10.1.2.3"));
        assert_eq!(
            err.to_string(),
            "probe target 10.1.2.3 refused: not in the allow-list (127.0.0.0/8, ::1/128); no packet sent"
        );
    }

    #[test]
    fn mapped_addresses_are_unwrapped() {
        let list = AllowList::loopback();
        assert_eq!(list.check(ip("::ffff:127.0.0.9")).unwrap().ip(), ip("127.0.0.9"));
        // A list that allows all of IPv6 still does not let a mapped IPv4 address through.
        let v6 = AllowList::parse(&["::/0"]).unwrap();
        assert!(v6.check(ip("::ffff:10.1.2.3")).is_err());
        assert!(v6.check(ip("2001:db8::1")).is_ok());
    }

    #[test]
    fn non_unicast_refused_even_if_listed() {
        let all = AllowList::parse(&["0.0.0.0/0", "::/0"]).unwrap();
        for addr in ["0.0.0.0", "::", "224.0.0.1", "255.255.255.255", "ff02::1"] {
            let err = all.check(ip(addr)).unwrap_err();
            assert_eq!(err.reason, RefusalReason::NotUnicast, "{addr}");
        }
    }

    #[test]
    fn construction_validates() {
        assert!(matches!(AllowList::new([]), Err(Error::InvalidAllowList(_))));
        assert!(matches!(AllowList::parse::<&str>(&[]), Err(Error::InvalidAllowList(_))));
        let err = AllowList::parse(&["127.0.0.0/8", "localhost"]).unwrap_err();
        assert!(err.to_string().contains("\"localhost\""), "{err}");
        assert!(AllowList::parse(&["127.0.0.0/33"]).is_err());

        let list = AllowList::parse(&["127.0.0.1/8", "127.0.0.0/8", "::1"]).unwrap();
        assert_eq!(list.to_string(), "127.0.0.0/8, ::1/128");
        assert_eq!(list, AllowList::loopback());
        assert_eq!("127.0.0.0/8, ::1".parse::<AllowList>().unwrap(), AllowList::loopback());
    }

    #[test]
    fn converts_to_and_from_nets() {
        let nets: Vec<IpNet> = AllowList::loopback().into();
        assert_eq!(nets, vec!["127.0.0.0/8".parse::<IpNet>().unwrap(), "::1/128".parse().unwrap()]);
        assert_eq!(AllowList::try_from(nets).unwrap(), AllowList::loopback());
        assert!(AllowList::try_from(Vec::<IpNet>::new()).is_err());
    }
}
