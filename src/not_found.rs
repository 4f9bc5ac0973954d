//! What the CLI and the HTTP API alike say when a graph question names something the
//! graph (live, or at `--at` / `at`) does not have.

/// What a question names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    /// A node: `deps`, `dependents`, `path`.
    Node,
    /// A node, else a host, else a data center: `blast`.
    NodeHostOrDc,
}

/// The message for `name`, which is not in the graph.
pub fn not_in_graph(name: &str, named: Named) -> String {
    match named {
        Named::Node => format!("no live node named {name:?}"),
        Named::NodeHostOrDc => format!("{name:?} is no live node, host or data center"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_quotes_the_name() {
        assert_eq!(not_in_graph("db1.h\"7", Named::Node), r#"no live node named "db1.h\"7""#);
        assert_eq!(not_in_graph("VA", Named::NodeHostOrDc), r#""VA" is no live node, host or data center"#);
    }
}
