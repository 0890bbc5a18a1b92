//! Phase 3: the differences between the settings the rules want and those
//! the keys have — one change per key × rule × kind (assert, reassert,
//! release, drift), exemptions applied (SPEC §4.2, §4.3) — and the claims
//! on keys that no longer exist (`deleted`).

use super::Inputs;
use super::verdicts::Verdicts;
use super::wanted::Wanted;
use crate::domain::{Field, FieldValue, Guardrail, Key};
use crate::engine::evaluate::CompiledRule;
use crate::engine::inputs::Claim;
use crate::engine::plan::{Change, ChangeKind, FieldChange, Hold};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

/// What phase 3 compares.
pub(super) struct Differences<'a, 'r> {
    /// The inputs of the run.
    pub(super) inputs: &'a Inputs<'r>,
    /// The enabled rules.
    pub(super) rules: &'a [CompiledRule<'r>],
    /// Phase 1.
    pub(super) verdicts: &'a Verdicts,
    /// Phase 2.
    pub(super) wanted: &'a Wanted,
}

/// One field of one key to move: which rule, why, and to what.
struct Step<'a> {
    /// The rule responsible.
    rule: &'a str,
    /// Why the change exists.
    kind: ChangeKind,
    /// The value the field gets.
    to: FieldValue,
    /// A person's explanation.
    reason: String,
}

/// What the exemptions say about a change.
enum Exempted {
    /// No exemption covers it: it is sent.
    No,
    /// An exemption covering it has held a change back already (`skipped`
    /// is recorded once): the change is left out of the plan.
    AlreadyRecorded,
    /// Held back now, recorded `skipped`.
    Now(Hold),
}

/// The changes of one key: where they are in the plan's changes.
struct KeyChanges {
    /// The key's position in the keys.
    key: usize,
    /// Its changes.
    at: Range<usize>,
}

impl<'a, 'r> Differences<'a, 'r> {
    /// Every change of the run, by key name, then key hash, rule and kind.
    pub(super) fn changes(&self) -> Vec<Change> {
        let mut claims = ClaimsByKey::new(self.inputs.claims);
        let mut exemptions_held: BTreeSet<i64> = BTreeSet::new();
        let mut changes: Vec<Change> = Vec::new();
        let mut changed: Vec<KeyChanges> = Vec::new();
        let guardrails = self.inputs.guardrails.listed().ok();
        for (i, key) in self.inputs.keys.iter().enumerate() {
            let key_claims = claims.of(&key.hash);
            let first = changes.len();
            for field in Field::ALL {
                let current = key.get(field);
                let claim = key_claims.and_then(|c| c[field.index()]);
                // Nothing is concluded about a guardrail that was not read.
                let unknown = field == Field::Guardrail && guardrails.is_none();
                let step = match guardrails.and_then(|all| guardrail_gone(all, claim, current)) {
                    Some(step) => step,
                    None if unknown || self.verdicts.frozen.contains(&(i, field)) => continue,
                    None => match self.step(i, field, current, claim) {
                        Some(step) => step,
                        None => continue,
                    },
                };
                let held = match self.exempted(&key.hash, step.rule, &mut exemptions_held) {
                    Exempted::No => None,
                    Exempted::AlreadyRecorded => continue,
                    Exempted::Now(hold) => Some(hold),
                };
                let from = if step.kind == ChangeKind::Drift {
                    claim.map_or(current, |c| c.value)
                } else {
                    current
                };
                let step = self.naming_guardrails(step, from);
                add(&mut changes, first, key, held, field, from, step);
            }
            changes[first..].sort_unstable_by(|a, b| (&a.rule, a.kind).cmp(&(&b.rule, b.kind)));
            if changes.len() > first {
                changed.push(KeyChanges {
                    key: i,
                    at: first..changes.len(),
                });
            }
        }
        let mut changes = in_key_order(changes, changed, self.inputs.keys);
        add_deleted(&mut changes, claims.unseen());
        changes
    }

