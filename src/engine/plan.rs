//! The output of the pure core: a [`Plan`] of per-key changes, each with
//! its fields (from → to), kind, rule and a human-readable reason.

use crate::domain::{Field, FieldValue, GuardrailId, Window};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

/// Why a change row exists (SPEC §5 `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A rule asserts a setting the key does not have.
    Assert,
    /// A rule asserts again a setting a person changed back.
    Reassert,
    /// No rule asserts the field any more: the original value is restored.
    Release,
    /// No rule asserts the field any more, but someone changed it: left alone.
    Drift,
    /// `keywarden revert` put a change back.
    Revert,
    /// The key was deleted: its claims are dropped.
    Deleted,
}

/// What became of a change (SPEC §5 `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The PATCH succeeded (or nothing needed sending: drift, deleted).
    Applied,
    /// The PATCH failed for good.
    Failed,
    /// Recorded only: dry run.
    DryRun,
    /// Held back by the blast-radius guard.
    Held,
    /// Held back by an exemption.
    Skipped,
    /// Recorded before sending; not yet known.
    Pending,
    /// The request may or may not have been applied (timeout, dropped connection).
    Unknown,
}

macro_rules! names {
    ($t:ty { $($v:ident = $s:literal),* $(,)? }) => {
        impl $t {
            /// Every variant.
            pub const ALL: &'static [$t] = &[$(<$t>::$v),*];
            /// The stored / printed name.
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),* }
            }
            /// Parses the stored / printed name.
            pub fn parse(s: &str) -> Option<$t> {
                match s { $($s => Some(<$t>::$v),)* _ => None }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names!(ChangeKind {
    Assert = "assert",
    Reassert = "reassert",
    Release = "release",
    Drift = "drift",
    Revert = "revert",
    Deleted = "deleted",
});

names!(Outcome {
    Applied = "applied",
    Failed = "failed",
    DryRun = "dry_run",
    Held = "held",
    Skipped = "skipped",
    Pending = "pending",
    Unknown = "unknown",
});

/// Why a change is held back before sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// A person's exemption covers it (SPEC §4.3): recorded `skipped`,
    /// once per exemption.
    Exemption {
        /// The exemptions covering it that had held nothing back yet: the
        /// shell marks them as having held a change.
        first_held: Vec<i64>,
    },
    /// The blast-radius guard held it (SPEC §4.6): recorded `held`.
    Guard,
}

impl Hold {
    /// The outcome the change is recorded with.
    pub fn outcome(&self) -> Outcome {
        match self {
            Hold::Exemption { .. } => Outcome::Skipped,
            Hold::Guard => Outcome::Held,
        }
    }
}

impl Serialize for Hold {
    /// As its outcome (`skipped`, `held`).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.outcome().serialize(s)
    }
}

/// One field's move: `{"from": …, "to": …}` as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FieldChange {
    /// The key's value before.
    pub from: FieldValue,
    /// The value wanted.
    pub to: FieldValue,
}

/// One change: one key × one rule (SPEC §5). Several changes of one key in
/// one run share one PATCH.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The key's hash.
    pub key_hash: String,
    /// The key's name at the time.
    pub key_name: String,
    /// The rule responsible (for `drift`/`release`: the rule that held the claim).
    pub rule: String,
    /// Why.
    pub kind: ChangeKind,
    /// The fields it moves.
    pub fields: BTreeMap<Field, FieldChange>,
    /// A person's explanation, with the figures that triggered it.
    pub reason: String,
    /// Why the change is held back before sending; `None` = to be sent.
    pub held: Option<Hold>,
}

impl Change {
    /// Whether applying this change sends a PATCH (`drift` and `deleted` do not).
    pub fn sends_patch(&self) -> bool {
        !matches!(self.kind, ChangeKind::Drift | ChangeKind::Deleted)
    }

    /// Whether it disables the key.
    pub fn disables(&self) -> bool {
        self.fields
            .get(&Field::Disabled)
            .is_some_and(|c| c.to == FieldValue::Disabled(true))
    }
}

/// A condition that could not be evaluated in this run, and why (recorded on the run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skip {
    /// The rule.
    pub rule: String,
    /// The key, when it is per key.
    pub key_hash: Option<String>,
    /// Why it was not evaluated.
    pub reason: String,
}

/// Two rules of equal priority setting one field of one key differently.
/// Its strings are shared with the plan's other conflicts and readings (a
/// plan names the same keys and rules thousands of times).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conflict {
    /// The key.
    pub key_hash: Arc<str>,
    /// The field.
    pub field: Field,
    /// The rule whose name sorts first, which won.
    pub winner: Arc<str>,
    /// The other rule.
    pub loser: Arc<str>,
}

