//! Issue 13's network-namespace lab, end to end: a real `edgewatch serve` and a real
//! `edgewatch agent` in the source host's namespace trace the cross-DC host pair on the
//! `[trace]` schedule (every second, `k_runs = 2`, UDP Paris traces), and the verdicts are
//! read back from the store (`graph_store::paths`) and through the binary (`route diff`,
//! `incidents`):
//!
//! - the recorded hops equal `mtr --json`'s on a path without ECMP;
//! - over 20 cycles across two equal-cost branches, no route event (while mtr's classic
//!   UDP trace, its ports changing, sees both branches: the lab really balances);
//! - `ip route replace` at R3 to the other route is one `changed` event at TTL 4 within 2
//!   cycles, `route diff` across it shows exactly that, and so does the web UI's diff page
//!   (over HTTP from a `serve` on 127.0.0.1, and in headless Chromium where chromedriver is
//!   installed: `target/ui-screenshots/routes-diff.png`); restoring is a second event;
//! - R4 answering no TTL-exceeded (its ICMP rate limits) while forwarding everything: no
//!   loss blamed on it, no event, the edge stays up;
//! - R3 dropping 30 % of what it forwards (nftables `numgen random`): `loss-started` at R4,
//!   the hop after it, within 2 cycles, and the edge's incident names that onset;
//! - D cut off: the path ends at R4, the last hop that answers.
//!
//! ```text
//!                  ┌── R2a ──┐               ┌── R4 ──┐
//!   S ──── R1 ─────┤         ├───── R3 ──────┤        ├──── D (198.18.250.1 on lo)
//!                  └── R2b ──┘               └── R5 ──┘   (R5: the alternative route)
//! ```
//!
//! Link `n` is 198.18.n.0/24 (RFC 2544's range, only inside these namespaces), its nearer
//! side `.1`, its farther side `.2`: S–R1 201, R1–R2a 211, R1–R2b 212, R2a–R3 221,
//! R2b–R3 222, R3–R4 231, R4–D 241, R3–R5 235, R5–D 245. R1 sends D's network via R2a, or
//! over both branches per flow (`nexthop … nexthop …`, `fib_multipath_hash_policy=1`);
//! R3 via R4 or R5. Routers answer from the address a probe came in on, without rate
//! limits, so the path is R1 .201.2, R2a .211.2 (R2b .212.2), R3 .221.2 (.222.2 behind
//! R2b), R4 .231.2 (R5 .235.2), D. Answers come back any way: a trace reads forward hops.
//!
//! Each test builds its own lab (they run in parallel), in namespaces `ewtl-<pid>-<tag>-…`
//! removed afterwards, on failure too, with every process in them. Needs root, iproute2,
//! nftables and mtr (`scripts/install-deps.sh lab`); skips saying why otherwise (fails
//! under CI, which runs as root). The database is reached over its unix socket.

mod common;
mod lab;
mod ui_browser;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use graph_store::paths::{self, EventFilter, PairInfo, RouteEventView, Run};
use graph_store::testing::TestDb;
use lab::Procs;

const PREFIX: &str = "ewtl-";
const NODES: [&str; 8] = ["s", "r1", "r2a", "r2b", "r3", "r4", "r5", "d"];
const ROUTERS: [&str; 6] = ["r1", "r2a", "r2b", "r3", "r4", "r5"];
/// (nearer, farther, n): veth `to-<farther>` / `from-<nearer>` on 198.18.n.0/24.
const LINKS: [(&str, &str, u8); 9] = [
    ("s", "r1", 201),
    ("r1", "r2a", 211),
    ("r1", "r2b", 212),
    ("r2a", "r3", 221),
    ("r2b", "r3", 222),
    ("r3", "r4", 231),
    ("r4", "d", 241),
    ("r3", "r5", 235),
    ("r5", "d", 245),
];
const SRC: &str = "198.18.201.1";
const SOURCE_NET: &str = "198.18.201.0/24";
const DEST: &str = "198.18.250.1";
const DEST_NET: &str = "198.18.250.0/24";
const R1: &str = "198.18.201.2";
const R2A: &str = "198.18.211.2";
const R2B: &str = "198.18.212.2";
/// R3 on the link from R2a, and from R2b.
const R3A: &str = "198.18.221.2";
const R3B: &str = "198.18.222.2";
const R4: &str = "198.18.231.2";
const R5: &str = "198.18.235.2";
const ALLOW: &str = "198.18.0.0/15";
/// The path while R1 uses R2a only and R3 uses R4.
const PATH_A: [&str; 5] = [R1, R2A, R3A, R4, DEST];

/// Answer every probe, from the address it came in on.
const ANSWER_ALL: [&str; 5] = [
    "net.ipv4.ip_forward=1",
    "net.ipv4.icmp_errors_use_inbound_ifaddr=1",
    "net.ipv4.icmp_ratelimit=0",
    "net.ipv4.icmp_msgs_per_sec=100000",
    "net.ipv4.icmp_msgs_burst=100000",
];
/// Per destination one ICMP error per 100 s (a new peer starts with 60 s of credit: none),
/// one a second in all: R4 answers no TTL-exceeded, and forwards everything.
const ANSWER_NONE: [&str; 3] =
    ["net.ipv4.icmp_ratelimit=100000", "net.ipv4.icmp_msgs_per_sec=1", "net.ipv4.icmp_msgs_burst=1"];

