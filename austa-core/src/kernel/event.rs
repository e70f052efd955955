//! What an audit event says, how its derived fields are computed, and its MAC.
//!
//! Operations describe what they did with an [`Event`]; [`Event::into_log`] completes it from the
//! scope (actor, purpose, request context, emergency grant) and derives sensitivity and risk, so no
//! caller can understate either. [`canonical`] is the byte string the event's MAC covers: every field,
//! length-prefixed, in a fixed order, in a form that reads back identically from both backends.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use std::sync::Arc;

use crate::db::{Column, Dialect, IntoValue, Query, QueryBuilder, Row, Value};
use crate::error::{Error, Result};
use crate::model::{AuditAction, AuditLog, AuditOutcome, EntityType, RiskLevel, Sensitivity, MAX_LISTED_IDS};
use crate::scope::{Role, Scope};
use austa_crypto::material::MacInput;
use austa_crypto::{KeySet, OrgKeys, Sensitive};

/// Domain separation of the MACs.
pub(crate) const EVENT_MAC_LABEL: &[u8] = b"austa:audit-event:v1";

/// What an operation did, before the scope's context is added. Must be recorded: dropping one is a
/// missing audit event.
#[derive(Debug, Clone)]
#[must_use = "an operation's event must be recorded in its transaction"]
pub(crate) struct Event {
    pub(crate) action: AuditAction,
    pub(crate) outcome: AuditOutcome,
    pub(crate) entity: EntityType,
    pub(crate) entity_id: Option<Uuid>,
    pub(crate) records: Vec<Uuid>,
    pub(crate) count: Option<i64>,
    pub(crate) patients: Vec<Uuid>,
    pub(crate) changed: Vec<String>,
    pub(crate) reason: Option<String>,
    /// Lowest risk the event may have (key operations raise it).
    pub(crate) risk_floor: RiskLevel,
    /// How many patients the whole operation touched, when this event is one part of it
    /// ([`Event::into_parts`]): its risk is the operation's.
    pub(crate) touched: usize,
}

impl Event {
    pub(crate) fn new(action: AuditAction, entity: EntityType) -> Self {
        Self {
            action,
            outcome: AuditOutcome::Success,
            entity,
            entity_id: None,
            records: Vec::new(),
            count: None,
            patients: Vec::new(),
            changed: Vec::new(),
            reason: None,
            risk_floor: RiskLevel::Low,
            touched: 0,
        }
    }

    /// An event about rows of `table`.
    pub(crate) fn on(action: AuditAction, table: &str) -> Self {
        Self::new(action, entity_of(table))
    }

    pub(crate) fn entity(mut self, id: Uuid) -> Self {
        self.entity_id = Some(id);
        self
    }

    pub(crate) fn records(mut self, ids: impl IntoIterator<Item = Uuid>) -> Self {
        self.records.extend(ids);
        self
    }

    pub(crate) fn count(mut self, n: i64) -> Self {
        self.count = Some(n);
        self
    }

    pub(crate) fn patients(mut self, ids: impl IntoIterator<Item = Uuid>) -> Self {
        // A page lists up to 500 rows: dedupe with a set, not a scan per row.
        let mut seen: std::collections::HashSet<Uuid> = self.patients.iter().copied().collect();
        self.patients.extend(ids.into_iter().filter(|id| seen.insert(*id)));
        self
    }

    pub(crate) fn patient(self, id: Option<Uuid>) -> Self {
        self.patients(id)
    }

