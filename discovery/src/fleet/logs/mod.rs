//! Writing a generated fleet's query log in one PowerDNS flavour: the flavours, and the
//! writer they share (clock, line prefixes, output buffer); each flavour's start-up and
//! query lines are in its own module.
//!
//! - [`auth`]: the authoritative server, on the console, plain, or through syslog.
//! - [`recursor_old`]: the recursor's unstructured questions and answers.
//! - [`recursor_structured`]: the recursor's `key="value"` lines.
//! - [`journald_json`]: the recursor through the journal, `journalctl -o json`.
//! - [`pipe`]: the pipe backend's `Q` lines.

mod auth;
mod journald_json;
mod pipe;
mod recursor_old;
mod recursor_structured;

use std::fmt;
use std::io::{self, Write};
use std::net::IpAddr;
use std::str::FromStr;

use super::inventory::Fleet;
use super::plan::{Plan, Query, START_US};
use super::rng::{Rng, STREAM_DECOR};

/// A query-log flavour, as written by a real PowerDNS set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavour {
    /// Authoritative 4.7, `log-dns-queries=yes`, stderr with its own `%b %d %H:%M:%S`.
    AuthConsole,
    /// The same with `--log-timestamp=no` (the systemd unit's journal).
    AuthPlain,
    /// The same through rsyslog into Debian 12's `/var/log/syslog` (RFC 3339 time).
    AuthSyslog,
    /// Recursor 4.8, `structured-logging=no`: questions, answers, nameless cache hits.
    RecursorOld,
    /// Recursor 4.8, `structured-logging=yes`: `msg="Question" … qname="…"` lines.
    RecursorStructured,
    /// The pipe backend's `Q` lines (ABI 2), as the coprocess reads them.
    Pipe,
    /// Recursor 4.8 with the systemd-journal backend, `journalctl -o json`.
    JournaldJson,
}

impl Flavour {
    pub const ALL: [Flavour; 7] = [
        Flavour::AuthConsole,
        Flavour::AuthPlain,
        Flavour::AuthSyslog,
        Flavour::RecursorOld,
        Flavour::RecursorStructured,
        Flavour::Pipe,
        Flavour::JournaldJson,
    ];

    /// The name on the command line: `auth-console`, `rec-old`, `journald-json`, ….
    pub fn name(self) -> &'static str {
        match self {
            Flavour::AuthConsole => "auth-console",
            Flavour::AuthPlain => "auth-plain",
            Flavour::AuthSyslog => "auth-syslog",
            Flavour::RecursorOld => "rec-old",
            Flavour::RecursorStructured => "rec-structured",
            Flavour::Pipe => "pipe",
            Flavour::JournaldJson => "journald-json",
        }
    }

    /// The log's file name, as in `examples/sample-fleet`: `pdns-<name>.log`.
    pub fn file_name(self) -> String {
        format!("pdns-{}.log", self.name())
    }

    fn index(self) -> u64 {
        Flavour::ALL.iter().position(|&f| f == self).unwrap_or(0) as u64
    }
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Flavour {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Flavour::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Flavour::ALL.iter().map(|f| f.name()).collect();
            format!("unknown flavour {s:?}; one of {}", names.join(", "))
        })
    }
}

/// What a line is expected to give when parsed: a query record, or nothing.
pub(super) type Expected = Option<(IpAddr, String, &'static str)>;

/// Writes one flavour's log: the queries of [`Plan`], each as the flavour logs it, with
/// details (ports, thread ids, cache hits, answer lines) drawn from the flavour's own
/// stream.
pub(super) struct LogGen<'f> {
    fleet: &'f Fleet,
    flavour: Flavour,
    plan: Plan<'f>,
    decor: Rng,
    now_us: i64,
    /// The second the cached time texts are for, and the texts.
    clock_sec: i64,
    console: String,
    iso: String,
    mtid: [u32; 4],
    qname: String,
    line: Vec<u8>,
    out: Vec<u8>,
    left: u64,
}

