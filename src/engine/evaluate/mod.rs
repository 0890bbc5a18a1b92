//! Evaluating one rule's `when` against the observed keys: for each key it
//! selects, whether the conditions hold, do not hold, or cannot be told in
//! this run — with the figures that decided it, for the change's reason.
//! The `forecast` condition is in [`forecast`].

pub mod forecast;

use super::inputs::{Guardrails, Series};
use super::plan::{BudgetReading, Skip};
use crate::domain::Key;
use crate::domain::Window;
use crate::domain::{Credits, FieldValue};
use crate::rules::calendar;
use crate::rules::model::{Amount, Budget, Conditions, Rule, Scope};
use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use forecast::ForecastView;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::sync::Arc;

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

/// What a rule is evaluated against besides its keys: the run's budget
/// amounts, the account's credits, the usage series and the instant.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// Budget amounts read from sources this run.
    pub amounts: &'a Amounts,
    /// The account's credits, when a rule needs them and they could be read.
    pub credits: Option<&'a Credits>,
    /// The usage snapshots forecasts read.
    pub series: &'a Series,
    /// The instant the run evaluates at.
    pub now: DateTime<Utc>,
}

/// A rule made ready for evaluation: its timezone and its settings resolved.
#[derive(Debug, Clone)]
pub struct CompiledRule<'a> {
    /// The rule.
    pub rule: &'a Rule,
    /// Its name, shared by the plan's readings and conflicts.
    pub name: Arc<str>,
    /// Its timezone (the rule's, else the default).
    pub tz: Tz,
    /// Every field it sets with its value (its `guardrail` resolved), or
    /// why its `guardrail` does not resolve: the rule is then not evaluated.
    pub set: Result<Vec<FieldValue>, String>,
}

impl<'a> CompiledRule<'a> {
    /// Compiles `rule`; `default_tz` stands in when the rule names none, and
    /// its `guardrail` is resolved against `guardrails`. Rules are validated
    /// when parsed, so this fails only on a corrupt database.
    pub fn new(
        rule: &'a Rule,
        default_tz: Tz,
        guardrails: &Guardrails,
    ) -> anyhow::Result<CompiledRule<'a>> {
        let tz = match &rule.timezone {
            Some(name) => name
                .parse::<Tz>()
                .map_err(|e| anyhow::anyhow!("rule {:?}: timezone {name:?}: {e}", rule.name))?,
            None => default_tz,
        };
        let set = match &rule.set.guardrail {
            None => Ok(rule.set.fields()),
            Some(_) => guardrails
                .listed()
                .and_then(|all| rule.set.resolve(all))
                .map_err(|why| format!("set.guardrail: {why}")),
        };
        Ok(CompiledRule {
            rule,
            name: Arc::from(rule.name.as_str()),
            tz,
            set,
        })
    }
}

/// The keys' hashes as shared strings, each made once, when first needed:
/// a plan's readings and conflicts name the same keys many times.
#[derive(Debug)]
pub struct SharedHashes<'k> {
    keys: &'k [Key],
    shared: Vec<OnceCell<Arc<str>>>,
}

impl<'k> SharedHashes<'k> {
    /// The hashes of `keys`, none made yet.
    pub fn new(keys: &'k [Key]) -> SharedHashes<'k> {
        SharedHashes {
            keys,
            shared: vec![OnceCell::new(); keys.len()],
        }
    }

    /// The hash of `keys[i]`.
    pub fn get(&self, i: usize) -> Arc<str> {
        Arc::clone(self.shared[i].get_or_init(|| Arc::from(self.keys[i].hash.as_str())))
    }
}

/// The truth of a rule for one key, without its explanation (see
/// [`Evaluation::explain`]: the text is built only for keys that change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    /// Every condition holds.
    Holds,
    /// Some condition does not hold.
    DoesNotHold,
    /// A condition could not be evaluated.
    Unknown,
}

/// What evaluating one rule produced.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    /// Truth per selected key, in the order of the selected positions
    /// (`verdicts[j]` is the truth for `keys[selected[j]]`).
    pub verdicts: Vec<Truth>,
    /// The truth for every selected key when it is the same for all of
    /// them (found once; `verdicts` holds it for each key as well).
    pub same: Option<Truth>,
    /// Conditions not evaluated, and why.
    pub skips: Vec<Skip>,
    /// The combined verdict of the conditions that are the same for every
    /// key; `None` when there are none.
    common: Option<Verdict>,
    /// The budget condition, when the rule has one.
    budget: Option<BudgetView>,
    /// The forecast condition, when the rule has one.
    forecast: Option<ForecastView>,
    /// Every per-key condition is scope `group`: the verdict, the same for
    /// every key, once explained.
    group_verdict: OnceCell<Verdict>,
}

