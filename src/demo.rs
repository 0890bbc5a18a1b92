//! `keywarden demo` (SPEC §9, §11): six simulated weeks against an
//! in-process sandbox, through the same runner, engine and store the
//! service uses. Only the spending and the passing of time are simulated:
//! most keys spend at random, the research keys through the sandbox's
//! traffic, which the forecast rules of the example watch.

use crate::clock::Clock;
use crate::config::{Config, ManagementKey};
use crate::context::Shell;
use crate::domain::LimitReset;
use crate::engine::Outcome;
use crate::engine::plan::Change;
use crate::openrouter::Client;
use crate::openrouter::client::ClientSettings;
use crate::output::{FieldsStyle, fields_text};
use crate::rules::model::Origin;
use crate::run::{RecordedChange, RunReport, RunRequest, Trigger};
use crate::sandbox::traffic::{Pattern, TrafficSpec};
use crate::sandbox::{Sandbox, SandboxOptions, SeedKey};
use crate::store::Store;
use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// The rules the demo runs: the example file, embedded.
pub const EXAMPLE_RULES: &str = include_str!("../config/rules.example.toml");

/// The environment variable the example's `team-b-monthly` rule reads its
/// budget from (a budget source, SPEC §3.2).
pub const TEAM_B_BUDGET_ENV: &str = "TEAM_B_BUDGET_USD";

/// Team B's monthly budget in the demo, as finance would set it.
pub const TEAM_B_BUDGET_USD: &str = "150";

/// Sets the environment the example rules read ([`TEAM_B_BUDGET_ENV`]), as
/// an operator sets it for the service, so that every rule of the demo is
/// evaluated (and the demo tells the same story whatever the shell has set).
///
/// # Safety
///
/// No other thread may read or write the environment meanwhile: call it
/// before any thread is started.
pub unsafe fn set_environment() {
    // SAFETY: the caller guarantees that no other thread exists yet.
    unsafe { std::env::set_var(TEAM_B_BUDGET_ENV, TEAM_B_BUDGET_USD) }
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Seed of the spending simulation: the same seed prints the same story.
    pub seed: u64,
    /// Simulated days.
    pub days: u32,
    /// The first simulated instant.
    pub start: DateTime<Utc>,
    /// Simulated time between two runs.
    pub step: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            seed: 1,
            days: 42,
            start: Utc.with_ymd_and_hms(2026, 12, 14, 0, 0, 0).unwrap(),
            step: Duration::hours(1),
        }
    }
}

/// The demo account's keys: a few of each group the example rules name.
fn keys() -> Vec<SeedKey> {
    let key = |name: &str, limit: Option<f64>, reset: Option<LimitReset>| SeedKey {
        name: name.into(),
        limit,
        limit_reset: reset,
        ..SeedKey::default()
    };
    vec![
        key("team-a-01", None, None),
        key("team-a-02", None, None),
        key("team-a-ci", None, None),
        key("team-b-01", Some(40.0), Some(LimitReset::Weekly)),
        key("team-b-02", Some(40.0), Some(LimitReset::Weekly)),
        key("support-01", Some(60.0), Some(LimitReset::Monthly)),
        key("support-02", Some(60.0), Some(LimitReset::Monthly)),
        key("research-01", None, None),
        key("research-02", None, None),
        key("ci-01", Some(10.0), Some(LimitReset::Daily)),
    ]
}

/// The research keys spend on their own, through the sandbox's traffic: a
/// batch job around the clock on one, which heads over its budget within
/// the month, and a working-day curve (busy weekdays, quiet nights and
/// weekends) a third as fast on the other.
fn research_traffic(account: &crate::sandbox::Account) -> anyhow::Result<()> {
    let streams = [
        ("research-01", 0.16, Pattern::Steady),
        ("research-02", 0.05, Pattern::Diurnal),
    ];
    for (name, usd_per_hour, pattern) in streams {
        account.add_traffic(TrafficSpec {
            names: Some(vec![name.into()]),
            hashes: None,
            usd_per_hour,
            pattern,
            seed: 1,
            byok: false,
        })?;
    }
    Ok(())
}

/// Average USD an hour each key tries to spend during working hours (the
/// research keys' spend is the sandbox's traffic).
fn hourly_spend(name: &str) -> f64 {
    match name {
        n if n.starts_with("team-a") => 0.30,
        n if n.starts_with("team-b") => 0.35,
        n if n.starts_with("support") => 0.40,
        n if n.starts_with("research") => 0.0,
        _ => 0.11,
    }
}

