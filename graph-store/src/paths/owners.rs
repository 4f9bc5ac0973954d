//! Whose network a hop is: the `[owners]` prefix table of the config file (longest prefix
//! wins) and the ASN table (iptoasn's `ip2asn-combined.tsv`). Pure: text and values in,
//! tables out, no I/O.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3`) are looked up as the IPv4 address they
//! carry, in both tables.
//!
//! # Costs
//!
//! [`Owners`] keeps, per prefix length present, a hash map of the masked networks, the
//! longest length first. A look-up masks the address once per length and probes that map:
//! at most 33 probes for IPv4 and 129 for IPv6, in practice as many as the table has
//! distinct lengths (a handful). Building is linear in the prefixes; 100k prefixes take a
//! few megabytes.
//!
//! [`AsnTable`] turns its rows into disjoint, sorted segments when it is parsed (a sweep
//! over the range ends, O(n log n)), each segment carrying the narrowest row containing
//! it; adjacent segments of the same AS merge, and the AS descriptions are kept once each.
//! A look-up is one binary search. A segment takes 12 bytes (IPv4) or 48 (IPv6), so
//! iptoasn's ~500k rows take some tens of MB at most, most of it IPv6.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// An `[owners]` entry refused; the whole table is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnerError {
    #[error("[owners] {key:?}: not a prefix: {reason}")]
    NotAPrefix { key: String, reason: String },
    #[error("[owners] {key:?}: empty label")]
    EmptyLabel { key: String },
    #[error("[owners] {key:?}: the same prefix as {other:?}")]
    Duplicate { key: String, other: String },
}

/// The networks of one prefix length, by their masked address.
#[derive(Debug, Clone)]
struct Level<T> {
    mask: T,
    nets: HashMap<T, u32>,
}

/// The owner labels of address prefixes; see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct Owners {
    /// Each label once; the levels point into it.
    labels: Vec<String>,
    /// Longest prefix first.
    v4: Vec<Level<u32>>,
    v6: Vec<Level<u128>>,
    prefixes: usize,
}

impl Owners {
    /// The table from `(prefix, label)` pairs as the config file's `[owners]` table gives
    /// them (`"10.0.0.0/8" = "ours"`). Refused whole on the first bad entry: not a
    /// prefix, host bits set (`10.0.0.1/8`), an empty label, or a prefix given twice.
    pub fn new<K: AsRef<str>, L: AsRef<str>>(entries: impl IntoIterator<Item = (K, L)>) -> Result<Owners, OwnerError> {
        let mut labels: Vec<String> = Vec::new();
        let mut label_ids: HashMap<String, u32> = HashMap::new();
        let mut seen: HashMap<IpNet, String> = HashMap::new();
        let (mut v4, mut v6) = (HashMap::new(), HashMap::new());
        for (key, label) in entries {
            let (key, label) = (key.as_ref(), label.as_ref().trim());
            let net = parse_prefix(key)?;
            if label.is_empty() {
                return Err(OwnerError::EmptyLabel { key: key.to_owned() });
            }
            if let Some(other) = seen.insert(net, key.to_owned()) {
                return Err(OwnerError::Duplicate { key: key.to_owned(), other });
            }
            let id = *label_ids.entry(label.to_owned()).or_insert_with(|| {
                labels.push(label.to_owned());
                (labels.len() - 1) as u32
            });
            match net {
                IpNet::V4(n) => add(&mut v4, n.prefix_len(), u32::from(n.network()), id, mask4),
                IpNet::V6(n) => add(&mut v6, n.prefix_len(), u128::from(n.network()), id, mask6),
            }
        }
        Ok(Owners { labels, v4: longest_first(v4), v6: longest_first(v6), prefixes: seen.len() })
    }

    /// The label of the longest prefix containing `ip`.
    pub fn owner(&self, ip: IpAddr) -> Option<&str> {
        let id = match ip.to_canonical() {
            IpAddr::V4(a) => find(&self.v4, u32::from(a)),
            IpAddr::V6(a) => find(&self.v6, u128::from(a)),
        }?;
        Some(&self.labels[id as usize])
    }

