//! The command line: every subcommand and flag, with the help text that teaches them.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use graph_store::Pooler;

#[derive(Debug, Parser)]
#[command(
    name = "edgewatch",
    version = concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("EDGEWATCH_GIT_COMMIT"), ")"),
    about = "Who cannot reach whom, since when, and whose fault is it.",
    long_about = "edgewatch learns which containers talk to which services from PowerDNS query \
logs and CMDB exports, keeps that dependency graph in PostgreSQL, probes every edge from the \
side that uses it, and tells operators what is broken and where the fault most likely is.\n\n\
With no --database-url (or DATABASE_URL) it runs its own private PostgreSQL cluster in \
--data-dir, listening only on a unix socket there.",
    after_help = "Start here:\n  edgewatch demo                      load the sample fleet and show it\n  \
edgewatch cmdb import inventory.json links.txt\n  edgewatch graph nodes\n  \
edgewatch graph edges --format json"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// PostgreSQL to use, e.g. postgres://edgewatch@db.example.com/edgewatch. Without
    /// it, the embedded cluster in --data-dir is used (and started when needed).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// A streaming-replication standby of that PostgreSQL for the read-only questions
    /// (graph, incidents, check, report, route, sql, the API's GETs); past [database]
    /// max_read_lag (default 30s) of replay lag, reads go to the primary.
    #[arg(long, env = "EDGEWATCH_READ_DATABASE_URL", global = true, hide_env_values = true)]
    pub read_database_url: Option<String>,

    /// What sits between edgewatch and PostgreSQL (both URLs): `transaction` for a pooler
    /// that may give each transaction another server connection, such as pgbouncer with
    /// pool_mode = transaction (any version; edgewatch then prepares no named statements
    /// and runs every statement in a transaction); `session` (pool_mode = session) and
    /// `none` change nothing [default: [database] pooler, else none]
    #[arg(long, env = "EDGEWATCH_POOLER", global = true, value_parser = pooler_parser())]
    pub pooler: Option<Pooler>,

    /// Directory of the embedded PostgreSQL cluster (used when no --database-url)
    /// [default: .edgewatch]
    #[arg(long, env = "EDGEWATCH_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// Configuration file (TOML); flags and environment variables win over it.
    #[arg(long, env = "EDGEWATCH_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// More log output on stderr (-v info, -vv debug); EDGEWATCH_LOG takes a full filter.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// How long a long-running command (serve, probe, agent, dns tail, cmdb watch, run)
    /// has to finish its work after SIGTERM or SIGINT before it exits anyway (status 1).
    #[arg(long, env = "EDGEWATCH_STOP_TIMEOUT", global = true, value_parser = parse_duration, default_value = "10s")]
    pub stop_timeout: Duration,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load the bundled sample fleet into the embedded store and show what to try next.
    Demo,
    /// Apply pending database migrations (also done automatically by every command).
    Migrate,
    /// Manage the embedded PostgreSQL cluster.
    #[command(subcommand)]
    Db(DbCommand),
    /// Import CMDB exports: inventory snapshots and published links.
    #[command(subcommand)]
    Cmdb(CmdbCommand),
    /// Learn edges from PowerDNS query logs.
    #[command(subcommand)]
    Dns(DnsCommand),
    /// Look at the dependency graph, now or (with --at) as it was.
    Graph(GraphArgs),
    /// Run the prober worker pool: claim due edges from the store, probe them, record.
    Probe(ProbeArgs),
    /// Serve the HTTP API: the graph questions under /api/v1/ (OpenAPI at
    /// /api/v1/openapi.json), the agents' endpoints, /healthz, /readyz, /metrics.
    Serve(ServeArgs),
    /// Run one agent: probe this node's edges from where the traffic starts.
    Agent(AgentArgs),
    /// Trace the path to an address now, mtr-style (Paris: every probe of the trace takes
    /// one path through load balancers), and print it like `mtr --report`: per hop the
    /// address(es), their owner from `[owners]`, loss, sent, RTT avg/best/worst, standard
    /// deviation and jitter. Needs root or CAP_NET_RAW (raw sockets).
    ///
    /// `--protocol tcp --port N` sends TCP SYNs to the service's port: they take the path
    /// the service's connections take, through the same firewalls. The destination answers
    /// SYN-ACK (open) or reset (closed), and either counts as reached; a firewall that drops
    /// the port ends the trace at the last hop before it. No connection is made: this
    /// host's kernel resets the SYN-ACK, which it knows nothing of.
    ///
    /// Exit status: 0 the destination answered, 2 it did not, 1 an error (a destination
    /// outside --allow is refused before anything is sent).
    ///
    /// Example: `edgewatch trace 127.0.0.1`, `edgewatch trace ::1 --format json`,
    /// `edgewatch trace 10.1.2.3 --protocol tcp --port 5432 --allow 10.0.0.0/8`.
    Trace(TraceArgs),
    /// Ping targets now, like `fping -q -c N`: per target the echo requests sent and
    /// answered, the loss and the round-trip min/avg/max, in the order given.
    ///
    /// Every target must be inside the allow-list (--allow, default loopback only): one
    /// outside it, or a line that is not an address, stops the command before any packet
    /// is sent to any target. Uses the probe engine's ICMP sockets (raw as root, else the
    /// kernel's unprivileged ICMP socket where net.ipv4.ping_group_range allows it).
    ///
    /// Exit status (as fping): 0 every target answered at least once; 1 some target did not
    /// answer at all; 2 bad input (usage, a target that is not an address or is outside the
    /// allow-list, an unreadable file) or no ICMP socket: nothing was sent.
    #[command(after_help = "Examples:\n  \
