//! Evaluating one rule's `when` against the observed keys: for each key it
//! selects, whether the conditions hold, do not hold, or cannot be told in
//! this run — with the figures that decided it, for the change's reason.

use super::plan::{BudgetReading, Skip};
use crate::openrouter::model::{Credits, Key};
use crate::rules::calendar;
use crate::rules::model::{Amount, Budget, Conditions, Rule, Scope, Window};
use crate::rules::selector::CompiledSelector;
use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;

/// Three-valued truth of a rule for one key.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Every condition holds; the text says why (with figures).
    Holds(String),
    /// Some condition does not hold; the text says which.
    DoesNotHold(String),
    /// A condition could not be evaluated (unknown counter, unavailable source).
    Unknown(String),
}

/// The value of every budget amount this run, by [`crate::rules::model::Source::id`]:
/// `None` when the source is unavailable (the rule is then not evaluated).
pub type Amounts = HashMap<String, Option<f64>>;

/// A rule made ready for evaluation: selector compiled, timezone resolved.
#[derive(Debug, Clone)]
pub struct CompiledRule<'a> {
    /// The rule.
    pub rule: &'a Rule,
    /// Its selector.
    pub selector: CompiledSelector,
    /// Its timezone (the rule's, else the default).
    pub tz: Tz,
}

impl<'a> CompiledRule<'a> {
    /// Compiles `rule`; `default_tz` stands in when the rule names none.
    /// Rules are validated when parsed, so this fails only on a corrupt database.
    pub fn new(rule: &'a Rule, default_tz: Tz) -> anyhow::Result<CompiledRule<'a>> {
        let tz = match &rule.timezone {
            Some(name) => name
                .parse::<Tz>()
                .map_err(|e| anyhow::anyhow!("rule {:?}: timezone {name:?}: {e}", rule.name))?,
            None => default_tz,
        };
        let selector = CompiledSelector::new(&rule.keys);
        Ok(CompiledRule { rule, selector, tz })
    }
}

/// What evaluating one rule produced.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    /// Verdict per selected key, by index into the keys slice.
    pub verdicts: Vec<(usize, Verdict)>,
    /// Conditions not evaluated, and why.
    pub skips: Vec<Skip>,
    /// Budget figures seen.
    pub budgets: Vec<BudgetReading>,
}

/// Evaluates `rule` over `keys` at `now`.
pub fn evaluate(
    rule: &CompiledRule<'_>,
    keys: &[Key],
    amounts: &Amounts,
    credits: Option<&Credits>,
    now: DateTime<Utc>,
) -> Evaluation {
    let selected: Vec<usize> = keys
        .iter()
        .enumerate()
        .filter(|(_, k)| rule.selector.matches(k))
        .map(|(i, _)| i)
        .collect();
    let when = &rule.rule.when;
    let mut out = Evaluation::default();
    // Conditions that are the same for every key, in the spec's order.
    let mut common: Vec<Verdict> = calendar_verdicts(when, rule.tz, now);
    if let Some(amount) = &when.credits_below {
        common.push(credits_verdict(amount, amounts, credits));
    }
    let budget = when.budget.as_ref().map(|b| {
        budget_verdicts(
            rule.rule.name.as_str(),
            b,
            &selected,
            keys,
            amounts,
            &mut out,
        )
    });
    for (n, &i) in selected.iter().enumerate() {
        let mut verdicts = common.clone();
        if let Some(per_key) = &budget {
            verdicts.push(per_key[n].clone());
        }
        let verdict = combine(verdicts);
        if let Verdict::Unknown(why) = &verdict {
            out.skips.push(Skip {
                rule: rule.rule.name.clone(),
                key_hash: Some(keys[i].hash.clone()),
                reason: why.clone(),
            });
        }
        out.verdicts.push((i, verdict));
    }
    out
}

/// All conditions must hold: any false → false; else any unknown → unknown.
fn combine(verdicts: Vec<Verdict>) -> Verdict {
    if let Some(v) = verdicts
        .iter()
        .find(|v| matches!(v, Verdict::DoesNotHold(_)))
    {
        return v.clone();
    }
    if let Some(v) = verdicts.iter().find(|v| matches!(v, Verdict::Unknown(_))) {
        return v.clone();
    }
    let reasons: Vec<String> = verdicts
        .into_iter()
        .filter_map(|v| match v {
            Verdict::Holds(r) => Some(r),
            _ => None,
        })
        .collect();
    if reasons.is_empty() {
        Verdict::Holds("always".into())
    } else {
        Verdict::Holds(reasons.join("; "))
    }
}

fn truth(holds: bool, yes: String, no: String) -> Verdict {
    if holds {
        Verdict::Holds(yes)
    } else {
        Verdict::DoesNotHold(no)
    }
}

