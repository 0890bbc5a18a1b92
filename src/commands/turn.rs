//! The turn of a manual run (`apply`, `revert`): on SQLite the run lock,
//! waited for while a run is in progress (SPEC §7); on PostgreSQL the
//! leadership lock for the duration of the run (SPEC §14), waited for with
//! `--wait`, or exit 1 naming the leader.

use crate::clock::Clock;
use crate::store::Store;
use crate::store::leader::{Attempt, Leader, LeaderLock, Leading};
use crate::store::run_turn::RunTurn;
use std::time::Duration;

/// A manual run's turn, held until dropped (or [`ManualTurn::end`]).
#[derive(Debug)]
pub(crate) enum ManualTurn {
    /// SQLite's run lock.
    Run(RunTurn),
    /// PostgreSQL's leadership lock.
    Lead(LeaderLock),
}

impl ManualTurn {
    /// Takes the turn on `store`. On PostgreSQL, while another process
    /// leads: with `wait`, tries again every `poll`; without, fails (exit 1)
    /// naming the leader.
    pub(crate) async fn take(
        store: &Store,
        clock: &dyn Clock,
        wait: bool,
        poll: Duration,
    ) -> anyhow::Result<ManualTurn> {
        if store.sqlite_path().is_some() {
            return Ok(ManualTurn::Run(
                store.run_turn(super::waiting_for_run).await?,
            ));
        }
        let mut told = false;
        loop {
            match store
                .try_lead(&Leader::this_process(clock.now()), &Leading::not_yet())
                .await?
            {
                Attempt::Led { lock, .. } => return Ok(ManualTurn::Lead(lock)),
                Attempt::Held(leader) => {
                    let leader = leader.map_or("another keywarden".to_string(), |l| {
                        format!("keywarden on {l}")
                    });
                    if !wait {
                        anyhow::bail!(
                            "{leader} leads on this database and runs the rules; \
                             try again with --wait to wait for the lead"
                        );
                    }
                    if !told {
                        eprintln!("waiting for the lead, held by {leader}…");
                        told = true;
                    }
                }
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// Gives the turn back.
    pub(crate) async fn end(self) {
        match self {
            ManualTurn::Run(turn) => drop(turn),
            ManualTurn::Lead(lock) => lock.release().await,
        }
    }
}
