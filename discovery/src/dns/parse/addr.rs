//! Client addresses as the query logs print them: `127.0.0.1`, `127.0.0.1:5353`,
//! `[fd00::2]:5353`, bare `fd00::2`, with an EDNS `<-subnet` or a `(…)` note attached.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The client address in `token`, with port, `<-subnet` and `(…)` suffixes removed.
/// `None` when what is left is not an IPv4 or IPv6 address.
pub(super) fn parse_client(token: &str) -> Option<IpAddr> {
    let token = cut(token, "(");
    let token = cut(token, "<-").trim();
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
    // IPv4 with a port; an IPv6 address with a port is always bracketed.
    let (host, port) = token.rsplit_once(':')?;
    if !is_port(port) {
        return None;
    }
    host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// `s` up to the first `sep`, or all of it.
fn cut<'a>(s: &'a str, sep: &str) -> &'a str {
    s.split_once(sep).map_or(s, |(head, _)| head)
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
}
