//! Checks that compare rules (SPEC §3.4): duplicate names, and
//! rules of equal priority that can set one field of one key to different
//! values (a warning).

use super::diagnostic::{Diagnostic, Position, Severity};
use super::model::{Match, Rule, Selector};
use crate::domain::Field;

/// A rule and where it was defined, for diagnostics that compare rules.
#[derive(Debug, Clone, Copy)]
pub struct Located<'a> {
    /// The file.
    pub file: &'a str,
    /// The rule's place in it.
    pub pos: Position,
    /// The rule.
    pub rule: &'a Rule,
}

/// Warnings for every pair of rules (accepted by `pair`) of equal priority
/// that can set the same field of the same key to different values.
pub fn conflicts(rules: &[Located], pair: impl Fn(&Located, &Located) -> bool) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, a) in rules.iter().enumerate() {
        for b in &rules[i + 1..] {
            if a.rule.priority != b.rule.priority
                || !pair(a, b)
                || !can_overlap(&a.rule.keys, &b.rule.keys)
            {
                continue;
            }
            for Differing { field, mine, other } in differing_settings(a.rule, b.rule) {
                let winner = a.rule.name.as_str().min(b.rule.name.as_str());
                out.push(Diagnostic {
                    severity: Severity::Warning,
                    file: b.file.to_string(),
                    line: b.pos.line,
                    col: b.pos.col,
                    rule: Some(b.rule.name.clone()),
                    field: Some(format!("set.{field}")),
                    message: format!(
                        "sets {field} = {mine} where rule {:?} ({}:{}) sets {field} = {other}, with the same priority {} on keys both may select; \
                         {winner:?} would win (names sort first) — give one rule a higher priority",
                        a.rule.name, a.file, a.pos.line, a.rule.priority
                    ),
                });
            }
        }
    }
    out
}

/// A field two rules set to different values, each as written (a guardrail
/// by the id or name the rule gives).
struct Differing {
    field: Field,
    /// The later rule's value.
    mine: String,
    /// The earlier rule's value.
    other: String,
}

/// The fields `a` and `b` both set, to different values.
fn differing_settings(a: &Rule, b: &Rule) -> Vec<Differing> {
    let theirs = a.set.fields();
    let mut out: Vec<Differing> = b
        .set
        .fields()
        .into_iter()
        .filter_map(|mine| {
            let other = theirs
                .iter()
                .find(|v| v.field() == mine.field() && **v != mine)?;
            Some(Differing {
                field: mine.field(),
                mine: mine.to_string(),
                other: other.to_string(),
            })
        })
        .collect();
    if let (Some(mine), Some(other)) = (&b.set.guardrail, &a.set.guardrail)
        && mine != other
    {
        out.push(Differing {
            field: Field::Guardrail,
            mine: mine.as_str().to_string(),
            other: other.as_str().to_string(),
        });
    }
    out
}

/// An error for every rule whose name an earlier rule already has: "at
/// line N" of the same file, or "in FILE:N" of another.
pub fn duplicate_names(rules: &[Located]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, b) in rules.iter().enumerate() {
        let Some(a) = rules[..i].iter().find(|a| a.rule.name == b.rule.name) else {
            continue;
        };
        let place = if a.file == b.file {
            format!("at line {}", a.pos.line)
        } else {
            format!("in {}:{}", a.file, a.pos.line)
        };
        out.push(Diagnostic {
            severity: Severity::Error,
            file: b.file.to_string(),
            line: b.pos.line,
            col: b.pos.col,
            rule: Some(b.rule.name.clone()),
            field: Some("name".into()),
            message: format!(
                "duplicate name: rule {:?} is already defined {place}",
                a.rule.name
            ),
        });
    }
    out
}

/// Whether two selectors may select a common key. Conservative: `all`
/// overlaps everything, and two tables overlap unless every pair of their
/// items is of one kind (hashes, names, labels, workspaces) and provably
/// disjoint: two different literals, a glob that does not match a literal,
/// or two globs whose literal prefixes or suffixes differ. Two `workspaces`
/// items always may overlap: one workspace answers to its id, slug and name.
/// `exclude` is not considered.
pub fn can_overlap(a: &Selector, b: &Selector) -> bool {
    match (a, b) {
        (Selector::Match(a), Selector::Match(b)) => {
            let (a, b) = (items(a), items(b));
            a.iter().any(|x| b.iter().any(|y| item_overlaps(x, y)))
        }
        _ => true,
    }
}

