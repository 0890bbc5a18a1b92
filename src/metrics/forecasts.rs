//! The forecast gauges of `/metrics` (SPEC §11): the burn rate, the
//! projected window-end spend and the crossing time of every budget and
//! forecast rule, by group or key, as of the last run that evaluated it.
//!
//! A figure that is unknown has no series (not 0): a rate unknown for lack
//! of history, a projection of a `total` budget, a crossing that does not
//! come before the window ends. Labels: `rule`, `group` (`(group)` for a
//! scope `group` rule, the key's name for scope `each`), `window`, and
//! `key_hash` (empty for a group), which matches the labels of
//! `keywarden_budget_usd`.

use super::GaugeF;
use crate::engine::forecast::Status;
use crate::engine::outlook::ForecastRow;
use crate::rules::model::Scope;
use crate::run::RunOutlook;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// The `group` label of a scope `group` row.
const GROUP: &str = "(group)";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ForecastLabels {
    rule: String,
    group: String,
    window: String,
    key_hash: String,
}

impl ForecastLabels {
    fn of(row: &ForecastRow) -> ForecastLabels {
        ForecastLabels {
            rule: row.rule.clone(),
            group: match row.scope {
                Scope::Group => GROUP.into(),
                Scope::Each => row.key_name.clone().unwrap_or_default(),
            },
            window: row.window.to_string(),
            key_hash: row.key_hash.clone().unwrap_or_default(),
        }
    }
}

/// The three gauges and the rows they are drawn from, by rule.
#[derive(Default)]
pub(super) struct ForecastGauges {
    rows: Mutex<BTreeMap<String, Vec<ForecastRow>>>,
    burn_rate: Family<ForecastLabels, GaugeF>,
    projected: Family<ForecastLabels, GaugeF>,
    crossing: Family<ForecastLabels, GaugeF>,
}

