//! Hostile names in the CMDB — HTML, quotes, SQL, 10 KB strings, non-ASCII, backslashes,
//! format strings, inner spaces and tabs — come back verbatim in JSON, table and DOT output
//! (where, as in the report's picture, a tab shows as a space), draw with Graphviz, work as
//! filters and topology arguments, and never break a query.
//!
//! Every test builds its fleet from [`payloads`]: one container per hostile string, named
//! by it, with host `host:…`, DC `dc:…`, role `…:role` and service `…:svc` made from it,
//! linked in a ring (container i publishes a link to container i+1). Expectations are
//! computed from that fleet, never copied from output.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::{edgewatch, ok, path_str, tool};
use graph_store::testing::{dump, dump_without, TestDb};
use serde_json::{json, Value};

/// The hostile strings (tests/common), and a 10 KB one.
fn payloads() -> Vec<String> {
    let mut p = common::hostile_names();
    p.push(ten_kilobytes());
    assert_eq!(p.iter().collect::<BTreeSet<_>>().len(), p.len(), "payloads must differ");
    p
}

/// A 10,000-byte string of quotes, backslashes, semicolons, markup and non-ASCII. It
/// repeats, so PostgreSQL compresses it below the index-entry limit; the incompressible
/// kind is [`incompressible_10_kb_names_are_kept_or_refused_naming_file_and_field`]'s.
fn ten_kilobytes() -> String {
    let unit = "<\"'\\;ü数🔥>&%n{}";
    let mut s = String::new();
    while s.len() + unit.len() <= 10_000 {
        s.push_str(unit);
    }
    while s.len() < 10_000 {
        s.push('x');
    }
    assert_eq!(s.len(), 10_000);
    s
}

/// 10,000 bytes that do not compress: a fixed pseudo-random walk over ASCII punctuation,
/// letters and multi-byte characters.
fn incompressible_ten_kilobytes() -> String {
    let alphabet: Vec<char> = ('!'..='~').chain("äöüßé数据库🔥€ש".chars()).collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut s = String::new();
    loop {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let c = alphabet[(state % alphabet.len() as u64) as usize];
        if s.len() + c.len_utf8() > 10_000 {
            break;
        }
        s.push(c);
    }
    while s.len() < 10_000 {
        s.push('x');
    }
    s
}

#[derive(Debug, Clone)]
struct Container {
    name: String,
    host: String,
    dc: String,
    role: String,
    ip: String,
    service: String,
}

/// The fleet built from the payloads: container i links to container i+1 (a ring).
#[derive(Debug)]
struct Fleet {
    containers: Vec<Container>,
}

impl Fleet {
    fn new() -> Fleet {
        let containers = payloads()
            .into_iter()
            .enumerate()
            .map(|(i, p)| Container {
                host: format!("host:{p}"),
                dc: format!("dc:{p}"),
                role: format!("{p}:role"),
                service: format!("{p}:svc"),
                ip: format!("127.77.{}.{}", i / 200, i % 200 + 1),
                name: p,
            })
            .collect();
        Fleet { containers }
    }

    fn len(&self) -> usize {
        self.containers.len()
    }

    fn at(&self, i: usize) -> &Container {
        &self.containers[i % self.len()]
    }

    /// The container `i` links to.
    fn next(&self, i: usize) -> &Container {
        self.at(i + 1)
    }

    /// The container linking to `i`.
    fn prev(&self, i: usize) -> &Container {
        self.at(i + self.len() - 1)
    }

    fn inventory_json(&self) -> String {
        let containers: Vec<Value> = self
            .containers
            .iter()
            .map(|c| {
                json!({"name": c.name, "host": c.host, "dc": c.dc, "role": c.role, "ips": [c.ip],
                       "services": [c.service], "serving": true})
            })
            .collect();
        let services: Vec<Value> =
            self.containers.iter().enumerate().map(|(i, c)| json!({"name": c.service, "port": 8000 + i})).collect();
        serde_json::to_string_pretty(&json!({"containers": containers, "services": services})).unwrap()
    }

    fn inventory_csv(&self) -> String {
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let mut csv = String::from("name,host,dc,role,ips,services,serving\n");
        for c in &self.containers {
            let cells = [&c.name, &c.host, &c.dc, &c.role, &c.ip, &c.service];
            let row: Vec<String> = cells.iter().map(|s| quote(s)).collect();
            csv.push_str(&format!("{},true\n", row.join(",")));
        }
        csv
    }

    /// Whether links.txt can name the container: its words are whitespace-separated and
    /// `#` starts a comment.
    fn fits_links_text(name: &str) -> bool {
        !name.contains('#') && !name.chars().any(char::is_whitespace)
    }

    /// links.txt for the containers it can name, links JSON for the others.
    fn links(&self) -> (String, String) {
        let mut text = String::from("# container  targets\n");
        let mut in_json = Vec::new();
        for (i, c) in self.containers.iter().enumerate() {
            if Fleet::fits_links_text(&c.name) {
                text.push_str(&format!("{} {}\n", c.name, self.next(i).ip));
            } else {
                in_json.push(json!({"container": c.name, "targets": [self.next(i).ip]}));
            }
        }
        assert!(text.lines().count() > 10 && in_json.len() > 3, "both links formats get hostile names");
        (text, serde_json::to_string_pretty(&json!({"links": in_json})).unwrap())
    }

