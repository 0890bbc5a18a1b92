//! SPEC §10 "evaluating 100 rules over 10,000 keys takes milliseconds":
//! `engine::reconcile::plan` for 100 mixed rules over 10,000 keys (target
//! well under 10 ms), and the same at 1k/10k/100k keys with the cost per key,
//! which stays flat when growth is linear. Two cases: the first run, when
//! nearly every key needs a change (each with its reason), and the steady
//! state of every later run, when the keys already have what the rules want.
//!
//! The service plans with one `Planner` run after run, as `apply` does for
//! its one run: the first run is planned by a fresh planner (nothing kept);
//! the steady state by a planner that planned the same keys once before,
//! as at the service's second and later runs: it keeps which keys each
//! rule selects (and how many budget readings to make room for), and
//! evaluates and compares everything else again. "steady, nothing kept" is
//! the steady state planned by a fresh planner (a one-off `apply`).
//!
//! `KEYWARDEN_BENCH_PROFILE=steady` (or `fresh`: the steady state with
//! nothing kept, or `first`) makes one plan of that case over 10,000 keys
//! in `profiled` and nothing else, for
//! `valgrind --tool=callgrind --toggle-collect='*profiled*'`.

mod support;

use chrono::{DateTime, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use keywarden::domain::Key;
use keywarden::engine::evaluate::Amounts;
use keywarden::engine::inputs::{Guardrails, Series};
use keywarden::engine::plan::Plan;
use keywarden::engine::reconcile::{Guard, Inputs, Planner, plan};
use keywarden::engine::{ChangeKind, Claim};
use keywarden::rules::model::Rule;
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

/// The target for 100 rules over 10,000 keys.
const TARGET: Duration = Duration::from_millis(10);

/// What is planned over: the keys as listed and keywarden's claims on them.
struct Case {
    keys: Vec<Key>,
    claims: Vec<Claim>,
}

/// No usage snapshots: the bench's rules do not forecast.
static NO_SERIES: std::sync::LazyLock<Series> = std::sync::LazyLock::new(Series::new);

/// The inputs of a plan of `rules` over `case` at the bench's instant.
fn inputs<'a>(
    rules: &'a [Rule],
    case: &'a Case,
    standing: &'a HashMap<String, std::collections::BTreeSet<String>>,
    amounts: &'a Amounts,
) -> Inputs<'a> {
    Inputs {
        rules,
        workspaces: &[],
        due: None,
        standing,
        keys: &case.keys,
        claims: &case.claims,
        exemptions: &[],
        amounts,
        credits: None,
        series: &NO_SERIES,
        guardrails: &Guardrails::NotRead,
        now: support::start(),
        default_tz: chrono_tz::UTC,
        guard: Guard {
            max_changes_per_run: usize::MAX,
            max_disable_fraction: 1.0,
            force: false,
        },
    }
}

/// The keys and claims after `plan` was applied, as a successful run leaves them.
fn settled(case: &Case, plan: &Plan, now: DateTime<Utc>) -> Case {
    let mut keys = case.keys.clone();
    let position: HashMap<String, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.hash.clone(), i))
        .collect();
    let mut claims = Vec::new();
    for change in &plan.changes {
        let key = &mut keys[position[&change.key_hash]];
        for (&field, fc) in &change.fields {
            key.set(fc.to);
            if change.kind == ChangeKind::Assert {
                claims.push(Claim {
                    key_hash: change.key_hash.clone(),
                    field,
                    rule: change.rule.clone(),
                    original: fc.from,
                    value: fc.to,
                    since: now,
                });
            }
        }
    }
    Case { keys, claims }
}

/// What the planner of a case keeps from an earlier plan.
#[derive(Debug, Clone, Copy)]
enum Kept {
    /// Nothing: a fresh planner (the first run, a one-off `apply`).
    Nothing,
    /// The last plan's, over the same keys (the service's later runs).
    LastPlan,
}

/// One row of the table: keys, changes planned and time per plan.
struct Row {
    keys: usize,
    case: &'static str,
    changes: usize,
    /// Wall time per plan.
    time: Duration,
    /// CPU time per plan: on a machine shared with other work, the wall
    /// time of this one thread grows with the load and its CPU time much less.
    cpu: Duration,
}