/// R3 drops 30 % of what it forwards towards R4 (its own answers are not forwarded).
const FORWARD_LOSS_TO_R4: &str = r#"table inet lab {
    chain forward {
        type filter hook forward priority 0;
        oifname "to-r4" numgen random mod 100 < 30 drop
    }
}"#;

/// R3 drops everything it forwards towards R4.
const FORWARD_ALL_LOST_TO_R4: &str = r#"table inet lab {
    chain forward {
        type filter hook forward priority 0;
        oifname "to-r4" drop
    }
}"#;

/// D takes in nothing (ARP still works).
const DROP_ALL_INPUT: &str = r#"table inet lab {
    chain input {
        type filter hook input priority 0; policy drop;
    }
}"#;

// ---- the tests ----

/// Bullets 1 and 2: the agent's hops are mtr's; ECMP is real and makes no route event.
#[test]
fn agent_hops_equal_mtr_and_ecmp_makes_no_route_event() {
    let Some(st) = Stage::start("ecmp", Tracing { probes: 3, loss_min_pct: 20.0, packets: 3 }) else { return };
    let runs = st.runs_since(Utc::now(), 2);
    for run in &runs {
        assert_eq!(hops(run), PATH_A, "the path through R2a and R4: {run:?}");
        assert!(run.reached, "{run:?}");
    }
    let mtr = st.lab.mtr_json_hops();
    assert_eq!(mtr, hops(runs.last().unwrap()), "mtr --json and the stored run");
    println!("mtr --json and the agent's last run: {mtr:?}");

    // Both branches: the agent's fixed flow hashes to one of them. Three runs to settle
    // (a flow on R2b is one change from R2a, made by the second run on it), then 20.
    st.lab.ip("r1", &["route", "replace", DEST_NET, "nexthop", "via", R2A, "nexthop", "via", R2B]);
    let switched = Utc::now();
    let settle = st.runs_since(switched, 3);
    let branch = hops(&settle[0])[1].clone();
    let settled = assert_switch_events(&st, switched, &branch);
    let cycles = st.runs_since(settle[2].at + chrono::Duration::milliseconds(1), 20);
    let want: Vec<&str> = if branch == R2B { vec![R1, R2B, R3B, R4, DEST] } else { PATH_A.to_vec() };
    for run in settle.iter().chain(&cycles) {
        assert_eq!(hops(run), want, "one branch in every run (Paris: the flow is fixed)");
    }
    let events = st.events_since(switched - chrono::Duration::seconds(5), &[]);
    assert_eq!(events, settled, "no event over the 20 cycles");
    println!("20 cycles after R1 balanced: every run via {branch}, no event ({} from the switch itself)", events.len());

    // A classic trace (mtr's UDP mode: a new destination port per probe) sees both.
    let seen: BTreeSet<String> = st.lab.mtr_classic_hop(2).into_iter().collect();
    assert_eq!(seen, BTreeSet::from([R2A.to_string(), R2B.to_string()]), "mtr -u at TTL 2");
    st.stop();
}

/// Bullets 3, 4 and 6: a route change and back, a rate-limiting router, a cut destination.
#[test]
fn agent_names_route_changes_spares_a_silent_router_and_ends_at_a_cut() {
    let Some(st) = Stage::start("chg", Tracing { probes: 3, loss_min_pct: 20.0, packets: 3 }) else { return };
    // Two runs; the second just recorded, so the change below comes before the next one.
    let before = st.runs_since(Utc::now(), 2);
    for run in &before {
        assert_eq!(hops(run), PATH_A, "{run:?}");
    }
    route_change_and_back(&st, &before);
    rate_limiting_router(&st);
    destination_cut(&st);
    st.stop();
}

