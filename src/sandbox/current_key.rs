//! The body of `GET /key`: the key the request was authenticated with, with
//! the required fields of `openapi-keys.yaml` and the newer ones of `NOTES.md`.

use crate::domain::{Key, LimitReset};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// Free-model requests a key may make per day in the sandbox.
const FREE_MODEL_DAILY_REQUESTS: u32 = 50;

/// `GET /key` data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurrentKeyView {
    /// The key's label.
    pub label: String,
    /// Spending limit in USD, or `null`.
    pub limit: Option<f64>,
    /// Remaining limit in USD, or `null`.
    pub limit_remaining: Option<f64>,
    /// `daily`/`weekly`/`monthly` or `null`.
    pub limit_reset: Option<String>,
    /// Whether BYOK spend counts in the limit.
    pub include_byok_in_limit: bool,
    /// Lifetime credit usage.
    pub usage: f64,
    /// Credit usage this UTC day.
    pub usage_daily: f64,
    /// Credit usage this UTC week.
    pub usage_weekly: f64,
    /// Credit usage this UTC month.
    pub usage_monthly: f64,
    /// Lifetime BYOK usage.
    pub byok_usage: f64,
    /// BYOK usage this UTC day.
    pub byok_usage_daily: f64,
    /// BYOK usage this UTC week.
    pub byok_usage_weekly: f64,
    /// BYOK usage this UTC month.
    pub byok_usage_monthly: f64,
    /// Always `false` in the sandbox.
    pub is_free_tier: bool,
    /// Whether this is the management key.
    pub is_management_key: bool,
    /// Older name of `is_management_key`.
    pub is_provisioning_key: bool,
    /// Who created the key.
    pub creator_user_id: Option<String>,
    /// Expiry, or `null`.
    pub expires_at: Option<String>,
    /// Deprecated; always `-1` requests.
    pub rate_limit: RateLimitInfo,
    /// Data regions the key may use.
    pub allowed_data_regions: Vec<String>,
    /// Budget layers that apply to the key.
    pub budgets: Vec<BudgetLayer>,
    /// The layer that binds first, or `null`.
    pub effective_budget: Option<BudgetLayer>,
    /// The free-model request allowance of today.
    pub free_model_daily_requests: FreeModelRequests,
    /// Organization, or `null` for a personal account.
    pub organization_id: Option<String>,
    /// The key's workspace.
    pub workspace_id: Option<String>,
}

/// The deprecated `rate_limit` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateLimitInfo {
    /// Always -1.
    pub requests: i64,
    /// Interval text.
    pub interval: String,
    /// Why it is there.
    pub note: String,
}

/// One budget layer (`NOTES.md`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetLayer {
    /// Budget id, `null` for a key's own limit.
    pub budget_id: Option<String>,
    /// Guardrail id, `null` for a key's own limit.
    pub guardrail_id: Option<String>,
    /// Whether BYOK spend counts.
    pub include_byok: bool,
    /// The limit in USD.
    pub limit_usd: f64,
    /// What is left in USD (never below 0).
    pub remaining_usd: f64,
    /// `daily`/`weekly`/`monthly` or `null`.
    pub reset_interval: Option<String>,
    /// When the window ends, or `null`.
    pub resets_at: Option<String>,
    /// `key_limit` for a key's own limit.
    pub scope: String,
    /// Spend in the window in USD.
    pub spend_usd: f64,
}

/// `free_model_daily_requests`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FreeModelRequests {
    /// Allowed per day.
    pub limit: u32,
    /// Left today.
    pub remaining: u32,
    /// Used today.
    pub used: u32,
}

impl CurrentKeyView {
    /// The view of `key` (as listed) at `now`.
    pub fn new(key: &Key, is_management_key: bool, now: DateTime<Utc>) -> Self {
        let zero = |v: Option<f64>| v.unwrap_or(0.0);
        let reset = key.limit_reset.as_deref().and_then(LimitReset::parse);
        let budget = key.limit.map(|limit| {
            let (own, byok) = match reset {
                Some(LimitReset::Daily) => (key.usage_daily, key.byok_usage_daily),
                Some(LimitReset::Weekly) => (key.usage_weekly, key.byok_usage_weekly),
                Some(LimitReset::Monthly) => (key.usage_monthly, key.byok_usage_monthly),
                None => (key.usage, key.byok_usage),
            };
            let spend = zero(own)
                + if key.include_byok_in_limit {
                    zero(byok)
                } else {
                    0.0
                };
            BudgetLayer {
                budget_id: None,
                guardrail_id: None,
                include_byok: key.include_byok_in_limit,
                limit_usd: limit,
                remaining_usd: (limit - spend).max(0.0),
                reset_interval: key.limit_reset.clone(),
                resets_at: reset
                    .map(|r| r.next_reset(now).to_rfc3339_opts(SecondsFormat::Secs, true)),
                scope: "key_limit".into(),
                spend_usd: spend,
            }
        });
        CurrentKeyView {
            label: key.label.clone(),
            limit: key.limit,
            limit_remaining: key.limit_remaining,
            limit_reset: key.limit_reset.clone(),
            include_byok_in_limit: key.include_byok_in_limit,
            usage: zero(key.usage),
            usage_daily: zero(key.usage_daily),
            usage_weekly: zero(key.usage_weekly),
            usage_monthly: zero(key.usage_monthly),
            byok_usage: zero(key.byok_usage),
            byok_usage_daily: zero(key.byok_usage_daily),
            byok_usage_weekly: zero(key.byok_usage_weekly),
            byok_usage_monthly: zero(key.byok_usage_monthly),
            is_free_tier: false,
            is_management_key,
            is_provisioning_key: is_management_key,
            creator_user_id: key.creator_user_id.clone(),
            expires_at: key.expires_at.clone(),
            rate_limit: RateLimitInfo {
                requests: -1,
                interval: "10s".into(),
                note: "This field is deprecated and safe to ignore.".into(),
            },
            allowed_data_regions: vec![],
            budgets: budget.iter().cloned().collect(),
            effective_budget: budget,
            free_model_daily_requests: FreeModelRequests {
                limit: FREE_MODEL_DAILY_REQUESTS,
                remaining: FREE_MODEL_DAILY_REQUESTS,
                used: 0,
            },
            organization_id: None,
            workspace_id: key.workspace_id.clone(),
        }
    }
}
