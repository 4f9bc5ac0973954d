//! PostgreSQL stopped for 60 seconds while an agent (through `serve`) and a prober worker
//! run: no result is lost — those made during the outage arrive after it — and no process
//! needs a restart.
//!
//! **Takes about 75 s**: the outage alone is 60 s. (It waits up to 90 s more for the
//! agent and the worker to record again, should their back-off keep them away longer.)
//!
//! The test has an embedded cluster of its own (stopping the shared test cluster would
//! break the other tests). Loopback only: the sample fleet's published links (all in
//! 127.0.0.0/8), probed with `--allow 127.0.0.0/8`. `serve`, one agent for `fe1.host101`
//! (4 edges) and one `probe` process run with a 1 s interval; after ~5 s the cluster is
//! stopped, 60 s later started again. Then every result the agent made is in the store
//! (each of its edges has one per interval all through the outage), every result the
//! worker made is recorded, and the three processes are the ones started at the
//! beginning, still running, and stop cleanly on Ctrl-C.

mod lab;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use graph_store::db::Target;
use graph_store::embedded::EmbeddedCluster;
use graph_store::testing::probe_results;
use graph_store::PgPool;
use lab::{edgewatch_command, edgewatch_ok, Procs};

const NODE: &str = "fe1.host101";
const AGENT: &str = "agent:fe1.host101";
const OUTAGE: Duration = Duration::from_secs(60);
const PROCESSES: [&str; 3] = ["serve", "agent", "worker"];

fn sample(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample-fleet").join(name);
    path.to_str().unwrap().to_string()
}

/// Stops the test's cluster when the test ends, however it ends.
struct StopCluster(EmbeddedCluster);

impl Drop for StopCluster {
    fn drop(&mut self) {
        if let Err(e) = self.0.stop() {
            eprintln!("stopping the test's PostgreSQL: {e}");
        }
    }
}

async fn connect(url: &str) -> PgPool {
    graph_store::connect(&Target::Url(url.to_string()), graph_store::Pooler::None)
        .await
        .expect("connecting to the test's PostgreSQL")
        .pool
}

/// Every result of `prober` (or of probers starting with it when it ends in `/`), by
/// edge, oldest first.
async fn results_by_edge(pool: &PgPool, prober: &str) -> BTreeMap<i64, Vec<DateTime<Utc>>> {
    let mut by_edge: BTreeMap<i64, Vec<DateTime<Utc>>> = BTreeMap::new();
    for (edge, at, by) in probe_results(pool).await {
        if by == prober || (prober.ends_with('/') && by.starts_with(prober)) {
            by_edge.entry(edge).or_default().push(at);
        }
    }
    by_edge
}

/// The numbers of a summary line such as "probed 5 edges, recorded 5 results, …", in
/// order.
fn numbers(line: &str) -> Vec<u64> {
    line.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect()
}

fn assert_all_running(procs: &mut Procs, when: &str) {
    for label in PROCESSES {
        assert!(procs.is_running(label), "{label} exited {when}:\n{}", procs.log(label));
    }
}

