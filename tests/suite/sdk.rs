//! Fidelity with the official OpenRouter Python SDK: `tests/sdk/fidelity.py`
//! drives a sandbox through the SDK, whose own response validation must
//! accept every answer. Needs the virtual environment `tests/sdk/setup.sh`
//! creates; see `tests/sdk/README.md`.

use keywarden::sandbox::{Sandbox, SandboxOptions};
use std::path::Path;
use std::process::Stdio;

#[tokio::test]
#[ignore = "needs the OpenRouter SDK venv: see tests/sdk/README.md"]
async fn the_official_python_sdk_accepts_every_answer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/openrouter-sdk-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run tests/sdk/setup.sh",
        python.display()
    );
    // fidelity.py wants 5 keys in the default workspace and no guardrail
    // held at start: generated keys, not spread as `--keys N` spreads them.
    let opts = SandboxOptions {
        seed_keys: keywarden::sandbox::seed::generated(5),
        ..SandboxOptions::default()
    };
    let sandbox = Sandbox::start("127.0.0.1:0", opts).await.unwrap();
    let output = tokio::process::Command::new(&python)
        .arg(root.join("tests/sdk/fidelity.py"))
        .arg(sandbox.base_url())
        .env("KEYWARDEN_SANDBOX_KEY", sandbox.management_key())
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success() && stdout.trim() == "ok",
        "the SDK refused an answer ({}):\n{stdout}\n{stderr}",
        output.status
    );
    sandbox.shutdown().await;
}
