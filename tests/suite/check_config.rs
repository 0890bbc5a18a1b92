//! `keywarden check-config` over broken and valid rules files (SPEC §3.4):
//! every error names file:line:, the rule and the field, and exits 2.

use crate::common::{keywarden, text};
use std::path::Path;

/// What one `check-config` run printed and returned.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Writes `files` (name, text) into a temp dir, a config naming them as
/// `rules_files` (plus `daemon` lines), and runs `check-config` there.
fn check_files(files: &[(&str, &str)], daemon: &str) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|(name, text)| {
            std::fs::write(dir.path().join(name), text).unwrap();
            format!("{name:?}")
        })
        .collect();
    let config = format!("[daemon]\nrules_files = [{}]\n{daemon}", names.join(", "));
    with_config(dir.path(), &config)
}

/// Writes `config` as `keywarden.toml` in `dir` and runs `check-config` there.
fn with_config(dir: &Path, config: &str) -> Outcome {
    std::fs::write(dir.join("keywarden.toml"), config).unwrap();
    let out = keywarden()
        .current_dir(dir)
        .args(["--config", "keywarden.toml", "--database"])
        .arg(dir.join("kw.db"))
        .arg("check-config")
        .output()
        .unwrap();
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: text(&out.stdout),
        stderr: text(&out.stderr),
    }
}

fn check(text: &str) -> Outcome {
    check_files(&[("rules.toml", text)], "")
}

/// The 1-based numbers of the lines marked `# <-`.
fn marked_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.ends_with("# <-"))
        .map(|(i, _)| i + 1)
        .collect()
}

/// A valid rule to start from.
const OK: &str = "[[rule]]\nname = \"ok\"\nkeys = \"all\"\nset = { disabled = true }\n\n";

