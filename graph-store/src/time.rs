//! Timestamps as edgewatch prints them: UTC, ISO-8601, whole seconds unless finer.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

/// `2026-11-22T01:43:53Z`, or with microseconds when the value has them.
pub fn format_utc(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub fn serialize_utc<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_utc(t))
}

pub fn serialize_utc_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => serialize_utc(t, s),
        None => s.serialize_none(),
    }
}
