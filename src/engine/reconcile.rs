//! The pure core: from rules, observed keys, claims, exemptions, budget
//! values and `now`, the [`Plan`] of a run (SPEC §4.1–4.3, 4.6).
//!
//! Level-triggered: the plan says what every key's settings should be and
//! holds only the differences, so planning twice against the result of the
//! first plan gives an empty plan.

use super::evaluate::{Amounts, CompiledRule, Evaluation, Truth, Verdict, evaluate};
use super::inputs::{Claim, Exemption};
use super::plan::{Change, ChangeKind, Conflict, FieldChange, Outcome, Plan};
use crate::openrouter::model::{Credits, Field, FieldValue, Key};
use crate::rules::model::Rule;
use crate::rules::selector::SelectorIndex;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The blast-radius guard's limits (SPEC §4.6).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guard {
    /// Most keys changed in one run.
    pub max_changes_per_run: usize,
    /// Most of the watched keys disabled in one run.
    pub max_disable_fraction: f64,
    /// `apply --force`: apply anyway, once.
    pub force: bool,
}

/// Everything the core needs, gathered by the shell.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The enabled rules.
    pub rules: &'a [Rule],
    /// The rules whose conditions are evaluated now; `None` = all. A rule
    /// not due keeps its standing result (`standing`) from its last evaluation.
    pub due: Option<&'a BTreeSet<String>>,
    /// For each rule, the keys for which its `when` held at its last evaluation.
    pub standing: &'a HashMap<String, BTreeSet<String>>,
    /// Every watched key, as listed now.
    pub keys: &'a [Key],
    /// keywarden's claims.
    pub claims: &'a [Claim],
    /// Exemptions (expired ones are ignored).
    pub exemptions: &'a [Exemption],
    /// Budget amounts read from sources this run.
    pub amounts: &'a Amounts,
    /// The account's credits, when a rule needs them and they could be read.
    pub credits: Option<&'a Credits>,
    /// The instant the run evaluates at.
    pub now: DateTime<Utc>,
    /// `[daemon].timezone`, for rules that name none.
    pub default_tz: Tz,
    /// The blast-radius guard.
    pub guard: Guard,
}

/// The plan, and the holding set of each rule evaluated (to be stored as its standing result).
#[derive(Debug, Clone, Default)]
pub struct Outcomes {
    /// The plan.
    pub plan: Plan,
    /// For each rule evaluated (due), the keys for which its `when` held.
    pub holding: BTreeMap<String, BTreeSet<String>>,
    /// Whether the guard held changes back.
    pub guard_tripped: bool,
}

/// One rule's assertion of one field on one key.
struct Assertion<'a> {
    rule: &'a Rule,
    value: FieldValue,
    rule_index: usize,
}

