-- Fills an empty, migrated edgewatch database with one day of an operator-sized
-- deployment for the nightly report benchmark (bench/report_bench.sh):
--
--   psql -X -q -A -t -v ON_ERROR_STOP=1 -v seed=1 -v day=2026-11-20 -f bench/report_fill.sql URL
--
-- Set-based (generate_series, INSERT ... SELECT), deterministic: every choice is a hash of
-- (seed, row number), never random(), so the same seed and day give the same data
-- whatever plan PostgreSQL picks. Times are relative to the day D (default: two days ago,
-- UTC), never to now(), except where the live tables themselves say "now" (last_seen).
--
-- The graph (live all of D unless said otherwise): `nodes` containers (default 10,000),
-- five per host (so 2,000 hosts), hosts in contiguous ranges over 6 data centers, in six
-- layers
--
--   nginx (12%) -> api (18%) -> backend (25%) -> mq/cache (20%) -> db (15%) -> storage (10%)
--
-- Every non-nginx node provides one service of its layer, a layer of n nodes having
-- n/`replicas` services (default 20 replicas each: about 440 services), the replicas
-- spread over the DCs. Replicas of a service share its dependencies (as deployments do):
-- each service (and each group of `replicas` nginx nodes) uses 2-5 services of the next
-- one or two layers down (one use in twenty of its own layer; 30% of the storage services
-- replicate to one other), and each consumer has DNS edges to 2 providers of each, those
-- in its own DC first (a use in ten goes to the next DC). 5% of the nodes have a second
-- address, which a third of the edges to them use. Of the candidate edges, the first
-- `edges` (default 50,000) in hash order are live from before D.
--
-- History: the *_history rows the triggers make on insert are moved back to each row's
-- first_seen (weeks before D). Within D, `retire` nodes (default 200) are retired at
-- hashed times with their addresses, their providers and every edge from or to them, and
-- `new_edges` edges (default 300) appear.
--
-- Probing: every edge probed every `interval` seconds (default 120) while it is live
-- within D, at a fixed offset of its own: `probe_results` has about 720 x 50,000 = 36 M
-- rows (kind tcp, or icmp for a fifth of the edges; 3 and 5 packets). Failures, each one
-- stretch of cycles (some started before D, some still going at its end): every edge to
-- 0.3% of the provider nodes (a dead container), 0.6% more edges failing and 0.3%
-- degraded on their own; and a lone degraded cycle now and then, which changes no state.
-- `edge_events` has each edge's first `unknown -> up` (before D; on the day for new
-- edges) and the transitions the probers' state machine (k_down = m_up = k_degraded = 2)
-- makes of those stretches; `incident_log` a node-unreachable incident per dead container
-- and an edge incident per lone broken edge; `edge_health` every live edge's last state.
--
-- Rollups: `probe_hourly` is made from the raw rows by the GROUP BY that matches
-- graph_store::rollup::add_results (cycles, failed, degraded, sent, received, RTT
-- min/max/sum/count; down_seconds left 0, as add_results leaves it: the report's
-- rollup::fill_down computes it from edge_events); `query_hourly` has DNS queries for
-- about 70% of the edge-hours, with a day curve.
--
-- The day's `probe_results` partition is made UNLOGGED (unless -v unlogged=0): no WAL for
-- 3 GB of rows the report never reads (it reads the rollups); everything the report reads
-- is in ordinary, logged tables, as in production.
--
-- Prints one JSON object: what was made, and the seconds each stage took.

\set ON_ERROR_STOP on
\if :{?seed} \else \set seed 1 \endif
\if :{?nodes} \else \set nodes 10000 \endif
\if :{?edges} \else \set edges 50000 \endif
\if :{?replicas} \else \set replicas 20 \endif
\if :{?retire} \else \set retire 200 \endif
\if :{?new_edges} \else \set new_edges 300 \endif
\if :{?interval} \else \set interval 120 \endif
\if :{?unlogged} \else \set unlogged 1 \endif
-- The positive 63 bits of a hash.
\set M 9223372036854775807

SET TimeZone = 'UTC';
SET work_mem = '512MB';
SET maintenance_work_mem = '1GB';
SET synchronous_commit = off;
SET jit = off;

