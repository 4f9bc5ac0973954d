//! Whose network a hop address is in: its `[owners]` label (longest prefix) and, when an
//! ASN table was imported (`edgewatch asn import`), its AS number and name. Every answer
//! that shows a hop shows an [`AddrView`] made here. Pure: the ASN rows are looked up by
//! the caller.

use std::collections::HashMap;
use std::net::IpAddr;

use graph_store::paths::{AsnInfo, Owners};
use serde::Serialize;

/// An address with whose it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AddrView {
    #[schema(value_type = String)]
    pub ip: IpAddr,
    /// The `[owners]` label of its longest matching prefix, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The AS announcing it, from the imported table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_name: Option<String>,
}

impl AddrView {
    /// `owner AS64500` as a table shows it (`-` for nothing known).
    pub fn whose(&self) -> String {
        let parts: Vec<String> = self.owner.iter().cloned().chain(self.asn.map(|a| format!("AS{a}"))).collect();
        if parts.is_empty() {
            "-".to_string()
        } else {
            parts.join(" ")
        }
    }
}

/// The owners and the ASN rows of the addresses an answer shows.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    owners: Owners,
    asn: HashMap<IpAddr, AsnInfo>,
}

impl Labels {
    pub fn new(owners: Owners, asn: HashMap<IpAddr, AsnInfo>) -> Labels {
        Labels { owners, asn }
    }

    pub fn addr(&self, ip: IpAddr) -> AddrView {
        let asn = self.asn.get(&ip);
        AddrView {
            ip,
            owner: self.owners.owner(ip).map(str::to_owned),
            asn: asn.map(|a| a.asn),
            as_name: asn.map(|a| a.name.clone()),
        }
    }

    pub fn addrs(&self, ips: &[IpAddr]) -> Vec<AddrView> {
        ips.iter().map(|&ip| self.addr(ip)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_owner_and_as() {
        let owners = Owners::new([("52.93.0.0/16", "AWS")]).unwrap();
        let ip: IpAddr = "52.93.1.1".parse().unwrap();
        let asn = HashMap::from([(ip, AsnInfo { asn: 16509, country: "US".into(), name: "AMAZON-02".into() })]);
        let labels = Labels::new(owners, asn);
        let a = labels.addr(ip);
        assert_eq!((a.owner.as_deref(), a.asn, a.as_name.as_deref()), (Some("AWS"), Some(16509), Some("AMAZON-02")));
        assert_eq!(a.whose(), "AWS AS16509");
        let other = labels.addr("192.0.2.1".parse().unwrap());
        assert_eq!(other.whose(), "-");
        assert_eq!(serde_json::to_value(&other).unwrap(), serde_json::json!({"ip": "192.0.2.1"}));
    }
}
