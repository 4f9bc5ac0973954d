-- Agents: the tokens they authenticate with, and the local figures they report along
-- with their probe results (which go to probe_results like any prober's).

-- Only a SHA-256 (hex) of each token is kept: the token itself is printed once, when
-- it is made, and never stored. A token is good for exactly one node.
CREATE TABLE agent_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    node_id     bigint NOT NULL REFERENCES nodes (id),
    token_hash  text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX agent_tokens_node ON agent_tokens (node_id);

-- One row per agent report: load average and, for agents given an nginx access log,
-- request and error rates (per second, over nginx_interval_s) with the rate of each
-- status code as {"200": 12.5, "502": 0.1}. `at` is when the agent measured, which is
-- earlier than received_at when the report waited out an outage in the agent's buffer.
CREATE TABLE agent_reports (
    node_id               bigint NOT NULL REFERENCES nodes (id),
    at                    timestamptz NOT NULL,
    received_at           timestamptz NOT NULL DEFAULT now(),
    load1                 real,
    load5                 real,
    load15                real,
    nginx_interval_s      real,
    nginx_requests_per_s  real,
    nginx_errors_per_s    real,
    nginx_status_rates    jsonb,
    PRIMARY KEY (node_id, at)
);
CREATE INDEX agent_reports_at ON agent_reports (at);
