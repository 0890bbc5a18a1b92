//! Selectors compiled once (SPEC §3.1): which keys a rule applies to.
//!
//! A selector's `workspaces` are globs matched against the id, slug and name
//! of a key's workspace (SPEC §12), looked up in the account's workspaces
//! that the shell listed; a workspace that was not listed (the fallback of
//! an account without workspaces) is matched by its id alone.

use super::model::{Exclude, Match, Selector};
use crate::domain::{Key, Workspace};
use globset::{Glob, GlobSet, GlobSetBuilder};

/// The hash maps of selection: keys are matched by their hash and
/// workspace once per key, so the hashing is the fast, non-keyed kind.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// What `workspaces` patterns are matched against for the workspace `id`:
/// its id, and its slug and name when it is in `table`.
fn workspace_texts<'a>(id: &'a str, table: &'a [Workspace]) -> impl Iterator<Item = &'a str> {
    let listed = table.iter().find(|w| w.id == id);
    std::iter::once(id).chain(
        listed
            .into_iter()
            .flat_map(|w| [w.slug.as_str(), w.name.as_str()]),
    )
}

/// A [`Selector`] with its globs compiled, ready to test many keys.
#[derive(Debug, Clone)]
pub struct CompiledSelector {
    /// `None` = `"all"`.
    matcher: Option<Compiled>,
}

#[derive(Debug, Clone)]
struct Compiled {
    include: Patterns,
    workspaces: GlobSet,
    exclude: Patterns,
}

/// Hashes and name/label globs.
#[derive(Debug, Clone)]
struct Patterns {
    hashes: Vec<String>,
    names: GlobSet,
    labels: GlobSet,
}

impl Patterns {
    fn new(hashes: &[String], names: &[String], labels: &[String]) -> Self {
        Patterns {
            hashes: hashes.to_vec(),
            names: glob_set(names),
            labels: glob_set(labels),
        }
    }

    fn matches(&self, key: &Key) -> bool {
        self.hashes.contains(&key.hash)
            || self.names.is_match(&key.name)
            || self.labels.is_match(&key.label)
    }
}

/// Compiles globs that the rules parser has already checked; a glob that
/// does not compile (not possible for a parsed rule) matches nothing.
fn glob_set(globs: &[String]) -> GlobSet {
    let mut builder = GlobSetBuilder::new();
    for g in globs {
        if let Ok(glob) = Glob::new(g) {
            builder.add(glob);
        }
    }
    builder.build().unwrap_or_else(|_| GlobSet::empty())
}

impl CompiledSelector {
    /// Compiles `selector`.
    pub fn new(selector: &Selector) -> Self {
        let matcher = match selector {
            Selector::All => None,
            Selector::Match(Match {
                hashes,
                names,
                labels,
                workspaces,
                exclude:
                    Exclude {
                        hashes: xh,
                        names: xn,
                        labels: xl,
                    },
            }) => Some(Compiled {
                include: Patterns::new(hashes, names, labels),
                workspaces: glob_set(workspaces),
                exclude: Patterns::new(xh, xn, xl),
            }),
        };
        CompiledSelector { matcher }
    }

    /// True when `key` matches any listed item and no `exclude`;
    /// `workspaces`: the account's workspaces, as listed.
    pub fn matches(&self, key: &Key, workspaces: &[Workspace]) -> bool {
        let Some(m) = &self.matcher else { return true };
        let included = m.include.matches(key)
            || key.workspace_id.as_deref().is_some_and(|id| {
                workspace_texts(id, workspaces).any(|text| m.workspaces.is_match(text))
            });
        included && !m.exclude.matches(key)
    }
}

