//! Published-links exports: a container and the addresses it talks to.
//!
//! - text: `container ip ip …` per line, whitespace-separated, `#` starting a comment;
//!   a container with no addresses says it publishes no links any more;
//! - JSON: `{"links": [{"container": "...", "targets": ["ip", ...]}]}`.
//!
//! Whether each container exists is the store's check, made with each link's `origin`.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use graph_store::model::{Link, LinkSet};
use serde::Deserialize;

use super::{decode, dedup_ips, from_json, name_text, parse_ip, Ip, Name};
use crate::ExportError;

/// Parses a links text export; `origin` of each link is `"{file} line {n}"`.
pub fn parse_links_text(file: &str, bytes: &[u8]) -> Result<LinkSet, ExportError> {
    parse_text(file, decode(file, bytes)?)
}

/// Parses a links JSON export; `origin` of each link is `"{file} $.links[{i}]"`.
pub fn parse_links_json(file: &str, bytes: &[u8]) -> Result<LinkSet, ExportError> {
    parse_json(file, decode(file, bytes)?)
}

pub(super) fn parse_text(file: &str, text: &str) -> Result<LinkSet, ExportError> {
    let mut links = Vec::new();
    let mut first_line: HashMap<&str, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let content = line.split('#').next().unwrap_or("");
        let mut words = content.split_whitespace();
        let Some(container) = words.next() else {
            continue;
        };
        name_text(container).map_err(|message| ExportError::new(file, message).line(n).field("container"))?;
        match first_line.entry(container) {
            Entry::Occupied(first) => {
                return Err(ExportError::new(
                    file,
                    format!("container {container:?} is listed twice (first at line {})", first.get()),
                )
                .line(n)
                .field("container"));
            }
            Entry::Vacant(slot) => {
                slot.insert(n);
            }
        }
        let targets = words
            .enumerate()
            .map(|(k, word)| {
                parse_ip(word).map_err(|message| {
                    ExportError::new(file, format!("{message} (target {} of {container:?})", k + 1))
                        .line(n)
                        .field("targets")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        links.push(Link {
            container: container.to_owned(),
            targets: dedup_ips(targets),
            origin: format!("{file} line {n}"),
        });
    }
    Ok(LinkSet { links })
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "a links object with a `links` list")]
struct RawLinks {
    links: Vec<RawLink>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "a link object")]
struct RawLink {
    container: Name,
    targets: Vec<Ip>,
}

pub(super) fn parse_json(file: &str, text: &str) -> Result<LinkSet, ExportError> {
    let raw: RawLinks = from_json(file, text)?;
    let mut links = Vec::with_capacity(raw.links.len());
    let mut first_at: HashMap<String, usize> = HashMap::with_capacity(raw.links.len());
    for (i, link) in raw.links.into_iter().enumerate() {
        let container = link.container.0;
        if let Some(first) = first_at.insert(container.clone(), i) {
            return Err(ExportError::new(
                file,
                format!("container {container:?} is listed twice (first at $.links[{first}])"),
            )
            .path(format!("$.links[{i}]"))
            .field("container"));
        }
        links.push(Link {
            container,
            targets: dedup_ips(link.targets.into_iter().map(|ip| ip.0)),
            origin: format!("{file} $.links[{i}]"),
        });
    }
    Ok(LinkSet { links })
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    const EXAMPLE: &str = include_str!("../../../examples/sample-fleet/links.txt");

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|ip| ip.parse().unwrap()).collect()
    }

    #[test]
    fn parses_the_example() {
        let set = parse_links_text("links.txt", EXAMPLE.as_bytes()).unwrap();
        assert_eq!(set.links.len(), 4);
        assert_eq!(
            set.links[0],
            Link {
                container: "fe1.host101".into(),
                targets: ips(&["127.20.1.3", "127.20.3.2", "127.20.3.3", "127.20.4.1"]),
                origin: "links.txt line 2".into(),
            }
        );
        let names: Vec<&str> = set.links.iter().map(|l| l.container.as_str()).collect();
        assert_eq!(names, ["fe1.host101", "fe1.host103", "fe1.host201", "fe1.host203"]);
    }

    #[test]
    fn text_comments_blank_lines_and_empty_links() {
        let text = "# header\r\n\r\n  a\t10.0.0.1   fd00::1 # trailing\r\nb # no links any more\r\n   # indented comment\nc 10.0.0.2 10.0.0.2#x\n";
        let set = parse_links_text("l.txt", text.as_bytes()).unwrap();
        let got: Vec<(&str, Vec<IpAddr>, &str)> =
            set.links.iter().map(|l| (l.container.as_str(), l.targets.clone(), l.origin.as_str())).collect();
        assert_eq!(
            got,
            [
                ("a", ips(&["10.0.0.1", "fd00::1"]), "l.txt line 3"),
                ("b", vec![], "l.txt line 4"),
                ("c", ips(&["10.0.0.2"]), "l.txt line 6"),
            ]
        );
        assert_eq!(parse_links_text("l.txt", b"").unwrap(), LinkSet::default());
    }

    #[test]
    fn json_links() {
        let text = r#"{"links": [{"container": " a ", "targets": ["10.0.0.1", "10.0.0.1", "fd00::2"]},
                                 {"container": "b", "targets": []}], "generated": "today"}"#;
        let set = parse_links_json("l.json", text.as_bytes()).unwrap();
        assert_eq!(
            set.links,
            [
                Link {
                    container: "a".into(),
                    targets: ips(&["10.0.0.1", "fd00::2"]),
                    origin: "l.json $.links[0]".into()
                },
                Link { container: "b".into(), targets: vec![], origin: "l.json $.links[1]".into() },
            ]
        );
    }

    /// (input, line, path, field, part of the message)
    type Case<'a> = (&'a str, Option<usize>, Option<&'a str>, Option<&'a str>, &'a str);

    #[test]
    fn refuses_bad_text_links_saying_where() {
        let cases: &[Case] = &[
            (
                "a 10.0.0.1\n# c\nb 10.0.0.2\na 10.0.0.3\n",
                Some(4),
                None,
                Some("container"),
                "container \"a\" is listed twice (first at line 1)",
            ),
            ("a\na\n", Some(2), None, Some("container"), "listed twice (first at line 1)"),
            (
                "a 10.0.0.1\nb 10.0.0.2 db1 10.0.0.3\n",
                Some(2),
                None,
                Some("targets"),
                "invalid IP address \"db1\" (target 2 of \"b\")",
            ),
            (
                "a 10.0.0.1,10.0.0.2\n",
                Some(1),
                None,
                Some("targets"),
                "invalid IP address \"10.0.0.1,10.0.0.2\" (target 1",
            ),
        ];
        for (text, line, path, field, message) in cases {
            let err = parse_links_text("links.txt", text.as_bytes()).unwrap_err();
            assert_eq!(err.file, "links.txt");
            assert_eq!(err.line, *line, "{text}\n{err}");
            assert_eq!(err.path.as_deref(), *path, "{text}\n{err}");
            assert_eq!(err.field.as_deref(), *field, "{text}\n{err}");
            assert!(err.message.contains(message), "{text}\n{err}");
        }
    }

    #[test]
    fn refuses_bad_json_links_saying_where() {
        let cases: &[Case] = &[
            (
                "{\"links\": [\n {\"container\": \"a\", \"targets\": []},\n {\"container\": \"a\", \"targets\": [\"10.0.0.1\"]}\n]}",
                None, Some("$.links[1]"), Some("container"), "container \"a\" is listed twice (first at $.links[0])",
            ),
            (
                "{\"links\": [\n {\"container\": \"a\",\n  \"targets\": [\"10.0.0.1\", \"nope\"]}]}",
                Some(3), Some("$.links[0].targets[1]"), Some("targets"), "invalid IP address \"nope\"",
            ),
            (r#"{"links": [{"container": "a"}]}"#, Some(1), Some("$.links[0]"), Some("targets"), "missing field `targets`"),
            (r#"{"links": [{"targets": []}]}"#, Some(1), Some("$.links[0]"), Some("container"), "missing field `container`"),
            (r#"{"links": [{"container": "", "targets": []}]}"#, Some(1), Some("$.links[0].container"), Some("container"), "must not be empty"),
            (r#"{"links": [{"container": "a", "targets": "10.0.0.1"}]}"#, Some(1), Some("$.links[0].targets"), Some("targets"), "invalid type: string"),
            (r#"{"links": {}}"#, Some(1), Some("$.links"), Some("links"), "invalid type: map"),
            (r#"{"containers": []}"#, Some(1), Some("$"), Some("links"), "missing field `links`"),
            ("{\"links\": [\n", Some(2), Some("$.links"), None, "truncated JSON"),
        ];
        for (text, line, path, field, message) in cases {
            let err = parse_links_json("links.json", text.as_bytes()).unwrap_err();
            assert_eq!(err.file, "links.json");
            assert_eq!(err.line, *line, "{text}\n{err}");
            assert_eq!(err.path.as_deref(), *path, "{text}\n{err}");
            assert_eq!(err.field.as_deref(), *field, "{text}\n{err}");
            assert!(err.message.contains(message), "{text}\n{err}");
        }
    }
}
