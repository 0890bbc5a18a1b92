//! Selectors compiled once (SPEC §3.1): which keys a rule applies to.

use super::model::{Exclude, Match, Selector};
use crate::openrouter::model::Key;
use globset::{Glob, GlobSet, GlobSetBuilder};

/// A [`Selector`] with its globs compiled, ready to test many keys.
#[derive(Debug, Clone)]
pub struct CompiledSelector {
    /// `None` = `"all"`.
    matcher: Option<Compiled>,
}

#[derive(Debug, Clone)]
struct Compiled {
    include: Patterns,
    workspaces: Vec<String>,
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
                workspaces: workspaces.clone(),
                exclude: Patterns::new(xh, xn, xl),
            }),
        };
        CompiledSelector { matcher }
    }

    /// True when `key` matches any listed item and no `exclude`.
    pub fn matches(&self, key: &Key) -> bool {
        let Some(m) = &self.matcher else { return true };
        let included = m.include.matches(key)
            || key
                .workspace_id
                .as_ref()
                .is_some_and(|w| m.workspaces.contains(w));
        included && !m.exclude.matches(key)
    }
}

impl From<&Selector> for CompiledSelector {
    fn from(selector: &Selector) -> Self {
        CompiledSelector::new(selector)
    }
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

    fn sel(m: Match) -> CompiledSelector {
        CompiledSelector::new(&Selector::Match(m))
    }

    #[test]
    fn all_matches_every_key() {
        assert!(CompiledSelector::new(&Selector::All).matches(&key("h", "x", "", None)));
    }

    #[test]
    fn name_globs_match_with_star_and_question_mark() {
        let s = sel(Match {
            names: vec!["team-a-*".into(), "ci-?2".into()],
            ..Match::default()
        });
        assert!(s.matches(&key("h1", "team-a-01", "", None)));
        assert!(s.matches(&key("h2", "ci-12", "", None)));
        assert!(!s.matches(&key("h3", "team-b-01", "", None)));
        assert!(!s.matches(&key("h4", "ci-123", "", None)));
    }

    #[test]
    fn hashes_labels_and_workspaces_match() {
        let s = sel(Match {
            hashes: vec!["abc".into()],
            labels: vec!["sk-or-v1-0e6*".into()],
            workspaces: vec!["ws-1".into()],
            ..Match::default()
        });
        assert!(s.matches(&key("abc", "x", "", None)));
        assert!(s.matches(&key("h", "x", "sk-or-v1-0e6...1c96", None)));
        assert!(s.matches(&key("h", "x", "", Some("ws-1"))));
        assert!(!s.matches(&key("h", "x", "", Some("ws-2"))));
        assert!(!s.matches(&key("h", "x", "", None)));
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
        assert!(s.matches(&key("h1", "team-a-01", "", None)));
        assert!(!s.matches(&key("h2", "team-a-lead", "", None)));
        assert!(!s.matches(&key("h9", "team-a-02", "", None)));
    }
}
