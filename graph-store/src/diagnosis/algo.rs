//! Grouping broken edges into incidents: pure functions over the live edges and their
//! states, no I/O. See the parent module for the rules.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::vocab::HealthState;

/// A name an edge shares with many others (its node's, host's, data center's): held once
/// however many edges name it (a million edges name 100,000 nodes).
pub type Name = Arc<str>;

/// One live edge as the diagnosis sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeFact {
    pub src: Name,
    pub src_host: Name,
    pub src_dc: Name,
    pub src_role: Option<Name>,
    pub dst_ip: Name,
    /// The node owning `dst_ip` now, with its host and data center (none: nobody's).
    pub dst: Option<Name>,
    pub dst_host: Option<Name>,
    pub dst_dc: Option<Name>,
    pub services: Arc<[Name]>,
    pub state: HealthState,
    pub flapping: bool,
    #[serde(with = "chrono::serde::ts_seconds")]
    pub since: DateTime<Utc>,
}

impl EdgeFact {
    /// Down, and not flapping: what incidents are made of.
    pub fn broken(&self) -> bool {
        self.state == HealthState::Down && !self.flapping
    }

    /// Known to work (up, or degraded: packets get through).
    fn reached(&self) -> bool {
        matches!(self.state, HealthState::Up | HealthState::Degraded) && !self.flapping
    }

    /// Counted in ratios: broken or reached (not unknown, stale or flapping).
    fn known(&self) -> bool {
        self.broken() || self.reached()
    }
}

/// Where the lines are drawn; `[diagnosis]` in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiagnosisConfig {
    /// A group (a node's consumers or targets, a host's containers, the edges between two
    /// hosts or data centers) is failing when at least this percent of its edges is down.
    pub most_pct: f64,
    /// The rest is fine when at most this percent of it is down.
    pub fine_pct: f64,
    /// Fewest broken edges that make a group incident (fewer stay single edges).
    pub min_edges: usize,
}

impl Default for DiagnosisConfig {
    fn default() -> Self {
        DiagnosisConfig { most_pct: 60.0, fine_pct: 20.0, min_edges: 2 }
    }
}

impl DiagnosisConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0 < self.fine_pct && self.fine_pct < self.most_pct && self.most_pct <= 100.0) {
            return Err(format!(
                "need 0 < fine_pct < most_pct <= 100, got fine_pct = {} and most_pct = {}",
                self.fine_pct, self.most_pct
            ));
        }
        if self.min_edges == 0 {
            return Err("min_edges must be at least 1".into());
        }
        Ok(())
    }
}

/// What an incident says is at fault, most specific explanation first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum IncidentKind {
    /// The link between two data centers.
    DcLink,
    /// The link between two hosts (an IPsec tunnel, say).
    HostPair,
    /// A host: every container on it unreachable, or cut off.
    Host,
    /// A node most of its consumers cannot reach, while they reach other things.
    NodeUnreachable,
    /// A node that cannot reach most of its targets, while others reach them.
    NodeIsolated,
    /// One edge, with nothing else in common.
    Edge,
}

impl IncidentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::DcLink => "dc-link",
            IncidentKind::HostPair => "host-pair",
            IncidentKind::Host => "host",
            IncidentKind::NodeUnreachable => "node-unreachable",
            IncidentKind::NodeIsolated => "node-isolated",
            IncidentKind::Edge => "edge",
        }
    }
}

/// One broken edge of an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BrokenRef {
    pub src: String,
    pub dst_ip: String,
    pub dst: Option<String>,
}

/// A group of broken edges with one likely cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Incident {
    pub kind: IncidentKind,
    /// What is at fault: a data-center pair `Tx<->VA`, a host pair `host1<->host2`, a host,
    /// a node, or an edge `src -> dst_ip`.
    pub culprit: String,
    /// The counts behind the verdict.
    pub evidence: String,
    /// Since when: the earliest of its edges' `since`.
    #[serde(serialize_with = "crate::time::serialize_utc")]
    pub since: DateTime<Utc>,
    /// Consumers with a broken edge in it.
    pub affected_nodes: usize,
    pub edges: Vec<BrokenRef>,
    /// What the traces of its host pairs say (a route change, loss from some hop), when
    /// they have anything to say; filled by `diagnosis::compute`, at most a few pairs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<crate::paths::PathEvidence>,
}

