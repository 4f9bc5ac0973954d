//! Reads on a streaming-replication standby: how far behind the primary it is, and the
//! pure rule that decides whether a read goes to it or to the primary.
//!
//! The lag is `now() - pg_last_xact_replay_timestamp()` while the standby has WAL it has
//! received but not yet replayed. When everything received has been replayed (and WAL is
//! being streamed), the standby is as current as the primary has made it: an idle primary
//! writes no commits, so the age of the last replayed commit only says how long the
//! primary has been quiet, and the lag is 0. A server that is not in recovery (the read
//! URL names a primary) has no lag either.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::PgPool;

/// What the standby says about its replay, as read by [`status`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayStatus {
    /// `pg_is_in_recovery()`: false on a primary.
    pub in_recovery: bool,
    /// WAL is being streamed from the primary (`pg_stat_wal_receiver.status = 'streaming'`).
    pub streaming: bool,
    /// Everything received has been replayed (`pg_last_wal_receive_lsn() =
    /// pg_last_wal_replay_lsn()`); `None` when nothing was received by streaming.
    pub caught_up: Option<bool>,
    /// Seconds since the last replayed transaction was committed on the primary; `None`
    /// when none has been replayed since the standby started.
    pub replay_age_s: Option<f64>,
}

/// How far behind the primary the read side is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lag {
    /// The read URL names a server that is not a standby: it is the primary, or a copy
    /// that has left recovery.
    NotStandby,
    /// The standby is this far behind (0 when it has replayed all the primary has sent
    /// and is still receiving).
    Behind(Duration),
    /// The standby cannot say (not streaming and nothing replayed yet).
    Unknown,
}

impl Lag {
    /// The lag in seconds for `/readyz` and `/metrics` (0 for a server that is not a
    /// standby), or `None` when unknown.
    pub fn seconds(self) -> Option<f64> {
        match self {
            Lag::NotStandby => Some(0.0),
            Lag::Behind(d) => Some(d.as_secs_f64()),
            Lag::Unknown => None,
        }
    }
}

/// The lag a [`ReplayStatus`] means (see the module's rule).
pub fn lag(s: &ReplayStatus) -> Lag {
    if !s.in_recovery {
        return Lag::NotStandby;
    }
    if s.streaming && s.caught_up == Some(true) {
        return Lag::Behind(Duration::ZERO);
    }
    match s.replay_age_s {
        Some(age) => Lag::Behind(Duration::from_secs_f64(age.max(0.0))),
        None => Lag::Unknown,
    }
}

/// Where a read goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadSide {
    /// The standby, which may be this far behind.
    Standby { lag: Duration },
    /// The primary, for this reason.
    Primary(Fallback),
}

/// Why a read went to the primary although a standby is configured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fallback {
    /// The standby is further behind than the bound allows.
    TooFarBehind { lag: Duration, max: Duration },
    /// The standby could not say how far behind it is.
    LagUnknown,
    /// The standby could not be reached or asked.
    Unreachable,
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fallback::TooFarBehind { lag, max } => write!(
                f,
                "the standby is {:.1} s behind the primary, more than [database] max_read_lag ({} s)",
                lag.as_secs_f64(),
                max.as_secs_f64()
            ),
            Fallback::LagUnknown => write!(f, "the standby cannot say how far behind it is (not streaming)"),
            Fallback::Unreachable => write!(f, "the standby cannot be reached"),
        }
    }
}

/// The rule: the standby when its lag is known and at most `max`, else the primary.
/// `lag` is `None` when the standby could not be asked.
pub fn choose(lag: Option<Lag>, max: Duration) -> ReadSide {
    match lag {
        None => ReadSide::Primary(Fallback::Unreachable),
        Some(Lag::Unknown) => ReadSide::Primary(Fallback::LagUnknown),
        Some(Lag::NotStandby) => ReadSide::Standby { lag: Duration::ZERO },
        Some(Lag::Behind(lag)) if lag <= max => ReadSide::Standby { lag },
        Some(Lag::Behind(lag)) => ReadSide::Primary(Fallback::TooFarBehind { lag, max }),
    }
}

