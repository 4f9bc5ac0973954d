-- Fills an empty, migrated edgewatch database with a generated service-dependency graph
-- for the topology benchmark (bench/run.sh, section "topology"):
--
--   psql -X -q -v ON_ERROR_STOP=1 -v seed=1 -v nodes=100000 -v edges=1000000 -f bench/topology_fill.sql URL
--
-- Set-based (generate_series, INSERT ... SELECT), one transaction, deterministic: every
-- choice is a hash of (seed, row number), never random(), so the same seed gives the same
-- graph whatever plan PostgreSQL picks.
--
-- The graph: 6 data centers, nodes/5 hosts (5 containers each, hosts in contiguous
-- ranges per DC), nodes in six layers, each layer consuming services of the next one or
-- two layers down
--
--   nginx (12%) -> api (18%) -> backend (25%) -> mq/cache (20%) -> db (15%) -> storage (10%)
--
-- (and, now and then, a service of its own layer: longer chains, and cycles). Every
-- non-nginx node provides one service of its layer. A layer with n nodes has n/8
-- services: the first tenth of them have a single provider (so `blast` and `spof` have
-- something to find), the rest about 9 providers each, spread over hosts and DCs. A
-- consumer uses 3-6 services (30% of the storage nodes: one, of their peers); for each it
-- has DNS edges to a tier of up to 3 providers, picked starting where its own DC falls in
-- the service's provider list (closest first, as the PowerDNS backend answers). 5% of nodes have a second address, which a third of
-- the edges to them use. Of the candidate edges, `edges` (in hash order) are inserted
-- live and up to 1% more retired. Every live edge gets a health row: the edges to 0.3% of
-- the providers are down (a dead container), and another 0.7% of edges are down or
-- degraded at random. Addresses are in 127.16.0.0/12 and 127.48.0.0/12: loopback, should
-- anything ever probe them.

\set ON_ERROR_STOP on
\if :{?seed} \else \set seed 1 \endif
\if :{?nodes} \else \set nodes 100000 \endif
\if :{?edges} \else \set edges 1000000 \endif

SET work_mem = '256MB';
SET maintenance_work_mem = '512MB';
SET synchronous_commit = off;
SET jit = off;

BEGIN;

