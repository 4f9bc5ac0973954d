//! CMDB exports: an inventory snapshot (JSON or CSV) or a published-links file (text or
//! JSON), parsed purely (bytes in, validated values out) and refused whole when anything is
//! wrong, with the file, the line or JSON path, and the field.
//!
//! The kind of an export is read from its content, never from its file name; see
//! [`parse_export`]. Importing the parsed values into the store is the `import` module's job.

mod import;
mod inventory_csv;
mod inventory_json;
mod links;
mod watch;

pub use import::*;
pub use watch::*;

pub use inventory_csv::parse_inventory_csv;
pub use inventory_json::parse_inventory_json;
pub use links::{parse_links_json, parse_links_text};

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use graph_store::model::{ContainerRecord, Inventory, LinkSet, ServiceRecord};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer};

use crate::ExportError;

/// A parsed CMDB export of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Export {
    Inventory(Inventory),
    Links(LinkSet),
}

/// Parses an export of any kind, telling the kind from the content:
///
/// - first non-blank character `{`: JSON; an object with a `containers` key is an
///   inventory, one with a `links` key is a links file;
/// - else, first non-blank line a CSV header starting with `name,` (any case): inventory CSV;
/// - else: links text.
///
/// `file` is how the file is named in error messages (the path as the user gave it).
pub fn parse_export(file: &str, bytes: &[u8]) -> Result<Export, ExportError> {
    let text = decode(file, bytes)?;
    let start = text.trim_start();
    if start.is_empty() {
        return Err(ExportError::new(file, "empty export: the file has no content"));
    }
    if start.starts_with('{') {
        return match json_kind(file, text)? {
            JsonKind::Inventory => inventory_json::parse(file, text).map(Export::Inventory),
            JsonKind::Links => links::parse_json(file, text).map(Export::Links),
        };
    }
    let first_line = text.lines().map(str::trim).find(|line| !line.is_empty()).unwrap_or("");
    if first_line.to_ascii_lowercase().starts_with("name,") {
        inventory_csv::parse(file, text).map(Export::Inventory)
    } else {
        links::parse_text(file, text).map(Export::Links)
    }
}

enum JsonKind {
    Inventory,
    Links,
}

/// Which JSON export this is, from its top-level keys (values are skipped, not parsed).
fn json_kind(file: &str, text: &str) -> Result<JsonKind, ExportError> {
    let keys: BTreeMap<String, IgnoredAny> = from_json(file, text)?;
    match (keys.contains_key("containers"), keys.contains_key("links")) {
        (true, false) => Ok(JsonKind::Inventory),
        (false, true) => Ok(JsonKind::Links),
        (true, true) => Err(ExportError::new(
            file,
            "the object has both a `containers` and a `links` key; \
             an export is either an inventory or a links file",
        )
        .path("$")),
        (false, false) => {
            let found = if keys.is_empty() {
                "the object is empty".to_owned()
            } else {
                let names: Vec<String> = keys.keys().map(|key| format!("`{key}`")).collect();
                format!("found {}", names.join(", "))
            };
            Err(ExportError::new(
                file,
                format!(
                    "expected a top-level `containers` key (inventory) \
                     or `links` key (published links); {found}"
                ),
            )
            .path("$"))
        }
    }
}

/// The text of an export: valid UTF-8, without a byte-order mark.
fn decode<'a>(file: &str, bytes: &'a [u8]) -> Result<&'a str, ExportError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.strip_prefix('\u{feff}').unwrap_or(text)),
        Err(err) => {
            let valid = &bytes[..err.valid_up_to()];
            let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
            let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            Err(ExportError::new(
                file,
                format!(
                    "not valid UTF-8 (byte {} of the line, byte offset {} of the file)",
                    err.valid_up_to() - line_start + 1,
                    err.valid_up_to()
                ),
            )
            .line(line))
        }
    }
}

/// Where a record was read: a line (text, CSV) or a JSON path (`$.containers[3]`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    Line(usize),
    Path(String),
}