/// Computes the plan of a run.
pub fn plan(inputs: &Inputs<'_>) -> anyhow::Result<Outcomes> {
    let mut out = Outcomes::default();
    let compiled: Vec<CompiledRule<'_>> = inputs
        .rules
        .iter()
        .filter(|r| r.enabled)
        .map(|r| CompiledRule::new(r, inputs.default_tz))
        .collect::<anyhow::Result<_>>()?;

    // 1–2. Each rule's truth per selected key (keys selected for every rule in one pass).
    let selected = SelectorIndex::new(compiled.iter().map(|r| &r.rule.keys)).select(inputs.keys);
    let mut verdicts: Vec<Vec<(usize, bool)>> = Vec::with_capacity(compiled.len());
    let mut evaluations: Vec<Option<Evaluation>> = Vec::with_capacity(compiled.len());
    let mut frozen: BTreeSet<(usize, Field)> = BTreeSet::new();
    for (rule, selected) in compiled.iter().zip(&selected) {
        let name = &rule.rule.name;
        let standing = inputs.standing.get(name);
        let is_due = inputs.due.is_none_or(|d| d.contains(name)) || standing.is_none();
        let held_before = |i: usize| standing.is_some_and(|s| s.contains(&inputs.keys[i].hash));
        if !is_due {
            verdicts.push(selected.iter().map(|&i| (i, held_before(i))).collect());
            evaluations.push(None);
            continue;
        }
        let mut eval = evaluate(
            rule,
            selected,
            inputs.keys,
            inputs.amounts,
            inputs.credits,
            inputs.now,
        );
        let mut holding = BTreeSet::new();
        let mut per_key = Vec::with_capacity(eval.verdicts.len());
        for &(i, truth) in &eval.verdicts {
            let holds = match truth {
                Truth::Holds => true,
                Truth::DoesNotHold => false,
                Truth::Unknown => {
                    // Not evaluated: the rule neither asserts nor releases
                    // anything on this key in this run.
                    for (field, _) in rule.rule.set.fields() {
                        frozen.insert((i, field));
                    }
                    held_before(i)
                }
            };
            if holds {
                holding.insert(inputs.keys[i].hash.clone());
            }
            per_key.push((i, holds));
        }
        out.plan.skips.append(&mut eval.skips);
        out.plan.budgets.append(&mut eval.budgets);
        out.holding.insert(name.clone(), holding);
        verdicts.push(per_key);
        evaluations.push(Some(eval));
    }
    let by_name: HashMap<&str, usize> = compiled
        .iter()
        .enumerate()
        .map(|(n, r)| (r.rule.name.as_str(), n))
        .collect();
    // Why rule `n` holds or not for key `i`: built only for the changes.
    let explain = |n: usize, i: usize| -> String {
        match &evaluations[n] {
            Some(eval) => match eval.explain(inputs.keys, i) {
                Verdict::Holds(r) | Verdict::DoesNotHold(r) | Verdict::Unknown(r) => r,
            },
            None => "as at the rule's last evaluation".into(),
        }
    };

    // 3. The wanted value of each field of each key: highest priority, then name.
    let mut wanted: Vec<BTreeMap<Field, Vec<Assertion<'_>>>> =
        (0..inputs.keys.len()).map(|_| BTreeMap::new()).collect();
    for (n, (rule, per_key)) in compiled.iter().zip(&verdicts).enumerate() {
        for &(i, holds) in per_key {
            if !holds {
                continue;
            }
            for (field, value) in rule.rule.set.fields() {
                wanted[i].entry(field).or_default().push(Assertion {
                    rule: rule.rule,
                    value,
                    rule_index: n,
                });
            }
        }
    }

    let claims: HashMap<(&str, Field), &Claim> = inputs
        .claims
        .iter()
        .map(|c| ((c.key_hash.as_str(), c.field), c))
        .collect();
    let exempt = |hash: &str, rule: &str| -> Option<&Exemption> {
        inputs
            .exemptions
            .iter()
            .find(|e| e.covers(hash, rule, inputs.now))
    };

    // 4. The differences, one change row per key × rule × kind.
    let mut rows: BTreeMap<(String, String, String, ChangeKind), Change> = BTreeMap::new();
    let mut exemptions_held: BTreeSet<i64> = BTreeSet::new();
    for (i, key) in inputs.keys.iter().enumerate() {
        for field in Field::ALL {
            if frozen.contains(&(i, field)) {
                continue;
            }
            let current = key.get(field);
            let claim = claims.get(&(key.hash.as_str(), field)).copied();
            let step = match wanted[i].get_mut(&field) {
                Some(assertions) => {
                    assertions.sort_by(|a, b| {
                        b.rule
                            .priority
                            .cmp(&a.rule.priority)
                            .then(a.rule.name.cmp(&b.rule.name))
                    });
                    let winner = &assertions[0];
                    for other in &assertions[1..] {
                        if other.rule.priority == winner.rule.priority
                            && other.value != winner.value
                        {
                            out.plan.conflicts.push(Conflict {
                                key_hash: key.hash.clone(),
                                field,
                                winner: winner.rule.name.clone(),
                                loser: other.rule.name.clone(),
                            });
                        }
                    }
                    if current == winner.value {
                        continue;
                    }
                    let reasserting = claim.is_some_and(|c| c.value == winner.value);
                    let (kind, reason) = if reasserting {
                        (
                            ChangeKind::Reassert,
                            format!(
                                "{}; {field} was changed to {current} outside keywarden, asserted again",
                                explain(winner.rule_index, i)
                            ),
                        )
                    } else {
                        (ChangeKind::Assert, explain(winner.rule_index, i))
                    };
                    (winner.rule.name.clone(), kind, winner.value, reason)
                }
                None => {
                    let Some(claim) = claim else { continue };
                    let not_holding = by_name.get(claim.rule.as_str()).copied().filter(|&n| {
                        let per_key = &verdicts[n];
                        per_key
                            .binary_search_by_key(&i, |&(k, _)| k)
                            .is_ok_and(|at| !per_key[at].1)
                    });
                    let why = not_holding
                        .map(|n| format!("rule {} no longer applies: {}", claim.rule, explain(n, i)))
                        .unwrap_or_else(|| {
                            format!(
                                "rule {} no longer asserts it (the rule was disabled, removed or changed)",
                                claim.rule
                            )
                        });
                    if current == claim.value {
                        (
                            claim.rule.clone(),
                            ChangeKind::Release,
                            claim.original,
                            why.clone(),
                        )
                    } else {
                        let reason = format!(
                            "{why}; {field} is {current}, not the {} keywarden set: left alone",
                            claim.value
                        );
                        (claim.rule.clone(), ChangeKind::Drift, current, reason)
                    }
                }
            };
            let (rule, kind, to, reason) = step;
            let from = if kind == ChangeKind::Drift {
                claim.map_or(current, |c| c.value)
            } else {
                current
            };
            let held = match exempt(&key.hash, &rule) {
                Some(e) if e.held_at.is_some() || exemptions_held.contains(&e.id) => {
                    // Recorded once already: hold it back silently.
                    continue;
                }
                Some(e) => {
                    exemptions_held.insert(e.id);
                    Some(Outcome::Skipped)
                }
                None => None,
            };
            let row = rows
                .entry((key.name.clone(), key.hash.clone(), rule.clone(), kind))
                .or_insert_with(|| Change {
                    key_hash: key.hash.clone(),
                    key_name: key.name.clone(),
                    rule,
                    kind,
                    fields: BTreeMap::new(),
                    reason: String::new(),
                    held,
                });
            row.fields.insert(field, FieldChange { from, to });
            if row.reason.is_empty() {
                row.reason = reason;
            } else if !row.reason.contains(&reason) {
                row.reason = format!("{}; {reason}", row.reason);
            }
        }
    }

    // Claims on keys that no longer exist.
    let present: BTreeSet<&str> = inputs.keys.iter().map(|k| k.hash.as_str()).collect();
    for claim in inputs
        .claims
        .iter()
        .filter(|c| !present.contains(c.key_hash.as_str()))
    {
        let row = rows
            .entry((
                String::new(),
                claim.key_hash.clone(),
                claim.rule.clone(),
                ChangeKind::Deleted,
            ))
            .or_insert_with(|| Change {
                key_hash: claim.key_hash.clone(),
                key_name: String::new(),
                rule: claim.rule.clone(),
                kind: ChangeKind::Deleted,
                fields: BTreeMap::new(),
                reason: "the key no longer exists: its claims are dropped".into(),
                held: None,
            });
        row.fields.insert(
            claim.field,
            FieldChange {
                from: claim.value,
                to: claim.original,
            },
        );
    }

    out.plan.changes = rows.into_values().collect();
    out.guard_tripped = apply_guard(&mut out.plan, inputs.keys.len(), inputs.guard);
    Ok(out)
}

