//! The packets-per-second cap: a pacer that hands out evenly spaced send slots.
//!
//! Every probe packet (echo request, TCP connect attempt) waits for a slot first, so the
//! engine as a whole never sends faster than the configured rate, however many targets are
//! in flight. Slots are reserved in order under a short lock; waiting happens outside it.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::lock::lock;

/// Spaces sends at most `pps` per second.
#[derive(Debug)]
pub struct Pacer {
    spacing: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    /// A pacer for `pps` packets per second (at least 1).
    pub fn new(pps: u32) -> Self {
        let spacing = Duration::from_secs(1) / pps.max(1);
        Pacer { spacing, next: Mutex::new(None) }
    }

    /// Waits for the next free send slot. A caller that is dropped while waiting still
    /// uses up its slot, which only errs on the slow side.
    pub async fn wait(&self) {
        let now = Instant::now();
        let slot = {
            let mut next = lock(&self.next);
            let slot = match *next {
                Some(at) if at > now => at,
                _ => now,
            };
            *next = Some(slot + self.spacing);
            slot
        };
        if slot > now {
            tokio::time::sleep_until(slot).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_sends() {
        let pacer = Pacer::new(100);
        let start = Instant::now();
        for _ in 0..11 {
            pacer.wait().await;
        }
        // 11 sends at 100/s: the first at once, then ten 10 ms gaps.
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_is_not_banked() {
        let pacer = Pacer::new(10);
        pacer.wait().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let start = Instant::now();
        pacer.wait().await;
        pacer.wait().await;
        // After a pause the next send goes at once, the one after waits a full gap: no burst.
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_share_the_rate() {
        let pacer = std::sync::Arc::new(Pacer::new(1000));
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let pacer = pacer.clone();
            set.spawn(async move { pacer.wait().await });
        }
        while set.join_next().await.is_some() {}
        assert_eq!(start.elapsed(), Duration::from_millis(49));
    }
}
