//! The agent's spool: its reports the server has not acknowledged, on disk, so that a
//! restart (a crash, an upgrade, a reboot during a server outage) loses none of them.
//!
//! One append-only file, `spool.log`, in the spool directory (one per server and node). A
//! report is appended — and synced — before it counts as made; an acknowledgement (how
//! many of a report's results are done: delivered, or refused for good) is appended as the
//! server answers. At start the file is read back: the reports not fully acknowledged are
//! sent first, in order (the server skips results it already has, so a resend is
//! harmless), and the file is rewritten holding just them. The file is rewritten the same
//! way when everything is acknowledged (emptied) or when it holds far more than its live
//! reports. When the live reports pass the cap (`--spool-max`), the oldest go, counted.
//!
//! A record is a kind byte (1 report, 2 acknowledgement), the payload's length (u32, LE),
//! a CRC-32 (ISCSI) of kind and payload, then the payload: a report as JSON, an
//! acknowledgement as the report's sequence number (u64, LE) and its results done (u32,
//! LE). A record cut short or failing its CRC ends the reading: it is the torn last write
//! of a crash, said and skipped. [`replay`] is pure; [`Spool`] does the I/O.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::wire::{Local, ResultItem};

const REPORT: u8 = 1;
const ACK: u8 = 2;
const HEADER: usize = 9;
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
const FILE: &str = "spool.log";

/// A report as the spool keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpooledReport {
    pub seq: u64,
    pub made: DateTime<Utc>,
    pub results: Vec<ResultItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<Local>,
}

/// What a spool file held: the reports not fully acknowledged, oldest first (their
/// acknowledged results removed: a report's local figures go with its first results, so
/// they stay only while none was done), and whether its end was torn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replayed {
    pub reports: Vec<SpooledReport>,
    /// Bytes at the end that were not a whole, intact record.
    pub torn_bytes: usize,
}

/// One record's bytes.
fn record(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut digest = CRC.digest();
    digest.update(&[kind]);
    digest.update(payload);
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&digest.finalize().to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// A report record.
pub fn report_record(report: &SpooledReport) -> Vec<u8> {
    record(REPORT, &serde_json::to_vec(report).unwrap_or_default())
}

/// An acknowledgement record: `done` of report `seq`'s results are delivered or refused.
pub fn ack_record(seq: u64, done: usize) -> Vec<u8> {
    let mut payload = seq.to_le_bytes().to_vec();
    payload.extend_from_slice(&(done.min(u32::MAX as usize) as u32).to_le_bytes());
    record(ACK, &payload)
}

/// The live reports of a spool file's bytes.
pub fn replay(bytes: &[u8]) -> Replayed {
    let mut reports: BTreeMap<u64, (SpooledReport, usize)> = BTreeMap::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some((kind, payload, tail)) = next_record(rest) else { break };
        match kind {
            REPORT => {
                if let Ok(r) = serde_json::from_slice::<SpooledReport>(payload) {
                    reports.insert(r.seq, (r, 0));
                }
            }
            ACK if payload.len() == 12 => {
                let seq = u64::from_le_bytes(payload[..8].try_into().unwrap_or_default());
                let done = u32::from_le_bytes(payload[8..].try_into().unwrap_or_default()) as usize;
                if let Some((_, acked)) = reports.get_mut(&seq) {
                    *acked = (*acked).max(done);
                }
            }
            _ => {}
        }
        rest = tail;
    }
    let reports = reports
        .into_values()
        .filter(|(r, done)| *done < r.results.len() || (r.results.is_empty() && *done == 0 && r.local.is_some()))
        .map(|(mut r, done)| {
            if done > 0 {
                r.results.drain(..done);
                r.local = None;
            }
            r
        })
        .collect();
    Replayed { reports, torn_bytes: rest.len() }
}

/// The first intact record of `bytes`: kind, payload, what follows.
fn next_record(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let header = bytes.get(..HEADER)?;
    let len = u32::from_le_bytes(header[1..5].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[5..9].try_into().ok()?);
    let payload = bytes.get(HEADER..HEADER.checked_add(len)?)?;
    let mut digest = CRC.digest();
    digest.update(&header[..1]);
    digest.update(payload);
    (digest.finalize() == crc).then(|| (header[0], payload, &bytes[HEADER + len..]))
}

/// The spool directory of one agent: per server and node, so that agents of other nodes,
/// or of one node reporting to another server, never send each other's results.
pub fn dir_for(base: &Path, server: &str, node: &str) -> PathBuf {
    let hash = server.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let safe: String =
        node.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    base.join(format!("{safe}-{:08x}", hash as u32))
}

/// The spool file, open for appending, and locked against a second agent.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    file: File,
    /// Bytes in the file now.
    pub bytes: u64,
    _lock: File,
}

impl Spool {
    /// Opens (creating) the spool in `dir`, reads back what it holds, and rewrites it with
    /// just that. Fails when another agent holds it.
    pub fn open(dir: &Path) -> io::Result<(Spool, Replayed)> {
        std::fs::create_dir_all(dir)?;
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("lock"))?;
        lock.try_lock().map_err(|_| {
            io::Error::new(io::ErrorKind::WouldBlock, format!("another agent uses the spool {}", dir.display()))
        })?;
        let bytes = match std::fs::read(dir.join(FILE)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let replayed = replay(&bytes);
        let file = OpenOptions::new().create(true).append(true).open(dir.join(FILE))?;
        let mut spool = Spool { dir: dir.to_path_buf(), file, bytes: bytes.len() as u64, _lock: lock };
        spool.rewrite(&replayed.reports)?;
        Ok((spool, replayed))
    }