impl Place {
    /// Attaches this place to `err`; `sub` extends a JSON path (`.ips[0]`), a line ignores it.
    fn locate(&self, err: ExportError, sub: &str) -> ExportError {
        match self {
            Place::Line(line) => err.line(*line),
            Place::Path(path) => err.path(format!("{path}{sub}")),
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Line(line) => write!(f, "line {line}"),
            Place::Path(path) => f.write_str(path),
        }
    }
}

/// The checks across containers that no single record can make: unique names, an address
/// on one container only, each host in one DC.
fn check_containers(file: &str, containers: &[(Place, ContainerRecord)]) -> Result<(), ExportError> {
    let mut names: HashMap<&str, &Place> = HashMap::with_capacity(containers.len());
    let mut owners: HashMap<IpAddr, (&str, &Place)> = HashMap::with_capacity(containers.len());
    let mut hosts: HashMap<&str, (&str, &str, &Place)> = HashMap::new();
    for (place, c) in containers {
        match names.entry(&c.name) {
            Entry::Occupied(first) => {
                let err = ExportError::new(
                    file,
                    format!("container {:?} is listed twice (first at {})", c.name, first.get()),
                );
                return Err(place.locate(err, "").field("name"));
            }
            Entry::Vacant(slot) => {
                slot.insert(place);
            }
        }
        for (i, ip) in c.ips.iter().enumerate() {
            match owners.entry(*ip) {
                Entry::Occupied(first) => {
                    let (owner, owner_place) = first.get();
                    let err = ExportError::new(
                        file,
                        format!(
                            "IP address {ip} is on two containers: {:?} here and {owner:?} at {owner_place}",
                            c.name
                        ),
                    );
                    return Err(place.locate(err, &format!(".ips[{i}]")).field("ips"));
                }
                Entry::Vacant(slot) => {
                    slot.insert((&c.name, place));
                }
            }
        }
        match hosts.entry(&c.host) {
            Entry::Occupied(first) => {
                let (dc, first_name, first_place) = first.get();
                if *dc != c.dc {
                    let err = ExportError::new(
                        file,
                        format!(
                            "host {:?} is in dc {:?} here but in dc {dc:?} at {first_place} \
                             (container {first_name:?})",
                            c.host, c.dc
                        ),
                    );
                    return Err(place.locate(err, "").field("dc"));
                }
            }
            Entry::Vacant(slot) => {
                slot.insert((&c.dc, &c.name, place));
            }
        }
    }
    Ok(())
}

/// The inventory's services: those `listed` with their ports, in order, then every other
/// service a container provides, in order of first mention, without a port.
fn all_services(mut listed: Vec<ServiceRecord>, containers: &[ContainerRecord]) -> Vec<ServiceRecord> {
    let mut known: HashSet<String> = listed.iter().map(|s| s.name.clone()).collect();
    for name in containers.iter().flat_map(|c| &c.services) {
        if known.insert(name.clone()) {
            listed.push(ServiceRecord { name: name.clone(), port: None });
        }
    }
    listed
}

/// Trimmed, non-empty, each once, in order.
fn clean_list<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen = HashSet::new();
    items.into_iter().map(str::trim).filter(|item| !item.is_empty() && seen.insert(*item)).map(str::to_owned).collect()
}

/// Each address once, in order.
fn dedup_ips(ips: impl IntoIterator<Item = IpAddr>) -> Vec<IpAddr> {
    let mut seen = HashSet::new();
    ips.into_iter().filter(|ip| seen.insert(*ip)).collect()
}

fn parse_ip(text: &str) -> Result<IpAddr, String> {
    text.trim().parse().map_err(|_| format!("invalid IP address {text:?}"))
}

/// An optional text: trimmed, and absent when empty.
fn optional_text(text: Option<&str>) -> Option<String> {
    text.map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned)
}

