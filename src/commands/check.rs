//! `edgewatch check nagios`: the Nagios plugin (active, or `--passive` writing results to
//! Nagios's command file).
//!
//! Follows the Monitoring Plugins development guidelines: one first line
//! `EDGEWATCH STATE - summary | perfdata`, long output after it, exit 0/1/2/3, UNKNOWN
//! (never OK) when the answer cannot be known.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use graph_store::diagnosis::{self, Diagnosis, EdgeFact, Incident};
use graph_store::{format_utc, PgPool};

use crate::cli::{CheckArgs, CheckCommand, NagiosBy};
use crate::config::Settings;
use crate::nagios::{clean, State};

/// How many problem servers and edges the long output lists before "… and N more".
const LONG_OUTPUT_ITEMS: usize = 40;

pub async fn run(settings: &Settings, cmd: CheckCommand) -> Result<ExitCode> {
    match cmd {
        CheckCommand::Nagios(args) => nagios(settings, args).await,
    }
}

/// `edgewatch check nagios`: prints the plugin's answer; the exit code is the state.
async fn nagios(settings: &Settings, args: CheckArgs) -> Result<ExitCode> {
    let answer = match evaluate(settings, &args).await {
        Ok(view) => view,
        Err(reason) => {
            println!("EDGEWATCH UNKNOWN - {}", clean(&reason));
            return Ok(ExitCode::from(State::Unknown.code()));
        }
    };
    if let Some(path) = &args.command_file {
        let written = match connect_quietly(settings, &args).await {
            Ok(pool) => passive(&pool, &answer, &args, path).await.map_err(|e| format!("{e:#}")),
            Err(e) => Err(e),
        };
        match written {
            Ok(n) => eprintln!("wrote {n} passive result(s) to {}", path.display()),
            Err(reason) => {
                println!("EDGEWATCH UNKNOWN - passive results not written: {}", clean(&reason));
                return Ok(ExitCode::from(State::Unknown.code()));
            }
        }
    }
    print!("{}", answer.text(&args));
    Ok(ExitCode::from(answer.state(&args).code()))
}

async fn connect_quietly(settings: &Settings, args: &CheckArgs) -> Result<PgPool, String> {
    let target = settings.target();
    let connect = graph_store::db::open_existing(&target);
    match tokio::time::timeout(args.timeout, connect).await {
        Ok(Ok(pool)) => Ok(pool),
        Ok(Err(e)) => Err(format!("cannot reach the database: {}", crate::hints::message(&e))),
        Err(_) => Err(format!("the database did not answer within {}", humantime::format_duration(args.timeout))),
    }
}

/// What the check saw: the diagnosis, filtered.
struct Answer {
    diagnosis: Diagnosis,
    /// The edges in trouble that pass the filters.
    trouble: Vec<EdgeFact>,
    incidents: Vec<Incident>,
    data_age: Duration,
}

async fn evaluate(settings: &Settings, args: &CheckArgs) -> Result<Answer, String> {
    let pool = connect_quietly(settings, args).await?;
    let work = async {
        let newest = diagnosis::last_result_at(&pool).await.map_err(|e| format!("cannot read the store: {e}"))?;
        let Some(newest) = newest else {
            return Err("no probe result at all yet: are the probers (edgewatch probe, agents) running?".to_string());
        };
        let data_age = (Utc::now() - newest).to_std().unwrap_or_default();
        if data_age > args.max_age {
            return Err(format!(
                "no probe result newer than {} (the newest is {} old, from {}): are the probers running?",
                humantime::format_duration(args.max_age),
                humantime::format_duration(Duration::from_secs(data_age.as_secs())),
                format_utc(&newest)
            ));
        }
        let check = settings.check();
        let diagnosis = diagnosis::current(&pool, &check.diagnosis, check.diagnosis_max_age)
            .await
            .map_err(|e| format!("cannot diagnose: {e}"))?;
        Ok((diagnosis, data_age))
    };
    let (diagnosis, data_age) = tokio::time::timeout(args.timeout, work)
        .await
        .map_err(|_| format!("the database did not answer within {}", humantime::format_duration(args.timeout)))??;
    let mut diagnosis = diagnosis;
    let mut trouble = std::mem::take(&mut diagnosis.trouble);
    let mut incidents = std::mem::take(&mut diagnosis.incidents);
    if args.dc.is_some() || args.role.is_some() || args.service.is_some() {
        trouble.retain(|e| {
            args.dc.as_ref().is_none_or(|dc| &e.src_dc == dc)
                && args.role.as_ref().is_none_or(|role| e.src_role.as_ref() == Some(role))
                && args.service.as_ref().is_none_or(|s| e.services.contains(s))
        });
        let kept: BTreeSet<(&str, &str)> = trouble.iter().map(|e| (e.src.as_str(), e.dst_ip.as_str())).collect();
        incidents.retain_mut(|i| {
            i.edges.retain(|e| kept.contains(&(e.src.as_str(), e.dst_ip.as_str())));
            i.affected_nodes = i.edges.iter().map(|e| &e.src).collect::<BTreeSet<_>>().len();
            !i.edges.is_empty()
        });
    }
    Ok(Answer { diagnosis, trouble, incidents, data_age })
}

impl Answer {
    fn broken(&self) -> impl Iterator<Item = &EdgeFact> {
        self.trouble.iter().filter(|e| e.broken())
    }

    fn flapping(&self) -> impl Iterator<Item = &EdgeFact> {
        self.trouble.iter().filter(|e| e.flapping)
    }

    /// Edges nobody has probed for a while (a prober or agent gone silent).
    fn stale(&self) -> impl Iterator<Item = &EdgeFact> {
        self.trouble.iter().filter(|e| e.state == "stale")
    }