\if :{?day} \else
SELECT (current_date - 2)::text AS day \gset
\endif
SELECT :'day'::date::timestamptz AS d0, (:'day'::date + 1)::timestamptz AS d1,
       'probe_results_' || to_char(:'day'::date, 'YYYYMMDD') AS part,
       86400 / :interval AS slots \gset

CREATE TEMP TABLE fill_clock (stage text, at timestamptz);
INSERT INTO fill_clock VALUES ('start', clock_timestamp());

CREATE FUNCTION pg_temp.fail(msg text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', msg;
END $$;

SELECT pg_temp.fail('report_fill.sql wants an empty database: nodes already has rows')
WHERE EXISTS (SELECT 1 FROM nodes) \g /dev/null
SELECT pg_temp.fail(format('day %s is not in the past', :'day'))
WHERE :'d1'::timestamptz > now() \g /dev/null

BEGIN;

-- ---------------------------------------------------------------------------------------
-- The graph.

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

INSERT INTO hosts (name, dc, first_seen, last_seen)
SELECT 'host' || h, dc.name, :'d0'::timestamptz - interval '60 days', now()
FROM generate_series(0, :nodes / 5 - 1) AS h
JOIN dc ON dc.d = h * 6 / (:nodes / 5);

-- The generated nodes: index, layer, DC index, rank q within the layer, first_seen.
CREATE TEMP TABLE gn ON COMMIT DROP AS
SELECT x.*, row_number() OVER (PARTITION BY x.l ORDER BY x.i) - 1 AS q
FROM (
    SELECT i, l.l, (i / 5) * 6 / (:nodes / 5) AS d, 'host' || (i / 5) AS host,
           l.prefix || i || '.host' || (i / 5) AS name, l.role,
           (hashint8extended(i * 64 + 2, :seed) & :M) % 100 < 5 AS two_ips,
           :'d0'::timestamptz - interval '30 days'
               + ((hashint8extended(i * 64 + 3, :seed) & :M) % 480) * interval '1 hour' AS first_seen
    FROM generate_series(0, :nodes - 1) AS i
    JOIN layer l ON l.upto = (
        SELECT min(upto) FROM layer WHERE upto > (hashint8extended(i * 64 + 1, :seed) & :M) % 100)) x;

-- Units of deployment: layer l has s = n / replicas of them (services; nginx groups), and
-- node q of the layer belongs to unit q % s, so each unit's replicas are spread over the
-- hosts and DCs.
CREATE TEMP TABLE gs ON COMMIT DROP AS
SELECT l, count(*) AS n, greatest(count(*) / :replicas, 1) AS s FROM gn GROUP BY l;
ALTER TABLE gn ADD COLUMN k bigint, ADD COLUMN id bigint;
UPDATE gn SET k = gn.q % gs.s FROM gs WHERE gs.l = gn.l;

INSERT INTO nodes (name, host, dc, role, first_seen, last_seen)
SELECT gn.name, gn.host, dc.name, gn.role, gn.first_seen, now()
FROM gn JOIN dc ON dc.d = gn.d ORDER BY gn.i;
UPDATE gn SET id = n.id FROM nodes n WHERE n.name = gn.name;
CREATE INDEX ON gn (i);
CREATE INDEX ON gn (id);
ANALYZE gn;

INSERT INTO addresses (ip, node_id, first_seen, last_seen)
SELECT '127.16.0.0'::inet + i, id, first_seen, now() FROM gn
UNION ALL
SELECT '127.48.0.0'::inet + i, id, first_seen, now() FROM gn WHERE two_ips;

INSERT INTO services (name, port, first_seen, last_seen)
SELECT layer.svc || k, layer.port, :'d0'::timestamptz - interval '60 days', now()
FROM gs JOIN layer ON layer.l = gs.l, generate_series(0, gs.s - 1) AS k
WHERE gs.l > 0;

INSERT INTO service_providers (service, node_id, first_seen)
SELECT layer.svc || gn.k, gn.id, gn.first_seen FROM gn JOIN layer ON layer.l = gn.l WHERE gn.l > 0;

-- Each service's providers ranked by node index (so by host, so by DC), with their count.
CREATE TEMP TABLE gr ON COMMIT DROP AS
SELECT l, k, i, id, two_ips, row_number() OVER w - 1 AS rank, count(*) OVER (PARTITION BY l, k) AS nprov
FROM gn WHERE l > 0 WINDOW w AS (PARTITION BY l, k ORDER BY i);
CREATE INDEX ON gr (l, k, rank);
ANALYZE gr;

-- What each unit uses: 2-5 services of layer l+1, or for a quarter of the uses l+2, or
-- for one in twenty its own layer (never its own service); 30% of the storage services
-- one other storage service.
CREATE TEMP TABLE gd ON COMMIT DROP AS
SELECT DISTINCT ON (l, k, tl, tk) l, k, u, tl, tk
FROM (
    SELECT x.l, x.k, x.u, x.tl,
           (((hashint8extended((x.l * 100000 + x.k) * 64 + 20 + x.u, :seed) & :M) % ts.s) + x.u * 7919) % ts.s AS tk
    FROM (
        SELECT gs.l, k, u,
               CASE WHEN gs.l = 5 THEN 5
                    WHEN gs.l >= 1 AND r.r % 20 = 0 THEN gs.l
                    WHEN gs.l + 2 <= 5 AND r.r % 4 = 1 THEN gs.l + 2
                    ELSE gs.l + 1 END AS tl
        FROM gs, generate_series(0, gs.s - 1) AS k,
        generate_series(0, CASE WHEN gs.l = 5 THEN 0
                                ELSE 1 + ((hashint8extended((gs.l * 100000 + k) * 64 + 4, :seed) & :M) % 4)::int
                           END) AS u,
        LATERAL (SELECT hashint8extended((gs.l * 100000 + k) * 64 + 10 + u, :seed) & :M AS r) r
        WHERE gs.l < 5 OR (hashint8extended((gs.l * 100000 + k) * 64 + 5, :seed) & :M) % 10 < 3) x
    JOIN gs ts ON ts.l = x.tl) y
WHERE NOT (tl = l AND tk = k)
ORDER BY l, k, tl, tk, u;
ANALYZE gd;

-- Candidate edges: each consumer, for each service its unit uses, to 2 providers from
-- its DC's place in the provider list on (a use in ten from the next DC's place).
CREATE TEMP TABLE gt ON COMMIT DROP AS
SELECT c.i AS c, c.id AS src_id, gd.u, gd.tl, gd.tk, t,
       (p.nprov * ((c.d + CASE WHEN (hashint8extended(c.i * 64 + 20 + gd.u, :seed) & :M) % 10 = 0 THEN 1 ELSE 0 END) % 6)
        / 6 + t) % p.nprov AS rank
