//! The Nagios plugin's pure parts, tested without a process or a store: threshold ranges
//! as the Monitoring Plugins development guidelines define them, states, names made safe
//! for the output, and (in [`answer`]) the state and text of the answer from what the
//! check saw, and (in [`passive`]) the passive results per host.

mod answer;
mod passive;

use std::fmt;

pub use answer::{data_age, Answer, Filter, Thresholds};
pub use passive::{command_lines, passive_results};

/// A threshold range: `10` (alert outside 0..=10), `10:` (below 10), `~:10` (above 10),
/// `10:20` (outside 10..=20), `@10:20` (inside 10..=20).
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    start: f64,
    end: f64,
    /// `@`: alert inside the range instead of outside.
    inside: bool,
    text: String,
}

impl Range {
    pub fn parse(s: &str) -> Result<Range, String> {
        let bad = |why: &str| {
            format!("{s:?} is not a threshold range ({why}); use 10, 10:, ~:10, 10:20 or @10:20 (Monitoring Plugins syntax)")
        };
        let (inside, body) = match s.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let number = |t: &str| t.trim().parse::<f64>().ok().filter(|v| v.is_finite());
        let (start, end) = match body.split_once(':') {
            None => (0.0, number(body).ok_or_else(|| bad("not a number"))?),
            Some((a, b)) => {
                let start = match a {
                    "~" => f64::NEG_INFINITY,
                    "" => 0.0,
                    a => number(a).ok_or_else(|| bad("the start is not a number or ~"))?,
                };
                let end = match b {
                    "" => f64::INFINITY,
                    b => number(b).ok_or_else(|| bad("the end is not a number"))?,
                };
                (start, end)
            }
        };
        if start > end {
            return Err(bad("the start is above the end"));
        }
        Ok(Range { start, end, inside, text: s.to_string() })
    }

    /// Whether `value` raises the alert.
    pub fn alerts(&self, value: f64) -> bool {
        let within = self.start <= value && value <= self.end;
        if self.inside {
            within
        } else {
            !within
        }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A plugin state, with its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Text for the plugin's output: `|` separates performance data and a newline ends the
/// first line, so neither may come from a name.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '|' {
                '¦'
            } else if c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alerts(range: &str, values: &[f64]) -> Vec<bool> {
        let r = Range::parse(range).unwrap();
        values.iter().map(|v| r.alerts(*v)).collect()
    }

    #[test]
    fn ranges_follow_the_guidelines() {
        // 10: alert when < 0 or > 10
        assert_eq!(alerts("10", &[-1.0, 0.0, 5.0, 10.0, 10.5, 11.0]), [true, false, false, false, true, true]);
        // 10: alert when < 10
        assert_eq!(alerts("10:", &[9.0, 9.99, 10.0, 1e9]), [true, true, false, false]);
        // ~:10 alert when > 10
        assert_eq!(alerts("~:10", &[-1e9, 10.0, 10.1]), [false, false, true]);
        // 10:20 alert when < 10 or > 20
        assert_eq!(alerts("10:20", &[9.0, 10.0, 15.0, 20.0, 21.0]), [true, false, false, false, true]);
        // @10:20 alert when 10 <= x <= 20
        assert_eq!(alerts("@10:20", &[9.0, 10.0, 15.0, 20.0, 21.0]), [false, true, true, true, false]);
        // 0: any broken edge alerts
        assert_eq!(alerts("0", &[0.0, 1.0]), [false, true]);
        assert_eq!(alerts("@0", &[0.0, 1.0]), [true, false]);
        assert_eq!(alerts("1.5:2.5", &[1.4, 2.0, 2.6]), [true, false, true]);
    }

    #[test]
    fn bad_ranges_are_refused_with_the_syntax() {
        for bad in ["", "x", "20:10", "@", "10:x", "~", "1:2:3", "NaN", "inf"] {
            let err = Range::parse(bad).unwrap_err();
            assert!(err.contains("Monitoring Plugins syntax"), "{bad:?}: {err}");
        }
        assert_eq!(Range::parse("@10:20").unwrap().to_string(), "@10:20");
    }

    #[test]
    fn names_cannot_break_the_output() {
        assert_eq!(clean("a|b\nc"), "a¦b c");
    }
}