impl ForecastGauges {
    /// Registers the gauges in `registry` (prefixed `keywarden_`).
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "budget_burn_rate_usd_per_hour",
            "Burn rate of each budget or forecast rule's group or key (USD/h); absent while unknown",
            self.burn_rate.clone(),
        );
        registry.register(
            "budget_projected_usd",
            "Spend at the window's end at the burn rate (USD); absent while unknown and for total budgets",
            self.projected.clone(),
        );
        registry.register(
            "budget_crossing_timestamp_seconds",
            "When spend reaches the budget at the burn rate (Unix time); absent when it does not before the window ends",
            self.crossing.clone(),
        );
    }

    /// Replaces the rows of the rules a run evaluated.
    pub(super) fn observe(&self, outlook: &RunOutlook) {
        let mut rows = self.rows.lock().expect("metrics lock");
        for rule in &outlook.rules {
            rows.remove(rule);
        }
        for row in &outlook.rows {
            rows.entry(row.rule.clone()).or_default().push(row.clone());
        }
    }

    /// Sets the gauges from the rows, only the known figures; the guard
    /// keeps them as they are until the caller has encoded them.
    pub(super) fn refresh(&self) -> MutexGuard<'_, BTreeMap<String, Vec<ForecastRow>>> {
        let rows = self.rows.lock().expect("metrics lock");
        for family in [&self.burn_rate, &self.projected, &self.crossing] {
            family.clear();
        }
        for row in rows.values().flatten() {
            let labels = ForecastLabels::of(row);
            if let Some(rate) = row.rate_usd_per_hour {
                self.burn_rate.get_or_create(&labels).set(rate);
            }
            if let Some(projected) = row.projected_usd {
                self.projected.get_or_create(&labels).set(projected);
            }
            // A crossing after the window's end does not come: the window resets first.
            if let (Some(at), Status::WillCross | Status::Crossed) = (row.crossing_at, row.status) {
                let secs = at.timestamp_millis() as f64 / 1000.0;
                self.crossing.get_or_create(&labels).set(secs);
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::metrics::{Exposition, Metrics};
    use chrono::{DateTime, Utc};
    use std::sync::Arc;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn row(rule: &str, key: Option<&str>, rate: Option<f64>, spend: f64) -> ForecastRow {
        ForecastRow::example(rule, key, rate, spend)
    }

    /// The samples of the exposition: (metric, group label) -> value.
    fn samples(m: &Metrics) -> BTreeMap<(String, String), f64> {
        let text = m.encode();
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
        scrape
            .samples
            .into_iter()
            .filter(|s| s.metric.starts_with("keywarden_budget_"))
            .map(|s| {
                let value = match s.value {
                    prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                    other => panic!("{}: {other:?}", s.metric),
                };
                let group = s.labels.get("group").unwrap_or_default().to_string();
                ((s.metric, group), value)
            })
            .collect()
    }

    fn key(metric: &str, group: &str) -> (String, String) {
        (metric.into(), group.into())
    }

    #[test]
    fn known_figures_are_exported_and_unknown_ones_are_absent() {
        let m = Metrics::new(
            Arc::new(FixedClock(utc("2026-12-16T16:00:00Z"))),
            Exposition::Served,
        );
        m.observe_outlook(&RunOutlook {
            rules: ["team-a".into(), "ci".into()].into(),
            rows: vec![
                // 31.30 USD at 1.10 USD/h: 50 USD 17 h later, before the month ends.
                row("team-a", None, Some(1.1), 31.3),
                // Spending nothing: no crossing.
                row("ci", Some("ci-01"), Some(0.0), 10.0),
                // Too little history: nothing but the budget gauges elsewhere.
                row("ci", Some("ci-02"), None, 10.0),
            ],
        });
        let crossing = utc("2026-12-17T09:00:00Z").timestamp() as f64;
        let expected: BTreeMap<(String, String), f64> = [
            (key("keywarden_budget_burn_rate_usd_per_hour", GROUP), 1.1),
            (
                key("keywarden_budget_projected_usd", GROUP),
                31.3 + 1.1 * 368.0,
            ),
            (
                key("keywarden_budget_crossing_timestamp_seconds", GROUP),
                crossing,
            ),
            (key("keywarden_budget_burn_rate_usd_per_hour", "ci-01"), 0.0),
            (key("keywarden_budget_projected_usd", "ci-01"), 10.0),
        ]
        .into();
        let got = samples(&m);
        assert_eq!(got.len(), expected.len(), "{got:?}");
        for (k, v) in &expected {
            assert!((got[k] - v).abs() < 1e-6, "{k:?}: {} != {v}", got[k]);
        }

        // A later run of `ci` alone: its key now crosses; `team-a` stays.
        m.observe_outlook(&RunOutlook {
            rules: ["ci".into()].into(),
            rows: vec![row("ci", Some("ci-01"), Some(2.0), 48.0)],
        });
        let got = samples(&m);
        assert!(got.contains_key(&key("keywarden_budget_crossing_timestamp_seconds", "ci-01")));
        assert!(got.contains_key(&key("keywarden_budget_crossing_timestamp_seconds", GROUP)));
        // A rule that selects nothing any more has no series left.
        m.observe_outlook(&RunOutlook {
            rules: ["team-a".into(), "ci".into()].into(),
            rows: vec![],
        });
        assert_eq!(samples(&m), BTreeMap::new());
    }

    #[test]
    fn a_crossing_after_the_window_ends_is_absent() {
        let m = Metrics::new(
            Arc::new(FixedClock(utc("2026-12-16T16:00:00Z"))),
            Exposition::Served,
        );
        // 0.01 USD/h: 50 USD in five months, long after this one ends.
        let slow = row("team-a", None, Some(0.01), 31.3);
        assert!(slow.crossing_at.is_some(), "{slow:?}");
        m.observe_outlook(&RunOutlook {
            rules: ["team-a".into()].into(),
            rows: vec![slow],
        });
        let got = samples(&m);
        assert!(
            got.contains_key(&key("keywarden_budget_projected_usd", GROUP)),
            "{got:?}"
        );
        assert!(
            !got.contains_key(&key("keywarden_budget_crossing_timestamp_seconds", GROUP)),
            "{got:?}"
        );
    }
}
