//! What the check saw (the diagnosis, filtered) and the plugin's answer from it: the state
//! the thresholds give, and the text: one first line `EDGEWATCH STATE - summary | perfdata`,
//! then the long output (incidents, problem servers, flapping and stale edges).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use graph_store::diagnosis::{Diagnosis, EdgeFact, Incident};
use graph_store::format_utc;
use graph_store::vocab::HealthState;

use super::{clean, Range, State};
use crate::cli::NagiosBy;
use crate::labels::Labels;

/// How many problem servers and edges the long output lists before "… and N more".
const LONG_OUTPUT_ITEMS: usize = 40;

/// When the answer is WARNING or CRITICAL.
#[derive(Debug, Clone)]
pub struct Thresholds {
    pub warning: Option<Range>,
    pub critical: Option<Range>,
    /// What the ranges count.
    pub by: NagiosBy,
    /// Flapping edges make the state CRITICAL (else WARNING at most).
    pub flapping_is_critical: bool,
}

/// Which edges the check counts: those from consumers in this data center, of this role,
/// learned for this service (each when given).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub dc: Option<String>,
    pub role: Option<String>,
    pub service: Option<String>,
}

impl Filter {
    fn keeps(&self, e: &EdgeFact) -> bool {
        self.dc.as_ref().is_none_or(|dc| *e.src_dc == **dc)
            && self.role.as_ref().is_none_or(|role| e.src_role.as_deref() == Some(role.as_str()))
            && self.service.as_ref().is_none_or(|s| e.services.iter().any(|x| **x == **s))
    }

    fn is_empty(&self) -> bool {
        self.dc.is_none() && self.role.is_none() && self.service.is_none()
    }
}

/// How old the newest probe result is, or why the check cannot answer: no result at all,
/// or none newer than `max_age`.
pub fn data_age(newest: Option<DateTime<Utc>>, now: DateTime<Utc>, max_age: Duration) -> Result<Duration, String> {
    let Some(newest) = newest else {
        return Err("no probe result at all yet: are the probers (edgewatch probe, agents) running?".to_string());
    };
    let age = (now - newest).to_std().unwrap_or_default();
    if age > max_age {
        return Err(format!(
            "no probe result newer than {} (the newest is {} old, from {}): are the probers running?",
            humantime::format_duration(max_age),
            humantime::format_duration(Duration::from_secs(age.as_secs())),
            format_utc(&newest)
        ));
    }
    Ok(age)
}

/// What the check saw: the diagnosis, filtered.
#[derive(Debug)]
pub struct Answer {
    live_edges: i64,
    /// The edges in trouble that pass the filter.
    trouble: Vec<EdgeFact>,
    /// The incidents, cut down to the edges that pass the filter.
    incidents: Vec<Incident>,
    data_age: Duration,
    /// Whose network the path evidence's addresses are in.
    labels: Labels,
}

impl Answer {
    pub fn new(diagnosis: Diagnosis, filter: &Filter, data_age: Duration) -> Answer {
        let Diagnosis { live_edges, mut trouble, mut incidents, .. } = diagnosis;
        if !filter.is_empty() {
            trouble.retain(|e| filter.keeps(e));
            let kept: BTreeSet<(&str, &str)> = trouble.iter().map(|e| (&*e.src, &*e.dst_ip)).collect();
            incidents.retain_mut(|i| {
                i.edges.retain(|e| kept.contains(&(e.src.as_str(), e.dst_ip.as_str())));
                i.affected_nodes = i.edges.iter().map(|e| &e.src).collect::<BTreeSet<_>>().len();
                !i.edges.is_empty()
            });
        }
        Answer { live_edges, trouble, incidents, data_age, labels: Labels::default() }
    }

    /// Names the owners (and AS) of the addresses in the incidents' path evidence.
    pub fn with_labels(mut self, labels: Labels) -> Answer {
        self.labels = labels;
        self
    }

    pub fn incidents(&self) -> &[Incident] {
        &self.incidents
    }

