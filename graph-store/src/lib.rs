//! The graph store: edgewatch's one source of truth, in PostgreSQL.
//!
//! - [`embedded`]: the private PostgreSQL cluster used when no `DATABASE_URL` is given.
//! - [`db`]: connecting and migrating.
//! - [`cmdb`]: applying CMDB inventory snapshots and published links.
//! - [`query`]: reading the graph back.
//! - [`history`]: the graph as it was at a past time, and what changed between two.
//! - [`topology`]: graph questions on a petgraph snapshot.
//!
//! All of edgewatch's SQL lives in this crate.

pub mod agents;
pub mod cmdb;
pub mod db;
pub mod diagnosis;
pub mod dns;
pub mod embedded;
mod error;
pub mod figures;
pub mod history;
pub mod model;
pub mod probe;
pub mod query;
pub mod report;
pub mod rollup;
pub mod sql;
#[cfg(feature = "testing")]
pub mod testing;
mod time;
pub mod topology;
pub mod vocab;

pub use db::{connect, migrate, Database};
pub use error::{Error, Result};
pub use sqlx::{PgConnection, PgPool};
pub use time::{format_utc, serialize_utc};