/// Many selectors matched together: one pass over a key finds every
/// selector that selects it (one glob automaton for all name patterns, one
/// for all label patterns, one for all workspace patterns, a hash table,
/// included and excluded patterns alike), instead of testing each selector
/// on its own. Same semantics as [`CompiledSelector::matches`].
#[derive(Debug, Clone)]
pub struct SelectorIndex {
    count: usize,
    /// The words of a row of bits, one bit per selector.
    words: usize,
    /// The selectors that are `"all"`, as a row of bits.
    all: Vec<u64>,
    /// Every selector's patterns: owner `n` is what selector `n` includes,
    /// owner `64 * words + n` what it excludes (bit `n` of the second row).
    patterns: Table,
    /// Every selector's `workspaces` globs, owner `n` for selector `n`.
    workspaces: Globs,
}

/// One selector's hashes, name globs and label globs, with its position.
type PatternRefs<'a> = (usize, &'a [String], &'a [String], &'a [String]);

/// Hashes, name globs and label globs of many selectors, each pattern
/// remembering the selectors it belongs to.
#[derive(Debug, Clone, Default)]
struct Table {
    hashes: HashMap<String, Vec<usize>>,
    names: Globs,
    labels: Globs,
}

/// Distinct globs in one automaton, each with the selectors that list it
/// (rules often share a pattern: each is matched once).
#[derive(Debug, Clone, Default)]
struct Globs {
    set: GlobSet,
    owners: Vec<Vec<usize>>,
}

impl Globs {
    fn build<'a>(globs: impl Iterator<Item = (usize, &'a String)>) -> Globs {
        let mut builder = GlobSetBuilder::new();
        let mut position: HashMap<&str, usize> = HashMap::default();
        let mut owners: Vec<Vec<usize>> = Vec::new();
        for (owner, g) in globs {
            let at = match position.get(g.as_str()) {
                Some(&at) => at,
                None => {
                    let Ok(glob) = Glob::new(g) else { continue };
                    builder.add(glob);
                    owners.push(Vec::new());
                    position.insert(g, owners.len() - 1);
                    owners.len() - 1
                }
            };
            owners[at].push(owner);
        }
        Globs {
            set: builder.build().unwrap_or_else(|_| GlobSet::empty()),
            owners,
        }
    }

    /// Sets in `hit` the bit of every owner of a glob matching `text`.
    fn mark(&self, text: &str, hit: &mut [u64], scratch: &mut Vec<usize>) {
        if self.owners.is_empty() {
            return;
        }
        self.set.matches_into(text, scratch);
        for &p in scratch.iter() {
            self.owners[p].iter().for_each(|&o| set_bit(hit, o));
        }
    }
}

impl Table {
    fn build(parts: &[PatternRefs<'_>]) -> Table {
        let mut hashes: HashMap<String, Vec<usize>> = HashMap::default();
        for &(owner, owned, _, _) in parts {
            for h in owned {
                hashes.entry(h.clone()).or_default().push(owner);
            }
        }
        Table {
            hashes,
            names: Globs::build(
                parts
                    .iter()
                    .flat_map(|&(o, _, names, _)| names.iter().map(move |g| (o, g))),
            ),
            labels: Globs::build(
                parts
                    .iter()
                    .flat_map(|&(o, _, _, labels)| labels.iter().map(move |g| (o, g))),
            ),
        }
    }

    /// Sets in `hit` the bit of every owner of a pattern matching `key`.
    fn mark(&self, key: &Key, hit: &mut [u64], scratch: &mut Vec<usize>) {
        if let Some(owners) = self.hashes.get(&key.hash) {
            owners.iter().for_each(|&o| set_bit(hit, o));
        }
        self.names.mark(&key.name, hit, scratch);
        self.labels.mark(&key.label, hit, scratch);
    }
}

impl SelectorIndex {
    /// Indexes `selectors`; results refer to their positions.
    pub fn new<'a>(selectors: impl IntoIterator<Item = &'a Selector>) -> SelectorIndex {
        let mut all_of = Vec::new();
        let mut workspaces: Vec<(usize, &String)> = Vec::new();
        let (mut include, mut exclude) = (Vec::new(), Vec::new());
        let mut count = 0;
        for (n, selector) in selectors.into_iter().enumerate() {
            count = n + 1;
            match selector {
                Selector::All => all_of.push(n),
                Selector::Match(m) => {
                    include.push((n, &m.hashes[..], &m.names[..], &m.labels[..]));
                    let x = &m.exclude;
                    exclude.push((n, &x.hashes[..], &x.names[..], &x.labels[..]));
                    workspaces.extend(m.workspaces.iter().map(|w| (n, w)));
                }
            }
        }
        let words = count.div_ceil(64);
        let excluded = exclude
            .into_iter()
            .map(|(n, hashes, names, labels)| (64 * words + n, hashes, names, labels));
        let patterns: Vec<PatternRefs<'_>> = include.into_iter().chain(excluded).collect();
        let mut all = vec![0; words];
        all_of.into_iter().for_each(|n| set_bit(&mut all, n));
        SelectorIndex {
            count,
            words,
            all,
            patterns: Table::build(&patterns),
            workspaces: Globs::build(workspaces.into_iter()),
        }
    }

