//! `tasy_integrations.*`: the organization's connections to the Tasy ERP.

use austa_core::model::{NewTasyIntegration, TasyIntegration, TasyIntegrationPatch};
use austa_core::repo::Page;
use austa_core::{Result, Scope};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{page, ScopeOperation};

table_ops!("tasy_integrations", TasyIntegration, NewTasyIntegration, TasyIntegrationPatch: get, list, create, create_many, update, delete, restore);

/// Active integrations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListActive {
    /// Rows per page.
    pub limit: Option<u32>,
    /// The previous page's `next` cursor.
    pub after: Option<String>,
}

impl ScopeOperation for ListActive {
    const NAME: &'static str = "tasy_integrations.list_active";
    type Output = Page<TasyIntegration>;
    async fn run(self, scope: &Scope) -> Result<Page<TasyIntegration>> {
        scope.tasy_integrations().list_active(page(self.limit, self.after)?).await
    }
}

/// Active integrations whose next run is due.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DueForSync {
    /// The moment; now when absent.
    pub now: Option<DateTime<Utc>>,
    /// Rows per page.
    pub limit: Option<u32>,
    /// The previous page's `next` cursor.
    pub after: Option<String>,
}

impl ScopeOperation for DueForSync {
    const NAME: &'static str = "tasy_integrations.due_for_sync";
    type Output = Page<TasyIntegration>;
    async fn run(self, scope: &Scope) -> Result<Page<TasyIntegration>> {
        let now = self.now.unwrap_or_else(|| scope.now());
        scope.tasy_integrations().due_for_sync(now, page(self.limit, self.after)?).await
    }
}
