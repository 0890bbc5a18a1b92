//! The configuration file (SPEC §2): defaults, unknown keys, inline keys,
//! URL rules, overrides and the management key lookup.

use keywarden::config::{Config, Workspaces};
use keywarden::url_policy::check_url;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

const SECRET: &str = "sk-or-v1-inline-secret-0123456789abcdef";

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Loads `text` from a temporary file; the file's path and the result.
fn load(text: &str, vars: &[(&str, &str)]) -> (std::path::PathBuf, anyhow::Result<Config>) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "keywarden.toml", text);
    let result = Config::load_with(Some(&path), &env(vars));
    (path, result)
}

fn is_usage_error(e: &anyhow::Error) -> bool {
    e.downcast_ref::<keywarden::exit::UsageError>().is_some()
}

#[test]
fn an_empty_file_gives_every_default() {
    let (path, config) = load("", &[]);
    let c = config.unwrap();
    assert_eq!(c.source.as_deref(), Some(path.as_path()));
    assert_eq!(c.openrouter.base_url, "https://openrouter.ai/api/v1");
    assert_eq!(c.openrouter.management_key_file, None);
    assert_eq!(c.openrouter.workspaces, Workspaces::All);
    assert_eq!(c.openrouter.timeout, Duration::from_secs(30));
    assert_eq!(c.openrouter.max_concurrency, 8);
    assert_eq!(c.openrouter.requests_per_second, 10);
    assert_eq!(c.openrouter.max_retries, 5);
    assert_eq!(c.database.path, None);
    assert_eq!(c.daemon.schedule, "*/5 * * * *");
    assert_eq!(c.daemon.timezone, "UTC");
    assert!(!c.daemon.dry_run);
    assert!(c.daemon.rules_files.is_empty());
    assert_eq!(c.daemon.max_changes_per_run, 100);
    assert_eq!(c.daemon.max_disable_fraction, 0.5);
    assert_eq!(c.history.snapshot_interval, Duration::from_secs(15 * 60));
    assert_eq!(
        c.history.snapshot_retention,
        Duration::from_secs(400 * 86400)
    );
    assert_eq!(c.metrics.listen, None);
    assert!(c.notify.is_empty());
}

#[test]
fn every_documented_key_is_read() {
    let (_, config) = load(
        r#"
[openrouter]
base_url = "http://127.0.0.1:8788/api/v1"
management_key_file = "/run/keys/mgmt"
workspaces = ["ws-1"]
timeout = "5s"
max_concurrency = 2
requests_per_second = 3
max_retries = 1

[daemon]
dry_run = true
max_disable_fraction = 0.25

[history]
snapshot_interval = "1h"

[[notify]]
url = "https://hooks.example.com/services/T/B/X"
format = "json"
events = ["key_disabled"]
"#,
        &[],
    );
    let c = config.unwrap();
    assert_eq!(c.openrouter.base_url, "http://127.0.0.1:8788/api/v1");
    assert_eq!(
        c.openrouter.management_key_file.as_deref(),
        Some(Path::new("/run/keys/mgmt"))
    );
    assert_eq!(
        c.openrouter.workspaces,
        Workspaces::Only(vec!["ws-1".into()])
    );
    assert_eq!(c.openrouter.timeout, Duration::from_secs(5));
    assert_eq!(
        (
            c.openrouter.max_concurrency,
            c.openrouter.requests_per_second
        ),
        (2, 3)
    );
    assert_eq!(c.openrouter.max_retries, 1);
    assert!(c.daemon.dry_run);
    assert_eq!(c.history.snapshot_interval, Duration::from_secs(3600));
    assert_eq!(c.notify[0].events, ["key_disabled"]);
}

#[test]
fn an_unknown_key_is_refused_with_file_line_and_column() {
    let (path, config) = load("[openrouter]\nmax_retries = 2\n  max_retires = 3\n", &[]);
    let err = config.unwrap_err();
    assert!(is_usage_error(&err));
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}:3:3: ", path.display())),
        "{text}"
    );
    assert!(text.contains("unknown field `max_retires`"), "{text}");
}

#[test]
fn an_unknown_section_is_refused() {
    let (path, config) = load("[openrouter]\n\n[deamon]\ndry_run = true\n", &[]);
    let text = config.unwrap_err().to_string();
    assert!(
        text.starts_with(&format!("{}:3:", path.display())),
        "{text}"
    );
    assert!(text.contains("deamon"), "{text}");
}

