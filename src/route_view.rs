//! A pair's path as `edgewatch route show|diff|changes` and `/api/v1/routes/…` show it:
//! the hops of a window like `mtr --report`, windows side by side with what changed
//! between them, and the route events — every address with whose network it is. Pure:
//! windows, diffs and events in, views (JSON and tables) out.

use comfy_table::Table;
use graph_store::format_utc;
use graph_store::paths::{HopStatus, PairInfo, RouteEventView, Window, WindowDiff, WindowHop};
use serde::Serialize;

use crate::labels::{AddrView, Labels};
use crate::output;

/// An address at a hop, with the runs of the window it answered in.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SeenAddr {
    #[serde(flatten)]
    pub addr: AddrView,
    pub runs: u32,
}

/// One TTL over a window.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HopView {
    pub ttl: u8,
    /// Who answered here, most runs first (none: silent, `???`).
    pub addrs: Vec<SeenAddr>,
    pub sent: u32,
    pub received: u32,
    pub loss_pct: f32,
    pub rtt_avg_ms: Option<f32>,
    pub rtt_best_ms: Option<f32>,
    pub rtt_worst_ms: Option<f32>,
    pub rtt_stddev_ms: Option<f32>,
    pub jitter_ms: Option<f32>,
    /// The router drops its own answers but forwards: not loss.
    pub rate_limited: bool,
}

/// A pair's runs over a window.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WindowView {
    #[serde(serialize_with = "graph_store::serialize_utc")]
    pub from: chrono::DateTime<chrono::Utc>,
    #[serde(serialize_with = "graph_store::serialize_utc")]
    pub to: chrono::DateTime<chrono::Utc>,
    pub runs: u32,
    pub reached: u32,
    /// Distinct paths among the runs.
    pub paths: u32,
    /// Loss persists from this TTL to the destination.
    pub loss_onset: Option<u8>,
    pub hops: Vec<HopView>,
}

impl WindowView {
    pub fn new(w: &Window, labels: &Labels) -> WindowView {
        WindowView {
            from: w.from,
            to: w.to,
            runs: w.runs,
            reached: w.reached,
            paths: w.paths,
            loss_onset: w.loss_onset,
            hops: w.hops.iter().map(|h| hop_view(h, labels)).collect(),
        }
    }

    /// `2026-12-04 16:00–16:05` (UTC; seconds when a bound is not on a minute).
    pub fn label(&self) -> String {
        use chrono::Timelike;
        let day = |t: &chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d").to_string();
        // Seconds only when a bound is not on a minute (short windows, exact run times).
        let hm = if self.from.second() == 0 && self.to.second() == 0 { "%H:%M" } else { "%H:%M:%S" };
        if day(&self.from) == day(&self.to) {
            format!("{} {}–{}", day(&self.from), self.from.format(hm), self.to.format(hm))
        } else {
            let full = format!("%Y-%m-%d {hm}");
            format!("{}–{}", self.from.format(&full), self.to.format(&full))
        }
    }
}

fn hop_view(h: &WindowHop, labels: &Labels) -> HopView {
    HopView {
        ttl: h.ttl,
        addrs: h.addrs.iter().map(|&(ip, runs)| SeenAddr { addr: labels.addr(ip), runs }).collect(),
        sent: h.sent,
        received: h.received,
        loss_pct: h.loss_pct,
        rtt_avg_ms: h.rtt_avg_ms,
        rtt_best_ms: h.rtt_best_ms,
        rtt_worst_ms: h.rtt_worst_ms,
        rtt_stddev_ms: h.rtt_stddev_ms,
        jitter_ms: h.jitter_ms,
        rate_limited: h.rate_limited,
    }
}

fn ms(v: Option<f32>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_default()
}

fn addrs_text(addrs: &[SeenAddr], with_runs: bool) -> (String, String) {
    if addrs.is_empty() {
        return ("???".into(), String::new());
    }
    let ips: Vec<String> =
        addrs
            .iter()
            .map(|a| {
                if with_runs && addrs.len() > 1 {
                    format!("{} ({})", a.addr.ip, a.runs)
                } else {
                    a.addr.ip.to_string()
                }
            })
            .collect();
    let whose: Vec<String> = addrs.iter().map(|a| a.addr.whose()).collect();
    (ips.join(" "), whose.join(" "))
}

/// `route show`: one pair, one window.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RouteShow {
    pub pair: PairInfo,
    pub window: WindowView,
}

