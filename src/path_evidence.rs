//! An incident's path evidence in words, for `incidents` and the Nagios long output:
//! "path h1 → h2 changed at 16:14, first different hop 4: 52.93.1.1 (AWS) → 52.93.128.156
//! (AWS); loss 30 % from hop 5 (198.51.100.1, ISP) since 16:15". Pure, given the labels;
//! [`labels`] looks up the AS rows of the addresses.

use std::net::IpAddr;

use graph_store::diagnosis::Incident;
use graph_store::format_utc;
use graph_store::paths::{Owners, PathEvidence};
use graph_store::PgPool;

use crate::labels::Labels;

fn addrs(a: &[String], labels: &Labels) -> String {
    if a.is_empty() {
        return "*".into();
    }
    a.iter()
        .map(|s| match s.parse::<IpAddr>() {
            Ok(ip) => {
                let v = labels.addr(ip);
                format!("{} ({})", v.ip, v.whose())
            }
            Err(_) => s.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One pair's evidence as one line.
pub fn line(e: &PathEvidence, labels: &Labels) -> String {
    let mut parts = Vec::new();
    if let (Some(at), Some(ttl)) = (e.changed_at, e.changed_ttl) {
        parts.push(format!(
            "changed at {}, first different hop {ttl}: {} → {}",
            format_utc(&at),
            addrs(&e.old_addrs, labels),
            addrs(&e.new_addrs, labels)
        ));
    }
    if let Some(ttl) = e.loss_ttl {
        let pct = e.loss_pct.map(|p| format!("{p:.0}% ")).unwrap_or_default();
        let since = e.loss_since.map(|t| format!(" since {}", format_utc(&t))).unwrap_or_default();
        parts.push(format!("loss {pct}from hop {ttl} ({}){since}", addrs(&e.loss_addrs, labels)));
    }
    format!("path {} → {} {}", e.src, e.dst, parts.join("; "))
}

/// Labels for every address the incidents' path evidence shows.
pub async fn labels(pool: &PgPool, owners: Owners, incidents: &[Incident]) -> Labels {
    let ips: Vec<IpAddr> = incidents
        .iter()
        .flat_map(|i| &i.paths)
        .flat_map(|e| e.old_addrs.iter().chain(&e.new_addrs).chain(&e.loss_addrs))
        .filter_map(|a| a.parse().ok())
        .collect();
    // Without the AS rows the lines still name the owners: not worth failing an answer.
    let asn = graph_store::paths::lookup_asns(pool, &ips).await.unwrap_or_default();
    Labels::new(owners, asn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_and_open_loss_in_one_line() {
        let e = PathEvidence {
            src: "h1".into(),
            dst: "h2".into(),
            changed_at: Some("2026-12-05T16:14:00Z".parse().unwrap()),
            changed_ttl: Some(4),
            old_addrs: vec!["52.93.1.1".into()],
            new_addrs: vec!["52.93.128.156".into()],
            loss_ttl: Some(5),
            loss_since: Some("2026-12-05T16:15:00Z".parse().unwrap()),
            loss_addrs: vec!["198.51.100.1".into()],
            loss_pct: Some(30.4),
        };
        let owners = Owners::new([("52.93.0.0/16", "AWS"), ("198.51.100.0/24", "ISP")]).unwrap();
        assert_eq!(
            line(&e, &Labels::new(owners, Default::default())),
            "path h1 → h2 changed at 2026-12-05T16:14:00Z, first different hop 4: 52.93.1.1 (AWS) → 52.93.128.156 \
             (AWS); loss 30% from hop 5 (198.51.100.1 (ISP)) since 2026-12-05T16:15:00Z"
        );
        let only_loss = PathEvidence { changed_at: None, changed_ttl: None, loss_addrs: vec![], ..e };
        assert_eq!(
            line(&only_loss, &Labels::default()),
            "path h1 → h2 loss 30% from hop 5 (*) since 2026-12-05T16:15:00Z"
        );
    }
}