impl Evaluation {
    /// The verdict for `keys[i]` with the figures that decided it.
    pub fn explain(&self, keys: &[Key], i: usize) -> Verdict {
        if self.budget.is_none() && self.forecast.is_none() {
            return self
                .common
                .clone()
                .unwrap_or_else(|| Verdict::Holds("always".into()));
        }
        let per_key = || {
            let budget = self.budget.as_ref().map(|b| b.verdict(&keys[i]));
            let forecast = self.forecast.as_ref().map(|f| f.verdict(keys, i));
            let spend = match (budget, forecast) {
                (Some(b), Some(f)) => both(Some(&b), f),
                (Some(v), None) | (None, Some(v)) => v,
                (None, None) => unreachable!("checked above"),
            };
            both(self.common.as_ref(), spend)
        };
        let group = self.budget.as_ref().is_none_or(|b| b.group.is_some())
            && self.forecast.as_ref().is_none_or(ForecastView::is_group);
        if group {
            self.group_verdict.get_or_init(per_key).clone()
        } else {
            per_key()
        }
    }
}

/// [`combine`] of the common conditions (already combined) and the budget's.
fn both(common: Option<&Verdict>, budget: Verdict) -> Verdict {
    let Some(common) = common else { return budget };
    match (common, budget) {
        (Verdict::DoesNotHold(_), _) => common.clone(),
        (_, b @ Verdict::DoesNotHold(_)) => b,
        (Verdict::Unknown(_), _) => common.clone(),
        (_, b @ Verdict::Unknown(_)) => b,
        (Verdict::Holds(c), Verdict::Holds(b)) => Verdict::Holds(format!("{c}; {b}")),
    }
}

fn truth_of(v: &Verdict) -> Truth {
    match v {
        Verdict::Holds(_) => Truth::Holds,
        Verdict::DoesNotHold(_) => Truth::DoesNotHold,
        Verdict::Unknown(_) => Truth::Unknown,
    }
}

/// Evaluates `rule` over the keys at positions `selected` of `keys`,
/// against what was `observed`; the budget figures it sees are added to
/// `readings`, naming the keys by `hashes` (of the same `keys`).
pub fn evaluate(
    rule: &CompiledRule<'_>,
    selected: &[usize],
    keys: &[Key],
    hashes: &SharedHashes<'_>,
    observed: &Observed<'_>,
    readings: &mut Vec<BudgetReading>,
) -> Evaluation {
    let Observed {
        amounts,
        credits,
        series,
        now,
    } = *observed;
    let when = &rule.rule.when;
    let name = rule.rule.name.as_str();
    // Conditions that are the same for every key, in the spec's order.
    let mut common: Vec<Verdict> = calendar_verdicts(when, rule.tz, now);
    if let Some(amount) = &when.credits_below {
        common.push(credits_verdict(amount, amounts, credits));
    }
    let common = (!common.is_empty()).then(|| combine(common));
    let common_truth = common.as_ref().map_or(Truth::Holds, truth_of);
    let budget = when.budget.as_ref().map(|b| {
        BudgetView::new(
            b,
            amounts,
            selected,
            keys,
            rule.rule.warn_at.iter().copied(),
        )
    });
    let forecast = when
        .forecast
        .as_ref()
        .map(|f| ForecastView::new(f, amounts, selected, keys, series, now));
    let mut out = Evaluation {
        common,
        verdicts: Vec::with_capacity(selected.len()),
        forecast,
        ..Evaluation::default()
    };
    if let Some(view) = &budget {
        view.group_reading(&rule.name, readings);
    }
    out.budget = budget;
    let per_key = out.budget.as_ref().is_some_and(|b| b.group.is_none())
        || out.forecast.as_ref().is_some_and(|f| !f.is_group());
    // A key's truth, its budget reading kept on the way (the spend is
    // read once for both).
    let mut truth_of_key = |i: usize| {
        let mut truth = common_truth;
        if let Some(view) = &out.budget {
            let spent = view.spent(&keys[i]);
            truth = both_truths(truth, view.judge(spent));
            readings.extend(view.key_reading(&rule.name, i, spent, hashes));
        }
        if let Some(view) = out
            .forecast
            .as_ref()
            .filter(|_| truth != Truth::DoesNotHold)
        {
            truth = both_truths(truth, view.truth(keys, i));
        }
        truth
    };
    let each = out
        .budget
        .as_ref()
        .filter(|_| out.forecast.is_none())
        .and_then(BudgetView::each);
    out.verdicts = match (selected.first(), each) {
        // The same for every key: found once.
        (Some(&first), _) if !per_key => {
            let truth = truth_of_key(first);
            out.same = Some(truth);
            vec![truth; selected.len()]
        }
        // A budget of scope `each` alone: the common case, judged in a
        // tight loop.
        (_, Some(each)) => each.judge(&rule.name, common_truth, selected, keys, hashes, readings),
        _ => selected.iter().map(|&i| truth_of_key(i)).collect(),
    };
    // A truth known for every key at once leaves no key unknown to look for.
    let unknowns = match out.same {
        Some(Truth::Holds | Truth::DoesNotHold) => &[][..],
        _ => selected,
    };
    for (&i, _) in unknowns
        .iter()
        .zip(&out.verdicts)
        .filter(|(_, t)| **t == Truth::Unknown)
    {
        let reason = match out.explain(keys, i) {
            Verdict::Unknown(r) => r,
            other => format!("{other:?}"),
        };
        out.skips.push(Skip {
            rule: name.to_string(),
            key_hash: Some(keys[i].hash.clone()),
            reason,
        });
    }
    out
}

