//! Unit tests of the pure core, with plain values and an injected `now`.

use super::evaluate::Amounts;
use super::inputs::{Claim, Exemption, Guardrails, Series};
use super::plan::{ChangeKind, Hold, KeyUpdate, Outcome};
use super::reconcile::{Guard, Inputs, Planner, Reconciliation, plan};
use crate::domain::{Field, FieldValue, Key, LimitReset, Settings, Window, Workspace};
use crate::rules::model::*;
use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use std::collections::{BTreeSet, HashMap};

/// The JSON body of the PATCH that carries `update`.
fn body(update: &KeyUpdate) -> serde_json::Value {
    update
        .values
        .iter()
        .map(|v| (v.field().to_string(), v.to_json()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn key(name: &str) -> Key {
    serde_json::from_value(serde_json::json!({
        "hash": format!("h-{name}"), "name": name, "label": "sk-or-v1-x", "disabled": false,
        "limit": 100.0, "limit_remaining": 100.0, "limit_reset": "monthly",
        "include_byok_in_limit": false, "usage": 0.0, "usage_daily": 0.0,
        "usage_weekly": 0.0, "usage_monthly": 0.0, "byok_usage": 0.0,
        "byok_usage_daily": 0.0, "byok_usage_weekly": 0.0, "byok_usage_monthly": 0.0,
    }))
    .unwrap()
}

fn spent(mut k: Key, monthly: f64) -> Key {
    k.usage_monthly = Some(monthly);
    k.usage = Some(monthly);
    k
}

fn rule(name: &str, names: &[&str], when: Conditions, set: Settings) -> Rule {
    Rule {
        name: name.into(),
        description: None,
        enabled: true,
        priority: 0,
        keys: Selector::Match(Match {
            names: names.iter().map(|s| s.to_string()).collect(),
            ..Match::default()
        }),
        schedule: None,
        timezone: None,
        when,
        set,
        warn_at: vec![],
        warn_before_secs: vec![],
    }
}

fn budget(usd: f64, window: Window, scope: Scope) -> Conditions {
    Conditions {
        budget: Some(Budget {
            usd: Amount::Fixed(usd),
            window,
            scope,
            include_byok: false,
            at: 1.0,
        }),
        ..Conditions::default()
    }
}

fn disable() -> Settings {
    Settings {
        disabled: Some(true),
        ..Settings::default()
    }
}

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

struct World {
    rules: Vec<Rule>,
    keys: Vec<Key>,
    claims: Vec<Claim>,
    exemptions: Vec<Exemption>,
    amounts: Amounts,
    series: Series,
    guardrails: Guardrails,
    guard: Guard,
    tz: chrono_tz::Tz,
}

impl World {
    fn new(rules: Vec<Rule>, keys: Vec<Key>) -> World {
        World {
            rules,
            keys,
            claims: vec![],
            exemptions: vec![],
            amounts: Amounts::new(),
            series: Series::new(),
            guardrails: Guardrails::NotRead,
            guard: Guard {
                max_changes_per_run: 1000,
                max_disable_fraction: 1.0,
                force: false,
            },
            tz: chrono_tz::UTC,
        }
    }

    fn plan(&self, now: DateTime<Utc>) -> Reconciliation {
        self.plan_by(&mut Planner::default(), &[], now)
    }

    /// The plan made by `planner`, with the account's `workspaces`.
    fn plan_by(
        &self,
        planner: &mut Planner,
        workspaces: &[Workspace],
        now: DateTime<Utc>,
    ) -> Reconciliation {
        let standing = HashMap::new();
        planner
            .plan(&Inputs {
                workspaces,
                rules: &self.rules,
                due: None,
                standing: &standing,
                keys: &self.keys,
                claims: &self.claims,
                exemptions: &self.exemptions,
                amounts: &self.amounts,
                credits: None,
                series: &self.series,
                guardrails: &self.guardrails,
                now,
                default_tz: self.tz,
                guard: self.guard,
            })
            .unwrap()
    }

    /// The plan made by `planner` and one made from scratch (by a fresh
    /// planner: [`plan`]), checked equal.
    fn plan_kept(
        &self,
        planner: &mut Planner,
        workspaces: &[Workspace],
        now: DateTime<Utc>,
    ) -> Reconciliation {
        let kept = self.plan_by(planner, workspaces, now);
        let fresh = self.plan_by(&mut Planner::default(), workspaces, now);
        assert_eq!(
            kept, fresh,
            "a planner's plan is the plan made from scratch"
        );
        kept
    }

    /// Applies a plan to the keys and claims as a successful run would.
    fn apply(&mut self, o: &Reconciliation, now: DateTime<Utc>) {
        for c in o.plan.changes.iter().filter(|c| c.held.is_none()) {
            let k = self.keys.iter_mut().find(|k| k.hash == c.key_hash).unwrap();
            for (field, fc) in &c.fields {
                match c.kind {
                    ChangeKind::Assert | ChangeKind::Reassert => {
                        k.set(fc.to);
                        let original = self
                            .claims
                            .iter()
                            .find(|cl| cl.key_hash == c.key_hash && cl.field == *field)
                            .map_or(fc.from, |cl| cl.original);
                        self.claims
                            .retain(|cl| !(cl.key_hash == c.key_hash && cl.field == *field));
                        self.claims.push(Claim {
                            key_hash: c.key_hash.clone(),
                            field: *field,
                            rule: c.rule.clone(),
                            original,
                            value: fc.to,
                            since: now,
                        });
                    }
                    ChangeKind::Release => {
                        k.set(fc.to);
                        self.claims
                            .retain(|cl| !(cl.key_hash == c.key_hash && cl.field == *field));
                    }
                    _ => self
                        .claims
                        .retain(|cl| !(cl.key_hash == c.key_hash && cl.field == *field)),
                }
            }
        }
    }
}

fn kinds(o: &Reconciliation) -> Vec<(String, ChangeKind)> {
    o.plan
        .changes
        .iter()
        .map(|c| (c.key_name.clone(), c.kind))
        .collect()
}

#[test]
fn group_budget_disables_every_selected_key_and_says_why() {
    let keys = vec![
        spent(key("team-a-1"), 20.0),
        spent(key("team-a-2"), 20.0),
        spent(key("team-a-3"), 11.0),
        spent(key("team-b-1"), 90.0),
    ];
    let mut w = World::new(
        vec![rule(
            "team-a",
            &["team-a-*"],
            budget(50.0, Window::Monthly, Scope::Group),
            disable(),
        )],
        keys,
    );
    let now = at(2026, 11, 27, 10);
    let o = w.plan(now);
    assert_eq!(o.plan.changes.len(), 3);
    for c in &o.plan.changes {
        assert_eq!(c.kind, ChangeKind::Assert);
        assert_eq!(
            c.reason,
            "group monthly spend 51.00 USD >= budget 50.00 USD"
        );
        assert!(c.disables());
    }
    let patches = o.plan.patches();
    assert_eq!(patches.len(), 3);
    assert_eq!(body(&patches[0]).to_string(), r#"{"disabled":true}"#);
    w.apply(&o, now);
    assert!(
        w.plan(now).plan.changes.is_empty(),
        "a second run changes nothing"
    );
}

#[test]
fn spend_exactly_equal_to_the_budget_holds() {
    let w = World::new(
        vec![rule(
            "each",
            &["*"],
            budget(10.0, Window::Monthly, Scope::Each),
            disable(),
        )],
        vec![spent(key("a"), 10.0), spent(key("b"), 9.99)],
    );
    assert_eq!(
        kinds(&w.plan(at(2026, 1, 5, 0))),
        vec![("a".into(), ChangeKind::Assert)]
    );
}

#[test]
fn at_fraction_scales_the_threshold() {
    let mut when = budget(50.0, Window::Monthly, Scope::Each);
    when.budget.as_mut().unwrap().at = 0.8;
    let w = World::new(
        vec![rule("r", &["*"], when, disable())],
        vec![spent(key("a"), 40.0), spent(key("b"), 39.9)],
    );
    let o = w.plan(at(2026, 1, 5, 0));
    assert_eq!(kinds(&o), vec![("a".into(), ChangeKind::Assert)]);
    assert_eq!(
        o.plan.changes[0].reason,
        "key monthly spend 40.00 USD >= 80% of budget 50.00 USD (40.00 USD)"
    );
}

#[test]
fn month_roll_over_releases_and_leaves_a_person_disabled_key_alone() {
    let mut person_disabled = key("team-a-4");
    person_disabled.disabled = true;
    let mut w = World::new(
        vec![rule(
            "team-a",
            &["team-a-*"],
            budget(50.0, Window::Monthly, Scope::Group),
            disable(),
        )],
        vec![
            spent(key("team-a-1"), 30.0),
            spent(key("team-a-2"), 25.0),
            person_disabled,
        ],
    );
    let now = at(2026, 11, 27, 10);
    let o = w.plan(now);
    assert_eq!(
        o.plan.changes.len(),
        2,
        "the key already disabled needs no change"
    );
    w.apply(&o, now);
    // The month rolls over: the windows are empty again.
    for k in &mut w.keys {
        k.usage_monthly = Some(0.0);
    }
    let o = w.plan(at(2026, 12, 1, 0));
    assert_eq!(
        kinds(&o),
        vec![
            ("team-a-1".into(), ChangeKind::Release),
            ("team-a-2".into(), ChangeKind::Release)
        ]
    );
    assert!(o.plan.changes[0].reason.starts_with(
        "rule team-a no longer applies: group monthly spend 0.00 USD < budget 50.00 USD"
    ));
    w.apply(&o, at(2026, 12, 1, 0));
    assert!(
        w.keys
            .iter()
            .find(|k| k.name == "team-a-4")
            .unwrap()
            .disabled
    );
    assert!(
        !w.keys
            .iter()
            .find(|k| k.name == "team-a-1")
            .unwrap()
            .disabled
    );
}

#[test]
fn a_person_re_enabling_an_over_budget_key_gets_reassert() {
    let mut w = World::new(
        vec![rule(
            "r",
            &["*"],
            budget(10.0, Window::Monthly, Scope::Each),
            disable(),
        )],
        vec![spent(key("a"), 12.0)],
    );
    let now = at(2026, 3, 3, 3);
    let o = w.plan(now);
    w.apply(&o, now);
    w.keys[0].disabled = false;
    assert_eq!(
        kinds(&w.plan(now)),
        vec![("a".into(), ChangeKind::Reassert)]
    );
}

#[test]
fn an_exemption_holds_back_once_then_silently() {
    let mut w = World::new(
        vec![rule(
            "r",
            &["*"],
            budget(10.0, Window::Monthly, Scope::Each),
            disable(),
        )],
        vec![spent(key("a"), 12.0)],
    );
    let now = at(2026, 3, 3, 3);
    w.exemptions.push(Exemption {
        id: 1,
        key_hash: "h-a".into(),
        rule: None,
        until: at(2026, 3, 10, 0),
        reason: "demo day".into(),
        held_at: None,
        created_at: now,
    });
    let o = w.plan(now);
    assert_eq!(o.plan.changes.len(), 1);
    assert_eq!(
        o.plan.changes[0].held.as_ref().map(Hold::outcome),
        Some(Outcome::Skipped)
    );
    assert!(o.plan.patches().is_empty());
    w.exemptions[0].held_at = Some(now);
    assert!(w.plan(now).plan.changes.is_empty());
    // Expired: asserted again.
    assert_eq!(
        kinds(&w.plan(at(2026, 3, 10, 0))),
        vec![("a".into(), ChangeKind::Assert)]
    );
}

fn season_rule() -> Rule {
    rule(
        "holiday",
        &["support-*"],
        Conditions {
            season: Some(Season {
                from: (11, 15),
                to: (1, 10),
            }),
            ..Conditions::default()
        },
        Settings {
            limit: Some(Some(5.0)),
            limit_reset: Some(Some(LimitReset::Daily)),
            ..Settings::default()
        },
    )
}

#[test]
fn a_season_sets_and_gives_back_exactly_the_original() {
    let mut w = World::new(vec![season_rule()], vec![key("support-1")]);
    assert!(w.plan(at(2026, 11, 14, 23)).plan.changes.is_empty());
    let inside = at(2026, 11, 15, 0);
    let o = w.plan(inside);
    assert_eq!(o.plan.changes.len(), 1);
    let patch = body(&o.plan.patches()[0]);
    assert_eq!(
        patch,
        serde_json::json!({"limit": 5.0, "limit_reset": "daily"})
    );
    w.apply(&o, inside);
    // Wraps the year end: still in season on 10 Jan, out on 11 Jan.
    assert!(w.plan(at(2027, 1, 10, 23)).plan.changes.is_empty());
    let after = at(2027, 1, 11, 0);
    let o = w.plan(after);
    assert_eq!(kinds(&o), vec![("support-1".into(), ChangeKind::Release)]);
    w.apply(&o, after);
    assert_eq!(w.keys[0].limit, Some(100.0));
    assert_eq!(w.keys[0].limit_reset.as_deref(), Some("monthly"));
}

#[test]
fn a_limit_changed_by_a_person_during_the_season_is_drift_and_left() {
    let mut w = World::new(vec![season_rule()], vec![key("support-1")]);
    let inside = at(2026, 12, 1, 0);
    let o = w.plan(inside);
    w.apply(&o, inside);
    w.keys[0].limit = Some(80.0);
    // Still in season: the limit is asserted again.
    assert_eq!(
        kinds(&w.plan(inside)),
        vec![("support-1".into(), ChangeKind::Reassert)]
    );
    let o = w.plan(at(2027, 2, 1, 0));
    let mut got: Vec<(ChangeKind, Vec<Field>)> = o
        .plan
        .changes
        .iter()
        .map(|c| (c.kind, c.fields.keys().copied().collect()))
        .collect();
    got.sort_by_key(|(k, _)| *k);
    assert_eq!(
        got,
        vec![
            (ChangeKind::Release, vec![Field::LimitReset]),
            (ChangeKind::Drift, vec![Field::Limit])
        ]
    );
    let patch = body(&o.plan.patches()[0]);
    assert_eq!(
        patch,
        serde_json::json!({"limit_reset": "monthly"}),
        "drift sends nothing"
    );
}

#[test]
fn higher_priority_wins_and_equal_priority_is_a_recorded_conflict() {
    let limit = |v: f64| Settings {
        limit: Some(Some(v)),
        ..Settings::default()
    };
    let mut high = rule("b-high", &["*"], Conditions::default(), limit(20.0));
    high.priority = 5;
    let low = rule("a-low", &["*"], Conditions::default(), limit(30.0));
    let w = World::new(vec![low.clone(), high], vec![key("k")]);
    let o = w.plan(at(2026, 1, 1, 0));
    assert_eq!(o.plan.changes[0].rule, "b-high");
    assert!(o.plan.conflicts.is_empty());

    let tie = rule("b-tie", &["*"], Conditions::default(), limit(20.0));
    let w = World::new(vec![tie, low], vec![key("k")]);
    let o = w.plan(at(2026, 1, 1, 0));
    assert_eq!(
        o.plan.changes[0].rule, "a-low",
        "ties go to the name that sorts first"
    );
    assert_eq!(o.plan.conflicts.len(), 1);
    assert_eq!(
        serde_json::to_value(&o.plan.conflicts).unwrap(),
        serde_json::json!([{
            "key_hash": o.plan.changes[0].key_hash,
            "field": "limit",
            "winner": "a-low",
            "loser": "b-tie",
        }]),
        "as `plan --format json` and the conflict event print it"
    );
}

#[test]
fn an_unknown_window_counter_is_not_zero_and_keeps_the_last_result() {
    let mut k = key("a");
    k.usage_daily = None;
    let w = World::new(
        vec![rule(
            "r",
            &["*"],
            budget(1.0, Window::Daily, Scope::Each),
            disable(),
        )],
        vec![k],
    );
    let o = w.plan(at(2026, 1, 1, 0));
    assert!(o.plan.changes.is_empty());
    assert_eq!(o.plan.skips.len(), 1);
    assert!(
        o.plan.skips[0]
            .reason
            .contains("daily usage of key a unknown")
    );
}

#[test]
fn an_unavailable_budget_source_never_causes_a_change() {
    let source = Source {
        kind: SourceKind::Env {
            name: "BUDGET".into(),
        },
        max_age_secs: 3600,
    };
    let mut when = budget(0.0, Window::Monthly, Scope::Each);
    when.budget.as_mut().unwrap().usd = Amount::Source(source.clone());
    let mut w = World::new(
        vec![rule("r", &["*"], when, disable())],
        vec![spent(key("a"), 5.0)],
    );
    w.amounts.insert(source.id(), None);
    assert!(w.plan(at(2026, 1, 1, 0)).plan.changes.is_empty());
    w.amounts.insert(source.id(), Some(4.0));
    assert_eq!(w.plan(at(2026, 1, 1, 0)).plan.changes.len(), 1);
}

#[test]
fn hours_wrapping_midnight_in_a_timezone() {
    let night = Conditions {
        hours: Some(Hours {
            start: NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
        }),
        ..Conditions::default()
    };
    let mut r = rule("night", &["*"], night, disable());
    r.timezone = Some("Europe/Berlin".into());
    let w = World::new(vec![r], vec![key("a")]);
    // 17:30 UTC in winter is 18:30 in Berlin: inside.
    assert_eq!(
        w.plan(Utc.with_ymd_and_hms(2026, 1, 5, 17, 30, 0).unwrap())
            .plan
            .changes
            .len(),
        1
    );
    // 07:30 UTC is 08:30 in Berlin: outside.
    assert!(
        w.plan(Utc.with_ymd_and_hms(2026, 1, 5, 7, 30, 0).unwrap())
            .plan
            .changes
            .is_empty()
    );
    // 06:30 UTC in summer (DST) is 08:30 in Berlin: outside; 05:30 UTC is 07:30: inside.
    assert!(
        w.plan(Utc.with_ymd_and_hms(2026, 7, 6, 6, 30, 0).unwrap())
            .plan
            .changes
            .is_empty()
    );
    assert_eq!(
        w.plan(Utc.with_ymd_and_hms(2026, 7, 6, 5, 30, 0).unwrap())
            .plan
            .changes
            .len(),
        1
    );
}

#[test]
fn a_season_starts_at_local_midnight_on_a_dst_day() {
    let mut r = season_rule();
    r.when.season = Some(Season {
        from: (3, 29),
        to: (3, 29),
    });
    r.timezone = Some("Europe/Berlin".into());
    let w = World::new(vec![r], vec![key("support-1")]);
    // 29 Mar 2026 is the spring-forward day in Berlin; local midnight is 23:00 UTC the day before.
    assert!(
        w.plan(Utc.with_ymd_and_hms(2026, 3, 28, 22, 59, 0).unwrap())
            .plan
            .changes
            .is_empty()
    );
    assert_eq!(
        w.plan(Utc.with_ymd_and_hms(2026, 3, 28, 23, 0, 0).unwrap())
            .plan
            .changes
            .len(),
        1
    );
    // The day has 23 hours: it ends at 22:00 UTC.
    assert_eq!(
        w.plan(Utc.with_ymd_and_hms(2026, 3, 29, 21, 59, 0).unwrap())
            .plan
            .changes
            .len(),
        1
    );
    assert!(
        w.plan(Utc.with_ymd_and_hms(2026, 3, 29, 22, 0, 0).unwrap())
            .plan
            .changes
            .is_empty()
    );
}

#[test]
fn the_guard_holds_every_change_when_too_many_keys_would_be_disabled() {
    let keys: Vec<Key> = (0..10)
        .map(|i| spent(key(&format!("k{i}")), if i < 6 { 20.0 } else { 0.0 }))
        .collect();
    let mut w = World::new(
        vec![rule(
            "r",
            &["*"],
            budget(10.0, Window::Monthly, Scope::Each),
            disable(),
        )],
        keys,
    );
    w.guard.max_disable_fraction = 0.5;
    let o = w.plan(at(2026, 1, 1, 0));
    assert!(o.guard_tripped);
    assert_eq!(o.plan.changes.len(), 6);
    assert!(o.plan.changes.iter().all(|c| c.held == Some(Hold::Guard)));
    assert!(o.plan.patches().is_empty());
    w.guard.force = true;
    let o = w.plan(at(2026, 1, 1, 0));
    assert!(!o.guard_tripped);
    assert_eq!(o.plan.patches().len(), 6);
}

#[test]
fn claims_of_a_deleted_key_are_dropped() {
    let mut w = World::new(vec![], vec![key("a")]);
    w.claims.push(Claim {
        key_hash: "h-gone".into(),
        field: Field::Disabled,
        rule: "r".into(),
        original: FieldValue::Disabled(false),
        value: FieldValue::Disabled(true),
        since: at(2026, 1, 1, 0),
    });
    let o = w.plan(at(2026, 1, 2, 0));
    assert_eq!(o.plan.changes.len(), 1);
    assert_eq!(o.plan.changes[0].kind, ChangeKind::Deleted);
    assert!(o.plan.patches().is_empty());
}

#[test]
fn a_rule_not_due_keeps_its_standing_result() {
    let w = World::new(
        vec![rule(
            "r",
            &["*"],
            budget(10.0, Window::Monthly, Scope::Each),
            disable(),
        )],
        vec![spent(key("a"), 0.0)],
    );
    let due: BTreeSet<String> = BTreeSet::new();
    let standing: HashMap<String, BTreeSet<String>> =
        [("r".to_string(), ["h-a".to_string()].into())].into();
    let o = plan(&Inputs {
        workspaces: &[],
        rules: &w.rules,
        due: Some(&due),
        standing: &standing,
        keys: &w.keys,
        claims: &w.claims,
        exemptions: &w.exemptions,
        amounts: &w.amounts,
        credits: None,
        series: &w.series,
        guardrails: &w.guardrails,
        now: at(2026, 1, 1, 0),
        default_tz: w.tz,
        guard: w.guard,
    })
    .unwrap();
    assert_eq!(
        o.plan.changes.len(),
        1,
        "the standing assertion still applies"
    );
    assert!(o.holding.is_empty(), "nothing was evaluated");
}

#[test]
fn a_between_window_is_half_open() {
    let when = Conditions {
        between: Some(Between {
            start: NaiveDate::from_ymd_opt(2026, 12, 20)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap(),
            end: NaiveDate::from_ymd_opt(2026, 12, 27)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap(),
        }),
        ..Conditions::default()
    };
    let w = World::new(vec![rule("r", &["*"], when, disable())], vec![key("a")]);
    assert_eq!(w.plan(at(2026, 12, 20, 0)).plan.changes.len(), 1);
    assert!(w.plan(at(2026, 12, 27, 0)).plan.changes.is_empty());
}

#[test]
fn guardrail_moves_are_batched_by_guardrail_and_left_out_of_the_patches() {
    use super::plan::{GuardrailAction, GuardrailBatch};
    use crate::domain::{Guardrail, GuardrailId, GuardrailRef};
    let cheap: GuardrailId = "00000000-0000-4000-8000-00000000c4e9".parse().unwrap();
    let other: GuardrailId = "00000000-0000-4000-8000-0000000070a1".parse().unwrap();
    let mut keys: Vec<Key> = (0..5).map(|i| key(&format!("k{i}"))).collect();
    keys[3].guardrail = Some(other);
    keys[4].guardrail = Some(cheap);
    let set = Settings {
        disabled: Some(true),
        guardrail: Some(GuardrailRef::parse("cheap")),
        ..Settings::default()
    };
    let mut w = World::new(vec![rule("r", &["k*"], Conditions::default(), set)], keys);
    let not_read = w.plan(at(2026, 1, 1, 0)).plan;
    assert!(
        not_read.changes.is_empty(),
        "guardrails unknown: the rule is not evaluated"
    );
    assert_eq!(
        not_read.skips[0].reason,
        "set.guardrail: the guardrails were not read in this run"
    );

    w.guardrails = Guardrails::Read(vec![
        Guardrail {
            id: cheap,
            name: "cheap".into(),
        },
        Guardrail {
            id: other,
            name: "other".into(),
        },
    ]);
    let plan = w.plan(at(2026, 1, 1, 0)).plan;
    assert_eq!(plan.patches().len(), 5);
    assert!(
        plan.patches()
            .iter()
            .all(|p| body(p) == serde_json::json!({"disabled": true}))
    );
    let hashes = |names: &[&str]| names.iter().map(|n| format!("h-{n}")).collect::<Vec<_>>();
    assert_eq!(
        plan.guardrail_batches(2),
        [
            GuardrailBatch {
                action: GuardrailAction::Assign(cheap),
                key_hashes: hashes(&["k0", "k1"]),
            },
            GuardrailBatch {
                action: GuardrailAction::Assign(cheap),
                key_hashes: hashes(&["k2", "k3"]),
            },
        ]
    );
    assert!(plan.changes[3].reason.ends_with(&format!(
        "guardrail \"other\" ({other}) -> \"cheap\" ({cheap})"
    )));
}

/// The keys disabled by `o`, by name.
fn disabled_by(o: &Reconciliation) -> Vec<&str> {
    o.plan
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Assert)
        .map(|c| c.key_name.as_str())
        .collect()
}

#[test]
fn a_planner_selects_again_what_a_rename_a_new_key_or_a_reload_changed() {
    let over = |name: &str| spent(key(name), 50.0);
    let mut world = World::new(
        vec![rule(
            "team-a",
            &["team-a-*"],
            budget(10.0, Window::Monthly, Scope::Each),
            disable(),
        )],
        vec![over("team-a-1"), over("team-b-1"), over("team-a-2")],
    );
    let mut ws = world.keys[1].clone();
    ws.hash = "h-ws".into();
    ws.name = "lab-key".into();
    ws.workspace_id = Some("ws-1".into());
    world.keys.push(ws);
    let now = at(2026, 12, 10, 12);
    let mut planner = Planner::default();
    let first = world.plan_kept(&mut planner, &[], now);
    assert_eq!(disabled_by(&first), ["team-a-1", "team-a-2"]);
    assert_eq!(
        world.plan_kept(&mut planner, &[], now),
        first,
        "the same keys: the kept selection"
    );

    // A key renamed into the rule's selection.
    world.keys[1].name = "team-a-3".into();
    let renamed = world.plan_kept(&mut planner, &[], now);
    assert_eq!(disabled_by(&renamed), ["team-a-1", "team-a-2", "team-a-3"]);

    // A key added before the others, one removed: every position moves.
    world.keys.insert(0, over("team-a-0"));
    world.keys.remove(1);
    let added = world.plan_kept(&mut planner, &[], now);
    assert_eq!(disabled_by(&added), ["team-a-0", "team-a-2", "team-a-3"]);

    // A reload changes the rule's selector.
    world.rules[0].keys = Selector::Match(Match {
        names: vec!["team-a-*".into()],
        exclude: Exclude {
            names: vec!["team-a-0".into()],
            ..Exclude::default()
        },
        ..Match::default()
    });
    let reloaded = world.plan_kept(&mut planner, &[], now);
    assert_eq!(disabled_by(&reloaded), ["team-a-2", "team-a-3"]);

    // The workspaces listed differently: a selector by workspace slug.
    world.rules[0].keys = Selector::Match(Match {
        workspaces: vec!["lab".into()],
        ..Match::default()
    });
    assert!(disabled_by(&world.plan_kept(&mut planner, &[], now)).is_empty());
    let lab = Workspace {
        id: "ws-1".into(),
        slug: "lab".into(),
        name: "Lab".into(),
    };
    let listed = world.plan_kept(&mut planner, std::slice::from_ref(&lab), now);
    assert_eq!(disabled_by(&listed), ["lab-key"]);
}
