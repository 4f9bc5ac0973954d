//! Discovery: learning the dependency graph from what the fleet already writes down.
//!
//! CMDB:
//! - [`cmdb`]: CMDB exports (inventory snapshots and published links), parsed purely and
//!   imported in one transaction each. Its modules: `inventory_json` and `inventory_csv`
//!   (the inventory export in JSON or CSV), `links` (published-links exports, text or
//!   JSON), `import` (read and parse every file, then apply them all in one transaction),
//!   `watch` (`cmdb watch`: import again whenever an export changes).
//!
//! DNS:
//! - [`dns`]: PowerDNS query logs, from lines to edges in the store.
//!   - [`dns::parse`]: log lines in, [`dns::record`] values out, one module per flavour.
//!   - [`dns::record`]: what a parsed line says: a query record, or why it is not one.
//!   - [`dns::resolve`]: query records to edges, by a snapshot of the CMDB.
//!   - [`dns::aggregate`]: records counted in memory between writes, and what gave no edge.
//!   - [`dns::lines`]: cutting a byte stream into lines of bounded length.
//!   - [`dns::source`]: reading a log file from where edgewatch left off.
//!   - [`dns::rotated`]: which files to read, and from where, when a log rotates.
//!   - [`dns::follow`]: a followed path: opening its file at its checkpoint, finishing what
//!     its rotated siblings hold unread.
//!   - [`dns::ingest`]: writing batches, each in one transaction with the read positions
//!     of the files it came from.
//!   - [`dns::tail`]: `dns tail`: following log files or standard input.
//!
//! Fleet:
//! - [`fleet`]: a synthetic fleet from a seed, its CMDB inventory and its query logs in
//!   every flavour, for tests, demos and benchmarks.
//!
//! Shared, private: `error` (the crate's one error type, re-exported at the crate root) and
//! `path` (the absolute names of the files watched and followed).

pub mod cmdb;
pub mod dns;
mod error;
pub mod fleet;
mod path;

pub use error::{Error, ExportError, Result};
