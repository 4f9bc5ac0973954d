//! Client addresses as the query logs print them: `127.0.0.1`, `127.0.0.1:5353`,
//! `[fd00::2]:5353`, bare `fd00::2`, with an EDNS `<-subnet` or a `(…)` note attached.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use memchr::memmem::Finder;
use nom::branch::alt;
use nom::combinator::{cut, eof, opt, rest};
use nom::sequence::{preceded, terminated};
use nom::Parser;

use super::combinators::{byte, take_till_byte, take_until_first, take_while_m_n, try_map, Needle, Res};

/// An EDNS client subnet after the address.
static SUBNET: Needle = LazyLock::new(|| Finder::new("<-"));

/// The client address in `token`, with port, `<-subnet` and `(…)` suffixes removed.
/// `None` when what is left is not an IPv4 or IPv6 address.
#[inline]
pub(super) fn parse_client(token: &str) -> Option<IpAddr> {
    // The common case, `1.2.3.4` or `1.2.3.4:port` (nothing to cut or trim), without
    // the general parsers.
    if let Ok((_, ip)) = terminated(ipv4, (opt(preceded(byte(b':'), port)), eof)).parse_complete(token) {
        return Some(IpAddr::V4(ip));
    }
    // What is left once the `(…)` note and the `<-subnet` are cut off, trimmed.
    let (_, token) =
        take_till_byte(b'(').and_then(alt((take_until_first(&SUBNET), rest))).parse_complete(token).ok()?;
    let (_, ip) = alt((bracketed, bare, ipv4_with_port)).parse_complete(token.trim()).ok()?;
    Some(ip)
}

/// `[fd00::2]` or `[fd00::2]:53`, the whole token; once the bracket opens, nothing else.
#[inline]
fn bracketed(i: &str) -> Res<'_, IpAddr> {
    let ipv6 = try_map(take_till_byte(b']'), |inside: &str| before(inside, b'%').parse::<Ipv6Addr>().ok());
    preceded(byte(b'['), cut(terminated(ipv6, (byte(b']'), opt(preceded(byte(b':'), port)), eof))))
        .map(IpAddr::V6)
        .parse_complete(i)
}

/// An address as std reads one (`fe80::1%eth0` without its zone), the whole token.
#[inline]
fn bare(i: &str) -> Res<'_, IpAddr> {
    try_map(rest, |token: &str| before(token, b'%').parse::<IpAddr>().ok()).parse_complete(i)
}

/// `1.2.3.4:53`, the whole token (an IPv6 address with a port is always bracketed).
#[inline]
fn ipv4_with_port(i: &str) -> Res<'_, IpAddr> {
    terminated(ipv4, (byte(b':'), port, eof)).map(IpAddr::V4).parse_complete(i)
}

/// A dotted-quad IPv4 address, as `Ipv4Addr::from_str` reads one (four decimal
/// octets, no leading zeros).
#[inline]
fn ipv4(i: &str) -> Res<'_, Ipv4Addr> {
    (octet, byte(b'.'), octet, byte(b'.'), octet, byte(b'.'), octet)
        .map(|(a, _, b, _, c, _, d)| Ipv4Addr::new(a, b, c, d))
        .parse_complete(i)
}

/// `0` to `255`, without leading zeros.
#[inline]
fn octet(i: &str) -> Res<'_, u8> {
    let value = |digits: &str| {
        if digits.len() > 1 && digits.starts_with('0') {
            return None;
        }
        u8::try_from(digits.bytes().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))).ok()
    };
    try_map(take_while_m_n(1, 3, |b| b.is_ascii_digit()), value).parse_complete(i)
}

/// One to five digits; whether the token ends there is up to the caller.
#[inline]
fn port(i: &str) -> Res<'_, &str> {
    take_while_m_n(1, 5, |b| b.is_ascii_digit()).parse_complete(i)
}

