//! The access-log formats the agent reads: nginx's `combined` (the default, read by hand in
//! [`crate::nginx`]), or a site's own `log_format`, compiled to a regular expression that
//! finds the `$status` field. Pure: text in, a matcher out.
//!
//! A format is given as nginx.conf has it — the whole directive,
//!
//! ```text
//! log_format timed '$remote_addr [$time_local] "$request" '
//!                  '$status $body_bytes_sent $request_time "$http_user_agent"';
//! ```
//!
//! — or just its format string (`$remote_addr [$time_local] "$request" $status …`). The
//! directive's quoted parts are joined, as nginx joins them; `escape=…` is accepted.
//! Every variable (`$name` or `${name}`) matches any text up to what follows it; `$status`
//! must be there and matches a three-digit code. A line the format does not match is
//! counted as malformed, never guessed at.

use regex::bytes::Regex;

use crate::nginx;

/// How access-log lines are read.
#[derive(Debug, Clone, Default)]
pub enum LineFormat {
    /// nginx's `combined` (and `common`): [`nginx::status_of`].
    #[default]
    Combined,
    Custom(LogFormat),
}

impl LineFormat {
    /// The status code of `line` (without its newline), or `None` when the line is not in
    /// this format.
    pub fn status_of(&self, line: &[u8]) -> Option<u16> {
        match self {
            LineFormat::Combined => nginx::status_of(line),
            LineFormat::Custom(format) => format.status_of(line),
        }
    }
}

/// A site's own `log_format`, compiled.
#[derive(Debug, Clone)]
pub struct LogFormat {
    /// The format string (the directive's parts joined).
    pub format: String,
    matcher: Regex,
}

/// Why a `log_format` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("the log format is empty")]
    Empty,
    #[error("the log format has no $status: the agent counts requests by their status")]
    NoStatus,
    #[error("unterminated quote starting at character {0} of the log_format directive")]
    Unterminated(usize),
    #[error("character {0} of the log format: `$` not followed by a variable name")]
    BadVariable(usize),
    #[error("the log_format directive has no format string after its name")]
    NoFormat,
    #[error("the log format compiles to a matcher the regex crate refuses: {0}")]
    Regex(String),
}

impl LogFormat {
    /// Compiles a `log_format` directive as written in nginx.conf, or a format string.
    pub fn parse(text: &str) -> Result<LogFormat, FormatError> {
        let text = text.trim();
        let format = if text.starts_with("log_format") && text[10..].starts_with(char::is_whitespace) {
            directive_format(&text[10..])?
        } else {
            text.to_string()
        };
        if format.is_empty() {
            return Err(FormatError::Empty);
        }
        let pattern = pattern_of(&format)?;
        let matcher = Regex::new(&pattern).map_err(|e| FormatError::Regex(e.to_string()))?;
        Ok(LogFormat { format, matcher })
    }

    /// The status code of `line`, or `None` when the line is not in this format.
    pub fn status_of(&self, line: &[u8]) -> Option<u16> {
        let caps = self.matcher.captures(line)?;
        let code = caps.name("status")?.as_bytes();
        let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        (100..=599).contains(&status).then_some(status)
    }
}

/// The format string of a directive after `log_format`: its name, an optional
/// `escape=…`, then the parts, quoted or bare, joined; a final `;` ends it.
fn directive_format(rest: &str) -> Result<String, FormatError> {
    let offset = "log_format".len();
    let mut parts: Vec<String> = Vec::new();
    let mut chars = rest.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            ';' => break,
            '\'' | '"' => {
                chars.next();
                let mut part = String::new();
                let mut closed = false;
                while let Some((_, ch)) = chars.next() {
                    match ch {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                part.push(escaped);
                            }
                        }
                        ch if ch == c => {
                            closed = true;
                            break;
                        }
                        ch => part.push(ch),
                    }
                }
                if !closed {
                    return Err(FormatError::Unterminated(offset + i + 1));
                }
                parts.push(part);
            }
            _ => {
                let mut word = String::new();
                while let Some(&(_, ch)) = chars.peek() {
                    if ch.is_whitespace() || ch == ';' {
                        break;
                    }
                    word.push(ch);
                    chars.next();
                }
                parts.push(word);
            }
        }
    }
    // The name, then an optional escape= parameter, then the format.
    let mut parts = parts.into_iter().skip(1).peekable();
    if parts.peek().is_some_and(|p| p.starts_with("escape=")) {
        parts.next();
    }
    let format: String = parts.collect();
    if format.is_empty() {
        return Err(FormatError::NoFormat);
    }
    Ok(format)
}

