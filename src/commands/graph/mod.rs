//! `edgewatch graph …`: the node and edge lists, the broken edges, what changed, and (in
//! [`topology`]) the dependency questions; now or (with `--at`) as the graph was.

mod topology;

use std::process::ExitCode;

use anyhow::Result;
use graph_store::history::{self, Diff, EdgeAt};
use graph_store::query::{self, ListOptions};
use graph_store::{format_utc, PgPool};

use crate::cli::{GraphArgs, GraphCommand, ListArgs, ListFormat};
use crate::config::Settings;
use crate::output;

pub async fn run(settings: &Settings, args: GraphArgs) -> Result<ExitCode> {
    let at = args.at;
    if let GraphCommand::Topology(cmd) = args.command {
        return topology::run(settings, cmd, at).await;
    }
    let db = super::shared::connect(settings).await?;
    let read = crate::read_pool::for_command(settings, &db.pool).await?.pool;
    match args.command {
        GraphCommand::Nodes(args) => {
            if args.state.is_some() || args.source.is_some() {
                anyhow::bail!("--state and --source filter edges, not nodes");
            }
            let nodes = match at {
                Some(at) => history::nodes_at(&read, at, &list_options(&args, Some(at))?).await?,
                None => query::nodes(&read, list_options(&args, None)?).await?,
            };
            match args.format {
                ListFormat::Json => output::json(&nodes)?,
                ListFormat::Table => output::nodes_table(&nodes),
            }
        }
        GraphCommand::Edges(args) => match at {
            Some(at) => {
                let edges = history::edges_at(&read, at, &list_options(&args, Some(at))?).await?;
                match args.format {
                    ListFormat::Json => output::json(&edges)?,
                    ListFormat::Table => edges_at_table(&edges, at),
                }
            }
            None => {
                let edges = query::edges(&read, list_options(&args, None)?).await?;
                match args.format {
                    ListFormat::Json => output::json(&edges)?,
                    ListFormat::Table => output::edges_table(&edges),
                }
            }
        },
        GraphCommand::Broken { format } => {
            let broken = broken(&read, at).await?;
            match format {
                ListFormat::Json => output::json(&broken)?,
                ListFormat::Table => output::broken_table(&broken),
            }
        }
        GraphCommand::Diff { from, to, format } => {
            if at.is_some() {
                anyhow::bail!("graph diff takes --from and --to, not --at");
            }
            if from > to {
                anyhow::bail!("--from ({}) is after --to ({})", format_utc(&from), format_utc(&to));
            }
            let diff = history::diff(&read, from, to).await?;
            match format {
                ListFormat::Json => output::json(&diff)?,
                ListFormat::Table => diff_table(&diff),
            }
        }
        GraphCommand::Topology(_) => unreachable!("answered above"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `graph broken`, now or at a past time.
pub async fn broken(pool: &PgPool, at: Option<chrono::DateTime<chrono::Utc>>) -> Result<Vec<query::BrokenEdge>> {
    Ok(match at {
        Some(at) => history::broken_at(pool, at).await?,
        None => query::broken(pool).await?,
    })
}

fn list_options(args: &ListArgs, at: Option<chrono::DateTime<chrono::Utc>>) -> Result<ListOptions> {
    if args.all && at.is_some() {
        anyhow::bail!("--all lists retired rows too; with --at the graph is the one live at that time");
    }
    Ok(ListOptions {
        include_retired: args.all,
        dc: args.dc.clone(),
        role: args.role.clone(),
        host: args.host.clone(),
        service: args.service.clone(),
        state: args.state.clone(),
        source: args.source.clone(),
    })
}

fn edges_at_table(edges: &[EdgeAt], at: chrono::DateTime<chrono::Utc>) {
    let mut t = output::table(&["src", "dst_ip", "dst", "services", "sources", "state", "since"]);
    for e in edges {
        t.add_row(vec![
            e.src.clone(),
            e.dst_ip.clone(),
            e.dst.clone().unwrap_or_default(),
            e.services.join(" "),
            e.sources.join(" "),
            e.state.to_string(),
            e.state_since.as_ref().map(format_utc).unwrap_or_default(),
        ]);
    }
    println!("{t}");
    println!("{} edges at {}", edges.len(), format_utc(&at));
}

fn diff_table(d: &Diff) {
    println!("from {} to {}", format_utc(&d.from), format_utc(&d.to));
    let mut t = output::table(&["change", "what", "detail"]);
    for n in &d.nodes_appeared {
        t.add_row(vec!["+ node".into(), n.name.clone(), format!("{} {}", n.host, n.dc)]);
    }
    for n in &d.nodes_vanished {
        t.add_row(vec!["- node".into(), n.name.clone(), format!("{} {}", n.host, n.dc)]);
    }
    let edge = |src: &str, ip: &str, dst: &Option<String>| match dst {
        Some(dst) => format!("{src} -> {ip} ({dst})"),
        None => format!("{src} -> {ip}"),
    };
    for e in &d.edges_appeared {
        t.add_row(vec!["+ edge".into(), edge(&e.src, &e.dst_ip, &e.dst), e.state.to_string()]);
    }
    for e in &d.edges_vanished {
        t.add_row(vec!["- edge".into(), edge(&e.src, &e.dst_ip, &e.dst), e.state.to_string()]);
    }
    for c in &d.edges_changed {
        let mut detail = Vec::new();
        if c.state_from != c.state_to {
            detail.push(format!("{} -> {}", c.state_from, c.state_to));
        }
        if c.dst_from != c.dst_to {
            let name = |d: &Option<String>| d.clone().unwrap_or_else(|| "(nobody)".into());
            detail.push(format!("owner {} -> {}", name(&c.dst_from), name(&c.dst_to)));
        }
        if c.services_from != c.services_to {
            detail.push(format!("services [{}] -> [{}]", c.services_from.join(" "), c.services_to.join(" ")));
        }
        t.add_row(vec!["~ edge".into(), edge(&c.src, &c.dst_ip, &c.dst_to), detail.join("; ")]);
    }
    println!("{t}");
    println!(
        "{} node(s) appeared, {} vanished; {} edge(s) appeared, {} vanished, {} changed",
        d.nodes_appeared.len(),
        d.nodes_vanished.len(),
        d.edges_appeared.len(),
        d.edges_vanished.len(),
        d.edges_changed.len()
    );
}
