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

use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use serde::Serialize;

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
    uses: Vec<usize>,
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

/// The inventory export of the fleet `spec` describes (see [`Fleet::generate`]).
pub fn inventory_json(spec: &FleetSpec) -> String {
    Fleet::generate(spec).inventory_json()
}

/// A query-log flavour, as written by a real PowerDNS set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavour {
    /// Authoritative 4.7, `log-dns-queries=yes`, stderr with its own `%b %d %H:%M:%S`.
    AuthConsole,
    /// The same with `--log-timestamp=no` (the systemd unit's journal).
    AuthPlain,
    /// The same through rsyslog into Debian 12's `/var/log/syslog` (RFC 3339 time).
    AuthSyslog,
    /// Recursor 4.8, `structured-logging=no`: questions, answers, nameless cache hits.
    RecursorOld,
    /// Recursor 4.8, `structured-logging=yes`: `msg="Question" … qname="…"` lines.
    RecursorStructured,
    /// The pipe backend's `Q` lines (ABI 2), as the coprocess reads them.
    Pipe,
    /// Recursor 4.8 with the systemd-journal backend, `journalctl -o json`.
    JournaldJson,
}

impl Flavour {
    pub const ALL: [Flavour; 7] = [
        Flavour::AuthConsole,
        Flavour::AuthPlain,
        Flavour::AuthSyslog,
        Flavour::RecursorOld,
        Flavour::RecursorStructured,
        Flavour::Pipe,
        Flavour::JournaldJson,
    ];

    /// The name on the command line: `auth-console`, `rec-old`, `journald-json`, ….
    pub fn name(self) -> &'static str {
        match self {
            Flavour::AuthConsole => "auth-console",
            Flavour::AuthPlain => "auth-plain",
            Flavour::AuthSyslog => "auth-syslog",
            Flavour::RecursorOld => "rec-old",
            Flavour::RecursorStructured => "rec-structured",
            Flavour::Pipe => "pipe",
            Flavour::JournaldJson => "journald-json",
        }
    }

    /// The log's file name, as in `examples/sample-fleet`: `pdns-<name>.log`.
    pub fn file_name(self) -> String {
        format!("pdns-{}.log", self.name())
    }

    fn index(self) -> u64 {
        Flavour::ALL.iter().position(|&f| f == self).unwrap_or(0) as u64
    }
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Flavour {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Flavour::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Flavour::ALL.iter().map(|f| f.name()).collect();
            format!("unknown flavour {s:?}; one of {}", names.join(", "))
        })
    }
}

/// Writes `lines` lines of a `flavour` query log of the fleet `spec` describes.
///
/// # Panics
/// As [`Fleet::generate`].
pub fn write_log(spec: &FleetSpec, flavour: Flavour, lines: u64, out: &mut impl Write) -> io::Result<()> {
    let fleet = Fleet::generate(spec);
    LogGen::new(&fleet, spec.seed, flavour).run(lines, out, None)
}

// ---------------------------------------------------------------------------------------
// Randomness: SplitMix64, so the bytes never change with a dependency's version.

const STREAM_FLEET: u64 = 1;
const STREAM_EVENTS: u64 = 2;
const STREAM_DECOR: u64 = 16;

#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below((hi - lo + 1) as usize) as u64
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u32) -> bool {
        self.below(10_000) < percent as usize * 100
    }

    /// True with probability `permille`/1000.
    fn chance_permille(&mut self, permille: u32) -> bool {
        self.below(1000) < permille as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------
// The fleet.

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
    let (dcs, hosts) = (spec.dcs, spec.hosts);

    // Containers per host: one each, the rest spread at random.
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
    let dc_of = |h: usize| h * dcs / hosts;
    let first_host_of = |d: usize| (d * hosts).div_ceil(dcs);

    // Roles, one DC at a time: a few replicas of each shared service on random slots,
    // frontends and backends everywhere else.
    let mut roles: Vec<Vec<Slot>> = per_host.iter().map(|&n| vec![Slot::App; n]).collect();
    for d in 0..dcs {
        let dc_hosts = first_host_of(d)..first_host_of(d + 1);
        let mut slots: Vec<(usize, usize)> =
            dc_hosts.clone().flat_map(|h| (0..per_host[h]).map(move |s| (h, s))).collect();
        let infra = infra_quota(slots.len());
        shuffle(&mut rng, &mut slots);
        for (&(h, s), service) in slots.iter().zip(infra) {
            roles[h][s] = Slot::Provider(service);
        }
        for h in dc_hosts {
            let apps: Vec<usize> = (0..per_host[h]).filter(|&s| roles[h][s] == Slot::App).collect();
            for (i, &s) in apps.iter().enumerate() {
                let fe = i == 0 && apps.len() >= 2 && rng.chance(60);
                roles[h][s] = if fe { Slot::Frontend } else { Slot::Backend };
            }
        }
    }

    // Names and addresses, host by host.
    let max_dc_hosts = (0..dcs).map(|d| first_host_of(d + 1) - first_host_of(d)).max().unwrap_or(0);
    let readable = dcs <= 254 && max_dc_hosts <= 254 && per_host.iter().all(|&n| n <= 254);
    let mut containers = Vec::with_capacity(spec.containers);
    for (h, host_roles) in roles.iter_mut().enumerate() {
        host_roles.sort_by_key(|slot| slot.role_rank());
        let d = dc_of(h);
        let host = format!("host{}", h + 1);
        let mut counters = [0usize; ROLES.len()];
        for (s, slot) in host_roles.iter().enumerate() {
            let rank = slot.role_rank();
            counters[rank] += 1;
            let role = ROLES[rank];
            let ip = if readable {
                Ipv4Addr::new(127, (d + 1) as u8, (h - first_host_of(d) + 1) as u8, (s + 1) as u8)
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
                uses: slot.uses(&mut rng),
            });
        }
    }
    Fleet { zone: spec.zone.clone(), hosts, containers }
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

