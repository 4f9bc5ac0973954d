//! The nightly report's renderings from a [`Report`] value: Markdown (read back with a
//! CommonMark parser), the service graph as DOT and SVG (Graphviz's `dot`, read back as
//! XML), and the HTML page (read back with an HTML parser, then opened in headless
//! Chromium, which takes a screenshot that must be a real picture).
//!
//! The reports are built here in code: a realistic day full of hostile CMDB names, and a
//! day without data. [`check_renderings`] holds only what is true of any report, so a
//! report from `edgewatch report --format json` takes one line; the tests add what they
//! know of their own reports.
//!
//! Needs Debian's graphviz and chromium, which `make test` installs
//! (`scripts/install-deps.sh report`). Without them, and not root, the picture and the
//! screenshot are skipped, saying so; under CI, or as root, a missing tool is a failure.
//! The files are left in `target/tmp/report_render/` to look at.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use common::tool;
use edgewatch::report;
use graph_store::report::{
    BrokenDay, Changes, Counted, CrossDc, DepChange, EventDay, Hygiene, IncidentDay, NodeChange, PairRoutes,
    PathMinutes, Report, RoleDeps, RouteChangeDay, RouteChangesDc, ServiceDeps, ServiceLink, Summary, WorstHour,
};
use graph_store::vocab::EventState;
use wait_timeout::ChildExt;

const XSS: &str = "<script>alert(1)</script>";
const IMG: &str = "<img src=x onerror=alert(1)>&amp;&lt;";
const QUOTED: &str = "\"quoted\" 'single'";
const PIPE: &str = "user|profile";
const TICKS: &str = "`rm -rf /`";
const BACKSLASH: &str = "C:\\edge\\";
const MARKUP: &str = "*not bold* _nor this_ [nor](http://a.link) ~~struck~~ # $x$";
const ZURICH: &str = "Zürich-cache ☃ 東京";
const TABBED: &str = "role with\ttab";

/// A 10 KB name.
fn huge() -> String {
    "10kb-name-".repeat(1024)
}

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    // 2026-11-21 in Europe/Berlin (CET, UTC+1) runs from 2026-11-20T23:00Z.
    Utc.with_ymd_and_hms(2026, 11, 21, h, m, s).unwrap()
}

