//! The CMDB side of a generated fleet: data centres, hosts, containers with their roles,
//! addresses and services, and the inventory export that lists them.

use std::net::Ipv4Addr;
use std::ops::Range;

use serde::Serialize;

use super::rng::{Rng, STREAM_FLEET};
use super::FleetSpec;

/// A service the fleet provides, with its port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    pub name: &'static str,
    pub port: u16,
}

/// Every service a generated fleet provides.
pub const SERVICES: [Service; 7] = [
    Service { name: "api", port: 8080 },
    Service { name: "db1", port: 5432 },
    Service { name: "db2", port: 5432 },
    Service { name: "cache", port: 6379 },
    Service { name: "auth", port: 9000 },
    Service { name: "search", port: 9200 },
    Service { name: "queue", port: 5672 },
];

const API: usize = 0;
const DB1: usize = 1;
const DB2: usize = 2;
const CACHE: usize = 3;
const AUTH: usize = 4;
const SEARCH: usize = 5;
const QUEUE: usize = 6;

/// Roles in the order containers are listed on a host.
const ROLES: [&str; 6] = ["fe", "be", "db", "cache", "auth", "svc"];

/// One generated container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// `<role><n>.host<h>`.
    pub name: String,
    pub host: String,
    pub dc: String,
    pub role: &'static str,
    pub ip: Ipv4Addr,
    /// What it provides: no service or one of [`SERVICES`].
    pub provides: Option<&'static str>,
    pub serving: bool,
    /// The services it asks for (indices of [`SERVICES`]).
    pub(super) uses: Vec<usize>,
}

impl Container {
    /// The services this container asks DNS for.
    pub fn uses(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.uses.iter().map(|&s| SERVICES[s].name)
    }
}

/// A generated fleet.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub zone: String,
    /// Number of hosts (host names run `host1…host<hosts>`).
    pub hosts: usize,
    /// Containers by DC, host and role.
    pub containers: Vec<Container>,
}

impl Fleet {
    /// Generates the fleet `spec` describes.
    ///
    /// # Panics
    /// If `dcs`, `hosts` or `containers` is 0, or the fleet does not fit in 127.0.0.0/8.
    pub fn generate(spec: &FleetSpec) -> Fleet {
        generate(spec)
    }

    /// The inventory export (the format of `examples/sample-fleet/inventory.json`).
    pub fn inventory_json(&self) -> String {
        #[derive(Serialize)]
        struct Inventory<'a> {
            containers: Vec<InvContainer<'a>>,
            services: Vec<InvService>,
        }
        #[derive(Serialize)]
        struct InvContainer<'a> {
            name: &'a str,
            host: &'a str,
            dc: &'a str,
            role: &'a str,
            ips: [String; 1],
            services: Vec<&'a str>,
            serving: bool,
        }
        #[derive(Serialize)]
        struct InvService {
            name: &'static str,
            port: u16,
        }
        let inventory = Inventory {
            containers: self
                .containers
                .iter()
                .map(|c| InvContainer {
                    name: &c.name,
                    host: &c.host,
                    dc: &c.dc,
                    role: c.role,
                    ips: [c.ip.to_string()],
                    services: c.provides.into_iter().collect(),
                    serving: c.serving,
                })
                .collect(),
            services: SERVICES.iter().map(|s| InvService { name: s.name, port: s.port }).collect(),
        };
        let mut text = serde_json::to_string_pretty(&inventory).expect("plain structs of strings always serialize");
        text.push('\n');
        text
    }
}

/// Largest number of containers the packed address layout holds.
const MAX_CONTAINERS: usize = 255 * 256 * 254;

fn generate(spec: &FleetSpec) -> Fleet {
    assert!(
        spec.dcs > 0 && spec.hosts > 0 && spec.containers > 0,
        "a fleet needs at least one DC, host and container: {spec:?}"
    );
    assert!(
        spec.containers <= MAX_CONTAINERS,
        "{} containers do not fit in 127.0.0.0/8 (at most {MAX_CONTAINERS})",
        spec.containers
    );
    let mut rng = Rng::new(spec.seed, STREAM_FLEET);
    let blocks = DcBlocks { dcs: spec.dcs, hosts: spec.hosts };
    let per_host = containers_per_host(spec, &mut rng);
    let mut roles = assign_roles(&blocks, &per_host, &mut rng);
    let containers = name_and_address(&blocks, &mut roles, spec.containers, &mut rng);
    Fleet { zone: spec.zone.clone(), hosts: spec.hosts, containers }
}

/// The hosts of each DC, in contiguous blocks (hosts and DCs counted from 0).
struct DcBlocks {
    dcs: usize,
    hosts: usize,
}