/// Broken / total among edges matching `keep`.
#[derive(Debug, Clone, Copy, Default)]
struct Count {
    broken: usize,
    total: usize,
}

impl Count {
    fn add(&mut self, e: &EdgeFact) {
        if e.known() {
            self.total += 1;
            self.broken += usize::from(e.broken());
        }
    }

    fn pct(self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            100.0 * self.broken as f64 / self.total as f64
        }
    }

    fn reached(self) -> usize {
        self.total - self.broken
    }
}

fn pair<'a>(a: &'a str, b: &'a str) -> (&'a str, &'a str) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Groups the broken edges among `edges` into incidents, worst (most edges) first. Every
/// broken edge is in exactly one incident. The rules are tried from the widest cause to
/// the narrowest; each claims the broken edges it explains, and what is left is single
/// edges.
pub fn diagnose(edges: &[EdgeFact], cfg: &DiagnosisConfig) -> Vec<Incident> {
    let groups = Groups::count(edges);
    let index = Index::new(edges);
    let mut claims = Claims::new(edges, &index.broken);
    dc_links(&groups, cfg, &mut claims);
    host_pairs(&groups, cfg, &mut claims);
    hosts(&groups, &index, cfg, &mut claims);
    unreachable_nodes(&groups, &index, cfg, &mut claims);
    isolated_nodes(&groups, &index, cfg, &mut claims);
    single_edges(&mut claims);
    let mut incidents = claims.incidents;
    incidents.sort_by(|a, b| {
        b.edges
            .len()
            .cmp(&a.edges.len())
            .then(a.kind.cmp(&b.kind))
            .then(a.since.cmp(&b.since))
            .then(a.culprit.cmp(&b.culprit))
    });
    incidents
}

/// A group is failing: enough broken edges, and most of its edges broken.
fn failing(c: Count, cfg: &DiagnosisConfig) -> bool {
    c.broken >= cfg.min_edges && c.pct() >= cfg.most_pct
}

/// The rest is fine: at most a few of its edges broken.
fn fine(c: Count, cfg: &DiagnosisConfig) -> bool {
    c.pct() <= cfg.fine_pct
}

/// Broken / known edges per group the rules look at.
#[derive(Debug, Default)]
struct Groups<'a> {
    /// Per data-center pair, and inside each data center.
    dc_pairs: BTreeMap<(&'a str, &'a str), Count>,
    dc_inside: HashMap<&'a str, Count>,
    /// Per host pair, and per host with every other host.
    host_pairs: BTreeMap<(&'a str, &'a str), Count>,
    host_all: HashMap<&'a str, Count>,
    /// Per node: in (as destination, from other hosts' consumers too) and out.
    node_in: BTreeMap<&'a str, Count>,
    node_out: BTreeMap<&'a str, Count>,
    /// The containers of each host (as consumers or destinations).
    host_nodes: BTreeMap<&'a str, BTreeSet<&'a str>>,
}

impl<'a> Groups<'a> {
    fn count(edges: &'a [EdgeFact]) -> Self {
        let mut g = Groups::default();
        for e in edges {
            g.host_nodes.entry(&e.src_host).or_default().insert(&e.src);
            g.node_out.entry(&e.src).or_default().add(e);
            let (Some(dst), Some(dst_host), Some(dst_dc)) = (&e.dst, &e.dst_host, &e.dst_dc) else { continue };
            g.host_nodes.entry(dst_host).or_default().insert(dst);
            g.node_in.entry(dst).or_default().add(e);
            if dst_dc == &e.src_dc {
                g.dc_inside.entry(dst_dc).or_default().add(e);
            } else {
                g.dc_pairs.entry(pair(&e.src_dc, dst_dc)).or_default().add(e);
            }
            if dst_host != &e.src_host {
                g.host_pairs.entry(pair(&e.src_host, dst_host)).or_default().add(e);
                g.host_all.entry(&e.src_host).or_default().add(e);
                g.host_all.entry(dst_host).or_default().add(e);
            }
        }
        g
    }
}

