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

use super::{decode, dedup_ips, from_json, parse_ip, Ip, Name};
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
        let Some(container) = words.next() else { continue };
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
