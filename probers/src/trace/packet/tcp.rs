//! TCP SYN probes and the destination's answers to them. Pure: bytes in, values out.
//!
//! Every probe of a trace is a SYN between the same two ports (the source port from the
//! flow, the destination port the service's), so per-flow load balancers and firewalls see
//! one connection attempt after another on one flow, as they would the service's own
//! clients. The probe is named by the **sequence number**, which no balancer hashes and
//! which ICMP errors quote (the first 8 bytes of the TCP header: ports and sequence
//! number): its high half is [`SEQ_TAG`], its low half the probe's number.
//!
//! The destination answers a SYN with a SYN-ACK (port open) or a reset (closed), either
//! acknowledging the sequence number plus one: [`parse_tcp`] reads them from what a raw TCP
//! socket delivers. Received checksums are not checked: segments the kernel makes for
//! loopback reach raw sockets with the checksum unfinished, and the match (both ports, the
//! tag, a probe number in flight, from the destination) is specific enough.

use std::net::IpAddr;

use super::{fold, ipv4, pseudo_header_sum, word_sum, Answer, AnswerKind, Flow, PROTO_TCP};
use crate::icmp::Family;

/// Length of a TCP probe: a 20-byte header and one option (the maximum segment size, as
/// every real SYN has), no payload.
pub const TCP_PROBE_LEN: usize = 24;
/// The high half of every probe's sequence number ("ew"): answers acknowledging anything
/// else are not ours (the kernel filter drops them).
pub const SEQ_TAG: u16 = 0x6577;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;
/// The flags an answer is read by; PSH, URG, ECE and CWR are ignored.
pub(crate) const FLAGS_READ: u8 = FIN | SYN | RST | ACK;
/// A SYN-ACK's flags (of [`FLAGS_READ`]).
pub(crate) const SYN_ACK: u8 = SYN | ACK;
/// A reset answering a SYN: RST with ACK (RFC 9293: a reset answering a segment without
/// ACK acknowledges it).
pub(crate) const RST_ACK: u8 = RST | ACK;

/// The sequence number of probe `seq`: [`SEQ_TAG`] and the probe's number.
pub fn tcp_sequence(seq: u16) -> u32 {
    u32::from(SEQ_TAG) << 16 | u32::from(seq)
}

/// The probe number a TCP sequence number carries, if it carries [`SEQ_TAG`].
pub fn probe_number(sequence: u32) -> Option<u16> {
    ((sequence >> 16) as u16 == SEQ_TAG).then_some(sequence as u16)
}

/// A TCP SYN (header and option, for a raw TCP socket) from `src`:`sport` to `dst`:`dport`
/// named `seq` (which must satisfy [`Flow::can_use`]), its checksum over the pseudo-header
/// filled in. Both addresses must be of one family.
pub fn tcp_probe(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, seq: u16) -> [u8; TCP_PROBE_LEN] {
    let mss: u16 = if src.to_canonical().is_ipv4() { 1460 } else { 1440 };
    let mut pkt = [0u8; TCP_PROBE_LEN];
    pkt[0..2].copy_from_slice(&sport.to_be_bytes());
    pkt[2..4].copy_from_slice(&dport.to_be_bytes());
    pkt[4..8].copy_from_slice(&tcp_sequence(seq).to_be_bytes());
    // Acknowledgement 0; the header is 6 words long; SYN; a window of 64240 (Linux's).
    pkt[12] = ((TCP_PROBE_LEN / 4) as u8) << 4;
    pkt[13] = SYN;
    pkt[14..16].copy_from_slice(&64240u16.to_be_bytes());
    pkt[20..22].copy_from_slice(&[2, 4]);
    pkt[22..24].copy_from_slice(&mss.to_be_bytes());
    let sum = tcp_checksum(src, dst, &pkt);
    pkt[16..18].copy_from_slice(&sum.to_be_bytes());
    pkt
}

