//! Phase 2: the rule that wins each field of each key — the highest priority
//! of the rules holding for the key that set the field, ties to the name
//! first — and the equal-priority conflicts (SPEC §4.2).

use super::verdicts::KeyVerdict;
use crate::domain::{Field, FieldValue};
use crate::engine::evaluate::{CompiledRule, SharedHashes};
use crate::engine::plan::Conflict;
use std::collections::BTreeSet;
use std::sync::Arc;

/// A rule of the same priority as the winner of a field of a key that
/// wants another value.
#[derive(Debug, Clone, Copy)]
struct Loser {
    /// The key's position in the keys.
    key: usize,
    /// The field's position in [`Field::ALL`].
    field: usize,
    /// The loser's place in the rules sorted best first.
    place: usize,
    /// The winning rule's position in the rules.
    winner: usize,
    /// The losing rule's position in the rules.
    loser: usize,
}

impl Loser {
    /// One integer that sorts as (key, field, place): much faster to sort
    /// than a tuple.
    fn order(&self) -> u128 {
        ((self.key as u128) << 64) | ((self.field as u128) << 32) | self.place as u128
    }
}

/// The rule that wins each field of each key.
pub(super) struct Wanted {
    /// Each rule's `set`.
    sets: Vec<Vec<FieldValue>>,
    /// Per key and field, the winning rule's position (`NONE`: no rule sets it).
    winners: Vec<[u32; Field::ALL.len()]>,
    /// Equal-priority losers, by key, field and the loser's place.
    losers: Vec<Loser>,
}

/// The rule that wins a field of a key.
#[derive(Debug, Clone, Copy)]
pub(super) struct Winner {
    /// The rule's position in the rules.
    pub(super) rule: usize,
    /// The value it wants.
    pub(super) value: FieldValue,
}

/// No rule sets the field.
const NONE: u32 = u32::MAX;

impl Wanted {
    /// Goes through the rules best first, so the first rule to set a field
    /// of a key wins it; a later rule of the same priority setting another
    /// value is a loser (recorded as a conflict).
    pub(super) fn new(
        rules: &[CompiledRule<'_>],
        verdicts: &[Vec<KeyVerdict>],
        keys: usize,
    ) -> Wanted {
        let mut order: Vec<usize> = (0..rules.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (rules[a].rule, rules[b].rule);
            b.priority.cmp(&a.priority).then(a.name.cmp(&b.name))
        });
        // A rule whose settings do not resolve wins nothing: what it sets
        // is frozen on the keys it selects (phase 1).
        let sets: Vec<Vec<FieldValue>> = rules
            .iter()
            .map(|r| r.set.clone().unwrap_or_default())
            .collect();
        let mut winners = vec![[NONE; Field::ALL.len()]; keys];
        let mut losers = Vec::new();
        for (place, &n) in order.iter().enumerate() {
            for verdict in verdicts[n].iter().filter(|v| v.holds) {
                for &value in &sets[n] {
                    let field = value.field().index();
                    let slot = &mut winners[verdict.key][field];
                    if *slot == NONE {
                        *slot = n as u32;
                        continue;
                    }
                    let w = *slot as usize;
                    let same_priority = rules[w].rule.priority == rules[n].rule.priority;
                    if same_priority && value_of(&sets[w], value.field()) != Some(value) {
                        losers.push(Loser {
                            key: verdict.key,
                            field,
                            place,
                            winner: w,
                            loser: n,
                        });
                    }
                }
            }
        }
        losers.sort_unstable_by_key(Loser::order);
        Wanted {
            sets,
            winners,
            losers,
        }
    }

    /// The rule that wins `field` of key `i`, and the value it wants.
    pub(super) fn winner(&self, i: usize, field: Field) -> Option<Winner> {
        let n = self.winners[i][field.index()];
        if n == NONE {
            return None;
        }
        let rule = n as usize;
        value_of(&self.sets[rule], field).map(|value| Winner { rule, value })
    }

    /// The conflicts on fields not `frozen`, by key, field, then the
    /// loser's priority and name.
    pub(super) fn conflicts(
        &self,
        rules: &[CompiledRule<'_>],
        hashes: &SharedHashes<'_>,
        frozen: &BTreeSet<(usize, Field)>,
    ) -> Vec<Conflict> {
        self.losers
            .iter()
            .filter(|l| !frozen.contains(&(l.key, Field::ALL[l.field])))
            .map(|l| Conflict {
                key_hash: hashes.get(l.key),
                field: Field::ALL[l.field],
                winner: Arc::clone(&rules[l.winner].name),
                loser: Arc::clone(&rules[l.loser].name),
            })
            .collect()
    }
}

/// The value `set` gives `field`, if it sets it.
fn value_of(set: &[FieldValue], field: Field) -> Option<FieldValue> {
    set.iter().find(|v| v.field() == field).copied()
}