/// Both must hold: either false → false; else either unknown → unknown.
fn both_truths(a: Truth, b: Truth) -> Truth {
    match (a, b) {
        (Truth::DoesNotHold, _) | (_, Truth::DoesNotHold) => Truth::DoesNotHold,
        (Truth::Unknown, _) | (_, Truth::Unknown) => Truth::Unknown,
        _ => Truth::Holds,
    }
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
pub const EPSILON: f64 = 1e-9;

/// A rule's budget condition, prepared once per run: the amount, the
/// threshold and (scope `group`) the group's spend.
#[derive(Debug, Clone)]
struct BudgetView {
    window: Window,
    include_byok: bool,
    /// The budget, or why it is unknown.
    usd: Result<f64, String>,
    threshold: f64,
    threshold_text: String,
    /// Scope `group`: the sum over the selected keys, or the keys whose counter is unknown.
    group: Option<Result<f64, Vec<String>>>,
    /// Per-key readings are kept from this spend up (the lowest warning).
    reading_floor: f64,
}

impl BudgetView {
    fn new(
        budget: &Budget,
        amounts: &Amounts,
        selected: &[usize],
        keys: &[Key],
        warn_at: impl Iterator<Item = f64>,
    ) -> BudgetView {
        let usd = amount_value(&budget.usd, amounts).ok_or_else(|| source_unavailable(&budget.usd));
        let usd_value = *usd.as_ref().unwrap_or(&0.0);
        let threshold = budget.at * usd_value;
        let threshold_text = if (budget.at - 1.0).abs() < EPSILON {
            format!("budget {usd_value:.2} USD")
        } else {
            format!(
                "{:.0}% of budget {usd_value:.2} USD ({threshold:.2} USD)",
                budget.at * 100.0
            )
        };
        let group = (budget.scope == Scope::Group).then(|| {
            let mut total = 0.0;
            let mut unknown = Vec::new();
            for &i in selected {
                match spend(&keys[i], budget.window, budget.include_byok) {
                    Some(s) => total += s,
                    None => unknown.push(keys[i].name.clone()),
                }
            }
            if unknown.is_empty() {
                Ok(total)
            } else {
                Err(unknown)
            }
        });
        let lowest = warn_at.fold(budget.at, f64::min);
        BudgetView {
            window: budget.window,
            include_byok: budget.include_byok,
            usd,
            threshold,
            threshold_text,
            group,
            reading_floor: lowest * usd_value,
        }
    }

    /// The spend this key is judged on: its own, or its group's.
    fn spent(&self, key: &Key) -> Option<f64> {
        match &self.group {
            Some(g) => g.as_ref().ok().copied(),
            None => spend(key, self.window, self.include_byok),
        }
    }

    /// The truth of the budget for a key whose judged spend is `spent`.
    fn judge(&self, spent: Option<f64>) -> Truth {
        if self.usd.is_err() {
            return Truth::Unknown;
        }
        match spent {
            Some(s) if s + EPSILON >= self.threshold => Truth::Holds,
            Some(_) => Truth::DoesNotHold,
            None => Truth::Unknown,
        }
    }

    fn verdict(&self, key: &Key) -> Verdict {
        let window = self.window.as_str();
        if let Err(why) = &self.usd {
            return Verdict::Unknown(why.clone());
        }
        let what = if self.group.is_some() { "group" } else { "key" };
        match (self.spent(key), &self.group) {
            (Some(spent), _) => truth(
                spent + EPSILON >= self.threshold,
                format!(
                    "{what} {window} spend {spent:.2} USD >= {}",
                    self.threshold_text
                ),
                format!(
                    "{what} {window} spend {spent:.2} USD < {}",
                    self.threshold_text
                ),
            ),
            (None, Some(Err(unknown))) => Verdict::Unknown(format!(
                "group {window} spend unknown: usage of {} is null or missing",
                unknown.join(", ")
            )),
            (None, _) => Verdict::Unknown(format!(
                "{window} usage of key {} unknown (null or missing in the API response)",
                key.name
            )),
        }
    }

    /// The budget of scope `each` whose amount is known, ready to judge
    /// keys in a tight loop; `None` for scope `group` or an unknown amount.
    fn each(&self) -> Option<EachBudget<'_>> {
        match (&self.usd, &self.group) {
            (Ok(usd), None) => Some(EachBudget {
                view: self,
                usd: *usd,
            }),
            _ => None,
        }
    }

    /// The group's spend, worth keeping (scope `group`, when known).
    fn group_reading(&self, rule: &Arc<str>, out: &mut Vec<BudgetReading>) {
        if let (Ok(usd), Some(Ok(total))) = (&self.usd, &self.group) {
            out.push(self.reading(rule, None, *total, *usd));
        }
    }

    /// The spend of key `i` (scope `each`), `spent`, worth keeping once it
    /// reaches the lowest warning fraction (the rest is noise at the scale
    /// of thousands of keys).
    fn key_reading(
        &self,
        rule: &Arc<str>,
        i: usize,
        spent: Option<f64>,
        hashes: &SharedHashes<'_>,
    ) -> Option<BudgetReading> {
        let (Ok(usd), None) = (&self.usd, &self.group) else {
            return None;
        };
        let spent = spent.filter(|s| s + EPSILON >= self.reading_floor)?;
        Some(self.reading(rule, Some(hashes.get(i)), spent, *usd))
    }

    fn reading(
        &self,
        rule: &Arc<str>,
        key_hash: Option<Arc<str>>,
        spend_usd: f64,
        budget_usd: f64,
    ) -> BudgetReading {
        BudgetReading {
            rule: Arc::clone(rule),
            key_hash,
            window: self.window,
            spend_usd,
            budget_usd,
        }
    }
}

