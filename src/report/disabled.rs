//! The figures of a report that come from keys held disabled: the hours
//! keywarden held keys disabled, and the distinct keys disabled and
//! re-enabled, per group and in total. They are folded key by key from
//! the store's [`DisabledMoves`] in one pass: a period opens at the first
//! applied assert/reassert that disabled the key and closes at the next
//! applied release, drift or revert that moved it away from disabled, or at
//! its deletion; a period still open is counted up to the end of the report.

use super::periods::time_bucket;
use crate::store::report::{Bucket, DisabledMove, DisabledMoves, KeyMoves};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};

/// What the keys' disabled moves add up to in one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DisabledFigures {
    /// Seconds keywarden held keys disabled, summed over keys.
    pub seconds: i64,
    /// Distinct keys an applied change disabled.
    pub keys_disabled: i64,
    /// Distinct keys an applied release or revert re-enabled.
    pub keys_reenabled: i64,
}

/// The disabled figures of a report, per group and in total.
#[derive(Debug, Default, PartialEq)]
pub struct DisabledTally {
    /// Per group: every group in which a key moved or was held disabled.
    pub groups: BTreeMap<String, DisabledFigures>,
    /// The whole period.
    pub totals: DisabledFigures,
    /// Each key held disabled within the period whose last period there
    /// opened before it (so no change of the period names it), with its
    /// name then.
    pub names: HashMap<String, String>,
}

/// Folds `moves` (as [`crate::store::Store::report_disabled_moves`] reads
/// them for `[since, until)`) into the report's figures under `bucket`.
pub fn fold(
    moves: &DisabledMoves,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    bucket: Bucket,
) -> DisabledTally {
    let mut fold = Fold {
        tally: DisabledTally::default(),
        rules: &moves.rules,
        span: (since, until),
        ids: BucketIds::new(bucket),
    };
    for key in &moves.keys {
        fold.key(key);
    }
    fold.tally
}

/// The state of [`fold`].
struct Fold<'m> {
    tally: DisabledTally,
    rules: &'m [String],
    span: (DateTime<Utc>, DateTime<Utc>),
    ids: BucketIds,
}

/// The group ids of one bucket, the last time bucket kept: a key's moves
/// come in time order, so most fall in the bucket of the one before.
struct BucketIds {
    bucket: Bucket,
    last: Option<(DateTime<Utc>, DateTime<Utc>, String)>,
}

impl BucketIds {
    fn new(bucket: Bucket) -> BucketIds {
        BucketIds { bucket, last: None }
    }

    /// The group of an instant of `key_hash` under `rule`, and when that
    /// group ends (never, for the key, rule and total buckets).
    fn of<'a>(
        &'a mut self,
        at: DateTime<Utc>,
        key_hash: &'a str,
        rule: &'a str,
    ) -> (&'a str, Option<DateTime<Utc>>) {
        match self.bucket {
            Bucket::Key => (key_hash, None),
            Bucket::Rule => (rule, None),
            Bucket::All => ("", None),
            Bucket::Day | Bucket::Week | Bucket::Month => {
                let hit = matches!(&self.last, Some((start, end, _)) if *start <= at && at < *end);
                if !hit {
                    self.last = time_bucket(at, self.bucket);
                }
                match &self.last {
                    Some((_, end, id)) => (id.as_str(), Some(*end)),
                    None => ("", None),
                }
            }
        }
    }
}

impl DisabledTally {
    /// The figures of group `id`, made when new.
    fn group(&mut self, id: &str) -> &mut DisabledFigures {
        if !self.groups.contains_key(id) {
            self.groups
                .insert(id.to_string(), DisabledFigures::default());
        }
        self.groups.get_mut(id).expect("the group was just made")
    }
}