impl DcBlocks {
    fn dc_of(&self, host: usize) -> usize {
        host * self.dcs / self.hosts
    }

    fn first_host_of(&self, dc: usize) -> usize {
        (dc * self.hosts).div_ceil(self.dcs)
    }

    fn hosts_of(&self, dc: usize) -> Range<usize> {
        self.first_host_of(dc)..self.first_host_of(dc + 1)
    }
}

/// Containers per host: one each, the rest spread at random (fewer containers than hosts
/// are spread evenly).
fn containers_per_host(spec: &FleetSpec, rng: &mut Rng) -> Vec<usize> {
    let hosts = spec.hosts;
    let mut per_host = vec![0usize; hosts];
    if spec.containers >= hosts {
        per_host.fill(1);
        for _ in hosts..spec.containers {
            per_host[rng.below(hosts)] += 1;
        }
    } else {
        for i in 0..spec.containers {
            per_host[i * hosts / spec.containers] += 1;
        }
    }
    per_host
}

/// Roles, one DC at a time: a few replicas of each shared service on random slots,
/// frontends and backends everywhere else.
fn assign_roles(blocks: &DcBlocks, per_host: &[usize], rng: &mut Rng) -> Vec<Vec<Slot>> {
    let mut roles: Vec<Vec<Slot>> = per_host.iter().map(|&n| vec![Slot::App; n]).collect();
    for d in 0..blocks.dcs {
        let mut slots: Vec<(usize, usize)> =
            blocks.hosts_of(d).flat_map(|h| (0..per_host[h]).map(move |s| (h, s))).collect();
        let infra = infra_quota(slots.len());
        rng.shuffle(&mut slots);
        for (&(h, s), service) in slots.iter().zip(infra) {
            roles[h][s] = Slot::Provider(service);
        }
        for h in blocks.hosts_of(d) {
            let apps: Vec<usize> = (0..per_host[h]).filter(|&s| roles[h][s] == Slot::App).collect();
            for (i, &s) in apps.iter().enumerate() {
                let fe = i == 0 && apps.len() >= 2 && rng.chance(60);
                roles[h][s] = if fe { Slot::Frontend } else { Slot::Backend };
            }
        }
    }
    roles
}

/// The containers, host by host, each host's sorted by role: names, addresses (the
/// readable layout while the fleet fits it, the packed one otherwise), whether they
/// serve, and what they use.
fn name_and_address(blocks: &DcBlocks, roles: &mut [Vec<Slot>], count: usize, rng: &mut Rng) -> Vec<Container> {
    let max_dc_hosts = (0..blocks.dcs).map(|d| blocks.hosts_of(d).len()).max().unwrap_or(0);
    let readable = blocks.dcs <= 254 && max_dc_hosts <= 254 && roles.iter().all(|slots| slots.len() <= 254);
    let mut containers = Vec::with_capacity(count);
    for (h, host_roles) in roles.iter_mut().enumerate() {
        host_roles.sort_by_key(|slot| slot.role_rank());
        let d = blocks.dc_of(h);
        let host = format!("host{}", h + 1);
        let mut counters = [0usize; ROLES.len()];
        for (s, slot) in host_roles.iter().enumerate() {
            let rank = slot.role_rank();
            counters[rank] += 1;
            let role = ROLES[rank];
            let ip = if readable {
                Ipv4Addr::new(127, (d + 1) as u8, (h - blocks.first_host_of(d) + 1) as u8, (s + 1) as u8)
            } else {
                packed_ip(containers.len())
            };
            containers.push(Container {
                name: format!("{role}{}.{host}", counters[rank]),
                host: host.clone(),
                dc: format!("dc{}", d + 1),
                role,
                ip,
                provides: slot.provides().map(|s| SERVICES[s].name),
                serving: !rng.chance(2),
                uses: slot.uses(rng),
            });
        }
    }
    containers
}

/// The `i`th address of the packed layout.
fn packed_ip(i: usize) -> Ipv4Addr {
    let (block, low) = (i / 254, i % 254 + 1);
    let (second, third) = (1 + block / 256, block % 256);
    Ipv4Addr::new(127, second as u8, third as u8, low as u8)
}

