//! Phase 2: the rule that wins each field of each key — the highest priority
//! of the rules holding for the key that set the field, ties to the name
//! first — and the equal-priority conflicts (SPEC §4.2).

use super::selection::Selected;
use crate::domain::{Field, FieldValue};
use crate::engine::evaluate::{CompiledRule, SharedHashes};
use crate::engine::plan::Conflict;
use fixedbitset::FixedBitSet;
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
    /// The winning rule's position in the rules.
    winner: usize,
    /// The losing rule's position in the rules.
    loser: usize,
}

impl Loser {
    /// Where the loser's key and field come among all keys' fields.
    fn slot(&self) -> usize {
        self.key * Field::ALL.len() + self.field
    }
}

/// `losers` (found going through the rules best first) by key and field,
/// each field's losers kept best first: a counting sort over the keys' fields, no comparisons.
fn by_key_and_field(losers: Vec<Loser>, keys: usize) -> Vec<Loser> {
    let mut start = vec![0usize; keys * Field::ALL.len() + 1];
    for l in &losers {
        start[l.slot() + 1] += 1;
    }
    for s in 1..start.len() {
        start[s] += start[s - 1];
    }
    let mut sorted = losers.clone();
    for l in losers {
        let at = &mut start[l.slot()];
        sorted[*at] = l;
        *at += 1;
    }
    sorted
}

/// The rule that wins each field of each key.
pub(super) struct Wanted {
    /// Each rule's `set`, by field position in [`Field::ALL`].
    wants: Vec<Wants>,
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
    /// value is a loser (recorded as a conflict). Each rule's keys are a set
    /// of bits (its selected keys' when it holds for all of them), and each
    /// field's winners and conflicts are found a word of keys at a time.
    /// Room is made for `room` losers.
    pub(super) fn new(
        rules: &[CompiledRule<'_>],
        holders: &[Vec<usize>],
        selected: Selected<'_>,
        keys: usize,
        room: usize,
    ) -> Wanted {
        let mut order: Vec<usize> = (0..rules.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (rules[a].rule, rules[b].rule);
            b.priority.cmp(&a.priority).then(a.name.cmp(&b.name))
        });
        // A rule whose settings do not resolve wins nothing: what it sets
        // is frozen on the keys it selects (phase 1).
        let sets: Vec<Vec<(usize, FieldValue)>> = rules
            .iter()
            .map(|r| {
                let set = r.set.as_deref().unwrap_or_default();
                set.iter().map(|v| (v.field().index(), *v)).collect()
            })
            .collect();
        let wants: Vec<Wants> = sets
            .iter()
            .map(|set| {
                let mut wants = [None; Field::ALL.len()];
                set.iter()
                    .for_each(|&(field, value)| wants[field] = Some(value));
                wants
            })
            .collect();
        let priorities: Vec<i64> = rules.iter().map(|r| r.rule.priority).collect();
        let mut winners = vec![[NONE; Field::ALL.len()]; keys];
        let mut losers = Vec::with_capacity(room);
        // Per field, the keys whose field is won.
        let mut won: Vec<FixedBitSet> = vec![FixedBitSet::with_capacity(keys); Field::ALL.len()];
        // Per field, the keys won by a rule of the priority gone through, by value.
        let mut tier: Vec<Vec<(FieldValue, FixedBitSet)>> = vec![Vec::new(); Field::ALL.len()];
        let mut tier_priority = None;
        let mut holding = FixedBitSet::with_capacity(keys);
        let mut found = FixedBitSet::with_capacity(keys);
        for &n in &order {
            if tier_priority != Some(priorities[n]) {
                tier_priority = Some(priorities[n]);
                tier.iter_mut().for_each(Vec::clear);
            }
            // The holders are some of the rule's selected keys: all of them
            // when as many.
            if holders[n].len() == selected.lists[n].len() {
                holding.clone_from(&selected.sets[n]);
            } else {
                holding.clear();
                holders[n].iter().for_each(|&key| holding.insert(key));
            }
            for &(field, value) in &sets[n] {
                // A key whose field a rule of this priority gave another value
                // is a conflict, lost by this rule.
                for (_, given) in tier[field].iter().filter(|(v, _)| *v != value) {
                    found.clone_from(given);
                    found.intersect_with(&holding);
                    losers.extend(found.ones().map(|key| Loser {
                        key,
                        field,
                        winner: winners[key][field] as usize,
                        loser: n,
                    }));
                }
                // The keys whose field no rule won yet are this rule's.
                found.clone_from(&holding);
                found.difference_with(&won[field]);
                if found.is_clear() {
                    continue;
                }
                found.ones().for_each(|key| winners[key][field] = n as u32);
                won[field].union_with(&found);
                match tier[field].iter_mut().find(|(v, _)| *v == value) {
                    Some((_, given)) => given.union_with(&found),
                    None => tier[field].push((value, found.clone())),
                }
            }
        }
        Wanted {
            wants,
            winners,
            losers: by_key_and_field(losers, keys),
        }
    }

    /// The rule that wins `field` of key `i`, and the value it wants.
    pub(super) fn winner(&self, i: usize, field: Field) -> Option<Winner> {
        let n = self.winners[i][field.index()];
        if n == NONE {
            return None;
        }
        let rule = n as usize;
        self.wants[rule][field.index()].map(|value| Winner { rule, value })
    }

    /// The conflicts on fields not `frozen`, by key, field, then the
    /// loser's priority and name.
    pub(super) fn conflicts(
        &self,
        rules: &[CompiledRule<'_>],
        hashes: &SharedHashes<'_>,
        frozen: &BTreeSet<(usize, Field)>,
    ) -> Vec<Conflict> {
        let mut conflicts = Vec::with_capacity(self.losers.len());
        conflicts.extend(
            self.losers
                .iter()
                .filter(|l| !frozen.contains(&(l.key, Field::ALL[l.field])))
                .map(|l| Conflict {
                    key_hash: hashes.get(l.key),
                    field: Field::ALL[l.field],
                    winner: Arc::clone(&rules[l.winner].name),
                    loser: Arc::clone(&rules[l.loser].name),
                }),
        );
        conflicts
    }

    /// How many equal-priority losers (conflicts, frozen fields included).
    pub(super) fn losers(&self) -> usize {
        self.losers.len()
    }
}

/// What one rule sets, by field position in [`Field::ALL`].
type Wants = [Option<FieldValue>; Field::ALL.len()];
