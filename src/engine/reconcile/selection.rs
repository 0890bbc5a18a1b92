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
use fixedbitset::FixedBitSet;
use std::collections::HashMap;

/// The keys as selectors see them — each key's hash, name, label and
/// workspace — one after another in one string (a few bytes a key beyond
/// the text itself).
#[derive(Debug, Default)]
struct Identities {
    /// Every key's parts, one after another.
    text: String,
    /// Per key, where each of its four parts ends in `text`.
    ends: Vec<[u32; 4]>,
}

/// Where `text` ends now, as an end in [`Identities`].
fn end(text: &str) -> u32 {
    u32::try_from(text.len()).expect("under 4 GiB of keys")
}

/// Marks a key's workspace in [`Identities`] (a key without one has an
/// empty part).
const IN_WORKSPACE: u8 = b'+';

impl Identities {
    /// The identities of `keys`, in their order.
    fn of(keys: &[Key]) -> Identities {
        let mut out = Identities {
            text: String::new(),
            ends: Vec::with_capacity(keys.len()),
        };
        for key in keys {
            let text = &mut out.text;
            text.push_str(&key.hash);
            let hash = end(text);
            text.push_str(&key.name);
            let name = end(text);
            text.push_str(&key.label);
            let label = end(text);
            if let Some(id) = &key.workspace_id {
                text.push(char::from(IN_WORKSPACE));
                text.push_str(id);
            }
            out.ends.push([hash, name, label, end(text)]);
        }
        out.text.shrink_to_fit();
        out
    }

    /// How many keys.
    fn len(&self) -> usize {
        self.ends.len()
    }

    /// The hash, name, label and workspace part of key `i`.
    fn parts(&self, i: usize) -> [&str; 4] {
        let start = if i == 0 { 0 } else { self.ends[i - 1][3] };
        let ends = self.ends[i];
        let from = |p: usize| if p == 0 { start } else { ends[p - 1] } as usize;
        std::array::from_fn(|p| &self.text[from(p)..ends[p] as usize])
    }

    /// The hash of key `i`.
    fn hash(&self, i: usize) -> &str {
        self.parts(i)[0]
    }

    /// Whether `key` is key `i`, as selectors see it: its parts compared
    /// as bytes, one after another (no text boundaries to check).
    fn is(&self, i: usize, key: &Key) -> bool {
        let start = if i == 0 {
            0
        } else {
            self.ends[i - 1][3] as usize
        };
        let [hash, name, label, end] = self.ends[i].map(|e| e as usize);
        let text = self.text.as_bytes();
        let workspace = &text[label..end];
        text[start..hash] == *key.hash.as_bytes()
            && text[hash..name] == *key.name.as_bytes()
            && text[name..label] == *key.label.as_bytes()
            && match key.workspace_id.as_deref() {
                Some(id) => workspace.strip_prefix(&[IN_WORKSPACE]) == Some(id.as_bytes()),
                None => workspace.is_empty(),
            }
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
    keys: Identities,
    /// The selection.
    selection: Selection,
    /// Each rule's selected keys as a set of bits (a bit a rule and key):
    /// the holders of a rule that holds for every key it selects.
    sets: Vec<FixedBitSet>,
}

/// The keys each rule selects, in the order of the compiled rules.
#[derive(Debug, Clone, Copy)]
pub(super) struct Selected<'k> {
    /// The positions of the keys, ascending.
    pub(super) lists: &'k [Vec<usize>],
    /// The same keys as sets of bits over every key.
    pub(super) sets: &'k [FixedBitSet],
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
    ) -> Selected<'k> {
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
                k.keys.len() == keys.len()
                    && keys.iter().enumerate().all(|(i, key)| k.keys.is(i, key))
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
                keys: Identities::of(keys),
                sets: as_sets(&selection.selected, keys.len()),
                selection,
            });
        }
        let kept = kept.as_ref().expect("kept above");
        Selected {
            lists: &kept.selection.selected,
            sets: &kept.sets,
        }
    }

    /// The selection of `keys` by the same selectors, matching only the
    /// keys that are not among the kept ones as they were.
    fn again(&self, keys: &[Key], workspaces: &[Workspace]) -> Selection {
        let position: HashMap<&str, usize, foldhash::fast::RandomState> = (0..self.keys.len())
            .map(|at| (self.keys.hash(at), at))
            .collect();
        self.index.selection(keys, workspaces, |i| {
            let at = *position.get(keys[i].hash.as_str())?;
            self.keys.is(at, &keys[i]).then(|| self.selection.row(at))
        })
    }
}

/// Each list of key positions as a set of bits over `keys` keys.
fn as_sets(lists: &[Vec<usize>], keys: usize) -> Vec<FixedBitSet> {
    lists
        .iter()
        .map(|list| {
            let mut set = FixedBitSet::with_capacity(keys);
            list.iter().for_each(|&key| set.insert(key));
            set
        })
        .collect()
}