    /// Writes inventory.json, links.txt and links.json into `dir`.
    fn write(&self, dir: &Path) -> Vec<PathBuf> {
        let (text, links_json) = self.links();
        let files = [("inventory.json", self.inventory_json()), ("links.txt", text), ("links.json", links_json)];
        files
            .into_iter()
            .map(|(name, content)| {
                let path = dir.join(name);
                std::fs::write(&path, content).unwrap();
                path
            })
            .collect()
    }
}

/// A fresh database with the hostile fleet imported (inventory and both links files).
async fn imported(fleet: &Fleet) -> (TestDb, tempfile::TempDir) {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let files = fleet.write(dir.path());
    let out = import(&db, &files);
    assert!(out.contains(&format!("{} containers", fleet.len())), "{out}");
    (db, dir)
}

fn import(db: &TestDb, files: &[PathBuf]) -> String {
    let mut args = vec!["cmdb", "import"];
    args.extend(files.iter().map(|f| path_str(f)));
    ok(db, &args)
}

/// `head…` then the positionals, after `--` when one of them looks like a flag.
fn args(head: &[&str], positionals: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = head.iter().map(|s| s.to_string()).collect();
    if positionals.iter().any(|p| p.starts_with('-')) {
        out.push("--".into());
    }
    out.extend(positionals.iter().map(|s| s.to_string()));
    out
}

/// `--flag value`, or `--flag=value` when the value looks like a flag itself.
fn opt(flag: &str, value: &str) -> Vec<String> {
    if value.starts_with('-') {
        vec![format!("{flag}={value}")]
    } else {
        vec![flag.to_string(), value.to_string()]
    }
}

fn run(db: &TestDb, args: &[String]) -> String {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(db, &args)
}

