//! The report's "route changes" section: per data-center pair, the host pairs whose path
//! changed within the day, each change (first different hop, old and new addresses, RTT
//! to the destination before and after) and the time spent on each path. Pure: the day's
//! `changed` route events in, the section out. Time on a path comes from the events alone
//! (not from raw runs), so the section can be made again while the events are kept.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::model::{PairRoutes, PathMinutes, RouteChangeDay, RouteChangesDc};
use crate::paths::RouteEventView;

/// A path as the report names it: the hops' addresses in TTL order, `*` for a silent one.
fn path_label(hops: &Option<Vec<String>>) -> String {
    match hops {
        Some(h) if !h.is_empty() => h
            .iter()
            .map(|a| if a.is_empty() { "*".to_string() } else { a.replace(',', "|") })
            .collect::<Vec<_>>()
            .join(" "),
        _ => "(unknown)".into(),
    }
}

/// The section from the day's `changed` events (any order), for the day `[from, to)`;
/// time on a path is counted up to `until` (the day's end, or now for a day not over).
pub(crate) fn route_changes(
    events: &[RouteEventView],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<RouteChangesDc> {
    let mut by_pair: BTreeMap<(String, String, String, String), Vec<&RouteEventView>> = BTreeMap::new();
    for e in events.iter().filter(|e| e.kind == "changed") {
        by_pair.entry((e.src_dc.clone(), e.dst_dc.clone(), e.src.clone(), e.dst.clone())).or_default().push(e);
    }
    let mut by_dc: BTreeMap<(String, String), Vec<PairRoutes>> = BTreeMap::new();
    for ((src_dc, dst_dc, src, dst), mut evs) in by_pair {
        evs.sort_by_key(|e| (e.at, e.id));
        by_dc.entry((src_dc, dst_dc)).or_default().push(PairRoutes {
            src,
            dst,
            changes: evs
                .iter()
                .map(|e| RouteChangeDay {
                    at: e.at,
                    ttl: e.ttl,
                    old_addrs: e.old_addrs.clone(),
                    new_addrs: e.new_addrs.clone(),
                    rtt_before_ms: e.rtt_before_ms,
                    rtt_after_ms: e.rtt_after_ms,
                })
                .collect(),
            paths: time_on_paths(&evs, from, until),
        });
    }
    let mut out: Vec<RouteChangesDc> = by_dc
        .into_iter()
        .map(|((from_dc, to_dc), pairs)| RouteChangesDc {
            changes: pairs.iter().map(|p| p.changes.len()).sum(),
            from_dc,
            to_dc,
            pairs,
        })
        .collect();
    out.sort_by(|a, b| b.changes.cmp(&a.changes).then_with(|| (&a.from_dc, &a.to_dc).cmp(&(&b.from_dc, &b.to_dc))));
    out
}

/// Minutes on each path: the first event's old path from the day's start, each new path
/// from its event to the next; most minutes first.
fn time_on_paths(evs: &[&RouteEventView], from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<PathMinutes> {
    let mut minutes: BTreeMap<String, f64> = BTreeMap::new();
    let mut add = |path: String, a: DateTime<Utc>, b: DateTime<Utc>| {
        let m = (b.min(until) - a.max(from)).num_milliseconds().max(0) as f64 / 60_000.0;
        *minutes.entry(path).or_default() += m;
    };
    if let Some(first) = evs.first() {
        add(path_label(&first.old_hops), from, first.at);
    }
    for (i, e) in evs.iter().enumerate() {
        let end = evs.get(i + 1).map_or(until, |next| next.at);
        add(path_label(&e.new_hops), e.at, end);
    }
    let mut out: Vec<PathMinutes> = minutes.into_iter().map(|(path, minutes)| PathMinutes { path, minutes }).collect();
    out.sort_by(|a, b| b.minutes.total_cmp(&a.minutes).then_with(|| a.path.cmp(&b.path)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        chrono::NaiveDate::from_ymd_opt(2026, 12, 4).unwrap().and_hms_opt(h, m, 0).unwrap().and_utc()
    }

    fn ev(id: i64, at: DateTime<Utc>, src: &str, old: &[&str], new: &[&str]) -> RouteEventView {
        let hops = |h: &[&str]| Some(h.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        RouteEventView {
            id,
            at,
            pair_id: 1,
            src: src.into(),
            dst: "h9".into(),
            src_dc: "onprem".into(),
            dst_dc: "cloud".into(),
            kind: "changed".into(),
            ttl: Some(2),
            old_ttl: None,
            old_addrs: vec![old[1].into()],
            new_addrs: vec![new[1].into()],
            old_hops: hops(old),
            new_hops: hops(new),
            old_reached: Some(true),
            new_reached: Some(true),
            rtt_before_ms: Some(20.0),
            rtt_after_ms: Some(60.0),
            loss_before_pct: Some(0.0),
            loss_after_pct: Some(0.0),
        }
    }

    #[test]
    fn time_on_each_path_from_the_events_alone() {
        let a = ["10.0.0.1", "52.93.1.1", "10.9.0.2"];
        let b = ["10.0.0.1", "52.93.128.156", "", "10.9.0.2"];
        let events = vec![ev(2, t(16, 26), "h1", &b, &a), ev(1, t(16, 13), "h1", &a, &b), ev(3, t(9, 0), "h2", &a, &b)];
        let got = route_changes(&events, t(0, 0), t(0, 0) + chrono::Duration::days(1));
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].from_dc.as_str(), got[0].to_dc.as_str(), got[0].changes), ("onprem", "cloud", 3));
        let h1 = &got[0].pairs[0];
        assert_eq!(h1.changes.iter().map(|c| c.at).collect::<Vec<_>>(), [t(16, 13), t(16, 26)]);
        assert_eq!(h1.paths[0].path, "10.0.0.1 52.93.1.1 10.9.0.2");
        assert_eq!(h1.paths[0].minutes, 24.0 * 60.0 - 13.0);
        assert_eq!(h1.paths[1].path, "10.0.0.1 52.93.128.156 * 10.9.0.2");
        assert_eq!(h1.paths[1].minutes, 13.0);
        // A day not over counts up to `until`.
        let partial = route_changes(&events[2..], t(0, 0), t(10, 0));
        assert_eq!(partial[0].pairs[0].paths.iter().map(|p| p.minutes).collect::<Vec<_>>(), [9.0 * 60.0, 60.0]);
    }

    #[test]
    fn other_events_are_not_changes() {
        let mut e = ev(1, t(1, 0), "h1", &["a", "b"], &["a", "c"]);
        e.kind = "loss-started".into();
        assert!(route_changes(&[e], t(0, 0), t(23, 0)).is_empty());
    }
}
