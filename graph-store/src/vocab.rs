//! The graph's words, typed: an edge's health state, the states an event moves between, a
//! probe cycle's verdict and how a target is probed. Every crate uses these, never string
//! literals; each maps to its `text` column (with its `CHECK`) through sqlx and to the same
//! lowercase name in JSON.
//!
//! Adding a word is adding a variant here (and widening the column's `CHECK` in a
//! migration); the compiler then lists every `match` that must learn it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef, Postgres};

/// A name that is none of a vocabulary's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {what}: {value:?} (expected one of: {expected})")]
pub struct ParseWordError {
    what: &'static str,
    value: String,
    expected: String,
}

impl ParseWordError {
    pub fn new(what: &'static str, value: &str, expected: &[&str]) -> Self {
        ParseWordError { what, value: value.to_owned(), expected: expected.join(", ") }
    }
}

/// Declares one vocabulary: the enum, `ALL`, `as_str`, `Display`, `FromStr` and its sqlx
/// mapping to `text`.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every word, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name stored in PostgreSQL and written in JSON and text output.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseWordError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL.iter().copied().find(|w| w.as_str() == s).ok_or_else(|| {
                    ParseWordError::new($what, s, &[$($text),+])
                })
            }
        }

        impl sqlx::Type<Postgres> for $name {
            fn type_info() -> PgTypeInfo {
                <&str as sqlx::Type<Postgres>>::type_info()
            }
            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as sqlx::Type<Postgres>>::compatible(ty)
            }
        }

        impl PgHasArrayType for $name {
            fn array_type_info() -> PgTypeInfo {
                <&str as PgHasArrayType>::array_type_info()
            }
        }

        impl<'r> sqlx::Decode<'r, Postgres> for $name {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(<&str as sqlx::Decode<Postgres>>::decode(value)?.parse()?)
            }
        }

        impl sqlx::Encode<'_, Postgres> for $name {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as sqlx::Encode<Postgres>>::encode(self.as_str(), buf)
            }
        }
    };
}

vocabulary! {
    /// The health state of an edge (`edge_health.state`). `Unknown` is undecided: not yet
    /// probed, or not enough cycles to say.
    #[derive(Default)]
    HealthState ("health state") {
        Up = "up",
        Down = "down",
        Degraded = "degraded",
        Stale = "stale",
        #[default]
        Unknown = "unknown",
    }
}

impl HealthState {
    /// Down or degraded: what `graph broken`, the report and the demo call broken.
    pub fn is_broken(self) -> bool {
        matches!(self, HealthState::Down | HealthState::Degraded)
    }
}

vocabulary! {
    /// The `from` and `to` of a state-change event (`edge_events.from_state`/`to_state`):
    /// a [`HealthState`] or the pseudo-state `flapping`.
    EventState ("event state") {
        Up = "up",
        Down = "down",
        Degraded = "degraded",
        Stale = "stale",
        Unknown = "unknown",
        Flapping = "flapping",
    }
}

impl EventState {
    /// The real state, or `None` for `flapping`.
    pub fn health_state(self) -> Option<HealthState> {
        match self {
            EventState::Up => Some(HealthState::Up),
            EventState::Down => Some(HealthState::Down),
            EventState::Degraded => Some(HealthState::Degraded),
            EventState::Stale => Some(HealthState::Stale),
            EventState::Unknown => Some(HealthState::Unknown),
            EventState::Flapping => None,
        }
    }

    /// Down, degraded or flapping: a state that is trouble for the report.
    pub fn is_trouble(self) -> bool {
        matches!(self, EventState::Down | EventState::Degraded | EventState::Flapping)
    }
}

impl From<HealthState> for EventState {
    fn from(s: HealthState) -> Self {
        match s {
            HealthState::Up => EventState::Up,
            HealthState::Down => EventState::Down,
            HealthState::Degraded => EventState::Degraded,
            HealthState::Stale => EventState::Stale,
            HealthState::Unknown => EventState::Unknown,
        }
    }
}

vocabulary! {
    /// The outcome of one probe cycle (`probe_results.verdict`).
    Verdict ("verdict") {
        Ok = "ok",
        Degraded = "degraded",
        Failed = "failed",
    }
}

impl Verdict {
    /// One character per cycle in a verdict history: `o`, `d` or `f`.
    pub fn as_char(self) -> char {
        match self {
            Verdict::Ok => 'o',
            Verdict::Degraded => 'd',
            Verdict::Failed => 'f',
        }
    }

