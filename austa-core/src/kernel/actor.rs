//! Opening a [`Scope`]: the organization must exist and a provider or patient actor must belong to
//! it (so an invented id gets no rights, and the audit trail never names an actor that does not
//! exist). A refusal is recorded in the organization's audit trail under the claimed actor.

use uuid::Uuid;

use crate::db::{Database, Query, TxMode};
use crate::error::{Error, Result};
use crate::scope::{Actor, RequestContext, Role, Scope};

impl Database {
    /// A scope for `actor` in `organization`. Fails with `not_found` when the organization does not
    /// exist or is soft-deleted, and with `permission_denied` (recorded as `ACCESS_DENIED` in the
    /// organization's audit trail) when a provider actor is not an active provider of the organization
    /// or a patient actor is not a patient of it.
    pub async fn scope(&self, organization: Uuid, actor: Actor) -> Result<Scope> {
        self.scope_with(organization, actor, RequestContext::default()).await
    }

    /// Like [`Database::scope`], with request metadata.
    pub async fn scope_with(&self, organization: Uuid, actor: Actor, request: RequestContext) -> Result<Scope> {
        // The organization and, for a provider or patient, its membership: one round trip.
        let member = membership(&actor);
        let sql = match member {
            Some(condition) => {
                format!("SELECT id, ({condition}) AS member FROM organizations WHERE id = $1 AND deleted_at IS NULL")
            }
            None => "SELECT id FROM organizations WHERE id = $1 AND deleted_at IS NULL".to_string(),
        };
        let query = match (member, actor.id()) {
            (Some(_), Some(id)) => Query::new(sql).bind(organization).bind(id),
            _ => Query::new(sql).bind(organization),
        };
        let mut tx = self.begin(Some(organization), TxMode::Read).await?;
        let found = tx.fetch_optional(query).await?;
        tx.commit().await?;
        let Some(row) = found else {
            return Err(Error::not_found("organization"));
        };
        let scope = Scope::new(self, organization, actor, request);
        if member.is_some() && row.opt_uuid("member")?.is_none() {
            return Err(scope.refuse_actor().await);
        }
        Ok(scope)
    }
}

/// For a provider or patient actor: the SQL (`$1` the organization, `$2` the actor's id) that finds
/// its row: a provider active and not deleted, a
/// patient not deleted. Administrators come from the caller's identity system and system actors are
/// named integrations: neither has a row to check.
fn membership(actor: &Actor) -> Option<&'static str> {
    match actor.role() {
        Role::Provider => Some(
            "SELECT p.id FROM providers p WHERE p.organization_id = $1 AND p.id = $2 \
             AND p.is_active = TRUE AND p.deleted_at IS NULL",
        ),
        Role::Patient => {
            Some("SELECT p.id FROM patients p WHERE p.organization_id = $1 AND p.id = $2 AND p.deleted_at IS NULL")
        }
        Role::Admin | Role::System => None,
    }
}

impl Scope {
    /// Checks again that a provider or patient actor belongs to the organization (a scope may outlive
    /// a provider's deactivation); `permission_denied`, recorded, when it no longer does.
    pub(crate) async fn recheck_actor(&self) -> Result<()> {
        let (Some(condition), Some(id)) = (membership(self.actor()), self.actor().id()) else {
            return Ok(());
        };
        let org = self.organization_id();
        let mut tx = self.db().begin(Some(org), TxMode::Read).await?;
        let found = tx.fetch_optional(Query::new(condition).bind(org).bind(id)).await?;
        tx.commit().await?;
        match found {
            Some(_) => Ok(()),
            None => Err(self.refuse_actor().await),
        }
    }

    /// Records that this scope's actor is not a member of the organization (`ACCESS_DENIED` on the
    /// actor's own row, under the claimed actor) and returns the refusal.
    async fn refuse_actor(&self) -> Error {
        let (table, what) = match self.actor().role() {
            Role::Patient => ("patients", "a patient of this organization"),
            _ => ("providers", "an active provider of this organization"),
        };
        let refusal = Error::PermissionDenied(format!("the {} actor is not {what}", self.actor().role().as_str()));
        let mut event = crate::kernel::Event::on(crate::model::AuditAction::AccessDenied, table)
            .outcome(crate::model::AuditOutcome::Denied)
            .reason(format!("scope refused: the actor is not {what}"));
        if let Some(id) = self.actor().id() {
            event = event.entity(id);
        }
        match crate::kernel::record_alone(self, event).await {
            Ok(_) => refusal,
            Err(e) => e,
        }
    }
}
