//! The nightly dependency report as data: what `edgewatch report --format json` prints and
//! what the Markdown and HTML renderings show. Times are UTC (RFC 3339); `date` and the
//! hours are in the report's time zone.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::vocab::EventState;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The day reported on, in `tz`.
    pub date: NaiveDate,
    /// IANA time zone name (`Europe/Berlin`) or `UTC`.
    pub tz: String,
    /// The day's bounds: [from, to).
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    /// False when the store has nothing for the day (no live graph then, no probe
    /// results): the report says so instead of showing zeros as facts.
    pub has_data: bool,
    /// Why there is little or nothing, when so.
    pub notes: Vec<String>,
    pub summary: Summary,
    pub services: Vec<ServiceDeps>,
    pub roles: Vec<RoleDeps>,
    pub changes: Changes,
    pub cross_dc: Vec<CrossDc>,
    /// Edges down, degraded or flapping at some time of the day, longest down first.
    pub broken: Vec<BrokenDay>,
    /// Incidents open at some time of the day (from the diagnosis), longest first.
    pub incidents: Vec<IncidentDay>,
    pub hygiene: Hygiene,
    /// Paths between hosts that changed within the day, per data-center pair (most
    /// changes first).
    #[serde(default)]
    pub route_changes: Vec<RouteChangesDc>,
    /// The service dependency graph at the end of the day, for the picture.
    pub service_graph: Vec<ServiceLink>,
}

/// One arrow of the service dependency graph: consumers grouped by the service they
/// provide (or, providing none, by role: `role:fe`) → a service they use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceLink {
    pub from: String,
    pub to: String,
    /// Edges behind the arrow, and how many of them were down at some time of the day.
    pub edges: usize,
    pub broken: usize,
    /// Whether it crosses data centers (some edge behind it does).
    pub cross_dc: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Live at the end of the day.
    pub nodes: usize,
    pub edges: usize,
    pub services: usize,
    pub dcs: usize,
    /// Probe cycles (results) of the day, and how many failed.
    pub cycles: i64,
    pub failed_cycles: i64,
    /// Edges down at some time of the day.
    pub edges_down: usize,
    /// Minutes of down time, all edges together.
    pub down_minutes: f64,
    pub incidents: usize,
    /// The hour with the most failed cycles, if any failed.
    pub worst_hour: Option<WorstHour>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorstHour {
    /// Start of the hour (UTC); `local` is the same in the report's time zone (`14:00`).
    pub hour: DateTime<Utc>,
    pub local: String,
    pub failed_cycles: i64,
    pub edges_down: usize,
}

/// Who depends on a service: its consumers at the end of the day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceDeps {
    pub service: String,
    pub providers: usize,
    pub consumers: usize,
    /// Consumers per data center and per role.
    pub consumers_by_dc: BTreeMap<String, usize>,
    pub consumers_by_role: BTreeMap<String, usize>,
    /// DNS queries of the day for it.
    pub queries: i64,
}

/// What a role depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleDeps {
    pub role: String,
    pub nodes: usize,
    /// Services its nodes use, with how many of its nodes use each.
    pub services: BTreeMap<String, usize>,
    /// Roles its nodes' edges go to, with the number of edges.
    pub depends_on_roles: BTreeMap<String, usize>,
}

/// What changed during the day (from the start of the day to its end).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    pub new_dependencies: Vec<DepChange>,
    pub vanished_dependencies: Vec<DepChange>,
    pub new_nodes: Vec<NodeChange>,
    pub retired_nodes: Vec<NodeChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DepChange {
    pub src: String,
    pub dst_ip: String,
    pub dst: Option<String>,
    pub services: Vec<String>,
    /// When it appeared (new) or vanished.
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeChange {
    pub name: String,
    pub host: String,
    pub dc: String,
    pub role: Option<String>,
    pub at: DateTime<Utc>,
}

/// Dependencies from one data center to another (end of the day).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossDc {
    pub from_dc: String,
    pub to_dc: String,
    pub edges: usize,
    pub consumers: usize,
    pub services: Vec<String>,
    pub queries: i64,
}

/// An edge in trouble during the day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokenDay {
    pub src: String,
    pub dst_ip: String,
    pub dst: Option<String>,
    pub services: Vec<String>,
    /// Minutes in state `down` within the day.
    pub down_minutes: f64,
    pub cycles: i64,
    pub failed_cycles: i64,
    pub flapping: bool,
    /// Its state changes within the day.
    pub events: Vec<EventDay>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDay {
    pub at: DateTime<Utc>,
    pub from: EventState,
    pub to: EventState,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentDay {
    pub kind: String,
    pub culprit: String,
    pub evidence: String,
    pub since: DateTime<Utc>,
    /// Last seen open (null: still open when the day ended).
    pub until: Option<DateTime<Utc>>,
    pub edges: usize,
}

/// What the CMDB lacks, seen in discovery (counts since the store began).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hygiene {
    /// Client addresses of DNS queries that no container has.
    pub unknown_clients: Vec<Counted>,
    /// Names queried that resolve to no known service or consumer.
    pub unresolved_names: Vec<Counted>,
    /// Services queried that have no provider.
    pub services_without_provider: Vec<Counted>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counted {
    pub name: String,
    pub count: i64,
}

/// Route changes between two data centers within the day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteChangesDc {
    pub from_dc: String,
    pub to_dc: String,
    pub changes: usize,
    pub pairs: Vec<PairRoutes>,
}

/// One host pair's path changes within the day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairRoutes {
    pub src: String,
    pub dst: String,
    pub changes: Vec<RouteChangeDay>,
    /// Minutes on each path within the day, most first.
    pub paths: Vec<PathMinutes>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteChangeDay {
    pub at: DateTime<Utc>,
    /// The first different hop.
    pub ttl: Option<u8>,
    pub old_addrs: Vec<String>,
    pub new_addrs: Vec<String>,
    /// To the destination, on the old path and on the new.
    pub rtt_before_ms: Option<f32>,
    pub rtt_after_ms: Option<f32>,
}

/// A path (its hops' addresses in TTL order, `*` silent, `|` between the addresses of
/// one hop) and the minutes on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathMinutes {
    pub path: String,
    pub minutes: f64,
}