    /// What to do with `field` of key `i`, which has `current` and maybe a
    /// claim: assert or reassert the winning rule's value, release or leave
    /// a field no rule wants any more, or nothing.
    fn step(
        &self,
        i: usize,
        field: Field,
        current: FieldValue,
        claim: Option<&'a Claim>,
    ) -> Option<Step<'a>> {
        if let Some(winner) = self.wanted.winner(i, field) {
            if current == winner.value {
                return None;
            }
            let why = self.verdicts.explain(self.inputs, winner.rule, i);
            let reasserting = claim.is_some_and(|c| c.value == winner.value);
            let (kind, reason) = if reasserting {
                (
                    ChangeKind::Reassert,
                    format!(
                        "{why}; {field} was changed to {current} outside keywarden, asserted again"
                    ),
                )
            } else {
                (ChangeKind::Assert, why)
            };
            return Some(Step {
                rule: &self.rules[winner.rule].rule.name,
                kind,
                to: winner.value,
                reason,
            });
        }
        let claim = claim?;
        let why = self.no_longer_applies(claim, i);
        Some(if current == claim.value {
            Step {
                rule: &claim.rule,
                kind: ChangeKind::Release,
                to: claim.original,
                reason: why,
            }
        } else {
            Step {
                rule: &claim.rule,
                kind: ChangeKind::Drift,
                to: current,
                reason: format!(
                    "{why}; {field} is {current}, not the {} keywarden set: left alone",
                    claim.value
                ),
            }
        })
    }

    /// `step` with the guardrails it moves between named in its reason.
    fn naming_guardrails<'s>(&self, mut step: Step<'s>, from: FieldValue) -> Step<'s> {
        if from.field() == Field::Guardrail {
            let guardrails = self.inputs.guardrails;
            step.reason = format!(
                "{}; guardrail {} -> {}",
                step.reason,
                guardrails.describe(from),
                guardrails.describe(step.to)
            );
        }
        step
    }

    /// Why the rule holding `claim` on key `i` no longer asserts its field.
    fn no_longer_applies(&self, claim: &Claim, i: usize) -> String {
        let not_holding = self
            .rules
            .iter()
            .position(|r| r.rule.name == claim.rule)
            .filter(|&n| self.verdicts.does_not_hold(n, i));
        match not_holding {
            Some(n) => format!(
                "rule {} no longer applies: {}",
                claim.rule,
                self.verdicts.explain(self.inputs, n, i)
            ),
            None => format!(
                "rule {} no longer asserts it (the rule was disabled, removed or changed)",
                claim.rule
            ),
        }
    }

    /// Whether an exemption holds back a change of `rule` on the key `hash`;
    /// `exemptions_held` are those that held one back earlier in this run.
    fn exempted(&self, hash: &str, rule: &str, exemptions_held: &mut BTreeSet<i64>) -> Exempted {
        let covering: Vec<_> = self
            .inputs
            .exemptions
            .iter()
            .filter(|e| e.covers(hash, rule, self.inputs.now))
            .collect();
        match covering.first() {
            None => Exempted::No,
            Some(e) if e.held_at.is_some() || exemptions_held.contains(&e.id) => {
                Exempted::AlreadyRecorded
            }
            Some(e) => {
                exemptions_held.insert(e.id);
                Exempted::Now(Hold::Exemption {
                    first_held: covering
                        .iter()
                        .filter(|e| e.held_at.is_none())
                        .map(|e| e.id)
                        .collect(),
                })
            }
        }
    }
}

/// A `drift` for a claim on a guardrail that no longer exists among `all`
/// (deleted outside keywarden): the claim is dropped, and the guardrail
/// is not re-created nor the key given another.
fn guardrail_gone<'c>(
    all: &[Guardrail],
    claim: Option<&'c Claim>,
    current: FieldValue,
) -> Option<Step<'c>> {
    let claim = claim?;
    let FieldValue::Guardrail(Some(id)) = claim.value else {
        return None;
    };
    if all.iter().any(|g| g.id == id) {
        return None;
    }
    Some(Step {
        rule: &claim.rule,
        kind: ChangeKind::Drift,
        to: current,
        reason: format!(
            "guardrail {id}, which keywarden assigned for rule {}, no longer exists: the claim is dropped",
            claim.rule
        ),
    })
}

