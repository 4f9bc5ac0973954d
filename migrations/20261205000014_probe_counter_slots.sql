-- probe_counters kept one row per (kind, verdict), so every transaction that recorded
-- results updated the same two or three rows and held their locks until its commit was
-- on disk: concurrent writers (agents posting results at once, prober workers) queued
-- behind each other's WAL flush. The agent check-in benchmark (examples/agent_swarm.rs)
-- measured 172 check-ins/s with most backends waiting on those row locks. Now each
-- (kind, verdict) has a row per slot (up to 64); a writer adds to its backend's slot
-- (graph_store::probe::count_results) and readers add the slots up.

ALTER TABLE probe_counters ADD COLUMN slot smallint NOT NULL DEFAULT 0;
ALTER TABLE probe_counters DROP CONSTRAINT probe_counters_pkey;
ALTER TABLE probe_counters ADD PRIMARY KEY (kind, verdict, slot);