/// Asks the read server how far its replay is (one statement, no session state).
/// `pg_stat_wal_receiver` shows its `status` only to roles with `pg_read_all_stats`; to
/// others a running WAL receiver counts as streaming.
pub async fn status(pool: &PgPool) -> Result<ReplayStatus> {
    let (in_recovery, streaming, caught_up, replay_age_s): (bool, bool, Option<bool>, Option<f64>) = sqlx::query_as(
        "SELECT pg_is_in_recovery(), \
                COALESCE((SELECT COALESCE(status = 'streaming', true) FROM pg_stat_wal_receiver), false), \
                pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(), \
                extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8",
    )
    .fetch_one(pool)
    .await
    .map_err(Error::sql("reading the standby's replay lag"))?;
    Ok(ReplayStatus { in_recovery, streaming, caught_up, replay_age_s })
}

/// The primary's current WAL position, to wait for a standby to replay what was just
/// written (as text, e.g. `0/3000148`).
pub async fn current_lsn(primary: &PgPool) -> Result<String> {
    sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(primary)
        .await
        .map_err(Error::sql("reading the primary's WAL position"))
}

/// Has the read server replayed the WAL up to `lsn`? (Always, when it is not a standby.)
pub async fn replayed(pool: &PgPool, lsn: &str) -> Result<bool> {
    sqlx::query_scalar("SELECT COALESCE(pg_last_wal_replay_lsn() >= $1::pg_lsn, true)")
        .bind(lsn)
        .fetch_one(pool)
        .await
        .map_err(Error::sql("comparing the standby's replay position"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standby(streaming: bool, caught_up: Option<bool>, age: Option<f64>) -> ReplayStatus {
        ReplayStatus { in_recovery: true, streaming, caught_up, replay_age_s: age }
    }

    #[test]
    fn the_lag_follows_the_replay() {
        let primary = ReplayStatus { in_recovery: false, streaming: false, caught_up: None, replay_age_s: None };
        let cases = [
            (primary, Lag::NotStandby),
            // Caught up while streaming: current, however long the primary has been quiet.
            (standby(true, Some(true), Some(600.0)), Lag::Behind(Duration::ZERO)),
            // Received but not replayed (replay paused, or slow): the last replay's age.
            (standby(true, Some(false), Some(12.5)), Lag::Behind(Duration::from_secs_f64(12.5))),
            // Not streaming: what was received may be all there is; the age is all we know.
            (standby(false, Some(true), Some(40.0)), Lag::Behind(Duration::from_secs(40))),
            (standby(false, None, None), Lag::Unknown),
            (standby(true, None, None), Lag::Unknown),
            // Clocks a little apart never make a negative lag.
            (standby(true, Some(false), Some(-0.2)), Lag::Behind(Duration::ZERO)),
        ];
        for (status, want) in cases {
            assert_eq!(lag(&status), want, "{status:?}");
        }
    }

    #[test]
    fn reads_go_to_the_standby_within_the_bound_else_to_the_primary() {
        let max = Duration::from_secs(30);
        let s = |secs| Some(Lag::Behind(Duration::from_secs(secs)));
        assert_eq!(choose(s(0), max), ReadSide::Standby { lag: Duration::ZERO });
        assert_eq!(choose(s(30), max), ReadSide::Standby { lag: Duration::from_secs(30) });
        let far = Fallback::TooFarBehind { lag: Duration::from_secs(31), max };
        assert_eq!(choose(s(31), max), ReadSide::Primary(far));
        assert_eq!(choose(Some(Lag::Unknown), max), ReadSide::Primary(Fallback::LagUnknown));
        assert_eq!(choose(None, max), ReadSide::Primary(Fallback::Unreachable));
        assert_eq!(choose(Some(Lag::NotStandby), max), ReadSide::Standby { lag: Duration::ZERO });
        assert_eq!(
            far.to_string(),
            "the standby is 31.0 s behind the primary, more than [database] max_read_lag (30 s)"
        );
    }

    #[test]
    fn the_lag_in_seconds() {
        assert_eq!(Lag::NotStandby.seconds(), Some(0.0));
        assert_eq!(Lag::Behind(Duration::from_millis(1500)).seconds(), Some(1.5));
        assert_eq!(Lag::Unknown.seconds(), None);
    }
}