/// `text` trimmed, if it can be a name (or role, or service): any length and any
/// character but the control characters (Unicode `Cc`: NUL, line breaks, escape, DEL, …),
/// tab aside. PostgreSQL cannot store NUL, and the others would garble tables, terminals
/// and links files. Whether it may be empty is the caller's to say.
fn name_text(text: &str) -> Result<&str, String> {
    let trimmed = text.trim();
    match trimmed.chars().position(|c| c.is_control() && c != '\t') {
        None => Ok(trimmed),
        Some(i) => {
            let c = trimmed.chars().nth(i).unwrap_or_default();
            let leading = text.len() - text.trim_start().len();
            Err(format!(
                "must not contain control characters other than tab; found U+{:04X} at character {}",
                u32::from(c),
                text[..leading].chars().count() + i + 1
            ))
        }
    }
}

/// A required JSON string: a [`name_text`], not empty.
#[derive(Debug)]
struct Name(String);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match name_text(&text).map_err(serde::de::Error::custom)? {
            "" => Err(serde::de::Error::custom("must not be empty")),
            trimmed => Ok(Name(trimmed.to_owned())),
        }
    }
}

/// An optional JSON string (a role, a list item): a [`name_text`], maybe empty.
#[derive(Debug)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(Text(name_text(&text).map_err(serde::de::Error::custom)?.to_owned()))
    }
}

/// A JSON string holding an IPv4 or IPv6 address.
#[derive(Debug)]
struct Ip(IpAddr);

impl<'de> Deserialize<'de> for Ip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_ip(&text).map(Ip).map_err(serde::de::Error::custom)
    }
}

/// Deserializes a whole JSON document, naming the path and the field of the first error.
fn from_json<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, ExportError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().clone();
        json_error(file, err.into_inner(), Some(&path))
    })?;
    de.end().map_err(|err| json_error(file, err, None))?;
    Ok(value)
}

