//! `edgewatch dns ingest` end to end: each sample-fleet log gives exactly its expected
//! edges, and their queries per hour (`query_hourly`) those of the log's lines; reading
//! again changes nothing; a kill at any point neither loses nor doubles.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDateTime, TimeDelta, Utc};
use common::{edgewatch, hourly_mismatches, json, ok, project, sample};
use graph_store::testing::TestDb;
use rand::Rng;
use serde_json::Value;

const EDGE_KEYS: [&str; 6] = ["src", "dst_ip", "dst", "services", "sources", "queries"];

fn expected(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(sample(name)).unwrap();
    project(&serde_json::from_str(&text).unwrap(), &EDGE_KEYS)
}

async fn ingest_and_compare(log: &str, links: bool, expected_file: &str) {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    if links {
        ok(&db, &["cmdb", "import", &sample("links.txt")]);
    }
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample(log)]);
    let edges = json(&db, &["graph", "edges", "--format", "json"]);
    let ours = project(&edges, &EDGE_KEYS);
    let want = expected(expected_file);
    let missing: Vec<&Value> = want.iter().filter(|e| !ours.contains(e)).collect();
    let extra: Vec<&Value> = ours.iter().filter(|e| !want.contains(e)).collect();
    assert!(missing.is_empty() && extra.is_empty(), "{log}: missing {missing:#?}\nextra {extra:#?}");
    assert_hours_add_up(&db);
}

fn assert_hours_add_up(db: &TestDb) {
    let mismatches = hourly_mismatches(db);
    assert_eq!(mismatches, serde_json::json!([]), "edges whose hours do not add up to their queries");
}

/// Queries per hour of each edge: (consumer, destination address) -> hour (`YYYY-MM-DD
/// HH`, UTC) -> queries.
type Hours = BTreeMap<(String, String), BTreeMap<String, i64>>;

/// `query_hourly`, by edge and hour.
fn query_hours(db: &TestDb) -> Hours {
    let rows = json(
        db,
        &[
            "sql",
            "--format",
            "json",
            "SELECT n.name AS src, host(e.dst_ip) AS dst_ip, \
                    to_char(q.hour AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS hour, q.queries \
             FROM query_hourly q JOIN edges e ON e.id = q.edge_id JOIN nodes n ON n.id = e.src_id",
        ],
    );
    let mut out: Hours = BTreeMap::new();
    for row in rows.as_array().unwrap() {
        let hour = row["hour"].as_str().unwrap();
        let hour = hour.strip_suffix(":00:00.000000").unwrap_or_else(|| panic!("{hour} is not the start of an hour"));
        let queries = row["queries"].as_i64().unwrap();
        assert!(queries > 0, "{row}");
        let edge = (row["src"].as_str().unwrap().to_string(), row["dst_ip"].as_str().unwrap().to_string());
        assert!(out.entry(edge).or_default().insert(hour.to_string(), queries).is_none(), "{row}: twice");
    }
    out
}

/// A query line of the sample logs as this test reads it, on its own (not with
/// discovery's parser): client address, query name, query type.
fn query_of(line: &str) -> Option<(&str, &str, &str)> {
    let quoted = |key: &str| -> Option<&str> { line.split(&format!(" {key}=\"")).nth(1)?.split('"').next() };
    if let Some(rest) = line.split("Remote ").nth(1) {
        // Authoritative: `Remote IP[<-subnet] wants 'NAME|TYPE', …`
        let client = rest.split(' ').next()?.split("<-").next()?;
        let (name, qtype) = rest.split(" wants '").nth(1)?.split('\'').next()?.rsplit_once('|')?;
        return Some((client, name, qtype));
    }
    if let Some(rest) = line.split("question for '").nth(1) {
        // Old-style recursor: `question for 'NAME|TYPE' from IP:PORT`
        let (question, from) = rest.split_once("' from ")?;
        let (name, qtype) = question.rsplit_once('|')?;
        return Some((from.trim().rsplit_once(':')?.0, name, qtype));
    }
    if line.contains("msg=\"Question\"") || line.contains("msg=\"Question answered from packet cache\"") {
        return Some((quoted("remote")?.rsplit_once(':')?.0, quoted("qname")?, quoted("qtype")?));
    }
    None
}

