//! Every operation the bindings call by name: one typed struct per operation, in one registry.
//!
//! An operation is a struct whose fields are its arguments and whose trait implementation gives its
//! name, its result type and how it runs:
//!
//! ```
//! use austa_bindings::ops::ScopeOperation;
//! use austa_core::model::Patient;
//! use austa_core::{Result, Scope};
//! use serde::Deserialize;
//!
//! /// The live patient with this phone (E.164 or a Brazilian number), if any.
//! #[derive(Debug, Deserialize)]
//! #[serde(deny_unknown_fields)]
//! pub struct FindByPhone {
//!     /// The phone number.
//!     pub phone: String,
//! }
//!
//! impl ScopeOperation for FindByPhone {
//!     const NAME: &'static str = "patients.find_by_phone";
//!     type Output = Option<Patient>;
//!     async fn run(self, scope: &Scope) -> Result<Option<Patient>> {
//!         scope.patients().find_by_phone(&self.phone).await
//!     }
//! }
//! ```
//!
//! The dispatch key is the type's constant, so a name is written once; [`call_scope`] and
//! [`call_database`] match on the constants of the types listed in the registry at the end of this
//! file, and [`SCOPE_OPERATIONS`] and [`DATABASE_OPERATIONS`] list them. The arguments of a call are
//! a JSON object deserialized into the struct: a missing argument, one of the wrong type or one the
//! operation does not take is a `validation` error naming it, and an error inside an input record
//! (`data`, `patch`, ...) names the record's own field (`first_name`, not `data.first_name`).
//!
//! Names are `<group>.<method>` (`patients.find_by_phone`, `audit.verify`), or a bare `<method>`
//! for an operation of the scope or the database itself (`update_organization`, `migrate`). The
//! stored models' generic operations (`get`, `list`, `create`, `create_many`, `update`, `delete`,
//! `restore`) are declared per table with [`table_ops!`](table).
//!
//! `austa-codegen` reads these files (the structs, their `impl`s and the `table_ops!` lines) and
//! writes the Python repositories, the Node repositories and their TypeScript declarations from
//! them; a test fails when those are stale.

use std::future::Future;

use austa_core::repo::{Cursor, PageRequest};
use austa_core::{input, Actor, Database, Error, RequestContext, Result, Scope};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

#[macro_use]
mod table;

pub mod audit;
pub mod audit_logs;
pub mod authorizations;
pub mod conversations;
pub mod database;
pub mod documents;
pub mod health_data;
pub mod health_points;
pub mod keys;
pub mod messages;
pub mod missions;
pub mod onboarding_progress;
pub mod organization;
pub mod organizations;
pub mod patients;
pub mod point_transactions;
pub mod providers;
pub mod tasy_integrations;
pub mod tasy_outbox;
pub mod tasy_sync_logs;

/// An operation run in a scope: as the scope's actor, in its organization.
pub trait ScopeOperation: DeserializeOwned + Send {
    /// The name the bindings call it by.
    const NAME: &'static str;
    /// What it returns, serialized to JSON for the binding.
    type Output: Serialize;
    /// Runs it.
    fn run(self, scope: &Scope) -> impl Future<Output = Result<Self::Output>> + Send;
}

/// An operation of the database itself (schema, seed, key cache, platform operations).
pub trait DatabaseOperation: DeserializeOwned + Send {
    /// The name the bindings call it by.
    const NAME: &'static str;
    /// What it returns, serialized to JSON for the binding.
    type Output: Serialize;
    /// Runs it.
    fn run(self, db: &Database) -> impl Future<Output = Result<Self::Output>> + Send;
}

fn to_json<T: Serialize>(value: T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::CorruptData(format!("result serialization: {e}")))
}

fn validation(field: &str, reason: &str) -> Error {
    Error::Validation { field: field.into(), reason: reason.into() }
}

fn unknown(op: &str) -> Error {
    Error::Validation { field: "operation".into(), reason: format!("`{op}` is not an operation of this library") }
}

/// What an argument's JSON value is, for naming errors.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Given {
    Null,
    Record,
    Plain,
}

