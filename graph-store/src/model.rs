//! Plain values that cross the boundary into the store: what a CMDB export says, already
//! validated by its parser, and what the graph queries answer.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::vocab::HealthState;

/// One container of a CMDB inventory export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRecord {
    pub name: String,
    pub host: String,
    pub dc: String,
    pub role: Option<String>,
    /// At least one; no address appears on two containers of one inventory.
    pub ips: Vec<IpAddr>,
    pub services: Vec<String>,
    pub serving: bool,
}

/// A service named by the inventory, with its TCP port when the CMDB gives one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRecord {
    pub name: String,
    pub port: Option<u16>,
}

/// A whole inventory export: a snapshot of every live container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub containers: Vec<ContainerRecord>,
    pub services: Vec<ServiceRecord>,
}

/// One published link: a container and the addresses it talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub container: String,
    pub targets: Vec<IpAddr>,
    /// Where the link was read, for error messages: `links.txt line 3` or
    /// `links.json $.links[2]`.
    pub origin: String,
}

/// A published-links export. Importing it replaces the `cmdb` links of every container it
/// names, and leaves the others alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkSet {
    pub links: Vec<Link>,
}

/// A node (container) as `graph nodes` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct NodeView {
    pub name: String,
    pub host: String,
    pub dc: String,
    pub role: Option<String>,
    pub ips: Vec<String>,
    pub services: Vec<String>,
    pub serving: bool,
    pub retired: bool,
}

/// An edge as `graph edges` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EdgeView {
    pub src: String,
    pub dst_ip: String,
    pub dst: Option<String>,
    pub services: Vec<String>,
    pub sources: Vec<String>,
    pub queries: i64,
    #[serde(serialize_with = "crate::time::serialize_utc")]
    pub first_seen: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::serialize_utc")]
    pub last_seen: DateTime<Utc>,
    pub state: HealthState,
    /// Only listed (and so only present) with `--all`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub retired: bool,
}

/// What an inventory import changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InventoryOutcome {
    pub containers: usize,
    pub new_nodes: usize,
    pub revived_nodes: usize,
    pub retired_nodes: usize,
    pub retired_edges: usize,
    pub hosts: usize,
    pub services: usize,
}

/// What a links import changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LinksOutcome {
    pub containers: usize,
    pub links: usize,
    pub new_edges: usize,
    pub dropped_links: usize,
    pub retired_edges: usize,
}
