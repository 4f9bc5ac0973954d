-- Who does the once-only work of several processes (several `serve`, several `run`): one
-- row per kind of work, held by one process until `expires_at` and renewed well before
-- it. A lease row, not a session advisory lock, so that it holds through pgbouncer in
-- transaction pooling (where a session lock would stay with whichever server connection
-- took it) and ends by itself, at the database's clock, when its holder dies.
CREATE TABLE leases (
    name         text PRIMARY KEY,
    holder       text NOT NULL,
    acquired_at  timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