FROM gn c
JOIN gd ON gd.l = c.l AND gd.k = c.k
JOIN (SELECT DISTINCT l, k, nprov FROM gr) p ON p.l = gd.tl AND p.k = gd.tk,
generate_series(0, least(p.nprov, 2) - 1) AS t;
ANALYZE gt;

CREATE TEMP TABLE cand ON COMMIT DROP AS
SELECT DISTINCT ON (src_id, dst_ip) *
FROM (
    SELECT gt.src_id, gt.c, p.i AS dst_i, layer.svc || gt.tk AS service,
           CASE WHEN p.two_ips AND (hashint8extended(gt.c * 64 + 40 + gt.u * 4 + gt.t, :seed) & :M) % 3 = 0
                THEN '127.48.0.0'::inet + p.i ELSE '127.16.0.0'::inet + p.i END AS dst_ip,
           hashint8extended(gt.c * 64 + 30 + gt.u * 4 + gt.t, :seed) & :M AS key
    FROM gt
    JOIN layer ON layer.l = gt.tl
    JOIN gr p ON p.l = gt.tl AND p.k = gt.tk AND p.rank = gt.rank) x
ORDER BY src_id, dst_ip, key;

SELECT pg_temp.fail(format('only %s candidate edges for %s + %s: change the generator', count(*), :edges, :new_edges))
FROM cand HAVING count(*) < :edges + :new_edges * 2 \g /dev/null