/// The arguments of one call, deserialized into the operation's struct. Errors name the argument;
/// inside an input record (an object or array argument), the record's own field path.
pub(crate) fn arguments<T: DeserializeOwned>(args: Value) -> Result<T> {
    let members = match args {
        Value::Null => Map::new(),
        Value::Object(members) => members,
        _ => return Err(validation("arguments", "must be an object")),
    };
    let given: Vec<(String, Given)> = members
        .iter()
        .map(|(name, value)| {
            let kind = match value {
                Value::Null => Given::Null,
                Value::Object(_) | Value::Array(_) => Given::Record,
                _ => Given::Plain,
            };
            (name.clone(), kind)
        })
        .collect();
    input::from_json(Value::Object(members)).map_err(|e| relabel(e, &given))
}

fn relabel(error: Error, given: &[(String, Given)]) -> Error {
    let Error::Validation { field, reason } = error else { return error };
    let (head, rest) = match field.find(['.', '[']) {
        Some(at) => (&field[..at], &field[at..]),
        None => (field.as_str(), ""),
    };
    let kind = given.iter().find(|(name, _)| name == head).map(|(_, kind)| *kind);
    match (kind, rest) {
        (_, "") if reason == "is not a field of this input" => validation(head, "is not an argument of this call"),
        (Some(Given::Null), "") => validation(head, "is required"),
        (Some(Given::Record), rest) if rest.starts_with('.') => Error::Validation { field: rest[1..].into(), reason },
        _ => Error::Validation { field, reason },
    }
}

/// The page of a listing from its `limit` and `after` arguments.
pub(crate) fn page(limit: Option<u32>, after: Option<String>) -> Result<PageRequest> {
    Ok(PageRequest { limit, after: after.map(|c| c.parse::<Cursor>()).transpose()? })
}

/// A lease given in seconds.
pub(crate) fn seconds(field: &str, s: f64) -> Result<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(s).map_err(|_| validation(field, "must be a positive number"))
}

async fn run_scope<O: ScopeOperation>(scope: &Scope, args: Value) -> Result<Value> {
    let op: O = arguments(args)?;
    to_json(op.run(scope).await?)
}

async fn run_database<O: DatabaseOperation>(db: &Database, args: Value) -> Result<Value> {
    let op: O = arguments(args)?;
    to_json(op.run(db).await?)
}

/// How a binding names an actor: `{"role": "PATIENT" | "PROVIDER" | "ADMIN" | "SYSTEM", "id"?, "name"?}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorSpec {
    role: String,
    id: Option<Uuid>,
    name: Option<String>,
}

impl ActorSpec {
    fn into_actor(self) -> Result<Actor> {
        let need_id = |id: Option<Uuid>| id.ok_or_else(|| validation("actor.id", "is required for this role"));
        match self.role.as_str() {
            "PATIENT" => Ok(Actor::patient(need_id(self.id)?)),
            "PROVIDER" => Ok(Actor::provider(need_id(self.id)?)),
            "ADMIN" => Ok(Actor::admin(self.id)),
            "SYSTEM" => match self.name {
                Some(name) => Ok(Actor::system(name)),
                None => Err(validation("actor.name", "is required for SYSTEM")),
            },
            _ => Err(validation("actor.role", "is not one of PATIENT, PROVIDER, ADMIN, SYSTEM")),
        }
    }
}

/// Request metadata as data (`purpose`, `request_id`, `ip_address`, `user_agent`, `session_id`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestSpec {
    purpose: Option<String>,
    request_id: Option<String>,
    ip_address: Option<String>,
    user_agent: Option<String>,
    session_id: Option<String>,
}

/// The arguments of [`scope`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeSpec {
    organization_id: Uuid,
    actor: ActorSpec,
    request: Option<RequestSpec>,
}