#[test]
fn a_type_error_names_the_place() {
    let (path, config) = load("[openrouter]\ntimeout = \"soon\"\n", &[]);
    let text = config.unwrap_err().to_string();
    assert!(
        text.starts_with(&format!("{}:2:", path.display())),
        "{text}"
    );
}

#[test]
fn an_inline_key_is_refused_without_echoing_it() {
    for field in ["management_key", "api_key", "key", "provisioning_key"] {
        let text = format!("# keys\n[openrouter]\nmax_retries = 1\n{field} = \"{SECRET}\"\n");
        let (path, config) = load(&text, &[]);
        let err = config.unwrap_err();
        assert!(is_usage_error(&err));
        let message = format!("{err:#} {err:?}");
        assert!(!message.contains(SECRET), "{message}");
        assert!(!message.contains("inline-secret"), "{message}");
        let shown = err.to_string();
        assert!(
            shown.starts_with(&format!("{}:4:", path.display())),
            "{shown}"
        );
        assert!(shown.contains(&format!("[openrouter].{field}")), "{shown}");
        assert!(shown.contains("OPENROUTER_MANAGEMENT_KEY"), "{shown}");
        assert!(shown.contains("management_key_file"), "{shown}");
    }
}

#[test]
fn an_inline_key_in_dotted_form_is_refused_too() {
    let (_, config) = load(&format!("openrouter.management_key = \"{SECRET}\"\n"), &[]);
    let message = config.unwrap_err().to_string();
    assert!(message.contains("must not be written"), "{message}");
    assert!(!message.contains(SECRET));
}

#[test]
fn plain_http_is_accepted_only_on_loopback() {
    for ok in [
        "https://openrouter.ai/api/v1",
        "http://127.0.0.1:8788/api/v1",
        "http://127.1.2.3/x",
        "http://[::1]:9000/",
        "http://localhost/x",
        "http://LOCALHOST:1/",
    ] {
        assert!(check_url("[openrouter].base_url", ok).is_ok(), "{ok}");
    }
    for bad in [
        "http://openrouter.ai/api/v1",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://localhost.example.com/",
        "http://[::2]/",
        "ftp://127.0.0.1/",
        "openrouter.ai/api/v1",
    ] {
        let err = check_url("[openrouter].base_url", bad).unwrap_err();
        assert!(err.starts_with("[openrouter].base_url "), "{bad}: {err}");
    }
}

#[test]
fn a_non_loopback_http_url_in_the_file_names_the_field() {
    let (path, config) = load(
        "[openrouter]\nbase_url = \"http://openrouter.ai/api/v1\"\n",
        &[],
    );
    let text = config.unwrap_err().to_string();
    assert!(text.starts_with(&path.display().to_string()), "{text}");
    assert!(
        text.contains("[openrouter].base_url must use https://"),
        "{text}"
    );

    let (_, config) = load(
        "[[notify]]\nurl = \"http://hooks.example.com/services/SECRET-PATH\"\n",
        &[],
    );
    let text = config.unwrap_err().to_string();
    assert!(
        text.contains("[[notify]] #1 url must use https://"),
        "{text}"
    );
    assert!(
        !text.contains("SECRET-PATH"),
        "a webhook URL is a secret: {text}"
    );
}

#[test]
fn keywarden_base_url_overrides_the_file_and_is_checked() {
    let (_, config) = load(
        "[openrouter]\nbase_url = \"https://a.example/api/v1\"\n",
        &[("KEYWARDEN_BASE_URL", "http://127.0.0.1:9/api/v1")],
    );
    assert_eq!(
        config.unwrap().openrouter.base_url,
        "http://127.0.0.1:9/api/v1"
    );
    let (_, config) = load("", &[("KEYWARDEN_BASE_URL", "http://example.com/api/v1")]);
    assert!(is_usage_error(&config.unwrap_err()));
}

#[test]
fn zero_limits_are_refused() {
    let (_, config) = load(
        "[openrouter]\nmax_concurrency = 0\nrequests_per_second = 0\n",
        &[],
    );
    let text = config.unwrap_err().to_string();
    assert!(
        text.contains("[openrouter].max_concurrency must be greater than zero"),
        "{text}"
    );
    assert!(
        text.contains("[openrouter].requests_per_second must be greater than zero"),
        "{text}"
    );
}

