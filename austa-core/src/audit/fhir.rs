//! FHIR R4 `AuditEvent` export: one resource per line (NDJSON), streamed in batches.
//!
//! The mapping follows the R4 `AuditEvent` resource: `type` is a DICOM audit event type (or the
//! RESTful operation type for create/read/update/delete), `action` the C/R/U/D/E code, `outcome` the
//! R4 code (`0` success, `4` minor failure for not-found, `8` serious failure for a denied attempt),
//! `agent` the actor (with its network address), `source` the library within the organization, and
//! `entity` the patient(s) and the record the event was about. Ids and codes only: the free-text
//! `reason` (encrypted at rest) is not exported; the purpose of use is.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::access::{Action, Resource, Rule};
use crate::db::{Query, TxMode};
use crate::error::{Error, Result};
use crate::kernel::event::{decode, time_text, Event};
use crate::kernel::record::{check, record_alone};
use crate::model::{AuditAction, AuditLog, AuditOutcome, EntityType};
use crate::scope::{Role, Scope};

const DICOM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const REST_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";

fn event_type(action: AuditAction) -> Value {
    let (system, code, display) = match action {
        AuditAction::Create | AuditAction::Read | AuditAction::Update | AuditAction::Delete => {
            (REST_TYPE, "rest", "RESTful Operation")
        }
        AuditAction::Login | AuditAction::Logout => (DICOM, "110114", "User Authentication"),
        AuditAction::Export => (DICOM, "110106", "Export"),
        AuditAction::Import => (DICOM, "110107", "Import"),
        AuditAction::AccessDenied | AuditAction::EmergencyAccess | AuditAction::PermissionChange => {
            (DICOM, "110113", "Security Alert")
        }
        AuditAction::Backup | AuditAction::Restore | AuditAction::ConfigChange | AuditAction::Sync => {
            (DICOM, "110100", "Application Activity")
        }
    };
    json!({ "system": system, "code": code, "display": display })
}

fn action_code(action: AuditAction) -> &'static str {
    match action {
        AuditAction::Create => "C",
        AuditAction::Read => "R",
        AuditAction::Update => "U",
        AuditAction::Delete => "D",
        _ => "E",
    }
}

fn subtype(action: AuditAction) -> Option<Value> {
    let (system, code) = match action {
        AuditAction::Create => ("http://hl7.org/fhir/restful-interaction", "create"),
        AuditAction::Read => ("http://hl7.org/fhir/restful-interaction", "read"),
        AuditAction::Update => ("http://hl7.org/fhir/restful-interaction", "update"),
        AuditAction::Delete => ("http://hl7.org/fhir/restful-interaction", "delete"),
        AuditAction::Login => (DICOM, "110122"),
        AuditAction::Logout => (DICOM, "110123"),
        _ => return None,
    };
    Some(json!([{ "system": system, "code": code }]))
}

fn fhir_type(entity: EntityType) -> &'static str {
    match entity {
        EntityType::Organization => "Organization",
        EntityType::Patient => "Patient",
        EntityType::Provider => "Practitioner",
        EntityType::Conversation => "Communication",
        EntityType::Message => "Communication",
        EntityType::HealthData => "Observation",
        EntityType::Document => "DocumentReference",
        EntityType::Authorization => "ServiceRequest",
        EntityType::AuditLog => "AuditEvent",
        _ => "Basic",
    }
}

/// The `AuditEvent` resource of one event.
pub fn to_fhir(e: &AuditLog) -> Value {
    let outcome = match e.outcome {
        AuditOutcome::Success => "0",
        AuditOutcome::NotFound => "4",
        AuditOutcome::Denied => "8",
    };
    let mut resource = json!({
        "resourceType": "AuditEvent",
        "id": e.id.to_string(),
        "type": event_type(e.action),
        "action": action_code(e.action),
        "recorded": time_text(&e.occurred_at),
        "outcome": outcome,
        "agent": [agent(e)],
        "source": {
            "site": e.organization_id.to_string(),
            "observer": { "display": "austa-core" },
            "type": [{ "system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server" }],
        },
        "entity": entities(e),
    });
    if let Some(sub) = subtype(e.action) {
        resource["subtype"] = sub;
    }
    if e.outcome != AuditOutcome::Success {
        resource["outcomeDesc"] = json!(e.outcome.as_str());
    }
    resource
}

