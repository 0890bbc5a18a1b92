//! Reading a budget source now: a number from the environment, a file or
//! a URL (SPEC §3.2).

use crate::rules::model::{Source, SourceKind};
use crate::rules::source::{SourceError, amount};
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
