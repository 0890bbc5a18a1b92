//! Help that teaches: every command's `--help` has a purpose and examples,
//! every example is a command line keywarden accepts, and `keywarden` alone
//! says what to run first.

use crate::common::text;
use clap::{CommandFactory, Parser};
use keywarden::cli::Cli;
use std::process::Output;

fn keywarden(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    crate::common::keywarden()
        .args(args)
        .current_dir(dir.path())
        .output()
        .unwrap()
}

/// Every command path of the CLI (`[]`, `["rules"]`, `["rules", "list"]`, …),
/// from the definitions, so a new command cannot go without examples.
fn command_paths() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            walk(sub, p, out);
        }
        out.push(path);
    }
    let mut out = Vec::new();
    walk(&Cli::command(), Vec::new(), &mut out);
    out
}

/// The words of one example line: up to a `#` comment or a `>` redirection,
/// `"…"` kept as one word.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            '#' | '>' if !quoted => break,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// The `keywarden …` lines of a help text's `Examples:` section.
fn examples(help: &str) -> Vec<&str> {
    let section = help
        .split_once("Examples:\n")
        .map(|(_, s)| s)
        .unwrap_or_default();
    section
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("keywarden "))
        .collect()
}

#[test]
fn every_command_has_a_purpose_and_examples_keywarden_accepts() {
    let paths = command_paths();
    assert!(
        paths.len() > 25,
        "rules, keys, exempt and db are walked: {paths:?}"
    );
    for path in paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = keywarden(&args);
        let help = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let purpose = help.lines().next().unwrap_or_default();
        assert!(
            purpose.len() > 10 && !purpose.starts_with("Usage"),
            "{args:?} starts with a one-line purpose:\n{help}"
        );
        let lines = examples(&help);
        assert!(!lines.is_empty(), "{args:?} has examples:\n{help}");
        if let Some(name) = path.last() {
            assert!(
                lines.iter().any(|l| words(l).contains(name)),
                "{args:?}: an example uses `{name}`:\n{help}"
            );
        }
        for line in lines {
            if let Err(e) = Cli::try_parse_from(words(line)) {
                panic!("{args:?}: the example `{line}` is refused:\n{e}");
            }
        }
    }
}

#[test]
fn the_plan_help_answers_what_will_my_rules_do_on_24_dec() {
    let help = text(&keywarden(&["plan", "--help"]).stdout);
    assert!(
        help.contains("keywarden plan --at 2026-12-24") && help.contains("24 Dec"),
        "{help}"
    );
}

#[test]
fn keywarden_alone_says_what_to_run_first_and_exits_0() {
    let out = keywarden(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let orientation = text(&out.stdout);
    let first = orientation
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("keywarden "))
        .expect("a command to run");
    assert_eq!(
        first, "keywarden demo",
        "the demo comes first:\n{orientation}"
    );
    assert!(orientation.contains("OPENROUTER_MANAGEMENT_KEY"));
    assert!(orientation.contains("--help"));
    for line in orientation
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("keywarden ") && !l.contains("--help"))
    {
        // Each suggestion is a command line, then a gloss after two spaces.
        let command = line.split("  ").next().unwrap();
        if let Err(e) = Cli::try_parse_from(words(command)) {
            panic!("the suggestion `{command}` is refused:\n{e}");
        }
    }
}

#[test]
fn the_example_words_are_split_like_a_shell_would() {
    assert_eq!(
        words(r#"keywarden exempt add k --reason "release week"   # why"#),
        [
            "keywarden",
            "exempt",
            "add",
            "k",
            "--reason",
            "release week"
        ]
    );
    assert_eq!(
        words("keywarden rules export > rules.toml"),
        ["keywarden", "rules", "export"]
    );
}
