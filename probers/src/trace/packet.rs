//! Paris-style ICMP echo probes for the tracer, and reading what comes back. Pure: bytes in,
//! values out.
//!
//! Within one trace every probe has the same ICMP identifier *and the same ICMP checksum*:
//! the sequence number names the probe, and the two payload bytes after the header hold its
//! one's complement, so the one's-complement sum of the message — hence the checksum —
//! does not depend on it. A per-flow load balancer hashing the first bytes after the IP
//! header (type, code, checksum; and identifier) sends every probe of the trace down one
//! branch. The identifier comes from the trace's flow key ([`flow_identifier`]: source,
//! destination and a caller-given flow number), so the same pair takes the same flow run
//! after run.
//!
//! Answers: ICMP Time Exceeded and Destination Unreachable quote our probe's IP header and
//! its first 8 ICMP bytes (destination, identifier, sequence); an echo reply comes from the
//! destination with identifier, sequence and our payload.

use std::net::IpAddr;

use crate::icmp::packet::{self as icmp, ErrorKind, Framing, Message};
use crate::icmp::Family;

/// Length of a probe's ICMP message (as `ping`'s default: 8 bytes of header, 56 of payload).
pub const PROBE_LEN: usize = 64;
/// Where the checksum-compensating word sits (the first two payload bytes).
pub const COMPENSATION_AT: usize = 8;
/// Where [`TRACE_MAGIC`] sits, right after the compensation word.
pub const MAGIC_AT: usize = 10;
/// Every probe carries this; echo replies without it are someone else's (the ping engine's
/// payload starts with its own magic at offset 8, so neither takes the other's replies).
pub const TRACE_MAGIC: &[u8; 16] = b"edgewatch-trace\0";

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REQUEST_V6: u8 = 128;

/// What answered a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// A router on the way: the probe's TTL ran out there.
    TimeExceeded,
    /// Someone (a router, or the destination) says the destination cannot be reached.
    Unreachable { code: u8 },
    /// The destination itself.
    EchoReply,
}

/// A received packet that answers a probe of ours (as far as the bytes tell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub kind: AnswerKind,
    /// The destination the answered probe was sent to.
    pub probe_dst: IpAddr,
    pub id: u16,
    pub seq: u16,
}

/// The ICMP identifier of a trace's flow: a stable hash (FNV-1a, folded to 16 bits) of the
/// source and destination addresses and the caller's flow number. Stable across runs,
/// processes and releases, so the same pair keeps its flow.
pub fn flow_identifier(src: IpAddr, dst: IpAddr, flow: u16) -> u16 {
    const OFFSET: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    let mut hash = OFFSET;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            hash = (hash ^ u32::from(b)).wrapping_mul(PRIME);
        }
    };
    for ip in [src, dst] {
        match ip.to_canonical() {
            IpAddr::V4(v4) => eat(&v4.octets()),
            IpAddr::V6(v6) => eat(&v6.octets()),
        }
    }
    eat(&flow.to_be_bytes());
    ((hash >> 16) ^ (hash & 0xffff)) as u16
}

