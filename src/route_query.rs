//! The route questions, loaded: a pair named the way operators name things, its windows
//! from the store, compared, with whose network every hop is in. The CLI (`edgewatch
//! route`) and the API (`/api/v1/routes/…`) both ask here, so they answer alike.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use graph_store::paths::{self, DiffRules, EventFilter, LossConfig, Owners, PairInfo, RouteEventView, Window};
use graph_store::PgPool;

use crate::labels::Labels;
use crate::route_view::{Comparison, RouteDiff, RouteShow, WindowView};

/// Why a route question has no answer.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error(
        "no traced path from {src:?} to {dst:?}: paths are traced host to host where a live edge joins two hosts \
         (name either end by node, host, address, or external target name; `edgewatch route changes` lists \
         the pairs with events)"
    )]
    NoPair { src: String, dst: String },
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] graph_store::Error),
}

/// The most windows `route diff` compares at once.
pub const MAX_WINDOWS: usize = 12;

/// The live (else most recently traced) pair from `src` to `dst`.
pub async fn resolve(pool: &PgPool, src: &str, dst: &str) -> Result<PairInfo, RouteError> {
    paths::find_pairs(pool, src, dst)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| RouteError::NoPair { src: src.to_owned(), dst: dst.to_owned() })
}

/// The pair's runs over `[from, from + width)`, aggregated.
pub async fn window(
    pool: &PgPool,
    pair: &PairInfo,
    from: DateTime<Utc>,
    width: Duration,
) -> Result<Window, RouteError> {
    let to = from + chrono::Duration::from_std(width).map_err(|_| RouteError::BadRequest("window too long".into()))?;
    let runs = paths::runs_between(pool, pair.id, from, to).await?;
    Ok(paths::summarize(from, to, &runs, LossConfig::default().min_pct))
}

/// Labels for every address of `windows`: the owners and the imported ASN rows.
pub async fn labels(
    pool: &PgPool,
    owners: &Owners,
    ips: impl IntoIterator<Item = IpAddr>,
) -> Result<Labels, RouteError> {
    let ips: BTreeSet<IpAddr> = ips.into_iter().collect();
    let asn = asn_rows(pool, &ips.into_iter().collect::<Vec<_>>()).await?;
    Ok(Labels::new(owners.clone(), asn))
}

async fn asn_rows(
    pool: &PgPool,
    ips: &[IpAddr],
) -> Result<HashMap<IpAddr, graph_store::paths::AsnInfo>, graph_store::Error> {
    paths::lookup_asns(pool, ips).await
}

fn window_ips(w: &Window) -> impl Iterator<Item = IpAddr> + '_ {
    w.hops.iter().flat_map(|h| h.addrs.iter().map(|(ip, _)| *ip))
}

/// Where a window starts: at `at`, or `width` before now.
pub fn window_start(at: Option<DateTime<Utc>>, width: Duration, now: DateTime<Utc>) -> DateTime<Utc> {
    at.unwrap_or_else(|| now - chrono::Duration::from_std(width).unwrap_or_default())
}

/// `route show SRC DST [--at T] [--window W]`.
pub async fn show(
    pool: &PgPool,
    owners: &Owners,
    src: &str,
    dst: &str,
    at: Option<DateTime<Utc>>,
    width: Duration,
) -> Result<RouteShow, RouteError> {
    let pair = resolve(pool, src, dst).await?;
    let w = window(pool, &pair, window_start(at, width, Utc::now()), width).await?;
    let ips: Vec<IpAddr> = window_ips(&w).collect();
    let labels = labels(pool, owners, ips).await?;
    Ok(RouteShow { window: WindowView::new(&w, &labels), pair })
}

/// `route diff SRC DST --at T1 --at T2 …`: each window compared with the one before.
pub async fn diff(
    pool: &PgPool,
    owners: &Owners,
    src: &str,
    dst: &str,
    starts: &[DateTime<Utc>],
    width: Duration,
    rules: &DiffRules,
) -> Result<RouteDiff, RouteError> {
    if starts.len() < 2 || starts.len() > MAX_WINDOWS {
        return Err(RouteError::BadRequest(format!(
            "route diff compares 2 to {MAX_WINDOWS} windows (got {}): give --from and --to, or --at more than once",
            starts.len()
        )));
    }
    let pair = resolve(pool, src, dst).await?;
    let mut windows = Vec::with_capacity(starts.len());
    for &from in starts {
        windows.push(window(pool, &pair, from, width).await?);
    }
    let ips: Vec<IpAddr> = windows.iter().flat_map(window_ips).collect();
    let labels = labels(pool, owners, ips).await?;
    let comparisons = (1..windows.len())
        .map(|i| Comparison::new(i - 1, i, &paths::diff(&windows[i - 1], &windows[i], rules), &labels))
        .collect();
    Ok(RouteDiff { pair, windows: windows.iter().map(|w| WindowView::new(w, &labels)).collect(), comparisons })
}

/// `route changes`: the events and labels for their addresses.
pub async fn changes(
    pool: &PgPool,
    owners: &Owners,
    filter: &EventFilter,
) -> Result<(Vec<RouteEventView>, Labels), RouteError> {
    if filter.dcs.len() > 2 {
        return Err(RouteError::BadRequest(format!(
            "at most two data centers (one: pairs from or to it; two: pairs between them), got {}",
            filter.dcs.len()
        )));
    }
    let events = paths::events(pool, filter).await?;
    let ips: Vec<IpAddr> =
        events.iter().flat_map(|e| e.old_addrs.iter().chain(&e.new_addrs)).filter_map(|a| a.parse().ok()).collect();
    let labels = labels(pool, owners, ips).await?;
    Ok((events, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_without_a_time_ends_now() {
        let now: DateTime<Utc> = "2026-12-05T16:30:00Z".parse().unwrap();
        let five = Duration::from_secs(300);
        assert_eq!(window_start(None, five, now), "2026-12-05T16:25:00Z".parse::<DateTime<Utc>>().unwrap());
        let at: DateTime<Utc> = "2026-12-05T16:00:00Z".parse().unwrap();
        assert_eq!(window_start(Some(at), five, now), at);
    }
}
