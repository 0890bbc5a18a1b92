//! The systemd notification protocol (`Type=notify`): readiness, status
//! lines, watchdog pings, reloading and stopping. Outside systemd (no
//! `NOTIFY_SOCKET`) every call does nothing.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sd_notify::NotifyState;
use std::time::Duration;

/// Sends `states` to the service manager; a failure is logged, never fatal.
fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("sd_notify: {e}");
    }
}

/// `READY=1`: started (or reloaded), with the status line.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// `STATUS=…`: shown by `systemctl status`.
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// `RELOADING=1` with the `MONOTONIC_USEC` that `Type=notify-reload` wants.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[
            NotifyState::Reloading,
            now,
            NotifyState::Status("reloading"),
        ]),
        Err(_) => send(&[NotifyState::Reloading, NotifyState::Status("reloading")]),
    }
}

/// `STOPPING=1`.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// `WATCHDOG=1`.
pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, when set for us.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| d / 2)
}

/// How the last run ended, for the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LastRun {
    /// Every change applied.
    Ok,
    /// Changes failed, ended unknown, or the guard held some back.
    Failed,
    /// The run stopped early (credential refused, API unreachable).
    Error,
}

/// The `STATUS=` line: `next run 10:05 · 3 keys held disabled · last run ok`.
/// The next run is shown in `tz`, with the date when it is not today.
pub fn status_line(
    next: Option<DateTime<Utc>>,
    held_disabled: usize,
    last: &LastRun,
    tz: Tz,
    now: DateTime<Utc>,
) -> String {
    let next = match next {
        None => "no run scheduled".to_string(),
        Some(t) => {
            let local = t.with_timezone(&tz);
            if local.date_naive() == now.with_timezone(&tz).date_naive() {
                format!("next run {}", local.format("%H:%M"))
            } else {
                format!("next run {}", local.format("%Y-%m-%d %H:%M"))
            }
        }
    };
    let keys = match held_disabled {
        1 => "1 key held disabled".to_string(),
        n => format!("{n} keys held disabled"),
    };
    let last = match last {
        LastRun::Ok => "last run ok",
        LastRun::Failed => "last run had failures",
        LastRun::Error => "last run failed",
    };
    format!("{next} · {keys} · {last}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_says_next_run_held_keys_and_last_outcome() {
        let now: DateTime<Utc> = "2026-11-27T10:01:00Z".parse().unwrap();
        let next = "2026-11-27T10:05:00Z".parse().ok();
        assert_eq!(
            status_line(next, 3, &LastRun::Ok, Tz::UTC, now),
            "next run 10:05 · 3 keys held disabled · last run ok"
        );
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            status_line(next, 1, &LastRun::Error, berlin, now),
            "next run 11:05 · 1 key held disabled · last run failed"
        );
        let tomorrow = "2026-11-28T06:00:00Z".parse().ok();
        assert_eq!(
            status_line(tomorrow, 0, &LastRun::Failed, Tz::UTC, now),
            "next run 2026-11-28 06:00 · 0 keys held disabled · last run had failures"
        );
    }
}
