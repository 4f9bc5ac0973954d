//! Passive results: one `PROCESS_SERVICE_CHECK_RESULT` per problem host (the consumers'
//! hosts), and a recovery for each host that had a problem last time and has none now, as
//! lines for Nagios's external command file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use graph_store::diagnosis::EdgeFact;

use super::{clean, Answer, State};

/// One host's passive result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassiveResult {
    pub host: String,
    pub state: State,
    /// The plugin output, cleaned.
    pub text: String,
}

/// A result per host with broken or flapping edges (CRITICAL when something is broken,
/// or flaps and `flapping_is_critical`; else WARNING), by host name; then an OK for each
/// host of `previous` (the hosts with a problem last time) that has none now.
pub fn passive_results(answer: &Answer, flapping_is_critical: bool, previous: &[String]) -> Vec<PassiveResult> {
    let mut hosts: BTreeMap<&str, (Vec<&EdgeFact>, Vec<&EdgeFact>)> = BTreeMap::new();
    for e in answer.broken() {
        hosts.entry(&e.src_host).or_default().0.push(e);
    }
    for e in answer.flapping() {
        hosts.entry(&e.src_host).or_default().1.push(e);
    }
    let mut results: Vec<PassiveResult> =
        hosts.iter().map(|(host, (broken, flapping))| problem(host, broken, flapping, flapping_is_critical)).collect();
    for host in previous {
        if !hosts.contains_key(host.as_str()) {
            let text = format!("EDGEWATCH OK - {}: every edge reachable again", clean(host));
            results.push(PassiveResult { host: host.clone(), state: State::Ok, text });
        }
    }
    results
}

fn problem(host: &str, broken: &[&EdgeFact], flapping: &[&EdgeFact], flapping_is_critical: bool) -> PassiveResult {
    let state = if !broken.is_empty() || (flapping_is_critical && !flapping.is_empty()) {
        State::Critical
    } else {
        State::Warning
    };
    let nodes: BTreeSet<&str> = broken.iter().map(|e| &*e.src).collect();
    let mut text =
        format!("EDGEWATCH {} - {}: {} broken edges from {} containers", state.name(), host, broken.len(), nodes.len());
    if !flapping.is_empty() {
        let _ = write!(text, ", {} flapping", flapping.len());
    }
    let dests: Vec<String> = broken.iter().take(10).map(|e| format!("{} -> {}", e.src, e.dst_ip)).collect();
    if !dests.is_empty() {
        let _ = write!(text, ": {}", dests.join(", "));
    }
    PassiveResult { host: host.to_string(), state, text: clean(&text) }
}

/// The external command lines for `results`, stamped `now` (Unix seconds).
pub fn command_lines(results: &[PassiveResult], service: &str, now: i64) -> String {
    let mut lines = String::new();
    for r in results {
        let _ = writeln!(
            lines,
            "[{now}] PROCESS_SERVICE_CHECK_RESULT;{};{service};{};{}",
            clean(&r.host),
            r.state.code(),
            r.text
        );
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::super::answer::tests::{answer, edge, flapping};
    use super::*;
    use graph_store::vocab::HealthState;

    #[test]
    fn one_result_per_problem_host_and_a_recovery_for_each_host_that_cleared() {
        let mut b = edge("b", "10.0.0.1", HealthState::Down);
        b.src_host = "h-a".into();
        let trouble = vec![
            edge("a", "10.0.0.1", HealthState::Down),
            edge("a", "10.0.0.2", HealthState::Down),
            b,
            flapping("a", "10.0.0.3"),
            flapping("c", "10.0.0.3"),
        ];
        let answer = answer(trouble, vec![]);
        let previous = vec!["h-a".to_string(), "h|gone".to_string()];
        let cases = [
            (false, State::Warning, "EDGEWATCH WARNING - h-c: 0 broken edges from 0 containers, 1 flapping"),
            (true, State::Critical, "EDGEWATCH CRITICAL - h-c: 0 broken edges from 0 containers, 1 flapping"),
        ];
        for (flapping_is_critical, c_state, c_text) in cases {
            let got = passive_results(&answer, flapping_is_critical, &previous);
            let want = [
                (
                    "h-a",
                    State::Critical,
                    "EDGEWATCH CRITICAL - h-a: 3 broken edges from 2 containers, 1 flapping: \
                     a -> 10.0.0.1, a -> 10.0.0.2, b -> 10.0.0.1",
                ),
                ("h-c", c_state, c_text),
                ("h|gone", State::Ok, "EDGEWATCH OK - h¦gone: every edge reachable again"),
            ];
            let got: Vec<(&str, State, &str)> =
                got.iter().map(|r| (r.host.as_str(), r.state, r.text.as_str())).collect();
            assert_eq!(got, want, "flapping_is_critical {flapping_is_critical}");
        }
    }

    #[test]
    fn at_most_ten_broken_edges_are_named_per_host() {
        let trouble: Vec<EdgeFact> = (0..12)
            .map(|i| EdgeFact { src_host: "h".into(), ..edge("a", &format!("10.0.0.{i}"), HealthState::Down) })
            .collect();
        let got = passive_results(&answer(trouble, vec![]), false, &[]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].text.matches(" -> ").count(), 10, "{}", got[0].text);
        assert!(got[0].text.starts_with("EDGEWATCH CRITICAL - h: 12 broken edges from 1 containers: "));
    }

    #[test]
    fn command_lines_follow_nagios_external_command_syntax() {
        let results = [
            PassiveResult { host: "h\n1".into(), state: State::Critical, text: "EDGEWATCH CRITICAL - x".into() },
            PassiveResult { host: "h2".into(), state: State::Ok, text: "EDGEWATCH OK - y".into() },
        ];
        assert_eq!(
            command_lines(&results, "edgewatch connectivity", 1_790_000_000),
            "[1790000000] PROCESS_SERVICE_CHECK_RESULT;h 1;edgewatch connectivity;2;EDGEWATCH CRITICAL - x\n\
             [1790000000] PROCESS_SERVICE_CHECK_RESULT;h2;edgewatch connectivity;0;EDGEWATCH OK - y\n"
        );
        assert_eq!(command_lines(&[], "s", 0), "");
    }
}