/// The key the lookup finds, by where it came from.
fn found(config: &Config, vars: &[(&str, &str)]) -> String {
    config
        .management_key_with(&env(vars))
        .unwrap()
        .expose()
        .to_string()
}

#[test]
fn the_management_key_lookup_order_is_env_env_credential_file() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    write(&creds, "openrouter-management-key", "  from-credential\n");
    let file = write(dir.path(), "mgmt.key", "from-file\n");
    let mut config = Config::default();
    config.openrouter.management_key_file = Some(file);
    let cred_dir = creds.to_str().unwrap();

    let all = [
        ("OPENROUTER_MANAGEMENT_KEY", "from-env"),
        ("OPENROUTER_PROVISIONING_KEY", "from-provisioning"),
        ("CREDENTIALS_DIRECTORY", cred_dir),
    ];
    assert_eq!(found(&config, &all), "from-env");
    assert_eq!(found(&config, &all[1..]), "from-provisioning");
    assert_eq!(found(&config, &all[2..]), "from-credential", "trimmed");
    assert_eq!(found(&config, &[]), "from-file", "trimmed");
    // A credentials directory without our credential falls through to the file.
    assert_eq!(
        found(
            &config,
            &[("CREDENTIALS_DIRECTORY", dir.path().to_str().unwrap())]
        ),
        "from-file"
    );
}

#[test]
fn no_management_key_is_a_usage_error_that_teaches() {
    let err = Config::default()
        .management_key_with(&env(&[]))
        .unwrap_err();
    assert!(is_usage_error(&err));
    let text = err.to_string();
    assert!(
        text.starts_with("no management key found: set OPENROUTER_MANAGEMENT_KEY"),
        "{text}"
    );
    assert!(text.contains("[openrouter].management_key_file"), "{text}");
    assert!(
        text.contains("LoadCredential=openrouter-management-key:"),
        "{text}"
    );
}

#[test]
fn an_empty_or_missing_key_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.openrouter.management_key_file = Some(write(dir.path(), "empty.key", " \n"));
    let err = config.management_key_with(&env(&[])).unwrap_err();
    assert!(
        is_usage_error(&err) && err.to_string().contains("is empty"),
        "{err}"
    );
    config.openrouter.management_key_file = Some(dir.path().join("missing.key"));
    let err = config.management_key_with(&env(&[])).unwrap_err();
    assert!(
        is_usage_error(&err) && err.to_string().contains("missing.key"),
        "{err}"
    );
}

/// Runs the binary with only the given environment.
fn keywarden(args: &[&str], vars: &[(&str, &str)]) -> std::process::Output {
    crate::common::keywarden()
        .args(args)
        .envs(vars.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn the_service_refuses_to_start_with_a_misspelt_notify_event() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "keywarden.toml",
        "[[notify]]\nurl = \"https://hooks.example.com/x\"\nevents = [\"key_disabld\"]\n",
    );
    let database = dir.path().join("kw.db");
    let out = keywarden(
        &[
            "--config",
            config.to_str().unwrap(),
            "--database",
            database.to_str().unwrap(),
            "run",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = crate::common::text(&out.stderr);
    assert!(
        stderr.contains("notify[0].events: \"key_disabld\" is not an event keywarden notifies")
            && stderr.contains("valid names: key_disabled, key_enabled,"),
        "{stderr}"
    );
    assert!(!database.exists(), "nothing was started");
}

#[test]
fn the_binary_exits_2_on_a_bad_config_and_on_a_missing_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.toml", "[openrouter]\nbogus = 1\n");
    let out = keywarden(&["--config", bad.to_str().unwrap(), "keys", "list"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:2:1: unknown field `bogus`", bad.display())),
        "{stderr}"
    );

    let inline = write(
        dir.path(),
        "inline.toml",
        &format!("[openrouter]\nmanagement_key = \"{SECRET}\"\n"),
    );
    let out = keywarden(&["--config", inline.to_str().unwrap(), "keys", "list"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("must not be written") && !all.contains(SECRET),
        "{all}"
    );

    let empty = write(dir.path(), "empty.toml", "");
    let out = keywarden(&["--config", empty.to_str().unwrap(), "keys", "list"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no management key found"), "{stderr}");
}

#[test]
fn keywarden_config_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "via-env.toml", "[nonsense]\n");
    let out = keywarden(
        &["keys", "list"],
        &[("KEYWARDEN_CONFIG", bad.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("via-env.toml:1:"));
}
