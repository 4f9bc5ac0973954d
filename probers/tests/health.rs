//! The health must-shows, driven through the public API at packet level (5 packets per
//! cycle, as a prober would report them).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use probers::health::{EdgeHealth, Event, EventState, HealthConfig, HealthState, Thresholds};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PACKETS: u32 = 5;

fn cycle_time(i: usize) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z").unwrap().with_timezone(&Utc) + TimeDelta::minutes(2 * i as i64)
}

#[test]
fn link_going_up_and_down_every_cycle_is_flapping_and_goes_quiet() {
    let cfg = HealthConfig::default();
    let th = Thresholds::default();
    let mut edge = EdgeHealth::new(cycle_time(0));
    let mut events: Vec<Event> = Vec::new();
    for i in 1..=60 {
        let received = if i % 2 == 0 { 0 } else { PACKETS };
        events.extend(edge.observe(th.assess(PACKETS, received, Some(0.3)), cycle_time(i), &cfg));
    }
    assert!(edge.flapping, "{edge:?}");
    assert!(events.iter().all(|e| e.to != EventState::Down), "{events:#?}");
    let flap = events.iter().position(|e| e.to == EventState::Flapping).expect("flapping event");
    assert_eq!(flap, events.len() - 1, "nothing after flapping started: {events:#?}");

    // The link settles: one event ends flapping, at the current state.
    for i in 61..=100 {
        events.extend(edge.observe(th.assess(PACKETS, PACKETS, Some(0.3)), cycle_time(i), &cfg));
    }
    assert!(!edge.flapping);
    let last = events.last().unwrap();
    assert_eq!((last.from, last.to), (EventState::Flapping, EventState::Up));
    assert_eq!(edge.state, HealthState::Up);
}

#[test]
fn thirty_percent_random_loss_is_degraded_not_down() {
    let cfg = HealthConfig::default();
    let th = Thresholds::default();
    let mut rng = StdRng::seed_from_u64(2026);
    let mut edge = EdgeHealth::new(cycle_time(0));
    let mut events = Vec::new();
    for i in 1..=50 {
        let received = (0..PACKETS).filter(|_| !rng.random_bool(0.3)).count() as u32;
        events.extend(edge.observe(th.assess(PACKETS, received, Some(1.0)), cycle_time(i), &cfg));
        assert_ne!(edge.state, HealthState::Down, "cycle {i}");
    }
    assert_eq!(edge.state, HealthState::Degraded);
    assert!(events.iter().all(|e| e.to != EventState::Down), "{events:#?}");
}

#[test]
fn silent_edge_goes_stale() {
    let cfg = HealthConfig::default();
    let th = Thresholds::default();
    let mut edge = EdgeHealth::new(cycle_time(0));
    edge.observe(th.assess(PACKETS, PACKETS, Some(1.0)), cycle_time(1), &cfg);
    edge.observe(th.assess(PACKETS, PACKETS, Some(1.0)), cycle_time(2), &cfg);
    let interval = Duration::from_secs(120);
    assert_eq!(edge.check_stale(cycle_time(4), interval, &cfg), None);
    let ev = edge.check_stale(cycle_time(5), interval, &cfg).expect("stale after 3 intervals");
    assert_eq!((ev.from, ev.to, ev.at), (EventState::Up, EventState::Stale, cycle_time(5)));
    assert_eq!(edge.state, HealthState::Stale);
}
