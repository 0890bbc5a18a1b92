//! The TOML configuration (SPEC §2): every section optional, every key
//! defaulted, unknown keys refused.

use crate::domain::event::EventKind;
use crate::url_policy::check_url;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod database;
pub use database::{Database, DatabaseConfig, PostgresTarget};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[openrouter]`
    pub openrouter: OpenRouterConfig,
    /// `[database]`
    pub database: DatabaseConfig,
    /// `[daemon]`
    pub daemon: DaemonConfig,
    /// `[history]`
    pub history: HistoryConfig,
    /// `[metrics]`
    pub metrics: MetricsConfig,
    /// `[ui]`
    pub ui: UiConfig,
    /// `[[notify]]`
    pub notify: Vec<NotifyConfig>,
    /// The file this was read from, if any (not a TOML key).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// `[openrouter]`: where and how to reach the API.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenRouterConfig {
    /// API base, e.g. `https://openrouter.ai/api/v1`.
    pub base_url: String,
    /// File holding the management key (last in the lookup order).
    pub management_key_file: Option<PathBuf>,
    /// The workspaces whose keys are watched (default: every one).
    pub workspaces: Workspaces,
    /// Per-request timeout.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// Requests in flight at once.
    pub max_concurrency: usize,
    /// Client-side ceiling shared by every request.
    pub requests_per_second: u32,
    /// Retries of 429/5xx/network errors.
    pub max_retries: u32,
}

impl Default for OpenRouterConfig {
    fn default() -> Self {
        OpenRouterConfig {
            base_url: "https://openrouter.ai/api/v1".into(),
            management_key_file: None,
            workspaces: Workspaces::All,
            timeout: Duration::from_secs(30),
            max_concurrency: 8,
            requests_per_second: 10,
            max_retries: 5,
        }
    }
}

/// `[openrouter] workspaces`: which workspaces' keys a run lists (SPEC §12).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Workspaces {
    /// `"all"`: every workspace of the account, listed each run.
    #[default]
    All,
    /// A list of workspace ids or slugs; `[]` = the default workspace only,
    /// without listing the workspaces (what keywarden did before §12).
    Only(Vec<String>),
}

impl<'de> Deserialize<'de> for Workspaces {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, SeqAccess, Visitor};
        struct AllOrList;
        impl<'de> Visitor<'de> for AllOrList {
            type Value = Workspaces;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"all\" or a list of workspace ids or slugs")
            }
            fn visit_str<E: Error>(self, s: &str) -> Result<Workspaces, E> {
                match s {
                    "all" => Ok(Workspaces::All),
                    other => Err(E::custom(format!(
                        "workspaces: expected \"all\" or a list of workspace ids or slugs, \
                         got {other:?} (write [{other:?}] to watch that one workspace)"
                    ))),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Workspaces, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    if name.trim().is_empty() {
                        return Err(A::Error::custom(
                            "workspaces: a workspace id or slug must not be empty",
                        ));
                    }
                    names.push(name);
                }
                Ok(Workspaces::Only(names))
            }
        }
        d.deserialize_any(AllOrList)
    }
}

/// `[daemon]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// Default schedule of a rule that names none.
    pub schedule: String,
    /// Default timezone for schedules and calendar conditions.
    pub timezone: String,
    /// Evaluate and record, never PATCH.
    pub dry_run: bool,
    /// Rules files synced into the database at start and on SIGHUP.
    pub rules_files: Vec<PathBuf>,
    /// Blast-radius guard: most keys changed in one run.
    pub max_changes_per_run: usize,
    /// Blast-radius guard: most of the watched keys disabled in one run.
    pub max_disable_fraction: f64,
    /// On PostgreSQL, how often a standby tries to take the lead (SPEC §14).
    #[serde(with = "humantime_serde_compat")]
    pub standby_poll: Duration,
}

impl DaemonConfig {
    /// `timezone`: the default of schedules and calendar conditions that name
    /// none (a [`UsageError`](crate::exit::UsageError) when it is unknown).
    pub fn default_timezone(&self) -> anyhow::Result<chrono_tz::Tz> {
        let name = &self.timezone;
        name.parse().map_err(|_| {
            crate::exit::UsageError::new(format!("[daemon].timezone: unknown timezone {name:?}"))
        })
    }
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            schedule: "*/5 * * * *".into(),
            timezone: "UTC".into(),
            dry_run: false,
            rules_files: Vec::new(),
            max_changes_per_run: 100,
            max_disable_fraction: 0.5,
            standby_poll: Duration::from_secs(5),
        }
    }
}