    pub fn from_char(c: char) -> Option<Verdict> {
        Verdict::ALL.iter().copied().find(|v| v.as_char() == c)
    }
}

vocabulary! {
    /// How an edge is probed (`probe_results.kind`, the agents' targets).
    ProbeKind ("probe kind") {
        Icmp = "icmp",
        Tcp = "tcp",
    }
}

impl ProbeKind {
    /// The rule for an edge: TCP connect when its service has a port, else ICMP echo.
    pub fn for_port(port: Option<u16>) -> Self {
        match port {
            Some(_) => ProbeKind::Tcp,
            None => ProbeKind::Icmp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T>(all: &[T])
    where
        T: Copy + fmt::Debug + PartialEq + FromStr<Err = ParseWordError> + Serialize + fmt::Display,
        for<'de> T: Deserialize<'de>,
    {
        for &w in all {
            let text = w.to_string();
            assert_eq!(text.parse::<T>().unwrap(), w);
            assert_eq!(serde_json::to_value(w).unwrap(), serde_json::Value::String(text.clone()));
            assert_eq!(serde_json::from_value::<T>(serde_json::Value::String(text)).unwrap(), w);
        }
    }

    #[test]
    fn every_word_reads_back_from_its_name_and_json() {
        round_trip(HealthState::ALL);
        round_trip(EventState::ALL);
        round_trip(Verdict::ALL);
        round_trip(ProbeKind::ALL);
    }

    #[test]
    fn names_are_the_stored_ones() {
        let names = |all: &[&str]| all.join(" ");
        assert_eq!(
            names(&HealthState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
            "up down degraded stale unknown"
        );
        assert_eq!(
            names(&EventState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
            "up down degraded stale unknown flapping"
        );
        assert_eq!(names(&Verdict::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()), "ok degraded failed");
        assert_eq!(names(&ProbeKind::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()), "icmp tcp");
    }

    #[test]
    fn a_wrong_name_says_what_was_expected() {
        let err = "flapping".parse::<HealthState>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "not a valid health state: \"flapping\" (expected one of: up, down, degraded, stale, unknown)"
        );
        assert!("Up".parse::<HealthState>().is_err());
        assert!("".parse::<Verdict>().is_err());
    }

    #[test]
    fn broken_and_trouble() {
        let broken: Vec<_> = HealthState::ALL.iter().filter(|s| s.is_broken()).collect();
        assert_eq!(broken, [&HealthState::Down, &HealthState::Degraded]);
        let trouble: Vec<_> = EventState::ALL.iter().filter(|s| s.is_trouble()).collect();
        assert_eq!(trouble, [&EventState::Down, &EventState::Degraded, &EventState::Flapping]);
        for &s in HealthState::ALL {
            assert_eq!(EventState::from(s).health_state(), Some(s));
        }
        assert_eq!(EventState::Flapping.health_state(), None);
    }

    #[test]
    fn verdict_characters() {
        for &v in Verdict::ALL {
            assert_eq!(Verdict::from_char(v.as_char()), Some(v));
        }
        assert_eq!(Verdict::from_char('x'), None);
    }

    #[test]
    fn tcp_when_there_is_a_port() {
        assert_eq!(ProbeKind::for_port(Some(5432)), ProbeKind::Tcp);
        assert_eq!(ProbeKind::for_port(None), ProbeKind::Icmp);
    }

    #[test]
    fn names_round_trip_through_serde_and_from_str() {
        use serde::de::value::{Error as DeError, StrDeserializer};
        use serde::de::IntoDeserializer;
        for &s in HealthState::ALL {
            assert_eq!(s.as_str().parse::<HealthState>(), Ok(s));
            assert_eq!(s.to_string(), s.as_str());
            let de: StrDeserializer<'_, DeError> = s.as_str().into_deserializer();
            assert_eq!(HealthState::deserialize(de).unwrap(), s);
            assert_eq!(EventState::from(s).as_str(), s.as_str());
            assert_eq!(EventState::from(s).health_state(), Some(s));
        }
        for &s in EventState::ALL {
            assert_eq!(s.as_str().parse::<EventState>(), Ok(s));
        }
        assert_eq!(EventState::Flapping.health_state(), None);
        assert!("flapping".parse::<HealthState>().is_err());
        for &v in Verdict::ALL {
            assert_eq!(v.as_str().parse::<Verdict>(), Ok(v));
            assert_eq!(Verdict::from_char(v.as_char()), Some(v));
        }
        assert!("UP".parse::<HealthState>().is_err());
        assert_eq!(HealthState::default(), HealthState::Unknown);
    }
}