/// Opens a scope: `{organization_id, actor, request?}`.
pub async fn scope(db: &Database, args: Value) -> Result<Scope> {
    let spec: ScopeSpec = arguments(args)?;
    let actor = spec.actor.into_actor()?;
    let request = spec.request.unwrap_or_default();
    let request = RequestContext {
        purpose: request.purpose,
        request_id: request.request_id,
        ip_address: request.ip_address,
        user_agent: request.user_agent,
        session_id: request.session_id,
    };
    db.scope_with(spec.organization_id, actor, request).await
}

/// The arguments of [`emergency_scope`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmergencySpec {
    patient_id: Uuid,
    reason: String,
    seconds: i64,
}

/// `{patient_id, reason, seconds}`: a provider's time-limited access to one patient, recorded;
/// returns the scope that carries the grant. Not in the registry, since it answers a scope rather
/// than JSON: each binding exposes it as `Scope.emergency_access`.
pub async fn emergency_scope(scope: &Scope, args: Value) -> Result<Scope> {
    let spec: EmergencySpec = arguments(args)?;
    scope.emergency_access(spec.patient_id, &spec.reason, chrono::Duration::seconds(spec.seconds)).await
}

/// Stores a WhatsApp Cloud API webhook body, given as the bytes received (the bindings pass bytes
/// through, so invalid UTF-8 is the core's `validation` error like any other malformed body); the
/// result is the ingest report.
pub async fn ingest(db: &Database, body: &[u8]) -> Result<Value> {
    to_json(db.whatsapp().ingest(body).await?)
}

/// The registry: every operation's type, once. Generates the dispatch functions and the name lists.
macro_rules! registry {
    (scope { $($s:ty),* $(,)? } database { $($d:ty),* $(,)? }) => {
        /// The names of the scope's operations, in registry order.
        pub const SCOPE_OPERATIONS: &[&str] = &[$(<$s as ScopeOperation>::NAME),*];

        /// The names of the database's operations, in registry order.
        pub const DATABASE_OPERATIONS: &[&str] = &[$(<$d as DatabaseOperation>::NAME),*];

        /// Runs the scope operation named `op` with the JSON object `args`; its result as JSON.
        pub async fn call_scope(scope: &Scope, op: &str, args: Value) -> Result<Value> {
            match op {
                $(<$s as ScopeOperation>::NAME => run_scope::<$s>(scope, args).await,)*
                _ => Err(unknown(op)),
            }
        }

        /// Runs the database operation named `op` with the JSON object `args`; its result as JSON.
        pub async fn call_database(db: &Database, op: &str, args: Value) -> Result<Value> {
            match op {
                $(<$d as DatabaseOperation>::NAME => run_database::<$d>(db, args).await,)*
                _ => Err(unknown(op)),
            }
        }
    };
}