    /// How many prefixes the table has.
    pub fn len(&self) -> usize {
        self.prefixes
    }

    pub fn is_empty(&self) -> bool {
        self.prefixes == 0
    }
}

/// `address/length`, with no host bits set.
fn parse_prefix(key: &str) -> Result<IpNet, OwnerError> {
    let bad = |reason: String| OwnerError::NotAPrefix { key: key.to_owned(), reason };
    let (addr, len) = key.split_once('/').ok_or_else(|| bad("no /length".into()))?;
    let addr: IpAddr = addr.parse().map_err(|_| bad(format!("{addr:?} is not an IP address")))?;
    let len: u8 = len.parse().map_err(|_| bad(format!("{len:?} is not a prefix length")))?;
    let net =
        IpNet::new(addr, len).map_err(|_| bad(format!("/{len} is longer than {addr}'s {} bits", net_bits(addr))))?;
    if net.trunc() != net {
        return Err(bad(format!("host bits set (the network is {})", net.trunc())));
    }
    Ok(net)
}

fn net_bits(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

fn add<T: std::hash::Hash + Eq>(levels: &mut HashMap<u8, Level<T>>, len: u8, net: T, id: u32, mask: fn(u8) -> T) {
    levels.entry(len).or_insert_with(|| Level { mask: mask(len), nets: HashMap::new() }).nets.insert(net, id);
}

fn longest_first<T>(levels: HashMap<u8, Level<T>>) -> Vec<Level<T>> {
    let mut levels: Vec<(u8, Level<T>)> = levels.into_iter().collect();
    levels.sort_unstable_by_key(|l| std::cmp::Reverse(l.0));
    levels.into_iter().map(|(_, level)| level).collect()
}

fn mask4(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask6(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

fn find<T>(levels: &[Level<T>], addr: T) -> Option<u32>
where
    T: Copy + Eq + std::hash::Hash + std::ops::BitAnd<Output = T>,
{
    levels.iter().find_map(|level| level.nets.get(&(addr & level.mask)).copied())
}

/// Who announces an address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AsnInfo {
    pub asn: u32,
    /// As the table gives it (two letters; iptoasn writes `None` for unrouted space).
    pub country: String,
    pub name: String,
}

/// A bad ASN table row; the whole table is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {problem}")]
pub struct AsnError {
    pub file: String,
    /// From 1.
    pub line: usize,
    pub problem: AsnProblem,
}

/// What is wrong with a row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsnProblem {
    #[error(
        "expected 5 TAB-separated fields (range_start, range_end, AS_number, country_code, AS_description), \
         found {0}"
    )]
    FieldCount(usize),
    #[error("field {field}: {value:?} is not an IP address")]
    NotAnIp { field: &'static str, value: String },
    #[error("field AS_number: {0:?} is not an AS number")]
    NotAnAsn(String),
    #[error("field range_end: {end} is not of range_start {start}'s family")]
    MixedFamilies { start: IpAddr, end: IpAddr },
    #[error("field range_end: {end} is before range_start {start}")]
    EndBeforeStart { start: IpAddr, end: IpAddr },
}

impl AsnProblem {
    /// The field at fault (none: the row as a whole).
    pub fn field(&self) -> Option<&'static str> {
        match self {
            AsnProblem::FieldCount(_) => None,
            AsnProblem::NotAnIp { field, .. } => Some(field),
            AsnProblem::NotAnAsn(_) => Some("AS_number"),
            AsnProblem::MixedFamilies { .. } | AsnProblem::EndBeforeStart { .. } => Some("range_end"),
        }
    }
}

/// Addresses `start..=end` go to `info` (an index into `AsnTable::infos`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment<T> {
    start: T,
    end: T,
    info: u32,
}

/// Address ranges and who announces them; see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct AsnTable {
    infos: Vec<AsnInfo>,
    v4: Vec<Segment<u32>>,
    v6: Vec<Segment<u128>>,
    rows: usize,
}