/// Bullet 5: forward loss at R3 is located at R4; the edge's incident (once it is down)
/// carries that onset.
#[test]
fn agent_locates_forward_loss_after_the_dropping_router() {
    // 20 probes per TTL and a 5 % line: a run shows 30 % loss from R4 on unless R4 or D
    // loses none of its 20 (0.7^20 each: 0.16 % per run), so 2 runs in a row show it
    // with probability 99.7 %. 10 pings a cycle make the edge degraded.
    let Some(st) = Stage::start("loss", Tracing { probes: 20, loss_min_pct: 5.0, packets: 10 }) else { return };
    let first = st.runs_since(Utc::now(), 1);
    assert_eq!(hops(&first[0]), PATH_A, "{:?}", first[0]);
    assert!(st.events_since(DateTime::UNIX_EPOCH, &[]).is_empty(), "no event on a clean lab");

    st.lab.nft("r3", FORWARD_LOSS_TO_R4);
    let lossy_at = Utc::now();
    let event = st.wait_for_event(lossy_at, "loss-started");
    assert_eq!((event.ttl, event.new_addrs.clone()), (Some(4), vec![R4.to_string()]), "loss from R4 on: {event:?}");
    let loss = event.loss_after_pct.unwrap_or(0.0);
    assert!((10.0..=60.0).contains(&loss), "about 30 % from R4 on: {event:?}");

    // The edge web.s → D is degraded: packets get through, so diagnosis makes no incident
    // of it (incidents are made of `down` edges). R3 then drops all it forwards to R4: the
    // edge goes down, the runs end silent from R4 on (the same onset: no new loss event),
    // and the edge's incident carries the onset and since when the loss runs.
    st.wait_for_edge_state("degraded");
    println!(
        "30 % loss from R4: edge degraded; incidents: {}",
        st.edgewatch(&["incidents", "--format", "json"]).trim()
    );
    st.lab.nft("r3", &format!("flush ruleset\n{FORWARD_ALL_LOST_TO_R4}"));
    st.wait_for_edge_state("down");
    let incident = st.wait_for_incident_with_paths();
    let evidence = &incident["paths"][0];
    assert_eq!((evidence["src"].as_str(), evidence["dst"].as_str()), (Some("hs"), Some("hd")), "{incident:#}");
    assert_eq!(evidence["loss_ttl"].as_u64(), Some(4), "{incident:#}");
    assert_eq!(evidence["loss_addrs"], serde_json::json!([R4]), "{incident:#}");
    let since: DateTime<Utc> = evidence["loss_since"].as_str().and_then(|t| t.parse().ok()).expect("loss_since");
    assert_eq!(since.timestamp_millis(), event.at.timestamp_millis(), "the onset since the 30 % loss: {incident:#}");
    let loss_events =
        st.events_since(lossy_at - chrono::Duration::seconds(30), &["loss-started", "loss-moved", "loss-cleared"]);
    assert_eq!(loss_events.len(), 1, "the onset did not move: {loss_events:#?}");
    let text = st.edgewatch(&["incidents"]);
    println!("{text}");
    assert!(text.contains(&format!("from hop 4 ({R4} (transit-r4))")), "the incident names the onset:\n{text}");
    st.stop();
}

/// The events since R1 started balancing: none when the agent's flow stays on R2a; when
/// it hashes onto R2b, the one change from R2a to R2b at TTL 2 (made by the second run on
/// R2b, a run under way at the switch having seen both once).
fn assert_switch_events(st: &Stage, switched: DateTime<Utc>, branch: &str) -> Vec<RouteEventView> {
    let events = st.events_since(switched - chrono::Duration::seconds(5), &[]);
    match events.as_slice() {
        [] if branch == R2A => {}
        [e] if branch == R2B => {
            let change = (e.kind.as_str(), e.ttl, e.old_addrs.clone(), e.new_addrs.clone());
            assert_eq!(change, ("changed", Some(2), vec![R2A.into()], vec![R2B.into()]), "{e:#?}");
        }
        _ => panic!("the switch to both branches (the flow on {branch}) made these events: {events:#?}"),
    }
    events
}

// ---- scenarios of the second test ----

/// R3 sends D's network via R5: one change at TTL 4 within 2 runs, `route diff` shows
/// it; back via R4: a second one.
///
/// The change comes just after a run was recorded, between two runs; the change back
/// comes while a run is under way (its first round on R5, its last on R4: it sees both,
/// once, which the route rule does not take for two branches of one hop).
fn route_change_and_back(st: &Stage, before: &[Run]) {
    st.lab.ip("r3", &["route", "replace", DEST_NET, "via", R5]);
    let changed_at = Utc::now();
    let event = st.wait_for_event(changed_at, "changed");
    assert_eq!(
        (event.ttl, event.old_addrs.clone(), event.new_addrs.clone()),
        (Some(4), vec![R4.into()], vec![R5.into()])
    );
    let later = st.runs_since(Utc::now(), 1);
    assert_eq!(hops(&later[0]), [R1, R2A, R3A, R5, DEST]);
    assert_eq!(st.events_since(changed_at, &[]).len(), 1, "exactly one event for one change");

    // `route diff` across it, a window from the first run before to the second (windows
    // start at `--at`), the same width from a run after: exactly TTL 4 differs.
    let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let width = format!("{}ms", (before[1].at - before[0].at).num_milliseconds() + 1);
    let (w1, w2) = (rfc(before[0].at), rfc(later[0].at));
    let args = ["route", "diff", "web.s", "search.d", "--at", &w1, "--at", &w2, "--window", &width, "--format", "json"];
    let json: serde_json::Value = serde_json::from_str(&st.edgewatch(&args)).unwrap();
    let cmp = &json["comparisons"][0];
    let status: Vec<&str> = cmp["hops"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["same", "same", "same", "changed", "same"], "{json:#}");
    let first = &cmp["first_divergence"];
    let ips = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|a| a["ip"].clone()).collect::<Vec<_>>();
    assert_eq!(
        (first["ttl"].as_u64(), ips(&first["old"]), ips(&first["new"])),
        (Some(4), vec![R4.into()], vec![R5.into()]),
        "{json:#}"
    );
    println!("route diff across the change: first divergence at TTL 4, {R4} → {R5}");
    ui_diff_page(st, &w1, &w2, &width);

    // The next run starts an interval (1 s) after this one was recorded; its rounds are
    // 1 s apart.
    st.runs_since(Utc::now(), 1);
    std::thread::sleep(Duration::from_millis(1700));
    st.lab.ip("r3", &["route", "replace", DEST_NET, "via", R4]);
    let restored_at = Utc::now();
    let back = st.wait_for_event(restored_at, "changed");
    let runs = st.rt.block_on(paths::runs_between(
        &st.db.pool,
        st.pair.id,
        restored_at - chrono::Duration::seconds(4),
        restored_at,
    ));
    let straddled = runs.unwrap().iter().any(|r| r.hops.get(3).is_some_and(|h| h.addrs == [addr(R4), addr(R5)]));
    println!("the change back {} a run under way", if straddled { "came during" } else { "missed" });
    assert_eq!((back.ttl, back.old_addrs, back.new_addrs), (Some(4), vec![R5.to_string()], vec![R4.to_string()]));
    assert_eq!(st.events_since(changed_at, &["changed"]).len(), 2, "two changes: away and back");
}