    /// Appends a report and syncs it to disk: once this returns, the report survives a
    /// crash. Returns the bytes it took.
    pub fn append_report(&mut self, report: &SpooledReport) -> io::Result<u64> {
        let rec = report_record(report);
        self.file.write_all(&rec)?;
        self.file.sync_data()?;
        self.bytes += rec.len() as u64;
        Ok(rec.len() as u64)
    }

    /// Appends an acknowledgement (not synced: one lost in a crash means a harmless resend).
    pub fn ack(&mut self, seq: u64, done: usize) -> io::Result<()> {
        let rec = ack_record(seq, done);
        self.file.write_all(&rec)?;
        self.bytes += rec.len() as u64;
        Ok(())
    }

    /// Replaces the file with one holding `live` (written aside, synced, renamed over).
    pub fn rewrite(&mut self, live: &[SpooledReport]) -> io::Result<()> {
        let aside = self.dir.join(format!("{FILE}.new"));
        let mut out = File::create(&aside)?;
        let mut bytes = 0;
        for report in live {
            let rec = report_record(report);
            out.write_all(&rec)?;
            bytes += rec.len() as u64;
        }
        out.sync_all()?;
        std::fs::rename(&aside, self.dir.join(FILE))?;
        File::open(&self.dir)?.sync_all()?;
        self.file = OpenOptions::new().append(true).open(self.dir.join(FILE))?;
        self.bytes = bytes;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ProbeKind, ProbeOutcome};

    fn item(edge_id: i64) -> ResultItem {
        ResultItem {
            edge_id,
            at: "2026-12-05T16:00:00Z".parse().unwrap(),
            kind: ProbeKind::Icmp,
            port: None,
            outcome: ProbeOutcome::not_sent("x"),
        }
    }

    fn report(seq: u64, edges: &[i64]) -> SpooledReport {
        SpooledReport {
            seq,
            made: "2026-12-05T16:00:00Z".parse().unwrap(),
            results: edges.iter().map(|&e| item(e)).collect(),
            local: Some(Local { load1: Some(0.5), ..Local::default() }),
        }
    }

    #[test]
    fn reports_come_back_less_what_was_acknowledged() {
        let mut bytes = Vec::new();
        bytes.extend(report_record(&report(0, &[1, 2])));
        bytes.extend(report_record(&report(1, &[3, 4, 5])));
        bytes.extend(ack_record(0, 2));
        bytes.extend(report_record(&report(2, &[6])));
        bytes.extend(ack_record(1, 1));
        let r = replay(&bytes);
        assert_eq!(r.torn_bytes, 0);
        assert_eq!(r.reports.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2], "0 was fully acknowledged");
        assert_eq!(r.reports[0].results.iter().map(|i| i.edge_id).collect::<Vec<_>>(), [4, 5]);
        assert_eq!(r.reports[0].local, None, "its local figures went with its first result");
        assert_eq!(r.reports[1], report(2, &[6]));
    }

    #[test]
    fn a_torn_last_record_is_skipped_and_measured() {
        let mut bytes = report_record(&report(0, &[1]));
        let whole = bytes.len();
        bytes.extend(report_record(&report(1, &[2])));
        for cut in [whole + 1, whole + HEADER, bytes.len() - 1] {
            let r = replay(&bytes[..cut]);
            assert_eq!(r.reports, [report(0, &[1])], "cut at {cut}");
            assert_eq!(r.torn_bytes, cut - whole);
        }
        // A flipped bit fails the CRC: the rest is not trusted.
        let mut flipped = bytes.clone();
        flipped[whole + HEADER + 3] ^= 0x20;
        assert_eq!(replay(&flipped).reports.len(), 1);
        assert_eq!(replay(&[]), Replayed::default());
    }

    #[test]
    fn the_spool_on_disk_survives_a_reopen_and_is_locked_while_open() {
        let dir = std::env::temp_dir().join(format!("edgewatch-spool-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let (mut spool, replayed) = Spool::open(&dir).unwrap();
            assert!(replayed.reports.is_empty());
            spool.append_report(&report(0, &[1, 2])).unwrap();
            spool.append_report(&report(1, &[3])).unwrap();
            spool.ack(0, 2).unwrap();
            assert!(Spool::open(&dir).is_err(), "a second agent on the same spool is refused");
        }
        // A crash mid-write: half a record at the end.
        let half = &report_record(&report(2, &[4]))[..20];
        OpenOptions::new().append(true).open(dir.join(FILE)).unwrap().write_all(half).unwrap();
        let (spool, replayed) = Spool::open(&dir).unwrap();
        assert_eq!(replayed.reports, [report(1, &[3])]);
        assert_eq!(replayed.torn_bytes, 20);
        assert_eq!(spool.bytes, report_record(&report(1, &[3])).len() as u64, "rewritten with just the live report");
        drop(spool);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn spool_directories_differ_by_server_and_node() {
        let base = Path::new("/var/lib/edgewatch/spool");
        let a = dir_for(base, "https://ew1:8440", "be1.host101");
        assert_ne!(a, dir_for(base, "https://ew2:8440", "be1.host101"));
        assert_ne!(a, dir_for(base, "https://ew1:8440", "be2.host101"));
        assert!(dir_for(base, "x", "../../etc").file_name().unwrap().to_str().unwrap().starts_with(".._.._etc-"));
    }
}