/// The broken edges, and every edge by consumer, destination address and node.
struct Index<'a> {
    edges: &'a [EdgeFact],
    broken: Vec<usize>,
    by_src: HashMap<&'a str, Vec<usize>>,
    by_dst_ip: HashMap<&'a str, Vec<usize>>,
    by_dst: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Index<'a> {
    fn new(edges: &'a [EdgeFact]) -> Self {
        let mut index = Index {
            edges,
            broken: (0..edges.len()).filter(|&i| edges[i].broken()).collect(),
            by_src: HashMap::new(),
            by_dst_ip: HashMap::new(),
            by_dst: HashMap::new(),
        };
        for (i, e) in edges.iter().enumerate() {
            index.by_src.entry(&e.src).or_default().push(i);
            index.by_dst_ip.entry(&e.dst_ip).or_default().push(i);
            if let Some(dst) = &e.dst {
                index.by_dst.entry(dst).or_default().push(i);
            }
        }
        index
    }

    fn of<'m>(map: &'m HashMap<&'a str, Vec<usize>>, key: &str) -> &'m [usize] {
        map.get(key).map_or(&[], Vec::as_slice)
    }

    /// The edges of the consumers failing to reach `nodes`, to anything outside `nodes`.
    fn reached_elsewhere(&self, nodes: &BTreeSet<&str>) -> Count {
        let consumers: BTreeSet<&str> = nodes
            .iter()
            .flat_map(|n| Self::of(&self.by_dst, n))
            .map(|&i| &self.edges[i])
            .filter(|e| e.broken() && !nodes.contains(&*e.src))
            .map(|e| &*e.src)
            .collect();
        let mut c = Count::default();
        for &i in consumers.iter().flat_map(|n| Self::of(&self.by_src, n)) {
            let e = &self.edges[i];
            if !e.dst.as_deref().is_some_and(|d| nodes.contains(d)) {
                c.add(e);
            }
        }
        c
    }

    /// Other consumers' edges to the targets `nodes` fail to reach.
    fn others_reach(&self, nodes: &BTreeSet<&str>) -> Count {
        let targets: BTreeSet<&str> = nodes
            .iter()
            .flat_map(|n| Self::of(&self.by_src, n))
            .map(|&i| &self.edges[i])
            // Edges among `nodes` themselves fail with them: not a target others reach.
            .filter(|e| e.broken() && !e.dst.as_deref().is_some_and(|d| nodes.contains(d)))
            .map(|e| &*e.dst_ip)
            .collect();
        let mut c = Count::default();
        for &i in targets.iter().flat_map(|t| Self::of(&self.by_dst_ip, t)) {
            let e = &self.edges[i];
            if !nodes.contains(&*e.src) {
                c.add(e);
            }
        }
        c
    }
}

/// The incidents made so far, and which broken edges they hold.
struct Claims<'a> {
    edges: &'a [EdgeFact],
    broken: &'a [usize],
    claimed: Vec<bool>,
    incidents: Vec<Incident>,
}

impl<'a> Claims<'a> {
    fn new(edges: &'a [EdgeFact], broken: &'a [usize]) -> Self {
        Claims { edges, broken, claimed: vec![false; edges.len()], incidents: Vec::new() }
    }

    /// Makes an incident of the broken edges not yet claimed that `pick` selects (none
    /// left: no incident).
    fn claim(&mut self, kind: IncidentKind, culprit: String, evidence: String, pick: &dyn Fn(&EdgeFact) -> bool) {
        let picked: Vec<usize> =
            self.broken.iter().copied().filter(|&i| !self.claimed[i] && pick(&self.edges[i])).collect();
        if picked.is_empty() {
            return;
        }
        for &i in &picked {
            self.claimed[i] = true;
        }
        self.incidents.push(incident(kind, culprit, evidence, picked.iter().map(|&i| &self.edges[i])));
    }
}