/// (case, rules file with the bad line marked `# <-`, the field named in the error).
const BROKEN: &[(&str, &str, &str)] = &[
    (
        "toml syntax",
        "[[rule]]\nname = \"r # <-\nkeys = \"all\"\n",
        "",
    ),
    (
        "unknown rule field",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\ncolour = \"red\" # <-\nset = { disabled = true }\n",
        "colour",
    ),
    (
        "unknown nested field",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.when]\nbudget = { usd = 1.0, window = \"daily\", colour = 1 } # <-\n[rule.set]\ndisabled = true\n",
        "when.budget.colour",
    ),
    (
        "unknown top-level table",
        "[rules] # <-\nname = \"r\"\n",
        "rules",
    ),
    (
        "wrong type",
        "[[rule]]\nname = \"r\"\npriority = \"high\" # <-\nkeys = \"all\"\nset = { disabled = true }\n",
        "priority",
    ),
    (
        "enabled not a bool",
        "[[rule]]\nname = \"r\"\nenabled = \"yes\" # <-\nkeys = \"all\"\nset = { disabled = true }\n",
        "enabled",
    ),
    (
        "bad cron",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\nschedule = \"61 * * * *\" # <-\nset = { disabled = true }\n",
        "schedule",
    ),
    (
        "unknown timezone",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\ntimezone = \"Mars/Olympus\" # <-\nset = { disabled = true }\n",
        "timezone",
    ),
    (
        "february 30th",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.when]\nseason = { from = \"02-30\", to = \"03-10\" } # <-\n[rule.set]\ndisabled = true\n",
        "when.season.from",
    ),
    (
        "negative budget",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.when]\nbudget = { usd = -5.0, window = \"daily\" } # <-\n[rule.set]\ndisabled = true\n",
        "when.budget.usd",
    ),
    (
        "empty set",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\nset = {} # <-\n",
        "set",
    ),
    (
        "missing set",
        "[[rule]] # <-\nname = \"r\"\nkeys = \"all\"\n",
        "set",
    ),
    (
        "duplicate name",
        "[[rule]]\nname = \"ok\"\nkeys = \"all\"\nset = { disabled = true }\n[[rule]]\nname = \"ok\" # <-\nkeys = \"all\"\nset = { disabled = true }\n",
        "name",
    ),
    (
        "bad glob",
        "[[rule]]\nname = \"r\"\nkeys = { names = [\"team-[a\"] } # <-\nset = { disabled = true }\n",
        "keys.names[0]",
    ),
    (
        "bad pointer",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.when]\nbudget = { usd = { file = \"/etc/b.json\", pointer = \"teams/a\" }, window = \"daily\" } # <-\n[rule.set]\ndisabled = true\n",
        "when.budget.usd.pointer",
    ),
    (
        "bad limit_reset",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.set]\nlimit_reset = \"yearly\" # <-\n",
        "set.limit_reset",
    ),
    (
        "guardrail not a string",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.set]\nguardrail = 3 # <-\n",
        "set.guardrail",
    ),
    (
        "guardrail empty",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.set]\nguardrail = \" \" # <-\n",
        "set.guardrail",
    ),
    (
        "at out of range",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.when]\nbudget = { usd = 5, window = \"daily\", at = 11 } # <-\n[rule.set]\ndisabled = true\n",
        "when.budget.at",
    ),
    (
        "http url not on loopback",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.when]\ncredits_below = { usd = { url = \"http://finance.example/b\" } } # <-\n[rule.set]\ndisabled = true\n",
        "when.credits_below.usd.url",
    ),
    (
        "between end before start",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.when]\nbetween = { start = 2026-12-20T00:00:00, end = \"2026-12-01T00:00:00\" } # <-\n[rule.set]\ndisabled = true\n",
        "when.between.end",
    ),
    (
        "between with an offset",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.when]\nbetween = { start = 2026-12-20T00:00:00Z, end = 2026-12-21T00:00:00 } # <-\n[rule.set]\ndisabled = true\n",
        "when.between.start",
    ),
    (
        "bad hours",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.when]\nhours = \"25:00-08:00\" # <-\n[rule.set]\ndisabled = true\n",
        "when.hours",
    ),
    (
        "bad weekday",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.when]\nweekdays = [\"sat\", \"funday\"] # <-\n[rule.set]\ndisabled = true\n",
        "when.weekdays[1]",
    ),
    (
        "selector with nothing to match",
        "[[rule]]\nname = \"r\"\nkeys = { exclude = { names = [\"x\"] } } # <-\nset = { disabled = true }\n",
        "keys",
    ),
    (
        "selector string not all",
        "[[rule]]\nname = \"r\"\nkeys = \"everything\" # <-\nset = { disabled = true }\n",
        "keys",
    ),
    (
        "missing keys",
        "[[rule]] # <-\nname = \"r\"\nset = { disabled = true }\n",
        "keys",
    ),
    (
        "missing name",
        "[[rule]] # <-\nkeys = \"all\"\nset = { disabled = true }\n",
        "name",
    ),
    (
        "name with spaces",
        "[[rule]]\nname = \"team a\" # <-\nkeys = \"all\"\nset = { disabled = true }\n",
        "name",
    ),
    (
        "unknown window",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.when]\nbudget = { usd = 5, window = \"yearly\" } # <-\n[rule.set]\ndisabled = true\n",
        "when.budget.window",
    ),
    (
        "unknown scope",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.when]\nbudget = { usd = 5, window = \"daily\", scope = \"team\" } # <-\n[rule.set]\ndisabled = true\n",
        "when.budget.scope",
    ),
    (
        "warn_at without budget",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\nwarn_at = [0.8] # <-\nset = { disabled = true }\n",
        "warn_at",
    ),
    (
        "warn_at above one",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\nwarn_at = [1.5] # <-\nwhen.budget = { usd = 5, window = \"daily\" }\nset = { disabled = true }\n",
        "warn_at[0]",
    ),
    (
        "warn_before without budget or forecast",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\nwarn_before = [\"3d\"] # <-\nset = { disabled = true }\n",
        "warn_before",
    ),
    (
        "warn_before not a duration",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\nwarn_before = [\"3d\", \"a week\"] # <-\nwhen.budget = { usd = 5, window = \"weekly\" }\nset = { disabled = true }\n",
        "warn_before[1]",
    ),
    (
        "warn_before empty",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\nwarn_before = [] # <-\nwhen.forecast = { usd = 5, window = \"weekly\" }\nset = { disabled = true }\n",
        "warn_before",
    ),
    (
        "negative limit",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.set]\nlimit = -1 # <-\n",
        "set.limit",
    ),
    (
        "limit neither number nor none",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.set]\nlimit = \"unlimited\" # <-\n",
        "set.limit",
    ),
    (
        "bad max_age",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.when]\nbudget = { usd = { env = \"B\", max_age = \"soon\" }, window = \"daily\" } # <-\n[rule.set]\ndisabled = true\n",
        "when.budget.usd.max_age",
    ),
    (
        "source with two kinds",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.when]\ncredits_below = { usd = { env = \"B\", file = \"/b\" } } # <-\n[rule.set]\ndisabled = true\n",
        "when.credits_below.usd",
    ),
    (
        "header from an empty env name",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.when]\ncredits_below = { usd = { url = \"https://f.example/b\", headers = { Authorization = \"env:\" } } } # <-\n[rule.set]\ndisabled = true\n",
        "when.credits_below.usd.headers.Authorization",
    ),
    (
        "forecast lookback not a duration",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.when]\nforecast = { usd = 5, window = \"daily\", lookback = \"soon\" } # <-\n[rule.set]\nlimit = 1.0\n",
        "when.forecast.lookback",
    ),
    (
        "forecast lookback of zero",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.when]\nforecast = { usd = 5, window = \"daily\", lookback = \"0s\" } # <-\n[rule.set]\nlimit = 1.0\n",
        "when.forecast.lookback",
    ),
    (
        "forecast of a total budget without within",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.when]\nforecast = { usd = 5, window = \"total\" } # <-\n[rule.set]\nlimit = 1.0\n",
        "when.forecast.within",
    ),
    (
        "forecast within longer than its window",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.when]\nforecast = { usd = 5, window = \"daily\", within = \"25h\" } # <-\n[rule.set]\nlimit = 1.0\n",
        "when.forecast.within",
    ),
    (
        "forecast within not a duration",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.when]\nforecast = { usd = 5, window = \"monthly\", within = 3 } # <-\n[rule.set]\nlimit = 1.0\n",
        "when.forecast.within",
    ),
    (
        "credits_below without usd",
        "[[rule]]\nname = \"r\"\nkeys = \"all\"\n[rule.when]\ncredits_below = { } # <-\n[rule.set]\ndisabled = true\n",
        "when.credits_below.usd",
    ),
];

#[test]
fn every_broken_rules_file_is_refused_naming_line_and_field() {
    assert!(BROKEN.len() >= 25);
    for (case, body, field) in BROKEN {
        let text = format!("{OK}{body}");
        let line = marked_lines(&text)[0];
        let out = check(&text);
        assert_eq!(out.code, 2, "{case}: exit code\n{}", out.stderr);
        let diagnostic = out
            .stderr
            .lines()
            .find(|l| l.starts_with(&format!("rules.toml:{line}:")))
            .unwrap_or_else(|| panic!("{case}: no error at rules.toml:{line}:\n{}", out.stderr));
        assert!(diagnostic.contains(": error: "), "{case}: {diagnostic}");
        if !field.is_empty() {
            assert!(
                diagnostic.contains(&format!(" {field}: ")),
                "{case}: field {field} not named in {diagnostic}"
            );
        }
        if !["toml syntax", "unknown top-level table"].contains(case) {
            assert!(
                diagnostic.contains("rule \"") || diagnostic.contains("rule #"),
                "{case}: rule not named in {diagnostic}"
            );
        }
        assert!(
            out.stderr.lines().last().unwrap().contains("in 1 file"),
            "{case}: no summary\n{}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{case}: {}", out.stdout);
    }
}

#[test]
fn two_errors_in_one_file_are_both_reported() {
    let text = "[[rule]]\nname = \"r\"\nkeys = { names = [\"team-[a\"] } # <-\nschedule = \"nope\" # <-\nset = { disabled = true }\n";
    let out = check(text);
    assert_eq!(out.code, 2);
    for line in marked_lines(text) {
        assert!(
            out.stderr.contains(&format!("rules.toml:{line}:")),
            "line {line}:\n{}",
            out.stderr
        );
    }
    assert!(
        out.stderr.contains("2 errors, 0 warnings in 1 file"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_name_defined_in_two_files_is_an_error() {
    let out = check_files(&[("a.toml", OK), ("b.toml", OK)], "");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("b.toml:2:8: error: rule \"ok\": name: duplicate name"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("1 error, 0 warnings in 2 files"),
        "{}",
        out.stderr
    );
}

#[test]
fn equal_priority_rules_that_disagree_are_a_warning_only() {
    let text = "[[rule]]\nname = \"a\"\nkeys = { names = [\"team-a-*\"] }\nset = { limit = 5.0 }\n\n\
                [[rule]]\nname = \"b\"\nkeys = \"all\"\nset = { limit = \"none\" }\n";
    let out = check(text);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("rules.toml:7:8: warning: rule \"b\": set.limit: "),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("1 warning in 1 file"), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "ok: 2 rules in 1 file");
}

#[test]
fn bad_daemon_defaults_are_errors() {
    let out = check_files(
        &[("rules.toml", OK)],
        "schedule = \"every minute\"\ntimezone = \"Nowhere/City\"\n",
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("keywarden.toml:3:12: error: [daemon].schedule: "),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("keywarden.toml:4:12: error: [daemon].timezone: "),
        "{}",
        out.stderr
    );
}

#[test]
fn the_example_rules_pass_without_their_budget_variable() {
    let example = include_str!("../../config/rules.example.toml");
    let out = check(example);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    assert_eq!(out.stdout.trim(), "ok: 11 rules in 1 file");
}

#[test]
fn a_missing_rules_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = with_config(dir.path(), "[daemon]\nrules_files = [\"nope.toml\"]\n");
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .starts_with("nope.toml:1:1: error: cannot read the rules file"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_misspelt_notify_event_is_refused_naming_the_field_and_the_valid_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = with_config(
        dir.path(),
        "[[notify]]\nurl = \"https://hooks.example.com/x\"\nevents = [\"key_disabled\", \"key_disabld\"]\n",
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "keywarden.toml:3:27: notify[0].events: \"key_disabld\" is not an event keywarden \
             notifies; valid names: key_disabled, key_enabled, change_failed, budget_warning, budget_forecast, \
             guard_tripped, source_error, source_recovered, auth_failed, auth_recovered, \
             reload_failed, leader_changed"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn every_toml_snippet_of_the_rule_cookbook_passes() {
    let cookbook = include_str!("../../docs/cookbook.md");
    let blocks: Vec<&str> = cookbook
        .split("```toml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect();
    assert!(blocks.len() >= 10, "found {} toml blocks", blocks.len());
    for block in &blocks {
        let out = check(block);
        assert_eq!(out.code, 0, "{block}\n{}", out.stderr);
        assert_eq!(out.stderr, "", "{block}");
    }
    // Together, too: the names are unique (the snippets are independent
    // examples, so rules from different ones may warn about each other).
    let out = check(&blocks.join("\n"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains(": error: "), "{}", out.stderr);
}