impl<'f> LogGen<'f> {
    pub(super) fn new(fleet: &'f Fleet, seed: u64, flavour: Flavour) -> LogGen<'f> {
        LogGen {
            fleet,
            flavour,
            plan: Plan::new(fleet, seed),
            decor: Rng::new(seed, STREAM_DECOR + flavour.index()),
            now_us: START_US,
            clock_sec: i64::MIN,
            console: String::new(),
            iso: String::new(),
            mtid: [0; 4],
            qname: String::new(),
            line: Vec::with_capacity(512),
            out: Vec::with_capacity(1 << 16),
            left: 0,
        }
    }

    /// Writes `lines` lines to `out`; with `expect`, also what each line should parse to.
    pub(super) fn run(
        &mut self,
        lines: u64,
        out: &mut impl Write,
        mut expect: Option<&mut Vec<Expected>>,
    ) -> io::Result<()> {
        self.left = lines;
        self.startup(&mut expect);
        while self.left > 0 {
            let query = self.plan.next(&mut self.qname);
            self.now_us += query.gap_us;
            self.write_query(&query, &mut expect);
            if self.out.len() >= 1 << 16 {
                out.write_all(&self.out)?;
                self.out.clear();
            }
        }
        out.write_all(&self.out)?;
        self.out.clear();
        out.flush()
    }

    /// The lines a server writes as it starts, before any query.
    fn startup(&mut self, expect: &mut Option<&mut Vec<Expected>>) {
        match self.flavour {
            Flavour::AuthConsole | Flavour::AuthPlain | Flavour::AuthSyslog => self.auth_startup(expect),
            Flavour::RecursorOld => self.recursor_old_startup(expect),
            Flavour::RecursorStructured => self.recursor_structured_startup(expect),
            Flavour::Pipe => self.pipe_startup(expect),
            Flavour::JournaldJson => self.journald_startup(expect),
        }
    }

    /// The lines one query gives (the name in `self.qname`).
    fn write_query(&mut self, q: &Query, expect: &mut Option<&mut Vec<Expected>>) {
        match self.flavour {
            Flavour::AuthConsole | Flavour::AuthPlain | Flavour::AuthSyslog => self.auth_query(q, expect),
            Flavour::RecursorOld => self.recursor_old_query(q, expect),
            Flavour::RecursorStructured => self.recursor_structured_query(q, expect),
            Flavour::Pipe => self.pipe_query(q, expect),
            Flavour::JournaldJson => self.journald_query(q, expect),
        }
    }

    /// A client's source port.
    fn port(&mut self) -> u64 {
        self.decor.range(32768, 60999)
    }

    /// Network and total time of an answer in µs, and the packets it took.
    fn answer_times(&mut self) -> (u64, u64, u64) {
        let packets = self.decor.range(0, 3);
        if packets == 0 {
            return (0, 0, 0);
        }
        let netw = self.decor.range(150, 1500);
        (netw, netw + self.decor.range(80, 900), packets)
    }

    /// Advances the clock by `lo..=hi` µs.
    fn tick(&mut self, lo: u64, hi: u64) {
        self.now_us += self.decor.range(lo, hi.max(lo)) as i64;
    }

    /// `1795312800.123`: epoch seconds with milliseconds, as the recursor writes `ts=`.
    fn ts_ms(&self) -> String {
        format!("{}.{:03}", self.now_us.div_euclid(1_000_000), self.now_us.rem_euclid(1_000_000) / 1000)
    }

    /// Starts a line with the flavour's prefix for the current time.
    fn begin_line(&mut self) {
        let sec = self.now_us.div_euclid(1_000_000);
        if sec != self.clock_sec {
            let time = chrono::DateTime::from_timestamp(sec, 0).unwrap_or_default();
            self.console = time.format("%b %d %H:%M:%S ").to_string();
            self.iso = time.format("%Y-%m-%dT%H:%M:%S").to_string();
            self.clock_sec = sec;
        }
        match self.flavour {
            Flavour::AuthConsole | Flavour::RecursorOld | Flavour::RecursorStructured => {
                self.line.extend_from_slice(self.console.as_bytes())
            }
            Flavour::AuthSyslog => {
                let _ =
                    write!(self.line, "{}.{:06}+00:00 ns1 pdns[1187]: ", self.iso, self.now_us.rem_euclid(1_000_000));
            }
            Flavour::AuthPlain | Flavour::Pipe | Flavour::JournaldJson => {}
        }
    }

    /// Emits the line as the question `q` asks (the name in `self.qname`).
    fn emit_query(&mut self, q: &Query, expect: &mut Option<&mut Vec<Expected>>) {
        let expected = expect.is_some().then(|| (IpAddr::V4(q.client), self.qname.clone(), q.qtype));
        self.emit(expected, expect);
    }

    /// Moves the line to the output, if the caller still wants lines; with `expect`,
    /// records what it should parse to.
    fn emit(&mut self, expected: Expected, expect: &mut Option<&mut Vec<Expected>>) {
        if self.left > 0 {
            if let Some(e) = expect.as_deref_mut() {
                e.push(expected);
            }
            self.out.extend_from_slice(&self.line);
            self.out.push(b'\n');
            self.left -= 1;
        }
        self.line.clear();
    }
}

/// Answer count and rcode of an answer line.
fn answer_counts(q: &Query, rng: &mut Rng) -> (u64, u8) {
    if q.answered {
        (rng.range(1, 4), 0)
    } else {
        (0, 3)
    }
}

/// µs as milliseconds with `digits` decimals (3 or 6), as the recursor prints them.
struct Millis(u64, usize);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Millis(us, digits) = *self;
        if digits == 6 {
            write!(f, "{}.{:03}000", us / 1000, us % 1000)
        } else if us == 0 {
            f.write_str("0")
        } else {
            write!(f, "{}.{:03}", us / 1000, us % 1000)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ctx, log, small};
    use super::super::FleetSpec;
    use super::*;
    use crate::dns::parse::parse_line;
    use crate::dns::record::Parsed;

