//! The topology snapshot in a compact binary form, as `serve`'s leader stores it in
//! PostgreSQL (`topology_packed`) so a command can answer without loading a million edges
//! row by row: pure functions, no I/O.
//!
//! The form is [`Parts`] in canonical order (nodes and services in name order, uses by
//! consumer, destination, service), with varints and deltas:
//!
//! ```text
//! "EWT1"
//! strings: count, then (length, UTF-8 bytes)…   hosts and data centers, each once
//! services: count, then (length, UTF-8 bytes)…
//! nodes: count, then (length, name, host string, dc string)…
//! uses: count, then (consumer delta, destination (delta when the same consumer),
//!        service + 1 (0: none) << 1 | linked)…
//! provides: count, then (node delta, service)…
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use super::algo::{NodeRow, Parts, UseRow, NO_SERVICE};
use crate::paths::packed::{put_varint, Reader, UnpackError};

const MAGIC: &[u8; 4] = b"EWT1";

/// Packs a snapshot's parts (see [`super::Snapshot::to_parts`]).
pub fn pack(parts: &Parts) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + parts.uses.len() * 5 + parts.nodes.len() * 24);
    out.extend_from_slice(MAGIC);
    let mut strings: HashMap<&str, u64> = HashMap::new();
    let mut table: Vec<&str> = Vec::new();
    for n in &parts.nodes {
        for s in [&*n.host, &*n.dc] {
            strings.entry(s).or_insert_with(|| {
                table.push(s);
                (table.len() - 1) as u64
            });
        }
    }
    put_varint(&mut out, table.len() as u64);
    for s in &table {
        put_str(&mut out, s);
    }
    put_varint(&mut out, parts.services.len() as u64);
    for s in &parts.services {
        put_str(&mut out, s);
    }
    put_varint(&mut out, parts.nodes.len() as u64);
    for n in &parts.nodes {
        put_str(&mut out, &n.name);
        put_varint(&mut out, strings[&*n.host]);
        put_varint(&mut out, strings[&*n.dc]);
    }
    put_varint(&mut out, parts.uses.len() as u64);
    let (mut src, mut dst) = (0u32, 0u32);
    for u in &parts.uses {
        // Canonical order: consumers ascending, destinations ascending per consumer.
        let same = u.src == src;
        put_varint(&mut out, u64::from(u.src.wrapping_sub(src)));
        put_varint(&mut out, u64::from(if same { u.dst.wrapping_sub(dst) } else { u.dst }));
        let service = if u.service == NO_SERVICE { 0 } else { u64::from(u.service) + 1 };
        put_varint(&mut out, service << 1 | u64::from(u.linked));
        (src, dst) = (u.src, u.dst);
    }
    put_varint(&mut out, parts.provides.len() as u64);
    let mut node = 0u32;
    for &(n, s) in &parts.provides {
        put_varint(&mut out, u64::from(n.wrapping_sub(node)));
        put_varint(&mut out, u64::from(s));
        node = n;
    }
    out
}

/// What [`unpack`] says of bytes [`pack`] did not make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stored topology snapshot is cut short, corrupt or of another version")]
pub struct Corrupt;

/// Unpacks what [`pack`] made; anything else is refused, never half read.
pub fn unpack(bytes: &[u8]) -> Result<Parts, Corrupt> {
    read(bytes).map_err(|_| Corrupt)
}