/// The web UI's diff page of the same two windows, from a `serve` on 127.0.0.1 in the root
/// namespace over the lab's database: the row of TTL 4 is marked the first divergence, R4
/// against R5. In headless Chromium too, where chromedriver is installed (else skipped,
/// saying so), with a screenshot `target/ui-screenshots/routes-diff.png`; there, the
/// route changes list the change (`routes-changes.png`) and its link opens the pair around
/// it, TTL 4 marked.
fn ui_diff_page(st: &Stage, from: &str, to: &str, width: &str) {
    let ui = UiServe::start(&st.db.url, &st.config);
    let enc = |v: &str| v.replace(':', "%3A").replace('+', "%2B");
    let url = format!(
        "{}/ui/routes/pair?src=web.s&dst=search.d&from={}&to={}&window={}",
        ui.base,
        enc(from),
        enc(to),
        enc(width)
    );
    let (status, body) = st.rt.block_on(async {
        let resp = common::get(&url).await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    });
    assert_eq!(status, 200, "{url}: {body}");
    assert!(body.contains("First divergence at TTL 4: "), "{body}");
    let start = body.find("<tr class=\"changed diverge\" data-ttl=\"4\">").unwrap_or_else(|| panic!("{body}"));
    let row = &body[start..start + body[start..].find("</tr>").unwrap()];
    assert!(row.contains(R4) && row.contains(R5) && row.contains("first divergence"), "{row}");
    assert!(row.contains("transit-r4") && row.contains("transit-r5"), "whose each is: {row}");
    assert_eq!(body.matches(" diverge\" data-ttl").count(), 1, "one row marked: {body}");
    println!("the UI's diff page marks TTL 4, {R4} → {R5}");

    let Some(chromedriver) = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file())
    else {
        eprintln!("SKIP (browser part): chromedriver is not installed (Debian package chromium-driver)");
        return;
    };
    st.rt.block_on(async {
        let driver = ui_browser::Driver::start(&chromedriver).await;
        let c = driver.browser().await;
        c.goto(&url).await.unwrap();
        let marked = c.wait().for_element(fantoccini::Locator::Css("#diff tr.diverge")).await.unwrap();
        let ttl = marked.find(fantoccini::Locator::Css("td.ttl")).await.unwrap().text().await.unwrap();
        let text = marked.text().await.unwrap();
        assert_eq!(ttl, "4", "{text}");
        assert!(text.contains(R4) && text.contains(R5) && text.contains("first divergence"), "{text}");
        let said = c.find(fantoccini::Locator::Css("#divergence")).await.unwrap().text().await.unwrap();
        assert!(said.starts_with("First divergence at TTL 4: "), "{said}");
        assert_eq!(ui_browser::count(&c, "#diff tr.diverge").await, 1);
        ui_browser::shot(&c, "routes-diff.png").await;
        // As an operator gets there: the route changes, the change's pair, around it.
        c.goto(&format!("{}/ui/routes", ui.base)).await.unwrap();
        let link = c.wait().for_element(fantoccini::Locator::Css("tr.route-event[data-kind='changed'] a.pair")).await;
        assert_eq!(ui_browser::count(&c, "tr.route-event").await, 1, "the one change so far");
        ui_browser::shot(&c, "routes-changes.png").await;
        link.unwrap().click().await.unwrap();
        let marked = c.wait().for_element(fantoccini::Locator::Css("#diff tr.diverge")).await.unwrap();
        let text = marked.text().await.unwrap();
        assert!(text.starts_with("4") && text.contains(R4) && text.contains(R5), "{text}");
        assert!(c.current_url().await.unwrap().path().ends_with("/ui/routes/pair"));
        let errors = driver.console_errors(&c).await;
        assert!(errors.is_empty(), "console errors: {errors:?}");
        c.close().await.unwrap();
    });
    println!(
        "headless Chromium: the diff page's marked row is TTL 4, {R4} → {R5} (target/ui-screenshots/routes-diff.png)"
    );
}