/// The time of a sample log line, as this test reads it: `ts="SECS.FRAC"`, else an RFC
/// 3339 prefix, else a year-less `Nov 22 01:36:00` prefix (UTC, this year unless that is
/// more than a day ahead of `now`).
fn time_of(line: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Some(ts) = line.split(" ts=\"").nth(1).and_then(|r| r.split('"').next()) {
        let (secs, frac) = ts.split_once('.').unwrap_or((ts, "0"));
        let nanos = format!("{frac:0<9}")[..9].parse().unwrap();
        return DateTime::from_timestamp(secs.parse().unwrap(), nanos);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(line.split(' ').next()?) {
        return Some(t.to_utc());
    }
    let prefix = line.get(..15)?;
    [now.year(), now.year() - 1].into_iter().find_map(|year| {
        let t = NaiveDateTime::parse_from_str(&format!("{year} {prefix}"), "%Y %b %d %H:%M:%S").ok()?.and_utc();
        (t <= now + TimeDelta::days(1)).then_some(t)
    })
}

/// The log with line `i`'s time moved `i % 3` hours on, so that it spans three hours.
fn spread_over_hours(log: &str) -> String {
    let mut out = String::new();
    for (i, line) in log.lines().enumerate() {
        let shift = (i % 3) as u32;
        let bump = |hour: &str| format!("{:02}", hour.parse::<u32>().unwrap() + shift);
        let mut line = line.to_string();
        if let Some(at) = line.find(" ts=\"") {
            let start = at + 5;
            let end = start + line[start..].find('.').unwrap();
            let secs: i64 = line[start..end].parse().unwrap();
            line.replace_range(start..end, &(secs + 3600 * i64::from(shift)).to_string());
        }
        if line.as_bytes().get(4) == Some(&b'-') && line.as_bytes().get(10) == Some(&b'T') {
            // 2026-11-22T01:36:06…
            line.replace_range(11..13, &bump(&line[11..13]));
        } else if line.as_bytes().get(15) == Some(&b' ') && line.as_bytes().get(9) == Some(&b':') {
            // Nov 22 01:36:00 …
            line.replace_range(7..9, &bump(&line[7..9]));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// What the edges' hours should be, from the log alone: every query line that names a
/// consumer (by `service.consumer…`, or its client address) and a service counts in its
/// hour for the pair; an edge has the hours of its consumer's pairs of every service it
/// carries (each provider address gets all of a pair's queries).
fn expected_hours(log: &str, edges: &Value, now: DateTime<Utc>) -> Hours {
    let inventory: Value = serde_json::from_str(&std::fs::read_to_string(sample("inventory.json")).unwrap()).unwrap();
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut names: HashSet<String> = HashSet::new();
    for c in inventory["containers"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap().to_ascii_lowercase();
        for ip in c["ips"].as_array().unwrap() {
            owner.insert(ip.as_str().unwrap().to_string(), name.clone());
        }
        names.insert(name);
    }
    let mut pairs: HashMap<(String, String), BTreeMap<String, i64>> = HashMap::new();
    for line in log.lines() {
        let Some((client, qname, qtype)) = query_of(line) else {
            continue;
        };
        if !["A", "AAAA", "ANY"].contains(&qtype.to_ascii_uppercase().as_str()) {
            continue;
        }
        let qname = qname.trim_end_matches('.').to_ascii_lowercase();
        let Some(below) = qname.strip_suffix(".example.com") else {
            continue;
        };
        let labels: Vec<&str> = below.split('.').collect();
        let (consumer, service) = match labels.len() {
            1 => match owner.get(client) {
                Some(consumer) => (consumer.clone(), labels[0]),
                None => continue,
            },
            2 => continue,
            _ => (labels[1..].join("."), labels[0]),
        };
        if !names.contains(&consumer) {
            continue;
        }
        let time = time_of(line, now).unwrap_or_else(|| panic!("no time in {line:?}"));
        let hour = time.format("%Y-%m-%d %H").to_string();
        *pairs.entry((consumer, service.to_string())).or_default().entry(hour).or_default() += 1;
    }
    let mut out: Hours = BTreeMap::new();
    for edge in edges.as_array().unwrap() {
        let src = edge["src"].as_str().unwrap().to_string();
        let hours = out.entry((src.clone(), edge["dst_ip"].as_str().unwrap().to_string())).or_default();
        for service in edge["services"].as_array().unwrap() {
            let pair = (src.to_ascii_lowercase(), service.as_str().unwrap().to_string());
            for (hour, n) in pairs.get(&pair).into_iter().flatten() {
                *hours.entry(hour.clone()).or_default() += n;
            }
        }
    }
    out
}

/// Ingests `log` spread over three hours and compares `query_hourly` with the hours of its
/// lines.
async fn hours_follow_the_lines(log: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(log);
    let text = spread_over_hours(&std::fs::read_to_string(sample(log)).unwrap());
    std::fs::write(&path, &text).unwrap();
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    let now = Utc::now();
    ok(&db, &["dns", "ingest", "--zone", "example.com", path.to_str().unwrap()]);
    assert_hours_add_up(&db);
    let edges = json(&db, &["graph", "edges", "--format", "json"]);
    assert!(edges.as_array().unwrap().len() > 10, "{log}: {edges:#}");
    let ours = query_hours(&db);
    let want = expected_hours(&text, &edges, now);
    for (edge, hours) in &want {
        assert_eq!(ours.get(edge), Some(hours), "{log}: hours of {edge:?}");
    }
    assert_eq!(ours.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{log}: edges with hours");
    let hours: HashSet<&String> = ours.values().flat_map(|h| h.keys()).collect();
    assert_eq!(hours.len(), 3, "{log}: the lines span three hours, and so must the rollups: {hours:?}");
}

#[tokio::test]
async fn auth_console_queries_count_in_their_hours() {
    hours_follow_the_lines("pdns-auth-console.log").await;
}

#[tokio::test]
async fn auth_syslog_queries_count_in_their_hours() {
    hours_follow_the_lines("pdns-auth-syslog.log").await;
}

#[tokio::test]
async fn recursor_old_queries_count_in_their_hours() {
    hours_follow_the_lines("pdns-rec-old.log").await;
}

#[tokio::test]
async fn recursor_structured_queries_count_in_their_hours() {
    hours_follow_the_lines("pdns-rec-structured.log").await;
}

#[tokio::test]
async fn queries_without_a_time_count_in_the_hour_they_are_read() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    let before = Utc::now();
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-plain.log")]);
    let after = Utc::now();
    assert_hours_add_up(&db);
    let hours: HashSet<String> = query_hours(&db).into_values().flat_map(|h| h.into_keys()).collect();
    let read = [before, after].map(|t| t.format("%Y-%m-%d %H").to_string());
    assert!(!hours.is_empty() && hours.iter().all(|h| read.contains(h)), "{hours:?}, read during {read:?}");
}

#[tokio::test]
async fn auth_console_log_gives_its_expected_edges() {
    ingest_and_compare("pdns-auth-console.log", false, "expected-edges-auth-console.json").await;
}

#[tokio::test]
async fn auth_plain_log_gives_its_expected_edges() {
    ingest_and_compare("pdns-auth-plain.log", false, "expected-edges-auth-plain.json").await;
}

#[tokio::test]
async fn auth_syslog_log_gives_its_expected_edges() {
    ingest_and_compare("pdns-auth-syslog.log", false, "expected-edges-auth-syslog.json").await;
}

#[tokio::test]
async fn recursor_old_log_gives_its_expected_edges() {
    ingest_and_compare("pdns-rec-old.log", false, "expected-edges-rec-old.json").await;
}

#[tokio::test]
async fn recursor_structured_log_gives_its_expected_edges() {
    ingest_and_compare("pdns-rec-structured.log", false, "expected-edges-rec-structured.json").await;
}

#[tokio::test]
async fn auth_console_log_with_links_gives_its_expected_edges() {
    ingest_and_compare("pdns-auth-console.log", true, "expected-edges-auth-console+links.json").await;
}

#[tokio::test]
async fn ingesting_a_file_twice_changes_nothing() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-rec-structured.log")]);
    let before = db.dump().await;
    let stats_before = json(&db, &["dns", "stats", "--format", "json"]);
    let hours_before = query_hours(&db);
    let again = ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-rec-structured.log")]);
    assert!(again.contains("0 lines"), "{again}");
    assert_eq!(before, db.dump().await);
    assert_eq!(hours_before, query_hours(&db));
    let stats_after = json(&db, &["dns", "stats", "--format", "json"]);
    assert_eq!(stats_before["skipped"], stats_after["skipped"]);
    assert_eq!(stats_before["unknown_clients"], stats_after["unknown_clients"]);
}

#[tokio::test]
async fn dns_stats_name_what_the_cmdb_lacks() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    let stats = json(&db, &["dns", "stats", "--format", "json"]);
    // queries.txt sends noise on purpose: a client no container owns, a consumer the CMDB
    // does not have, services nobody provides.
    let pairs = |key: &str| -> Vec<(String, i64)> {
        stats[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap().to_string(), c["count"].as_i64().unwrap()))
            .collect()
    };
    assert_eq!(pairs("unknown_clients"), vec![("127.9.9.9".to_string(), 1)]);
    assert_eq!(pairs("unknown_consumers"), vec![("nosuch.host999".to_string(), 1)]);
    let services: Vec<String> = pairs("unknown_services").into_iter().map(|(n, _)| n).collect();
    assert!(services.contains(&"nosuch".to_string()) && services.contains(&"www".to_string()), "{services:?}");
    // 13 start-up lines are no queries; the other 151 lines are.
    assert!(pairs("skipped").contains(&("not-a-query".to_string(), 13)), "{stats:#}");
}

fn comparable(db: &TestDb) -> (Vec<Value>, Value, Hours) {
    assert_hours_add_up(db);
    let edges = project(&json(db, &["graph", "edges", "--format", "json"]), &EDGE_KEYS);
    let stats = json(db, &["dns", "stats", "--format", "json"]);
    (
        edges,
        serde_json::json!([stats["skipped"], stats["unknown_clients"], stats["unknown_consumers"], stats["queries"]]),
        query_hours(db),
    )
}

#[tokio::test]
async fn killed_at_random_points_the_ingest_neither_loses_nor_doubles() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("growing.log");
    let chunk = std::fs::read_to_string(sample("pdns-rec-structured.log")).unwrap().repeat(60);
    let log = path.to_str().unwrap();
    let args = ["dns", "ingest", "--zone", "example.com", "--batch-lines", "1500", log];

    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    let seed: u64 = rand::rng().random();
    eprintln!("kill delays from seed {seed}");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let (mut killed_mid_way, mut attempts) = (0, 0);
    while killed_mid_way < 24 && attempts < 100 {
        attempts += 1;
        // The log grows between runs, as a live one does, so every run has work left.
        std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap().write_all(chunk.as_bytes()).unwrap();
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("edgewatch"))
            .env_remove("DATABASE_URL")
            .args(["--database-url", &db.url])
            .args(args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(5..150)));
        if child.try_wait().unwrap().is_none() {
            killed_mid_way += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    ok(&db, &args);
    eprintln!("{killed_mid_way} of {attempts} kills landed mid-ingest");
    assert!(killed_mid_way >= 20, "only {killed_mid_way} of {attempts} kills landed mid-ingest");

    // One clean run over the final file.
    let clean = TestDb::new().await;
    ok(&clean, &["cmdb", "import", &sample("inventory.json")]);
    ok(&clean, &args);
    assert_eq!(comparable(&db), comparable(&clean));
}

