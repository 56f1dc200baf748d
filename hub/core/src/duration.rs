//! Human-friendly durations (`15s`, `1m`, `1h30m`, `250ms`) used by annotations and the hub config.
//!
//! Parsing is delegated to `humantime`, which also accepts `d` (days), `1h 30m` and unit words
//! such as `5min`; we only add whitespace trimming and error messages that say what is wrong in
//! words an operator reading `kubectl describe` understands.

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string was empty or only whitespace.
    #[error("is empty; expected a duration such as 15s, 1m or 1h30m")]
    Empty,
    /// A bare number has no unit, which is ambiguous (seconds? milliseconds?).
    #[error("{0:?} has no unit; write e.g. {0}s or {0}ms")]
    MissingUnit(String),
    /// Anything else humantime refused (unknown unit, negative value, overflow, stray characters).
    #[error("{input:?} is not a duration ({reason}); expected e.g. 15s, 1m or 1h30m")]
    Invalid {
        /// The offending input, trimmed.
        input: String,
        /// humantime's explanation.
        reason: String,
    },
}

/// Parses a duration such as `15s`, `1m`, `5m`, `1h30m`, `0s` or `250ms`.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(DurationError::Empty);
    }
    if trimmed.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(DurationError::MissingUnit(trimmed.to_owned()));
    }
    humantime::parse_duration(trimmed)
        .map_err(|err| DurationError::Invalid { input: trimmed.to_owned(), reason: err.to_string() })
}

/// Formats a duration the way [`parse_duration`] reads it back (`5m`, `1h 30m`, `250ms`).
pub fn format_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    humantime::format_duration(duration).to_string()
}

/// Serde helpers that store a [`Duration`] as a human string (`"5m"`) and read it back.
pub mod serde_human {
    use super::{format_duration, parse_duration};
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};
    use std::time::Duration;

    /// Serialises a duration as a human string.
    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(*duration))
    }

    /// Deserialises a duration from a human string.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text).map_err(D::Error::custom)
    }
}

/// Serde helpers for an `Option<Duration>` as a human string, `null` or absent for `None`.
pub mod serde_human_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises `Some` as a human string, `None` as null.
    pub fn serialize<S: Serializer>(value: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => serializer.serialize_str(&super::format_duration(*d)),
            None => serializer.serialize_none(),
        }
    }

    /// Deserialises a human string or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.map(|t| super::parse_duration(&t).map_err(serde::de::Error::custom)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_forms_parse() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration(" 7d "), Ok(Duration::from_secs(7 * 86_400)));
    }

    #[test]
    fn a_bare_number_is_rejected_because_its_unit_is_ambiguous() {
        let err = parse_duration("15").unwrap_err();
        assert_eq!(err, DurationError::MissingUnit("15".into()));
        assert!(err.to_string().contains("has no unit"));
    }

    #[test]
    fn garbage_empty_and_negative_values_are_rejected() {
        assert_eq!(parse_duration("  "), Err(DurationError::Empty));
        assert!(matches!(parse_duration("abc"), Err(DurationError::Invalid { .. })));
        assert!(matches!(parse_duration("-5s"), Err(DurationError::Invalid { .. })));
        assert!(matches!(parse_duration("5 parsecs"), Err(DurationError::Invalid { .. })));
    }

    #[test]
    fn formatting_round_trips() {
        for text in ["0s", "15s", "5m", "1h 30m", "250ms"] {
            let parsed = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&format_duration(parsed)), Ok(parsed));
        }
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
    }
}
