//! `edgewatch sql`: an operator's ad-hoc query, run read-only with a time limit.

use sqlx::Executor;

use crate::error::{Error, Result};
use crate::{PgConnection, PgPool};

/// A query's column names and rows (values as JSON: numbers, strings, null, …).
#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// Runs one SELECT (or VALUES, or WITH … SELECT) in a read-only transaction that is
/// rolled back, with `statement_timeout`; anything that would write fails.
pub async fn read_only(pool: &PgPool, query: &str, timeout_ms: u64) -> Result<QueryResult> {
    let query = without_trailing_semicolons(query);
    let mut tx = pool.begin().await.map_err(Error::sql("starting a read-only query"))?;
    // Rolled back on the error paths too: behind a transaction pooler that closes the
    // named statement sqlx describes the query with (see `crate::pool`).
    let asked = ask(&mut tx, query, timeout_ms).await;
    let ended = tx.rollback().await.map_err(Error::sql("ending a read-only query"));
    let (columns, texts) = asked?;
    ended?;
    let rows = texts
        .iter()
        .map(|t| match serde_json::from_str::<serde_json::Value>(t) {
            Ok(serde_json::Value::Array(values)) => values,
            _ => vec![serde_json::Value::String(t.clone())],
        })
        .collect();
    Ok(QueryResult { columns, rows })
}

/// The columns of `query` and its rows, each a JSON array as text, on `conn`: read-only,
/// within `timeout_ms`.
async fn ask(conn: &mut PgConnection, query: &str, timeout_ms: u64) -> Result<(Vec<String>, Vec<String>)> {
    sqlx::query("SET TRANSACTION READ ONLY").execute(&mut *conn).await.map_err(Error::sql("making it read-only"))?;
    sqlx::query(&format!("SET LOCAL statement_timeout = {timeout_ms}"))
        .execute(&mut *conn)
        .await
        .map_err(Error::sql("setting the time limit"))?;
    let described = (&mut *conn).describe(query).await.map_err(Error::sql("reading the query"))?;
    let columns: Vec<String> = described.columns().iter().map(|c| sqlx::Column::name(c).to_string()).collect();
    if columns.is_empty() {
        return Err(Error::NotAQuery);
    }
    // Name the columns positionally, so duplicate or odd names cannot break the wrapper;
    // close it on a line of its own, so a `--` comment left in the query cannot swallow it.
    let aliased = format!(
        "SELECT json_build_array({})::text FROM ({query}\n) AS q({})",
        (1..=columns.len()).map(|i| format!("to_json(q.c{i})")).collect::<Vec<_>>().join(", "),
        (1..=columns.len()).map(|i| format!("c{i}")).collect::<Vec<_>>().join(", ")
    );
    let texts: Vec<String> =
        sqlx::query_scalar(&aliased).fetch_all(&mut *conn).await.map_err(Error::sql("running the query"))?;
    Ok((columns, texts))
}