/// 1. Data-center links: most edges between two DCs down, each DC fine inside.
fn dc_links(g: &Groups<'_>, cfg: &DiagnosisConfig, claims: &mut Claims<'_>) {
    for (&(a, b), &c) in &g.dc_pairs {
        let (ia, ib) =
            (g.dc_inside.get(a).copied().unwrap_or_default(), g.dc_inside.get(b).copied().unwrap_or_default());
        if failing(c, cfg) && fine(ia, cfg) && fine(ib, cfg) {
            let evidence = format!(
                "{} of {} edges between {a} and {b} down; inside {a} {} of {} reached, inside {b} {} of {}",
                c.broken,
                c.total,
                ia.reached(),
                ia.total,
                ib.reached(),
                ib.total
            );
            let between = |e: &EdgeFact| e.dst_dc.as_deref().is_some_and(|d| pair(&e.src_dc, d) == (a, b));
            claims.claim(IncidentKind::DcLink, format!("{a}<->{b}"), evidence, &between);
        }
    }
}

/// 2. Host pairs: most edges between two hosts down, each fine with every other host.
fn host_pairs(g: &Groups<'_>, cfg: &DiagnosisConfig, claims: &mut Claims<'_>) {
    for (&(x, y), &c) in &g.host_pairs {
        let rest = |h: &str| {
            let all = g.host_all.get(h).copied().unwrap_or_default();
            Count { broken: all.broken - c.broken, total: all.total - c.total }
        };
        let (rx, ry) = (rest(x), rest(y));
        if failing(c, cfg) && fine(rx, cfg) && fine(ry, cfg) {
            let evidence = format!(
                "{} of {} edges between {x} and {y} down; {x} reaches {} of {} others, {y} {} of {}",
                c.broken,
                c.total,
                rx.reached(),
                rx.total,
                ry.reached(),
                ry.total
            );
            let between = |e: &EdgeFact| e.dst_host.as_deref().is_some_and(|d| pair(&e.src_host, d) == (x, y));
            claims.claim(IncidentKind::HostPair, format!("{x}<->{y}"), evidence, &between);
        }
    }
}

/// 3. Hosts: every container on the host unreachable (its consumers elsewhere fine) or cut
///    off (its targets fine for others); hosts of two or more containers.
fn hosts(g: &Groups<'_>, index: &Index<'_>, cfg: &DiagnosisConfig, claims: &mut Claims<'_>) {
    let sum = |v: &[Count]| {
        v.iter().fold(Count::default(), |a, c| Count { broken: a.broken + c.broken, total: a.total + c.total })
    };
    // Each container with edges of that side mostly broken, and the host's sum failing.
    let all_failing =
        |v: &[Count]| v.len() >= 2 && v.iter().all(|c| c.pct() >= cfg.most_pct && c.broken > 0) && failing(sum(v), cfg);
    for (&host, nodes) in g.host_nodes.iter().filter(|(_, nodes)| nodes.len() >= 2) {
        let side = |counts: &BTreeMap<&str, Count>| -> Vec<Count> {
            nodes.iter().filter_map(|n| counts.get(n).copied()).filter(|c| c.total > 0).collect()
        };
        let (with_in, with_out) = (side(&g.node_in), side(&g.node_out));
        let unreachable = all_failing(&with_in) && fine(index.reached_elsewhere(nodes), cfg);
        let cut_off = all_failing(&with_out) && fine(index.others_reach(nodes), cfg);
        let mut parts = Vec::new();
        if unreachable {
            let (c, r) = (sum(&with_in), index.reached_elsewhere(nodes));
            parts.push(format!(
                "{} of {} edges to its {} containers down (their consumers reach {} of {} others)",
                c.broken,
                c.total,
                nodes.len(),
                r.reached(),
                r.total
            ));
        }
        if cut_off {
            let (c, r) = (sum(&with_out), index.others_reach(nodes));
            parts.push(format!(
                "{} of {} edges from its {} containers down (others reach those targets {} of {})",
                c.broken,
                c.total,
                nodes.len(),
                r.reached(),
                r.total
            ));
        }
        if parts.is_empty() {
            continue;
        }
        let on_host =
            |e: &EdgeFact| (unreachable && e.dst_host.as_deref() == Some(host)) || (cut_off && &*e.src_host == host);
        claims.claim(IncidentKind::Host, host.to_string(), format!("{host}: {}", parts.join("; ")), &on_host);
    }
}

