//! The `rules` and `rule_revisions` tables: rules as their JSON definition,
//! where each came from, and every change to each (SPEC §3).

use super::backend::{Conn, Tx, on_conn, on_pool};
use super::{Store, parse_ts, ts};
use crate::rules::model::{Origin, Rule};
use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
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
        let rows: Vec<RuleColumns> = on_pool!(self, |db| {
            sqlx::query_as(&format!("SELECT {RULE_COLUMNS} FROM rules ORDER BY name"))
                .fetch_all(db)
                .await?
        });
        rows.into_iter().map(stored_rule).collect()
    }

    /// One rule by name.
    pub async fn rule(&self, name: &str) -> anyhow::Result<Option<StoredRule>> {
        let row: Option<RuleColumns> = on_pool!(self, |db| {
            sqlx::query_as(LOAD).bind(name).fetch_optional(db).await?
        });
        row.map(stored_rule).transpose()
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
        let mut tx = self.write().await?;
        let mut seen = BTreeSet::new();
        for rule in rules {
            if !seen.insert(rule.name.as_str()) {
                bail!("rule {:?} appears twice in {}", rule.name, describe(origin));
            }
            match load(tx.conn(), &rule.name).await? {
                None => {
                    insert(tx.conn(), rule, origin, at).await?;
                    revision(tx.conn(), &rule.name, at, &who, None, Some(rule)).await?;
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
                        update(tx.conn(), rule, origin, at).await?;
                        revision(
                            tx.conn(),
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
            let owned: Vec<String> = on_conn!(tx.conn(), |c| {
                sqlx::query_scalar("SELECT name FROM rules WHERE origin = $1 ORDER BY name")
                    .bind(&who)
                    .fetch_all(&mut *c)
                    .await?
            });
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
        let mut tx = self.write().await?;
        let Some(stored) = load(tx.conn(), name).await? else {
            return Ok(false);
        };
        if stored.rule.enabled != enabled {
            let mut rule = stored.rule.clone();
            rule.enabled = enabled;
            update(tx.conn(), &rule, &stored.origin, at).await?;
            revision(
                tx.conn(),
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
        let mut tx = self.write().await?;
        let found = delete(&mut tx, name, &who.as_string(), at).await?;
        tx.commit().await?;
        Ok(found)
    }

    /// The revisions of one rule, or of every rule, oldest first.
    pub async fn revisions(&self, name: Option<&str>) -> anyhow::Result<Vec<Revision>> {
        let rows: Vec<RevisionColumns> = on_pool!(self, |db| {
            sqlx::query_as(
                "SELECT id, rule, at, who, before, after FROM rule_revisions
                 WHERE $1 IS NULL OR rule = $1 ORDER BY id",
            )
            .bind(name)
            .fetch_all(db)
            .await?
        });
        rows.into_iter()
            .map(|row| {
                Ok(Revision {
                    id: row.id,
                    rule: row.rule,
                    at: parse_ts(&row.at)?,
                    who: row.who,
                    before: optional_rule(row.before.as_deref())?,
                    after: optional_rule(row.after.as_deref())?,
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

/// The columns of a rule, as [`RULE_COLUMNS`] selects them.
const RULE_COLUMNS: &str = "definition, origin, created_at, updated_at";

/// One rule by name (`$1`).
const LOAD: &str = "SELECT definition, origin, created_at, updated_at FROM rules WHERE name = $1";

/// A `rules` row as [`RULE_COLUMNS`] selects it.
#[derive(sqlx::FromRow)]
struct RuleColumns {
    definition: String,
    origin: String,
    created_at: String,
    updated_at: String,
}

/// A `rule_revisions` row.
#[derive(sqlx::FromRow)]
struct RevisionColumns {
    id: i64,
    rule: String,
    at: String,
    who: String,
    before: Option<String>,
    after: Option<String>,
}

fn stored_rule(row: RuleColumns) -> anyhow::Result<StoredRule> {
    Ok(StoredRule {
        rule: serde_json::from_str(&row.definition)
            .context("bad rule definition in the database")?,
        origin: Origin::parse(&row.origin),
        created_at: parse_ts(&row.created_at)?,
        updated_at: parse_ts(&row.updated_at)?,
    })
}

fn optional_rule(json: Option<&str>) -> anyhow::Result<Option<Rule>> {
    json.map(|j| serde_json::from_str(j).context("bad rule revision in the database"))
        .transpose()
}

async fn load(conn: Conn<'_>, name: &str) -> anyhow::Result<Option<StoredRule>> {
    let row: Option<RuleColumns> = on_conn!(conn, |c| {
        sqlx::query_as(LOAD)
            .bind(name)
            .fetch_optional(&mut *c)
            .await?
    });
    row.map(stored_rule).transpose()
}

async fn insert(
    conn: Conn<'_>,
    rule: &Rule,
    origin: &Origin,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let definition = serde_json::to_string(rule)?;
    on_conn!(conn, |c| {
        sqlx::query(
            "INSERT INTO rules (name, origin, enabled, priority, definition, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&rule.name)
        .bind(origin.as_string())
        .bind(i64::from(rule.enabled))
        .bind(rule.priority)
        .bind(&definition)
        .bind(ts(at))
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

async fn update(
    conn: Conn<'_>,
    rule: &Rule,
    origin: &Origin,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let definition = serde_json::to_string(rule)?;
    on_conn!(conn, |c| {
        sqlx::query(
            "UPDATE rules SET origin = $1, enabled = $2, priority = $3, definition = $4,
                 updated_at = $5
             WHERE name = $6",
        )
        .bind(origin.as_string())
        .bind(i64::from(rule.enabled))
        .bind(rule.priority)
        .bind(&definition)
        .bind(ts(at))
        .bind(&rule.name)
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

/// Deletes a rule and records the revision; `false` when there was none.
async fn delete(tx: &mut Tx, name: &str, who: &str, at: DateTime<Utc>) -> anyhow::Result<bool> {
    let Some(stored) = load(tx.conn(), name).await? else {
        return Ok(false);
    };
    on_conn!(tx.conn(), |c| {
        sqlx::query("DELETE FROM rules WHERE name = $1")
            .bind(name)
            .execute(&mut *c)
            .await?;
    });
    revision(tx.conn(), name, at, who, Some(&stored.rule), None).await?;
    Ok(true)
}

async fn revision(
    conn: Conn<'_>,
    name: &str,
    at: DateTime<Utc>,
    who: &str,
    before: Option<&Rule>,
    after: Option<&Rule>,
) -> anyhow::Result<()> {
    let before = before.map(serde_json::to_string).transpose()?;
    let after = after.map(serde_json::to_string).transpose()?;
    on_conn!(conn, |c| {
        sqlx::query(
            "INSERT INTO rule_revisions (rule, at, who, before, after) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(name)
        .bind(ts(at))
        .bind(who)
        .bind(&before)
        .bind(&after)
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}
