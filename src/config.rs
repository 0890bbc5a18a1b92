//! The TOML configuration (SPEC §2): every section optional, every key
//! defaulted, unknown keys refused.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// Workspace ids to watch; empty = the default workspace.
    pub workspaces: Vec<String>,
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
            workspaces: Vec::new(),
            timeout: Duration::from_secs(30),
            max_concurrency: 8,
            requests_per_second: 10,
            max_retries: 5,
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// The SQLite file; `None` = `$STATE_DIRECTORY/keywarden.db`, else `./keywarden.db`.
    pub path: Option<PathBuf>,
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
        }
    }
}

/// `[history]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// At most one usage snapshot per key per interval.
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
    pub events: Vec<String>,
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
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

impl Config {
    /// The database file this configuration points at.
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

impl Config {
    /// Reads the configuration: `path`, else `/etc/keywarden/keywarden.toml`,
    /// else `./keywarden.toml`, else all defaults.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let path = match path {
            Some(p) => Some(p.to_path_buf()),
            None => ["/etc/keywarden/keywarden.toml", "keywarden.toml"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists()),
        };
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            crate::exit::UsageError::new(format!("cannot read {}: {e}", path.display()))
        })?;
        let mut config: Config = toml::from_str(&text)
            .map_err(|e| crate::exit::UsageError::new(format!("{}: {e}", path.display())))?;
        config.source = Some(path);
        Ok(config)
    }
}