edgewatch ping 127.0.0.1 ::1\n  \
edgewatch ping --count 3 --period 50 127.0.0.2 127.0.0.3 --format json\n  \
edgewatch ping -f targets.txt                 one address a line, # comments\n  \
seq 1 9 | sed 's/^/127.0.0./' | edgewatch ping -f -\n  \
edgewatch ping --allow 10.20.0.0/16 10.20.1.5   beyond loopback: allow the network")]
    Ping(PingArgs),
    /// Path history between host pairs: the hops over a window, windows side by side, and
    /// the route changes edgewatch found (which hop, since when, whose network). SRC and
    /// DST name a pair by node (its host), host, address, or external target name.
    #[command(subcommand)]
    Route(RouteCommand),
    /// Manage agent tokens.
    #[command(subcommand, name = "agent-token")]
    AgentToken(AgentTokenCommand),
    /// The ip-to-ASN table that labels trace hops with who announces them (AS number,
    /// country, AS name): import iptoasn.com's ip2asn-combined.tsv, look addresses up.
    #[command(subcommand)]
    Asn(AsnCommand),
    /// Run a read-only SQL query and print a table, e.g.
    /// `edgewatch sql "SELECT name FROM node_health ORDER BY disconnects DESC"`.
    ///
    /// The live table `node_health` has one row per node: name, disconnects (edges down
    /// now), dc, role, load, nginx_err_rate, connectivity (unreachable addresses),
    /// nginx_access_rate. docs/queries.md has more examples.
    Sql {
        query: String,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Give up after this long.
        #[arg(long, value_parser = parse_duration, default_value = "30s")]
        timeout: Duration,
    },
    /// Make a synthetic fleet: a CMDB inventory and PowerDNS logs, for trials and benchmarks.
    #[command(subcommand)]
    Fleet(FleetCommand),
    /// Print a shell completion script, e.g.
    /// `edgewatch completions bash > /etc/bash_completion.d/edgewatch`,
    /// `edgewatch completions zsh > "${fpath[1]}/_edgewatch"`,
    /// `edgewatch completions fish > ~/.config/fish/completions/edgewatch.fish`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the manual page (roff), e.g. `edgewatch man > /usr/local/share/man/man1/edgewatch.1`
    /// or `edgewatch man | man -l -`.
    Man,
    /// The broken edges grouped into incidents, each with its likely culprit (a data-center
    /// link, a host pair, a host, a node, or one edge) and the counts behind it.
    ///
    /// While a `serve` leader keeps the diagnosis fresh, its stored one is used when it is
    /// at most 2 minutes old and saw exactly the edges broken now (at a million edges, a
    /// new one takes seconds); else, or with `--fresh`, a new one is made.
    Incidents {
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Make a new diagnosis even when the stored one still matches the broken edges.
        #[arg(long)]
        fresh: bool,
    },
    /// Monitoring checks.
    #[command(subcommand)]
    Check(CheckCommand),
    /// The dependency report of one day (default: yesterday): summary, dependencies per
    /// service and role, what changed, cross-DC dependencies, broken and flapping edges,
    /// incidents, CMDB hygiene, and (HTML) a picture of the service graph. Made from the
    /// hourly rollups, so any day whose rollups are kept (400 days) can be made again; each
    /// day's report is also stored in the database.
    Report(ReportArgs),
    /// Run the scheduled jobs: the daily report at `[report] at` (default 00:15 local
    /// time) for the day before, stored in the database (and written to `[report] dir`).
    Run(RunArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Md,
    Html,
    Json,
}

impl ReportFormat {
    pub fn name(self) -> &'static str {
        match self {
            ReportFormat::Md => "md",
            ReportFormat::Html => "html",
            ReportFormat::Json => "json",
        }
    }
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The day, in the report's time zone (default: yesterday).
    #[arg(long, conflicts_with = "since")]
    pub date: Option<chrono::NaiveDate>,
    /// Instead of a day: the last DURATION up to now (e.g. 6h); not stored.
    #[arg(long, value_parser = parse_duration)]
    pub since: Option<Duration>,
    /// IANA time zone of the day and of the times shown (default: this machine's).
    #[arg(long)]
    pub tz: Option<String>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    pub format: ReportFormat,
    /// Write to this file (replaced whole) instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Make the reports that are due now (yesterday's, if not stored yet) and stop.
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// A Nagios / Monitoring Plugins check: `EDGEWATCH OK|WARNING|CRITICAL|UNKNOWN - …`
    /// with performance data, the incidents and the problem servers as long output, exit
    /// 0/1/2/3. UNKNOWN when the database cannot be reached or no probe result is newer
    /// than --max-age. With --passive, also writes one PROCESS_SERVICE_CHECK_RESULT per
    /// problem host to Nagios's command file (and a recovery when it clears).
    ///
    /// Ranges follow the Monitoring Plugins guidelines: 10 (alert above 10), 10: (below
    /// 10), ~:10 (above 10), 10:20 (outside), @10:20 (inside).
    Nagios(CheckArgs),
}