/// Which list of a selector an item is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    /// `hashes`: compared exactly.
    Hash,
    /// `names`: globs.
    Name,
    /// `labels`: globs.
    Label,
    /// `workspaces`: globs over a workspace's id, slug or name.
    Workspace,
}

/// One listed item of a selector: its kind and its pattern.
#[derive(Debug, Clone, Copy)]
struct Item<'a> {
    kind: ItemKind,
    pattern: &'a str,
}

impl Item<'_> {
    /// Characters that make a pattern a glob.
    const META: [char; 5] = ['*', '?', '[', '{', '\\'];

    /// Whether the item is a glob (names and labels with a glob character).
    fn is_glob(&self) -> bool {
        matches!(self.kind, ItemKind::Name | ItemKind::Label) && self.pattern.contains(Self::META)
    }

    /// The literal text before the first glob character.
    fn prefix(&self) -> &str {
        &self.pattern[..self.pattern.find(Self::META).unwrap_or(0)]
    }

    /// The literal text after the last glob character.
    fn suffix(&self) -> &str {
        &self.pattern[self.pattern.rfind(Self::META).map_or(0, |i| i + 1)..]
    }
}

fn items(m: &Match) -> Vec<Item<'_>> {
    let lists: [(ItemKind, &[String]); 4] = [
        (ItemKind::Hash, &m.hashes),
        (ItemKind::Name, &m.names),
        (ItemKind::Label, &m.labels),
        (ItemKind::Workspace, &m.workspaces),
    ];
    lists
        .into_iter()
        .flat_map(|(kind, list)| list.iter().map(move |s| Item { kind, pattern: s }))
        .collect()
}

fn item_overlaps(a: &Item, b: &Item) -> bool {
    if a.kind != b.kind || a.kind == ItemKind::Workspace {
        return true;
    }
    match (a.is_glob(), b.is_glob()) {
        (false, false) => a.pattern == b.pattern,
        (true, false) => glob_matches(a.pattern, b.pattern),
        (false, true) => glob_matches(b.pattern, a.pattern),
        (true, true) => {
            // No name matches both when their literal prefixes (or suffixes) differ.
            let (pa, pb) = (a.prefix(), b.prefix());
            let (sa, sb) = (a.suffix(), b.suffix());
            (pa.starts_with(pb) || pb.starts_with(pa)) && (sa.ends_with(sb) || sb.ends_with(sa))
        }
    }
}

/// Whether `glob` matches `name` (true when the glob does not compile).
fn glob_matches(glob: &str, name: &str) -> bool {
    globset::Glob::new(glob).map_or(true, |g| g.compile_matcher().is_match(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Selector {
        Selector::Match(Match {
            names: n.iter().map(|s| s.to_string()).collect(),
            ..Match::default()
        })
    }

    #[test]
    fn all_overlaps_everything() {
        assert!(can_overlap(&Selector::All, &names(&["a"])));
        assert!(can_overlap(&names(&["a"]), &Selector::All));
    }

    #[test]
    fn different_literals_do_not_overlap_but_globs_do() {
        assert!(!can_overlap(&names(&["a", "b"]), &names(&["c"])));
        assert!(can_overlap(&names(&["a"]), &names(&["a"])));
        assert!(!can_overlap(&names(&["team-a-*"]), &names(&["team-b-01"])));
        assert!(can_overlap(&names(&["team-a-*"]), &names(&["team-a-01"])));
        assert!(!can_overlap(&names(&["support-*"]), &names(&["team-b-*"])));
        assert!(can_overlap(&names(&["team-*"]), &names(&["*-01"])));
        assert!(!can_overlap(&names(&["*-a"]), &names(&["*-b"])));
        assert!(can_overlap(&names(&["*"]), &names(&["ci-?2"])));
    }

    #[test]
    fn different_kinds_may_overlap() {
        let labels = Selector::Match(Match {
            labels: vec!["x".into()],
            ..Match::default()
        });
        assert!(can_overlap(&names(&["a"]), &labels));
    }
}
