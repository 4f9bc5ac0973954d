//! Deterministic fleet generator (being written).