/// `query` up to the end of its last token, without the semicolons, comments and
/// whitespace after it, so that it can be put in parentheses. Strings (`'…'`, `E'…'`),
/// quoted identifiers, dollar quotes and comments are skipped whole: a `;` or `--` in them
/// is the query's. A `;` followed by more SQL stays, and PostgreSQL refuses the two
/// statements.
fn without_trailing_semicolons(query: &str) -> &str {
    let b = query.as_bytes();
    // Bytes of an identifier (or keyword): a quote or `$` right after one is not an opening.
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    let mut end = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..].iter().position(|&c| c == b'\n').map_or(b.len(), |n| i + n + 1);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    match (b[i], b.get(i + 1)) {
                        (b'/', Some(b'*')) => (depth, i) = (depth + 1, i + 2),
                        (b'*', Some(b'/')) => (depth, i) = (depth - 1, i + 2),
                        _ => i += 1,
                    }
                    if depth == 0 {
                        break;
                    }
                }
                if depth > 0 {
                    // Never closed: leave it to PostgreSQL to say so.
                    end = b.len();
                }
            }
            b'\'' => {
                let escapes = i > 0 && matches!(b[i - 1], b'e' | b'E') && (i < 2 || !word(b[i - 2]));
                i = past_quoted(b, i, b'\'', escapes);
                end = i;
            }
            b'"' => {
                i = past_quoted(b, i, b'"', false);
                end = i;
            }
            b'$' if i == 0 || !word(b[i - 1]) => {
                let tag_len = b[i + 1..].iter().position(|&c| !word(c) || c == b'$').map_or(0, |n| n + 2);
                let is_tag = tag_len > 0 && b.get(i + tag_len - 1) == Some(&b'$') && !b[i + 1].is_ascii_digit();
                i = if is_tag {
                    let tag = &b[i..i + tag_len];
                    let body = i + tag_len;
                    b[body..].windows(tag_len).position(|w| w == tag).map_or(b.len(), |n| body + n + tag_len)
                } else {
                    i + 1
                };
                end = i;
            }
            c if c == b';' || c.is_ascii_whitespace() => i += 1,
            _ => {
                i += 1;
                end = i;
            }
        }
    }
    &query[..end]
}

/// The index just past the quoted text opening at `start` (`''` or `""` inside is the
/// quote itself; with `backslash`, so is `\'`), or the end of `b` if it is not closed.
fn past_quoted(b: &[u8], start: usize, quote: u8, backslash: bool) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if backslash => i += 2,
            c if c == quote && b.get(i + 1) == Some(&quote) => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::without_trailing_semicolons;

    #[test]
    fn trailing_semicolons_comments_and_whitespace_go_the_rest_stays() {
        let cases = [
            ("SELECT 1", "SELECT 1"),
            ("  SELECT 1 ;\n", "  SELECT 1"),
            ("SELECT 1;;  ; ", "SELECT 1"),
            ("SELECT 1 AS x -- note", "SELECT 1 AS x"),
            ("SELECT 1 AS x;  -- done", "SELECT 1 AS x"),
            ("SELECT 1 AS x -- a; b\n;\n-- c\n", "SELECT 1 AS x"),
            ("SELECT 1 /* a /* nested; */ comment */ ; /* end */", "SELECT 1"),
            ("SELECT 1 -- one\n + 2 -- two", "SELECT 1 -- one\n + 2"),
            ("SELECT ';'", "SELECT ';'"),
            ("SELECT ';' ; ", "SELECT ';'"),
            ("SELECT 'it''s;' ;", "SELECT 'it''s;'"),
            ("SELECT '-- no comment;'", "SELECT '-- no comment;'"),
            ("SELECT '\\' ;", "SELECT '\\'"),
            ("SELECT E'it\\'s; -- x' ;", "SELECT E'it\\'s; -- x'"),
            ("SELECT e'\\\\' ; -- x", "SELECT e'\\\\'"),
            ("SELECT 1 AS \"a;\"\"b\" ;", "SELECT 1 AS \"a;\"\"b\""),
            ("SELECT $$ ; -- $$ ;", "SELECT $$ ; -- $$"),
            ("SELECT $x$ $$; $x$;", "SELECT $x$ $$; $x$"),
            ("SELECT $1 ;", "SELECT $1"),
            ("SELECT a$b FROM t ;", "SELECT a$b FROM t"),
            ("SELECT 1; DELETE FROM nodes;", "SELECT 1; DELETE FROM nodes"),
            ("SELECT 'open; --", "SELECT 'open; --"),
            ("SELECT '数;' ; -- 注", "SELECT '数;'"),
            ("SELECT 1 /* never closed ;", "SELECT 1 /* never closed ;"),
            ("-- only a comment;", ""),
            ("", ""),
        ];
        for (query, want) in cases {
            assert_eq!(without_trailing_semicolons(query), want, "{query:?}");
        }
    }
}