fn by<const N: usize>(items: [(&str, usize); N]) -> BTreeMap<String, usize> {
    items.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn strings<const N: usize>(items: [&str; N]) -> Vec<String> {
    items.into_iter().map(String::from).collect()
}

fn link(from: &str, to: &str, edges: usize, broken: usize, cross_dc: bool) -> ServiceLink {
    ServiceLink { from: from.into(), to: to.into(), edges, broken, cross_dc }
}

/// A day of a mid-sized fleet in two data centers (and a hostile third), with a database
/// outage in the afternoon, a flapping edge and hostile names everywhere a name goes.
fn hostile_day() -> Report {
    let huge = huge();
    let flaps: Vec<EventDay> = (0..20)
        .map(|i| EventDay {
            at: at(18, 2 * i, 30),
            from: if i % 2 == 0 { EventState::Up } else { EventState::Down },
            to: if i % 2 == 0 { EventState::Down } else { EventState::Up },
        })
        .collect();
    Report {
        date: NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
        tz: "Europe/Berlin".into(),
        from: Utc.with_ymd_and_hms(2026, 11, 20, 23, 0, 0).unwrap(),
        to: at(23, 0, 0),
        generated_at: Utc.with_ymd_and_hms(2026, 11, 22, 2, 15, 0).unwrap(),
        has_data: true,
        notes: vec![format!("probe results for dc {IMG} arrived late (from 02:10)")],
        summary: Summary {
            nodes: 187,
            edges: 1342,
            services: 9,
            dcs: 3,
            cycles: 1_932_480,
            failed_cycles: 4_217,
            edges_down: 5,
            down_minutes: 212.5,
            incidents: 2,
            worst_hour: Some(WorstHour {
                hour: at(13, 0, 0),
                local: "14:00".into(),
                failed_cycles: 1_877,
                edges_down: 4,
            }),
        },
        services: vec![
            ServiceDeps {
                service: "checkout-api".into(),
                providers: 6,
                consumers: 31,
                consumers_by_dc: by([("fra1", 24), ("ams2", 7)]),
                consumers_by_role: by([("fe", 24), (TABBED, 7)]),
                queries: 1_204_331,
            },
            ServiceDeps {
                service: "payments-db".into(),
                providers: 2,
                consumers: 14,
                consumers_by_dc: by([("fra1", 8), ("ams2", 6)]),
                consumers_by_role: by([("api", 8), ("batch", 6)]),
                queries: 88_120,
            },
            ServiceDeps {
                service: XSS.into(),
                providers: 1,
                consumers: 3,
                consumers_by_dc: by([(IMG, 3)]),
                consumers_by_role: by([("api", 3)]),
                queries: 412,
            },
            ServiceDeps {
                service: PIPE.into(),
                providers: 3,
                consumers: 14,
                consumers_by_dc: by([("fra1", 12), ("ams2", 2)]),
                consumers_by_role: by([("fe", 12), (QUOTED, 2)]),
                queries: 301_554,
            },
            ServiceDeps {
                service: ZURICH.into(),
                providers: 2,
                consumers: 5,
                consumers_by_dc: by([("fra1", 5)]),
                consumers_by_role: by([(PIPE, 5)]),
                queries: 9_876,
            },
            ServiceDeps {
                service: huge.clone(),
                providers: 1,
                consumers: 1,
                consumers_by_dc: by([("ams2", 1)]),
                consumers_by_role: by([("batch", 1)]),
                queries: 7,
            },
        ],
        roles: vec![
            RoleDeps {
                role: "fe".into(),
                nodes: 36,
                services: by([("checkout-api", 24), (PIPE, 12)]),
                depends_on_roles: by([("api", 410), ("cache", 96)]),
            },
            RoleDeps {
                role: "api".into(),
                nodes: 11,
                services: by([("payments-db", 8), (XSS, 3)]),
                depends_on_roles: by([("db", 22), (MARKUP, 3)]),
            },
            RoleDeps { role: TABBED.into(), nodes: 7, services: by([("checkout-api", 7)]), depends_on_roles: by([]) },
        ],
        changes: Changes {
            new_dependencies: vec![DepChange {
                src: "checkout-api-7".into(),
                dst_ip: "10.20.3.17".into(),
                dst: Some(XSS.into()),
                services: strings([XSS]),
                at: at(9, 12, 0),
            }],
            vanished_dependencies: vec![DepChange {
                src: TICKS.into(),
                dst_ip: "10.20.9.1".into(),
                dst: None,
                services: vec![],
                at: at(17, 40, 0),
            }],
            new_nodes: vec![NodeChange {
                name: QUOTED.into(),
                host: "host-b07.fra1".into(),
                dc: "fra1".into(),
                role: Some("fe".into()),
                at: at(8, 5, 0),
            }],
            retired_nodes: vec![NodeChange {
                name: BACKSLASH.into(),
                host: "host-a01.ams2".into(),
                dc: "ams2".into(),
                role: None,
                at: Utc.with_ymd_and_hms(2026, 11, 20, 23, 30, 0).unwrap(),
            }],
        },
        cross_dc: vec![
            CrossDc {
                from_dc: "ams2".into(),
                to_dc: "fra1".into(),
                edges: 41,
                consumers: 13,
                services: strings(["payments-db", "checkout-api"]),
                queries: 77_010,
            },
            CrossDc {
                from_dc: "fra1".into(),
                to_dc: ZURICH.into(),
                edges: 5,
                consumers: 5,
                services: strings([ZURICH]),
                queries: 9_876,
            },
        ],
        broken: vec![
            BrokenDay {
                src: "checkout-api-7".into(),
                dst_ip: "10.20.3.17".into(),
                dst: Some("payments-db-2".into()),
                services: strings(["payments-db"]),
                down_minutes: 131.5,
                cycles: 1440,
                failed_cycles: 263,
                flapping: false,
                events: vec![
                    EventDay { at: at(13, 58, 10), from: EventState::Up, to: EventState::Down },
                    EventDay { at: at(16, 9, 40), from: EventState::Down, to: EventState::Up },
                ],
            },
            BrokenDay {
                src: QUOTED.into(),
                dst_ip: "10.30.0.5".into(),
                dst: Some(PIPE.into()),
                services: strings([PIPE]),
                down_minutes: 6.0,
                cycles: 1440,
                failed_cycles: 41,
                flapping: true,
                events: flaps,
            },
            BrokenDay {
                src: XSS.into(),
                dst_ip: "10.40.1.1".into(),
                dst: None,
                services: strings([MARKUP]),
                down_minutes: 0.0,
                cycles: 1440,
                failed_cycles: 2,
                flapping: false,
                events: vec![EventDay { at: at(3, 1, 0), from: EventState::Up, to: EventState::Degraded }],
            },
        ],
        incidents: vec![
            IncidentDay {
                kind: "provider-down".into(),
                culprit: "payments-db-2".into(),
                evidence: "14 of 14 consumers lost payments-db-2:5432 at 14:58".into(),
                since: at(13, 58, 10),
                until: Some(at(16, 9, 40)),
                edges: 14,
            },
            IncidentDay {
                kind: "dc-link".into(),
                culprit: IMG.into(),
                evidence: format!("all edges from fra1 to {ZURICH} lost"),
                since: at(21, 30, 0),
                until: None,
                edges: 5,
            },
        ],
        hygiene: Hygiene {
            unknown_clients: vec![
                Counted { name: "10.9.8.7".into(), count: 5_123 },
                Counted { name: "10.9.8.21".into(), count: 880 },
            ],
            unresolved_names: vec![
                Counted { name: "legacy-ldap.corp".into(), count: 912 },
                Counted { name: format!("{XSS}.svc"), count: 3 },
            ],
            services_without_provider: vec![Counted { name: MARKUP.into(), count: 44 }],
        },
        route_changes: vec![RouteChangesDc {
            from_dc: "fra1".into(),
            to_dc: ZURICH.into(),
            changes: 2,
            pairs: vec![PairRoutes {
                src: XSS.into(),
                dst: PIPE.into(),
                changes: vec![
                    RouteChangeDay {
                        at: at(16, 13, 0),
                        ttl: Some(7),
                        old_addrs: vec!["52.93.1.1".into()],
                        new_addrs: vec!["52.93.128.156".into()],
                        rtt_before_ms: Some(21.0),
                        rtt_after_ms: Some(61.5),
                    },
                    RouteChangeDay {
                        at: at(16, 26, 0),
                        ttl: Some(7),
                        old_addrs: vec!["52.93.128.156".into()],
                        new_addrs: vec!["52.93.1.1".into()],
                        rtt_before_ms: Some(61.5),
                        rtt_after_ms: Some(21.0),
                    },
                ],
                paths: vec![
                    PathMinutes { path: "10.0.0.1 * 52.93.1.1 10.9.0.2".into(), minutes: 1427.0 },
                    PathMinutes { path: "10.0.0.1 * 52.93.128.156 10.9.0.2".into(), minutes: 13.0 },
                ],
            }],
        }],
        service_graph: vec![
            link("role:fe", "checkout-api", 24, 0, false),
            link("role:fe", PIPE, 12, 0, false),
            link("checkout-api", "payments-db", 8, 2, true),
            link("checkout-api", XSS, 3, 0, false),
            link("role:batch", "payments-db", 6, 0, true),
            link(QUOTED, PIPE, 2, 1, false),
            link(PIPE, ZURICH, 5, 0, true),
            link(&huge, "checkout-api", 1, 0, false),
            link(BACKSLASH, "payments-db", 2, 0, false),
            link(IMG, "checkout-api", 1, 0, true),
        ],
    }
}

/// The hostile strings of `tests/hostile_names.rs` (tests/common), markup, and a 10 KB one.
fn payloads() -> Vec<String> {
    let mut p = common::hostile_names();
    p.push(MARKUP.to_string());
    p.push(huge());
    p
}

/// Every hostile string as a service, a role, a data center and a node, in a ring of
/// dependencies (every third one broken, every other one across data centers).
fn hostile_ring() -> Report {
    let p = payloads();
    let next = |i: usize| &p[(i + 1) % p.len()];
    let mut r = hostile_day();
    r.services = p
        .iter()
        .enumerate()
        .map(|(i, s)| ServiceDeps {
            service: s.clone(),
            providers: 1,
            consumers: 1,
            consumers_by_dc: by([(next(i).as_str(), 1)]),
            consumers_by_role: by([(next(i).as_str(), 1)]),
            queries: i as i64,
        })
        .collect();
    r.roles = p
        .iter()
        .enumerate()
        .map(|(i, s)| RoleDeps {
            role: s.clone(),
            nodes: 1,
            services: by([(next(i).as_str(), 1)]),
            depends_on_roles: by([(next(i).as_str(), 1)]),
        })
        .collect();
    r.service_graph = (0..p.len()).map(|i| link(&p[i], next(i), i + 1, usize::from(i % 3 == 0), i % 2 == 0)).collect();
    r.broken = p
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 == 0)
        .map(|(i, s)| BrokenDay {
            src: s.clone(),
            dst_ip: format!("10.0.0.{i}"),
            dst: Some(next(i).clone()),
            services: vec![next(i).clone()],
            down_minutes: i as f64,
            cycles: 1440,
            failed_cycles: i as i64,
            flapping: i % 2 == 1,
            events: vec![EventDay { at: at(10, i as u32, 0), from: EventState::Up, to: EventState::Down }],
        })
        .collect();
    r.hygiene.unresolved_names = p.iter().map(|s| Counted { name: s.clone(), count: 1 }).collect();
    r.route_changes = p
        .iter()
        .enumerate()
        .map(|(i, s)| RouteChangesDc {
            from_dc: s.clone(),
            to_dc: next(i).clone(),
            changes: 1,
            pairs: vec![PairRoutes {
                src: next(i).clone(),
                dst: s.clone(),
                changes: vec![RouteChangeDay {
                    at: at(9, i as u32 % 60, 0),
                    ttl: Some(3),
                    old_addrs: vec!["10.0.0.1".into()],
                    new_addrs: vec![],
                    rtt_before_ms: None,
                    rtt_after_ms: Some(1.0),
                }],
                paths: vec![PathMinutes { path: "10.0.0.1".into(), minutes: 60.0 }],
            }],
        })
        .collect();
    r
}