/// `token` up to the first `sep` (ASCII), or all of it.
fn before(token: &str, sep: u8) -> &str {
    memchr::memchr(sep, token.as_bytes()).map_or(token, |at| &token[..at])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IPv4 fast path's address at the start of `b`, and its length.
    fn ipv4_prefix(b: &[u8]) -> Option<(Ipv4Addr, usize)> {
        let s = std::str::from_utf8(b).ok()?;
        ipv4(s).ok().map(|(rest, ip)| (ip, s.len() - rest.len()))
    }

    fn is_port(s: &str) -> bool {
        terminated(port, eof).parse_complete(s).is_ok()
    }

    #[test]
    fn client_forms() {
        let cases: &[(&str, Option<&str>)] = &[
            ("127.0.0.1", Some("127.0.0.1")),
            ("127.0.0.2:56889", Some("127.0.0.2")),
            ("127.0.0.5<-10.9.8.0/24", Some("127.0.0.5")),
            ("127.0.0.5:53<-10.9.8.0/24", Some("127.0.0.5")),
            ("127.0.0.6:52831(ecs", Some("127.0.0.6")),
            ("127.0.0.6(proxied)", Some("127.0.0.6")),
            ("::1", Some("::1")),
            ("fd00:99::2", Some("fd00:99::2")),
            ("fd00:99::2<-fd00::/56", Some("fd00:99::2")),
            ("[fd00:99::2]:40402", Some("fd00:99::2")),
            ("[::1]", Some("::1")),
            ("fe80::1%eth0", Some("fe80::1")),
            ("[fe80::1%eth0]:53", Some("fe80::1")),
            ("::ffff:127.0.0.1", Some("::ffff:127.0.0.1")),
            ("", None),
            ("garbage", None),
            ("127.0.0.1:", None),
            ("127.0.0.1:123456", None),
            ("127.0.0.1:port", None),
            ("127.0.0.256", None),
            ("[fd00::2", None),
            ("[fd00::2]x", None),
            ("[127.0.0.1]:53", None),
            ("fd00::2:53:", None),
            ("<-10.0.0.0/8", None),
        ];
        for (token, want) in cases {
            let want = want.map(|s| s.parse::<IpAddr>().unwrap());
            assert_eq!(parse_client(token), want, "{token:?}");
        }
    }

    #[test]
    fn the_ipv4_fast_path_reads_what_std_reads() {
        let mut tokens: Vec<String> = [
            "0.0.0.0",
            "255.255.255.255",
            "256.0.0.1",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "1.2.3.04",
            "1.2.3.0",
            "1..3.4",
            ".1.2.3",
            "1.2.3.4.",
            "1.2.3.4:",
            "1.2.3.4:0",
            "1.2.3.4:65535",
            "1.2.3.4:123456",
            "1.2.3.4:x",
            "1.2.3.4%eth0",
            "1.2.3.4 ",
            "1.2.3.4:53:53",
            "1234.1.1.1",
            "1.2.3.4x",
            "+1.2.3.4",
            "1.2.3.-4",
            "1.2.3.٣",
            "1.2.3.4é",
            "00.0.0.0",
            "0.0.0.00",
            "1.2.3.4::",
            "1.2.3.4:[",
            "199.249.250.251:9",
        ]
        .map(str::to_owned)
        .to_vec();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pick = |n: u64, shift: u32| ((x >> shift) % n) as usize;
            let parts: Vec<String> = (0..3 + pick(3, 0))
                .map(|i| ["0", "00", "7", "07", "99", "255", "256", "1000", ""][pick(9, 8 + 4 * i as u32)].to_owned())
                .collect();
            let tail = ["", ":53", ":", "%x", ":123456", "x", "(a", "<-1.0.0.0/8", " ", ":53<-x"][pick(10, 40)];
            tokens.push(format!("{}{tail}", parts.join(".")));
        }
        for token in &tokens {
            // What the fast path accepts is what std reads there, and the whole parse
            // is what it was.
            if let Some((ip, len)) = ipv4_prefix(token.as_bytes()) {
                assert_eq!(token[..len].parse::<Ipv4Addr>().ok(), Some(ip), "{token:?}");
            }
            assert_eq!(parse_client(token), reference_parse_client(token), "{token:?}");
        }
    }

    /// `parse_client` as it was before the IPv4 fast path.
    fn reference_parse_client(token: &str) -> Option<IpAddr> {
        let cut = |s: &'_ str, sep: &str| -> String { s.split_once(sep).map_or(s, |(head, _)| head).to_owned() };
        let token = cut(token, "(");
        let token = cut(&token, "<-");
        let token = token.trim();
        if let Some(bracketed) = token.strip_prefix('[') {
            let (inside, after) = bracketed.split_once(']')?;
            if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
                return None;
            }
            return cut(inside, "%").parse::<Ipv6Addr>().ok().map(IpAddr::V6);
        }
        if let Ok(ip) = cut(token, "%").parse::<IpAddr>() {
            return Some(ip);
        }
        let (host, port) = token.rsplit_once(':')?;
        if !is_port(port) {
            return None;
        }
        host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    }
}
