//! `keywarden rules …` against a fresh database: import, list, export,
//! enable/disable/remove with their revisions, --prune, broken imports.

use crate::common::{keywarden, text};
use std::path::{Path, PathBuf};

/// A temp dir with an empty config and a database path.
struct Env {
    dir: tempfile::TempDir,
}

/// What one run printed and returned.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keywarden.toml"), "").unwrap();
        Env { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    fn rules(&self, args: &[&str]) -> Out {
        let out = keywarden()
            .current_dir(self.dir.path())
            .args(["--config", "keywarden.toml", "--database"])
            .arg(self.path("kw.db"))
            .arg("rules")
            .args(args)
            .output()
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: text(&out.stdout),
            stderr: text(&out.stderr),
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.rules(args);
        assert_eq!(out.code, 0, "rules {args:?}: {}", out.stderr);
        out.stdout
    }
}

fn example() -> &'static str {
    include_str!("../../config/rules.example.toml")
}

#[test]
fn import_list_export_and_import_again_changes_nothing() {
    let env = Env::new();
    env.write("rules.toml", example());
    assert_eq!(
        env.ok(&["import", "rules.toml"]).trim(),
        "imported rules.toml: 10 added, 0 updated, 0 removed, 0 unchanged"
    );
    let list = env.ok(&["list"]);
    assert!(
        list.contains("team-a-monthly") && list.contains("support-holidays"),
        "{list}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 10);
    let origin = format!("file:{}", Path::new(&env.path("rules.toml")).display());
    assert!(
        json.as_array()
            .unwrap()
            .iter()
            .all(|r| r["origin"] == origin.as_str()),
        "{json}"
    );

    let exported = env.ok(&["export"]);
    // The export is the same rules: importing it in place of the file changes nothing.
    env.write("rules.toml", &exported);
    assert_eq!(
        env.ok(&["import", "rules.toml"]).trim(),
        "imported rules.toml: 0 added, 0 updated, 0 removed, 10 unchanged"
    );
    assert_eq!(env.ok(&["export"]), exported);
    let show = env.ok(&["show", "ci-no-limit"]);
    assert!(
        show.contains("limit = \"none\"") && show.contains("limit_reset = \"none\""),
        "{show}"
    );
}

#[test]
fn a_broken_import_leaves_the_database_unchanged() {
    let env = Env::new();
    env.write("rules.toml", example());
    env.ok(&["import", "rules.toml"]);
    let before = env.ok(&["export"]);
    let broken = example()
        .replace("usd = 50.0", "usd = -50.0")
        .replace("from = \"11-15\"", "from = \"02-30\"");
    env.write("rules.toml", &broken);
    let out = env.rules(&["import", "rules.toml", "--prune"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("when.budget.usd"), "{}", out.stderr);
    assert!(out.stderr.contains("when.season.from"), "{}", out.stderr);
    assert!(
        out.stderr.contains("2 errors; nothing imported"),
        "{}",
        out.stderr
    );
    assert_eq!(env.ok(&["export"]), before);
}

#[test]
fn enable_disable_remove_are_recorded_with_a_diff() {
    let env = Env::new();
    env.write("rules.toml", example());
    env.ok(&["import", "rules.toml"]);
    assert_eq!(
        env.ok(&["disable", "ci-daily"]).trim(),
        "disabled rule \"ci-daily\""
    );
    assert!(env.ok(&["show", "ci-daily"]).contains("enabled = false"));
    env.ok(&["enable", "ci-daily"]);
    assert_eq!(
        env.ok(&["remove", "ci-daily"]).trim(),
        "removed rule \"ci-daily\""
    );

    let history = env.ok(&["history", "ci-daily"]);
    let headers: Vec<&str> = history
        .lines()
        .filter(|l| l.starts_with("revision "))
        .collect();
    assert_eq!(headers.len(), 4, "{history}");
    assert!(
        headers[0].contains("created rule \"ci-daily\" by file:"),
        "{history}"
    );
    assert!(
        headers[1].contains("changed rule \"ci-daily\" by cli"),
        "{history}"
    );
    assert!(
        headers[3].contains("removed rule \"ci-daily\" by cli"),
        "{history}"
    );
    assert!(
        history.contains("-enabled = true\n+enabled = false\n"),
        "{history}"
    );
    assert!(
        history.contains("-enabled = false\n+enabled = true\n"),
        "{history}"
    );

    for args in [
        ["show", "ci-daily"],
        ["enable", "ci-daily"],
        ["remove", "nope"],
    ] {
        let out = env.rules(&args);
        assert_eq!(out.code, 2, "{args:?}");
        assert!(out.stderr.contains("no rule named"), "{}", out.stderr);
    }
}

#[test]
fn prune_removes_only_the_rules_the_file_no_longer_has() {
    let env = Env::new();
    let rule = |name: &str| {
        format!("[[rule]]\nname = \"{name}\"\nkeys = \"all\"\nset = {{ disabled = true }}\n\n")
    };
    env.write("a.toml", &format!("{}{}", rule("a1"), rule("a2")));
    env.write("b.toml", &rule("b1"));
    env.ok(&["import", "a.toml"]);
    env.ok(&["import", "b.toml"]);
    env.write("a.toml", &rule("a1"));
    assert_eq!(
        env.ok(&["import", "a.toml"]).trim(),
        "imported a.toml: 0 added, 0 updated, 0 removed, 1 unchanged"
    );
    assert!(
        env.ok(&["export"]).contains("\"a2\""),
        "without --prune a2 stays"
    );
    assert_eq!(
        env.ok(&["import", "a.toml", "--prune"]).trim(),
        "imported a.toml: 0 added, 0 updated, 1 removed, 1 unchanged"
    );
    let names: Vec<String> =
        serde_json::from_str::<serde_json::Value>(&env.ok(&["list", "--format", "json"]))
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect();
    assert_eq!(names, ["a1", "b1"]);
}
