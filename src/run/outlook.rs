//! The inputs of `keywarden forecast` (SPEC §11): gathered like a preview,
//! recording nothing, with the series of the longest lookback any rule's
//! forecast reads (a `budget` rule's is the default 6 hours). At a past
//! instant (`--at`) the keys' usage is their last snapshot before it; at a
//! future one, the figures are projected forward from the latest readings.

use super::{RunError, Runner};
use crate::engine::evaluate::Observed;
use crate::engine::outlook::{Outlook, outlook_ahead};
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
        let latest = self.clock.now();
        let at = at.unwrap_or(latest);
        // The figures are drawn at `now`: the instant asked for when it is
        // past, else the latest readings, projected forward to `at`.
        let now = at.min(latest);
        let mut g = self.gather(only, None, now).await?;
        if now < latest {
            self.store.rewind_usage(&mut g.keys, now).await?;
        }
        g.rules.retain(|r| only.is_none_or(|o| o.contains(&r.name)));
        let lookback = longest_lookback(&g.rules)
            .unwrap_or_default()
            .max(Duration::seconds(DEFAULT_LOOKBACK_SECS as i64));
        let series = self.store.usage_series(now - lookback, now).await?;
        Ok(outlook_ahead(
            &g.rules,
            &g.keys,
            &Observed {
                amounts: &g.amounts,
                credits: g.credits.as_ref(),
                series: &series,
                now,
            },
            at,
        ))
    }
}
