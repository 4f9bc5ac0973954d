//! The query plan of a generated fleet's logs: who asks what, when. One stream of queries
//! per seed, the same for every flavour, so the edges the logs give agree; how each is
//! written is [`super::logs`]' business.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::inventory::{Container, Fleet, SERVICES};
use super::rng::{Rng, STREAM_EVENTS};

/// 2026-11-22T02:00:00Z.
pub(super) const START_US: i64 = 1_795_312_800_000_000;
/// Mean time between two queries.
const MEAN_GAP_US: u64 = 400;

pub(super) const RESOLVER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 53);
pub(super) const SERVER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const OUTSIDE: [&str; 6] =
    ["www.google.com", "deb.debian.org", "ntp.ubuntu.com", "api.github.com", "notmyzone.org", "1.0.0.127.in-addr.arpa"];
const NOT_SERVICES: [&str; 5] = ["www", "metrics", "ldap", "smtp", "nosuch"];
const OTHER_TYPES: [&str; 7] = ["MX", "TXT", "SRV", "SOA", "PTR", "NS", "CAA"];

/// One query as the server saw it.
#[derive(Debug)]
pub(super) struct Query {
    /// Time since the previous query, in µs.
    pub(super) gap_us: i64,
    pub(super) client: Ipv4Addr,
    pub(super) qtype: &'static str,
    /// Whether the server has an answer (decides answer counts and rcodes).
    pub(super) answered: bool,
}

/// Draws the queries of one fleet, in order.
pub(super) struct Plan<'f> {
    fleet: &'f Fleet,
    /// The containers that use some service (indices of `fleet.containers`).
    consumers: Vec<usize>,
    events: Rng,
}

/// What one query is drawn from: the asking container and a service it uses.
struct Draw<'a> {
    zone: &'a str,
    consumer: &'a Container,
    service: &'static str,
}

