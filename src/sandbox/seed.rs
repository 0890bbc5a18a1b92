//! The keys a sandbox starts with: `--keys N` deterministic keys and
//! `--seed FILE` keys from JSON.

use super::guardrail::{CHEAP_MODELS_ONLY, NO_TRAINING};
use super::ids::{DEFAULT_WORKSPACE, sha256_hex};
use super::workspace::{RESEARCH_WORKSPACE, SUPPORT_WORKSPACE};
use crate::domain::LimitReset;
use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One key to start with. A `--seed` file is a JSON array of these:
///
/// ```json
/// [{"name": "team-a-ci", "limit": 50, "limit_reset": "monthly", "usage_monthly": 12.5},
///  {"name": "old", "hash": "f01d…", "disabled": true, "workspace_id": "ws-2"}]
/// ```
///
/// Only `name` is required. `hash` defaults to the SHA-256 of the name (64
/// hex digits), `label` to the key's visible prefix, `workspace_id` to the
/// default workspace, `guardrail_id` to none, every flag to `false`, `limit` and `limit_reset` to
/// `null`, every usage figure to 0 — except the lifetime `usage` (and
/// `byok_usage`), which defaults to the largest of its windows. The window
/// figures count as spend in the windows of the sandbox clock at start.
/// Unknown fields are an error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedKey {
    /// The key's name.
    pub name: String,
    /// Its hash (default: SHA-256 of the name).
    #[serde(default)]
    pub hash: Option<String>,
    /// Its label (default: the visible prefix of its secret).
    #[serde(default)]
    pub label: Option<String>,
    /// Disabled at start.
    #[serde(default)]
    pub disabled: bool,
    /// Spending limit in USD; `null` = none.
    #[serde(default)]
    pub limit: Option<f64>,
    /// `daily`, `weekly`, `monthly` or `null`.
    #[serde(default)]
    pub limit_reset: Option<LimitReset>,
    /// Count BYOK spend in the limit.
    #[serde(default)]
    pub include_byok_in_limit: bool,
    /// Workspace (default: the default workspace).
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// The id of the guardrail it holds at start, one the sandbox starts
    /// with (default: none).
    #[serde(default)]
    pub guardrail_id: Option<String>,
    /// External user id.
    #[serde(default)]
    pub external_user: Option<String>,
    /// Expiry.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Lifetime credit usage (default: the largest window figure).
    #[serde(default)]
    pub usage: Option<f64>,
    /// Credit usage in the current UTC day.
    #[serde(default)]
    pub usage_daily: f64,
    /// Credit usage in the current UTC week.
    #[serde(default)]
    pub usage_weekly: f64,
    /// Credit usage in the current UTC month.
    #[serde(default)]
    pub usage_monthly: f64,
    /// Lifetime BYOK usage (default: the largest window figure).
    #[serde(default)]
    pub byok_usage: Option<f64>,
    /// BYOK usage in the current UTC day.
    #[serde(default)]
    pub byok_usage_daily: f64,
    /// BYOK usage in the current UTC week.
    #[serde(default)]
    pub byok_usage_weekly: f64,
    /// BYOK usage in the current UTC month.
    #[serde(default)]
    pub byok_usage_monthly: f64,
}

/// The groups `--keys N` spreads its keys over, in turn.
const GROUPS: [&str; 6] = ["team-a", "team-b", "team-c", "support", "ci", "research"];
/// The limits `--keys N` cycles through (`None` = no limit).
const LIMITS: [Option<f64>; 7] = [
    Some(10.0),
    None,
    Some(25.0),
    Some(50.0),
    Some(5.0),
    None,
    Some(100.0),
];
/// The resets `--keys N` cycles through (`None` = never resets).
const RESETS: [Option<LimitReset>; 5] = [
    Some(LimitReset::Monthly),
    Some(LimitReset::Daily),
    None,
    Some(LimitReset::Weekly),
    Some(LimitReset::Monthly),
];

/// `n` deterministic keys: `team-a-01`, `team-b-01`, … `research-01`,
/// `team-a-02`, …, with limits and resets cycling at different periods so
/// that every combination occurs; all enabled, zero usage; every fifth key
/// counts BYOK in its limit.
pub fn generated(n: usize) -> Vec<SeedKey> {
    (0..n)
        .map(|i| SeedKey {
            name: format!("{}-{:02}", GROUPS[i % GROUPS.len()], i / GROUPS.len() + 1),
            limit: LIMITS[i % LIMITS.len()],
            limit_reset: RESETS[i % RESETS.len()],
            include_byok_in_limit: i % 5 == 4,
            ..SeedKey::default()
        })
        .collect()
}