/// 4. Nodes most consumers cannot reach, while those consumers reach other things.
fn unreachable_nodes(g: &Groups<'_>, index: &Index<'_>, cfg: &DiagnosisConfig, claims: &mut Claims<'_>) {
    for (&node, &c) in g.node_in.iter().filter(|(_, c)| failing(**c, cfg)) {
        let r = index.reached_elsewhere(&BTreeSet::from([node]));
        if fine(r, cfg) {
            let evidence = format!(
                "{} of {} consumers cannot reach {node}; they reach {} of {} others",
                c.broken,
                c.total,
                r.reached(),
                r.total
            );
            claims
                .claim(IncidentKind::NodeUnreachable, node.to_string(), evidence, &|e| e.dst.as_deref() == Some(node));
        }
    }
}

/// 5. Nodes that cannot reach most of their targets, while others reach them.
fn isolated_nodes(g: &Groups<'_>, index: &Index<'_>, cfg: &DiagnosisConfig, claims: &mut Claims<'_>) {
    for (&node, &c) in g.node_out.iter().filter(|(_, c)| failing(**c, cfg)) {
        let r = index.others_reach(&BTreeSet::from([node]));
        if fine(r, cfg) {
            let evidence = format!(
                "{node} cannot reach {} of its {} targets; others reach them {} of {}",
                c.broken,
                c.total,
                r.reached(),
                r.total
            );
            claims.claim(IncidentKind::NodeIsolated, node.to_string(), evidence, &|e| &*e.src == node);
        }
    }
}

/// 6. What is left: single edges.
fn single_edges(claims: &mut Claims<'_>) {
    for &i in claims.broken {
        if claims.claimed[i] {
            continue;
        }
        claims.claimed[i] = true;
        let e = &claims.edges[i];
        let culprit = format!("{} -> {}", e.src, e.dst.as_deref().unwrap_or(&e.dst_ip));
        let evidence = match &e.dst {
            Some(dst) => format!("{} cannot reach {} ({dst}); nothing else in common", e.src, e.dst_ip),
            None => format!("{} cannot reach {} (no node has that address); nothing else in common", e.src, e.dst_ip),
        };
        claims.incidents.push(incident(IncidentKind::Edge, culprit, evidence, std::iter::once(e)));
    }
}

