//! `tasy_sync_logs.*`: the runs of the Tasy synchronization, started and finished.

use austa_core::model::{NewTasySync, SyncOutcome, TasySyncLog};
use austa_core::repo::Page;
use austa_core::{Result, Scope};
use serde::Deserialize;
use uuid::Uuid;

use super::{page, ScopeOperation};

table_ops!("tasy_sync_logs", TasySyncLog, (), (): get, list);

/// Starts a run of a live integration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Start {
    /// The integration.
    pub integration_id: Uuid,
    /// What the run is.
    pub sync: NewTasySync,
}

impl ScopeOperation for Start {
    const NAME: &'static str = "tasy_sync_logs.start";
    type Output = TasySyncLog;
    async fn run(self, scope: &Scope) -> Result<TasySyncLog> {
        scope.tasy_sync_logs().start(self.integration_id, self.sync).await
    }
}

/// Finishes a run with its outcome (counts, error).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finish {
    /// The run.
    pub id: Uuid,
    /// How it ended.
    pub outcome: SyncOutcome,
}

impl ScopeOperation for Finish {
    const NAME: &'static str = "tasy_sync_logs.finish";
    type Output = TasySyncLog;
    async fn run(self, scope: &Scope) -> Result<TasySyncLog> {
        scope.tasy_sync_logs().finish(self.id, self.outcome).await
    }
}

/// An integration's runs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForIntegration {
    /// The integration.
    pub integration_id: Uuid,
    /// Rows per page.
    pub limit: Option<u32>,
    /// The previous page's `next` cursor.
    pub after: Option<String>,
}

impl ScopeOperation for ForIntegration {
    const NAME: &'static str = "tasy_sync_logs.for_integration";
    type Output = Page<TasySyncLog>;
    async fn run(self, scope: &Scope) -> Result<Page<TasySyncLog>> {
        scope.tasy_sync_logs().for_integration(self.integration_id, page(self.limit, self.after)?).await
    }
}
