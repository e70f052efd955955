//! Master key rotation: every organization key re-wrapped under a new master key.

use uuid::Uuid;

use austa_crypto::material::{org_wrap_context, KEY_CHECK_CONTEXT};

use crate::db::{Database, Query, RowLock, TxMode};
use crate::error::Result;
use crate::kernel::{record_alone, Event};
use crate::model::{AuditAction, RiskLevel};
use crate::scope::Scope;
use austa_crypto::{DataKey, KeyProvider};
use austa_sql::begin_on;

/// What a master key rotation did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MasterKeyRotation {
    /// Organization key versions re-wrapped.
    pub organization_keys: usize,
    /// Organizations whose audit chain could not record the rotation (the rotation itself succeeded);
    /// empty normally.
    pub unrecorded_organizations: Vec<Uuid>,
}

impl Database {
    /// Re-wraps every organization key under `new` and replaces the key check value, atomically. On
    /// success this handle uses `new` from now on; reopen other handles with `new`.
    pub async fn rotate_master_key(&self, new: std::sync::Arc<dyn KeyProvider>) -> Result<MasterKeyRotation> {
        let keyring = &self.inner.keyring;
        let old = keyring.provider();
        let mut tx = begin_on(keyring.store(), None, TxMode::Write).await?;
        let lock = tx.lock(RowLock::Update);
        // Exclusive hold of the key check row: key creations (which take it shared) wait for us.
        tx.execute(Query::new(format!("SELECT key_check FROM keystore_meta WHERE id = 1{lock}"))).await?;
        let rows = tx
            .fetch_all(Query::new(format!("SELECT organization_id, id, wrapped_key FROM organization_keys{lock}")))
            .await?;
        for r in &rows {
            let (org, id) = (r.uuid("organization_id")?, r.uuid("id")?);
            let context = org_wrap_context(org, id);
            let key = old.unwrap(&r.opt_bytes("wrapped_key")?.unwrap_or_default(), &context)?;
            tx.execute(
                Query::new("UPDATE organization_keys SET wrapped_key = $1 WHERE organization_id = $2 AND id = $3")
                    .bind(new.wrap(&key, &context)?)
                    .bind(org)
                    .bind(id),
            )
            .await?;
        }
        let check = new.wrap(&DataKey::from_slice(&[0u8; 32])?, KEY_CHECK_CONTEXT)?;
        tx.execute(
            Query::new("UPDATE keystore_meta SET key_check = $1, rotated_at = $2 WHERE id = 1")
                .bind(check)
                .bind(self.now()),
        )
        .await?;
        tx.commit().await?;
        keyring.set_provider(new);
        // Recorded in every organization's chain, as the platform.
        let mut organizations: Vec<Uuid> = rows.iter().map(|r| r.uuid("organization_id")).collect::<Result<_>>()?;
        organizations.sort();
        organizations.dedup();
        let mut unrecorded = Vec::new();
        for org in organizations {
            // A key left behind by a failed organization insert has no chain to record in.
            if !self.organizations().exists(org).await? {
                continue;
            }
            let scope = Scope::platform_for(self, org);
            let event = Event::on(AuditAction::ConfigChange, "organizations")
                .entity(org)
                .changed(["master_key"])
                .reason("master key rotation")
                .risk_at_least(RiskLevel::High);
            // The rotation is done whatever happens here: go on with the other organizations and
            // report the ones whose chain did not get the event.
            if record_alone(&scope, event).await.is_err() {
                unrecorded.push(org);
            }
        }
        Ok(MasterKeyRotation { organization_keys: rows.len(), unrecorded_organizations: unrecorded })
    }
}
