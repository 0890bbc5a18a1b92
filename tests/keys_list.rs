//! `keywarden keys list` against the sandbox: JSON, table and CSV, and the
//! messages a person sees when the key is wrong or the API unreachable.

use keywarden::openrouter::Key;
use keywarden::sandbox::{Sandbox, SandboxOptions};
use std::process::Output;

/// Runs the binary with only the given environment and `--config` pointing
/// at a file holding `config`.
async fn keywarden(args: &[&str], vars: &[(&str, &str)], config: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("keywarden.toml");
    std::fs::write(&config_path, config).unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_keywarden"))
        .arg("--config")
        .arg(&config_path)
        .args(args)
        .env_clear()
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

fn text(out: &[u8]) -> String {
    String::from_utf8(out.to_vec()).unwrap()
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
    let keys: Vec<Key> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(keys, sb.account().keys());
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
    let raw: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = serde_json::to_value(sb.account().keys()).unwrap();
    assert_eq!(raw, expected, "every field, nulls printed as null");
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
    for (record, key) in records.iter().zip(&keys) {
        assert_eq!(&record[0], key.name);
        assert_eq!(&record[1], key.hash, "full hash in CSV");
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
    assert_eq!(
        sb.account().requests().len(),
        1,
        "a refused credential is not retried"
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