    /// The selectors whose `workspaces` name the workspace `id`.
    fn workspace_owners(&self, id: &str, table: &[Workspace]) -> Vec<usize> {
        let mut hit = vec![0; self.words];
        let mut scratch = Vec::new();
        for text in workspace_texts(id, table) {
            self.workspaces.mark(text, &mut hit, &mut scratch);
        }
        set_bits(&hit).collect()
    }

    /// For each selector, the positions in `keys` of the keys it selects;
    /// `workspaces`: the account's workspaces, as listed.
    pub fn select(&self, keys: &[Key], workspaces: &[Workspace]) -> Vec<Vec<usize>> {
        self.selection(keys, workspaces, |_| None).selected
    }

    /// The [`Selection`] of `keys`; `known(i)` is the row of `keys[i]` when
    /// an earlier selection by this index already found it (the key's hash,
    /// name, label and workspace unchanged): it is not matched again.
    ///
    /// One pass over the keys marks which selectors select each key in a
    /// row of bits; the lists are then filled from the rows, each allocated
    /// once at its final length.
    pub fn selection<'r>(
        &self,
        keys: &[Key],
        workspaces: &[Workspace],
        known: impl Fn(usize) -> Option<&'r [u64]>,
    ) -> Selection {
        let words = self.words.max(1);
        let mut rows = vec![0u64; keys.len() * words];
        let mut hit = vec![0u64; 2 * words];
        let mut scratch = Vec::new();
        let mut by_workspace: HashMap<&str, Vec<usize>> = HashMap::default();
        for (i, (key, row)) in keys.iter().zip(rows.chunks_exact_mut(words)).enumerate() {
            if let Some(found) = known(i) {
                row.copy_from_slice(found);
                continue;
            }
            hit.fill(0);
            self.patterns.mark(key, &mut hit, &mut scratch);
            if let Some(id) = key.workspace_id.as_deref() {
                let owners = by_workspace
                    .entry(id)
                    .or_insert_with(|| self.workspace_owners(id, workspaces));
                owners.iter().for_each(|&o| set_bit(&mut hit, o));
            }
            let (included, excluded) = hit.split_at(words);
            for (w, bits) in row.iter_mut().enumerate().take(self.words) {
                *bits = (included[w] & !excluded[w]) | self.all[w];
            }
        }
        let mut counts = vec![0usize; self.count];
        for row in rows.chunks_exact(words) {
            set_bits(row).for_each(|n| counts[n] += 1);
        }
        let mut selected: Vec<Vec<usize>> = counts.iter().map(|&c| Vec::with_capacity(c)).collect();
        for (i, row) in rows.chunks_exact(words).enumerate() {
            set_bits(row).for_each(|n| selected[n].push(i));
        }
        Selection {
            words,
            rows,
            selected,
        }
    }
}

