-- Hourly rollups, the incident log and stored reports, for the nightly dependency report.
--
-- Raw probe history (probe_results) keeps its retention (14 days by default); rollups
-- are kept much longer (400 days by default) so that any past day's report can be made
-- again from them.

-- Probe results per edge per hour (UTC hour start): filled in the same transaction as
-- the results themselves (graph_store::probe::write_cycle), so they are always complete;
-- down_seconds from the state-change events (graph_store::rollup).
CREATE TABLE probe_hourly (
    hour          timestamptz NOT NULL,
    edge_id       bigint NOT NULL,
    cycles        integer NOT NULL DEFAULT 0,
    failed        integer NOT NULL DEFAULT 0,
    degraded      integer NOT NULL DEFAULT 0,
    sent          bigint NOT NULL DEFAULT 0,
    received      bigint NOT NULL DEFAULT 0,
    rtt_min_ms    real,
    rtt_max_ms    real,
    rtt_sum_ms    double precision NOT NULL DEFAULT 0,
    rtt_n         integer NOT NULL DEFAULT 0,
    down_seconds  integer NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, edge_id)
);

-- DNS queries per edge per hour (UTC hour start), filled by the ingest with the edges.
CREATE TABLE query_hourly (
    hour     timestamptz NOT NULL,
    edge_id  bigint NOT NULL,
    queries  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, edge_id)
);

-- Every incident the diagnosis has seen: from its `since` to the last time it was seen
-- open. Kept by graph_store::diagnosis::refresh.
CREATE TABLE incident_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL,
    culprit     text NOT NULL,
    since       timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    edges       integer NOT NULL,
    evidence    text NOT NULL
);
CREATE UNIQUE INDEX incident_log_key ON incident_log (kind, md5(culprit), since);
CREATE INDEX incident_log_time ON incident_log (since, last_seen);

-- Reports made: one per day, time zone and format; made again, replaced.
CREATE TABLE reports (
    day           date NOT NULL,
    tz            text NOT NULL,
    format        text NOT NULL CHECK (format IN ('json', 'md', 'html')),
    generated_at  timestamptz NOT NULL DEFAULT now(),
    body          text NOT NULL,
    PRIMARY KEY (day, tz, format)
);

-- The broken edges (`graph broken`, /api/v1/broken) without a pass over every health row.
CREATE INDEX edge_health_broken ON edge_health (since) WHERE state IN ('down', 'degraded');

-- A node's addresses at a time (graph --at, the report's "nodes then"): by node, not by ip.
CREATE INDEX address_history_node ON address_history (node_id, valid_from);