#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// The hops from SRC to DST over a window, aggregated like `mtr --report`: per hop
    /// the addresses (with how many runs each answered in), whose network (`[owners]`,
    /// imported AS), loss, RTT avg/best/worst/stdev, jitter; routers that only
    /// rate-limit their own answers and where loss starts are marked.
    ///
    /// Example: `edgewatch route show web1.h1 search.h9 --at 16:00 --window 5m`.
    Show {
        src: String,
        dst: String,
        /// The window's start (default: one window before now).
        #[arg(long, value_parser = crate::when::parse, value_name = "TIME")]
        at: Option<chrono::DateTime<chrono::Utc>>,
        /// The window's width.
        #[arg(long, value_parser = parse_duration, default_value = "5m")]
        window: Duration,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Windows side by side, each compared with the one before: hops changed (≠),
    /// added (+), the first diverging hop and whose network it is, hops slower by more
    /// than --rtt-worse-ms and --rtt-worse-pct, loss that started (!). Give --from and
    /// --to, or --at two or more times (the 16:00 / 16:15 / 16:30 story); with neither,
    /// 30 minutes ago against now.
    ///
    /// Example: `edgewatch route diff web1.h1 search.h9 --at 16:00 --at 16:15 --at 16:30`.
    Diff {
        src: String,
        dst: String,
        /// The earlier window's start.
        #[arg(long, value_parser = crate::when::parse, value_name = "TIME", requires = "to", conflicts_with = "at")]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// The later window's start.
        #[arg(long, value_parser = crate::when::parse, value_name = "TIME", requires = "from")]
        to: Option<chrono::DateTime<chrono::Utc>>,
        /// A window's start; repeat for more windows (2 to 12), oldest first.
        #[arg(long, value_parser = crate::when::parse, value_name = "TIME")]
        at: Vec<chrono::DateTime<chrono::Utc>>,
        /// Each window's width.
        #[arg(long, value_parser = parse_duration, default_value = "5m")]
        window: Duration,
        /// A hop is slower when its RTT grew by more than this many ms …
        #[arg(long, default_value_t = 10.0)]
        rtt_worse_ms: f32,
        /// … and by more than this percent.
        #[arg(long, default_value_t = 20.0)]
        rtt_worse_pct: f32,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// The route events, newest first: path changes (first diverging hop, old and new
    /// addresses, RTT and loss to the destination before and after), flapping, and loss
    /// onset starting, moving and clearing.
    ///
    /// Example: `edgewatch route changes --since 24h --dc onprem --dc cloud`.
    Changes {
        /// From this time (default: 24 hours ago).
        #[arg(long, value_parser = crate::when::parse, value_name = "TIME", default_value = "24h")]
        since: chrono::DateTime<chrono::Utc>,
        /// Until this time.
        #[arg(long, value_parser = crate::when::parse, value_name = "TIME")]
        until: Option<chrono::DateTime<chrono::Utc>>,
        /// Once: pairs from or to this data center; twice: pairs between the two (the same
        /// one twice: within it).
        #[arg(long)]
        dc: Vec<String>,
        /// Only these kinds: changed, flap-start, flap-end, loss-started, loss-moved, loss-cleared.
        #[arg(long, value_delimiter = ',')]
        kind: Vec<String>,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: i64,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NagiosBy {
    /// Broken edges.
    Edges,
    /// Nodes with at least one broken edge.
    Nodes,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// WARNING when the count is outside this range.
    #[arg(short, long, value_parser = crate::nagios::Range::parse, allow_hyphen_values = true)]
    pub warning: Option<crate::nagios::Range>,
    /// CRITICAL when the count is outside this range (default 0: any broken edge).
    #[arg(short, long, value_parser = crate::nagios::Range::parse, default_value = "0", allow_hyphen_values = true)]
    pub critical: Option<crate::nagios::Range>,
    /// What the ranges count.
    #[arg(long, value_enum, default_value_t = NagiosBy::Edges)]
    pub by: NagiosBy,
    /// Only edges from consumers in this data center.
    #[arg(long)]
    pub dc: Option<String>,
    /// Only edges from consumers of this role.
    #[arg(long)]
    pub role: Option<String>,
    /// Only edges learned for this service.
    #[arg(long)]
    pub service: Option<String>,
    /// UNKNOWN when no probe result is newer than this (default: 3 intervals of 120 s).
    #[arg(long, value_parser = parse_duration, default_value = "6m")]
    pub max_age: Duration,
    /// Flapping edges make the state CRITICAL (by default they make it WARNING at most).
    #[arg(long)]
    pub flapping_is_critical: bool,
    /// Give up (UNKNOWN) when the database has not answered within this.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub timeout: Duration,
    /// Passive mode: also write per-host results to this Nagios command file.
    #[arg(long, requires = "passive")]
    pub command_file: Option<PathBuf>,
    /// Passive mode (needs --command-file).
    #[arg(long, requires = "command_file")]
    pub passive: bool,
    /// The Nagios service the passive results are for.
    #[arg(long, default_value = "edgewatch connectivity")]
    pub service_description: String,
}

/// What every prober (worker or agent) needs to know.
#[derive(Debug, Args, Clone)]
pub struct ProbeSettingsArgs {
    /// Networks probes may go to (comma-separated CIDRs); anything else is refused
    /// before a packet leaves.
    #[arg(long, env = "EDGEWATCH_ALLOW", value_delimiter = ',', default_value = "127.0.0.0/8,::1/128")]
    pub allow: Vec<String>,
    /// Time between two probes of one edge.
    #[arg(long, value_parser = parse_duration, default_value = "120s")]
    pub interval: Duration,
    /// Packets (ICMP echoes or TCP connects) per edge per cycle.
    #[arg(long, default_value_t = 5)]
    pub packets: u32,
    /// Time between the packets of one target in a cycle.
    #[arg(long, value_parser = parse_duration, default_value = "200ms")]
    pub packet_interval: Duration,
    /// How long to wait for each reply.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub timeout: Duration,
    /// Cap on packets per second, all targets together.
    #[arg(long, default_value_t = 1000)]
    pub pps: u32,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The destination: an IPv4 or IPv6 address inside the allow-list.
    pub dest: std::net::IpAddr,
    /// Networks traces may go to (comma-separated CIDRs); anything else is refused before
    /// a packet leaves.
    #[arg(long, env = "EDGEWATCH_ALLOW", value_delimiter = ',', default_value = "127.0.0.0/8,::1/128")]
    pub allow: Vec<String>,
    /// ICMP echo, UDP to --port, or TCP SYN to --port (all Paris-style: every probe of the
    /// trace on one flow).
    #[arg(long, value_enum, default_value_t = TraceProtocolArg::Icmp)]
    pub protocol: TraceProtocolArg,
    /// The destination port, with --protocol udp (default 33434, which should be closed:
    /// the destination answers port unreachable) or tcp (default 80, as traceroute -T; give
    /// the service's).
    #[arg(long)]
    pub port: Option<u16>,
    /// Probes per TTL (rounds).
    #[arg(long, default_value_t = 3)]
    pub probes: u32,
    /// The highest TTL probed.
    #[arg(long, default_value_t = 30)]
    pub max_ttl: u8,
    /// How long to wait for each answer.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub timeout: Duration,
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Trace from this host instead (a host, or a node: its host): asks the tracer that
    /// owns the pair (the host's agent, else a prober worker) to trace it now through the
    /// store, waits for the run and prints it. DEST is the pair's destination address.
    #[arg(long, value_name = "HOST")]
    pub from_host: Option<String>,
    /// With --from-host: how long to wait for the run.
    #[arg(long, value_parser = parse_duration, default_value = "60s", requires = "from_host")]
    pub wait: Duration,
}

#[derive(Debug, Args)]
pub struct PingArgs {
    /// IPv4 or IPv6 addresses to ping (or -f FILE).
    #[arg(value_name = "TARGET", required_unless_present = "file")]
    pub targets: Vec<String>,
    /// Read the targets from FILE (`-` for stdin): one address a line; blank lines and
    /// `#` comments are skipped.
    #[arg(short = 'f', long, value_name = "FILE", conflicts_with = "targets")]
    pub file: Option<PathBuf>,
    /// Echo requests per target (1-100).
    #[arg(short = 'c', long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub count: u32,
    /// Gap between one target's echo requests, in milliseconds (or with a unit: 1s); as
    /// fping -p. Up to 60 s.
    #[arg(short = 'p', long, value_name = "MS", value_parser = parse_period, default_value = "200")]
    pub period: Duration,
    /// How long to wait for each reply, in milliseconds (or with a unit: 2s); 1 ms-60 s.
    #[arg(short = 't', long, value_name = "MS", value_parser = parse_ping_timeout, default_value = "1000")]
    pub timeout: Duration,
    /// Cap on echo requests per second, all targets together (1-1000000); fping -i0 is
    /// uncapped, 1000000 is this command's nearest.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub pps: u32,
    /// Networks pings may go to (comma-separated CIDRs or addresses, repeatable); a target
    /// outside them is refused before anything is sent.
    #[arg(
        long,
        value_name = "NET",
        env = "EDGEWATCH_ALLOW",
        value_delimiter = ',',
        default_value = "127.0.0.0/8,::1/128"
    )]
    pub allow: Vec<String>,
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceProtocolArg {
    Icmp,
    Udp,
    Tcp,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub probe: ProbeSettingsArgs,
    /// Worker tasks in this process (they share one probe engine).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Edges claimed per batch.
    #[arg(long, default_value_t = 500)]
    pub batch: i64,
    /// This process's name in leases and results [default: <hostname>-<pid>].
    #[arg(long)]
    pub name: Option<String>,
    /// Stop after this long (for tests and trials).
    #[arg(long, value_parser = parse_duration)]
    pub run_for: Option<Duration>,
    /// Do not trace paths in this process (`[trace] enabled = false` for every process).
    /// Tracing needs root or CAP_NET_RAW; without them the workers probe and do not trace.
    #[arg(long)]
    pub no_trace: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a config file (FILE, else --config / EDGEWATCH_CONFIG) as every command reads
    /// it — unknown keys and bad values are refused naming file, line and key — and print
    /// the effective settings of `serve`, `probe` and `agent`, each with where it comes
    /// from: flag, environment, file or default. deploy/edgewatch.toml is the complete
    /// sample (every key at its default).
    Check {
        file: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = TextFormat::Text)]
        format: TextFormat,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8440", env = "EDGEWATCH_LISTEN")]
    pub listen: String,
    /// Health thresholds and interval used to judge agents' results.
    #[arg(long, value_parser = parse_duration, default_value = "120s")]
    pub interval: Duration,
    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first);
    /// with --tls-key. Read again on SIGHUP. Config file: [api] tls_cert.
    #[arg(long, env = "EDGEWATCH_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert. Config file: [api] tls_key.
    #[arg(long, env = "EDGEWATCH_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP on an address that is not loopback (without TLS, serve listens
    /// only on 127.0.0.0/8 and ::1 otherwise). Config file: [api] insecure_http = true.
    #[arg(long)]
    pub insecure_http: bool,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub probe: ProbeSettingsArgs,
    /// The edgewatch server, e.g. https://edgewatch.example.com:8440; or several, separated
    /// by commas: the agent tries them in an order of its own (stable, spread over the
    /// agents), moves on when one fails, and tries its first choice again after 5 minutes.
    #[arg(long, env = "EDGEWATCH_SERVER", value_name = "URL[,URL…]")]
    pub server: String,
    /// This agent's node (container) name, as in the CMDB.
    #[arg(long, env = "EDGEWATCH_NODE")]
    pub name: String,
    /// The token made by `edgewatch agent-token create NODE`.
    #[arg(long, env = "EDGEWATCH_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Verify an https:// server against the CA certificates of this PEM bundle (default:
    /// the system's roots). Config file: [agent] ca.
    #[arg(long, env = "EDGEWATCH_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Send the token over plain http:// to a server that is not on this host's loopback
    /// (refused otherwise). Config file: [agent] insecure_http = true.
    #[arg(long)]
    pub insecure_http: bool,
    /// An nginx access log to report request and error rates from (read from its end on,
    /// through truncation and rotation).
    #[arg(long)]
    pub nginx_access_log: Option<PathBuf>,
    /// The access log's format when it is not nginx's `combined`: the site's `log_format`
    /// directive as nginx.conf has it (`log_format main '$remote_addr … $status …';`), or
    /// just its format string, or @FILE holding either. It must have `$status`; a line it
    /// does not match is counted as malformed, not guessed at.
    #[arg(long, value_name = "FORMAT|@FILE")]
    pub nginx_log_format: Option<String>,
    /// Where results the server has not acknowledged are kept on disk, so that a restart
    /// during a server outage loses none (a directory per server and node is made under
    /// it); `off`: in memory only. Default: `$STATE_DIRECTORY/spool` under systemd's
    /// StateDirectory=, else `.edgewatch/agent-spool`.
    #[arg(long, env = "EDGEWATCH_SPOOL", value_name = "DIR|off")]
    pub spool: Option<PathBuf>,
    /// The spool's cap (bytes, or with kB/MB/GB, KiB/MiB/GiB): past it the oldest results
    /// are dropped, counted and said.
    #[arg(long, value_parser = parse_size, default_value = "64MB")]
    pub spool_max: u64,
    /// Stop after this long (for tests and trials).
    #[arg(long, value_parser = parse_duration)]
    pub run_for: Option<Duration>,
    /// Do not trace the paths the server leases to this host (tracing needs root or
    /// CAP_NET_RAW; without them the agent only probes).
    #[arg(long)]
    pub no_trace: bool,
}

