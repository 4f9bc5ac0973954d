-- The operators' live table, one row per live node:
--   disconnects        the node's edges that are down now
--   load               load average (1 min) of its agent's last report
--   nginx_err_rate     nginx errors (5xx) per second, last report
--   connectivity       the destination addresses it cannot reach now, comma-separated
--   nginx_access_rate  nginx requests per second, last report
-- so that `SELECT name FROM node_health ORDER BY disconnects DESC` and
-- `SELECT sum(nginx_access_rate), sum(nginx_err_rate), dc FROM node_health GROUP BY dc`
-- work as written.
CREATE VIEW node_health AS
SELECT n.name,
       COALESCE(down.disconnects, 0)::integer AS disconnects,
       n.dc,
       n.role,
       last.load1 AS load,
       last.nginx_errors_per_s AS nginx_err_rate,
       COALESCE(down.connectivity, '') AS connectivity,
       last.nginx_requests_per_s AS nginx_access_rate
FROM nodes n
LEFT JOIN LATERAL (
    SELECT count(*) AS disconnects, string_agg(host(e.dst_ip), ',' ORDER BY e.dst_ip) AS connectivity
    FROM edges e JOIN edge_health h ON h.edge_id = e.id
    WHERE e.src_id = n.id AND e.retired_at IS NULL AND h.state = 'down'
) down ON true
LEFT JOIN LATERAL (
    SELECT r.load1, r.nginx_errors_per_s, r.nginx_requests_per_s
    FROM agent_reports r WHERE r.node_id = n.id ORDER BY r.at DESC LIMIT 1
) last ON true
WHERE n.retired_at IS NULL;