/// The event's one agent: who acted, from where, and why.
fn agent(e: &AuditLog) -> Value {
    let agent_type = match e.actor_kind {
        Role::System => json!({ "coding": [{ "system": DICOM, "code": "110150", "display": "Application" }] }),
        _ => {
            json!({ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type", "code": "humanuser", "display": "human user" }] })
        }
    };
    let mut who =
        json!({ "identifier": { "system": format!("urn:austa:actor:{}", e.actor_kind.as_str().to_lowercase()) } });
    match (e.actor_id, &e.actor_name) {
        (Some(id), _) => who["identifier"]["value"] = json!(id.to_string()),
        (None, Some(name)) => who["identifier"]["value"] = json!(name),
        (None, None) => {}
    }
    if e.actor_kind == Role::Patient {
        if let Some(id) = e.actor_id {
            who["reference"] = json!(format!("Patient/{id}"));
        }
    }
    let mut agent = json!({
        "type": agent_type,
        "role": [{ "text": e.actor_kind.as_str() }],
        "who": who,
        "requestor": true,
    });
    if let Some(ip) = &e.ip_address {
        // Network access point type 2: an IP address.
        agent["network"] = json!({ "address": ip, "type": "2" });
    }
    if let Some(purpose) = &e.purpose {
        agent["purposeOfUse"] = json!([{ "text": purpose }]);
    }
    agent
}

/// The event's entities: each patient involved, and the record or kind of record touched (unless it
/// is a patient record, listed already as its Person).
fn entities(e: &AuditLog) -> Vec<Value> {
    let mut entities: Vec<Value> = e
        .patient_ids
        .iter()
        .map(|p| {
            json!({
                "what": { "reference": format!("Patient/{p}") },
                "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person" },
                "role": { "system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient" },
            })
        })
        .collect();
    let mut object = json!({
        "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object" },
        "name": e.entity_type.as_str(),
        "detail": [{ "type": "record_count", "valueString": e.record_count.to_string() }],
    });
    if let Some(id) = e.entity_id {
        object["what"] = json!({ "reference": format!("{}/{id}", fhir_type(e.entity_type)) });
    }
    if !e.changed_fields.is_empty() {
        if let Some(detail) = object["detail"].as_array_mut() {
            detail.push(json!({ "type": "changed_fields", "valueString": e.changed_fields.join(",") }));
        }
    }
    let patient_record =
        e.entity_type == EntityType::Patient && e.entity_id.is_some_and(|id| e.patient_ids.contains(&id));
    if !patient_record {
        entities.push(object);
    }
    entities
}

const BATCH: i64 = 500;

/// Writes the events of `[from, to)` as NDJSON to `out`, in time order, `BATCH` rows at a time.
pub(crate) async fn export<W: Write>(
    scope: &Scope,
    out: &mut W,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<u64> {
    if to <= from {
        return Err(Error::validation("to", "must be after from"));
    }
    let allowed = match scope.authorize(Resource::AuditLog, Action::Read) {
        Ok(Rule::Allow) => Ok(()),
        Ok(_) => Err(Error::PermissionDenied("exporting the audit trail needs full read access to it".into())),
        Err(e) => Err(e),
    };
    check(scope, "audit_logs", Action::Read, None, None, allowed).await?;
    // The export is recorded before any event leaves the database.
    record_alone(
        scope,
        Event::new(AuditAction::Export, EntityType::AuditLog).reason(format!(
            "FHIR AuditEvent export {} to {}",
            time_text(&from),
            time_text(&to)
        )),
    )
    .await?;
    let org = scope.organization_id();
    let mut after: Option<(DateTime<Utc>, Uuid)> = None;
    let mut written = 0u64;
    loop {
        let (t, id) = match after {
            Some((t, id)) => (Some(t), Some(id)),
            None => (None, None),
        };
        let mut tx = scope.db().begin(Some(org), TxMode::Read).await?;
        let rows = tx
            .fetch_all(
                Query::new(
                    "SELECT * FROM audit_logs WHERE organization_id = $1 AND occurred_at >= $2 AND occurred_at < $3 \
                     AND ($4 IS NULL OR occurred_at > $4 OR (occurred_at = $4 AND id > $5)) ORDER BY occurred_at, id LIMIT $6",
                )
                .bind(org)
                .bind(from)
                .bind(to)
                .bind(t)
                .bind(id)
                .bind(BATCH),
            )
            .await?;
        tx.commit().await?;
        for row in &rows {
            let log = decode(row)?.log;
            serde_json::to_writer(&mut *out, &to_fhir(&log)).map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
            after = Some((log.occurred_at, log.id));
            written += 1;
        }
        if (rows.len() as i64) < BATCH {
            break;
        }
    }
    out.flush()?;
    Ok(written)
}
