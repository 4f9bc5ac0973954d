//! The tracer against loopback addresses: a thousand traces in flight at once on one raw
//! socket (and a hundred over UDP), the same destination traced twice at the same time, and
//! targets the allow-list refuses — on the caller's runtime, and on the tracer's own thread
//! (as agents and workers run it), which ends with the tracer. Needs raw sockets (root or CAP_NET_RAW); without them it
//! prints why and skips. Every destination is in 127.0.0.0/8, one hop away.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use probers::trace::{TraceTarget, Tracer};
use probers::{AllowList, Error, Family};

/// Both ways one after the other: two tracers at once on one loopback would read each
/// other's answers (a raw socket gets every ICMP packet) for the same flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_traces_at_once() {
    thousand_traces(false).await;
    assert_eq!(tracer_threads(), 0, "no tracer thread of its own unless asked");
    thousand_traces(true).await;
    // The thread ends with the tracer (its runtime stops when the tracer is cancelled).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while tracer_threads() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(tracer_threads(), 0, "the tracer's thread ended with it");
}

/// Threads of this process named as the tracer names its own.
fn tracer_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "ew-tracer")
        .count()
}

async fn thousand_traces(own_thread: bool) {
    // A generous timeout: the assertions are on counts, and a loaded machine must not turn a
    // slow answer into a loss.
    let tracer = Tracer::builder(AllowList::loopback())
        .interval(Duration::from_millis(20))
        .timeout(Duration::from_secs(3))
        .pps(50_000)
        .own_thread(own_thread)
        .build()
        .unwrap();
    if let Err(reason) = tracer.available(Family::V4) {
        println!("SKIP a_thousand_traces_at_once (own thread: {own_thread}): {reason}");
        return;
    }
    if own_thread {
        assert_eq!(tracer_threads(), 1, "the tracer's own thread runs");
    }
    let mut targets: Vec<TraceTarget> = (0..1000u32)
        .map(|i| TraceTarget::new(IpAddr::V4(Ipv4Addr::new(127, 1 + (i / 250) as u8, 7, (i % 250) as u8 + 1))))
        .collect();
    // The same pair twice at once (same flow, so the same identifier), and on another flow.
    let twin = TraceTarget::new("127.0.0.1".parse().unwrap());
    targets.extend([twin, twin, twin.with_flow(9)]);
    // UDP to a closed port: the destination answers with port unreachable.
    targets.extend((1..=100u8).map(|i| TraceTarget::udp(IpAddr::V4(Ipv4Addr::new(127, 9, 0, i)), 33434)));
    let refused = TraceTarget::new("192.0.2.1".parse().unwrap());
    targets.insert(500, refused);

    let results = tracer.trace_all(targets.clone()).await;

    assert_eq!(results.len(), targets.len());
    for (want, (got, result)) in targets.iter().zip(&results) {
        assert_eq!(want, got, "results come back in the order given");
        if *got == refused {
            assert!(matches!(result, Err(Error::Refused(_))), "{result:?}");
            continue;
        }
        let run = result.as_ref().unwrap_or_else(|e| panic!("{got}: {e}"));
        assert!(run.reached, "{got}: {run:?}");
        assert_eq!(run.hops.len(), 1, "{got}: one hop, the destination: {run:?}");
        let hop = &run.hops[0];
        assert_eq!((hop.ttl, hop.addrs.as_slice(), hop.sent, hop.received), (1, &[got.ip][..], 3, 3), "{got}");
    }
    let stats = tracer.stats();
    let traced = targets.len() as u64 - 1;
    assert_eq!((stats.traces, stats.refused), (traced, 1), "{stats:?}");
    // Three answered probes per trace, and whatever left past a destination before its
    // answer was read (answered too: loopback drops nothing).
    assert!(stats.answers_received >= 3 * traced && stats.answers_received <= stats.probes_sent, "{stats:?}");
    // One trace alone, through `trace`, runs where the others did.
    let one = tracer.trace(TraceTarget::new("127.0.0.1".parse().unwrap())).await.unwrap();
    assert!(one.reached, "{one:?}");
    tracer.shutdown().await;
}
