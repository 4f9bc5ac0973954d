//! The graph store's one error type.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error while {op}: {source}")]
    Sql {
        op: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot connect to PostgreSQL at {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("applying migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH, via \
         `pg_config --bindir`, or under /usr/lib/postgresql/*/bin.\n  Install them: \
         `apt-get install postgresql` (Debian/Ubuntu), or set PG_BINDIR=/path/to/bin"
    )]
    NoServerBinaries,
    #[error("embedded PostgreSQL in {}: {message}", dir.display())]
    Embedded { dir: PathBuf, message: String },
    /// The embedded cluster's socket would not fit in a unix socket address.
    #[error(
        "embedded PostgreSQL in {}: the socket path {} is longer than the {max} bytes a unix socket allows",
        dir.display(),
        socket.display()
    )]
    SocketPathTooLong { dir: PathBuf, socket: PathBuf, max: usize },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The import would retire more live nodes than the guard allows.
    #[error(
        "refusing to retire {would_retire} of {live} live nodes ({pct:.0}% > {limit_pct}%): \
         the export may be incomplete"
    )]
    MassRetire { would_retire: usize, live: usize, pct: f64, limit_pct: u32 },
    /// Another reader advanced this file's read position since we read it.
    #[error("{path}: the stored read position is no longer {expected}: another edgewatch is reading this file")]
    CheckpointMoved { path: String, expected: i64 },
    /// `edgewatch sql` was given something that returns no rows.
    #[error("only a query that returns rows can run (SELECT, VALUES, WITH … SELECT): `edgewatch sql` is read-only")]
    NotAQuery,
    /// A stored JSON document could not be written or read back.
    #[error("encoding {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A stored trace run could not be read back.
    #[error("a stored trace run of pair {pair_id} at {at}: {source}")]
    StoredRun {
        pair_id: i64,
        at: chrono::DateTime<chrono::Utc>,
        #[source]
        source: crate::paths::packed::UnpackError,
    },
    /// A stored block of a pair's trace runs could not be read back.
    #[error("the stored trace runs of pair {pair_id} in the block from {start}: {source}")]
    StoredBlock {
        pair_id: i64,
        start: chrono::DateTime<chrono::Utc>,
        #[source]
        source: crate::paths::block::BlockError,
    },
    /// A published link names a container the graph does not have.
    #[error("{origin}: field `container`: unknown container {name:?} (not in the inventory, or retired)")]
    UnknownContainer { name: String, origin: String },
}

impl Error {
    /// Whether this means the store cannot be reached just now (connection refused or
    /// lost, no free connection in time, the server shutting down), as opposed to a fault
    /// in the statement: the first is worth retrying, the second is a bug.
    pub fn is_unavailable(&self) -> bool {
        let source = match self {
            Error::Sql { source, .. } | Error::Connect { source, .. } => source,
            _ => return false,
        };
        match source {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
                true
            }
            // Class 08: connection exception; 57P: operator intervention (shutdown, crash).
            sqlx::Error::Database(db) => db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
            _ => false,
        }
    }

    pub(crate) fn sql(op: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
        move |source| Error::Sql { op, source }
    }
}
