//! Exponential back-off with jitter, for the loops that retry what failed: the worker's
//! store calls and the agent's deliveries.
//!
//! Steps start at a first delay and double up to a ceiling; each wait is its step
//! jittered to 50–150 %, so that many retrying processes do not come back in step. A
//! success resets the steps to the first delay.

use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

/// The back-off state of one retrying loop.
#[derive(Debug)]
pub(crate) struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
    /// Whether jitter may take a wait past `max` (to 1.5 × `max`) or `max` caps the waits
    /// as well as the steps.
    jitter_past_max: bool,
}

impl Backoff {
    /// Steps from `first` (at most `max`), doubling up to `max`; no wait is longer than
    /// `max`.
    pub(crate) fn new(first: Duration, max: Duration) -> Self {
        let first = first.min(max);
        Backoff { first, max, next: first, jitter_past_max: false }
    }

    /// Lets jitter take a wait past `max`, up to 1.5 × `max`: `max` then caps the steps
    /// only.
    pub(crate) fn jitter_past_max(mut self) -> Self {
        self.jitter_past_max = true;
        self
    }

    /// Starts again from the first step (after a success).
    pub(crate) fn reset(&mut self) {
        self.next = self.first;
    }

    /// The next wait: the current step, jittered to 50–150 %; the step after it doubles.
    pub(crate) fn step(&mut self) -> Duration {
        self.step_by(rand::rng().random_range(0.5..1.5))
    }

    /// Sleeps for the next wait, or until `shutdown`, whichever comes first.
    pub(crate) async fn wait(&mut self, shutdown: &CancellationToken) {
        let wait = self.step();
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }

    /// [`Backoff::step`] with the jitter factor given.
    fn step_by(&mut self, jitter: f64) -> Duration {
        let wait = self.next.mul_f64(jitter);
        let wait = if self.jitter_past_max { wait } else { wait.min(self.max) };
        self.next = (self.next * 2).min(self.max);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn steps_double_up_to_the_ceiling() {
        // (back-off, jitter of each step, the waits)
        let cases: [(Backoff, f64, &[u64]); 5] = [
            (Backoff::new(ms(500), ms(4000)), 1.0, &[500, 1000, 2000, 4000, 4000]),
            (Backoff::new(ms(500), ms(4000)), 0.5, &[250, 500, 1000, 2000, 2000]),
            // The ceiling caps the jittered wait too...
            (Backoff::new(ms(500), ms(4000)), 1.25, &[625, 1250, 2500, 4000, 4000]),
            // ...unless jitter may go past it.
            (Backoff::new(ms(250), ms(2000)).jitter_past_max(), 1.25, &[312, 625, 1250, 2500, 2500]),
            // A first step above the ceiling starts at the ceiling.
            (Backoff::new(ms(500), ms(200)), 1.0, &[200, 200]),
        ];
        for (mut backoff, jitter, want) in cases {
            let got: Vec<u64> = want.iter().map(|_| backoff.step_by(jitter).as_millis() as u64).collect();
            assert_eq!(got, want, "{backoff:?} with jitter {jitter}");
        }
    }

    #[test]
    fn reset_starts_again_from_the_first_step() {
        for mut backoff in [Backoff::new(ms(250), ms(30_000)).jitter_past_max(), Backoff::new(ms(500), ms(200))] {
            let first = backoff.step_by(1.0);
            for _ in 0..10 {
                backoff.step_by(1.0);
            }
            backoff.reset();
            assert_eq!(backoff.step_by(1.0), first, "{backoff:?}");
        }
    }

    #[test]
    fn jittered_waits_stay_within_half_and_one_and_a_half_steps() {
        let mut backoff = Backoff::new(ms(1000), ms(1000)).jitter_past_max();
        for _ in 0..200 {
            let wait = backoff.step();
            assert!((ms(500)..ms(1500)).contains(&wait), "{wait:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn wait_sleeps_the_step_or_until_shutdown() {
        let shutdown = CancellationToken::new();
        let mut backoff = Backoff::new(ms(1000), ms(8000));
        let start = tokio::time::Instant::now();
        backoff.wait(&shutdown).await;
        let slept = start.elapsed();
        assert!((ms(500)..ms(1500)).contains(&slept), "{slept:?}");

        shutdown.cancel();
        let start = tokio::time::Instant::now();
        backoff.wait(&shutdown).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