/// Which shared services a DC of `n` containers gets, one entry per replica, most
/// important first; at most a third of the DC's containers.
fn infra_quota(n: usize) -> Vec<usize> {
    let r = (n / 250).clamp(2, 5);
    let wanted = [(DB1, r), (CACHE, r + 1), (AUTH, r), (DB2, r), (SEARCH, 2), (QUEUE, 2)];
    let budget = n / 3;
    let mut out = Vec::new();
    for round in 0.. {
        let before = out.len();
        for &(service, want) in &wanted {
            if round < want && out.len() < budget {
                out.push(service);
            }
        }
        if out.len() == before {
            break;
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    App,
    Frontend,
    Backend,
    Provider(usize),
}

impl Slot {
    /// Index into [`ROLES`].
    fn role_rank(self) -> usize {
        match self {
            Slot::App | Slot::Backend => 1,
            Slot::Frontend => 0,
            Slot::Provider(DB1 | DB2) => 2,
            Slot::Provider(CACHE) => 3,
            Slot::Provider(AUTH) => 4,
            Slot::Provider(_) => 5,
        }
    }

    fn provides(self) -> Option<usize> {
        match self {
            Slot::App | Slot::Backend => Some(API),
            Slot::Frontend => None,
            Slot::Provider(s) => Some(s),
        }
    }

    fn uses(self, rng: &mut Rng) -> Vec<usize> {
        match self {
            Slot::Frontend => {
                let mut uses = vec![API];
                if rng.chance(40) {
                    uses.push(AUTH);
                }
                uses
            }
            Slot::App | Slot::Backend => {
                let mut uses: Vec<usize> = [(DB1, 60), (DB2, 40), (CACHE, 70), (AUTH, 30), (SEARCH, 20), (QUEUE, 25)]
                    .into_iter()
                    .filter(|&(_, percent)| rng.chance(percent))
                    .map(|(s, _)| s)
                    .collect();
                if uses.is_empty() {
                    uses.push(CACHE);
                }
                uses
            }
            Slot::Provider(AUTH) => vec![DB2],
            Slot::Provider(SEARCH) => vec![CACHE],
            Slot::Provider(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::super::tests::small;
    use super::super::{inventory_json, FleetSpec};
    use super::*;

    #[test]
    fn the_default_fleet_has_unique_names_and_loopback_addresses() {
        let fleet = Fleet::generate(&FleetSpec::default());
        assert_eq!(fleet.containers.len(), 5000);
        let names: HashSet<&str> = fleet.containers.iter().map(|c| c.name.as_str()).collect();
        let ips: HashSet<Ipv4Addr> = fleet.containers.iter().map(|c| c.ip).collect();
        assert_eq!((names.len(), ips.len()), (5000, 5000));
        let hosts: HashSet<&str> = fleet.containers.iter().map(|c| c.host.as_str()).collect();
        let dcs: HashSet<&str> = fleet.containers.iter().map(|c| c.dc.as_str()).collect();
        assert_eq!((hosts.len(), dcs.len()), (1000, 6));
        for c in &fleet.containers {
            let [a, b, _, d] = c.ip.octets();
            assert!(a == 127 && b != 0 && d != 0 && d != 255, "{c:?}");
            // The readable layout: 127.<dc>.<host in dc>.<slot>.
            assert_eq!(format!("dc{b}"), c.dc, "{c:?}");
            let (head, host) = c.name.split_once('.').unwrap();
            assert_eq!(host, c.host);
            assert!(head.starts_with(c.role), "{c:?}");
            assert!(head[c.role.len()..].parse::<u32>().is_ok(), "{c:?}");
        }
        let serving = fleet.containers.iter().filter(|c| c.serving).count();
        assert!((4800..5000).contains(&serving), "{serving} serving");
    }

    #[test]
    fn a_fleet_too_big_for_the_readable_layout_is_packed_into_loopback() {
        for spec in [
            FleetSpec { hosts: 2, containers: 600, dcs: 1, ..small() },
            FleetSpec { hosts: 2000, containers: 3000, dcs: 2, ..small() },
        ] {
            let fleet = Fleet::generate(&spec);
            let ips: HashSet<Ipv4Addr> = fleet.containers.iter().map(|c| c.ip).collect();
            assert_eq!(ips.len(), spec.containers);
            assert!(ips.iter().all(|ip| {
                let [a, b, _, d] = ip.octets();
                a == 127 && b != 0 && d != 0 && d != 255
            }));
        }
        assert_eq!(packed_ip(0), Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(packed_ip(254), Ipv4Addr::new(127, 1, 1, 1));
        assert_eq!(packed_ip(MAX_CONTAINERS - 1), Ipv4Addr::new(127, 255, 255, 254));
    }

    #[test]
    fn the_inventory_is_one_the_cmdb_import_accepts() {
        let spec = FleetSpec::default();
        let text = inventory_json(&spec);
        let inventory =
            crate::cmdb::parse_inventory_json("inventory.json", text.as_bytes()).expect("a valid inventory");
        assert_eq!(inventory.containers.len(), 5000);
        let services: HashSet<&str> = inventory.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(services, SERVICES.iter().map(|s| s.name).collect());
    }
}