-- The nodes retired within D (the first `retire` in hash order, nginx to db), and when.
CREATE TEMP TABLE gret ON COMMIT DROP AS
SELECT i, id, :'d0'::timestamptz + ((hashint8extended(i * 64 + 71, :seed) & :M) % 86400) * interval '1 second' AS at
FROM gn WHERE l < 5
ORDER BY hashint8extended(i * 64 + 70, :seed) & :M, i
LIMIT :retire;
CREATE INDEX ON gret (i);
ANALYZE gret;

-- The edges: the first `edges` candidates in hash order live from before D; then the
-- next `new_edges` that touch no retired node appear within D. Retired within D: those
-- from or to a retired node, when the first of their ends goes.
CREATE TEMP TABLE ge ON COMMIT DROP AS
WITH ranked AS (
    SELECT cand.*, row_number() OVER (ORDER BY key, c, dst_ip) AS rn FROM cand),
news AS (
    SELECT r.src_id, r.dst_ip FROM ranked r
    WHERE r.rn > :edges
      AND NOT EXISTS (SELECT 1 FROM gret WHERE gret.i IN (r.c, r.dst_i))
    ORDER BY r.rn LIMIT :new_edges)
SELECT r.*, n.src_id IS NOT NULL AS new,
       CASE WHEN n.src_id IS NOT NULL
            THEN :'d0'::timestamptz + (600 + r.key % 85000) * interval '1 second'
            ELSE :'d0'::timestamptz - interval '9 days' + (r.key & 127) * interval '1 hour' END AS first_seen,
       (SELECT min(gret.at) FROM gret WHERE gret.i IN (r.c, r.dst_i)) AS retired_at
FROM ranked r
LEFT JOIN news n ON n.src_id = r.src_id AND n.dst_ip = r.dst_ip
WHERE r.rn <= :edges OR n.src_id IS NOT NULL;

INSERT INTO edges (src_id, dst_ip, services, sources, queries, first_seen, last_seen, dns_last_seen)
SELECT src_id, dst_ip, ARRAY[service], '{dns}', 0, first_seen, now(), now()
FROM ge ORDER BY src_id, dst_ip;
ALTER TABLE ge ADD COLUMN id bigint;
UPDATE ge SET id = e.id FROM edges e WHERE e.src_id = ge.src_id AND e.dst_ip = ge.dst_ip;
CREATE INDEX ON ge (id);
ANALYZE ge;

-- History: the triggers opened each row's period at now(); it began at first_seen.
UPDATE node_history h SET valid_from = n.first_seen FROM nodes n WHERE n.id = h.node_id;
UPDATE address_history h SET valid_from = a.first_seen FROM addresses a WHERE a.ip = h.ip;
UPDATE provider_history h SET valid_from = p.first_seen
FROM service_providers p WHERE p.service = h.service AND p.node_id = h.node_id;
UPDATE edge_history h SET valid_from = e.first_seen FROM edges e WHERE e.id = h.edge_id;

-- Retirements within D: the triggers close the periods at now(); they closed at the
-- retirement time. (The CMDB import retires a node, its addresses and its edges, and
-- drops its provider rows, all in one go.)
UPDATE nodes n SET retired_at = r.at, last_seen = r.at FROM gret r WHERE r.id = n.id;
UPDATE addresses a SET retired_at = r.at, last_seen = r.at FROM gret r WHERE r.id = a.node_id;
DELETE FROM service_providers p USING gret r WHERE r.id = p.node_id;
UPDATE edges e SET retired_at = g.retired_at, last_seen = g.retired_at, dns_last_seen = g.retired_at
FROM ge g WHERE g.id = e.id AND g.retired_at IS NOT NULL;

UPDATE node_history h SET valid_to = r.at FROM gret r WHERE r.id = h.node_id AND h.valid_to IS NOT NULL;
UPDATE address_history h SET valid_to = r.at FROM gret r WHERE r.id = h.node_id AND h.valid_to IS NOT NULL;
UPDATE provider_history h SET valid_to = r.at FROM gret r WHERE r.id = h.node_id AND h.valid_to IS NOT NULL;
UPDATE edge_history h SET valid_to = g.retired_at FROM ge g WHERE g.id = h.edge_id AND h.valid_to IS NOT NULL;

INSERT INTO fill_clock VALUES ('graph', clock_timestamp());