fn shuffle<T>(rng: &mut Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i + 1));
    }
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

// ---------------------------------------------------------------------------------------
// The logs.

/// 2026-11-22T02:00:00Z.
const START_US: i64 = 1_795_312_800_000_000;
/// Mean time between two queries.
const MEAN_GAP_US: u64 = 400;

const RESOLVER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 53);
const SERVER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const OUTSIDE: [&str; 6] =
    ["www.google.com", "deb.debian.org", "ntp.ubuntu.com", "api.github.com", "notmyzone.org", "1.0.0.127.in-addr.arpa"];
const NOT_SERVICES: [&str; 5] = ["www", "metrics", "ldap", "smtp", "nosuch"];
const OTHER_TYPES: [&str; 7] = ["MX", "TXT", "SRV", "SOA", "PTR", "NS", "CAA"];

/// What a line is expected to give when parsed: a query record, or nothing.
type Expected = Option<(IpAddr, String, &'static str)>;

/// One query as the server saw it.
#[derive(Debug)]
struct Query {
    client: Ipv4Addr,
    qtype: &'static str,
    /// Whether the server has an answer (decides answer counts and rcodes).
    answered: bool,
}

struct LogGen<'f> {
    fleet: &'f Fleet,
    flavour: Flavour,
    consumers: Vec<usize>,
    events: Rng,
    decor: Rng,
    now_us: i64,
    /// The second the cached time texts are for, and the texts.
    clock_sec: i64,
    console: String,
    iso: String,
    mtid: [u32; 4],
    qname: String,
    line: Vec<u8>,
    out: Vec<u8>,
    left: u64,
}

