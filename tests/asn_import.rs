//! `edgewatch asn import|lookup|status` end to end: the real binary against a fresh
//! database on a real PostgreSQL. A bad row is refused whole, naming the line and the
//! field, and the table imported before stays as it was.

mod common;

use std::io::Write;
use std::process::Output;

use assert_cmd::Command;
use common::{edgewatch, json, ok, path_str};
use graph_store::testing::TestDb;
use serde_json::{json, Value};

const GOOD: &str = "\
1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET
1.0.1.0\t1.0.3.255\t0\tNone\tNot routed
1.0.4.0\t1.0.7.255\t38803\tAU\tWPL-AS-AP Wirefreebroadband Pty Ltd
2001:4860::\t2001:4860:ffff:ffff:ffff:ffff:ffff:ffff\t15169\tUS\tGOOGLE
";

const ASKED: [&str; 4] = ["1.0.0.1", "1.0.2.1", "2001:4860:4860::8888", "9.9.9.9"];

/// `edgewatch … ARGS…` with `input` on standard input.
fn edgewatch_stdin(db: &TestDb, args: &[&str], input: &[u8]) -> Output {
    Command::cargo_bin("edgewatch")
        .unwrap()
        .env_remove("DATABASE_URL")
        .env_remove("EDGEWATCH_LOG")
        .arg("--database-url")
        .arg(&db.url)
        .args(args)
        .write_stdin(input)
        .output()
        .unwrap()
}

fn lookup(db: &TestDb) -> Value {
    let mut args = vec!["asn", "lookup", "--format", "json"];
    args.extend_from_slice(&ASKED);
    json(db, &args)
}

fn gzip(text: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

#[tokio::test]
async fn a_gzip_table_is_imported_and_answers_lookups() {
    let db = TestDb::new().await;
    let out = edgewatch(&db, &["asn", "lookup", "1.0.0.1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no ASN table imported yet"), "{out:?}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ip2asn-combined.tsv.gz");
    std::fs::write(&file, gzip(GOOD)).unwrap();
    let summary = json(&db, &["asn", "import", "--format", "json", path_str(&file)]);
    assert_eq!(
        (&summary["file"], &summary["rows"], &summary["ranges"]),
        (&json!(path_str(&file)), &json!(4), &json!(4))
    );

    let want = json!([
        {"ip": "1.0.0.1", "asn": 13335, "country": "US", "name": "CLOUDFLARENET"},
        {"ip": "1.0.2.1", "asn": null, "country": null, "name": null},
        {"ip": "2001:4860:4860::8888", "asn": 15169, "country": "US", "name": "GOOGLE"},
        {"ip": "9.9.9.9", "asn": null, "country": null, "name": null},
    ]);
    assert_eq!(lookup(&db), want);
    let table = ok(&db, &["asn", "lookup", "1.0.4.1"]);
    assert!(table.contains("38803") && table.contains("WPL-AS-AP Wirefreebroadband Pty Ltd"), "{table}");
    let status = ok(&db, &["asn", "status"]);
    assert!(status.starts_with(&format!("ASN table: 4 ranges from {}", path_str(&file))), "{status}");
}

#[tokio::test]
async fn a_bad_row_is_refused_whole_with_line_and_field_and_the_old_table_kept() {
    let db = TestDb::new().await;
    edgewatch_ok_stdin(&db, GOOD);
    let (before, status_before) = (lookup(&db), json(&db, &["asn", "status", "--format", "json"]));
    assert_eq!(status_before["file"], "stdin");

    // A table that would replace everything, but for one bad row near its end.
    let replacement = "9.9.9.0\t9.9.9.255\t19281\tUS\tQUAD9\n1.0.0.0\t1.0.0.255\t64500\tZZ\tOther\n";
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 5] = [
        ("as.tsv", b"1.2.3.0\t1.2.3.255\tAS5\tZZ\tx\n", r#"as.tsv:3: field AS_number: "AS5" is not an AS number"#),
        ("end.tsv", b"1.2.3.0\t1.2.3\t5\tZZ\tx\n", r#"end.tsv:3: field range_end: "1.2.3" is not an IP address"#),
        (
            "order.tsv",
            b"1.2.3.9\t1.2.3.0\t5\tZZ\tx\n",
            "order.tsv:3: field range_end: 1.2.3.0 is before range_start 1.2.3.9",
        ),
        (
            "family.tsv",
            b"1.2.3.0\t::1\t5\tZZ\tx\n",
            "family.tsv:3: field range_end: ::1 is not of range_start 1.2.3.0's family",
        ),
        ("utf8.tsv", b"1.2.3.0\t1.2.3.255\t5\tZZ\tNetz \xfc\n", "utf8.tsv:3: field AS_description: not UTF-8 text"),
    ];
    for (name, bad_row, want) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, [replacement.as_bytes(), bad_row].concat()).unwrap();
        let out = edgewatch(&db, &["asn", "import", path_str(&path)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name} was not refused:\n{stderr}");
        let want = format!("{}/{want}", path_str(dir.path()));
        assert!(stderr.contains(&want), "{name}: {stderr:?} lacks {want:?}");
        assert!(stderr.contains("nothing imported, the stored ASN table is unchanged"), "{stderr}");
    }
    // The same from standard input, gzipped.
    let out =
        edgewatch_stdin(&db, &["asn", "import", "-"], &gzip(&format!("{replacement}1.2.3.0\t1.2.3.255\t5\tZZ\n")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stdin:3: expected 5 TAB-separated fields"), "{stderr}");

    assert_eq!(lookup(&db), before, "the old table answers as before");
    assert_eq!(json(&db, &["asn", "status", "--format", "json"]), status_before, "no import was recorded");

    // The replacement alone goes in, and replaces the old table whole.
    let path = dir.path().join("good.tsv");
    std::fs::write(&path, replacement).unwrap();
    ok(&db, &["asn", "import", path_str(&path)]);
    let now = lookup(&db);
    let asns: Vec<&Value> = now.as_array().unwrap().iter().map(|a| &a["asn"]).collect();
    assert_eq!(asns, [&json!(64500), &Value::Null, &Value::Null, &json!(19281)]);
}

fn edgewatch_ok_stdin(db: &TestDb, text: &str) {
    let out = edgewatch_stdin(db, &["asn", "import", "-"], text.as_bytes());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
