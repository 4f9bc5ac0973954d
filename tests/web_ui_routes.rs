//! The web UI's route pages on a real `edgewatch serve` over HTTP, on route_cli.rs's story
//! (web.h1 on-premise → search.h2 in the cloud, traced every 2 minutes for 50 minutes, the
//! path changed at TTL 4 for 12 of them, recorded through the store as the tracers record
//! runs): `/ui/routes` lists both changes newest first, linking to the pair's page around
//! each; the pair page has the hop table with owner, AS and the node holding an address,
//! and the two windows side by side with the first diverging hop marked; the form's
//! fields and the quick links answer; bad parameters answer an HTML error page; hostile
//! names are text; the read token is asked for.

mod common;
mod ui_fleet;

use chrono::{DateTime, Duration, DurationRound, Utc};
use common::{ok, Server};
use graph_store::cmdb::{apply_inventory, apply_links, lock_graph};
use graph_store::model::{Inventory, Link, LinkSet};
use graph_store::paths::{self, Hop, PairSchedule, Run, TraceRecord, TrackConfig};
use graph_store::testing::{container, TestDb};
use ui_fleet::{hrefs, section, seg};

/// The story's minute `m`: from the hour starting three to four hours ago (taken once).
fn t(m: i64) -> DateTime<Utc> {
    static BASE: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
    let base = BASE.get_or_init(|| (Utc::now() - Duration::hours(3)).duration_trunc(Duration::hours(1)).unwrap());
    *base + Duration::minutes(m)
}

const BEFORE: [&str; 5] = ["10.0.0.1", "10.0.1.1", "52.93.0.1", "52.93.1.1", "127.3.0.2"];
const DURING: [&str; 6] = ["10.0.0.1", "10.0.1.1", "52.93.0.1", "52.93.128.156", "52.93.128.200", "127.3.0.2"];
/// A node holding a transit address, named to break a page that does not escape it.
const HOSTILE: &str = "<img src=x onerror=alert(1)>\"'";

fn run(at: DateTime<Utc>, hops: &[&str]) -> Run {
    let hops = hops
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let rtt = 1.0 + 5.0 * i as f32;
            Hop {
                ttl: i as u8 + 1,
                addrs: vec![a.parse().unwrap()],
                sent: 3,
                received: 3,
                rtt_best_ms: Some(rtt - 0.5),
                rtt_avg_ms: Some(rtt),
                rtt_worst_ms: Some(rtt + 0.5),
                rtt_stddev_ms: Some(0.3),
                jitter_ms: Some(0.2),
            }
        })
        .collect();
    Run { at, hops, reached: true }
}

/// Runs every 2 minutes from t(0) to t(50); from t(23) to before t(36) on the other path.
async fn story(db: &TestDb) {
    let inventory = Inventory {
        containers: vec![
            container("web.h1", "h1", "onprem", "127.3.0.1"),
            container("search.h2", "h2", "cloud", "127.3.0.2"),
            container(HOSTILE, "h9", "cloud", "52.93.1.1"),
        ],
        services: vec![],
    };
    let links = LinkSet {
        links: vec![Link {
            container: "web.h1".into(),
            targets: vec!["127.3.0.2".parse().unwrap()],
            origin: "t".into(),
        }],
    };
    let mut tx = db.pool.begin().await.unwrap();
    lock_graph(&mut tx).await.unwrap();
    apply_inventory(&mut tx, &inventory, true).await.unwrap();
    apply_links(&mut tx, &links).await.unwrap();
    tx.commit().await.unwrap();
    paths::sync_pairs(&db.pool, &PairSchedule::default()).await.unwrap();
    let pair = paths::find_pairs(&db.pool, "h1", "h2").await.unwrap().remove(0);
    for m in (0..=50).step_by(2) {
        let during = (23..36).contains(&m);
        let r = run(t(m), if during { &DURING } else { &BEFORE });
        paths::record_runs(&db.pool, &[TraceRecord { pair_id: pair.id, run: r }], &TrackConfig::default())
            .await
            .unwrap();
    }
}

fn setup(db: &TestDb, dir: &tempfile::TempDir, extra: &str) -> String {
    let asn = dir.path().join("ip2asn.tsv");
    std::fs::write(&asn, "52.93.0.0\t52.93.255.255\t16509\tUS\tAMAZON-02\n").unwrap();
    ok(db, &["asn", "import", asn.to_str().unwrap()]);
    let path = dir.path().join("edgewatch.toml");
    std::fs::write(&path, format!("{extra}[owners]\n\"10.0.0.0/8\" = \"ours\"\n\"52.93.0.0/16\" = \"AWS\"\n")).unwrap();
    path.to_str().unwrap().to_string()
}

