//! What a process serving the dashboard is: a viewer, or a replica that
//! leads or stands by (SPEC §14).

use crate::store::leader::Leading;
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

/// Where a dashboard's [`Role`] comes from: fixed, or a replica's
/// leadership as it is at each request.
#[derive(Debug, Clone)]
pub enum RoleSource {
    /// Always this role.
    Fixed(Role),
    /// A service replica: leader while its flag holds, standby otherwise.
    Replica(Leading),
}

impl RoleSource {
    /// The role now.
    pub fn now(&self) -> Role {
        match self {
            RoleSource::Fixed(role) => *role,
            RoleSource::Replica(leading) if leading.is_held() => Role::Leader,
            RoleSource::Replica(_) => Role::Standby,
        }
    }
}

/// The role of a process that runs rules (always the leader) or only shows
/// the database (`keywarden ui`: a viewer).
pub fn role(runs_rules: bool) -> RoleSource {
    RoleSource::Fixed(if runs_rules {
        Role::Leader
    } else {
        Role::Viewer
    })
}

/// The role of a service replica: leader or standby, as `leading` says
/// (always the leader on SQLite).
pub fn replica_role(leading: &Leading) -> RoleSource {
    RoleSource::Replica(leading.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_is_leader_while_it_leads_and_standby_otherwise() {
        assert_eq!(replica_role(&Leading::always()).now(), Role::Leader);
        assert_eq!(replica_role(&Leading::not_yet()).now(), Role::Standby);
        assert_eq!(role(false).now(), Role::Viewer);
    }
}
