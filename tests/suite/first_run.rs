//! The newcomer's first mistakes, each answered with what to do and the
//! exit code of SPEC §6: no credential, an inference key where a management
//! key belongs, an unreachable API, no rules yet, a key written in the config.

use keywarden::sandbox::{NewKey, Sandbox, SandboxOptions};
use std::path::{Path, PathBuf};
use std::process::Output;

const EXAMPLE_RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/rules.example.toml");
const MANAGEMENT_KEYS_PAGE: &str = "https://openrouter.ai/settings/management-keys";

/// A working directory with a config file, and the binary run in it with
/// only the given environment.
struct Newcomer {
    dir: tempfile::TempDir,
    vars: Vec<(String, String)>,
}

impl Newcomer {
    fn new(config: &str, vars: &[(&str, &str)]) -> Newcomer {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keywarden.toml"), config).unwrap();
        Newcomer {
            dir,
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("keywarden.toml")
    }

    async fn run(&self, args: &[&str]) -> Output {
        tokio::process::Command::from(crate::common::keywarden())
            .arg("--config")
            .arg(self.config())
            .args(args)
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path())
            .output()
            .await
            .unwrap()
    }

    /// Imports the example rules, so that `plan` and `apply` get as far as the API.
    async fn import_example_rules(&self) {
        let out = self.run(&["rules", "import", EXAMPLE_RULES]).await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts the exit code and that standard error says every one of `parts`.
fn says(out: &Output, code: i32, parts: &[&str], what: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{what}: {err}");
    for part in parts {
        assert!(err.contains(part), "{what}: `{part}` not in: {err}");
    }
}

/// A loopback base URL where nothing listens.
fn closed_port_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/api/v1")
}

#[tokio::test]
async fn no_credential_exits_2_and_says_where_to_put_one() {
    let me = Newcomer::new("", &[]);
    me.import_example_rules().await;
    for args in [&["keys", "list"][..], &["apply"], &["plan"]] {
        let out = me.run(args).await;
        says(
            &out,
            2,
            &[
                "no management key found",
                "set OPENROUTER_MANAGEMENT_KEY",
                "[openrouter].management_key_file",
                "LoadCredential=openrouter-management-key",
            ],
            &args.join(" "),
        );
    }
}

#[tokio::test]
async fn an_inference_key_exits_1_and_points_at_the_management_keys_page() {
    let sb = Sandbox::start("127.0.0.1:0", SandboxOptions::default())
        .await
        .unwrap();
    let (_, secret) = sb
        .account()
        .create_key(NewKey {
            name: "my-first-key".into(),
            ..NewKey::default()
        })
        .unwrap();
    let base = sb.base_url();
    let me = Newcomer::new(
        "",
        &[
            ("KEYWARDEN_BASE_URL", base.as_str()),
            ("OPENROUTER_MANAGEMENT_KEY", secret.as_str()),
        ],
    );
    me.import_example_rules().await;
    for args in [&["keys", "list"][..], &["plan"], &["apply"]] {
        let out = me.run(args).await;
        says(
            &out,
            1,
            &[
                "the API refused the management key (HTTP 403)",
                "this looks like an inference key",
                &format!("create a management key at {MANAGEMENT_KEYS_PAGE}"),
            ],
            &args.join(" "),
        );
        assert!(
            !stderr(&out).contains(&secret) && !stdout(&out).contains(&secret),
            "the key is never printed"
        );
    }
    let refused = sb.account().requests();
    assert!(
        refused.iter().all(|r| r.method == "GET" && r.status == 403),
        "nothing but the refused listing was tried: {refused:?}"
    );
}

#[tokio::test]
async fn an_unreachable_api_exits_1_and_says_what_to_check() {
    let base = closed_port_url();
    let me = Newcomer::new(
        &format!("[openrouter]\nbase_url = \"{base}\"\nmax_retries = 0\n"),
        &[("OPENROUTER_MANAGEMENT_KEY", "sk-or-v1-management")],
    );
    me.import_example_rules().await;
    for args in [&["keys", "list"][..], &["plan"], &["apply"]] {
        let out = me.run(args).await;
        says(
            &out,
            1,
            &[
                &format!("cannot reach {base}"),
                "check [openrouter].base_url and the network",
            ],
            &args.join(" "),
        );
        assert!(
            !stdout(&out).contains("no changes"),
            "a run that could not list the keys does not claim there was nothing to do"
        );
    }
}

#[tokio::test]
async fn no_rules_yet_exits_2_and_says_to_import_the_example() {
    // No API is needed to say so: nothing listens at the base URL.
    let base = closed_port_url();
    let me = Newcomer::new(
        &format!("[openrouter]\nbase_url = \"{base}\"\n"),
        &[("OPENROUTER_MANAGEMENT_KEY", "sk-or-v1-management")],
    );
    for args in [&["plan"][..], &["apply"], &["apply", "--dry-run"]] {
        let out = me.run(args).await;
        says(
            &out,
            2,
            &[
                "keywarden has no rules; import config/rules.example.toml to start",
                "keywarden rules import config/rules.example.toml",
            ],
            &args.join(" "),
        );
    }
}

#[tokio::test]
async fn a_key_in_the_config_exits_2_and_says_where_it_belongs() {
    let secret = "sk-or-v1-0123456789abcdef";
    let me = Newcomer::new(
        &format!("[openrouter]\ntimeout = \"10s\"\nmanagement_key = \"{secret}\"\n"),
        &[],
    );
    let config = me.config();
    for args in [&["keys", "list"][..], &["check-config"], &["plan"]] {
        let out = me.run(args).await;
        says(
            &out,
            2,
            &[
                &format!("{}:3:18: [openrouter].management_key", config.display()),
                "must not be written in the configuration file",
                "set OPENROUTER_MANAGEMENT_KEY",
                "management_key_file",
            ],
            &args.join(" "),
        );
        assert!(
            !stderr(&out).contains(secret) && !stdout(&out).contains(secret),
            "the key is not echoed"
        );
    }
    assert!(
        !Path::new(&me.dir.path().join("keywarden.db")).exists(),
        "nothing was created"
    );
}

#[tokio::test]
async fn plan_says_once_per_rule_that_its_budget_source_is_unavailable() {
    let sb = crate::common::sandbox_with_keys(24).await;
    let base = sb.base_url();
    // TEAM_B_BUDGET_USD is not set: team-b-monthly (4 team-b keys) is not evaluated.
    let me = Newcomer::new(
        "",
        &[
            ("KEYWARDEN_BASE_URL", base.as_str()),
            ("OPENROUTER_MANAGEMENT_KEY", sb.management_key()),
        ],
    );
    me.import_example_rules().await;
    let out = me.run(&["plan"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = stdout(&out);
    let skipped: Vec<&str> = printed
        .lines()
        .filter(|l| l.starts_with("not evaluated:") && l.contains("budget source"))
        .collect();
    assert_eq!(
        skipped,
        ["not evaluated: rule team-b-monthly: budget source env:TEAM_B_BUDGET_USD unavailable"],
        "{printed}"
    );
    let warnings = stderr(&out).matches("TEAM_B_BUDGET_USD is not set").count();
    assert_eq!(warnings, 1, "{}", stderr(&out));
}