/// A budget figure observed in this run, for warnings, metrics and reports.
/// Its strings are shared like a [`Conflict`]'s.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetReading {
    /// The rule.
    pub rule: Arc<str>,
    /// The key (scope `each`) or `None` (scope `group`).
    pub key_hash: Option<Arc<str>>,
    /// The window the spend is counted in.
    pub window: Window,
    /// Spend in the window, USD.
    pub spend_usd: f64,
    /// The budget, USD.
    pub budget_usd: f64,
}

/// The new values of one key, sent in one PATCH.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyUpdate {
    /// The key's hash.
    pub key_hash: String,
    /// The values, in field order.
    pub values: Vec<FieldValue>,
}

/// What one bulk guardrail call does (SPEC §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GuardrailAction {
    /// `POST /guardrails/{id}/assignments/keys`: the keys hold this one after.
    Assign(GuardrailId),
    /// `POST /guardrails/{id}/assignments/keys/remove`: the keys that held
    /// this one hold none after.
    Remove(GuardrailId),
}

/// One bulk guardrail call of a run: an action and the keys it moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardrailBatch {
    /// What the call does.
    pub action: GuardrailAction,
    /// The keys' hashes, in order.
    pub key_hashes: Vec<String>,
}

/// Everything a run would do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Changes, by key name, then key hash and rule name.
    pub changes: Vec<Change>,
    /// Conditions not evaluated, and why.
    pub skips: Vec<Skip>,
    /// Equal-priority conflicts.
    pub conflicts: Vec<Conflict>,
    /// Budget readings.
    pub budgets: Vec<BudgetReading>,
}

impl Plan {
    /// The exemptions that hold a change back for the first time in this
    /// run (to be marked, so that `skipped` is recorded once).
    pub fn exemptions_first_held(&self) -> BTreeSet<i64> {
        self.changes
            .iter()
            .filter_map(|c| match &c.held {
                Some(Hold::Exemption { first_held }) => Some(first_held),
                _ => None,
            })
            .flatten()
            .copied()
            .collect()
    }

    /// What to send to each key that needs a PATCH, in key order: the
    /// union of the fields of its changes that are to be sent, but
    /// `guardrail` (see [`Plan::guardrail_batches`]).
    pub fn patches(&self) -> Vec<KeyUpdate> {
        self.moves()
            .into_iter()
            .filter_map(|(key_hash, mut values)| {
                values.remove(&Field::Guardrail);
                (!values.is_empty()).then(|| KeyUpdate {
                    key_hash: key_hash.to_string(),
                    values: values.into_values().map(|fc| fc.to).collect(),
                })
            })
            .collect()
    }

    /// The bulk guardrail calls that give the keys the guardrails of their
    /// changes to be sent: one assign call per guardrail the keys move to,
    /// one remove call per guardrail left for none, each of at most `most`
    /// keys (in key order; calls in guardrail order, assignments first).
    pub fn guardrail_batches(&self, most: usize) -> Vec<GuardrailBatch> {
        let mut by_action: BTreeMap<GuardrailAction, Vec<String>> = BTreeMap::new();
        for (key_hash, values) in self.moves() {
            let Some(moved) = values.get(&Field::Guardrail) else {
                continue;
            };
            let action = match (moved.to, moved.from) {
                (FieldValue::Guardrail(Some(to)), _) => GuardrailAction::Assign(to),
                (_, FieldValue::Guardrail(Some(from))) => GuardrailAction::Remove(from),
                _ => continue,
            };
            by_action
                .entry(action)
                .or_default()
                .push(key_hash.to_string());
        }
        by_action
            .into_iter()
            .flat_map(|(action, hashes)| {
                hashes
                    .chunks(most.max(1))
                    .map(|chunk| GuardrailBatch {
                        action,
                        key_hashes: chunk.to_vec(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Each key's fields to be sent, from → to, in key order: the union of
    /// its changes that are to be sent.
    fn moves(&self) -> BTreeMap<&str, BTreeMap<Field, FieldChange>> {
        let mut by_key: BTreeMap<&str, BTreeMap<Field, FieldChange>> = BTreeMap::new();
        for c in self
            .changes
            .iter()
            .filter(|c| c.held.is_none() && c.sends_patch())
        {
            let values = by_key.entry(&c.key_hash).or_default();
            values.extend(c.fields.iter().map(|(field, fc)| (*field, *fc)));
        }
        by_key
    }
}
