//! The README is the user's manual, so what it shows must work: its set-up
//! commands come first, every runnable (` ```sh `) block runs green against a
//! sandbox, in order, as a newcomer would type it, and every TOML snippet is
//! a valid rules file or configuration. Blocks marked ` ```console ` (root,
//! systemd, long-running servers) are shown, not run.

use keywarden::sandbox::{Sandbox, SandboxOptions};
use std::path::Path;
use std::process::Command;

const README: &str = include_str!("../../README.md");

/// The fenced blocks of `info` (e.g. `sh`, `toml`), in order.
fn blocks(info: &str) -> Vec<&'static str> {
    let fence = format!("```{info}\n");
    README
        .split(&fence)
        .skip(1)
        .map(|rest| rest.split("\n```").next().unwrap())
        .collect()
}

#[test]
fn the_two_set_up_commands_are_the_first_commands() {
    let first_block = README.split("```").nth(1).expect("a fenced block");
    assert_eq!(first_block, "sh\ncargo run --release -- demo\ncargo test\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_runnable_block_runs_against_the_sandbox() {
    let sandbox = Sandbox::start(
        "127.0.0.1:0",
        SandboxOptions {
            keys: 24,
            ..SandboxOptions::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_keywarden"), bin.join("keywarden")).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join("config")).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ["rules.example.toml", "keywarden.toml"] {
        std::fs::copy(
            repo.join("config").join(file),
            work.join("config").join(file),
        )
        .unwrap();
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let runnable = blocks("sh");
    assert!(
        runnable.len() >= 4,
        "found {} runnable blocks",
        runnable.len()
    );
    // The first block is the set-up (`cargo run -- demo`, `cargo test`): CI
    // runs `cargo test` itself and tests/demo.rs runs the demo.
    for block in &runnable[1..] {
        let out = tokio::task::spawn_blocking({
            let (block, work, path) = (block.to_string(), work.clone(), path.clone());
            let (url, key) = (sandbox.base_url(), sandbox.management_key().to_string());
            move || {
                Command::new("bash")
                    .args(["-euo", "pipefail", "-c", &block])
                    .current_dir(&work)
                    .env_clear()
                    .env("PATH", path)
                    .env("HOME", &work)
                    .env("KEYWARDEN_BASE_URL", url)
                    .env("OPENROUTER_MANAGEMENT_KEY", key)
                    .output()
                    .unwrap()
            }
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "README block failed ({}):\n{block}\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        work.join("report.html").exists(),
        "the walkthrough writes report.html"
    );
    let patches = sandbox
        .account()
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert!(patches > 0, "the walkthrough's apply changed keys");
    sandbox.shutdown().await;
}

#[test]
fn every_toml_snippet_is_a_valid_rules_file_or_configuration() {
    let snippets = blocks("toml");
    assert!(snippets.len() >= 12, "found {} toml blocks", snippets.len());
    let dir = tempfile::tempdir().unwrap();
    for (n, snippet) in snippets.iter().enumerate() {
        if snippet.contains("[[rule]]") {
            if let Err(diagnostics) = keywarden::rules::parse_rules("README.md", snippet) {
                panic!("rules snippet {n} is invalid: {diagnostics:?}\n{snippet}");
            }
            let file = dir.path().join(format!("rules-{n}.toml"));
            std::fs::write(&file, snippet).unwrap();
            let config = dir.path().join(format!("config-{n}.toml"));
            std::fs::write(
                &config,
                format!(
                    "[daemon]\nrules_files = [{:?}]\n",
                    file.display().to_string()
                ),
            )
            .unwrap();
            let out = crate::common::keywarden()
                .args(["--config", config.to_str().unwrap(), "check-config"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "check-config on snippet {n}: {}\n{snippet}",
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            let parsed = keywarden::config::Config::parse(snippet, Path::new("README.md"))
                .and_then(|c| c.validate().map(|_| c));
            assert!(
                parsed.is_ok(),
                "config snippet {n}: {:?}\n{snippet}",
                parsed.err()
            );
        }
    }
}
