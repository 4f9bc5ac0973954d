//! The nightly dependency report for people: Markdown, a Graphviz picture of the service
//! graph, and one self-contained HTML page with the picture inline. The figures come
//! computed in a [`Report`] (graph-store's `report` module); this module only lays them out.
//!
//! Names come from the CMDB and from DNS, so they are hostile until escaped: every renderer
//! escapes every name for its own syntax (Markdown, DOT strings, HTML).
//!
//! ```ignore
//! let md = report::markdown(&r);
//! let picture = report::svg(&report::dot(&r)).ok(); // None without Graphviz
//! let page = report::html(&r, picture.as_deref());
//! ```

mod graph;
mod html;
mod markdown;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use graph_store::report::{BrokenDay, Report, Summary};
use graph_store::vocab::EventState;

pub use graph::{dot, dot_of, svg, Drawing};
pub use html::html;
pub use markdown::markdown;

/// The sections both documents have, in order: the HTML anchor and the heading.
pub(crate) const SUMMARY: (&str, &str) = ("summary", "Summary");
pub(crate) const SERVICES: (&str, &str) = ("services", "Dependencies per service");
pub(crate) const ROLES: (&str, &str) = ("roles", "Dependencies per role");
pub(crate) const CHANGES: (&str, &str) = ("changes", "What changed");
pub(crate) const CROSS_DC: (&str, &str) = ("cross-dc", "Cross-data-center dependencies");
pub(crate) const BROKEN: (&str, &str) = ("broken", "Broken and flapping edges");
pub(crate) const INCIDENTS: (&str, &str) = ("incidents", "Incidents");
pub(crate) const ROUTES: (&str, &str) = ("routes", "Route changes");
/// What the route changes section shows, in one line.
pub(crate) const ROUTES_LEAD: &str =
    "Paths between hosts (traced host to host, mtr-style) that changed within the day, \
     per data-center pair: the first different hop, RTT to the destination before and after, time on each path.";

/// RTT before → after, in ms.
pub(crate) fn rtt_change(before: Option<f32>, after: Option<f32>) -> String {
    let ms = |v: Option<f32>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "–".into());
    format!("{} → {} ms", ms(before), ms(after))
}
pub(crate) const HYGIENE: (&str, &str) = ("hygiene", "CMDB hygiene");
pub(crate) const GRAPH: (&str, &str) = ("graph", "Service dependency graph");

/// How many state changes of one edge are listed; the rest are counted.
pub(crate) const EVENTS_SHOWN: usize = 12;

/// Times in the report's zone. An unknown zone name falls back to UTC and says so.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    tz: Tz,
    date: NaiveDate,
    /// The zone as the report names it, and whether we could use it.
    name: String,
    known: bool,
}

impl Clock {
    pub(crate) fn new(r: &Report) -> Clock {
        match r.tz.parse::<Tz>() {
            Ok(tz) => Clock { tz, date: r.date, name: r.tz.clone(), known: true },
            Err(_) => Clock { tz: Tz::UTC, date: r.date, name: r.tz.clone(), known: false },
        }
    }

    /// The zone for the title: `Europe/Berlin`, or `UTC (unknown zone "Mars/Olympus")`.
    pub(crate) fn zone(&self) -> String {
        if self.known {
            self.name.clone()
        } else {
            format!("UTC (unknown time zone \"{}\")", self.name)
        }
    }

    /// `14:03` on the report's date, `2026-11-20 23:41` on another.
    pub(crate) fn time(&self, at: &DateTime<Utc>) -> String {
        self.format(at, "%H:%M")
    }

    /// As [`Clock::time`], with seconds: state changes can come seconds apart.
    pub(crate) fn time_s(&self, at: &DateTime<Utc>) -> String {
        self.format(at, "%H:%M:%S")
    }

    /// `2026-11-21 14:03 CET`.
    pub(crate) fn stamp(&self, at: &DateTime<Utc>) -> String {
        at.with_timezone(&self.tz).format("%Y-%m-%d %H:%M %Z").to_string()
    }

    fn format(&self, at: &DateTime<Utc>, time: &str) -> String {
        let local = at.with_timezone(&self.tz);
        if local.date_naive() == self.date {
            local.format(time).to_string()
        } else {
            local.format(&format!("%Y-%m-%d {time}")).to_string()
        }
    }
}

