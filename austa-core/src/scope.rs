//! Who is asking: the [`Scope`] every tenant operation goes through.
//!
//! A scope binds an organization, an actor (kind and id), and the request context (purpose, request
//! id, IP, user agent). It can only be created by [`Database::scope`], which checks that the
//! organization exists and that a provider or patient actor belongs to it (so an invented id gets no
//! rights, and the audit trail never names an actor that does not exist); its fields are private, so code holding a scope for organization A has no way
//! to address organization B. Every repository hangs off a scope and every statement it runs is
//! filtered by the scope's organization (and, on PostgreSQL, runs in a transaction bound to it).

use std::sync::Arc;

use uuid::Uuid;

pub use austa_model::identity::{Actor, Role};

use crate::db::{Database, Query, TxMode};
use crate::error::{Error, Result};

/// Request metadata recorded with the work (audit trail).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// Why the data is accessed (e.g. `treatment`, `billing`).
    pub purpose: Option<String>,
    /// Correlation id of the request.
    pub request_id: Option<String>,
    /// Client IP address.
    pub ip_address: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// The caller's session id (from its identity system).
    pub session_id: Option<String>,
}

/// An organization plus an actor: the only way to reach tenant data.
#[derive(Clone)]
pub struct Scope {
    inner: Arc<ScopeInner>,
}

struct ScopeInner {
    db: Database,
    organization: Uuid,
    actor: Actor,
    request: RequestContext,
    emergency: Option<crate::access::EmergencyGrant>,
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("organization", &self.inner.organization)
            .field("actor", &self.inner.actor)
            .field("request", &self.inner.request)
            .field("emergency", &self.inner.emergency)
            .finish()
    }
}

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
        let scope =
            Scope { inner: Arc::new(ScopeInner { db: self.clone(), organization, actor, request, emergency: None }) };
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
    /// The organization every operation of this scope is confined to.
    pub fn organization_id(&self) -> Uuid {
        self.inner.organization
    }

    /// The actor.
    pub fn actor(&self) -> &Actor {
        &self.inner.actor
    }

    /// The request metadata.
    pub fn request(&self) -> &RequestContext {
        &self.inner.request
    }

    /// The current time by the database's clock (see [`Database::now`]).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.db.now()
    }

    /// The emergency grant this scope carries, if any (see [`Scope::emergency_access`]); the audit trail
    /// records operations under it as `EMERGENCY_ACCESS`.
    pub fn emergency(&self) -> Option<&crate::access::EmergencyGrant> {
        self.inner.emergency.as_ref()
    }

    pub(crate) fn with_emergency(&self, grant: crate::access::EmergencyGrant) -> Scope {
        let i = &self.inner;
        Scope {
            inner: Arc::new(ScopeInner {
                db: i.db.clone(),
                organization: i.organization,
                actor: i.actor.clone(),
                request: i.request.clone(),
                emergency: Some(grant),
            }),
        }
    }

    /// A platform scope for `organization`, without the existence check of [`Database::scope`]: for
    /// platform-level operations on an organization the caller has just found or created, so that
    /// they are audited in its chain.
    pub(crate) fn platform_for(db: &Database, organization: Uuid) -> Scope {
        Scope {
            inner: Arc::new(ScopeInner {
                db: db.clone(),
                organization,
                actor: Actor::platform(),
                request: RequestContext::default(),
                emergency: None,
            }),
        }
    }

    pub(crate) fn db(&self) -> &Database {
        &self.inner.db
    }

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
        let mut event = crate::audit::Event::on(crate::model::AuditAction::AccessDenied, table)
            .outcome(crate::model::AuditOutcome::Denied)
            .reason(format!("scope refused: the actor is not {what}"));
        if let Some(id) = self.actor().id() {
            event = event.entity(id);
        }
        match crate::audit::record_alone(self, event).await {
            Ok(_) => refusal,
            Err(e) => e,
        }
    }
}
