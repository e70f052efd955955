//! Every operation of the core by name, with JSON arguments and a JSON result.
//!
//! Names are `<repository>.<method>` as in the Rust API (`patients.find_by_phone`,
//! `onboarding_progress.complete`). Every stored model's repository answers `get {id}` and
//! `list {limit?, after?}`; those created through the generic path also `create {data}` and
//! `create_many {rows, count_only?}` (`count_only` answers `{"count": n}` instead of the rows, for
//! imports that do not need them back); changeable ones `update {id, patch}`; soft-deletable ones
//! `delete {id}` and `restore {id}`. Listings answer `{"items": [...], "next": cursor-or-null}`. The
//! domain operations are listed in [`call_scope`] and [`call_database`], one line each, with their
//! arguments.
//!
//! A call either returns the core's result or its [`Error`]; an argument that is missing, of the
//! wrong type or unknown is a `validation` error naming it.

use std::time::Duration;

use austa_core::crypto::{RotationTarget, RunOptions};
use austa_core::model::*;
use austa_core::repo::{Model, Page, SoftDeletable, Updatable};
use austa_core::{Actor, Database, Error, RequestContext, Result, Scope};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::args::Args;

fn to_json<T: Serialize>(value: T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::CorruptData(format!("result serialization: {e}")))
}

fn page_json<T: Serialize>(page: Page<T>) -> Result<Value> {
    Ok(json!({"items": to_json(page.items)?, "next": page.next.map(|c| c.to_string())}))
}