    pub(crate) fn changed<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        for n in names {
            let n = n.into();
            if !self.changed.contains(&n) {
                self.changed.push(n);
            }
        }
        self
    }

    pub(crate) fn outcome(mut self, outcome: AuditOutcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub(crate) fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub(crate) fn risk_at_least(mut self, risk: RiskLevel) -> Self {
        self.risk_floor = max_risk(self.risk_floor, risk);
        self
    }

    /// This event as one event per [`MAX_LISTED_IDS`] patients, so that an operation that touched more
    /// patients than one event lists (a bulk import, a large read) is in every one of their access
    /// reports. Part *i* lists the *i*-th share of the patients. The parts list no record ids: the
    /// event does not know which row is whose, and a part must not show one patient's report rows
    /// of others. Each part counts the operation's total and has its risk. An operation on fewer
    /// patients stays one event, its record ids listed up to [`MAX_LISTED_IDS`].
    pub(crate) fn into_parts(mut self) -> Vec<Event> {
        let parts = self.patients.len().div_ceil(MAX_LISTED_IDS).max(1);
        if parts == 1 {
            return vec![self];
        }
        self.count = Some(self.count.unwrap_or(self.records.len() as i64));
        self.touched = self.touched.max(self.patients.len());
        self.records = Vec::new();
        let patients = std::mem::take(&mut self.patients);
        patients.chunks(MAX_LISTED_IDS).map(|share| Event { patients: share.to_vec(), ..self.clone() }).collect()
    }

    /// The stored event: this description plus the scope's actor and request context, with derived
    /// sensitivity and risk, its reason encrypted, MACed under the organization's active audit key.
    pub(crate) fn into_log(self, scope: &Scope, keys: &Arc<OrgKeys>) -> Result<Sealed> {
        let now = scope.now();
        let actor = scope.actor();
        let request = scope.request();
        let emergency = scope.emergency().is_some_and(|g| g.active_at(now));
        let sensitivity = sensitivity_of(self.entity);
        let count = self.count.unwrap_or(self.records.len() as i64).max(0);
        // Lists longer than an event holds were split by `into_parts`; the truncation only guards.
        let touched = self.touched.max(self.patients.len());
        let mut records = self.records;
        records.truncate(MAX_LISTED_IDS);
        let mut patients = self.patients;
        patients.truncate(MAX_LISTED_IDS);
        let risk = risk_of(self.action, self.outcome, sensitivity, emergency, touched, self.risk_floor);
        let reason = match (self.reason, scope.emergency()) {
            (Some(r), _) => Some(r),
            (None, Some(g)) if emergency => Some(g.reason.clone()),
            _ => None,
        };
        let log = AuditLog {
            id: Uuid::now_v7(),
            organization_id: scope.organization_id(),
            occurred_at: now,
            actor_kind: actor.role(),
            actor_id: actor.id(),
            actor_name: actor.name().and_then(|n| context_text(Some(n), 100)),
            action: self.action,
            outcome: self.outcome,
            entity_type: self.entity,
            entity_id: self.entity_id,
            record_ids: records,
            record_count: count,
            // One patient for the whole operation, not one left in the last part of a split one.
            patient_id: if touched == 1 { patients.first().copied() } else { None },
            patient_ids: patients,
            changed_fields: self.changed,
            purpose: context_text(request.purpose.as_deref(), 200),
            reason: context_text(reason.as_deref(), 1000).map(Sensitive::new),
            session_id: context_text(request.session_id.as_deref(), 200),
            request_id: context_text(request.request_id.as_deref(), 200),
            ip_address: ip_address(request.ip_address.as_deref()),
            user_agent: context_text(request.user_agent.as_deref(), 512),
            emergency,
            sensitivity,
            sensitive_data: sensitivity != Sensitivity::Operational,
            risk_level: risk,
            requires_review: matches!(risk, RiskLevel::High | RiskLevel::Critical),
        };
        let key_id = keys.active_id();
        let reason = match &log.reason {
            Some(r) => {
                let set = KeySet { org: keys.clone(), patients: Default::default() };
                Some(set.row("audit_logs", log.id, None)?.seal("reason", r.expose()?.as_bytes())?)
            }
            None => None,
        };
        let mac = event_mac(keys, &log, reason.as_deref(), key_id)?;
        Ok(Sealed { log, reason, key_id, mac })
    }
}

/// An event ready to store: its encrypted reason, key version and MAC.
pub(crate) struct Sealed {
    pub(crate) log: AuditLog,
    pub(crate) reason: Option<Vec<u8>>,
    pub(crate) key_id: Uuid,
    pub(crate) mac: [u8; 32],
}

