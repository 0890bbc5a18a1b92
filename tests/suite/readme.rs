//! The README and the pages of `docs/` are the user's manual, so what they
//! show must work: the README's set-up commands come first, every runnable
//! (` ```sh `) block runs green against a sandbox, in order (the README's,
//! then each page's), as a newcomer would type it, every TOML snippet is a
//! valid rules file or configuration, and every relative link leads to a
//! file (and heading) that exists. Blocks marked ` ```console ` (root,
//! systemd, long-running servers) are shown, not run.

use std::path::Path;
use std::process::Command;

const README: &str = include_str!("../../README.md");

/// The pages of `docs/`, in the order their runnable blocks run.
const DOCS: &[(&str, &str)] = &[
    ("docs/sandbox.md", include_str!("../../docs/sandbox.md")),
    (
        "docs/production.md",
        include_str!("../../docs/production.md"),
    ),
    (
        "docs/high-availability.md",
        include_str!("../../docs/high-availability.md"),
    ),
    ("docs/cookbook.md", include_str!("../../docs/cookbook.md")),
    ("docs/reports.md", include_str!("../../docs/reports.md")),
    ("docs/commands.md", include_str!("../../docs/commands.md")),
    (
        "docs/configuration.md",
        include_str!("../../docs/configuration.md"),
    ),
    (
        "docs/reliability.md",
        include_str!("../../docs/reliability.md"),
    ),
    (
        "docs/performance.md",
        include_str!("../../docs/performance.md"),
    ),
];

/// The README and every page of `docs/`: (path, text).
fn manual() -> impl Iterator<Item = (&'static str, &'static str)> {
    std::iter::once(("README.md", README)).chain(DOCS.iter().copied())
}

/// The fenced blocks of `info` (e.g. `sh`, `toml`) of `doc`, in order.
fn blocks(doc: &'static str, info: &str) -> Vec<&'static str> {
    let fence = format!("```{info}\n");
    doc.split(&fence)
        .skip(1)
        .map(|rest| rest.split("\n```").next().unwrap())
        .collect()
}

/// The fenced blocks of `info` of the README and of every page, in order.
fn manual_blocks(info: &str) -> Vec<&'static str> {
    manual().flat_map(|(_, doc)| blocks(doc, info)).collect()
}

#[test]
fn the_two_set_up_commands_are_the_first_commands() {
    let first_block = README.split("```").nth(1).expect("a fenced block");
    assert_eq!(first_block, "sh\ncargo run --release -- demo\ncargo test\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_runnable_block_runs_against_the_sandbox() {
    let sandbox = crate::common::sandbox_with_keys(24).await;
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

    let runnable = manual_blocks("sh");
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
    let snippets = manual_blocks("toml");
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

/// The anchor GitHub gives a heading: lower case, spaces to `-`, other
/// punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of the headings of `doc` (outside code blocks).
fn anchors(doc: &str) -> Vec<String> {
    let mut in_code = false;
    let mut out = Vec::new();
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            out.push(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

/// The targets of the Markdown links and images of `doc`: `[text](target)`.
fn link_targets(doc: &str) -> Vec<&str> {
    doc.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .collect()
}

#[test]
fn every_page_of_docs_is_checked_here() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages: Vec<String> = std::fs::read_dir(repo.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    pages.sort();
    let mut checked: Vec<String> = DOCS.iter().map(|(path, _)| path.to_string()).collect();
    checked.sort();
    assert_eq!(pages, checked, "add the page to DOCS");
}

#[test]
fn every_relative_link_leads_to_a_file_and_heading_that_exist() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for (path, doc) in manual() {
        let dir = repo.join(path).parent().unwrap().to_path_buf();
        for target in link_targets(doc) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
            let (resolved, text) = if file.is_empty() {
                (repo.join(path), doc.to_string())
            } else {
                let resolved = dir.join(file);
                assert!(
                    resolved.exists(),
                    "{path}: the link ({target}) leads to no file"
                );
                let text = if file.ends_with(".md") {
                    std::fs::read_to_string(&resolved).unwrap()
                } else {
                    String::new()
                };
                (resolved, text)
            };
            if !fragment.is_empty() {
                assert!(
                    anchors(&text).iter().any(|a| a == fragment),
                    "{path}: the link ({target}) names no heading of {}",
                    resolved.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} relative links found");
}
