//! Topology questions answered on an in-memory petgraph [`Snapshot`]: pure functions, no I/O.
//!
//! See the parent module for the semantics; this module only computes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use serde::Serialize;

/// A live node as loaded: name, host and data center. Shared strings: an answer that
/// names forty thousand nodes copies pointers, not names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRow {
    pub name: Arc<str>,
    pub host: Arc<str>,
    pub dc: Arc<str>,
}

/// One live edge with a known destination node: consumer → destination, the services it
/// was learned for and its sources (`dns`, `cmdb`, `config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeRow {
    pub src: String,
    pub dst: String,
    pub services: Vec<String>,
    pub sources: Vec<String>,
}

/// A dependency in the graph: all edges from one node to (any address of) another.
/// Compact: its services are a run of [`Snapshot`]'s service list, by id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dep {
    /// Where its service ids start in the snapshot's list, and how many.
    start: u32,
    len: u32,
    /// Learned from a published link (`cmdb`/`config`), or carries no service.
    pub linked: bool,
}

/// A service id of a [`UseRow`] that names none: an edge without services.
pub const NO_SERVICE: u32 = u32::MAX;

/// One use of the input by number: consumer → destination (positions in
/// [`Parts::nodes`]) for one service (an id in [`Parts::services`], or [`NO_SERVICE`]).
/// An edge gives a row per service it was learned for, or one row without a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct UseRow {
    pub src: u32,
    pub dst: u32,
    pub service: u32,
    /// From a published link (`cmdb`/`config`), or no service.
    pub linked: bool,
}

/// What a snapshot is built from, by number (the loaders' form: no name is copied per
/// edge). Positions and ids may be in any order; unknown positions are ignored.
#[derive(Debug, Clone, Default)]
pub struct Parts {
    pub nodes: Vec<NodeRow>,
    pub services: Vec<String>,
    pub uses: Vec<UseRow>,
    /// (node position, service id): who provides what.
    pub provides: Vec<(u32, u32)>,
}

/// What a consumer uses through its edges: a service, or (for a published link to a node
/// that provides no service) that node itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Use {
    /// By service id (see `Snapshot::service_names`).
    Service(u32),
    Node(NodeIndex),
}

/// The live dependency graph, loaded once; every question is answered on it.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Nodes are added in name order, so index order is name order.
    graph: DiGraph<NodeRow, Dep>,
    by_name: HashMap<String, NodeIndex>,
    by_host: HashMap<String, Vec<NodeIndex>>,
    by_dc: HashMap<String, Vec<NodeIndex>>,
    /// Services each node provides, as service ids.
    provides: HashMap<NodeIndex, Vec<u32>>,
    /// Service names by id; ids are in name order.
    service_names: Vec<String>,
    /// The dependencies' services, a run per [`Dep`].
    dep_services: Vec<u32>,
    /// The graph's dependencies again, as contiguous arrays per direction: the walks read
    /// these, not petgraph's linked edge lists (a million edges do not fit in the cache, and
    /// following those lists is a cache miss an edge).
    out_adj: Adjacency,
    in_adj: Adjacency,
}

/// Compressed sparse rows: the neighbours of node `i` are `to[start[i]..start[i + 1]]`, in
/// index (= name) order, each with the dependency's edge index.
#[derive(Debug, Clone, Default)]
struct Adjacency {
    start: Vec<usize>,
    to: Vec<(NodeIndex, EdgeIndex)>,
}