#[derive(Debug, Subcommand)]
pub enum AgentTokenCommand {
    /// Make a token for NODE's agent; printed once, only its hash is stored.
    Create { node: String },
    /// Revoke every token of NODE (a running `serve` stops taking them within 5 s: it keeps
    /// a token it checked for that long).
    Revoke { node: String },
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Write DIR/inventory.json and DIR/pdns-<flavour>.log, deterministic from --seed.
    ///
    /// Every address is in 127.0.0.0/8, so the fleet can also be probed on one machine.
    /// Example: edgewatch fleet generate --out /tmp/fleet --lines 1000000 --flavour
    /// auth-console, then cmdb import /tmp/fleet/inventory.json and dns ingest --zone
    /// example.com /tmp/fleet/pdns-auth-console.log.
    Generate {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Log lines per flavour.
        #[arg(long, default_value_t = 100_000)]
        lines: u64,
        /// auth-console, auth-plain, auth-syslog, rec-old, rec-structured, pipe,
        /// journald-json, or all.
        #[arg(long, default_value = "all")]
        flavour: String,
        #[arg(long, default_value_t = 6)]
        dcs: usize,
        #[arg(long, default_value_t = 1000)]
        hosts: usize,
        #[arg(long, default_value_t = 5000)]
        containers: usize,
        #[arg(long, default_value = "example.com")]
        zone: String,
    },
}

