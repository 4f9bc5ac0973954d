-- New edges open their history period once per statement, not once per row: a DNS batch
-- inserts tens of thousands of edges in one statement, and the row trigger (a PL/pgSQL
-- call and a one-row INSERT per edge) was about a third of PostgreSQL's time in a first
-- `dns ingest` (issue 18). The rows written are the same: one open period per inserted
-- live edge, from now(). Updates keep their row trigger (it fires only when services,
-- sources or retirement change).

CREATE FUNCTION edgewatch_edge_history_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO edge_history (edge_id, services, sources, valid_from)
    SELECT id, services, sources, now() FROM inserted_edges WHERE retired_at IS NULL;
    RETURN NULL;
END $$;

DROP TRIGGER edges_history_insert ON edges;
CREATE TRIGGER edges_history_insert AFTER INSERT ON edges
    REFERENCING NEW TABLE AS inserted_edges
    FOR EACH STATEMENT EXECUTE FUNCTION edgewatch_edge_history_inserted();
