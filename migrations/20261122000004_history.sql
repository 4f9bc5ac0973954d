-- The graph's past, for `graph … --at TIME` and `graph diff`.
--
-- Each *_history table holds the periods during which a row was live with given values:
-- [valid_from, valid_to), valid_to NULL while it still is. Triggers on the live tables
-- keep them, so every path that retires, revives, moves or re-labels a row is recorded,
-- whoever wrote it. The graph at time T is the rows whose period contains T; an edge's
-- state at T is the last edge_events row at or before T.
--
-- Only what the graph questions need is kept: a node's host/dc/role/serving, an
-- address's owner, an edge's services and sources, a service's providers. Query counts
-- and last_seen change with every DNS batch and are not history.

CREATE TABLE node_history (
    node_id     bigint NOT NULL REFERENCES nodes (id),
    host        text NOT NULL,
    dc          text NOT NULL,
    role        text,
    serving     boolean NOT NULL,
    valid_from  timestamptz NOT NULL,
    valid_to    timestamptz,
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE INDEX node_history_node ON node_history (node_id, valid_from);
CREATE INDEX node_history_from ON node_history (valid_from);

CREATE TABLE address_history (
    ip          inet NOT NULL,
    node_id     bigint NOT NULL REFERENCES nodes (id),
    valid_from  timestamptz NOT NULL,
    valid_to    timestamptz,
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE INDEX address_history_ip ON address_history (ip, valid_from);

CREATE TABLE edge_history (
    edge_id     bigint NOT NULL REFERENCES edges (id),
    services    text[] NOT NULL,
    sources     text[] NOT NULL,
    valid_from  timestamptz NOT NULL,
    valid_to    timestamptz,
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE INDEX edge_history_edge ON edge_history (edge_id, valid_from);
CREATE INDEX edge_history_from ON edge_history (valid_from);

CREATE TABLE provider_history (
    service     text NOT NULL,
    node_id     bigint NOT NULL REFERENCES nodes (id),
    valid_from  timestamptz NOT NULL,
    valid_to    timestamptz,
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE INDEX provider_history_node ON provider_history (node_id, valid_from);

-- The rows already there: one period each, from first_seen to retired_at (a row retired
-- and revived before this migration shows as live since first_seen).
INSERT INTO node_history (node_id, host, dc, role, serving, valid_from, valid_to)
SELECT id, host, dc, role, serving, first_seen, retired_at FROM nodes;
INSERT INTO address_history (ip, node_id, valid_from, valid_to)
SELECT ip, node_id, first_seen, retired_at FROM addresses;
INSERT INTO edge_history (edge_id, services, sources, valid_from, valid_to)
SELECT id, services, sources, first_seen, retired_at FROM edges;
INSERT INTO provider_history (service, node_id, valid_from, valid_to)
SELECT service, node_id, first_seen, NULL FROM service_providers;

CREATE FUNCTION edgewatch_node_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        UPDATE node_history SET valid_to = now() WHERE node_id = OLD.id AND valid_to IS NULL;
    END IF;
    IF NEW.retired_at IS NULL THEN
        INSERT INTO node_history (node_id, host, dc, role, serving, valid_from)
        VALUES (NEW.id, NEW.host, NEW.dc, NEW.role, NEW.serving, now());
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER nodes_history_insert AFTER INSERT ON nodes
    FOR EACH ROW EXECUTE FUNCTION edgewatch_node_history();
CREATE TRIGGER nodes_history_update AFTER UPDATE ON nodes
    FOR EACH ROW
    WHEN (OLD.retired_at IS DISTINCT FROM NEW.retired_at OR OLD.host IS DISTINCT FROM NEW.host
          OR OLD.dc IS DISTINCT FROM NEW.dc OR OLD.role IS DISTINCT FROM NEW.role
          OR OLD.serving IS DISTINCT FROM NEW.serving)
    EXECUTE FUNCTION edgewatch_node_history();

CREATE FUNCTION edgewatch_address_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        UPDATE address_history SET valid_to = now() WHERE ip = OLD.ip AND valid_to IS NULL;
    END IF;
    IF NEW.retired_at IS NULL THEN
        INSERT INTO address_history (ip, node_id, valid_from) VALUES (NEW.ip, NEW.node_id, now());
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER addresses_history_insert AFTER INSERT ON addresses
    FOR EACH ROW EXECUTE FUNCTION edgewatch_address_history();
CREATE TRIGGER addresses_history_update AFTER UPDATE ON addresses
    FOR EACH ROW
    WHEN (OLD.retired_at IS DISTINCT FROM NEW.retired_at OR OLD.node_id IS DISTINCT FROM NEW.node_id)
    EXECUTE FUNCTION edgewatch_address_history();

CREATE FUNCTION edgewatch_edge_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        UPDATE edge_history SET valid_to = now() WHERE edge_id = OLD.id AND valid_to IS NULL;
    END IF;
    IF NEW.retired_at IS NULL THEN
        INSERT INTO edge_history (edge_id, services, sources, valid_from)
        VALUES (NEW.id, NEW.services, NEW.sources, now());
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER edges_history_insert AFTER INSERT ON edges
    FOR EACH ROW EXECUTE FUNCTION edgewatch_edge_history();
CREATE TRIGGER edges_history_update AFTER UPDATE ON edges
    FOR EACH ROW
    WHEN (OLD.retired_at IS DISTINCT FROM NEW.retired_at OR OLD.services IS DISTINCT FROM NEW.services
          OR OLD.sources IS DISTINCT FROM NEW.sources)
    EXECUTE FUNCTION edgewatch_edge_history();

CREATE FUNCTION edgewatch_provider_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE provider_history SET valid_to = now()
        WHERE service = OLD.service AND node_id = OLD.node_id AND valid_to IS NULL;
    ELSE
        INSERT INTO provider_history (service, node_id, valid_from) VALUES (NEW.service, NEW.node_id, now());
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER service_providers_history AFTER INSERT OR DELETE ON service_providers
    FOR EACH ROW EXECUTE FUNCTION edgewatch_provider_history();

-- Probe results by prober kind and verdict since the store was made, for /metrics: kept
-- by the one function that records results, so counting never scans probe_results.
CREATE TABLE probe_counters (
    kind     text NOT NULL,
    verdict  text NOT NULL,
    count    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, verdict)
);
INSERT INTO probe_counters (kind, verdict, count)
SELECT kind, verdict, count(*) FROM probe_results GROUP BY kind, verdict;
