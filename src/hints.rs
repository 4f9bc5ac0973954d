//! What the binary adds to a library's error: the command-line flag that fixes it. The
//! libraries know nothing of flags, so their messages stop at what is wrong.

use std::error::Error;

/// The advice to append to `e`'s message, when `e` is a store error (or wraps one,
/// as discovery's errors do) that a flag fixes.
pub fn flag_hint(e: &(dyn Error + 'static)) -> Option<&'static str> {
    let store = match e.downcast_ref::<discovery::Error>() {
        Some(discovery::Error::Store(inner)) => inner,
        _ => e.downcast_ref::<graph_store::Error>()?,
    };
    match store {
        graph_store::Error::NoServerBinaries => Some(
            ",\n  or point edgewatch at a running server: --database-url postgres://user@host/db (or DATABASE_URL)",
        ),
        graph_store::Error::SocketPathTooLong { .. } => Some("; choose a shorter --data-dir"),
        graph_store::Error::MassRetire { .. } => Some("; pass --allow-mass-retire if this is intended"),
        _ => None,
    }
}

/// `e`'s message, with the flag that fixes it when there is one.
pub fn message(e: &(dyn Error + 'static)) -> String {
    let mut text = e.to_string();
    text.push_str(flag_hint(e).unwrap_or_default());
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_get_the_flag_that_fixes_them() {
        let mass = graph_store::Error::MassRetire { would_retire: 14, live: 29, pct: 48.3, limit_pct: 20 };
        let socket = graph_store::Error::SocketPathTooLong { dir: "d".into(), socket: "d/pg/.s".into(), max: 107 };
        let wrapped = discovery::Error::Store(graph_store::Error::MassRetire {
            would_retire: 1,
            live: 2,
            pct: 50.0,
            limit_pct: 20,
        });
        let cases: [(&(dyn Error + 'static), &str); 5] = [
            (&graph_store::Error::NoServerBinaries, "apt-get install postgresql"),
            (&graph_store::Error::NoServerBinaries, "PG_BINDIR=/path/to/bin,\n  or point edgewatch at a running server: --database-url"),
            (&mass, "the export may be incomplete; pass --allow-mass-retire if this is intended"),
            (&wrapped, "refusing to retire 1 of 2 live nodes (50% > 20%): the export may be incomplete; pass --allow-mass-retire"),
            (&socket, "a unix socket allows; choose a shorter --data-dir"),
        ];
        for (e, want) in cases {
            assert!(message(e).contains(want), "{:?} lacks {want:?}", message(e));
        }
        let other = graph_store::Error::NotAQuery;
        assert_eq!(message(&other), other.to_string());
        assert_eq!(flag_hint(&std::io::Error::other("x")), None);
    }
}