impl<'f> LogGen<'f> {
    fn new(fleet: &'f Fleet, seed: u64, flavour: Flavour) -> LogGen<'f> {
        let consumers = (0..fleet.containers.len()).filter(|&i| !fleet.containers[i].uses.is_empty()).collect();
        LogGen {
            fleet,
            flavour,
            consumers,
            events: Rng::new(seed, STREAM_EVENTS),
            decor: Rng::new(seed, STREAM_DECOR + flavour.index()),
            now_us: START_US,
            clock_sec: i64::MIN,
            console: String::new(),
            iso: String::new(),
            mtid: [0; 4],
            qname: String::new(),
            line: Vec::with_capacity(512),
            out: Vec::with_capacity(1 << 16),
            left: 0,
        }
    }

    /// Writes `lines` lines to `out`; with `expect`, also what each line should parse to.
    fn run(&mut self, lines: u64, out: &mut impl Write, mut expect: Option<&mut Vec<Expected>>) -> io::Result<()> {
        self.left = lines;
        self.startup(&mut expect);
        while self.left > 0 {
            let query = self.next_query();
            self.write_query(&query, &mut expect);
            if self.out.len() >= 1 << 16 {
                out.write_all(&self.out)?;
                self.out.clear();
            }
        }
        out.write_all(&self.out)?;
        self.out.clear();
        out.flush()
    }

    // -- what is asked ------------------------------------------------------------------

    /// The next query (into `self.qname`), drawn from the flavour-independent stream.
    fn next_query(&mut self) -> Query {
        self.now_us += self.events.range(0, 2 * MEAN_GAP_US) as i64;
        let fleet = self.fleet;
        let zone = fleet.zone.as_str();
        let rng = &mut self.events;
        let q = &mut self.qname;
        q.clear();
        let roll = rng.below(1000);
        let consumer = &fleet.containers[rng.pick(&self.consumers)];
        let service = SERVICES[rng.pick(&consumer.uses)].name;
        let mut query = Query { client: consumer.ip, qtype: "A", answered: true };
        use std::fmt::Write as _;
        match roll {
            // Resolvable: `service.consumer.zone` (sometimes through the local resolver)
            // or `service.zone` from the consumer's own address.
            0..880 => {
                query.qtype = match rng.below(100) {
                    0..80 => "A",
                    80..95 => "AAAA",
                    _ => "ANY",
                };
                if rng.chance(70) {
                    let _ = write!(q, "{service}.{}.{zone}", consumer.name);
                    if rng.chance(10) {
                        query.client = RESOLVER;
                    }
                } else {
                    let _ = write!(q, "{service}.{zone}");
                }
            }
            // Another query type for a service name.
            880..905 => {
                query.qtype = rng.pick(&OTHER_TYPES);
                query.answered = false;
                let _ = write!(q, "{service}.{}.{zone}", consumer.name);
            }
            // Outside the zone.
            905..930 => {
                q.push_str(rng.pick(&OUTSIDE));
                query.qtype = if rng.chance(80) { "A" } else { "AAAA" };
            }
            // A consumer the CMDB does not know (a host beyond the fleet).
            930..945 => {
                let host = fleet.hosts + 1 + rng.below(50);
                let _ = write!(q, "{service}.be{}.host{host}.{zone}", 1 + rng.below(4));
                query.answered = false;
            }
            // A service nobody provides.
            945..960 => {
                let name = rng.pick(&NOT_SERVICES);
                if rng.chance(50) {
                    let _ = write!(q, "{name}.{zone}");
                } else {
                    let _ = write!(q, "{name}.{}.{zone}", consumer.name);
                }
                query.answered = false;
            }
            // A bare service name from an address no container owns.
            960..975 => {
                let _ = write!(q, "{service}.{zone}");
                query.client =
                    if rng.chance(50) { RESOLVER } else { Ipv4Addr::new(127, 0, 0, 2 + rng.below(40) as u8) };
            }
            // qname-minimisation steps of a recursor: `host.zone`, `container.zone`.
            975..995 => {
                query.client = SERVER;
                if rng.chance(50) {
                    let _ = write!(q, "{}.{zone}", consumer.host);
                } else {
                    let _ = write!(q, "{}.{zone}", consumer.name);
                }
                query.answered = false;
            }
            // The zone's SOA, as monitoring asks it.
            _ => {
                query.client = SERVER;
                query.qtype = "SOA";
                q.push_str(zone);
            }
        }
        query
    }

    // -- how it is written --------------------------------------------------------------

    fn startup(&mut self, expect: &mut Option<&mut Vec<Expected>>) {
        match self.flavour {
            Flavour::AuthConsole | Flavour::AuthPlain | Flavour::AuthSyslog => {
                if self.flavour == Flavour::AuthSyslog {
                    self.begin_line();
                    self.line.truncate(self.line.len() - "pdns[1187]: ".len());
                    self.line.extend_from_slice(
                        b"rsyslogd: [origin software=\"rsyslogd\" swVersion=\"8.2302.0\" \
                          x-pid=\"1183\" x-info=\"https://www.rsyslog.com\"] start",
                    );
                    self.emit(None, expect);
                }
                for message in AUTH_STARTUP {
                    self.tick(0, 400);
                    self.begin_line();
                    self.line.extend_from_slice(message.as_bytes());
                    self.emit(None, expect);
                }
            }
            Flavour::RecursorOld => {
                for message in RECURSOR_OLD_STARTUP {
                    self.begin_line();
                    self.line.extend_from_slice(message.as_bytes());
                    self.emit(None, expect);
                }
            }
            Flavour::RecursorStructured => {
                for message in RECURSOR_STRUCTURED_STARTUP {
                    self.tick(0, 300);
                    self.begin_line();
                    let ts = self.ts_ms();
                    self.line.extend_from_slice(message.replace("{ts}", &ts).as_bytes());
                    self.emit(None, expect);
                }
            }
            Flavour::Pipe => {
                for _ in 0..3 {
                    self.line.extend_from_slice(b"HELO\t2");
                    self.emit(None, expect);
                }
            }
            Flavour::JournaldJson => {
                for (priority, subsystem, message) in JOURNALD_STARTUP {
                    self.tick(0, 300);
                    let (rt, ts) = (self.now_us.to_string(), self.ts_ms());
                    let _ = write!(
                        self.line,
                        "{{\"_TRANSPORT\": \"journal\", \"PRIORITY\": \"{priority}\", \
                         \"SUBSYSTEM\": \"{subsystem}\", \"__REALTIME_TIMESTAMP\": \"{rt}\", \
                         \"SYSLOG_IDENTIFIER\": \"pdns_recursor\", \"_HOSTNAME\": \"ns1\", \
                         \"MESSAGE\": \"{message}\", \"TIMESTAMP\": \"{ts}\", \"TID\": \"0\", \
                         \"LEVEL\": \"0\", \"_PID\": \"1211\"}}"
                    );
                    self.emit(None, expect);
                }
            }
        }
    }

    fn write_query(&mut self, q: &Query, expect: &mut Option<&mut Vec<Expected>>) {
        match self.flavour {
            Flavour::AuthConsole | Flavour::AuthPlain | Flavour::AuthSyslog => self.auth_line(q, expect),
            Flavour::RecursorOld => self.recursor_old(q, expect),
            Flavour::RecursorStructured => self.recursor_structured(q, expect),
            Flavour::Pipe => self.pipe(q, expect),
            Flavour::JournaldJson => self.journald(q, expect),
        }
    }

    fn auth_line(&mut self, q: &Query, expect: &mut Option<&mut Vec<Expected>>) {
        self.begin_line();
        let rng = &mut self.decor;
        let tcp = if rng.chance_permille(15) { "TCP " } else { "" };
        let _ = write!(self.line, "{tcp}Remote {}", q.client);
        if rng.chance_permille(10) {
            let _ = write!(self.line, "<-10.{}.{}.0/24", rng.below(256), rng.below(256));
        }
        let dnssec_ok = u8::from(rng.chance(5));
        let bufsize = match rng.below(100) {
            0..3 => "512",
            3..8 => "4096",
            8..9 => "1232 (4096)",
            _ => "1232",
        };
        let cache = if rng.chance(65) { "HIT" } else { "MISS" };
        let _ = write!(
            self.line,
            " wants '{}|{}', do = {dnssec_ok}, bufsize = {bufsize}: packetcache {cache}",
            self.qname, q.qtype
        );
        self.emit_query(q, expect);
    }

    fn recursor_old(&mut self, q: &Query, expect: &mut Option<&mut Vec<Expected>>) {
        let (tid, port) = (self.decor.range(1, 3) as usize, self.port());
        if self.decor.chance(30) {
            self.begin_line();
            let _ = write!(self.line, "{tid} question answered from packet cache tag=0 from {}:{port}", q.client);
            return self.emit(None, expect);
        }
        self.mtid[tid] += 1;
        let mtid = self.mtid[tid];
        self.begin_line();
        let tcp = if self.decor.chance_permille(15) { "TCP " } else { "" };
        let _ = write!(
            self.line,
            "{tid} [{mtid}/1] {tcp}question for '{}|{}' from {}:{port}",
            self.qname, q.qtype, q.client
        );
        if self.decor.chance_permille(10) {
            self.line.extend_from_slice(b" (ecs 10.9.8.0/24)");
        }
        self.emit_query(q, expect);

        let (netw, tot, packets) = self.answer_times();
        self.tick(netw, tot);
        self.begin_line();
        let (answers, rcode) = answer_counts(q, &mut self.decor);
        let _ = write!(
            self.line,
            "{tid} [{mtid}/1] answer to question '{}|{}': {answers} answers, 1 additional, \
             took {packets} packets, {} netw ms, {} tot ms, 0 throttled, 0 timeouts, \
             0/0 tcp/dot connections, rcode={rcode}",
            self.qname,
            q.qtype,
            Millis(netw, 3),
            Millis(tot, 3),
        );
        self.emit(None, expect);
    }

    fn recursor_structured(&mut self, q: &Query, expect: &mut Option<&mut Vec<Expected>>) {
        let (tid, port) = (self.decor.range(1, 3) as usize, self.port());
        let proto = if self.decor.chance_permille(15) { "tcp" } else { "udp" };
        self.begin_line();
        let ts = self.ts_ms();
        if self.decor.chance(30) {
            let _ = write!(
                self.line,
                "msg=\"Question answered from packet cache\" subsystem=\"in\" level=\"0\" \
                 prio=\"Notice\" tid=\"{tid}\" ts=\"{ts}\" proto=\"{proto}\" qname=\"{}\" \
                 qtype=\"{}\" remote=\"{c}:{port}\" source=\"{c}:{port}\" tag=\"0\"",
                self.qname,
                q.qtype,
                c = q.client,
            );
            return self.emit_query(q, expect);
        }
        self.mtid[tid] += 1;
        let mtid = self.mtid[tid];
        let ecs = if self.decor.chance_permille(10) { "10.9.8.0/24" } else { "" };
        let _ = write!(
            self.line,
            "msg=\"Question\" subsystem=\"syncres\" level=\"0\" prio=\"Info\" tid=\"{tid}\" \
             ts=\"{ts}\" ecs=\"{ecs}\" mtid=\"{mtid}\" proto=\"{proto}\" qname=\"{}\" \
             qtype=\"{}\" remote=\"{}:{port}\"",
            self.qname, q.qtype, q.client,
        );
        self.emit_query(q, expect);

        let (netw, tot, packets) = self.answer_times();
        self.tick(netw, tot);
        self.begin_line();
        let ts = self.ts_ms();
        let (answers, rcode) = answer_counts(q, &mut self.decor);
        let _ = write!(
            self.line,
            "msg=\"Answer\" subsystem=\"syncres\" level=\"0\" prio=\"Info\" tid=\"{tid}\" \
             ts=\"{ts}\" additional=\"1\" answers=\"{answers}\" dotout=\"0\" ecs=\"{ecs}\" \
             mtid=\"{mtid}\" netms=\"{}\" outqueries=\"{packets}\" proto=\"{proto}\" \
             qname=\"{}\" qtype=\"{}\" rcode=\"{rcode}\" rd=\"1\" remote=\"{}:{port}\" \
             tcpout=\"0\" throttled=\"0\" timeouts=\"0\" totms=\"{}\" \
             validationState=\"Indeterminate\"",
            Millis(netw, 6),
            self.qname,
            q.qtype,
            q.client,
            Millis(tot, 6),
        );
        self.emit(None, expect);
    }

    fn journald(&mut self, q: &Query, expect: &mut Option<&mut Vec<Expected>>) {
        let (tid, port) = (self.decor.range(1, 3) as usize, self.port());
        let (rt, ts) = (self.now_us, self.ts_ms());
        if self.decor.chance(30) {
            let _ = write!(
                self.line,
                "{{\"_HOSTNAME\": \"ns1\", \"_TRANSPORT\": \"journal\", \"SOURCE\": \"{c}:{port}\", \
                 \"_PID\": \"1211\", \"SUBSYSTEM\": \"in\", \
                 \"MESSAGE\": \"Question answered from packet cache\", \"LEVEL\": \"0\", \
                 \"PRIORITY\": \"5\", \"QNAME\": \"{}\", \"QTYPE\": \"{}\", \"TID\": \"{tid}\", \
                 \"__REALTIME_TIMESTAMP\": \"{rt}\", \"PROTO\": \"udp\", \
                 \"REMOTE\": \"{c}:{port}\", \"TIMESTAMP\": \"{ts}\", \
                 \"SYSLOG_IDENTIFIER\": \"pdns_recursor\"}}",
                self.qname,
                q.qtype,
                c = q.client,
            );
            return self.emit_query(q, expect);
        }
        self.mtid[tid] += 1;
        let mtid = self.mtid[tid];
        let _ = write!(
            self.line,
            "{{\"LEVEL\": \"0\", \"PROTO\": \"udp\", \"QTYPE\": \"{qtype}\", \
             \"__REALTIME_TIMESTAMP\": \"{rt}\", \"PRIORITY\": \"6\", \"SUBSYSTEM\": \"syncres\", \
             \"QNAME\": \"{qname}\", \"MESSAGE\": \"Question\", \"MTID\": \"{mtid}\", \
             \"_PID\": \"1211\", \"SYSLOG_IDENTIFIER\": \"pdns_recursor\", \
             \"_HOSTNAME\": \"ns1\", \"ECS\": \"\", \"REMOTE\": \"{c}:{port}\", \
             \"TIMESTAMP\": \"{ts}\", \"TID\": \"{tid}\", \"_TRANSPORT\": \"journal\"}}",
            qtype = q.qtype,
            qname = self.qname,
            c = q.client,
        );
        self.emit_query(q, expect);

        let (netw, tot, _) = self.answer_times();
        self.tick(netw, tot);
        let (rt, ts) = (self.now_us, self.ts_ms());
        let _ = write!(
            self.line,
            "{{\"_HOSTNAME\": \"ns1\", \"ECS\": \"\", \"TID\": \"{tid}\", \"PRIORITY\": \"6\", \
             \"__REALTIME_TIMESTAMP\": \"{rt}\", \"SYSLOG_IDENTIFIER\": \"pdns_recursor\", \
             \"QNAME\": \"{qname}\", \"LEVEL\": \"0\", \"_PID\": \"1211\", \
             \"_TRANSPORT\": \"journal\", \"PROTO\": \"udp\", \"MESSAGE\": \"Answer\", \
             \"REMOTE\": \"{c}:{port}\", \"SUBSYSTEM\": \"syncres\", \"TIMESTAMP\": \"{ts}\", \
             \"QTYPE\": \"{qtype}\", \"MTID\": \"{mtid}\"}}",
            qtype = q.qtype,
            qname = self.qname,
            c = q.client,
        );
        self.emit(None, expect);
    }

    /// What a pipe coprocess reads for one query: the server's SOA look-ups from
    /// `0.0.0.0` for the name and each parent up to the zone, then (for names in the zone)
    /// the `ANY` look-ups from the client for the name and each parent below the zone,
    /// and the name once more.
    fn pipe(&mut self, q: &Query, expect: &mut Option<&mut Vec<Expected>>) {
        let zone = self.fleet.zone.as_str();
        let qname = std::mem::take(&mut self.qname);
        let in_zone = qname == zone || qname.ends_with(&format!(".{zone}"));
        let suffixes = || std::iter::successors(Some(qname.as_str()), |s| s.split_once('.').map(|(_, r)| r));
        for name in suffixes() {
            let _ = write!(self.line, "Q\t{name}\tIN\tSOA\t-1\t0.0.0.0\t0.0.0.0");
            self.emit(None, expect);
            if name == zone {
                break;
            }
        }
        if in_zone {
            let qtype = if q.qtype == "SOA" { "SOA" } else { "ANY" };
            let below_zone = suffixes().take_while(|s| *s != zone);
            for name in below_zone.chain(std::iter::once(qname.as_str())) {
                let _ = write!(self.line, "Q\t{name}\tIN\t{qtype}\t-1\t{}\t127.0.0.1", q.client);
                let expected = expect.is_some().then(|| (IpAddr::V4(q.client), name.to_owned(), qtype));
                self.emit(expected, expect);
                if name == zone {
                    break;
                }
            }
        }
        self.qname = qname;
    }

    // -- plumbing -----------------------------------------------------------------------

    /// A client's source port.
    fn port(&mut self) -> u64 {
        self.decor.range(32768, 60999)
    }

    /// Network and total time of an answer in µs, and the packets it took.
    fn answer_times(&mut self) -> (u64, u64, u64) {
        let packets = self.decor.range(0, 3);
        if packets == 0 {
            return (0, 0, 0);
        }
        let netw = self.decor.range(150, 1500);
        (netw, netw + self.decor.range(80, 900), packets)
    }

    /// Advances the clock by `lo..=hi` µs.
    fn tick(&mut self, lo: u64, hi: u64) {
        self.now_us += self.decor.range(lo, hi.max(lo)) as i64;
    }

    /// `1795312800.123`: epoch seconds with milliseconds, as the recursor writes `ts=`.
    fn ts_ms(&self) -> String {
        format!("{}.{:03}", self.now_us.div_euclid(1_000_000), self.now_us.rem_euclid(1_000_000) / 1000)
    }

    /// Starts a line with the flavour's prefix for the current time.
    fn begin_line(&mut self) {
        let sec = self.now_us.div_euclid(1_000_000);
        if sec != self.clock_sec {
            let time = chrono::DateTime::from_timestamp(sec, 0).unwrap_or_default();
            self.console = time.format("%b %d %H:%M:%S ").to_string();
            self.iso = time.format("%Y-%m-%dT%H:%M:%S").to_string();
            self.clock_sec = sec;
        }
        match self.flavour {
            Flavour::AuthConsole | Flavour::RecursorOld | Flavour::RecursorStructured => {
                self.line.extend_from_slice(self.console.as_bytes())
            }
            Flavour::AuthSyslog => {
                let _ =
                    write!(self.line, "{}.{:06}+00:00 ns1 pdns[1187]: ", self.iso, self.now_us.rem_euclid(1_000_000));
            }
            Flavour::AuthPlain | Flavour::Pipe | Flavour::JournaldJson => {}
        }
    }

    /// Emits the line as the question `q` asks (the name in `self.qname`).
    fn emit_query(&mut self, q: &Query, expect: &mut Option<&mut Vec<Expected>>) {
        let expected = expect.is_some().then(|| (IpAddr::V4(q.client), self.qname.clone(), q.qtype));
        self.emit(expected, expect);
    }

    /// Moves the line to the output, if the caller still wants lines; with `expect`,
    /// records what it should parse to.
    fn emit(&mut self, expected: Expected, expect: &mut Option<&mut Vec<Expected>>) {
        if self.left > 0 {
            if let Some(e) = expect.as_deref_mut() {
                e.push(expected);
            }
            self.out.extend_from_slice(&self.line);
            self.out.push(b'\n');
            self.left -= 1;
        }
        self.line.clear();
    }
}

/// Answer count and rcode of an answer line.
fn answer_counts(q: &Query, rng: &mut Rng) -> (u64, u8) {
    if q.answered {
        (rng.range(1, 4), 0)
    } else {
        (0, 3)
    }
}

/// µs as milliseconds with `digits` decimals (3 or 6), as the recursor prints them.
struct Millis(u64, usize);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Millis(us, digits) = *self;
        if digits == 6 {
            write!(f, "{}.{:03}000", us / 1000, us % 1000)
        } else if us == 0 {
            f.write_str("0")
        } else {
            write!(f, "{}.{:03}", us / 1000, us % 1000)
        }
    }
}

