//! TCP connect probing: a completed handshake is a reply, the time it took the RTT.
//!
//! A cycle makes `packets` connect attempts `interval` apart, each given up after
//! `timeout`; refused or unanswered attempts are losses. Connections are closed at once
//! with a reset (zero linger), so a busy prober does not pile up `TIME_WAIT` sockets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::allow::AllowedIp;
use crate::engine::Counters;
use crate::pace::Pacer;
use crate::stats::{human_duration, ProbeOutcome};

/// Settings the TCP prober takes from the engine builder (validated there).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpSettings {
    pub attempts: u32,
    pub interval: Duration,
    pub timeout: Duration,
}

/// One connect attempt to `ip:port`: the handshake time, or why it failed.
pub async fn connect_once(ip: AllowedIp, port: u16, timeout: Duration) -> Result<Duration, String> {
    let addr = SocketAddr::new(ip.ip(), port);
    let start = Instant::now();
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            let rtt = start.elapsed();
            let _ = stream.set_zero_linger();
            Ok(rtt)
        }
        Ok(Err(e)) => Err(format!("connect to {addr}: {e}")),
        Err(_) => Err(format!("connect to {addr}: no answer within {}", human_duration(timeout))),
    }
}

/// One cycle of connect attempts to `ip:port`.
pub(crate) async fn probe(
    ip: AllowedIp,
    port: u16,
    settings: TcpSettings,
    pacer: Arc<Pacer>,
    counters: Arc<Counters>,
) -> ProbeOutcome {
    if port == 0 {
        return ProbeOutcome::not_sent(format!("{ip}: port 0 is not a TCP port to probe"));
    }
    let mut attempts = JoinSet::new();
    for i in 0..settings.attempts {
        if i > 0 {
            tokio::time::sleep(settings.interval).await;
        }
        pacer.wait().await;
        counters.packet_sent();
        // The index keeps the last error the last attempt's, whatever order they finish in.
        attempts.spawn(async move { (i, connect_once(ip, port, settings.timeout).await) });
    }
    let mut rtts = Vec::with_capacity(settings.attempts as usize);
    let mut last_error: Option<(u32, String)> = None;
    while let Some(joined) = attempts.join_next().await {
        match joined {
            Ok((_, Ok(rtt))) => rtts.push(rtt),
            Ok((i, Err(e))) => {
                if last_error.as_ref().is_none_or(|(j, _)| i > *j) {
                    last_error = Some((i, e));
                }
            }
            Err(e) => last_error = Some((u32::MAX, format!("connect attempt task failed: {e}"))),
        }
    }
    counters.replies_received(rtts.len());
    ProbeOutcome::from_samples(settings.attempts, &rtts, last_error.map(|(_, e)| e))
}
