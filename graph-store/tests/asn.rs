//! The stored ip-to-ASN table on a real PostgreSQL (a fresh database per test): import,
//! look-ups in both families, overlaps, AS 0, and a re-import replacing the table.

use std::collections::HashMap;
use std::net::IpAddr;

use graph_store::paths::{asn_status, import_asn_table, lookup_asns, parse_asn_table, AsnInfo, AsnTable};
use graph_store::testing::TestDb;

const TABLE: &str = "\
1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET
1.0.1.0\t1.0.3.255\t0\tNone\tNot routed
10.0.0.0\t10.255.255.255\t64500\tZZ\tWide
10.1.0.0\t10.1.255.255\t64501\tZZ\tNarrow, with a \\ backslash
10.1.2.0\t10.1.2.255\t0\tNone\tNot routed
255.255.255.0\t255.255.255.255\t64502\tZZ\tThe top
2001:200::\t2001:200:ffff:ffff:ffff:ffff:ffff:ffff\t2500\tJP\tWIDE-BB WIDE Project
2001:4860::\t2001:4860:ffff:ffff:ffff:ffff:ffff:ffff\t15169\tUS\tGOOGLE
2001:4860:4860::\t2001:4860:4860::ffff\t64503\tUS\tInside GOOGLE
";

fn table(text: &str) -> AsnTable {
    parse_asn_table(text, "ip2asn.tsv").unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn asns(db: &TestDb, ips: &[&str]) -> HashMap<String, u32> {
    let ips: Vec<IpAddr> = ips.iter().map(|s| ip(s)).collect();
    let found = lookup_asns(&db.pool, &ips).await.unwrap();
    found.into_iter().map(|(ip, info)| (ip.to_string(), info.asn)).collect()
}

#[tokio::test]
async fn imported_ranges_answer_both_families_narrowest_first() {
    let db = TestDb::new().await;
    assert_eq!(asn_status(&db.pool).await.unwrap(), None);
    let summary = import_asn_table(&db.pool, "ip2asn.tsv", &table(TABLE)).await.unwrap();
    // 9 rows; the two holes split their ranges: 8 IPv4 ranges and 4 IPv6 ones.
    assert_eq!((summary.file.as_str(), summary.rows, summary.ranges), ("ip2asn.tsv", 9, 12));
    let status = asn_status(&db.pool).await.unwrap().unwrap();
    assert_eq!((status.file.as_str(), status.ranges as u64), ("ip2asn.tsv", summary.ranges));
    assert_eq!(status.imported_at, summary.imported_at);

    let asked = [
        "0.255.255.255",        // below every range
        "1.0.0.0",              // a range's first address
        "1.0.0.255",            // its last
        "1.0.2.7",              // AS 0: not routed
        "1.0.4.0",              // in no range
        "10.0.0.1",             // the wide range
        "10.1.0.9",             // the narrow one inside it
        "10.1.2.3",             // AS 0 inside the narrow one
        "10.1.3.0",             // the narrow one again, after the hole
        "10.2.0.0",             // the wide one again
        "255.255.255.255",      // the last IPv4 address
        "::1",                  // IPv6 below every IPv6 range: must not find the top IPv4 one
        "2001:200::5",          // IPv6
        "2001:4860:4860::8888", // the narrower IPv6 range inside GOOGLE
        "2001:4860:4861::",     // GOOGLE again
        "2001:4861::",          // past it
        "::ffff:10.1.0.9",      // IPv4-mapped: looked up as IPv4
    ];
    let want: HashMap<String, u32> = [
        ("1.0.0.0", 13335),
        ("1.0.0.255", 13335),
        ("10.0.0.1", 64500),
        ("10.1.0.9", 64501),
        ("10.1.3.0", 64501),
        ("10.2.0.0", 64500),
        ("255.255.255.255", 64502),
        ("2001:200::5", 2500),
        ("2001:4860:4860::8888", 64503),
        ("2001:4860:4861::", 15169),
        ("::ffff:10.1.0.9", 64501),
    ]
    .into_iter()
    .map(|(ip, asn)| (ip.to_string(), asn))
    .collect();
    assert_eq!(asns(&db, &asked).await, want);

    // The stored answer is the parser's, country and name included (escaping survives).
    let pure = table(TABLE);
    let ips: Vec<IpAddr> = asked.iter().map(|s| ip(s)).collect();
    let stored = lookup_asns(&db.pool, &ips).await.unwrap();
    for ip in &ips {
        assert_eq!(stored.get(ip), pure.lookup(*ip), "{ip}");
    }
    let narrow = &stored[&ip("10.1.0.9")];
    assert_eq!(narrow, &AsnInfo { asn: 64501, country: "ZZ".into(), name: "Narrow, with a \\ backslash".into() });
    assert!(lookup_asns(&db.pool, &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_reimport_replaces_the_table_whole() {
    let db = TestDb::new().await;
    import_asn_table(&db.pool, "old.tsv", &table(TABLE)).await.unwrap();
    let next = "1.0.0.0\t1.0.0.127\t64510\tZZ\tHalf\n2001:db8::\t2001:db8::ffff\t64511\tZZ\tDocs\n";
    let summary = import_asn_table(&db.pool, "new.tsv", &table(next)).await.unwrap();
    assert_eq!((summary.rows, summary.ranges), (2, 2));
    let asked = ["1.0.0.1", "1.0.0.200", "10.0.0.1", "2001:db8::1", "2001:4860::1"];
    let want: HashMap<String, u32> =
        [("1.0.0.1".to_string(), 64510), ("2001:db8::1".to_string(), 64511)].into_iter().collect();
    assert_eq!(asns(&db, &asked).await, want, "nothing of the old table is left");
    let status = asn_status(&db.pool).await.unwrap().unwrap();
    assert_eq!((status.file.as_str(), status.ranges), ("new.tsv", 2));
}

#[tokio::test]
async fn an_import_that_fails_midway_leaves_the_old_table() {
    let db = TestDb::new().await;
    import_asn_table(&db.pool, "old.tsv", &table(TABLE)).await.unwrap();
    // Make the last statement of the import (recording it) fail, after the old ranges were
    // emptied and the new ones copied in.
    graph_store::testing::execute(&db.pool, "ALTER TABLE asn_imports ADD CHECK (file <> 'doomed.tsv')").await;
    let next = table("1.0.0.0\t1.0.0.127\t64510\tZZ\tHalf\n");
    let err = import_asn_table(&db.pool, "doomed.tsv", &next).await.unwrap_err();
    assert!(err.to_string().contains("recording the ASN import"), "{err}");
    let found = asns(&db, &["1.0.0.1", "10.1.0.9"]).await;
    assert_eq!((found["1.0.0.1"], found["10.1.0.9"]), (13335, 64501), "the old ranges answer");
    assert_eq!(asn_status(&db.pool).await.unwrap().unwrap().file, "old.tsv");
}
