//! ICMP and ICMPv6 echo packets: building requests and reading what comes back.
//!
//! Pure: bytes in, values out. Raw IPv4 sockets hand us the IP header too; datagram ICMP
//! sockets and all ICMPv6 sockets start at the ICMP header. Besides echo replies, the ICMP
//! errors that quote one of our echo requests (destination unreachable, time exceeded…)
//! are recognised, so a loss can say why.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// Length of the echo payload (as `ping`'s default: 64 bytes of ICMP in all).
pub const PAYLOAD_LEN: usize = 56;
/// The start of every payload we send; replies without it are someone else's.
pub const PAYLOAD_MAGIC: &[u8; 16] = b"edgewatch-probe\0";

pub(crate) const ECHO_REQUEST_V4: u8 = 8;
pub(crate) const ECHO_REPLY_V4: u8 = 0;
pub(crate) const ECHO_REQUEST_V6: u8 = 128;
pub(crate) const ECHO_REPLY_V6: u8 = 129;
pub(crate) const PROTO_ICMP: u8 = 1;
pub(crate) const PROTO_ICMPV6: u8 = 58;

/// Address family of a probe socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// Whether a received buffer starts with the IP header (raw IPv4 sockets) or at ICMP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    WithIpHeader,
    IcmpOnly,
}

/// What a received packet is, as far as probing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// An echo reply. (Datagram sockets: `id` is the kernel's, not ours.)
    EchoReply { id: u16, seq: u16, payload: &'a [u8] },
    /// An ICMP error quoting an echo request we (or someone) sent to `dst`.
    Error { kind: ErrorKind, dst: IpAddr, id: u16, seq: u16 },
    /// Anything else: our own requests looping back, other traffic, malformed packets.
    Other,
}

/// The ICMP error kinds that end a probe packet early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    DestinationUnreachable {
        code: u8,
    },
    TimeExceeded {
        code: u8,
    },
    PacketTooBig,
    ParameterProblem {
        code: u8,
    },
    /// IPv4 only.
    SourceQuench,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ErrorKind::DestinationUnreachable { code } => write!(f, "destination unreachable (code {code})"),
            ErrorKind::TimeExceeded { code: 0 } => f.write_str("time exceeded in transit"),
            ErrorKind::TimeExceeded { code } => write!(f, "time exceeded (code {code})"),
            ErrorKind::PacketTooBig => f.write_str("packet too big"),
            ErrorKind::ParameterProblem { code } => write!(f, "parameter problem (code {code})"),
            ErrorKind::SourceQuench => f.write_str("source quench"),
        }
    }
}

/// The payload every echo request carries.
pub fn payload() -> [u8; PAYLOAD_LEN] {
    let mut p = [0u8; PAYLOAD_LEN];
    p[..PAYLOAD_MAGIC.len()].copy_from_slice(PAYLOAD_MAGIC);
    p
}

/// An echo request. IPv4 gets its checksum here; for ICMPv6 the kernel computes it (it
/// covers a pseudo-header with addresses only the kernel knows), as it does the identifier
/// of datagram sockets.
pub fn echo_request(family: Family, id: u16, seq: u16) -> Vec<u8> {
    let ty = match family {
        Family::V4 => ECHO_REQUEST_V4,
        Family::V6 => ECHO_REQUEST_V6,
    };
    let mut pkt = Vec::with_capacity(8 + PAYLOAD_LEN);
    pkt.extend_from_slice(&[ty, 0, 0, 0]);
    pkt.extend_from_slice(&id.to_be_bytes());
    pkt.extend_from_slice(&seq.to_be_bytes());
    pkt.extend_from_slice(&payload());
    if family == Family::V4 {
        let sum = checksum(&pkt);
        pkt[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    pkt
}

/// The Internet checksum (RFC 1071). Over a packet that carries its checksum, it is 0.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Reads a packet received on a socket of `family`.
pub fn parse(family: Family, framing: Framing, buf: &[u8]) -> Message<'_> {
    match family {
        Family::V4 => {
            let icmp = match framing {
                Framing::WithIpHeader => match ipv4_payload(buf, PROTO_ICMP) {
                    Some((_, payload)) => payload,
                    None => return Message::Other,
                },
                Framing::IcmpOnly => buf,
            };
            parse_icmpv4(icmp)
        }
        Family::V6 => parse_icmpv6(buf),
    }
}

/// The destination and payload of an IPv4 packet carrying `proto`.
fn ipv4_payload(buf: &[u8], proto: u8) -> Option<(Ipv4Addr, &[u8])> {
    let first = *buf.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 || buf.len() < ihl || buf[9] != proto {
        return None;
    }
    let dst = Ipv4Addr::new(buf[16], buf[17], buf[18], buf[19]);
    Some((dst, &buf[ihl..]))
}

fn id_seq(icmp: &[u8]) -> (u16, u16) {
    (u16::from_be_bytes([icmp[4], icmp[5]]), u16::from_be_bytes([icmp[6], icmp[7]]))
}

fn parse_icmpv4(icmp: &[u8]) -> Message<'_> {
    if icmp.len() < 8 {
        return Message::Other;
    }
    let (ty, code) = (icmp[0], icmp[1]);
    let kind = match ty {
        ECHO_REPLY_V4 => {
            if checksum(icmp) != 0 {
                return Message::Other;
            }
            let (id, seq) = id_seq(icmp);
            return Message::EchoReply { id, seq, payload: &icmp[8..] };
        }
        3 => ErrorKind::DestinationUnreachable { code },
        4 => ErrorKind::SourceQuench,
        11 => ErrorKind::TimeExceeded { code },
        12 => ErrorKind::ParameterProblem { code },
        _ => return Message::Other,
    };
    // The error quotes the offending datagram's IP header and at least 8 bytes after it.
    match ipv4_payload(&icmp[8..], PROTO_ICMP) {
        Some((dst, quoted)) if quoted.len() >= 8 && quoted[0] == ECHO_REQUEST_V4 => {
            let (id, seq) = id_seq(quoted);
            Message::Error { kind, dst: IpAddr::V4(dst), id, seq }
        }
        _ => Message::Other,
    }
}

