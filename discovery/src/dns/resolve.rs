//! Turning query records into edges: the rules of `shared/fixtures/README.md`, "How a
//! query becomes an edge", applied to a snapshot of the CMDB.
//!
//! Pure: a [`Resolver`] is built from plain rows the store gives, and answers each record
//! with the provider addresses it points at, or the reason it gives no edge.

use std::collections::HashMap;
use std::net::IpAddr;

use graph_store::dns::CmdbSnapshot;
use rustc_hash::FxHashMap;

use super::record::QueryRecord;

/// Why a query record gives no edge. Counted; unknown clients, consumers and services
/// are also kept with counts so an operator can fix the CMDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NoEdge {
    /// Not A, AAAA or ANY.
    QueryType,
    /// The name is in no configured zone.
    OutsideZone,
    /// Two labels (or none) below the zone: not a service name (qname-minimisation steps).
    NotAServiceName,
    /// `service.consumer…` names a consumer the CMDB does not have.
    UnknownConsumer,
    /// `service` asked by an address no container owns.
    UnknownClient,
    /// No container provides the service.
    UnknownService,
    /// The service exists but no other container serving traffic provides it.
    NoProvider,
}

impl NoEdge {
    pub const ALL: [NoEdge; 7] = [
        NoEdge::QueryType,
        NoEdge::OutsideZone,
        NoEdge::NotAServiceName,
        NoEdge::UnknownConsumer,
        NoEdge::UnknownClient,
        NoEdge::UnknownService,
        NoEdge::NoProvider,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NoEdge::QueryType => "query-type",
            NoEdge::OutsideZone => "outside-zone",
            NoEdge::NotAServiceName => "not-a-service-name",
            NoEdge::UnknownConsumer => "unknown-consumer",
            NoEdge::UnknownClient => "unknown-client",
            NoEdge::UnknownService => "unknown-service",
            NoEdge::NoProvider => "no-provider",
        }
    }
}

/// A resolved query: the consumer, the service, and the provider addresses of the tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved<'r> {
    pub consumer: u32,
    pub service: u32,
    pub targets: &'r [IpAddr],
}

/// The outcome for one record. `Unknown*` carry the offending value for the hygiene
/// counters (borrowed from the resolver's scratch buffer or the record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution<'r> {
    Edge(Resolved<'r>),
    NoEdge(NoEdge, Option<String>),
}

#[derive(Debug, Clone)]
struct Node {
    host: u32,
    dc: u32,
}

/// Providers of one service, grouped for the closest-tier rule. Addresses are stored per
/// provider so a consumer's own addresses can be left out.
#[derive(Debug, Clone, Default)]
struct ServiceProviders {
    /// (node index, its addresses), serving providers only.
    providers: Vec<(u32, Vec<IpAddr>)>,
}

/// The CMDB, indexed for resolution.
#[derive(Debug, Clone)]
pub struct Resolver {
    zones: Vec<String>,
    node_ids: Vec<i64>,
    node_names: Vec<String>,
    nodes: Vec<Node>,
    by_name: HashMap<String, u32>,
    by_ip: HashMap<IpAddr, u32>,
    service_names: Vec<String>,
    services: HashMap<String, u32>,
    providers: Vec<ServiceProviders>,
    /// Tier per (service, consumer), computed on first use.
    tiers: FxHashMap<(u32, u32), Vec<IpAddr>>,
    scratch: String,
}

impl Resolver {
    /// `zones` without leading or trailing dots, e.g. `example.com`.
    pub fn new(snapshot: &CmdbSnapshot, zones: &[String]) -> Resolver {
        let mut hosts: HashMap<&str, u32> = HashMap::new();
        let mut dcs: HashMap<&str, u32> = HashMap::new();
        let mut index_of_id = HashMap::new();
        let mut r = Resolver {
            zones: zones.iter().map(|z| z.trim_matches('.').to_ascii_lowercase()).collect(),
            node_ids: Vec::new(),
            node_names: Vec::new(),
            nodes: Vec::new(),
            by_name: HashMap::new(),
            by_ip: HashMap::new(),
            service_names: Vec::new(),
            services: HashMap::new(),
            providers: Vec::new(),
            tiers: FxHashMap::default(),
            scratch: String::new(),
        };
        for n in &snapshot.nodes {
            let idx = r.nodes.len() as u32;
            let next_host = hosts.len() as u32;
            let host = *hosts.entry(n.host.as_str()).or_insert(next_host);
            let next_dc = dcs.len() as u32;
            let dc = *dcs.entry(n.dc.as_str()).or_insert(next_dc);
            r.nodes.push(Node { host, dc });
            r.node_ids.push(n.id);
            r.node_names.push(n.name.clone());
            r.by_name.insert(n.name.to_ascii_lowercase(), idx);
            index_of_id.insert(n.id, idx);
        }
        let mut ips_of: HashMap<u32, Vec<IpAddr>> = HashMap::new();
        for (ip, node_id) in &snapshot.addresses {
            if let Some(&idx) = index_of_id.get(node_id) {
                r.by_ip.insert(*ip, idx);
                ips_of.entry(idx).or_default().push(*ip);
            }
        }
        for list in ips_of.values_mut() {
            list.sort();
        }
        for (service, node_id) in &snapshot.providers {
            let Some(&idx) = index_of_id.get(node_id) else {
                continue;
            };
            let next = r.service_names.len() as u32;
            let sid = *r.services.entry(service.to_ascii_lowercase()).or_insert(next);
            if sid == next {
                r.service_names.push(service.clone());
                r.providers.push(ServiceProviders::default());
            }
            if snapshot.nodes[idx as usize].serving {
                let ips = ips_of.get(&idx).cloned().unwrap_or_default();
                r.providers[sid as usize].providers.push((idx, ips));
            }
        }
        r
    }