/// A budget of scope `each` whose amount is known: what [`BudgetView::judge`]
/// and [`BudgetView::key_reading`] decide for every key, with the scope and
/// the amount checked once instead of per key.
#[derive(Debug, Clone, Copy)]
struct EachBudget<'v> {
    view: &'v BudgetView,
    /// The budget, USD.
    usd: f64,
}

impl EachBudget<'_> {
    /// The truth of the rule (after the `common` conditions) for each key
    /// of `selected`, from one read of its spend; the spends at or over the
    /// lowest warning are added to `readings`.
    fn judge(
        self,
        rule: &Arc<str>,
        common: Truth,
        selected: &[usize],
        keys: &[Key],
        hashes: &SharedHashes<'_>,
        readings: &mut Vec<BudgetReading>,
    ) -> Vec<Truth> {
        let view = self.view;
        let [holds, short, unknown] =
            [Truth::Holds, Truth::DoesNotHold, Truth::Unknown].map(|t| both_truths(common, t));
        selected
            .iter()
            .map(|&i| {
                let Some(spent) = spend(&keys[i], view.window, view.include_byok) else {
                    return unknown;
                };
                if spent + EPSILON >= view.reading_floor {
                    readings.push(view.reading(rule, Some(hashes.get(i)), spent, self.usd));
                }
                if spent + EPSILON >= view.threshold {
                    holds
                } else {
                    short
                }
            })
            .collect()
    }
}
