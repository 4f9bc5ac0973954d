//! The tracer's socket I/O: per address family one raw ICMP socket, shared by every trace
//! in flight, with its receive task; one raw UDP socket that only sends UDP probes (their
//! answers are ICMP, read by the ICMP socket); and one raw TCP socket that sends TCP SYN
//! probes and, with a receive task of its own, reads the destinations' SYN-ACKs and
//! resets (routers' answers to them are ICMP again).
//!
//! A probe is registered under (destination, flow, probe number) just before it
//! leaves; the receive tasks read every packet the kernel filters let through, parse it
//! ([`super::packet::parse`], [`super::packet::parse_tcp`]) and hand the answer to the
//! trace that registered that key, over the trace's channel. Probe numbers come from one counter per family, skipping keys
//! still in flight, so two traces sharing a destination and flow (a hash collision, or the
//! same pair traced twice at once) never take each other's answers.
//!
//! Each probe needs its own TTL on a socket many tasks send on, so the TTL option and the
//! send happen together under a lock (only the send itself is under it; a full socket
//! buffer is waited for outside it). Raw sockets need root or `CAP_NET_RAW`: the tracer
//! must choose the ICMP identifier, the UDP checksum and the TCP sequence number, which
//! unprivileged sockets do not allow.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use super::packet::{self, Answer, Flow, MAGIC_AT, SEQ_TAG, TRACE_MAGIC};
use super::round::{ProbeId, Reply};
use crate::allow::AllowedIp;
use crate::bpf::{
    self, Insn, ALU_AND_K, DROP, JEQ_K, KEEP, LDX_B_MSH, LD_B_ABS, LD_B_IND, LD_H_ABS, LD_H_IND, LD_W_ABS, LD_W_IND,
};
use crate::error::{Error, Result};
use crate::icmp::Family;
use crate::lock::lock;

/// Probes in flight per family at most; a round takes its slots before its first send.
pub(crate) const MAX_IN_FLIGHT: usize = 32_768;

/// (probe destination, flow, probe number: ICMP sequence number, UDP checksum, or the low
/// half of the TCP sequence number).
type Key = (IpAddr, Flow, u16);

/// An answer on its way to the trace that sent the probe.
#[derive(Debug)]
pub(crate) struct Arrival {
    pub probe: ProbeId,
    pub reply: Reply,
}

/// The sockets of one family and the probes waiting on them.
#[derive(Debug)]
pub(crate) struct TraceSocket {
    pub family: Family,
    /// Raw ICMP: sends ICMP probes, reads every answer.
    icmp: Sender,
    /// Raw UDP: sends UDP probes, reads nothing (its filter drops all).
    udp: std::result::Result<Sender, String>,
    /// Raw TCP: sends TCP SYN probes, reads SYN-ACKs and resets acknowledging them.
    tcp: std::result::Result<Sender, String>,
    pending: Mutex<Pending>,
    /// In-flight slots (bounded memory).
    pub slots: Arc<Semaphore>,
    /// Packets the receive task read (after the kernel filter), ours or not.
    pub packets_read: AtomicU64,
}

/// A raw socket that sends probes, each with its own TTL.
#[derive(Debug)]
struct Sender {
    socket: tokio::net::UdpSocket,
    /// The TTL last set on the socket; held across setting it and sending.
    ttl: Mutex<Option<u8>>,
}

#[derive(Debug, Default)]
struct Pending {
    waiters: HashMap<Key, Waiter>,
    next_seq: u16,
    next_token: u64,
}

#[derive(Debug)]
struct Waiter {
    token: u64,
    sent_at: Instant,
    probe: ProbeId,
    tx: mpsc::UnboundedSender<Arrival>,
}

/// Keeps a probe's key registered until dropped (answered or given up).
#[derive(Debug)]
pub(crate) struct Registration {
    socket: Arc<TraceSocket>,
    key: Key,
    token: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut pending = lock(&self.socket.pending);
        if pending.waiters.get(&self.key).is_some_and(|w| w.token == self.token) {
            pending.waiters.remove(&self.key);
        }
    }
}

