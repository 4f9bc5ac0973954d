//! ICMP echo probing: one socket per address family, thousands of targets in flight at once.
//!
//! Each family gets one socket: raw (`SOCK_RAW`, needs root or `CAP_NET_RAW`) or the
//! kernel's unprivileged ICMP datagram socket (`SOCK_DGRAM`, allowed when our group is in
//! `net.ipv4.ping_group_range`), whichever opens first in the preferred order. Every echo
//! request gets a sequence number unique among those in flight on its socket; one receive
//! thread per socket matches replies to waiting probes by sequence number and source address
//! (and, on raw sockets, which see every ICMP packet on the host, by our identifier too; a
//! datagram socket's identifier is the kernel's). Raw sockets carry a kernel (classic BPF)
//! filter that lets through only echo replies with our identifier and ICMP errors, so our
//! own requests looping back and other programs' traffic never reach the receive thread.
//!
//! The sockets are socket2's, blocking: the receive thread sits in `recvmsg` (through nix,
//! for the kernel's arrival time stamp, with safe buffers and source addresses, no
//! `unsafe`), and probes send from the runtime with `MSG_DONTWAIT`.

pub mod packet;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage};

use serde::{Deserialize, Serialize};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

pub use self::packet::Family;
use self::packet::{ErrorKind, Framing, Message};
use crate::allow::AllowedIp;
use crate::bpf::{self, Insn, DROP, JEQ_K, KEEP, LDX_B_MSH, LD_B_ABS, LD_B_IND, LD_H_ABS, LD_H_IND};
use crate::engine::Counters;
use crate::error::{Error, Result};
use crate::lock::lock;
use crate::pace::Pacer;
use crate::stats::{human_duration, ProbeOutcome};

/// Echo requests in flight per socket at most (sequence numbers are 16 bits; half the space
/// stays free so a late reply rarely meets a reused number).
pub const MAX_IN_FLIGHT: usize = 32_768;

/// Which kind of ICMP socket a family uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IcmpMode {
    /// `SOCK_RAW`: sees all ICMP on the host; IPv4 reads include the IP header.
    Raw,
    /// `SOCK_DGRAM` ("ping socket"): the kernel sets the identifier and delivers only our replies.
    Datagram,
}

impl fmt::Display for IcmpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IcmpMode::Raw => "raw",
            IcmpMode::Datagram => "datagram",
        })
    }
}

/// Settings the pinger takes from the engine builder (validated there).
#[derive(Debug, Clone)]
pub(crate) struct PingSettings {
    pub packets: u32,
    pub interval: Duration,
    pub timeout: Duration,
    pub identifier: u16,
    pub prefer_unprivileged: bool,
}

/// A fresh identifier for each pinger in this process (so two engines' raw sockets never
/// take each other's replies), starting from a random point (so two processes rarely meet).
pub(crate) fn next_identifier() -> u16 {
    static NEXT: OnceLock<AtomicU16> = OnceLock::new();
    NEXT.get_or_init(|| AtomicU16::new(rand::random())).fetch_add(1, Ordering::Relaxed)
}

/// ICMP echo over one socket per family.
#[derive(Debug)]
pub(crate) struct Pinger {
    v4: std::result::Result<Arc<IcmpSocket>, String>,
    v6: std::result::Result<Arc<IcmpSocket>, String>,
    settings: PingSettings,
    pacer: Arc<Pacer>,
    counters: Arc<Counters>,
    cancel: CancellationToken,
    receivers: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

#[derive(Debug)]
struct IcmpSocket {
    family: Family,
    mode: IcmpMode,
    /// Blocking, for its receive thread; sends from the runtime do not block
    /// ([`IcmpSocket::send_to`]).
    socket: Socket,
    identifier: u16,
    slots: Arc<Semaphore>,
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    waiters: HashMap<u16, Waiter>,
    next_seq: u16,
    next_token: u64,
}

#[derive(Debug)]
struct Waiter {
    target: IpAddr,
    token: u64,
    sent_at: Instant,
    /// The same moment by the wall clock, which the kernel's receive time stamps use.
    sent_wall: SystemTime,
    tx: oneshot::Sender<Reply>,
}

#[derive(Debug)]
enum Reply {
    Echo(Duration),
    Error { kind: ErrorKind, from: IpAddr },
}

/// Holds a sequence number (and an in-flight slot) until the packet is answered or given up.
#[derive(Debug)]
struct Registration {
    socket: Arc<IcmpSocket>,
    seq: u16,
    token: u64,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut pending = self.socket.lock_pending();
        if pending.waiters.get(&self.seq).is_some_and(|w| w.token == self.token) {
            pending.waiters.remove(&self.seq);
        }
    }
}