/// Which selectors select each key, made by [`SelectorIndex::selection`].
#[derive(Debug, Clone)]
pub struct Selection {
    /// The words of a row.
    words: usize,
    /// Per key, a row of bits: bit `n` set when selector `n` selects it.
    rows: Vec<u64>,
    /// For each selector, the positions of the keys it selects, ascending.
    pub selected: Vec<Vec<usize>>,
}

impl Selection {
    /// The row of bits of the key at position `i` (bit `n`: selector `n`
    /// selects it), to give back to [`SelectorIndex::selection`] as known.
    pub fn row(&self, i: usize) -> &[u64] {
        &self.rows[i * self.words..(i + 1) * self.words]
    }
}

/// Sets bit `p` of `bits`.
fn set_bit(bits: &mut [u64], p: usize) {
    bits[p / 64] |= 1 << (p % 64);
}

/// The positions of the bits set in `row`, ascending.
fn set_bits(row: &[u64]) -> impl Iterator<Item = usize> + '_ {
    row.iter().enumerate().flat_map(|(w, &bits)| {
        std::iter::successors((bits != 0).then_some(bits), |b| {
            Some(b & (b - 1)).filter(|&b| b != 0)
        })
        .map(move |b| w * 64 + b.trailing_zeros() as usize)
    })
}

impl From<&Selector> for CompiledSelector {
    fn from(selector: &Selector) -> Self {
        CompiledSelector::new(selector)
    }
}