#[tokio::test]
async fn results_made_while_the_store_is_down_arrive_after_it() {
    let started = Instant::now();
    let dir = tempfile::Builder::new().prefix("ew-outage").tempdir().unwrap();
    // As root the cluster belongs to an unprivileged user, who must get through here.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let cluster = EmbeddedCluster::new(dir.path()).unwrap();
    cluster.start().unwrap();
    let cluster = StopCluster(cluster);
    cluster.0.ensure_database("edgewatch").await.unwrap();
    let url = cluster.0.url("edgewatch");

    edgewatch_ok(&url, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    let token = edgewatch_ok(&url, &["agent-token", "create", NODE]).trim().to_string();

    let mut procs = Procs::new();
    let mut serve = edgewatch_command();
    serve.args(["--database-url", &url, "serve", "--listen", "127.0.0.1:0", "--interval", "1s"]);
    procs.spawn("serve", serve);
    let line = procs.wait_for_line("serve", "listening on http://", Duration::from_secs(60));
    let server = line.trim().trim_start_matches("listening on ").to_string();
    let probing = ["--interval", "1s", "--timeout", "300ms", "--allow", "127.0.0.0/8"];
    let mut agent = edgewatch_command();
    agent
        .args(["agent", "--server", &server, "--name", NODE, "--token", &token])
        .args(probing)
        .args(["--packets", "2"]);
    procs.spawn("agent", agent);
    let mut worker = edgewatch_command();
    // Five echoes 200 ms apart: the worker is probing most of the time, so the outage
    // most likely catches it holding results it cannot record yet.
    worker.args(["--database-url", &url, "probe", "--workers", "2", "--name", "worker"]).args(probing);
    worker.args(["--packets", "5"]);
    procs.spawn("worker", worker);
    let pids: Vec<u32> = PROCESSES.iter().map(|l| procs.pid(l)).collect();

    // Running: the agent's four edges and the worker's get results.
    let pool = connect(&url).await;
    let agent_edges: Vec<i64> =
        graph_store::probe::targets_of(&pool, NODE).await.unwrap().into_iter().map(|d| d.edge_id).collect();
    assert_eq!(agent_edges.len(), 4, "{NODE}'s published links");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let agent_results = results_by_edge(&pool, AGENT).await;
        let worker_results = results_by_edge(&pool, "worker/").await;
        if agent_edges.iter().all(|e| agent_results.get(e).is_some_and(|r| r.len() >= 3)) && !worker_results.is_empty()
        {
            break;
        }
        assert_all_running(&mut procs, "before the outage");
        assert!(Instant::now() < deadline, "no results from the agent and the worker: {agent_results:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    pool.close().await;

    // The outage.
    let down_at = Utc::now();
    assert!(cluster.0.stop().unwrap(), "the cluster was running");
    eprintln!("PostgreSQL stopped after {:?}", started.elapsed());
    let back_at = Instant::now() + OUTAGE;
    while Instant::now() < back_at {
        assert_all_running(&mut procs, "while the store was down");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let up_at = Utc::now();
    cluster.0.start().unwrap();
    eprintln!("PostgreSQL started again after {:?}", started.elapsed());

    // After it: the agent delivers what it made meanwhile and goes on; the worker comes
    // back from its back-off and probes again.
    let pool = connect(&url).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let agent_results = results_by_edge(&pool, AGENT).await;
        let worker_results = results_by_edge(&pool, "worker/").await;
        let agent_back =
            agent_edges.iter().all(|e| agent_results.get(e).is_some_and(|r| r.iter().any(|at| *at > up_at)));
        let worker_back = worker_results.values().flatten().any(|at| *at > up_at);
        if agent_back && worker_back {
            break;
        }
        assert_all_running(&mut procs, "after the store came back");
        assert!(
            Instant::now() < deadline,
            "90 s after the store came back: agent delivering again {agent_back}, worker probing again {worker_back}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("agent and worker recording again after {:?}", started.elapsed());

    // No restart: the processes started at the beginning are still the ones running.
    assert_all_running(&mut procs, "by the end");
    assert_eq!(PROCESSES.iter().map(|l| procs.pid(l)).collect::<Vec<_>>(), pids);
    let mut summaries = BTreeMap::new();
    for label in ["agent", "worker", "serve"] {
        let status = procs.interrupt(label, Duration::from_secs(30));
        let log = procs.log(label);
        assert!(status.success(), "{label} failed on Ctrl-C ({status}):\n{log}");
        summaries.insert(label, log.lines().last().unwrap_or("").to_string());
    }

    // The agent: "N cycles, M results made, D delivered, R refused by the server, X
    // dropped, U undelivered, S restored from the spool" — everything made was delivered,
    // and is in the store.
    let agent_summary = &summaries["agent"];
    let [_cycles, made, delivered, refused, dropped, undelivered, _restored] = numbers(agent_summary)[..] else {
        panic!("the agent's last line is not its summary: {agent_summary}")
    };
    assert!(made > 0 && delivered == made && refused == 0 && dropped == 0 && undelivered == 0, "{agent_summary}");
    let agent_results = results_by_edge(&pool, AGENT).await;
    let stored: usize = agent_results.values().map(Vec::len).sum();
    assert_eq!(stored as u64, made, "results made by the agent vs stored ({agent_summary})");
    // Each of its edges has a result every interval all through the outage: made then,
    // delivered after.
    for edge in &agent_edges {
        let times = &agent_results[edge];
        let during = times.iter().filter(|at| **at > down_at && **at < up_at).count();
        assert!(during >= 50, "edge {edge}: {during} results made during the 60 s outage");
        for pair in times.windows(2) {
            let gap = (pair[1] - pair[0]).num_milliseconds();
            assert!(gap < 3000, "edge {edge}: no result between {} and {} ({gap} ms)", pair[0], pair[1]);
        }
    }

    // The worker: "probed P edges, recorded R results, …": all recorded, and stored.
    let worker_summary = &summaries["worker"];
    let [probed, recorded, ..] = numbers(worker_summary)[..] else {
        panic!("the worker's last line is not its summary: {worker_summary}")
    };
    assert!(probed > 0 && recorded == probed, "{worker_summary}");
    let stored: usize = results_by_edge(&pool, "worker/").await.values().map(Vec::len).sum();
    assert_eq!(stored as u64, recorded, "results recorded by the worker vs stored ({worker_summary})");
    let held = procs.log("worker").lines().filter(|l| l.contains("cannot record results")).count();
    eprintln!("the worker failed to record {held} time(s) during the outage and kept the results until it could");
    pool.close().await;
    eprintln!("store outage test done in {:?}; {agent_summary}; {worker_summary}", started.elapsed());
}