/// Adds one field's move to the change of its key, rule and kind among the
/// key's changes (those from `first` on), or to a new one.
fn add(
    changes: &mut Vec<Change>,
    first: usize,
    key: &Key,
    held: Option<Hold>,
    field: Field,
    from: FieldValue,
    step: Step<'_>,
) {
    let row = match changes[first..]
        .iter()
        .position(|c| c.rule == step.rule && c.kind == step.kind)
    {
        Some(at) => &mut changes[first + at],
        None => {
            changes.push(Change {
                key_hash: key.hash.clone(),
                key_name: key.name.clone(),
                rule: step.rule.to_string(),
                kind: step.kind,
                fields: BTreeMap::new(),
                reason: String::new(),
                held,
            });
            changes.last_mut().expect("just pushed")
        }
    };
    row.fields.insert(field, FieldChange { from, to: step.to });
    if row.reason.is_empty() {
        row.reason = step.reason;
    } else if !row.reason.contains(&step.reason) {
        row.reason = format!("{}; {}", row.reason, step.reason);
    }
}

/// Adds a `deleted` change per key and rule for the claims on keys that no
/// longer exist, keeping the changes by key name, then hash, rule and kind
/// (a vanished key has no name).
fn add_deleted<'a>(changes: &mut Vec<Change>, vanished: impl Iterator<Item = &'a Claim>) {
    let mut deleted: BTreeMap<(&str, &str), Change> = BTreeMap::new();
    for claim in vanished {
        let row = deleted
            .entry((claim.key_hash.as_str(), claim.rule.as_str()))
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
    if deleted.is_empty() {
        return;
    }
    changes.extend(deleted.into_values());
    changes.sort_by(|a, b| {
        (&a.key_name, &a.key_hash, &a.rule, a.kind).cmp(&(
            &b.key_name,
            &b.key_hash,
            &b.rule,
            b.kind,
        ))
    });
}

/// The claims of one key, by field.
type KeyClaims<'a> = [Option<&'a Claim>; Field::ALL.len()];

/// The claims of each key, remembering which keys were asked about.
struct ClaimsByKey<'a> {
    /// Key hash → position in `claims`.
    position: HashMap<&'a str, usize, foldhash::fast::RandomState>,
    claims: Vec<KeyClaims<'a>>,
    /// Whether the key at that position was asked about (is listed).
    seen: Vec<bool>,
}

impl<'a> ClaimsByKey<'a> {
    fn new(all: &'a [Claim]) -> Self {
        // At most one key per claim, and a key rarely has one claim only.
        let room = all.len() / 2;
        let mut position =
            HashMap::with_capacity_and_hasher(room, foldhash::fast::RandomState::default());
        let mut claims: Vec<KeyClaims<'a>> = Vec::with_capacity(room);
        // The store reads claims by key: a key's claims follow each other,
        // and its position is looked up once.
        let mut last: Option<(&str, usize)> = None;
        for c in all {
            let at = match last {
                Some((hash, at)) if hash == c.key_hash => at,
                _ => *position.entry(c.key_hash.as_str()).or_insert_with(|| {
                    claims.push([None; Field::ALL.len()]);
                    claims.len() - 1
                }),
            };
            last = Some((&c.key_hash, at));
            claims[at][c.field.index()] = Some(c);
        }
        let seen = vec![false; claims.len()];
        ClaimsByKey {
            position,
            claims,
            seen,
        }
    }

    /// The claims on the key `hash`, if any; the key is then seen.
    fn of(&mut self, hash: &str) -> Option<KeyClaims<'a>> {
        if self.claims.is_empty() {
            return None;
        }
        let at = *self.position.get(hash)?;
        self.seen[at] = true;
        Some(self.claims[at])
    }

    /// The claims on keys never asked about.
    fn unseen(&self) -> impl Iterator<Item = &'a Claim> + '_ {
        self.claims
            .iter()
            .zip(&self.seen)
            .filter(|(_, seen)| !**seen)
            .flat_map(|(claims, _)| claims.iter().flatten().copied())
    }
}

/// `changes` in key name then hash order, given the range of each key's
/// changes (already in rule then kind order).
fn in_key_order(changes: Vec<Change>, mut changed: Vec<KeyChanges>, keys: &[Key]) -> Vec<Change> {
    changed.sort_unstable_by(|a, b| {
        let (a, b) = (&keys[a.key], &keys[b.key]);
        a.name.cmp(&b.name).then_with(|| a.hash.cmp(&b.hash))
    });
    let mut slots: Vec<Option<Change>> = changes.into_iter().map(Some).collect();
    changed
        .into_iter()
        .flat_map(|k| k.at)
        .map(|at| slots[at].take().expect("each change is placed once"))
        .collect()
}