impl Adjacency {
    fn build(graph: &DiGraph<NodeRow, Dep>, dir: Direction) -> Adjacency {
        let n = graph.node_count();
        let mut start = vec![0usize; n + 1];
        let ends = |e: &petgraph::graph::EdgeReference<'_, Dep>| match dir {
            Direction::Outgoing => (e.source(), e.target()),
            Direction::Incoming => (e.target(), e.source()),
        };
        for e in graph.edge_references() {
            start[ends(&e).0.index() + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut to = vec![(NodeIndex::end(), EdgeIndex::end()); graph.edge_count()];
        for e in graph.edge_references() {
            let (from, other) = ends(&e);
            to[fill[from.index()]] = (other, e.id());
            fill[from.index()] += 1;
        }
        for i in 0..n {
            to[start[i]..start[i + 1]].sort_unstable_by_key(|&(other, _)| other);
        }
        Adjacency { start, to }
    }

    fn of(&self, ix: NodeIndex) -> &[(NodeIndex, EdgeIndex)] {
        &self.to[self.start[ix.index()]..self.start[ix.index() + 1]]
    }
}

/// Which kind of thing a `blast` target named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Node,
    Host,
    Dc,
}

/// A node reached from the start of `deps` / `dependents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Reached {
    #[schema(value_type = String)]
    pub name: Arc<str>,
    #[schema(value_type = String)]
    pub host: Arc<str>,
    #[schema(value_type = String)]
    pub dc: Arc<str>,
    /// Edges between the start and this node (1 = direct).
    pub hops: usize,
    /// The node it was reached from.
    #[schema(value_type = String)]
    pub via: Arc<str>,
    /// Services of the dependency between `via` and this node.
    #[schema(value_type = Vec<String>)]
    pub services: Arc<[String]>,
    /// Whether that dependency is (also) a published link.
    pub linked: bool,
}

/// One edge of a dependency chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Hop {
    pub src: String,
    pub dst: String,
    pub services: Vec<String>,
    pub linked: bool,
}

/// Something a consumer loses: every provider of `service` it uses, or (`service` null)
/// the one node a published link of it points to, which provides no service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
pub struct Lost {
    pub service: Option<String>,
    /// The providers it used for it, all gone.
    pub providers: Vec<String>,
}

/// A consumer that loses something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Loser {
    pub name: String,
    pub host: String,
    pub dc: String,
    pub lost: Vec<Lost>,
}

/// The answer to `blast`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Blast {
    pub target: String,
    pub kind: TargetKind,
    /// The nodes that disappear.
    pub removed: Vec<String>,
    /// The consumers outside the target that lose something, by name.
    pub consumers: Vec<Loser>,
}

/// A single point of failure: a node or host whose loss alone makes `consumers` lose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Spof {
    pub kind: TargetKind,
    pub name: String,
    pub dc: String,
    pub consumers: Vec<Loser>,
}

impl Snapshot {
    /// Builds the graph from rows by name (tests, the graph at a past time). Edges naming
    /// an unknown node and self-edges are ignored; several edges between the same two
    /// nodes (one per address) become one [`Dep`].
    pub fn new(nodes: Vec<NodeRow>, edges: Vec<EdgeRow>, providers: Vec<(String, String)>) -> Snapshot {
        let mut parts = Parts { nodes, ..Parts::default() };
        let position: HashMap<&str, u32> = parts.nodes.iter().enumerate().map(|(i, n)| (&*n.name, i as u32)).collect();
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut id = |name: String, services: &mut Vec<String>| -> u32 {
            *ids.entry(name).or_insert_with_key(|name| {
                services.push(name.clone());
                (services.len() - 1) as u32
            })
        };
        let mut uses = Vec::new();
        let mut provides = Vec::new();
        for e in edges {
            let (Some(&src), Some(&dst)) = (position.get(e.src.as_str()), position.get(e.dst.as_str())) else {
                continue;
            };
            let linked = e.services.is_empty() || e.sources.iter().any(|src| src != "dns");
            if e.services.is_empty() {
                uses.push(UseRow { src, dst, service: NO_SERVICE, linked });
            }
            for service in e.services {
                uses.push(UseRow { src, dst, service: id(service, &mut parts.services), linked });
            }
        }
        for (service, node) in providers {
            if let Some(&n) = position.get(node.as_str()) {
                provides.push((n, id(service, &mut parts.services)));
            }
        }
        parts.uses = uses;
        parts.provides = provides;
        Snapshot::from_parts(parts)
    }