/// A stored event as read back without keys: the reason stays a ciphertext (`log.reason` is `None`).
pub(crate) struct Stored {
    pub(crate) log: AuditLog,
    pub(crate) reason: Option<Vec<u8>>,
    pub(crate) key_id: Uuid,
    pub(crate) mac: Vec<u8>,
}

/// The column naming the patient a row of `table` is about (`id` for `patients`).
pub(crate) fn patient_column(table: &str) -> Option<&'static str> {
    match table {
        "patients" => Some("id"),
        "conversations"
        | "messages"
        | "health_data"
        | "documents"
        | "authorizations"
        | "authorization_transitions"
        | "onboarding_progress"
        | "health_points"
        | "point_transactions" => Some("patient_id"),
        _ => None,
    }
}

/// The action of a generic update: configuration tables record `CONFIG_CHANGE`.
pub(crate) fn update_action(table: &str) -> AuditAction {
    match table {
        "organizations" | "tasy_integrations" => AuditAction::ConfigChange,
        _ => AuditAction::Update,
    }
}

/// The event of a read that returned `rows` of `table` (ids and patients from the rows).
pub(crate) fn read_event(table: &str, rows: &[Row], target: Option<Uuid>) -> Result<Event> {
    let mut ids = Vec::with_capacity(rows.len().min(MAX_LISTED_IDS));
    let mut patients = Vec::new();
    for row in rows {
        if ids.len() < MAX_LISTED_IDS {
            ids.push(row.uuid("id")?);
        }
        if let Some(column) = patient_column(table) {
            patients.push(row.uuid(column)?);
        }
    }
    let mut event = Event::on(AuditAction::Read, table).records(ids).count(rows.len() as i64).patients(patients);
    if let Some(id) = target {
        event = event.entity(id);
        if rows.is_empty() {
            event = event.outcome(AuditOutcome::NotFound);
        }
    }
    Ok(event)
}

/// The audit entity of a table (link tables count as their parent).
pub(crate) fn entity_of(table: &str) -> EntityType {
    match table {
        "organizations" => EntityType::Organization,
        "patients" => EntityType::Patient,
        "providers" => EntityType::Provider,
        "conversations" => EntityType::Conversation,
        "messages" => EntityType::Message,
        "health_data" => EntityType::HealthData,
        "missions" | "mission_prerequisites" => EntityType::Mission,
        "onboarding_progress" => EntityType::OnboardingProgress,
        "health_points" => EntityType::HealthPoints,
        "point_transactions" => EntityType::PointTransaction,
        "authorizations" | "authorization_attachments" | "authorization_transitions" => EntityType::Authorization,
        "documents" => EntityType::Document,
        "tasy_integrations" => EntityType::TasyIntegration,
        "tasy_sync_logs" | "tasy_outbox" => EntityType::TasySyncLog,
        _ => EntityType::AuditLog,
    }
}

/// Sensitivity of an entity's data, following the classification: clinical content is health data,
/// rows that identify or profile a person are personal, integration credentials are secret.
pub(crate) fn sensitivity_of(entity: EntityType) -> Sensitivity {
    match entity {
        EntityType::Conversation
        | EntityType::Message
        | EntityType::HealthData
        | EntityType::Document
        | EntityType::Authorization => Sensitivity::Health,
        EntityType::Patient
        | EntityType::Provider
        | EntityType::OnboardingProgress
        | EntityType::HealthPoints
        | EntityType::PointTransaction
        | EntityType::AuditLog => Sensitivity::Personal,
        EntityType::TasyIntegration => Sensitivity::Secret,
        EntityType::Organization | EntityType::Mission | EntityType::TasySyncLog => Sensitivity::Operational,
    }
}

fn rank(r: RiskLevel) -> u8 {
    match r {
        RiskLevel::Low => 0,
        RiskLevel::Medium => 1,
        RiskLevel::High => 2,
        RiskLevel::Critical => 3,
    }
}

