//! tracing set-up (SPEC §7): human text on a terminal, plain lines without
//! timestamps or colours when standard error is the journal (systemd adds
//! its own), JSON with `--log-format json` for collectors. Logs go to
//! standard error; standard output is for what a command prints.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable text.
    Text,
    /// One JSON object a line.
    Json,
}

/// Installs the global subscriber, writing to standard error.
/// `verbose`: 0 info, 1 debug, 2+ trace; `quiet`: warnings only. `RUST_LOG` overrides.
pub fn init(format: LogFormat, verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("keywarden={level},warn")));
    let journal = std::env::var("JOURNAL_STREAM").is_ok_and(|v| stderr_is(&v));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match (format, journal) {
        (LogFormat::Json, _) => builder.json().try_init(),
        (LogFormat::Text, true) => builder
            .without_time()
            .with_ansi(false)
            .with_target(false)
            .try_init(),
        (LogFormat::Text, false) => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

/// Whether `journal_stream` (`DEVICE:INODE`, as systemd sets
/// `JOURNAL_STREAM`) names the file standard error is connected to.
fn stderr_is(journal_stream: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some((dev, ino)) = journal_stream.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    std::fs::metadata("/proc/self/fd/2").is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_name_standard_error() {
        use std::os::unix::fs::MetadataExt;
        assert!(!stderr_is("not-a-pair"));
        assert!(!stderr_is("0:0"));
        let m = std::fs::metadata("/proc/self/fd/2").unwrap();
        assert!(stderr_is(&format!("{}:{}", m.dev(), m.ino())));
    }
}