fn run_json(db: &TestDb, args: &[String]) -> Value {
    let text = run(db, args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON ({e}):\n{}", short_args(args), short(&text)))
}

/// A string for a failure message: long ones cut, with their length.
fn short(s: &str) -> String {
    if s.len() <= 400 {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(200).collect();
        format!("{head:?}… ({} bytes)", s.len())
    }
}

/// A name as DOT output shows it (and the report's picture): control characters, a tab
/// here, become spaces, since some would break the SVG's XML.
fn shown(name: &str) -> String {
    name.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn short_args(args: &[String]) -> String {
    args.iter().map(|a| short(a)).collect::<Vec<_>>().join(" ")
}

/// Asserts a JSON value is exactly the string `want`, byte for byte.
fn same(got: &Value, want: &str, what: &str) {
    match got.as_str() {
        Some(s) if s == want => {}
        Some(s) => {
            let at = s.bytes().zip(want.bytes()).take_while(|(a, b)| a == b).count();
            panic!("{what}: got {} but built {} (first difference at byte {at})", short(s), short(want))
        }
        None => panic!("{what}: got {got} but built {}", short(want)),
    }
}

/// Asserts two JSON values are equal, with a readable message when they are large.
fn same_value(got: &Value, want: &Value, what: &str) {
    if got != want {
        panic!("{what}:\n got  {}\n want {}", short(&got.to_string()), short(&want.to_string()));
    }
}

/// Whether some line of a comfy-table `table` is a row holding `cells` in this order, each
/// whole (not wrapped, not truncated): the first right after the left border, the others
/// after the (at least) three spaces between columns, each followed by those spaces or by
/// the right border. Empty cells are skipped.
fn has_row(table: &str, cells: &[&str]) -> bool {
    table.lines().any(|line| {
        let Some(row) = line.strip_prefix("│ ") else {
            return false;
        };
        let mut rest = row;
        for (k, cell) in cells.iter().filter(|c| !c.is_empty()).enumerate() {
            let found = rest.match_indices(*cell).find(|(at, _)| {
                let before = &rest[..*at];
                let after = &rest[at + cell.len()..];
                let starts = if k == 0 { *at == 0 } else { before.ends_with("   ") };
                starts && (after.starts_with("   ") || after.starts_with(' ') && after.trim_start_matches(' ') == "│")
            });
            match found {
                Some((at, _)) => rest = &rest[at + cell.len()..],
                None => return false,
            }
        }
        true
    })
}

fn assert_row(table: &str, cells: &[&str], what: &str) {
    if !has_row(table, cells) {
        let cells: Vec<String> = cells.iter().map(|c| short(c)).collect();
        panic!("{what}: no table row with [{}] in:\n{}", cells.join(", "), short(table));
    }
}

fn by_name<'a>(items: &'a Value, key: &str) -> BTreeMap<&'a str, &'a Value> {
    items.as_array().expect("a JSON array").iter().map(|v| (v[key].as_str().expect("a name"), v)).collect()
}

#[tokio::test]
async fn lists_show_every_hostile_name_verbatim() {
    let fleet = Fleet::new();
    let (db, _dir) = imported(&fleet).await;

    let nodes = run_json(&db, &args(&["graph", "nodes", "--format", "json"], &[]));
    let nodes_by_name = by_name(&nodes, "name");
    assert_eq!(nodes.as_array().unwrap().len(), fleet.len());
    assert_eq!(nodes_by_name.len(), fleet.len(), "two nodes came back with the same name");
    for c in &fleet.containers {
        let what = format!("node {}", short(&c.name));
        let n = nodes_by_name.get(c.name.as_str()).unwrap_or_else(|| panic!("{what} is missing"));
        same(&n["name"], &c.name, &what);
        same(&n["host"], &c.host, &format!("{what} host"));
        same(&n["dc"], &c.dc, &format!("{what} dc"));
        same(&n["role"], &c.role, &format!("{what} role"));
        same_value(&n["ips"], &json!([c.ip]), &format!("{what} ips"));
        same_value(&n["services"], &json!([c.service]), &format!("{what} services"));
    }

    let edges = run_json(&db, &args(&["graph", "edges", "--format", "json"], &[]));
    let edges_by_src = by_name(&edges, "src");
    assert_eq!(edges.as_array().unwrap().len(), fleet.len());
    for (i, c) in fleet.containers.iter().enumerate() {
        let what = format!("edge from {}", short(&c.name));
        let e = edges_by_src.get(c.name.as_str()).unwrap_or_else(|| panic!("{what} is missing"));
        same(&e["src"], &c.name, &what);
        same(&e["dst"], &fleet.next(i).name, &format!("{what}: dst"));
        same(&e["dst_ip"], &fleet.next(i).ip, &format!("{what}: dst_ip"));
        same_value(&e["sources"], &json!(["cmdb"]), &format!("{what}: sources"));
    }

    let table = run(&db, &args(&["graph", "nodes"], &[]));
    for c in &fleet.containers {
        assert_row(&table, &[&c.name, &c.host, &c.dc, &c.role, &c.ip, &c.service, "yes"], "graph nodes");
    }
    assert!(table.ends_with(&format!("\n{} nodes\n", fleet.len())), "{}", short(&table));

    let table = run(&db, &args(&["graph", "edges"], &[]));
    for (i, c) in fleet.containers.iter().enumerate() {
        let next = fleet.next(i);
        assert_row(&table, &[&c.name, &next.ip, &next.name, "cmdb"], "graph edges");
    }
    assert!(table.ends_with(&format!("\n{} edges\n", fleet.len())), "{}", short(&table));
}

#[tokio::test]
async fn filters_with_hostile_values_find_exactly_their_rows() {
    let fleet = Fleet::new();
    let (db, _dir) = imported(&fleet).await;
    let all_edges = run_json(&db, &args(&["graph", "edges", "--format", "json"], &[]));

    for (i, c) in fleet.containers.iter().enumerate() {
        for (flag, value) in [("--dc", &c.dc), ("--role", &c.role), ("--host", &c.host), ("--service", &c.service)] {
            let what = format!("{flag} {}", short(value));
            let mut nodes_args = args(&["graph", "nodes", "--format", "json"], &[]);
            nodes_args.extend(opt(flag, value));
            let got = run_json(&db, &nodes_args);
            let names: Vec<&str> = got.as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
            assert!(
                names == [c.name.as_str()],
                "nodes {what}: got {:?}",
                names.iter().map(|n| short(n)).collect::<Vec<_>>()
            );

            // Edges: of the consumer for dc/role/host; learned for the service for --service
            // (cmdb links carry none, so none here — but no error and no other rows either).
            let mut edges_args = args(&["graph", "edges", "--format", "json"], &[]);
            edges_args.extend(opt(flag, value));
            let got = run_json(&db, &edges_args);
            let want: Vec<&Value> = if flag == "--service" {
                all_edges
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|e| e["services"].as_array().unwrap().iter().any(|s| s == value.as_str()))
                    .collect()
            } else {
                all_edges.as_array().unwrap().iter().filter(|e| e["src"] == c.name.as_str()).collect()
            };
            assert_eq!(want.len(), usize::from(flag != "--service"), "{what}: the fleet has one edge per consumer");
            same_value(&got, &json!(want), &format!("edges {what}"));

            let mut table_args = args(&["graph", "nodes"], &[]);
            table_args.extend(opt(flag, value));
            let table = run(&db, &table_args);
            assert_row(&table, &[&c.name, &c.host, &c.dc, &c.role, &c.ip, &c.service], &format!("nodes {what}"));
            assert!(table.ends_with("\n1 nodes\n"), "nodes {what}: {}", short(&table));
        }
        let mut table_args = args(&["graph", "edges"], &[]);
        table_args.extend(opt("--host", &c.host));
        let table = run(&db, &table_args);
        assert_row(&table, &[&c.name, &fleet.next(i).ip, &fleet.next(i).name], "edges --host");
        assert!(table.ends_with("\n1 edges\n"), "edges --host {}: {}", short(&c.host), short(&table));
    }
}