const AUTH_STARTUP: [&str; 13] = [
    "Loading '/usr/lib/x86_64-linux-gnu/pdns/libbindbackend.so'",
    "This is a standalone pdns",
    "Listening on controlsocket in '/var/run/pdns/pdns.controlsocket'",
    "UDP server bound to 0.0.0.0:53",
    "TCP server bound to 0.0.0.0:53",
    "PowerDNS Authoritative Server 4.7.3 (C) 2001-2022 PowerDNS.COM BV",
    "Using 64-bits mode. Built using gcc 12.2.0.",
    "PowerDNS comes with ABSOLUTELY NO WARRANTY. This is free software, and you are welcome to redistribute it according to the terms of the GPL version 2.",
    "[bindbackend] Parsing 1 domain(s), will report when done",
    "[bindbackend] Done parsing domains, 0 rejected, 1 new, 0 removed",
    "Creating backend connection for TCP",
    "About to create 3 backend threads for UDP",
    "Done launching threads, ready to distribute questions",
];

const RECURSOR_OLD_STARTUP: [&str; 18] = [
    "Asked to run with pdns-distributes-queries set but no distributor threads, raising to 1",
    "PowerDNS Recursor 4.8.8 (C) 2001-2022 PowerDNS.COM BV",
    "Using 64-bits mode. Built using gcc 12.2.0.",
    "PowerDNS comes with ABSOLUTELY NO WARRANTY. This is free software, and you are welcome to redistribute it according to the terms of the GPL version 2.",
    "Enabling IPv4 transport for outgoing queries",
    "NOT using IPv6 for outgoing queries - add an IPv6 address (like '::') to query-local-address to enable",
    "allow-from: 127.0.0.0/8",
    "PowerDNS Recursor itself will distribute queries over threads",
    "Redirecting queries for zone 'example.com' to: 127.0.0.1:5300",
    "Redirecting queries for zone '.' with recursion to: 127.0.0.1:5300",
    "Inserting rfc 1918 private space zones",
    "Aggressive NSEC/NSEC3 caching is enabled but DNSSEC validation is not set to 'validate', 'log-fail' or 'process', ignoring",
    "Listening for UDP queries on 127.0.0.1:53",
    "Enabled TCP data-ready filter for (slight) DoS protection",
    "Listening for TCP queries on 127.0.0.1:53",
    "Launching 1 distributor threads",
    "Launching 3 worker threads",
    "Enabled 'epoll' multiplexer",
];

