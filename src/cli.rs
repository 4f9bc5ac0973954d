//! The command line: every subcommand and flag, with the help text that teaches them.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "edgewatch",
    version,
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

    /// Directory of the embedded PostgreSQL cluster (used when no --database-url).
    #[arg(
        long,
        env = "EDGEWATCH_DATA_DIR",
        default_value = ".edgewatch",
        global = true
    )]
    pub data_dir: PathBuf,

    /// More log output on stderr (-v info, -vv debug); EDGEWATCH_LOG takes a full filter.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
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
    /// Look at the dependency graph.
    #[command(subcommand)]
    Graph(GraphCommand),
}

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
pub enum GraphCommand {
    /// List nodes (containers): name, host, DC, role, addresses, services, serving.
    Nodes(ListArgs),
    /// List edges: consumer -> destination address (and node), services, sources,
    /// query count, first/last seen, health state.
    Edges(ListArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Include retired nodes and edges.
    #[arg(long)]
    pub all: bool,
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

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 500ms, 2s, 5m, 7d)"))
}
