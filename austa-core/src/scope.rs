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

use chrono::{DateTime, Utc};

use crate::db::Database;

/// A time-boxed emergency grant: one provider, one patient, a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyGrant {
    /// The patient whose data is opened.
    pub patient_id: Uuid,
    /// Why (recorded by the audit trail).
    pub reason: String,
    /// When the grant started.
    pub granted_at: DateTime<Utc>,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

impl EmergencyGrant {
    /// Whether the grant is still in force by the system clock. The library itself asks
    /// [`EmergencyGrant::active_at`] with the database's clock.
    pub fn active(&self) -> bool {
        self.active_at(chrono::Utc::now())
    }

    /// Whether the grant is in force at `now`.
    pub fn active_at(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }
}

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
    emergency: Option<EmergencyGrant>,
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
    pub fn emergency(&self) -> Option<&EmergencyGrant> {
        self.inner.emergency.as_ref()
    }

    pub(crate) fn with_emergency(&self, grant: EmergencyGrant) -> Scope {
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
    pub(crate) fn new(db: &Database, organization: Uuid, actor: Actor, request: RequestContext) -> Scope {
        Scope { inner: Arc::new(ScopeInner { db: db.clone(), organization, actor, request, emergency: None }) }
    }

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
}
