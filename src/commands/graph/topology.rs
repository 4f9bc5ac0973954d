//! `edgewatch graph deps|dependents|blast|spof|path`: topology questions answered on a
//! snapshot of the graph, now or at `--at` (see `graph_store::topology` for what each one
//! means), printed as a table, JSON or DOT.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use chrono::{DateTime, Utc};
use graph_store::topology::{self, Loser, PathAnswer, ReachedAnswer, Snapshot};

use crate::cli::{TopologyCommand, TopologyFormat};
use crate::config::Settings;
use crate::dot::quote;
use crate::not_found::{not_in_graph, Named};
use crate::output::{self, table};

pub async fn run(settings: &Settings, cmd: TopologyCommand, at: Option<DateTime<Utc>>) -> Result<ExitCode> {
    let db = crate::commands::shared::connect(settings).await?;
    let read = crate::read_pool::for_command(settings, &db.pool).await?;
    let snapshot = match at {
        Some(_) => topology::load_at(&read.pool, at).await?,
        // The packed form `serve` keeps, while it matches the graph; else the tables.
        None => topology::load_fast(&read.pool, read.on_standby).await?.0,
    };
    answer(&snapshot, cmd)
}

/// Answers one question on a loaded snapshot and prints it.
pub fn answer(snapshot: &Snapshot, cmd: TopologyCommand) -> Result<ExitCode> {
    match cmd {
        TopologyCommand::Deps { node, depth, format } => reached(snapshot, &node, depth, true, format)?,
        TopologyCommand::Dependents { node, depth, format } => reached(snapshot, &node, depth, false, format)?,
        TopologyCommand::Blast { target, format } => {
            let Some(blast) = snapshot.blast(&target) else {
                anyhow::bail!(not_in_graph(&target, Named::NodeHostOrDc));
            };
            match format {
                TopologyFormat::Json => output::json(&blast)?,
                TopologyFormat::Dot => print!("{}", losers_dot("blast", &[(&blast.target, &blast.consumers)])),
                TopologyFormat::Table => {
                    println!("{} {}: {} node(s) removed", kind_name(blast.kind), blast.target, blast.removed.len());
                    losers_table(&blast.consumers);
                    println!("{} consumer(s) lose something", blast.consumers.len());
                }
            }
        }
        TopologyCommand::Spof { format } => {
            let spof = snapshot.spof();
            match format {
                TopologyFormat::Json => output::json(&spof)?,
                TopologyFormat::Dot => {
                    let parts: Vec<(&str, &Vec<Loser>)> =
                        spof.iter().map(|s| (s.name.as_str(), &s.consumers)).collect();
                    print!("{}", losers_dot("spof", &parts));
                }
                TopologyFormat::Table => {
                    let mut t = table(&["kind", "name", "dc", "consumers", "losing"]);
                    for s in &spof {
                        let mut losing: Vec<String> = s.consumers.iter().take(5).map(loser_text).collect();
                        if s.consumers.len() > 5 {
                            losing.push(format!("… (+{})", s.consumers.len() - 5));
                        }
                        t.add_row(vec![
                            kind_name(s.kind).to_string(),
                            s.name.clone(),
                            s.dc.clone(),
                            s.consumers.len().to_string(),
                            losing.join("; "),
                        ]);
                    }
                    println!("{t}");
                    println!("{} single point(s) of failure", spof.len());
                }
            }
        }
        TopologyCommand::Path { from, to, format } => {
            let hops = snapshot.path(&from, &to).map_err(|name| anyhow::anyhow!(not_in_graph(&name, Named::Node)))?;
            let found = hops.is_some();
            let hops = hops.unwrap_or_default();
            match format {
                TopologyFormat::Json => {
                    output::json(&PathAnswer { from: from.clone(), to: to.clone(), found, hops: hops.clone() })?
                }
                TopologyFormat::Dot => {
                    let mut dot = String::from("digraph path {\n  rankdir=LR;\n");
                    for h in &hops {
                        edge_dot(&mut dot, &h.src, &h.dst, &h.services, h.linked);
                    }
                    dot.push_str("}\n");
                    print!("{dot}");
                }
                TopologyFormat::Table if found => {
                    let mut t = table(&["from", "to", "services"]);
                    for h in &hops {
                        t.add_row(vec![h.src.clone(), h.dst.clone(), services_text(&h.services, h.linked)]);
                    }
                    println!("{t}");
                    println!("{} hop(s)", hops.len());
                }
                TopologyFormat::Table => println!("no dependency chain from {from} to {to}"),
            }
            if !found {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn reached(snapshot: &Snapshot, node: &str, depth: usize, forward: bool, format: TopologyFormat) -> Result<()> {
    let limit = (depth > 0).then_some(depth);
    let nodes = if forward { snapshot.deps(node, limit) } else { snapshot.dependents(node, limit) };
    let Some(nodes) = nodes else {
        anyhow::bail!(not_in_graph(node, Named::Node));
    };
    match format {
        TopologyFormat::Json => output::json(&ReachedAnswer {
            node: node.to_string(),
            direction: if forward { "deps" } else { "dependents" }.to_string(),
            depth: limit,
            nodes,
        })?,
        TopologyFormat::Dot => {
            let mut dot = format!("digraph {} {{\n  rankdir=LR;\n", if forward { "deps" } else { "dependents" });
            let _ = writeln!(dot, "  {} [style=bold];", quote(node));
            for r in &nodes {
                let (src, dst) = if forward { (&r.via, &r.name) } else { (&r.name, &r.via) };
                edge_dot(&mut dot, src, dst, &r.services, r.linked);
            }
            dot.push_str("}\n");
            print!("{dot}");
        }
        TopologyFormat::Table => {
            let mut t = table(&["hops", "name", "host", "dc", "via", "services"]);
            for r in &nodes {
                t.add_row(vec![
                    r.hops.to_string(),
                    r.name.to_string(),
                    r.host.to_string(),
                    r.dc.to_string(),
                    r.via.to_string(),
                    services_text(&r.services, r.linked),
                ]);
            }
            println!("{t}");
            println!("{} node(s)", nodes.len());
        }
    }
    Ok(())
}

fn kind_name(kind: topology::TargetKind) -> &'static str {
    match kind {
        topology::TargetKind::Node => "node",
        topology::TargetKind::Host => "host",
        topology::TargetKind::Dc => "dc",
    }
}

fn services_text(services: &[String], linked: bool) -> String {
    let mut parts = services.to_vec();
    if linked {
        parts.push("(link)".into());
    }
    parts.join(" ")
}

fn loser_text(l: &Loser) -> String {
    let lost: Vec<String> = l.lost.iter().map(|x| x.service.clone().unwrap_or_else(|| "(link)".into())).collect();
    format!("{} [{}]", l.name, lost.join(" "))
}

fn losers_table(losers: &[Loser]) {
    let mut t = table(&["consumer", "host", "dc", "loses", "providers gone"]);
    for l in losers {
        for x in &l.lost {
            t.add_row(vec![
                l.name.clone(),
                l.host.clone(),
                l.dc.clone(),
                x.service.clone().unwrap_or_else(|| "(link)".into()),
                x.providers.join(" "),
            ]);
        }
    }
    println!("{t}");
}

/// Consumers → the providers they lose, one cluster per removed target.
fn losers_dot(name: &str, parts: &[(&str, &Vec<Loser>)]) -> String {
    // A set: the same line can come from several consumers or targets.
    let mut lines = std::collections::BTreeSet::new();
    for (target, losers) in parts {
        lines.insert(format!("  {} [shape=box, style=dashed];", quote(target)));
        for l in *losers {
            for x in &l.lost {
                let label = x.service.clone().unwrap_or_else(|| "link".into());
                for p in &x.providers {
                    lines.insert(format!("  {} -> {} [label={}, color=red];", quote(&l.name), quote(p), quote(&label)));
                    if p != target {
                        lines.insert(format!("  {} -> {} [style=dotted, arrowhead=none];", quote(p), quote(target)));
                    }
                }
            }
        }
    }
    let mut dot = format!("digraph {name} {{\n  rankdir=LR;\n");
    for line in lines {
        dot.push_str(&line);
        dot.push('\n');
    }
    dot.push_str("}\n");
    dot
}

fn edge_dot(dot: &mut String, src: &str, dst: &str, services: &[String], linked: bool) {
    let style = if services.is_empty() { ", style=dashed" } else { "" };
    let _ =
        writeln!(dot, "  {} -> {} [label={}{style}];", quote(src), quote(dst), quote(&services_text(services, linked)));
}
