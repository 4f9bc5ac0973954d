-- Path history (issue 13): mtr-style traces between host pairs, the distinct paths they
-- took, their hourly per-hop rollups, route changes and loss onset, and the ip-to-ASN
-- table that names whose network a hop is in. SQL in graph_store::paths::store.

-- What is traced: from a source (a host of the graph, or a prober's vantage for the
-- configured external targets) to a destination (a host, or an external target's name).
-- Host pairs, not container pairs: the containers on one host share the path. Pairs from
-- the graph are kept by graph_store::paths::sync_pairs (a live edge between two hosts,
-- traced every `every_s` seconds: the interval across data centers, ten of them within
-- one); a pair whose edges are gone is retired, and comes back with them.
CREATE TABLE trace_pairs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    src            text NOT NULL,
    dst            text NOT NULL,
    dst_ip         inet NOT NULL,
    protocol       text NOT NULL DEFAULT 'icmp' CHECK (protocol IN ('icmp', 'udp', 'tcp')),
    port           integer CHECK (port BETWEEN 1 AND 65535),
    src_dc         text NOT NULL DEFAULT '',
    dst_dc         text NOT NULL DEFAULT '',
    external       boolean NOT NULL DEFAULT false,
    every_s        integer NOT NULL CHECK (every_s > 0),
    next_trace_at  timestamptz NOT NULL DEFAULT now(),
    -- The last time an edge turning down or degraded asked for a trace at once (at most
    -- once per `every_s`).
    urgent_at      timestamptz,
    lease_owner    text,
    lease_until    timestamptz,
    runs           bigint NOT NULL DEFAULT 0,
    last_run_at    timestamptz,
    -- graph_store::paths::{RouteTracker, LossTracker}, as their serde JSON.
    route_state    jsonb,
    loss_state     jsonb,
    first_seen     timestamptz NOT NULL DEFAULT now(),
    retired_at     timestamptz,
    UNIQUE (src, dst)
);
CREATE INDEX trace_pairs_due ON trace_pairs (next_trace_at) WHERE retired_at IS NULL;
CREATE INDEX trace_pairs_dst ON trace_pairs (dst);

-- Each distinct path once: per TTL from 1 the addresses that answered, sorted, as text
-- joined by ',' ('' for a silent hop), and whether the last hop is the destination.
-- `digest` is md5 of that text (graph_store::paths::packed::digest).
CREATE TABLE trace_paths (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest      bytea NOT NULL UNIQUE,
    hops        text[] NOT NULL,
    reached     boolean NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT now()
);

-- One row per trace run, partitioned by day like probe_results (created ahead by
-- edgewatch_ensure_trace_partitions, dropped after `[trace] keep_days`). The per-hop
-- figures (sent, received, RTT best/avg/worst/stddev/jitter) are packed in `figures`
-- (graph_store::paths::packed: a version byte, then per hop two count bytes and varint
-- microseconds), aligned with the path's hops.
CREATE TABLE trace_runs (
    at       timestamptz NOT NULL,
    pair_id  integer NOT NULL,
    path_id  integer NOT NULL,
    figures  bytea NOT NULL
) PARTITION BY RANGE (at);
ALTER TABLE trace_runs ADD PRIMARY KEY (pair_id, at);  -- a resent run is stored once

CREATE FUNCTION edgewatch_ensure_trace_partitions(first_day date, days integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    d date;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('edgewatch:trace_runs partitions'));
    FOR i IN 0 .. days - 1 LOOP
        d := first_day + i;
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS %I PARTITION OF trace_runs FOR VALUES FROM (%L) TO (%L)',
            'trace_runs_' || to_char(d, 'YYYYMMDD'), d::timestamptz, (d + 1)::timestamptz);
    END LOOP;
END $$;
SELECT edgewatch_ensure_trace_partitions(current_date - 1, 4);

-- Per pair, per TTL, per UTC hour: written with the runs, kept like probe_hourly.
CREATE TABLE trace_hourly (
    hour        timestamptz NOT NULL,
    pair_id     integer NOT NULL,
    ttl         smallint NOT NULL,
    runs        integer NOT NULL DEFAULT 0,
    sent        integer NOT NULL DEFAULT 0,
    received    integer NOT NULL DEFAULT 0,
    rtt_min_ms  real,
    rtt_max_ms  real,
    rtt_sum_ms  double precision NOT NULL DEFAULT 0,
    rtt_n       integer NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, pair_id, ttl)
);
CREATE INDEX trace_hourly_pair ON trace_hourly (pair_id, hour);

-- What the route and loss trackers found: a route change (old and new path as the
-- tracker held them, the first diverging TTL with its old and new addresses, RTT and
-- loss to the destination before and after), flapping starting and ending, loss onset
-- starting, moving and clearing (ttl: the onset; old_ttl: the one it left).
CREATE TABLE route_events (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pair_id          bigint NOT NULL REFERENCES trace_pairs (id),
    at               timestamptz NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('changed', 'flap-start', 'flap-end',
                                                   'loss-started', 'loss-moved', 'loss-cleared')),
    ttl              smallint,
    old_ttl          smallint,
    old_addrs        text NOT NULL DEFAULT '',
    new_addrs        text NOT NULL DEFAULT '',
    old_hops         text[],
    new_hops         text[],
    old_reached      boolean,
    new_reached      boolean,
    rtt_before_ms    real,
    rtt_after_ms     real,
    loss_before_pct  real,
    loss_after_pct   real,
    recorded_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX route_events_at ON route_events (at);
CREATE INDEX route_events_pair ON route_events (pair_id, at);

-- The imported ip-to-ASN table (`edgewatch asn import FILE`, iptoasn's TSV form): one row
-- per range, replaced whole by each import.
CREATE TABLE asn_ranges (
    first    inet PRIMARY KEY,
    last     inet NOT NULL,
    asn      bigint NOT NULL CHECK (asn BETWEEN 0 AND 4294967295),
    country  text NOT NULL DEFAULT '',
    name     text NOT NULL DEFAULT '',
    CHECK (family(first) = family(last) AND first <= last)
);
CREATE TABLE asn_imports (
    imported_at  timestamptz NOT NULL DEFAULT now(),
    file         text NOT NULL,
    ranges       bigint NOT NULL
);