impl Pinger {
    /// Opens a socket per family and starts its receive thread. A family whose socket cannot
    /// be opened is remembered with the reason, and its targets get that reason as their
    /// outcome.
    pub(crate) fn open(settings: PingSettings, pacer: Arc<Pacer>, counters: Arc<Counters>) -> Pinger {
        let cancel = CancellationToken::new();
        let mut receivers = Vec::new();
        let mut open_family = |family| -> std::result::Result<Arc<IcmpSocket>, String> {
            let socket = IcmpSocket::open(family, settings.prefer_unprivileged, settings.identifier)
                .map(Arc::new)
                .map_err(|e| e.to_string())?;
            let (s, c, stop) = (socket.clone(), counters.clone(), cancel.clone());
            let thread = std::thread::Builder::new()
                .name(format!("icmp-{family}-receive"))
                .spawn(move || receive(s, c, stop))
                .map_err(|e| format!("starting the ICMP receive thread: {e}"))?;
            receivers.push(thread);
            tracing::debug!(%family, mode = %socket.mode, identifier = socket.identifier, "ICMP socket open");
            Ok(socket)
        };
        let v4 = open_family(Family::V4);
        let v6 = open_family(Family::V6);
        Pinger { v4, v6, settings, pacer, counters, cancel, receivers: Mutex::new(receivers) }
    }

    /// The socket kind in use for a family, or why there is none.
    pub(crate) fn mode(&self, family: Family) -> std::result::Result<IcmpMode, &str> {
        self.socket(family).map(|s| s.mode).map_err(String::as_str)
    }

    fn socket(&self, family: Family) -> std::result::Result<&Arc<IcmpSocket>, &String> {
        match family {
            Family::V4 => self.v4.as_ref(),
            Family::V6 => self.v6.as_ref(),
        }
    }