fn max_risk(a: RiskLevel, b: RiskLevel) -> RiskLevel {
    if rank(a) >= rank(b) {
        a
    } else {
        b
    }
}

/// Reads of more patients than this in one operation are at least `MEDIUM` risk (bulk access).
const BULK_PATIENTS: usize = 50;

/// Risk of an event: from what was done, to how sensitive data, how it ended, and under which grant.
pub(crate) fn risk_of(
    action: AuditAction,
    outcome: AuditOutcome,
    sensitivity: Sensitivity,
    emergency: bool,
    patients: usize,
    floor: RiskLevel,
) -> RiskLevel {
    use AuditAction as A;
    let sensitive = sensitivity != Sensitivity::Operational;
    let base = match action {
        A::EmergencyAccess => RiskLevel::High,
        A::AccessDenied if sensitive => RiskLevel::High,
        A::AccessDenied => RiskLevel::Medium,
        A::Export | A::Backup | A::Restore | A::PermissionChange => RiskLevel::High,
        A::ConfigChange | A::Import | A::Sync => RiskLevel::Medium,
        A::Delete => RiskLevel::Medium,
        A::Login | A::Logout => RiskLevel::Low,
        A::Read | A::Create | A::Update => match sensitivity {
            Sensitivity::Health | Sensitivity::Secret => RiskLevel::Medium,
            Sensitivity::Personal | Sensitivity::Operational => RiskLevel::Low,
        },
    };
    let mut risk = max_risk(base, floor);
    if outcome == AuditOutcome::Denied {
        risk = max_risk(risk, RiskLevel::Medium);
    }
    if patients > BULK_PATIENTS {
        risk = max_risk(risk, RiskLevel::Medium);
    }
    if emergency && sensitive {
        risk = max_risk(risk, RiskLevel::High);
    }
    risk
}

/// Request metadata as stored: trimmed, without control characters, at most `max` characters. It
/// comes from the caller's environment rather than validated input, so it is cleaned, not rejected:
/// an odd user agent must not make an operation fail.
fn context_text(v: Option<&str>, max: usize) -> Option<String> {
    let cleaned: String = v?.trim().chars().filter(|c| !c.is_control()).take(max).collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| cleaned.to_string())
}

/// An IP address in canonical form, or the sanitized text when it does not parse.
fn ip_address(v: Option<&str>) -> Option<String> {
    let text = context_text(v, 64)?;
    Some(text.parse::<std::net::IpAddr>().map(|ip| ip.to_string()).unwrap_or(text))
}

/// Fixed-width UTC time with microseconds: the same text whichever backend the value came from.
pub(crate) fn time_text(t: &DateTime<Utc>) -> String {
    austa_sql::sqlite_time(t)
}

/// An optional text as a MAC part: `[0]` when absent, `[1] ++ text` when present.
fn opt(input: &mut MacInput, v: Option<&str>) {
    match v {
        None => input.part(&[0]),
        Some(s) => input.tagged(1, s.as_bytes()),
    };
}

/// An optional UUID as a MAC part, in its hyphenated text (as [`opt`] of its `to_string`).
fn opt_uuid(input: &mut MacInput, v: Option<Uuid>) {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    opt(input, v.map(|u| &*u.hyphenated().encode_lower(&mut text)));
}

/// A list of UUIDs as one MAC part: their bytes, concatenated.
fn ids(input: &mut MacInput, list: &[Uuid]) {
    input.part_with(|b| list.iter().for_each(|u| b.extend_from_slice(u.as_bytes())));
}