const RECURSOR_STRUCTURED_STARTUP: [&str; 16] = [
    "PowerDNS Recursor 4.8.8 (C) 2001-2022 PowerDNS.COM BV",
    "Using 64-bits mode. Built using gcc 12.2.0.",
    "PowerDNS comes with ABSOLUTELY NO WARRANTY. This is free software, and you are welcome to redistribute it according to the terms of the GPL version 2.",
    r#"msg="Enabling IPv4 transport for outgoing queries" subsystem="config" level="0" prio="Notice" tid="0" ts="{ts}""#,
    r#"msg="NOT using IPv6 for outgoing queries - add an IPv6 address (like '::') to query-local-address to enable" subsystem="config" level="0" prio="Warning" tid="0" ts="{ts}""#,
    r#"msg="Setting access control" subsystem="config" level="0" prio="Info" tid="0" ts="{ts}" acl="allow-from" addresses="127.0.0.0/8""#,
    r#"msg="PowerDNS Recursor itself will distribute queries over threads" subsystem="config" level="0" prio="Notice" tid="0" ts="{ts}""#,
    r#"msg="Redirecting queries" subsystem="config" level="0" prio="Info" tid="0" ts="{ts}" addresses="127.0.0.1:5300" recursion="0" zone="example.com""#,
    r#"msg="Redirecting queries" subsystem="config" level="0" prio="Info" tid="0" ts="{ts}" addresses="127.0.0.1:5300" recursion="1" zone=".""#,
    r#"msg="Inserting rfc 1918 private space zones" subsystem="config" level="0" prio="Notice" tid="0" ts="{ts}""#,
    r#"msg="Aggressive NSEC/NSEC3 caching is enabled but DNSSEC validation is not set to 'validate', 'log-fail' or 'process', ignoring" subsystem="config" level="0" prio="Warning" tid="0" ts="{ts}""#,
    r#"msg="Listening for queries" subsystem="config" level="0" prio="Info" tid="0" ts="{ts}" address="127.0.0.1:53" proto="UDP""#,
    r#"msg="Enabled TCP data-ready filter for (slight) DoS protection" subsystem="config" level="0" prio="Info" tid="0" ts="{ts}""#,
    r#"msg="Listening for queries" subsystem="config" level="0" prio="Info" tid="0" ts="{ts}" address="127.0.0.1:53" protocol="TCP""#,
    r#"msg="Launching distributor threads" subsystem="config" level="0" prio="Notice" tid="0" ts="{ts}" count="1""#,
    r#"msg="Launching worker threads" subsystem="config" level="0" prio="Notice" tid="0" ts="{ts}" count="3""#,
];

