//! The `open_conflicts` table: the equal-priority conflicts (SPEC §4 step 3)
//! already recorded as events and still holding, so that each is recorded
//! once, in the run where it begins.

use super::backend::on_conn;
use super::batch::in_chunks;
use super::{Store, ts};
use crate::domain::Field;
use crate::domain::event::EventKind;
use crate::engine::plan::Conflict;
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashSet};

/// A conflict as stored: key, field, winner, loser.
type Identity<'a> = (&'a str, &'a str, &'a str, &'a str);

fn identity(c: &Conflict) -> Identity<'_> {
    (&c.key_hash, c.field.as_str(), &c.winner, &c.loser)
}

impl Store {
    /// Brings the open conflicts up to date with `current`, the conflicts a
    /// run found, in one transaction: each one not open yet is recorded as a
    /// `conflict` event of run `run_id` at `at` and opened; each open one not
    /// in `current` has ended and is forgotten, unless its key and field are
    /// in `unevaluated` (a rule's condition could not be evaluated there in
    /// this run, so nothing is concluded about it). Returns how many began.
    pub async fn record_conflicts(
        &self,
        run_id: i64,
        at: DateTime<Utc>,
        current: &[Conflict],
        unevaluated: &BTreeSet<(&str, Field)>,
    ) -> anyhow::Result<usize> {
        let mut tx = self.write().await?;
        let open: Vec<(String, String, String, String)> = on_conn!(tx.conn(), |c| {
            sqlx::query_as("SELECT key_hash, field, winner, loser FROM open_conflicts")
                .fetch_all(&mut *c)
                .await?
        });
        let is_open: HashSet<Identity<'_>> = open
            .iter()
            .map(|(k, f, w, l)| (k.as_str(), f.as_str(), w.as_str(), l.as_str()))
            .collect();
        let holds: HashSet<Identity<'_>> = current.iter().map(identity).collect();
        let unevaluated: HashSet<(&str, &str)> =
            unevaluated.iter().map(|&(k, f)| (k, f.as_str())).collect();
        let begun: Vec<(&Conflict, String)> = current
            .iter()
            .filter(|c| !is_open.contains(&identity(c)))
            .map(|c| Ok((c, serde_json::to_string(c)?)))
            .collect::<anyhow::Result<_>>()?;
        let ended: Vec<Identity<'_>> = is_open
            .iter()
            .filter(|&&(k, f, ..)| !unevaluated.contains(&(k, f)))
            .filter(|c| !holds.contains(*c))
            .copied()
            .collect();
        let at = ts(at);
        on_conn!(tx.conn(), |conn| {
            in_chunks(
                conn,
                "INSERT INTO events (run_id, at, kind, rule, key_hash, detail) ",
                "",
                6,
                &begun,
                |mut values, (c, detail)| {
                    values
                        .push_bind(run_id)
                        .push_bind(&at)
                        .push_bind(EventKind::Conflict.as_str())
                        .push_bind(&*c.winner)
                        .push_bind(&*c.key_hash)
                        .push_bind(detail);
                },
            )
            .await?;
            in_chunks(
                conn,
                "INSERT INTO open_conflicts (key_hash, field, winner, loser, since) ",
                "",
                5,
                &begun,
                |mut values, (c, _)| {
                    values
                        .push_bind(&*c.key_hash)
                        .push_bind(c.field.as_str())
                        .push_bind(&*c.winner)
                        .push_bind(&*c.loser)
                        .push_bind(&at);
                },
            )
            .await?;
            in_chunks(
                conn,
                "DELETE FROM open_conflicts WHERE (key_hash, field, winner, loser) IN (",
                ")",
                4,
                &ended,
                |mut values, &(k, f, w, l)| {
                    values.push_bind(k).push_bind(f).push_bind(w).push_bind(l);
                },
            )
            .await?
        });
        tx.commit().await?;
        Ok(begun.len())
    }
}