/// The fields an event's MAC covers, in order (the reason as its ciphertext), framed as
/// [`OrgKeys::audit_mac`] frames parts.
pub(crate) fn canonical(log: &AuditLog, reason: Option<&[u8]>, key_id: Uuid) -> MacInput {
    let b = |x: bool| [u8::from(x)];
    let mut m = MacInput::with_capacity(512);
    m.part(EVENT_MAC_LABEL).part(log.organization_id.as_bytes()).part(log.id.as_bytes());
    m.part(time_text(&log.occurred_at).as_bytes()).part(log.actor_kind.as_str().as_bytes());
    opt_uuid(&mut m, log.actor_id);
    opt(&mut m, log.actor_name.as_deref());
    m.part(log.action.as_str().as_bytes()).part(log.outcome.as_str().as_bytes());
    m.part(log.entity_type.as_str().as_bytes());
    opt_uuid(&mut m, log.entity_id);
    ids(&mut m, &log.record_ids);
    m.part(&log.record_count.to_be_bytes());
    opt_uuid(&mut m, log.patient_id);
    ids(&mut m, &log.patient_ids);
    m.part_with(|b| {
        for (i, field) in log.changed_fields.iter().enumerate() {
            if i > 0 {
                b.push(b'\n');
            }
            b.extend_from_slice(field.as_bytes());
        }
    });
    opt(&mut m, log.purpose.as_deref());
    match reason {
        None => m.part(&[0]),
        Some(ct) => m.tagged(1, ct),
    };
    opt(&mut m, log.session_id.as_deref());
    opt(&mut m, log.request_id.as_deref());
    opt(&mut m, log.ip_address.as_deref());
    opt(&mut m, log.user_agent.as_deref());
    m.part(&b(log.emergency)).part(log.sensitivity.as_str().as_bytes()).part(&b(log.sensitive_data));
    m.part(log.risk_level.as_str().as_bytes()).part(&b(log.requires_review)).part(key_id.as_bytes());
    m
}

/// The MAC of an event under audit key version `key_id`.
pub(crate) fn event_mac(keys: &OrgKeys, log: &AuditLog, reason: Option<&[u8]>, key_id: Uuid) -> Result<[u8; 32]> {
    keys.audit_mac_of(key_id, &canonical(log, reason, key_id))
}

fn role(s: &str) -> Result<Role> {
    [Role::Patient, Role::Provider, Role::Admin, Role::System]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| Error::CorruptData("audit_logs.actor_kind: unknown value".into()))
}

/// Decodes an `audit_logs` row without keys, finding its columns by name: the reason stays
/// encrypted (see [`Stored`]).
pub(crate) fn decode(row: &Row) -> Result<Stored> {
    decode_by(row, |k| EVENT_COLUMN_NAMES[k])
}

/// [`decode`] for a select list that holds [`event_columns_of`] from position `first` on: no
/// column is looked up by name (for the walks that decode every event of a chain).
pub(crate) fn decode_from(row: &Row, first: usize) -> Result<Stored> {
    decode_by(row, |k| first + k)
}

/// Decodes an event whose `k`-th column of [`EVENT_COLUMN_NAMES`] is `col(k)`.
fn decode_by<C: Column>(row: &Row, col: impl Fn(usize) -> C) -> Result<Stored> {
    let log = AuditLog {
        organization_id: row.uuid(col(0))?,
        id: row.uuid(col(1))?,
        occurred_at: row.time(col(2))?,
        actor_kind: role(&row.text(col(3))?)?,
        actor_id: row.opt_uuid(col(4))?,
        actor_name: row.opt_text(col(5))?,
        action: row.enumeration(col(6))?,
        outcome: row.enumeration(col(7))?,
        entity_type: row.enumeration(col(8))?,
        entity_id: row.opt_uuid(col(9))?,
        record_ids: row.uuid_list(col(10))?,
        record_count: row.int(col(11))?,
        patient_id: row.opt_uuid(col(12))?,
        patient_ids: row.uuid_list(col(13))?,
        changed_fields: row.string_list(col(14))?,
        purpose: row.opt_text(col(15))?,
        reason: None,
        session_id: row.opt_text(col(17))?,
        request_id: row.opt_text(col(18))?,
        ip_address: row.opt_text(col(19))?,
        user_agent: row.opt_text(col(20))?,
        emergency: row.bool(col(21))?,
        sensitivity: row.enumeration(col(22))?,
        sensitive_data: row.bool(col(23))?,
        risk_level: row.enumeration(col(24))?,
        requires_review: row.bool(col(25))?,
    };
    let key_id = row.uuid(col(26))?;
    let mac = row.opt_bytes(col(27))?.ok_or_else(|| Error::CorruptData("audit_logs.mac is NULL".into()))?;
    Ok(Stored { log, reason: row.opt_bytes(col(16))?, key_id, mac })
}

