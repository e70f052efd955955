//! Break-glass: a provider opens one patient's data beyond the access levels, for a while, with a
//! written reason; the grant is recorded for review and every operation under it is flagged.

use chrono::Duration;
use uuid::Uuid;

use crate::access::{Action, EmergencyGrant, MAX_EMERGENCY};
use crate::error::{Error, Result};
use crate::scope::{Role, Scope};

impl Scope {
    /// Opens one patient's data to this provider beyond the access levels, for `duration` (at most
    /// [`MAX_EMERGENCY`]), with a written reason (10 to 500 characters). Returns a new scope carrying the
    /// grant; the original scope is unchanged. Only providers may ask.
    ///
    /// The grant is recorded as `EMERGENCY_ACCESS` (high risk, for review) with its reason, and every
    /// operation under it is flagged `emergency` in its own event; a refused request is recorded as
    /// `ACCESS_DENIED`. The provider must still be an active provider of the organization when it asks
    /// (checked again here, since a scope may outlive a deactivation).
    pub async fn emergency_access(&self, patient_id: Uuid, reason: &str, duration: Duration) -> Result<Scope> {
        let allowed = if self.actor().role() == Role::Provider {
            Ok(())
        } else {
            Err(Error::PermissionDenied("only providers may request emergency access".into()))
        };
        crate::kernel::check(self, "patients", Action::Read, Some(patient_id), Some(patient_id), allowed).await?;
        self.recheck_actor().await?;
        let reason = crate::validate::text("reason", reason, 10, 500)?;
        if duration <= Duration::zero() || duration > MAX_EMERGENCY {
            return Err(Error::validation("duration", "must be between 1 second and 12 hours"));
        }
        if !crate::kernel::rows::exists::<crate::model::Patient>(self, patient_id).await? {
            return Err(Error::not_found("patient"));
        }
        let now = self.now();
        let grant = EmergencyGrant { patient_id, reason, granted_at: now, expires_at: now + duration };
        let event = crate::kernel::Event::on(crate::model::AuditAction::EmergencyAccess, "patients")
            .entity(patient_id)
            .patient(Some(patient_id))
            .reason(grant.reason.clone());
        crate::kernel::record_alone(self, event).await?;
        Ok(self.with_emergency(grant))
    }
}
