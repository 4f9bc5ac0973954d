//! Client addresses as the query logs print them: `127.0.0.1`, `127.0.0.1:5353`,
//! `[fd00::2]:5353`, bare `fd00::2`, with an EDNS `<-subnet` or a `(…)` note attached.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The client address in `token`, with port, `<-subnet` and `(…)` suffixes removed.
/// `None` when what is left is not an IPv4 or IPv6 address.
pub(super) fn parse_client(token: &str) -> Option<IpAddr> {
    // The common case, `1.2.3.4` or `1.2.3.4:port` (nothing to cut or trim), without
    // the general parsers.
    if let Some((ip, len)) = ipv4_prefix(token.as_bytes()) {
        let after = &token[len..];
        if after.is_empty() || after.strip_prefix(':').is_some_and(is_port) {
            return Some(IpAddr::V4(ip));
        }
    }
    let token = cut(token, '(');
    let token = cut_subnet(token).trim();
    if let Some(bracketed) = token.strip_prefix('[') {
        let (inside, after) = bracketed.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return cut(inside, '%').parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(ip) = cut(token, '%').parse::<IpAddr>() {
        return Some(ip);
    }
    // IPv4 with a port; an IPv6 address with a port is always bracketed.
    let (host, port) = token.rsplit_once(':')?;
    if !is_port(port) {
        return None;
    }
    host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// A dotted-quad IPv4 address at the start of `b`, as `Ipv4Addr::from_str` reads one
/// (four decimal octets, no leading zeros), and its length.
fn ipv4_prefix(b: &[u8]) -> Option<(Ipv4Addr, usize)> {
    let mut octets = [0u8; 4];
    let mut at = 0;
    for (i, octet) in octets.iter_mut().enumerate() {
        if i > 0 {
            if b.get(at) != Some(&b'.') {
                return None;
            }
            at += 1;
        }
        let digits = b[at..].iter().take(4).take_while(|c| c.is_ascii_digit()).count();
        let text = &b[at..at + digits];
        if !(1..=3).contains(&digits) || (digits > 1 && text[0] == b'0') {
            return None;
        }
        let value = text.iter().fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'));
        *octet = u8::try_from(value).ok()?;
        at += digits;
    }
    Some((Ipv4Addr::from(octets), at))
}

/// `s` up to the first `sep`, or all of it.
fn cut(s: &str, sep: char) -> &str {
    s.split_once(sep).map_or(s, |(head, _)| head)
}

/// `s` up to the first `<-` (an EDNS client subnet), or all of it.
fn cut_subnet(s: &str) -> &str {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(at) = memchr::memchr(b'<', &b[from..]).map(|at| from + at) {
        if b.get(at + 1) == Some(&b'-') {
            return &s[..at];
        }
        from = at + 1;
    }
    s
}

fn is_port(s: &str) -> bool {
    (1..=5).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

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