/// `[history]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// At most one usage snapshot per key per interval, and a budget rule's
    /// readings at most once per interval besides the runs that change a key
    /// under the rule.
    #[serde(with = "humantime_serde_compat")]
    pub snapshot_interval: Duration,
    /// Snapshots older than this are pruned.
    #[serde(with = "humantime_serde_compat")]
    pub snapshot_retention: Duration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            snapshot_interval: Duration::from_secs(15 * 60),
            snapshot_retention: Duration::from_secs(400 * 86400),
        }
    }
}

/// `[metrics]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address to serve `/metrics` and `/healthz` on; `None` = off.
    pub listen: Option<String>,
}

/// `[ui]`: the dashboard (SPEC §13).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UiConfig {
    /// Address to serve the dashboard on; `None` = off.
    pub listen: Option<String>,
}

/// The environment variable holding the dashboard's token.
pub const UI_TOKEN_ENV: &str = "KEYWARDEN_UI_TOKEN";

/// The systemd credential (`$CREDENTIALS_DIRECTORY/ui-token`) holding it.
pub const UI_TOKEN_CREDENTIAL: &str = "ui-token";

/// The token a person gives the dashboard on a non-loopback address. Its
/// `Debug` prints `UiToken([redacted])`.
#[derive(Clone)]
pub struct UiToken(secrecy::SecretString);

impl UiToken {
    /// The token's text, for comparing with what a request carries.
    pub fn expose(&self) -> &str {
        use secrecy::ExposeSecret;
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for UiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UiToken([redacted])")
    }
}

/// Whether `listen` (`HOST:PORT`) is on the loopback interface:
/// `127.0.0.0/8`, `[::1]` or `localhost`.
pub fn is_loopback(listen: &str) -> bool {
    let host = listen.rsplit_once(':').map_or(listen, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// One `[[notify]]` webhook.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Webhook URL (`https://`, or `http://` on loopback).
    pub url: String,
    /// Body format.
    #[serde(default)]
    pub format: NotifyFormat,
    /// Events to send; empty = all.
    #[serde(default)]
    pub events: Vec<EventKind>,
    /// Off switch.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// Body format of a webhook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyFormat {
    /// `{"text": …}`
    #[default]
    Slack,
    /// `{"event": …, …}`
    Json,
}

/// Durations written as `"30s"`, `"15m"`, `"400d"`.
mod humantime_serde_compat {
    use serde::Deserializer;
    use serde::de::{Error, Visitor};
    use std::time::Duration;

    struct DurationText;

    impl Visitor<'_> for DurationText {
        type Value = Duration;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a duration such as \"30s\", \"15m\" or \"400d\"")
        }

        fn visit_str<E: Error>(self, s: &str) -> Result<Duration, E> {
            humantime::parse_duration(s)
                .map_err(|e| E::custom(format!("invalid duration {s:?}: {e} (write e.g. \"30s\")")))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_str(DurationText)
    }
}

impl Config {
    /// The database this configuration names: `[database].url` (with its
    /// password from the environment), else the SQLite file of
    /// [`Config::database_path`]. Both set is a usage error.
    pub fn database(&self) -> anyhow::Result<Database> {
        self.database_with(&process_env)
    }

    /// [`Config::database`] with the environment given.
    pub fn database_with(&self, env: Env<'_>) -> anyhow::Result<Database> {
        match (&self.database.url, &self.database.path) {
            (Some(_), Some(_)) => Err(crate::exit::UsageError::new(format!(
                "{}[database]: url and path are exclusive (PostgreSQL or a SQLite file); set one",
                self.origin()
            ))),
            (Some(url), None) => Ok(Database::Postgres(PostgresTarget::with_env(url, env)?)),
            (None, _) => Ok(Database::Sqlite(self.database_path())),
        }
    }

    /// `PATH: ` of the file this configuration was read from, or nothing.
    fn origin(&self) -> String {
        match &self.source {
            Some(p) => format!("{}: ", p.display()),
            None => String::new(),
        }
    }

    /// The SQLite file this configuration points at (when it names no URL).
    pub fn database_path(&self) -> PathBuf {
        if let Some(p) = &self.database.path {
            return p.clone();
        }
        match std::env::var_os("STATE_DIRECTORY") {
            Some(dir) => Path::new(&dir).join("keywarden.db"),
            None => PathBuf::from("keywarden.db"),
        }
    }
}

