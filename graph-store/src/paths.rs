//! Path history: mtr-style traces between host pairs, every two minutes, and what the
//! server reads from them — route changes and loss onset, each naming the hop — with the
//! hop addresses labelled by owner ("ours", "AWS", an ISP) and AS number.
//!
//! For now only the pure parts, no I/O:
//! - `algo`: one trace run, its path shape, the route-change and loss rules with their
//!   hysteresis and flap detection.
//! - `owners`: the `[owners]` prefix table (longest prefix wins) and the ASN table
//!   (iptoasn's `ip2asn-combined.tsv`).

mod algo;
mod owners;

pub use algo::{
    first_divergence, hop_losses, loss_onset, CurrentPath, DestFigures, Divergence, Hop, HopLoss, LossConfig,
    LossEvent, LossTracker, PathShape, RouteChange, RouteConfig, RouteEvent, RouteTracker, Run, MAX_RUNS,
};
pub use owners::{parse_asn_table, AsnError, AsnInfo, AsnProblem, AsnTable, OwnerError, Owners};