const JOURNALD_STARTUP: [(u8, &str, &str); 4] = [
    (5, "config", "Enabling IPv4 transport for outgoing queries"),
    (6, "config", "Setting access control"),
    (6, "config", "Listening for queries"),
    (5, "config", "Launching worker threads"),
];

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::dns::parse::parse_line;
    use crate::dns::record::{ParseContext, Parsed};

    fn small() -> FleetSpec {
        FleetSpec { seed: 7, dcs: 3, hosts: 40, containers: 200, ..FleetSpec::default() }
    }

    fn log(spec: &FleetSpec, flavour: Flavour, lines: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_log(spec, flavour, lines, &mut out).unwrap();
        out
    }

    /// The log and what each line should parse to.
    fn log_with_expectations(spec: &FleetSpec, flavour: Flavour, lines: u64) -> (Vec<u8>, Vec<Expected>) {
        let fleet = Fleet::generate(spec);
        let (mut out, mut expected) = (Vec::new(), Vec::new());
        LogGen::new(&fleet, spec.seed, flavour).run(lines, &mut out, Some(&mut expected)).unwrap();
        (out, expected)
    }

    fn ctx() -> ParseContext {
        ParseContext { now_us: START_US + 3_600_000_000, local_offset_secs: 0 }
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

    #[test]
    fn every_line_parses_to_what_was_written() {
        let spec = small();
        for flavour in Flavour::ALL {
            let (text, expected) = log_with_expectations(&spec, flavour, 20_000);
            let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
            assert_eq!(lines.last(), Some(&&b""[..]), "{flavour}: ends with a newline");
            assert_eq!(lines.len() - 1, 20_000, "{flavour}");
            assert_eq!(expected.len(), 20_000, "{flavour}");
            let (mut queries, mut last_time) = (0, i64::MIN);
            for (line, want) in lines.iter().zip(&expected) {
                let shown = String::from_utf8_lossy(line);
                match (parse_line(line, &ctx()), want) {
                    (Parsed::Query(got), Some((client, qname, qtype))) => {
                        assert_eq!(
                            (&got.client, got.qname.as_ref(), got.qtype),
                            (client, qname.as_str(), *qtype),
                            "{flavour}: {shown}"
                        );
                        if let Some(t) = got.time_us {
                            assert!(t >= last_time, "{flavour}: time goes back: {shown}");
                            assert!((START_US..START_US + 60_000_000).contains(&t), "{shown}");
                            last_time = t;
                        }
                        queries += 1;
                    }
                    (Parsed::Skipped(_), None) => {}
                    (got, want) => panic!("{flavour}: {shown}\n got {got:?}\nwant {want:?}"),
                }
            }
            assert!(queries > 5_000, "{flavour}: {queries} queries");
        }
    }

    #[test]
    fn short_logs_have_exactly_the_lines_asked_for() {
        for flavour in Flavour::ALL {
            for lines in [0, 1, 2, 5, 17, 40] {
                let text = log(&small(), flavour, lines);
                assert_eq!(text.iter().filter(|&&b| b == b'\n').count() as u64, lines, "{flavour}");
            }
        }
    }

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

    #[test]
    fn flavour_names_round_trip() {
        for flavour in Flavour::ALL {
            assert_eq!(flavour.name().parse::<Flavour>(), Ok(flavour));
        }
        assert!("auth".parse::<Flavour>().is_err());
        assert_eq!(Flavour::RecursorOld.file_name(), "pdns-rec-old.log");
    }
}
