//! TCP SYN traces over loopback: to a listening port (answered with SYN-ACK) and to a
//! closed one (answered with a reset), IPv4 and IPv6, a hundred at once on one raw socket,
//! and one the allow-list refuses. No connection is ever completed: our kernel resets each
//! SYN-ACK. Needs raw sockets (root or CAP_NET_RAW); without them it prints why and skips.
//! Every destination is in 127.0.0.0/8 or ::1, one hop away.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::time::Duration;

use probers::trace::{TraceTarget, Tracer};
use probers::{AllowList, Error, Family};

/// A port nothing listens on (one just given up; nothing else here binds ports).
fn closed_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_traces_reach_open_and_closed_ports() {
    let tracer = Tracer::builder(AllowList::loopback())
        .interval(Duration::from_millis(20))
        .timeout(Duration::from_secs(3))
        .pps(20_000)
        .build()
        .unwrap();
    if let Err(reason) = tracer.available(Family::V4) {
        println!("SKIP tcp_traces_reach_open_and_closed_ports: {reason}");
        return;
    }
    // Listening on every loopback address of each family; no one accepts.
    let open4 = TcpListener::bind("0.0.0.0:0").unwrap();
    let open6 = TcpListener::bind("[::1]:0").unwrap();
    let (port4, port6) = (open4.local_addr().unwrap().port(), open6.local_addr().unwrap().port());
    let (closed4, closed6) = (closed_port("127.0.0.1"), closed_port("::1"));
    let (v4, v6): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "::1".parse().unwrap());

    let mut targets = vec![
        TraceTarget::tcp(v4, port4),
        TraceTarget::tcp(v4, closed4),
        TraceTarget::tcp(v6, port6),
        TraceTarget::tcp(v6, closed6),
        // The same pair on another flow: another source port, still one hop.
        TraceTarget::tcp(v4, port4).with_flow(3),
    ];
    // A hundred more at once: open and closed ports on other loopback addresses.
    targets.extend((1..=100u8).map(|i| {
        let port = if i % 2 == 0 { port4 } else { closed4 };
        TraceTarget::tcp(IpAddr::V4(Ipv4Addr::new(127, 11, 0, i)), port)
    }));
    let refused = TraceTarget::tcp("192.0.2.1".parse().unwrap(), 443);
    targets.push(refused);

    let results = tracer.trace_all(targets.clone()).await;

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
    assert!(stats.answers_received >= 3 * traced && stats.answers_received <= stats.probes_sent, "{stats:?}");
    tracer.shutdown().await;

    // Our kernel reset every SYN-ACK: no handshake completed, nothing waits to be accepted.
    for listener in [&open4, &open6] {
        listener.set_nonblocking(true).unwrap();
        let accepted = listener.accept().map(|(_, peer)| peer);
        assert!(matches!(&accepted, Err(e) if e.kind() == ErrorKind::WouldBlock), "{accepted:?}");
    }
}
