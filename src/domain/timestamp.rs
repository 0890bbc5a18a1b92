//! Instants as keywarden writes them everywhere (the database, JSON,
//! reports, messages): RFC 3339 in UTC to the second, `2026-11-27T10:00:00Z`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

/// `at` as `2026-11-27T10:00:00Z`.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `at` to the minute, as reasons write it: `2026-11-27T10:00Z`.
pub fn rfc3339_minutes(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%MZ").to_string()
}

/// Serializes an instant as [`rfc3339`] (`#[serde(serialize_with = …)]`).
pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*at))
}

/// Serializes an optional instant as [`rfc3339`], or `null`.
pub fn serialize_opt<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => serialize(at, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn whole_seconds_in_utc_with_a_z() {
        let at = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap()
            + chrono::Duration::milliseconds(700);
        assert_eq!(rfc3339(at), "2026-11-27T10:00:00Z");
        assert_eq!(
            serde_json::to_value(Stamped { at: Some(at) }).unwrap(),
            serde_json::json!({ "at": "2026-11-27T10:00:00Z" })
        );
        assert_eq!(
            serde_json::to_value(Stamped { at: None }).unwrap(),
            serde_json::json!({ "at": null })
        );
    }

    #[derive(serde::Serialize)]
    struct Stamped {
        #[serde(serialize_with = "serialize_opt")]
        at: Option<DateTime<Utc>>,
    }
}
