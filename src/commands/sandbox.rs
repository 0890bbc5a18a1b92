//! `keywarden sandbox`: serve a local fake OpenRouter until Ctrl-C.

use crate::cli::SandboxArgs;
use crate::exit::UsageError;
use crate::sandbox::{Sandbox, SandboxOptions, seed};
use std::process::ExitCode;

/// Starts the sandbox, prints how to point keywarden at it, serves until Ctrl-C.
pub async fn run(args: SandboxArgs) -> anyhow::Result<ExitCode> {
    let seed_keys = match &args.seed {
        Some(path) => seed::load(path).map_err(|e| UsageError::new(format!("{e:#}")))?,
        None => Vec::new(),
    };
    let opts = SandboxOptions {
        keys: args.keys,
        seed_keys,
        management_key: args.management_key,
        start: None,
    };
    let sandbox = Sandbox::start(&args.listen, opts)
        .await
        .map_err(|e| UsageError::new(format!("{e:#}")))?;
    let keys = sandbox.account().keys().len();
    // The sandbox's own test key is printed on purpose: it opens nothing real.
    println!("keywarden sandbox: a fake OpenRouter management API with {keys} keys");
    println!("  API:            {}", sandbox.base_url());
    println!("  control:        {}", sandbox.control_url());
    println!("  management key: {}", sandbox.management_key());
    println!();
    println!("Point keywarden at it:");
    println!("  export KEYWARDEN_BASE_URL={}", sandbox.base_url());
    println!(
        "  export OPENROUTER_MANAGEMENT_KEY={}",
        sandbox.management_key()
    );
    println!();
    println!("Serving until Ctrl-C.");
    tokio::signal::ctrl_c().await?;
    sandbox.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