#[tokio::test]
async fn topology_answers_carry_hostile_names_in_json_table_and_dot() {
    let fleet = Fleet::new();
    let (db, _dir) = imported(&fleet).await;
    let reached = |c: &Container, via: &str, hops: usize| {
        let (name, host, dc) = (&c.name, &c.host, &c.dc);
        json!({"name": name, "host": host, "dc": dc, "hops": hops, "via": via, "services": [], "linked": true})
    };

    for (i, c) in fleet.containers.iter().enumerate() {
        let (next, prev) = (fleet.next(i), fleet.prev(i));
        let name = c.name.as_str();

        // deps: what c depends on is the container it links to.
        let got = run_json(&db, &args(&["graph", "deps", "--format", "json"], &[name]));
        let want = json!({"node": name, "direction": "deps", "depth": 1, "nodes": [reached(next, name, 1)]});
        same_value(&got, &want, &format!("deps {}", short(name)));
        let table = run(&db, &args(&["graph", "deps"], &[name]));
        assert_row(&table, &["1", &next.name, &next.host, &next.dc, name, "(link)"], "deps table");
        let dot = Dot::parse(&run(&db, &args(&["graph", "deps", "--format", "dot"], &[name])));
        assert_eq!(dot.edge_ends(), BTreeSet::from([(shown(name), shown(&next.name))]), "deps dot");
        assert_eq!(dot.node_ids(), BTreeSet::from([shown(name)]), "deps dot: the start, in bold");

        // dependents: what depends on c is the container linking to it.
        let got = run_json(&db, &args(&["graph", "dependents", "--format", "json"], &[name]));
        let want = json!({"node": name, "direction": "dependents", "depth": 1, "nodes": [reached(prev, name, 1)]});
        same_value(&got, &want, &format!("dependents {}", short(name)));
        let table = run(&db, &args(&["graph", "dependents"], &[name]));
        assert_row(&table, &["1", &prev.name, &prev.host, &prev.dc, name, "(link)"], "dependents table");
        let dot = Dot::parse(&run(&db, &args(&["graph", "dependents", "--format", "dot"], &[name])));
        assert_eq!(dot.edge_ends(), BTreeSet::from([(shown(&prev.name), shown(name))]), "dependents dot");

        // blast of the node, its host and its DC: the container linking to it loses c's
        // service, whose only provider is c.
        let loser = json!({"name": prev.name, "host": prev.host, "dc": prev.dc,
                           "lost": [{"service": c.service, "providers": [name]}]});
        for (kind, target) in [("node", name), ("host", c.host.as_str()), ("dc", c.dc.as_str())] {
            let what = format!("blast {kind} {}", short(target));
            let got = run_json(&db, &args(&["graph", "blast", "--format", "json"], &[target]));
            let want = json!({"target": target, "kind": kind, "removed": [name], "consumers": [loser]});
            same_value(&got, &want, &what);

            let table = run(&db, &args(&["graph", "blast"], &[target]));
            let first = format!("{kind} {target}: 1 node(s) removed");
            assert!(table.starts_with(&format!("{first}\n")), "{what}: {}", short(&table));
            assert_row(&table, &[&prev.name, &prev.host, &prev.dc, &c.service, name], &what);
            assert!(table.ends_with("\n1 consumer(s) lose something\n"), "{what}: {}", short(&table));

            let dot = Dot::parse(&run(&db, &args(&["graph", "blast", "--format", "dot"], &[target])));
            let mut ends = BTreeSet::from([(shown(&prev.name), shown(name))]);
            if kind != "node" {
                ends.insert((shown(name), shown(target)));
            }
            assert_eq!(dot.edge_ends(), ends, "{what}: dot edges");
            assert_eq!(dot.node_ids(), BTreeSet::from([shown(target)]), "{what}: dot target");
            assert_eq!(
                dot.label(&shown(&prev.name), &shown(name)),
                Some(shown(&c.service).as_str()),
                "{what}: dot label"
            );
        }

        // path: two hops along the ring.
        let (to, mid) = (fleet.at(i + 2), next);
        let hop = |a: &Container, b: &Container| json!({"src": a.name, "dst": b.name, "services": [], "linked": true});
        let got = run_json(&db, &args(&["graph", "path", "--format", "json"], &[name, &to.name]));
        let want = json!({"from": name, "to": to.name, "found": true, "hops": [hop(c, mid), hop(mid, to)]});
        same_value(&got, &want, &format!("path {} {}", short(name), short(&to.name)));
        let table = run(&db, &args(&["graph", "path"], &[name, &to.name]));
        assert_row(&table, &[name, &mid.name, "(link)"], "path table, hop 1");
        assert_row(&table, &[&mid.name, &to.name, "(link)"], "path table, hop 2");
        assert!(table.ends_with("\n2 hop(s)\n"), "path table: {}", short(&table));
        let dot = Dot::parse(&run(&db, &args(&["graph", "path", "--format", "dot"], &[name, &to.name])));
        let ends = BTreeSet::from([(shown(name), shown(&mid.name)), (shown(&mid.name), shown(&to.name))]);
        assert_eq!(dot.edge_ends(), ends, "path dot");
    }

    // Everything, transitively, from the 10 KB node: the whole ring, each at its distance.
    let start = fleet.len() - 1;
    let got = run_json(&db, &args(&["graph", "deps", "--depth", "0", "--format", "json"], &[&fleet.at(start).name]));
    let mut want: Vec<Value> =
        (1..fleet.len()).map(|k| reached(fleet.at(start + k), &fleet.at(start + k - 1).name, k)).collect();
    want.sort_by_key(|r| (r["hops"].as_u64(), r["name"].as_str().map(str::to_owned)));
    same_value(&got["nodes"], &json!(want), "deps --depth 0");

    // spof: every node and every host is one, for the container linking to it.
    let spof = run_json(&db, &args(&["graph", "spof", "--format", "json"], &[]));
    let mut want = BTreeSet::new();
    for (i, c) in fleet.containers.iter().enumerate() {
        let prev = fleet.prev(i);
        let consumers = json!([{"name": prev.name, "host": prev.host, "dc": prev.dc,
                               "lost": [{"service": c.service, "providers": [c.name]}]}]);
        want.insert(json!({"kind": "host", "name": c.host, "dc": c.dc, "consumers": consumers}).to_string());
        want.insert(json!({"kind": "node", "name": c.name, "dc": c.dc, "consumers": consumers}).to_string());
    }
    let got: BTreeSet<String> = spof.as_array().unwrap().iter().map(Value::to_string).collect();
    assert_eq!(spof.as_array().unwrap().len(), 2 * fleet.len());
    assert!(got == want, "spof json differs from the fleet's");
    let kinds: Vec<&str> = spof.as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert!(kinds.iter().take(fleet.len()).all(|k| *k == "host"), "hosts first: {kinds:?}");
    for kind in ["host", "node"] {
        let names: Vec<&str> = spof
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["kind"] == kind)
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "spof {kind}s are sorted by name");
    }

    let table = run(&db, &args(&["graph", "spof"], &[]));
    for (i, c) in fleet.containers.iter().enumerate() {
        let losing = format!("{} [{}]", fleet.prev(i).name, c.service);
        assert_row(&table, &["host", &c.host, &c.dc, "1", &losing], "spof table, host");
        assert_row(&table, &["node", &c.name, &c.dc, "1", &losing], "spof table, node");
    }
    assert!(table.ends_with(&format!("\n{} single point(s) of failure\n", 2 * fleet.len())), "{}", short(&table));

    let dot = Dot::parse(&run(&db, &args(&["graph", "spof", "--format", "dot"], &[])));
    let mut ends = BTreeSet::new();
    let mut targets = BTreeSet::new();
    for (i, c) in fleet.containers.iter().enumerate() {
        ends.insert((shown(&fleet.prev(i).name), shown(&c.name)));
        ends.insert((shown(&c.name), shown(&c.host)));
        targets.insert(shown(&c.name));
        targets.insert(shown(&c.host));
        let label = dot.label(&shown(&fleet.prev(i).name), &shown(&c.name));
        assert_eq!(label, Some(shown(&c.service).as_str()), "spof dot label");
    }
    assert_eq!(dot.edge_ends(), ends, "spof dot edges");
    assert_eq!(dot.node_ids(), targets, "spof dot targets");
}

