//! Ping targets from the command line or a target file: pure parsing, text in and
//! addresses out, each remembering where it came from so an error can name the argument
//! or the file and line.

use std::fmt;
use std::net::IpAddr;

/// One target to ping and where it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub ip: IpAddr,
    pub origin: Origin,
}

/// Where a target was given: the n-th argument (from 1) or a file's line (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Arg(usize),
    Line { file: String, line: usize },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Arg(n) => write!(f, "argument {n}"),
            Origin::Line { file, line } => write!(f, "{file}:{line}"),
        }
    }
}

/// A target that is not one: where, what was written, and why it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTarget {
    pub origin: Origin,
    pub text: String,
    pub reason: &'static str,
}

impl fmt::Display for BadTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {:?} {}", self.origin, self.text, self.reason)
    }
}

const NOT_AN_ADDRESS: &str = "is not an IPv4 or IPv6 address (host names are not resolved: give the address)";
const MORE_THAN_ONE: &str = "holds more than one target (one address a line)";

/// The targets given as arguments, every bad one reported.
pub fn from_args<S: AsRef<str>>(args: &[S]) -> Result<Vec<Target>, Vec<BadTarget>> {
    collect(args.iter().enumerate().map(|(i, arg)| (Origin::Arg(i + 1), arg.as_ref())))
}

/// The targets of a target file's `text` (named `file` in errors): one address a line;
/// blank lines and everything from a `#` on are skipped. Every bad line is reported.
pub fn from_file(file: &str, text: &str) -> Result<Vec<Target>, Vec<BadTarget>> {
    let lines = text.lines().enumerate().filter_map(|(i, line)| {
        let content = line.split('#').next().unwrap_or_default().trim();
        (!content.is_empty()).then(|| (Origin::Line { file: file.to_string(), line: i + 1 }, content))
    });
    collect(lines)
}

fn collect<'a>(items: impl Iterator<Item = (Origin, &'a str)>) -> Result<Vec<Target>, Vec<BadTarget>> {
    let mut targets = Vec::new();
    let mut bad = Vec::new();
    for (origin, text) in items {
        let text = text.trim();
        let reason = if text.split_whitespace().count() > 1 { MORE_THAN_ONE } else { NOT_AN_ADDRESS };
        match text.parse::<IpAddr>() {
            Ok(ip) => targets.push(Target { ip, origin }),
            Err(_) => bad.push(BadTarget { origin, text: text.to_string(), reason }),
        }
    }
    if bad.is_empty() {
        Ok(targets)
    } else {
        Err(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(targets: &[Target]) -> Vec<String> {
        targets.iter().map(|t| t.ip.to_string()).collect()
    }

    #[test]
    fn file_skips_comments_and_blank_lines() {
        let text = "# loopback targets\n127.0.0.1\n\n  127.0.0.2   # the second\n::1\n\t\n#127.0.0.9\n";
        let targets = from_file("t.txt", text).unwrap();
        assert_eq!(ips(&targets), ["127.0.0.1", "127.0.0.2", "::1"]);
        assert_eq!(targets[1].origin, Origin::Line { file: "t.txt".into(), line: 4 });
        assert_eq!(targets[1].origin.to_string(), "t.txt:4");
        assert_eq!(from_file("empty", "# nothing\n\n"), Ok(vec![]));
        // Windows line ends are fine.
        assert_eq!(ips(&from_file("crlf", "127.0.0.1\r\n127.0.0.2\r\n").unwrap()), ["127.0.0.1", "127.0.0.2"]);
    }

    #[test]
    fn every_bad_line_is_named() {
        let text = "127.0.0.1\nlocalhost\n127.0.0.2 127.0.0.3\n127.0.0.256\n::1\n";
        let bad = from_file("t.txt", text).unwrap_err();
        let said: Vec<String> = bad.iter().map(ToString::to_string).collect();
        assert_eq!(
            said,
            [
                format!("t.txt:2: \"localhost\" {NOT_AN_ADDRESS}"),
                format!("t.txt:3: \"127.0.0.2 127.0.0.3\" {MORE_THAN_ONE}"),
                format!("t.txt:4: \"127.0.0.256\" {NOT_AN_ADDRESS}"),
            ]
        );
    }

    #[test]
    fn arguments() {
        let targets = from_args(&["127.0.0.1", "::1", "::ffff:127.0.0.5"]).unwrap();
        assert_eq!(ips(&targets), ["127.0.0.1", "::1", "::ffff:127.0.0.5"]);
        assert_eq!(targets[2].origin.to_string(), "argument 3");
        let bad = from_args(&["127.0.0.1", "127.0.0.0/8", ""]).unwrap_err();
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0].to_string(), format!("argument 2: \"127.0.0.0/8\" {NOT_AN_ADDRESS}"));
        assert_eq!(bad[1].origin, Origin::Arg(3));
    }
}