-- ---------------------------------------------------------------------------------------
-- What the probers saw: per edge, its probe offset, kind, packets, base RTT (in its DC
-- 0.2-2 ms, across DCs 5-80 ms), its cycle slots within D, and its one stretch of
-- trouble if any (slots [ws, we), which may begin before D and end after it).
CREATE TEMP TABLE gp AS
SELECT g.id, g.c, g.dst_i, off, kind, sent, prober, rtt,
       greatest(ceil((extract(epoch FROM greatest(g.first_seen, :'d0'::timestamptz) - :'d0'::timestamptz) - off)
                     / :interval), 0)::int AS s0,
       least(ceil((extract(epoch FROM least(g.retired_at, :'d1'::timestamptz) - :'d0'::timestamptz) - off)
                  / :interval) - 1, :slots - 1)::int AS s1,
       CASE WHEN g.new OR g.retired_at IS NOT NULL THEN NULL
            WHEN dead THEN 'failed' WHEN h % 1000 < 6 THEN 'failed' WHEN h % 1000 < 9 THEN 'degraded' END AS wkind,
       CASE WHEN dead THEN (hd % 740) - 20 ELSE ((h >> 10) % 740) - 20 END AS ws,
       CASE WHEN dead THEN 5 + (hd >> 10) % 90
            WHEN h % 1000 < 6 THEN 2 + (h >> 20) % 120 ELSE 2 + (h >> 20) % 60 END AS wl,
       g.first_seen, g.retired_at, g.new
FROM ge g
JOIN gn dst ON dst.i = g.dst_i
JOIN gn src ON src.i = g.c
CROSS JOIN LATERAL (
    SELECT hashint8extended(g.id * 64 + 50, :seed) & :M AS h,
           hashint8extended(dst.i * 64 + 52, :seed) & :M AS hd,
           dst.l > 0 AND (hashint8extended(dst.i * 64 + 51, :seed) & :M) % 1000 < 3
               AND NOT EXISTS (SELECT 1 FROM gret WHERE gret.i = dst.i) AS dead,
           (hashint8extended(g.id * 64 + 53, :seed) & :M) % :interval AS off,
           CASE WHEN (hashint8extended(g.id * 64 + 54, :seed) & :M) % 5 = 0 THEN 'icmp' ELSE 'tcp' END AS kind,
           'probe1-w' || (g.id % 4) AS prober,
           CASE WHEN src.d = dst.d THEN 0.2 + ((hashint8extended(g.id * 64 + 55, :seed) & :M) % 180) / 100.0
                ELSE 5 + ((hashint8extended(g.id * 64 + 55, :seed) & :M) % 7500) / 100.0 END::float8 AS rtt) x
CROSS JOIN LATERAL (SELECT CASE WHEN x.kind = 'icmp' THEN 5 ELSE 3 END AS sent) y;
ALTER TABLE gp ADD COLUMN we int;
UPDATE gp SET ws = NULL, wl = NULL WHERE wkind IS NULL;
UPDATE gp SET we = ws + wl;
CREATE INDEX ON gp (id);
ANALYZE gp;

-- The state machine's events: the first `unknown -> up` at the second good cycle; a
-- stretch of failed (degraded) cycles makes the edge down (degraded) at its second
-- cycle and up again at the second good cycle after it. A cycle's time: D + slot *
-- interval + the edge's offset. Nothing after now.
CREATE TEMP TABLE gev ON COMMIT DROP AS
SELECT id AS edge_id, at, from_state, to_state, reason FROM (
    SELECT id, CASE WHEN new THEN :'d0'::timestamptz + ((s0 + 1) * :interval + off) * interval '1 second'
                    ELSE first_seen + (:interval + off) * interval '1 second' END AS at,
           'unknown' AS from_state, 'up' AS to_state, '2 good cycles in a row' AS reason
    FROM gp
    UNION ALL
    SELECT id, :'d0'::timestamptz + ((ws + 1) * :interval + off) * interval '1 second', 'up', CASE wkind WHEN 'failed' THEN 'down' ELSE 'degraded' END,
           CASE wkind WHEN 'failed' THEN '2 failed cycles in a row: loss 100%'
                ELSE format('2 degraded cycles in a row: loss %s%%', round(100.0 / sent)) END
    FROM gp WHERE wkind IS NOT NULL
    UNION ALL
    SELECT id, :'d0'::timestamptz + ((we + 1) * :interval + off) * interval '1 second', CASE wkind WHEN 'failed' THEN 'down' ELSE 'degraded' END, 'up',
           format('2 good cycles in a row: loss 0%%, rtt %s ms', round(rtt::numeric, 1))
    FROM gp WHERE wkind IS NOT NULL) x