    /// Builds the graph from rows by number; see [`Snapshot::new`] for what is ignored.
    /// Nodes are indexed in name order and services numbered in name order, whatever
    /// order they came in (a name given twice: its first row counts).
    pub fn from_parts(parts: Parts) -> Snapshot {
        let Parts { nodes, services, mut uses, provides } = parts;
        let mut s = Snapshot::default();

        // Services in name order: id → new id.
        let mut by_name: Vec<u32> = (0..services.len() as u32).collect();
        by_name.sort_by(|&a, &b| services[a as usize].cmp(&services[b as usize]));
        let mut service_id = vec![NO_SERVICE; services.len()];
        let mut services: Vec<Option<String>> = services.into_iter().map(Some).collect();
        for old in by_name {
            let name = services[old as usize].take().unwrap_or_default();
            if s.service_names.last() != Some(&name) {
                s.service_names.push(name);
            }
            service_id[old as usize] = (s.service_names.len() - 1) as u32;
        }
        let service = |old: u32| service_id.get(old as usize).copied().unwrap_or(NO_SERVICE);

        // Nodes in name order: position → index.
        let mut order: Vec<u32> = (0..nodes.len() as u32).collect();
        order.sort_by(|&a, &b| nodes[a as usize].name.cmp(&nodes[b as usize].name));
        let mut index = vec![None; nodes.len()];
        for pos in order {
            let n = &nodes[pos as usize];
            if s.by_name.contains_key(&*n.name) {
                continue;
            }
            let ix = s.graph.add_node(n.clone());
            index[pos as usize] = Some(ix);
            s.by_name.insert(n.name.to_string(), ix);
            s.by_host.entry(n.host.to_string()).or_default().push(ix);
            s.by_dc.entry(n.dc.to_string()).or_default().push(ix);
        }
        drop(nodes);
        let ix = |pos: u32| index.get(pos as usize).copied().flatten();

        // Uses by (consumer, destination) index, each pair's rows one dependency.
        uses.retain_mut(|u| match (ix(u.src), ix(u.dst)) {
            (Some(a), Some(b)) if a != b => {
                (u.src, u.dst, u.service) = (a.index() as u32, b.index() as u32, service(u.service));
                true
            }
            _ => false,
        });
        uses.sort_unstable();
        s.graph.reserve_edges(uses.len());
        for pair in uses.chunk_by(|a, b| (a.src, a.dst) == (b.src, b.dst)) {
            let start = s.dep_services.len() as u32;
            let (mut linked, mut last) = (false, NO_SERVICE);
            for u in pair {
                linked |= u.linked || u.service == NO_SERVICE;
                if u.service != NO_SERVICE && u.service != last {
                    s.dep_services.push(u.service);
                    last = u.service;
                }
            }
            let len = s.dep_services.len() as u32 - start;
            let (a, b) = (NodeIndex::new(pair[0].src as usize), NodeIndex::new(pair[0].dst as usize));
            s.graph.add_edge(a, b, Dep { start, len, linked });
        }
        drop(uses);
        s.dep_services.shrink_to_fit();

        for (node, id) in provides {
            let (Some(n), id) = (ix(node), service(id)) else { continue };
            if id == NO_SERVICE {
                continue;
            }
            let provided = s.provides.entry(n).or_default();
            if !provided.contains(&id) {
                provided.push(id);
            }
        }
        s.out_adj = Adjacency::build(&s.graph, Direction::Outgoing);
        s.in_adj = Adjacency::build(&s.graph, Direction::Incoming);
        s
    }

