//! The background sequencer of a [`Database`] handle (PostgreSQL): it drains the handle's link queue
//! ([`db::LinkQueue`](crate::db)).
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

use std::sync::{Arc, Weak};
use std::time::Duration;

use uuid::Uuid;

use super::chain;
use crate::db::{Database, Inner, LinkQueue};
use crate::error::Result;

/// How long the task waits after a wake-up before linking. Measured on this project's machine
/// (PostgreSQL 15, 2 cores, one reader looking patients up one after another): linking each read's
/// event in its own transaction doubled the database work of a read; gathering for this long links
/// several reads' events per transaction. It is the chaining window's typical length (events are
/// durable at their commit either way; `flush_audit` and verification link at once).
const GATHER: Duration = Duration::from_millis(10);

/// Marks `org` as having pending events and wakes the task, spawning it on the caller's runtime when
/// it is not running.
pub(crate) fn schedule(db: &Database, org: Uuid) {
    let queue = &db.inner.links;
    queue.mark(org);
    if let Ok(mut task) = queue.task.lock() {
        let alive = task.as_ref().is_some_and(|t| !t.is_finished());
        if !alive {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                *task = Some(runtime.spawn(run(Arc::downgrade(&db.inner), queue.clone())));
            }
        }
    }
    queue.wake.notify_one();
}

/// Links the pending events of `org`, waiting for the chain head if another linker holds it.
async fn link(db: &Database, org: Uuid) -> Result<u64> {
    chain::link_all(db, org).await
}

async fn run(db: Weak<Inner>, queue: Arc<LinkQueue>) {
    loop {
        // Wake up now and then even without news, to notice that the handle was dropped (the task
        // holds the handle only weakly, and the queue apart from it).
        let woken = tokio::time::timeout(Duration::from_secs(1), queue.wake.notified()).await.is_ok();
        if woken {
            // Let the events of concurrent and back-to-back operations gather, so that one linking
            // transaction (one commit) chains them all instead of one each.
            tokio::time::sleep(GATHER).await;
        }
        let Some(inner) = db.upgrade() else { return };
        let db = Database { inner };
        for org in queue.take() {
            if link(&db, org).await.is_err() {
                // Left pending; retried at the next wake-up, and linked by verification anyway.
                queue.mark(org);
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
        for org in self.inner.links.take() {
            if let Err(e) = link(self, org).await {
                self.inner.links.mark(org);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Links the audit events still waiting for the sequencer, then closes the pools, waiting for
    /// connections to be returned. (Events that cannot be linked now stay recorded and pending; the
    /// next verification links them.)
    pub async fn close(&self) {
        let _ = self.flush_audit().await;
        self.inner.links.stop();
        self.inner.pool.close().await;
        self.inner.keyring.store().close().await;
    }
}