registry! {
    scope {
        patients::Get, patients::List, patients::Create, patients::CreateMany, patients::Update,
        patients::Delete, patients::Restore, patients::FindByPhone, patients::FindByCpf,
        patients::FindByEmail, patients::FindByWhatsappId,

        providers::Get, providers::List, providers::Create, providers::CreateMany, providers::Update,
        providers::Delete, providers::Restore, providers::FindByEmail, providers::FindByLicense,
        providers::ListActive,

        conversations::Get, conversations::List, conversations::Create, conversations::CreateMany,
        conversations::Update, conversations::Delete, conversations::Restore,
        conversations::ActiveForPatient, conversations::ListForPatient, conversations::OpenForChat,
        conversations::RecordAiResult,

        messages::Get, messages::List, messages::Update, messages::Delete, messages::Restore,
        messages::Append, messages::RecordOutbound, messages::History, messages::FindByWhatsappMessageId,
        messages::PendingForAi, messages::ClaimForAi, messages::RecordAiResult,

        health_data::Get, health_data::List, health_data::Create, health_data::CreateMany,
        health_data::Update, health_data::Delete, health_data::Restore, health_data::ForPatient,
        health_data::Verify,

        missions::Get, missions::List, missions::Create, missions::CreateMany, missions::Update,
        missions::Delete, missions::Restore, missions::CreateWithPrerequisites, missions::Prerequisites,
        missions::AddPrerequisite, missions::RemovePrerequisite, missions::Active,

        onboarding_progress::Get, onboarding_progress::List, onboarding_progress::Create,
        onboarding_progress::CreateMany, onboarding_progress::Update, onboarding_progress::ForPatient,
        onboarding_progress::Find, onboarding_progress::Start, onboarding_progress::Advance,
        onboarding_progress::Complete,

        health_points::Get, health_points::List, health_points::Create, health_points::CreateMany,
        health_points::Update, health_points::ForPatient, health_points::RecordActivity,

        point_transactions::Get, point_transactions::List, point_transactions::Record,
        point_transactions::Spend, point_transactions::ForPatient, point_transactions::LedgerBalance,

        authorizations::Get, authorizations::List, authorizations::Create, authorizations::CreateMany,
        authorizations::Update, authorizations::Delete, authorizations::Restore,
        authorizations::ForPatient, authorizations::AttachDocument, authorizations::DetachDocument,
        authorizations::Attachments, authorizations::StartReview, authorizations::Approve,
        authorizations::Deny, authorizations::Cancel, authorizations::ExpireDue, authorizations::History,

        documents::Get, documents::List, documents::Create, documents::CreateMany, documents::Update,
        documents::Delete, documents::Restore, documents::Register, documents::RecordOcr,
        documents::ForPatient,

        tasy_integrations::Get, tasy_integrations::List, tasy_integrations::Create,
        tasy_integrations::CreateMany, tasy_integrations::Update, tasy_integrations::Delete,
        tasy_integrations::Restore, tasy_integrations::ListActive, tasy_integrations::DueForSync,

        tasy_sync_logs::Get, tasy_sync_logs::List, tasy_sync_logs::Start, tasy_sync_logs::Finish,
        tasy_sync_logs::ForIntegration,

        tasy_outbox::Claim, tasy_outbox::Complete, tasy_outbox::Fail, tasy_outbox::List,

        audit_logs::Get, audit_logs::List, audit_logs::ForEntity, audit_logs::ForPatient,

        audit::Record, audit::Verify, audit::VerifyRange, audit::AccessReport, audit::ExportFhir,
        audit::Checkpoint, audit::VerifyAgainst, audit::ProveInclusion, audit::ProveConsistency,

        keys::StartRotation, keys::RotationStatus, keys::RunRotation, keys::ShredPatient,

        organization::Organization, organization::UpdateOrganization,
        organization::RegisterWhatsappNumber, organization::UnregisterWhatsappNumber,
    }
    database {
        database::Migrate, database::Seed, database::FlushAudit, database::ClearKeyCache,
        database::Backend, database::OrganizationForWhatsapp, database::RotateMasterKey,

        organizations::Create, organizations::Get, organizations::FindByTaxId, organizations::Update,
        organizations::Delete, organizations::List,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = SCOPE_OPERATIONS.iter().chain(DATABASE_OPERATIONS).copied().collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all, "an operation name is registered twice");
    }

    #[test]
    fn argument_errors_name_the_argument_or_the_record_field() {
        let field = |args: Value| arguments::<patients::FindByPhone>(args).unwrap_err().field().map(str::to_owned);
        assert_eq!(field(json!({})), Some("phone".into()));
        assert_eq!(field(json!({"phone": null})), Some("phone".into()));
        assert_eq!(field(json!({"phone": 5})), Some("phone".into()));
        let e = arguments::<patients::FindByPhone>(json!({"phone": "x", "limit": 3})).unwrap_err();
        assert_eq!((e.field(), e.to_string().contains("not an argument")), (Some("limit"), true), "{e}");
        let e = arguments::<patients::Create>(json!({"data": {"first_name": 5}})).unwrap_err();
        assert_eq!(e.field(), Some("first_name"), "{e}");
        let e = arguments::<patients::Update>(json!({"id": Uuid::nil(), "patch": {"nickname": "x"}})).unwrap_err();
        assert_eq!(e.field(), Some("nickname"), "{e}");
        assert_eq!(arguments::<patients::Get>(json!([1])).unwrap_err().field(), Some("arguments"));
    }
}
