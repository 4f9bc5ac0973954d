//! The picture of the service dependency graph: Graphviz DOT from the report, and SVG
//! from Debian's `dot` (package graphviz), run with a time limit.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use graph_store::report::{Report, ServiceLink};
use wait_timeout::ChildExt;

use crate::dot::quote;

/// How long `dot` may take: a service graph is small, so this only stops a hung process.
const DOT_TIME_LIMIT: Duration = Duration::from_secs(60);

/// Names longer than this are cut in the picture (the tooltip and the tables have more).
const LABEL_CHARS: usize = 40;
const TOOLTIP_CHARS: usize = 300;

const RED: &str = "#dc2626";

/// How hard `dot` works at fewer crossings (a factor of its iterations, default 1): the
/// crossing minimisation is most of its time on a graph of hundreds of services, and a
/// third of it made the benchmark's picture about a third cheaper.
const MCLIMIT: f64 = 0.3;

/// Longer chains of dependencies are drawn top to bottom.
const MAX_LR_DEPTH: usize = 6;

/// The service graph in Graphviz DOT: a box per service (rounded) or role group (`role:…`,
/// grey), an arrow per [`ServiceLink`] labelled with its edge count; arrows with edges down
/// are red and say how many, arrows that cross data centers are dashed.
///
/// The counts are external labels (`xlabel`), placed once the layout is done: an ordinary
/// edge label is a node of the layout itself (a rank of its own between the two ends),
/// which made `dot` about five times slower on the benchmark's 440 services and 1,400
/// arrows (docs/BENCHMARKS.md, "Nightly report"). `forcelabels` places every one of them,
/// overlapping if need be.
///
/// Nodes get generated ids (`s0`, `s1`, …) and the names go only into quoted, escaped
/// `label` and `tooltip` strings: Graphviz copies node ids into SVG comments and titles,
/// where a hostile name has no business.
pub fn dot(r: &Report) -> String {
    dot_of(&r.service_graph)
}

/// [`dot`] of the report's `service_graph` alone, which graph-store hands over before the
/// rest of the report is read ([`graph_store::report::compute_filled_early`]).
pub fn dot_of(links: &[ServiceLink]) -> String {
    let mut ids: BTreeMap<&str, String> = BTreeMap::new();
    for link in links {
        for name in [link.from.as_str(), link.to.as_str()] {
            let next = format!("s{}", ids.len());
            ids.entry(name).or_insert(next);
        }
    }
    let mut broken_into: BTreeMap<&str, usize> = BTreeMap::new();
    for link in links {
        *broken_into.entry(link.to.as_str()).or_default() += link.broken;
    }

    // Left to right suits the usual shallow graph (consumers → services → stores); a long
    // chain that way would be a thin strip, unreadable once scaled to the page.
    let rankdir = if depth(links) > MAX_LR_DEPTH { "TB" } else { "LR" };
    let mut out = String::from("digraph services {\n");
    let _ = writeln!(
        out,
        "  graph [rankdir={rankdir}, fontname=\"DejaVu Sans\", bgcolor=\"transparent\", nodesep=0.25, ranksep=0.6, pad=0.2, forcelabels=true, mclimit={MCLIMIT}];"
    );
    out.push_str(
        "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#e0ecff\", color=\"#3b6fd8\", \
         fontname=\"DejaVu Sans\", fontsize=11, height=0.3, margin=\"0.12,0.05\"];\n",
    );
    out.push_str(
        "  edge [color=\"#64748b\", fontcolor=\"#334155\", fontname=\"DejaVu Sans\", fontsize=9, arrowsize=0.7];\n",
    );
    for (name, id) in &ids {
        let mut attrs =
            format!("label={}, tooltip={}", quote(&shorten(name, LABEL_CHARS)), quote(&shorten(name, TOOLTIP_CHARS)));
        if name.starts_with("role:") {
            attrs.push_str(", style=filled, fillcolor=\"#f1f5f9\", color=\"#94a3b8\"");
        }
        if broken_into.get(name).copied().unwrap_or(0) > 0 {
            let _ = write!(attrs, ", color=\"{RED}\", penwidth=2, fillcolor=\"#fee2e2\", class=\"broken\"");
        }
        let _ = writeln!(out, "  {id} [{attrs}];");
    }
    for link in links {
        let (from, to) = (&ids[link.from.as_str()], &ids[link.to.as_str()]);
        let mut tooltip = format!("{} → {}: {} edges", shorten(&link.from, 80), shorten(&link.to, 80), link.edges);
        let mut attrs = Vec::new();
        if link.broken > 0 {
            let _ = write!(tooltip, ", {} down", link.broken);
            attrs.push(format!("xlabel={}", quote(&format!("{} ({} down)", link.edges, link.broken))));
            attrs.push(format!("color=\"{RED}\", fontcolor=\"{RED}\", penwidth=2.2, class=\"broken\""));
        } else {
            attrs.push(format!("xlabel=\"{}\"", link.edges));
            attrs.push(format!("penwidth={:.1}", 1.0 + (link.edges as f64).log10().min(2.0)));
        }
        if link.cross_dc {
            tooltip.push_str(", crosses data centers");
            attrs.push("style=dashed".into());
        }
        attrs.push(format!("tooltip={}", quote(&tooltip)));
        let _ = writeln!(out, "  {from} -> {to} [{}];", attrs.join(", "));
    }
    out.push_str("}\n");
    out
}