/// The names of [`EVENT_COLUMNS`], in order: [`decode_by`] reads column `k` as `EVENT_COLUMN_NAMES[k]`.
const EVENT_COLUMN_NAMES: [&str; EVENT_COLUMN_COUNT] = [
    "organization_id",
    "id",
    "occurred_at",
    "actor_kind",
    "actor_id",
    "actor_name",
    "action",
    "outcome",
    "entity_type",
    "entity_id",
    "record_ids",
    "record_count",
    "patient_id",
    "patient_ids",
    "changed_fields",
    "purpose",
    "reason",
    "session_id",
    "request_id",
    "ip_address",
    "user_agent",
    "emergency",
    "sensitivity",
    "sensitive_data",
    "risk_level",
    "requires_review",
    "key_id",
    "mac",
];

/// The columns of an `audit_logs` row, in the order of [`event_values`].
const EVENT_COLUMNS: &str = "organization_id, id, occurred_at, actor_kind, actor_id, actor_name, action, outcome, \
     entity_type, entity_id, record_ids, record_count, patient_id, patient_ids, changed_fields, purpose, reason, \
     session_id, request_id, ip_address, user_agent, emergency, sensitivity, sensitive_data, risk_level, \
     requires_review, key_id, mac";
const EVENT_COLUMN_COUNT: usize = 28;

/// [`EVENT_COLUMNS`] qualified by `alias` (`e.organization_id, e.id, ...`): what a join that
/// [`decode`]s events selects, instead of every column of the table (descriptions and metadata
/// that no check reads would travel for nothing).
pub(crate) fn event_columns_of(alias: &str) -> String {
    EVENT_COLUMN_NAMES.iter().map(|c| format!("{alias}.{c}")).collect::<Vec<_>>().join(", ")
}

fn event_values(sealed: &Sealed) -> [Value; EVENT_COLUMN_COUNT] {
    let Sealed { log, reason, key_id, mac } = sealed;
    let strings = |v: &[Uuid]| serde_json::json!(v.iter().map(Uuid::to_string).collect::<Vec<_>>());
    [
        log.organization_id.into_value(),
        log.id.into_value(),
        log.occurred_at.into_value(),
        log.actor_kind.as_str().into_value(),
        log.actor_id.into_value(),
        log.actor_name.clone().into_value(),
        log.action.as_str().into_value(),
        log.outcome.as_str().into_value(),
        log.entity_type.as_str().into_value(),
        log.entity_id.into_value(),
        strings(&log.record_ids).into_value(),
        log.record_count.into_value(),
        log.patient_id.into_value(),
        strings(&log.patient_ids).into_value(),
        serde_json::json!(log.changed_fields).into_value(),
        log.purpose.clone().into_value(),
        reason.clone().into_value(),
        log.session_id.clone().into_value(),
        log.request_id.clone().into_value(),
        log.ip_address.clone().into_value(),
        log.user_agent.clone().into_value(),
        log.emergency.into_value(),
        log.sensitivity.as_str().into_value(),
        log.sensitive_data.into_value(),
        log.risk_level.as_str().into_value(),
        log.requires_review.into_value(),
        (*key_id).into_value(),
        mac.to_vec().into_value(),
    ]
}