/// `dns tail` stopped with SIGTERM (what systemd sends) twenty times while the log grows,
/// at random points once it follows: every stop is clean (status 0 within 10 s), and the
/// store ends as one clean ingest of the final file makes it — every line counted once.
/// Each round adds 13,800 lines, batches are 1,500 lines and the time flush every 5 s: every
/// SIGTERM lands mid-batch (still reading, or 300 lines read and not yet written).
#[tokio::test]
async fn dns_tail_stopped_by_sigterm_twenty_times_counts_every_line_once() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("growing.log");
    let chunk = std::fs::read_to_string(sample("pdns-rec-structured.log")).unwrap().repeat(60);
    let log = path.to_str().unwrap();

    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    let seed: u64 = rand::rng().random();
    eprintln!("SIGTERM delays from seed {seed}");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    for round in 0..20 {
        std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap().write_all(chunk.as_bytes()).unwrap();
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("edgewatch"))
            .env_remove("DATABASE_URL")
            .args(["--database-url", &db.url, "dns", "tail", "--zone", "example.com", "--batch-lines", "1500"])
            .args(["--flush-every", "5s", log])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Once it says it follows (its signal handling is in place), at a random point.
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut said = String::new();
        while !said.contains("following") {
            let mut line = String::new();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "round {round}: dns tail ended early: {said}");
            said.push_str(&line);
        }
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        std::thread::sleep(Duration::from_millis(rng.random_range(0..250)));
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let t = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "round {round}: dns tail still runs 10 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "round {round}: dns tail exited with {status} on SIGTERM");
    }
    // What the last tail had not read yet, then one clean ingest of the final file.
    let args = ["dns", "ingest", "--zone", "example.com", "--batch-lines", "1500", log];
    ok(&db, &args);
    let clean = TestDb::new().await;
    ok(&clean, &["cmdb", "import", &sample("inventory.json")]);
    ok(&clean, &args);
    assert_eq!(comparable(&db), comparable(&clean));
}