    pub fn broken(&self) -> impl Iterator<Item = &EdgeFact> {
        self.trouble.iter().filter(|e| e.broken())
    }

    pub fn flapping(&self) -> impl Iterator<Item = &EdgeFact> {
        self.trouble.iter().filter(|e| e.flapping)
    }

    /// Edges nobody has probed for a while (a prober or agent gone silent).
    fn stale(&self) -> impl Iterator<Item = &EdgeFact> {
        self.trouble.iter().filter(|e| e.state == HealthState::Stale)
    }

    fn affected_nodes(&self) -> usize {
        self.broken().map(|e| &e.src).collect::<BTreeSet<_>>().len()
    }

    /// The measured value the thresholds apply to.
    fn value(&self, by: NagiosBy) -> usize {
        match by {
            NagiosBy::Edges => self.broken().count(),
            NagiosBy::Nodes => self.affected_nodes(),
        }
    }

    pub fn state(&self, t: &Thresholds) -> State {
        let value = self.value(t.by) as f64;
        let flapping = self.flapping().next().is_some();
        if t.critical.as_ref().is_some_and(|c| c.alerts(value)) || (flapping && t.flapping_is_critical) {
            State::Critical
        } else if t.warning.as_ref().is_some_and(|w| w.alerts(value)) || flapping {
            State::Warning
        } else {
            State::Ok
        }
    }

    /// The whole plugin output: first line with perfdata, then the long output.
    pub fn text(&self, t: &Thresholds) -> String {
        let mut out = self.first_line(t);
        self.incident_lines(&mut out);
        self.server_lines(&mut out);
        self.flapping_and_stale_lines(&mut out);
        out
    }

    fn first_line(&self, t: &Thresholds) -> String {
        let range = |r: &Option<Range>| r.as_ref().map(|r| r.to_string()).unwrap_or_default();
        let (w, c) = (range(&t.warning), range(&t.critical));
        let (bw, bc, nw, nc) = match t.by {
            NagiosBy::Edges => (w.as_str(), c.as_str(), "", ""),
            NagiosBy::Nodes => ("", "", w.as_str(), c.as_str()),
        };
        format!(
            "EDGEWATCH {} - {} | broken_edges={};{bw};{bc};0 affected_nodes={};{nw};{nc};0 \
             incidents={};;;0 flapping_edges={};;;0 stale_edges={};;;0 data_age={}s;;;0\n",
            self.state(t).name(),
            self.summary(),
            self.broken().count(),
            self.affected_nodes(),
            self.incidents.len(),
            self.flapping().count(),
            self.stale().count(),
            self.data_age.as_secs()
        )
    }

    /// What is broken, the top three incidents first, and how much flaps.
    fn summary(&self) -> String {
        let broken = self.broken().count();
        let mut summary = if broken == 0 {
            format!("no broken edges among {} live", self.live_edges)
        } else {
            let top: Vec<String> = self
                .incidents
                .iter()
                .take(3)
                .map(|i| format!("{} {} ({} edges)", i.kind.as_str(), clean(&i.culprit), i.edges.len()))
                .collect();
            let more = self.incidents.len().saturating_sub(3);
            format!(
                "{broken} broken edges, {} nodes affected, {} incidents: {}{}",
                self.affected_nodes(),
                self.incidents.len(),
                top.join(", "),
                if more > 0 { format!(", and {more} more") } else { String::new() }
            )
        };
        let flapping = self.flapping().count();
        if flapping > 0 {
            let _ = write!(summary, "; {flapping} flapping edges");
        }
        summary
    }

    fn incident_lines(&self, out: &mut String) {
        for i in self.incidents.iter().take(LONG_OUTPUT_ITEMS) {
            let _ = writeln!(
                out,
                "incident {} {}: {} (since {})",
                i.kind.as_str(),
                clean(&i.culprit),
                clean(&i.evidence),
                format_utc(&i.since)
            );
            for e in &i.paths {
                let _ = writeln!(out, "  {}", clean(&crate::path_evidence::line(e, &self.labels)));
            }
        }
        if self.incidents.len() > LONG_OUTPUT_ITEMS {
            let _ = writeln!(out, "… and {} more incidents", self.incidents.len() - LONG_OUTPUT_ITEMS);
        }
    }