/// `GET` with an optional bearer token: (status, content type, content policy, body).
async fn fetch(base: &str, path: &str, bearer: Option<&str>) -> (u16, String, String, String) {
    let mut req = common::http().get(format!("{base}{path}"));
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let resp = req.send().await.unwrap();
    let header = |h: &str| resp.headers().get(h).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let (kind, csp) = (header("content-type"), header("content-security-policy"));
    (resp.status().as_u16(), kind, csp, resp.text().await.unwrap())
}

/// A page that must answer 200 as HTML with the content policy.
async fn html(base: &str, path: &str) -> String {
    let (status, kind, csp, body) = fetch(base, path, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    assert!(kind.starts_with("text/html") && csp.contains("script-src 'self'"), "{path}: {kind} {csp}");
    body
}

/// A page that must answer `status` as an HTML error page saying `says`.
async fn error_page(base: &str, path: &str, status: u16, says: &str) -> String {
    let (got, kind, _, body) = fetch(base, path, None).await;
    assert_eq!(got, status, "{path}: {body}");
    assert!(kind.starts_with("text/html") && body.contains("<p class=\"error\">"), "{path}: {kind} {body}");
    assert!(body.contains(says), "{path}: {says:?} in {body}");
    body
}

/// The `<tr …>` element whose start tag has `attrs`, up to its end.
fn row<'a>(body: &'a str, attrs: &str) -> &'a str {
    let start = body.find(&format!("<tr {attrs}")).unwrap_or_else(|| panic!("no <tr {attrs}> in {body}"));
    let rest = &body[start..];
    &rest[..rest.find("</tr>").unwrap()]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_changes_lead_to_the_pair_page_with_its_hops_and_the_first_divergence() {
    let db = TestDb::new().await;
    story(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(&db, &dir, "");
    let server = Server::start(&db, &["--config", &cfg], &[]);
    let base = &server.base;

    // The changes, newest first (the last 24 h by default), each linking to its pair.
    let list = html(base, "/ui/routes").await;
    assert!(list.contains("href=\"/ui/routes\""), "the Routes link in the header");
    let changes = section(&list, "changes");
    let rows: Vec<&str> = changes.split("<tr class=\"route-event\" data-kind=\"changed\"").skip(1).collect();
    assert_eq!(rows.len(), 2, "{changes}");
    let z = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(rows[0].contains(&z(t(36))) && rows[1].contains(&z(t(24))), "newest first: {changes}");
    for r in &rows {
        assert!(r.contains("h1</span> → <span class=\"name\">h2"), "{r}");
        assert!(r.contains("onprem → cloud"), "{r}");
        assert!(r.contains("<td class=\"ttl\">4</td>"), "{r}");
    }
    assert!(
        rows[1].contains("52.93.1.1</span> <span class=\"whose\">(AWS AS16509)</span></span> → <span class=\"addr\"><span class=\"ip\">52.93.128.156"),
        "the change away, at the hop, whose: {}",
        rows[1]
    );
    assert!(rows[1].contains("before </span>10.0.0.1 › 10.0.1.1 › 52.93.0.1 › 52.93.1.1 › 127.3.0.2"), "{}", rows[1]);
    let links = hrefs(changes, "/ui/routes/pair?");
    assert_eq!(links.len(), 2, "{links:?}");
    assert!(links[1].starts_with("/ui/routes/pair?src=h1&dst=h2&from="), "{links:?}");

    // The window picker: quick choices and a form; a kind, a time.
    assert!(list.contains("href=\"/ui/routes?since=7d\""), "{list}");
    assert!(list.contains("<form class=\"picker\" method=\"get\" action=\"/ui/routes\""), "{list}");
    let one = html(base, &format!("/ui/routes?since={}&kind=changed", seg(&z(t(30))))).await;
    assert_eq!(section(&one, "changes").matches("class=\"route-event\"").count(), 1, "only the change back");
    let none = html(base, "/ui/routes?since=1h&kind=loss-started").await;
    assert!(section(&none, "changes").contains("No route event since then."), "{none}");
    let between = html(base, "/ui/routes?dc=cloud%2Conprem").await;
    assert_eq!(section(&between, "changes").matches("class=\"route-event\"").count(), 2, "pairs between the two");
    assert!(between.contains("href=\"/ui/routes?since=7d&amp;dc=cloud%2Conprem\""), "the pickers keep the DCs");
    let within = html(base, "/ui/routes?dc=cloud,cloud").await;
    assert!(section(&within, "changes").contains("No route event since then."), "none within the cloud");

    // The pair page around the change away: the window before it against the one it starts.
    let around = html(base, &links[1]).await;
    let hops = section(&around, "hops");
    let hop4 = row(hops, "class=\"hop\" data-ttl=\"4\"");
    assert!(hop4.contains("52.93.128.156") && hop4.contains("AWS") && hop4.contains("AS16509 AMAZON-02"), "{hop4}");
    let hop1 = row(hops, "class=\"hop\" data-ttl=\"1\"");
    assert!(hop1.contains("10.0.0.1") && hop1.contains("<td class=\"owner\"><div>ours</div>"), "{hop1}");
    assert!(
        hop1.contains("<td>0.0</td><td>9</td><td>1.0</td><td>0.5</td><td>1.5</td>"),
        "loss, sent (3 runs), RTT: {hop1}"
    );
    let last = row(hops, "class=\"hop\" data-ttl=\"6\"");
    assert!(last.contains("href=\"/ui/nodes/search.h2\"") && last.contains("(h2)"), "the node holding it: {last}");
    let diff = section(&around, "diff");
    assert!(
        diff.contains("<p class=\"diverge\" id=\"divergence\">First divergence at TTL 4: "),
        "the marker in words: {diff}"
    );
    let marked = row(diff, "class=\"changed diverge\" data-ttl=\"4\"");
    assert!(marked.contains("52.93.1.1") && marked.contains("52.93.128.156"), "{marked}");
    assert!(marked.contains("first divergence"), "{marked}");
    assert_eq!(diff.matches("diverge\" data-ttl").count(), 1, "one row marked: {diff}");
    assert!(row(diff, "class=\"same\" data-ttl=\"3\"").contains("52.93.0.1"));
    assert!(row(diff, "class=\"added\" data-ttl=\"6\"").contains("127.3.0.2"));
    let own = section(&around, "events");
    assert_eq!(own.matches("class=\"route-event\"").count(), 2, "the pair's own events: {own}");
    // The hostile node holding 52.93.1.1 is text, linked by its escaped name.
    assert!(!around.contains("<img"), "{around}");
    assert!(diff.contains("&lt;img src=x onerror=alert(1)&gt;&quot;'"), "{diff}");

    // The form's fields, as a browser sends them (times in UTC without a zone), and a window.
    let form = format!(
        "/ui/routes/pair?src=web.h1&dst=search.h2&from={}&to={}&window=10m",
        seg(&t(0).format("%Y-%m-%d %H:%M").to_string()),
        seg(&t(24).format("%Y-%m-%dT%H:%M").to_string())
    );
    let picked = html(base, &form).await;
    assert!(section(&picked, "diff").contains("First divergence at TTL 4"), "{picked}");
    assert!(section(&picked, "hops").contains("5 run(s), 5 reached"), "{}", section(&picked, "hops"));
    // From 30 minutes before the later window, by default; and the same path twice.
    let back = html(base, &format!("/ui/routes/pair?src=h1&dst=h2&to={}", seg(&z(t(46))))).await;
    assert!(section(&back, "diff").contains("Same path in both windows."), "t(16) and t(46)");

    // Now vs 30 min ago, one click from the pair page; the form keeps the pair.
    let now = html(base, "/ui/routes/pair?src=web.h1&dst=search.h2").await;
    assert!(now.contains("href=\"/ui/routes/pair?src=web.h1&amp;dst=search.h2\">now vs 30 min ago</a>"), "{now}");
    assert!(now.contains("<input type=\"hidden\" name=\"src\" value=\"web.h1\">"), "{now}");
    for field in ["from", "to", "window"] {
        assert!(now.contains(&format!("name=\"{field}\"")), "{field}: {now}");
    }
    assert!(section(&now, "hops").contains("No run in this window."), "no run in the last 5 minutes");
    html(base, &hrefs(&now, "/ui/routes/pair?src=web.h1&amp;dst=search.h2&amp;from=1h")[0]).await;

    // The edge page links to its path's page (the consumer node to the address).
    let node = html(base, "/ui/nodes/web.h1").await;
    let edge = html(base, &hrefs(&node, "/ui/edges/")[0]).await;
    let route = hrefs(&edge, "/ui/routes/pair?");
    assert_eq!(route, ["/ui/routes/pair?src=web.h1&dst=127.3.0.2"], "{edge}");
    assert!(html(base, &route[0])
        .await
        .contains("<h1>Route <span class=\"name\">h1</span> → <span class=\"name\">h2</span></h1>"));

    // Bad parameters: an HTML page saying what to fix.
    error_page(base, "/ui/routes/pair?src=h1", 400, "dst: to where?").await;
    error_page(base, "/ui/routes/pair?src=h1&dst=h2&from=yesterday", 400, "from: &quot;yesterday&quot;").await;
    error_page(base, "/ui/routes/pair?src=h1&dst=h2&window=forever", 400, "window:").await;
    error_page(base, "/ui/routes/pair?src=h1%00&dst=h2", 400, "NUL").await;
    error_page(base, "/ui/routes?since=whenever", 400, "since:").await;
    error_page(base, "/ui/routes?kind=moved", 400, "kind: &quot;moved&quot; is not one of").await;
    error_page(base, "/ui/routes?dc=a,b,c", 400, "at most two data centers").await;
    error_page(base, "/ui/routes/pair?src=search.h2&dst=web.h1", 404, "no traced path").await;
    let hostile = format!("/ui/routes/pair?src={}&dst=h2", seg("<script>alert(1)</script>"));
    let body = error_page(base, &hostile, 404, "&lt;script&gt;alert(1)&lt;/script&gt;").await;
    assert_eq!(body.matches("<script").count(), 1, "only ours: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_host_names_are_text_and_their_links_find_the_pair() {
    let db = TestDb::new().await;
    let (src, dst) = ("<script>alert(1)</script>", "\"q\" 'x' &amp; a+b=c?d#e/f %41");
    let inventory = Inventory {
        containers: vec![
            container("api.x", src, "onprem", "127.3.0.3"),
            container("db.x", dst, "Zürich-DC", "127.3.0.4"),
        ],
        services: vec![],
    };
    let links = LinkSet {
        links: vec![Link {
            container: "api.x".into(),
            targets: vec!["127.3.0.4".parse().unwrap()],
            origin: "t".into(),
        }],
    };
    let mut tx = db.pool.begin().await.unwrap();
    lock_graph(&mut tx).await.unwrap();
    apply_inventory(&mut tx, &inventory, true).await.unwrap();
    apply_links(&mut tx, &links).await.unwrap();
    tx.commit().await.unwrap();
    paths::sync_pairs(&db.pool, &PairSchedule::default()).await.unwrap();
    let pair = paths::find_pairs(&db.pool, src, dst).await.unwrap().remove(0);
    for m in (0..=20).step_by(2) {
        let r = run(t(m), if m >= 10 { &DURING } else { &BEFORE });
        paths::record_runs(&db.pool, &[TraceRecord { pair_id: pair.id, run: r }], &TrackConfig::default())
            .await
            .unwrap();
    }
    let server = Server::start(&db, &[], &[]);
    let list = html(&server.base, "/ui/routes").await;
    assert_eq!(list.matches("<script").count(), 1, "only ours: {list}");
    assert!(list.contains("&lt;script&gt;alert(1)&lt;/script&gt;</span> → <span class=\"name\">&quot;q&quot; 'x' &amp;amp; a+b=c?d#e/f %41</span>"), "{list}");
    let links = hrefs(section(&list, "changes"), "/ui/routes/pair?");
    assert_eq!(links.len(), 1, "{links:?}");
    assert!(links[0].starts_with(&format!("/ui/routes/pair?src={}&dst={}&", seg(src), seg(dst))), "{links:?}");
    let page = html(&server.base, &links[0]).await;
    assert_eq!(page.matches("<script").count(), 1, "only ours: {page}");
    assert!(page.contains("<title>Route &lt;script&gt;alert(1)&lt;/script&gt; → &quot;q&quot;"), "{page}");
    assert!(section(&page, "diff").contains("First divergence at TTL 4"), "{page}");
    // The form carries the names back as they are.
    assert!(
        page.contains(&format!("name=\"dst\" value=\"{}\"", "&quot;q&quot; 'x' &amp;amp; a+b=c?d#e/f %41")),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_read_token_the_route_pages_ask_for_it() {
    let db = TestDb::new().await;
    story(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(&db, &dir, "[api]\nread_token = \"s3cret-routes\"\n");
    let server = Server::start(&db, &["--config", &cfg], &[]);
    for path in ["/ui/routes", "/ui/routes/pair?src=h1&dst=h2", "/ui/routes/pair?src=h1"] {
        let (status, kind, _, body) = fetch(&server.base, path, None).await;
        assert_eq!(status, 401, "{path}");
        assert!(kind.starts_with("text/html") && body.contains("action=\"/ui/login\""), "{path}: {body}");
        assert!(!body.contains("52.93") && !body.contains("<table"), "{path}: no data: {body}");
        let (status, _, _, body) = fetch(&server.base, path, Some("not-it")).await;
        assert_eq!(status, 401, "{path}: {body}");
    }
    let (status, _, _, body) = fetch(&server.base, "/ui/routes/pair?src=h1&dst=h2", Some("s3cret-routes")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("id=\"divergence\""), "{body}");
}