/// `graph deps|dependents|blast|path --format dot`, drawn by Graphviz's `dot -Tsvg`, show
/// every hostile name verbatim (a tab as a space) as the text of its node, and the services
/// as the arrows' labels: nothing in a name is read as an escape, an entity or markup.
#[tokio::test]
async fn topology_dot_draws_with_graphviz_showing_every_hostile_name() {
    let Some(dot) = tool("dot", "graphviz") else { return };
    let fleet = Fleet::new();
    let (db, _dir) = imported(&fleet).await;
    let draw = |args: Vec<String>| svg_texts(&dot, &run(&db, &args), &short_args(&args));
    let names = |cs: &[&str]| cs.iter().map(|c| shown(c)).collect::<BTreeSet<String>>();

    for (i, c) in fleet.containers.iter().enumerate() {
        let (next, prev, to) = (fleet.next(i), fleet.prev(i), fleet.at(i + 2));
        let name = c.name.as_str();
        let link = BTreeSet::from(["(link)".to_string()]);

        let (nodes, edges) = draw(args(&["graph", "deps", "--format", "dot"], &[name]));
        assert_eq!((nodes, edges), (names(&[name, &next.name]), link.clone()), "deps {}", short(name));

        let (nodes, edges) = draw(args(&["graph", "dependents", "--format", "dot"], &[name]));
        assert_eq!((nodes, edges), (names(&[&prev.name, name]), link.clone()), "dependents {}", short(name));

        for target in [name, c.host.as_str(), c.dc.as_str()] {
            let (nodes, edges) = draw(args(&["graph", "blast", "--format", "dot"], &[target]));
            let want = (names(&[&prev.name, name, target]), names(&[&c.service]));
            assert_eq!((nodes, edges), want, "blast {}", short(target));
        }

        let (nodes, edges) = draw(args(&["graph", "path", "--format", "dot"], &[name, &to.name]));
        assert_eq!((nodes, edges), (names(&[name, &next.name, &to.name]), link), "path {}", short(name));
    }
}

/// Draws `dot_text` with Graphviz's `dot -Tsvg` and reads the SVG back as XML: the texts
/// of its nodes and of its arrows (entities resolved).
fn svg_texts(dot: &Path, dot_text: &str, what: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    use std::io::Write as _;
    let mut child = std::process::Command::new(dot)
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = dot_text.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{what}: dot -Tsvg failed ({}): {stderr}", out.status);
    let svg = String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("{what}: the SVG is not UTF-8: {e}"));
    let options = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
    let doc = roxmltree::Document::parse_with_options(&svg, options)
        .unwrap_or_else(|e| panic!("{what}: the SVG is not XML: {e}"));
    let texts = |class: &str| -> BTreeSet<String> {
        doc.descendants()
            .filter(|n| n.tag_name().name() == "g" && n.attribute("class") == Some(class))
            .flat_map(|g| g.descendants().filter(|t| t.tag_name().name() == "text"))
            .map(|t| t.text().unwrap_or("").to_string())
            .collect()
    };
    (texts("node"), texts("edge"))
}

