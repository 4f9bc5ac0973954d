//! Several processes of one kind on one database (several `serve`, a standby `run`): one
//! of them does the once-only work (diagnosis refresh, stale marking, partitions, trace
//! upkeep, the nightly report), the one holding that work's lease
//! ([`graph_store::lease`]). The holder renews it every [`RENEW`]; the others keep asking
//! and take it over within [`TTL`] + [`RENEW`] of the holder's death. A clean stop gives it
//! back at once. A change of hands is said on stderr.

use std::time::Duration;

use graph_store::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a lease lasts unless renewed.
pub const TTL: Duration = Duration::from_secs(6);
/// How often it is renewed (and asked for by the others).
pub const RENEW: Duration = Duration::from_secs(2);

/// This process's name in the leases: command, host and process id.
pub fn holder(command: &str) -> String {
    format!("{command}@{}:{}", crate::trace_config::hostname(), std::process::id())
}

/// Asks for the lease `name` every [`RENEW`] until `shutdown`, then gives it back. The
/// receiver says whether this process holds it now; a store that cannot be reached means
/// not holding it (another process may have taken it over meanwhile).
pub fn lead(
    pool: PgPool,
    name: &'static str,
    holder: String,
    shutdown: CancellationToken,
) -> (watch::Receiver<bool>, JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            let holds = match graph_store::lease::acquire(&pool, name, &holder, TTL).await {
                Ok(holds) => holds,
                Err(e) => {
                    tracing::warn!("asking for the {name} lease failed, will retry: {e}");
                    false
                }
            };
            if holds != *tx.borrow() {
                if holds {
                    eprintln!("{holder} holds the {name} lease: this process does the once-only work now");
                } else {
                    eprintln!("{holder} no longer holds the {name} lease: another process does the once-only work");
                }
                tx.send_replace(holds);
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(RENEW) => {}
            }
        }
        if *tx.borrow() {
            tx.send_replace(false);
            if let Err(e) = graph_store::lease::release(&pool, name, &holder).await {
                tracing::warn!("giving the {name} lease back failed (it expires in {} s): {e}", TTL.as_secs());
            }
        }
    });
    (rx, task)
}