#[derive(Debug, Args)]
pub struct DnsArgs {
    /// Zone holding the service names (repeatable; else `[dns] zones` of the config
    /// file): with `--zone example.com`, a query for db1.be5.host58.example.com is
    /// consumer be5.host58 asking for service db1.
    #[arg(long = "zone", env = "EDGEWATCH_ZONES", value_delimiter = ',')]
    pub zones: Vec<String>,
    /// Write to the database after this many lines at most [default: 5000000]; writes
    /// also happen every 10 s and when 250,000 (consumer, service) pairs are held.
    #[arg(long)]
    pub batch_lines: Option<u64>,
    /// UTC offset of year-less log prefix times such as `Nov 22 01:36:00`, e.g. +02:00
    /// [default: +00:00].
    #[arg(long, value_parser = parse_offset)]
    pub log_utc_offset: Option<i32>,
    /// Which files beside a log are its rotated copies: a glob over the names in the
    /// log's directory, `{}` standing for the log's own name, e.g. '{}.[0-9]*'
    /// [default: `{}.*` and `{}-*`: pdns.log.1, pdns.log.2.gz, pdns.log-20261204]. What
    /// they hold unread is read on start and after every rotation; gzip files are read
    /// decompressed.
    #[arg(long, value_name = "GLOB")]
    pub rotated: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// Read PowerDNS logs from where the last read stopped to their end, once.
    ///
    /// Understands, detected per line: authoritative `log-dns-queries` lines, recursor
    /// old-style and structured (key="value") question lines, pipe-backend `Q` lines and
    /// `journalctl -o json` lines; bare or behind PowerDNS' own time prefix, syslog
    /// (traditional, RFC 3339, raw <pri>) or journalctl short/short-iso-precise.
    ///
    /// Files are known by device, inode and a fingerprint of their first line, and the
    /// read position is stored with the edges it produced: reading a file again reads
    /// only what was appended. A last line without its newline is left for later. Lines
    /// left unread in a file that was rotated since the last read (renamed, copied and
    /// truncated, compressed) are read first from its rotated copy (see `--rotated`).
    Ingest {
        #[command(flatten)]
        dns: DnsArgs,
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = TextFormat::Text)]
        format: TextFormat,
    },
    /// Follow PowerDNS logs as they grow (rotation, copytruncate and re-creation
    /// included) until Ctrl-C; `-` reads standard input, e.g.
    /// `journalctl -f -o cat -u pdns | edgewatch dns tail --zone example.com -`.
    Tail {
        #[command(flatten)]
        dns: DnsArgs,
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Write at least this often while lines arrive.
        #[arg(long, value_parser = parse_duration, default_value = "1s")]
        flush_every: Duration,
        /// Reload the CMDB this often.
        #[arg(long, value_parser = parse_duration, default_value = "60s")]
        cmdb_refresh: Duration,
        /// Retire DNS edges no query has used for this long ("never" to keep them)
        /// [default: 7d]. Measured on the logs' own clock (the newest query time read,
        /// never past now), by the hour: replaying old logs retires what was a week old
        /// at their end, not everything.
        #[arg(long, value_parser = parse_optional_duration)]
        expire_after: Option<OptionalDuration>,
    },
    /// What discovery skipped and why, and the names and addresses the CMDB lacks.
    Stats {
        /// How many unknown clients, consumers and services to list.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long, value_enum, default_value_t = TextFormat::Text)]
        format: TextFormat,
    },
    /// Retire DNS edges no query has used for a while, by the wall clock (`dns tail`
    /// does it by the logs' clock as it reads).
    Expire {
        #[arg(long, value_parser = parse_duration, default_value = "7d")]
        older_than: Duration,
    },
}

