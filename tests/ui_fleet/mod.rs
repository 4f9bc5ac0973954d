//! The fleets of the web UI's tests (tests/web_ui*.rs): an agent breaking its node's edges
//! through the agent API, and the hostile-names fleet; fetching pages and reading them.

#![allow(dead_code)]

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use graph_store::testing::TestDb;
use serde_json::{json, Value};

use crate::common::{self, ok};

pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A name as one URL path segment.
pub fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The agent of `node` posts an answered cycle, then three failed ones, all within the
/// last few seconds (after `after`), and its load and nginx rates: its edges go down.
pub async fn break_edges_of(base: &str, db: &TestDb, node: &str, after: DateTime<Utc>) -> usize {
    let token = ok(db, &["agent-token", "create", "--", node]).trim().to_string();
    let http = common::http();
    let targets = common::agent_targets(base, &seg(node), &token).await;
    let targets = targets["targets"].as_array().unwrap().clone();
    assert!(!targets.is_empty(), "{node} has edges to report on");
    // Every cycle stamped after `after` and before now.
    let wait = Duration::from_millis(2500).saturating_sub((Utc::now() - after).to_std().unwrap_or_default());
    tokio::time::sleep(wait).await;
    let cycle = |ms: i64, answered: bool| {
        let at = iso(after + chrono::Duration::milliseconds(ms));
        let results: Vec<Value> = targets
            .iter()
            .map(|t| {
                let outcome = if answered {
                    json!({"sent": 3, "received": 3, "loss_pct": 0.0, "rtt_min_ms": 0.4, "rtt_avg_ms": 0.6, "rtt_max_ms": 0.9, "rtt_sd_ms": 0.1})
                } else {
                    json!({"sent": 3, "received": 0, "loss_pct": 100.0, "error": "timed out"})
                };
                let mut r = json!({"edge_id": t["edge_id"], "at": at, "kind": t["kind"], "outcome": outcome});
                if let Some(port) = t.get("port").filter(|p| !p.is_null()) {
                    r["port"] = port.clone();
                }
                r
            })
            .collect();
        json!({ "results": results })
    };
    for (i, (ms, answered)) in [(300, true), (900, false), (1500, false), (2100, false)].into_iter().enumerate() {
        let mut body = cycle(ms, answered);
        if i == 0 {
            body["local"] = json!({"at": iso(after + chrono::Duration::milliseconds(ms)), "load1": 0.25, "load5": 0.5,
                "load15": 1.0, "nginx": {"interval_s": 60.0, "requests_per_s": 2.0, "errors_per_s": 0.5,
                "by_status": {"200": 1.5, "502": 0.5}}});
        }
        let resp = http
            .post(format!("{base}/api/v1/agents/{}/results", seg(node)))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        assert_eq!(status, 200, "{}", resp.text().await.unwrap());
    }
    targets.len()
}

/// Hostile names: one container per name (tests/common), linked in a ring, the first's
/// agent reporting failures, a report stored.
pub fn hostile_fleet(dir: &std::path::Path) -> (Vec<String>, Vec<std::path::PathBuf>) {
    let names = common::hostile_names();
    let containers: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            json!({"name": n, "host": format!("host:{n}"), "dc": format!("dc:{n}"), "role": format!("{n}:role"),
                   "ips": [format!("127.78.0.{}", i + 1)], "services": [format!("{n}:svc")], "serving": true})
        })
        .collect();
    let services: Vec<Value> =
        names.iter().enumerate().map(|(i, n)| json!({"name": format!("{n}:svc"), "port": 8000 + i})).collect();
    let links: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"container": n, "targets": [format!("127.78.0.{}", (i + 1) % names.len() + 1)]}))
        .collect();
    let inventory = dir.join("inventory.json");
    let links_file = dir.join("links.json");
    std::fs::write(&inventory, json!({"containers": containers, "services": services}).to_string()).unwrap();
    std::fs::write(&links_file, json!({ "links": links }).to_string()).unwrap();
    (names, vec![inventory, links_file])
}

/// `GET`, with the cookie if any: (status, content type, body).
pub async fn page(base: &str, path: &str, cookie: Option<&str>) -> (u16, String, String) {
    let mut req = common::http().get(format!("{base}{path}"));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let kind = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, kind, resp.text().await.unwrap())
}

/// A page that must answer 200 as HTML.
pub async fn html(base: &str, path: &str, cookie: Option<&str>) -> String {
    let (status, kind, body) = page(base, path, cookie).await;
    assert_eq!(status, 200, "{path}: {body}");
    assert!(kind.starts_with("text/html"), "{path}: {kind}");
    body
}

/// The `href` values of `<a>` starting with `prefix`, in page order.
pub fn hrefs(body: &str, prefix: &str) -> Vec<String> {
    let needle = format!("href=\"{prefix}");
    body.match_indices(&needle)
        .map(|(i, _)| {
            let rest = &body[i + 6..];
            rest[..rest.find('"').unwrap()].replace("&amp;", "&")
        })
        .collect()
}

/// The part of `body` inside the element with `id`, up to the next `</section>`.
pub fn section<'a>(body: &'a str, id: &str) -> &'a str {
    let start = body.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in {body}"));
    let rest = &body[start..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}