/// A probe: echo request `id`/`seq`, compensated so its checksum is the same for every
/// `seq`. IPv4 gets that checksum here; for ICMPv6 the kernel computes it (over a
/// pseudo-header of fixed addresses and length, plus this message, whose sum is fixed).
pub fn probe(family: Family, id: u16, seq: u16) -> [u8; PROBE_LEN] {
    let mut pkt = [0u8; PROBE_LEN];
    pkt[0] = match family {
        Family::V4 => ECHO_REQUEST_V4,
        Family::V6 => ECHO_REQUEST_V6,
    };
    pkt[4..6].copy_from_slice(&id.to_be_bytes());
    pkt[6..8].copy_from_slice(&seq.to_be_bytes());
    // seq + !seq = 0xffff, the one's-complement zero: the sum is as if both were 0.
    pkt[COMPENSATION_AT..COMPENSATION_AT + 2].copy_from_slice(&(!seq).to_be_bytes());
    pkt[MAGIC_AT..MAGIC_AT + TRACE_MAGIC.len()].copy_from_slice(TRACE_MAGIC);
    if family == Family::V4 {
        let sum = icmp::checksum(&pkt);
        pkt[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    pkt
}

/// Reads a packet as a raw socket of `family` delivers it (IPv4 with its IP header,
/// ICMPv6 from the ICMP header), received from `from`. `None`: not an answer to a probe.
pub fn parse(family: Family, buf: &[u8], from: IpAddr) -> Option<Answer> {
    let framing = match family {
        Family::V4 => Framing::WithIpHeader,
        Family::V6 => Framing::IcmpOnly,
    };
    match icmp::parse(family, framing, buf) {
        Message::EchoReply { id, seq, payload } => {
            let magic = payload.get(MAGIC_AT - 8..MAGIC_AT - 8 + TRACE_MAGIC.len())?;
            (magic == TRACE_MAGIC).then_some(Answer { kind: AnswerKind::EchoReply, probe_dst: from, id, seq })
        }
        Message::Error { kind, dst, id, seq } => {
            let kind = match kind {
                ErrorKind::TimeExceeded { .. } => AnswerKind::TimeExceeded,
                ErrorKind::DestinationUnreachable { code } => AnswerKind::Unreachable { code },
                // The rest (packet too big, parameter problem, source quench) never answer
                // our small, plain probes; if one did, the probe counts as lost.
                _ => return None,
            };
            Some(Answer { kind, probe_dst: dst, id, seq })
        }
        Message::Other => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::icmp::packet::checksum;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ipv4_header(proto: u8, src: [u8; 4], dst: [u8; 4], payload_len: usize) -> Vec<u8> {
        let total = (20 + payload_len) as u16;
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        let sum = checksum(&h);
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        h
    }

    fn with_checksum(mut icmp: Vec<u8>) -> Vec<u8> {
        icmp[2..4].copy_from_slice(&[0, 0]);
        let sum = checksum(&icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        icmp
    }

    /// An ICMPv4 error of `ty`/`code` from `router`, quoting `probe` sent 10.0.0.1 → `dst`
    /// (only its first 8 bytes, as RFC 792 requires at least), as a raw socket reads it.
    fn v4_error(ty: u8, code: u8, router: [u8; 4], dst: [u8; 4], probe: &[u8]) -> Vec<u8> {
        let mut err = vec![ty, code, 0, 0, 0, 0, 0, 0];
        err.extend(ipv4_header(1, [10, 0, 0, 1], dst, probe.len()));
        err.extend_from_slice(&probe[..8]);
        let err = with_checksum(err);
        let mut raw = ipv4_header(1, router, [10, 0, 0, 1], err.len());
        raw.extend(err);
        raw
    }

    #[test]
    fn checksum_is_the_same_for_every_sequence_number_and_valid() {
        for (family, id) in [(Family::V4, 0x1234), (Family::V4, 0), (Family::V4, 0xffff), (Family::V6, 0x4321)] {
            let first = probe(family, id, 0);
            for seq in (0..=u16::MAX).step_by(7).chain([1, 0xfffe, 0xffff]) {
                let p = probe(family, id, seq);
                assert_eq!(&p[4..8], &[(id >> 8) as u8, id as u8, (seq >> 8) as u8, seq as u8]);
                assert_eq!(&p[MAGIC_AT..MAGIC_AT + 16], TRACE_MAGIC);
                match family {
                    // The checksum field itself is constant, and checks out.
                    Family::V4 => {
                        assert_eq!(&p[2..4], &first[2..4], "id {id:#x} seq {seq:#x}");
                        assert_eq!(checksum(&p), 0, "id {id:#x} seq {seq:#x}: invalid checksum");
                    }
                    // The kernel fills it in; the sum it will compute over the message is constant.
                    Family::V6 => {
                        assert_eq!(&p[2..4], &[0, 0]);
                        assert_eq!(checksum(&p), checksum(&first), "seq {seq:#x}");
                    }
                }
            }
        }
    }

    #[test]
    fn flow_identifier_is_stable_and_keyed_by_pair_and_flow() {
        let (a, b) = (ip("198.18.0.1"), ip("198.18.5.2"));
        let id = flow_identifier(a, b, 0);
        // A fixed value: the same pair keeps its flow across runs and releases.
        assert_eq!(id, flow_identifier(a, b, 0));
        // FNV-1a of the 10 bytes, checked by hand (Python), folded to 16 bits.
        assert_eq!(id, 0x95fe, "the hash must not change between releases");
        assert_eq!(flow_identifier(ip("::ffff:198.18.0.1"), b, 0), id, "mapped addresses are unwrapped");
        assert_ne!(flow_identifier(b, a, 0), id);
        assert_ne!(flow_identifier(a, b, 1), id);
        assert_ne!(flow_identifier(a, ip("198.18.5.3"), 0), id);
        assert_ne!(flow_identifier(ip("::1"), ip("::2"), 0), flow_identifier(ip("::1"), ip("::3"), 0));
    }

    #[test]
    fn parses_answers_from_bytes() {
        let id = 0xbeef;
        let p = probe(Family::V4, id, 7);
        let dst = [198, 18, 9, 2];
        let mut reply = p.to_vec();
        reply[0] = 0;
        let reply = with_checksum(reply);
        let mut echo = ipv4_header(1, dst, [10, 0, 0, 1], reply.len());
        echo.extend_from_slice(&reply);
        let d = ip("198.18.9.2");
        let r = ip("198.18.1.1");
        let answer = |kind| Some(Answer { kind, probe_dst: d, id, seq: 7 });
        let cases: Vec<(&str, Vec<u8>, IpAddr, Option<Answer>)> = vec![
            ("time exceeded", v4_error(11, 0, [198, 18, 1, 1], dst, &p), r, answer(AnswerKind::TimeExceeded)),
            (
                "host unreachable",
                v4_error(3, 1, [198, 18, 1, 1], dst, &p),
                r,
                answer(AnswerKind::Unreachable { code: 1 }),
            ),
            ("echo reply", echo.clone(), d, answer(AnswerKind::EchoReply)),
            ("parameter problem", v4_error(12, 0, [198, 18, 1, 1], dst, &p), r, None),
            ("our own probe looping back", [ipv4_header(1, dst, dst, 64), p.to_vec()].concat(), d, None),
            ("truncated", echo[..24].to_vec(), d, None),
        ];
        for (name, buf, from, want) in cases {
            assert_eq!(parse(Family::V4, &buf, from), want, "{name}");
        }
        // An echo reply to the ping engine (its magic, not ours) is not the tracer's.
        let mut ping = icmp::echo_request(Family::V4, id, 7);
        ping[0] = 0;
        let ping = with_checksum(ping);
        let mut raw = ipv4_header(1, dst, [10, 0, 0, 1], ping.len());
        raw.extend(ping);
        assert_eq!(parse(Family::V4, &raw, d), None);
    }

    #[test]
    fn parses_icmpv6_answers() {
        let p = probe(Family::V6, 9, 10);
        let dst = "fd00::2".parse::<std::net::Ipv6Addr>().unwrap().octets();
        let mut quoted = vec![0x60, 0, 0, 0, 0, 64, 58, 1];
        quoted.extend_from_slice(&[0xfd; 16]);
        quoted.extend_from_slice(&dst);
        quoted.extend_from_slice(&p);
        let mut te = vec![3, 0, 0, 0, 0, 0, 0, 0];
        te.extend_from_slice(&quoted);
        let router = ip("fd00::1");
        assert_eq!(
            parse(Family::V6, &te, router),
            Some(Answer { kind: AnswerKind::TimeExceeded, probe_dst: ip("fd00::2"), id: 9, seq: 10 })
        );
        let mut echo = p.to_vec();
        echo[0] = 129;
        assert_eq!(
            parse(Family::V6, &echo, ip("fd00::2")),
            Some(Answer { kind: AnswerKind::EchoReply, probe_dst: ip("fd00::2"), id: 9, seq: 10 })
        );
    }
}
