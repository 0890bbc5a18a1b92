//! The schema of `when.forecast` (SPEC §11): the budget terms of
//! `when.budget`, and `lookback` and `within` durations.

use super::walk::{Node, Parser};
use crate::domain::Window;
use crate::rules::model::{DEFAULT_LOOKBACK_SECS, Forecast};

/// The fields of `when.forecast`.
const FORECAST_FIELDS: [&str; 7] = [
    "usd",
    "window",
    "scope",
    "lookback",
    "within",
    "at",
    "include_byok",
];

/// The longest a window can be, in seconds, and its name for messages:
/// `within` longer than that can never matter.
fn longest(window: Window) -> Option<(u64, &'static str)> {
    const DAY: u64 = 24 * 3600;
    match window {
        Window::Daily => Some((DAY, "a day")),
        Window::Weekly => Some((7 * DAY, "7 days")),
        Window::Monthly => Some((31 * DAY, "31 days")),
        Window::Total => None,
    }
}

impl Parser<'_> {
    /// `when.forecast`: budget terms, a lookback and an optional horizon.
    pub(super) fn forecast(&mut self, n: Node) -> Option<Forecast> {
        let t = self.table(n, "when.forecast", &FORECAST_FIELDS)?;
        let errors_before = self.diags.len();
        let budget = self.budget_terms(&t);
        let lookback = self.duration(&t, "lookback");
        let within = self.duration(&t, "within");
        if self.diags.len() > errors_before {
            return None;
        }
        let (budget, lookback, within) = (budget?, lookback.ok()?, within.ok()?);
        if let Some((0, node)) = lookback {
            self.bad(
                node,
                &t.field("lookback"),
                "a lookback of zero has no readings to draw a rate from: give one such as \"6h\""
                    .into(),
            );
            return None;
        }
        match (longest(budget.window), within) {
            (None, None) => {
                self.missing(
                    &t,
                    "within",
                    "how soon the crossing must come (within = \"24h\"): a total budget has no end",
                );
                return None;
            }
            (Some((max, name)), Some((secs, node))) if secs > max => {
                self.bad(
                    node,
                    &t.field("within"),
                    format!(
                        "longer than a {} window can be ({name}): the window ends first",
                        budget.window
                    ),
                );
                return None;
            }
            _ => {}
        }
        Some(Forecast {
            budget,
            lookback_secs: lookback.map_or(DEFAULT_LOOKBACK_SECS, |(s, _)| s),
            within_secs: within.map(|(s, _)| s),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::model::{Amount, Scope};
    use crate::rules::parse::parse_rules;

    fn rule(forecast: &str) -> String {
        format!(
            "[[rule]]\nname = \"f\"\nkeys = \"all\"\nwhen.forecast = {forecast}\nset.limit = 1.0\n"
        )
    }

    #[test]
    fn defaults_are_six_hours_each_no_within_and_the_whole_budget() {
        let file = parse_rules(
            "r.toml",
            &rule("{ usd = { env = \"B\" }, window = \"monthly\" }"),
        )
        .unwrap();
        let f = file.rules[0].when.forecast.clone().unwrap();
        assert!(matches!(f.budget.usd, Amount::Source(_)));
        assert_eq!(
            (f.budget.scope, f.budget.at, f.budget.include_byok),
            (Scope::Each, 1.0, false)
        );
        assert_eq!((f.lookback_secs, f.within_secs), (6 * 3600, None));
    }

    #[test]
    fn broken_forecasts_name_the_field() {
        for (forecast, expected) in [
            (
                "{ usd = 5.0, window = \"daily\", lookback = \"soon\" }",
                "when.forecast.lookback: \"soon\" is not a duration",
            ),
            (
                "{ usd = 5.0, window = \"daily\", lookback = \"0s\" }",
                "when.forecast.lookback: a lookback of zero",
            ),
            (
                "{ usd = 5.0, window = \"total\" }",
                "when.forecast.within: missing field",
            ),
            (
                "{ usd = 5.0, window = \"weekly\", within = \"8d\" }",
                "when.forecast.within: longer than a weekly window can be (7 days)",
            ),
            (
                "{ usd = 5.0, window = \"daily\", scope = \"team\" }",
                "when.forecast.scope: unknown scope",
            ),
        ] {
            let errs = parse_rules("r.toml", &rule(forecast)).expect_err(forecast);
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert!(errs[0].to_string().contains(expected), "{}", errs[0]);
        }
    }

    #[test]
    fn warn_before_takes_horizons_on_budget_and_forecast_rules() {
        let text = rule("{ usd = 5.0, window = \"daily\" }").replace(
            "keys = \"all\"\n",
            "keys = \"all\"\nwarn_before = [\"3d\", \"12h\"]\n",
        );
        let r = parse_rules("r.toml", &text).unwrap().rules.remove(0);
        assert_eq!(r.warn_before_secs, vec![3 * 24 * 3600, 12 * 3600]);
        for (warn_before, when, expected) in [
            (
                "[\"3 days\", \"soon\"]",
                "when.budget = { usd = 5.0, window = \"daily\" }",
                "r.toml:4:26: error: rule \"f\": warn_before[1]: \"soon\" is not a duration",
            ),
            (
                "[]",
                "when.budget = { usd = 5.0, window = \"daily\" }",
                "r.toml:4:15: error: rule \"f\": warn_before: an empty list warns of nothing",
            ),
            (
                "[\"0s\"]",
                "when.budget = { usd = 5.0, window = \"daily\" }",
                "warn_before[0]: \"0s\" is no horizon",
            ),
            (
                "[\"12h\"]",
                "when.weekdays = [\"sat\"]",
                "warn_before: needs a budget or forecast condition",
            ),
            (
                "\"12h\"",
                "when.budget = { usd = 5.0, window = \"daily\" }",
                "warn_before: expected an array of durations",
            ),
        ] {
            let text = format!(
                "[[rule]]\nname = \"f\"\nkeys = \"all\"\nwarn_before = {warn_before}\n{when}\nset.limit = 1.0\n"
            );
            let errs = parse_rules("r.toml", &text).expect_err(warn_before);
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert!(errs[0].to_string().contains(expected), "{}", errs[0]);
        }
    }
}
