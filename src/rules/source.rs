//! External budget sources (SPEC §3.2): reading a number from the
//! environment, a file or a URL, and the failure policy that falls back on
//! the stored last good value while it is younger than `max_age`.

use crate::rules::model::{Source, SourceKind};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Largest body read from a budget URL.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How long a budget URL may take.
pub const URL_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Reads `source` now.
pub async fn read(source: &Source, http: &reqwest::Client) -> Result<f64, SourceError> {
    match &source.kind {
        SourceKind::Env { name } => {
            let text = std::env::var(name).map_err(|_| SourceError::EnvMissing(name.clone()))?;
            amount(&text, None, &format!("environment variable {name}"))
        }
        SourceKind::File { path, pointer } => {
            let text = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| SourceError::File {
                    path: path.clone(),
                    error: e.to_string(),
                })?;
            amount(&text, pointer.as_deref(), path)
        }
        SourceKind::Url {
            url,
            pointer,
            headers,
        } => {
            let shown = shown_url(url);
            let fail = |error: String| SourceError::Url {
                url: shown.clone(),
                error,
            };
            let mut request = http.get(url).timeout(URL_TIMEOUT);
            for (name, value) in headers {
                let value = match value.strip_prefix("env:") {
                    Some(var) => std::env::var(var).map_err(|_| SourceError::HeaderEnvMissing {
                        header: name.clone(),
                        var: var.to_string(),
                    })?,
                    None => value.clone(),
                };
                request = request.header(name, value);
            }
            let response = request
                .send()
                .await
                .map_err(|e| fail(e.without_url().to_string()))?;
            let status = response.status();
            if !status.is_success() {
                return Err(fail(format!("HTTP {status}")));
            }
            let mut body = Vec::new();
            let mut response = response;
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| fail(e.without_url().to_string()))?
            {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(fail(format!("body larger than {MAX_BODY_BYTES} bytes")));
                }
                body.extend_from_slice(&chunk);
            }
            let text = String::from_utf8_lossy(&body);
            amount(&text, pointer.as_deref(), &shown)
        }
    }
}

/// The URL as it may be shown: scheme, host, port and path, no query or credentials.
fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default(),
            u.path()
        ),
        Err(_) => "(invalid URL)".into(),
    }
}

/// A non-negative number from `text`: JSON at `pointer`, or a bare number.
fn amount(text: &str, pointer: Option<&str>, what: &str) -> Result<f64, SourceError> {
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

    fn src(kind: SourceKind) -> Source {
        Source {
            kind,
            max_age_secs: 3600,
        }
    }

    #[tokio::test]
    async fn reads_a_file_with_a_pointer_or_a_bare_number() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("b.json");
        std::fs::write(&json, r#"{"teams": {"a": 42.5}}"#).unwrap();
        let bare = dir.path().join("b.txt");
        std::fs::write(&bare, "17\n").unwrap();
        let http = reqwest::Client::new();
        let with_pointer = src(SourceKind::File {
            path: json.display().to_string(),
            pointer: Some("/teams/a".into()),
        });
        assert_eq!(read(&with_pointer, &http).await, Ok(42.5));
        let plain = src(SourceKind::File {
            path: bare.display().to_string(),
            pointer: None,
        });
        assert_eq!(read(&plain, &http).await, Ok(17.0));
        let missing = src(SourceKind::File {
            path: json.display().to_string(),
            pointer: Some("/teams/b".into()),
        });
        assert!(matches!(
            read(&missing, &http).await,
            Err(SourceError::NotANumber(_))
        ));
    }

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

    #[test]
    fn a_url_is_shown_without_its_query() {
        assert_eq!(
            shown_url("https://user:pw@finance.internal:8443/b?token=s3cret"),
            "https://finance.internal:8443/b"
        );
    }
}
