//! Phase 1: each rule's truth for each key it selects. A rule not due keeps
//! its standing result; a key whose condition could not be evaluated keeps
//! it too, and the fields the rule sets on it are frozen for this run.

use super::Inputs;
use crate::domain::Field;
use crate::engine::evaluate::{
    CompiledRule, Evaluation, Observed, SharedHashes, Truth, Verdict, evaluate,
};
use crate::engine::plan::{BudgetReading, Skip};
use std::collections::{BTreeMap, BTreeSet};

/// The verdicts of every rule, and what their evaluation noted.
pub(super) struct Verdicts {
    /// Per rule (in the order of the compiled rules), the keys it selects
    /// for which it holds (its `when` held, or, not evaluated, held at its
    /// last evaluation), as positions in [`Inputs::keys`], ascending.
    pub(super) holders: Vec<Vec<usize>>,
    /// Per rule, the keys it selects for which it does not hold, ascending.
    others: Vec<Vec<usize>>,
    /// Per rule, its evaluation in this run; `None` when it was not due.
    evaluations: Vec<Option<Evaluation>>,
    /// The fields of keys whose condition could not be evaluated.
    pub(super) frozen: BTreeSet<(usize, Field)>,
    /// Conditions not evaluated, and why.
    pub(super) skips: Vec<Skip>,
    /// Budget readings.
    pub(super) budgets: Vec<BudgetReading>,
}

impl Verdicts {
    /// Evaluates the due rules on the keys they select (`selected`, per
    /// rule); room is made for `readings` budget readings.
    pub(super) fn new(
        rules: &[CompiledRule<'_>],
        selected: &[Vec<usize>],
        inputs: &Inputs<'_>,
        hashes: &SharedHashes<'_>,
        readings: usize,
    ) -> Verdicts {
        let mut out = Verdicts {
            holders: Vec::with_capacity(rules.len()),
            evaluations: Vec::with_capacity(rules.len()),
            frozen: BTreeSet::new(),
            skips: Vec::new(),
            budgets: Vec::with_capacity(readings),
            others: Vec::with_capacity(rules.len()),
        };
        let observed = Observed {
            amounts: inputs.amounts,
            credits: inputs.credits,
            series: inputs.series,
            now: inputs.now,
        };
        for (rule, selected) in rules.iter().zip(selected) {
            let name = &rule.rule.name;
            let standing = inputs.standing.get(name);
            let is_due = inputs.due.is_none_or(|d| d.contains(name)) || standing.is_none();
            let held_before = |i: usize| standing.is_some_and(|s| s.contains(&inputs.keys[i].hash));
            if let Err(why) = &rule.set {
                // Its settings do not resolve: the rule is not evaluated, and
                // neither asserts nor releases anything on the keys it selects.
                for &key in selected {
                    for field in rule.rule.set.asserted() {
                        out.frozen.insert((key, field));
                    }
                }
                out.skips.push(Skip {
                    rule: name.clone(),
                    key_hash: None,
                    reason: why.clone(),
                });
            }
            if !is_due || rule.set.is_err() {
                let (holders, others) = selected.iter().partition(|&&i| held_before(i));
                out.holders.push(holders);
                out.others.push(others);
                out.evaluations.push(None);
                continue;
            }
            let mut eval = evaluate(
                rule,
                selected,
                inputs.keys,
                hashes,
                &observed,
                &mut out.budgets,
            );
            let (holders, others) = if eval.same == Some(Truth::DoesNotHold) {
                (Vec::new(), selected.clone())
            } else if eval.same == Some(Truth::Holds)
                || eval.verdicts.iter().all(|&t| t == Truth::Holds)
            {
                (selected.clone(), Vec::new())
            } else {
                let mut holders = Vec::with_capacity(selected.len());
                let mut others = Vec::new();
                for (&key, &truth) in selected.iter().zip(&eval.verdicts) {
                    let holds = match truth {
                        Truth::Holds => true,
                        Truth::DoesNotHold => false,
                        Truth::Unknown => {
                            // Not evaluated: the rule neither asserts nor releases
                            // anything on this key in this run.
                            for field in rule.rule.set.asserted() {
                                out.frozen.insert((key, field));
                            }
                            held_before(key)
                        }
                    };
                    if holds {
                        holders.push(key);
                    } else {
                        others.push(key);
                    }
                }
                (holders, others)
            };
            out.skips.append(&mut eval.skips);
            out.holders.push(holders);
            out.others.push(others);
            out.evaluations.push(Some(eval));
        }
        out
    }

    /// Whether rule `n` was found not to hold for key `i` (it selects the
    /// key and its `when` does not hold).
    pub(super) fn does_not_hold(&self, n: usize, i: usize) -> bool {
        self.others[n].binary_search(&i).is_ok()
    }

    /// For each rule evaluated, the keys for which it holds (to be stored
    /// as its standing result); taken from the verdicts.
    pub(super) fn take_holding(
        &mut self,
        rules: &[CompiledRule<'_>],
    ) -> BTreeMap<String, Vec<usize>> {
        rules
            .iter()
            .zip(&mut self.holders)
            .zip(&self.evaluations)
            .filter(|(_, eval)| eval.is_some())
            .map(|((rule, holders), _)| (rule.rule.name.clone(), std::mem::take(holders)))
            .collect()
    }

    /// Why rule `n` holds or not for key `i`: built only for the changes.
    pub(super) fn explain(&self, inputs: &Inputs<'_>, n: usize, i: usize) -> String {
        match &self.evaluations[n] {
            Some(eval) => match eval.explain(inputs.keys, i) {
                Verdict::Holds(r) | Verdict::DoesNotHold(r) | Verdict::Unknown(r) => r,
            },
            None => "as at the rule's last evaluation".into(),
        }
    }
}