/// The longest chain of arrows (counting a cycle's arrows once each, at most the number of
/// nodes): levels relaxed until nothing changes, as for longest paths in a DAG.
fn depth(links: &[ServiceLink]) -> usize {
    let nodes = links.iter().flat_map(|l| [l.from.as_str(), l.to.as_str()]).collect::<BTreeSet<_>>();
    let mut level: BTreeMap<&str, usize> = nodes.iter().map(|n| (*n, 0)).collect();
    for _ in 0..nodes.len() {
        let mut changed = false;
        for l in links {
            let next = (level[l.from.as_str()] + 1).min(nodes.len());
            if next > level[l.to.as_str()] {
                level.insert(l.to.as_str(), next);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    level.values().copied().max().unwrap_or(0)
}

/// Draws DOT as SVG with Graphviz's `dot -Tsvg`. The SVG starts at its `<svg` element (no
/// XML prolog or doctype), so it can be written to a file or put inline into HTML as is.
pub fn svg(dot: &str) -> anyhow::Result<String> {
    draw("dot", dot, DOT_TIME_LIMIT)
}

/// The picture being drawn on a thread of its own (Graphviz runs as a child process), so
/// the layout overlaps whatever the caller does meanwhile: reading the rest of the report.
#[derive(Debug)]
pub struct Drawing(std::thread::JoinHandle<anyhow::Result<String>>);

impl Drawing {
    /// Starts [`svg`] of `dot`.
    pub fn start(dot: String) -> Drawing {
        Drawing(std::thread::spawn(move || svg(&dot)))
    }

    /// Waits for the SVG.
    pub fn finish(self) -> anyhow::Result<String> {
        self.0.join().map_err(|_| anyhow::anyhow!("drawing the service graph panicked"))?
    }
}

/// Runs `program -Tsvg` (Graphviz's `dot`, or another layout program of Graphviz's).
fn draw(program: &str, dot: &str, limit: Duration) -> anyhow::Result<String> {
    // The graph goes in from an unnamed temporary file, not a pipe: `edgewatch` dies on
    // SIGPIPE (see `restore_sigpipe`), and `dot` may stop reading early.
    let mut input = tempfile::tempfile().context("a temporary file for `dot`'s input")?;
    input.write_all(dot.as_bytes()).and_then(|()| input.seek(SeekFrom::Start(0))).context("writing `dot`'s input")?;
    let mut child = match Command::new(program)
        .arg("-Tsvg")
        .stdin(Stdio::from(input))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("Graphviz's `{program}` is not installed, so the report has no picture (install graphviz: apt-get install graphviz)")
        }
        Err(e) => return Err(e).context(format!("cannot run Graphviz's `{program}`")),
    };
    // Drain both pipes on threads, so a large picture cannot stall `dot` while we wait.
    let mut stdout = child.stdout.take().context("dot's stdout")?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout.read_to_end(&mut buf).map(|_| buf)
    });
    let mut stderr = child.stderr.take().context("dot's stderr")?;
    let errors = std::thread::spawn(move || {
        let mut buf = String::new();
        let _ = stderr.read_to_string(&mut buf);
        buf
    });
    let status = match child.wait_timeout(limit).context("waiting for `dot`")? {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("Graphviz's `{program} -Tsvg` took more than {} s; gave up", limit.as_secs());
        }
    };
    let output = reader.join().map_err(|_| anyhow::anyhow!("reading from `dot` panicked"))?;
    let errors = errors.join().unwrap_or_default();
    if !status.success() {
        bail!("Graphviz's `{program} -Tsvg` failed ({status}): {}", errors.trim());
    }
    let text =
        String::from_utf8(output.context("reading `dot`'s SVG")?).context("`dot` wrote SVG that is not UTF-8")?;
    match text.find("<svg") {
        Some(start) => Ok(text[start..].to_string()),
        None => bail!("`dot -Tsvg` wrote no <svg> element: {}", errors.trim()),
    }
}

/// The first `max` characters and `…` when there are more.
fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_dot_says_what_to_install() {
        let e = draw("edgewatch-no-such-dot", "digraph g {}", DOT_TIME_LIMIT).unwrap_err().to_string();
        assert!(e.contains("apt-get install graphviz"), "{e}");
    }

    #[test]
    fn long_chains_are_drawn_top_to_bottom() {
        let link = |from: String, to: String| ServiceLink { from, to, edges: 1, broken: 0, cross_dc: false };
        let mut r: Report = serde_json::from_value(serde_json::json!({
            "date": "2026-11-21", "tz": "UTC", "from": "2026-11-21T00:00:00Z", "to": "2026-11-22T00:00:00Z",
            "generated_at": "2026-11-22T00:00:00Z", "has_data": true, "notes": [], "summary": {
                "nodes": 0, "edges": 0, "services": 0, "dcs": 0, "cycles": 0, "failed_cycles": 0,
                "edges_down": 0, "down_minutes": 0.0, "incidents": 0, "worst_hour": null },
            "services": [], "roles": [], "changes": {"new_dependencies": [], "vanished_dependencies": [],
                "new_nodes": [], "retired_nodes": []},
            "cross_dc": [], "broken": [], "incidents": [],
            "hygiene": {"unknown_clients": [], "unresolved_names": [], "services_without_provider": []},
            "service_graph": []
        }))
        .unwrap();
        assert_eq!(depth(&r.service_graph), 0);
        r.service_graph = vec![link("fe".into(), "api".into()), link("api".into(), "db".into())];
        assert_eq!(depth(&r.service_graph), 2);
        assert!(dot(&r).contains("rankdir=LR"));
        // A ring of 10: every chain is cut at the number of nodes.
        r.service_graph = (0..10).map(|i| link(format!("s{i}"), format!("s{}", (i + 1) % 10))).collect();
        assert_eq!(depth(&r.service_graph), 10);
        assert!(dot(&r).contains("rankdir=TB"));
    }

    #[test]
    fn shorten_cuts_on_characters() {
        assert_eq!(shorten("Zürich", 3), "Zür…");
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("", 3), "");
    }
}
