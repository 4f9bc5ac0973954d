//! The web UI in real headless Chromium (Debian's `chromium` through `chromedriver`, from
//! `chromium-driver`; `scripts/install-deps.sh report` installs both), on a real `serve`:
//! the overview shows the incident and the broken edges and refreshes itself in place;
//! clicking through to the node and the edge works; the chart has points; `?at=` before
//! the break shows no broken edge; hostile names are text (no alert, no element made from
//! them); no console error anywhere. Screenshots go to `target/ui-screenshots/`.
//! Skipped, saying why, when chromedriver is not installed.

mod common;
mod ui_browser;
mod ui_fleet;

use std::time::Duration;

use chrono::Utc;
use common::{ok, sample, Server};
use fantoccini::{Client, Locator};
use graph_store::testing::TestDb;
use serde_json::json;
use ui_browser::{count, shot, shots, Driver};
use ui_fleet::{break_edges_of, hostile_fleet, iso, seg};

async fn no_alert(c: &Client, at: &str) {
    assert!(c.get_alert_text().await.is_err(), "{at}: an alert is open: a script ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn click_through_the_ui_in_headless_chromium() {
    let Some(chromedriver) = common::tool("chromedriver", "chromium-driver") else { return };
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    let server = Server::start_with(&db, &[], &["--interval", "10s"], &[]);
    let before = Utc::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    break_edges_of(&server.base, &db, "fe1.host101", Utc::now()).await;
    let driver = Driver::start(&chromedriver).await;
    let c = driver.browser().await;
    let base = &server.base;

    // The overview: the incident, the broken edges; then its refresh, in place.
    c.goto(&format!("{base}/")).await.unwrap();
    c.wait().for_element(Locator::Css("tr.broken-edge")).await.unwrap();
    assert!(count(&c, "article.incident").await >= 1);
    assert!(count(&c, "tr.broken-edge").await >= 4);
    shot(&c, "overview.png").await;
    c.execute("window.__kept = 'no reload'; return null;", vec![]).await.unwrap();
    c.wait()
        .at_most(Duration::from_secs(25))
        .for_element(Locator::XPath("//span[@id='status'][starts-with(., 'updated')]"))
        .await
        .expect("the overview refreshed itself within 25 s");
    let kept = c.execute("return window.__kept;", vec![]).await.unwrap();
    assert_eq!(kept, json!("no reload"), "the refresh swapped <main> without a reload");
    assert!(count(&c, "tr.broken-edge").await >= 4, "the refreshed overview has the broken edges");

    // Click through to the node…
    c.find(Locator::Css("tr.broken-edge a.node[href='/ui/nodes/fe1.host101']")).await.unwrap().click().await.unwrap();
    let h1 = c.wait().for_element(Locator::Css("h1")).await.unwrap();
    assert_eq!(h1.text().await.unwrap(), "Node fe1.host101");
    assert!(c.current_url().await.unwrap().path().ends_with("/ui/nodes/fe1.host101"));
    assert!(count(&c, "#edges tr[data-state='down']").await >= 4);
    assert!(count(&c, "#deps a.node").await >= 1);
    shot(&c, "node.png").await;

    // …and on to an edge: its chart has points.
    c.find(Locator::Css("#edges tr[data-state='down'] a.edge")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("svg.chart")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().starts_with("/ui/edges/"));
    assert!(count(&c, "svg.chart circle.pt").await >= 1, "the chart has points");
    assert!(count(&c, "#events tr").await >= 2, "a header and a state change");
    shot(&c, "edge.png").await;

    // Before the break: no broken edge.
    c.goto(&format!("{base}/?at={}", seg(&iso(before)))).await.unwrap();
    c.wait().for_element(Locator::Css("#broken")).await.unwrap();
    assert_eq!(count(&c, "tr.broken-edge").await, 0);
    shot(&c, "overview-before-the-break.png").await;

    let errors = driver.console_errors(&c).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    c.close().await.unwrap();

    // Hostile names: shown as text, nothing made of them runs.
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (names, files) = hostile_fleet(dir.path());
    ok(&db, &["cmdb", "import", common::path_str(&files[0]), common::path_str(&files[1])]);
    let server = Server::start_with(&db, &[], &["--interval", "10s"], &[]);
    let script = &names[0];
    assert_eq!(script, "<script>alert(1)</script>");
    break_edges_of(&server.base, &db, script, Utc::now()).await;
    let c = driver.browser().await;
    c.goto(&format!("{}/", server.base)).await.unwrap();
    c.wait().for_element(Locator::Css("tr.broken-edge")).await.unwrap();
    no_alert(&c, "overview").await;
    let dom = c
        .execute(
            "return [document.scripts.length, document.images.length, document.querySelectorAll('[onerror]').length, \
             document.body.textContent.includes('<script>alert(1)</script>')];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(dom, json!([1, 0, 0, true]), "only our script; the name is text");
    shot(&c, "hostile-overview.png").await;
    c.find(Locator::Css("tr.broken-edge a.node")).await.unwrap().click().await.unwrap();
    let h1 = c.wait().for_element(Locator::Css("h1 .name")).await.unwrap();
    assert_eq!(&h1.text().await.unwrap(), script);
    no_alert(&c, "node").await;
    shot(&c, "hostile-node.png").await;
    for n in &names {
        c.goto(&format!("{}/ui/nodes/{}", server.base, seg(n))).await.unwrap();
        let h1 = c.wait().for_element(Locator::Css("h1 .name")).await.unwrap();
        let shown = c.execute("return arguments[0].textContent;", vec![serde_json::to_value(&h1).unwrap()]).await;
        assert_eq!(shown.unwrap(), json!(n), "the name verbatim");
        no_alert(&c, n).await;
        assert_eq!(c.execute("return document.scripts.length;", vec![]).await.unwrap(), json!(1), "{n:?}");
    }
    // The map's pages, with each name as a data center, a host and a service: the page's
    // own name is text, nothing runs.
    let mut pages = vec![("/ui/map".to_string(), script.clone()), ("/ui/map/services".to_string(), script.clone())];
    for n in &names {
        for (path, name) in [("dc", format!("dc:{n}")), ("host", format!("host:{n}")), ("services", format!("{n}:svc"))]
        {
            pages.push((format!("/ui/map/{path}/{}", seg(&name)), name));
        }
    }
    for (path, name) in &pages {
        c.goto(&format!("{}{path}", server.base)).await.unwrap();
        c.wait().for_element(Locator::Css("main h1")).await.unwrap();
        no_alert(&c, path).await;
        let dom = c
            .execute(
                "return [document.scripts.length, document.images.length, document.querySelectorAll('[onerror]').length, \
                 document.body.textContent.includes(arguments[0])];",
                vec![json!(name)],
            )
            .await
            .unwrap();
        assert_eq!(dom, json!([1, 0, 0, true]), "{path}: only our script; {name:?} is text");
    }
    shot(&c, "hostile-map.png").await;
    let errors = driver.console_errors(&c).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    c.close().await.unwrap();
    eprintln!("screenshots in {}", shots().display());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_map_clicks_through_in_headless_chromium() {
    let Some(chromedriver) = common::tool("chromedriver", "chromium-driver") else { return };
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    let server = Server::start_with(&db, &[], &["--interval", "10s"], &[]);
    let before = Utc::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    break_edges_of(&server.base, &db, "fe1.host101", Utc::now()).await;
    let driver = Driver::start(&chromedriver).await;
    let c = driver.browser().await;
    let base = &server.base;

    // From the nav to the map: Tx's tile is red (its colour, not only its class).
    c.goto(&format!("{base}/")).await.unwrap();
    c.find(Locator::Css("header.top nav a[href='/ui/map']")).await.unwrap().click().await.unwrap();
    let tx = c.wait().for_element(Locator::Css("#dcs a.tile.dc.down[href='/ui/map/dc/Tx']")).await.unwrap();
    let colour = tx.css_value("border-top-color").await.unwrap();
    assert!(colour.contains("198, 40, 40"), "the broken data center's tile is red (#c62828): {colour}");
    assert!(tx.attr("title").await.unwrap().unwrap().contains("down"), "a tooltip with the counts");
    assert!(count(&c, "#links td.cell.down").await >= 1);
    shot(&c, "map-dcs.png").await;

    // Data center → host → node.
    tx.click().await.unwrap();
    let host = c.wait().for_element(Locator::Css("#hosts a.tile.host")).await.unwrap();
    assert_eq!(host.attr("href").await.unwrap().as_deref(), Some("/ui/map/host/host101"), "troubled first");
    assert!(host.attr("class").await.unwrap().unwrap().contains("down"));
    shot(&c, "map-dc.png").await;
    host.click().await.unwrap();
    c.wait().for_element(Locator::Css("#containers article.container.down")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().ends_with("/ui/map/host/host101"));
    assert!(count(&c, "#containers tr[data-state='down']").await >= 1);
    shot(&c, "map-host.png").await;
    c.find(Locator::Css("#containers a.node[href='/ui/nodes/fe1.host101']")).await.unwrap().click().await.unwrap();
    let h1 = c.wait().for_element(Locator::Css("h1")).await.unwrap();
    assert_eq!(h1.text().await.unwrap(), "Node fe1.host101");

    // Services → providers.
    c.goto(&format!("{base}/ui/map/services")).await.unwrap();
    c.wait().for_element(Locator::Css("#services a.tile.service")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("#providers")).await.unwrap();
    shot(&c, "map-service.png").await;

    // Before the break: no red tile, and the time kept while drilling down.
    c.goto(&format!("{base}/ui/map?at={}", seg(&iso(before)))).await.unwrap();
    c.wait().for_element(Locator::Css("#dcs a.tile.dc")).await.unwrap();
    assert_eq!(count(&c, "a.tile.down, td.cell.down").await, 0);
    shot(&c, "map-before-the-break.png").await;
    c.find(Locator::Css("#dcs a.tile.dc[href^='/ui/map/dc/Tx']")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("#hosts a.tile.host")).await.unwrap();
    assert!(c.current_url().await.unwrap().query().unwrap_or_default().starts_with("at="));
    assert_eq!(count(&c, "a.tile.down").await, 0);

    let errors = driver.console_errors(&c).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    c.close().await.unwrap();
}