/// Where the configuration is looked for when neither `--config` nor
/// `KEYWARDEN_CONFIG` names a file, first found wins.
pub const DEFAULT_CONFIG_PATHS: [&str; 2] = ["/etc/keywarden/keywarden.toml", "keywarden.toml"];

/// Environment variables that override the configuration file.
/// (`KEYWARDEN_CONFIG` and `KEYWARDEN_DATABASE` are read by the command line.)
pub const ENV_BASE_URL: &str = "KEYWARDEN_BASE_URL";

/// The environment variables and systemd credential the management key is
/// read from, in lookup order (then `[openrouter].management_key_file`).
pub const MANAGEMENT_KEY_ENV: [&str; 2] =
    ["OPENROUTER_MANAGEMENT_KEY", "OPENROUTER_PROVISIONING_KEY"];

/// The name of the systemd credential (`LoadCredential=openrouter-management-key:…`).
pub const MANAGEMENT_KEY_CREDENTIAL: &str = "openrouter-management-key";

/// Reads one environment variable; tests pass their own lookup instead.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, as an [`Env`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Config {
    /// Reads the configuration: `path`, else the first of
    /// [`DEFAULT_CONFIG_PATHS`] that exists, else all defaults; then applies
    /// the `KEYWARDEN_*` overrides of the process environment and validates.
    /// Every error is a [`UsageError`](crate::exit::UsageError) (exit 2).
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        Config::load_with(path, &process_env)
    }

    /// [`Config::load`] with the environment given.
    pub fn load_with(path: Option<&Path>, env: Env<'_>) -> anyhow::Result<Config> {
        let path = match path {
            Some(p) => Some(p.to_path_buf()),
            None => DEFAULT_CONFIG_PATHS
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists()),
        };
        let mut config = match path {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    crate::exit::UsageError::new(format!("cannot read {}: {e}", path.display()))
                })?;
                warn_if_writable_by_everyone(&path);
                Config::parse(&text, &path)?
            }
        };
        config.apply_env(env);
        config.validate()?;
        if let Some(listen) = &config.ui.listen {
            config.ui_access(listen, env)?;
        }
        Ok(config)
    }

    /// Parses the text of a configuration file read from `path` (used in
    /// messages only). Refuses unknown keys and an inline management key,
    /// naming `PATH:LINE:COL`. Does not apply the environment or validate.
    pub fn parse(text: &str, path: &Path) -> anyhow::Result<Config> {
        refuse_inline_key(text, path)?;
        database::refuse_inline_password(text, path)?;
        refuse_unknown_events(text, path)?;
        let mut config: Config = toml::from_str(text).map_err(|e| toml_error(text, path, &e))?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Applies the `KEYWARDEN_*` overrides: `KEYWARDEN_BASE_URL`.
    pub fn apply_env(&mut self, env: Env<'_>) {
        if let Some(url) = env(ENV_BASE_URL).filter(|u| !u.trim().is_empty()) {
            self.openrouter.base_url = url.trim().to_string();
        }
    }

    /// Checks what the types cannot: URLs, positive limits, fractions.
    pub fn validate(&self) -> anyhow::Result<()> {
        let or = &self.openrouter;
        let mut problems = Vec::new();
        if let Err(e) = check_url("[openrouter].base_url", &or.base_url) {
            problems.push(e);
        }
        for (i, n) in self.notify.iter().enumerate() {
            if let Err(e) = check_url(&format!("[[notify]] #{} url", i + 1), &n.url) {
                problems.push(e);
            }
        }
        let positive = [
            ("[openrouter].max_concurrency", or.max_concurrency as u64),
            (
                "[openrouter].requests_per_second",
                u64::from(or.requests_per_second),
            ),
            ("[openrouter].timeout", or.timeout.as_millis() as u64),
            (
                "[daemon].standby_poll",
                self.daemon.standby_poll.as_millis() as u64,
            ),
        ];
        for (field, value) in positive {
            if value == 0 {
                problems.push(format!("{field} must be greater than zero"));
            }
        }
        let fraction = self.daemon.max_disable_fraction;
        if !(0.0..=1.0).contains(&fraction) {
            problems.push(format!(
                "[daemon].max_disable_fraction must be between 0 and 1, got {fraction}"
            ));
        }
        if problems.is_empty() {
            return Ok(());
        }
        let origin = match &self.source {
            Some(p) => format!("{}: ", p.display()),
            None => String::new(),
        };
        Err(crate::exit::UsageError::new(format!(
            "{origin}{}",
            problems.join("; ")
        )))
    }

    /// The token the dashboard on `listen` requires: `None` on loopback
    /// without one; on another address, the token of `KEYWARDEN_UI_TOKEN`
    /// or `$CREDENTIALS_DIRECTORY/ui-token`, and a
    /// [`UsageError`](crate::exit::UsageError) when there is none.
    pub fn ui_access(&self, listen: &str, env: Env<'_>) -> anyhow::Result<Option<UiToken>> {
        let token = ui_token(env)?;
        if token.is_some() || is_loopback(listen) {
            return Ok(token);
        }
        let origin = match &self.source {
            Some(p) => format!("{}: ", p.display()),
            None => String::new(),
        };
        Err(crate::exit::UsageError::new(format!(
            "{origin}[ui].listen {listen:?} is not a loopback address and no dashboard token is \
             configured: set {UI_TOKEN_ENV} or use systemd \
             LoadCredential={UI_TOKEN_CREDENTIAL}:/path/to/token, or listen on 127.0.0.1 \
             (see docs/production.md)"
        )))
    }

    /// The management key, first found wins: `OPENROUTER_MANAGEMENT_KEY`,
    /// `OPENROUTER_PROVISIONING_KEY`, `$CREDENTIALS_DIRECTORY/openrouter-management-key`,
    /// `[openrouter].management_key_file`. None found is a
    /// [`UsageError`](crate::exit::UsageError) that says where to put it.
    pub fn management_key(&self) -> anyhow::Result<ManagementKey> {
        self.management_key_with(&process_env)
    }

    /// [`Config::management_key`] with the environment given.
    pub fn management_key_with(&self, env: Env<'_>) -> anyhow::Result<ManagementKey> {
        for name in MANAGEMENT_KEY_ENV {
            if let Some(value) = env(name) {
                return ManagementKey::from_text(value).ok_or_else(|| {
                    crate::exit::UsageError::new(format!("{name} is set but empty"))
                });
            }
        }
        if let Some(dir) = env("CREDENTIALS_DIRECTORY") {
            let file = Path::new(&dir).join(MANAGEMENT_KEY_CREDENTIAL);
            if file.exists() {
                return read_key_file(&file);
            }
        }
        if let Some(file) = &self.openrouter.management_key_file {
            return read_key_file(file);
        }
        Err(crate::exit::UsageError::new(format!(
            "no management key found: set OPENROUTER_MANAGEMENT_KEY, or put it in a file named by \
             [openrouter].management_key_file, or use systemd \
             LoadCredential={MANAGEMENT_KEY_CREDENTIAL}:/path/to/key (see the README)"
        )))
    }
}

