-- The fault diagnosis and the Nagios check.

-- The last diagnosis: the incidents and the edges in trouble (down, degraded or flapping)
-- at computed_at. One row. Kept fresh by `serve` and `probe`, so the Nagios check reads
-- one row instead of every live edge; the check computes it itself when it is older than
-- `[diagnosis] max_age`.
CREATE TABLE diagnosis (
    id           boolean PRIMARY KEY DEFAULT true CHECK (id),
    computed_at  timestamptz NOT NULL,
    live_edges   bigint NOT NULL,
    payload      jsonb NOT NULL
);

-- When the newest probe result was recorded, for the check's data age (no scan of
-- edge_health or of the history).
ALTER TABLE probe_counters ADD COLUMN last_at timestamptz;
UPDATE probe_counters c SET last_at = (SELECT max(h.last_result_at) FROM edge_health h);

-- What `check nagios --passive` last sent per host and service, so that a problem that
-- clears is sent as a recovery once (and nothing is sent for hosts that stayed fine).
CREATE TABLE nagios_passive (
    host     text NOT NULL,
    service  text NOT NULL,
    code     integer NOT NULL CHECK (code BETWEEN 0 AND 3),
    output   text NOT NULL,
    sent_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX nagios_passive_key ON nagios_passive (md5(host), md5(service));
