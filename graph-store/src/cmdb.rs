//! Applying CMDB exports to the graph. Each function is one step of an import and runs
//! on the caller's transaction; the caller takes [`lock_graph`] first so that concurrent
//! imports apply one after the other, each whole.
//!
//! Names may be of any length, so they are unique by `md5(name)` (no B-tree index can hold
//! a long name; see migration `20261122000005_long_names.sql`) and that is every upsert's
//! conflict target. The same migration dropped the foreign keys on names: hosts are
//! upserted before the nodes on them, services before their providers.

use std::collections::{BTreeMap, HashMap};

use crate::error::{Error, Result};
use crate::model::{Inventory, InventoryOutcome, LinkSet, LinksOutcome};
use crate::PgConnection;

/// The guard's default: an inventory may retire at most this share of the live nodes.
pub const MASS_RETIRE_LIMIT_PCT: u32 = 20;

/// Serialises writers of the graph's inventory and links until the transaction ends.
#[tracing::instrument(skip_all)]
pub async fn lock_graph(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('edgewatch:graph'))")
        .execute(conn)
        .await
        .map_err(Error::sql("locking the graph"))?;
    Ok(())
}

/// Applies an inventory snapshot: upserts hosts, nodes, addresses, services and
/// providers; retires (never deletes) the nodes it no longer lists, with their edges.
/// Refuses to retire more than [`MASS_RETIRE_LIMIT_PCT`] of the live nodes unless
/// `allow_mass_retire`.
#[tracing::instrument(skip_all, fields(containers = inventory.containers.len()))]
pub async fn apply_inventory(
    conn: &mut PgConnection,
    inventory: &Inventory,
    allow_mass_retire: bool,
) -> Result<InventoryOutcome> {
    let names: Vec<&str> = inventory.containers.iter().map(|c| c.name.as_str()).collect();
    let (live, gone, revived) = count_changes(conn, &names).await?;
    let pct = if live == 0 { 0.0 } else { gone as f64 * 100.0 / live as f64 };
    if !allow_mass_retire && pct > f64::from(MASS_RETIRE_LIMIT_PCT) {
        return Err(Error::MassRetire { would_retire: gone, live, pct, limit_pct: MASS_RETIRE_LIMIT_PCT });
    }

    let hosts: BTreeMap<&str, &str> = inventory.containers.iter().map(|c| (c.host.as_str(), c.dc.as_str())).collect();
    upsert_hosts(conn, &hosts).await?;
    let new_nodes = upsert_nodes(conn, inventory).await?;
    let retired_ids = retire_missing_nodes(conn, &names).await?;
    retire_missing_hosts(conn, &hosts.keys().copied().collect::<Vec<_>>()).await?;
    upsert_addresses(conn, inventory).await?;
    upsert_services(conn, inventory).await?;
    replace_providers(conn, inventory).await?;
    let retired_edges = retire_edges_of(conn, &retired_ids).await?;

    Ok(InventoryOutcome {
        containers: inventory.containers.len(),
        new_nodes,
        revived_nodes: revived,
        retired_nodes: retired_ids.len(),
        retired_edges,
        hosts: hosts.len(),
        services: inventory
            .containers
            .iter()
            .flat_map(|c| c.services.iter().map(String::as_str))
            .chain(inventory.services.iter().map(|s| s.name.as_str()))
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
    })
}

/// (live nodes now, live nodes the snapshot leaves out, retired nodes it brings back)
async fn count_changes(conn: &mut PgConnection, names: &[&str]) -> Result<(usize, usize, usize)> {
    let (live, gone, revived): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE retired_at IS NULL), \
                count(*) FILTER (WHERE retired_at IS NULL AND name <> ALL($1)), \
                count(*) FILTER (WHERE retired_at IS NOT NULL AND name = ANY($1)) \
         FROM nodes",
    )
    .bind(names)
    .fetch_one(conn)
    .await
    .map_err(Error::sql("counting live nodes"))?;
    Ok((live as usize, gone as usize, revived as usize))
}

async fn upsert_hosts(conn: &mut PgConnection, hosts: &BTreeMap<&str, &str>) -> Result<()> {
    let names: Vec<&str> = hosts.keys().copied().collect();
    let dcs: Vec<&str> = hosts.values().copied().collect();
    sqlx::query(
        "INSERT INTO hosts (name, dc) SELECT * FROM UNNEST($1::text[], $2::text[]) \
         ON CONFLICT ((md5(name))) DO UPDATE \
         SET dc = EXCLUDED.dc, last_seen = now(), retired_at = NULL",
    )
    .bind(names)
    .bind(dcs)
    .execute(conn)
    .await
    .map_err(Error::sql("upserting hosts"))?;
    Ok(())
}