/// The statements that store `events` and, with `queue`, list each in the chain's queue
/// (`audit_pending`): multi-row, as many events per statement as the dialect's parameter budget
/// allows. Where one statement can write two tables the event rows and their queue entries are one
/// statement (`WITH e AS (INSERT INTO audit_logs ...) INSERT INTO audit_pending ...`), so a
/// transaction's events usually cost one round trip.
pub(crate) fn insert_events(events: &[Sealed], dialect: &dyn Dialect, queue: bool) -> Vec<Query> {
    let per_statement = (dialect.max_bind_params() / (EVENT_COLUMN_COUNT + 2)).max(1);
    let together = queue && dialect.writable_cte();
    let mut statements = Vec::new();
    for chunk in events.chunks(per_statement) {
        let mut logs = QueryBuilder::new(if together { "WITH e AS (" } else { "" });
        logs.push(format_args!("INSERT INTO audit_logs ({EVENT_COLUMNS}) VALUES "));
        for (i, sealed) in chunk.iter().enumerate() {
            if i > 0 {
                logs.push(", ");
            }
            logs.push_tuple(event_values(sealed));
        }
        if together {
            logs.push(") ");
            statements.push(queue_events(logs, chunk));
        } else {
            statements.push(logs.build());
            if queue {
                statements.push(queue_events(QueryBuilder::new(""), chunk));
            }
        }
    }
    statements
}

/// The statements that list `events` (written already) in the chain's queue.
pub(crate) fn queue_statements(events: &[Sealed], dialect: &dyn Dialect) -> Vec<Query> {
    events
        .chunks((dialect.max_bind_params() / 2).max(1))
        .map(|chunk| queue_events(QueryBuilder::new(""), chunk))
        .collect()
}