/// `edgewatch serve` in the root namespace on 127.0.0.1 (a free port) over the lab's
/// database, for the web UI; killed when dropped.
struct UiServe {
    child: std::process::Child,
    base: String,
}

impl UiServe {
    fn start(url: &str, config: &str) -> UiServe {
        use std::io::{BufRead, BufReader};
        let mut cmd = lab::edgewatch_command();
        cmd.args(["--database-url", url, "--config", config, "serve", "--listen", "127.0.0.1:0", "--interval", "1s"]);
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        let base = line.trim().strip_prefix("listening on ").map(str::to_string);
        let ui = UiServe { child, base: base.clone().unwrap_or_default() };
        assert!(base.is_some(), "serve said {line:?}");
        ui
    }
}

impl Drop for UiServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// R4 answers no TTL-exceeded for three cycles: its hop is silent (rate-limited), D
/// answers every probe, no event, the edge stays up.
fn rate_limiting_router(st: &Stage) {
    st.wait_for_edge_state("up");
    st.lab.sysctl("r4", &ANSWER_NONE);
    let limited_at = Utc::now();
    let runs = st.runs_since(limited_at, 3);
    let (mut sent, mut answered) = (0, 0);
    for run in &runs {
        let (r4, dest) = (&run.hops[3], &run.hops[4]);
        assert!(run.reached && dest.addrs == [addr(DEST)] && dest.received == dest.sent, "D answers all: {run:?}");
        assert!(r4.addrs.iter().all(|&a| a == addr(R4)), "{run:?}");
        (sent, answered) = (sent + r4.sent, answered + r4.received);
    }
    assert!(answered * 4 <= sent, "R4 answers almost nothing: {answered} of {sent}: {runs:?}");
    let window = paths::summarize(runs[0].at, Utc::now(), &runs, 20.0);
    let hop4 = window.hops.iter().find(|h| h.ttl == 4).expect("TTL 4 probed");
    assert!(hop4.rate_limited, "R4's silence is rate limiting: {window:?}");
    let events = st.events_since(limited_at, &[]);
    assert!(events.is_empty(), "no loss blamed on R4, no route event: {events:#?}");
    assert_eq!(st.edge_state(), "up", "the edge stays up");
    println!("R4 silent: {answered} of {sent} probes answered at TTL 4, no event, edge up");
    st.lab.sysctl("r4", &ANSWER_ALL);
}

/// D takes in nothing: the runs end at R4, the last hop that answers.
fn destination_cut(st: &Stage) {
    st.lab.nft("d", DROP_ALL_INPUT);
    let cut_at = Utc::now();
    for run in st.runs_since(cut_at, 2) {
        assert!(!run.reached, "{run:?}");
        let last = run.hops.iter().rev().find(|h| !h.addrs.is_empty()).expect("some hop answers");
        assert_eq!((last.ttl, last.addrs.clone()), (4, vec![addr(R4)]), "the last answer is R4's: {run:?}");
        assert!(run.hops.len() > 4, "TTLs past R4 were probed: {run:?}");
    }
    let changes = st.events_since(cut_at, &["changed"]);
    assert!(changes.is_empty(), "a silent destination is not a route change: {changes:#?}");
    let show = st.edgewatch(&["route", "show", "web.s", "search.d", "--window", "20s"]);
    println!("after the cut:\n{show}");
}

// ---- one lab with serve and an agent ----

/// How the pair is traced and the edge probed.
#[derive(Clone, Copy)]
struct Tracing {
    /// `[trace] probes`: probes per TTL, one round a second.
    probes: u32,
    /// `[trace] loss_min_pct`.
    loss_min_pct: f32,
    /// The agent's `--packets` per edge cycle.
    packets: u32,
}

/// A lab with a database, `serve` and an agent in S, and the pair they trace. Fields drop
/// in order: the processes, the database, the runtime, then the namespaces.
struct Stage {
    procs: Procs,
    db: TestDb,
    rt: tokio::runtime::Runtime,
    config: String,
    pair: PairInfo,
    tracing: Tracing,
    lab: Chain,
}