/// Runs the demo into the database at `database`, narrating to `out`.
/// Returns the database, still open, for the report.
pub async fn run(
    options: &DemoOptions,
    database: &Path,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<Store> {
    let sandbox = Sandbox::start(
        "127.0.0.1:0",
        SandboxOptions {
            seed_keys: keys(),
            start: Some(options.start),
            ..SandboxOptions::default()
        },
    )
    .await?;
    let account = sandbox.account().clone();
    account.set_credits(5000.0)?;
    research_traffic(&account)?;
    let mut config = Config::default();
    config.openrouter.base_url = sandbox.base_url();
    config.openrouter.requests_per_second = 10_000;
    config.database.path = Some(database.to_path_buf());
    let clock: Arc<dyn Clock> = Arc::new(account.clone());
    let shell = Shell::open(config, clock).await?;
    let store = &shell.store;
    let rules = crate::rules::parse_rules("config/rules.example.toml", EXAMPLE_RULES)
        .map_err(|d| anyhow::anyhow!("the embedded example rules do not parse: {d:?}"))?;
    store
        .sync_rules(
            &Origin::File("config/rules.example.toml".into()),
            &rules.rules,
            true,
            options.start,
        )
        .await?;
    let key = ManagementKey::from_text(sandbox.management_key().to_string())
        .expect("the sandbox has a management key");
    let runner = shell.runner(Client::new(ClientSettings::with_key(&shell.config, key))?);

    writeln!(
        out,
        "keywarden demo: {} simulated days from {}, {} keys, the rules of config/rules.example.toml \
         ({TEAM_B_BUDGET_ENV}={TEAM_B_BUDGET_USD})\n",
        options.days,
        options.start.format("%Y-%m-%d"),
        keys().len()
    )?;
    let mut rng = StdRng::seed_from_u64(options.seed);
    let end = options.start + Duration::days(i64::from(options.days));
    let mut reports = Vec::new();
    let mut trigger = Trigger::Startup;
    while account.now() < end {
        let report = runner
            .run(&RunRequest {
                trigger,
                due: None,
                dry_run: false,
                force: false,
            })
            .await?;
        narrate(out, account.now(), &report)?;
        reports.push(report);
        trigger = Trigger::Schedule;
        spend_an_hour(&account, &mut rng, options.step);
        account.advance(options.step);
    }
    sandbox.shutdown().await;
    Ok(shell.store)
}

/// Each key tries to spend a random amount (more in working hours); the
/// sandbox refuses spend on disabled or exhausted keys, as OpenRouter would.
fn spend_an_hour(account: &crate::sandbox::Account, rng: &mut StdRng, step: Duration) {
    let hour = account
        .now()
        .format("%H")
        .to_string()
        .parse::<u32>()
        .unwrap_or(0);
    let busy = if (7..19).contains(&hour) { 1.6 } else { 0.3 };
    let hours = step.num_minutes() as f64 / 60.0;
    for key in account.keys() {
        let usd = hourly_spend(&key.name) * busy * hours * rng.gen_range(0.0..2.0);
        let _refused_when_disabled_or_over_limit =
            account.spend(&key.hash, (usd * 100.0).round() / 100.0, false);
    }
}

/// One line per early warning, per change that reached the account, and
/// per held or failed one.
fn narrate(
    out: &mut (dyn Write + Send),
    at: DateTime<Utc>,
    report: &RunReport,
) -> anyhow::Result<()> {
    for warning in &report.forecast_warnings {
        let f = &warning.forecast;
        writeln!(
            out,
            "{}  {:<11} warned: budget_forecast  — {}",
            at.format("%Y-%m-%d %H:%M UTC"),
            f.key_name.as_deref().unwrap_or(&f.rule),
            warning.reason(at)
        )?;
    }
    for RecordedChange {
        change, outcome, ..
    } in &report.rows
    {
        let note = match outcome {
            Outcome::Applied => String::new(),
            other => format!(" [{other}]"),
        };
        writeln!(
            out,
            "{}  {:<11} {}{note}  — {}",
            at.format("%Y-%m-%d %H:%M UTC"),
            display_name(change),
            what(change),
            change.reason
        )?;
    }
    Ok(())
}

fn display_name(change: &Change) -> &str {
    if change.key_name.is_empty() {
        &change.key_hash
    } else {
        &change.key_name
    }
}

/// `disabled`, `enabled`, `limit 60.00 → 5.00, limit_reset monthly → daily`, or a drift note.
fn what(change: &Change) -> String {
    use crate::engine::ChangeKind;
    if change.kind == ChangeKind::Drift {
        return "left alone (changed by someone else)".into();
    }
    fields_text(&change.fields, FieldsStyle::Story)
}