    /// The snapshot as parts in canonical order (nodes and services in name order, uses by
    /// consumer, destination, service): [`Snapshot::from_parts`] gives it back.
    pub fn to_parts(&self) -> Parts {
        let mut uses = Vec::with_capacity(self.dep_services.len().max(self.graph.edge_count()));
        for src in self.graph.node_indices() {
            for &(dst, edge) in self.out_adj.of(src) {
                let dep = &self.graph[edge];
                let (src, dst) = (src.index() as u32, dst.index() as u32);
                let services = self.services_of(dep);
                if services.is_empty() {
                    uses.push(UseRow { src, dst, service: NO_SERVICE, linked: true });
                }
                uses.extend(services.iter().map(|&service| UseRow { src, dst, service, linked: dep.linked }));
            }
        }
        let mut provides: Vec<(u32, u32)> =
            self.provides.iter().flat_map(|(ix, ids)| ids.iter().map(move |&id| (ix.index() as u32, id))).collect();
        provides.sort_unstable();
        Parts {
            nodes: self.graph.node_weights().cloned().collect(),
            services: self.service_names.clone(),
            uses,
            provides,
        }
    }

    fn adjacency(&self, dir: Direction) -> &Adjacency {
        match dir {
            Direction::Outgoing => &self.out_adj,
            Direction::Incoming => &self.in_adj,
        }
    }

    /// A dependency's service ids, in name order.
    fn services_of(&self, dep: &Dep) -> &[u32] {
        &self.dep_services[dep.start as usize..(dep.start + dep.len) as usize]
    }