impl Stage {
    /// Builds the lab, loads the graph and starts `serve` and the agent; returns once the
    /// pair exists. `None` (said why) where the lab cannot be built.
    fn start(tag: &str, tracing: Tracing) -> Option<Stage> {
        let lab = Chain::build(tag)?;
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let db = rt.block_on(TestDb::new());
        lab.load_graph(&db.url);
        let token = lab::edgewatch_ok(&db.url, &["agent-token", "create", "web.s"]).trim().to_string();
        let mut procs = Procs::new();
        let config = procs.dir().join("edgewatch.toml");
        std::fs::write(&config, config_text(&tracing)).unwrap();
        let config = config.to_str().unwrap().to_string();
        let serve = ["serve", "--listen", "127.0.0.1:0", "--interval", "1s"];
        procs.spawn("serve", lab.edgewatch_in("s", &db.url, &config, &serve));
        let line = procs.wait_for_line("serve", "listening on http://", Duration::from_secs(30));
        let server = line.trim().trim_start_matches("listening on ").to_string();
        let packets = tracing.packets.to_string();
        let agent = ["agent", "--server", &server, "--name", "web.s", "--token", &token, "--allow", ALLOW];
        let agent = [&agent[..], &["--interval", "1s", "--packets", &packets]].concat();
        procs.spawn("agent", lab.edgewatch_in("s", &db.url, &config, &agent));
        let deadline = Instant::now() + Duration::from_secs(30);
        let pair = loop {
            if let Some(p) = rt.block_on(paths::find_pairs(&db.pool, "hs", "hd")).unwrap().into_iter().next() {
                break p;
            }
            assert!(Instant::now() < deadline, "no trace pair hs → hd was made from the graph");
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!((pair.src_dc.as_str(), pair.dst_dc.as_str(), pair.dst_ip.as_str()), ("A", "B", DEST));
        Some(Stage { procs, db, rt, config, pair, tracing, lab })
    }

    /// Long enough for `n` runs and the cycles between them, with room to spare.
    fn patience(&self, n: usize) -> Duration {
        Duration::from_secs(30 + (u64::from(self.tracing.probes) + 4) * 2 * n as u64)
    }

    /// The pair's runs made since `since`, once there are `n` of them (the first `n`).
    fn runs_since(&self, since: DateTime<Utc>, n: usize) -> Vec<Run> {
        let deadline = Instant::now() + self.patience(n);
        loop {
            let until = Utc::now() + chrono::Duration::hours(1);
            let mut runs = self.rt.block_on(paths::runs_between(&self.db.pool, self.pair.id, since, until)).unwrap();
            if runs.len() >= n {
                runs.truncate(n);
                return runs;
            }
            assert!(Instant::now() < deadline, "{} of {n} runs since {since}: {runs:?}", runs.len());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The pair's events since `since` of these kinds (none: all), newest first.
    fn events_since(&self, since: DateTime<Utc>, kinds: &[&str]) -> Vec<RouteEventView> {
        let kinds = kinds.iter().map(|k| k.to_string()).collect();
        let filter = EventFilter { pair_id: Some(self.pair.id), since: Some(since), kinds, ..EventFilter::default() };
        self.rt.block_on(paths::events(&self.db.pool, &filter)).unwrap()
    }

    /// The one `kind` event made by the runs since `since` (the lab changed then), which
    /// must come within 2 of them. Events are dated by the first run that showed the new
    /// state, so one from a run under way at `since` counts too.
    fn wait_for_event(&self, since: DateTime<Utc>, kind: &str) -> RouteEventView {
        let from = since - chrono::Duration::seconds(i64::from(self.tracing.probes) + 3);
        let deadline = Instant::now() + self.patience(3);
        loop {
            // The runs first: a run and its events are recorded together, so with no event
            // after them, those runs made none.
            let runs = self.rt.block_on(paths::runs_between(&self.db.pool, self.pair.id, since, Utc::now())).unwrap();
            let events = self.events_since(from, &[kind]);
            if let [e] = events.as_slice() {
                return e.clone();
            }
            assert!(events.is_empty(), "one {kind} event: {events:#?}");
            let shown: Vec<Vec<String>> = runs.iter().map(hops).collect();
            assert!(runs.len() <= 2, "no {kind} event after {} runs made since the lab changed: {shown:?}", runs.len());
            assert!(Instant::now() < deadline, "no {kind} event in time: {shown:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The state of the edge web.s → D, as the store has it.
    fn edge_state(&self) -> String {
        let edges = self.rt.block_on(graph_store::query::edges(&self.db.pool, Default::default())).unwrap();
        let edge = edges.iter().find(|e| e.src == "web.s" && e.dst_ip == DEST).expect("the edge web.s → D");
        serde_json::to_value(edge.state).unwrap().as_str().unwrap().to_string()
    }

    fn wait_for_edge_state(&self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.edge_state() != want {
            assert!(Instant::now() < deadline, "the edge is {}, not {want}, after 60 s", self.edge_state());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `incidents --format json`'s first incident with path evidence, once there is one.
    fn wait_for_incident_with_paths(&self) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let json: serde_json::Value =
                serde_json::from_str(&self.edgewatch(&["incidents", "--format", "json"])).unwrap();
            let found =
                json.as_array().into_iter().flatten().find(|i| i["paths"].as_array().is_some_and(|p| !p.is_empty()));
            if let Some(incident) = found {
                return incident.clone();
            }
            let broken = self.edgewatch(&["graph", "broken", "--format", "json"]);
            let state = self.edge_state();
            assert!(
                Instant::now() < deadline,
                "no incident with path evidence within 60 s: {json:#}; edge {state}, broken: {broken}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// `edgewatch ARGS…` (in S) run to its end; its stdout.
    fn edgewatch(&self, args: &[&str]) -> String {
        lab::run(&mut self.lab.edgewatch_in("s", &self.db.url, &self.config, args))
    }

    /// Stops the agent and `serve` with Ctrl-C; the agent said it delivered runs.
    fn stop(mut self) {
        self.procs.interrupt("agent", Duration::from_secs(20));
        let log = self.procs.log("agent");
        assert!(log.contains("paths traced"), "the agent's summary: {log}");
        self.procs.interrupt("serve", Duration::from_secs(20));
    }
}

fn config_text(t: &Tracing) -> String {
    format!(
        "[trace]\ninterval = \"1s\"\nmax_ttl = 8\nk_runs = 2\nvantage = \"lab\"\nprotocol = \"udp\"\n\
         probes = {}\nloss_min_pct = {}\n\
         [owners]\n\"198.18.201.0/24\" = \"ours\"\n\"198.18.231.0/24\" = \"transit-r4\"\n\
         \"198.18.235.0/24\" = \"transit-r5\"\n\"198.18.250.0/24\" = \"cloud\"\n",
        t.probes, t.loss_min_pct
    )
}

/// A run's hops as the addresses answering at each TTL (one each, or `*`).
fn hops(run: &Run) -> Vec<String> {
    run.hops
        .iter()
        .map(|h| match h.addrs.as_slice() {
            [] => "*".to_string(),
            many => many.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(","),
        })
        .collect()
}

fn addr(ip: &str) -> IpAddr {
    ip.parse().unwrap()
}

// ---- the namespaces ----

/// The namespaces `<base>-<node>`, deleted (with their veths and processes) when dropped.
struct Chain {
    base: String,
}

impl Drop for Chain {
    fn drop(&mut self) {
        for node in NODES {
            remove_netns(&self.ns(node));
        }
    }
}

impl Chain {
    /// The lab of the module documentation, or `None` (said why) where it cannot be built.
    fn build(tag: &str) -> Option<Chain> {
        if let Some(why) = unavailable() {
            assert!(std::env::var_os("CI").is_none(), "CI runs as root, so this lab test must run, but: {why}");
            eprintln!("SKIP: {why}");
            return None;
        }
        sweep_leftovers();
        let lab = Chain { base: format!("{PREFIX}{}-{tag}", std::process::id()) };
        for node in NODES {
            lab::run(Command::new("ip").args(["netns", "add", &lab.ns(node)]));
            lab.ip(node, &["link", "set", "lo", "up"]);
            // Before any veth exists, so every interface has it off (answers come back
            // other ways than probes go).
            lab.sysctl(node, &["net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"]);
        }
        for (near, far, n) in LINKS {
            let (out, back) = (format!("to-{far}"), format!("from-{near}"));
            lab.ip(near, &["link", "add", &out, "type", "veth", "peer", "name", &back, "netns", &lab.ns(far)]);
            for (node, dev, side) in [(near, &out, 1), (far, &back, 2)] {
                lab.ip(node, &["addr", "add", &format!("198.18.{n}.{side}/24"), "dev", dev]);
                lab.ip(node, &["link", "set", dev, "up"]);
            }
        }
        lab.ip("d", &["addr", "add", &format!("{DEST}/32"), "dev", "lo"]);
        let routes = [
            ("s", "default", R1),
            ("r1", DEST_NET, R2A),
            ("r2a", SOURCE_NET, "198.18.211.1"),
            ("r2a", "default", R3A),
            ("r2b", SOURCE_NET, "198.18.212.1"),
            ("r2b", "default", R3B),
            ("r3", SOURCE_NET, "198.18.221.1"),
            ("r3", DEST_NET, R4),
            ("r4", SOURCE_NET, "198.18.231.1"),
            ("r4", DEST_NET, "198.18.241.2"),
            ("r5", SOURCE_NET, "198.18.235.1"),
            ("r5", DEST_NET, "198.18.245.2"),
            ("d", "default", "198.18.241.1"),
        ];
        for (node, dst, via) in routes {
            lab.ip(node, &["route", "replace", dst, "via", via]);
        }
        for node in ROUTERS.into_iter().chain(["d"]) {
            lab.sysctl(node, &ANSWER_ALL);
        }
        lab.sysctl("r1", &["net.ipv4.fib_multipath_hash_policy=1"]);
        // Linux 6.11+: the same hash in every lab (older kernels: a random seed each).
        let _ = Command::new("ip")
            .args(["netns", "exec", &lab.ns("r1"), "sysctl", "-qw", "net.ipv4.fib_multipath_hash_seed=1234567"])
            .output();
        // The first neighbour resolutions out of the way, so no first run shows them as loss.
        let _ = Command::new("ip")
            .args(["netns", "exec", &lab.ns("s"), "fping", "-q", "-c", "2", "-p", "200", DEST])
            .output();
        Some(lab)
    }

    fn ns(&self, node: &str) -> String {
        format!("{}-{node}", self.base)
    }

    fn ip(&self, node: &str, args: &[&str]) -> String {
        lab::run(Command::new("ip").args(["-n", &self.ns(node)]).args(args))
    }

    fn sysctl(&self, node: &str, settings: &[&str]) {
        lab::run(Command::new("ip").args(["netns", "exec", &self.ns(node), "sysctl", "-qw"]).args(settings));
    }

    /// Loads an nftables rule set in `node`'s namespace.
    fn nft(&self, node: &str, rules: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns(node), "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(rules.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "nft in {node}: {}\n{rules}", String::from_utf8_lossy(&out.stderr));
    }

    /// `mtr --json` from S to D (ICMP, 3 rounds): the address of each hop (`???`: silent).
    fn mtr_json_hops(&self) -> Vec<String> {
        let args = ["-n", "--json", "-c", "3", "-i", "0.2", "-G", "1", DEST];
        let out = lab::run(Command::new("ip").args(["netns", "exec", &self.ns("s"), "mtr"]).args(args));
        let json: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("mtr --json: {e}:\n{out}"));
        let hubs = json["report"]["hubs"].as_array().unwrap_or_else(|| panic!("no hubs in mtr's report: {json:#}"));
        hubs.iter().map(|h| h["host"].as_str().unwrap_or("?").replace("???", "*")).collect()
    }

    /// The addresses a classic trace from S (mtr's UDP mode, 30 rounds: the destination
    /// port changes with every probe) saw at `ttl`, from `mtr --report`: on the hop's
    /// line and on the lines below it that hold only an address.
    fn mtr_classic_hop(&self, ttl: u8) -> Vec<String> {
        let args = ["-n", "-u", "-c", "30", "-i", "0.05", "-G", "0.5", "--report", DEST];
        let report = lab::run(Command::new("ip").args(["netns", "exec", &self.ns("s"), "mtr"]).args(args));
        let (mut addrs, mut in_hop) = (Vec::new(), false);
        for line in report.lines().map(str::trim_start) {
            if let Some((number, rest)) = line.split_once(".|--") {
                in_hop = number == ttl.to_string();
                addrs.extend(rest.split_whitespace().next().filter(|_| in_hop).map(String::from));
            } else if in_hop {
                addrs.extend(line.split_whitespace().next().map(String::from));
            }
        }
        println!("mtr -u --report:\n{report}");
        addrs
    }

    /// The CMDB: web.s on hs (DC A) uses search.d on hd (DC B).
    fn load_graph(&self, url: &str) {
        let dir = tempfile::tempdir().unwrap();
        let inventory = serde_json::json!({
            "containers": [
                {"name": "web.s", "host": "hs", "dc": "A", "role": "web", "ips": [SRC], "services": [], "serving": true},
                {"name": "search.d", "host": "hd", "dc": "B", "role": "search", "ips": [DEST], "services": [], "serving": true},
            ],
            "services": [],
        });
        let inv = dir.path().join("inventory.json");
        std::fs::write(&inv, inventory.to_string()).unwrap();
        let links = dir.path().join("links.txt");
        std::fs::write(&links, format!("web.s {DEST}\n")).unwrap();
        lab::edgewatch_ok(url, &["cmdb", "import", inv.to_str().unwrap(), links.to_str().unwrap()]);
    }

    /// `edgewatch --database-url URL --config FILE ARGS…` in `node`'s namespace.
    fn edgewatch_in(&self, node: &str, url: &str, config: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(node), lab::bin(), "--database-url", url, "--config", config]).args(args);
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|k| k == "DATABASE_URL" || k.starts_with("EDGEWATCH_")) {
                cmd.env_remove(key);
            }
        }
        cmd.env("EDGEWATCH_LOG", "info,sqlx=warn").env("NO_COLOR", "1");
        cmd
    }
}

/// Why the lab cannot be built here, if it cannot.
fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root to create network namespaces and trace (raw sockets)".into());
    }
    let missing: Vec<&str> = [("ip", "-V", "iproute2"), ("nft", "-V", "nftables"), ("mtr", "--version", "mtr-tiny")]
        .into_iter()
        .filter(|(tool, flag, _)| !Command::new(tool).arg(flag).output().is_ok_and(|o| o.status.success()))
        .map(|(_, _, package)| package)
        .collect();
    (!missing.is_empty()).then(|| format!("{} not installed (`make test` installs them)", missing.join(", ")))
}

/// Kills whatever still runs in `ns` and deletes it; its veths go with it.
fn remove_netns(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
    let _ = Command::new("ip").args(["netns", "del", ns]).status();
}

/// Removes namespaces of earlier runs of this test whose process is gone.
fn sweep_leftovers() {
    for ns in lab::netns_names() {
        let Some(pid) = ns.strip_prefix(PREFIX).and_then(|rest| rest.split('-').next()) else { continue };
        if !pid.parse::<u32>().is_ok_and(lab::pid_alive) {
            eprintln!("removing {ns}, left behind by an earlier run");
            remove_netns(&ns);
        }
    }
}