/// Holds back every change to be sent when the run would change too many
/// keys or disable too large a share of them. Returns whether it tripped.
fn apply_guard(plan: &mut Plan, watched: usize, guard: Guard) -> bool {
    if guard.force {
        return false;
    }
    let sending = |c: &&mut Change| c.held.is_none() && c.sends_patch();
    let keys: BTreeSet<&str> = plan
        .changes
        .iter()
        .filter(|c| c.held.is_none() && c.sends_patch())
        .map(|c| c.key_hash.as_str())
        .collect();
    let disabling: BTreeSet<&str> = plan
        .changes
        .iter()
        .filter(|c| c.held.is_none() && c.disables())
        .map(|c| c.key_hash.as_str())
        .collect();
    let too_many = keys.len() > guard.max_changes_per_run;
    let too_disabling =
        watched > 0 && disabling.len() as f64 / watched as f64 > guard.max_disable_fraction;
    if !(too_many || too_disabling) {
        return false;
    }
    let why = if too_many {
        format!(
            "held by the blast-radius guard: {} keys would change, more than max_changes_per_run = {}",
            keys.len(),
            guard.max_changes_per_run
        )
    } else {
        format!(
            "held by the blast-radius guard: {} of {watched} keys would be disabled, more than max_disable_fraction = {}",
            disabling.len(),
            guard.max_disable_fraction
        )
    };
    for change in plan.changes.iter_mut().filter(|c| sending(c)) {
        change.held = Some(Outcome::Held);
        change.reason = format!("{}; {why}", change.reason);
    }
    true
}