WHERE at < now();

INSERT INTO edge_events (edge_id, at, from_state, to_state, reason)
SELECT edge_id, at, from_state, to_state, reason FROM gev ORDER BY at, edge_id;

-- The incidents the diagnosis logged: a node-unreachable one per dead container (from its
-- first edge down to its last one up), an edge one per other broken edge.
CREATE TEMP TABLE gspan ON COMMIT DROP AS
SELECT gp.id, gp.c, gp.dst_i, gp.wkind,
       min(gev.at) FILTER (WHERE gev.to_state <> 'up') AS since,
       COALESCE(min(gev.at) FILTER (WHERE gev.to_state = 'up' AND gev.from_state <> 'unknown'), now()) AS until
FROM gp JOIN gev ON gev.edge_id = gp.id
WHERE gp.wkind IS NOT NULL
GROUP BY gp.id, gp.c, gp.dst_i, gp.wkind;

INSERT INTO incident_log (kind, culprit, since, last_seen, edges, evidence)
SELECT 'node-unreachable', d.name, min(s.since), max(s.until) - interval '10 seconds', count(*),
       format('%s of %s consumers cannot reach %s; they reach %s of %s others',
              count(*), count(*), d.name, 4 * count(*), 4 * count(*))
FROM gspan s JOIN gn d ON d.i = s.dst_i
WHERE (hashint8extended(d.i * 64 + 51, :seed) & :M) % 1000 < 3 AND d.l > 0
GROUP BY d.name
UNION ALL
SELECT 'edge', src.name || ' -> ' || d.name, s.since, s.until - interval '10 seconds', 1,
       format('%s cannot reach %s (%s); nothing else in common', src.name, host(e.dst_ip), d.name)
FROM gspan s JOIN gn d ON d.i = s.dst_i JOIN gn src ON src.i = s.c JOIN edges e ON e.id = s.id
WHERE NOT ((hashint8extended(d.i * 64 + 51, :seed) & :M) % 1000 < 3 AND d.l > 0);

-- Health of every live edge: its last state.
INSERT INTO edge_health (edge_id, state, since, last_result_at, loss_pct, rtt_avg_ms, ok_streak, next_probe_at)
SELECT gp.id, l.to_state, l.at, now() - (gp.off % 60) * interval '1 second',
       CASE l.to_state WHEN 'down' THEN 100 WHEN 'degraded' THEN 100.0 / gp.sent ELSE 0 END,
       CASE WHEN l.to_state = 'down' THEN NULL ELSE gp.rtt END,
       CASE WHEN l.to_state = 'up' THEN 50 ELSE 0 END,
       now() + gp.off * interval '1 second'
FROM gp
JOIN (SELECT DISTINCT ON (edge_id) edge_id, to_state, at FROM gev ORDER BY edge_id, at DESC) l ON l.edge_id = gp.id
WHERE gp.retired_at IS NULL;

-- DNS queries per edge per hour it was live: about 70% of the hours, a rate of its own
-- times a day curve (night 0.4, afternoon 1.0).
INSERT INTO query_hourly (hour, edge_id, queries)
SELECT :'d0'::timestamptz + hr * interval '1 hour', gp.id,
       1 + ((1 + (hashint8extended(gp.id * 64 + 60, :seed) & :M) % 400)
            * (0.7 - 0.3 * cos(2 * pi() * (hr - 3) / 24))
            * (0.75 + ((hashint8extended(gp.id * 64 + hr, :seed) & :M) >> 8) % 512 / 1024.0))::bigint
FROM gp, generate_series(0, 23) AS hr
WHERE :'d0'::timestamptz + (hr + 1) * interval '1 hour' > greatest(gp.first_seen, :'d0'::timestamptz)
  AND :'d0'::timestamptz + hr * interval '1 hour' < COALESCE(gp.retired_at, :'d1'::timestamptz)
  AND (hashint8extended(gp.id * 64 + hr, :seed) & :M) % 10 < 7
