//! The JSON inventory export:
//! `{"containers": [{"name", "host", "dc", "role", "ips", "services", "serving"}],
//!   "services": [{"name", "port"}]}`.
//!
//! Field-level problems (missing, wrong type, empty, bad address, bad port) are found while
//! deserializing, so they carry the JSON path and the line; the checks across records carry
//! the path only.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;

use graph_store::model::{ContainerRecord, Inventory, ServiceRecord};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

use super::{
    all_services, check_containers, clean_list, decode, dedup_ips, from_json, optional_text, Ip, Name, Place, Text,
};
use crate::ExportError;

/// Parses a JSON inventory export; containers come out in file order.
pub fn parse_inventory_json(file: &str, bytes: &[u8]) -> Result<Inventory, ExportError> {
    parse(file, decode(file, bytes)?)
}

pub(super) fn parse(file: &str, text: &str) -> Result<Inventory, ExportError> {
    let raw: RawInventory = from_json(file, text)?;
    let located: Vec<(Place, ContainerRecord)> = raw
        .containers
        .into_iter()
        .enumerate()
        .map(|(i, c)| (Place::Path(format!("$.containers[{i}]")), c.into_record()))
        .collect();
    check_containers(file, &located)?;
    let containers: Vec<ContainerRecord> = located.into_iter().map(|(_, c)| c).collect();
    let listed = listed_services(file, raw.services.unwrap_or_default())?;
    let services = all_services(listed, &containers);
    Ok(Inventory { containers, services })
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "an inventory object with a `containers` list")]
struct RawInventory {
    containers: Vec<RawContainer>,
    services: Option<Vec<RawService>>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "a container object")]
struct RawContainer {
    name: Name,
    host: Name,
    dc: Name,
    role: Option<Text>,
    ips: Ips,
    services: Option<Vec<Text>>,
    serving: Option<bool>,
}

impl RawContainer {
    fn into_record(self) -> ContainerRecord {
        ContainerRecord {
            name: self.name.0,
            host: self.host.0,
            dc: self.dc.0,
            role: optional_text(self.role.as_ref().map(|role| role.0.as_str())),
            ips: self.ips.0,
            services: clean_list(self.services.iter().flatten().map(|service| service.0.as_str())),
            serving: self.serving.unwrap_or(true),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "a service object")]
struct RawService {
    name: Name,
    port: Option<Port>,
}

/// A container's addresses: at least one, each once.
#[derive(Debug)]
struct Ips(Vec<std::net::IpAddr>);

impl<'de> Deserialize<'de> for Ips {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let ips = Vec::<Ip>::deserialize(deserializer)?;
        if ips.is_empty() {
            return Err(de::Error::custom("a container needs at least one IP address"));
        }
        Ok(Ips(dedup_ips(ips.into_iter().map(|ip| ip.0))))
    }
}

/// A TCP port, 1..=65535.
#[derive(Debug, Clone, Copy)]
struct Port(u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PortVisitor;

        impl Visitor<'_> for PortVisitor {
            type Value = Port;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a TCP port number")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                match u16::try_from(v) {
                    Ok(port) if port > 0 => Ok(Port(port)),
                    _ => Err(E::custom(format!("port {v} is out of range 1..=65535"))),
                }
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("port {v} is out of range 1..=65535"))),
                }
            }
        }

        deserializer.deserialize_u64(PortVisitor)
    }
}