    pub fn node_id(&self, idx: u32) -> i64 {
        self.node_ids[idx as usize]
    }

    pub fn node_name(&self, idx: u32) -> &str {
        &self.node_names[idx as usize]
    }

    pub fn service_name(&self, sid: u32) -> &str {
        &self.service_names[sid as usize]
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Applies the rules to one record.
    pub fn resolve(&mut self, record: &QueryRecord<'_>) -> Resolution<'_> {
        if !["A", "AAAA", "ANY"].iter().any(|t| record.qtype.eq_ignore_ascii_case(t)) {
            return Resolution::NoEdge(NoEdge::QueryType, None);
        }
        self.scratch.clear();
        let raw = record.qname.strip_suffix('.').unwrap_or(&record.qname);
        self.scratch.push_str(raw);
        self.scratch.make_ascii_lowercase();
        let name = self.scratch.as_str();

        let Some(labels) =
            self.zones.iter().find_map(|zone| {
                name.strip_suffix(zone.as_str()).and_then(|rest| {
                    if rest.is_empty() {
                        Some("")
                    } else {
                        rest.strip_suffix('.')
                    }
                })
            })
        else {
            return Resolution::NoEdge(NoEdge::OutsideZone, None);
        };
        if labels.is_empty() {
            return Resolution::NoEdge(NoEdge::NotAServiceName, None);
        }
        let (service, rest) = match labels.split_once('.') {
            Some((service, rest)) => (service, Some(rest)),
            None => (labels, None),
        };
        let consumer = match rest {
            None => match self.by_ip.get(&record.client) {
                Some(&idx) => idx,
                None => return Resolution::NoEdge(NoEdge::UnknownClient, Some(record.client.to_string())),
            },
            Some(rest) if !rest.contains('.') => return Resolution::NoEdge(NoEdge::NotAServiceName, None),
            Some(rest) => match self.by_name.get(rest) {
                Some(&idx) => idx,
                None => return Resolution::NoEdge(NoEdge::UnknownConsumer, Some(rest.to_string())),
            },
        };
        let Some(&sid) = self.services.get(service) else {
            return Resolution::NoEdge(NoEdge::UnknownService, Some(service.to_string()));
        };
        if !self.tiers.contains_key(&(sid, consumer)) {
            let tier = self.tier(sid, consumer);
            self.tiers.insert((sid, consumer), tier);
        }
        let targets = self.targets(sid, consumer);
        if targets.is_empty() {
            return Resolution::NoEdge(NoEdge::NoProvider, Some(self.service_names[sid as usize].clone()));
        }
        Resolution::Edge(Resolved { consumer, service: sid, targets })
    }

    /// The provider addresses a resolved (service, consumer) pair points at; empty for a
    /// pair this resolver has not resolved.
    pub fn targets(&self, service: u32, consumer: u32) -> &[IpAddr] {
        self.tiers.get(&(service, consumer)).map_or(&[], Vec::as_slice)
    }

    /// The closest tier of serving providers other than the consumer itself: its own
    /// host, else its own data center, else all.
    fn tier(&self, sid: u32, consumer: u32) -> Vec<IpAddr> {
        let me = &self.nodes[consumer as usize];
        let others: Vec<&(u32, Vec<IpAddr>)> =
            self.providers[sid as usize].providers.iter().filter(|(idx, _)| *idx != consumer).collect();
        let same_host: Vec<_> = others.iter().filter(|(idx, _)| self.nodes[*idx as usize].host == me.host).collect();
        let same_dc: Vec<_> = others.iter().filter(|(idx, _)| self.nodes[*idx as usize].dc == me.dc).collect();
        let chosen: Vec<&&(u32, Vec<IpAddr>)> = if !same_host.is_empty() {
            same_host
        } else if !same_dc.is_empty() {
            same_dc
        } else {
            others.iter().collect()
        };
        let mut ips: Vec<IpAddr> = chosen.iter().flat_map(|(_, ips)| ips.iter().copied()).collect();
        ips.sort();
        ips.dedup();
        ips
    }
}
