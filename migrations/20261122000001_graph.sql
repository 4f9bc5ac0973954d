-- The dependency graph: hosts, nodes (containers), their addresses, services and their
-- providers, and edges (consumer node -> destination IP).
--
-- Nothing here is ever deleted by an import: what disappears from every source is
-- retired (retired_at set) and comes back (retired_at cleared) when it is seen again.
-- first_seen: when edgewatch first learned of the row. last_seen: the last time a source
-- still listed it (an inventory import that contained it, a query that used it).

CREATE TABLE hosts (
    name        text PRIMARY KEY,
    dc          text NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);

CREATE TABLE nodes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    host        text NOT NULL REFERENCES hosts (name),
    dc          text NOT NULL,
    role        text,
    serving     boolean NOT NULL DEFAULT true,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);
CREATE INDEX nodes_host ON nodes (host);
CREATE INDEX nodes_live ON nodes (id) WHERE retired_at IS NULL;

-- The current (or last) owner of each address. An address moves when the inventory
-- gives it to another container.
CREATE TABLE addresses (
    ip          inet PRIMARY KEY,
    node_id     bigint NOT NULL REFERENCES nodes (id),
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);
CREATE INDEX addresses_node ON addresses (node_id);

CREATE TABLE services (
    name        text PRIMARY KEY,
    port        integer CHECK (port BETWEEN 1 AND 65535),
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE service_providers (
    service     text NOT NULL REFERENCES services (name),
    node_id     bigint NOT NULL REFERENCES nodes (id),
    first_seen  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, node_id)
);
CREATE INDEX service_providers_node ON service_providers (node_id);

-- An edge: a consumer node talks to a destination address. The destination node is not
-- stored: it is whoever owns dst_ip now (see addresses), so it never goes stale.
CREATE TABLE edges (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    src_id         bigint NOT NULL REFERENCES nodes (id),
    dst_ip         inet NOT NULL,
    services       text[] NOT NULL DEFAULT '{}',
    sources        text[] NOT NULL DEFAULT '{}'
                   CHECK (sources <@ ARRAY['dns', 'cmdb', 'config']::text[]),
    queries        bigint NOT NULL DEFAULT 0,
    first_seen     timestamptz NOT NULL DEFAULT now(),
    last_seen      timestamptz NOT NULL DEFAULT now(),
    dns_last_seen  timestamptz,
    retired_at     timestamptz,
    UNIQUE (src_id, dst_ip)
) WITH (fillfactor = 70);  -- room for in-page (HOT) updates: every DNS batch updates many edges
CREATE INDEX edges_dst_ip ON edges (dst_ip);
CREATE INDEX edges_live ON edges (src_id) WHERE retired_at IS NULL;

-- Health of each edge, as the probers see it. One row per probed edge.
CREATE TABLE edge_health (
    edge_id          bigint PRIMARY KEY REFERENCES edges (id),
    state            text NOT NULL DEFAULT 'unknown'
                     CHECK (state IN ('up', 'down', 'degraded', 'stale', 'unknown')),
    since            timestamptz NOT NULL DEFAULT now(),
    last_result_at   timestamptz,
    loss_pct         real,
    rtt_avg_ms       real,
    fail_streak      integer NOT NULL DEFAULT 0,
    ok_streak        integer NOT NULL DEFAULT 0,
    degraded_streak  integer NOT NULL DEFAULT 0,
    recent_states    text NOT NULL DEFAULT '',
    flapping         boolean NOT NULL DEFAULT false,
    flap_pct         real NOT NULL DEFAULT 0,
    next_probe_at    timestamptz NOT NULL DEFAULT now(),
    lease_owner      text,
    lease_until      timestamptz
);
CREATE INDEX edge_health_due ON edge_health (next_probe_at);

-- One row per edge per probe cycle, partitioned by day (partitions are created ahead by
-- edgewatch_ensure_probe_partitions and dropped when past retention).
CREATE TABLE probe_results (
    edge_id      bigint NOT NULL,
    at           timestamptz NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('icmp', 'tcp')),
    prober       text NOT NULL,
    sent         integer NOT NULL,
    received     integer NOT NULL,
    rtt_min_ms   real,
    rtt_avg_ms   real,
    rtt_max_ms   real,
    rtt_sd_ms    real,
    verdict      text NOT NULL CHECK (verdict IN ('ok', 'degraded', 'failed'))
) PARTITION BY RANGE (at);
CREATE INDEX probe_results_edge_at ON probe_results (edge_id, at);

CREATE FUNCTION edgewatch_ensure_probe_partitions(first_day date, days integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    d date;
BEGIN
    -- Several workers may get here at once; CREATE ... IF NOT EXISTS alone races.
    PERFORM pg_advisory_xact_lock(hashtext('edgewatch:probe_results partitions'));
    FOR i IN 0 .. days - 1 LOOP
        d := first_day + i;
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS %I PARTITION OF probe_results FOR VALUES FROM (%L) TO (%L)',
            'probe_results_' || to_char(d, 'YYYYMMDD'), d::timestamptz, (d + 1)::timestamptz);
    END LOOP;
END $$;

-- Every state change of an edge.
CREATE TABLE edge_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    edge_id     bigint NOT NULL REFERENCES edges (id),
    at          timestamptz NOT NULL DEFAULT now(),
    from_state  text NOT NULL,
    to_state    text NOT NULL,
    reason      text NOT NULL DEFAULT ''
);
CREATE INDEX edge_events_edge_at ON edge_events (edge_id, at);
CREATE INDEX edge_events_at ON edge_events (at);

-- Where each log file was read up to: committed in the same transaction as the edges
-- and counters derived from the bytes before byte_offset. A file is known by its device
-- and inode plus a fingerprint of its first line, not by its path, so a renamed
-- (rotated) file is continued, not read again.
CREATE TABLE ingest_checkpoints (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device       bigint NOT NULL,
    inode        bigint NOT NULL,
    fingerprint  text NOT NULL,
    path         text NOT NULL,
    byte_offset  bigint NOT NULL CHECK (byte_offset >= 0),
    lines        bigint NOT NULL DEFAULT 0,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device, inode, fingerprint)
);

-- DNS discovery's counters: lines and records that gave no edge, by reason.
CREATE TABLE dns_skips (
    reason      text PRIMARY KEY,
    count       bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- What the CMDB lacks, seen in DNS queries: unknown client addresses, unknown consumer
-- names, unknown services; with counts, so an operator can fix the CMDB.
CREATE TABLE dns_unknowns (
    kind        text NOT NULL CHECK (kind IN ('client', 'consumer', 'service', 'no-provider')),
    value       text NOT NULL,
    count       bigint NOT NULL DEFAULT 0,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, value)
);
