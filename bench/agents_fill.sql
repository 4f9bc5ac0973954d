-- Fills an empty, migrated edgewatch database with a fleet of agents for the agent
-- check-in benchmark and soak (bench/agents_bench.sh, examples/agent_swarm.rs):
--
--   psql -X -q -A -t -v ON_ERROR_STOP=1 -v seed=1 -v agents=5000 -v edges=5 \
--        -v tokens=/tmp/agents.tsv -f bench/agents_fill.sql URL
--
-- Set-based, one transaction, deterministic but for the tokens' randomness-free hash of
-- (seed, agent): agent i is the container `ag<i>.host<i/5>` (5 per host, hosts spread
-- over 6 data centers), at 127.64.0.0 + i (loopback, should anything ever probe it). Each
-- agent has `edges` live edges to the addresses of other agents, stepping through the
-- fleet by a large odd stride (so they spread over hosts and DCs); every other edge
-- carries a service with a TCP port (a `tcp` target), the rest none (`icmp`). Every edge
-- gets a health row (`up`). Each agent gets one token; the token itself is written, with
-- the agent's name, to the file `tokens` (`NAME<TAB>TOKEN` a line: what
-- `agent_swarm --agents FILE` reads) and only its SHA-256 is stored, as
-- `edgewatch agent-token create` does.

\set ON_ERROR_STOP on
\if :{?seed} \else \set seed 1 \endif
\if :{?agents} \else \set agents 5000 \endif
\if :{?edges} \else \set edges 5 \endif
\if :{?tokens} \else \echo 'agents_fill.sql needs -v tokens=FILE (where the agents tokens are written)' \quit \endif

SET synchronous_commit = off;
SET jit = off;

BEGIN;

CREATE FUNCTION pg_temp.fail(msg text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', msg;
END $$;

SELECT pg_temp.fail('agents_fill.sql wants an empty database: nodes already has rows')
WHERE EXISTS (SELECT 1 FROM nodes) \g /dev/null
SELECT pg_temp.fail('agents_fill.sql: edges must be 1 .. agents - 1')
WHERE :edges < 1 OR :edges >= :agents \g /dev/null

CREATE TEMP TABLE dc (d int PRIMARY KEY, name text) ON COMMIT DROP;
INSERT INTO dc VALUES (0, 'ams1'), (1, 'fra1'), (2, 'lon1'), (3, 'iad1'), (4, 'sjc1'), (5, 'sin1');

CREATE TEMP TABLE ga ON COMMIT DROP AS
SELECT i, 'ag' || i || '.host' || (i / 5) AS name, 'host' || (i / 5) AS host,
       (i / 5) * 6 / ((:agents + 4) / 5) AS d
FROM generate_series(0, :agents - 1) AS i;

INSERT INTO hosts (name, dc)
SELECT DISTINCT ga.host, dc.name FROM ga JOIN dc ON dc.d = ga.d;

INSERT INTO nodes (name, host, dc, role)
SELECT ga.name, ga.host, dc.name, 'backend' FROM ga JOIN dc ON dc.d = ga.d ORDER BY ga.i;
ALTER TABLE ga ADD COLUMN id bigint;
UPDATE ga SET id = n.id FROM nodes n WHERE n.name = ga.name;

INSERT INTO addresses (ip, node_id) SELECT '127.64.0.0'::inet + i, id FROM ga;

INSERT INTO services (name, port) VALUES ('swarm-svc', 8080);

-- Edge k of agent i goes to agent (i + 1 + k * stride) mod agents; stride is odd and
-- near agents / edges, so the k destinations differ (edges < agents) and spread out.
INSERT INTO edges (src_id, dst_ip, services, sources)
SELECT ga.id, '127.64.0.0'::inet + ((ga.i + 1 + k * (2 * (:agents / (2 * :edges)) + 1)) % :agents),
       CASE WHEN k % 2 = 0 THEN ARRAY['swarm-svc'] ELSE '{}' END, '{cmdb}'
FROM ga, generate_series(0, :edges - 1) AS k
ON CONFLICT (src_id, dst_ip) DO NOTHING;

INSERT INTO edge_health (edge_id, state, since) SELECT id, 'up', now() FROM edges;

-- Tokens: ewa_ and the SHA-256 of (seed, agent index), stored by their own SHA-256.
CREATE TEMP TABLE gt ON COMMIT DROP AS
SELECT ga.id, ga.name,
       'ewa_' || encode(sha256(convert_to('agent-swarm:' || :seed || ':' || ga.i, 'UTF8')), 'hex') AS token
FROM ga;
INSERT INTO agent_tokens (node_id, token_hash)
SELECT id, encode(sha256(convert_to(token, 'UTF8')), 'hex') FROM gt;

\o :tokens
SELECT name || E'\t' || token FROM gt ORDER BY id;
\o

COMMIT;

VACUUM (ANALYZE);

SELECT json_build_object(
    'agents', (SELECT count(*) FROM nodes),
    'hosts', (SELECT count(*) FROM hosts),
    'edges', (SELECT count(*) FROM edges WHERE retired_at IS NULL),
    'tcp_edges', (SELECT count(*) FROM edges WHERE services <> '{}'),
    'tokens', (SELECT count(*) FROM agent_tokens));