impl Sender {
    /// A raw socket of `family` for `protocol`, with `filter` on what it reads.
    fn open(family: Family, protocol: Protocol, filter: &[Insn]) -> std::result::Result<Sender, String> {
        let domain = match family {
            Family::V4 => Domain::IPV4,
            Family::V6 => Domain::IPV6,
        };
        let socket =
            Socket::new(domain, Type::RAW, Some(protocol)).map_err(|e| format!("cannot open a raw socket: {e}"))?;
        socket.set_nonblocking(true).map_err(|e| format!("cannot make the raw socket non-blocking: {e}"))?;
        let _ = socket.set_recv_buffer_size(4 << 20);
        // Without the filter the receive task still checks everything; it is only slower.
        if let Err(e) = bpf::attach(&socket, filter) {
            tracing::warn!(%family, error = %e, "cannot attach a trace socket filter; filtering in user space");
        }
        let socket = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(socket))
            .map_err(|e| format!("cannot register the raw socket with the runtime: {e}"))?;
        Ok(Sender { socket, ttl: Mutex::new(None) })
    }

    /// Sends `bytes` to `to` with hop limit `ttl`.
    async fn send(&self, family: Family, bytes: &[u8], to: IpAddr, ttl: u8) -> io::Result<()> {
        let to = SocketAddr::new(to, 0);
        loop {
            {
                let mut set = lock(&self.ttl);
                if *set != Some(ttl) {
                    let sock = SockRef::from(&self.socket);
                    match family {
                        Family::V4 => sock.set_ttl_v4(u32::from(ttl))?,
                        Family::V6 => sock.set_unicast_hops_v6(u32::from(ttl))?,
                    }
                    *set = Some(ttl);
                }
                match self.socket.try_send_to(bytes, to) {
                    Ok(_) => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            self.socket.writable().await?;
        }
    }
}

impl TraceSocket {
    /// Opens the raw sockets of `family` with their kernel filters. Without the ICMP one
    /// nothing works; without the UDP (TCP) one, UDP (TCP) traces say why.
    pub(crate) fn open(family: Family) -> Result<TraceSocket> {
        let (icmp, udp) = match family {
            Family::V4 => (Protocol::ICMPV4, Protocol::UDP),
            Family::V6 => (Protocol::ICMPV6, Protocol::UDP),
        };
        let icmp =
            Sender::open(family, icmp, &filter(family)).map_err(|reason| Error::TraceUnavailable { family, reason })?;
        let udp = Sender::open(family, udp, &[DROP]);
        let tcp = Sender::open(family, Protocol::TCP, &tcp_filter(family));
        Ok(TraceSocket {
            family,
            icmp,
            udp,
            tcp,
            pending: Mutex::new(Pending::default()),
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            packets_read: AtomicU64::new(0),
        })
    }

    /// Why UDP probes cannot be sent over this family, if they cannot.
    pub(crate) fn udp_unavailable(&self) -> Option<&str> {
        self.udp.as_ref().err().map(String::as_str)
    }

    /// Why TCP probes cannot be sent (or their answers read) over this family, if they
    /// cannot.
    pub(crate) fn tcp_unavailable(&self) -> Option<&str> {
        self.tcp.as_ref().err().map(String::as_str)
    }

    /// Sends probe `probe` of `flow` from `src` to `dst` with hop limit `ttl`; answers go to
    /// `tx` while the returned registration lives.
    pub(crate) async fn send(
        self: &Arc<Self>,
        src: IpAddr,
        dst: AllowedIp,
        flow: Flow,
        ttl: u8,
        probe: ProbeId,
        tx: &mpsc::UnboundedSender<Arrival>,
    ) -> io::Result<Registration> {
        let registration = self.register(dst.ip(), flow, probe, tx.clone());
        let seq = registration.key.2;
        match flow {
            Flow::Icmp { id } => {
                let bytes = packet::icmp_probe(self.family, id, seq);
                self.icmp.send(self.family, &bytes, dst.ip(), ttl).await?;
            }
            Flow::Udp { sport, dport } => {
                let udp = self.udp.as_ref().map_err(|reason| io::Error::other(reason.clone()))?;
                let bytes = packet::udp_probe(src, dst.ip(), sport, dport, seq);
                udp.send(self.family, &bytes, dst.ip(), ttl).await?;
            }
            Flow::Tcp { sport, dport } => {
                let tcp = self.tcp.as_ref().map_err(|reason| io::Error::other(reason.clone()))?;
                let bytes = packet::tcp_probe(src, dst.ip(), sport, dport, seq);
                tcp.send(self.family, &bytes, dst.ip(), ttl).await?;
            }
        }
        Ok(registration)
    }

    fn register(
        self: &Arc<Self>,
        dst: IpAddr,
        flow: Flow,
        probe: ProbeId,
        tx: mpsc::UnboundedSender<Arrival>,
    ) -> Registration {
        let mut pending = lock(&self.pending);
        // At most MAX_IN_FLIGHT keys are taken (the slots say so), so a free one is near.
        let mut seq = pending.next_seq;
        while pending.waiters.contains_key(&(dst, flow, seq)) || !flow.can_use(seq) {
            seq = seq.wrapping_add(1);
        }
        pending.next_seq = seq.wrapping_add(1);
        let token = pending.next_token;
        pending.next_token += 1;
        let key = (dst, flow, seq);
        pending.waiters.insert(key, Waiter { token, sent_at: Instant::now(), probe, tx });
        Registration { socket: self.clone(), key, token }
    }

    /// Hands a received packet, read by `parse`, to the trace waiting for it, if any.
    fn dispatch(&self, parse: Parse, buf: &[u8], from: IpAddr, at: Instant) {
        let Some(answer) = parse(self.family, buf, from) else { return };
        let key = (answer.probe_dst.to_canonical(), answer.flow, answer.seq);
        let Some(waiter) = lock(&self.pending).waiters.remove(&key) else { return };
        let reply =
            Reply { from: from.to_canonical(), rtt: at.saturating_duration_since(waiter.sent_at), kind: answer.kind };
        let _ = waiter.tx.send(Arrival { probe: waiter.probe, reply });
    }
}

/// Reads a received packet of a family ([`packet::parse`], [`packet::parse_tcp`]).
type Parse = fn(Family, &[u8], IpAddr) -> Option<Answer>;

/// The receive task of the ICMP socket: reads until cancelled.
pub(crate) async fn receive(socket: Arc<TraceSocket>, cancel: CancellationToken) {
    read_until_cancelled(&socket, &socket.icmp, packet::parse, cancel).await;
}

/// The receive task of the TCP socket (none when it could not be opened): reads until
/// cancelled.
pub(crate) async fn receive_tcp(socket: Arc<TraceSocket>, cancel: CancellationToken) {
    if let Ok(tcp) = &socket.tcp {
        read_until_cancelled(&socket, tcp, packet::parse_tcp, cancel).await;
    }
}

async fn read_until_cancelled(socket: &TraceSocket, from: &Sender, parse: Parse, cancel: CancellationToken) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let received = tokio::select! {
            _ = cancel.cancelled() => return,
            r = from.socket.recv_from(&mut buf) => r,
        };
        match received {
            Ok((n, from)) => {
                socket.packets_read.fetch_add(1, Ordering::Relaxed);
                socket.dispatch(parse, &buf[..n], from.ip(), Instant::now());
            }
            Err(e) => {
                tracing::warn!(family = %socket.family, error = %e, "trace socket receive failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The source address the kernel would use towards `dst` (a UDP socket's route lookup on
/// connect; nothing is sent).
pub(crate) fn route_source(dst: IpAddr) -> io::Result<IpAddr> {
    let any: IpAddr = match dst {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let probe = std::net::UdpSocket::bind(SocketAddr::new(any, 0))?;
    probe.connect(SocketAddr::new(dst, 33434))?;
    Ok(probe.local_addr()?.ip().to_canonical())
}

/// The kernel filter: keep time exceeded and destination unreachable (which may quote our
/// probes), and echo replies carrying the tracer's payload; drop the rest (our own probes
/// looping back, other programs' pings and replies, neighbour discovery). Raw IPv4 sockets
/// filter from the IP header, ICMPv6 ones from the ICMPv6 header.
fn filter(family: Family) -> Vec<Insn> {
    let magic = |at: usize| {
        u32::from_be_bytes([TRACE_MAGIC[at], TRACE_MAGIC[at + 1], TRACE_MAGIC[at + 2], TRACE_MAGIC[at + 3]])
    };
    let (m0, m1) = (magic(0), magic(8));
    let (at0, at1) = (MAGIC_AT as u32, MAGIC_AT as u32 + 8);
    // Jump offsets count from the next instruction; the last two drop and keep.
    match family {
        Family::V4 => vec![
            (LDX_B_MSH, 0, 0, 0),
            (LD_B_IND, 0, 0, 0),   // type
            (JEQ_K, 7, 0, 3),      // destination unreachable
            (JEQ_K, 6, 0, 11),     // time exceeded
            (JEQ_K, 0, 4, 0),      // echo reply, else drop
            (LD_W_IND, 0, 0, at0), // the magic's first word
            (JEQ_K, 0, 2, m0),
            (LD_W_IND, 0, 0, at1), // and its third
            (JEQ_K, 1, 0, m1),
            DROP,
            KEEP,
        ],
        Family::V6 => vec![
            (LD_B_ABS, 0, 0, 0),   // type
            (JEQ_K, 7, 0, 1),      // destination unreachable
            (JEQ_K, 6, 0, 3),      // time exceeded
            (JEQ_K, 0, 4, 129),    // echo reply, else drop
            (LD_W_ABS, 0, 0, at0), // the magic's first word
            (JEQ_K, 0, 2, m0),
            (LD_W_ABS, 0, 0, at1), // and its third
            (JEQ_K, 1, 0, m1),
            DROP,
            KEEP,
        ],
    }
}

/// The TCP socket's kernel filter: keep SYN-ACKs and resets (with ACK) whose
/// acknowledgement is a probe's sequence number plus one ([`SEQ_TAG`] in its high half, the
/// probe's number plus one in its low half, which never carries: see [`Flow::can_use`]);
/// drop the rest — every other TCP
/// segment the host receives, our own SYNs looping back, our kernel's bare resets. Flags
/// read as [`packet::parse_tcp`] reads them (FIN, SYN, RST, ACK; the others ignored). Raw
/// IPv4 sockets filter from the IP header, IPv6 ones from the TCP header.
fn tcp_filter(family: Family) -> Vec<Insn> {
    use packet::tcp::{FLAGS_READ, RST_ACK, SYN_ACK};
    // Loads from the TCP header: after the IPv4 header (its length in X), or at 0.
    let (start, flags, ack_high, ack_low): (&[Insn], Insn, Insn, Insn) = match family {
        Family::V4 => (&[(LDX_B_MSH, 0, 0, 0)], (LD_B_IND, 0, 0, 13), (LD_H_IND, 0, 0, 8), (LD_H_IND, 0, 0, 10)),
        Family::V6 => (&[], (LD_B_ABS, 0, 0, 13), (LD_H_ABS, 0, 0, 8), (LD_H_ABS, 0, 0, 10)),
    };
    let mut program = start.to_vec();
    // Jump offsets count from the next instruction; the last two keep and drop.
    program.extend([
        flags,
        (ALU_AND_K, 0, 0, u32::from(FLAGS_READ)),
        (JEQ_K, 1, 0, u32::from(SYN_ACK)),
        (JEQ_K, 0, 5, u32::from(RST_ACK)), // else drop
        ack_high,                          // the acknowledgement's high half
        (JEQ_K, 0, 3, u32::from(SEQ_TAG)),
        ack_low, // and its low half: a probe's number plus one, never 0
        (JEQ_K, 1, 0, 0),
        KEEP,
        DROP,
    ]);
    program
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::run;
    use crate::icmp::packet::echo_request;

    fn ipv4(icmp: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1];
        p.extend_from_slice(icmp);
        p
    }

    fn with_type(icmp: &[u8], ty: u8) -> Vec<u8> {
        let mut icmp = icmp.to_vec();
        icmp[0] = ty;
        icmp
    }

    #[test]
    fn filters_keep_what_the_tracer_reads_only() {
        let probe4 = packet::icmp_probe(Family::V4, 0x4242, 1);
        let ping4 = echo_request(Family::V4, 0x4242, 1);
        let v4 = filter(Family::V4);
        let cases = [
            ("our echo reply", ipv4(&with_type(&probe4, 0)), true),
            ("the ping engine's echo reply", ipv4(&with_type(&ping4, 0)), false),
            ("our probe looping back", ipv4(&probe4), false),
            ("time exceeded", ipv4(&with_type(&probe4, 11)), true),
            ("destination unreachable", ipv4(&with_type(&probe4, 3)), true),
            ("parameter problem", ipv4(&with_type(&probe4, 12)), false),
            ("timestamp request", ipv4(&with_type(&probe4, 13)), false),
            ("truncated echo reply", ipv4(&with_type(&probe4[..12], 0)), false),
        ];
        for (name, pkt, keep) in &cases {
            assert_eq!(run(&v4, pkt) > 0, *keep, "IPv4: {name}");
        }
        // An IPv4 header with options (IHL 6) moves the ICMP header.
        let mut long = vec![0x46, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1, 1, 1, 1, 1];
        long.extend_from_slice(&with_type(&probe4, 0));
        assert!(run(&v4, &long) > 0);

        let probe6 = packet::icmp_probe(Family::V6, 0x4242, 1);
        let v6 = filter(Family::V6);
        let cases6 = [
            ("our echo reply", with_type(&probe6, 129), true),
            ("the ping engine's echo reply", with_type(&echo_request(Family::V6, 1, 1), 129), false),
            ("our probe looping back", probe6.to_vec(), false),
            ("time exceeded", with_type(&probe6, 3), true),
            ("destination unreachable", with_type(&probe6, 1), true),
            ("packet too big", with_type(&probe6, 2), false),
            ("neighbour solicitation", with_type(&probe6, 135), false),
            ("truncated", vec![129, 0, 0], false),
        ];
        for (name, pkt, keep) in &cases6 {
            assert_eq!(run(&v6, pkt) > 0, *keep, "IPv6: {name}");
        }
    }

    /// A TCP segment with `flags` acknowledging `ack` (a 20-byte header).
    fn segment(flags: u8, ack: u32) -> Vec<u8> {
        let mut seg = vec![0u8; 20];
        seg[0..4].copy_from_slice(&[0x01, 0xbb, 0xc0, 0x01]);
        seg[8..12].copy_from_slice(&ack.to_be_bytes());
        seg[12] = 5 << 4;
        seg[13] = flags;
        seg
    }

    #[test]
    fn tcp_filters_keep_answers_acknowledging_a_probe_only() {
        let ours = packet::tcp_sequence(41) + 1;
        let src = "127.0.0.1".parse().unwrap();
        let syn = packet::tcp_probe(src, src, 0xc001, 443, 41).to_vec();
        let cases = [
            ("SYN-ACK", segment(0x12, ours), true),
            ("RST-ACK", segment(0x14, ours), true),
            ("SYN-ACK with ECE and PSH", segment(0x5a, ours), true),
            ("SYN-ACK to probe 0xfffe", segment(0x12, packet::tcp_sequence(0xfffe) + 1), true),
            ("someone else's SYN-ACK", segment(0x12, 0x1234_5678), false),
            ("acknowledging one short of a probe", segment(0x12, packet::tcp_sequence(0)), false),
            ("a bare RST (our kernel's answer to a SYN-ACK)", segment(0x04, ours), false),
            ("an ACK", segment(0x10, ours), false),
            ("FIN-ACK", segment(0x11, ours), false),
            ("our SYN looping back", syn, false),
            ("truncated", segment(0x12, ours)[..10].to_vec(), false),
        ];
        let (v4, v6) = (tcp_filter(Family::V4), tcp_filter(Family::V6));
        for (name, seg, keep) in &cases {
            let mut pkt = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1];
            pkt.extend_from_slice(seg);
            assert_eq!(run(&v4, &pkt) > 0, *keep, "IPv4: {name}");
            assert_eq!(run(&v6, seg) > 0, *keep, "IPv6: {name}");
            // The filter and the parser agree.
            let parsed = packet::parse_tcp(Family::V6, seg, src).is_some();
            assert_eq!(parsed, *keep, "parse_tcp: {name}");
        }
        // An IPv4 header with options (IHL 6) moves the TCP header.
        let mut long = vec![0x46, 0, 0, 0, 0, 0, 0, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1, 1, 1, 1, 1];
        long.extend_from_slice(&segment(0x12, ours));
        assert!(run(&v4, &long) > 0);
    }

    #[test]
    fn route_source_of_loopback() {
        assert_eq!(route_source("127.0.0.1".parse().unwrap()).unwrap(), "127.0.0.1".parse::<IpAddr>().unwrap());
    }
}