impl RouteShow {
    /// `mtr --report`'s columns with whose network each hop is; a note per hop for
    /// rate-limiting routers and where loss starts.
    pub fn table(&self) -> Table {
        let mut t = output::table(&[
            "hop", "address", "whose", "loss%", "sent", "avg", "best", "worst", "stdev", "jitter", "note",
        ]);
        for h in &self.window.hops {
            let (addrs, whose) = addrs_text(&h.addrs, true);
            let note = if self.window.loss_onset == Some(h.ttl) {
                "loss from here"
            } else if h.rate_limited {
                "rate-limits its answers"
            } else {
                ""
            };
            t.add_row(vec![
                format!("{}.", h.ttl),
                addrs,
                whose,
                format!("{:.1}%", h.loss_pct),
                h.sent.to_string(),
                ms(h.rtt_avg_ms),
                ms(h.rtt_best_ms),
                ms(h.rtt_worst_ms),
                ms(h.rtt_stddev_ms),
                ms(h.jitter_ms),
                note.into(),
            ]);
        }
        t
    }

    /// The line above the table.
    pub fn heading(&self) -> String {
        let p = &self.pair;
        let w = &self.window;
        format!(
            "{} → {} ({}, {}{}) {}: {} run(s), {} reached, {} path(s)",
            p.src,
            p.dst,
            p.dst_ip,
            p.protocol,
            p.port.map(|port| format!(":{port}")).unwrap_or_default(),
            w.label(),
            w.runs,
            w.reached,
            w.paths
        )
    }
}

/// One TTL of two windows.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HopDiffView {
    pub ttl: u8,
    pub status: HopStatus,
    pub old: Vec<AddrView>,
    pub new: Vec<AddrView>,
    pub rtt_old_ms: Option<f32>,
    pub rtt_new_ms: Option<f32>,
    pub rtt_worse: bool,
    pub loss_old_pct: Option<f32>,
    pub loss_new_pct: Option<f32>,
    pub loss_started: bool,
}

/// Where two paths part, with whose network the addresses are in.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DivergenceView {
    pub ttl: u8,
    pub old: Vec<AddrView>,
    pub new: Vec<AddrView>,
}

/// Window `from` against window `to` (indexes into [`RouteDiff::windows`]).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Comparison {
    pub from: usize,
    pub to: usize,
    /// None: the same path.
    pub first_divergence: Option<DivergenceView>,
    pub hops: Vec<HopDiffView>,
    pub loss_onset_old: Option<u8>,
    pub loss_onset_new: Option<u8>,
    /// What changed, in one sentence.
    pub summary: String,
}

impl Comparison {
    pub fn new(from: usize, to: usize, d: &WindowDiff, labels: &Labels) -> Comparison {
        let hops: Vec<HopDiffView> = d
            .hops
            .iter()
            .map(|h| HopDiffView {
                ttl: h.ttl,
                status: h.status,
                old: labels.addrs(&h.old),
                new: labels.addrs(&h.new),
                rtt_old_ms: h.rtt_old_ms,
                rtt_new_ms: h.rtt_new_ms,
                rtt_worse: h.rtt_worse,
                loss_old_pct: h.loss_old_pct,
                loss_new_pct: h.loss_new_pct,
                loss_started: h.loss_started,
            })
            .collect();
        let first_divergence = d.first_divergence.map(|ttl| {
            let at = hops.iter().find(|h| h.ttl == ttl);
            DivergenceView {
                ttl,
                old: at.map(|h| h.old.clone()).unwrap_or_default(),
                new: at.map(|h| h.new.clone()).unwrap_or_default(),
            }
        });
        let mut c = Comparison {
            from,
            to,
            first_divergence,
            hops,
            loss_onset_old: d.loss_onset_old,
            loss_onset_new: d.loss_onset_new,
            summary: String::new(),
        };
        c.summary = c.sentence();
        c
    }

