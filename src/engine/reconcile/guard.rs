//! The blast-radius guard (SPEC §4.6): no run changes too many keys, or
//! disables too large a share of them, unless forced.

use super::Guard;
use crate::engine::plan::{Change, Hold, Plan};
use foldhash::fast::RandomState;
use std::collections::HashSet;

/// Holds back every change to be sent when the run would change too many
/// keys or disable too large a share of them. Returns whether it tripped.
pub(super) fn apply(plan: &mut Plan, watched: usize, guard: Guard) -> bool {
    if guard.force || cannot_trip(plan, watched, guard) {
        return false;
    }
    let keys = keys_where(plan, Change::sends_patch);
    let disabling = keys_where(plan, Change::disables);
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
    for change in plan
        .changes
        .iter_mut()
        .filter(|c| c.held.is_none() && c.sends_patch())
    {
        change.held = Some(Hold::Guard);
        change.reason = format!("{}; {why}", change.reason);
    }
    true
}

/// Whether the plan has too few changes to trip the guard, whichever keys
/// they change: a plan changes and disables at most as many keys as it has
/// changes.
fn cannot_trip(plan: &Plan, watched: usize, guard: Guard) -> bool {
    let most = plan.changes.len();
    most <= guard.max_changes_per_run
        && (watched == 0 || most as f64 / watched as f64 <= guard.max_disable_fraction)
}

/// The keys of the changes not held back for which `what` is true.
fn keys_where(plan: &Plan, what: fn(&Change) -> bool) -> HashSet<&str, RandomState> {
    plan.changes
        .iter()
        .filter(|c| c.held.is_none() && what(c))
        .map(|c| c.key_hash.as_str())
        .collect()
}
