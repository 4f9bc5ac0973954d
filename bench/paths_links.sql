-- The cross-DC links of the path history benchmark (bench/paths_store.sh), as a links
-- export in text form (`container ip ip …`): per consumer container, the addresses of
-- every provider in another data center of each service it has an edge for, but `api`
-- (always provided on the consumer's own host). The generated fleet's DNS edges stay
-- within a DC; these make the cross-DC host pairs a fleet would have if its consumers
-- used every replica of their shared services.
SELECT c.name, string_agg(DISTINCT host(a.ip), ' ' ORDER BY host(a.ip))
FROM edges e
JOIN nodes c ON c.id = e.src_id AND c.retired_at IS NULL
CROSS JOIN LATERAL unnest(e.services) AS svc
JOIN service_providers sp ON sp.service = svc
JOIN nodes p ON p.id = sp.node_id AND p.retired_at IS NULL AND p.dc <> c.dc
JOIN addresses a ON a.node_id = p.id AND a.retired_at IS NULL
WHERE e.retired_at IS NULL AND svc <> 'api'
GROUP BY c.name
ORDER BY c.name;