/// The dashboard's token, first found wins: `KEYWARDEN_UI_TOKEN`,
/// `$CREDENTIALS_DIRECTORY/ui-token`. Set but empty is an error.
fn ui_token(env: Env<'_>) -> anyhow::Result<Option<UiToken>> {
    let text = match env(UI_TOKEN_ENV) {
        Some(value) => value,
        None => match env("CREDENTIALS_DIRECTORY")
            .map(|dir| Path::new(&dir).join(UI_TOKEN_CREDENTIAL))
            .filter(|file| file.exists())
        {
            Some(file) => std::fs::read_to_string(&file).map_err(|e| {
                crate::exit::UsageError::new(format!("cannot read {}: {e}", file.display()))
            })?,
            None => return Ok(None),
        },
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(crate::exit::UsageError::new(format!(
            "the dashboard token ({UI_TOKEN_ENV} or $CREDENTIALS_DIRECTORY/{UI_TOKEN_CREDENTIAL}) is set but empty"
        )));
    }
    Ok(Some(UiToken(text.to_string().into())))
}

/// Prints a warning when `path` can be written by every user of the host
/// (mode `o+w`): anyone could then change what keywarden does with the key.
fn warn_if_writable_by_everyone(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o002 != 0) {
        eprintln!(
            "warning: {} is writable by everyone; anyone on this host can change what keywarden \
             does with the management key: chmod o-w {}",
            path.display(),
            path.display()
        );
    }
}