ORDER BY 1, 2;

UPDATE edges e SET queries = q.n * 20 FROM (SELECT edge_id, sum(queries) AS n FROM query_hourly GROUP BY 1) q
WHERE q.edge_id = e.id;

-- What discovery could not place, for the hygiene section.
INSERT INTO dns_unknowns (kind, value, count, first_seen, last_seen)
SELECT k.kind,
       CASE k.kind WHEN 'client' THEN host('127.96.0.0'::inet + n)
                   WHEN 'consumer' THEN 'old' || n || '.host' || n
                   WHEN 'service' THEN 'legacy' || n || '.svc.example.com'
                   ELSE 'svc-gone' || n END,
       1 + (hashint8extended(k.o * 1000 + n, :seed) & :M) % 5000,
       :'d0'::timestamptz - interval '20 days', :'d0'::timestamptz + n * interval '20 minutes'
FROM (VALUES (0, 'client'), (1, 'consumer'), (2, 'service'), (3, 'no-provider')) AS k(o, kind),
generate_series(0, 39) AS n;

COMMIT;
INSERT INTO fill_clock VALUES ('events', clock_timestamp());

-- ---------------------------------------------------------------------------------------
-- Raw probe results, in (edge, time) order so the (edge_id, at) index grows at its end.
SELECT edgewatch_ensure_probe_partitions(:'day'::date, 1) \g /dev/null
\if :unlogged
ALTER TABLE :"part" SET UNLOGGED;
\endif

-- The verdict of each cycle: the edge's stretch of trouble, else ok, but for a lone
-- degraded cycle one even slot in a thousand (never two in a row, never near a stretch:
-- it changes no state). Failed: nothing back, no RTT. Degraded: one packet lost.
INSERT INTO probe_results (edge_id, at, kind, prober, sent, received, rtt_min_ms, rtt_avg_ms, rtt_max_ms,
                           rtt_sd_ms, verdict)
SELECT id, :'d0'::timestamptz + (s * :interval + off) * interval '1 second', kind, prober, sent,
       CASE v WHEN 'failed' THEN 0 WHEN 'degraded' THEN sent - 1 ELSE sent END,
       CASE WHEN v <> 'failed' THEN (a * (0.7::float8 + ((h >> 20) & 255)::float8 / 1275))::real END,
       CASE WHEN v <> 'failed' THEN a::real END,
       CASE WHEN v <> 'failed' THEN (a * (1.1::float8 + ((h >> 28) & 255)::float8 / 510))::real END,
       CASE WHEN v <> 'failed' THEN (a * (0.05::float8 + ((h >> 36) & 255)::float8 / 2550))::real END,
       v
FROM (
    SELECT gp.id, gp.off, gp.kind, gp.prober, gp.sent, s, r.h,
           CASE WHEN s >= gp.ws AND s < gp.we THEN gp.wkind
                WHEN s % 2 = 0 AND r.h % 1000 = 0 AND (gp.ws IS NULL OR s < gp.ws - 2 OR s > gp.we + 2)
                    THEN 'degraded'
                ELSE 'ok' END AS v,
           gp.rtt * (0.85::float8 + ((r.h >> 10) & 1023)::float8 / 2046) AS a
    FROM (SELECT * FROM gp ORDER BY id) gp
    CROSS JOIN LATERAL generate_series(gp.s0, gp.s1) AS s
    CROSS JOIN LATERAL (SELECT hashint8extended(gp.id * 4096 + s, :seed) & :M AS h OFFSET 0) r) c;
INSERT INTO fill_clock VALUES ('probe_results', clock_timestamp());

ANALYZE :"part";

-- The hourly rollup, as rollup::add_results leaves it: per UTC hour and edge, cycles,
-- failed and degraded cycles, packets, RTT min of the mins, max of the maxes, sum and
-- count of the averages; down_seconds is the report's (rollup::fill_down).
INSERT INTO probe_hourly (hour, edge_id, cycles, failed, degraded, sent, received, rtt_min_ms, rtt_max_ms,
                          rtt_sum_ms, rtt_n)