fn parse_icmpv6(icmp: &[u8]) -> Message<'_> {
    if icmp.len() < 8 {
        return Message::Other;
    }
    let (ty, code) = (icmp[0], icmp[1]);
    let kind = match ty {
        ECHO_REPLY_V6 => {
            let (id, seq) = id_seq(icmp);
            return Message::EchoReply { id, seq, payload: &icmp[8..] };
        }
        1 => ErrorKind::DestinationUnreachable { code },
        2 => ErrorKind::PacketTooBig,
        3 => ErrorKind::TimeExceeded { code },
        4 => ErrorKind::ParameterProblem { code },
        _ => return Message::Other,
    };
    // The quoted IPv6 header (40 bytes); extension headers between it and ICMPv6 are not
    // followed, since we never send any.
    let quoted = &icmp[8..];
    if quoted.len() < 48 || quoted[0] >> 4 != 6 || quoted[6] != PROTO_ICMPV6 || quoted[40] != ECHO_REQUEST_V6 {
        return Message::Other;
    }
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&quoted[24..40]);
    let (id, seq) = id_seq(&quoted[40..48]);
    Message::Error { kind, dst: IpAddr::V6(Ipv6Addr::from(dst)), id, seq }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        icmp[2] = 0;
        icmp[3] = 0;
        let sum = checksum(&icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        icmp
    }

    /// The reply a host makes to our request: type 0 (or 129), same id/seq/payload.
    fn reply_to(request: &[u8], ty: u8) -> Vec<u8> {
        let mut r = request.to_vec();
        r[0] = ty;
        with_checksum(r)
    }

    #[test]
    fn checksum_rfc1071_example() {
        // RFC 1071 section 3: words 0001 f203 f4f5 f6f7 sum to ddf2, checksum is its complement.
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), !0xddf2);
        // Odd length pads with a zero byte.
        assert_eq!(checksum(&[0x01]), !0x0100);
    }

    #[test]
    fn echo_request_layout() {
        let v4 = echo_request(Family::V4, 0x1234, 0xbeef);
        assert_eq!(v4.len(), 64);
        assert_eq!(&v4[..2], &[8, 0]);
        assert_eq!(&v4[4..8], &[0x12, 0x34, 0xbe, 0xef]);
        assert_eq!(&v4[8..24], PAYLOAD_MAGIC);
        assert_eq!(checksum(&v4), 0, "IPv4 request carries a valid checksum");

        let v6 = echo_request(Family::V6, 7, 9);
        assert_eq!(&v6[..4], &[128, 0, 0, 0], "ICMPv6 checksum is left to the kernel");
        assert_eq!(&v6[4..8], &[0, 7, 0, 9]);
    }

    #[test]
    fn parses_echo_replies() {
        let req = echo_request(Family::V4, 0x1234, 42);
        let reply = reply_to(&req, 0);
        let mut raw = ipv4_header(1, [127, 0, 0, 1], [127, 0, 0, 1], reply.len());
        raw.extend_from_slice(&reply);

        let want = Message::EchoReply { id: 0x1234, seq: 42, payload: &reply[8..] };
        assert_eq!(parse(Family::V4, Framing::WithIpHeader, &raw), want);
        assert_eq!(parse(Family::V4, Framing::IcmpOnly, &reply), want);

        let req6 = echo_request(Family::V6, 5, 6);
        let reply6 = reply_to(&req6, 129);
        assert!(matches!(
            parse(Family::V6, Framing::IcmpOnly, &reply6),
            Message::EchoReply { id: 5, seq: 6, payload } if payload.starts_with(PAYLOAD_MAGIC)
        ));
    }

    #[test]
    fn ignores_what_is_not_ours_to_read() {
        let req = echo_request(Family::V4, 1, 2);
        let mut looped = ipv4_header(1, [127, 0, 0, 1], [127, 0, 0, 1], req.len());
        looped.extend_from_slice(&req);
        let mut bad_sum = reply_to(&req, 0);
        bad_sum[10] ^= 0xff;
        let mut udp = ipv4_header(17, [127, 0, 0, 1], [127, 0, 0, 1], 8);
        udp.extend_from_slice(&[0; 8]);
        let v4 = |framing, buf: Vec<u8>| (Family::V4, framing, buf);
        let v6 = |buf: Vec<u8>| (Family::V6, Framing::IcmpOnly, buf);
        let cases = [
            ("our own request looping back", v4(Framing::WithIpHeader, looped)),
            ("bad checksum", v4(Framing::IcmpOnly, bad_sum)),
            ("not ICMP", v4(Framing::WithIpHeader, udp)),
            ("empty", v4(Framing::WithIpHeader, vec![])),
            ("truncated IP header", v4(Framing::WithIpHeader, vec![0x45, 0, 0])),
            ("timestamp request", v4(Framing::IcmpOnly, with_checksum(vec![13; 20]))),
            ("redirect without a quote", v4(Framing::IcmpOnly, with_checksum(vec![5, 0, 0, 0, 0, 0, 0, 0]))),
            ("our own ICMPv6 request", v6(echo_request(Family::V6, 1, 2))),
            ("neighbour solicitation", v6(vec![135, 0, 0, 0, 0, 0, 0, 0, 0])),
            ("ICMPv6 error with a short quote", v6(vec![1, 0, 0, 0, 0, 0, 0, 0, 0x60])),
        ];
        for (name, (family, framing, buf)) in &cases {
            assert_eq!(parse(*family, *framing, buf), Message::Other, "{name}");
        }
    }

    #[test]
    fn parses_errors_quoting_our_requests() {
        // A router 127.9.9.9 says host unreachable about our request to 127.0.0.7.
        let req = echo_request(Family::V4, 0xabcd, 3);
        let mut quoted = ipv4_header(1, [127, 0, 0, 1], [127, 0, 0, 7], req.len());
        quoted.extend_from_slice(&req[..8]);
        let mut err = vec![3, 1, 0, 0, 0, 0, 0, 0];
        err.extend_from_slice(&quoted);
        let err = with_checksum(err);
        let mut raw = ipv4_header(1, [127, 9, 9, 9], [127, 0, 0, 1], err.len());
        raw.extend_from_slice(&err);
        let got = parse(Family::V4, Framing::WithIpHeader, &raw);
        assert_eq!(
            got,
            Message::Error {
                kind: ErrorKind::DestinationUnreachable { code: 1 },
                dst: "127.0.0.7".parse().unwrap(),
                id: 0xabcd,
                seq: 3,
            }
        );

        // Time exceeded over IPv6, quoting our request to ::1.
        let req6 = echo_request(Family::V6, 9, 10);
        let mut ip6 = vec![0x60, 0, 0, 0, 0, 64, 58, 1];
        ip6.extend_from_slice(&[0; 15]);
        ip6.push(2); // src ::2
        ip6.extend_from_slice(&[0; 15]);
        ip6.push(1); // dst ::1
        let mut err6 = vec![3, 0, 0, 0, 0, 0, 0, 0];
        err6.extend_from_slice(&ip6);
        err6.extend_from_slice(&req6);
        assert_eq!(
            parse(Family::V6, Framing::IcmpOnly, &err6),
            Message::Error { kind: ErrorKind::TimeExceeded { code: 0 }, dst: "::1".parse().unwrap(), id: 9, seq: 10 }
        );
        assert_eq!(ErrorKind::TimeExceeded { code: 0 }.to_string(), "time exceeded in transit");
    }
}