    /// A dependency's service names, in name order.
    fn service_names_of(&self, dep: &Dep) -> impl Iterator<Item = String> + '_ {
        self.services_of(dep).iter().map(|&s| self.service_names[s as usize].clone())
    }

    pub fn node_count(&self) -> usize {
        self.graph.node_count()
    }

    pub fn edge_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// Whether a live node has this name.
    pub fn has_node(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Host names, sorted.
    pub fn hosts(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self.graph.node_weights().map(|n| &*n.host).collect();
        set.into_iter().map(str::to_string).collect()
    }

    /// Data center names, sorted.
    pub fn dcs(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self.graph.node_weights().map(|n| &*n.dc).collect();
        set.into_iter().map(str::to_string).collect()
    }

    /// Node names, sorted.
    pub fn nodes(&self) -> Vec<String> {
        let mut v: Vec<String> = self.by_name.keys().cloned().collect();
        v.sort();
        v
    }

    /// Resolves a `blast` target: a node name first, then a host, then a data center.
    pub fn resolve(&self, name: &str) -> Option<(TargetKind, Vec<NodeIndex>)> {
        if let Some(&ix) = self.by_name.get(name) {
            return Some((TargetKind::Node, vec![ix]));
        }
        if let Some(ixs) = self.by_host.get(name) {
            return Some((TargetKind::Host, ixs.clone()));
        }
        self.by_dc.get(name).map(|ixs| (TargetKind::Dc, ixs.clone()))
    }

    /// Breadth-first from `start` along edges (`Outgoing`: what it depends on;
    /// `Incoming`: what depends on it), up to `depth` hops (`None`: no limit).
    /// Returns, for each reached node, its hop count and the node it was reached from.
    fn bfs(
        &self,
        start: NodeIndex,
        dir: Direction,
        depth: Option<usize>,
        stop_at: Option<NodeIndex>,
    ) -> Vec<(NodeIndex, usize, NodeIndex, EdgeIndex)> {
        let mut seen = vec![false; self.graph.node_count()];
        seen[start.index()] = true;
        let mut queue = VecDeque::from([(start, 0usize)]);
        let mut out = Vec::new();
        let adjacency = self.adjacency(dir);
        while let Some((ix, d)) = queue.pop_front() {
            if depth.is_some_and(|max| d >= max) {
                continue;
            }
            // In index order, which is name order.
            for &(n, edge) in adjacency.of(ix) {
                if !seen[n.index()] {
                    seen[n.index()] = true;
                    out.push((n, d + 1, ix, edge));
                    if Some(n) == stop_at {
                        return out;
                    }
                    queue.push_back((n, d + 1));
                }
            }
        }
        out
    }

    fn reached(&self, start: &str, dir: Direction, depth: Option<usize>) -> Option<Vec<Reached>> {
        let start = *self.by_name.get(start)?;
        let mut found = self.bfs(start, dir, depth, None);
        found.sort_unstable_by_key(|&(ix, hops, _, _)| (hops, ix));
        Some(
            found
                .into_iter()
                .map(|(ix, hops, via, edge)| {
                    let n = &self.graph[ix];
                    let dep = &self.graph[edge];
                    Reached {
                        name: n.name.clone(),
                        host: n.host.clone(),
                        dc: n.dc.clone(),
                        hops,
                        via: self.graph[via].name.clone(),
                        services: self.service_names_of(dep).collect(),
                        linked: dep.linked,
                    }
                })
                .collect(),
        )
    }

    /// What `node` depends on, up to `depth` hops (`None`: all). `None` if no such node.
    pub fn deps(&self, node: &str, depth: Option<usize>) -> Option<Vec<Reached>> {
        self.reached(node, Direction::Outgoing, depth)
    }

    /// What depends on `node`, up to `depth` hops (`None`: all). `None` if no such node.
    pub fn dependents(&self, node: &str, depth: Option<usize>) -> Option<Vec<Reached>> {
        self.reached(node, Direction::Incoming, depth)
    }

    /// The shortest dependency chain `from` → … → `to`: `Ok(None)` when there is none,
    /// `Err(name)` when a node is unknown.
    pub fn path(&self, from: &str, to: &str) -> Result<Option<Vec<Hop>>, String> {
        let a = *self.by_name.get(from).ok_or_else(|| from.to_string())?;
        let b = *self.by_name.get(to).ok_or_else(|| to.to_string())?;
        if a == b {
            return Ok(Some(Vec::new()));
        }
        let pred: HashMap<NodeIndex, (NodeIndex, EdgeIndex)> = self
            .bfs(a, Direction::Outgoing, None, Some(b))
            .into_iter()
            .map(|(ix, _, via, edge)| (ix, (via, edge)))
            .collect();
        if !pred.contains_key(&b) {
            return Ok(None);
        }
        let mut hops = Vec::new();
        let mut cur = b;
        while cur != a {
            let (prev, edge) = pred[&cur];
            let dep = &self.graph[edge];
            hops.push(Hop {
                src: self.graph[prev].name.to_string(),
                dst: self.graph[cur].name.to_string(),
                services: self.service_names_of(dep).collect(),
                linked: dep.linked,
            });
            cur = prev;
        }
        hops.reverse();
        Ok(Some(hops))
    }

    /// What `consumer` uses, as (use, provider) pairs sorted by use, then provider, without
    /// repeats, into `buf` (cleared first): one run of pairs per use, see [`Snapshot::by_use`].
    fn uses(&self, consumer: NodeIndex, buf: &mut Vec<(Use, NodeIndex)>) {
        buf.clear();
        for &(dst, edge) in self.out_adj.of(consumer) {
            let dep = &self.graph[edge];
            buf.extend(self.services_of(dep).iter().map(|&s| (Use::Service(s), dst)));
            if dep.linked {
                match self.provides.get(&dst) {
                    Some(services) if !services.is_empty() => {
                        buf.extend(services.iter().map(|&s| (Use::Service(s), dst)));
                    }
                    _ => buf.push((Use::Node(dst), dst)),
                }
            }
        }
        buf.sort_unstable();
        buf.dedup();
    }

    /// The runs of [`Snapshot::uses`]'s pairs: each use with its providers.
    fn by_use(pairs: &[(Use, NodeIndex)]) -> impl Iterator<Item = (Use, &[(Use, NodeIndex)])> {
        pairs.chunk_by(|a, b| a.0 == b.0).map(|run| (run[0].0, run))
    }

    /// The use with its providers (a run of [`Snapshot::uses`]), for an answer.
    fn lost(&self, use_: &Use, providers: &[(Use, NodeIndex)]) -> Lost {
        // Index order is name order.
        let names: Vec<String> = providers.iter().map(|&(_, ix)| self.graph[ix].name.to_string()).collect();
        Lost {
            service: match use_ {
                Use::Service(s) => Some(self.service_names[*s as usize].clone()),
                Use::Node(_) => None,
            },
            providers: names,
        }
    }

    fn loser(&self, ix: NodeIndex, mut lost: Vec<Lost>) -> Loser {
        lost.sort();
        let n = &self.graph[ix];
        Loser { name: n.name.to_string(), host: n.host.to_string(), dc: n.dc.to_string(), lost }
    }

    /// The consumers outside `removed` that lose every provider of something they use.
    pub fn blast_nodes(&self, removed: &HashSet<NodeIndex>) -> Vec<Loser> {
        let mut gone = vec![false; self.graph.node_count()];
        for ix in removed {
            gone[ix.index()] = true;
        }
        // The consumers outside the target with an edge into it, marked, then taken in
        // index order, which is name order: the answer comes out sorted by name.
        let mut consumer = vec![false; self.graph.node_count()];
        for &ix in removed {
            for &(c, _) in self.in_adj.of(ix) {
                consumer[c.index()] |= !gone[c.index()];
            }
        }
        let mut pairs = Vec::new();
        let mut out = Vec::new();
        for c in consumer.iter().enumerate().filter(|(_, &is)| is).map(|(i, _)| NodeIndex::new(i)) {
            self.uses(c, &mut pairs);
            let lost: Vec<Lost> = Self::by_use(&pairs)
                .filter(|(_, ps)| ps.iter().all(|&(_, p)| gone[p.index()]))
                .map(|(u, ps)| self.lost(&u, ps))
                .collect();
            if !lost.is_empty() {
                out.push(self.loser(c, lost));
            }
        }
        out
    }

    /// `blast TARGET`: a node, host or data center (see [`Snapshot::resolve`]).
    /// `None` if the name is none of them.
    pub fn blast(&self, target: &str) -> Option<Blast> {
        let (kind, ixs) = self.resolve(target)?;
        let removed: HashSet<NodeIndex> = ixs.iter().copied().collect();
        let mut names: Vec<String> = ixs.iter().map(|&ix| self.graph[ix].name.to_string()).collect();
        names.sort();
        Some(Blast { target: target.to_string(), kind, removed: names, consumers: self.blast_nodes(&removed) })
    }

    /// Every node and host whose loss alone makes some consumer lose something: the
    /// targets with a non-empty [`Snapshot::blast`]. Hosts first, then nodes; within
    /// each, most consumers hit first, then by name. One pass over every consumer's uses.
    pub fn spof(&self) -> Vec<Spof> {
        type Hits = BTreeMap<NodeIndex, Vec<Lost>>;
        let mut by_node: BTreeMap<NodeIndex, Hits> = BTreeMap::new();
        let mut by_host: BTreeMap<String, Hits> = BTreeMap::new();
        let mut pairs = Vec::new();
        for c in self.graph.node_indices() {
            self.uses(c, &mut pairs);
            for (u, ps) in Self::by_use(&pairs) {
                if let [(_, p)] = ps {
                    by_node.entry(*p).or_default().entry(c).or_default().push(self.lost(&u, ps));
                }
                let host: &str = &self.graph[ps[0].1].host;
                if ps.iter().all(|&(_, p)| *self.graph[p].host == *host) && *host != *self.graph[c].host {
                    by_host.entry(host.to_string()).or_default().entry(c).or_default().push(self.lost(&u, ps));
                }
            }
        }
        let losers = |hits: Hits| -> Vec<Loser> {
            let mut v: Vec<Loser> = hits.into_iter().map(|(c, lost)| self.loser(c, lost)).collect();
            v.sort_by(|a, b| a.name.cmp(&b.name));
            v
        };
        let host_dc: HashMap<&str, &str> = self.graph.node_weights().map(|n| (&*n.host, &*n.dc)).collect();
        let mut out: Vec<Spof> = by_host
            .into_iter()
            .map(|(host, hits)| Spof {
                kind: TargetKind::Host,
                dc: host_dc[host.as_str()].to_string(),
                name: host,
                consumers: losers(hits),
            })
            .collect();
        out.extend(by_node.into_iter().map(|(ix, hits)| Spof {
            kind: TargetKind::Node,
            name: self.graph[ix].name.to_string(),
            dc: self.graph[ix].dc.to_string(),
            consumers: losers(hits),
        }));
        out.sort_by(|a, b| {
            (b.kind == TargetKind::Host, b.consumers.len(), &a.name).cmp(&(
                a.kind == TargetKind::Host,
                a.consumers.len(),
                &b.name,
            ))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> NodeRow {
        let (_, host) = name.split_once('.').unwrap();
        let dc = if host.starts_with("h1") { "Tx" } else { "VA" };
        NodeRow { name: name.into(), host: host.into(), dc: dc.into() }
    }

    fn dns(src: &str, dst: &str, service: &str) -> EdgeRow {
        EdgeRow { src: src.into(), dst: dst.into(), services: vec![service.into()], sources: vec!["dns".into()] }
    }

    fn link(src: &str, dst: &str) -> EdgeRow {
        EdgeRow { src: src.into(), dst: dst.into(), services: vec![], sources: vec!["cmdb".into()] }
    }

    /// fe → (links) be1, be2 (api); be1 → db.h11 (db); be2 → db.h11, db.h21 (db);
    /// be1 → (link) mon.h21 (no service); x.h99 → unknown.
    fn sample() -> Snapshot {
        let names = ["fe.h10", "be1.h10", "be2.h11", "db.h11", "db.h21", "mon.h21"];
        let edges = vec![
            link("fe.h10", "be1.h10"),
            link("fe.h10", "be2.h11"),
            dns("be1.h10", "db.h11", "db"),
            dns("be2.h11", "db.h11", "db"),
            dns("be2.h11", "db.h21", "db"),
            link("be1.h10", "mon.h21"),
            dns("be1.h10", "nobody.h99", "db"),
            dns("be1.h10", "be1.h10", "api"),
        ];
        let providers = vec![
            ("api".into(), "be1.h10".into()),
            ("api".into(), "be2.h11".into()),
            ("db".into(), "db.h11".into()),
            ("db".into(), "db.h21".into()),
        ];
        Snapshot::new(names.iter().map(|n| node(n)).collect(), edges, providers)
    }

    fn names(r: &[Reached]) -> Vec<(&str, usize)> {
        r.iter().map(|r| (&*r.name, r.hops)).collect()
    }

    #[test]
    fn builds_without_unknown_or_self_edges() {
        let s = sample();
        assert_eq!((s.node_count(), s.edge_count()), (6, 6));
    }

    #[test]
    fn deps_and_dependents_by_depth() {
        /// start, forward (deps) or not (dependents), depth, the nodes reached and their hops.
        type Case<'a> = (&'a str, bool, Option<usize>, &'a [(&'a str, usize)]);
        let s = sample();
        let cases: &[Case] = &[
            ("fe.h10", true, Some(1), &[("be1.h10", 1), ("be2.h11", 1)]),
            ("fe.h10", true, Some(2), &[("be1.h10", 1), ("be2.h11", 1), ("db.h11", 2), ("db.h21", 2), ("mon.h21", 2)]),
            ("fe.h10", true, None, &[("be1.h10", 1), ("be2.h11", 1), ("db.h11", 2), ("db.h21", 2), ("mon.h21", 2)]),
            ("db.h11", true, Some(3), &[]),
            ("db.h11", false, Some(1), &[("be1.h10", 1), ("be2.h11", 1)]),
            ("db.h11", false, Some(2), &[("be1.h10", 1), ("be2.h11", 1), ("fe.h10", 2)]),
            ("fe.h10", false, None, &[]),
        ];
        for (start, forward, depth, want) in cases {
            let got = if *forward { s.deps(start, *depth) } else { s.dependents(start, *depth) }.unwrap();
            assert_eq!(names(&got), *want, "{start} forward={forward} depth={depth:?}");
        }
        assert!(s.deps("nope", Some(1)).is_none());
        let be2 = s.deps("be2.h11", Some(1)).unwrap();
        assert_eq!(*be2[0].services, ["db".to_string()]);
        assert_eq!(&*be2[0].via, "be2.h11");
    }

    #[test]
    fn path_is_shortest_chain() {
        let s = sample();
        let p = s.path("fe.h10", "db.h21").unwrap().unwrap();
        let chain: Vec<(&str, &str)> = p.iter().map(|h| (h.src.as_str(), h.dst.as_str())).collect();
        assert_eq!(chain, [("fe.h10", "be2.h11"), ("be2.h11", "db.h21")]);
        assert!(p[0].linked && !p[1].linked);
        assert_eq!(s.path("db.h21", "fe.h10").unwrap(), None);
        assert_eq!(s.path("fe.h10", "fe.h10").unwrap(), Some(vec![]));
        assert_eq!(s.path("fe.h10", "zz"), Err("zz".to_string()));
    }

    fn blast_summary(s: &Snapshot, target: &str) -> Vec<(String, Vec<Option<String>>)> {
        s.blast(target)
            .unwrap()
            .consumers
            .into_iter()
            .map(|l| (l.name, l.lost.into_iter().map(|x| x.service).collect()))
            .collect()
    }

    #[test]
    fn blast_counts_only_losing_every_provider() {
        let s = sample();
        let some = |v: &str| Some(v.to_string());
        // db.h11 alone: be1 loses db (its only provider), be2 still has db.h21.
        assert_eq!(blast_summary(&s, "db.h11"), [("be1.h10".to_string(), vec![some("db")])]);
        // One upstream of fe's links: fe keeps api through the other.
        assert_eq!(blast_summary(&s, "be1.h10"), []);
        // A link to a node providing nothing is lost with that node.
        assert_eq!(blast_summary(&s, "mon.h21"), [("be1.h10".to_string(), vec![None])]);
        // Host h11 takes be2 and db.h11: fe keeps api via be1, be1 loses db.
        assert_eq!(blast_summary(&s, "h11"), [("be1.h10".to_string(), vec![some("db")])]);
        // DC VA (h21): be1 loses the link to mon; be2 keeps db.h11.
        assert_eq!(blast_summary(&s, "VA"), [("be1.h10".to_string(), vec![None])]);
        // DC Tx: consumers inside the target do not count.
        assert_eq!(s.blast("Tx").unwrap().consumers, vec![]);
        assert_eq!(s.blast("Tx").unwrap().kind, TargetKind::Dc);
        assert!(s.blast("nowhere").is_none());
    }

    #[test]
    fn spof_equals_nonempty_blasts() {
        let s = sample();
        let spof = s.spof();
        let mut got: Vec<(TargetKind, String)> = spof.iter().map(|x| (x.kind, x.name.to_string())).collect();
        got.sort();
        let mut want = Vec::new();
        for n in s.nodes() {
            if !s.blast(&n).unwrap().consumers.is_empty() {
                want.push((TargetKind::Node, n));
            }
        }
        for h in s.hosts() {
            let b = s.blast(&h).unwrap();
            assert_eq!(b.kind, TargetKind::Host);
            if !b.consumers.is_empty() {
                want.push((TargetKind::Host, h.clone()));
            }
            let entry = spof.iter().find(|x| x.kind == TargetKind::Host && x.name == h);
            assert_eq!(entry.map(|x| &x.consumers).unwrap_or(&vec![]), &b.consumers, "{h}");
        }
        want.sort();
        assert_eq!(got, want);
        assert!(!got.is_empty());
    }
}
