//! `edgewatch asn import|lookup|status`: the ip-to-ASN table (iptoasn.com's
//! ip2asn-combined.tsv) that labels trace hops with who announces them.

use std::io::Read;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use graph_store::format_utc;
use graph_store::paths::{self, AsnTable};
use serde::Serialize;

use crate::cli::{AsnCommand, ListFormat, TextFormat};
use crate::config::Settings;
use crate::output;

/// Said after every refusal.
const UNCHANGED: &str = "nothing imported, the stored ASN table is unchanged";

/// The columns of a row, in order, as the parser names them in its errors.
const FIELDS: [&str; 5] = ["range_start", "range_end", "AS_number", "country_code", "AS_description"];

pub async fn run(settings: &Settings, cmd: AsnCommand) -> Result<ExitCode> {
    match cmd {
        AsnCommand::Import { file, format } => import(settings, &file, format).await,
        AsnCommand::Lookup { ips, format } => lookup(settings, &ips, format).await,
        AsnCommand::Status { format } => status(settings, format).await,
    }
}

async fn import(settings: &Settings, file: &Path, format: TextFormat) -> Result<ExitCode> {
    // Read and check the whole file before connecting: a bad row is reported even with no
    // database, and nothing is stored.
    let (name, table) = read_table(file)?;
    let db = super::shared::connect(settings).await?;
    let summary =
        paths::import_asn_table(&db.pool, &name, &table).await.with_context(|| format!("{name}: {UNCHANGED}"))?;
    match format {
        TextFormat::Json => output::json(&summary)?,
        TextFormat::Text => println!(
            "{}: {} rows, stored as {} ranges (imported {})",
            summary.file,
            summary.rows,
            summary.ranges,
            format_utc(&summary.imported_at)
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// The file's name as errors give it, and its table; refused whole on a bad row.
fn read_table(file: &Path) -> Result<(String, AsnTable)> {
    let name = if file == Path::new("-") { "stdin".to_owned() } else { file.display().to_string() };
    let raw = read_all(file).with_context(|| format!("reading {name}"))?;
    let bytes = gunzip_if_gzip(raw).map_err(|e| anyhow!("{name}: not a whole gzip file ({e}); {UNCHANGED}"))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let (line, field) = locate(e.as_bytes(), e.utf8_error().valid_up_to());
        anyhow!("{name}:{line}: field {field}: not UTF-8 text; {UNCHANGED}")
    })?;
    let table = paths::parse_asn_table(&text, &name).map_err(|e| anyhow!("{e}; {UNCHANGED}"))?;
    if table.rows() == 0 {
        bail!("{name}: no rows (expected iptoasn's ip2asn-combined.tsv); {UNCHANGED}");
    }
    Ok((name, table))
}

fn read_all(file: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if file == Path::new("-") {
        std::io::stdin().lock().read_to_end(&mut bytes)?;
    } else {
        std::fs::File::open(file)?.read_to_end(&mut bytes)?;
    }
    Ok(bytes)
}

/// The bytes decompressed when they start with gzip's magic number, else as they are.
fn gunzip_if_gzip(bytes: Vec<u8>) -> std::io::Result<Vec<u8>> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() * 4);
    flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_end(&mut out)?;
    Ok(out)
}

/// The line (from 1) and the field of byte `at`.
fn locate(bytes: &[u8], at: usize) -> (usize, &'static str) {
    let before = &bytes[..at.min(bytes.len())];
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let tabs = before[line_start..].iter().filter(|&&b| b == b'\t').count();
    (line, FIELDS.get(tabs).copied().unwrap_or("beyond AS_description"))
}

/// One answer of `asn lookup`; none but `ip` for an address nobody announces.
#[derive(Debug, Serialize)]
struct Answer {
    ip: IpAddr,
    asn: Option<u32>,
    country: Option<String>,
    name: Option<String>,
}

async fn lookup(settings: &Settings, ips: &[IpAddr], format: ListFormat) -> Result<ExitCode> {
    let db = super::shared::connect(settings).await?;
    if paths::asn_status(&db.pool).await?.is_none() {
        bail!(
            "no ASN table imported yet: get ip2asn-combined.tsv.gz from iptoasn.com and run \
             `edgewatch asn import ip2asn-combined.tsv.gz`"
        );
    }
    let found = paths::lookup_asns(&db.pool, ips).await?;
    let answers: Vec<Answer> = ips
        .iter()
        .map(|&ip| match found.get(&ip).cloned() {
            Some(info) => Answer { ip, asn: Some(info.asn), country: Some(info.country), name: Some(info.name) },
            None => Answer { ip, asn: None, country: None, name: None },
        })
        .collect();
    match format {
        ListFormat::Json => output::json(&answers)?,
        ListFormat::Table => {
            let mut t = output::table(&["ip", "asn", "country", "name"]);
            for a in &answers {
                t.add_row(vec![
                    a.ip.to_string(),
                    a.asn.map_or_else(|| "-".to_owned(), |asn| asn.to_string()),
                    a.country.clone().unwrap_or_default(),
                    a.name.clone().unwrap_or_else(|| "(not routed, or in no range)".to_owned()),
                ]);
            }
            println!("{t}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(settings: &Settings, format: TextFormat) -> Result<ExitCode> {
    let db = super::shared::connect(settings).await?;
    let last = paths::asn_status(&db.pool).await?;
    match (format, &last) {
        (TextFormat::Json, _) => output::json(&last)?,
        (TextFormat::Text, Some(last)) => {
            println!("ASN table: {} ranges from {}, imported {}", last.ranges, last.file, format_utc(&last.imported_at))
        }
        (TextFormat::Text, None) => println!(
            "no ASN table imported yet: get ip2asn-combined.tsv.gz from iptoasn.com and run \
             `edgewatch asn import ip2asn-combined.tsv.gz`"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_byte_is_located_by_line_and_field() {
        let text = b"1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUD\n\n2.0.0.0\t2.0.0.9\t7\tZZ\tNAME\textra";
        let cases = [
            (0, (1, "range_start")),
            (8, (1, "range_end")),
            (30, (1, "AS_description")),
            (34, (3, "range_start")),
            (52, (3, "country_code")),
            (text.len(), (3, "beyond AS_description")),
        ];
        for (at, want) in cases {
            assert_eq!(locate(text, at), want, "byte {at}");
        }
    }

    #[test]
    fn gzip_is_read_by_its_magic_number() {
        let plain = b"1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(gunzip_if_gzip(gz).unwrap(), plain);
        assert_eq!(gunzip_if_gzip(plain.clone()).unwrap(), plain);
        assert!(gunzip_if_gzip(vec![0x1f, 0x8b, 0, 1]).is_err(), "a damaged gzip file is an error");
    }
}