impl AsnTable {
    /// Who announces `ip`: the narrowest row containing it (of equal ones, the first in the
    /// file); none for no row, or a row of AS 0 ("not routed").
    pub fn lookup(&self, ip: IpAddr) -> Option<&AsnInfo> {
        let id = match ip.to_canonical() {
            IpAddr::V4(a) => segment_at(&self.v4, u32::from(a)),
            IpAddr::V6(a) => segment_at(&self.v6, u128::from(a)),
        }?;
        let info = &self.infos[id as usize];
        (info.asn != 0).then_some(info)
    }

    /// The AS number announcing `ip` (none for AS 0).
    pub fn asn(&self, ip: IpAddr) -> Option<u32> {
        self.lookup(ip).map(|info| info.asn)
    }

    /// Rows read (AS 0 rows included).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The table as disjoint ranges (overlaps already resolved to the narrowest row),
    /// ascending, IPv4 first: what `asn import` stores.
    pub fn ranges(&self) -> impl Iterator<Item = (IpAddr, IpAddr, &AsnInfo)> + '_ {
        let info = |i: u32| &self.infos[i as usize];
        let v4 = self
            .v4
            .iter()
            .map(move |s| (IpAddr::from(Ipv4Addr::from(s.start)), Ipv4Addr::from(s.end).into(), info(s.info)));
        let v6 = self
            .v6
            .iter()
            .map(move |s| (IpAddr::from(Ipv6Addr::from(s.start)), Ipv6Addr::from(s.end).into(), info(s.info)));
        v4.chain(v6)
    }
}

fn segment_at<T: Copy + Ord>(segments: &[Segment<T>], ip: T) -> Option<u32> {
    let i = segments.partition_point(|s| s.start <= ip);
    let s = segments.get(i.checked_sub(1)?)?;
    (ip <= s.end).then_some(s.info)
}

/// One row, its addresses as numbers.
enum Range {
    V4(u32, u32),
    V6(u128, u128),
}

/// Parses an ASN table: `range_start<TAB>range_end<TAB>AS_number<TAB>country_code<TAB>
/// AS_description` per line, IPv4 and IPv6 rows mixed, empty lines skipped. `file` names
/// the table in errors. A bad row refuses the whole table, naming the line and the field.
pub fn parse_asn_table(text: &str, file: &str) -> Result<AsnTable, AsnError> {
    let mut infos: Vec<AsnInfo> = Vec::new();
    let mut info_ids: HashMap<AsnInfo, u32> = HashMap::new();
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (range, info) =
            parse_row(line).map_err(|problem| AsnError { file: file.to_owned(), line: i + 1, problem })?;
        let id = *info_ids.entry(info).or_insert_with_key(|info| {
            infos.push(info.clone());
            (infos.len() - 1) as u32
        });
        match range {
            Range::V4(start, end) => v4.push(Segment { start, end, info: id }),
            Range::V6(start, end) => v6.push(Segment { start, end, info: id }),
        }
    }
    let rows = v4.len() + v6.len();
    Ok(AsnTable { infos, v4: disjoint(&v4), v6: disjoint(&v6), rows })
}

fn parse_row(line: &str) -> Result<(Range, AsnInfo), AsnProblem> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [start, end, asn, country, name] = fields[..] else { return Err(AsnProblem::FieldCount(fields.len())) };
    let ip = |field, value: &str| {
        value.parse::<IpAddr>().map_err(|_| AsnProblem::NotAnIp { field, value: value.to_owned() })
    };
    let (start, end) = (ip("range_start", start)?, ip("range_end", end)?);
    let asn = asn.parse::<u32>().map_err(|_| AsnProblem::NotAnAsn(asn.to_owned()))?;
    let range = match (start, end) {
        (IpAddr::V4(s), IpAddr::V4(e)) => Range::V4(u32::from(s), u32::from(e)),
        (IpAddr::V6(s), IpAddr::V6(e)) => Range::V6(u128::from(s), u128::from(e)),
        _ => return Err(AsnProblem::MixedFamilies { start, end }),
    };
    if end < start {
        return Err(AsnProblem::EndBeforeStart { start, end });
    }
    Ok((range, AsnInfo { asn, country: country.to_owned(), name: name.to_owned() }))
}

