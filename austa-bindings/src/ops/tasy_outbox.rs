//! `tasy_outbox.*`: the transactional outbox towards Tasy, worked by the sync worker.

use austa_core::repo::tasy_outbox::{OutboxItem, OutboxStatus};
use austa_core::{Result, Scope};
use serde::Deserialize;
use uuid::Uuid;

use super::{seconds, ScopeOperation};

/// Claims up to `limit` due rows for `lease_seconds`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// The claiming worker's name.
    pub worker: String,
    /// At most this many.
    pub limit: u32,
    /// How long the claim holds, in seconds.
    pub lease_seconds: f64,
}

impl ScopeOperation for Claim {
    const NAME: &'static str = "tasy_outbox.claim";
    type Output = Vec<OutboxItem>;
    async fn run(self, scope: &Scope) -> Result<Vec<OutboxItem>> {
        let lease = seconds("lease_seconds", self.lease_seconds)?;
        scope.tasy_outbox().claim(&self.worker, self.limit, lease).await
    }
}

/// Marks a claimed row delivered.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Complete {
    /// The row.
    pub id: Uuid,
}

impl ScopeOperation for Complete {
    const NAME: &'static str = "tasy_outbox.complete";
    type Output = OutboxItem;
    async fn run(self, scope: &Scope) -> Result<OutboxItem> {
        scope.tasy_outbox().complete(self.id).await
    }
}

/// Records a failed delivery (an error code, never patient data); retried with backoff, dead after
/// the limit.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fail {
    /// The row.
    pub id: Uuid,
    /// The error code.
    pub error: String,
}

impl ScopeOperation for Fail {
    const NAME: &'static str = "tasy_outbox.fail";
    type Output = OutboxItem;
    async fn run(self, scope: &Scope) -> Result<OutboxItem> {
        scope.tasy_outbox().fail(self.id, &self.error).await
    }
}

/// Rows in one status, oldest first.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct List {
    /// The status.
    pub status: OutboxStatus,
    /// At most this many.
    pub limit: u32,
}

impl ScopeOperation for List {
    const NAME: &'static str = "tasy_outbox.list";
    type Output = Vec<OutboxItem>;
    async fn run(self, scope: &Scope) -> Result<Vec<OutboxItem>> {
        scope.tasy_outbox().list(self.status, self.limit).await
    }
}
