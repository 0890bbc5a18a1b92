//! Phase 1: each rule's truth for each key it selects. A rule not due keeps
//! its standing result; a key whose condition could not be evaluated keeps
//! it too, and the fields the rule sets on it are frozen for this run.

use super::Inputs;
use crate::domain::Field;
use crate::engine::evaluate::{
    CompiledRule, Evaluation, Observed, SharedHashes, Truth, Verdict, evaluate,
};
use crate::engine::plan::{BudgetReading, Skip};
use crate::rules::selector::SelectorIndex;
use std::collections::{BTreeMap, BTreeSet};

/// Whether a rule's `when` holds for one key, in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct KeyVerdict {
    /// The key's position in [`Inputs::keys`].
    pub(super) key: usize,
    /// Whether the rule holds for it.
    pub(super) holds: bool,
}

/// The verdicts of every rule, and what their evaluation noted.
pub(super) struct Verdicts {
    /// Per rule (in the order of the compiled rules), a verdict for each
    /// key it selects, in key order.
    pub(super) per_rule: Vec<Vec<KeyVerdict>>,
    /// Per rule, its evaluation in this run; `None` when it was not due.
    evaluations: Vec<Option<Evaluation>>,
    /// The fields of keys whose condition could not be evaluated.
    pub(super) frozen: BTreeSet<(usize, Field)>,
    /// For each rule evaluated, the keys for which it holds.
    pub(super) holding: BTreeMap<String, Vec<usize>>,
    /// Conditions not evaluated, and why.
    pub(super) skips: Vec<Skip>,
    /// Budget readings.
    pub(super) budgets: Vec<BudgetReading>,
}

impl Verdicts {
    /// Evaluates the due rules on the keys they select (keys are selected
    /// for every rule in one pass).
    pub(super) fn new(
        rules: &[CompiledRule<'_>],
        inputs: &Inputs<'_>,
        hashes: &SharedHashes<'_>,
    ) -> Verdicts {
        let selected = SelectorIndex::new(rules.iter().map(|r| &r.rule.keys))
            .select(inputs.keys, inputs.workspaces);
        let mut out = Verdicts {
            per_rule: Vec::with_capacity(rules.len()),
            evaluations: Vec::with_capacity(rules.len()),
            frozen: BTreeSet::new(),
            holding: BTreeMap::new(),
            skips: Vec::new(),
            budgets: Vec::new(),
        };
        let observed = Observed {
            amounts: inputs.amounts,
            credits: inputs.credits,
            series: inputs.series,
            now: inputs.now,
        };
        for (rule, selected) in rules.iter().zip(&selected) {
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
                out.per_rule.push(
                    selected
                        .iter()
                        .map(|&key| KeyVerdict {
                            key,
                            holds: held_before(key),
                        })
                        .collect(),
                );
                out.evaluations.push(None);
                continue;
            }
            let mut eval = evaluate(rule, selected, inputs.keys, hashes, &observed);
            let mut holding = Vec::new();
            let mut per_key = Vec::with_capacity(eval.verdicts.len());
            for &(key, truth) in &eval.verdicts {
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
                    holding.push(key);
                }
                per_key.push(KeyVerdict { key, holds });
            }
            out.skips.append(&mut eval.skips);
            out.budgets.append(&mut eval.budgets);
            out.holding.insert(name.clone(), holding);
            out.per_rule.push(per_key);
            out.evaluations.push(Some(eval));
        }
        out
    }

    /// Whether rule `n` was found not to hold for key `i` (it selects the
    /// key and its `when` does not hold).
    pub(super) fn does_not_hold(&self, n: usize, i: usize) -> bool {
        let per_key = &self.per_rule[n];
        per_key
            .binary_search_by_key(&i, |v| v.key)
            .is_ok_and(|at| !per_key[at].holds)
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
