//! A synthetic fleet, the same bytes for the same seed: the CMDB inventory export and
//! PowerDNS query logs in each flavour the parsers read. For tests, demos and the
//! benchmarks (`make bench`); it writes only to the writer it is given.
//!
//! The fleet: `dcs` data centres `dc1…dcN`, hosts `host1…hostN` in contiguous blocks per
//! DC, containers `<role><n>.host<h>`. Most containers are frontends (`fe`, consuming `api`)
//! and backends (`be`, providing `api`, consuming shared services); each DC has a few
//! replicas of the shared services (`db1`, `db2`, `cache`, `auth`, `search`, `queue`), so a
//! consumer has a handful of links, as in the operators' fleet. A frontend always has a
//! backend on its own host. About 2% of containers do not serve traffic.
//!
//! Addresses are all in 127.0.0.0/8, one per container, so a generated fleet can also be
//! probed on one machine:
//! - while it fits (≤ 254 DCs, ≤ 254 hosts per DC, ≤ 254 containers per host, which covers
//!   the operators' 6 DCs / 1,000 hosts / 5,000 containers), `127.<dc>.<host in dc>.<slot>`;
//! - otherwise (100× that, say) containers are numbered in order and packed into
//!   `127.1.0.1` … `127.255.255.254`, skipping `.0` and `.255` last octets: up to
//!   16,581,120 containers. Larger fleets are refused.
//!
//! `127.0.0.0/16` is never a container's: the logs use it for clients no container owns
//! (the local resolver `127.0.0.53`, the server's own `127.0.0.1`).
//!
//! The logs: the same seed gives the same sequence of queries in every flavour (so the
//! edges they give agree); how each query is written (ports, thread ids, cache hits,
//! answer lines) is drawn from a second stream per flavour. About 88% of the queries
//! resolve to edges (`service.consumer.zone` or bare `service.zone` from the consumer's
//! own address, A/AAAA/ANY); the rest is the noise real logs carry: other query types,
//! names outside the zone, unknown consumers, services and clients, qname-minimisation
//! steps and the zone's SOA. Time starts at 2026-11-22T02:00:00Z and advances about
//! 400 µs per query.
//!
//! The generator, by what it makes:
//! - `inventory`: the fleet itself and its inventory export (the CMDB side);
//! - `plan`: who asks what when, the same for every flavour;
//! - `logs`: each flavour's lines for those queries, one module per flavour;
//! - `rng`: the seeded random streams the three draw from.

mod inventory;
mod logs;
mod plan;
mod rng;

use std::io::{self, Write};

pub use inventory::{Container, Fleet, Service, SERVICES};
pub use logs::Flavour;

/// What fleet to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetSpec {
    pub seed: u64,
    pub dcs: usize,
    pub hosts: usize,
    pub containers: usize,
    /// The zone holding the service names.
    pub zone: String,
}

impl Default for FleetSpec {
    /// The operators' fleet: 6 DCs, 1,000 hosts, 5,000 containers, zone `example.com`.
    fn default() -> Self {
        FleetSpec { seed: 1, dcs: 6, hosts: 1000, containers: 5000, zone: "example.com".to_owned() }
    }
}

/// The inventory export of the fleet `spec` describes (see [`Fleet::generate`]).
pub fn inventory_json(spec: &FleetSpec) -> String {
    Fleet::generate(spec).inventory_json()
}

/// Writes `lines` lines of a `flavour` query log of the fleet `spec` describes.
///
/// # Panics
/// As [`Fleet::generate`].
pub fn write_log(spec: &FleetSpec, flavour: Flavour, lines: u64, out: &mut impl Write) -> io::Result<()> {
    let fleet = Fleet::generate(spec);
    logs::LogGen::new(&fleet, spec.seed, flavour).run(lines, out, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::record::ParseContext;

    pub(super) fn small() -> FleetSpec {
        FleetSpec { seed: 7, dcs: 3, hosts: 40, containers: 200, ..FleetSpec::default() }
    }

    pub(super) fn log(spec: &FleetSpec, flavour: Flavour, lines: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_log(spec, flavour, lines, &mut out).unwrap();
        out
    }

    /// An hour after the logs start, as the parsers see them.
    pub(super) fn ctx() -> ParseContext {
        ParseContext { now_us: plan::START_US + 3_600_000_000, local_offset_secs: 0 }
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        let spec = small();
        assert_eq!(inventory_json(&spec), inventory_json(&spec));
        let other = FleetSpec { seed: 8, ..small() };
        assert_ne!(inventory_json(&spec), inventory_json(&other));
        for flavour in Flavour::ALL {
            let a = log(&spec, flavour, 5_000);
            assert_eq!(a, log(&spec, flavour, 5_000), "{flavour}");
            assert_ne!(a, log(&other, flavour, 5_000), "{flavour}");
            // A shorter log is a prefix of a longer one.
            assert!(a.starts_with(&log(&spec, flavour, 1_000)), "{flavour}");
        }
    }
}
