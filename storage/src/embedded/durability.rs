//! Making a committed batch durable, with group commit for `fsync`.
//!
//! fjall writes each committed batch to its journal and hands it to the OS at once,
//! which already survives `kill -9` of the process. Surviving power loss needs an
//! fsync; doing one per request would cap throughput at the disk's sync rate, so
//! concurrent writers share syncs: the first waiter syncs on behalf of everyone who
//! committed before it started, the others wait for that sync.

use std::sync::{Condvar, Mutex};

use fjall::{Database, PersistMode};

/// How far a write must reach before the writer returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Written to the OS before `Ok`: survives a crash of the process, not of the
    /// machine.
    #[default]
    Process,
    /// fsynced before `Ok` (with group commit): survives power loss.
    Fsync,
}

#[derive(Default)]
struct SyncState {
    /// Commits handed out so far.
    committed: u64,
    /// Every commit up to this one has been synced.
    synced: u64,
    syncing: bool,
}

#[derive(Default)]
pub struct GroupCommit {
    state: Mutex<SyncState>,
    done: Condvar,
}

impl GroupCommit {
    /// Records a commit that has just happened and returns its ticket.
    pub fn committed(&self) -> u64 {
        let mut state = self.state.lock().expect("group commit lock");
        state.committed += 1;
        state.committed
    }

    /// Blocks until the commit with `ticket` has been synced, syncing if no one is.
    pub fn wait_synced(&self, db: &Database, ticket: u64) -> fjall::Result<()> {
        let mut state = self.state.lock().expect("group commit lock");
        loop {
            if state.synced >= ticket {
                return Ok(());
            }
            if state.syncing {
                state = self.done.wait(state).expect("group commit lock");
                continue;
            }
            state.syncing = true;
            let target = state.committed;
            drop(state);
            let result = db.persist(PersistMode::SyncData);
            state = self.state.lock().expect("group commit lock");
            state.syncing = false;
            if result.is_ok() {
                state.synced = state.synced.max(target);
            }
            self.done.notify_all();
            result?;
        }
    }
}
