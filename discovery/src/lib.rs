//! Discovery: learning the dependency graph from what the fleet already writes down.
//!
//! - [`cmdb`]: CMDB exports (inventory snapshots and published links), parsed purely and
//!   imported in one transaction each.

pub mod cmdb;
pub mod dns;
mod error;
pub mod fleet;
mod path;

pub use error::{Error, ExportError, Result};
