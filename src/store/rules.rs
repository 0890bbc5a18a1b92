//! The `rules` and `rule_revisions` tables: rules as their JSON definition,
//! where each came from, and every change to each (SPEC §3).

use super::{Store, parse_ts, ts};
use crate::rules::model::{Origin, Rule};
use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use sqlx::{Row as _, SqliteConnection};
use std::collections::BTreeSet;

/// A rule as kept in the database.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRule {
    /// The rule.
    pub rule: Rule,
    /// Where it came from (`cli` or the rules file that owns it).
    pub origin: Origin,
    /// When it was first stored.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What [`Store::sync_rules`] did, by rule name (each list sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncSummary {
    /// Rules that were not in the database.
    pub added: Vec<String>,
    /// Rules whose definition (or owner) changed.
    pub updated: Vec<String>,
    /// Rules pruned because their file no longer has them.
    pub removed: Vec<String>,
    /// Rules already stored as they are.
    pub unchanged: Vec<String>,
}

/// One change to a rule: who, when, the full rule before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    /// Its id (increasing).
    pub id: i64,
    /// The rule's name.
    pub rule: String,
    /// When.
    pub at: DateTime<Utc>,
    /// `cli` or `file:PATH`.
    pub who: String,
    /// The rule before; `None` when it was created.
    pub before: Option<Rule>,
    /// The rule after; `None` when it was removed.
    pub after: Option<Rule>,
}

impl Store {
    /// Every rule, sorted by name.
    pub async fn rules(&self) -> anyhow::Result<Vec<StoredRule>> {
        let rows = sqlx::query(
            "SELECT definition, origin, created_at, updated_at FROM rules ORDER BY name",
        )
        .fetch_all(self.sqlite())
        .await?;
        rows.iter().map(stored_rule).collect()
    }

    /// One rule by name.
    pub async fn rule(&self, name: &str) -> anyhow::Result<Option<StoredRule>> {
        let mut conn = self.sqlite().acquire().await?;
        load(&mut conn, name).await
    }

    /// Makes the rules owned by `origin` be `rules`, in one transaction: adds
    /// new ones, updates changed ones (with a revision), leaves equal ones,
    /// and with `prune` removes that origin's rules that are not in `rules`.
    ///
    /// Rules owned by another file are never touched: a rule in `rules`
    /// with the name of a rule owned by another file is an error that names
    /// both files. A CLI-owned rule of that name is taken over (a revision
    /// is recorded).
    pub async fn sync_rules(
        &self,
        origin: &Origin,
        rules: &[Rule],
        prune: bool,
        at: DateTime<Utc>,
    ) -> anyhow::Result<SyncSummary> {
        let who = origin.as_string();
        let mut summary = SyncSummary::default();
        let mut tx = self.write_sqlite().await?;
        let mut seen = BTreeSet::new();
        for rule in rules {
            if !seen.insert(rule.name.as_str()) {
                bail!("rule {:?} appears twice in {}", rule.name, describe(origin));
            }
            match load(&mut tx, &rule.name).await? {
                None => {
                    insert(&mut tx, rule, origin, at).await?;
                    revision(&mut tx, &rule.name, at, &who, None, Some(rule)).await?;
                    summary.added.push(rule.name.clone());
                }
                Some(stored) => {
                    if let Origin::File(_) = &stored.origin
                        && stored.origin != *origin
                    {
                        bail!(
                            "rule {:?} in {} is already defined in {}; rename one of them",
                            rule.name,
                            describe(origin),
                            describe(&stored.origin)
                        );
                    }
                    if stored.rule == *rule && stored.origin == *origin {
                        summary.unchanged.push(rule.name.clone());
                    } else {
                        update(&mut tx, rule, origin, at).await?;
                        revision(
                            &mut tx,
                            &rule.name,
                            at,
                            &who,
                            Some(&stored.rule),
                            Some(rule),
                        )
                        .await?;
                        summary.updated.push(rule.name.clone());
                    }
                }
            }
        }
        if prune {
            let owned: Vec<String> =
                sqlx::query_scalar("SELECT name FROM rules WHERE origin = ? ORDER BY name")
                    .bind(&who)
                    .fetch_all(&mut *tx)
                    .await?;
            for name in owned.into_iter().filter(|n| !seen.contains(n.as_str())) {
                delete(&mut tx, &name, &who, at).await?;
                summary.removed.push(name);
            }
        }
        tx.commit().await?;
        for list in [
            &mut summary.added,
            &mut summary.updated,
            &mut summary.removed,
            &mut summary.unchanged,
        ] {
            list.sort();
        }
        Ok(summary)
    }