#[tokio::test]
async fn sql_prints_hostile_names_and_the_injections_did_nothing() {
    let db = TestDb::new().await;
    let tables_before = tables(&db).await;
    assert!(tables_before.len() >= 8, "{tables_before:?}");
    let fleet = Fleet::new();
    let dir = tempfile::tempdir().unwrap();
    let files = fleet.write(dir.path());
    import(&db, &files);
    let before = dump_without(&db.pool, &["last_seen"]).await;

    let table = run(&db, &args(&["sql"], &["SELECT name FROM node_health ORDER BY name"]));
    let cells: Vec<&str> = table
        .lines()
        .filter_map(|l| l.strip_prefix("│ ")?.strip_suffix('│').map(str::trim_end))
        .filter(|cell| *cell != "name")
        .collect();
    let want: BTreeSet<&str> = fleet.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(cells.len(), fleet.len(), "one row per node");
    assert!(cells.iter().copied().collect::<BTreeSet<_>>() == want, "sql table: the cells are not the names");
    assert!(table.ends_with(&format!("\n({} rows)\n", fleet.len())), "{}", short(&table));

    let got = run_json(&db, &args(&["sql", "--format", "json"], &["SELECT name, dc, role FROM node_health"]));
    let got: BTreeSet<String> = got.as_array().unwrap().iter().map(Value::to_string).collect();
    let want: BTreeSet<String> =
        fleet.containers.iter().map(|c| json!({"name": c.name, "dc": c.dc, "role": c.role}).to_string()).collect();
    assert!(got == want, "sql json: node_health differs from the fleet");

    // Each name as an SQL literal (quotes doubled) finds exactly its own row.
    for c in &fleet.containers {
        let query = format!("SELECT name, host FROM nodes WHERE name = '{}'", c.name.replace('\'', "''"));
        let got = run_json(&db, &args(&["sql", "--format", "json"], &[&query]));
        same_value(&got, &json!([{"name": c.name, "host": c.host}]), &format!("sql literal {}", short(&c.name)));
    }

    // The injections did nothing: the same tables, every row there, and importing the
    // same files again changes nothing but last_seen.
    assert_eq!(tables(&db).await, tables_before);
    let counts = graph_store::sql::read_only(
        &db.pool,
        "SELECT (SELECT count(*) FROM nodes), (SELECT count(*) FROM hosts), (SELECT count(*) FROM edges), \
                (SELECT count(*) FROM services)",
        10_000,
    )
    .await
    .unwrap();
    let n = fleet.len() as u64;
    assert_eq!(counts.rows, vec![vec![json!(n), json!(n), json!(n), json!(n)]]);
    import(&db, &files);
    assert!(before == dump_without(&db.pool, &["last_seen"]).await, "importing the same files again changed rows");
    assert_eq!(tables(&db).await, tables_before);
}