/// A day the store knows nothing of.
fn empty_day() -> Report {
    Report {
        date: NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
        tz: "UTC".into(),
        from: Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap(),
        to: Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap(),
        generated_at: Utc.with_ymd_and_hms(2026, 11, 22, 1, 0, 0).unwrap(),
        has_data: false,
        notes: vec!["no probe results between 2026-11-21T00:00:00Z and 2026-11-22T00:00:00Z".into()],
        summary: Summary::default(),
        services: vec![],
        roles: vec![],
        changes: Changes::default(),
        cross_dc: vec![],
        broken: vec![],
        incidents: vec![],
        hygiene: Hygiene::default(),
        route_changes: Vec::new(),
        service_graph: vec![],
    }
}

// ---- what holds for any report ----

/// The renderings of one report, written to `target/tmp/report_render/<label>.*`.
#[derive(Debug)]
struct Rendered {
    markdown: String,
    /// Markdown's text as a reader sees it (entities and escapes resolved).
    markdown_text: String,
    dot: String,
    svg: Option<String>,
    html: String,
    screenshot: Option<PathBuf>,
}

/// Renders `r` every way and checks what is true of any report: every name comes out
/// verbatim to a reader and never as markup, the sections are there, the picture has every
/// service and red arrows exactly for the broken ones, the HTML parses cleanly and has no
/// script, and Chromium shows a page that is not blank.
fn check_renderings(r: &Report, label: &str) -> Rendered {
    let dir = out_dir();
    let markdown = report::markdown(r);
    std::fs::write(dir.join(format!("{label}.md")), &markdown).unwrap();
    let markdown_text = check_markdown(r, &markdown);

    let dot = report::dot(r);
    std::fs::write(dir.join(format!("{label}.dot")), &dot).unwrap();
    let svg = tool("dot", "graphviz").map(|_| {
        let svg = report::svg(&dot).unwrap_or_else(|e| panic!("{label}: dot -Tsvg: {e:#}"));
        std::fs::write(dir.join(format!("{label}.svg")), &svg).unwrap();
        check_svg(r, &svg);
        svg
    });

    let html = report::html(r, svg.as_deref());
    let html_path = dir.join(format!("{label}.html"));
    std::fs::write(&html_path, &html).unwrap();
    check_html(r, &html, svg.is_some());

    let screenshot = tool("chromium", "chromium").map(|chromium| {
        let png = dir.join(format!("{label}.png"));
        screenshot(&chromium, &html_path, &png);
        println!("{label}: screenshot of the HTML report: {}", png.display());
        png
    });
    println!("{label}: Markdown, DOT, SVG and HTML in {}", dir.display());
    Rendered { markdown, markdown_text, dot, svg, html, screenshot }
}

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report_render");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every name in the report (CMDB and DNS names, states, evidence): what must come out
/// verbatim and inert.
fn names(r: &Report) -> BTreeSet<String> {
    let mut n: Vec<&str> = Vec::new();
    for s in &r.services {
        n.push(&s.service);
        n.extend(s.consumers_by_dc.keys().map(String::as_str));
        n.extend(s.consumers_by_role.keys().map(String::as_str));
    }
    for role in &r.roles {
        n.push(&role.role);
        n.extend(role.services.keys().map(String::as_str));
        n.extend(role.depends_on_roles.keys().map(String::as_str));
    }
    let c = &r.changes;
    for d in c.new_dependencies.iter().chain(&c.vanished_dependencies) {
        n.extend([d.src.as_str(), d.dst_ip.as_str()]);
        n.extend(d.dst.as_deref());
        n.extend(d.services.iter().map(String::as_str));
    }
    for node in c.new_nodes.iter().chain(&c.retired_nodes) {
        n.extend([node.name.as_str(), node.host.as_str(), node.dc.as_str()]);
        n.extend(node.role.as_deref());
    }
    for x in &r.cross_dc {
        n.extend([x.from_dc.as_str(), x.to_dc.as_str()]);
        n.extend(x.services.iter().map(String::as_str));
    }
    for b in &r.broken {
        n.extend([b.src.as_str(), b.dst_ip.as_str()]);
        n.extend(b.dst.as_deref());
        n.extend(b.services.iter().map(String::as_str));
    }
    for i in &r.incidents {
        n.extend([i.kind.as_str(), i.culprit.as_str(), i.evidence.as_str()]);
    }
    for x in &r.route_changes {
        n.extend([x.from_dc.as_str(), x.to_dc.as_str()]);
        for p in &x.pairs {
            n.extend([p.src.as_str(), p.dst.as_str()]);
        }
    }
    let h = &r.hygiene;
    for c in h.unknown_clients.iter().chain(&h.unresolved_names).chain(&h.services_without_provider) {
        n.push(&c.name);
    }
    n.extend(r.notes.iter().map(String::as_str));
    n.into_iter().map(String::from).collect()
}

