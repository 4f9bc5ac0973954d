//! The path evidence of an incident: for the host pairs of its broken edges, the route
//! change shortly before or during it (first diverging hop, old and new addresses) and
//! loss that is open now (the hop it starts from), from the route events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::PgPool;
use crate::{Error, Result};

/// What the traces of one host pair say about an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PathEvidence {
    /// The source host.
    pub src: String,
    /// The destination host.
    pub dst: String,
    /// The path changed then (the first run of the new path; the first change from shortly
    /// before the incident began) …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<DateTime<Utc>>,
    /// … first differing at this TTL, from these addresses to those.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_ttl: Option<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub old_addrs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_addrs: Vec<String>,
    /// Loss persists from this TTL to the destination, since then, at about this percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_ttl: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_since: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loss_addrs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_pct: Option<f32>,
}

/// A broken edge of incident `incident`: its consumer node, destination address, and
/// since when the incident is open.
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceRef {
    pub incident: usize,
    pub src_node: String,
    pub dst_ip: String,
    pub since: DateTime<Utc>,
}

/// Per incident (by index), the evidence of its host pairs that have any: the first route
/// change from `lookback` before the incident's start on (the one that came with it, not
/// a later one back), or loss open now. Newest change first.
pub async fn evidence(
    pool: &PgPool,
    refs: &[EvidenceRef],
    lookback: std::time::Duration,
) -> Result<Vec<(usize, PathEvidence)>> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "WITH refs AS (SELECT * FROM UNNEST($1::int[], $2::text[], $3::text[], $4::timestamptz[]) \
                       AS t(i, src, dst_ip, since)), \
              pairs AS ( \
                  SELECT r.i, min(r.since) AS since, p.id, p.src, p.dst FROM refs r \
                  JOIN nodes s ON s.name = r.src \
                  JOIN addresses a ON a.ip = r.dst_ip::inet AND a.retired_at IS NULL \
                  JOIN nodes d ON d.id = a.node_id \
                  JOIN trace_pairs p ON p.src = s.host AND p.dst = d.host \
                  GROUP BY r.i, p.id, p.src, p.dst) \
         SELECT pr.i, pr.src, pr.dst, ch.at AS changed_at, ch.ttl AS changed_ttl, ch.old_addrs, ch.new_addrs, \
                lo.kind AS loss_kind, lo.at AS loss_at, lo.ttl AS loss_ttl, lo.new_addrs AS loss_addrs, \
                lo.loss_after_pct \
         FROM pairs pr \
         LEFT JOIN LATERAL (SELECT at, ttl, old_addrs, new_addrs FROM route_events e \
                            WHERE e.pair_id = pr.id AND e.kind = 'changed' \
                              AND e.at >= pr.since - make_interval(secs => $5) \
                            ORDER BY e.at LIMIT 1) ch ON true \
         LEFT JOIN LATERAL (SELECT kind, at, ttl, new_addrs, loss_after_pct FROM route_events e \
                            WHERE e.pair_id = pr.id AND e.kind IN ('loss-started', 'loss-moved', 'loss-cleared') \
                            ORDER BY e.at DESC, e.id DESC LIMIT 1) lo ON true \
         WHERE ch.at IS NOT NULL OR lo.kind IN ('loss-started', 'loss-moved') \
         ORDER BY pr.i, ch.at DESC NULLS LAST, pr.src, pr.dst",
    )
    .bind(refs.iter().map(|r| r.incident as i32).collect::<Vec<_>>())
    .bind(refs.iter().map(|r| r.src_node.as_str()).collect::<Vec<_>>())
    .bind(refs.iter().map(|r| r.dst_ip.as_str()).collect::<Vec<_>>())
    .bind(refs.iter().map(|r| r.since).collect::<Vec<_>>())
    .bind(lookback.as_secs_f64())
    .fetch_all(pool)
    .await
    .map_err(Error::sql("reading the path evidence of incidents"))?;
    let split = |s: Option<String>| -> Vec<String> {
        s.filter(|s| !s.is_empty()).map(|s| s.split(',').map(str::to_owned).collect()).unwrap_or_default()
    };
    let ttl = |v: Option<i16>| v.and_then(|t| u8::try_from(t).ok());
    Ok(rows
        .into_iter()
        .map(|r| {
            let open =
                matches!(r.get::<Option<String>, _>("loss_kind").as_deref(), Some("loss-started" | "loss-moved"));
            let e = PathEvidence {
                src: r.get("src"),
                dst: r.get("dst"),
                changed_at: r.get("changed_at"),
                changed_ttl: ttl(r.get("changed_ttl")),
                old_addrs: split(r.get("old_addrs")),
                new_addrs: split(r.get("new_addrs")),
                loss_ttl: if open { ttl(r.get("loss_ttl")) } else { None },
                loss_since: if open { r.get("loss_at") } else { None },
                loss_addrs: if open { split(r.get("loss_addrs")) } else { Vec::new() },
                loss_pct: if open { r.get("loss_after_pct") } else { None },
            };
            (r.get::<i32, _>("i") as usize, e)
        })
        .collect())
}
