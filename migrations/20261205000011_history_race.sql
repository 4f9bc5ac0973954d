-- History periods under concurrent writers (a defect found by tests/cmdb_import.rs's
-- concurrent imports): a transaction that waited on another's lock still has its own,
-- earlier now(), so closing a period the other one opened made valid_to < valid_from and
-- the import failed on node_history's CHECK. A period is now closed at now(), or at its
-- own start when that is later (zero length: it was replaced at once).

CREATE OR REPLACE FUNCTION edgewatch_node_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        UPDATE node_history SET valid_to = greatest(now(), valid_from) WHERE node_id = OLD.id AND valid_to IS NULL;
    END IF;
    IF NEW.retired_at IS NULL THEN
        INSERT INTO node_history (node_id, host, dc, role, serving, valid_from)
        VALUES (NEW.id, NEW.host, NEW.dc, NEW.role, NEW.serving, now());
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION edgewatch_address_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        UPDATE address_history SET valid_to = greatest(now(), valid_from) WHERE ip = OLD.ip AND valid_to IS NULL;
    END IF;
    IF NEW.retired_at IS NULL THEN
        INSERT INTO address_history (ip, node_id, valid_from) VALUES (NEW.ip, NEW.node_id, now());
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION edgewatch_edge_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        UPDATE edge_history SET valid_to = greatest(now(), valid_from) WHERE edge_id = OLD.id AND valid_to IS NULL;
    END IF;
    IF NEW.retired_at IS NULL THEN
        INSERT INTO edge_history (edge_id, services, sources, valid_from)
        VALUES (NEW.id, NEW.services, NEW.sources, now());
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION edgewatch_provider_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE provider_history SET valid_to = greatest(now(), valid_from)
        WHERE service = OLD.service AND node_id = OLD.node_id AND valid_to IS NULL;
    ELSE
        INSERT INTO provider_history (service, node_id, valid_from) VALUES (NEW.service, NEW.node_id, now());
    END IF;
    RETURN NULL;
END $$;