/// A duration, or none ("never").
#[derive(Debug, Clone, Copy)]
pub struct OptionalDuration(pub Option<Duration>);

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Initialise (once) and start the embedded cluster; reuse it if it runs already.
    Start,
    /// Stop the embedded cluster.
    Stop,
    /// Say whether the embedded cluster is running, where, and as whom.
    Status {
        #[arg(long, value_enum, default_value_t = TextFormat::Text)]
        format: TextFormat,
    },
    /// Print the URL of the embedded database (for psql or --database-url).
    Url,
}

#[derive(Debug, Subcommand)]
pub enum CmdbCommand {
    /// Import exports once, all in one transaction: the inventory first, then links.
    ///
    /// The kind of each file is read from its content: inventory JSON
    /// ({"containers": [...], "services": [...]}), inventory CSV (header
    /// name,host,dc,role,ips,services,serving; lists separated by ';'), published
    /// links as text (`container ip ip ...`, # comments) or JSON ({"links": [...]}).
    ///
    /// An inventory is a snapshot: containers it no longer lists are retired with their
    /// edges (never deleted). A links file replaces the cmdb links of the containers it
    /// names. A bad export is refused whole, naming the file, line or JSON path, and
    /// field; the graph is then left exactly as it was.
    Import {
        /// Export files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Allow an inventory to retire more than 20% of the live nodes.
        #[arg(long)]
        allow_mass_retire: bool,
        #[arg(long, value_enum, default_value_t = TextFormat::Text)]
        format: TextFormat,
    },
    /// Import the exports now and again whenever one of them changes (until Ctrl-C).
    ///
    /// After a change, waits until the files have stayed unchanged for --settle before
    /// reading them, so a file being written is not imported half; a refused import
    /// leaves the graph as it was and is retried at the next change.
    Watch {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        #[arg(long)]
        allow_mass_retire: bool,
        /// How long files must stay unchanged before they are read.
        #[arg(long, value_parser = parse_duration, default_value = "1s")]
        settle: Duration,
        /// Check the files this often even without change notifications.
        #[arg(long, value_parser = parse_duration, default_value = "30s")]
        poll: Duration,
    },
}

