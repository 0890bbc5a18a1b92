//! `keywarden keys list` against the sandbox: JSON, table and CSV, the rules
//! that select each key and keywarden's claims on it, and the messages a
//! person sees when the key is wrong or the API unreachable.

use crate::common;

use crate::common::text;
use common::{Harness, nov, seed};
use keywarden::domain::Key;
use keywarden::sandbox::ids::DEFAULT_WORKSPACE;
use keywarden::sandbox::workspace::{RESEARCH_WORKSPACE, SUPPORT_WORKSPACE};
use keywarden::sandbox::{Sandbox, SandboxOptions};
use serde_json::json;
use std::process::Output;

/// Runs the binary with only the given environment and `--config` pointing
/// at a file holding `config`.
async fn keywarden(args: &[&str], vars: &[(&str, &str)], config: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("keywarden.toml");
    std::fs::write(&config_path, config).unwrap();
    tokio::process::Command::from(common::keywarden())
        .arg("--config")
        .arg(&config_path)
        .args(args)
        .envs(vars.iter().copied())
        .current_dir(dir.path())
        .output()
        .await
        .unwrap()
}

async fn sandbox(keys: usize) -> Sandbox {
    Sandbox::start(
        "127.0.0.1:0",
        SandboxOptions {
            keys,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

async fn list(sb: &Sandbox, format: &str, verbose: bool) -> Output {
    let base = sb.base_url();
    let mut args = vec!["keys", "list", "--format", format];
    if verbose {
        args.push("-vv");
    }
    let vars = [
        ("KEYWARDEN_BASE_URL", base.as_str()),
        ("OPENROUTER_MANAGEMENT_KEY", sb.management_key()),
    ];
    keywarden(&args, &vars, "").await
}

#[tokio::test]
async fn json_is_every_key_as_the_api_returned_it() {
    let sb = sandbox(250).await;
    let disabled = sb.account().keys()[207].hash.clone();
    let patch = keywarden::openrouter::KeyPatch {
        disabled: Some(true),
        ..Default::default()
    };
    sb.account().patch_key(&disabled, &patch).unwrap();
    let out = list(&sb, "json", true).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let mut keys: Vec<Key> = serde_json::from_slice(&out.stdout).unwrap();
    let mut expected = sb.account().keys();
    assert_eq!(keys.len(), 250, "the keys of every workspace");
    keys.sort_by(|a, b| a.hash.cmp(&b.hash));
    expected.sort_by(|a, b| a.hash.cmp(&b.hash));
    assert_eq!(keys, expected);
    assert!(
        keys.iter().any(|k| k.disabled),
        "disabled keys are listed too"
    );
    assert!(
        stderr.contains("openrouter request"),
        "-vv logs the requests: {stderr}"
    );
    let all = format!("{}{stderr}", text(&out.stdout));
    assert!(!all.contains(sb.management_key()), "the key leaked");
}

#[tokio::test]
async fn json_keeps_nulls_as_null() {
    let sb = sandbox(5).await;
    let out = list(&sb, "json", false).await;
    let mut raw: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let slugs = [
        (DEFAULT_WORKSPACE, "default"),
        (RESEARCH_WORKSPACE, "research"),
        (SUPPORT_WORKSPACE, "support"),
    ];
    for key in raw.as_array_mut().unwrap() {
        let slug = slugs
            .iter()
            .find(|(id, _)| key["workspace_id"] == *id)
            .map(|(_, slug)| *slug);
        let held = key.as_object_mut().unwrap().remove("keywarden");
        assert_eq!(
            held,
            Some(json!({"workspace": slug, "rules": [], "claims": []})),
            "no database yet: keywarden holds nothing (and knows the workspace's slug)"
        );
    }
    raw.as_array_mut()
        .unwrap()
        .sort_by_key(|k| k["hash"].as_str().unwrap().to_owned());
    let mut keys = sb.account().keys();
    keys.sort_by(|a, b| a.hash.cmp(&b.hash));
    let expected = serde_json::to_value(keys).unwrap();
    assert_eq!(raw, expected, "every field, nulls printed as null");
}

const TEAM_A_RULES: &str = r#"
[[rule]]
name = "team-a-monthly"
keys = { names = ["team-a-*"] }
[rule.when]
budget = { usd = 50.0, window = "monthly", scope = "group" }
[rule.set]
disabled = true

[[rule]]
name = "support-cap"
keys = { names = ["support-*"] }
[rule.set]
limit = 5.0

[[rule]]
name = "paused-everything"
enabled = false
keys = "all"
[rule.set]
disabled = true
"#;

/// A harness whose team-a keys keywarden disabled, and `keys list` of it
/// run by the binary against the same sandbox and database.
async fn listed_after_a_run(format: &str) -> (Harness, String) {
    let keys = ["team-a-1", "team-a-2", "support-1", "other-1"];
    let h = Harness::new(nov(10), keys.map(seed).to_vec(), TEAM_A_RULES, |_| {}).await;
    h.spend("team-a-1", 60.0);
    h.apply().await;
    assert!(h.key("team-a-2").disabled);
    let listed = list_with_database(&h, format).await;
    (h, listed)
}

/// `keys list` run by the binary against the harness's sandbox and database.
async fn list_with_database(h: &Harness, format: &str) -> String {
    let base = h.sandbox.base_url();
    let db = h.config.database_path();
    let vars = [
        ("KEYWARDEN_BASE_URL", base.as_str()),
        ("OPENROUTER_MANAGEMENT_KEY", h.sandbox.management_key()),
    ];
    let args = [
        "--database",
        db.to_str().unwrap(),
        "keys",
        "list",
        "--format",
        format,
    ];
    let out = keywarden(&args, &vars, "").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[tokio::test]
async fn the_table_shows_the_rules_that_select_each_key_and_its_claims() {
    let (_h, table) = listed_after_a_run("table").await;
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("{name} not in {table}"))
            .to_string()
    };
    assert!(
        table
            .lines()
            .take(3)
            .any(|l| l.contains("rules") && l.contains("claims"))
    );
    for name in ["team-a-1", "team-a-2"] {
        let row = row(name);
        assert!(row.contains("disabled by team-a-monthly"), "{row}");
    }
    let support = row("support-1");
    assert!(support.contains("support-cap"), "{support}");
    assert!(support.contains("limit 5.00 by support-cap"), "{support}");
    assert!(!support.contains("team-a-monthly"), "{support}");
    let other = row("other-1");
    assert!(!other.contains(" by "), "no claims on other-1: {other}");
    assert!(
        !table.contains("paused-everything"),
        "a disabled rule selects nothing: {table}"
    );
}

#[tokio::test]
async fn json_adds_what_keywarden_holds_to_each_api_key_object() {
    let (h, out) = listed_after_a_run("json").await;
    let listed: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let keys: Vec<Key> = serde_json::from_str(&out).unwrap();
    assert_eq!(
        keys,
        h.sandbox.account().keys(),
        "the API's objects, as returned"
    );
    let held = |name: &str| {
        listed
            .iter()
            .find(|k| k["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed"))["keywarden"]
            .clone()
    };
    let team_a = held("team-a-1");
    assert_eq!(team_a["rules"], json!(["team-a-monthly"]));
    let claims = team_a["claims"].as_array().unwrap();
    assert_eq!(claims.len(), 1, "{team_a}");
    assert_eq!(claims[0]["field"], "disabled");
    assert_eq!(claims[0]["rule"], "team-a-monthly");
    assert_eq!(
        (&claims[0]["original"], &claims[0]["value"]),
        (&json!(false), &json!(true))
    );
    assert_eq!(
        held("other-1"),
        json!({"workspace": "default", "rules": [], "claims": []})
    );
    assert_eq!(
        held("support-1")["claims"][0]["original"],
        json!(null),
        "no limit before"
    );
}

#[tokio::test]
async fn csv_has_rules_and_claims_columns() {
    let (_h, out) = listed_after_a_run("csv").await;
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(&header[header.len() - 2..], ["rules", "claims"]);
    let team_a = reader
        .records()
        .map(Result::unwrap)
        .find(|r| &r[0] == "team-a-2")
        .unwrap();
    assert_eq!(&team_a[header.len() - 2], "team-a-monthly");
    assert_eq!(&team_a[header.len() - 1], "disabled by team-a-monthly");
}

#[tokio::test]
async fn listing_keys_does_not_create_a_database() {
    let sb = sandbox(2).await;
    let base = sb.base_url();
    let vars = [
        ("KEYWARDEN_BASE_URL", base.as_str()),
        ("OPENROUTER_MANAGEMENT_KEY", sb.management_key()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keywarden.db");
    let args = ["--database", db.to_str().unwrap(), "keys", "list"];
    let out = keywarden(&args, &vars, "").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!db.exists());
}

#[tokio::test]
async fn the_table_shows_every_key_with_a_short_hash() {
    let sb = sandbox(130).await;
    let out = list(&sb, "table", false).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    for header in [
        "name",
        "hash",
        "disabled",
        "limit",
        "reset",
        "remaining",
        "daily",
        "weekly",
        "monthly",
        "total",
    ] {
        assert!(
            table.lines().take(3).any(|l| l.contains(header)),
            "header {header} in {table}"
        );
    }
    for key in sb.account().keys() {
        let row = table
            .lines()
            .find(|l| l.contains(&format!(" {} ", key.name)))
            .unwrap_or_else(|| panic!("{} not in the table", key.name));
        assert!(row.contains(&format!("{}…", &key.hash[..12])), "{row}");
        assert!(!row.contains(&key.hash), "the table shortens hashes: {row}");
        assert!(
            row.contains(if key.disabled { "yes" } else { "no" }),
            "{row}"
        );
    }
}

#[tokio::test]
async fn csv_has_a_header_and_one_record_per_key() {
    let sb = sandbox(130).await;
    let out = list(&sb, "csv", false).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(&header[..4], ["name", "hash", "disabled", "limit"]);
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let keys = sb.account().keys();
    assert_eq!(records.len(), keys.len());
    for record in &records {
        let key = keys.iter().find(|k| k.hash == record[1]).unwrap();
        assert_eq!(&record[0], key.name);
        assert_eq!(&record[2], key.disabled.to_string());
        match key.limit {
            Some(l) => assert_eq!(record[3].parse::<f64>().unwrap(), l),
            None => assert_eq!(&record[3], ""),
        }
        let usage_col = header.iter().position(|h| h == "usage").unwrap();
        assert_eq!(record[usage_col].parse::<f64>().ok(), key.usage);
    }
}

#[tokio::test]
async fn a_wrong_key_exits_1_and_says_what_to_do() {
    let sb = sandbox(3).await;
    let base = sb.base_url();
    let wrong = "sk-or-v1-this-is-an-inference-key-0000";
    let vars = [
        ("KEYWARDEN_BASE_URL", base.as_str()),
        ("OPENROUTER_MANAGEMENT_KEY", wrong),
    ];
    let out = keywarden(&["keys", "list", "-vv"], &vars, "").await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "the API refused the management key (HTTP 401): this looks like an inference key, \
             or a revoked one; create a management key at https://openrouter.ai/settings/management-keys"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains(wrong) && !text(&out.stdout).contains(wrong));
    // `GET /workspaces` and the default workspace's first page go out at
    // once (issue 18); each is refused once, neither retried.
    let asked: Vec<(String, Option<String>)> = sb
        .account()
        .requests()
        .into_iter()
        .map(|r| (r.path, r.query))
        .collect();
    let once: std::collections::BTreeSet<_> = asked.iter().collect();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_eq!(
        once.len(),
        asked.len(),
        "a refused credential is not retried: {asked:?}"
    );
}

#[tokio::test]
async fn an_unreachable_api_exits_1_and_names_the_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let vars = [("OPENROUTER_MANAGEMENT_KEY", "sk-or-v1-x")];
    let config = format!("[openrouter]\nbase_url = \"{base}\"\nmax_retries = 0\n");
    let out = keywarden(&["keys", "list"], &vars, &config).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot reach {base}: ")),
        "{stderr}"
    );
    assert!(
        stderr
            .trim_end()
            .ends_with("; check [openrouter].base_url and the network"),
        "{stderr}"
    );
}