    /// One cycle against `target`: `packets` echo requests `interval` apart, each waited for
    /// up to `timeout`.
    pub(crate) async fn ping(&self, target: AllowedIp) -> ProbeOutcome {
        let ip = target.ip();
        let socket = match self.socket(Family::of(ip)) {
            Ok(socket) => socket.clone(),
            Err(reason) => return ProbeOutcome::not_sent(reason.clone()),
        };
        let PingSettings { packets, interval, timeout, .. } = self.settings;
        let mut sent = 0;
        let mut cause: Option<String> = None;
        let mut in_flight = Vec::with_capacity(packets as usize);
        for i in 0..packets {
            if i > 0 {
                tokio::time::sleep(interval).await;
            }
            let slot = socket.slots.clone().acquire_owned().await.expect("the in-flight semaphore is never closed");
            self.pacer.wait().await;
            let (registration, rx) = socket.register(target, slot);
            let request = packet::echo_request(socket.family, socket.identifier, registration.seq);
            sent += 1;
            match socket.send_to(&request, SocketAddr::new(ip, 0)).await {
                Ok(_) => {
                    self.counters.packet_sent();
                    in_flight.push((tokio::time::Instant::now() + timeout, rx, registration));
                }
                Err(e) => cause = Some(format!("sending echo request to {ip}: {e}")),
            }
        }
        let mut rtts = Vec::with_capacity(in_flight.len());
        for (deadline, rx, registration) in in_flight {
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(Reply::Echo(rtt))) if rtt <= timeout => rtts.push(rtt),
                Ok(Ok(Reply::Echo(_))) | Err(_) => {
                    cause.get_or_insert_with(|| format!("no echo reply within {}", human_duration(timeout)));
                }
                Ok(Ok(Reply::Error { kind, from })) => cause = Some(format!("{kind} from {from}")),
                Ok(Err(_)) => cause = Some("the ICMP receive thread stopped".into()),
            }
            drop(registration);
        }
        self.counters.replies_received(rtts.len());
        let cause = if rtts.len() < sent as usize { cause } else { None };
        ProbeOutcome::from_samples(sent, &rtts, cause)
    }

    /// Stops the receive threads and waits for them (each sees the stop within
    /// [`RECEIVE_WAKE`]).
    pub(crate) async fn shutdown(&self) {
        self.cancel.cancel();
        let handles = std::mem::take(&mut *lock(&self.receivers));
        for handle in handles {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl IcmpSocket {
    fn open(family: Family, prefer_unprivileged: bool, identifier: u16) -> Result<IcmpSocket> {
        let (domain, protocol, unspecified) = match family {
            Family::V4 => (Domain::IPV4, Protocol::ICMPV4, IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            Family::V6 => (Domain::IPV6, Protocol::ICMPV6, IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        };
        let order =
            if prefer_unprivileged { [IcmpMode::Datagram, IcmpMode::Raw] } else { [IcmpMode::Raw, IcmpMode::Datagram] };
        let try_open = |mode| {
            let ty = match mode {
                IcmpMode::Raw => Type::RAW,
                IcmpMode::Datagram => Type::DGRAM,
            };
            Socket::new(domain, ty, Some(protocol))
        };
        let (socket, mode) = match try_open(order[0]) {
            Ok(socket) => (socket, order[0]),
            Err(first) => match try_open(order[1]) {
                Ok(socket) => {
                    tracing::debug!(%family, preferred = %order[0], error = %first, "falling back to {} ICMP socket", order[1]);
                    (socket, order[1])
                }
                Err(second) => {
                    let (raw, dgram) = if order[0] == IcmpMode::Raw { (first, second) } else { (second, first) };
                    return Err(Error::IcmpUnavailable { family, raw, dgram });
                }
            },
        };
        // The receive thread blocks in reads, looking for the stop this often.
        socket.set_read_timeout(Some(RECEIVE_WAKE)).map_err(Error::io("set the ICMP socket's read timeout"))?;
        stamp_arrivals(&socket, family);
        // Thousands of replies can arrive in a burst; a larger buffer keeps them (the
        // kernel caps it at net.core.rmem_max, which is fine).
        let _ = socket.set_recv_buffer_size(4 << 20);
        if mode == IcmpMode::Raw {
            // A raw socket sees every ICMP packet on the host: our own requests looping back,
            // other programs' pings, neighbour discovery. Let the kernel drop all but what
            // `dispatch` could use, so a busy host does not flood the receive thread. If the
            // filter cannot be set, `dispatch` still checks everything; it is only slower.
            if let Err(e) = bpf::attach(&socket, &raw_filter(family, identifier)) {
                tracing::warn!(%family, error = %e, "cannot attach the ICMP socket filter; filtering in user space");
            }
        }
        let identifier = match mode {
            IcmpMode::Raw => identifier,
            IcmpMode::Datagram => {
                // Binding picks the identifier the kernel will put on our requests.
                socket.bind(&SocketAddr::new(unspecified, 0).into()).map_err(Error::io("bind ICMP datagram socket"))?;
                socket.local_addr().ok().and_then(|a| a.as_socket()).map(|a| a.port()).unwrap_or(identifier)
            }
        };
        Ok(IcmpSocket {
            family,
            mode,
            socket,
            identifier,
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            pending: Mutex::new(Pending::default()),
        })
    }

    /// Sends one packet without blocking the runtime (the socket itself blocks, for its
    /// receive thread): a full send buffer is waited out in 1 ms steps.
    async fn send_to(&self, packet: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        let to = socket2::SockAddr::from(to);
        loop {
            match self.socket.send_to_with_flags(packet, &to, MsgFlags::MSG_DONTWAIT.bits()) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                sent => return sent,
            }
        }
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        lock(&self.pending)
    }

    /// Takes a free sequence number for a request to `target`, sent from now on.
    fn register(
        self: &Arc<Self>,
        target: AllowedIp,
        slot: OwnedSemaphorePermit,
    ) -> (Registration, oneshot::Receiver<Reply>) {
        let (tx, rx) = oneshot::channel();
        let mut pending = self.lock_pending();
        // At most MAX_IN_FLIGHT numbers are taken (the slot says so), so a free one exists.
        let mut seq = pending.next_seq;
        while pending.waiters.contains_key(&seq) {
            seq = seq.wrapping_add(1);
        }
        pending.next_seq = seq.wrapping_add(1);
        let token = pending.next_token;
        pending.next_token += 1;
        let (sent_at, sent_wall) = (Instant::now(), SystemTime::now());
        pending.waiters.insert(seq, Waiter { target: target.ip(), token, sent_at, sent_wall, tx });
        drop(pending);
        (Registration { socket: self.clone(), seq, token, _slot: slot }, rx)
    }

    /// Hands a received packet to the probe waiting for it, if any. `arrived`: when the
    /// kernel took it in (its receive time stamp), else `at`, when it was read: the round
    /// trip is measured to the first, so a reader that comes to a packet late does not
    /// add its lateness to the RTT.
    fn dispatch(&self, buf: &[u8], from: IpAddr, at: Instant, arrived: Option<SystemTime>) {
        let framing = match (self.mode, self.family) {
            (IcmpMode::Raw, Family::V4) => Framing::WithIpHeader,
            _ => Framing::IcmpOnly,
        };
        let ours = |id: u16| self.mode == IcmpMode::Datagram || id == self.identifier;
        let (seq, target, reply) = match packet::parse(self.family, framing, buf) {
            Message::EchoReply { id, seq, payload } if ours(id) && payload.starts_with(packet::PAYLOAD_MAGIC) => {
                (seq, from, None)
            }
            Message::Error { kind, dst, id, seq } if ours(id) => (seq, dst, Some(Reply::Error { kind, from })),
            _ => return,
        };
        let mut pending = self.lock_pending();
        if pending.waiters.get(&seq).is_some_and(|w| w.target == target.to_canonical()) {
            let waiter = pending.waiters.remove(&seq).expect("checked above");
            drop(pending);
            let rtt = arrived
                .and_then(|t| t.duration_since(waiter.sent_wall).ok())
                .unwrap_or_else(|| at.saturating_duration_since(waiter.sent_at));
            let reply = reply.unwrap_or(Reply::Echo(rtt));
            let _ = waiter.tx.send(reply);
        }
    }
}

/// How often a receive thread with nothing to read looks for the stop.
const RECEIVE_WAKE: Duration = Duration::from_millis(100);

/// The receive thread of one socket: reads until cancelled. A thread of its own, blocked in
/// the read, not a task on the runtime: with thousands of probes in flight the runtime came
/// to a receive task late, and a burst of replies then overflowed the socket's buffer
/// (replies lost: 2-4 % in some runs at 10,000 loopback targets). Round trips end at the
/// kernel's arrival stamp either way.
fn receive(socket: Arc<IcmpSocket>, counters: Arc<Counters>, cancel: CancellationToken) {
    // Loopback's MTU is 64 KiB; raw IPv4 reads include the IP header.
    let mut buf = vec![0u8; 65_536];
    let mut control = nix::cmsg_space!(nix::sys::time::TimeSpec);
    while !cancel.is_cancelled() {
        match receive_stamped(&socket.socket, &mut buf, &mut control) {
            Ok((n, from, arrived)) => {
                counters.icmp_packet_read();
                socket.dispatch(&buf[..n], from, Instant::now(), arrived);
            }
            // The read timeout: a look at the stop.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) => {}
            Err(e) => {
                tracing::warn!(family = %socket.family, mode = %socket.mode, error = %e, "ICMP receive failed");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Asks the kernel to stamp each packet with the time it arrived (`SO_TIMESTAMPNS`); without
/// it, round trips are measured to when the packet is read.
fn stamp_arrivals(socket: &Socket, family: Family) {
    if let Err(e) = setsockopt(socket, sockopt::ReceiveTimestampns, &true) {
        tracing::debug!(%family, error = %e, "no receive time stamps on the ICMP socket");
    }
}

/// One packet, with its sender and the kernel's time stamp of its arrival, if given.
/// `control`: the ancillary-data buffer, reused from packet to packet (nix's `recvmsg`
/// takes it as a `Vec`).
#[allow(clippy::ptr_arg)]
fn receive_stamped(
    socket: &Socket,
    buf: &mut [u8],
    control: &mut Vec<u8>,
) -> std::io::Result<(usize, IpAddr, Option<SystemTime>)> {
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(socket.as_raw_fd(), &mut iov, Some(control), MsgFlags::empty())
        .map_err(std::io::Error::from)?;
    let from = msg
        .address
        .and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
        })
        .ok_or_else(|| std::io::Error::other("an ICMP packet without a sender address"))?;
    let arrived = msg.cmsgs().ok().into_iter().flatten().find_map(|c| match c {
        ControlMessageOwned::ScmTimestampns(ts) => {
            let (secs, nanos) = (u64::try_from(ts.tv_sec()).ok()?, u32::try_from(ts.tv_nsec()).ok()?);
            Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
        }
        _ => None,
    });
    Ok((msg.bytes, from, arrived))
}

/// The kernel filter for a raw socket: keep echo replies carrying our identifier and the
/// ICMP errors that may quote our requests; drop the rest. Raw IPv4 sockets filter from
/// the IP header, ICMPv6 ones from the ICMPv6 header.
fn raw_filter(family: Family, identifier: u16) -> [Insn; 10] {
    let id = u32::from(identifier);
    // Instruction 8 drops, 9 keeps; jump offsets count from the next instruction.
    match family {
        Family::V4 => [
            (LDX_B_MSH, 0, 0, 0),
            (LD_B_IND, 0, 0, 0), // type
            (JEQ_K, 6, 0, 3),    // destination unreachable
            (JEQ_K, 5, 0, 11),   // time exceeded
            (JEQ_K, 4, 0, 12),   // parameter problem
            (JEQ_K, 0, 2, 0),    // echo reply, else drop
            (LD_H_IND, 0, 0, 4), // identifier
            (JEQ_K, 1, 0, id),
            DROP,
            KEEP,
        ],
        Family::V6 => [
            (LD_B_ABS, 0, 0, 0), // type
            (JEQ_K, 7, 0, 1),    // destination unreachable
            (JEQ_K, 6, 0, 2),    // packet too big
            (JEQ_K, 5, 0, 3),    // time exceeded
            (JEQ_K, 4, 0, 4),    // parameter problem
            (JEQ_K, 0, 2, 129),  // echo reply, else drop
            (LD_H_ABS, 0, 0, 4), // identifier
            (JEQ_K, 1, 0, id),
            DROP,
            KEEP,
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::run;

    fn ipv4(icmp: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1];
        p.extend_from_slice(icmp);
        p
    }

    fn with_type(mut icmp: Vec<u8>, ty: u8) -> Vec<u8> {
        icmp[0] = ty;
        icmp
    }

    #[test]
    fn raw_filters_keep_our_replies_and_errors_only() {
        let id = 0x4242;
        let v4 = raw_filter(Family::V4, id);
        let ours = packet::echo_request(Family::V4, id, 1);
        let cases = [
            ("our reply", ipv4(&with_type(ours.clone(), 0)), true),
            ("someone's reply", ipv4(&with_type(packet::echo_request(Family::V4, id + 1, 1), 0)), false),
            ("our request looping back", ipv4(&ours), false),
            ("destination unreachable", ipv4(&with_type(ours.clone(), 3)), true),
            ("time exceeded", ipv4(&with_type(ours.clone(), 11)), true),
            ("timestamp request", ipv4(&with_type(ours.clone(), 13)), false),
            ("truncated", ipv4(&[0, 0]), false),
        ];
        for (name, pkt, keep) in &cases {
            assert_eq!(run(&v4, pkt) > 0, *keep, "IPv4: {name}");
        }
        // An IPv4 header with options (IHL 6) moves the ICMP header.
        let mut long = vec![0x46, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1, 1, 1, 1, 1];
        long.extend_from_slice(&with_type(ours, 0));
        assert!(run(&v4, &long) > 0);

        let v6 = raw_filter(Family::V6, id);
        let ours6 = packet::echo_request(Family::V6, id, 1);
        let cases6 = [
            ("our reply", with_type(ours6.clone(), 129), true),
            ("someone's reply", with_type(packet::echo_request(Family::V6, id - 1, 1), 129), false),
            ("our request looping back", ours6.clone(), false),
            ("neighbour solicitation", with_type(ours6.clone(), 135), false),
            ("destination unreachable", with_type(ours6.clone(), 1), true),
            ("packet too big", with_type(ours6.clone(), 2), true),
            ("time exceeded", with_type(ours6.clone(), 3), true),
            ("parameter problem", with_type(ours6, 4), true),
            ("truncated", vec![129, 0, 0], false),
        ];
        for (name, pkt, keep) in &cases6 {
            assert_eq!(run(&v6, pkt) > 0, *keep, "IPv6: {name}");
        }
    }
}
