//! The `rule_state` table: the keys for which each rule's `when` held at its
//! last evaluation, so that the standing assertions of rules that are not
//! due in a run still count.

use super::backend::on_pool;
use super::{Store, parse_ts, ts};
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};

impl Store {
    /// For each rule evaluated before: when, and the key hashes for which its
    /// `when` held.
    pub async fn rule_states(
        &self,
    ) -> anyhow::Result<HashMap<String, (DateTime<Utc>, BTreeSet<String>)>> {
        let rows: Vec<(String, String, String)> = on_pool!(self, |db| {
            sqlx::query_as("SELECT rule, evaluated_at, holding FROM rule_state")
                .fetch_all(db)
                .await?
        });
        rows.into_iter()
            .map(|(rule, at, holding)| {
                let keys = serde_json::from_str(&holding)
                    .with_context(|| format!("bad rule_state of rule {rule:?}"))?;
                Ok((rule, (parse_ts(&at)?, keys)))
            })
            .collect()
    }

    /// Records that `rule` was evaluated at `at` and its `when` held for `holding`.
    pub async fn save_rule_state(
        &self,
        rule: &str,
        at: DateTime<Utc>,
        holding: impl IntoIterator<Item = &str>,
    ) -> anyhow::Result<()> {
        let holding: Vec<&str> = holding.into_iter().collect();
        let holding = serde_json::to_string(&holding)?;
        on_pool!(self, |db| {
            sqlx::query(
                "INSERT INTO rule_state (rule, evaluated_at, holding) VALUES ($1, $2, $3)
                 ON CONFLICT (rule) DO UPDATE SET evaluated_at = excluded.evaluated_at,
                                                  holding = excluded.holding",
            )
            .bind(rule)
            .bind(ts(at))
            .bind(&holding)
            .execute(db)
            .await?;
        });
        Ok(())
    }
}