/// The calendar conditions (`season`, `between`, `weekdays`, `hours`), in the rule's timezone.
fn calendar_verdicts(when: &Conditions, tz: Tz, now: DateTime<Utc>) -> Vec<Verdict> {
    let local = now.with_timezone(&tz).naive_local();
    let mut out = Vec::new();
    if let Some(s) = &when.season {
        let range = format!(
            "season {:02}-{:02}..{:02}-{:02} ({tz})",
            s.from.0, s.from.1, s.to.0, s.to.1
        );
        out.push(truth(
            calendar::season_holds(s, local.date()),
            format!("{range}: {} is in it", local.date()),
            format!("{range}: {} is outside it", local.date()),
        ));
    }
    if let Some(b) = &when.between {
        let range = format!("between {} and {} ({tz})", b.start, b.end);
        out.push(truth(
            calendar::between_holds(b, local),
            format!("{range}: now {}", local.format("%Y-%m-%d %H:%M")),
            format!("{range}: now {} is outside", local.format("%Y-%m-%d %H:%M")),
        ));
    }
    if let Some(days) = &when.weekdays {
        let names: Vec<String> = days.iter().map(|d| d.to_string().to_lowercase()).collect();
        let today = local.date().format("%a").to_string().to_lowercase();
        out.push(truth(
            calendar::weekdays_holds(days, local.date().weekday()),
            format!("weekday {today} in [{}] ({tz})", names.join(", ")),
            format!("weekday {today} not in [{}] ({tz})", names.join(", ")),
        ));
    }
    if let Some(h) = &when.hours {
        let range = format!(
            "hours {}-{} ({tz})",
            h.start.format("%H:%M"),
            h.end.format("%H:%M")
        );
        out.push(truth(
            calendar::hours_holds(h, local.time()),
            format!("{range}: now {}", local.format("%H:%M")),
            format!("{range}: now {} is outside", local.format("%H:%M")),
        ));
    }
    out
}

/// The value of an amount, or `None` when its source is unavailable.
pub fn amount_value(amount: &Amount, amounts: &Amounts) -> Option<f64> {
    match amount {
        Amount::Fixed(v) => Some(*v),
        Amount::Source(s) => amounts.get(&s.id()).copied().flatten(),
    }
}

fn source_unavailable(amount: &Amount) -> String {
    match amount {
        Amount::Fixed(_) => "amount unavailable".into(),
        Amount::Source(s) => format!("budget source {} unavailable", s.id()),
    }
}

fn credits_verdict(amount: &Amount, amounts: &Amounts, credits: Option<&Credits>) -> Verdict {
    let Some(threshold) = amount_value(amount, amounts) else {
        return Verdict::Unknown(source_unavailable(amount));
    };
    let Some(credits) = credits else {
        return Verdict::Unknown("account credits unknown".into());
    };
    let remaining = credits.remaining();
    truth(
        remaining < threshold,
        format!("remaining credits {remaining:.2} USD < {threshold:.2} USD"),
        format!("remaining credits {remaining:.2} USD >= {threshold:.2} USD"),
    )
}

/// Spend of `key` in `window`, BYOK included when asked; `None` when a
/// counter it needs is unknown (never zero, never the lifetime usage).
pub fn spend(key: &Key, window: Window, include_byok: bool) -> Option<f64> {
    let (usage, byok) = match window {
        Window::Daily => (key.usage_daily, key.byok_usage_daily),
        Window::Weekly => (key.usage_weekly, key.byok_usage_weekly),
        Window::Monthly => (key.usage_monthly, key.byok_usage_monthly),
        Window::Total => (key.usage, key.byok_usage),
    };
    if include_byok {
        Some(usage? + byok?)
    } else {
        usage
    }
}

/// Tolerance for comparing USD amounts: a budget of 50.00 is reached by 50.00.
const EPSILON: f64 = 1e-9;

/// The budget verdict for each selected key (in `selected` order).
fn budget_verdicts(
    rule: &str,
    budget: &Budget,
    selected: &[usize],
    keys: &[Key],
    amounts: &Amounts,
    out: &mut Evaluation,
) -> Vec<Verdict> {
    let window = budget.window.as_str();
    let Some(usd) = amount_value(&budget.usd, amounts) else {
        let v = Verdict::Unknown(source_unavailable(&budget.usd));
        return vec![v; selected.len()];
    };
    let threshold = budget.at * usd;
    let threshold_text = if (budget.at - 1.0).abs() < EPSILON {
        format!("budget {usd:.2} USD")
    } else {
        format!(
            "{:.0}% of budget {usd:.2} USD ({threshold:.2} USD)",
            budget.at * 100.0
        )
    };
    let spends: Vec<Option<f64>> = selected
        .iter()
        .map(|&i| spend(&keys[i], budget.window, budget.include_byok))
        .collect();
    let judge = |spent: f64, what: &str| {
        truth(
            spent + EPSILON >= threshold,
            format!("{what} {window} spend {spent:.2} USD >= {threshold_text}"),
            format!("{what} {window} spend {spent:.2} USD < {threshold_text}"),
        )
    };
    match budget.scope {
        Scope::Each => selected
            .iter()
            .zip(&spends)
            .map(|(&i, s)| match s {
                Some(spent) => {
                    out.budgets.push(BudgetReading {
                        rule: rule.to_string(),
                        key_hash: Some(keys[i].hash.clone()),
                        window: window.to_string(),
                        spend_usd: *spent,
                        budget_usd: usd,
                    });
                    judge(*spent, "key")
                }
                None => Verdict::Unknown(format!(
                    "{window} usage of key {} unknown (null or missing in the API response)",
                    keys[i].name
                )),
            })
            .collect(),
        Scope::Group => {
            let unknown: Vec<&str> = selected
                .iter()
                .zip(&spends)
                .filter(|(_, s)| s.is_none())
                .map(|(&i, _)| keys[i].name.as_str())
                .collect();
            let verdict = if unknown.is_empty() {
                let total: f64 = spends.iter().flatten().sum();
                out.budgets.push(BudgetReading {
                    rule: rule.to_string(),
                    key_hash: None,
                    window: window.to_string(),
                    spend_usd: total,
                    budget_usd: usd,
                });
                judge(total, "group")
            } else {
                Verdict::Unknown(format!(
                    "group {window} spend unknown: usage of {} is null or missing",
                    unknown.join(", ")
                ))
            };
            vec![verdict; selected.len()]
        }
    }
}