impl<'f> Plan<'f> {
    pub(super) fn new(fleet: &'f Fleet, seed: u64) -> Plan<'f> {
        let consumers = (0..fleet.containers.len()).filter(|&i| !fleet.containers[i].uses.is_empty()).collect();
        Plan { fleet, consumers, events: Rng::new(seed, STREAM_EVENTS) }
    }

    /// The next query; its name goes into `qname`.
    ///
    /// About 88% resolve to edges (`service.consumer.zone` or bare `service.zone` from
    /// the consumer's own address, A/AAAA/ANY); the rest is the noise real logs carry.
    pub(super) fn next(&mut self, qname: &mut String) -> Query {
        let gap_us = self.events.range(0, 2 * MEAN_GAP_US) as i64;
        let fleet = self.fleet;
        let rng = &mut self.events;
        qname.clear();
        let roll = rng.below(1000);
        let consumer = &fleet.containers[rng.pick(&self.consumers)];
        let service = SERVICES[rng.pick(&consumer.uses)].name;
        let mut query = Query { gap_us, client: consumer.ip, qtype: "A", answered: true };
        let draw = Draw { zone: fleet.zone.as_str(), consumer, service };
        match roll {
            0..880 => resolvable(rng, &draw, &mut query, qname),
            880..905 => other_type(rng, &draw, &mut query, qname),
            905..930 => outside_the_zone(rng, &mut query, qname),
            930..945 => unknown_consumer(rng, &draw, fleet.hosts, &mut query, qname),
            945..960 => unknown_service(rng, &draw, &mut query, qname),
            960..975 => unowned_client(rng, &draw, &mut query, qname),
            975..995 => minimisation_step(rng, &draw, &mut query, qname),
            _ => zone_soa(&draw, &mut query, qname),
        }
        query
    }
}

/// `service.consumer.zone` (sometimes through the local resolver) or `service.zone` from
/// the consumer's own address.
fn resolvable(rng: &mut Rng, d: &Draw<'_>, query: &mut Query, q: &mut String) {
    query.qtype = match rng.below(100) {
        0..80 => "A",
        80..95 => "AAAA",
        _ => "ANY",
    };
    if rng.chance(70) {
        let _ = write!(q, "{}.{}.{}", d.service, d.consumer.name, d.zone);
        if rng.chance(10) {
            query.client = RESOLVER;
        }
    } else {
        let _ = write!(q, "{}.{}", d.service, d.zone);
    }
}

/// Another query type for a service name.
fn other_type(rng: &mut Rng, d: &Draw<'_>, query: &mut Query, q: &mut String) {
    query.qtype = rng.pick(&OTHER_TYPES);
    query.answered = false;
    let _ = write!(q, "{}.{}.{}", d.service, d.consumer.name, d.zone);
}

/// A name outside the zone.
fn outside_the_zone(rng: &mut Rng, query: &mut Query, q: &mut String) {
    q.push_str(rng.pick(&OUTSIDE));
    query.qtype = if rng.chance(80) { "A" } else { "AAAA" };
}

/// A consumer the CMDB does not know (a host beyond the fleet's `hosts`).
fn unknown_consumer(rng: &mut Rng, d: &Draw<'_>, hosts: usize, query: &mut Query, q: &mut String) {
    let host = hosts + 1 + rng.below(50);
    let _ = write!(q, "{}.be{}.host{host}.{}", d.service, 1 + rng.below(4), d.zone);
    query.answered = false;
}

/// A service nobody provides.
fn unknown_service(rng: &mut Rng, d: &Draw<'_>, query: &mut Query, q: &mut String) {
    let name = rng.pick(&NOT_SERVICES);
    if rng.chance(50) {
        let _ = write!(q, "{name}.{}", d.zone);
    } else {
        let _ = write!(q, "{name}.{}.{}", d.consumer.name, d.zone);
    }
    query.answered = false;
}

/// A bare service name from an address no container owns.
fn unowned_client(rng: &mut Rng, d: &Draw<'_>, query: &mut Query, q: &mut String) {
    let _ = write!(q, "{}.{}", d.service, d.zone);
    query.client = if rng.chance(50) { RESOLVER } else { Ipv4Addr::new(127, 0, 0, 2 + rng.below(40) as u8) };
}

/// A recursor's qname-minimisation step: `host.zone` or `container.zone`.
fn minimisation_step(rng: &mut Rng, d: &Draw<'_>, query: &mut Query, q: &mut String) {
    query.client = SERVER;
    if rng.chance(50) {
        let _ = write!(q, "{}.{}", d.consumer.host, d.zone);
    } else {
        let _ = write!(q, "{}.{}", d.consumer.name, d.zone);
    }
    query.answered = false;
}

/// The zone's SOA, as monitoring asks it.
fn zone_soa(d: &Draw<'_>, query: &mut Query, q: &mut String) {
    query.client = SERVER;
    query.qtype = "SOA";
    q.push_str(d.zone);
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::IpAddr;

    use super::super::tests::{ctx, log};
    use super::super::{Flavour, FleetSpec};
    use super::*;
    use crate::dns::parse::parse_line;
    use crate::dns::record::Parsed;

    /// The rules of `shared/fixtures/README.md` applied to the generated fleet: most
    /// queries give edges, and a consumer has about as many links as in the operators'
    /// fleet (≤ 10 on average).
    #[test]
    fn most_queries_resolve_and_consumers_have_a_few_links() {
        let spec = FleetSpec::default();
        let fleet = Fleet::generate(&spec);
        let by_name: HashMap<&str, &Container> = fleet.containers.iter().map(|c| (c.name.as_str(), c)).collect();
        let by_ip: HashMap<IpAddr, &Container> = fleet.containers.iter().map(|c| (IpAddr::V4(c.ip), c)).collect();
        let providers = |service: &str| -> Vec<&Container> {
            fleet.containers.iter().filter(|c| c.serving && c.provides == Some(service)).collect()
        };
        let suffix = format!(".{}", spec.zone);

        let text = log(&spec, Flavour::AuthPlain, 50_000);
        let (mut queries, mut resolved) = (0, 0);
        for line in text.split(|&b| b == b'\n') {
            let Parsed::Query(q) = parse_line(line, &ctx()) else { continue };
            queries += 1;
            let Some(name) = q.qname.strip_suffix(suffix.as_str()) else { continue };
            if !matches!(q.qtype, "A" | "AAAA" | "ANY") {
                continue;
            }
            let labels: Vec<&str> = name.split('.').collect();
            let consumer = match labels.len() {
                1 => by_ip.get(&q.client),
                2 => None,
                _ => by_name.get(labels[1..].join(".").as_str()),
            };
            if consumer.is_some() && !providers(labels[0]).is_empty() {
                resolved += 1;
            }
        }
        let share = resolved as f64 / queries as f64;
        assert!((0.8..0.95).contains(&share), "{resolved} of {queries} resolve");

        let mut links = 0;
        let consumers: Vec<&Container> = fleet.containers.iter().filter(|c| !c.uses.is_empty()).collect();
        for c in &consumers {
            for service in c.uses() {
                let all: Vec<&Container> = providers(service).into_iter().filter(|p| p.name != c.name).collect();
                let host: Vec<_> = all.iter().filter(|p| p.host == c.host).collect();
                let dc: Vec<_> = all.iter().filter(|p| p.dc == c.dc).collect();
                links += if !host.is_empty() {
                    host.len()
                } else if !dc.is_empty() {
                    dc.len()
                } else {
                    all.len()
                };
            }
        }
        let mean = links as f64 / consumers.len() as f64;
        assert!((2.0..=10.0).contains(&mean), "{mean} links per consumer");
    }
}