/// `q` followed by the `INSERT INTO audit_pending` of `events`.
fn queue_events(mut q: QueryBuilder, events: &[Sealed]) -> Query {
    q.push("INSERT INTO audit_pending (organization_id, event_id) VALUES ");
    for (i, sealed) in events.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push_tuple([sealed.log.organization_id, sealed.log.id]);
    }
    q.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_follows_action_sensitivity_and_grant() {
        use AuditAction as A;
        let r = |a, s, e| risk_of(a, AuditOutcome::Success, s, e, 1, RiskLevel::Low);
        assert_eq!(r(A::Read, Sensitivity::Personal, false), RiskLevel::Low);
        assert_eq!(r(A::Read, Sensitivity::Health, false), RiskLevel::Medium);
        assert_eq!(r(A::Read, Sensitivity::Health, true), RiskLevel::High);
        assert_eq!(r(A::AccessDenied, Sensitivity::Health, false), RiskLevel::High);
        assert_eq!(r(A::Export, Sensitivity::Operational, false), RiskLevel::High);
        assert_eq!(
            risk_of(A::Read, AuditOutcome::Success, Sensitivity::Personal, false, 51, RiskLevel::Low),
            RiskLevel::Medium
        );
        assert_eq!(
            risk_of(A::Delete, AuditOutcome::Success, Sensitivity::Personal, false, 1, RiskLevel::Critical),
            RiskLevel::Critical
        );
    }

    /// The event MAC as the chains already stored were written: one buffer per part, MACed by
    /// `audit_mac`. The framed `canonical` must give the same MAC, or those chains stop verifying.
    fn mac_by_parts(keys: &OrgKeys, log: &AuditLog, reason: Option<&[u8]>, key_id: Uuid) -> Result<[u8; 32]> {
        let opt = |v: Option<String>| v.map_or(vec![0], |s| [&[1u8][..], s.as_bytes()].concat());
        let ids = |list: &[Uuid]| list.iter().flat_map(|u| *u.as_bytes()).collect::<Vec<u8>>();
        let b = |x: bool| vec![u8::from(x)];
        let parts: Vec<Vec<u8>> = vec![
            EVENT_MAC_LABEL.to_vec(),
            log.organization_id.as_bytes().to_vec(),
            log.id.as_bytes().to_vec(),
            log.occurred_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string().into_bytes(),
            log.actor_kind.as_str().as_bytes().to_vec(),
            opt(log.actor_id.map(|u| u.to_string())),
            opt(log.actor_name.clone()),
            log.action.as_str().as_bytes().to_vec(),
            log.outcome.as_str().as_bytes().to_vec(),
            log.entity_type.as_str().as_bytes().to_vec(),
            opt(log.entity_id.map(|u| u.to_string())),
            ids(&log.record_ids),
            log.record_count.to_be_bytes().to_vec(),
            opt(log.patient_id.map(|u| u.to_string())),
            ids(&log.patient_ids),
            log.changed_fields.join("\n").into_bytes(),
            opt(log.purpose.clone()),
            reason.map_or(vec![0], |ct| [&[1u8][..], ct].concat()),
            opt(log.session_id.clone()),
            opt(log.request_id.clone()),
            opt(log.ip_address.clone()),
            opt(log.user_agent.clone()),
            b(log.emergency),
            log.sensitivity.as_str().as_bytes().to_vec(),
            b(log.sensitive_data),
            log.risk_level.as_str().as_bytes().to_vec(),
            b(log.requires_review),
            key_id.as_bytes().to_vec(),
        ];
        keys.audit_mac(key_id, &parts.iter().map(Vec::as_slice).collect::<Vec<_>>())
    }

    #[test]
    fn the_framed_event_mac_is_the_mac_stored_chains_carry() -> Result<()> {
        let key_id = Uuid::now_v7();
        let org = Uuid::now_v7();
        let root = austa_crypto::DataKey::generate();
        let keys = OrgKeys::new(org, key_id, vec![austa_crypto::material::OrgVersion::derive(key_id, &root)?]);
        let mut full = AuditLog {
            id: Uuid::now_v7(),
            organization_id: org,
            occurred_at: chrono::DateTime::from_timestamp(1_750_000_000, 123_456_000).unwrap_or_default(),
            actor_kind: Role::Provider,
            actor_id: Some(Uuid::now_v7()),
            actor_name: Some("Dra. Ana".into()),
            action: AuditAction::Read,
            outcome: AuditOutcome::Success,
            entity_type: EntityType::Patient,
            entity_id: Some(Uuid::now_v7()),
            record_ids: vec![Uuid::now_v7(), Uuid::now_v7()],
            record_count: 2,
            patient_id: Some(Uuid::now_v7()),
            patient_ids: vec![Uuid::now_v7()],
            changed_fields: vec!["first_name".into(), "phone".into()],
            purpose: Some("TREATMENT".into()),
            reason: None,
            session_id: Some("s-1".into()),
            request_id: Some("r-1".into()),
            ip_address: Some("10.0.0.1".into()),
            user_agent: Some("tests".into()),
            emergency: true,
            sensitivity: Sensitivity::Health,
            sensitive_data: true,
            risk_level: RiskLevel::High,
            requires_review: true,
        };
        let reason = [9u8, 8, 7];
        assert_eq!(event_mac(&keys, &full, Some(&reason), key_id)?, mac_by_parts(&keys, &full, Some(&reason), key_id)?);
        (full.actor_id, full.actor_name, full.entity_id, full.patient_id) = (None, None, None, None);
        (full.record_ids, full.patient_ids, full.changed_fields) = (vec![], vec![], vec![]);
        (full.purpose, full.session_id, full.request_id, full.ip_address, full.user_agent) =
            (None, None, None, None, None);
        full.emergency = false;
        assert_eq!(event_mac(&keys, &full, None, key_id)?, mac_by_parts(&keys, &full, None, key_id)?);
        Ok(())
    }

    #[test]
    fn event_columns_are_the_names_decode_reads() {
        assert_eq!(EVENT_COLUMNS, EVENT_COLUMN_NAMES.join(", "));
    }

    #[test]
    fn context_is_cleaned_not_rejected() {
        assert_eq!(context_text(Some("  a\u{7}b \n"), 10).as_deref(), Some("ab"));
        assert_eq!(context_text(Some("   "), 10), None);
        assert_eq!(ip_address(Some("::ffff:10.0.0.1")).as_deref(), Some("::ffff:10.0.0.1"));
        assert_eq!(ip_address(Some("010.1")).as_deref(), Some("010.1"));
    }
}