impl Fold<'_> {
    /// Folds one key's moves.
    fn key(&mut self, key: &KeyMoves) {
        let (since, _) = self.span;
        // The groups the key moved in: whether it was disabled, re-enabled.
        let mut moved_in: Vec<(String, bool, bool)> = Vec::new();
        // The open period: when, its rule, the key's name then if read.
        let mut open: Option<(DateTime<Utc>, usize, Option<&str>)> = None;
        let mut held_name: Option<&str> = None;
        for m in &key.moves {
            if m.at >= since {
                let (id, _) = self.ids.of(m.at, &key.key_hash, &self.rules[m.rule]);
                // Most moves are in the group of the one before.
                let group = match moved_in.iter().rposition(|(g, ..)| g == id) {
                    Some(i) => &mut moved_in[i],
                    None => {
                        moved_in.push((id.to_string(), false, false));
                        moved_in.last_mut().expect("just pushed")
                    }
                };
                match m.moved {
                    DisabledMove::Opens | DisabledMove::Disables => group.1 = true,
                    DisabledMove::Reenables => group.2 = true,
                    DisabledMove::Closes => {}
                }
            }
            match m.moved {
                DisabledMove::Opens if open.is_none() => {
                    open = Some((m.at, m.rule, m.key_name.as_deref()));
                }
                DisabledMove::Reenables | DisabledMove::Closes => {
                    if let Some((start, rule, name)) = open.take()
                        && self.held(&key.key_hash, rule, start, Some(m.at))
                    {
                        held_name = name;
                    }
                }
                DisabledMove::Opens | DisabledMove::Disables => {}
            }
        }
        if let Some((start, rule, name)) = open
            && self.held(&key.key_hash, rule, start, None)
        {
            held_name = name;
        }
        let (mut disabled, mut reenabled) = (false, false);
        for (id, d, r) in &moved_in {
            let figures = self.tally.group(id);
            figures.keys_disabled += i64::from(*d);
            figures.keys_reenabled += i64::from(*r);
            disabled |= d;
            reenabled |= r;
        }
        self.tally.totals.keys_disabled += i64::from(disabled);
        self.tally.totals.keys_reenabled += i64::from(reenabled);
        if let Some(name) = held_name {
            self.tally
                .names
                .insert(key.key_hash.clone(), name.to_string());
        }
    }

    /// Counts the period of `key_hash` held under `rule` from `start` until
    /// `end` (`None`: still held) within the report's span, split at the
    /// bucket's boundaries; `false` when no part of it is inside.
    fn held(
        &mut self,
        key_hash: &str,
        rule: usize,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
    ) -> bool {
        let (since, until) = self.span;
        let start = start.max(since);
        let end = end.unwrap_or(until).min(until);
        if start >= end {
            return false;
        }
        self.tally.totals.seconds += (end - start).num_seconds();
        let mut at = start;
        while at < end {
            let (id, bucket_end) = self.ids.of(at, key_hash, &self.rules[rule]);
            let stop = bucket_end.map_or(end, |b| b.min(end));
            self.tally.group(id).seconds += (stop - at).num_seconds();
            at = stop;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::report::KeyMove;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// Moves of keys under rules `r0`, `r1`…: `(key, at, move, rule)`.
    fn moves(rows: &[(&str, &str, DisabledMove, usize)]) -> DisabledMoves {
        let mut out = DisabledMoves {
            rules: vec!["r0".into(), "r1".into()],
            keys: Vec::new(),
        };
        for &(key, at, moved, rule) in rows {
            let m = KeyMove {
                at: t(at),
                rule,
                moved,
                key_name: (moved == DisabledMove::Opens).then(|| format!("{key}-name@{at}")),
            };
            match out.keys.last_mut() {
                Some(k) if k.key_hash == key => k.moves.push(m),
                _ => out.keys.push(KeyMoves {
                    key_hash: key.into(),
                    moves: vec![m],
                }),
            }
        }
        out
    }

    use DisabledMove::{Closes, Disables, Opens, Reenables};

    #[test]
    fn a_period_opens_at_the_first_disable_and_closes_at_the_next_release() {
        let m = moves(&[
            ("a", "2026-11-27T10:00:00Z", Opens, 0),
            ("a", "2026-11-28T10:00:00Z", Opens, 1), // reassert: still the same period
            ("a", "2026-11-29T10:00:00Z", Reenables, 1),
            ("a", "2026-11-29T12:00:00Z", Closes, 0), // nothing open: ignored
            ("b", "2026-11-29T22:00:00Z", Opens, 1),
        ]);
        let (since, until) = (t("2026-11-27T00:00:00Z"), t("2026-11-30T00:00:00Z"));
        let by_rule = fold(&m, since, until, Bucket::Rule);
        // a: 48 h under r0, the rule that opened it; b: 2 h under r1.
        assert_eq!(by_rule.groups["r0"].seconds, 48 * 3600);
        assert_eq!(by_rule.groups["r1"].seconds, 2 * 3600);
        assert_eq!(by_rule.totals.seconds, 50 * 3600);
        // Keys are counted by the rule of each move, once per group.
        assert_eq!(by_rule.groups["r0"].keys_disabled, 1);
        assert_eq!(by_rule.groups["r1"].keys_disabled, 2);
        assert_eq!(by_rule.groups["r1"].keys_reenabled, 1);
        assert_eq!(by_rule.groups["r0"].keys_reenabled, 0);
        assert_eq!(
            (by_rule.totals.keys_disabled, by_rule.totals.keys_reenabled),
            (2, 1)
        );
        assert_eq!(by_rule.names["a"], "a-name@2026-11-27T10:00:00Z");
    }

    #[test]
    fn a_period_opened_before_since_is_counted_from_since_and_its_move_is_not() {
        let m = moves(&[
            ("a", "2026-11-30T22:00:00Z", Opens, 0),
            ("a", "2026-12-01T01:30:00Z", Closes, 0),
        ]);
        let (since, until) = (t("2026-12-01T00:00:00Z"), t("2026-12-02T00:00:00Z"));
        let tally = fold(&m, since, until, Bucket::Day);
        assert_eq!(tally.totals.seconds, 90 * 60);
        assert_eq!(tally.totals.keys_disabled, 0);
        assert_eq!(
            tally.groups.keys().collect::<Vec<_>>(),
            ["2026-12-01"],
            "the move before since makes no group"
        );
        // Nothing of it inside the report: no hours, no name.
        let before = fold(
            &m,
            t("2026-11-01T00:00:00Z"),
            t("2026-11-30T00:00:00Z"),
            Bucket::Day,
        );
        assert_eq!(before.totals.seconds, 0);
        assert!(before.names.is_empty());
    }

    #[test]
    fn an_open_period_counts_up_to_until_and_a_disable_by_release_holds_nothing() {
        let m = moves(&[
            ("a", "2026-12-01T00:00:00Z", Disables, 0),
            ("b", "2026-12-01T12:00:00Z", Opens, 0),
        ]);
        let tally = fold(
            &m,
            t("2026-12-01T00:00:00Z"),
            t("2026-12-01T18:00:00Z"),
            Bucket::Key,
        );
        assert_eq!(
            tally.groups["a"],
            DisabledFigures {
                seconds: 0,
                keys_disabled: 1,
                keys_reenabled: 0
            }
        );
        assert_eq!(tally.groups["b"].seconds, 6 * 3600);
        assert_eq!(tally.totals.keys_disabled, 2);
    }

    #[test]
    fn spans_are_split_at_day_week_and_month_boundaries() {
        let m = moves(&[
            ("a", "2026-11-29T23:00:00Z", Opens, 0),
            ("a", "2026-12-01T01:00:00Z", Reenables, 0),
        ]);
        let (since, until) = (t("2026-11-01T00:00:00Z"), t("2027-01-01T00:00:00Z"));
        let seconds = |bucket| {
            fold(&m, since, until, bucket)
                .groups
                .into_iter()
                .map(|(g, f)| (g, f.seconds))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            seconds(Bucket::Day),
            [
                ("2026-11-29".into(), 3600),
                ("2026-11-30".into(), 86400),
                ("2026-12-01".into(), 3600)
            ]
        );
        // 2026-11-30 is a Monday.
        assert_eq!(
            seconds(Bucket::Week),
            [("2026-11-23".into(), 3600), ("2026-11-30".into(), 90000)]
        );
        assert_eq!(
            seconds(Bucket::Month),
            [("2026-11".into(), 90000), ("2026-12".into(), 3600)]
        );
        // The re-enable of 12-01 is counted in December only.
        let by_month = fold(&m, since, until, Bucket::Month);
        assert_eq!(by_month.groups["2026-11"].keys_reenabled, 0);
        assert_eq!(by_month.groups["2026-12"].keys_reenabled, 1);
        assert_eq!(by_month.groups["2026-11"].keys_disabled, 1);
    }
}