/// The top-level `services`, each once; the same service twice is refused when the two
/// ports differ, and merged when they agree or only one gives a port.
fn listed_services(file: &str, raw: Vec<RawService>) -> Result<Vec<ServiceRecord>, ExportError> {
    let mut out: Vec<ServiceRecord> = Vec::with_capacity(raw.len());
    // name -> (index in `out`, index in `$.services`)
    let mut seen: HashMap<String, (usize, usize)> = HashMap::with_capacity(raw.len());
    for (i, service) in raw.into_iter().enumerate() {
        let port = service.port.map(|p| p.0);
        match seen.entry(service.name.0) {
            Entry::Vacant(slot) => {
                out.push(ServiceRecord { name: slot.key().clone(), port });
                slot.insert((out.len() - 1, i));
            }
            Entry::Occupied(slot) => {
                let (at, first_i) = *slot.get();
                let first = &mut out[at];
                match (first.port, port) {
                    (Some(a), Some(b)) if a != b => {
                        return Err(ExportError::new(
                            file,
                            format!(
                                "service {:?} is listed twice with different ports: \
                                 {a} at $.services[{first_i}], {b} here",
                                first.name
                            ),
                        )
                        .path(format!("$.services[{i}]"))
                        .field("port"));
                    }
                    (None, Some(b)) => first.port = Some(b),
                    _ => {}
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    const EXAMPLE: &str = include_str!("../../../examples/sample-fleet/inventory.json");

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_the_example_in_file_order() {
        let inv = parse_inventory_json("inventory.json", EXAMPLE.as_bytes()).unwrap();
        assert_eq!(inv.containers.len(), 29);
        let first = &inv.containers[0];
        assert_eq!(
            *first,
            ContainerRecord {
                name: "fe1.host101".into(),
                host: "host101".into(),
                dc: "Tx".into(),
                role: Some("fe".into()),
                ips: vec![ip("127.20.1.1")],
                services: vec![],
                serving: true,
            }
        );
        assert_eq!(inv.containers[28].name, "db1a.host204");
        assert!(!inv.containers.iter().find(|c| c.name == "cache1.host102").unwrap().serving);
        let services: Vec<(&str, Option<u16>)> = inv.services.iter().map(|s| (s.name.as_str(), s.port)).collect();
        assert_eq!(
            services,
            [
                ("api", Some(8080)),
                ("db1", Some(5432)),
                ("db2", Some(5432)),
                ("cache", Some(6379)),
                ("auth", Some(9000))
            ]
        );
    }

    #[test]
    fn optional_fields_defaults_and_cleaning() {
        let text = r#"{
          "generated": "2024-01-01",
          "containers": [
            {"name": " a ", "host": "h1", "dc": "Tx", "ips": ["10.0.0.1", "fd00::1", "10.0.0.1"], "extra": 1},
            {"name": "b", "host": "h1", "dc": "Tx", "role": null, "ips": ["10.0.0.2"],
             "services": null, "serving": null},
            {"name": "c", "host": "h2", "dc": "VA", "role": " ", "ips": ["10.0.0.3"],
             "services": ["db", " api ", "", "db"], "serving": false}
          ],
          "services": [{"name": "api", "port": null}, {"name": "api", "port": 8080},
                       {"name": "web"}, {"name": "api", "port": 8080}]
        }"#;
        let inv = parse_inventory_json("i.json", text.as_bytes()).unwrap();
        let a = &inv.containers[0];
        assert_eq!((a.name.as_str(), a.role.as_deref(), a.serving), ("a", None, true));
        assert_eq!(a.ips, [ip("10.0.0.1"), ip("fd00::1")]);
        assert!(a.services.is_empty());
        let b = &inv.containers[1];
        assert_eq!((b.role.as_deref(), b.services.len(), b.serving), (None, 0, true));
        let c = &inv.containers[2];
        assert_eq!((c.role.as_deref(), c.serving), (None, false));
        assert_eq!(c.services, ["db", "api"]);
        let services: Vec<(&str, Option<u16>)> = inv.services.iter().map(|s| (s.name.as_str(), s.port)).collect();
        // listed ones first (merged), then those only containers name.
        assert_eq!(services, [("api", Some(8080)), ("web", None), ("db", None)]);
    }

    #[test]
    fn no_top_level_services_means_the_containers_ones() {
        let text = r#"{"containers": [{"name": "a", "host": "h", "dc": "d", "ips": ["10.0.0.1"], "services": ["x"]}]}"#;
        let inv = parse_inventory_json("i.json", text.as_bytes()).unwrap();
        assert_eq!(inv.services, [ServiceRecord { name: "x".into(), port: None }]);
        let empty = parse_inventory_json("i.json", br#"{"containers": []}"#).unwrap();
        assert_eq!(empty, Inventory::default());
    }

    /// (JSON, line, path, field, part of the message)
    type Case<'a> = (&'a str, Option<usize>, Option<&'a str>, Option<&'a str>, &'a str);

    #[test]
    fn refuses_bad_inventories_saying_where() {
        let cases: &[Case] = &[
            // invalid and truncated JSON
            ("{\"containers\": [\n  {\"name\": \"a\",, }\n]}", Some(2), Some("$.containers[0]"), None, "invalid JSON: key must be a string (column 16)"),
            ("{\"containers\": [\n  {\"name\": \"a\", \"host\": \"h\"", Some(2), Some("$.containers[0]"), None, "truncated JSON: EOF while parsing an object"),
            ("{\"containers\": []}\n{}", Some(2), None, None, "trailing characters"),
            // missing fields
            (r#"{"services": []}"#, Some(1), Some("$"), Some("containers"), "missing field `containers`"),
            (
                "{\"containers\": [\n  {\"name\": \"z\", \"host\": \"h0\", \"dc\": \"Tx\", \"ips\": [\"10.0.0.9\"]},\n  {\"name\": \"a\", \"dc\": \"Tx\",\n   \"ips\": [\"10.0.0.1\"]}\n]}",
                Some(4), Some("$.containers[1]"), Some("host"), "missing field `host`",
            ),
            (r#"{"containers": [{"host": "h", "dc": "d", "ips": ["10.0.0.1"]}]}"#, Some(1), Some("$.containers[0]"), Some("name"), "missing field `name`"),
            (r#"{"containers": [{"name": "a", "host": "h", "dc": "d"}]}"#, Some(1), Some("$.containers[0]"), Some("ips"), "missing field `ips`"),
            (r#"{"containers": [], "services": [{"port": 80}]}"#, Some(1), Some("$.services[0]"), Some("name"), "missing field `name`"),
            // wrong types
            (r#"{"containers": {}}"#, Some(1), Some("$.containers"), Some("containers"), "invalid type: map"),
            (r#"{"containers": ["a"]}"#, Some(1), Some("$.containers[0]"), Some("containers"), "expected a container object"),
            (r#"{"containers": [{"name": "a", "host": "h", "dc": "d", "ips": "10.0.0.1"}]}"#, Some(1), Some("$.containers[0].ips"), Some("ips"), "invalid type: string"),
            (r#"{"containers": [{"name": 7, "host": "h", "dc": "d", "ips": ["10.0.0.1"]}]}"#, Some(1), Some("$.containers[0].name"), Some("name"), "invalid type: integer `7`"),
            (r#"{"containers": [{"name": "a", "host": "h", "dc": "d", "ips": ["10.0.0.1"], "serving": "yes"}]}"#, Some(1), Some("$.containers[0].serving"), Some("serving"), "expected a boolean"),
            (r#"{"containers": [{"name": "a", "host": "h", "dc": "d", "ips": ["10.0.0.1"], "services": "api"}]}"#, Some(1), Some("$.containers[0].services"), Some("services"), "invalid type"),
            (r#"{"containers": [{"name": "a", "host": "h", "dc": "d", "ips": [10]}]}"#, Some(1), Some("$.containers[0].ips[0]"), Some("ips"), "invalid type: integer"),
            (r#"{"containers": [], "services": [{"name": "api", "port": "80"}]}"#, Some(1), Some("$.services[0].port"), Some("port"), "expected a TCP port number"),
            // empty values
            (r#"{"containers": [{"name": " ", "host": "h", "dc": "d", "ips": ["10.0.0.1"]}]}"#, Some(1), Some("$.containers[0].name"), Some("name"), "must not be empty"),
            (r#"{"containers": [{"name": "a", "host": "", "dc": "d", "ips": ["10.0.0.1"]}]}"#, Some(1), Some("$.containers[0].host"), Some("host"), "must not be empty"),
            (r#"{"containers": [{"name": "a", "host": "h", "dc": "", "ips": ["10.0.0.1"]}]}"#, Some(1), Some("$.containers[0].dc"), Some("dc"), "must not be empty"),
            (
                "{\"containers\": [\n{\"name\": \"a\", \"host\": \"h\", \"dc\": \"d\",\n \"ips\": []}]}",
                Some(3), Some("$.containers[0].ips"), Some("ips"), "at least one IP address",
            ),
            // invalid addresses
            (
                "{\"containers\": [\n{\"name\": \"a\", \"host\": \"h\", \"dc\": \"d\",\n \"ips\": [\"10.0.0.1\",\n \"10.0.0.300\"]}]}",
                Some(4), Some("$.containers[0].ips[1]"), Some("ips"), "invalid IP address \"10.0.0.300\"",
            ),
            (r#"{"containers": [{"name": "a", "host": "h", "dc": "d", "ips": ["fd00::1::2"]}]}"#, Some(1), Some("$.containers[0].ips[0]"), Some("ips"), "\"fd00::1::2\""),
            // ports
            (r#"{"containers": [], "services": [{"name": "api", "port": 0}]}"#, Some(1), Some("$.services[0].port"), Some("port"), "port 0 is out of range 1..=65535"),
            (r#"{"containers": [], "services": [{"name": "api", "port": 65536}]}"#, Some(1), Some("$.services[0].port"), Some("port"), "port 65536 is out of range"),
            (r#"{"containers": [], "services": [{"name": "api", "port": -1}]}"#, Some(1), Some("$.services[0].port"), Some("port"), "port -1 is out of range"),
            (
                r#"{"containers": [], "services": [{"name": "api", "port": 80}, {"name": "db"}, {"name": "api", "port": 81}]}"#,
                None, Some("$.services[2]"), Some("port"), "service \"api\" is listed twice with different ports: 80 at $.services[0], 81 here",
            ),
        ];
        for (text, line, path, field, message) in cases {
            let err = parse_inventory_json("inv.json", text.as_bytes()).unwrap_err();
            assert_eq!(err.file, "inv.json");
            assert_eq!(err.line, *line, "{text}\n{err}");
            assert_eq!(err.path.as_deref(), *path, "{text}\n{err}");
            assert_eq!(err.field.as_deref(), *field, "{text}\n{err}");
            assert!(err.message.contains(message), "{text}\n{err}");
        }
    }

    #[test]
    fn refuses_inconsistent_containers_naming_both() {
        let c = |name: &str, host: &str, dc: &str, ips: &str| {
            format!(r#"{{"name": "{name}", "host": "{host}", "dc": "{dc}", "ips": [{ips}]}}"#)
        };
        let inv = |cs: &[String]| format!(r#"{{"containers": [{}]}}"#, cs.join(", "));
        // (inventory, path, field, message)
        let cases = [
            (
                inv(&[
                    c("a", "h1", "Tx", r#""10.0.0.1""#),
                    c("b", "h1", "Tx", r#""10.0.0.2""#),
                    c("a", "h2", "Tx", r#""10.0.0.3""#),
                ]),
                "$.containers[2]",
                "name",
                "container \"a\" is listed twice (first at $.containers[0])",
            ),
            (
                inv(&[c("a", "h1", "Tx", r#""10.0.0.1""#), c("b", "h1", "Tx", r#""10.0.0.2", "10.0.0.1""#)]),
                "$.containers[1].ips[1]",
                "ips",
                "IP address 10.0.0.1 is on two containers: \"b\" here and \"a\" at $.containers[0]",
            ),
            (
                inv(&[
                    c("a", "h1", "Tx", r#""10.0.0.1""#),
                    c("b", "h2", "VA", r#""10.0.0.2""#),
                    c("c", "h1", "VA", r#""10.0.0.3""#),
                ]),
                "$.containers[2]",
                "dc",
                "host \"h1\" is in dc \"VA\" here but in dc \"Tx\" at $.containers[0] (container \"a\")",
            ),
        ];
        for (text, path, field, message) in cases {
            let err = parse_inventory_json("inv.json", text.as_bytes()).unwrap_err();
            assert_eq!(err.line, None, "{err}");
            assert_eq!(err.path.as_deref(), Some(path), "{err}");
            assert_eq!(err.field.as_deref(), Some(field), "{err}");
            assert_eq!(err.message, message, "{err}");
        }
    }
}