fn bench_plan(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan_100_rules");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    let mut rows = Vec::new();
    let standing = HashMap::new();
    let amounts = Amounts::new();
    for n in [1_000usize, 10_000, 100_000] {
        let first = Case {
            keys: support::keys(n),
            claims: Vec::new(),
        };
        let hashes: Vec<String> = first.keys.iter().map(|k| k.hash.clone()).collect();
        let rules = support::rules(100, &hashes);
        let first_plan = plan(&inputs(&rules, &first, &standing, &amounts)).expect("plans");
        let steady = settled(&first, &first_plan.plan, support::start());
        let cases = [
            ("first run", &first, Kept::Nothing),
            ("steady state", &steady, Kept::LastPlan),
            ("steady, nothing kept", &steady, Kept::Nothing),
        ];
        for (case, keys, kept) in cases {
            let inputs = inputs(&rules, keys, &standing, &amounts);
            let mut planner = Planner::default();
            let changes = planner.plan(&inputs).expect("plans").plan.changes.len();
            let mut planned = || match kept {
                Kept::Nothing => plan(black_box(&inputs)).expect("plans"),
                Kept::LastPlan => planner.plan(black_box(&inputs)).expect("plans"),
            };
            // 100k keys is timed for the scaling line only: criterion's
            // samples of it would take minutes.
            if n <= 10_000 {
                group.throughput(Throughput::Elements(n as u64));
                group.bench_function(
                    BenchmarkId::new(case.replace(", ", "_").replace(" ", "_"), n),
                    |b| b.iter(&mut planned),
                );
            }
            // Criterion keeps its estimates to itself: time a few plans for the table.
            let rounds = if n > 10_000 { 2 } else { 10 };
            let started = support::Stopwatch::start();
            for _ in 0..rounds {
                black_box(planned());
            }
            let spent = started.spent();
            rows.push(Row {
                keys: n,
                case,
                changes,
                time: spent.wall / rounds,
                cpu: spent.cpu / rounds,
            });
        }
    }
    group.finish();

    println!("\nengine: plan for 100 rules (mixed selectors, budgets, seasons, hours, priorities)");
    println!(
        "{:>8} {:>20} {:>9} {:>12} {:>12} {:>12}  target (CPU time)",
        "keys", "case", "changes", "per plan", "CPU", "CPU per key"
    );
    for row in &rows {
        let target = if row.keys == 10_000 {
            format!(
                "< {} ms: {}",
                TARGET.as_millis(),
                support::verdict(row.cpu < TARGET)
            )
        } else {
            "linear: per key flat".to_string()
        };
        println!(
            "{:>8} {:>20} {:>9} {:>9.2} ms {:>9.2} ms {:>9.0} ns  {target}",
            row.keys,
            row.case,
            row.changes,
            row.time.as_secs_f64() * 1e3,
            row.cpu.as_secs_f64() * 1e3,
            row.cpu.as_secs_f64() * 1e9 / row.keys as f64
        );
    }
}

/// One plan of `inputs` by `planner`, its result dropped included: what a
/// profile counts.
#[inline(never)]
fn profiled(planner: &mut Planner, inputs: &Inputs<'_>) -> usize {
    planner
        .plan(black_box(inputs))
        .expect("plans")
        .plan
        .changes
        .len()
}

/// `KEYWARDEN_BENCH_PROFILE`: one plan of the case it names, over 10,000 keys.
fn profile(case: &str) {
    let (standing, amounts) = (HashMap::new(), Amounts::new());
    let first = Case {
        keys: support::keys(10_000),
        claims: Vec::new(),
    };
    let hashes: Vec<String> = first.keys.iter().map(|k| k.hash.clone()).collect();
    let rules = support::rules(100, &hashes);
    let first_plan = plan(&inputs(&rules, &first, &standing, &amounts)).expect("plans");
    let steady = settled(&first, &first_plan.plan, support::start());
    let keys = if case == "first" { &first } else { &steady };
    let inputs = inputs(&rules, keys, &standing, &amounts);
    let mut planner = Planner::default();
    if case == "steady" {
        planner.plan(&inputs).expect("plans");
    }
    let changes = profiled(&mut planner, &inputs);
    println!("profiled one plan of the {case} case: {changes} changes");
}

criterion_group!(benches, bench_plan);

fn main() {
    match std::env::var("KEYWARDEN_BENCH_PROFILE") {
        Ok(case) => profile(&case),
        Err(_) => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
