//! `edgewatch sql`: an operator's ad-hoc query, run read-only with a time limit.

use sqlx::{Executor, PgPool};

use crate::error::{Error, Result};

/// A query's column names and rows (values as JSON: numbers, strings, null, …).
#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// Runs one SELECT (or VALUES, or WITH … SELECT) in a read-only transaction that is
/// rolled back, with `statement_timeout`; anything that would write fails.
pub async fn read_only(pool: &PgPool, query: &str, timeout_ms: u64) -> Result<QueryResult> {
    let query = query.trim().trim_end_matches(';').trim();
    let mut tx = pool.begin().await.map_err(Error::sql("starting a read-only query"))?;
    sqlx::query("SET TRANSACTION READ ONLY").execute(&mut *tx).await.map_err(Error::sql("making it read-only"))?;
    sqlx::query(&format!("SET LOCAL statement_timeout = {timeout_ms}"))
        .execute(&mut *tx)
        .await
        .map_err(Error::sql("setting the time limit"))?;
    let described = (&mut *tx).describe(query).await.map_err(Error::sql("reading the query"))?;
    let columns: Vec<String> = described.columns().iter().map(|c| sqlx::Column::name(c).to_string()).collect();
    if columns.is_empty() {
        return Err(Error::NotAQuery);
    }
    // Name the columns positionally, so duplicate or odd names cannot break the wrapper.
    let aliased = format!(
        "SELECT json_build_array({})::text FROM ({query}) AS q({})",
        (1..=columns.len()).map(|i| format!("to_json(q.c{i})")).collect::<Vec<_>>().join(", "),
        (1..=columns.len()).map(|i| format!("c{i}")).collect::<Vec<_>>().join(", ")
    );
    let texts: Vec<String> =
        sqlx::query_scalar(&aliased).fetch_all(&mut *tx).await.map_err(Error::sql("running the query"))?;
    tx.rollback().await.map_err(Error::sql("ending a read-only query"))?;
    let rows = texts
        .iter()
        .map(|t| match serde_json::from_str::<serde_json::Value>(t) {
            Ok(serde_json::Value::Array(values)) => values,
            _ => vec![serde_json::Value::String(t.clone())],
        })
        .collect();
    Ok(QueryResult { columns, rows })
}