#[derive(Debug, Subcommand)]
pub enum AsnCommand {
    /// Replace the stored ip-to-ASN table with FILE, whole, in one transaction.
    ///
    /// FILE is tab-separated, one address range per line, in the column order of
    /// iptoasn.com's ip2asn-combined.tsv: range_start, range_end, AS_number,
    /// country_code, AS_description (IPv4 and IPv6 rows mixed; AS 0 means "not routed").
    /// Download it yourself from iptoasn.com (ip2asn-combined.tsv.gz) and import it again
    /// now and then: edgewatch fetches nothing from the network. A gzip file is read as it
    /// is; `-` reads standard input.
    ///
    /// Where rows overlap, the narrowest range wins. A bad row refuses the whole file,
    /// naming the line and the field (`FILE:LINE: field AS_number: "AS5" is not an AS
    /// number`); the stored table is then left as it was, as it is when the import
    /// fails for any other reason.
    ///
    /// Example: `edgewatch asn import ip2asn-combined.tsv.gz`.
    Import {
        /// The table (gzip or plain), or `-` for standard input.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = TextFormat::Text)]
        format: TextFormat,
    },
    /// Who announces each address, from the imported table: AS number, country, AS name.
    /// An address in no range, or in a range of AS 0, has none.
    ///
    /// Example: `edgewatch asn lookup 1.1.1.1 2001:4860:4860::8888 --format json`.
    Lookup {
        #[arg(required = true, value_name = "IP")]
        ips: Vec<std::net::IpAddr>,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// The imported table: from which file, when, how many ranges.
    Status {
        #[arg(long, value_enum, default_value_t = TextFormat::Text)]
        format: TextFormat,
    },
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Answer on the graph as it was at this time: nodes, edges, providers and edge states
    /// then. RFC 3339 (2026-11-22T16:00:00Z), local "2026-11-22 16:00" or 16:00 (today),
    /// a duration ago (15m, "2h ago"), or now.
    #[arg(long, global = true, value_parser = crate::when::parse, value_name = "TIME")]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    #[command(subcommand)]
    pub command: GraphCommand,
}

#[derive(Debug, Subcommand)]
pub enum GraphCommand {
    /// List nodes (containers): name, host, DC, role, addresses, services, serving.
    Nodes(ListArgs),
    /// List edges: consumer -> destination address (and node), services, sources,
    /// query count, first/last seen, health state.
    Edges(ListArgs),
    /// Edges `down` or `degraded` now, worst first: longest broken, then the
    /// destinations most consumers fail to reach.
    Broken {
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// What changed between two times: nodes and edges that appeared or vanished, edges
    /// whose state, destination node or services changed.
    Diff {
        /// The earlier time (same forms as --at).
        #[arg(long, value_parser = crate::when::parse, value_name = "TIME")]
        from: chrono::DateTime<chrono::Utc>,
        /// The later time.
        #[arg(long, value_parser = crate::when::parse, value_name = "TIME", default_value = "now")]
        to: chrono::DateTime<chrono::Utc>,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    #[command(flatten)]
    Topology(TopologyCommand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TopologyFormat {
    Table,
    Json,
    Dot,
}

#[derive(Debug, Subcommand)]
pub enum TopologyCommand {
    /// What NODE depends on: the nodes its edges go to, or with --depth N everything
    /// reachable in N hops (via services: a consumer of db1 depends on db1's providers).
    Deps {
        node: String,
        /// Hops to follow; 0 means no limit.
        #[arg(long, default_value_t = 1)]
        depth: usize,
        #[arg(long, value_enum, default_value_t = TopologyFormat::Table)]
        format: TopologyFormat,
    },
    /// What depends on NODE, directly or with --depth N transitively.
    Dependents {
        node: String,
        /// Hops to follow; 0 means no limit.
        #[arg(long, default_value_t = 1)]
        depth: usize,
        #[arg(long, value_enum, default_value_t = TopologyFormat::Table)]
        format: TopologyFormat,
    },
    /// Who loses every provider of some service it uses if TARGET (a node, host or data
    /// center) disappears.
    Blast {
        target: String,
        #[arg(long, value_enum, default_value_t = TopologyFormat::Table)]
        format: TopologyFormat,
    },
    /// Single points of failure: nodes and hosts whose loss alone leaves some consumer
    /// without any provider of a service it uses.
    Spof {
        #[arg(long, value_enum, default_value_t = TopologyFormat::Table)]
        format: TopologyFormat,
    },
    /// The shortest dependency chain FROM → … → TO, if any (exit 1 when there is none).
    Path {
        from: String,
        to: String,
        #[arg(long, value_enum, default_value_t = TopologyFormat::Table)]
        format: TopologyFormat,
    },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Include retired nodes and edges.
    #[arg(long)]
    pub all: bool,
    /// Only this data center (of the node; of the consumer for edges).
    #[arg(long)]
    pub dc: Option<String>,
    /// Only this role (of the node; of the consumer for edges).
    #[arg(long)]
    pub role: Option<String>,
    /// Only this host (of the node; of the consumer for edges).
    #[arg(long)]
    pub host: Option<String>,
    /// Only nodes providing this service; edges learned for it.
    #[arg(long)]
    pub service: Option<String>,
    /// Only edges in this state (up, down, degraded, stale, unknown).
    #[arg(long)]
    pub state: Option<String>,
    /// Only edges from this source (dns, cmdb, config).
    #[arg(long)]
    pub source: Option<String>,
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TextFormat {
    Text,
    Json,
}

pub fn parse_optional_duration(s: &str) -> Result<OptionalDuration, String> {
    if s.eq_ignore_ascii_case("never") {
        Ok(OptionalDuration(None))
    } else {
        parse_duration(s).map(|d| OptionalDuration(Some(d)))
    }
}

/// `+02:00`, `-0530`, `Z` → seconds east of UTC.
pub fn parse_offset(s: &str) -> Result<i32, String> {
    let bad = || format!("{s:?} is not a UTC offset (examples: +00:00, +02:00, -05:30, Z)");
    if s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") {
        return Ok(0);
    }
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let hours: i32 = digits[..2].parse().map_err(|_| bad())?;
    let minutes: i32 = digits[2..].parse().map_err(|_| bad())?;
    if hours > 14 || minutes > 59 {
        return Err(bad());
    }
    Ok(sign * (hours * 3600 + minutes * 60))
}

/// A size in bytes: a number, optionally with kB/MB/GB (powers of 1000) or KiB/MiB/GiB
/// (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("{text:?} is not a size (e.g. 64MB, 512KiB, 1000000)"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "mb" | "m" => 1_000_000,
        "gb" | "g" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        other => return Err(format!("{text:?}: unknown unit {other:?} (kB, MB, GB, KiB, MiB, GiB)")),
    };
    n.checked_mul(scale).ok_or_else(|| format!("{text:?} is too large"))
}

/// `--pooler`: one of [`Pooler::NAMES`], which `--help` lists.
fn pooler_parser() -> impl clap::builder::TypedValueParser<Value = Pooler> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Pooler::NAMES)
        .map(|name| name.parse::<Pooler>().expect("one of Pooler::NAMES"))
}

/// Milliseconds as fping takes them (`20`), or a duration with a unit (`20ms`, `1s`).
fn parse_millis(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<u64>() {
        Ok(ms) => Ok(Duration::from_millis(ms)),
        Err(_) => parse_duration(s),
    }
}

/// `ping --period`: 0–60 s (the probe engine's range).
fn parse_period(s: &str) -> Result<Duration, String> {
    let d = parse_millis(s)?;
    if d > Duration::from_secs(60) {
        return Err("is over 60 s".into());
    }
    Ok(d)
}

/// `ping --timeout`: 1 ms–60 s (the probe engine's range).
fn parse_ping_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_millis(s)?;
    if d < Duration::from_millis(1) || d > Duration::from_secs(60) {
        return Err("is not within 1 ms..=60 s".into());
    }
    Ok(d)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 500ms, 2s, 5m, 7d)"))
}
