//! Importing CMDB export files: read and parse every file first, then apply them all in
//! one transaction under the graph lock, so an import is whole or not at all and two
//! imports running at once apply one after the other.

use std::path::{Path, PathBuf};

use graph_store::model::{InventoryOutcome, LinksOutcome};
use graph_store::PgPool;
use serde::Serialize;

use super::{parse_export, Export};
use crate::{Error, ExportError, Result};

/// How an import may change the graph.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Let an inventory retire more than the guard's share of the live nodes.
    pub allow_mass_retire: bool,
}

/// A file read and parsed, ready to apply.
#[derive(Debug, Clone)]
pub struct ParsedExport {
    pub file: String,
    pub export: Export,
}

/// What one import changed, per file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub inventory: Option<FileOutcome<InventoryOutcome>>,
    pub links: Vec<FileOutcome<LinksOutcome>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileOutcome<T> {
    pub file: String,
    #[serde(flatten)]
    pub outcome: T,
}

/// Reads and parses `files`. At most one of them may be an inventory.
pub fn read_exports(files: &[PathBuf]) -> Result<Vec<ParsedExport>> {
    let mut parsed = Vec::with_capacity(files.len());
    let mut inventory_file: Option<String> = None;
    for path in files {
        let file = path.display().to_string();
        let export = parse_export(&file, &read(path)?)?;
        if let Export::Inventory(_) = export {
            if let Some(first) = &inventory_file {
                return Err(ExportError::new(
                    file,
                    format!("a second inventory in one import ({first} is one already); import them one at a time"),
                )
                .into());
            }
            inventory_file = Some(file.clone());
        }
        parsed.push(ParsedExport { file, export });
    }
    Ok(parsed)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })
}

/// Applies parsed exports in one transaction: the inventory first, then every links file
/// in the order given. On any error nothing is changed.
#[tracing::instrument(skip_all, fields(files = exports.len()))]
pub async fn apply_exports(pool: &PgPool, exports: &[ParsedExport], opts: ImportOptions) -> Result<ImportReport> {
    let mut tx = pool.begin().await.map_err(|source| graph_store::Error::Sql { op: "starting an import", source })?;
    graph_store::cmdb::lock_graph(&mut tx).await?;
    let mut report = ImportReport::default();
    for parsed in exports {
        if let Export::Inventory(inventory) = &parsed.export {
            let outcome = graph_store::cmdb::apply_inventory(&mut tx, inventory, opts.allow_mass_retire).await?;
            report.inventory = Some(FileOutcome { file: parsed.file.clone(), outcome });
        }
    }
    for parsed in exports {
        if let Export::Links(links) = &parsed.export {
            let outcome = graph_store::cmdb::apply_links(&mut tx, links).await?;
            report.links.push(FileOutcome { file: parsed.file.clone(), outcome });
        }
    }
    tx.commit().await.map_err(|source| graph_store::Error::Sql { op: "committing an import", source })?;
    Ok(report)
}

/// Reads, parses and applies `files` as one import.
pub async fn import_files(pool: &PgPool, files: &[PathBuf], opts: ImportOptions) -> Result<ImportReport> {
    let exports = read_exports(files)?;
    apply_exports(pool, &exports, opts).await
}
