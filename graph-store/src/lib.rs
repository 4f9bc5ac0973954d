//! The graph store: edgewatch's one source of truth, in PostgreSQL. All of edgewatch's SQL
//! lives in this crate.
//!
//! The store, writing and reading the graph:
//! - [`db`]: connecting and migrating.
//! - [`pool`]: the store's pool and transactions, sqlx's with what a transaction pooler
//!   (pgbouncer's `pool_mode = transaction`) needs: no named statements, every statement
//!   in a transaction.
//! - [`model`]: plain values that cross into the store: CMDB exports already validated by
//!   their parsers, and what the graph queries answer.
//! - [`vocab`]: the graph's words, typed: health and event states, verdicts, probe kinds
//!   (text in PostgreSQL, lowercase in JSON).
//! - [`cmdb`]: applying CMDB inventory snapshots and published links.
//! - [`dns`]: DNS discovery's SQL: the CMDB snapshot resolution needs, edge upserts with
//!   their queries per hour and read positions, retiring edges nobody asks for any more.
//! - [`probe`]: probing's SQL: leases on due edges, health rows, probe history and
//!   state-change events.
//! - [`agents`]: agents' tokens, the edges a node may report on, and the local figures
//!   agents send.
//! - [`query`]: reading the graph back (`graph nodes|edges`).
//! - [`sql`]: `edgewatch sql`, an operator's ad-hoc query, read-only with a time limit.
//! - [`lease`]: who of several processes does the once-only work (lease rows that expire).
//! - [`replica`]: a streaming standby's replay lag, and whether a read goes to it.
//! - `error`, `time`: the crate's one error type, and timestamps as edgewatch prints them
//!   (private; what they define is re-exported at the crate root).
//!
//! Analysis, questions over the graph and its history:
//! - [`topology`]: dependencies, dependents, blast radius, single points of failure and
//!   paths, on a petgraph snapshot.
//! - [`history`]: the graph as it was at a past time, and what changed between two.
//! - [`diagnosis`]: where the fault most likely is: broken edges grouped into incidents,
//!   each with a culprit and its evidence.
//! - [`paths`]: path history from traceroutes between host pairs: route changes, loss
//!   onset, and whose network (owner, AS) a hop is. Pure rules for now.
//! - [`rollup`]: hourly rollups, which the nightly report reads instead of the raw rows.
//! - [`report`]: the nightly dependency report's figures.
//! - [`figures`]: the running figures behind `/metrics`.
//! - [`ui`]: what the web UI's pages read besides the graph questions (edges by id, their
//!   events and last day of results, stored reports).
//! - [`hop_names`]: the node holding a hop address, for the web UI's route pages.
//! - [`ui_map`]: the web UI's map: the graph aggregated by data center, host, container
//!   and service, live or as it was.
//!
//! Embedded cluster:
//! - [`embedded`]: the private PostgreSQL cluster used when no `DATABASE_URL` is given.
//!
//! Testing (feature `testing`):
//! - `testing`: a fresh, migrated database per test on a real PostgreSQL.

pub mod agents;
pub mod cmdb;
pub mod db;
pub mod diagnosis;
pub mod dns;
pub mod embedded;
mod error;
pub mod figures;
pub mod history;
pub mod hop_names;
pub mod lease;
pub mod model;
pub mod paths;
pub mod pool;
pub mod probe;
pub mod query;
pub mod replica;
pub mod report;
pub mod rollup;
pub mod sql;
#[cfg(feature = "testing")]
pub mod testing;
mod time;
pub mod topology;
pub mod ui;
pub mod ui_map;
pub mod vocab;

pub use db::{connect, migrate, Database};
pub use error::{Error, Result};
pub use pool::{PgConnection, PgPool, Pooler, Transaction};
pub use time::{format_utc, serialize_utc};