fn unknown(op: &str) -> Error {
    Error::Validation { field: "operation".into(), reason: format!("`{op}` is not an operation of this library") }
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
        let need_id = |id: Option<Uuid>| {
            id.ok_or_else(|| Error::Validation { field: "actor.id".into(), reason: "is required for this role".into() })
        };
        match self.role.as_str() {
            "PATIENT" => Ok(Actor::patient(need_id(self.id)?)),
            "PROVIDER" => Ok(Actor::provider(need_id(self.id)?)),
            "ADMIN" => Ok(Actor::admin(self.id)),
            "SYSTEM" => match self.name {
                Some(name) => Ok(Actor::system(name)),
                None => Err(Error::Validation { field: "actor.name".into(), reason: "is required for SYSTEM".into() }),
            },
            _ => Err(Error::Validation {
                field: "actor.role".into(),
                reason: "is not one of PATIENT, PROVIDER, ADMIN, SYSTEM".into(),
            }),
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

/// Opens a scope: `{organization_id, actor, request?}`.
pub async fn scope(db: &Database, args: Value) -> Result<Scope> {
    let mut a = Args::new(args)?;
    let organization: Uuid = a.req("organization_id")?;
    let actor = a.req::<ActorSpec>("actor")?.into_actor()?;
    let request = a.opt::<RequestSpec>("request")?.unwrap_or_default();
    a.finish()?;
    let request = RequestContext {
        purpose: request.purpose,
        request_id: request.request_id,
        ip_address: request.ip_address,
        user_agent: request.user_agent,
        session_id: request.session_id,
    };
    db.scope_with(organization, actor, request).await
}

/// Stores a WhatsApp Cloud API webhook body, given as the bytes received (the bindings pass bytes
/// through, so invalid UTF-8 is the core's `validation` error like any other malformed body); the
/// result is the ingest report.
pub async fn ingest(db: &Database, body: &[u8]) -> Result<Value> {
    to_json(db.whatsapp().ingest(body).await?)
}

/// Database-level operations: `migrate`, `seed`, `flush_audit`, `clear_key_cache`,
/// `whatsapp.ingest {body}` (the webhook body as a string), `whatsapp.organization_for
/// {phone_number_id}`, `organizations.{create {data}, get {id}, find_by_tax_id {cnpj}, update {id,
/// patch}, delete {id}, list {limit?, after?}}` (platform operations), `keys.rotate_master
/// {master_key | key_file}`.
pub async fn call_database(db: &Database, op: &str, args: Value) -> Result<Value> {
    let mut a = Args::new(args)?;
    let result = match op {
        "migrate" => to_json(db.migrate().await?),
        "seed" => to_json(austa_core::seed::run(db).await?),
        "flush_audit" => to_json(db.flush_audit().await?),
        "clear_key_cache" => {
            db.clear_key_cache();
            Ok(Value::Null)
        }
        "backend" => to_json(format!("{:?}", db.backend()).to_lowercase()),
        "whatsapp.ingest" => ingest(db, a.req::<String>("body")?.as_bytes()).await,
        "whatsapp.organization_for" => {
            to_json(db.whatsapp().organization_for(&a.req::<String>("phone_number_id")?).await?)
        }
        "organizations.create" => to_json(db.organizations().create(a.req("data")?).await?),
        "organizations.get" => to_json(db.organizations().get(a.req("id")?).await?),
        "organizations.find_by_tax_id" => to_json(db.organizations().find_by_tax_id(&a.req::<String>("cnpj")?).await?),
        "organizations.update" => to_json(db.organizations().update(a.req("id")?, a.req("patch")?).await?),
        "organizations.delete" => to_json(db.organizations().delete(a.req("id")?).await?),
        "organizations.list" => page_json(db.organizations().list(a.page()?).await?),
        "keys.rotate_master" => {
            let options = crate::open::OpenOptions {
                master_key: a.opt("master_key")?,
                key_file: a.opt("key_file")?,
                ..Default::default()
            };
            if options.master_key.is_none() && options.key_file.is_none() {
                return Err(Error::Validation { field: "master_key".into(), reason: "or key_file is required".into() });
            }
            to_json(db.rotate_master_key(crate::open::key_provider(&options)?).await?)
        }
        _ => return Err(unknown(op)),
    }?;
    a.finish()?;
    Ok(result)
}

/// Scope operations; see the module documentation for the generic ones. Domain operations:
///
/// * `patients.find_by_{phone,cpf,email,whatsapp_id} {value}`; `providers.find_by_{email,license}
///   {value}`, `providers.list_active`
/// * `conversations.{active_for_patient, list_for_patient} {patient_id}`, `conversations.open_for_chat
///   {chat_id}`, `conversations.record_ai_result {id, analysis}`
/// * `messages.append {data}`, `messages.history {conversation_id}`, `messages.find_by_whatsapp_message_id
///   {value}`, `messages.record_outbound {data}`, `messages.pending_for_ai {limit}`,
///   `messages.claim_for_ai {worker, limit, lease_seconds}`, `messages.record_ai_result {id, analysis}`
/// * `health_data.for_patient {patient_id, data_type?}`, `health_data.verify {id, provider_id}`
/// * `missions.create_with_prerequisites {data}`, `missions.{prerequisites} {mission_id}`,
///   `missions.{add,remove}_prerequisite {mission_id, prerequisite_id}`, `missions.active {at?}`
/// * `onboarding_progress.{start, complete} {patient_id, mission_id}`, `onboarding_progress.advance
///   {patient_id, mission_id, steps}`, `onboarding_progress.find {patient_id, mission_id}`,
///   `onboarding_progress.for_patient {patient_id}`; `health_points.for_patient {patient_id}`,
///   `health_points.record_activity {patient_id, at?}`; `point_transactions.record {data}`,
///   `point_transactions.spend {patient_id, amount, reason}`, `point_transactions.for_patient
///   {patient_id}`, `point_transactions.ledger_balance {patient_id}`
/// * `authorizations.for_patient {patient_id, status?}`, `authorizations.{attach,detach}_document
///   {authorization_id, document_id}`, `authorizations.attachments {authorization_id}`,
///   `authorizations.start_review {id, reviewer_provider_id}`, `authorizations.approve {id,
///   approver_provider_id, valid_from, valid_until}`, `authorizations.deny {id, reviewer_provider_id,
///   reason}`, `authorizations.cancel {id, reason}`, `authorizations.expire_due {now?}`,
///   `authorizations.history {authorization_id}`
/// * `documents.register {data, checksum}`, `documents.record_ocr {id, ocr}`, `documents.for_patient
///   {patient_id}`
/// * `tasy_integrations.{list_active, due_for_sync {now?}}`, `tasy_sync_logs.start {integration_id,
///   sync}`, `tasy_sync_logs.finish {id, outcome}`, `tasy_sync_logs.for_integration {integration_id}`;
///   `tasy_outbox.claim {worker, limit, lease_seconds}`, `tasy_outbox.{complete} {id}`,
///   `tasy_outbox.fail {id, error}`, `tasy_outbox.list {status, limit}`
/// * `audit_logs.for_entity {entity_type, entity_id}`, `audit_logs.for_patient {patient_id}`;
///   `audit.record {event}`, `audit.verify`, `audit.verify_range {from_seq, to_seq}`,
///   `audit.access_report {patient_id, from, to}`, `audit.export_fhir {path, from, to}`
/// * `organization.get`, `organization.update {patch}`, `whatsapp.register_number {phone_number_id}`,
///   `whatsapp.unregister_number {phone_number_id}`
/// * `keys.start_rotation {patient_id?}` (the organization's key without it), `keys.rotation_status
///   {id}`, `keys.run_rotation {id, batch_size?, max_batches?}`, `keys.shred_patient {patient_id,
///   reason}`
/// * `emergency_access {patient_id, reason, seconds}` is not here: it returns a new scope, so each
///   binding exposes it through [`emergency_scope`].
///
/// Listings take `limit?` and `after?` as well.
pub async fn call_scope(scope: &Scope, op: &str, args: Value) -> Result<Value> {
    let mut a = Args::new(args)?;
    let (repo, method) = op.split_once('.').ok_or_else(|| unknown(op))?;
    let result = match repo {
        "patients" => patients(scope, method, &mut a).await,
        "providers" => providers(scope, method, &mut a).await,
        "conversations" => conversations(scope, method, &mut a).await,
        "messages" => messages(scope, method, &mut a).await,
        "health_data" => health_data(scope, method, &mut a).await,
        "missions" => missions(scope, method, &mut a).await,
        "onboarding_progress" => onboarding(scope, method, &mut a).await,
        "health_points" => health_points(scope, method, &mut a).await,
        "point_transactions" => point_transactions(scope, method, &mut a).await,
        "authorizations" => authorizations(scope, method, &mut a).await,
        "documents" => documents(scope, method, &mut a).await,
        "tasy_integrations" => tasy_integrations(scope, method, &mut a).await,
        "tasy_sync_logs" => tasy_sync_logs(scope, method, &mut a).await,
        "tasy_outbox" => tasy_outbox(scope, method, &mut a).await,
        "audit_logs" => audit_logs(scope, method, &mut a).await,
        "audit" => audit(scope, method, &mut a).await,
        "organization" => organization(scope, method, &mut a).await,
        "whatsapp" => whatsapp(scope, method, &mut a).await,
        "keys" => keys(scope, method, &mut a).await,
        _ => None,
    }
    .ok_or_else(|| unknown(op))??;
    a.finish()?;
    Ok(result)
}

/// `emergency_access {patient_id, reason, seconds}`: a provider's time-limited access to one patient,
/// recorded; returns the scope that carries the grant.
pub async fn emergency_scope(scope: &Scope, args: Value) -> Result<Scope> {
    let mut a = Args::new(args)?;
    let patient: Uuid = a.req("patient_id")?;
    let reason: String = a.req("reason")?;
    let seconds: i64 = a.req("seconds")?;
    a.finish()?;
    scope.emergency_access(patient, &reason, chrono::Duration::seconds(seconds)).await
}

type Op = Option<Result<Value>>;

/// `get` and `list`, for every stored model.
async fn read<M: Model + Serialize>(scope: &Scope, method: &str, a: &mut Args) -> Op {
    let repo = scope.repo::<M>();
    Some(match method {
        "get" => async { to_json(repo.get(a.req("id")?).await?) }.await,
        "list" => async { page_json(repo.list(a.page()?).await?) }.await,
        _ => return None,
    })
}

/// `create` and `create_many`, for models created through the generic path.
async fn create<M: Model + Serialize>(scope: &Scope, method: &str, a: &mut Args) -> Op
where
    M::New: DeserializeOwned,
{
    let repo = scope.repo::<M>();
    Some(match method {
        "create" => async { to_json(repo.create(a.req("data")?).await?) }.await,
        "create_many" => {
            async {
                let rows: Vec<Value> = a.req("rows")?;
                let count_only = a.opt::<bool>("count_only")?.unwrap_or(false);
                let decoded = rows.into_iter().map(austa_core::input::from_json::<M::New>);
                let created = repo.create_many_decoded(decoded).await?;
                if count_only {
                    Ok(json!({"count": created.len()}))
                } else {
                    to_json(created)
                }
            }
            .await
        }
        _ => return read::<M>(scope, method, a).await,
    })
}

/// `update`, then `create`/`create_many`/`get`/`list`.
async fn change<M: Updatable + Serialize>(scope: &Scope, method: &str, a: &mut Args) -> Op
where
    M::New: DeserializeOwned,
    M::Patch: DeserializeOwned,
{
    match method {
        "update" => Some(async { to_json(scope.repo::<M>().update(a.req("id")?, a.req("patch")?).await?) }.await),
        _ => create::<M>(scope, method, a).await,
    }
}

/// `delete` and `restore`, then the operations of [`change`].
async fn full<M: Updatable + SoftDeletable + Serialize>(scope: &Scope, method: &str, a: &mut Args) -> Op
where
    M::New: DeserializeOwned,
    M::Patch: DeserializeOwned,
{
    let repo = scope.repo::<M>();
    match method {
        "delete" => Some(async { to_json(repo.delete(a.req("id")?).await?) }.await),
        "restore" => Some(async { to_json(repo.restore(a.req("id")?).await?) }.await),
        _ => change::<M>(scope, method, a).await,
    }
}

macro_rules! domain {
    ($method:expr, $a:ident, { $($name:literal => $body:expr,)* } else $fallback:expr) => {
        match $method {
            $($name => Some(async { $body }.await),)*
            _ => $fallback,
        }
    };
}

async fn patients(scope: &Scope, method: &str, a: &mut Args) -> Op {
    let r = scope.patients();
    domain!(method, a, {
        "find_by_phone" => to_json(r.find_by_phone(&a.req::<String>("value")?).await?),
        "find_by_cpf" => to_json(r.find_by_cpf(&a.req::<String>("value")?).await?),
        "find_by_email" => to_json(r.find_by_email(&a.req::<String>("value")?).await?),
        "find_by_whatsapp_id" => to_json(r.find_by_whatsapp_id(&a.req::<String>("value")?).await?),
    } else full::<Patient>(scope, method, a).await)
}

async fn providers(scope: &Scope, method: &str, a: &mut Args) -> Op {
    let r = scope.providers();
    domain!(method, a, {
        "find_by_email" => to_json(r.find_by_email(&a.req::<String>("value")?).await?),
        "find_by_license" => to_json(r.find_by_license(&a.req::<String>("value")?).await?),
        "list_active" => page_json(r.list_active(a.page()?).await?),
    } else full::<Provider>(scope, method, a).await)
}

async fn conversations(scope: &Scope, method: &str, a: &mut Args) -> Op {
    let r = scope.conversations();
    domain!(method, a, {
        "active_for_patient" => page_json(r.active_for_patient(a.req("patient_id")?, a.page()?).await?),
        "list_for_patient" => page_json(r.list_for_patient(a.req("patient_id")?, a.page()?).await?),
        "open_for_chat" => to_json(r.open_for_chat(&a.req::<String>("chat_id")?).await?),
        "record_ai_result" => to_json(r.record_ai_result(a.req("id")?, a.req("analysis")?).await?),
    } else full::<Conversation>(scope, method, a).await)
}

async fn messages(scope: &Scope, method: &str, a: &mut Args) -> Op {
    let r = scope.messages();
    domain!(method, a, {
        "append" => to_json(r.append(a.req("data")?).await?),
        "history" => page_json(r.history(a.req("conversation_id")?, a.page()?).await?),
        "find_by_whatsapp_message_id" => to_json(r.find_by_whatsapp_message_id(&a.req::<String>("value")?).await?),
        "record_outbound" => to_json(r.record_outbound(a.req("data")?).await?),
        "pending_for_ai" => to_json(r.pending_for_ai(a.req("limit")?).await?),
        "claim_for_ai" => to_json(
            r.claim_for_ai(&a.req::<String>("worker")?, a.req("limit")?, seconds(a.req("lease_seconds")?)?).await?,
        ),
        "record_ai_result" => to_json(r.record_ai_result(a.req("id")?, a.req("analysis")?).await?),
        "update" => to_json(r.update(a.req("id")?, a.req("patch")?).await?),
        "delete" => to_json(r.delete(a.req("id")?).await?),
        "restore" => to_json(r.restore(a.req("id")?).await?),
    } else read::<Message>(scope, method, a).await)
}

fn seconds(s: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| Error::Validation { field: "lease_seconds".into(), reason: "must be a positive number".into() })
}

async fn health_data(scope: &Scope, method: &str, a: &mut Args) -> Op {
    let r = scope.health_data();
    domain!(method, a, {
        "for_patient" => page_json(r.for_patient(a.req("patient_id")?, a.opt("data_type")?, a.page()?).await?),
        "verify" => to_json(r.verify(a.req("id")?, a.req("provider_id")?).await?),
    } else full::<HealthData>(scope, method, a).await)
}

async fn missions(scope: &Scope, method: &str, a: &mut Args) -> Op {
    let r = scope.missions();
    domain!(method, a, {
        "create_with_prerequisites" => to_json(r.create_with_prerequisites(a.req("data")?).await?),
        "prerequisites" => to_json(r.prerequisites(a.req("mission_id")?).await?),
        "add_prerequisite" => to_json(r.add_prerequisite(a.req("mission_id")?, a.req("prerequisite_id")?).await?),
        "remove_prerequisite" => {
            to_json(r.remove_prerequisite(a.req("mission_id")?, a.req("prerequisite_id")?).await?)
        },
        "active" => match a.opt::<DateTime<Utc>>("at")? {
            Some(at) => page_json(r.active_at(at, a.page()?).await?),
            None => page_json(r.active(a.page()?).await?),
        },
    } else full::<Mission>(scope, method, a).await)
}

async fn onboarding(scope: &Scope, method: &str, a: &mut Args) -> Op {
    let r = scope.onboarding_progress();
    domain!(method, a, {
        "for_patient" => page_json(r.for_patient(a.req("patient_id")?, a.page()?).await?),
        "find" => to_json(r.find(a.req("patient_id")?, a.req("mission_id")?).await?),
        "start" => to_json(r.start(a.req("patient_id")?, a.req("mission_id")?).await?),
        "advance" => to_json(r.advance(a.req("patient_id")?, a.req("mission_id")?, a.req("steps")?).await?),
        "complete" => to_json(r.complete(a.req("patient_id")?, a.req("mission_id")?).await?),
    } else change::<OnboardingProgress>(scope, method, a).await)
}

async fn health_points(scope: &Scope, method: &str, a: &mut Args) -> Op {
    let r = scope.health_points();
    domain!(method, a, {
        "for_patient" => to_json(r.for_patient(a.req("patient_id")?).await?),
        "record_activity" => {
            let at = a.opt::<DateTime<Utc>>("at")?.unwrap_or_else(austa_core::time::now);
            to_json(r.record_activity(a.req("patient_id")?, at).await?)
        },
    } else change::<HealthPoints>(scope, method, a).await)
}

async fn point_transactions(scope: &Scope, method: &str, a: &mut Args) -> Op {
    let r = scope.point_transactions();
    domain!(method, a, {
        "record" => to_json(r.record(a.req("data")?).await?),
        "spend" => to_json(r.spend(a.req("patient_id")?, a.req("amount")?, &a.req::<String>("reason")?).await?),
        "for_patient" => page_json(r.for_patient(a.req("patient_id")?, a.page()?).await?),
        "ledger_balance" => {
            let (earned, spent) = r.ledger_balance(a.req("patient_id")?).await?;
            Ok(json!({"total": earned, "spent": spent}))
        },
    } else read::<PointTransaction>(scope, method, a).await)
}

async fn authorizations(scope: &Scope, method: &str, a: &mut Args) -> Op {
    let r = scope.authorizations();
    domain!(method, a, {
        "for_patient" => page_json(r.for_patient(a.req("patient_id")?, a.opt("status")?, a.page()?).await?),
        "attach_document" => to_json(r.attach_document(a.req("authorization_id")?, a.req("document_id")?).await?),
        "detach_document" => to_json(r.detach_document(a.req("authorization_id")?, a.req("document_id")?).await?),
        "attachments" => to_json(r.attachments(a.req("authorization_id")?).await?),
        "start_review" => to_json(r.start_review(a.req("id")?, a.req("reviewer_provider_id")?).await?),
        "approve" => to_json(
            r.approve(a.req("id")?, a.req("approver_provider_id")?, a.req("valid_from")?, a.req("valid_until")?)
                .await?,
        ),
        "deny" => to_json(r.deny(a.req("id")?, a.req("reviewer_provider_id")?, a.req::<String>("reason")?).await?),
        "cancel" => to_json(r.cancel(a.req("id")?, a.req::<String>("reason")?).await?),
        "expire_due" => to_json(r.expire_due(a.opt("now")?.unwrap_or_else(austa_core::time::now)).await?),
        "history" => to_json(r.history(a.req("authorization_id")?).await?),
    } else full::<Authorization>(scope, method, a).await)
}

async fn documents(scope: &Scope, method: &str, a: &mut Args) -> Op {
    let r = scope.documents();
    domain!(method, a, {
        "register" => to_json(r.register(a.req("data")?, &a.req::<String>("checksum")?).await?),
        "record_ocr" => to_json(r.record_ocr(a.req("id")?, a.req("ocr")?).await?),
        "for_patient" => page_json(r.for_patient(a.req("patient_id")?, a.page()?).await?),
    } else full::<Document>(scope, method, a).await)
}

async fn tasy_integrations(scope: &Scope, method: &str, a: &mut Args) -> Op {
    let r = scope.tasy_integrations();
    domain!(method, a, {
        "list_active" => page_json(r.list_active(a.page()?).await?),
        "due_for_sync" => {
            page_json(r.due_for_sync(a.opt("now")?.unwrap_or_else(austa_core::time::now), a.page()?).await?)
        },
    } else full::<TasyIntegration>(scope, method, a).await)
}

async fn tasy_sync_logs(scope: &Scope, method: &str, a: &mut Args) -> Op {
    let r = scope.tasy_sync_logs();
    domain!(method, a, {
        "start" => to_json(r.start(a.req("integration_id")?, a.req("sync")?).await?),
        "finish" => to_json(r.finish(a.req("id")?, a.req("outcome")?).await?),
        "for_integration" => page_json(r.for_integration(a.req("integration_id")?, a.page()?).await?),
    } else read::<TasySyncLog>(scope, method, a).await)
}

async fn tasy_outbox(scope: &Scope, method: &str, a: &mut Args) -> Op {
    let r = scope.tasy_outbox();
    domain!(method, a, {
        "claim" => to_json(r.claim(&a.req::<String>("worker")?, a.req("limit")?, seconds(a.req("lease_seconds")?)?).await?),
        "complete" => to_json(r.complete(a.req("id")?).await?),
        "fail" => to_json(r.fail(a.req("id")?, &a.req::<String>("error")?).await?),
        "list" => to_json(r.list(a.req("status")?, a.req("limit")?).await?),
    } else None)
}

async fn audit_logs(scope: &Scope, method: &str, a: &mut Args) -> Op {
    let r = scope.audit_logs();
    domain!(method, a, {
        "for_entity" => page_json(r.for_entity(a.req("entity_type")?, a.req("entity_id")?, a.page()?).await?),
        "for_patient" => page_json(r.for_patient(a.req("patient_id")?, a.page()?).await?),
    } else read::<AuditLog>(scope, method, a).await)
}

async fn audit(scope: &Scope, method: &str, a: &mut Args) -> Op {
    let r = scope.audit();
    domain!(method, a, {
        "record" => to_json(r.record(a.req::<AppEvent>("event")?).await?),
        "verify" => to_json(r.verify().await?),
        "verify_range" => to_json(r.verify_range(a.req("from_seq")?, a.req("to_seq")?).await?),
        "access_report" => {
            page_json(r.access_report(a.req("patient_id")?, a.req("from")?, a.req("to")?, a.page()?).await?)
        },
        "export_fhir" => {
            let path: String = a.req("path")?;
            let (from, to) = (a.req("from")?, a.req("to")?);
            let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
            let n = r.export_fhir(&mut out, from, to).await?;
            std::io::Write::flush(&mut out)?;
            to_json(n)
        },
    } else None)
}

async fn organization(scope: &Scope, method: &str, a: &mut Args) -> Op {
    domain!(method, a, {
        "get" => to_json(scope.organization().await?),
        "update" => to_json(scope.update_organization(a.req("patch")?).await?),
    } else None)
}

async fn whatsapp(scope: &Scope, method: &str, a: &mut Args) -> Op {
    domain!(method, a, {
        "register_number" => to_json(scope.register_whatsapp_number(&a.req::<String>("phone_number_id")?).await?),
        "unregister_number" => {
            to_json(scope.unregister_whatsapp_number(&a.req::<String>("phone_number_id")?).await?)
        },
    } else None)
}

async fn keys(scope: &Scope, method: &str, a: &mut Args) -> Op {
    let k = scope.keys();
    domain!(method, a, {
        "start_rotation" => {
            let target = match a.opt::<Uuid>("patient_id")? {
                Some(p) => RotationTarget::Patient(p),
                None => RotationTarget::Organization,
            };
            to_json(k.start_rotation(target).await?)
        },
        "rotation_status" => to_json(k.rotation_status(a.req("id")?).await?),
        "run_rotation" => {
            let defaults = RunOptions::default();
            let options = RunOptions {
                batch_size: a.opt("batch_size")?.unwrap_or(defaults.batch_size),
                max_batches: a.opt("max_batches")?,
            };
            to_json(k.run_rotation(a.req("id")?, options, |_| {}).await?)
        },
        "shred_patient" => to_json(k.shred_patient(a.req("patient_id")?, &a.req::<String>("reason")?).await?),
    } else None)
}
