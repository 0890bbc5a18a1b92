//! Phase 0: which keys each rule selects, kept from one plan to the next.
//!
//! A selection depends only on the rules' selectors, the account's
//! workspaces and each key's hash, name, label and workspace, which rarely
//! change between runs: a [`super::Planner`] keeps it and makes it again
//! only for what changed — every key when a selector or a workspace
//! changed (a reload), only the keys that appeared or were renamed
//! otherwise.

use crate::domain::{Key, Workspace};
use crate::engine::evaluate::CompiledRule;
use crate::rules::model::Selector;
use crate::rules::selector::{Selection, SelectorIndex};
use std::collections::HashMap;

/// What a key is selected by: its hash, name, label and workspace.
#[derive(Debug, Clone, PartialEq)]
struct Identity {
    hash: Box<str>,
    name: Box<str>,
    label: Box<str>,
    workspace_id: Option<Box<str>>,
}

impl Identity {
    fn of(key: &Key) -> Identity {
        Identity {
            hash: key.hash.as_str().into(),
            name: key.name.as_str().into(),
            label: key.label.as_str().into(),
            workspace_id: key.workspace_id.as_deref().map(Box::from),
        }
    }

    /// Whether `key` is still this key, as selectors see it.
    fn is(&self, key: &Key) -> bool {
        *self.hash == *key.hash
            && *self.name == *key.name
            && *self.label == *key.label
            && self.workspace_id.as_deref() == key.workspace_id.as_deref()
    }
}

/// The selection of the last plan, with what it was made from.
#[derive(Debug)]
pub(super) struct KeptSelection {
    /// The enabled rules' selectors, in the order of the compiled rules.
    selectors: Vec<Selector>,
    /// The account's workspaces, as listed.
    workspaces: Vec<Workspace>,
    /// The selectors compiled.
    index: SelectorIndex,
    /// The keys, in the order of the selection's positions.
    keys: Vec<Identity>,
    /// The selection.
    selection: Selection,
}

impl KeptSelection {
    /// The keys each of `rules` selects among `keys` (positions, ascending,
    /// in the order of `rules`): `kept` when it was made from the same
    /// selectors, workspaces and keys; otherwise made again, from the
    /// kept rows of the keys that did not change when only keys changed,
    /// and kept for the next plan.
    pub(super) fn refresh<'k>(
        kept: &'k mut Option<KeptSelection>,
        rules: &[CompiledRule<'_>],
        keys: &[Key],
        workspaces: &[Workspace],
    ) -> &'k [Vec<usize>] {
        let same_rules = kept.as_ref().is_some_and(|k| {
            k.workspaces == workspaces
                && k.selectors.len() == rules.len()
                && k.selectors
                    .iter()
                    .zip(rules)
                    .all(|(s, r)| *s == r.rule.keys)
        });
        let same_keys = same_rules
            && kept.as_ref().is_some_and(|k| {
                k.keys.len() == keys.len() && k.keys.iter().zip(keys).all(|(id, key)| id.is(key))
            });
        if !same_keys {
            let (index, selection) = match kept.take().filter(|_| same_rules) {
                Some(old) => {
                    let selection = old.again(keys, workspaces);
                    (old.index, selection)
                }
                None => {
                    let index = SelectorIndex::new(rules.iter().map(|r| &r.rule.keys));
                    let selection = index.selection(keys, workspaces, |_| None);
                    (index, selection)
                }
            };
            *kept = Some(KeptSelection {
                selectors: rules.iter().map(|r| r.rule.keys.clone()).collect(),
                workspaces: workspaces.to_vec(),
                index,
                keys: keys.iter().map(Identity::of).collect(),
                selection,
            });
        }
        &kept.as_ref().expect("kept above").selection.selected
    }

    /// The selection of `keys` by the same selectors, matching only the
    /// keys that are not among the kept ones as they were.
    fn again(&self, keys: &[Key], workspaces: &[Workspace]) -> Selection {
        let position: HashMap<&str, usize, foldhash::fast::RandomState> = self
            .keys
            .iter()
            .enumerate()
            .map(|(at, id)| (&*id.hash, at))
            .collect();
        self.index.selection(keys, workspaces, |i| {
            let at = *position.get(keys[i].hash.as_str())?;
            self.keys[at].is(&keys[i]).then(|| self.selection.row(at))
        })
    }
}