/// The `workspaces` globs of `selector` that match no workspace of `table`
/// (by id, slug or name): a selector that can never match through them.
pub fn unmatched_workspaces<'a>(selector: &'a Selector, table: &[Workspace]) -> Vec<&'a str> {
    let Selector::Match(m) = selector else {
        return Vec::new();
    };
    m.workspaces
        .iter()
        .filter(|glob| {
            let set = glob_set(std::slice::from_ref(*glob));
            !table
                .iter()
                .any(|w| workspace_texts(&w.id, table).any(|text| set.is_match(text)))
        })
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(hash: &str, name: &str, label: &str, workspace: Option<&str>) -> Key {
        serde_json::from_value(serde_json::json!({
            "hash": hash, "name": name, "label": label, "disabled": false,
            "workspace_id": workspace,
        }))
        .unwrap()
    }

    fn workspace(id: &str, slug: &str, name: &str) -> Workspace {
        Workspace {
            id: id.into(),
            slug: slug.into(),
            name: name.into(),
        }
    }

    #[test]
    fn a_workspace_glob_that_matches_no_listed_workspace_is_unmatched() {
        let table = [workspace("ws-1", "research", "Research")];
        let selector = Selector::Match(Match {
            workspaces: vec![
                "resaerch".into(),
                "res*".into(),
                "Research".into(),
                "ws-1".into(),
            ],
            ..Match::default()
        });
        assert_eq!(unmatched_workspaces(&selector, &table), vec!["resaerch"]);
        assert!(unmatched_workspaces(&Selector::All, &table).is_empty());
    }

    #[test]
    fn workspaces_match_a_workspace_by_id_slug_or_name_with_globs() {
        let table = [
            workspace("ws-1", "research", "Research"),
            workspace("ws-2", "team-north", "North Team"),
            workspace("ws-3", "support", "Support"),
        ];
        let s = sel(Match {
            workspaces: vec!["research".into(), "team-*".into(), "ws-3".into()],
            ..Match::default()
        });
        let in_ws = |id: &str| key("h", "x", "", Some(id));
        assert!(s.matches(&in_ws("ws-1"), &table), "by slug");
        assert!(s.matches(&in_ws("ws-2"), &table), "by a glob over the slug");
        assert!(s.matches(&in_ws("ws-3"), &table), "by id");
        assert!(!s.matches(&in_ws("ws-4"), &table));
        let by_name = sel(Match {
            workspaces: vec!["North *".into()],
            ..Match::default()
        });
        assert!(
            by_name.matches(&in_ws("ws-2"), &table),
            "by a glob over the name"
        );
        assert!(
            !s.matches(&in_ws("ws-1"), &[]),
            "an unlisted workspace is known by its id alone"
        );
    }

    fn sel(m: Match) -> CompiledSelector {
        CompiledSelector::new(&Selector::Match(m))
    }

    #[test]
    fn all_matches_every_key() {
        assert!(CompiledSelector::new(&Selector::All).matches(&key("h", "x", "", None), &[]));
    }

    #[test]
    fn name_globs_match_with_star_and_question_mark() {
        let s = sel(Match {
            names: vec!["team-a-*".into(), "ci-?2".into()],
            ..Match::default()
        });
        assert!(s.matches(&key("h1", "team-a-01", "", None), &[]));
        assert!(s.matches(&key("h2", "ci-12", "", None), &[]));
        assert!(!s.matches(&key("h3", "team-b-01", "", None), &[]));
        assert!(!s.matches(&key("h4", "ci-123", "", None), &[]));
    }

    #[test]
    fn hashes_labels_and_workspaces_match() {
        let s = sel(Match {
            hashes: vec!["abc".into()],
            labels: vec!["sk-or-v1-0e6*".into()],
            workspaces: vec!["ws-1".into()],
            ..Match::default()
        });
        assert!(s.matches(&key("abc", "x", "", None), &[]));
        assert!(s.matches(&key("h", "x", "sk-or-v1-0e6...1c96", None), &[]));
        assert!(s.matches(&key("h", "x", "", Some("ws-1")), &[]));
        assert!(!s.matches(&key("h", "x", "", Some("ws-2")), &[]));
        assert!(!s.matches(&key("h", "x", "", None), &[]));
    }

    #[test]
    fn exclude_wins_over_a_match() {
        let s = sel(Match {
            names: vec!["team-a-*".into()],
            exclude: Exclude {
                names: vec!["team-a-lead".into()],
                hashes: vec!["h9".into()],
                ..Exclude::default()
            },
            ..Match::default()
        });
        assert!(s.matches(&key("h1", "team-a-01", "", None), &[]));
        assert!(!s.matches(&key("h2", "team-a-lead", "", None), &[]));
        assert!(!s.matches(&key("h9", "team-a-02", "", None), &[]));
    }

    #[test]
    fn the_index_selects_exactly_what_each_selector_selects() {
        let selectors: Vec<Selector> = vec![
            Selector::All,
            Selector::Match(Match {
                names: vec!["team-a-*".into(), "ci-?".into()],
                exclude: Exclude {
                    names: vec!["*-ci".into()],
                    ..Exclude::default()
                },
                ..Match::default()
            }),
            Selector::Match(Match {
                hashes: vec!["h2".into()],
                labels: vec!["sk-or-v1-a*".into()],
                workspaces: vec!["w1".into()],
                ..Match::default()
            }),
            Selector::Match(Match {
                workspaces: vec!["l?b".into()],
                ..Match::default()
            }),
            Selector::Match(Match {
                names: vec!["*".into()],
                exclude: Exclude {
                    hashes: vec!["h1".into()],
                    labels: vec!["*x".into()],
                    ..Exclude::default()
                },
                ..Match::default()
            }),
        ];
        let keys = vec![
            key("h1", "team-a-1", "sk-or-v1-ab", None),
            key("h2", "team-a-ci", "sk-or-v1-bx", Some("w2")),
            key("h3", "ci-7", "sk-or-v1-c", Some("w1")),
            key("h4", "support", "sk-or-v1-ax", None),
        ];
        let table = [workspace("w2", "lab", "Lab")];
        let got = SelectorIndex::new(&selectors).select(&keys, &table);
        for (n, selector) in selectors.iter().enumerate() {
            let one = CompiledSelector::new(selector);
            let want: Vec<usize> = (0..keys.len())
                .filter(|&i| one.matches(&keys[i], &table))
                .collect();
            assert_eq!(got[n], want, "selector {n}");
        }
    }
}