/// The service names of the picture.
fn graph_names(r: &Report) -> BTreeSet<&str> {
    r.service_graph.iter().flat_map(|l| [l.from.as_str(), l.to.as_str()]).collect()
}

/// A name as Markdown can show it: a table row is one line, so control characters
/// (tabs, line breaks) become spaces.
fn flat(name: &str) -> String {
    name.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Reads the Markdown back with a CommonMark parser (GitHub's tables and strikethrough):
/// no raw HTML, no link, no code span came from a name, every name is in the text a
/// reader sees, and the sections are there. Gives that text.
fn check_markdown(r: &Report, md: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser, Tag};
    let mut text = String::new();
    let mut headings = Vec::new();
    let mut in_heading = false;
    for event in Parser::new_ext(md, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH) {
        match event {
            Event::Html(h) | Event::InlineHtml(h) => panic!("raw HTML in the Markdown: {h:?}"),
            Event::Start(Tag::Link { dest_url, .. }) => panic!("a link in the Markdown: {dest_url}"),
            Event::Start(Tag::Strikethrough) => panic!("strikethrough in the Markdown"),
            Event::Code(c) => panic!("a code span in the Markdown: {c}"),
            Event::Start(Tag::Heading { .. }) => {
                in_heading = true;
                headings.push(String::new());
            }
            Event::End(pulldown_cmark::TagEnd::Heading(_)) => in_heading = false,
            Event::Text(t) => {
                if in_heading {
                    headings.last_mut().unwrap().push_str(&t);
                }
                text.push_str(&t);
            }
            Event::SoftBreak | Event::HardBreak => text.push(' '),
            Event::End(pulldown_cmark::TagEnd::TableCell) => text.push('\u{1f}'),
            _ => {}
        }
    }
    assert!(!md.contains('<'), "every < in the Markdown is an entity");
    for name in names(r) {
        assert!(text.contains(&flat(&name)), "the Markdown does not show {:?} verbatim", short(&name));
    }
    let want_title = format!("Dependency report for {}", r.date);
    assert!(headings.first().is_some_and(|h| h.starts_with(&want_title)), "title: {headings:?}");
    if r.has_data {
        for h in [
            "Summary",
            "Dependencies per service",
            "Dependencies per role",
            "What changed",
            "Cross-data-center dependencies",
            "Broken and flapping edges",
            "Incidents",
            "CMDB hygiene",
        ] {
            assert!(headings.iter().any(|x| x == h), "no section {h:?} in {headings:?}");
        }
    } else {
        let first = md.lines().position(|l| l.contains("No data for this day")).expect("says there is no data");
        assert!(first < 5, "the lack of data is said at the top:\n{md}");
        assert!(!headings.iter().any(|h| h == "Summary"), "no zeros as facts: {headings:?}");
        for note in &r.notes {
            assert!(text.contains(&flat(note)), "the note {note:?}");
        }
    }
    text
}

/// Reads the SVG as XML: one node label per service (cut names start the same), and red
/// arrows exactly for the links with edges down, each saying how many.
fn check_svg(r: &Report, svg: &str) {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("the SVG is not XML: {e}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(root.tag_name().namespace(), Some("http://www.w3.org/2000/svg"));
    let group_class = |n: &roxmltree::Node, class: &str| {
        n.tag_name().name() == "g" && n.attribute("class").is_some_and(|c| c.split(' ').any(|x| x == class))
    };
    let texts = |n: roxmltree::Node| -> Vec<String> {
        n.descendants().filter(|d| d.tag_name().name() == "text").map(|t| t.text().unwrap_or("").to_string()).collect()
    };
    let labels: Vec<String> = doc.descendants().filter(|n| group_class(n, "node")).flat_map(texts).collect();
    assert_eq!(labels.len(), graph_names(r).len(), "one node per service: {labels:?}");
    for name in graph_names(r) {
        let prefix: String = flat(name).chars().take(40).collect();
        assert!(labels.iter().any(|l| l.starts_with(&prefix)), "no node for {:?} in {labels:?}", short(name));
    }
    let edges: Vec<roxmltree::Node> = doc.descendants().filter(|n| group_class(n, "edge")).collect();
    assert_eq!(edges.len(), r.service_graph.len(), "one arrow per link");
    let red = |e: &roxmltree::Node| {
        e.descendants().any(|d| d.tag_name().name() == "path" && d.attribute("stroke") == Some("#dc2626"))
    };
    let dashed = |e: &roxmltree::Node| {
        e.descendants().any(|d| d.tag_name().name() == "path" && d.attribute("stroke-dasharray").is_some())
    };
    let red_labels: BTreeSet<String> = edges.iter().filter(|e| red(e)).flat_map(|e| texts(*e)).collect();
    let want: BTreeSet<String> =
        r.service_graph.iter().filter(|l| l.broken > 0).map(|l| format!("{} ({} down)", l.edges, l.broken)).collect();
    assert_eq!(red_labels, want, "red arrows, labelled with their broken counts");
    assert_eq!(edges.iter().filter(|e| red(e)).count(), want.len(), "red arrows");
    let cross = r.service_graph.iter().filter(|l| l.cross_dc).count();
    assert_eq!(edges.iter().filter(|e| dashed(e)).count(), cross, "dashed arrows across data centers");
}

/// Reads the HTML with an HTML parser: no parse error, no script, no element or attribute
/// that came from a name, every name in the text, the sections, broken rows marked, and
/// the picture inline.
fn check_html(r: &Report, page: &str, with_picture: bool) {
    use scraper::{Html, Selector};
    let doc = Html::parse_document(page);
    assert!(doc.errors.is_empty(), "HTML parse errors: {:?}", doc.errors);
    let sel = |s: &str| Selector::parse(s).unwrap();
    for element in doc.root_element().descendants().filter_map(scraper::ElementRef::wrap) {
        let tag = element.value().name();
        assert!(!["script", "img", "iframe", "object", "embed", "link"].contains(&tag), "a <{tag}> element");
        for (attr, value) in element.value().attrs() {
            assert!(!attr.starts_with("on"), "an event handler attribute {attr}={value:?}");
            assert!(!value.trim_start().to_ascii_lowercase().starts_with("javascript:"), "{attr}={value:?}");
        }
    }
    assert!(!page.contains("<script") && !page.contains("<img"), "a name came out as markup");
    let text: String = doc.root_element().text().collect();
    for name in names(r) {
        assert!(text.contains(&name), "the HTML does not show {:?} verbatim", short(&name));
    }
    let title: String = doc.select(&sel("h1")).flat_map(|h| h.text()).collect();
    assert!(title.contains(&r.date.to_string()), "title {title:?}");
    let ids: Vec<&str> = doc.select(&sel("section[id]")).filter_map(|s| s.value().id()).collect();
    if r.has_data {
        for id in ["summary", "graph", "services", "roles", "changes", "cross-dc", "broken", "incidents", "hygiene"] {
            assert!(ids.contains(&id), "no section #{id} in {ids:?}");
            assert_eq!(doc.select(&sel(&format!("section#{id} > h2"))).count(), 1, "#{id} has a heading");
        }
        let cards = doc.select(&sel("#summary .card")).count();
        assert!(cards >= 9, "summary figures: {cards}");
        let broken_rows = doc.select(&sel("#broken tbody tr.broken")).count();
        assert_eq!(broken_rows, r.broken.len(), "every broken edge marked");
        let badges = doc.select(&sel("#services .badge.down")).count();
        let services_down =
            r.services.iter().filter(|s| r.service_graph.iter().any(|l| l.to == s.service && l.broken > 0)).count();
        assert_eq!(badges, services_down, "services with edges down marked");
        let svgs = doc.select(&sel("#graph svg")).count();
        let expected = usize::from(with_picture && !r.service_graph.is_empty());
        assert_eq!(svgs, expected, "the picture inline");
    } else {
        let nodata: String = doc.select(&sel("#nodata")).flat_map(|e| e.text()).collect();
        assert!(nodata.contains("No data for this day"), "says there is no data: {nodata:?}");
        for note in &r.notes {
            assert!(nodata.contains(note.as_str()), "the note {note:?} in {nodata:?}");
        }
        assert!(!ids.contains(&"summary"), "no zeros as facts: {ids:?}");
    }
}

/// Opens the page in headless Chromium and checks the screenshot: a PNG of the window's
/// size that is not one colour.
fn screenshot(chromium: &Path, page: &Path, png: &Path) {
    let _ = std::fs::remove_file(png);
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
        .arg("--disable-dev-shm-usage")
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1280,2000")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let status = match child.wait_timeout(Duration::from_secs(120)).unwrap() {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium took more than 120 s: {}", errors.join().unwrap());
        }
    };
    let errors = errors.join().unwrap();
    assert!(status.success() && png.is_file(), "chromium failed ({status}), no {}:\n{errors}", png.display());

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1280, 2000), "screenshot size");
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    let mut colours: BTreeMap<&[u8], usize> = BTreeMap::new();
    for px in pixels.chunks_exact(channels) {
        *colours.entry(px).or_default() += 1;
    }
    let total = (info.width * info.height) as usize;
    let commonest = colours.values().max().copied().unwrap_or(0);
    assert!(colours.len() > 50, "a page of text has many colours (anti-aliasing): {}", colours.len());
    assert!(commonest < total * 97 / 100, "the page is (nearly) one colour: {commonest} of {total} pixels");
}

