//! What a process serving the dashboard is: the one place §14's leader
//! election will change.

use serde::Serialize;

/// What a process serving the dashboard is (SPEC §14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// It runs the rules (`keywarden run`).
    Leader,
    /// It waits to take over from the leader.
    Standby,
    /// It only shows the database (`keywarden ui`): runs are another
    /// process's.
    Viewer,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Leader => "leader",
            Role::Standby => "standby",
            Role::Viewer => "viewer (keywarden ui: runs no rules)",
        })
    }
}

/// The role of this process: with one process per database (no PostgreSQL
/// high availability yet) the service is always the leader. The one place
/// §14's leader election will change.
pub fn role(runs_rules: bool) -> Role {
    if runs_rules {
        Role::Leader
    } else {
        Role::Viewer
    }
}