fn json_error(file: &str, err: serde_json::Error, path: Option<&serde_path_to_error::Path>) -> ExportError {
    use serde_json::error::Category;
    use serde_path_to_error::Segment;

    let full = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    let text = full.strip_suffix(&suffix).unwrap_or(&full);
    let message = match err.classify() {
        Category::Syntax => format!("invalid JSON: {text} (column {})", err.column()),
        Category::Eof => format!("truncated JSON: {text}"),
        Category::Data | Category::Io => text.to_owned(),
    };
    let mut out = ExportError::new(file, message);
    if err.line() > 0 {
        out = out.line(err.line());
    }
    let Some(path) = path else { return out };
    let mut rendered = String::from("$");
    let mut last_key = None;
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => rendered.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                rendered.push('.');
                rendered.push_str(key);
                last_key = Some(key.as_str());
            }
            Segment::Enum { variant } => {
                rendered.push('.');
                rendered.push_str(variant);
            }
            // A key not read yet (a syntax error inside an object): the path so far says it.
            Segment::Unknown => break,
        }
    }
    out = out.path(rendered);
    if err.classify() == Category::Data {
        let missing = text.strip_prefix("missing field `").and_then(|rest| rest.strip_suffix('`'));
        if let Some(field) = missing.or(last_key) {
            out = out.field(field);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVENTORY_JSON: &str = include_str!("../../../examples/sample-fleet/inventory.json");
    const INVENTORY_CSV: &str = include_str!("../../../examples/sample-fleet/inventory.csv");
    const LINKS_TXT: &str = include_str!("../../../examples/sample-fleet/links.txt");

    #[test]
    fn detects_the_kind_by_content() {
        let cases: &[(&str, &str, &str)] = &[
            ("a.txt", INVENTORY_JSON, "inventory"),
            ("a.txt", INVENTORY_CSV, "inventory"),
            ("a.json", LINKS_TXT, "links"),
            ("a.csv", r#"{"links": [{"container": "a", "targets": ["10.0.0.1"]}]}"#, "links"),
            ("x", "\n\n  NAME,Host,DC,IPS\r\na,h,d,10.0.0.1\n", "inventory"),
            ("x", "\u{feff}name,host,dc,ips\na,h,d,10.0.0.1\n", "inventory"),
            ("x", "# only comments\n", "links"),
            ("x", "fe1 10.0.0.1\n", "links"),
        ];
        for (file, text, want) in cases {
            let got = match parse_export(file, text.as_bytes()) {
                Ok(Export::Inventory(_)) => "inventory",
                Ok(Export::Links(_)) => "links",
                Err(err) => panic!("{text:?}: {err}"),
            };
            assert_eq!(got, *want, "{text:?}");
        }
    }

    #[test]
    fn parse_export_gives_the_same_values_as_the_direct_parsers() {
        let Export::Inventory(json) = parse_export("i.json", INVENTORY_JSON.as_bytes()).unwrap() else {
            panic!("not an inventory")
        };
        assert_eq!(json, parse_inventory_json("i.json", INVENTORY_JSON.as_bytes()).unwrap());
        let Export::Links(links) = parse_export("links.txt", LINKS_TXT.as_bytes()).unwrap() else {
            panic!("not links")
        };
        assert_eq!(links, parse_links_text("links.txt", LINKS_TXT.as_bytes()).unwrap());
    }

    /// (input, line, path, field, part of the message)
    type Case<'a> = (&'a [u8], Option<usize>, Option<&'a str>, Option<&'a str>, &'a str);

    #[test]
    fn refuses_what_it_cannot_classify() {
        let cases: &[Case] = &[
            (b"", None, None, None, "empty export"),
            (b" \n\t\r\n", None, None, None, "empty export"),
            (b"{}", None, Some("$"), None, "the object is empty"),
            (br#"{"nodes": [], "edges": []}"#, None, Some("$"), None, "found `edges`, `nodes`"),
            (br#"{"containers": [], "links": []}"#, None, Some("$"), None, "both"),
            (b"{\n \"containers\": [\n", Some(3), Some("$.containers"), None, "truncated JSON"),
            (b"{\"links\": []} x", Some(1), None, None, "invalid JSON: trailing characters"),
            (b"fe1 10.0.0.1\nfe2 \xff10.0.0.2\n", Some(2), None, None, "not valid UTF-8 (byte 5"),
        ];
        for (input, line, path, field, message) in cases {
            let err = parse_export("f", input).unwrap_err();
            assert_eq!(err.file, "f");
            assert_eq!(err.line, *line, "{err}");
            assert_eq!(err.path.as_deref(), *path, "{err}");
            assert_eq!(err.field.as_deref(), *field, "{err}");
            assert!(err.message.contains(message), "{err}");
        }
    }

    #[test]
    fn the_json_and_csv_examples_agree_but_for_ports() {
        let json = parse_inventory_json("inventory.json", INVENTORY_JSON.as_bytes()).unwrap();
        let csv = parse_inventory_csv("inventory.csv", INVENTORY_CSV.as_bytes()).unwrap();
        assert_eq!(json.containers.len(), 29);
        assert_eq!(json.containers, csv.containers);
        let names = |inv: &Inventory| inv.services.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&json), names(&csv));
        assert!(json.services.iter().all(|s| s.port.is_some()));
        assert!(csv.services.iter().all(|s| s.port.is_none()));
    }

    #[test]
    fn clean_list_trims_drops_empty_and_repeats() {
        assert_eq!(clean_list([" a", "", "b ", "a", "  "]), ["a", "b"]);
    }

    #[test]
    fn names_keep_any_character_but_controls() {
        let long = "ü数🔥".repeat(1000);
        let kept: &[(&str, &str)] = &[
            (" a b ", "a b"),
            ("with\ttab", "with\ttab"),
            ("\r\n\tpadded\n", "padded"),
            ("non\u{a0}breaking\u{3000}ideographic", "non\u{a0}breaking\u{3000}ideographic"),
            ("\u{202e}evil\u{202c}", "\u{202e}evil\u{202c}"),
            ("<b>'; --", "<b>'; --"),
            ("", ""),
            (&long, &long),
        ];
        for (text, want) in kept {
            assert_eq!(name_text(text).as_deref(), Ok(*want), "{text:?}");
        }
        let refused: &[(&str, &str)] = &[
            ("nul\0byte", "U+0000 at character 4"),
            ("  a\nb", "U+000A at character 4"),
            ("a\rb", "U+000D at character 2"),
            ("\u{1b}[31mred", "U+001B at character 1"),
            ("数\u{7f}", "U+007F at character 2"),
            ("a\u{85}b", "U+0085 at character 2"),
            ("a\u{9b}b", "U+009B at character 2"),
        ];
        for (text, want) in refused {
            let err = name_text(text).unwrap_err();
            assert!(err.contains(want) && err.contains("control characters other than tab"), "{text:?}: {err}");
        }
    }

    #[test]
    fn refuses_control_characters_in_every_name_naming_file_place_and_field() {
        let container = |field: &str, value: &str| {
            let mut c = serde_json::json!({"name": "a", "host": "h", "dc": "d", "role": "r", "ips": ["10.0.0.1"],
                                           "services": ["api"]});
            c[field] = if field == "services" { serde_json::json!(["ok", value]) } else { value.into() };
            serde_json::json!({"containers": [c]}).to_string()
        };
        // (file, content, line, path, field)
        type NameCase<'a> = (&'a str, String, Option<usize>, Option<&'a str>, &'a str);
        let cases: Vec<NameCase> = vec![
            ("i.json", container("name", "a\0"), Some(1), Some("$.containers[0].name"), "name"),
            ("i.json", container("host", "h\0"), Some(1), Some("$.containers[0].host"), "host"),
            ("i.json", container("dc", "\0"), Some(1), Some("$.containers[0].dc"), "dc"),
            ("i.json", container("role", "r\u{1}"), Some(1), Some("$.containers[0].role"), "role"),
            ("i.json", container("services", "x\0y"), Some(1), Some("$.containers[0].services[1]"), "services"),
            (
                "i.json",
                r#"{"containers": [], "services": [{"name": "api\u0000", "port": 80}]}"#.into(),
                Some(1),
                Some("$.services[0].name"),
                "name",
            ),
            ("i.csv", "name,host,dc,ips\na,h,d,10.0.0.1\nb\0,h,d,10.0.0.2\n".into(), Some(3), None, "name"),
            ("i.csv", "name,host,dc,ips\n\"a\nb\",h,d,10.0.0.1\n".into(), Some(2), None, "name"),
            ("i.csv", "name,host,dc,ips\na,h\0,d,10.0.0.1\n".into(), Some(2), None, "host"),
            ("i.csv", "name,host,dc,ips\na,h,\0d,10.0.0.1\n".into(), Some(2), None, "dc"),
            ("i.csv", "name,host,dc,role,ips\na,h,d,\u{1b},10.0.0.1\n".into(), Some(2), None, "role"),
            ("i.csv", "name,host,dc,ips,services\na,h,d,10.0.0.1,x;\0\n".into(), Some(2), None, "services"),
            ("l.txt", "a 10.0.0.1\nb\0 10.0.0.2\n".into(), Some(2), None, "container"),
            (
                "l.json",
                r#"{"links": [{"container": "a\u0000", "targets": []}]}"#.into(),
                Some(1),
                Some("$.links[0].container"),
                "container",
            ),
        ];
        for (file, text, line, path, field) in cases {
            let err = parse_export(file, text.as_bytes()).unwrap_err();
            assert_eq!(err.file, file, "{text:?}");
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert_eq!(err.path.as_deref(), path, "{text:?}: {err}");
            assert_eq!(err.field.as_deref(), Some(field), "{text:?}: {err}");
            assert!(err.message.contains("must not contain control characters"), "{text:?}: {err}");
        }
    }
}
