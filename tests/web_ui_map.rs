//! The web UI's map on a real `edgewatch serve` over HTTP: the sample fleet's data centers,
//! the one where an agent's failed results broke edges red and the other not; drilling
//! down data center → host → container node page; the edges between data centers; the
//! services and their providers; `?at=` before the break with nothing red, and carried on
//! every map link; a bad `at` as an HTML 400 page; the read token; hostile names as text.

mod common;
mod ui_fleet;

use std::time::Duration;

use chrono::Utc;
use common::{ok, sample, Server};
use graph_store::testing::TestDb;
use ui_fleet::{break_edges_of, hostile_fleet, hrefs, iso, page, section, seg};

/// A page that must answer 200 as HTML.
async fn html(base: &str, path: &str) -> String {
    ui_fleet::html(base, path, None).await
}

/// The `<main>` of `body` without the form that picks the time (its "back to now" link
/// drops the time, as the nav's links do).
fn links_part(body: &str) -> String {
    let body = &body[body.find("<main").unwrap()..];
    let start = body.find("<form class=\"at\"").unwrap_or_else(|| panic!("no time form in {body}"));
    let end = start + body[start..].find("</form>").unwrap();
    format!("{}{}", &body[..start], &body[end..])
}

/// The opening tag of the tile linking to `href`.
fn tile<'a>(body: &'a str, href: &str) -> &'a str {
    let at = body.find(&format!("href=\"{href}\"")).unwrap_or_else(|| panic!("no link to {href} in {body}"));
    let start = body[..at].rfind('<').unwrap();
    &body[start..start + body[start..].find('>').unwrap()]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_map_drills_down_from_data_centers_to_nodes_and_shows_the_past() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    let server = Server::start_with(&db, &[], &["--interval", "10s"], &[]);
    let before = Utc::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let n = break_edges_of(&server.base, &db, "fe1.host101", Utc::now()).await;
    let base = &server.base;

    // The data centers: Tx (fe1.host101's) red, VA not; the matrix has the broken edges.
    let map = html(base, "/ui/map").await;
    assert!(map.contains("<a href=\"/ui/map\">Map</a>"), "the nav links the map");
    let dcs = section(&map, "dcs");
    let tx = tile(dcs, "/ui/map/dc/Tx");
    assert!(tx.contains("class=\"tile dc down\""), "{tx}");
    assert!(tx.contains("title=\"Tx: ") && tx.contains(" down"), "a tooltip with the counts: {tx}");
    let va = tile(dcs, "/ui/map/dc/VA");
    assert!(!va.contains(" down\"") && !va.contains(" degraded\""), "{va}");
    let links = section(&map, "links");
    assert!(links.contains("class=\"cell down\""), "{links}");
    assert!(links.contains(" broken</span>"), "{links}");

    // Tx's hosts: host101 first (the troubled one), red, with its broken edges counted.
    let dc = html(base, &hrefs(dcs, "/ui/map/dc/Tx")[0]).await;
    let hosts = section(&dc, "hosts");
    let first = hrefs(hosts, "/ui/map/host/");
    assert_eq!(first[0], "/ui/map/host/host101", "troubled first: {hosts}");
    let host101 = tile(hosts, "/ui/map/host/host101");
    assert!(host101.contains("class=\"tile host down\""), "{host101}");
    assert!(hosts.matches("class=\"tile host").count() >= 2, "{hosts}");
    assert!(section(&dc, "deps").contains("href=\"/ui/map/dc/"), "{dc}");

    // host101's containers, fe1.host101 with its down edges grouped by host, linking to the node page.
    let host = html(base, "/ui/map/host/host101").await;
    let containers = section(&host, "containers");
    assert!(containers.contains("href=\"/ui/nodes/fe1.host101\""), "{containers}");
    assert!(containers.contains("<article class=\"container down\""), "{containers}");
    assert!(containers.contains("<tr data-state=\"down\"><td>uses</td>"), "{containers}");
    let down: usize = containers
        .split("class=\"state down\">")
        .skip(1)
        .map(|s| s.split(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert!(down >= n, "{n} edges broken, {down} counted down (with the heading's total): {containers}");
    assert!(!hrefs(containers, "/ui/map/host/").is_empty(), "the hosts at the other end link on");
    let node = html(base, &hrefs(containers, "/ui/nodes/fe1.host101")[0]).await;
    assert!(node.contains("<span class=\"name\">fe1.host101</span>"), "{node}");

    // Services → providers: each service links to its providers and consumers.
    let services = html(base, "/ui/map/services").await;
    let svc = hrefs(section(&services, "services"), "/ui/map/services/");
    assert!(!svc.is_empty(), "{services}");
    let one = html(base, &svc[0]).await;
    assert!(section(&one, "providers").contains("href=\"/ui/nodes/"), "{one}");
    section(&one, "consumers");

    // Before the break: nothing red, and the time carried on every map link.
    let at = seg(&iso(before));
    let then = html(base, &format!("/ui/map?at={at}")).await;
    assert!(then.contains("as it was at"), "{then}");
    assert!(!then.contains("class=\"tile dc down\"") && !then.contains("class=\"cell down\""), "{then}");
    let dc_links = hrefs(&then, "/ui/map/dc/");
    assert!(!dc_links.is_empty());
    assert!(then.contains("<a href=\"/ui/map\">back to now</a>"), "{then}");
    for l in hrefs(&links_part(&then), "/ui/map") {
        assert!(l.contains("?at="), "{l} carries the time");
    }
    let tx_then = html(base, &format!("/ui/map/dc/Tx?at={at}")).await;
    assert!(!tx_then.contains(" down\""), "{tx_then}");
    let host_then = html(base, &format!("/ui/map/host/host101?at={at}")).await;
    assert!(host_then.contains("href=\"/ui/nodes/fe1.host101\"") && !host_then.contains("class=\"state down\""));
    for l in hrefs(&links_part(&host_then), "/ui/map") {
        assert!(l.contains("?at="), "{l} carries the time");
    }
    html(base, &format!("/ui/map/services?at={at}")).await;

    // A bad time, unknown places: HTML pages with the status.
    for (path, want) in [
        ("/ui/map?at=yesterday", 400),
        ("/ui/map/dc/Tx?at=2026-13-45", 400),
        ("/ui/map/host/host101?at=noon", 400),
        ("/ui/map/services?at=%00", 400),
        ("/ui/map/dc/no-such-dc", 404),
        ("/ui/map/host/no-such-host", 404),
        ("/ui/map/services/no-such-service", 404),
    ] {
        let (status, kind, body) = page(base, path, None).await;
        assert_eq!(status, want, "{path}: {body}");
        assert!(kind.starts_with("text/html"), "{path}: {kind}");
        assert!(body.contains("<p class=\"error\">"), "{path}: {body}");
    }
    let (_, _, body) = page(base, "/ui/map?at=yesterday", None).await;
    assert!(body.contains("RFC 3339"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_read_token_the_map_asks_for_it() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgewatch.toml");
    std::fs::write(&config, "[api]\nread_token = \"s3cret-map\"\n").unwrap();
    let server = Server::start(&db, &["--config", config.to_str().unwrap()], &[]);
    let base = &server.base;
    let pages = ["/ui/map", "/ui/map/dc/Tx", "/ui/map/host/host101", "/ui/map/services", "/ui/map?at=yesterday"];
    for path in pages {
        let (status, kind, body) = page(base, path, None).await;
        assert_eq!(status, 401, "{path}");
        assert!(kind.starts_with("text/html"), "{path}");
        assert!(body.contains("action=\"/ui/login\""), "{path}: {body}");
        for data in ["fe1.host101", "host102", "class=\"tile"] {
            assert!(!body.contains(data), "{path}: {data} in {body}");
        }
    }
    for path in &pages[..4] {
        let resp = common::http().get(format!("{base}{path}")).bearer_auth("s3cret-map").send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert!(resp.text().await.unwrap().contains("class=\"tile") || path.contains("host101"), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_names_are_text_on_the_map() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (names, files) = hostile_fleet(dir.path());
    ok(&db, &["cmdb", "import", common::path_str(&files[0]), common::path_str(&files[1])]);
    let server = Server::start_with(&db, &[], &["--interval", "10s"], &[]);
    let base = &server.base;
    break_edges_of(base, &db, &names[0], Utc::now()).await;

    let map = html(base, "/ui/map").await;
    let mut paths = vec!["/ui/map".to_string(), "/ui/map/services".to_string()];
    paths.extend(hrefs(section(&map, "dcs"), "/ui/map/dc/"));
    assert_eq!(paths.len(), 2 + names.len(), "one data center per name");
    let mut bodies = vec![];
    for path in &paths {
        bodies.push((path.clone(), html(base, path).await));
    }
    for n in &names {
        let escaped = maud::html! { (n) }.into_string();
        for (what, path) in [
            ("dc", format!("/ui/map/dc/{}", seg(&format!("dc:{n}")))),
            ("host", format!("/ui/map/host/{}", seg(&format!("host:{n}")))),
            ("service", format!("/ui/map/services/{}", seg(&format!("{n}:svc")))),
        ] {
            let body = html(base, &path).await;
            let name = match what {
                "dc" => format!("dc:{escaped}"),
                "host" => format!("host:{escaped}"),
                _ => format!("{escaped}:svc"),
            };
            assert!(body.contains(&format!("<span class=\"name\">{name}</span>")), "{what} {n:?}: {body}");
            if what == "host" {
                assert!(body.contains(&format!("href=\"/ui/nodes/{}\"", seg(n))), "{n:?}: {body}");
            }
            bodies.push((path, body));
        }
    }
    assert!(bodies[0].1.contains("dc:&lt;script&gt;alert(1)&lt;/script&gt;"), "the name shown, escaped");
    for (path, body) in &bodies {
        for raw in ["<script>alert", "<img src=x", "onerror=alert(1)>", "\"quoted\""] {
            assert!(!body.contains(raw), "{path}: {raw:?} unescaped");
        }
        assert_eq!(body.matches("<script").count(), body.matches("<script src=\"/ui/assets/ui.js\"").count(), "{path}");
        assert!(!body.contains(" style="), "{path}: no inline style");
    }
}
