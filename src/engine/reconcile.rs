//! The pure core: from rules, observed keys, claims, exemptions, budget
//! values and `now`, the [`Plan`] of a run (SPEC §4.1–4.3, 4.6).
//!
//! Level-triggered: the plan says what every key's settings should be and
//! holds only the differences, so planning twice against the result of the
//! first plan gives an empty plan.

use super::evaluate::{Amounts, CompiledRule, Evaluation, SharedHashes, Truth, Verdict, evaluate};
use super::inputs::{Claim, Exemption};
use super::plan::{Change, ChangeKind, Conflict, FieldChange, Hold, Plan};
use crate::domain::Credits;
use crate::domain::{Field, FieldValue, Key};
use crate::rules::model::Rule;
use crate::rules::selector::SelectorIndex;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

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
    /// For each rule evaluated (due), the keys for which its `when` held,
    /// as positions in [`Inputs::keys`], in ascending order.
    pub holding: BTreeMap<String, Vec<usize>>,
    /// Whether the guard held changes back.
    pub guard_tripped: bool,
    /// The fields of keys a due rule sets but whose condition could not be
    /// evaluated (key positions in [`Inputs::keys`]): nothing is asserted,
    /// released or concluded about them in this run, conflicts included.
    pub frozen: BTreeSet<(usize, Field)>,
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
    let hashes = SharedHashes::new(inputs.keys);
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
            &hashes,
            inputs.amounts,
            inputs.credits,
            inputs.now,
        );
        let mut holding = Vec::new();
        let mut per_key = Vec::with_capacity(eval.verdicts.len());
        for &(i, truth) in &eval.verdicts {
            let holds = match truth {
                Truth::Holds => true,
                Truth::DoesNotHold => false,
                Truth::Unknown => {
                    // Not evaluated: the rule neither asserts nor releases
                    // anything on this key in this run.
                    for value in rule.rule.set.fields() {
                        frozen.insert((i, value.field()));
                    }
                    held_before(i)
                }
            };
            if holds {
                holding.push(i);
            }
            per_key.push((i, holds));
        }
        out.plan.skips.append(&mut eval.skips);
        out.plan.budgets.append(&mut eval.budgets);
        out.holding.insert(name.clone(), holding);
        verdicts.push(per_key);
        evaluations.push(Some(eval));
    }
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
    let wanted = Wanted::new(&compiled, &verdicts, inputs.keys.len());
    out.plan.conflicts = wanted.conflicts(&compiled, &hashes, &frozen);

    let mut claims = ClaimsByKey::new(inputs.claims);
    let exempt = |hash: &str, rule: &str| -> Vec<&Exemption> {
        inputs
            .exemptions
            .iter()
            .filter(|e| e.covers(hash, rule, inputs.now))
            .collect()
    };

    // 4. The differences, one change row per key × rule × kind.
    let mut exemptions_held: BTreeSet<i64> = BTreeSet::new();
    let mut changes: Vec<Change> = Vec::new();
    // The changes of each key that has any: (key, where they start, end).
    let mut changed: Vec<(usize, usize, usize)> = Vec::new();
    for (i, key) in inputs.keys.iter().enumerate() {
        let key_claims = claims.of(&key.hash);
        let first = changes.len();
        for field in Field::ALL {
            if frozen.contains(&(i, field)) {
                continue;
            }
            let current = key.get(field);
            let claim = key_claims.and_then(|c| c[field.index()]);
            let step = match wanted.winner(i, field) {
                Some((n, value)) => {
                    if current == value {
                        continue;
                    }
                    let rule = compiled[n].rule;
                    let reasserting = claim.is_some_and(|c| c.value == value);
                    let (kind, reason) = if reasserting {
                        (
                            ChangeKind::Reassert,
                            format!(
                                "{}; {field} was changed to {current} outside keywarden, asserted again",
                                explain(n, i)
                            ),
                        )
                    } else {
                        (ChangeKind::Assert, explain(n, i))
                    };
                    (rule.name.as_str(), kind, value, reason)
                }
                None => {
                    let Some(claim) = claim else { continue };
                    let not_holding = compiled
                        .iter()
                        .position(|r| r.rule.name == claim.rule)
                        .filter(|&n| {
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
                            claim.rule.as_str(),
                            ChangeKind::Release,
                            claim.original,
                            why,
                        )
                    } else {
                        let reason = format!(
                            "{why}; {field} is {current}, not the {} keywarden set: left alone",
                            claim.value
                        );
                        (claim.rule.as_str(), ChangeKind::Drift, current, reason)
                    }
                }
            };
            let (rule, kind, to, reason) = step;
            let from = if kind == ChangeKind::Drift {
                claim.map_or(current, |c| c.value)
            } else {
                current
            };
            let covering = exempt(&key.hash, rule);
            let held = match covering.first() {
                Some(e) if e.held_at.is_some() || exemptions_held.contains(&e.id) => {
                    // Recorded once already: hold it back silently.
                    continue;
                }
                Some(e) => {
                    exemptions_held.insert(e.id);
                    Some(Hold::Exemption {
                        first_held: covering
                            .iter()
                            .filter(|e| e.held_at.is_none())
                            .map(|e| e.id)
                            .collect(),
                    })
                }
                None => None,
            };
            let row = match changes[first..]
                .iter()
                .position(|c| c.rule == rule && c.kind == kind)
            {
                Some(at) => &mut changes[first + at],
                None => {
                    changes.push(Change {
                        key_hash: key.hash.clone(),
                        key_name: key.name.clone(),
                        rule: rule.to_string(),
                        kind,
                        fields: BTreeMap::new(),
                        reason: String::new(),
                        held,
                    });
                    changes.last_mut().expect("just pushed")
                }
            };
            row.fields.insert(field, FieldChange { from, to });
            if row.reason.is_empty() {
                row.reason = reason;
            } else if !row.reason.contains(&reason) {
                row.reason = format!("{}; {reason}", row.reason);
            }
        }
        changes[first..].sort_unstable_by(|a, b| (&a.rule, a.kind).cmp(&(&b.rule, b.kind)));
        if changes.len() > first {
            changed.push((i, first, changes.len()));
        }
    }
    let mut changes = in_key_order(changes, changed, inputs.keys);

    // Claims on keys that no longer exist.
    let vanished: Vec<&Claim> = claims.unseen().collect();
    if !vanished.is_empty() {
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
        if !deleted.is_empty() {
            // By key name, then hash, rule and kind, as the rest (a
            // vanished key has no name).
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
    }
    out.plan.changes = changes;
    out.guard_tripped = apply_guard(&mut out.plan, inputs.keys.len(), inputs.guard);
    out.frozen = frozen;
    Ok(out)
}

