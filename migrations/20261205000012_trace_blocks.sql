-- Path history within its budget (issue 13: a day at the operators' scale in 5 GB). A run
-- as one row of trace_runs costs ~100 bytes of row header, index entry and page beside its
-- figures, and the hourly rollups written with every run cost a row per (pair, TTL, hour)
-- rewritten by every run. Now runs land in trace_runs as before, and once their six hours
-- (00-06, 06-12, 12-18, 18-24 UTC) are over compaction (graph_store::paths::compact_runs)
-- moves each pair's runs of them into one row of trace_blocks and writes each hour's
-- rollup once, as one row per pair and hour.
-- SQL in graph_store::paths::{store, read}; the byte layouts in graph_store::paths::block.

-- One pair's runs of six UTC hours from `starts` (`data`: graph_store::paths::block,
-- version 1), day partitions like trace_runs', dropped after `[trace] keep_days`.
CREATE TABLE trace_blocks (
    starts   timestamptz NOT NULL,
    pair_id  integer NOT NULL,
    runs     integer NOT NULL,
    data     bytea NOT NULL
) PARTITION BY RANGE (starts);
ALTER TABLE trace_blocks ADD PRIMARY KEY (pair_id, starts);

-- Where the server can, blocks over ~2 kB are compressed with lz4 (any saving is kept;
-- pglz keeps only savings of 25 % and more), and stored out of line in full TOAST pages.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE trace_blocks ALTER COLUMN data SET COMPRESSION lz4;
    END IF;
END $$;

-- Day partitions of both: trace_runs (runs as they come) and trace_blocks.
CREATE OR REPLACE FUNCTION edgewatch_ensure_trace_partitions(first_day date, days integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    d date;
    parent text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('edgewatch:trace_runs partitions'));
    FOR i IN 0 .. days - 1 LOOP
        d := first_day + i;
        FOREACH parent IN ARRAY ARRAY['trace_runs', 'trace_blocks'] LOOP
            EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           parent || '_' || to_char(d, 'YYYYMMDD'), parent, d::timestamptz,
                           (d + 1)::timestamptz);
        END LOOP;
    END LOOP;
END $$;
SELECT edgewatch_ensure_trace_partitions(current_date - 1, 4);

-- The hourly rollups: one row per pair and hour, the TTLs packed in `data`
-- (graph_store::paths::block, rollup version 1), written once by compaction. The rows of
-- the first layout (one per pair, TTL and hour) stay, as trace_hourly_v1, until their
-- retention ends: nothing stored is dropped by this migration.
ALTER TABLE trace_hourly RENAME TO trace_hourly_v1;
ALTER INDEX trace_hourly_pkey RENAME TO trace_hourly_v1_pkey;
ALTER INDEX trace_hourly_pair RENAME TO trace_hourly_v1_pair;
CREATE TABLE trace_hourly (
    pair_id  integer NOT NULL,
    hour     timestamptz NOT NULL,
    runs     integer NOT NULL,
    data     bytea NOT NULL,
    PRIMARY KEY (pair_id, hour)
);
CREATE INDEX trace_hourly_hour ON trace_hourly USING brin (hour);
