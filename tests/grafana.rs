//! The Grafana dashboards of `deploy/grafana/` (docs/grafana.md) against a populated
//! PostgreSQL, without a Grafana server: each dashboard's JSON parses, declares a current
//! schema version and a unique uid; every template variable query and every panel and
//! annotation query is expanded the way Grafana's PostgreSQL data source expands it (the
//! template variables in the browser, then the `$__` macros in the server, for a fixed
//! time range) and run, and must return rows with the columns its panel needs.
//!
//! The database is filled the way production fills it: the sample fleet imported with
//! `cmdb import`, `edgewatch serve` on 127.0.0.1:0 making the trace pairs, agents posting
//! probe results, local figures (load, nginx) and trace runs over real HTTP for the last
//! 11 hours (one edge failing from 4 hours ago, a route change 5 hours ago), the AS table
//! imported with `asn import`, and the runs of finished six-hour blocks compacted as the
//! prober's trace loop does. No packet is sent: the results are made up.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use common::{ok, sample, Server};
use graph_store::testing::TestDb;
use serde_json::{json, Value};
use sqlx::postgres::PgRow;
use sqlx::{Column, Row, TypeInfo};

use expander::{expand, TimeRange, Variable};

/// Grafana's PostgreSQL data source, as far as the dashboards use it: template variables
/// (browser side, `SqlDatasource.interpolateVariable`), then `$__interval`,
/// `$__interval_ms` and the macros (server side, `postgresMacroEngine`). Pure.
mod expander {
    use chrono::{DateTime, Utc};

    /// The dashboard's time range and the panel's interval.
    #[derive(Debug, Clone)]
    pub struct TimeRange {
        pub from: DateTime<Utc>,
        pub to: DateTime<Utc>,
        pub interval_ms: u64,
    }

    /// A template variable with its chosen values. `quoted`: a multi-value or include-All
    /// variable, whose values Grafana quotes as SQL literals and joins with `,`; any other
    /// is put in as it is (its `'` doubled).
    #[derive(Debug, Clone)]
    pub struct Variable {
        pub name: String,
        pub values: Vec<String>,
        pub quoted: bool,
    }

    /// Grafana's `gtime.FormatInterval`: the largest whole unit.
    pub fn interval_text(ms: u64) -> String {
        const UNITS: [(u64, &str); 5] =
            [(604_800_000, "w"), (86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1000, "s")];
        for (size, unit) in UNITS {
            if ms >= size && ms.is_multiple_of(size) {
                return format!("{}{unit}", ms / size);
            }
        }
        format!("{ms}ms")
    }

    /// Seconds of an interval such as `5m`, `'1h'`, `30s`, `100ms` (`gtime.ParseInterval`).
    pub fn parse_interval(text: &str) -> Result<f64, String> {
        let t = text.trim().trim_matches('\'');
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (n, unit) = t.split_at(digits);
        let n: f64 = n.parse().map_err(|_| format!("error parsing interval {text}"))?;
        let unit_s = match unit {
            "ms" => 0.001,
            "s" | "" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            "y" => 31_536_000.0,
            _ => return Err(format!("error parsing interval {text}")),
        };
        Ok(n * unit_s)
    }

    /// Go's `time.RFC3339Nano` in UTC: fractional seconds only when there are any, no
    /// trailing zeros.
    pub fn rfc3339_nano(t: DateTime<Utc>) -> String {
        let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
        let nanos = t.timestamp_subsec_nanos();
        if nanos > 0 {
            s.push('.');
            s.push_str(format!("{nanos:09}").trim_end_matches('0'));
        }
        s.push('Z');
        s
    }

    /// A float as Go's `%v` prints it for the group sizes used here.
    fn go_float(v: f64) -> String {
        if v.fract() == 0.0 && v.abs() < 1e21 {
            format!("{}", v as i64)
        } else {
            format!("{v}")
        }
    }

    fn is_ident(c: char) -> bool {
        c.is_ascii_alphanumeric() || c == '_'
    }

    /// `sql` with the template variables, `$__interval(_ms)` and the macros expanded.
    pub fn expand(sql: &str, range: &TimeRange, vars: &[Variable]) -> Result<String, String> {
        macros(&variables(sql, range, vars), range)
    }