    fn sentence(&self) -> String {
        let list = |a: &[AddrView]| {
            if a.is_empty() {
                "nothing".to_string()
            } else {
                a.iter().map(|a| format!("{} ({})", a.ip, a.whose())).collect::<Vec<_>>().join(", ")
            }
        };
        let mut parts = Vec::new();
        match &self.first_divergence {
            None => parts.push("same path".to_string()),
            Some(d) => {
                parts.push(format!("path changed: first different hop {}: {} → {}", d.ttl, list(&d.old), list(&d.new)))
            }
        }
        let slower: Vec<String> = self
            .hops
            .iter()
            .filter(|h| h.rtt_worse)
            .map(|h| format!("{} (+{:.1} ms)", h.ttl, h.rtt_new_ms.unwrap_or(0.0) - h.rtt_old_ms.unwrap_or(0.0)))
            .collect();
        if !slower.is_empty() {
            parts.push(format!("slower at hop {}", slower.join(", ")));
        }
        match (self.loss_onset_old, self.loss_onset_new) {
            (None, Some(ttl)) => parts.push(format!("loss started from hop {ttl}")),
            (Some(ttl), None) => parts.push(format!("loss from hop {ttl} cleared")),
            (Some(a), Some(b)) if a != b => parts.push(format!("loss moved from hop {a} to hop {b}")),
            _ => {}
        }
        parts.join("; ")
    }
}

/// `route diff`: windows side by side, each compared with the one before.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RouteDiff {
    pub pair: PairInfo,
    pub windows: Vec<WindowView>,
    pub comparisons: Vec<Comparison>,
}

impl RouteDiff {
    /// One column per window: each hop's addresses, whose they are, RTT and loss; `≠`
    /// marks a hop changed from the window before, `+` one added, `!` slower or lossy.
    pub fn table(&self) -> Table {
        let mut header = vec!["hop".to_string()];
        header.extend(self.windows.iter().map(WindowView::label));
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        let mut t = output::table(&header);
        let last = self.windows.iter().flat_map(|w| w.hops.iter().map(|h| h.ttl)).max().unwrap_or(0);
        for ttl in 1..=last {
            let mut row = vec![format!("{ttl}.")];
            for (i, w) in self.windows.iter().enumerate() {
                let mark =
                    self.comparisons.iter().find(|c| c.to == i).and_then(|c| c.hops.iter().find(|h| h.ttl == ttl));
                row.push(cell(w.hops.iter().find(|h| h.ttl == ttl), mark));
            }
            t.add_row(row);
        }
        t
    }
}

fn cell(hop: Option<&HopView>, diff: Option<&HopDiffView>) -> String {
    let Some(h) = hop else { return String::new() };
    let (addrs, whose) = addrs_text(&h.addrs, false);
    let mark = match diff {
        Some(d) if d.status == HopStatus::Changed => "≠ ",
        Some(d) if d.status == HopStatus::Added => "+ ",
        _ => "",
    };
    let alarm = if diff.is_some_and(|d| d.rtt_worse || d.loss_started) { " !" } else { "" };
    let whose = if whose.is_empty() { String::new() } else { format!(" ({whose})") };
    format!("{mark}{addrs}{whose} {} ms {:.0}%{alarm}", ms(h.rtt_avg_ms), h.loss_pct)
}

