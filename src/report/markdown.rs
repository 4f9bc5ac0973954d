//! The report as a Markdown document (CommonMark with GitHub's tables), readable as text
//! and as rendered. Every name goes through [`escape`].

use std::collections::BTreeMap;
use std::fmt::Write;

use graph_store::report::{Counted, DepChange, NodeChange, Report};

use super::{
    broken_into, count, figures, int, minutes, percent, rtt_change, trouble, Clock, BROKEN, CHANGES, CROSS_DC,
    EVENTS_SHOWN, HYGIENE, INCIDENTS, ROLES, ROUTES, ROUTES_LEAD, SERVICES, SUMMARY,
};

/// The report as Markdown. Sections with nothing in them say "None." when the day has
/// data, and are left out when it has none (the top says so instead).
pub fn markdown(r: &Report) -> String {
    let clock = Clock::new(r);
    let mut doc = Doc { out: String::new(), has_data: r.has_data };
    let out = &mut doc.out;
    let _ = writeln!(out, "# Dependency report for {} ({})\n", r.date, escape(&clock.zone()));
    let _ = writeln!(
        out,
        "From {} to {}; generated {}.\n",
        clock.stamp(&r.from),
        clock.stamp(&r.to),
        clock.stamp(&r.generated_at)
    );
    if !r.has_data {
        let _ = writeln!(out, "> **No data for this day.** The store has no graph and no probe results for it,");
        let _ = writeln!(out, "> so there are no figures to report.");
        if !r.notes.is_empty() {
            let _ = writeln!(out, ">");
        }
    }
    for note in &r.notes {
        let _ = writeln!(out, "> - {}", escape(note));
    }
    if !r.has_data || !r.notes.is_empty() {
        out.push('\n');
    }
    if r.has_data {
        doc.summary(r);
    }
    doc.services(r);
    doc.roles(r);
    doc.changes(r, &clock);
    doc.cross_dc(r);
    doc.broken(r, &clock);
    doc.incidents(r, &clock);
    doc.routes(r, &clock);
    doc.hygiene(r);
    let mut out = doc.out;
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// Escapes text for Markdown, in and outside table cells: the characters that start
/// emphasis, code, links, HTML or end a cell are backslash-escaped or written as entities,
/// and line breaks and other control characters (which would end a table row) become spaces.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '#' | '!' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `a: 3, b: 1`, names escaped.
fn counts(map: &BTreeMap<String, usize>) -> String {
    let mut items: Vec<(&String, &usize)> = map.iter().collect();
    items.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let text: Vec<String> = items.iter().map(|(k, v)| format!("{}: {}", escape(k), int(**v as i64))).collect();
    if text.is_empty() {
        "–".into()
    } else {
        text.join(", ")
    }
}

fn names(list: &[String]) -> String {
    if list.is_empty() {
        "–".into()
    } else {
        list.iter().map(|s| escape(s)).collect::<Vec<_>>().join(", ")
    }
}

/// `db-1 (10.0.0.7)`, or the address alone when no node has it.
fn target(dst: &Option<String>, ip: &str) -> String {
    match dst {
        Some(name) => format!("{} ({})", escape(name), escape(ip)),
        None => format!("{} (no node)", escape(ip)),
    }
}

struct Doc {
    out: String,
    has_data: bool,
}

impl Doc {
    /// The heading, and whether to go on: an empty section says "None." on a day with
    /// data and is left out on one without.
    fn heading(&mut self, level: usize, title: &str, empty: bool) -> bool {
        if empty && !self.has_data {
            return false;
        }
        let _ = writeln!(self.out, "{} {title}\n", "#".repeat(level));
        if empty {
            self.out.push_str("None.\n\n");
        }
        !empty
    }

    /// A table; the cells are already escaped. `right` marks the columns of figures.
    fn table(&mut self, header: &[&str], right: &[bool], rows: impl IntoIterator<Item = Vec<String>>) {
        let out = &mut self.out;
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let rule: Vec<&str> =
            (0..header.len()).map(|i| if right.get(i) == Some(&true) { "---:" } else { "---" }).collect();
        let _ = writeln!(out, "| {} |", rule.join(" | "));
        for row in rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out.push('\n');
    }

    fn summary(&mut self, r: &Report) {
        self.heading(2, SUMMARY.1, false);
        let rows = figures(&r.summary).into_iter().map(|f| {
            vec![
                f.label.to_string(),
                format!("**{}**", escape(&f.value)),
                f.detail.as_deref().map(escape).unwrap_or_default(),
            ]
        });
        self.table(&["Figure", "Value", "Detail"], &[false, true, false], rows);
    }

    fn services(&mut self, r: &Report) {
        if !self.heading(2, SERVICES.1, r.services.is_empty()) {
            return;
        }
        self.out.push_str("Consumers at the end of the day, by data center and by role; DNS queries of the day.\n\n");
        let rows = r.services.iter().map(|s| {
            let broken = broken_into(r, &s.service);
            let name = if broken > 0 {
                format!("{} **({} down)**", escape(&s.service), count(broken, "edge", "edges"))
            } else {
                escape(&s.service)
            };
            vec![
                name,
                int(s.providers as i64),
                int(s.consumers as i64),
                counts(&s.consumers_by_dc),
                counts(&s.consumers_by_role),
                int(s.queries),
            ]
        });
        self.table(
            &["Service", "Providers", "Consumers", "Consumers by DC", "Consumers by role", "Queries"],
            &[false, true, true, false, false, true],
            rows,
        );
    }

    fn roles(&mut self, r: &Report) {
        if !self.heading(2, ROLES.1, r.roles.is_empty()) {
            return;
        }
        self.out.push_str("Services a role's nodes use (with how many of its nodes use each), and the roles its edges go to (with the number of edges).\n\n");
        let rows = r.roles.iter().map(|role| {
            vec![escape(&role.role), int(role.nodes as i64), counts(&role.services), counts(&role.depends_on_roles)]
        });
        self.table(&["Role", "Nodes", "Services used", "Depends on roles"], &[false, true, false, false], rows);
    }

    fn changes(&mut self, r: &Report, clock: &Clock) {
        let c = &r.changes;
        let empty = c.new_dependencies.is_empty()
            && c.vanished_dependencies.is_empty()
            && c.new_nodes.is_empty()
            && c.retired_nodes.is_empty();
        if !self.heading(2, CHANGES.1, empty) {
            return;
        }
        let deps = |doc: &mut Doc, title: &str, list: &[DepChange]| {
            let _ = writeln!(doc.out, "### {title} ({})\n", list.len());
            if list.is_empty() {
                doc.out.push_str("None.\n\n");
                return;
            }
            let rows = list
                .iter()
                .map(|d| vec![clock.time(&d.at), escape(&d.src), target(&d.dst, &d.dst_ip), names(&d.services)]);
            doc.table(&["Time", "Consumer", "Provider", "Services"], &[], rows);
        };
        deps(self, "New dependencies", &c.new_dependencies);
        deps(self, "Vanished dependencies", &c.vanished_dependencies);
        let nodes = |doc: &mut Doc, title: &str, list: &[NodeChange]| {
            let _ = writeln!(doc.out, "### {title} ({})\n", list.len());
            if list.is_empty() {
                doc.out.push_str("None.\n\n");
                return;
            }
            let rows = list.iter().map(|n| {
                vec![
                    clock.time(&n.at),
                    escape(&n.name),
                    escape(&n.host),
                    escape(&n.dc),
                    n.role.as_deref().map(escape).unwrap_or_else(|| "–".into()),
                ]
            });
            doc.table(&["Time", "Node", "Host", "DC", "Role"], &[], rows);
        };
        nodes(self, "New nodes", &c.new_nodes);
        nodes(self, "Retired nodes", &c.retired_nodes);
    }

    fn cross_dc(&mut self, r: &Report) {
        if !self.heading(2, CROSS_DC.1, r.cross_dc.is_empty()) {
            return;
        }
        self.out.push_str("Consumers in one data center using providers in another: the usual cause of 504s when routing changes.\n\n");
        let rows = r.cross_dc.iter().map(|x| {
            vec![
                escape(&x.from_dc),
                escape(&x.to_dc),
                int(x.edges as i64),
                int(x.consumers as i64),
                names(&x.services),
                int(x.queries),
            ]
        });
        self.table(
            &["From DC", "To DC", "Edges", "Consumers", "Services", "Queries"],
            &[false, false, true, true, false, true],
            rows,
        );
    }

    fn broken(&mut self, r: &Report, clock: &Clock) {
        if !self.heading(2, BROKEN.1, r.broken.is_empty()) {
            return;
        }
        let rows = r.broken.iter().map(|b| {
            let mut status = format!("**{}**", trouble(b).as_str().to_uppercase());
            if b.flapping && b.down_minutes > 0.0 {
                status.push_str(", flapping");
            }
            vec![
                status,
                escape(&b.src),
                target(&b.dst, &b.dst_ip),
                names(&b.services),
                minutes(b.down_minutes),
                format!(
                    "{} / {} ({})",
                    int(b.failed_cycles),
                    int(b.cycles),
                    percent(b.failed_cycles as f64, b.cycles as f64)
                ),
                events(b, clock),
            ]
        });
        self.table(
            &["State", "Consumer", "Provider", "Services", "Down", "Failed / cycles", "Events"],
            &[false, false, false, false, true, true, false],
            rows,
        );
    }

    fn incidents(&mut self, r: &Report, clock: &Clock) {
        if !self.heading(2, INCIDENTS.1, r.incidents.is_empty()) {
            return;
        }
        let rows = r.incidents.iter().map(|i| {
            vec![
                escape(&i.kind),
                escape(&i.culprit),
                clock.time(&i.since),
                i.until.as_ref().map(|u| clock.time(u)).unwrap_or_else(|| "still open".into()),
                int(i.edges as i64),
                escape(&i.evidence),
            ]
        });
        self.table(
            &["Kind", "Culprit", "Since", "Until", "Edges", "Evidence"],
            &[false, false, false, false, true],
            rows,
        );
    }

    fn routes(&mut self, r: &Report, clock: &Clock) {
        if !self.heading(2, ROUTES.1, r.route_changes.is_empty()) {
            return;
        }
        let _ = writeln!(self.out, "{ROUTES_LEAD}\n");
        let rows = r
            .route_changes
            .iter()
            .map(|x| vec![escape(&x.from_dc), escape(&x.to_dc), int(x.changes as i64), int(x.pairs.len() as i64)]);
        self.table(&["From DC", "To DC", "Changes", "Host pairs"], &[false, false, true, true], rows);
        let addrs = |a: &[String]| if a.is_empty() { "*".to_string() } else { escape(&a.join(", ")) };
        let rows = r.route_changes.iter().flat_map(|x| {
            x.pairs.iter().flat_map(move |p| {
                p.changes.iter().map(move |c| {
                    vec![
                        clock.time(&c.at),
                        format!("{} → {}", escape(&p.src), escape(&p.dst)),
                        c.ttl.map(|t| t.to_string()).unwrap_or_default(),
                        format!("{} → {}", addrs(&c.old_addrs), addrs(&c.new_addrs)),
                        rtt_change(c.rtt_before_ms, c.rtt_after_ms),
                    ]
                })
            })
        });
        self.table(
            &["Time", "Pair", "First different hop", "Old → new", "RTT before → after"],
            &[false, false, true],
            rows,
        );
        let rows = r.route_changes.iter().flat_map(|x| {
            x.pairs.iter().flat_map(|p| {
                p.paths.iter().map(move |m| {
                    vec![
                        format!("{} → {}", escape(&p.src), escape(&p.dst)),
                        escape(&m.path),
                        format!("{:.0}", m.minutes),
                    ]
                })
            })
        });
        self.table(&["Pair", "Path (hops in order)", "Minutes"], &[false, false, true], rows);
    }

    fn hygiene(&mut self, r: &Report) {
        let h = &r.hygiene;
        let empty =
            h.unknown_clients.is_empty() && h.unresolved_names.is_empty() && h.services_without_provider.is_empty();
        if !self.heading(2, HYGIENE.1, empty) {
            return;
        }
        self.out.push_str("What the CMDB lacks, as seen in DNS discovery (counts since the store began).\n\n");
        let list = |doc: &mut Doc, title: &str, what: &str, items: &[Counted]| {
            let _ = writeln!(doc.out, "### {title}\n");
            if items.is_empty() {
                doc.out.push_str("None.\n\n");
                return;
            }
            doc.table(&[what, "Queries"], &[false, true], items.iter().map(|c| vec![escape(&c.name), int(c.count)]));
        };
        list(self, "Top unknown clients", "Client address", &h.unknown_clients);
        list(self, "Unresolved names", "Name", &h.unresolved_names);
        list(self, "Services without a provider", "Service", &h.services_without_provider);
    }
}

/// `14:03:10 up → down; 14:20:00 down → up`, the first [`EVENTS_SHOWN`] and a count of the rest.
fn events(b: &graph_store::report::BrokenDay, clock: &Clock) -> String {
    if b.events.is_empty() {
        return "–".into();
    }
    let mut text: Vec<String> =
        b.events.iter().take(EVENTS_SHOWN).map(|e| format!("{} {} → {}", clock.time_s(&e.at), e.from, e.to)).collect();
    if b.events.len() > EVENTS_SHOWN {
        text.push(format!("and {} more", b.events.len() - EVENTS_SHOWN));
    }
    text.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markdown_and_html() {
        let cases = [
            ("plain-name.fra", "plain-name.fra"),
            ("a|b", "a\\|b"),
            ("`code`", "\\`code\\`"),
            ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
            ("&amp;", "&amp;amp;"),
            ("*bold* _it_", "\\*bold\\* \\_it\\_"),
            ("[x](http://e)", "\\[x\\](http://e)"),
            ("C:\\x", "C:\\\\x"),
            ("line\nbreak\ttab", "line break tab"),
            ("Zürich-DC", "Zürich-DC"),
        ];
        for (name, want) in cases {
            assert_eq!(escape(name), want, "{name:?}");
        }
    }
}
