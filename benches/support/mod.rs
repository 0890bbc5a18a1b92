//! What the benchmarks share: the account of generated keys, the rules
//! file of 100 mixed rules, and the "figure beside its target" line.
#![allow(dead_code)]

pub mod history;
pub mod postgres;

use chrono::{DateTime, TimeZone, Utc};
use keywarden::domain::Key;
use keywarden::rules::model::Rule;
use keywarden::sandbox::{Account, seed};
use secrecy::SecretString;

/// The instant every benchmark evaluates at: a Saturday in the holiday season.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 19, 10, 0, 0).unwrap()
}

/// `n` generated keys (`team-a-01`, …) as the sandbox lists them, with
/// deterministic, varied spend in every window.
pub fn keys(n: usize) -> Vec<Key> {
    let account = Account::new(
        seed::generated(n),
        SecretString::from("sk-or-v1-bench".to_string()),
        Some(start()),
    )
    .expect("generated keys are valid");
    let mut keys = account.keys();
    for (i, k) in keys.iter_mut().enumerate() {
        let daily = (i % 13) as f64 * 0.25;
        k.usage_daily = Some(daily);
        k.usage_weekly = Some(daily * 3.0);
        k.usage_monthly = Some(daily * 9.0);
        k.usage = Some(daily * 30.0);
        k.byok_usage_daily = Some(0.1);
        k.byok_usage_weekly = Some(0.3);
        k.byok_usage_monthly = Some(0.9);
        k.byok_usage = Some(2.0);
    }
    keys
}

const GROUPS: [&str; 6] = ["team-a", "team-b", "team-c", "support", "ci", "research"];
const WINDOWS: [&str; 4] = ["daily", "weekly", "monthly", "total"];

/// The text of a rules file of `n` rules mixing every kind of selector
/// (name globs, hashes, `all` with excludes, labels) and condition (budgets
/// each and group over every window, seasons, one-off windows, weekdays and
/// hours), with priorities from 0 to 9. `hashes` are drawn on for hash selectors.
pub fn rules_toml(n: usize, hashes: &[String]) -> String {
    let mut text = String::new();
    for i in 0..n {
        let group = GROUPS[i % GROUPS.len()];
        let keys = match i % 5 {
            0 => format!(r#"{{ names = ["{group}-*"] }}"#),
            1 => format!(
                r#"{{ names = ["{group}-1*", "{group}-2?"], exclude = {{ names = ["*-19"] }} }}"#
            ),
            2 => {
                let picked: Vec<String> = hashes
                    .iter()
                    .skip(i)
                    .step_by(97)
                    .take(20)
                    .map(|h| format!("{h:?}"))
                    .collect();
                format!("{{ hashes = [{}] }}", picked.join(", "))
            }
            3 => format!(r#"{{ names = ["*"], exclude = {{ names = ["{group}-*"] }} }}"#),
            _ => r#""all""#.to_string(),
        };
        let window = WINDOWS[i % WINDOWS.len()];
        let scope = if i % 3 == 0 { "group" } else { "each" };
        let when = match i % 6 {
            0 | 1 => format!(
                r#"budget = {{ usd = {}, window = "{window}", scope = "{scope}", include_byok = {} }}"#,
                1 + i % 7,
                i % 2 == 0
            ),
            2 => r#"season = { from = "11-15", to = "01-10" }"#.to_string(),
            3 => r#"weekdays = ["sat", "sun"]
hours = "08:00-20:00""#
                .to_string(),
            4 => r#"between = { start = 2026-12-18T00:00:00, end = 2026-12-27T00:00:00 }"#
                .to_string(),
            _ => format!(
                r#"budget = {{ usd = {}, window = "{window}", at = 0.8 }}"#,
                2 + i % 5
            ),
        };
        let set = match i % 4 {
            0 | 1 => "disabled = true".to_string(),
            2 => format!("limit = {}.0\nlimit_reset = \"daily\"", 5 + i % 3),
            _ => "include_byok_in_limit = true".to_string(),
        };
        text.push_str(&format!(
            "[[rule]]\nname = \"rule-{i:03}\"\npriority = {}\ntimezone = \"Europe/Berlin\"\nkeys = {keys}\n\n[rule.when]\n{when}\n\n[rule.set]\n{set}\n\n",
            i % 10
        ));
    }
    text
}

/// The parsed rules of [`rules_toml`].
pub fn rules(n: usize, hashes: &[String]) -> Vec<Rule> {
    keywarden::rules::parse_rules("bench-rules.toml", &rules_toml(n, hashes))
        .unwrap_or_else(|d| panic!("the bench rules parse: {d:?}"))
        .rules
}

/// One line of a results table: the figure, its target, and whether it is met.
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT MET" }
}

/// A `/proc/PID/status` figure in KiB.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reads status");
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The median of 20 samples of the process's resident memory over a
/// second, in KiB.
pub async fn rss_median(pid: u32) -> u64 {
    let mut rss: Vec<u64> = Vec::new();
    for _ in 0..20 {
        rss.push(status_kib(pid, "VmRSS:"));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    rss.sort();
    rss[rss.len() / 2]
}

/// Wall time and this process's CPU time (user and system, every thread)
/// spent on something: on a machine shared with other work, wall time
/// grows with the load and CPU time much less.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Spent {
    /// Wall-clock time.
    pub wall: std::time::Duration,
    /// CPU time of this process.
    pub cpu: std::time::Duration,
}

/// Measures [`Spent`] from its start.
pub struct Stopwatch {
    wall: std::time::Instant,
    cpu: std::time::Duration,
}

impl Stopwatch {
    /// Starts measuring.
    pub fn start() -> Stopwatch {
        Stopwatch {
            wall: std::time::Instant::now(),
            cpu: process_cpu(),
        }
    }

    /// What was spent since the start.
    pub fn spent(&self) -> Spent {
        Spent {
            wall: self.wall.elapsed(),
            cpu: process_cpu().saturating_sub(self.cpu),
        }
    }
}

/// The CPU time this process has used (`getrusage(RUSAGE_SELF)`).
fn process_cpu() -> std::time::Duration {
    // SAFETY: `getrusage` writes only into the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    let time = |t: libc::timeval| {
        std::time::Duration::from_secs(t.tv_sec as u64)
            + std::time::Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}