/// `route changes`: the events, newest first, as a table.
pub fn events_table(events: &[RouteEventView], labels: &Labels) -> Table {
    let mut t = output::table(&["at", "pair", "dcs", "event", "hop", "old → new", "rtt before → after", "loss%"]);
    let addrs = |a: &[String]| {
        let views: Vec<String> = a
            .iter()
            .filter_map(|s| s.parse().ok())
            .map(|ip| {
                let v = labels.addr(ip);
                format!("{} ({})", v.ip, v.whose())
            })
            .collect();
        if views.is_empty() {
            "*".to_string()
        } else {
            views.join(" ")
        }
    };
    for e in events {
        let change = match e.kind.as_str() {
            "changed" => format!("{} → {}", addrs(&e.old_addrs), addrs(&e.new_addrs)),
            "loss-started" | "loss-moved" => format!("loss from {}", addrs(&e.new_addrs)),
            _ => String::new(),
        };
        let hop = match (e.old_ttl, e.ttl) {
            (Some(a), Some(b)) => format!("{a} → {b}"),
            (a, b) => b.or(a).map(|t| t.to_string()).unwrap_or_default(),
        };
        let rtt = match (e.rtt_before_ms, e.rtt_after_ms) {
            (None, None) => String::new(),
            (a, b) => format!("{} → {}", ms(a), ms(b)),
        };
        t.add_row(vec![
            format_utc(&e.at),
            format!("{} → {}", e.src, e.dst),
            format!("{} → {}", e.src_dc, e.dst_dc),
            e.kind.clone(),
            hop,
            change,
            rtt,
            e.loss_after_pct.map(|l| format!("{l:.0}")).unwrap_or_default(),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use graph_store::paths::{diff, summarize, DiffRules, Hop, Owners, Run};

    use super::*;

    fn t(min: i64) -> DateTime<Utc> {
        "2026-12-05T16:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::minutes(min)
    }

    fn run(min: i64, hops: &[(&str, f32)]) -> Run {
        let hops = hops
            .iter()
            .enumerate()
            .map(|(i, (a, rtt))| Hop {
                ttl: i as u8 + 1,
                addrs: vec![a.parse().unwrap()],
                sent: 3,
                received: 3,
                rtt_best_ms: Some(*rtt),
                rtt_avg_ms: Some(*rtt),
                rtt_worst_ms: Some(*rtt),
                rtt_stddev_ms: Some(0.0),
                jitter_ms: Some(0.0),
            })
            .collect();
        Run { at: t(min), hops, reached: true }
    }

    fn pair() -> PairInfo {
        PairInfo {
            id: 1,
            src: "web.h1".into(),
            dst: "search.h9".into(),
            dst_ip: "10.9.0.2".into(),
            protocol: "icmp".into(),
            port: None,
            src_dc: "onprem".into(),
            dst_dc: "cloud".into(),
            external: false,
            every_s: 120,
            runs: 3,
            last_run_at: Some(t(30)),
            retired: false,
        }
    }

    fn labels() -> Labels {
        Labels::new(Owners::new([("10.0.0.0/16", "ours"), ("52.93.0.0/16", "AWS")]).unwrap(), Default::default())
    }

    const A: [(&str, f32); 3] = [("10.0.0.1", 1.0), ("52.93.1.1", 20.0), ("10.9.0.2", 21.0)];
    const B: [(&str, f32); 3] = [("10.0.0.1", 1.0), ("52.93.9.9", 40.0), ("10.9.0.2", 60.0)];

    #[test]
    fn three_windows_side_by_side_name_the_change_and_its_owner() {
        let w = [
            summarize(t(0), t(5), &[run(0, &A), run(2, &A)], 20.0),
            summarize(t(15), t(20), &[run(15, &B), run(17, &B)], 20.0),
            summarize(t(30), t(35), &[run(30, &A)], 20.0),
        ];
        let l = labels();
        let comparisons: Vec<Comparison> =
            (1..3).map(|i| Comparison::new(i - 1, i, &diff(&w[i - 1], &w[i], &DiffRules::default()), &l)).collect();
        let v = RouteDiff { pair: pair(), windows: w.iter().map(|w| WindowView::new(w, &l)).collect(), comparisons };
        assert_eq!(
            v.comparisons[0].summary,
            "path changed: first different hop 2: 52.93.1.1 (AWS) → 52.93.9.9 (AWS); slower at hop 2 (+20.0 ms), 3 (+39.0 ms)"
        );
        assert!(v.comparisons[1]
            .summary
            .starts_with("path changed: first different hop 2: 52.93.9.9 (AWS) → 52.93.1.1"));
        let text = v.table().to_string();
        assert!(text.contains("2026-12-05 16:00–16:05") && text.contains("16:15–16:20"), "{text}");
        let row2 = text.lines().find(|l| l.contains("2.")).unwrap();
        assert!(
            row2.contains("52.93.1.1 (AWS) 20.0 ms 0%") && row2.contains("≠ 52.93.9.9 (AWS) 40.0 ms 0% !"),
            "{row2}"
        );
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["comparisons"][0]["first_divergence"]["ttl"], 2);
        assert_eq!(
            json["comparisons"][0]["first_divergence"]["new"][0],
            serde_json::json!({"ip": "52.93.9.9", "owner": "AWS"})
        );
        assert_eq!(
            json["windows"][0]["hops"][1]["addrs"][0],
            serde_json::json!({"ip": "52.93.1.1", "owner": "AWS", "runs": 2})
        );
    }

    #[test]
    fn show_marks_rate_limiting_and_loss_onset() {
        let mut r = run(0, &A);
        r.hops[1].received = 1;
        let w = summarize(t(0), t(5), &[r], 20.0);
        let v = RouteShow { pair: pair(), window: WindowView::new(&w, &labels()) };
        let text = v.table().to_string();
        assert!(text.lines().any(|l| l.contains("52.93.1.1") && l.contains("rate-limits its answers")), "{text}");
        assert_eq!(
            v.heading(),
            "web.h1 → search.h9 (10.9.0.2, icmp) 2026-12-05 16:00–16:05: 1 run(s), 1 reached, 1 path(s)"
        );
    }
}
