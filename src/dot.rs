//! Graphviz DOT strings: the one quoting function of every DOT this binary writes (the
//! report's picture of the service graph, `graph deps|dependents|blast|spof|path --format
//! dot`), so a hostile name is as safe in one as in the other.

/// A DOT quoted string for a node ID, a label or a tooltip. Graphviz reads `\` in labels
/// as the start of an escape (`\n`, `\N`, …) and `&…;` as an HTML entity, so `\` is
/// doubled and `&` written `&amp;`; it takes a node ID starting with `%` for one of its own
/// anonymous nodes (and shows `%3` instead), so a leading `%` is written `&#37;`; `"` is
/// escaped; control characters (a newline or a tab in a name) become spaces, since some
/// would break the SVG's XML. A name shown through this (a node's label is its ID unless
/// set) reads as the name, verbatim but for those spaces.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let rest = match s.strip_prefix('%') {
        Some(rest) => {
            out.push_str("&#37;");
            rest
        }
        None => s,
    };
    for c in rest.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '&' => out.push_str("&amp;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_dot_strings() {
        for (name, want) in [
            ("api", "\"api\""),
            ("\"quoted\"", "\"\\\"quoted\\\"\""),
            ("C:\\x\\", "\"C:\\\\x\\\\\""),
            ("a\nb", "\"a b\""),
            ("<script>", "\"<script>\""),
            ("&amp;&lt;", "\"&amp;amp;&amp;lt;\""),
            ("%s %n 100%", "\"&#37;s %n 100%\""),
            ("%", "\"&#37;\""),
        ] {
            assert_eq!(quote(name), want, "{name:?}");
        }
    }
}
