//! The background sequencer of a [`Database`] handle (PostgreSQL).
//!
//! Linking events into the chain right after each commit costs every writer a second transaction and
//! a second commit; holding the chain's lock until the work commits serializes every writer of an
//! organization. Measured on this project's machine with pgbench (the work of an ingest plus its
//! event, PostgreSQL 15, fsync on, 8 clients): work alone 4,400-4,700 tx/s; chain in the same
//! transaction 1,100 (23 %); linking after each commit 2,180 (46 %); a background sequencer 3,520
//! (75-80 %). So writers only record their events and mark their organization; this task links
//! marked organizations' pending events in batches, one transaction per batch.
//!
//! The task is spawned on the caller's Tokio runtime at the first mark (and again if that runtime
//! went away), holds the database only weakly (a dropped handle ends it), and waits for the chain head
//! of each organization it links (other processes' sequencers may hold it). [`Database::flush_audit`]
//! links synchronously; [`Database::close`] does so before closing the pools.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use uuid::Uuid;

use super::chain;
use crate::db::{Database, Inner};
use crate::error::Result;

/// Shared between the handle and its task.
#[derive(Default)]
struct Shared {
    dirty: Mutex<HashSet<Uuid>>,
    wake: Notify,
}

impl Shared {
    fn take(&self) -> Vec<Uuid> {
        match self.dirty.lock() {
            Ok(mut d) => d.drain().collect(),
            Err(poisoned) => poisoned.into_inner().drain().collect(),
        }
    }

    fn mark(&self, org: Uuid) {
        match self.dirty.lock() {
            Ok(mut d) => d.insert(org),
            Err(poisoned) => poisoned.into_inner().insert(org),
        };
    }
}

/// A handle's sequencer: the organizations with events waiting to be linked, and the task linking
/// them.
#[derive(Default)]
pub(crate) struct Sequencer {
    shared: Arc<Shared>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Sequencer {
    /// Marks `org` as having pending events and wakes the task (spawning it if needed).
    pub(crate) fn schedule(&self, inner: &Arc<Inner>, org: Uuid) {
        self.shared.mark(org);
        if let Ok(mut task) = self.task.lock() {
            let alive = task.as_ref().is_some_and(|t| !t.is_finished());
            if !alive {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    *task = Some(runtime.spawn(run(Arc::downgrade(inner), self.shared.clone())));
                }
            }
        }
        self.shared.wake.notify_one();
    }

    /// Stops the task (the handle is closing).
    pub(crate) fn stop(&self) {
        if let Ok(mut task) = self.task.lock() {
            if let Some(t) = task.take() {
                t.abort();
            }
        }
    }

    fn take(&self) -> Vec<Uuid> {
        self.shared.take()
    }
}

/// Links the pending events of `org`, waiting for the chain head if another linker holds it.
async fn link(db: &Database, org: Uuid) -> Result<u64> {
    chain::link_all(db, org).await
}

async fn run(db: Weak<Inner>, shared: Arc<Shared>) {
    loop {
        // Wake up now and then even without news, to notice that the handle was dropped.
        let _ = tokio::time::timeout(Duration::from_secs(1), shared.wake.notified()).await;
        let Some(inner) = db.upgrade() else { return };
        let db = Database { inner };
        for org in shared.take() {
            if link(&db, org).await.is_err() {
                // Left pending; retried at the next wake-up, and linked by verification anyway.
                shared.mark(org);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

impl Database {
    /// Links every event this handle has recorded into its organization's chain now, instead of
    /// waiting for the background sequencer (a no-op on SQLite, where events are linked in their own
    /// transaction). Verification links everything pending first anyway.
    pub async fn flush_audit(&self) -> Result<()> {
        let sequencer = &self.inner.sequencer;
        for org in sequencer.take() {
            if let Err(e) = link(self, org).await {
                sequencer.shared.mark(org);
                return Err(e);
            }
        }
        Ok(())
    }
}
