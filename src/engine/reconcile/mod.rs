//! The pure core: from rules, observed keys, claims, exemptions, budget
//! values and `now`, the [`Plan`] of a run (SPEC §4.1–4.3, 4.6), in named
//! phases:
//!
//! 0. `selection`: the keys each rule selects, kept between plans by a
//!    [`Planner`];
//! 1. `verdicts`: each rule's truth for each key it selects (or its
//!    standing result, when it is not due);
//! 2. `wanted`: the rule that wins each field of each key, and the
//!    equal-priority conflicts;
//! 3. `changes`: the differences between what is wanted and what the keys
//!    have, one change per key × rule × kind, exemptions applied; then the
//!    claims on keys that no longer exist;
//! 4. `guard`: the blast-radius guard holds the changes back when a run
//!    would change too much.
//!
//! Level-triggered: the plan says what every key's settings should be and
//! holds only the differences, so planning twice against the result of the
//! first plan gives an empty plan.

mod changes;
mod guard;
mod selection;
mod verdicts;
mod wanted;

use super::evaluate::{Amounts, CompiledRule, SharedHashes};
use super::inputs::{Claim, Exemption, Guardrails, Series};
use super::plan::Plan;
use crate::domain::{Credits, Field, Key, Workspace};
use crate::rules::model::Rule;
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
    /// The account's workspaces, as listed now (empty when they were not):
    /// what selectors' `workspaces` match a key's workspace by.
    pub workspaces: &'a [Workspace],
    /// keywarden's claims.
    pub claims: &'a [Claim],
    /// Exemptions (expired ones are ignored).
    pub exemptions: &'a [Exemption],
    /// Budget amounts read from sources this run.
    pub amounts: &'a Amounts,
    /// The account's credits, when a rule needs them and they could be read.
    pub credits: Option<&'a Credits>,
    /// The usage snapshots of the keys forecasts need.
    pub series: &'a Series,
    /// The account's guardrails, when read (the keys then carry theirs).
    pub guardrails: &'a Guardrails,
    /// The instant the run evaluates at.
    pub now: DateTime<Utc>,
    /// `[daemon].timezone`, for rules that name none.
    pub default_tz: Tz,
    /// The blast-radius guard.
    pub guard: Guard,
}

/// The output of [`plan`]: the plan, and what the shell records besides it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reconciliation {
    /// The plan.
    pub plan: Plan,
    /// For each rule evaluated (due), the keys for which its `when` held,
    /// as positions in [`Inputs::keys`], in ascending order (to be stored
    /// as its standing result).
    pub holding: BTreeMap<String, Vec<usize>>,
    /// Whether the guard held changes back.
    pub guard_tripped: bool,
    /// The fields of keys a due rule sets but whose condition could not be
    /// evaluated (key positions in [`Inputs::keys`]): nothing is asserted,
    /// released or concluded about them in this run, conflicts included.
    pub frozen: BTreeSet<(usize, Field)>,
}

/// Computes the plan of a run, keeping nothing for the next (a
/// [`Planner`] used once).
pub fn plan(inputs: &Inputs<'_>) -> anyhow::Result<Reconciliation> {
    Planner::default().plan(inputs)
}

/// Plans run after run, keeping between plans what does not change from
/// one run to the next: which keys each rule selects (made again only for
/// the keys that appeared or were renamed, or for all when the rules'
/// selectors or the workspaces changed), and how many budget readings and
/// equal-priority losers the last plan had. A plan is the same as one made
/// from scratch.
#[derive(Debug, Default)]
pub struct Planner {
    /// The last plan's selection, with what it was made from.
    selection: Option<selection::KeptSelection>,
    /// How many budget readings the last plan had (room made for as many).
    readings: usize,
    /// How many equal-priority losers the last plan had (room made for as many).
    losers: usize,
}

impl Planner {
    /// Computes the plan of a run.
    pub fn plan(&mut self, inputs: &Inputs<'_>) -> anyhow::Result<Reconciliation> {
        let compiled: Vec<CompiledRule<'_>> = inputs
            .rules
            .iter()
            .filter(|r| r.enabled)
            .map(|r| CompiledRule::new(r, inputs.default_tz, inputs.guardrails))
            .collect::<anyhow::Result<_>>()?;
        let selected = selection::KeptSelection::refresh(
            &mut self.selection,
            &compiled,
            inputs.keys,
            inputs.workspaces,
        );
        let hashes = SharedHashes::new(inputs.keys);
        let mut verdicts =
            verdicts::Verdicts::new(&compiled, selected.lists, inputs, &hashes, self.readings);
        self.readings = verdicts.budgets.len();
        let wanted = wanted::Wanted::new(
            &compiled,
            &verdicts.holders,
            selected,
            inputs.keys.len(),
            self.losers,
        );
        self.losers = wanted.losers();
        let conflicts = wanted.conflicts(&compiled, &hashes, &verdicts.frozen);
        let changes = changes::Differences {
            inputs,
            rules: &compiled,
            verdicts: &verdicts,
            wanted: &wanted,
        }
        .changes();
        let mut plan = Plan {
            changes,
            skips: std::mem::take(&mut verdicts.skips),
            conflicts,
            budgets: std::mem::take(&mut verdicts.budgets),
        };
        let guard_tripped = guard::apply(&mut plan, inputs.keys.len(), inputs.guard);
        Ok(Reconciliation {
            plan,
            holding: verdicts.take_holding(&compiled),
            guard_tripped,
            frozen: verdicts.frozen,
        })
    }
}