    /// The problem servers, worst (most disconnects) first.
    fn server_lines(&self, out: &mut String) {
        let mut by_node: BTreeMap<&str, Vec<&EdgeFact>> = BTreeMap::new();
        for e in self.broken() {
            by_node.entry(&e.src).or_default().push(e);
        }
        let mut nodes: Vec<(&str, Vec<&EdgeFact>)> = by_node.into_iter().collect();
        nodes.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
        for (node, edges) in nodes.iter().take(LONG_OUTPUT_ITEMS) {
            let first = edges[0];
            let dests: Vec<String> = edges
                .iter()
                .map(|e| match &e.dst {
                    Some(d) => format!("{} ({})", e.dst_ip, clean(d)),
                    None => e.dst_ip.to_string(),
                })
                .collect();
            let _ = writeln!(
                out,
                "{} [{} {}]: {} disconnects: {}",
                clean(node),
                clean(&first.src_dc),
                clean(first.src_role.as_deref().unwrap_or("-")),
                edges.len(),
                dests.join(", ")
            );
        }
        if nodes.len() > LONG_OUTPUT_ITEMS {
            let _ = writeln!(out, "… and {} more problem servers", nodes.len() - LONG_OUTPUT_ITEMS);
        }
    }

    fn flapping_and_stale_lines(&self, out: &mut String) {
        let flapping = self.flapping().count();
        if flapping > 0 {
            let list: Vec<String> =
                self.flapping().take(LONG_OUTPUT_ITEMS).map(|e| format!("{} -> {}", clean(&e.src), e.dst_ip)).collect();
            let _ = writeln!(out, "flapping ({flapping}): {}", list.join(", "));
        }
        let stale: Vec<String> =
            self.stale().take(LONG_OUTPUT_ITEMS).map(|e| format!("{} -> {}", clean(&e.src), e.dst_ip)).collect();
        if !stale.is_empty() {
            let _ = writeln!(out, "stale ({}, no recent results): {}", self.stale().count(), stale.join(", "));
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::Arc;

    use graph_store::diagnosis::{BrokenRef, IncidentKind};

    use super::*;

    pub fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// An edge from `src` (on host `h-<src>`, DC Tx, role be) to `dst_ip`, for db1.
    pub fn edge(src: &str, dst_ip: &str, state: HealthState) -> EdgeFact {
        EdgeFact {
            src: src.into(),
            src_host: format!("h-{src}").into(),
            src_dc: "Tx".into(),
            src_role: Some("be".into()),
            dst_ip: dst_ip.into(),
            dst: None,
            dst_host: None,
            dst_dc: None,
            services: Arc::new(["db1".into()]),
            state,
            flapping: false,
            since: at("2026-11-22T10:00:00Z"),
        }
    }

    pub fn flapping(src: &str, dst_ip: &str) -> EdgeFact {
        EdgeFact { flapping: true, ..edge(src, dst_ip, HealthState::Up) }
    }

    fn incident(culprit: &str, edges: &[(&str, &str)]) -> Incident {
        let edges: Vec<BrokenRef> = edges
            .iter()
            .map(|(src, ip)| BrokenRef { src: src.to_string(), dst_ip: ip.to_string(), dst: None })
            .collect();
        Incident {
            kind: IncidentKind::NodeUnreachable,
            culprit: culprit.into(),
            evidence: format!("{} of its consumers cannot reach it", edges.len()),
            since: at("2026-11-22T10:00:00Z"),
            affected_nodes: edges.iter().map(|e| &e.src).collect::<BTreeSet<_>>().len(),
            edges,
            paths: Vec::new(),
        }
    }

    pub fn answer(trouble: Vec<EdgeFact>, incidents: Vec<Incident>) -> Answer {
        let diagnosis = Diagnosis { computed_at: at("2026-11-22T10:05:00Z"), live_edges: 12, incidents, trouble };
        Answer::new(diagnosis, &Filter::default(), Duration::from_secs(42))
    }

    /// Three broken edges from two nodes (a twice), all to x.
    fn three_broken() -> Vec<EdgeFact> {
        vec![
            edge("a", "10.0.0.1", HealthState::Down),
            edge("a", "10.0.0.2", HealthState::Down),
            edge("b", "10.0.0.1", HealthState::Down),
        ]
    }

    fn thresholds(warning: Option<&str>, critical: Option<&str>, by: NagiosBy) -> Thresholds {
        let range = |r: Option<&str>| r.map(|r| Range::parse(r).unwrap());
        Thresholds { warning: range(warning), critical: range(critical), by, flapping_is_critical: false }
    }

    #[test]
    fn the_state_comes_from_the_count_the_ranges_and_flapping() {
        use NagiosBy::{Edges, Nodes};
        // 3 broken edges from 2 nodes. -w, -c, --by, one more edge flapping,
        // --flapping-is-critical, and the state they give.
        type Case = (Option<&'static str>, Option<&'static str>, NagiosBy, bool, bool, State);
        let cases: [Case; 13] = [
            (None, None, Edges, false, false, State::Ok),
            (None, Some("0"), Edges, false, false, State::Critical),
            (None, Some("3"), Edges, false, false, State::Ok),
            (Some("2"), Some("3"), Edges, false, false, State::Warning),
            (Some("@0:5"), Some("~:1000"), Edges, false, false, State::Warning),
            (Some("@4:5"), Some("~:1000"), Edges, false, false, State::Ok),
            (None, Some("@3:3"), Edges, false, false, State::Critical),
            (None, Some("4:"), Edges, false, false, State::Critical),
            (None, Some("2"), Nodes, false, false, State::Ok),
            (None, Some("1"), Nodes, false, false, State::Critical),
            (None, Some("1000"), Edges, true, false, State::Warning),
            (None, Some("1000"), Edges, true, true, State::Critical),
            (None, None, Edges, true, true, State::Critical),
        ];
        for (warning, critical, by, flaps, flapping_is_critical, want) in cases {
            let mut trouble = three_broken();
            if flaps {
                trouble.push(flapping("c", "10.0.0.3"));
            }
            let mut t = thresholds(warning, critical, by);
            t.flapping_is_critical = flapping_is_critical;
            let got = answer(trouble, vec![]).state(&t);
            assert_eq!(
                got, want,
                "-w {warning:?} -c {critical:?} --by {by:?} flapping {flaps} critical {flapping_is_critical}"
            );
        }
        // Nothing broken at all: OK under the default -c 0.
        assert_eq!(answer(vec![], vec![]).state(&thresholds(None, Some("0"), Edges)), State::Ok);
    }

    #[test]
    fn the_first_line_has_the_summary_and_the_perfdata() {
        let many_incidents = vec![
            incident("x", &[("a", "10.0.0.1"), ("b", "10.0.0.1")]),
            incident("y", &[("a", "10.0.0.2")]),
            incident("z", &[("a", "10.0.0.2")]),
            incident("w", &[("a", "10.0.0.2")]),
        ];
        let mut with_flapping_and_stale = three_broken();
        with_flapping_and_stale.push(flapping("c", "10.0.0.3"));
        with_flapping_and_stale.push(edge("d", "10.0.0.4", HealthState::Stale));
        let cases = [
            (
                answer(vec![], vec![]),
                thresholds(None, Some("0"), NagiosBy::Edges),
                "EDGEWATCH OK - no broken edges among 12 live | broken_edges=0;;0;0 affected_nodes=0;;;0 \
                 incidents=0;;;0 flapping_edges=0;;;0 stale_edges=0;;;0 data_age=42s;;;0",
            ),
            (
                answer(three_broken(), many_incidents[..1].to_vec()),
                thresholds(Some("1"), Some("5"), NagiosBy::Edges),
                "EDGEWATCH WARNING - 3 broken edges, 2 nodes affected, 1 incidents: node-unreachable x (2 edges) \
                 | broken_edges=3;1;5;0 affected_nodes=2;;;0 incidents=1;;;0 flapping_edges=0;;;0 \
                 stale_edges=0;;;0 data_age=42s;;;0",
            ),
            (
                answer(with_flapping_and_stale, many_incidents),
                thresholds(Some("1"), Some("@2"), NagiosBy::Nodes),
                "EDGEWATCH CRITICAL - 3 broken edges, 2 nodes affected, 4 incidents: node-unreachable x (2 edges), \
                 node-unreachable y (1 edges), node-unreachable z (1 edges), and 1 more; 1 flapping edges \
                 | broken_edges=3;;;0 affected_nodes=2;1;@2;0 incidents=4;;;0 flapping_edges=1;;;0 \
                 stale_edges=1;;;0 data_age=42s;;;0",
            ),
        ];
        for (answer, t, want) in cases {
            assert_eq!(answer.text(&t).lines().next().unwrap(), want);
        }
    }

    #[test]
    fn the_long_output_lists_incidents_problem_servers_flapping_and_stale_edges() {
        let mut trouble = three_broken();
        trouble[0].dst = Some("db1a.host7".into());
        trouble[2].src_role = None;
        trouble.push(flapping("c", "10.0.0.3"));
        trouble.push(edge("d", "10.0.0.4", HealthState::Stale));
        trouble.push(edge("e", "10.0.0.5", HealthState::Stale));
        let answer = answer(trouble, vec![incident("x", &[("a", "10.0.0.1"), ("b", "10.0.0.1")])]);
        let text = answer.text(&thresholds(None, Some("0"), NagiosBy::Edges));
        let long: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            long,
            [
                "incident node-unreachable x: 2 of its consumers cannot reach it (since 2026-11-22T10:00:00Z)",
                "a [Tx be]: 2 disconnects: 10.0.0.1 (db1a.host7), 10.0.0.2",
                "b [Tx -]: 1 disconnects: 10.0.0.1",
                "flapping (1): c -> 10.0.0.3",
                "stale (2, no recent results): d -> 10.0.0.4, e -> 10.0.0.5",
            ]
        );
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn an_incident_line_is_followed_by_its_path_evidence() {
        let mut i = incident("x", &[("a", "10.0.0.1"), ("b", "10.0.0.1")]);
        i.paths.push(graph_store::paths::PathEvidence {
            src: "h1".into(),
            dst: "h2".into(),
            changed_at: Some(at("2026-11-22T09:58:00Z")),
            changed_ttl: Some(7),
            old_addrs: vec!["52.93.1.1".into()],
            new_addrs: vec!["52.93.128.156".into()],
            loss_ttl: None,
            loss_since: None,
            loss_addrs: vec![],
            loss_pct: None,
        });
        let owners = graph_store::paths::Owners::new([("52.93.0.0/16", "AWS")]).unwrap();
        let answer = answer(three_broken(), vec![i]).with_labels(Labels::new(owners, Default::default()));
        let text = answer.text(&thresholds(None, Some("0"), NagiosBy::Edges));
        let long: Vec<&str> = text.lines().skip(1).take(2).collect();
        assert_eq!(
            long[1],
            "  path h1 → h2 changed at 2026-11-22T09:58:00Z, first different hop 7: 52.93.1.1 (AWS) → 52.93.128.156 (AWS)"
        );
    }

    #[test]
    fn the_long_output_stops_at_forty_of_each() {
        let trouble: Vec<EdgeFact> =
            (0..45).map(|i| edge(&format!("n{i:02}"), "10.0.0.1", HealthState::Down)).collect();
        let incidents: Vec<Incident> = (0..43).map(|i| incident(&format!("c{i}"), &[("n00", "10.0.0.1")])).collect();
        let text = answer(trouble, incidents).text(&thresholds(None, Some("0"), NagiosBy::Edges));
        let long: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(long.iter().filter(|l| l.starts_with("incident ")).count(), 40);
        assert_eq!(long.iter().filter(|l| l.contains(" disconnects: ")).count(), 40);
        assert!(long.contains(&"… and 3 more incidents"), "{text}");
        assert!(long.contains(&"… and 5 more problem servers"), "{text}");
        assert_eq!(long.len(), 40 + 1 + 40 + 1);
    }

    #[test]
    fn names_cannot_break_the_plugin_output() {
        let mut e = edge("a|b\nc", "10.0.0.1", HealthState::Down);
        e.src_dc = "T|x".into();
        let answer = answer(vec![e], vec![incident("evil|culprit\nline", &[("a|b\nc", "10.0.0.1")])]);
        let text = answer.text(&thresholds(None, Some("0"), NagiosBy::Edges));
        let first = text.lines().next().unwrap();
        assert_eq!(first.matches('|').count(), 1, "{first}");
        assert!(first.contains("node-unreachable evil¦culprit line (1 edges)"), "{first}");
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.contains("\na¦b c [T¦x be]: 1 disconnects: 10.0.0.1\n"), "{text}");
    }

    #[test]
    fn filters_keep_their_edges_and_cut_the_incidents_down_to_them() {
        let mut va = edge("v", "10.0.0.9", HealthState::Down);
        va.src_dc = "VA".into();
        let mut api = edge("b", "10.0.0.1", HealthState::Down);
        api.services = Arc::new(["api".into()]);
        api.src_role = Some("fe".into());
        let trouble = vec![edge("a", "10.0.0.1", HealthState::Down), api, va];
        let incidents =
            vec![incident("x", &[("a", "10.0.0.1"), ("b", "10.0.0.1")]), incident("y", &[("v", "10.0.0.9")])];
        let diagnosis = Diagnosis { computed_at: at("2026-11-22T10:05:00Z"), live_edges: 12, incidents, trouble };
        let cases = [
            (Filter::default(), vec!["a", "b", "v"], vec![("x", 2), ("y", 1)]),
            (Filter { dc: Some("VA".into()), ..Filter::default() }, vec!["v"], vec![("y", 1)]),
            (Filter { dc: Some("Tx".into()), ..Filter::default() }, vec!["a", "b"], vec![("x", 2)]),
            (Filter { role: Some("fe".into()), ..Filter::default() }, vec!["b"], vec![("x", 1)]),
            (Filter { service: Some("db1".into()), ..Filter::default() }, vec!["a", "v"], vec![("x", 1), ("y", 1)]),
            (Filter { role: Some("none".into()), ..Filter::default() }, vec![], vec![]),
        ];
        for (filter, srcs, incidents) in cases {
            let answer = Answer::new(diagnosis.clone(), &filter, Duration::ZERO);
            let got: Vec<&str> = answer.broken().map(|e| &*e.src).collect();
            assert_eq!(got, srcs, "{filter:?}");
            let got: Vec<(&str, usize)> =
                answer.incidents.iter().map(|i| (i.culprit.as_str(), i.affected_nodes)).collect();
            assert_eq!(got, incidents, "{filter:?}");
        }
    }

    #[test]
    fn old_or_missing_results_are_no_answer() {
        let now = at("2026-11-22T10:00:00Z");
        let six_minutes = Duration::from_secs(360);
        assert_eq!(data_age(Some(at("2026-11-22T09:59:50Z")), now, six_minutes), Ok(Duration::from_secs(10)));
        assert_eq!(data_age(Some(at("2026-11-22T09:54:00Z")), now, six_minutes), Ok(six_minutes));
        // A clock a little behind the store's: no age, not an error.
        assert_eq!(data_age(Some(at("2026-11-22T10:00:01Z")), now, six_minutes), Ok(Duration::ZERO));
        let cases = [
            (None, "no probe result at all yet: are the probers (edgewatch probe, agents) running?"),
            (
                Some(at("2026-11-22T09:49:59Z")),
                "no probe result newer than 6m (the newest is 10m 1s old, from 2026-11-22T09:49:59Z): \
                 are the probers running?",
            ),
        ];
        for (newest, want) in cases {
            assert_eq!(data_age(newest, now, six_minutes), Err(want.to_string()), "{newest:?}");
        }
    }
}