/// An address as a number, with the neighbours the sweep needs.
trait Bound: Copy + Ord + Into<u128> {
    const MAX: Self;
    fn next(self) -> Option<Self>;
    fn prev(self) -> Option<Self>;
}

impl Bound for u32 {
    const MAX: Self = u32::MAX;
    fn next(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn prev(self) -> Option<Self> {
        self.checked_sub(1)
    }
}

impl Bound for u128 {
    const MAX: Self = u128::MAX;
    fn next(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn prev(self) -> Option<Self> {
        self.checked_sub(1)
    }
}

/// The rows as disjoint segments sorted by address, each going to the narrowest row
/// containing it (of equal widths, the first row); adjacent segments of one AS merged.
/// A sweep over the points where rows start and end, keeping the rows open there ordered
/// by width.
fn disjoint<T: Bound>(rows: &[Segment<T>]) -> Vec<Segment<T>> {
    // (where, opens, row): a row opens at its start and closes after its end.
    let mut points: Vec<(T, bool, usize)> = Vec::with_capacity(2 * rows.len());
    for (i, r) in rows.iter().enumerate() {
        points.push((r.start, true, i));
        points.extend(r.end.next().map(|after| (after, false, i)));
    }
    points.sort_unstable_by_key(|p| p.0);
    let width = |i: usize| rows[i].end.into() - rows[i].start.into();
    let mut open: BTreeSet<(u128, usize)> = BTreeSet::new();
    let mut out: Vec<Segment<T>> = Vec::new();
    let mut k = 0;
    while k < points.len() {
        let start = points[k].0;
        while let Some(&(_, opens, i)) = points.get(k).filter(|p| p.0 == start) {
            if opens {
                open.insert((width(i), i));
            } else {
                open.remove(&(width(i), i));
            }
            k += 1;
        }
        let Some(&(_, i)) = open.first() else { continue };
        let end = points.get(k).and_then(|p| p.0.prev()).unwrap_or(T::MAX);
        let info = rows[i].info;
        match out.last_mut() {
            Some(last) if last.info == info && last.end.next() == Some(start) => last.end = end,
            _ => out.push(Segment { start, end, info }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse::<Ipv4Addr>().unwrap())
    }

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
    }

    #[test]
    fn the_longest_prefix_wins() {
        let owners = Owners::new([
            ("10.0.0.0/8", "ours"),
            ("10.20.0.0/16", "lab"),
            ("10.20.30.0/24", "lab rack 3"),
            ("0.0.0.0/0", "the internet"),
            ("52.93.0.0/16", "AWS"),
            ("2001:db8::/32", "ours"),
            ("2001:db8:aa::/48", "ISP"),
            ("2001:db8:aa:1::1/128", "one host"),
        ])
        .unwrap();
        let cases = [
            (v4("10.1.2.3"), Some("ours")),
            (v4("10.20.1.1"), Some("lab")),
            (v4("10.20.30.40"), Some("lab rack 3")),
            (v4("10.20.31.0"), Some("lab")),
            (v4("52.93.1.1"), Some("AWS")),
            (v4("8.8.8.8"), Some("the internet")),
            (v6("2001:db8:1::1"), Some("ours")),
            (v6("2001:db8:aa:5::1"), Some("ISP")),
            (v6("2001:db8:aa:1::1"), Some("one host")),
            (v6("2001:db8:aa:1::2"), Some("ISP")),
            (v6("2001:db9::1"), None),
            (v6("::ffff:10.20.30.1"), Some("lab rack 3")),
        ];
        for (ip, want) in cases {
            assert_eq!(owners.owner(ip), want, "{ip}");
        }
        assert_eq!(owners.len(), 8);
        assert_eq!(owners.labels.len(), 7, "each label once");
        let none = Owners::new([("192.168.0.0/16", "home")]).unwrap();
        assert_eq!(none.owner(v4("10.0.0.1")), None);
        assert_eq!(Owners::new(Vec::<(String, String)>::new()).unwrap().owner(v4("10.0.0.1")), None);
    }

    #[test]
    fn bad_entries_are_refused_with_their_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("10.0.0.0/33", "ours")],
                r#"[owners] "10.0.0.0/33": not a prefix: /33 is longer than 10.0.0.0's 32 bits"#,
            ),
            (&[("10.0.0.0", "ours")], r#"[owners] "10.0.0.0": not a prefix: no /length"#),
            (&[("10.0.0/8", "ours")], r#"[owners] "10.0.0/8": not a prefix: "10.0.0" is not an IP address"#),
            (&[("10.0.0.0/x", "ours")], r#"[owners] "10.0.0.0/x": not a prefix: "x" is not a prefix length"#),
            (
                &[("fd00::/129", "ours")],
                r#"[owners] "fd00::/129": not a prefix: /129 is longer than fd00::'s 128 bits"#,
            ),
            (
                &[("10.0.0.1/8", "ours")],
                r#"[owners] "10.0.0.1/8": not a prefix: host bits set (the network is 10.0.0.0/8)"#,
            ),
            (&[("10.0.0.0/8", "ours"), ("52.93.0.0/16", " ")], r#"[owners] "52.93.0.0/16": empty label"#),
            (&[("fd00::/8", "ours"), ("FD00::/8", "theirs")], r#"[owners] "FD00::/8": the same prefix as "fd00::/8""#),
        ];
        for &(entries, want) in cases {
            assert_eq!(Owners::new(entries.iter().copied()).unwrap_err().to_string(), want);
        }
    }

    const TABLE: &str = "1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n\
                         1.0.1.0\t1.0.3.255\t0\tNone\tNot routed\n\
                         \n\
                         1.0.4.0\t1.0.7.255\t38803\tAU\tWPL-AS-AP Wirefreebroadband Pty Ltd\n\
                         2001:200::\t2001:200:ffff:ffff:ffff:ffff:ffff:ffff\t2500\tJP\tWIDE-BB WIDE Project\n\
                         2001:4860::\t2001:4860:ffff:ffff:ffff:ffff:ffff:ffff\t15169\tUS\tGOOGLE\r\n";

    #[test]
    fn asn_table_lookups() {
        let t = parse_asn_table(TABLE, "ip2asn.tsv").unwrap();
        assert_eq!(t.rows(), 5);
        let info = |asn, country: &str, name: &str| AsnInfo { asn, country: country.into(), name: name.into() };
        let cf = info(13335, "US", "CLOUDFLARENET");
        let cases = [
            (v4("1.0.0.0"), Some(cf.clone())),
            (v4("1.0.0.255"), Some(cf.clone())),
            (v4("1.0.0.77"), Some(cf)),
            (v4("0.255.255.255"), None),
            (v4("1.0.2.1"), None),
            (v4("1.0.7.255"), Some(info(38803, "AU", "WPL-AS-AP Wirefreebroadband Pty Ltd"))),
            (v4("1.0.8.0"), None),
            (v6("2001:200::"), Some(info(2500, "JP", "WIDE-BB WIDE Project"))),
            (v6("2001:4860:4860::8888"), Some(info(15169, "US", "GOOGLE"))),
            (v6("2001:4860:ffff:ffff:ffff:ffff:ffff:ffff"), Some(info(15169, "US", "GOOGLE"))),
            (v6("2001:4861::"), None),
            (v6("::ffff:1.0.0.1"), Some(info(13335, "US", "CLOUDFLARENET"))),
        ];
        for (ip, want) in cases {
            assert_eq!(t.lookup(ip), want.as_ref(), "{ip}");
            assert_eq!(t.asn(ip), want.as_ref().map(|i| i.asn), "{ip}");
        }
    }

    #[test]
    fn overlapping_rows_the_narrowest_wins() {
        let text = "10.0.0.0\t10.255.255.255\t1\tZZ\twide\n\
                    10.1.0.0\t10.1.255.255\t2\tZZ\tnarrow\n\
                    10.1.2.0\t10.1.2.255\t0\tNone\tNot routed\n\
                    10.1.0.0\t10.1.255.255\t3\tZZ\tas narrow, later\n\
                    10.200.0.0\t11.0.0.255\t4\tZZ\tacross the end, narrower\n\
                    0.0.0.0\t255.255.255.255\t5\tZZ\teverything\n\
                    ::\tffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\t6\tZZ\tall of IPv6\n\
                    2001:db8::\t2001:db8::ff\t7\tZZ\tinside\n";
        let t = parse_asn_table(text, "overlap.tsv").unwrap();
        let cases = [
            (v4("9.255.255.255"), Some(5)),
            (v4("10.0.0.0"), Some(1)),
            (v4("10.1.0.0"), Some(2)),
            (v4("10.1.2.3"), None),
            (v4("10.1.3.0"), Some(2)),
            (v4("10.2.0.0"), Some(1)),
            (v4("10.199.255.255"), Some(1)),
            (v4("10.200.0.0"), Some(4)),
            (v4("11.0.0.0"), Some(4)),
            (v4("11.0.1.0"), Some(5)),
            (v4("255.255.255.255"), Some(5)),
            (v6("::"), Some(6)),
            (v6("2001:db8::ff"), Some(7)),
            (v6("2001:db8::100"), Some(6)),
            (v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), Some(6)),
        ];
        for (ip, want) in cases {
            assert_eq!(t.asn(ip), want, "{ip}");
        }
        // Segments are disjoint and sorted.
        assert!(t.v4.windows(2).all(|w| w[0].end < w[1].start), "{:?}", t.v4);
    }

    #[test]
    fn adjacent_rows_of_one_as_merge() {
        let text =
            "1.0.0.0\t1.0.0.255\t7\tZZ\tsame\n1.0.1.0\t1.0.1.255\t7\tZZ\tsame\n1.0.3.0\t1.0.3.255\t7\tZZ\tsame\n";
        let t = parse_asn_table(text, "t.tsv").unwrap();
        assert_eq!((t.rows(), t.v4.len(), t.infos.len()), (3, 2, 1));
        assert_eq!((t.asn(v4("1.0.1.255")), t.asn(v4("1.0.2.0"))), (Some(7), None));
    }

    #[test]
    fn bad_rows_are_refused_with_line_and_field() {
        let good = "1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n\n";
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("1.2.3.0\t1.2.3\t5\tZZ\tx", Some("range_end"), r#"ip2asn.tsv:3: field range_end: "1.2.3" is not an IP address"#),
            ("one\t1.2.3.4\t5\tZZ\tx", Some("range_start"), r#"ip2asn.tsv:3: field range_start: "one" is not an IP address"#),
            ("1.2.3.0\t1.2.3.9\tAS5\tZZ\tx", Some("AS_number"), r#"ip2asn.tsv:3: field AS_number: "AS5" is not an AS number"#),
            ("1.2.3.0\t1.2.3.9\t-5\tZZ\tx", Some("AS_number"), r#"ip2asn.tsv:3: field AS_number: "-5" is not an AS number"#),
            ("1.2.3.9\t1.2.3.0\t5\tZZ\tx", Some("range_end"), "ip2asn.tsv:3: field range_end: 1.2.3.0 is before range_start 1.2.3.9"),
            ("1.2.3.0\t::1\t5\tZZ\tx", Some("range_end"), "ip2asn.tsv:3: field range_end: ::1 is not of range_start 1.2.3.0's family"),
            ("1.2.3.0\t1.2.3.9\t5\tZZ", None, "ip2asn.tsv:3: expected 5 TAB-separated fields (range_start, range_end, AS_number, country_code, AS_description), found 4"),
            ("1.2.3.0 1.2.3.9 5 ZZ x", None, "ip2asn.tsv:3: expected 5 TAB-separated fields (range_start, range_end, AS_number, country_code, AS_description), found 1"),
            ("1.2.3.0\t1.2.3.9\t5\tZZ\tx\ty", None, "ip2asn.tsv:3: expected 5 TAB-separated fields (range_start, range_end, AS_number, country_code, AS_description), found 6"),
        ];
        for &(row, field, want) in cases {
            let err = parse_asn_table(&format!("{good}{row}\n{good}"), "ip2asn.tsv").unwrap_err();
            assert_eq!(err.to_string(), want);
            assert_eq!((err.line, err.problem.field()), (3, field), "{row:?}");
        }
    }
}
