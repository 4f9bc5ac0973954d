//! PowerDNS query logs: parsing lines ([`parse`]), resolving queries to edges by the CMDB
//! ([`resolve`]), aggregating ([`aggregate`]), cutting bytes into lines ([`lines`]),
//! reading files from where we left off ([`source`]), finishing rotated files
//! ([`rotated`] decides, [`follow`] reads) and writing batches with their read positions
//! ([`ingest`]), once or following the files ([`tail`]).

pub mod aggregate;
pub mod follow;
pub mod ingest;
pub mod lines;
pub mod parse;
pub mod record;
pub mod resolve;
pub mod rotated;
pub mod source;
pub mod tail;
