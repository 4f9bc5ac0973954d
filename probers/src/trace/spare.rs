//! Send slots a trace took from the tracer's pacer and did not use, handed to the next
//! trace that asks for one.
//!
//! A trace takes its slot before it knows whether it will send: in a first round, while it
//! waits (under a shared rate its turn comes after every other trace in flight has had
//! one) the answer that ends its path arrives, and it sends nothing past the end. The
//! pacer gives no slot back, so each trace would cost the others one slot: a second for
//! 1,000 traces at 1,000 probes per second. The slot is kept here instead, for one pacer
//! spacing but at least 1 ms (the timer's grain), and the next trace to ask sends in it
//! without waiting. Every send still has a slot of the pacer's, used at most that long
//! after its time, so the rate is never exceeded by more than that much worth of probes.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::lock::lock;

/// The unused slots, oldest first, each with the time it was given back.
#[derive(Debug)]
pub(crate) struct SpareSlots {
    fresh: Duration,
    slots: Mutex<VecDeque<Instant>>,
}

impl SpareSlots {
    /// Spare slots of a pacer of `pps` probes per second.
    pub(crate) fn new(pps: u32) -> Self {
        let spacing = Duration::from_secs(1) / pps.max(1);
        SpareSlots { fresh: spacing.max(Duration::from_millis(1)), slots: Mutex::new(VecDeque::new()) }
    }

    /// Takes a spare slot given back within the freshness window, if there is one; older
    /// ones are dropped.
    pub(crate) fn take(&self) -> bool {
        let mut slots = lock(&self.slots);
        self.drop_stale(&mut slots, Instant::now());
        slots.pop_front().is_some()
    }

    /// Gives back a slot just taken and not used.
    pub(crate) fn give(&self) {
        let now = Instant::now();
        let mut slots = lock(&self.slots);
        self.drop_stale(&mut slots, now);
        slots.push_back(now);
    }

    fn drop_stale(&self, slots: &mut VecDeque<Instant>, now: Instant) {
        while slots.front().is_some_and(|&at| now.duration_since(at) > self.fresh) {
            slots.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_slot_given_back_is_taken_once_while_fresh() {
        // (pps, wait after giving back, taken)
        let cases = [
            (1000, Duration::ZERO, true),
            (1000, Duration::from_millis(1), true),
            (1000, Duration::from_micros(1001), false),
            (100, Duration::from_millis(10), true),
            (100, Duration::from_millis(11), false),
            // Above 1,000 per second the window is still the timer's 1 ms.
            (10_000, Duration::from_micros(900), true),
            (10_000, Duration::from_micros(1100), false),
        ];
        for (pps, wait, taken) in cases {
            let spare = SpareSlots::new(pps);
            assert!(!spare.take(), "nothing given back yet");
            spare.give();
            tokio::time::advance(wait).await;
            assert_eq!(spare.take(), taken, "{pps} pps, taken {wait:?} after");
            assert!(!spare.take(), "{pps} pps: one slot given, at most one taken");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stale_slots_are_dropped_oldest_first() {
        let spare = SpareSlots::new(1000);
        spare.give();
        tokio::time::advance(Duration::from_micros(600)).await;
        spare.give();
        spare.give();
        tokio::time::advance(Duration::from_micros(600)).await;
        // The first is 1.2 ms old: gone; the two others are 0.6 ms old.
        assert!(spare.take());
        assert!(spare.take());
        assert!(!spare.take());
    }
}
