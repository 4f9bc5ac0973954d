-- Names of any length: no B-tree index holds a name from the CMDB any more.
--
-- A CMDB name (container, host, service) is whatever the export says, and an export may
-- say 10 KB. A B-tree index entry must fit in a third of a page (2704 bytes, after
-- compression), so a long name that does not compress aborted the whole import with
-- `index row requires 10016 bytes, maximum size is 8191`. Instead:
--
-- - Uniqueness: unique B-tree indexes on md5(name), 32 characters whatever the name. The
--   upserts name them as their arbiter: ON CONFLICT ((md5(name))). Two different names
--   with one md5 cannot come from a real export (it takes a deliberately built collision,
--   and whoever writes the CMDB decides the graph anyway); such a pair would be taken for
--   one name.
-- - Lookups (`name = $1`, `name = ANY($1)`, joins on a name): hash indexes, which keep a
--   32-bit hash of the value and take values of any length. They answer equality only;
--   nothing reads names in index order.
--
-- A foreign key needs a unique constraint on plain columns, which a name can no longer
-- have, so nodes.host -> hosts.name and service_providers.service -> services.name go.
-- What they guaranteed holds by construction: the inventory import
-- (graph_store::cmdb::apply_inventory) upserts a snapshot's hosts before its nodes and its
-- services before their providers, in one transaction, and nothing deletes a host or a
-- service (hosts are retired, services stay).
--
-- The other indexes on text columns were checked and stay: dns_skips.reason,
-- probe_counters (kind, verdict), agent_tokens.token_hash and the checkpoints' fingerprint
-- are edgewatch's own short strings; the history tables index no text. dns_unknowns.value
-- is a name read from a DNS query or a CMDB service name (`no-provider`), up to a log
-- line's 64 KB, so its key becomes (kind, md5(value)) too.

-- hosts.name
ALTER TABLE nodes DROP CONSTRAINT nodes_host_fkey;
ALTER TABLE hosts DROP CONSTRAINT hosts_pkey;
CREATE UNIQUE INDEX hosts_name_md5 ON hosts (md5(name));
CREATE INDEX hosts_name ON hosts USING hash (name);

-- nodes.name, nodes.host
ALTER TABLE nodes DROP CONSTRAINT nodes_name_key;
CREATE UNIQUE INDEX nodes_name_md5 ON nodes (md5(name));
CREATE INDEX nodes_name ON nodes USING hash (name);
DROP INDEX nodes_host;
CREATE INDEX nodes_host ON nodes USING hash (host);

-- services.name, service_providers.service
ALTER TABLE service_providers DROP CONSTRAINT service_providers_service_fkey;
ALTER TABLE service_providers DROP CONSTRAINT service_providers_pkey;
CREATE UNIQUE INDEX service_providers_service_node ON service_providers (md5(service), node_id);
CREATE INDEX service_providers_service ON service_providers USING hash (service);
ALTER TABLE services DROP CONSTRAINT services_pkey;
CREATE UNIQUE INDEX services_name_md5 ON services (md5(name));
CREATE INDEX services_name ON services USING hash (name);

-- dns_unknowns (kind, value)
ALTER TABLE dns_unknowns DROP CONSTRAINT dns_unknowns_pkey;
CREATE UNIQUE INDEX dns_unknowns_kind_value_md5 ON dns_unknowns (kind, md5(value));