/// Returns how many nodes are new.
async fn upsert_nodes(conn: &mut PgConnection, inventory: &Inventory) -> Result<usize> {
    let c = &inventory.containers;
    let inserted: Vec<bool> = sqlx::query_scalar(
        "INSERT INTO nodes (name, host, dc, role, serving) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[]) \
         ON CONFLICT ((md5(name))) DO UPDATE \
         SET host = EXCLUDED.host, dc = EXCLUDED.dc, role = EXCLUDED.role, \
             serving = EXCLUDED.serving, last_seen = now(), retired_at = NULL \
         RETURNING (xmax = 0)",
    )
    .bind(c.iter().map(|c| c.name.as_str()).collect::<Vec<_>>())
    .bind(c.iter().map(|c| c.host.as_str()).collect::<Vec<_>>())
    .bind(c.iter().map(|c| c.dc.as_str()).collect::<Vec<_>>())
    .bind(c.iter().map(|c| c.role.as_deref()).collect::<Vec<_>>())
    .bind(c.iter().map(|c| c.serving).collect::<Vec<_>>())
    .fetch_all(conn)
    .await
    .map_err(Error::sql("upserting nodes"))?;
    Ok(inserted.into_iter().filter(|new| *new).count())
}

/// Retires the live nodes not in `names`; returns their ids.
async fn retire_missing_nodes(conn: &mut PgConnection, names: &[&str]) -> Result<Vec<i64>> {
    sqlx::query_scalar(
        "UPDATE nodes SET retired_at = now() \
         WHERE retired_at IS NULL AND name <> ALL($1) RETURNING id",
    )
    .bind(names)
    .fetch_all(conn)
    .await
    .map_err(Error::sql("retiring nodes"))
}

async fn retire_missing_hosts(conn: &mut PgConnection, names: &[&str]) -> Result<()> {
    sqlx::query("UPDATE hosts SET retired_at = now() WHERE retired_at IS NULL AND name <> ALL($1)")
        .bind(names)
        .execute(conn)
        .await
        .map_err(Error::sql("retiring hosts"))?;
    Ok(())
}

/// Gives every listed address to its container (moving it if another had it) and
/// retires the addresses the snapshot no longer lists.
async fn upsert_addresses(conn: &mut PgConnection, inventory: &Inventory) -> Result<()> {
    let (ips, owners): (Vec<String>, Vec<&str>) =
        inventory.containers.iter().flat_map(|c| c.ips.iter().map(move |ip| (ip.to_string(), c.name.as_str()))).unzip();
    sqlx::query(
        "INSERT INTO addresses (ip, node_id) \
         SELECT t.ip::inet, n.id FROM UNNEST($1::text[], $2::text[]) AS t(ip, name) \
         JOIN nodes n ON n.name = t.name \
         ON CONFLICT (ip) DO UPDATE \
         SET first_seen = CASE WHEN addresses.node_id = EXCLUDED.node_id \
                               THEN addresses.first_seen ELSE now() END, \
             node_id = EXCLUDED.node_id, last_seen = now(), retired_at = NULL",
    )
    .bind(&ips)
    .bind(&owners)
    .execute(&mut *conn)
    .await
    .map_err(Error::sql("upserting addresses"))?;
    sqlx::query(
        "UPDATE addresses SET retired_at = now() \
         WHERE retired_at IS NULL AND ip <> ALL($1::text[]::inet[])",
    )
    .bind(&ips)
    .execute(conn)
    .await
    .map_err(Error::sql("retiring addresses"))?;
    Ok(())
}

/// Upserts every service the inventory names. A port the export does not give (CSV has
/// no port column) leaves a known port as it was.
async fn upsert_services(conn: &mut PgConnection, inventory: &Inventory) -> Result<()> {
    let mut ports: BTreeMap<&str, Option<i32>> = BTreeMap::new();
    for c in &inventory.containers {
        for s in &c.services {
            ports.entry(s.as_str()).or_insert(None);
        }
    }
    for s in &inventory.services {
        ports.insert(s.name.as_str(), s.port.map(i32::from));
    }
    sqlx::query(
        "INSERT INTO services (name, port) SELECT * FROM UNNEST($1::text[], $2::int[]) \
         ON CONFLICT ((md5(name))) DO UPDATE \
         SET port = COALESCE(EXCLUDED.port, services.port), last_seen = now()",
    )
    .bind(ports.keys().copied().collect::<Vec<_>>())
    .bind(ports.values().copied().collect::<Vec<_>>())
    .execute(conn)
    .await
    .map_err(Error::sql("upserting services"))?;
    Ok(())
}

