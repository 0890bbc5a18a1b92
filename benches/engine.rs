//! SPEC §10 "evaluating 100 rules over 10,000 keys takes milliseconds":
//! `engine::reconcile::plan` for 100 mixed rules over 10,000 keys (target
//! well under 10 ms), and the same at 1k/10k/100k keys with the cost per key,
//! which stays flat when growth is linear.

mod support;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use keywarden::engine::evaluate::Amounts;
use keywarden::engine::reconcile::{Guard, Inputs, plan};
use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The target for 100 rules over 10,000 keys.
const TARGET: Duration = Duration::from_millis(10);

fn bench_plan(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan_100_rules");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    let mut per_key = Vec::new();
    for n in [1_000usize, 10_000, 100_000] {
        let keys = support::keys(n);
        let hashes: Vec<String> = keys.iter().map(|k| k.hash.clone()).collect();
        let rules = support::rules(100, &hashes);
        let standing = HashMap::new();
        let amounts = Amounts::new();
        let inputs = Inputs {
            rules: &rules,
            due: None,
            standing: &standing,
            keys: &keys,
            claims: &[],
            exemptions: &[],
            amounts: &amounts,
            credits: None,
            now: support::start(),
            default_tz: chrono_tz::UTC,
            guard: Guard {
                max_changes_per_run: usize::MAX,
                max_disable_fraction: 1.0,
                force: false,
            },
        };
        let changes = plan(&inputs).expect("plans").plan.changes.len();
        // 100k keys is timed once for the scaling line only: criterion's
        // ten samples of it would take minutes while the plan is slow.
        if n <= 10_000 {
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new("keys", n), &inputs, |b, inputs| {
                b.iter(|| plan(black_box(inputs)).expect("plans"))
            });
        }
        // Criterion keeps its estimates to itself: time a few plans for the table.
        let rounds = if n > 10_000 { 1 } else { 5 };
        let started = Instant::now();
        for _ in 0..rounds {
            black_box(plan(&inputs).expect("plans"));
        }
        per_key.push((n, changes, started.elapsed() / rounds));
    }
    group.finish();

    println!("\nengine: plan for 100 rules (mixed selectors, budgets, seasons, hours, priorities)");
    println!(
        "{:>8} {:>9} {:>12} {:>14}  target",
        "keys", "changes", "per plan", "per key"
    );
    for (n, changes, t) in &per_key {
        let target = if *n == 10_000 {
            format!(
                "< {} ms: {}",
                TARGET.as_millis(),
                support::verdict(*t < TARGET)
            )
        } else {
            "linear: per key flat".to_string()
        };
        println!(
            "{n:>8} {changes:>9} {:>9.2} ms {:>11.0} ns  {target}",
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() * 1e9 / *n as f64
        );
    }
}

criterion_group!(benches, bench_plan);
criterion_main!(benches);
