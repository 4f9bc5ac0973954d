//! The stored ip-to-ASN table (`asn_ranges`, `asn_imports`): replacing it whole from a
//! parsed [`AsnTable`], and answering who announces many addresses in one query.
//!
//! The table is stored as the parser's disjoint ranges (overlaps already resolved to the
//! narrowest row), AS 0 ("not routed") ranges included, so that a look-up is the one range
//! starting at or below the address: a backward step on the primary key per address.

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::owners::{AsnInfo, AsnTable};
use crate::error::{Error, Result};
use crate::{PgConnection, PgPool};

/// What an import stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// The file as the importer named it.
    pub file: String,
    /// Rows read from it (AS 0 rows included).
    pub rows: u64,
    /// Disjoint ranges stored: overlaps split, adjacent rows of one AS merged.
    pub ranges: u64,
    #[serde(serialize_with = "crate::serialize_utc")]
    pub imported_at: DateTime<Utc>,
}

/// The last import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AsnImport {
    #[serde(serialize_with = "crate::serialize_utc")]
    pub imported_at: DateTime<Utc>,
    pub file: String,
    pub ranges: i64,
}

/// Bytes of COPY data sent at a time.
const COPY_CHUNK: usize = 1 << 20;

/// Replaces the stored table with `table`, in one transaction: a failure leaves the old
/// table as it was. The ranges go in by `COPY`; the import is recorded in `asn_imports`.
///
/// `TRUNCATE` takes the table's exclusive lock, so look-ups wait for the import to commit
/// (seconds for iptoasn's ~500k rows) and then see the new table, never a mix.
#[tracing::instrument(skip(pool, table), fields(rows = table.rows()))]
pub async fn import(pool: &PgPool, file: &str, table: &AsnTable) -> Result<ImportSummary> {
    let mut tx = pool.begin().await.map_err(Error::sql("starting the ASN import"))?;
    clear_ranges(&mut tx).await?;
    let ranges = copy_ranges(&mut tx, table).await?;
    let imported_at = record_import(&mut tx, file, ranges).await?;
    tx.commit().await.map_err(Error::sql("committing the ASN import"))?;
    Ok(ImportSummary { file: file.to_owned(), rows: table.rows() as u64, ranges, imported_at })
}

async fn clear_ranges(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("TRUNCATE asn_ranges").execute(conn).await.map_err(Error::sql("emptying the ASN table"))?;
    Ok(())
}

/// Streams the ranges in COPY's text format; returns how many were stored.
async fn copy_ranges(conn: &mut PgConnection, table: &AsnTable) -> Result<u64> {
    let op = "copying the ASN ranges";
    let mut copy = conn
        .copy_in_raw("COPY asn_ranges (first, last, asn, country, name) FROM STDIN")
        .await
        .map_err(Error::sql(op))?;
    let mut buf = String::with_capacity(COPY_CHUNK + 1024);
    for (first, last, info) in table.ranges() {
        copy_row(&mut buf, first, last, info);
        if buf.len() >= COPY_CHUNK {
            copy.send(buf.as_bytes()).await.map_err(Error::sql(op))?;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        copy.send(buf.as_bytes()).await.map_err(Error::sql(op))?;
    }
    copy.finish().await.map_err(Error::sql(op))
}

/// One line of COPY text: tab-separated, with backslash, tab, newline and CR escaped in
/// the text fields.
fn copy_row(buf: &mut String, first: IpAddr, last: IpAddr, info: &AsnInfo) {
    use std::fmt::Write;
    let _ = write!(buf, "{first}\t{last}\t{}\t", info.asn);
    copy_text(buf, &info.country);
    buf.push('\t');
    copy_text(buf, &info.name);
    buf.push('\n');
}

fn copy_text(buf: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '\t' => buf.push_str("\\t"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            c => buf.push(c),
        }
    }
}

async fn record_import(conn: &mut PgConnection, file: &str, ranges: u64) -> Result<DateTime<Utc>> {
    sqlx::query_scalar("INSERT INTO asn_imports (file, ranges) VALUES ($1, $2) RETURNING imported_at")
        .bind(file)
        .bind(ranges as i64)
        .fetch_one(conn)
        .await
        .map_err(Error::sql("recording the ASN import"))
}

/// Who announces each of `ips`, in one query: addresses in no range, or in a range of AS
/// 0 ("not routed"), are absent from the answer. IPv4-mapped IPv6 addresses
/// (`::ffff:1.2.3.4`) are looked up as the IPv4 address they carry, and answered under
/// the address as given.
#[tracing::instrument(skip_all, fields(ips = ips.len()))]
pub async fn lookup(pool: &PgPool, ips: &[IpAddr]) -> Result<HashMap<IpAddr, AsnInfo>> {
    if ips.is_empty() {
        return Ok(HashMap::new());
    }
    let asked: Vec<String> = ips.iter().map(|ip| ip.to_canonical().to_string()).collect();
    // The range starting at or below each address (one backward step on the primary key),
    // kept when it is of the address's family (IPv4 sorts before IPv6, so an IPv6 address
    // below every IPv6 range finds the last IPv4 one) and reaches the address.
    let rows: Vec<(i64, i64, String, String)> = sqlx::query_as(
        "SELECT q.i, r.asn, r.country, r.name \
         FROM unnest($1::inet[]) WITH ORDINALITY AS q(ip, i) \
         CROSS JOIN LATERAL (SELECT a.first, a.last, a.asn, a.country, a.name FROM asn_ranges a \
                             WHERE a.first <= q.ip ORDER BY a.first DESC LIMIT 1) r \
         WHERE family(r.first) = family(q.ip) AND r.last >= q.ip AND r.asn <> 0",
    )
    .bind(&asked)
    .fetch_all(pool)
    .await
    .map_err(Error::sql("looking up AS numbers"))?;
    let answer = rows.into_iter().filter_map(|(i, asn, country, name)| {
        let ip = *ips.get(usize::try_from(i).ok()?.checked_sub(1)?)?;
        Some((ip, AsnInfo { asn: u32::try_from(asn).ok()?, country, name }))
    });
    Ok(answer.collect())
}

/// The last import, if any.
pub async fn status(pool: &PgPool) -> Result<Option<AsnImport>> {
    sqlx::query_as("SELECT imported_at, file, ranges FROM asn_imports ORDER BY imported_at DESC LIMIT 1")
        .fetch_optional(pool)
        .await
        .map_err(Error::sql("reading the last ASN import"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_rows_escape_what_copy_would_read_as_structure() {
        let info = AsnInfo { asn: 64512, country: "ZZ".into(), name: "A\\B\tC\rD\nE".into() };
        let mut buf = String::new();
        copy_row(&mut buf, "10.0.0.0".parse().unwrap(), "10.0.0.255".parse().unwrap(), &info);
        copy_row(&mut buf, "2001:db8::".parse().unwrap(), "2001:db8::ff".parse().unwrap(), &info);
        assert_eq!(
            buf,
            "10.0.0.0\t10.0.0.255\t64512\tZZ\tA\\\\B\\tC\\rD\\nE\n\
             2001:db8::\t2001:db8::ff\t64512\tZZ\tA\\\\B\\tC\\rD\\nE\n"
        );
    }
}