CREATE FUNCTION pg_temp.fail(msg text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', msg;
END $$;

SELECT pg_temp.fail('topology_fill.sql wants an empty database: nodes already has rows')
WHERE EXISTS (SELECT 1 FROM nodes) \g /dev/null

-- Layers: index, share of the nodes (percent, cumulative upper bound), role, node and
-- service name prefixes, service port.
CREATE TEMP TABLE layer (l int PRIMARY KEY, upto int, role text, prefix text, svc text, port int) ON COMMIT DROP;
INSERT INTO layer VALUES
    (0, 12, 'nginx', 'fe', NULL, NULL),
    (1, 30, 'api', 'api', 'api', 8080),
    (2, 55, 'backend', 'be', 'svc', 8000),
    (3, 75, 'cache', 'mq', 'mq', 6379),
    (4, 90, 'db', 'db', 'db', 5432),
    (5, 100, 'storage', 'st', 'blob', 9000);

CREATE TEMP TABLE dc (d int PRIMARY KEY, name text) ON COMMIT DROP;
INSERT INTO dc VALUES (0, 'ams1'), (1, 'fra1'), (2, 'lon1'), (3, 'iad1'), (4, 'sjc1'), (5, 'sin1');

-- Hosts: host i / 5, in DC (host * 6 / hosts).
INSERT INTO hosts (name, dc)
SELECT 'host' || h, dc.name
FROM generate_series(0, :nodes / 5 - 1) AS h
JOIN dc ON dc.d = h * 6 / (:nodes / 5);

-- The generated nodes: index, layer, DC index, whether it has a second address.
CREATE TEMP TABLE gn ON COMMIT DROP AS
SELECT i, l.l, (i / 5) * 6 / (:nodes / 5) AS d, 'host' || (i / 5) AS host,
       l.prefix || i || '.host' || (i / 5) AS name, l.role,
       (hashint8extended(i * 64 + 2, :seed) & 9223372036854775807) % 100 < 5 AS two_ips
FROM generate_series(0, :nodes - 1) AS i
JOIN layer l ON l.upto = (
    SELECT min(upto) FROM layer WHERE upto > (hashint8extended(i * 64 + 1, :seed) & 9223372036854775807) % 100);

INSERT INTO nodes (name, host, dc, role, first_seen, last_seen)
SELECT gn.name, gn.host, dc.name, gn.role, now() - interval '30 days', now()
FROM gn JOIN dc ON dc.d = gn.d ORDER BY gn.i;
ALTER TABLE gn ADD COLUMN id bigint;
UPDATE gn SET id = n.id FROM nodes n WHERE n.name = gn.name;
CREATE INDEX ON gn (i);
ANALYZE gn;

INSERT INTO addresses (ip, node_id, first_seen, last_seen)
SELECT '127.16.0.0'::inet + i, id, now() - interval '30 days', now() FROM gn
UNION ALL
SELECT '127.48.0.0'::inet + i, id, now() - interval '30 days', now() FROM gn WHERE two_ips;

-- Services: layer l has (its node count / 8) of them, at least 1.
CREATE TEMP TABLE gs ON COMMIT DROP AS
SELECT l.l, count(gn.*) AS n, greatest(count(gn.*) / 8, 1) AS s, greatest(count(gn.*) / 80, 1) AS single
FROM layer l JOIN gn ON gn.l = l.l WHERE l.l > 0 GROUP BY l.l;

INSERT INTO services (name, port)
SELECT layer.svc || k, layer.port FROM gs JOIN layer ON layer.l = gs.l, generate_series(0, gs.s - 1) AS k;

-- Which service each provider provides: the first `single` nodes of the layer (in index
-- order) one single-provider service each, the others a hashed one of the rest.
CREATE TEMP TABLE gp ON COMMIT DROP AS
WITH ranked AS (
    SELECT gn.*, row_number() OVER (PARTITION BY gn.l ORDER BY gn.i) - 1 AS q FROM gn WHERE gn.l > 0)
SELECT r.i, r.id, r.l, r.d, r.two_ips,
       CASE WHEN r.q < gs.single THEN r.q
            ELSE gs.single + (hashint8extended(r.i * 64 + 3, :seed) & 9223372036854775807) % (gs.s - gs.single)
       END AS k
FROM ranked r JOIN gs ON gs.l = r.l;

INSERT INTO service_providers (service, node_id, first_seen)
SELECT layer.svc || gp.k, gp.id, now() - interval '30 days' FROM gp JOIN layer ON layer.l = gp.l;

-- Each service's providers ranked by node index (so by host, so by DC), with their count.
CREATE TEMP TABLE gr ON COMMIT DROP AS
SELECT l, k, i, id, two_ips, row_number() OVER w - 1 AS rank, count(*) OVER (PARTITION BY l, k) AS nprov
FROM gp WINDOW w AS (PARTITION BY l, k ORDER BY i);
CREATE INDEX ON gr (l, k, rank);
ANALYZE gr;

-- Candidate edges: consumer c uses 3-6 services, each of layer l+1, or for a quarter of
-- the uses (where there is one) l+2, or for one in twenty its own layer l (a backend
-- calling another backend: longer chains, and cycles); 30% of the storage nodes use one
-- other storage service (replication). For each use, up to 3 providers from its DC's
-- place in the provider list on (a node may be among the providers of a service of its
-- own layer: that edge is a self-edge, which the topology ignores). In stages, each
-- analyzed, so that every join is a hash join.
CREATE TEMP TABLE gu ON COMMIT DROP AS
SELECT c, src_id, d, u, tl,
       (((hashint8extended(c * 64 + 20 + tl, :seed) & 9223372036854775807) % gs.s) + u * 7919) % gs.s AS k
FROM (
    SELECT gn.i AS c, gn.id AS src_id, gn.d, u,
           CASE WHEN gn.l = 5 THEN 5
                WHEN gn.l >= 1 AND r.r % 20 = 0 THEN gn.l
                WHEN gn.l + 2 <= 5 AND r.r % 4 = 1 THEN gn.l + 2
                ELSE gn.l + 1 END AS tl
    FROM gn,
    generate_series(0, CASE WHEN gn.l = 5 THEN 0
                            ELSE 2 + ((hashint8extended(gn.i * 64 + 4, :seed) & 9223372036854775807) % 4)::int
                       END) AS u,
    LATERAL (SELECT hashint8extended(gn.i * 64 + 10 + u, :seed) & 9223372036854775807 AS r) r
    WHERE gn.l < 5 OR (hashint8extended(gn.i * 64 + 5, :seed) & 9223372036854775807) % 10 < 3) uses
JOIN gs ON gs.l = uses.tl;
ANALYZE gu;

CREATE TEMP TABLE gk ON COMMIT DROP AS SELECT DISTINCT l, k, nprov FROM gr;
ANALYZE gk;

CREATE TEMP TABLE gt ON COMMIT DROP AS
SELECT gu.c, gu.src_id, gu.u, gu.tl, gu.k, t, (gk.nprov * gu.d / 6 + t) % gk.nprov AS rank
FROM gu JOIN gk ON gk.l = gu.tl AND gk.k = gu.k, generate_series(0, least(gk.nprov, 3) - 1) AS t;
ANALYZE gt;

CREATE TEMP TABLE cand ON COMMIT DROP AS
SELECT gt.src_id, gt.c, gt.u, gt.t, layer.svc || gt.k AS service,
       CASE WHEN p.two_ips AND (hashint8extended(gt.c * 64 + 40 + gt.u * 4 + gt.t, :seed)
                                & 9223372036854775807) % 3 = 0
            THEN '127.48.0.0'::inet + p.i ELSE '127.16.0.0'::inet + p.i END AS dst_ip,
       hashint8extended(gt.c * 64 + 30 + gt.u * 4 + gt.t, :seed) AS key
FROM gt
JOIN layer ON layer.l = gt.tl
JOIN gr p ON p.l = gt.tl AND p.k = gt.k AND p.rank = gt.rank;

SELECT pg_temp.fail(format('only %s candidate edges for %s live ones: change the generator', count(*), :edges))
FROM cand HAVING count(*) < :edges \g /dev/null

-- The first `edges` candidates in hash order live, up to 1% more retired.
INSERT INTO edges (src_id, dst_ip, services, sources, queries, first_seen, last_seen, dns_last_seen, retired_at)
SELECT src_id, dst_ip, ARRAY[service], '{dns}',
       1 + (key & 9223372036854775807) % 50000,
       now() - interval '30 days' + ((key & 255) * interval '1 hour'),
       now() - ((key >> 8) & 1023) * interval '1 second',
       now() - ((key >> 8) & 1023) * interval '1 second',
       CASE WHEN rn > :edges THEN now() - interval '3 days' END
FROM (SELECT cand.*, row_number() OVER (ORDER BY key, c, u, t) AS rn FROM cand) x
WHERE rn <= :edges + :edges / 100
ORDER BY src_id, dst_ip;

-- Health of every live edge: all edges to 0.3% of the providers down (a dead container),
-- and 0.4% more down, 0.3% degraded, at random; the rest up.
INSERT INTO edge_health (edge_id, state, since, last_result_at, loss_pct, rtt_avg_ms, fail_streak, ok_streak,
                         degraded_streak, recent_states, next_probe_at)
SELECT e.id, x.state,
       now() - (CASE WHEN x.state = 'up' THEN 86400 ELSE 60 END + (x.h >> 20) % 7200) * interval '1 second',
       now() - ((x.h >> 8) % 120) * interval '1 second',
       CASE x.state WHEN 'down' THEN 100 WHEN 'degraded' THEN 5 + (x.h >> 12) % 40 ELSE 0 END,
       CASE WHEN x.state = 'down' THEN NULL ELSE 0.2 + ((x.h >> 16) % 400) / 10.0 END,
       CASE WHEN x.state = 'down' THEN 3 ELSE 0 END,
       CASE WHEN x.state = 'up' THEN 50 ELSE 0 END,
       CASE WHEN x.state = 'degraded' THEN 3 ELSE 0 END,
       '', now() + ((x.h >> 24) % 120) * interval '1 second'
FROM edges e
JOIN addresses a ON a.ip = e.dst_ip
JOIN gn dst ON dst.id = a.node_id
CROSS JOIN LATERAL (
    SELECT hashint8extended(e.id * 64 + 50, :seed) & 9223372036854775807 AS h) hh
CROSS JOIN LATERAL (
    SELECT hh.h,
           CASE WHEN (hashint8extended(dst.i * 64 + 51, :seed) & 9223372036854775807) % 1000 < 3 THEN 'down'
                WHEN hh.h % 1000 < 4 THEN 'down'
                WHEN hh.h % 1000 < 7 THEN 'degraded'
                ELSE 'up' END AS state) x
WHERE e.retired_at IS NULL;

SELECT pg_temp.fail(format('made %s live edges, not %s', count(*), :edges))
FROM edges WHERE retired_at IS NULL HAVING count(*) <> :edges \g /dev/null

COMMIT;

-- Everything, the history tables the triggers filled included: so that no autovacuum
-- runs during the measurements.
VACUUM (ANALYZE);

-- What was made, as one JSON object (bench/run.sh keeps it for the report).
SELECT json_build_object(
    'nodes', (SELECT count(*) FROM nodes WHERE retired_at IS NULL),
    'hosts', (SELECT count(*) FROM hosts),
    'dcs', (SELECT count(DISTINCT dc) FROM hosts),
    'addresses', (SELECT count(*) FROM addresses),
    'services', (SELECT count(*) FROM services),
    'providers', (SELECT count(*) FROM service_providers),
    'single_provider_services',
        (SELECT count(*) FROM (SELECT 1 FROM service_providers GROUP BY service HAVING count(*) = 1) s),
    'live_edges', (SELECT count(*) FROM edges WHERE retired_at IS NULL),
    'retired_edges', (SELECT count(*) FROM edges WHERE retired_at IS NOT NULL),
    'down_edges', (SELECT count(*) FROM edge_health WHERE state = 'down'),
    'degraded_edges', (SELECT count(*) FROM edge_health WHERE state = 'degraded'));