/// Spreads `keys` over the three workspaces the sandbox starts with, in
/// turn (`default`, `research`, `support`), and assigns every fourth key,
/// from the second, `cheap-models-only` and every fourth, from the fourth,
/// `no-training`. Keys that name a workspace or guardrail keep it. Applied
/// to the keys of `--keys N` (not to those of a `--seed` file).
pub fn spread_over_workspaces(keys: &mut [SeedKey]) {
    let workspaces = [DEFAULT_WORKSPACE, RESEARCH_WORKSPACE, SUPPORT_WORKSPACE];
    for (i, key) in keys.iter_mut().enumerate() {
        key.workspace_id
            .get_or_insert_with(|| workspaces[i % workspaces.len()].to_owned());
        let guardrail = match i % 4 {
            1 => Some(CHEAP_MODELS_ONLY),
            3 => Some(NO_TRAINING),
            _ => None,
        };
        if key.guardrail_id.is_none() {
            key.guardrail_id = guardrail.map(str::to_owned);
        }
    }
}

/// Reads a `--seed` file: a JSON array of [`SeedKey`]. Errors name the file
/// and, for bad JSON, the line and column.
pub fn load(path: &Path) -> anyhow::Result<Vec<SeedKey>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read seed file {}", path.display()))?;
    let keys: Vec<SeedKey> = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}:{}:{}: not a JSON array of seed keys: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    for (i, key) in keys.iter().enumerate() {
        key.validate().map_err(|msg| {
            anyhow::anyhow!("{}: key #{} ({:?}): {msg}", path.display(), i + 1, key.name)
        })?;
    }
    Ok(keys)
}

impl SeedKey {
    /// Checks what JSON types cannot: a name, a usable hash, amounts ≥ 0.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("`name` must not be empty".into());
        }
        if self
            .hash
            .as_deref()
            .is_some_and(|h| h.is_empty() || h.contains('/'))
        {
            return Err("`hash` must be non-empty and contain no '/'".into());
        }
        let amounts = [
            ("limit", self.limit.unwrap_or(0.0)),
            ("usage", self.usage.unwrap_or(0.0)),
            ("usage_daily", self.usage_daily),
            ("usage_weekly", self.usage_weekly),
            ("usage_monthly", self.usage_monthly),
            ("byok_usage", self.byok_usage.unwrap_or(0.0)),
            ("byok_usage_daily", self.byok_usage_daily),
            ("byok_usage_weekly", self.byok_usage_weekly),
            ("byok_usage_monthly", self.byok_usage_monthly),
        ];
        match amounts.iter().find(|(_, v)| !v.is_finite() || *v < 0.0) {
            Some((field, v)) => Err(format!("`{field}` must be a number >= 0, not {v}")),
            None => Ok(()),
        }
    }

    /// The hash this key gets: the given one, else SHA-256 of the name.
    pub fn hash(&self) -> String {
        self.hash.clone().unwrap_or_else(|| sha256_hex(&self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_deterministic_and_varied() {
        let keys = generated(14);
        let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(
            &names[..7],
            [
                "team-a-01",
                "team-b-01",
                "team-c-01",
                "support-01",
                "ci-01",
                "research-01",
                "team-a-02"
            ]
        );
        assert_eq!(keys[13].name, "team-b-03");
        assert_eq!(keys[0].hash(), generated(1)[0].hash());
        assert_eq!(keys[0].hash().len(), 64);
        assert!(
            keys.iter().any(|k| k.limit.is_none()) && keys.iter().any(|k| k.limit_reset.is_none())
        );
        assert!(keys.iter().all(|k| !k.disabled));
    }

    #[test]
    fn seed_file_errors_name_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed.json");
        std::fs::write(&path, "[{\"name\": \"a\",\n \"limt\": 5}]").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("seed.json:2:"), "{err}");
        std::fs::write(&path, r#"[{"name": "a", "limit": -1}]"#).unwrap();
        assert!(
            load(&path)
                .unwrap_err()
                .to_string()
                .contains("`limit` must be a number >= 0")
        );
        std::fs::write(
            &path,
            r#"[{"name": "a", "usage_daily": 2, "limit_reset": "weekly"}]"#,
        )
        .unwrap();
        assert_eq!(load(&path).unwrap()[0].usage_daily, 2.0);
    }
}
