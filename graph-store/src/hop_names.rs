//! The fleet's own names for hop addresses: which live node (and host) holds an address a
//! trace passed, for the web UI's route pages. Routers outside the inventory have none.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::error::{Error, Result};
use crate::PgPool;

/// A node holding a hop address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopName {
    pub node: String,
    pub host: String,
}

/// The live node holding each of `ips` that the inventory knows (the others are absent).
pub async fn of(pool: &PgPool, ips: &[IpAddr]) -> Result<HashMap<IpAddr, HopName>> {
    if ips.is_empty() {
        return Ok(HashMap::new());
    }
    let asked: Vec<String> = ips.iter().map(|ip| ip.to_canonical().to_string()).collect();
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT q.i, n.name, n.host \
         FROM unnest($1::inet[]) WITH ORDINALITY AS q(ip, i) \
         JOIN addresses a ON a.ip = q.ip AND a.retired_at IS NULL \
         JOIN nodes n ON n.id = a.node_id AND n.retired_at IS NULL",
    )
    .bind(&asked)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("naming hop addresses"))?;
    let named = rows.into_iter().filter_map(|(i, node, host)| {
        let ip = *ips.get(usize::try_from(i).ok()?.checked_sub(1)?)?;
        Some((ip, HopName { node, host }))
    });
    Ok(named.collect())
}