/// Reads a key file, trimmed. An unreadable or empty file is a usage error.
fn read_key_file(file: &Path) -> anyhow::Result<ManagementKey> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        crate::exit::UsageError::new(format!(
            "cannot read the management key file {}: {e}",
            file.display()
        ))
    })?;
    ManagementKey::from_text(text).ok_or_else(|| {
        crate::exit::UsageError::new(format!(
            "the management key file {} is empty",
            file.display()
        ))
    })
}

/// The OpenRouter management key. Its `Debug` prints `ManagementKey([redacted])`;
/// it has no `Display`, and [`ManagementKey::expose`] is called only where the
/// `Authorization` header is built.
#[derive(Clone)]
pub struct ManagementKey(secrecy::SecretString);

impl ManagementKey {
    /// Wraps a key (trimmed); `None` when it is empty.
    pub fn from_text(text: String) -> Option<ManagementKey> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return None;
        }
        Some(ManagementKey(secrecy::SecretString::from(
            trimmed.to_string(),
        )))
    }

    /// The key itself. Only for the `Authorization` header.
    pub fn expose(&self) -> &str {
        use secrecy::ExposeSecret;
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for ManagementKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ManagementKey([redacted])")
    }
}

/// A `toml` error as `PATH:LINE:COL: message`, without the source excerpt
/// that `toml` would print (it could hold a secret).
fn toml_error(text: &str, path: &Path, e: &toml::de::Error) -> anyhow::Error {
    let message = e.message().trim().replace('\n', "; ");
    let location = match e.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            format!("{}:{line}:{col}", path.display())
        }
        None => path.display().to_string(),
    };
    crate::exit::UsageError::new(format!("{location}: {message}"))
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Refuses a management key written in the file, naming where it is and
/// where it belongs, never echoing it. A file that does not parse is left
/// to the full parse to report.
fn refuse_inline_key(text: &str, path: &Path) -> anyhow::Result<()> {
    type Slot = Option<toml::Spanned<toml::Value>>;
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        openrouter: Option<InlineKeys>,
    }
    #[derive(Deserialize)]
    struct InlineKeys {
        management_key: Slot,
        provisioning_key: Slot,
        api_key: Slot,
        key: Slot,
    }
    let Ok(Probe {
        openrouter: Some(keys),
    }) = toml::from_str::<Probe>(text)
    else {
        return Ok(());
    };
    let slots = [
        ("management_key", keys.management_key),
        ("provisioning_key", keys.provisioning_key),
        ("api_key", keys.api_key),
        ("key", keys.key),
    ];
    let Some((field, value)) = slots.into_iter().find_map(|(f, v)| v.map(|v| (f, v))) else {
        return Ok(());
    };
    let (line, col) = line_col(text, value.span().start);
    Err(crate::exit::UsageError::new(format!(
        "{}:{line}:{col}: [openrouter].{field}: the management key must not be written in the \
         configuration file; remove it and set OPENROUTER_MANAGEMENT_KEY, or put it in a file \
         (mode 0600) named by [openrouter].management_key_file, or use systemd \
         LoadCredential={MANAGEMENT_KEY_CREDENTIAL}:/path/to/key (see the README)",
        path.display()
    )))
}

/// Refuses an event a `[[notify]]` names that keywarden does not notify,
/// naming `PATH:LINE:COL`, the field (`notify[0].events`) and the valid
/// names: a misspelt event would silently mute the webhook. A file that does
/// not parse is left to the full parse to report.
fn refuse_unknown_events(text: &str, path: &Path) -> anyhow::Result<()> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        notify: Vec<NotifyEvents>,
    }
    #[derive(Deserialize)]
    struct NotifyEvents {
        #[serde(default)]
        events: Vec<toml::Spanned<String>>,
    }
    let Ok(probe) = toml::from_str::<Probe>(text) else {
        return Ok(());
    };
    let unknown = probe.notify.iter().enumerate().find_map(|(i, n)| {
        n.events
            .iter()
            .find(|e| !e.get_ref().parse().is_ok_and(EventKind::is_notifiable))
            .map(|e| (i, e))
    });
    let Some((i, event)) = unknown else {
        return Ok(());
    };
    let (line, col) = line_col(text, event.span().start);
    let valid: Vec<&str> = EventKind::notifiable().map(EventKind::as_str).collect();
    Err(crate::exit::UsageError::new(format!(
        "{}:{line}:{col}: notify[{i}].events: {:?} is not an event keywarden notifies; valid \
         names: {}",
        path.display(),
        event.get_ref(),
        valid.join(", ")
    )))
}