#[tokio::test]
async fn a_missing_zone_and_a_missing_file_are_clear_errors() {
    let db = TestDb::new().await;
    let out = edgewatch(&db, &["dns", "ingest", &sample("pdns-rec-old.log")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--zone"));
    let out = edgewatch(&db, &["dns", "ingest", "--zone", "example.com", "/nonexistent/pdns.log"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/pdns.log"));
}

#[tokio::test]
async fn junk_is_skipped_and_counted_never_a_panic() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.log");
    let good = "Remote 127.20.3.2 wants 'cache.example.com|A', do = 0, bufsize = 1232: packetcache MISS\n";
    let mut junk: Vec<u8> = Vec::new();
    junk.extend_from_slice(good.as_bytes());
    junk.extend_from_slice(b"\xff\xfe invalid utf-8 \xc3\x28 Remote 127.20.3.2 wants 'x|A'\n");
    junk.extend(std::iter::repeat_n(b'a', 200 * 1024));
    junk.push(b'\n');
    let mut x: u32 = 12345;
    for _ in 0..2000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        junk.push((x >> 16) as u8);
    }
    junk.push(b'\n');
    junk.extend_from_slice(&good.as_bytes()[..40]);
    junk.push(b'\n');
    junk.extend_from_slice(good.as_bytes());
    std::fs::write(&path, &junk).unwrap();
    let out = json(&db, &["dns", "ingest", "--zone", "example.com", "--format", "json", path.to_str().unwrap()]);
    assert_eq!(out["resolved"], 2, "{out:#}");
    assert_eq!(out["skipped"]["too-long"], 1, "{out:#}");
    assert_eq!(
        out["skipped"]["invalid-utf8"].as_u64().unwrap_or(0)
            + out["skipped"]["not-a-query"].as_u64().unwrap_or(0)
            + out["skipped"]["malformed"].as_u64().unwrap_or(0),
        out["lines"].as_u64().unwrap() - 3,
        "{out:#}"
    );
    let edges = json(&db, &["graph", "edges", "--format", "json"]);
    assert_eq!(edges.as_array().unwrap().iter().map(|e| e["queries"].as_i64().unwrap()).sum::<i64>(), 2);
}

#[tokio::test]
async fn tail_reads_standard_input() {
    use std::io::Write;
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("edgewatch"))
        .env_remove("DATABASE_URL")
        .args(["--database-url", &db.url, "dns", "tail", "--zone", "example.com", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = std::fs::read(sample("pdns-auth-plain.log")).unwrap();
    child.stdin.take().unwrap().write_all(&log).unwrap();
    // End of input ends the tail, after a last write.
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ours = project(&json(&db, &["graph", "edges", "--format", "json"]), &EDGE_KEYS);
    assert_eq!(ours, expected("expected-edges-auth-plain.json"));
}

#[tokio::test]
async fn dns_edges_nobody_asks_for_retire_and_come_back() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    let all = json(&db, &["graph", "edges", "--format", "json"]).as_array().unwrap().len();
    let only_cmdb = expected("expected-edges-auth-console+links.json")
        .iter()
        .filter(|e| e["sources"] == serde_json::json!(["cmdb"]))
        .count();
    let both = expected("expected-edges-auth-console+links.json")
        .iter()
        .filter(|e| e["sources"] == serde_json::json!(["cmdb", "dns"]))
        .count();

    // The captures' queries are as old as the captures: a week more than that is the window,
    // so the test means the same on any day it runs.
    let age_days = graph_store::testing::dns_age_days(&db.pool).await;
    let window = format!("{}d", age_days.max(0) + 7);

    // Nothing is old enough yet.
    ok(&db, &["dns", "expire", "--older-than", &window]);
    assert_eq!(json(&db, &["graph", "edges", "--format", "json"]).as_array().unwrap().len(), all);

    graph_store::testing::age_dns_edges(&db.pool, 8).await;
    let said = ok(&db, &["dns", "expire", "--older-than", &window]);
    let dns_only = all - only_cmdb - both;
    assert!(said.contains(&format!("{dns_only} retired, {both} kept by other sources")), "{said}");
    let live = json(&db, &["graph", "edges", "--format", "json"]);
    // What is left: the published links, without `dns` now.
    assert_eq!(live.as_array().unwrap().len(), only_cmdb + both);
    assert!(live.as_array().unwrap().iter().all(|e| e["sources"] == serde_json::json!(["cmdb"])));

    // Asked for again (a new log), they are back.
    let dir = tempfile::tempdir().unwrap();
    let again = dir.path().join("again.log");
    std::fs::write(&again, std::fs::read(sample("pdns-auth-syslog.log")).unwrap()).unwrap();
    ok(&db, &["dns", "ingest", "--zone", "example.com", again.to_str().unwrap()]);
    assert_eq!(json(&db, &["graph", "edges", "--format", "json"]).as_array().unwrap().len(), all);
}

#[tokio::test]
async fn zones_come_from_the_config_file_and_bad_keys_are_named() {
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgewatch.toml");
    std::fs::write(&config, "[dns]\nzones = [\"example.com\"]\n").unwrap();
    ok(&db, &["--config", config.to_str().unwrap(), "dns", "ingest", &sample("pdns-rec-old.log")]);
    let ours = project(&json(&db, &["graph", "edges", "--format", "json"]), &EDGE_KEYS);
    assert_eq!(ours, expected("expected-edges-rec-old.json"));

    std::fs::write(&config, "[dns]\nzone = [\"example.com\"]\n").unwrap();
    let out = edgewatch(&db, &["--config", config.to_str().unwrap(), "dns", "ingest", &sample("pdns-rec-old.log")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("edgewatch.toml") && stderr.contains("zone"), "{stderr}");
}

#[tokio::test]
async fn a_generated_fleet_is_deterministic_and_every_flavour_gives_edges() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        let status = std::process::Command::new(assert_cmd::cargo::cargo_bin("edgewatch"))
            .args([
                "fleet",
                "generate",
                "--seed",
                "7",
                "--lines",
                "3000",
                "--containers",
                "60",
                "--hosts",
                "12",
                "--dcs",
                "3",
            ])
            .arg("--out")
            .arg(out)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }
    let mut logs: Vec<std::path::PathBuf> = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    assert_eq!(logs.len(), 7, "{logs:?}");
    for log in &logs {
        let twin = b.join(log.file_name().unwrap());
        assert!(std::fs::read(log).unwrap() == std::fs::read(twin).unwrap(), "{} differs between runs", log.display());
    }
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", a.join("inventory.json").to_str().unwrap()]);
    for log in &logs {
        let out = json(&db, &["dns", "ingest", "--zone", "example.com", "--format", "json", log.to_str().unwrap()]);
        let resolved = out["resolved"].as_u64().unwrap();
        assert!(resolved > 500, "{}: only {resolved} of 3000 lines gave edges: {out:#}", log.display());
    }
}

#[tokio::test]
async fn ingest_finishes_a_log_rotated_and_compressed_since_the_last_run() {
    use std::io::Write;
    // A cron job ingests pdns.log; between two runs the log is rotated (renamed to
    // pdns.log.1, which logrotate then compresses) and a new one begins: the second run
    // reads the rest of the old file from the .gz, then the new file, each line once.
    let db = TestDb::new().await;
    ok(&db, &["cmdb", "import", &sample("inventory.json")]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pdns.log");
    let text = std::fs::read_to_string(sample("pdns-rec-structured.log")).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let (a, b, c) = (&lines[..80], &lines[80..150], &lines[150..]);
    let args = ["dns", "ingest", "--zone", "example.com", log.to_str().unwrap()];
    std::fs::write(&log, a.concat()).unwrap();
    ok(&db, &args);
    std::fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(b.concat().as_bytes()).unwrap();
    std::fs::rename(&log, dir.path().join("pdns.log.1")).unwrap();
    let gzip = std::process::Command::new("gzip").arg(dir.path().join("pdns.log.1")).status().unwrap();
    assert!(gzip.success());
    std::fs::write(&log, c.concat()).unwrap();
    ok(&db, &args);
    // Once more: nothing is read twice.
    ok(&db, &args);
    let ours = project(&json(&db, &["graph", "edges", "--format", "json"]), &EDGE_KEYS);
    assert_eq!(ours, expected("expected-edges-rec-structured.json"));
    assert_hours_add_up(&db);
}