fn short(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((cut, _)) => format!("{}… ({} chars)", &s[..cut], s.chars().count()),
        None => s.to_string(),
    }
}

// ---- the tests ----

#[test]
fn a_day_with_hostile_names_renders_readably_and_inertly() {
    let r = hostile_day();
    let out = check_renderings(&r, "hostile_day");

    // Markdown: the figures, local times, and names escaped (not just present).
    let md = &out.markdown;
    assert!(md.starts_with("# Dependency report for 2026-11-21 (Europe/Berlin)\n"), "{}", short(md));
    for figure in ["| Nodes | **187** |  |", "| Edges | **1,342** |  |", "| **1,932,480** | 4,217 failed (0.2 %) |"] {
        assert!(md.contains(figure), "summary figure {figure:?}");
    }
    assert!(md.contains("| Worst hour | **14:00** | 1,877 failed cycles, 4 edges down |"), "worst hour");
    assert!(md.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "< and > as entities");
    assert!(md.contains("user\\|profile"), "| escaped in cells");
    assert!(md.contains("\\`rm -rf /\\`"), "backticks escaped");
    assert!(md.contains("C:\\\\edge\\\\"), "backslashes escaped");
    assert!(md.contains("role with tab"), "a tab is a space in a table cell");
    // 13:58:10Z is 14:58:10 in Berlin; the retired node left before midnight local time
    // (23:30Z is 00:30 on the 21st), the day's new dependency came at 10:12.
    assert!(md.contains("14:58:10 up → down; 17:09:40 down → up"), "events in local time");
    assert!(md.contains("| 10:12 | checkout-api-7 |"), "new dependency at local time");
    assert!(md.contains("| 00:30 | C:\\\\edge\\\\ |"), "retired node at local time");
    assert!(md.contains("and 8 more"), "a flapping edge's events are cut with a count");
    assert!(md.contains("| **DOWN** | checkout-api-7 | payments-db-2 (10.20.3.17) |"), "down edge");
    assert!(md.contains("| **DOWN**, flapping | \"quoted\" 'single' |"), "flapping edge");
    assert!(md.contains("| **DEGRADED** |"), "degraded edge");
    assert!(md.contains("still open"), "an incident still open at the end of the day");
    assert!(md.contains("| payments-db **(2 edges down)** |"), "a service with edges down marked");
    assert!(out.markdown_text.contains(&huge()), "the 10 KB name whole");

    // DOT: names only in quoted strings, escaped; the long name cut.
    assert!(out.dot.contains("label=\"\\\"quoted\\\" 'single'\""), "quotes escaped:\n{}", out.dot);
    assert!(out.dot.contains("label=\"C:\\\\edge\\\\\""), "backslashes escaped");
    assert!(out.dot.contains("label=\"10kb-name-10kb-name-10kb-name-10kb-name-…\""), "long names cut");
    assert!(out.dot.len() < 10_000, "the 10 KB name is not copied whole: {} bytes", out.dot.len());

    // HTML: the hostile names only escaped.
    assert!(out.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(out.html.contains("&lt;img src=x onerror=alert(1)&gt;&amp;amp;&amp;lt;"));
    if let Some(svg) = &out.svg {
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the service's label in the picture");
        assert!(out.html.contains(svg.as_str()), "the picture inline");
    }
    if let Some(png) = &out.screenshot {
        eprintln!("look at it: {}", png.display());
    }
}

#[test]
fn every_hostile_cmdb_name_comes_out_verbatim_and_inert() {
    let r = hostile_ring();
    let out = check_renderings(&r, "hostile_ring");
    assert_eq!(out.dot.matches(" -> ").count(), payloads().len(), "one arrow per link");
}

#[test]
fn a_day_without_data_says_so_at_the_top() {
    let r = empty_day();
    let out = check_renderings(&r, "empty_day");
    assert!(!out.markdown.contains('|'), "no empty tables:\n{}", out.markdown);
    assert!(out.markdown.contains("> **No data for this day.**"), "{}", out.markdown);
    assert!(out.markdown.contains("no probe results between"), "the note");
    assert!(!out.html.contains("<table"), "no empty tables in the HTML");
    assert_eq!(out.dot.matches("->").count(), 0, "nothing to draw");
}

#[test]
fn an_unknown_time_zone_falls_back_to_utc_and_says_so() {
    let mut r = hostile_day();
    r.tz = "Mars/Olympus_Mons".into();
    let md = report::markdown(&r);
    assert!(
        md.starts_with("# Dependency report for 2026-11-21 (UTC (unknown time zone \"Mars/Olympus\\_Mons\"))"),
        "{}",
        short(&md)
    );
    assert!(md.contains("13:58:10 up → down"), "times in UTC");
    let html = report::html(&r, None);
    assert!(html.contains("No picture"), "says there is no picture");
}

/// A report made by the real `edgewatch report` from a real store (the sample fleet after
/// discovery and a probe run: its DNS edges down) renders the same way.
#[tokio::test]
async fn a_report_made_by_the_cli_renders_readably() {
    let db = graph_store::testing::TestDb::new().await;
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_edgewatch"))
            .env_remove("DATABASE_URL")
            .arg("--database-url")
            .arg(&db.url)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let fleet = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample-fleet");
    let file = |name: &str| fleet.join(name).to_str().unwrap().to_string();
    run(&["cmdb", "import", &file("inventory.json"), &file("links.txt")]);
    run(&["dns", "ingest", "--zone", "example.com", &file("pdns-auth-console.log")]);
    run(&["probe", "--interval", "1s", "--packets", "1", "--timeout", "200ms", "--run-for", "3s"]);
    let json = run(&["report", "--since", "1h", "--tz", "UTC", "--format", "json"]);
    let r: Report = serde_json::from_str(&json).unwrap();
    assert!(r.has_data && !r.broken.is_empty() && !r.service_graph.is_empty(), "{json}");
    check_renderings(&r, "cli");
}