SELECT date_trunc('hour', at, 'UTC'), edge_id, count(*), count(*) FILTER (WHERE verdict = 'failed'),
       count(*) FILTER (WHERE verdict = 'degraded'), sum(sent), sum(received), min(rtt_min_ms), max(rtt_max_ms),
       COALESCE(sum(rtt_avg_ms::float8), 0), count(rtt_avg_ms)
FROM probe_results
WHERE at >= :'d0'::timestamptz AND at < :'d1'::timestamptz
GROUP BY 1, 2
ORDER BY 1, 2;

-- The counters /metrics reads, as probe::write_cycle keeps them.
INSERT INTO probe_counters AS c (kind, verdict, count, last_at)
SELECT kind, verdict, count(*), max(at) FROM probe_results GROUP BY 1, 2
ON CONFLICT (kind, verdict, slot) DO UPDATE SET count = c.count + EXCLUDED.count, last_at = EXCLUDED.last_at;
INSERT INTO fill_clock VALUES ('probe_hourly', clock_timestamp());

-- Everything, the big partition included: so that no autovacuum runs during the
-- measurements.
VACUUM (ANALYZE);
INSERT INTO fill_clock VALUES ('vacuum', clock_timestamp());

-- What was made, as one JSON object (bench/report_bench.sh keeps it for the report).
SELECT json_build_object(
    'day', :'day',
    'seed', :seed,
    'interval_secs', :interval,
    'nodes', (SELECT count(*) FROM node_history WHERE valid_from <= :'d0'::timestamptz
                                                  AND (valid_to IS NULL OR valid_to > :'d0'::timestamptz)),
    'hosts', (SELECT count(*) FROM hosts),
    'dcs', (SELECT count(DISTINCT dc) FROM hosts),
    'addresses', (SELECT count(*) FROM addresses),
    'services', (SELECT count(*) FROM services),
    'providers', (SELECT count(*) FROM provider_history WHERE valid_to IS NULL OR valid_to > :'d0'::timestamptz),
    'edges', (SELECT count(*) FROM edges WHERE first_seen < :'d0'::timestamptz),
    'edges_at_end', (SELECT count(*) FROM edges WHERE retired_at IS NULL),
    'nodes_retired', (SELECT count(*) FROM nodes WHERE retired_at IS NOT NULL),
    'edges_retired', (SELECT count(*) FROM edges WHERE retired_at IS NOT NULL),
    'edges_new', (SELECT count(*) FROM edges WHERE first_seen >= :'d0'::timestamptz),
    'cross_dc_edges', (SELECT count(*) FROM edges e JOIN nodes s ON s.id = e.src_id
                       JOIN addresses a ON a.ip = e.dst_ip JOIN nodes d ON d.id = a.node_id WHERE s.dc <> d.dc),
    'probe_rows', (SELECT sum(cycles) FROM probe_hourly),
    'failed_rows', (SELECT sum(failed) FROM probe_hourly),
    'degraded_rows', (SELECT sum(degraded) FROM probe_hourly),
    'probe_hourly_rows', (SELECT count(*) FROM probe_hourly),
    'query_hourly_rows', (SELECT count(*) FROM query_hourly),
    'edges_failing', (SELECT count(DISTINCT edge_id) FROM edge_events WHERE to_state = 'down'),
    'edges_degraded', (SELECT count(DISTINCT edge_id) FROM edge_events WHERE to_state = 'degraded'),
    'edge_events', (SELECT count(*) FROM edge_events),
    'edge_events_in_day', (SELECT count(*) FROM edge_events WHERE at >= :'d0'::timestamptz AND at < :'d1'::timestamptz),
    'incidents', (SELECT count(*) FROM incident_log),
    'probe_partition_unlogged', (SELECT relpersistence = 'u' FROM pg_class WHERE relname = :'part'),
    'probe_partition_bytes', pg_total_relation_size(:'part'),
    'database_bytes', pg_database_size(current_database()),
    'secs', (SELECT json_object_agg(stage, round(extract(epoch FROM at - prev)::numeric, 1))
             FROM (SELECT stage, at, lag(at) OVER (ORDER BY at) AS prev FROM fill_clock) c WHERE prev IS NOT NULL),
    'total_secs', (SELECT round(extract(epoch FROM max(at) - min(at))::numeric, 1) FROM fill_clock));
