//! External budget sources (SPEC §3.2): what a source's content must be
//! (a non-negative amount), why a source gave none, and the failure policy
//! that falls back on the stored last good value while it is younger than
//! `max_age`. Reading a source is the shell's ([`crate::run`]).

use chrono::{DateTime, Utc};
use std::time::Duration;

/// Why a source gave no number. Never carries header values (they may be tokens).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// The environment variable is not set.
    #[error("environment variable {0} is not set")]
    EnvMissing(String),
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        error: String,
    },
    /// The request failed or answered non-2xx.
    #[error("{url}: {error}")]
    Url {
        /// The URL without its query (which may carry a token).
        url: String,
        /// What went wrong.
        error: String,
    },
    /// The header names an environment variable that is not set.
    #[error("header {header}: environment variable {var} is not set")]
    HeaderEnvMissing {
        /// The header.
        header: String,
        /// The variable.
        var: String,
    },
    /// The content is not a usable amount.
    #[error("{0}")]
    NotANumber(String),
}

/// What a rule uses for an amount this run.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Read just now.
    Fresh(f64),
    /// The source failed; the stored value (younger than `max_age`) stands in.
    Stale {
        /// The stored value.
        value: f64,
        /// Why the source failed.
        error: SourceError,
    },
    /// The source failed and nothing usable is stored: the rule is not evaluated.
    Unavailable {
        /// Why the source failed.
        error: SourceError,
    },
}

/// A non-negative number from `text`: JSON at `pointer`, or a bare number.
pub fn amount(text: &str, pointer: Option<&str>, what: &str) -> Result<f64, SourceError> {
    let value = match pointer {
        None => match text.trim().parse::<f64>() {
            Ok(v) => v,
            Err(_) => serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.as_f64())
                .ok_or_else(|| SourceError::NotANumber(format!("{what}: not a number")))?,
        },
        Some(p) => {
            let json: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| SourceError::NotANumber(format!("{what}: not JSON: {e}")))?;
            let found = json
                .pointer(p)
                .ok_or_else(|| SourceError::NotANumber(format!("{what}: nothing at {p}")))?;
            match found {
                serde_json::Value::Number(n) => n.as_f64(),
                serde_json::Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
            .ok_or_else(|| SourceError::NotANumber(format!("{what}: {p} is not a number")))?
        }
    };
    if !value.is_finite() || value < 0.0 {
        return Err(SourceError::NotANumber(format!(
            "{what}: {value} is not a non-negative amount"
        )));
    }
    Ok(value)
}

/// The failure policy: a fresh value wins; else the stored one while younger
/// than `max_age`; else the rule is not evaluated.
pub fn resolve(
    fresh: Result<f64, SourceError>,
    stored: Option<(f64, DateTime<Utc>)>,
    max_age: Duration,
    now: DateTime<Utc>,
) -> Resolution {
    match fresh {
        Ok(v) => Resolution::Fresh(v),
        Err(error) => match stored {
            Some((value, at))
                if (now - at).to_std().is_ok_and(|age| age <= max_age) || at > now =>
            {
                Resolution::Stale { value, error }
            }
            _ => Resolution::Unavailable { error },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn negative_and_non_numbers_are_refused() {
        assert!(amount("-3", None, "x").is_err());
        assert!(amount("abc", None, "x").is_err());
        assert!(amount(r#"{"a": true}"#, Some("/a"), "x").is_err());
        assert_eq!(amount(r#"{"a": "12"}"#, Some("/a"), "x"), Ok(12.0));
    }

    #[test]
    fn the_stored_value_stands_in_only_while_young_enough() {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
        let err = || Err(SourceError::EnvMissing("B".into()));
        let hour = Duration::from_secs(3600);
        assert_eq!(resolve(Ok(5.0), None, hour, now), Resolution::Fresh(5.0));
        let young = Some((9.0, now - chrono::Duration::minutes(59)));
        assert!(
            matches!(resolve(err(), young, hour, now), Resolution::Stale { value, .. } if value == 9.0)
        );
        let old = Some((9.0, now - chrono::Duration::minutes(61)));
        assert!(matches!(
            resolve(err(), old, hour, now),
            Resolution::Unavailable { .. }
        ));
        assert!(matches!(
            resolve(err(), None, hour, now),
            Resolution::Unavailable { .. }
        ));
    }
}