/// The rule that wins each field of each key: the highest priority of the
/// rules holding for the key that set the field, ties to the name first.
struct Wanted {
    /// Each rule's `set`.
    sets: Vec<Vec<FieldValue>>,
    /// Per key and field, the winning rule's position (`NONE`: no rule sets it).
    winners: Vec<[u32; Field::ALL.len()]>,
    /// Equal-priority losers: (key, field, the loser's place best first,
    /// winner, loser), in that order.
    losers: Vec<(usize, usize, usize, usize, usize)>,
}

/// No rule sets the field.
const NONE: u32 = u32::MAX;

impl Wanted {
    /// Goes through the rules best first, so the first rule to set a field
    /// of a key wins it; a later rule of the same priority setting another
    /// value is a loser (recorded as a conflict).
    fn new(rules: &[CompiledRule<'_>], verdicts: &[Vec<(usize, bool)>], keys: usize) -> Wanted {
        let mut order: Vec<usize> = (0..rules.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (rules[a].rule, rules[b].rule);
            b.priority.cmp(&a.priority).then(a.name.cmp(&b.name))
        });
        let sets: Vec<Vec<FieldValue>> = rules.iter().map(|r| r.rule.set.fields()).collect();
        let mut winners = vec![[NONE; Field::ALL.len()]; keys];
        let mut losers = Vec::new();
        for (place, &n) in order.iter().enumerate() {
            let fields: Vec<(usize, FieldValue)> =
                sets[n].iter().map(|&v| (v.field().index(), v)).collect();
            for &(i, holds) in &verdicts[n] {
                if !holds {
                    continue;
                }
                for &(f, value) in &fields {
                    let slot = &mut winners[i][f];
                    if *slot == NONE {
                        *slot = n as u32;
                        continue;
                    }
                    let w = *slot as usize;
                    let same_priority = rules[w].rule.priority == rules[n].rule.priority;
                    if same_priority && value_of(&sets[w], Field::ALL[f]) != Some(value) {
                        losers.push((i, f, place, w, n));
                    }
                }
            }
        }
        // One integer per loser sorts much faster than a tuple.
        losers.sort_unstable_by_key(|&(i, f, place, _, _)| {
            ((i as u128) << 64) | ((f as u128) << 32) | place as u128
        });
        Wanted {
            sets,
            winners,
            losers,
        }
    }

