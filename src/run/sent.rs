//! What the requests of one key's change rows came to: its PATCH, its
//! guardrail call, or both (SPEC §4.5, §12), and the outcome of the rows.
//!
//! Both requests applied: `applied`. One cut off (timeout, dropped
//! connection): `unknown`, settled next run by reading the key and its
//! assignment. Otherwise one failed: `failed`, the error naming both
//! requests' fates, and the fields of the one that took keep their claims
//! (`took`), so the next run plans only what did not take.

use crate::domain::Field;
use crate::engine::Outcome;
use crate::openrouter::Attempted;
use std::collections::BTreeSet;

/// What one request came to.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sent {
    /// The request, as people read it (`PATCH`, `guardrail assignment`).
    what: &'static str,
    /// `applied`, `failed` or `unknown`.
    outcome: Outcome,
    /// The HTTP status of its last answer.
    http_status: Option<u16>,
    /// Attempts made.
    attempts: u32,
    /// Why it failed.
    error: Option<String>,
    /// The fields it carries.
    fields: Vec<Field>,
}

impl Sent {
    /// What the PATCH `attempted` came to.
    pub(super) fn patch<T>(attempted: &Attempted<T>) -> Sent {
        Sent::of("PATCH", patch_fields(), attempted)
    }

    /// A PATCH that was not sent, and why.
    pub(super) fn not_sent(why: &str) -> Sent {
        Sent {
            what: "PATCH",
            outcome: Outcome::Failed,
            http_status: None,
            attempts: 0,
            error: Some(format!("not sent: {why}")),
            fields: patch_fields(),
        }
    }

    /// What the guardrail call `what` (assignment, removal) came to.
    pub(super) fn guardrail<T>(what: &'static str, attempted: &Attempted<T>) -> Sent {
        Sent::of(what, vec![Field::Guardrail], attempted)
    }

    fn of<T>(what: &'static str, fields: Vec<Field>, attempted: &Attempted<T>) -> Sent {
        let (outcome, error) = match &attempted.result {
            Ok(_) => (Outcome::Applied, None),
            Err(e) if e.is_ambiguous() => (Outcome::Unknown, Some(e.to_string())),
            Err(e) => (Outcome::Failed, Some(e.to_string())),
        };
        Sent {
            what,
            outcome,
            http_status: attempted.http_status,
            attempts: attempted.attempts,
            error,
            fields,
        }
    }
}

/// How one key's rows are completed.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The rows' outcome.
    pub outcome: Outcome,
    /// When `failed`: the fields whose request took nevertheless.
    pub took: BTreeSet<Field>,
    /// The HTTP status recorded: the failing request's, else the first.
    pub http_status: Option<u16>,
    /// Attempts of both requests.
    pub attempts: u32,
    /// The error recorded, naming each request's fate when one failed.
    pub error: Option<String>,
}

impl Completion {
    /// Combines the key's PATCH (the fields but `guardrail`) and its
    /// guardrail call; at least one of them was sent.
    pub(super) fn of(patch: Option<Sent>, guardrail: Option<Sent>) -> Completion {
        let sent: Vec<Sent> = [patch, guardrail].into_iter().flatten().collect();
        let outcome = [Outcome::Unknown, Outcome::Failed]
            .into_iter()
            .find(|o| sent.iter().any(|s| s.outcome == *o))
            .unwrap_or(Outcome::Applied);
        let took = match outcome {
            Outcome::Failed => sent
                .iter()
                .filter(|s| s.outcome == Outcome::Applied)
                .flat_map(|s| s.fields.iter().copied())
                .collect(),
            _ => BTreeSet::new(),
        };
        let error = (outcome != Outcome::Applied).then(|| match sent.as_slice() {
            [one] => one.error.clone().unwrap_or_default(),
            both => both
                .iter()
                .map(|s| match &s.error {
                    Some(e) => format!("{} {}: {e}", s.what, s.outcome),
                    None => format!("{} applied", s.what),
                })
                .collect::<Vec<_>>()
                .join("; "),
        });
        let failing = sent.iter().find(|s| s.outcome == outcome);
        Completion {
            outcome,
            took,
            http_status: failing.or(sent.first()).and_then(|s| s.http_status),
            attempts: sent.iter().map(|s| s.attempts).sum(),
            error,
        }
    }
}

impl Completion {
    /// Whether rows completed whole as `self` and as `other` read the same
    /// (outcome, HTTP status, attempts, error): one write completes both.
    pub(super) fn reads_as(&self, other: &Completion) -> bool {
        self.outcome == other.outcome
            && self.http_status == other.http_status
            && self.attempts == other.attempts
            && self.error == other.error
    }
}

/// The fields a PATCH carries: every one but `guardrail`.
fn patch_fields() -> Vec<Field> {
    Field::ALL
        .into_iter()
        .filter(|f| *f != Field::Guardrail)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(what: &'static str, outcome: Outcome, status: u16) -> Sent {
        Sent {
            what,
            fields: match what {
                "PATCH" => patch_fields(),
                _ => vec![Field::Guardrail],
            },
            outcome,
            http_status: Some(status),
            attempts: 1,
            error: (outcome != Outcome::Applied).then(|| format!("HTTP {status}")),
        }
    }

    #[test]
    fn a_row_whose_guardrail_call_failed_keeps_what_its_patch_applied() {
        let c = Completion::of(
            Some(sent("PATCH", Outcome::Applied, 200)),
            Some(sent("guardrail assignment", Outcome::Failed, 500)),
        );
        assert_eq!(c.outcome, Outcome::Failed);
        assert_eq!(c.took, patch_fields().into_iter().collect());
        assert_eq!(c.http_status, Some(500));
        assert_eq!(c.attempts, 2);
        assert_eq!(
            c.error.as_deref(),
            Some("PATCH applied; guardrail assignment failed: HTTP 500")
        );
    }

    #[test]
    fn one_request_cut_off_leaves_the_row_unknown_and_both_applied_is_applied() {
        let c = Completion::of(
            Some(sent("PATCH", Outcome::Failed, 400)),
            Some(sent("guardrail assignment", Outcome::Unknown, 0)),
        );
        assert_eq!(c.outcome, Outcome::Unknown);
        assert!(c.took.is_empty());
        let ok = Completion::of(None, Some(sent("guardrail removal", Outcome::Applied, 200)));
        assert_eq!((ok.outcome, ok.error), (Outcome::Applied, None));
    }
}
