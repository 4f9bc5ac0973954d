//! The web UI of a real `edgewatch serve` over HTTP: the overview with the incident and the
//! broken edge an agent's failed results made, linking on to the node and edge pages; the
//! edge's chart with points; `?at=` before the break; the stored reports; the read token
//! asked once and kept in a cookie with the right flags; hostile CMDB names shown as text
//! in every page.

mod common;
mod tls_ca;
mod ui_fleet;

use std::time::Duration;

use chrono::Utc;
use common::{ok, sample, Server};
use graph_store::testing::TestDb;
use ui_fleet::{break_edges_of, hostile_fleet, hrefs, html, iso, page, section, seg};

#[tokio::test(flavor = "multi_thread")]
async fn the_overview_shows_the_break_and_links_to_the_node_and_edge_pages() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    let server = Server::start_with(&db, &[], &["--interval", "10s"], &[]);
    let before = Utc::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let n = break_edges_of(&server.base, &db, "fe1.host101", Utc::now()).await;
    let base = &server.base;

    // The overview: counts, the incident, the broken edges, links onward.
    let overview = html(base, "/", None).await;
    assert!(overview.contains("<script src=\"/ui/assets/ui.js\""), "the refresh script is there");
    assert!(overview.contains("data-refresh=\"/ui/overview?fragment=1\""));
    let counts = section(&overview, "counts");
    assert!(counts.contains("data-state=\"down\""), "{counts}");
    let incidents = section(&overview, "incidents");
    assert!(incidents.contains("<article class=\"incident\">"), "an incident: {incidents}");
    assert!(incidents.contains("class=\"culprit\""), "{incidents}");
    assert!(incidents.contains("class=\"evidence\""), "{incidents}");
    let broken = section(&overview, "broken");
    let rows = broken.matches("<tr class=\"broken-edge\"").count();
    assert!(rows >= n, "{n} edges of fe1.host101 down, {rows} rows: {broken}");
    assert!(broken.contains("href=\"/ui/nodes/fe1.host101\""), "{broken}");
    let edges = hrefs(broken, "/ui/edges/");
    assert!(edges.len() >= n, "{edges:?}");

    // The fragment the script fetches is the <main> alone.
    let fragment = html(base, "/ui/overview?fragment=1", None).await;
    assert!(fragment.starts_with("<main id=\"main\"") && !fragment.contains("<html"), "{fragment}");
    assert!(fragment.contains("broken-edge"));

    // The node page.
    let node = html(base, &hrefs(broken, "/ui/nodes/fe1.host101")[0], None).await;
    for part in ["deps", "dependents", "blast", "edges", "agent"] {
        section(&node, part);
    }
    assert!(section(&node, "deps").contains("href=\"/ui/nodes/"), "fe1 depends on something");
    let node_edges = section(&node, "edges");
    assert!(node_edges.matches("data-state=\"down\"").count() >= n, "{node_edges}");
    assert!(node_edges.contains("<time datetime="), "since when: {node_edges}");
    let agent = section(&node, "agent");
    assert!(agent.contains("0.25") && agent.contains("2.00") && agent.contains("502"), "{agent}");

    // The edge page: state, events, a chart with points.
    let edge = html(base, &edges[0], None).await;
    assert!(section(&edge, "health").contains("class=\"state down\""), "{edge}");
    let events = section(&edge, "events");
    assert!(events.contains("down"), "{events}");
    let chart = section(&edge, "chart");
    let points: usize = chart
        .split("data-points=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{chart}"));
    assert!(points >= 1, "{chart}");
    assert!(chart.matches("<circle class=\"pt loss\"").count() >= 1, "{chart}");
    assert!(chart.contains("<polyline class=\"loss\" points=\""), "{chart}");

    // Before the break: no broken edge.
    let then = html(base, &format!("/?at={}", seg(&iso(before))), None).await;
    assert!(section(&then, "broken").contains("None."), "{}", section(&then, "broken"));
    assert_eq!(then.matches("broken-edge").count(), 0);
    assert!(!then.contains("data-refresh"), "the past is not refreshed");
    let (status, _, body) = page(base, "/?at=yesterday", None).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("RFC 3339"), "{body}");

    // Unknown things are 404 pages.
    for path in ["/ui/nodes/no.such.node", "/ui/edges/999999999", "/ui/reports/2001-01-01"] {
        let (status, kind, body) = page(base, path, None).await;
        assert_eq!((status, kind.starts_with("text/html")), (404, true), "{path}: {body}");
    }

    // Reports: one stored, listed, opened.
    ok(&db, &["report", "--format", "html", "--tz", "UTC"]);
    let day = (Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    let list = html(base, "/ui/reports", None).await;
    let opened = hrefs(&list, &format!("/ui/reports/{day}"));
    assert!(!opened.is_empty(), "{list}");
    let report = html(base, &opened[0], None).await;
    let frame = hrefs(&report, &format!("/ui/reports/{day}/html"));
    assert!(!frame.is_empty() && report.contains("<iframe"), "{report}");
    let resp = common::get(format!("{base}{}", frame[0])).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-security-policy"].to_str().unwrap().starts_with("sandbox"));
    assert!(resp.text().await.unwrap().contains("Dependency report"));

    // The assets.
    for (path, kind) in [("/ui/assets/ui.css", "text/css"), ("/ui/assets/ui.js", "text/javascript")] {
        let (status, got, _) = page(base, path, None).await;
        assert_eq!(status, 200, "{path}");
        assert!(got.starts_with(kind), "{path}: {got}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_read_token_every_page_asks_for_it_once_and_keeps_it_in_a_cookie() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(&db, &["report", "--format", "html", "--tz", "UTC"]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgewatch.toml");
    std::fs::write(&config, "[api]\nread_token = \"s3cret-ui\"\n").unwrap();
    let server = Server::start(&db, &["--config", config.to_str().unwrap()], &[]);
    let base = &server.base;
    let day = (Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    let pages = [
        "/".to_string(),
        "/ui/overview?fragment=1".into(),
        "/ui/nodes/fe1.host101".into(),
        "/ui/edges/1".into(),
        "/ui/reports".into(),
        format!("/ui/reports/{day}"),
        format!("/ui/reports/{day}/html"),
    ];
    // Without it: the login form, 401, and no data.
    for path in &pages {
        let (status, kind, body) = page(base, path, None).await;
        assert_eq!(status, 401, "{path}");
        assert!(kind.starts_with("text/html"), "{path}");
        assert!(body.contains("action=\"/ui/login\"") && body.contains("name=\"token\""), "{path}: {body}");
        for data in ["<table", "id=\"deps\"", "host102", "Dependency report"] {
            assert!(!body.contains(data), "{path}: {data} in {body}");
        }
    }
    let wrong_cookie = "edgewatch_read=0000";
    assert_eq!(page(base, "/", Some(wrong_cookie)).await.0, 401);
    // The assets carry no data: served without it.
    assert_eq!(page(base, "/ui/assets/ui.js", None).await.0, 200);
    assert_eq!(page(base, "/ui/assets/ui.css", None).await.0, 200);

    common::http(); // installs the TLS provider reqwest is built without
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = |token: &str, next: &str| {
        http.post(format!("{base}/ui/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={}&next={}", seg(token), seg(next)))
            .send()
    };
    let wrong = login("not-it", "/").await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    assert!(wrong.text().await.unwrap().contains("not this server"));

    let right = login("s3cret-ui", "/ui/nodes/fe1.host101").await.unwrap();
    assert_eq!(right.status(), 303);
    assert_eq!(right.headers()["location"], "/ui/nodes/fe1.host101");
    let set = right.headers()["set-cookie"].to_str().unwrap().to_string();
    let attrs: Vec<&str> = set.split(';').map(str::trim).collect();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attrs.contains(&flag), "{flag}: {set}");
    }
    assert!(!attrs.contains(&"Secure"), "no Secure over plain HTTP: {set}");
    assert!(!set.contains("s3cret-ui"), "the cookie is not the token: {set}");
    let cookie = attrs[0].to_string();
    assert!(cookie.starts_with("edgewatch_read="), "{set}");
    // An open redirect is not followed.
    let away = login("s3cret-ui", "//evil.example/").await.unwrap();
    assert_eq!(away.headers()["location"], "/");

    // With the cookie: every page, and the API's questions too.
    for path in &pages {
        let (status, _, body) = page(base, path, Some(&cookie)).await;
        let want = if path == "/ui/edges/1" { [200, 404] } else { [200, 200] };
        assert!(want.contains(&status), "{path}: {status} {body}");
        assert!(!body.contains("action=\"/ui/login\""), "{path}");
    }
    assert!(html(base, "/ui/nodes/fe1.host101", Some(&cookie)).await.contains("fe1.host101"));
    let api = common::http().get(format!("{base}/api/v1/nodes")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(api.status(), 200);
    // The Bearer header works for pages as for the API.
    let bearer = common::http().get(format!("{base}/ui/reports")).bearer_auth("s3cret-ui").send().await.unwrap();
    assert_eq!(bearer.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_names_are_text_in_every_page() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (names, files) = hostile_fleet(dir.path());
    ok(&db, &["cmdb", "import", common::path_str(&files[0]), common::path_str(&files[1])]);
    ok(&db, &["report", "--format", "html", "--tz", "UTC"]);
    let server = Server::start_with(&db, &[], &["--interval", "10s"], &[]);
    let base = &server.base;
    // Every consumer's edges broken, so every name is in the overview.
    for n in &names {
        break_edges_of(base, &db, n, Utc::now()).await;
    }

    let mut bodies = vec![("/".to_string(), html(base, "/", None).await)];
    let overview = &bodies[0].1;
    assert!(overview.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the name is shown, escaped");
    let edge_pages = hrefs(overview, "/ui/edges/");
    assert!(!edge_pages.is_empty());
    let mut paths: Vec<String> = names.iter().map(|n| format!("/ui/nodes/{}", seg(n))).collect();
    paths.extend(edge_pages);
    paths.extend(["/ui/overview?fragment=1".to_string(), "/ui/reports".into()]);
    let list = html(base, "/ui/reports", None).await;
    paths.extend(hrefs(&list, "/ui/reports/2"));
    for path in paths {
        let body = html(base, &path, None).await;
        bodies.push((path, body));
    }
    // Each name's node page says its name.
    for n in &names {
        let (_, body) = bodies.iter().find(|(p, _)| *p == format!("/ui/nodes/{}", seg(n))).unwrap();
        let escaped = maud::html! { (n) }.into_string();
        assert!(body.contains(&format!("<span class=\"name\">{escaped}</span>")), "{n:?}");
    }
    for (path, body) in &bodies {
        for raw in ["<script>alert", "<img src=x", "onerror=alert(1)>", "\"quoted\""] {
            assert!(!body.contains(raw), "{path}: {raw:?} unescaped");
        }
        // The only scripts are ours.
        assert_eq!(body.matches("<script").count(), body.matches("<script src=\"/ui/assets/ui.js\"").count(), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn over_tls_the_cookie_is_secure() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgewatch.toml");
    std::fs::write(&config, "[api]\nread_token = \"s3cret-tls\"\n").unwrap();
    let ca = tls_ca::TestCa::new(dir.path(), "ca");
    let (cert, key) = ca.server(dir.path(), "server", &["localhost", "127.0.0.1"]);
    let serve = ["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()];
    let server = Server::start_with(&db, &["--config", config.to_str().unwrap()], &serve, &[]);
    assert!(server.base.starts_with("https://"), "{}", server.base);
    common::http(); // installs the TLS provider
    let tls = probers::tls::client_config(&probers::tls::Roots::Bundle(ca.cert.clone())).unwrap();
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let none = http.get(format!("{}/", server.base)).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let login = http
        .post(format!("{}/ui/login", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=s3cret-tls&next=%2F")
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let set = login.headers()["set-cookie"].to_str().unwrap().to_string();
    let attrs: Vec<&str> = set.split(';').map(str::trim).collect();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
        assert!(attrs.contains(&flag), "{flag}: {set}");
    }
    let page = http.get(format!("{}/", server.base)).header("cookie", attrs[0]).send().await.unwrap();
    assert_eq!(page.status(), 200);
}
