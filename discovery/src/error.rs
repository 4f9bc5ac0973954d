//! The discovery crate's one error type.

use std::fmt;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A CMDB export that is refused whole; the graph is left as it was.
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot watch {}: {source}", path.display())]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error(transparent)]
    Store(#[from] graph_store::Error),
    #[error("{0}")]
    Config(String),
}

/// What is wrong with an export and exactly where: the file, the line (text and CSV) or
/// the JSON path (and the line where serde_json knows it), and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ExportError {
    pub file: String,
    pub line: Option<usize>,
    /// JSON path such as `$.containers[3].ips[0]`.
    pub path: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ": line {line}")?;
        }
        if let Some(path) = &self.path {
            write!(f, ": {path}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl ExportError {
    pub fn new(file: impl Into<String>, message: impl Into<String>) -> Self {
        ExportError { file: file.into(), line: None, path: None, field: None, message: message.into() }
    }

    pub fn line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}