fn read(bytes: &[u8]) -> Result<Parts, UnpackError> {
    let mut r = Reader(bytes);
    if r.take(4, 0)? != MAGIC {
        return Err(UnpackError::Short(0));
    }
    let count = |r: &mut Reader<'_>, limit: usize| -> Result<usize, UnpackError> {
        let n = r.varint(0)?;
        // Every item takes a byte at least: a count beyond what is left is corrupt.
        usize::try_from(n).ok().filter(|&n| n <= limit).ok_or(UnpackError::Short(0))
    };
    let n = count(&mut r, bytes.len())?;
    let mut table: Vec<Arc<str>> = Vec::with_capacity(n);
    for _ in 0..n {
        table.push(take_str(&mut r)?.into());
    }
    let n = count(&mut r, bytes.len())?;
    let mut services = Vec::with_capacity(n);
    for _ in 0..n {
        services.push(take_str(&mut r)?.to_string());
    }
    let string = |r: &mut Reader<'_>| -> Result<Arc<str>, UnpackError> {
        let i = r.varint(0)?;
        usize::try_from(i).ok().and_then(|i| table.get(i)).cloned().ok_or(UnpackError::Short(0))
    };
    let n = count(&mut r, bytes.len())?;
    let mut nodes = Vec::with_capacity(n);
    for _ in 0..n {
        let name: Arc<str> = take_str(&mut r)?.into();
        let (host, dc) = (string(&mut r)?, string(&mut r)?);
        nodes.push(NodeRow { name, host, dc });
    }
    let id = |v: u64| u32::try_from(v).map_err(|_| UnpackError::Short(0));
    let n = count(&mut r, bytes.len())?;
    let mut uses = Vec::with_capacity(n);
    let (mut src, mut dst) = (0u32, 0u32);
    for _ in 0..n {
        let step = id(r.varint(0)?)?;
        let to = id(r.varint(0)?)?;
        src = src.wrapping_add(step);
        dst = if step == 0 { dst.wrapping_add(to) } else { to };
        let code = r.varint(0)?;
        let service = if code >> 1 == 0 { NO_SERVICE } else { id((code >> 1) - 1)? };
        uses.push(UseRow { src, dst, service, linked: code & 1 == 1 });
    }
    let n = count(&mut r, bytes.len())?;
    let mut provides = Vec::with_capacity(n);
    let mut node = 0u32;
    for _ in 0..n {
        node = node.wrapping_add(id(r.varint(0)?)?);
        provides.push((node, id(r.varint(0)?)?));
    }
    r.end()?;
    Ok(Parts { nodes, services, uses, provides })
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn take_str<'a>(r: &mut Reader<'a>) -> Result<&'a str, UnpackError> {
    let n = usize::try_from(r.varint(0)?).map_err(|_| UnpackError::Short(0))?;
    std::str::from_utf8(r.take(n, 0)?).map_err(|_| UnpackError::Short(0))
}

#[cfg(test)]
mod tests {
    use super::super::algo::{EdgeRow, Snapshot};
    use super::*;

    fn sample() -> Snapshot {
        let node = |name: &str, host: &str, dc: &str| NodeRow { name: name.into(), host: host.into(), dc: dc.into() };
        let edge = |src: &str, dst: &str, services: &[&str], sources: &[&str]| EdgeRow {
            src: src.into(),
            dst: dst.into(),
            services: services.iter().map(|s| s.to_string()).collect(),
            sources: sources.iter().map(|s| s.to_string()).collect(),
        };
        Snapshot::new(
            vec![
                node("web.h1", "h1", "Tx"),
                node("api.h2", "h2", "Tx"),
                node("db.h3", "h3", "VA"),
                node("ü\"\n.h3", "h3", "VA"),
            ],
            vec![
                edge("web.h1", "api.h2", &[], &["cmdb"]),
                edge("api.h2", "db.h3", &["db", "pg"], &["dns"]),
                edge("api.h2", "db.h3", &["db"], &["dns", "config"]),
                edge("db.h3", "ü\"\n.h3", &["backup"], &["dns"]),
            ],
            vec![("db".into(), "db.h3".into()), ("api".into(), "api.h2".into()), ("pg".into(), "db.h3".into())],
        )
    }

    #[test]
    fn round_trips_to_the_same_snapshot() {
        let s = sample();
        let parts = s.to_parts();
        let back = unpack(&pack(&parts)).unwrap();
        assert_eq!(back.nodes, parts.nodes);
        assert_eq!(back.services, parts.services);
        assert_eq!(back.uses, parts.uses);
        assert_eq!(back.provides, parts.provides);
        let again = Snapshot::from_parts(back);
        assert_eq!(again.to_parts().uses, parts.uses);
        assert_eq!(again.deps("api.h2", None), s.deps("api.h2", None));
        assert_eq!(again.blast("db.h3"), s.blast("db.h3"));
        assert_eq!(again.blast("h3"), s.blast("h3"));
        assert_eq!(again.spof(), s.spof());
    }

    #[test]
    fn refuses_what_it_did_not_make() {
        let packed = pack(&sample().to_parts());
        assert!(unpack(b"").is_err());
        assert!(unpack(b"EWT2").is_err());
        for cut in [4, 5, packed.len() / 2, packed.len() - 1] {
            assert!(unpack(&packed[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = packed.clone();
        longer.push(0);
        assert!(unpack(&longer).is_err());
        // A count far beyond the bytes is refused before anything is allocated for it.
        let mut huge = MAGIC.to_vec();
        put_varint(&mut huge, u64::MAX >> 1);
        assert!(unpack(&huge).is_err());
    }
}