/// Every table and view of the database, with its kind.
async fn tables(db: &TestDb) -> Vec<String> {
    let result = graph_store::sql::read_only(
        &db.pool,
        "SELECT table_schema || '.' || table_name || ' ' || table_type FROM information_schema.tables \
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
        10_000,
    )
    .await
    .unwrap();
    result.rows.iter().map(|row| row[0].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_csv_inventory_carries_hostile_names_too() {
    let fleet = Fleet::new();
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("inventory.csv");
    std::fs::write(&csv, fleet.inventory_csv()).unwrap();
    let mut files = vec![csv];
    files.extend(fleet.write(dir.path()).into_iter().skip(1));
    import(&db, &files);

    let nodes = run_json(&db, &args(&["graph", "nodes", "--format", "json"], &[]));
    let nodes_by_name = by_name(&nodes, "name");
    assert_eq!(nodes_by_name.len(), fleet.len());
    for c in &fleet.containers {
        let what = format!("csv node {}", short(&c.name));
        let n = nodes_by_name.get(c.name.as_str()).unwrap_or_else(|| panic!("{what} is missing"));
        same(&n["host"], &c.host, &format!("{what} host"));
        same(&n["dc"], &c.dc, &format!("{what} dc"));
        same(&n["role"], &c.role, &format!("{what} role"));
        same_value(&n["ips"], &json!([c.ip]), &format!("{what} ips"));
        // The CSV's list separator is `;`: a service name holding one is cut there, as
        // docs/cmdb.md says.
        let want: BTreeSet<&str> = c.service.split(';').map(str::trim).filter(|s| !s.is_empty()).collect();
        let got: BTreeSet<&str> = n["services"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
        assert!(got == want, "{what} services: got {got:?}");
    }
    let edges = run_json(&db, &args(&["graph", "edges", "--format", "json"], &[]));
    let edges_by_src = by_name(&edges, "src");
    assert_eq!(edges_by_src.len(), fleet.len());
    for (i, c) in fleet.containers.iter().enumerate() {
        same(&edges_by_src[c.name.as_str()]["dst"], &fleet.next(i).name, &format!("csv edge from {}", short(&c.name)));
    }
}

/// Imports, over a small good fleet, an inventory whose one extra container has `value` in
/// `field`: either it is kept and comes back verbatim, or the import is refused with a
/// message naming the file and the field, and the store is unchanged.
async fn kept_verbatim_or_refused_clearly(field: &str, value: &str) -> Result<(), String> {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let container = |name: &str, ip: &str| {
        let ips = [ip];
        json!({"name": name, "host": "h1", "dc": "Tx", "role": "be", "ips": ips, "services": ["api"]})
    };
    let good = json!({"containers": [container("a.h1", "127.78.0.1"), container("b.h1", "127.78.0.2"),
                                     container("c.h1", "127.78.0.3"), container("d.h1", "127.78.0.4"),
                                     container("e.h1", "127.78.0.5")]});
    let good_path = dir.path().join("good.json");
    std::fs::write(&good_path, good.to_string()).unwrap();
    import(&db, &[good_path]);
    let before = dump(&db.pool).await;

    let mut hostile = container("x.h2", "127.78.0.9");
    hostile["host"] = json!("h2");
    hostile[field] = if field == "services" { json!([value]) } else { json!(value) };
    let mut export = good.clone();
    export["containers"].as_array_mut().unwrap().push(hostile);
    let path = dir.path().join(format!("hostile-{field}.json"));
    std::fs::write(&path, export.to_string()).unwrap();
    let out = edgewatch(&db, &["cmdb", "import", path_str(&path)]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        let nodes = run_json(&db, &args(&["graph", "nodes", "--format", "json"], &[]));
        let found = nodes.as_array().unwrap().iter().any(|n| match field {
            "services" => n["services"].as_array().unwrap().iter().any(|s| s == value),
            _ => n[field] == value,
        });
        return if found { Ok(()) } else { Err(format!("{field}: accepted but not shown verbatim")) };
    }
    let mut problems = Vec::new();
    if !stderr.contains(path_str(&path)) || !stderr.contains(&format!("field `{field}`")) {
        problems.push(format!("{field}: refused without naming the file and field: {}", short(&stderr)));
    }
    if before != dump(&db.pool).await {
        problems.push(format!("{field}: the refused import changed the store"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[tokio::test]
async fn incompressible_10_kb_names_are_kept_or_refused_naming_file_and_field() {
    let value = incompressible_ten_kilobytes();
    assert_eq!(value.len(), 10_000);
    let mut failures = Vec::new();
    for field in ["name", "host", "dc", "role", "services"] {
        if let Err(e) = kept_verbatim_or_refused_clearly(field, &value).await {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn nul_bytes_are_kept_or_refused_naming_file_and_field() {
    let mut failures = Vec::new();
    for field in ["name", "host", "dc", "role", "services"] {
        if let Err(e) = kept_verbatim_or_refused_clearly(field, "nul\u{0}byte").await {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A DOT graph as `--format dot` printed it, read back by DOT's rules for quoted strings:
/// `\"` is a quote, `\\` a backslash (so labels, which Graphviz unescapes, show the name),
/// and a backslash-newline continues the line; and by Graphviz's for the text it shows:
/// `&amp;` is `&`, and `&#37;` a `%` (at the start, where a bare one would make an anonymous
/// node). Any other backslash or `&`, or a bare leading `%`, means a name was not escaped,
/// and fails the parse, as does anything outside strings that DOT would not take.
#[derive(Debug, Default)]
struct Dot {
    nodes: Vec<(String, Attrs)>,
    edges: Vec<(String, String, Attrs)>,
}

/// A statement's attributes, `[key=value, …]`, in order.
type Attrs = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Id(String),
    Punct(&'static str),
}

impl Dot {
    fn parse(text: &str) -> Dot {
        let toks = lex(text).unwrap_or_else(|e| panic!("not valid DOT: {e}:\n{}", short(text)));
        parse_tokens(&toks).unwrap_or_else(|e| panic!("not valid DOT: {e}:\n{}", short(text)))
    }

    fn edge_ends(&self) -> BTreeSet<(String, String)> {
        self.edges.iter().map(|(a, b, _)| (a.clone(), b.clone())).collect()
    }

    fn node_ids(&self) -> BTreeSet<String> {
        self.nodes.iter().map(|(id, _)| id.clone()).collect()
    }

    /// The label of the edge `a -> b` that has one.
    fn label(&self, a: &str, b: &str) -> Option<&str> {
        self.edges
            .iter()
            .filter(|(x, y, _)| x == a && y == b)
            .find_map(|(_, _, attrs)| attrs.iter().find(|(k, _)| k == "label").map(|(_, v)| v.as_str()))
    }
}

fn lex(text: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err(format!("string from byte {at} never ends")),
                        Some((_, '%')) if s.is_empty() => {
                            return Err(format!(
                                "a bare % starts the string at {at}: Graphviz makes it an anonymous node"
                            ))
                        }
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, '"')) => s.push('"'),
                            Some((_, '\\')) => s.push('\\'),
                            Some((_, '\n')) => {}
                            other => return Err(format!("unescaped backslash before {other:?} in the string at {at}")),
                        },
                        Some((_, '&')) => {
                            let mut entity = String::new();
                            while let Some((_, c)) = chars.next_if(|(_, c)| *c != ';' && *c != '"') {
                                entity.push(c);
                            }
                            match (entity.as_str(), chars.next()) {
                                ("amp", Some((_, ';'))) => s.push('&'),
                                ("#37", Some((_, ';'))) if s.is_empty() => s.push('%'),
                                _ => return Err(format!("unescaped & before {entity:?} in the string at {at}")),
                            }
                        }
                        Some((_, c)) => s.push(c),
                    }
                }
                out.push(Tok::Id(s));
            }
            '{' => out.push(Tok::Punct("{")),
            '}' => out.push(Tok::Punct("}")),
            '[' => out.push(Tok::Punct("[")),
            ']' => out.push(Tok::Punct("]")),
            '=' => out.push(Tok::Punct("=")),
            ',' => out.push(Tok::Punct(",")),
            ';' => out.push(Tok::Punct(";")),
            '-' if chars.peek().map(|(_, c)| *c) == Some('>') => {
                chars.next();
                out.push(Tok::Punct("->"));
            }
            c if c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii() => {
                let mut s = String::from(c);
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii() && !c.is_whitespace() {
                        s.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Tok::Id(s));
            }
            other => return Err(format!("{other:?} outside a string at byte {at}")),
        }
    }
    Ok(out)
}

fn parse_tokens(toks: &[Tok]) -> Result<Dot, String> {
    let mut dot = Dot::default();
    let mut i = 0;
    let id = |i: usize| match toks.get(i) {
        Some(Tok::Id(s)) => Ok(s.clone()),
        other => Err(format!("expected an ID at token {i}, found {other:?}")),
    };
    let punct = |i: usize, p: &str| matches!(toks.get(i), Some(Tok::Punct(q)) if *q == p);
    if id(0)? != "digraph" {
        return Err("does not start with `digraph`".into());
    }
    i += 1;
    if matches!(toks.get(i), Some(Tok::Id(_))) {
        i += 1;
    }
    if !punct(i, "{") {
        return Err(format!("expected {{ at token {i}"));
    }
    i += 1;
    loop {
        match toks.get(i) {
            None => return Err("the graph is never closed".into()),
            Some(Tok::Punct("}")) => {
                i += 1;
                break;
            }
            Some(Tok::Punct(";")) => i += 1,
            Some(Tok::Id(first)) => {
                i += 1;
                if punct(i, "=") {
                    id(i + 1)?;
                    i += 2;
                    continue;
                }
                let mut chain = vec![first.clone()];
                while punct(i, "->") {
                    chain.push(id(i + 1)?);
                    i += 2;
                }
                let mut attrs = Vec::new();
                if punct(i, "[") {
                    i += 1;
                    while !punct(i, "]") {
                        let key = id(i)?;
                        if !punct(i + 1, "=") {
                            return Err(format!("expected = at token {}", i + 1));
                        }
                        attrs.push((key, id(i + 2)?));
                        i += 3;
                        if punct(i, ",") || punct(i, ";") {
                            i += 1;
                        }
                    }
                    i += 1;
                }
                if chain.len() == 1 {
                    dot.nodes.push((chain.remove(0), attrs));
                } else {
                    for pair in chain.windows(2) {
                        dot.edges.push((pair[0].clone(), pair[1].clone(), attrs.clone()));
                    }
                }
            }
            Some(other) => return Err(format!("unexpected {other:?} at token {i}")),
        }
    }
    if i != toks.len() {
        return Err(format!("{} tokens after the closing brace", toks.len() - i));
    }
    Ok(dot)
}

#[test]
fn the_dot_reader_refuses_what_graphviz_would_misread() {
    // The reader must be able to fail: unescaped quotes and backslashes, stray text.
    assert!(lex(r#"digraph g { "a" -> "b\" }"#).is_err(), "a string ending in an escaped quote never ends");
    assert!(lex(r#"digraph g { "a\n" }"#).is_err(), "an unescaped backslash");
    assert!(lex(r#"digraph g { "a" -> "b" [label='x']; }"#).is_err(), "single quotes are no DOT");
    assert!(lex(r#"digraph g { "a&lt;" }"#).is_err(), "an unescaped &, which Graphviz would show as <");
    assert!(lex(r#"digraph g { "a&" }"#).is_err(), "an unescaped & at the end");
    assert!(lex(r#"digraph g { "%s" }"#).is_err(), "a bare leading %, which Graphviz would show as %1");
    assert!(parse_tokens(&lex(r#"digraph g { "a" -> }"#).unwrap()).is_err());
    let dot = Dot::parse("digraph g {\n  rankdir=LR;\n  \"C:\\\\x\\\\\" -> \"\\\"q\\\"\" [label=\"a b\"];\n}\n");
    assert_eq!(dot.edge_ends(), BTreeSet::from([("C:\\x\\".to_string(), "\"q\"".to_string())]));
    assert_eq!(dot.label("C:\\x\\", "\"q\""), Some("a b"));
    let dot = Dot::parse("digraph g {\n  \"&amp;lt;\" -> \"x&amp;y\";\n  \"&#37;s 100%\" -> \"a%\";\n}\n");
    let ends = [("&lt;", "x&y"), ("%s 100%", "a%")].map(|(a, b)| (a.to_string(), b.to_string()));
    assert_eq!(dot.edge_ends(), BTreeSet::from(ends));
}

#[test]
fn the_row_matcher_wants_whole_cells_on_one_line() {
    let table = "┌──┐\n│ name      host   │\n╞══╡\n\
                 │ a b       h:x    │\n│ long-cel  h:y    │\n└──┘\n";
    assert!(has_row(table, &["a b", "h:x"]));
    assert!(!has_row(table, &["a", "h:x"]), "a prefix of a cell is not the cell");
    assert!(!has_row(table, &["long-cell", "h:y"]), "a truncated cell is not the cell");
    assert!(!has_row(table, &["a b", "h:y"]), "cells of different rows");
    assert!(has_row("│ x   last  │\n", &["x", "last"]), "the last column, padded to its width");
    assert!(!has_row("│ x   las   │\n", &["x", "last"]));
}
