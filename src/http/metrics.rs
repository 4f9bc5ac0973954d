//! Prometheus `/metrics` (OpenMetrics text): the API's own request latencies, kept in
//! the process, and the store's figures, read when scraped (DNS log lines by result,
//! probe results by kind and verdict, live edges by state, live nodes by data center),
//! and the database pool. When the store cannot be read, `edgewatch_store_up` is 0 and
//! the rest is still served.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::time::Instant;

use super::error::{with_store_timeout, ApiError};
use super::{App, STORE_TIMEOUT};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    /// The route as declared (`/api/v1/nodes/{name}/deps`), not the path asked for.
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Copy)]
struct LatencyBuckets;

impl MetricConstructor<Histogram> for LatencyBuckets {
    fn new_metric(&self) -> Histogram {
        // 0.5 ms … 16 s
        Histogram::new(exponential_buckets(0.0005, 2.0, 16))
    }
}

/// What the process keeps between scrapes.
#[derive(Debug, Clone)]
pub struct Metrics {
    http: Family<HttpLabels, Histogram, LatencyBuckets>,
    /// Results agents said they dropped undelivered, since this process started.
    pub agent_results_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics { http: Family::new_with_constructor(LatencyBuckets), agent_results_dropped: Counter::default() }
    }
}

/// Middleware: times every routed request.
pub async fn track(State(app): State<Arc<App>>, matched: Option<MatchedPath>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = matched.map(|m| m.as_str().to_string()).unwrap_or_else(|| "(none)".into());
    let response = next.run(req).await;
    let labels = HttpLabels { method, route, status: response.status().as_u16() };
    app.metrics.http.get_or_create(&labels).observe(start.elapsed().as_secs_f64());
    response
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    kind: String,
    verdict: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DcLabel {
    dc: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    state: String,
}

/// `GET /metrics`
pub async fn scrape(State(app): State<Arc<App>>) -> Response {
    let mut registry = Registry::with_prefix("edgewatch");
    registry.register("http_request_duration_seconds", "API request latency", app.metrics.http.clone());
    if let Some(leading) = &app.leading {
        let held = Gauge::<i64>::default();
        held.set(i64::from(*leading.borrow()));
        registry.register(
            "once_only_work",
            "1 when this serve holds the lease on the once-only work (diagnosis refresh, stale marking, trace upkeep)",
            held,
        );
    }
    registry.register(
        "agent_results_dropped",
        "Results agents reported dropping undelivered (buffer or spool full, or too old), since this serve started",
        app.metrics.agent_results_dropped.clone(),
    );

    registry.register(
        "agent_posts_per_commit",
        "Agents' results posts written together in one transaction (a group commit), per commit",
        app.intake.posts_per_commit.clone(),
    );

    let pool = Family::<PoolLabel, Gauge>::default();
    let idle = i64::try_from(app.pool.num_idle()).unwrap_or(i64::MAX);
    pool.get_or_create(&PoolLabel { state: "idle".into() }).set(idle);
    pool.get_or_create(&PoolLabel { state: "in_use".into() }).set(i64::from(app.pool.size()) - idle);
    registry.register("db_pool_connections", "Database pool connections by state", pool);
    let pool_max = Gauge::<i64>::default();
    pool_max.set(i64::from(app.pool.options().get_max_connections()));
    registry.register("db_pool_max_connections", "Database pool size limit", pool_max);

    app.reads.register_metrics(&mut registry);

    let up = Gauge::<i64>::default();
    registry.register("store_up", "1 when the store's figures could be read for this scrape", up.clone());
    match with_store_timeout(graph_store::figures::read(&app.pool)).await {
        Ok(figures) => {
            up.set(1);
            let lines = Family::<ResultLabel, Counter>::default();
            for (result, n) in figures.dns_lines {
                lines.get_or_create(&ResultLabel { result }).inc_by(count(n));
            }
            registry.register("dns_log_lines", "DNS log lines read, by result (edge, or why skipped)", lines);
            let probes = Family::<ProbeLabels, Counter>::default();
            for (kind, verdict, n) in figures.probe_results {
                probes.get_or_create(&ProbeLabels { kind, verdict }).inc_by(count(n));
            }
            registry.register("probe_results", "Probe results recorded, by kind and verdict", probes);
            let edges = Family::<StateLabel, Gauge>::default();
            for (state, n) in figures.edges_by_state {
                edges.get_or_create(&StateLabel { state }).set(n);
            }
            registry.register("edges", "Live edges by health state", edges);
            let nodes = Family::<DcLabel, Gauge>::default();
            for (dc, n) in figures.nodes_by_dc {
                nodes.get_or_create(&DcLabel { dc }).set(n);
            }
            registry.register("nodes", "Live nodes by data center", nodes);
            paths(&mut registry, &app).await;
        }
        Err(ApiError::StoreTimeout) => {
            tracing::warn!("metrics: the store did not answer within {} s", STORE_TIMEOUT.as_secs())
        }
        Err(e) => tracing::warn!("metrics: cannot read the store's figures: {e}"),
    }

    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        return ApiError::Internal(anyhow::anyhow!("encoding metrics: {e}")).into_response();
    }
    ([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

/// Traces run, pairs traced, route events by kind (issue 13's figures).
async fn paths(registry: &mut Registry, app: &App) {
    let counts = match with_store_timeout(graph_store::paths::counts(&app.pool)).await {
        Ok(c) => c,
        Err(e) => return tracing::warn!("metrics: cannot read the trace figures: {e}"),
    };
    let runs = Counter::<u64>::default();
    runs.inc_by(count(counts.runs));
    registry.register("trace_runs", "Path traces recorded (one per host pair per cycle)", runs);
    let pairs = Gauge::<i64>::default();
    pairs.set(counts.pairs);
    registry.register("trace_pairs", "Host pairs and external targets traced", pairs);
    let events = Family::<KindLabel, Counter>::default();
    for kind in ["changed", "flap-start", "flap-end", "loss-started", "loss-moved", "loss-cleared"] {
        let _ = events.get_or_create(&KindLabel { kind: kind.into() });
    }
    for (kind, n) in counts.events {
        events.get_or_create(&KindLabel { kind }).inc_by(count(n));
    }
    registry.register("route_events", "Route changes, flapping and loss onset found in the traces, by kind", events);
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
