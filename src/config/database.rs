//! `[database]`: a SQLite file (the default, one host) or a PostgreSQL URL
//! (several replicas, SPEC §14). The PostgreSQL password is never written
//! in the configuration: it comes from the environment or a systemd
//! credential, and a URL that carries one is refused like an inline
//! management key.

use super::{Env, line_col};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `[database]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// The SQLite file; `None` = `$STATE_DIRECTORY/keywarden.db`, else `./keywarden.db`.
    pub path: Option<PathBuf>,
    /// A PostgreSQL database (`postgres://user@host:port/db?sslmode=…`),
    /// instead of `path`.
    pub url: Option<String>,
}

/// The environment variables the PostgreSQL password is read from, in
/// lookup order (then `$CREDENTIALS_DIRECTORY/database-password`).
pub const DATABASE_PASSWORD_ENV: [&str; 2] = ["KEYWARDEN_DATABASE_PASSWORD", "PGPASSWORD"];

/// The systemd credential holding the PostgreSQL password
/// (`LoadCredential=database-password:…`).
pub const DATABASE_PASSWORD_CREDENTIAL: &str = "database-password";

/// The database a configuration names.
#[derive(Debug, Clone)]
pub enum Database {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(PostgresTarget),
}

/// A PostgreSQL database to connect to: its URL (without a password) and
/// the password found for it. `Debug` redacts the password.
#[derive(Clone)]
pub struct PostgresTarget {
    /// `postgres://user@host:port/db?…`, as configured (it has no password).
    pub url: String,
    /// From [`DATABASE_PASSWORD_ENV`] or the credential; `None` for
    /// password-less authentication (peer, trust, certificates).
    pub password: Option<secrecy::SecretString>,
}

impl std::fmt::Debug for PostgresTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresTarget")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl PostgresTarget {
    /// The target of `url` with the password of `env`.
    pub fn with_env(url: &str, env: Env<'_>) -> anyhow::Result<PostgresTarget> {
        check_url(url).map_err(|e| crate::exit::UsageError::new(format!("[database].url: {e}")))?;
        Ok(PostgresTarget {
            url: url.to_string(),
            password: password(env)?,
        })
    }

    /// Where this is, for messages: `host:port/db`.
    pub fn display(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(u) => format!(
                "postgres://{}:{}{}",
                u.host_str().unwrap_or("localhost"),
                u.port().unwrap_or(5432),
                u.path()
            ),
            Err(_) => "postgres://?".to_string(),
        }
    }
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(target) => f.write_str(&target.display()),
        }
    }
}

/// Checks a PostgreSQL URL: its scheme, and that it carries no password.
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(format!(
            "the scheme must be postgres:// (got {}://); a SQLite file goes in [database].path",
            parsed.scheme()
        ));
    }
    if parsed.password().is_some() {
        return Err(password_refusal());
    }
    if parsed
        .query_pairs()
        .any(|(k, _)| k.eq_ignore_ascii_case("password"))
    {
        return Err(password_refusal());
    }
    Ok(())
}

fn password_refusal() -> String {
    format!(
        "the database password must not be written in the configuration file; remove it and \
         set KEYWARDEN_DATABASE_PASSWORD or PGPASSWORD, or use systemd \
         LoadCredential={DATABASE_PASSWORD_CREDENTIAL}:/path/to/password (see docs/high-availability.md)"
    )
}

/// Refuses a `[database].url` that holds a password, naming `PATH:LINE:COL`
/// (the URL itself is not repeated: it holds the secret).
pub(super) fn refuse_inline_password(text: &str, path: &Path) -> anyhow::Result<()> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        database: Option<Section>,
    }
    #[derive(Deserialize)]
    struct Section {
        url: Option<toml::Spanned<String>>,
    }
    let Ok(Probe {
        database: Some(Section { url: Some(url) }),
    }) = toml::from_str::<Probe>(text)
    else {
        return Ok(());
    };
    match check_url(url.get_ref()) {
        Ok(()) => Ok(()),
        Err(e) => {
            let (line, col) = line_col(text, url.span().start);
            Err(crate::exit::UsageError::new(format!(
                "{}:{line}:{col}: [database].url: {e}",
                path.display()
            )))
        }
    }
}

/// The PostgreSQL password, first found wins: [`DATABASE_PASSWORD_ENV`],
/// then `$CREDENTIALS_DIRECTORY/database-password`. Set but empty is an
/// error; none at all is `None`.
fn password(env: Env<'_>) -> anyhow::Result<Option<secrecy::SecretString>> {
    let text = match DATABASE_PASSWORD_ENV.iter().find_map(|name| env(name)) {
        Some(value) => value,
        None => match env("CREDENTIALS_DIRECTORY")
            .map(|dir| Path::new(&dir).join(DATABASE_PASSWORD_CREDENTIAL))
            .filter(|file| file.exists())
        {
            Some(file) => std::fs::read_to_string(&file).map_err(|e| {
                crate::exit::UsageError::new(format!("cannot read {}: {e}", file.display()))
            })?,
            None => return Ok(None),
        },
    };
    let text = text.trim_end_matches(['\r', '\n']);
    if text.is_empty() {
        return Err(crate::exit::UsageError::new(
            "the database password (KEYWARDEN_DATABASE_PASSWORD, PGPASSWORD or \
             $CREDENTIALS_DIRECTORY/database-password) is set but empty",
        ));
    }
    Ok(Some(text.to_string().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_with_a_password_is_refused_without_repeating_it() {
        for url in [
            "postgres://kw:s3cret@db:5432/kw",
            "postgres://kw@db/kw?password=s3cret",
        ] {
            let e = check_url(url).unwrap_err();
            assert!(e.contains("must not be written"), "{e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        assert!(check_url("postgres://kw@db:5432/kw?sslmode=verify-full").is_ok());
        assert!(
            check_url("mysql://kw@db/kw")
                .unwrap_err()
                .contains("scheme")
        );
    }

    #[test]
    fn the_password_comes_from_the_environment_first_then_the_credential() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DATABASE_PASSWORD_CREDENTIAL), "from-file\n").unwrap();
        let creds = dir.path().to_string_lossy().into_owned();
        let env = |name: &str| match name {
            "PGPASSWORD" => Some("from-pg".to_string()),
            "CREDENTIALS_DIRECTORY" => Some(creds.clone()),
            _ => None,
        };
        use secrecy::ExposeSecret;
        let t = PostgresTarget::with_env("postgres://kw@db/kw", &env).unwrap();
        assert_eq!(t.password.unwrap().expose_secret(), "from-pg");
        let env = |name: &str| (name == "CREDENTIALS_DIRECTORY").then(|| creds.clone());
        let t = PostgresTarget::with_env("postgres://kw@db/kw", &env).unwrap();
        assert_eq!(t.password.as_ref().unwrap().expose_secret(), "from-file");
        assert!(!format!("{t:?}").contains("from-file"));
        assert_eq!(t.display(), "postgres://db:5432/kw");
    }
}
