//! Several servers for one agent (`--server URL1,URL2,…`): which one the next request goes
//! to. Each agent tries them in an order of its own, stable across restarts (the list
//! turned by a hash of its node name, so that agents spread over the servers); a request
//! that fails moves it on to the next; after [`RETURN_AFTER`] away from its first choice it
//! tries that one again. Pure: the caller says what happened and when.

use std::time::{Duration, Instant};

/// How long an agent stays away from its first choice before trying it again.
pub const RETURN_AFTER: Duration = Duration::from_secs(300);

/// The servers' indexes in the order `node` tries them.
pub fn order(servers: usize, node: &str) -> Vec<usize> {
    if servers == 0 {
        return Vec::new();
    }
    // FNV-1a: stable across builds and platforms (std's hasher is not promised to be).
    let hash = node.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let first = (hash % servers as u64) as usize;
    (0..servers).map(|i| (first + i) % servers).collect()
}

/// Where an agent's requests go.
#[derive(Debug, Clone)]
pub struct Choice {
    order: Vec<usize>,
    /// Position in `order` of the server in use.
    at: usize,
    /// When the agent left its first choice.
    away_since: Option<Instant>,
}

impl Choice {
    pub fn new(servers: usize, node: &str) -> Choice {
        Choice { order: order(servers, node), at: 0, away_since: None }
    }

    /// The server for the next request: the one in use, or the first choice again once
    /// the agent has been away from it for [`RETURN_AFTER`]. `Some` when that is a change.
    pub fn pick(&mut self, now: Instant) -> (usize, Option<usize>) {
        if self.away_since.is_some_and(|since| now.duration_since(since) >= RETURN_AFTER) {
            let from = self.order[self.at];
            self.at = 0;
            self.away_since = None;
            return (self.order[0], Some(from));
        }
        (self.order[self.at], None)
    }

    /// A request to `server` failed in a way another server may not (unreachable, 5xx):
    /// the next server in the order, when `server` is still the one in use. Returns the
    /// new one when it moved.
    pub fn failed(&mut self, server: usize, now: Instant) -> Option<usize> {
        if self.order.len() < 2 || self.order[self.at] != server {
            return None;
        }
        self.at = (self.at + 1) % self.order.len();
        self.away_since = if self.at == 0 { None } else { self.away_since.or(Some(now)) };
        Some(self.order[self.at])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_agent_has_a_stable_order_and_agents_spread_over_the_servers() {
        assert_eq!(order(3, "be5.host58"), order(3, "be5.host58"));
        for node in ["a", "be5.host58", "fe1.host101"] {
            let mut o = order(3, node);
            o.sort_unstable();
            assert_eq!(o, [0, 1, 2], "every server once");
        }
        let mut firsts = [0; 3];
        for i in 0..3000 {
            firsts[order(3, &format!("be{}.host{}", i % 7, i))[0]] += 1;
        }
        assert!(firsts.iter().all(|&n| n > 800), "first choices spread: {firsts:?}");
        assert_eq!(order(1, "x"), [0]);
        assert!(order(0, "x").is_empty());
    }

    #[test]
    fn a_failure_moves_on_and_the_first_choice_comes_back_later() {
        let t0 = Instant::now();
        let mut c = Choice::new(3, "be5.host58");
        let o = order(3, "be5.host58");
        assert_eq!(c.pick(t0), (o[0], None));
        assert_eq!(c.failed(o[0], t0), Some(o[1]));
        assert_eq!(c.failed(o[0], t0), None, "a late failure of the server left already moves nothing");
        assert_eq!(c.pick(t0 + Duration::from_secs(10)), (o[1], None));
        assert_eq!(c.failed(o[1], t0 + Duration::from_secs(20)), Some(o[2]));
        // Away since t0 (not since the second move): back to the first choice after 5 min.
        assert_eq!(c.pick(t0 + RETURN_AFTER - Duration::from_secs(1)), (o[2], None));
        assert_eq!(c.pick(t0 + RETURN_AFTER), (o[0], Some(o[2])));
        assert_eq!(c.pick(t0 + RETURN_AFTER * 3), (o[0], None), "at the first choice: nothing to return to");
        // Round the list: back at the first choice, not away any more.
        let mut c = Choice::new(2, "n");
        let o = order(2, "n");
        assert_eq!(c.failed(o[0], t0), Some(o[1]));
        assert_eq!(c.failed(o[1], t0), Some(o[0]));
        assert_eq!(c.pick(t0 + RETURN_AFTER * 2), (o[0], None));
        // One server: failures change nothing.
        let mut c = Choice::new(1, "n");
        assert_eq!(c.failed(0, t0), None);
        assert_eq!(c.pick(t0 + RETURN_AFTER * 2), (0, None));
    }
}
