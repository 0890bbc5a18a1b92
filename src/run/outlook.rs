//! The inputs of `keywarden forecast` (SPEC §11): gathered like a preview,
//! recording nothing, with the series of the longest lookback any rule's
//! forecast reads (a `budget` rule's is the default 6 hours). At a past
//! instant (`--at`) the keys' usage is their last snapshot before it.

use super::gather::Gathered;
use super::{RunError, Runner};
use crate::domain::Key;
use crate::engine::evaluate::Observed;
use crate::engine::outlook::{Outlook, outlook};
use crate::rules::model::{DEFAULT_LOOKBACK_SECS, longest_lookback};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeSet;

impl Runner {
    /// Where the spend of the `only` rules (`None`: every enabled rule)
    /// with a budget or forecast condition is heading at `at` (default now).
    pub async fn outlook(
        &self,
        only: Option<&BTreeSet<String>>,
        at: Option<DateTime<Utc>>,
    ) -> Result<Outlook, RunError> {
        let now = at.unwrap_or_else(|| self.clock.now());
        let mut g = self.gather(only, None, now).await?;
        if now < self.clock.now() {
            self.store.rewind_usage(&mut g.keys, now).await?;
        }
        g.rules.retain(|r| only.is_none_or(|o| o.contains(&r.name)));
        self.outlook_of(&g, now).await
    }

    /// What the dashboard shows of the account now (SPEC §13): the keys as
    /// listed and where each budget is heading, from one listing.
    pub async fn observe(&self) -> Result<Observation, RunError> {
        let now = self.clock.now();
        let g = self.gather(None, None, now).await?;
        let outlook = self.outlook_of(&g, now).await?;
        Ok(Observation {
            keys: g.keys,
            outlook,
        })
    }

    /// The outlook of the gathered rules and keys at `now`.
    async fn outlook_of(&self, g: &Gathered, now: DateTime<Utc>) -> Result<Outlook, RunError> {
        let lookback = longest_lookback(&g.rules)
            .unwrap_or_default()
            .max(Duration::seconds(DEFAULT_LOOKBACK_SECS as i64));
        let series = self.store.usage_series(now - lookback, now).await?;
        Ok(outlook(
            &g.rules,
            &g.keys,
            &Observed {
                amounts: &g.amounts,
                credits: g.credits.as_ref(),
                series: &series,
                now,
            },
        ))
    }
}

/// The account as the dashboard shows it: [`Runner::observe`].
#[derive(Debug, Clone)]
pub struct Observation {
    /// Every key, as listed.
    pub keys: Vec<Key>,
    /// Where each budget's spend is heading.
    pub outlook: Outlook,
}