    /// Enables or disables a rule (recording a revision by `who`); `false`
    /// when there is no such rule. The rule keeps its owner.
    pub async fn set_rule_enabled(
        &self,
        name: &str,
        enabled: bool,
        who: &Origin,
        at: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let mut tx = self.write_sqlite().await?;
        let Some(stored) = load(&mut tx, name).await? else {
            return Ok(false);
        };
        if stored.rule.enabled != enabled {
            let mut rule = stored.rule.clone();
            rule.enabled = enabled;
            update(&mut tx, &rule, &stored.origin, at).await?;
            revision(
                &mut tx,
                name,
                at,
                &who.as_string(),
                Some(&stored.rule),
                Some(&rule),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Removes a rule (recording a revision by `who`); `false` when there is
    /// no such rule.
    pub async fn remove_rule(
        &self,
        name: &str,
        who: &Origin,
        at: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let mut tx = self.write_sqlite().await?;
        let found = delete(&mut tx, name, &who.as_string(), at).await?;
        tx.commit().await?;
        Ok(found)
    }

    /// The revisions of one rule, or of every rule, oldest first.
    pub async fn revisions(&self, name: Option<&str>) -> anyhow::Result<Vec<Revision>> {
        let rows = sqlx::query(
            "SELECT id, rule, at, who, before, after FROM rule_revisions
             WHERE ?1 IS NULL OR rule = ?1 ORDER BY id",
        )
        .bind(name)
        .fetch_all(self.sqlite())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Revision {
                    id: row.get("id"),
                    rule: row.get("rule"),
                    at: parse_ts(row.get("at"))?,
                    who: row.get("who"),
                    before: optional_rule(row.get("before"))?,
                    after: optional_rule(row.get("after"))?,
                })
            })
            .collect()
    }
}

/// `file PATH` or `the command line`, for messages.
fn describe(origin: &Origin) -> String {
    match origin {
        Origin::Cli => "the command line".into(),
        Origin::File(path) => format!("file {path}"),
    }
}

fn stored_rule(row: &sqlx::sqlite::SqliteRow) -> anyhow::Result<StoredRule> {
    let definition: &str = row.get("definition");
    Ok(StoredRule {
        rule: serde_json::from_str(definition).context("bad rule definition in the database")?,
        origin: Origin::parse(row.get("origin")),
        created_at: parse_ts(row.get("created_at"))?,
        updated_at: parse_ts(row.get("updated_at"))?,
    })
}

fn optional_rule(json: Option<&str>) -> anyhow::Result<Option<Rule>> {
    json.map(|j| serde_json::from_str(j).context("bad rule revision in the database"))
        .transpose()
}

async fn load(conn: &mut SqliteConnection, name: &str) -> anyhow::Result<Option<StoredRule>> {
    let row =
        sqlx::query("SELECT definition, origin, created_at, updated_at FROM rules WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    row.as_ref().map(stored_rule).transpose()
}

async fn insert(
    conn: &mut SqliteConnection,
    rule: &Rule,
    origin: &Origin,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO rules (name, origin, enabled, priority, definition, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&rule.name)
    .bind(origin.as_string())
    .bind(rule.enabled)
    .bind(rule.priority)
    .bind(serde_json::to_string(rule)?)
    .bind(ts(at))
    .bind(ts(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn update(
    conn: &mut SqliteConnection,
    rule: &Rule,
    origin: &Origin,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE rules SET origin = ?, enabled = ?, priority = ?, definition = ?, updated_at = ?
         WHERE name = ?",
    )
    .bind(origin.as_string())
    .bind(rule.enabled)
    .bind(rule.priority)
    .bind(serde_json::to_string(rule)?)
    .bind(ts(at))
    .bind(&rule.name)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes a rule and records the revision; `false` when there was none.
async fn delete(
    conn: &mut SqliteConnection,
    name: &str,
    who: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let Some(stored) = load(conn, name).await? else {
        return Ok(false);
    };
    sqlx::query("DELETE FROM rules WHERE name = ?")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    revision(conn, name, at, who, Some(&stored.rule), None).await?;
    Ok(true)
}

async fn revision(
    conn: &mut SqliteConnection,
    name: &str,
    at: DateTime<Utc>,
    who: &str,
    before: Option<&Rule>,
    after: Option<&Rule>,
) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO rule_revisions (rule, at, who, before, after) VALUES (?, ?, ?, ?, ?)")
        .bind(name)
        .bind(ts(at))
        .bind(who)
        .bind(before.map(serde_json::to_string).transpose()?)
        .bind(after.map(serde_json::to_string).transpose()?)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
