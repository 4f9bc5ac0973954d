//! PowerDNS query logs: parsing lines ([`parse`]), resolving queries to edges by the CMDB
//! ([`resolve`]), aggregating ([`aggregate`]), reading files from where we left off
//! ([`source`]) and writing batches with their read positions ([`ingest`]), once or
//! following the files ([`tail`]).

pub mod aggregate;
pub mod ingest;
pub mod parse;
pub mod record;
pub mod resolve;
pub mod source;
pub mod tail;