    /// Browser side: `$name` and `${name}` of a known variable, and `$__interval`,
    /// `$__interval_ms` (scoped variables of the panel); anything else is left alone.
    pub fn variables(sql: &str, range: &TimeRange, vars: &[Variable]) -> String {
        let mut out = String::with_capacity(sql.len());
        let mut rest = sql;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let (name, len) = if let Some(braced) = after.strip_prefix('{') {
                match braced.find('}') {
                    Some(end) => (&braced[..end], end + 2),
                    None => ("", 0),
                }
            } else {
                let end = after.find(|c: char| !is_ident(c)).unwrap_or(after.len());
                (&after[..end], end)
            };
            let value = match name {
                "__interval_ms" => Some(range.interval_ms.to_string()),
                "__interval" => Some(interval_text(range.interval_ms)),
                _ => vars.iter().find(|v| v.name == name).map(|v| {
                    if v.quoted {
                        v.values.iter().map(|s| format!("'{}'", s.replace('\'', "''"))).collect::<Vec<_>>().join(",")
                    } else {
                        v.values.first().map(|s| s.replace('\'', "''")).unwrap_or_default()
                    }
                }),
            };
            match value {
                Some(v) if !name.is_empty() => {
                    out.push_str(&v);
                    rest = &after[len..];
                }
                _ => {
                    out.push('$');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// Server side: `$__name(args)` (arguments up to the first `)`, split at `,`).
    pub fn macros(sql: &str, range: &TimeRange) -> Result<String, String> {
        let mut out = String::with_capacity(sql.len());
        let mut rest = sql;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let end = after.find(|c: char| !is_ident(c)).unwrap_or(after.len());
            let (name, tail) = after.split_at(end);
            let Some(args_end) = tail.strip_prefix('(').and_then(|t| t.find(')')) else {
                out.push('$');
                rest = after;
                continue;
            };
            let args: Vec<&str> = tail[1..=args_end].split(',').map(str::trim).collect();
            let after_call = &tail[args_end + 2..];
            // Grafana's pre-5.3 compatibility: `$__timeGroup(...)` followed by `,` aliases.
            let name = if name == "__timeGroup" && after_call.starts_with(',') { "__timeGroupAlias" } else { name };
            out.push_str(&evaluate(name, &args, range)?);
            rest = after_call;
        }
        out.push_str(rest);
        Ok(out)
    }

    fn evaluate(name: &str, args: &[&str], range: &TimeRange) -> Result<String, String> {
        let (from, to) = (rfc3339_nano(range.from), rfc3339_nano(range.to));
        let column = || match args.first() {
            Some(c) if !c.is_empty() => Ok(*c),
            _ => Err(format!("missing time column argument for macro {name}")),
        };
        let group = |args: &[&str]| -> Result<(String, String), String> {
            if args.len() < 2 {
                return Err(format!("macro {name} needs time column and interval and optional fill value"));
            }
            Ok((args[0].to_string(), go_float(parse_interval(args[1])?)))
        };
        Ok(match name {
            "__time" => format!("{} AS \"time\"", column()?),
            "__timeEpoch" => format!("extract(epoch from {}) as \"time\"", column()?),
            "__timeFilter" => format!("{} BETWEEN '{from}' AND '{to}'", column()?),
            "__timeFrom" => format!("'{from}'"),
            "__timeTo" => format!("'{to}'"),
            "__timeGroup" | "__timeGroupAlias" => {
                let (col, secs) = group(args)?;
                let alias = if name == "__timeGroupAlias" { " AS \"time\"" } else { "" };
                format!("floor(extract(epoch from {col})/{secs})*{secs}{alias}")
            }
            "__unixEpochFilter" => {
                let c = column()?;
                format!("{c} >= {} AND {c} <= {}", range.from.timestamp(), range.to.timestamp())
            }
            "__unixEpochGroup" | "__unixEpochGroupAlias" => {
                let (col, secs) = group(args)?;
                let alias = if name == "__unixEpochGroupAlias" { " AS \"time\"" } else { "" };
                format!("floor(({col})/{secs})*{secs}{alias}")
            }
            other => return Err(format!("unknown macro \"{other}\"")),
        })
    }
}

#[test]
fn the_expander_expands_as_grafana_does() {
    let range = TimeRange {
        from: "2017-04-21T05:01:17Z".parse().unwrap(),
        to: "2017-04-21T05:06:17.5Z".parse().unwrap(),
        interval_ms: 300_000,
    };
    let vars = [
        Variable { name: "dc".into(), values: vec!["Tx".into(), "O'Hare".into()], quoted: true },
        Variable { name: "pair".into(), values: vec!["7".into()], quoted: false },
    ];
    let cases = [
        (
            "SELECT $__timeGroupAlias(at, $__interval), count(*) FROM t WHERE $__timeFilter(at) GROUP BY 1",
            "SELECT floor(extract(epoch from at)/300)*300 AS \"time\", count(*) FROM t \
             WHERE at BETWEEN '2017-04-21T05:01:17Z' AND '2017-04-21T05:06:17.5Z' GROUP BY 1",
        ),
        ("WHERE dc IN ($dc) AND pair_id = $pair", "WHERE dc IN ('Tx','O''Hare') AND pair_id = 7"),
        ("WHERE dc IN (${dc}) AND $price", "WHERE dc IN ('Tx','O''Hare') AND $price"),
        ("f($__timeFrom(), $__timeTo())", "f('2017-04-21T05:01:17Z', '2017-04-21T05:06:17.5Z')"),
        ("$__interval_ms / $__interval", "300000 / 5m"),
        ("GROUP BY $__timeGroup(at, '1h')", "GROUP BY floor(extract(epoch from at)/3600)*3600"),
        ("SELECT $__timeGroup(at,'1h'), x", "SELECT floor(extract(epoch from at)/3600)*3600 AS \"time\", x"),
        ("$__unixEpochFilter(ts)", "ts >= 1492750877 AND ts <= 1492751177"),
        ("$__unixEpochGroupAlias(ts, 30s)", "floor((ts)/30)*30 AS \"time\""),
    ];
    for (sql, want) in cases {
        assert_eq!(expand(sql, &range, &vars).unwrap(), want, "{sql}");
    }
    assert!(expand("$__timeGroup(at)", &range, &vars).unwrap_err().contains("needs time column and interval"));
    assert!(expand("$__nope(at)", &range, &vars).unwrap_err().contains("unknown macro"));
    assert_eq!(expander::interval_text(90_000), "90s");
    assert_eq!(expander::interval_text(86_400_000), "1d");
    assert_eq!(expander::interval_text(250), "250ms");
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

fn dashboards() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/dashboards");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| (common::path_str(p).to_string(), read_json(p)))
        .collect()
}

#[test]
fn the_dashboards_parse_with_a_current_schema_and_unique_uids() {
    let boards = dashboards();
    let titles: Vec<&str> = boards.iter().map(|(_, d)| d["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["edgewatch · Agents", "edgewatch · Edges", "edgewatch · Paths"]);
    let provisioned = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/provisioning/datasources/edgewatch.yaml"),
    )
    .unwrap();
    let mut uids = HashSet::new();
    for (file, d) in &boards {
        assert!(d["schemaVersion"].as_u64().unwrap_or(0) >= 39, "{file}: schemaVersion {}", d["schemaVersion"]);
        let uid = d["uid"].as_str().unwrap_or_else(|| panic!("{file}: no uid"));
        assert!(uids.insert(uid.to_string()), "{file}: uid {uid} used twice");
        let mut ids = HashSet::new();
        for p in d["panels"].as_array().unwrap() {
            assert!(ids.insert(p["id"].as_u64().unwrap()), "{file}: panel id {} twice", p["id"]);
            for t in p["targets"].as_array().unwrap() {
                let ds = t["datasource"]["uid"].as_str().unwrap();
                assert!(provisioned.contains(&format!("uid: {ds}")), "{file}: data source {ds} is not provisioned");
                assert_eq!(t["rawQuery"], json!(true), "{file}: {}", p["title"]);
            }
        }
    }
}

/// One query to run: where it comes from, its SQL, what its result must have.
struct Query {
    what: String,
    sql: String,
    needs: Needs,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Needs {
    /// A `time` column, the rows in time order, the others numbers or labels (text).
    TimeSeries,
    /// A number column (stat, bar gauge).
    Number,
    /// `time` and `text` (an annotation).
    Annotation,
    /// Rows (a table).
    Rows,
}

fn needs_of(panel_type: &str, format: &str) -> Needs {
    match (panel_type, format) {
        (_, "time_series") => Needs::TimeSeries,
        ("timeseries", _) => panic!("a time series panel with format {format}"),
        ("stat" | "bargauge" | "gauge", _) => Needs::Number,
        _ => Needs::Rows,
    }
}

/// Every panel and annotation query of a dashboard.
fn queries(file: &str, d: &Value) -> Vec<Query> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        let kind = p["type"].as_str().unwrap();
        for t in p["targets"].as_array().unwrap() {
            out.push(Query {
                what: format!("{file}: panel {:?}", p["title"].as_str().unwrap()),
                sql: t["rawSql"].as_str().unwrap().to_string(),
                needs: needs_of(kind, t["format"].as_str().unwrap()),
            });
        }
    }
    for a in d["annotations"]["list"].as_array().unwrap() {
        if let Some(sql) = a["target"]["rawSql"].as_str() {
            out.push(Query {
                what: format!("{file}: annotation {:?}", a["name"].as_str().unwrap()),
                sql: sql.to_string(),
                needs: Needs::Annotation,
            });
        }
    }
    out
}

const NUMBER_TYPES: [&str; 6] = ["INT2", "INT4", "INT8", "FLOAT4", "FLOAT8", "NUMERIC"];
const TIME_TYPES: [&str; 2] = ["TIMESTAMPTZ", "TIMESTAMP"];
const LABEL_TYPES: [&str; 4] = ["TEXT", "VARCHAR", "NAME", "BOOL"];

/// The `time` column of `row` as seconds.
fn time_of(row: &PgRow) -> f64 {
    let col = row.try_column("time").expect("a time column");
    if TIME_TYPES.contains(&col.type_info().name()) {
        row.get::<DateTime<Utc>, _>("time").timestamp_micros() as f64 / 1e6
    } else {
        match col.type_info().name() {
            "NUMERIC" => numeric(row.try_get_raw("time").unwrap().as_bytes().unwrap()),
            "FLOAT8" => row.get::<f64, _>("time"),
            other => panic!("time column of type {other}"),
        }
    }
}

/// A NUMERIC in PostgreSQL's binary form (digit count, weight, sign, scale, then base
/// 10,000 digits) as a float; sqlx decodes NUMERIC only with a decimal crate.
fn numeric(bytes: &[u8]) -> f64 {
    let word = |i: usize| i16::from_be_bytes([bytes[i], bytes[i + 1]]);
    let (digits, weight) = (word(0) as usize, i32::from(word(2)));
    let value: f64 = (0..digits).map(|i| f64::from(word(8 + 2 * i)) * 10_000f64.powi(weight - i as i32)).sum();
    if word(4) as u16 == 0x4000 {
        -value
    } else {
        value
    }
}

/// What is wrong with `rows` for `needs`, if anything.
fn check_columns(rows: &[PgRow], needs: Needs) -> Result<(), String> {
    let first = rows.first().ok_or("no rows")?;
    let types: BTreeMap<String, String> =
        first.columns().iter().map(|c| (c.name().to_string(), c.type_info().name().to_string())).collect();
    let numbers = types.values().filter(|t| NUMBER_TYPES.contains(&t.as_str())).count();
    match needs {
        Needs::Rows => Ok(()),
        Needs::Number if numbers > 0 => Ok(()),
        Needs::Number => Err(format!("no number column: {types:?}")),
        Needs::Annotation if types.contains_key("time") && types.contains_key("text") => Ok(()),
        Needs::Annotation => Err(format!("an annotation needs time and text: {types:?}")),
        Needs::TimeSeries => {
            let time = types.get("time").ok_or(format!("no time column: {types:?}"))?;
            if !TIME_TYPES.contains(&time.as_str()) && !NUMBER_TYPES.contains(&time.as_str()) {
                return Err(format!("time column of type {time}"));
            }
            let values = types.iter().filter(|(name, _)| *name != "time");
            if let Some((name, t)) =
                values.clone().find(|(_, t)| !NUMBER_TYPES.contains(&t.as_str()) && !LABEL_TYPES.contains(&t.as_str()))
            {
                return Err(format!("column {name} of type {t} is neither a value nor a label"));
            }
            if !values.clone().any(|(_, t)| NUMBER_TYPES.contains(&t.as_str())) {
                return Err(format!("no value column: {types:?}"));
            }
            let times: Vec<f64> = rows.iter().map(time_of).collect();
            if times.windows(2).any(|w| w[0] > w[1]) {
                return Err("rows not in time order".into());
            }
            Ok(())
        }
    }
}

async fn run(db: &TestDb, what: &str, sql: &str) -> Vec<PgRow> {
    sqlx::query(sql).fetch_all(&db.pool).await.unwrap_or_else(|e| panic!("{what}: {e}\n{sql}"))
}

/// The dashboard's variables as Grafana sets them on load: query variables run (with the
/// variables before them), include-All ones at All, other ones at their first value;
/// custom ones at their current value.
async fn resolve_variables(db: &TestDb, file: &str, d: &Value, range: &TimeRange) -> Vec<Variable> {
    let mut vars: Vec<Variable> = Vec::new();
    for v in d["templating"]["list"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap().to_string();
        let multi = v["multi"].as_bool().unwrap_or(false);
        let all = v["includeAll"].as_bool().unwrap_or(false);
        let values: Vec<String> = match v["type"].as_str().unwrap() {
            "query" => {
                let what = format!("{file}: variable {name}");
                let sql = expand(v["query"].as_str().unwrap(), range, &vars).unwrap_or_else(|e| panic!("{what}: {e}"));
                let rows = run(db, &what, &sql).await;
                assert!(!rows.is_empty(), "{what}: no values\n{sql}");
                let column = if rows[0].try_column("__value").is_ok() { "__value" } else { rows[0].column(0).name() };
                let found: Vec<String> = rows.iter().map(|r| text_of(r, column)).collect();
                if all {
                    found
                } else {
                    found.into_iter().take(1).collect()
                }
            }
            "custom" => vec![v["current"]["value"].as_str().unwrap().to_string()],
            other => panic!("{file}: variable {name} of type {other}"),
        };
        vars.push(Variable { name, values, quoted: multi || all });
    }
    vars
}

/// A value of `column` as the text Grafana keeps for a variable.
fn text_of(row: &PgRow, column: &str) -> String {
    let col = row.try_column(column).unwrap();
    match col.type_info().name() {
        "INT8" => row.get::<i64, _>(column).to_string(),
        "INT4" => row.get::<i32, _>(column).to_string(),
        _ => row.get::<String, _>(column),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_panel_query_runs_on_a_populated_database_with_the_columns_it_needs() {
    let started = std::time::Instant::now();
    let db = TestDb::new().await;
    let now = Utc::now().trunc_subsecs(0);
    populate(&db, now).await;
    eprintln!("populated in {:.1} s", started.elapsed().as_secs_f64());

    // A fixed range: from 12 hours before the newest figures to a minute after the last
    // report was received.
    let to = Utc::now().trunc_subsecs(0) + Duration::minutes(1);
    let range = TimeRange { from: now - Duration::hours(12), to, interval_ms: 300_000 };
    let mut checked = 0;
    for (file, d) in dashboards() {
        let vars = resolve_variables(&db, &file, &d, &range).await;
        for q in queries(&file, &d) {
            let sql = expand(&q.sql, &range, &vars).unwrap_or_else(|e| panic!("{}: {e}", q.what));
            assert!(!sql.contains("$__") && !sql.contains("${"), "{}: left unexpanded:\n{sql}", q.what);
            let rows = run(&db, &q.what, &sql).await;
            if let Err(why) = check_columns(&rows, q.needs) {
                panic!("{} ({:?}): {why}\n{sql}", q.what, q.needs);
            }
            spot_check(&q.what, &rows);
            eprintln!("{}: {} rows", q.what, rows.len());
            checked += 1;
        }
    }
    assert!(checked >= 25, "{checked} queries: every panel of the three dashboards");
    eprintln!("{checked} queries checked in {:.1} s", started.elapsed().as_secs_f64());
}

/// What a few panels must show of the data [`populate`] made.
fn spot_check(what: &str, rows: &[PgRow]) {
    let texts = |col: &str| rows.iter().map(|r| r.get::<String, _>(col)).collect::<Vec<_>>();
    let panel = what.rsplit_once(": panel ").map_or("", |(_, title)| title);
    match panel {
        "\"Hops of the latest run\"" => {
            let asns: Vec<Option<i64>> = rows.iter().map(|r| r.get("asn")).collect();
            assert_eq!(asns, [None, Some(64500), None], "{what}: the transit hop's AS");
            assert!(!texts("node")[2].is_empty(), "{what}: the destination hop names its node");
        }
        "\"Agents not heard from\"" => assert_eq!(texts("agent"), [SILENT], "{what}"),
        "\"Route events of the pair\"" => assert!(texts("kind").iter().any(|k| k == "changed"), "{what}"),
        "\"Top nodes by disconnects\"" => assert_eq!(rows[0].get::<i32, _>("disconnects"), 1, "{what}"),
        _ => {}
    }
}

// ------------------------------------------------------------------ populating

/// The agents' made-up figures: every node with a token reports every 15 minutes for
/// the last 10¾ hours, except `SILENT`, which never does.
const SILENT: &str = "db1a.host101";
const STEP_MIN: i64 = 15;
const STEPS: i64 = 44;

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

async fn post(http: &reqwest::Client, url: String, token: &str, body: &Value) -> Value {
    let resp = http.post(&url).bearer_auth(token).json(body).send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "POST {url}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

async fn populate(db: &TestDb, now: DateTime<Utc>) {
    ok(db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    let dir = tempfile::tempdir().unwrap();
    // The AS table: the made-up transit hops are in AS 64500 (documentation numbers).
    let asn = dir.path().join("ip2asn.tsv");
    std::fs::write(&asn, "52.93.0.0\t52.93.255.255\t64500\tZZ\tEXAMPLE-TRANSIT\n").unwrap();
    ok(db, &["asn", "import", common::path_str(&asn)]);
    let config = dir.path().join("edgewatch.toml");
    std::fs::write(&config, "[trace]\ninterval = \"1s\"\n").unwrap();
    let server = Server::start(db, &["--config", common::path_str(&config)], &[]);
    let http = common::http();

    let nodes: Vec<String> = sqlx::query_scalar("SELECT name FROM nodes WHERE retired_at IS NULL ORDER BY name")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    let mut agents: Vec<(String, String, Vec<i64>)> = Vec::new();
    for node in &nodes {
        let token = ok(db, &["agent-token", "create", node]).trim().to_string();
        let targets = common::agent_targets(&server.base, node, &token).await;
        let edges: Vec<i64> =
            targets["targets"].as_array().unwrap().iter().map(|t| t["edge_id"].as_i64().unwrap()).collect();
        agents.push((node.clone(), token, edges));
    }
    let failing = agents.iter().find_map(|(_, _, e)| e.first().copied()).expect("an agent with edges");

    let mut tasks = tokio::task::JoinSet::new();
    for (node, token, edges) in agents.iter().filter(|(n, _, _)| n.as_str() != SILENT) {
        let (node, token, edges) = (node.clone(), token.clone(), edges.clone());
        let (http, base) = (http.clone(), server.base.clone());
        tasks.spawn(async move {
            for step in 0..STEPS {
                let at = now - Duration::minutes(STEP_MIN * (STEPS - 1 - step));
                let results: Vec<Value> =
                    edges.iter().map(|&e| result(e, at, e == failing && step >= STEPS - 16)).collect();
                let body = json!({"results": results, "local": local(at, step)});
                post(&http, format!("{base}/api/v1/agents/{node}/results"), &token, &body).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    post_traces(db, &http, &server, &agents, now).await;
    // As the prober's trace loop does: the runs of finished six-hour blocks into blocks.
    graph_store::paths::compact_runs(
        &db.pool,
        graph_store::paths::block::block_of(now),
        std::time::Duration::from_secs(120),
    )
    .await
    .unwrap();
    let count = |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&db.pool).await.unwrap() };
    assert!(count("SELECT count(*) FROM edge_health WHERE state = 'down'").await >= 1, "a broken edge");
    assert!(count("SELECT count(*) FROM route_events WHERE kind = 'changed'").await >= 1, "a route change");
    assert!(count("SELECT count(*) FROM trace_blocks").await >= 1, "compacted runs");
}

/// A probe cycle of `edge` at `at`: failed, or answered in about a millisecond.
fn result(edge: i64, at: DateTime<Utc>, fail: bool) -> Value {
    let outcome = if fail {
        json!({"sent": 3, "received": 0, "loss_pct": 100.0, "error": "timed out"})
    } else {
        let rtt = 0.4 + (edge % 7) as f64 * 0.1;
        json!({"sent": 3, "received": 3, "loss_pct": 0.0, "rtt_min_ms": rtt * 0.8, "rtt_avg_ms": rtt,
               "rtt_max_ms": rtt * 1.5, "rtt_stddev_ms": rtt * 0.2})
    };
    json!({"edge_id": edge, "at": iso(at), "kind": "icmp", "outcome": outcome})
}

/// An agent's local figures at step `step`: load, and nginx rates rising through the day.
fn local(at: DateTime<Utc>, step: i64) -> Value {
    let requests = 20.0 + step as f64;
    let errors = if step % 11 == 0 { 1.5 } else { 0.1 };
    json!({"at": iso(at), "load1": 0.5 + (step % 5) as f64 * 0.1, "load5": 0.6, "load15": 0.7,
           "nginx": {"interval_s": 900.0, "requests_per_s": requests, "errors_per_s": errors,
                     "by_status": {"200": requests - errors, "502": errors}}})
}

/// Every live trace pair gets a run every 10 minutes for 10¾ hours, posted by an agent on
/// its source host: 10.x gateway, a transit hop in AS 64500 that changes 5 hours ago (a
/// route change), the destination.
async fn post_traces(
    db: &TestDb,
    http: &reqwest::Client,
    server: &Server,
    agents: &[(String, String, Vec<i64>)],
    now: DateTime<Utc>,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let pairs: Vec<(i64, String, String)> = loop {
        let pairs: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, src, host(dst_ip) FROM trace_pairs WHERE retired_at IS NULL ORDER BY id")
                .fetch_all(&db.pool)
                .await
                .unwrap();
        if !pairs.is_empty() {
            break pairs;
        }
        assert!(std::time::Instant::now() < deadline, "serve made no trace pairs");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    for (pair, src_host, dst) in pairs {
        let (node, token, _) = agents
            .iter()
            .find(|(n, _, _)| n.ends_with(&format!(".{src_host}")) && n.as_str() != SILENT)
            .unwrap_or_else(|| panic!("no agent on {src_host}"));
        let runs: Vec<Value> = (0..66)
            .map(|i| {
                let at = now - Duration::minutes(10 * (65 - i));
                let transit = if i < 36 { "52.93.0.1" } else { "52.93.9.9" };
                let extra = if i < 36 { 0.0 } else { 3.0 };
                json!({"pair_id": pair, "run": {"at": iso(at), "reached": true, "hops": [
                    hop(1, "10.0.0.1", 3, 0.3),
                    hop(2, transit, if i % 9 == 0 { 2 } else { 3 }, 4.0 + extra),
                    hop(3, &dst, 3, 5.0 + extra + (i % 4) as f64 * 0.2),
                ]}})
            })
            .collect();
        let body = json!({"runs": runs});
        let done = post(http, format!("{}/api/v1/agents/{node}/traces", server.base), token, &body).await;
        assert_eq!(done["stored"].as_u64(), Some(66), "{done}");
    }
}

fn hop(ttl: u8, addr: &str, received: u32, rtt: f64) -> Value {
    json!({"ttl": ttl, "addrs": [addr], "sent": 3, "received": received, "rtt_best_ms": rtt * 0.9,
           "rtt_avg_ms": rtt, "rtt_worst_ms": rtt * 1.2, "rtt_stddev_ms": rtt * 0.1, "jitter_ms": rtt * 0.05})
}
