-- Path history for plain SQL readers (the Grafana dashboards in deploy/grafana/,
-- docs/grafana.md). A run's per-hop figures are stored packed (graph_store::paths::packed)
-- in trace_runs while recent and inside six-hour blocks (graph_store::paths::block) in
-- trace_blocks after compaction: SQL alone cannot read them. These functions unpack both,
-- read-only, the same way the Rust code does; nothing is stored or changed.
--
--   SELECT * FROM edgewatch_trace_hops(pair_id, from, to)
--
-- gives one row per run and TTL with the hop's addresses, probes, loss and RTTs.

-- An unsigned LEB128 varint of `data` at byte `pos` (from 0): its value, and the byte after.
CREATE FUNCTION edgewatch_varint(data bytea, pos integer, OUT value bigint, OUT next integer)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    b integer;
    shift integer := 0;
BEGIN
    value := 0;
    next := pos;
    LOOP
        IF next >= length(data) OR shift > 56 THEN
            RAISE EXCEPTION 'packed trace data: no varint at byte %', pos;
        END IF;
        b := get_byte(data, next);
        next := next + 1;
        value := value | ((b & 127)::bigint << shift);
        EXIT WHEN b < 128;
        shift := shift + 7;
    END LOOP;
END $$;

-- The tens of microseconds a spread byte stands for (graph_store::paths::packed::log_value):
-- codes 0-31 the value itself, above a geometric scale from 0.32 ms to 1 s.
CREATE FUNCTION edgewatch_log_value(code integer) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (CASE WHEN code < 32 THEN code ELSE round(32 * exp((code - 32) * ln(100000.0 / 32) / 223)) END)::double precision
$$;

-- A run's figures (trace_runs.figures; version 1 or 2) for a path of `hops` TTLs: one row
-- per TTL from 1. RTTs in milliseconds; NULL when the hop did not answer.
CREATE FUNCTION edgewatch_trace_figures(figures bytea, hops integer)
RETURNS TABLE (ttl smallint, sent integer, received integer,
               rtt_best_ms real, rtt_avg_ms real, rtt_worst_ms real)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    version integer := get_byte(figures, 0);
    mode integer;
    pos integer;
    v record;
    sents integer[] := '{}';
    recvs integer[] := '{}';
    avg double precision;
BEGIN
    IF version = 1 THEN
        pos := 1;
        FOR i IN 1 .. hops LOOP
            ttl := i; sent := get_byte(figures, pos); received := get_byte(figures, pos + 1);
            pos := pos + 2;
            v := edgewatch_varint(figures, pos); pos := v.next;
            rtt_best_ms := CASE WHEN v.value > 0 THEN (v.value - 1) / 1000.0 END;
            v := edgewatch_varint(figures, pos); pos := v.next;
            rtt_avg_ms := CASE WHEN v.value > 0 THEN (v.value - 1) / 1000.0 END;
            v := edgewatch_varint(figures, pos); pos := v.next;
            rtt_worst_ms := CASE WHEN v.value > 0 THEN (v.value - 1) / 1000.0 END;
            v := edgewatch_varint(figures, pos); pos := v.next;  -- standard deviation
            v := edgewatch_varint(figures, pos); pos := v.next;  -- jitter
            RETURN NEXT;
        END LOOP;
        RETURN;
    ELSIF version <> 2 THEN
        RAISE EXCEPTION 'packed trace figures of version %; these functions read versions 1 and 2', version;
    END IF;
    mode := get_byte(figures, 1);
    pos := 2;
    IF mode = 0 THEN
        FOR i IN 1 .. hops LOOP
            v := edgewatch_varint(figures, pos); pos := v.next; sents := sents || v.value::integer;
            v := edgewatch_varint(figures, pos); pos := v.next; recvs := recvs || v.value::integer;
        END LOOP;
    ELSE
        FOR i IN 1 .. hops LOOP
            sents := sents || mode;
            recvs := recvs || ((get_byte(figures, pos + (i - 1) / 4) >> (2 * ((i - 1) % 4))) & 3);
        END LOOP;
        pos := pos + (hops + 3) / 4;
    END IF;
    FOR i IN 1 .. hops LOOP
        ttl := i; sent := sents[i]; received := recvs[i];
        rtt_best_ms := NULL; rtt_avg_ms := NULL; rtt_worst_ms := NULL;
        IF received > 0 THEN
            v := edgewatch_varint(figures, pos); pos := v.next;
            IF v.value > 0 THEN
                avg := (v.value - 1) / 100.0;
                rtt_avg_ms := avg;
                rtt_best_ms := greatest(avg - edgewatch_log_value(get_byte(figures, pos)) / 100.0, 0);
                rtt_worst_ms := avg + edgewatch_log_value(get_byte(figures, pos + 1)) / 100.0;
                -- then the jitter, and the deviation of a hop of more than three answers
                pos := pos + 3 + CASE WHEN received > 3 THEN 1 ELSE 0 END;
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;