    /// The log and what each line should parse to.
    fn log_with_expectations(spec: &FleetSpec, flavour: Flavour, lines: u64) -> (Vec<u8>, Vec<Expected>) {
        let fleet = Fleet::generate(spec);
        let (mut out, mut expected) = (Vec::new(), Vec::new());
        LogGen::new(&fleet, spec.seed, flavour).run(lines, &mut out, Some(&mut expected)).unwrap();
        (out, expected)
    }

    #[test]
    fn every_line_parses_to_what_was_written() {
        let spec = small();
        for flavour in Flavour::ALL {
            let (text, expected) = log_with_expectations(&spec, flavour, 20_000);
            let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
            assert_eq!(lines.last(), Some(&&b""[..]), "{flavour}: ends with a newline");
            assert_eq!(lines.len() - 1, 20_000, "{flavour}");
            assert_eq!(expected.len(), 20_000, "{flavour}");
            let (mut queries, mut last_time) = (0, i64::MIN);
            for (line, want) in lines.iter().zip(&expected) {
                let shown = String::from_utf8_lossy(line);
                match (parse_line(line, &ctx()), want) {
                    (Parsed::Query(got), Some((client, qname, qtype))) => {
                        assert_eq!(
                            (&got.client, got.qname.as_ref(), got.qtype),
                            (client, qname.as_str(), *qtype),
                            "{flavour}: {shown}"
                        );
                        if let Some(t) = got.time_us {
                            assert!(t >= last_time, "{flavour}: time goes back: {shown}");
                            assert!((START_US..START_US + 60_000_000).contains(&t), "{shown}");
                            last_time = t;
                        }
                        queries += 1;
                    }
                    (Parsed::Skipped(_), None) => {}
                    (got, want) => panic!("{flavour}: {shown}\n got {got:?}\nwant {want:?}"),
                }
            }
            assert!(queries > 5_000, "{flavour}: {queries} queries");
        }
    }

    #[test]
    fn short_logs_have_exactly_the_lines_asked_for() {
        for flavour in Flavour::ALL {
            for lines in [0, 1, 2, 5, 17, 40] {
                let text = log(&small(), flavour, lines);
                assert_eq!(text.iter().filter(|&&b| b == b'\n').count() as u64, lines, "{flavour}");
            }
        }
    }

    #[test]
    fn flavour_names_round_trip() {
        for flavour in Flavour::ALL {
            assert_eq!(flavour.name().parse::<Flavour>(), Ok(flavour));
        }
        assert!("auth".parse::<Flavour>().is_err());
        assert_eq!(Flavour::RecursorOld.file_name(), "pdns-rec-old.log");
    }
}
