-- The live topology snapshot, packed (graph_store::topology::packed), as `serve`'s leader
-- keeps it: `graph deps|dependents|blast|spof|path` and the API answer from it instead of
-- loading every edge row by row. `signature` is the sum of the history tables' changed-row
-- counters when it was built (graph_store::topology::signature): while they have not
-- moved, the topology has not changed. `checked_at`: when the leader last saw that.
CREATE TABLE topology_packed (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    built_at timestamptz NOT NULL,
    checked_at timestamptz NOT NULL,
    signature bigint,
    nodes integer NOT NULL,
    deps integer NOT NULL,
    data bytea NOT NULL
);
-- Stored as is: the packed form is already dense, and reading it uncompressed is faster.
ALTER TABLE topology_packed ALTER COLUMN data SET STORAGE EXTERNAL;