/// One figure of the summary: its label, its value as text, and whether it is bad news.
#[derive(Debug)]
pub(crate) struct Figure {
    pub label: &'static str,
    pub value: String,
    pub detail: Option<String>,
    pub alarm: bool,
}

/// The summary figures, in the order both documents show them (no names in them).
pub(crate) fn figures(s: &Summary) -> Vec<Figure> {
    let figure = |label, value: String, detail: Option<String>, alarm| Figure { label, value, detail, alarm };
    let failed = (s.cycles > 0)
        .then(|| format!("{} failed ({})", int(s.failed_cycles), percent(s.failed_cycles as f64, s.cycles as f64)));
    vec![
        figure("Nodes", int(s.nodes as i64), None, false),
        figure("Edges", int(s.edges as i64), None, false),
        figure("Services", int(s.services as i64), None, false),
        figure("Data centers", int(s.dcs as i64), None, false),
        figure("Probe cycles", int(s.cycles), failed, s.failed_cycles > 0),
        figure("Edges down", int(s.edges_down as i64), Some("at some time of the day".into()), s.edges_down > 0),
        figure(
            "Down minutes",
            format!("{:.0}", s.down_minutes),
            Some(if s.down_minutes >= 90.0 {
                format!("{:.1} hours, all edges together", s.down_minutes / 60.0)
            } else {
                "all edges together".into()
            }),
            s.down_minutes > 0.0,
        ),
        figure("Incidents", int(s.incidents as i64), None, s.incidents > 0),
        match &s.worst_hour {
            Some(w) => figure(
                "Worst hour",
                w.local.clone(),
                Some(format!("{} failed cycles, {} edges down", int(w.failed_cycles), int(w.edges_down as i64))),
                true,
            ),
            None => figure("Worst hour", "none".into(), Some("no cycle failed".into()), false),
        },
    ]
}

/// `1,234,567`.
pub(crate) fn int(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Minutes for reading: `0.5 min`, `37 min`, `135 min (2.2 h)`.
pub(crate) fn minutes(m: f64) -> String {
    let text = if m < 10.0 && m.fract() != 0.0 { format!("{m:.1} min") } else { format!("{m:.0} min") };
    if m >= 90.0 {
        format!("{text} ({:.1} h)", m / 60.0)
    } else {
        text
    }
}

pub(crate) fn percent(part: f64, whole: f64) -> String {
    if whole <= 0.0 {
        return "–".into();
    }
    let p = 100.0 * part / whole;
    if p > 0.0 && p < 0.1 {
        "under 0.1 %".into()
    } else {
        format!("{p:.1} %")
    }
}

/// `1 edge`, `2 edges`.
pub(crate) fn count(n: usize, one: &str, many: &str) -> String {
    format!("{} {}", int(n as i64), if n == 1 { one } else { many })
}

/// What is wrong with an edge, in one word.
pub(crate) fn trouble(b: &BrokenDay) -> EventState {
    if b.down_minutes > 0.0 {
        EventState::Down
    } else if b.flapping {
        EventState::Flapping
    } else {
        EventState::Degraded
    }
}

/// How many edges behind arrows into each service were down during the day.
pub(crate) fn broken_into(r: &Report, service: &str) -> usize {
    r.service_graph.iter().filter(|l| l.to == service).map(|l| l.broken).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_are_grouped_by_thousands() {
        for (n, text) in [(0, "0"), (999, "999"), (1000, "1,000"), (-1234567, "-1,234,567"), (100000, "100,000")] {
            assert_eq!(int(n), text);
        }
    }

    #[test]
    fn minutes_read_well() {
        for (m, text) in [(0.0, "0 min"), (0.5, "0.5 min"), (37.2, "37 min"), (135.0, "135 min (2.2 h)")] {
            assert_eq!(minutes(m), text);
        }
    }

    #[test]
    fn percentages_never_divide_by_zero() {
        assert_eq!(percent(1.0, 0.0), "–");
        assert_eq!(percent(1.0, 10000.0), "under 0.1 %");
        assert_eq!(percent(1.0, 8.0), "12.5 %");
    }
}