/// The anchored regular expression of a format string: literals as themselves, `$status`
/// as a named three-digit group, any other variable as the least text up to what follows.
fn pattern_of(format: &str) -> Result<String, FormatError> {
    let mut pattern = String::from("^");
    let mut literal = String::new();
    let mut has_status = false;
    let bytes = format.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            let ch = format[i..].chars().next().unwrap_or('\0');
            literal.push(ch);
            i += ch.len_utf8();
            continue;
        }
        let (name, next) = variable_at(format, i).ok_or(FormatError::BadVariable(i + 1))?;
        pattern.push_str(&regex::escape(&literal));
        literal.clear();
        if name == "status" && !has_status {
            pattern.push_str(r"(?P<status>[0-9]{3})");
            has_status = true;
        } else {
            pattern.push_str("(?:.*?)");
        }
        i = next;
    }
    pattern.push_str(&regex::escape(&literal));
    pattern.push('$');
    if !has_status {
        return Err(FormatError::NoStatus);
    }
    Ok(pattern)
}

/// The variable name starting with the `$` at `at` (`$name` or `${name}`), and the index
/// after it.
fn variable_at(format: &str, at: usize) -> Option<(&str, usize)> {
    let rest = &format[at + 1..];
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if let Some(braced) = rest.strip_prefix('{') {
        let end = braced.find('}')?;
        let name = &braced[..end];
        return (!name.is_empty() && name.chars().all(is_name)).then_some((name, at + 3 + end));
    }
    let len = rest.find(|c: char| !is_name(c)).unwrap_or(rest.len());
    (len > 0).then(|| (&rest[..len], at + 1 + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMBINED: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \
                            \"$http_referer\" \"$http_user_agent\"";

    #[test]
    fn combined_as_a_custom_format_reads_what_the_built_in_reader_does() {
        let custom = LineFormat::Custom(LogFormat::parse(COMBINED).unwrap());
        let lines: [&[u8]; 6] = [
            b"127.0.0.1 - alice [22/Nov/2026:01:43:53 +0000] \"GET /a HTTP/1.1\" 502 157 \"-\" \"curl/8.5\"",
            b"::1 - - [22/Nov/2026:01:43:53 +0000] \"GET /b?x=\\x22 HTTP/1.1\" 200 0 \"-\" \"a \\x22b\\x22\"",
            b"10.0.0.1 - - [22/Nov/2026:01:43:53 +0000] \"-\" 400 0 \"-\" \"-\"",
            b"not an access log line",
            b"",
            b"10.0.0.1 - - [22/Nov/2026:01:43:53 +0000] \"GET / HTTP/1.1\" 2000 0 \"-\" \"-\"",
        ];
        for line in lines {
            assert_eq!(
                custom.status_of(line),
                LineFormat::Combined.status_of(line),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        assert_eq!(custom.status_of(lines[0]), Some(502));
    }

    #[test]
    fn a_directive_as_nginx_conf_has_it() {
        let conf = "log_format timed escape=json '$remote_addr [$time_local] \"$request\" '\n\
                    \t'$status $body_bytes_sent $request_time \"$http_user_agent\" ${upstream_addr}';";
        let f = LogFormat::parse(conf).unwrap();
        assert_eq!(
            f.format,
            "$remote_addr [$time_local] \"$request\" $status $body_bytes_sent $request_time \"$http_user_agent\" \
             ${upstream_addr}"
        );
        let line = b"10.1.2.3 [05/Dec/2026:16:00:00 +0000] \"POST /q HTTP/2.0\" 504 12 60.001 \"curl\" 10.9.0.1:8080";
        assert_eq!(f.status_of(line), Some(504));
        // Another order, extra fields, the status after the request time.
        let f = LogFormat::parse("$request_time|$status|$remote_addr|\"$request\"|$host").unwrap();
        assert_eq!(f.status_of(b"0.120|201|::1|\"GET /x|y HTTP/1.1\"|example.com"), Some(201));
        assert_eq!(f.status_of(b"0.120|20|::1|\"GET / HTTP/1.1\"|h"), None, "two digits: not a status");
        assert_eq!(f.status_of(b"0.120 201 ::1 \"GET / HTTP/1.1\" h"), None, "another format: not guessed");
    }

    #[test]
    fn formats_it_cannot_use_are_refused_saying_why() {
        assert_eq!(LogFormat::parse("").unwrap_err(), FormatError::Empty);
        assert_eq!(LogFormat::parse("$remote_addr $request").unwrap_err(), FormatError::NoStatus);
        assert_eq!(LogFormat::parse("log_format main '$status").unwrap_err(), FormatError::Unterminated(17));
        assert_eq!(LogFormat::parse("$status $ x").unwrap_err(), FormatError::BadVariable(9));
        assert_eq!(LogFormat::parse("$status ${x").unwrap_err(), FormatError::BadVariable(9));
        assert_eq!(LogFormat::parse("log_format main;").unwrap_err(), FormatError::NoFormat);
        // Regex metacharacters in literals are literals.
        let f = LogFormat::parse("[$status] (.*) $request_time").unwrap();
        assert_eq!(f.status_of(b"[404] (.*) 0.1"), Some(404));
        assert_eq!(f.status_of(b"[404] xxxx 0.1"), None);
    }
}
