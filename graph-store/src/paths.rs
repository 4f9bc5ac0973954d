//! Path history: mtr-style traces between host pairs, every two minutes, and what the
//! server reads from them — route changes and loss onset, each naming the hop — with the
//! hop addresses labelled by owner ("ours", "AWS", an ISP) and AS number.
//!
//! - `algo` (pure): one trace run, its path shape, the route-change and loss rules with
//!   their hysteresis and flap detection.
//! - `compare` (pure): a window of runs aggregated per TTL, two windows compared.
//! - `owners` (pure): the `[owners]` prefix table (longest prefix wins) and the ASN table
//!   (iptoasn's `ip2asn-combined.tsv`).
//! - `packed` (pure): how a run is kept — its path once, its per-hop figures packed.
//! - `block` (pure): an hour of a pair's runs in one row, and the hour's per-TTL rollup.
//! - `read`: a pair by the names operators use, its runs in a window, the events.
//! - `store`: which pairs are traced and when; recording runs with the trackers' state
//!   and their events.
//! - `compact`: a pair's runs of a past hour into one block, with the hour's rollup.
//! - `evidence`: what the traces say about an incident's host pairs.
//! - `asn` (SQL): the imported ASN table — replacing it whole, looking addresses up.

mod algo;
mod asn;
pub mod block;
mod compact;
mod compare;
mod evidence;
mod owners;
pub mod packed;
mod read;
mod store;

pub use algo::{
    first_divergence, hop_losses, loss_onset, CurrentPath, DestFigures, Divergence, Hop, HopLoss, LossConfig,
    LossEvent, LossTracker, PathShape, RouteChange, RouteConfig, RouteEvent, RouteTracker, Run, MAX_RUNS,
};
pub use asn::{import as import_asn_table, lookup as lookup_asns, status as asn_status, AsnImport, ImportSummary};
pub use compact::{compact_runs, CompactTotals};
pub use compare::{diff, summarize, DiffRules, HopDiff, HopStatus, Window, WindowDiff, WindowHop};
pub use evidence::{evidence, EvidenceRef, PathEvidence};
pub use owners::{parse_asn_table, AsnError, AsnInfo, AsnProblem, AsnTable, OwnerError, Owners};
pub use read::{
    counts, events, find_pairs, hop_addrs, last_run_before, list_pairs, pair, run_after, runs_between, EventFilter,
    PairInfo, RouteEventView, TraceCounts,
};
pub use store::{
    claim_due, drop_old_partitions, ensure_partitions, foreign_pairs, host_of_node, prune_hourly, record_runs, release,
    request_trace, sync_pairs, sync_targets, trace_now, DuePair, ExternalTarget, PairSchedule, RecordTotals,
    TraceRecord, Tracer, TrackConfig,
};