    /// The rule that wins `field` of key `i`, and the value it wants.
    fn winner(&self, i: usize, field: Field) -> Option<(usize, FieldValue)> {
        let n = self.winners[i][field.index()];
        if n == NONE {
            return None;
        }
        let n = n as usize;
        value_of(&self.sets[n], field).map(|v| (n, v))
    }

    /// The conflicts on fields not `frozen`, by key, field, then the
    /// loser's priority and name.
    fn conflicts(
        &self,
        rules: &[CompiledRule<'_>],
        hashes: &SharedHashes<'_>,
        frozen: &BTreeSet<(usize, Field)>,
    ) -> Vec<Conflict> {
        self.losers
            .iter()
            .filter(|&&(i, f, ..)| !frozen.contains(&(i, Field::ALL[f])))
            .map(|&(i, f, _, w, n)| Conflict {
                key_hash: hashes.get(i),
                field: Field::ALL[f],
                winner: Arc::clone(&rules[w].name),
                loser: Arc::clone(&rules[n].name),
            })
            .collect()
    }
}

/// The value `set` gives `field`, if it sets it.
fn value_of(set: &[FieldValue], field: Field) -> Option<FieldValue> {
    set.iter().find(|v| v.field() == field).copied()
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
        let mut position = HashMap::with_hasher(foldhash::fast::RandomState::default());
        let mut claims: Vec<KeyClaims<'a>> = Vec::new();
        for c in all {
            let at = *position.entry(c.key_hash.as_str()).or_insert_with(|| {
                claims.push([None; Field::ALL.len()]);
                claims.len() - 1
            });
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
fn in_key_order(
    changes: Vec<Change>,
    mut changed: Vec<(usize, usize, usize)>,
    keys: &[Key],
) -> Vec<Change> {
    changed.sort_unstable_by(|&(a, ..), &(b, ..)| {
        let (a, b) = (&keys[a], &keys[b]);
        a.name.cmp(&b.name).then_with(|| a.hash.cmp(&b.hash))
    });
    let mut slots: Vec<Option<Change>> = changes.into_iter().map(Some).collect();
    changed
        .into_iter()
        .flat_map(|(_, start, end)| start..end)
        .map(|at| slots[at].take().expect("each change is placed once"))
        .collect()
}

/// Holds back every change to be sent when the run would change too many
/// keys or disable too large a share of them. Returns whether it tripped.
fn apply_guard(plan: &mut Plan, watched: usize, guard: Guard) -> bool {
    if guard.force {
        return false;
    }
    let sending = |c: &&mut Change| c.held.is_none() && c.sends_patch();
    let keys: HashSet<&str> = plan
        .changes
        .iter()
        .filter(|c| c.held.is_none() && c.sends_patch())
        .map(|c| c.key_hash.as_str())
        .collect();
    let disabling: HashSet<&str> = plan
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
        change.held = Some(Hold::Guard);
        change.reason = format!("{}; {why}", change.reason);
    }
    true
}