/// The TCP checksum of a segment between `src` and `dst` as it stands (0 when valid).
pub fn tcp_checksum(src: IpAddr, dst: IpAddr, segment: &[u8]) -> u16 {
    !fold(pseudo_header_sum(PROTO_TCP, src, dst, segment.len()) + word_sum(segment))
}

/// Reads a segment as a raw TCP socket of `family` delivers it (IPv4 with its IP header,
/// IPv6 from the TCP header), received from `from`: a SYN-ACK or a reset acknowledging one
/// of our probes. `None`: anything else.
pub fn parse_tcp(family: Family, buf: &[u8], from: IpAddr) -> Option<Answer> {
    let segment = match family {
        Family::V4 => match ipv4(buf)? {
            (PROTO_TCP, _, segment) => segment,
            _ => return None,
        },
        Family::V6 => buf,
    };
    if segment.len() < 20 {
        return None;
    }
    let kind = match segment[13] & FLAGS_READ {
        SYN_ACK => AnswerKind::SynAck,
        RST_ACK => AnswerKind::Reset,
        _ => return None,
    };
    let ack = u32::from_be_bytes([segment[8], segment[9], segment[10], segment[11]]);
    let seq = probe_number(ack.wrapping_sub(1))?;
    let port = |at: usize| u16::from_be_bytes([segment[at], segment[at + 1]]);
    // Their destination port is our source port.
    let flow = Flow::Tcp { sport: port(2), dport: port(0) };
    Some(Answer { kind, probe_dst: from, flow, seq })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::icmp::packet::checksum;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The answer `flags` from `dst`:`dport` to `src`:`sport` acknowledging `ack`, as a raw
    /// TCP socket of the family reads it (IPv4 with a header).
    fn answer(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, flags: u8, ack: u32) -> Vec<u8> {
        let mut seg = vec![0u8; 20];
        seg[0..2].copy_from_slice(&dport.to_be_bytes());
        seg[2..4].copy_from_slice(&sport.to_be_bytes());
        seg[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        seg[8..12].copy_from_slice(&ack.to_be_bytes());
        seg[12] = 5 << 4;
        seg[13] = flags;
        let sum = tcp_checksum(dst, src, &seg);
        seg[16..18].copy_from_slice(&sum.to_be_bytes());
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut h = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, PROTO_TCP, 0, 0];
                h.extend_from_slice(&d.octets());
                h.extend_from_slice(&s.octets());
                let sum = checksum(&h);
                h[10..12].copy_from_slice(&sum.to_be_bytes());
                [h, seg].concat()
            }
            _ => seg,
        }
    }

    fn short(mut buf: Vec<u8>) -> Vec<u8> {
        buf.pop();
        buf
    }

    #[test]
    fn probes_keep_their_ports_and_are_named_by_the_sequence_number() {
        let pairs =
            [("198.18.101.1", "198.18.104.2"), ("127.0.0.1", "127.0.0.1"), ("fd00:ee:101::1", "fd00:ee:104::2")];
        for (src, dst) in pairs {
            let (src, dst) = (ip(src), ip(dst));
            for seq in (0..0xffff).step_by(7).chain([0, 1, 0xfffe]) {
                let p = tcp_probe(src, dst, 0xc123, 443, seq);
                assert_eq!(&p[..4], &[0xc1, 0x23, 0x01, 0xbb], "{src} → {dst}: the ports");
                assert_eq!(u32::from_be_bytes([p[4], p[5], p[6], p[7]]), tcp_sequence(seq), "the sequence number");
                assert_eq!(probe_number(tcp_sequence(seq)), Some(seq));
                assert_eq!(&p[8..12], &[0; 4], "no acknowledgement");
                assert_eq!((p[12] >> 4, p[13]), (6, SYN), "six words, SYN only");
                assert_eq!(&p[20..22], &[2, 4], "an MSS option");
                assert_eq!(tcp_checksum(src, dst, &p), 0, "{src} → {dst} seq {seq:#x}: invalid checksum");
            }
        }
        // The checksum field, computed independently (Python over pseudo-header and
        // segment), and over the pseudo-header: another source makes it invalid.
        let p = tcp_probe(ip("10.0.0.1"), ip("10.0.0.2"), 0xc000, 80, 5);
        assert_eq!(&p[16..18], &[0x63, 0x66]);
        assert_ne!(tcp_checksum(ip("10.0.0.3"), ip("10.0.0.2"), &p), 0);
        assert_eq!(tcp_sequence(0x0102), 0x6577_0102, "the tag is the high half");
        assert_eq!(probe_number(0x6576_ffff), None);
        let tcp = Flow::Tcp { sport: 1, dport: 2 };
        assert!(tcp.can_use(0) && tcp.can_use(0xfffe) && !tcp.can_use(0xffff));
    }

    #[test]
    fn reads_syn_acks_and_resets_acknowledging_a_probe() {
        let flags_cases: [(&str, u8, Option<AnswerKind>); 8] = [
            ("SYN-ACK", SYN | ACK, Some(AnswerKind::SynAck)),
            ("SYN-ACK with ECE", SYN | ACK | 0x40, Some(AnswerKind::SynAck)),
            ("RST-ACK", RST | ACK, Some(AnswerKind::Reset)),
            ("RST-ACK with PSH", RST | ACK | 0x08, Some(AnswerKind::Reset)),
            ("a bare RST (our kernel's, to a SYN-ACK)", RST, None),
            ("a plain ACK", ACK, None),
            ("a SYN", SYN, None),
            ("FIN-ACK", FIN | ACK, None),
        ];
        for (family, src, dst) in [(Family::V4, "10.0.0.1", "198.18.9.2"), (Family::V6, "fd00::1", "fd00::2")] {
            let (src, dst) = (ip(src), ip(dst));
            let flow = Flow::Tcp { sport: 0xc001, dport: 443 };
            for (name, flags, kind) in flags_cases {
                let buf = answer(src, dst, 0xc001, 443, flags, tcp_sequence(77) + 1);
                let want = kind.map(|kind| Answer { kind, probe_dst: dst, flow, seq: 77 });
                assert_eq!(parse_tcp(family, &buf, dst), want, "{family}: {name}");
            }
            let cases: [(&str, Vec<u8>, Option<u16>); 5] = [
                ("probe 0xfffe", answer(src, dst, 0xc001, 443, SYN | ACK, tcp_sequence(0xfffe) + 1), Some(0xfffe)),
                ("probe 0", answer(src, dst, 0xc001, 443, SYN | ACK, tcp_sequence(0) + 1), Some(0)),
                ("acknowledging the tag itself", answer(src, dst, 0xc001, 443, SYN | ACK, tcp_sequence(0)), None),
                ("someone else's connection", answer(src, dst, 0xc001, 443, SYN | ACK, 0x0102_0305), None),
                ("one byte short", short(answer(src, dst, 0xc001, 443, SYN | ACK, tcp_sequence(1) + 1)), None),
            ];
            for (name, buf, seq) in cases {
                let want = seq.map(|seq| Answer { kind: AnswerKind::SynAck, probe_dst: dst, flow, seq });
                assert_eq!(parse_tcp(family, &buf, dst), want, "{family}: {name}");
            }
        }
        // Ports are read back to front: an answer between other ports is another flow.
        let other = answer(ip("10.0.0.1"), ip("10.0.0.2"), 443, 0xc001, SYN | ACK, tcp_sequence(3) + 1);
        let read = parse_tcp(Family::V4, &other, ip("10.0.0.2")).unwrap();
        assert_eq!(read.flow, Flow::Tcp { sport: 443, dport: 0xc001 });
        // A raw IPv4 TCP socket never reads ICMP, but the parser does not assume it.
        let mut icmp = answer(ip("10.0.0.1"), ip("10.0.0.2"), 1, 2, SYN | ACK, tcp_sequence(3) + 1);
        icmp[9] = 1;
        assert_eq!(parse_tcp(Family::V4, &icmp, ip("10.0.0.2")), None);
    }
}