-- The runs of a trace_blocks row (its `starts` and `data`, block version 1), with their
-- figures as trace_runs holds them (version byte 2 in front).
CREATE FUNCTION edgewatch_trace_block(starts timestamptz, data bytea)
RETURNS TABLE (at timestamptz, path_id bigint, figures bytea)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    pos integer := 1;
    v record;
    paths bigint[] := '{}';
    n bigint;
    len integer;
BEGIN
    IF get_byte(data, 0) <> 1 THEN
        RAISE EXCEPTION 'trace block of version %; these functions read version 1', get_byte(data, 0);
    END IF;
    v := edgewatch_varint(data, pos); pos := v.next; n := v.value;
    FOR i IN 1 .. n LOOP
        v := edgewatch_varint(data, pos); pos := v.next; paths := paths || v.value;
    END LOOP;
    v := edgewatch_varint(data, pos); pos := v.next; n := v.value;
    at := starts;
    FOR i IN 1 .. n LOOP
        v := edgewatch_varint(data, pos); pos := v.next;
        at := at + v.value * interval '1 microsecond';
        v := edgewatch_varint(data, pos); pos := v.next;
        path_id := paths[v.value + 1];
        v := edgewatch_varint(data, pos); pos := v.next; len := v.value;
        figures := '\x02'::bytea || substr(data, pos + 1, len);
        pos := pos + len;
        RETURN NEXT;
    END LOOP;
END $$;

-- Pair `p_pair`'s runs with p_from <= at < p_to, from the blocks and trace_runs (a run in
-- both is given once), one row per run and TTL: the hop's addresses (sorted, joined by
-- ','; '' for a silent hop), probes sent and answered, loss, and RTTs in milliseconds.
CREATE FUNCTION edgewatch_trace_hops(p_pair bigint, p_from timestamptz, p_to timestamptz)
RETURNS TABLE (at timestamptz, ttl smallint, addrs text, sent integer, received integer, loss_pct real,
               rtt_best_ms real, rtt_avg_ms real, rtt_worst_ms real, path_id bigint, reached boolean,
               last_hop boolean)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH stored AS (
        SELECT r.at, r.path_id::bigint AS path_id, r.figures, 1 AS source
        FROM trace_runs r
        WHERE r.pair_id = p_pair AND r.at >= p_from AND r.at < p_to
        UNION ALL
        SELECT b.at, b.path_id, b.figures, 0
        FROM trace_blocks t CROSS JOIN LATERAL edgewatch_trace_block(t.starts, t.data) b
        WHERE t.pair_id = p_pair AND t.starts > p_from - interval '6 hours' AND t.starts < p_to
          AND b.at >= p_from AND b.at < p_to
    ), runs AS (
        SELECT DISTINCT ON (s.at) s.at, s.path_id, s.figures FROM stored s ORDER BY s.at, s.source
    )
    SELECT runs.at, f.ttl, p.hops[f.ttl], f.sent, f.received,
           (100.0 * (f.sent - f.received) / nullif(f.sent, 0))::real,
           f.rtt_best_ms, f.rtt_avg_ms, f.rtt_worst_ms, runs.path_id, p.reached,
           f.ttl = cardinality(p.hops)
    FROM runs
    JOIN trace_paths p ON p.id = runs.path_id
    CROSS JOIN LATERAL edgewatch_trace_figures(runs.figures, cardinality(p.hops)) f
$$;
