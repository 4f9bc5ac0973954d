-- Following logs across rotations (issue 17).
--
-- A checkpoint also keeps the file's first bytes (up to 4 KiB after the run of NULs it
-- may start with, never past the read position) and the length of that run: a rotated
-- file that was copied (copytruncate) or compressed has another inode, and is recognised
-- by these bytes; a file with a recycled inode and the same first line is told apart by
-- them.
ALTER TABLE ingest_checkpoints
    ADD COLUMN hole bigint NOT NULL DEFAULT 0 CHECK (hole >= 0),
    ADD COLUMN head bytea  NOT NULL DEFAULT ''::bytea CHECK (length(head) <= 4096);
CREATE INDEX ingest_checkpoints_by_path ON ingest_checkpoints (path, updated_at DESC);

-- Each log path edgewatch follows (or ingests), and since when: a rotated sibling that no
-- checkpoint knows and that was written since then was at the path while edgewatch was
-- following it (and was rotated away before anything of it was committed): it is read
-- whole. Older siblings are history from before edgewatch, left alone.
CREATE TABLE log_paths (
    path            text PRIMARY KEY,
    followed_since  timestamptz NOT NULL
);

-- The newest query time any DNS log has shown (the logs' own clock). `dns tail` retires
-- DNS edges by it, not by the wall clock, so replaying old logs gives the same graph
-- however often the reader crashed or how fast it read.
CREATE TABLE dns_clock (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    newest  timestamptz
);
INSERT INTO dns_clock (newest) SELECT max(dns_last_seen) FROM edges;
