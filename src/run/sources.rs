//! Budget sources (SPEC §3.2): reading one now — a number from the
//! environment, a file or a URL — and, for a run, reading each source of
//! the due rules once, with the stored last good value standing in by
//! [`crate::rules::source::resolve`]'s policy, and the outage recorded.

use super::Runner;
use crate::domain::event::EventKind;
use crate::engine::evaluate::Amounts;
use crate::rules::model::{Amount, Rule, Source, SourceKind};
use crate::rules::source::{Resolution, SourceError, amount, resolve};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::time::Duration;

/// Largest body read from a budget URL.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How long a budget URL may take.
pub const URL_TIMEOUT: Duration = Duration::from_secs(10);

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

impl Runner {
    /// Reads the budget sources of the due rules (each source once), falling
    /// back on the stored last good value by [`resolve`]'s policy.
    pub(super) async fn read_budget_sources(
        &self,
        rules: &[Rule],
        due: Option<&BTreeSet<String>>,
        run_id: Option<i64>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Amounts> {
        let mut amounts = Amounts::new();
        for rule in rules
            .iter()
            .filter(|r| due.is_none_or(|d| d.contains(&r.name)))
        {
            let amounts_of_rule = [
                rule.when.budget.as_ref().map(|b| &b.usd),
                rule.when.forecast.as_ref().map(|f| &f.budget.usd),
                rule.when.credits_below.as_ref(),
            ];
            for amount in amounts_of_rule.into_iter().flatten() {
                let Amount::Source(src) = amount else {
                    continue;
                };
                let id = src.id();
                if amounts.contains_key(&id) {
                    continue;
                }
                let fresh = read(src, &self.http).await;
                let stored = self.store.source_value(&id).await?;
                let max_age = Duration::from_secs(src.max_age_secs);
                let value = match resolve(fresh, stored, max_age, now) {
                    Resolution::Fresh(v) => {
                        if run_id.is_some() {
                            self.store.save_source_value(&id, v, now).await?;
                        }
                        Some(v)
                    }
                    Resolution::Stale { value, error } => {
                        self.source_failed(
                            run_id,
                            &rule.name,
                            &id,
                            &error.to_string(),
                            Some(value),
                            now,
                        )
                        .await?;
                        Some(value)
                    }
                    Resolution::Unavailable { error } => {
                        self.source_failed(run_id, &rule.name, &id, &error.to_string(), None, now)
                            .await?;
                        None
                    }
                };
                amounts.insert(id, value);
            }
        }
        Ok(amounts)
    }

    async fn source_failed(
        &self,
        run_id: Option<i64>,
        rule: &str,
        source_id: &str,
        error: &str,
        used: Option<f64>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let Some(run_id) = run_id else {
            tracing::warn!(rule, source = source_id, "budget source failed: {error}");
            return Ok(());
        };
        // Recorded (and so notified) once per outage; every run notes it in its skips.
        if self.store.save_source_error(source_id, error, now).await? {
            tracing::warn!(rule, source = source_id, "budget source failed: {error}");
            let detail = serde_json::json!({
                "source": source_id, "error": error, "stored_value_used": used, "new_outage": true,
            });
            self.store
                .record_event(
                    Some(run_id),
                    now,
                    EventKind::SourceError,
                    Some(rule),
                    None,
                    &detail,
                )
                .await?;
        } else {
            tracing::debug!(
                rule,
                source = source_id,
                "budget source still failing: {error}"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_url_is_shown_without_its_query() {
        assert_eq!(
            shown_url("https://user:pw@finance.internal:8443/b?token=s3cret"),
            "https://finance.internal:8443/b"
        );
    }
}