    fn affected_nodes(&self) -> usize {
        self.broken().map(|e| &e.src).collect::<BTreeSet<_>>().len()
    }

    /// The measured value the thresholds apply to.
    fn value(&self, args: &CheckArgs) -> usize {
        match args.by {
            NagiosBy::Edges => self.broken().count(),
            NagiosBy::Nodes => self.affected_nodes(),
        }
    }

    fn state(&self, args: &CheckArgs) -> State {
        let value = self.value(args) as f64;
        let flapping = self.flapping().next().is_some();
        if args.critical.as_ref().is_some_and(|c| c.alerts(value)) || (flapping && args.flapping_is_critical) {
            State::Critical
        } else if args.warning.as_ref().is_some_and(|w| w.alerts(value)) || flapping {
            State::Warning
        } else {
            State::Ok
        }
    }

    /// The whole plugin output: first line with perfdata, then the long output.
    fn text(&self, args: &CheckArgs) -> String {
        let state = self.state(args);
        let broken = self.broken().count();
        let flapping = self.flapping().count();
        let mut summary = if broken == 0 {
            format!("no broken edges among {} live", self.diagnosis.live_edges)
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
        if flapping > 0 {
            let _ = write!(summary, "; {flapping} flapping edges");
        }
        let range = |r: &Option<crate::nagios::Range>| r.as_ref().map(|r| r.to_string()).unwrap_or_default();
        let (w, c) = (range(&args.warning), range(&args.critical));
        let (bw, bc, nw, nc) = match args.by {
            NagiosBy::Edges => (w.as_str(), c.as_str(), "", ""),
            NagiosBy::Nodes => ("", "", w.as_str(), c.as_str()),
        };
        let mut out = format!(
            "EDGEWATCH {} - {summary} | broken_edges={broken};{bw};{bc};0 affected_nodes={};{nw};{nc};0 \
             incidents={};;;0 flapping_edges={flapping};;;0 stale_edges={};;;0 data_age={}s;;;0\n",
            state.name(),
            self.affected_nodes(),
            self.incidents.len(),
            self.stale().count(),
            self.data_age.as_secs()
        );
        for i in self.incidents.iter().take(LONG_OUTPUT_ITEMS) {
            let _ = writeln!(
                out,
                "incident {} {}: {} (since {})",
                i.kind.as_str(),
                clean(&i.culprit),
                clean(&i.evidence),
                format_utc(&i.since)
            );
        }
        if self.incidents.len() > LONG_OUTPUT_ITEMS {
            let _ = writeln!(out, "… and {} more incidents", self.incidents.len() - LONG_OUTPUT_ITEMS);
        }
        // The problem servers, worst (most disconnects) first.
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
                    None => e.dst_ip.clone(),
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
        out
    }
}

/// Writes one PROCESS_SERVICE_CHECK_RESULT per problem host (the consumers' hosts), and a
/// recovery for each host that had a problem last time and has none now. Returns how many
/// lines were written.
async fn passive(pool: &PgPool, answer: &Answer, args: &CheckArgs, path: &std::path::Path) -> Result<usize> {
    let service = &args.service_description;
    let mut hosts: BTreeMap<&str, (Vec<&EdgeFact>, Vec<&EdgeFact>)> = BTreeMap::new();
    for e in answer.broken() {
        hosts.entry(&e.src_host).or_default().0.push(e);
    }
    for e in answer.flapping() {
        hosts.entry(&e.src_host).or_default().1.push(e);
    }
    let mut results: Vec<(String, State, String)> = hosts
        .iter()
        .map(|(host, (broken, flapping))| {
            let state = if !broken.is_empty() || (args.flapping_is_critical && !flapping.is_empty()) {
                State::Critical
            } else {
                State::Warning
            };
            let nodes: BTreeSet<&str> = broken.iter().map(|e| e.src.as_str()).collect();
            let mut text = format!(
                "EDGEWATCH {} - {}: {} broken edges from {} containers",
                state.name(),
                host,
                broken.len(),
                nodes.len()
            );
            if !flapping.is_empty() {
                let _ = write!(text, ", {} flapping", flapping.len());
            }
            let dests: Vec<String> = broken.iter().take(10).map(|e| format!("{} -> {}", e.src, e.dst_ip)).collect();
            if !dests.is_empty() {
                let _ = write!(text, ": {}", dests.join(", "));
            }
            (host.to_string(), state, clean(&text))
        })
        .collect();
    let previous = graph_store::diagnosis::passive_problems(pool, service).await?;
    for host in previous {
        if !hosts.contains_key(host.as_str()) {
            let text = format!("EDGEWATCH OK - {}: every edge reachable again", clean(&host));
            results.push((host, State::Ok, text));
        }
    }
    let now = Utc::now().timestamp();
    let mut lines = String::new();
    for (host, state, text) in &results {
        let _ =
            writeln!(lines, "[{now}] PROCESS_SERVICE_CHECK_RESULT;{};{service};{};{text}", clean(host), state.code());
    }
    let mut file = std::fs::OpenOptions::new().append(true).open(path).with_context(|| {
        format!(
            "opening the Nagios command file {} (is Nagios running, with check_external_commands=1?)",
            path.display()
        )
    })?;
    file.write_all(lines.as_bytes()).with_context(|| format!("writing to {}", path.display()))?;
    let sent: Vec<(String, i32, String)> =
        results.into_iter().map(|(host, state, text)| (host, i32::from(state.code()), text)).collect();
    graph_store::diagnosis::record_passive(pool, service, &sent).await?;
    Ok(sent.len())
}