fn incident<'a>(
    kind: IncidentKind,
    culprit: String,
    evidence: String,
    edges: impl Iterator<Item = &'a EdgeFact>,
) -> Incident {
    let edges: Vec<&EdgeFact> = edges.collect();
    let since = edges.iter().map(|e| e.since).min().unwrap_or_else(Utc::now);
    let affected_nodes = edges.iter().map(|e| &*e.src).collect::<BTreeSet<_>>().len();
    let edges = edges
        .iter()
        .map(|e| BrokenRef {
            src: e.src.to_string(),
            dst_ip: e.dst_ip.to_string(),
            dst: e.dst.as_deref().map(str::to_string),
        })
        .collect();
    Incident { kind, culprit, evidence, since, affected_nodes, edges, paths: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2 data centers × 2 hosts × 3 containers, every container using every other one.
    fn mesh() -> Vec<EdgeFact> {
        let mut nodes = Vec::new(); // (name, host, dc, ip)
        for dc in ["A", "B"] {
            for h in 1..=2 {
                let host = format!("{}{h}", dc.to_lowercase());
                for c in 1..=3 {
                    let ip = format!("127.0.0.{}", nodes.len() + 1);
                    nodes.push((format!("{host}c{c}"), host.clone(), dc.to_string(), ip));
                }
            }
        }
        let mut edges = Vec::new();
        for s in &nodes {
            for d in &nodes {
                if s.0 != d.0 {
                    edges.push(EdgeFact {
                        src: s.0.as_str().into(),
                        src_host: s.1.as_str().into(),
                        src_dc: s.2.as_str().into(),
                        src_role: None,
                        dst_ip: d.3.as_str().into(),
                        dst: Some(d.0.as_str().into()),
                        dst_host: Some(d.1.as_str().into()),
                        dst_dc: Some(d.2.as_str().into()),
                        services: Arc::new([]),
                        state: HealthState::Up,
                        flapping: false,
                        since: DateTime::UNIX_EPOCH,
                    });
                }
            }
        }
        edges
    }

    fn break_where(edges: &mut [EdgeFact], pick: impl Fn(&EdgeFact) -> bool) -> usize {
        let mut n = 0;
        for e in edges.iter_mut().filter(|e| pick(e)) {
            e.state = HealthState::Down;
            n += 1;
        }
        n
    }

    fn kinds(incidents: &[Incident]) -> Vec<(IncidentKind, String, usize)> {
        incidents.iter().map(|i| (i.kind, i.culprit.clone(), i.edges.len())).collect()
    }

    fn diagnosed(edges: &[EdgeFact]) -> Vec<(IncidentKind, String, usize)> {
        let incidents = diagnose(edges, &DiagnosisConfig::default());
        let broken = edges.iter().filter(|e| e.broken()).count();
        assert_eq!(incidents.iter().map(|i| i.edges.len()).sum::<usize>(), broken, "every broken edge in one incident");
        kinds(&incidents)
    }

    #[test]
    fn groups_count_known_edges_per_dc_host_and_node() {
        let mut edges = mesh();
        break_where(&mut edges, |e| &*e.src == "a1c1");
        let g = Groups::count(&edges);
        // 12 containers, 11 targets each; 6 per DC: 6×6 edges cross each way.
        assert_eq!((g.dc_pairs[&("A", "B")].total, g.dc_pairs[&("A", "B")].broken), (72, 6));
        assert_eq!((g.dc_inside["A"].total, g.dc_inside["A"].broken), (30, 5));
        assert_eq!((g.node_out["a1c1"].total, g.node_out["a1c1"].broken), (11, 11));
        assert_eq!((g.node_in["a1c1"].total, g.node_in["a1c1"].broken), (11, 0));
        assert_eq!(g.host_nodes["a1"], BTreeSet::from(["a1c1", "a1c2", "a1c3"]));
        // a1 with every other host: 3 containers × 9 others, both ways.
        assert_eq!((g.host_all["a1"].total, g.host_all["a1"].broken), (54, 9));
    }

    #[test]
    fn index_says_what_the_failing_consumers_and_the_others_still_reach() {
        let mut edges = mesh();
        break_where(&mut edges, |e| e.dst.as_deref() == Some("a1c1"));
        let index = Index::new(&edges);
        assert_eq!(index.broken.len(), 11);
        // a1c1's 11 consumers reach their 10 other targets each.
        let r = index.reached_elsewhere(&BTreeSet::from(["a1c1"]));
        assert_eq!((r.total, r.broken), (110, 0));
        // a1c1 itself fails nothing: nobody else is asked about its targets.
        let o = index.others_reach(&BTreeSet::from(["a1c1"]));
        assert_eq!((o.total, o.broken), (0, 0));
    }

    #[test]
    fn a_claimed_edge_is_never_claimed_again() {
        let mut edges = mesh();
        break_where(&mut edges, |e| &*e.src == "a1c1");
        let index = Index::new(&edges);
        let mut claims = Claims::new(&edges, &index.broken);
        claims.claim(IncidentKind::NodeIsolated, "a1c1".into(), "x".into(), &|e| e.dst_host.as_deref() == Some("a2"));
        claims.claim(IncidentKind::NodeIsolated, "again".into(), "y".into(), &|e| e.dst_host.as_deref() == Some("a2"));
        single_edges(&mut claims);
        let got: Vec<_> = claims.incidents.iter().map(|i| (i.kind, i.edges.len())).collect();
        assert_eq!(got[0], (IncidentKind::NodeIsolated, 3));
        assert_eq!(got.len(), 1 + 8, "the second claim found nothing left; 8 single edges remain");
        assert!(got[1..].iter().all(|&(k, n)| k == IncidentKind::Edge && n == 1));
    }

    #[test]
    fn each_fault_gets_its_kind_and_culprit() {
        let d = |e: &EdgeFact| e.dst.clone().unwrap();
        type Case = (&'static str, Box<dyn Fn(&EdgeFact) -> bool>, (IncidentKind, &'static str));
        let cases: Vec<Case> = vec![
            ("isolated", Box::new(|e| &*e.src == "a1c1"), (IncidentKind::NodeIsolated, "a1c1")),
            ("unreachable", Box::new(move |e| &*d(e) == "a1c1"), (IncidentKind::NodeUnreachable, "a1c1")),
            (
                "host down",
                Box::new(|e| (&*e.src_host == "a1") != (e.dst_host.as_deref() == Some("a1"))),
                (IncidentKind::Host, "a1"),
            ),
            (
                "host down, its own containers cut from each other too",
                Box::new(|e| &*e.src_host == "a1" || e.dst_host.as_deref() == Some("a1")),
                (IncidentKind::Host, "a1"),
            ),
            (
                "host unreachable only",
                Box::new(|e| &*e.src_host != "a1" && e.dst_host.as_deref() == Some("a1")),
                (IncidentKind::Host, "a1"),
            ),
            (
                "host pair",
                Box::new(|e| pair(&e.src_host, e.dst_host.as_deref().unwrap()) == ("a1", "b1")),
                (IncidentKind::HostPair, "a1<->b1"),
            ),
            ("dc link", Box::new(|e| Some(&*e.src_dc) != e.dst_dc.as_deref()), (IncidentKind::DcLink, "A<->B")),
        ];
        for (name, pick, (kind, culprit)) in cases {
            let mut edges = mesh();
            let n = break_where(&mut edges, pick);
            assert_eq!(diagnosed(&edges), vec![(kind, culprit.to_string(), n)], "{name}");
        }
    }

    #[test]
    fn a_lone_edge_is_an_edge_and_flapping_edges_are_no_incident() {
        let mut edges = mesh();
        break_where(&mut edges, |e| &*e.src == "a1c1" && e.dst.as_deref() == Some("b2c3"));
        for e in edges.iter_mut().filter(|e| &*e.src == "b1c1") {
            e.state = HealthState::Down;
            e.flapping = true;
        }
        assert_eq!(diagnosed(&edges), vec![(IncidentKind::Edge, "a1c1 -> b2c3".to_string(), 1)]);
    }

    #[test]
    fn two_faults_at_once_are_two_incidents_worst_first() {
        let mut edges = mesh();
        let link = break_where(&mut edges, |e| pair(&e.src_host, e.dst_host.as_deref().unwrap()) == ("a2", "b2"));
        break_where(&mut edges, |e| &*e.src == "a1c1" && e.dst.as_deref() == Some("a1c2"));
        assert_eq!(
            diagnosed(&edges),
            vec![(IncidentKind::HostPair, "a2<->b2".into(), link), (IncidentKind::Edge, "a1c1 -> a1c2".into(), 1)]
        );
    }

    #[test]
    fn evidence_says_the_counts() {
        let mut edges = mesh();
        break_where(&mut edges, |e| pair(&e.src_host, e.dst_host.as_deref().unwrap()) == ("a1", "b1"));
        let incidents = diagnose(&edges, &DiagnosisConfig::default());
        // 3 × 3 containers, both ways; a1 has 2 × 9 × 2 = 36 other cross-host edges.
        assert_eq!(
            incidents[0].evidence,
            "18 of 18 edges between a1 and b1 down; a1 reaches 36 of 36 others, b1 36 of 36"
        );
        assert_eq!(incidents[0].affected_nodes, 6);
    }

    #[test]
    fn thresholds_are_checked() {
        assert!(DiagnosisConfig::default().validate().is_ok());
        assert!(DiagnosisConfig { fine_pct: 70.0, ..Default::default() }.validate().is_err());
        assert!(DiagnosisConfig { min_edges: 0, ..Default::default() }.validate().is_err());
    }
}