#[tokio::test]
async fn other_formats_are_a_usage_error() {
    let out = keywarden(&["keys", "list", "--format", "markdown"], &[], "").await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("table, json or csv"));
}

const FORECAST_RULES: &str = r#"
[[rule]]
name = "team-a-total"
keys = { names = ["team-a-*"] }
[rule.when]
budget = { usd = 50.0, window = "total", scope = "group" }
[rule.set]
disabled = true

[[rule]]
name = "support-cap"
keys = { names = ["support-*"] }
[rule.when]
budget = { usd = 10.0, window = "monthly" }
[rule.set]
disabled = true
"#;

#[tokio::test]
async fn keys_show_the_burn_rate_and_projection_of_the_budgets_covering_them() {
    // Four hours of runs every 15 minutes, ending now: `keys list` (on the
    // system clock) reads the snapshots they took. Each team-a key spends
    // 2 USD/h, so the group's 16 USD grow by 4 USD/h towards 50.
    let start = chrono::Utc::now() - chrono::Duration::hours(4);
    let keys = ["team-a-1", "team-a-2", "support-1", "other-1"];
    let h = Harness::new(start, keys.map(seed).to_vec(), FORECAST_RULES, |_| {}).await;
    crate::common::steady_traffic(&h.sandbox, "team-a-*", 2.0);
    h.apply().await;
    for _ in 0..16 {
        h.sandbox.account().advance(chrono::Duration::minutes(15));
        h.apply().await;
    }
    let listed: Vec<serde_json::Value> =
        serde_json::from_str(&list_with_database(&h, "json").await).unwrap();
    let forecasts = |name: &str| {
        listed.iter().find(|k| k["name"] == name).unwrap()["keywarden"]
            .get("forecasts")
            .cloned()
    };
    // The group's figures, on each key of it.
    let group = forecasts("team-a-1").expect("team-a-1 has forecasts");
    assert_eq!(forecasts("team-a-2"), Some(group.clone()));
    let row = &group[0];
    assert_eq!(
        (
            &row["rule"],
            &row["scope"],
            &row["key_hash"],
            &row["spend_usd"]
        ),
        (
            &json!("team-a-total"),
            &json!("group"),
            &json!(null),
            &json!(16.0)
        ),
        "{group}"
    );
    let rate = row["rate_usd_per_hour"].as_f64().unwrap();
    assert!((rate - 4.0).abs() < 0.1, "{row}");
    assert_eq!(
        (&row["status"], &row["projected_usd"]),
        (&json!("will_cross"), &json!(null))
    );
    let crossing: chrono::DateTime<chrono::Utc> =
        row["crossing_at"].as_str().unwrap().parse().unwrap();
    let hours = (crossing - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!(
        (8.0..9.0).contains(&hours),
        "34 USD to go at 4 USD/h: {row}"
    );
    // A budget rule with less history than half its 6-hour lookback: the
    // support key never spent, so it has one snapshot.
    let support = forecasts("support-1").unwrap();
    assert_eq!(
        (&support[0]["status"], &support[0]["rate_usd_per_hour"]),
        (&json!("unknown"), &json!(null))
    );
    assert_eq!(forecasts("other-1"), None, "no budget covers other-1");

    let table = list_with_database(&h, "table").await;
    let line = |name: &str| {
        table
            .lines()
            .find(|l| l.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("{name} not in {table}"))
            .to_string()
    };
    assert!(
        table
            .lines()
            .take(3)
            .any(|l| l.contains("USD/h") && l.contains("forecast")),
        "{table}"
    );
    // The last two cells, read a moment after the JSON: the crossing may
    // have moved on by a minute.
    let cells = |line: String| -> Vec<String> {
        let cells: Vec<String> = line
            .trim_matches('│')
            .split('┆')
            .map(|c| c.trim().to_string())
            .collect();
        cells[cells.len() - 2..].to_vec()
    };
    let team_a = cells(line("team-a-2"));
    let table_rate: f64 = team_a[0].parse().unwrap();
    assert!((table_rate - 4.0).abs() < 0.1, "{team_a:?}");
    let reaches = |at: chrono::DateTime<chrono::Utc>| {
        format!(
            "reaches 50.00 at {} (team-a-total)",
            at.format("%Y-%m-%dT%H:%MZ")
        )
    };
    assert!(
        [
            reaches(crossing),
            reaches(crossing + chrono::Duration::minutes(1))
        ]
        .contains(&team_a[1]),
        "{team_a:?}"
    );
    assert_eq!(cells(line("support-1")), ["?", "?"]);
}
