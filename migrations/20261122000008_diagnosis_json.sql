-- The stored diagnosis as `json` (its text, kept as written) rather than `jsonb`: every
-- `check nagios` reads it whole, and turning a few megabytes of jsonb back into text took
-- PostgreSQL longer than the rest of the check (docs/BENCHMARKS.md, the check on 1M edges).
ALTER TABLE diagnosis ALTER COLUMN payload TYPE json USING payload::json;