/// Makes the provider table exactly what the snapshot says, touching only what changed.
async fn replace_providers(conn: &mut PgConnection, inventory: &Inventory) -> Result<()> {
    let (services, names): (Vec<&str>, Vec<&str>) =
        inventory.containers.iter().flat_map(|c| c.services.iter().map(move |s| (s.as_str(), c.name.as_str()))).unzip();
    sqlx::query(
        "DELETE FROM service_providers sp WHERE NOT EXISTS ( \
             SELECT 1 FROM UNNEST($1::text[], $2::text[]) AS t(service, name) \
             JOIN nodes n ON n.name = t.name \
             WHERE n.id = sp.node_id AND t.service = sp.service)",
    )
    .bind(&services)
    .bind(&names)
    .execute(&mut *conn)
    .await
    .map_err(Error::sql("removing old providers"))?;
    sqlx::query(
        "INSERT INTO service_providers (service, node_id) \
         SELECT t.service, n.id FROM UNNEST($1::text[], $2::text[]) AS t(service, name) \
         JOIN nodes n ON n.name = t.name \
         ON CONFLICT ((md5(service)), node_id) DO NOTHING",
    )
    .bind(&services)
    .bind(&names)
    .execute(conn)
    .await
    .map_err(Error::sql("adding providers"))?;
    Ok(())
}

/// Retires the live edges from or to the given nodes; returns how many.
async fn retire_edges_of(conn: &mut PgConnection, node_ids: &[i64]) -> Result<usize> {
    if node_ids.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query(
        "UPDATE edges SET retired_at = now() \
         WHERE retired_at IS NULL AND (src_id = ANY($1) \
               OR dst_ip IN (SELECT ip FROM addresses WHERE node_id = ANY($1)))",
    )
    .bind(node_ids)
    .execute(conn)
    .await
    .map_err(Error::sql("retiring edges of retired nodes"))?;
    Ok(done.rows_affected() as usize)
}

/// Applies a published-links export: for every container it names, the `cmdb` edges
/// become exactly the listed targets (a link to the container's own address is
/// ignored). An edge that loses its last source is retired. A container the graph does
/// not have (or has retired) refuses the whole export.
#[tracing::instrument(skip_all, fields(links = links.links.len()))]
pub async fn apply_links(conn: &mut PgConnection, links: &LinkSet) -> Result<LinksOutcome> {
    let names: Vec<&str> = links.links.iter().map(|l| l.container.as_str()).collect();
    let ids: HashMap<String, i64> =
        sqlx::query_as("SELECT name, id FROM nodes WHERE retired_at IS NULL AND name = ANY($1)")
            .bind(&names)
            .fetch_all(&mut *conn)
            .await
            .map_err(Error::sql("looking up linked containers"))?
            .into_iter()
            .collect();
    if let Some(missing) = links.links.iter().find(|l| !ids.contains_key(&l.container)) {
        return Err(Error::UnknownContainer { name: missing.container.clone(), origin: missing.origin.clone() });
    }
    let node_ids: Vec<i64> = links.links.iter().map(|l| ids[&l.container]).collect();
    let (srcs, ips): (Vec<i64>, Vec<String>) =
        links.links.iter().flat_map(|l| l.targets.iter().map(|ip| (ids[&l.container], ip.to_string()))).unzip();

    let inserted: Vec<bool> = sqlx::query_scalar(
        "INSERT INTO edges (src_id, dst_ip, sources) \
         SELECT t.src, t.ip::inet, ARRAY['cmdb'] FROM UNNEST($1::bigint[], $2::text[]) AS t(src, ip) \
         WHERE NOT EXISTS (SELECT 1 FROM addresses a \
                           WHERE a.ip = t.ip::inet AND a.node_id = t.src AND a.retired_at IS NULL) \
         ON CONFLICT (src_id, dst_ip) DO UPDATE \
         SET sources = CASE WHEN edges.retired_at IS NOT NULL THEN ARRAY['cmdb'] \
                            WHEN 'cmdb' = ANY(edges.sources) THEN edges.sources \
                            ELSE edges.sources || 'cmdb'::text END, \
             last_seen = now(), retired_at = NULL \
         RETURNING (xmax = 0)",
    )
    .bind(&srcs)
    .bind(&ips)
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::sql("upserting cmdb edges"))?;

    let dropped: Vec<bool> = sqlx::query_scalar(
        "UPDATE edges e SET sources = array_remove(e.sources, 'cmdb'), \
             retired_at = CASE WHEN e.sources = ARRAY['cmdb'] THEN now() ELSE NULL END \
         WHERE e.src_id = ANY($1) AND e.retired_at IS NULL AND 'cmdb' = ANY(e.sources) \
           AND NOT EXISTS (SELECT 1 FROM UNNEST($2::bigint[], $3::text[]) AS t(src, ip) \
                           WHERE t.src = e.src_id AND t.ip::inet = e.dst_ip) \
         RETURNING e.retired_at IS NOT NULL",
    )
    .bind(&node_ids)
    .bind(&srcs)
    .bind(&ips)
    .fetch_all(conn)
    .await
    .map_err(Error::sql("dropping old cmdb links"))?;

    Ok(LinksOutcome {
        containers: links.links.len(),
        links: inserted.len(),
        new_edges: inserted.iter().filter(|new| **new).count(),
        dropped_links: dropped.len(),
        retired_edges: dropped.iter().filter(|r| **r).count(),
    })
}
