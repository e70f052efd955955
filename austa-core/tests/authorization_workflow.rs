//! The authorization workflow: PENDING -> UNDER_REVIEW -> APPROVED | DENIED, PENDING | UNDER_REVIEW ->
//! CANCELLED, APPROVED -> EXPIRED. Every valid transition (who and when on the row and in the history,
//! exactly one audit event with its changed fields), every invalid one (a typed error, the row, the
//! history and the audit trail untouched), reviewers and approvers checked against the organization's
//! live providers, providers acting only as themselves, `expire_due` expiring exactly what is due, two
//! concurrent approvals (one wins), decided content frozen, and the encrypted reason at rest, through a
//! key rotation and after crypto-shredding. Every test runs on SQLite and, when configured, PostgreSQL.

use std::collections::BTreeSet;
use std::fmt::Debug;

use austa_core::crypto::{RotationTarget, RunOptions, Sensitive};
use austa_core::model::{
    Authorization, AuthorizationPatch, AuthorizationStatus as S, AuthorizationType, NewAuthorization, NewPatient,
    NewProvider, Priority, ProviderPatch, ProviderRole,
};
use austa_core::{Actor, Error, Role, Scope};
use chrono::{DateTime, Duration, Utc};
use sqlx::Row;
use uuid::Uuid;

use crate::support::{assert_err, Backend, TestDb};
use austa_macros::backends;

// ---------------------------------------------------------------------------------------------------
// Fixtures

/// An organization with one patient (Carlos), a requesting doctor and a reviewing auditor.
struct Org {
    id: Uuid,
    scope: Scope,
    carlos: Uuid,
    doctor: Uuid,
    auditor: Uuid,
}

async fn provider(scope: &Scope, first: &str, email: &str, role: ProviderRole) -> Uuid {
    scope.providers().create(NewProvider::new(first, "Souza", email, role)).await.unwrap().id
}

async fn org(tdb: &TestDb, name: &str) -> Org {
    let scope = tdb.org(name).await;
    let carlos = scope
        .patients()
        .create(NewPatient {
            first_name: "Carlos".into(),
            last_name: "Mendes".into(),
            phone: "+5511987654321".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let doctor = provider(&scope, "Roberto", "roberto@austa.com.br", ProviderRole::Doctor).await;
    let auditor = provider(&scope, "Marina", "marina@austa.com.br", ProviderRole::Coordinator).await;
    Org { id: scope.organization_id(), scope, carlos, doctor, auditor }
}

/// A catheterization request of Carlos by the doctor, with a requested validity window.
fn request(o: &Org) -> NewAuthorization {
    let from = Utc::now();
    NewAuthorization {
        justification: Some("Angina instável com teste ergométrico positivo".into()),
        valid_from: Some(from),
        valid_until: Some(from + Duration::days(15)),
        ..NewAuthorization::new(AuthorizationType::Procedure, "Cateterismo cardíaco", o.carlos, o.doctor)
    }
}

/// `t` as stored: whole microseconds.
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    austa_core::time::truncate(t)
}

const DENIAL: &str = "Procedimento fora do Rol da ANS para a indicação descrita";
const CANCELLATION: &str = "Paciente optou por tratamento clínico";

/// A new authorization in status `status`, moved there through the workflow itself.
async fn in_status(o: &Org, status: S) -> Authorization {
    let repo = o.scope.authorizations();
    let a = repo.create(request(o)).await.unwrap();
    let now = Utc::now();
    match status {
        S::Pending => a,
        S::UnderReview => repo.start_review(a.id, o.auditor).await.unwrap(),
        S::Approved => {
            repo.start_review(a.id, o.auditor).await.unwrap();
            repo.approve(a.id, o.doctor, now, now + Duration::days(30)).await.unwrap()
        }
        S::Denied => {
            repo.start_review(a.id, o.auditor).await.unwrap();
            repo.deny(a.id, o.auditor, DENIAL).await.unwrap()
        }
        S::Cancelled => repo.cancel(a.id, CANCELLATION).await.unwrap(),
        S::Expired => {
            repo.start_review(a.id, o.auditor).await.unwrap();
            repo.approve(a.id, o.doctor, now - Duration::days(30), now - Duration::days(1)).await.unwrap();
            assert_eq!(repo.expire_due(Utc::now()).await.unwrap(), 1);
            repo.get(a.id).await.unwrap()
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Raw inspection

/// One row of `audit_logs`, as the database holds it.
#[derive(Debug, Clone)]
struct AuditRow {
    id: String,
    action: String,
    outcome: String,
    entity_id: Option<String>,
    changed: Vec<String>,
    records: Vec<String>,
    record_count: i64,
}

const AUDIT_SQL: &str = "SELECT CAST(id AS TEXT) AS id, action, outcome, CAST(entity_id AS TEXT) AS entity_id, \
     CAST(changed_fields AS TEXT) AS changed, CAST(record_ids AS TEXT) AS records, record_count \
     FROM audit_logs WHERE organization_id = $1";

/// Every audit event of organization `org`.
async fn audit_rows(tdb: &TestDb, org: Uuid) -> Vec<AuditRow> {
    macro_rules! decode {
        ($rows:expr) => {
            $rows
                .iter()
                .map(|r| {
                    let list =
                        |column: &str| -> Vec<String> { serde_json::from_str(&r.get::<String, _>(column)).unwrap() };
                    AuditRow {
                        id: r.get("id"),
                        action: r.get("action"),
                        outcome: r.get("outcome"),
                        entity_id: r.get("entity_id"),
                        changed: list("changed"),
                        records: list("records"),
                        record_count: r.get("record_count"),
                    }
                })
                .collect()
        };
    }
    match tdb.backend {
        Backend::Sqlite => {
            let p = tdb.sqlite_pool().await;
            let rows = sqlx::query(AUDIT_SQL).bind(org.to_string()).fetch_all(&p).await.unwrap();
            p.close().await;
            decode!(rows)
        }
        Backend::Postgres => {
            let p = tdb.pg_pool().await;
            let rows = sqlx::query(AUDIT_SQL).bind(org).fetch_all(&p).await.unwrap();
            p.close().await;
            decode!(rows)
        }
    }
}

/// The audit events of `org` that were not in `before`.
async fn new_events(tdb: &TestDb, org: Uuid, before: &[AuditRow]) -> Vec<AuditRow> {
    let seen: BTreeSet<&str> = before.iter().map(|e| e.id.as_str()).collect();
    audit_rows(tdb, org).await.into_iter().filter(|e| !seen.contains(e.id.as_str())).collect()
}

/// Exactly one new event: a successful UPDATE of authorization `id` naming exactly `changed`.
#[track_caller]
fn assert_one_update(events: &[AuditRow], id: Uuid, changed: &[&str]) {
    assert_eq!(events.len(), 1, "exactly one audit event: {events:#?}");
    let e = &events[0];
    assert_eq!((e.action.as_str(), e.outcome.as_str()), ("UPDATE", "SUCCESS"), "{e:?}");
    assert_eq!(e.entity_id.as_deref(), Some(id.to_string().as_str()));
    assert_eq!(e.records, vec![id.to_string()]);
    assert_eq!(e.changed, changed, "changed fields");
}

async fn transitions(tdb: &TestDb, id: Uuid) -> i64 {
    tdb.raw_i64(&format!("SELECT COUNT(*) FROM authorization_transitions WHERE authorization_id = '{id}'")).await
}

/// Runs `op`, which must fail with `code` on `field`, and checks that it changed nothing: the row, its
/// history and the audit trail are as before.
async fn assert_refused<T: Debug>(
    tdb: &TestDb,
    o: &Org,
    id: Uuid,
    code: &str,
    field: Option<&str>,
    op: impl std::future::Future<Output = Result<T, Error>>,
) {
    let row = o.scope.authorizations().get(id).await.unwrap();
    let history = transitions(tdb, id).await;
    let before = audit_rows(tdb, o.id).await;
    assert_err(op.await, code, field);
    let events = new_events(tdb, o.id, &before).await;
    assert!(events.is_empty(), "{code} wrote an audit event: {events:#?}");
    assert_eq!(transitions(tdb, id).await, history, "history unchanged");
    assert_eq!(o.scope.authorizations().get(id).await.unwrap(), row, "row unchanged");
}

// ---------------------------------------------------------------------------------------------------
// Valid transitions

#[backends]
async fn review_then_approval_records_who_and_when(tdb: TestDb) {
    let o = org(&tdb, "Hospital do Coração").await;
    let repo = o.scope.authorizations();
    let created = repo.create(request(&o)).await.unwrap();

    let before = audit_rows(&tdb, o.id).await;
    let t0 = micros(Utc::now());
    let reviewed = repo.start_review(created.id, o.auditor).await.unwrap();
    let events = new_events(&tdb, o.id, &before).await;
    assert_one_update(&events, created.id, &["status", "reviewed_by_provider_id", "reviewed_at", "transitions"]);
    assert_eq!(reviewed.status, S::UnderReview, "{:?}", tdb.backend);
    assert_eq!(reviewed.reviewed_by_provider_id, Some(o.auditor));
    assert!(reviewed.reviewed_at.is_some_and(|t| t >= t0 && t <= Utc::now()));
    assert_eq!((reviewed.approved_by_provider_id, reviewed.approved_at), (None, None));
    assert_eq!(repo.get(created.id).await.unwrap(), reviewed, "returned as stored");

    let (from, until) = (micros(Utc::now()), micros(Utc::now() + Duration::days(30)));
    let before = audit_rows(&tdb, o.id).await;
    let approved = repo.approve(created.id, o.doctor, from, until).await.unwrap();
    let events = new_events(&tdb, o.id, &before).await;
    assert_one_update(
        &events,
        created.id,
        &["status", "approved_by_provider_id", "approved_at", "valid_from", "valid_until", "transitions"],
    );
    assert_eq!(approved.status, S::Approved);
    assert_eq!(approved.approved_by_provider_id, Some(o.doctor));
    assert!(approved.approved_at.is_some_and(|t| t >= reviewed.reviewed_at.unwrap()));
    assert_eq!((approved.valid_from, approved.valid_until), (Some(from), Some(until)), "the approved window");
    assert_eq!(approved.reviewed_by_provider_id, Some(o.auditor), "the reviewer is kept");
    assert_eq!(approved.procedure_name.expose().unwrap(), "Cateterismo cardíaco");
    assert_eq!(repo.get(created.id).await.unwrap(), approved, "returned as stored");

    let history = repo.history(created.id).await.unwrap();
    assert_eq!(history.len(), 2);
    let steps: Vec<_> = history.iter().map(|t| (t.from_status, t.to_status, t.provider_id)).collect();
    assert_eq!(
        steps,
        vec![(S::Pending, S::UnderReview, Some(o.auditor)), (S::UnderReview, S::Approved, Some(o.doctor))]
    );
    assert_eq!(
        (history[0].occurred_at, history[1].occurred_at),
        (reviewed.reviewed_at.unwrap(), approved.approved_at.unwrap())
    );
    for t in &history {
        assert_eq!((t.actor_kind, t.actor_name.as_deref()), (Role::System, Some("platform")));
        assert_eq!((t.authorization_id, t.patient_id, t.organization_id), (created.id, o.carlos, o.id));
        assert!(t.reason.is_none());
    }

    // Approving the window that was requested lists only what changed.
    let same = in_status(&o, S::UnderReview).await;
    let before = audit_rows(&tdb, o.id).await;
    repo.approve(same.id, o.doctor, same.valid_from.unwrap(), same.valid_until.unwrap()).await.unwrap();
    let events = new_events(&tdb, o.id, &before).await;
    assert_one_update(&events, same.id, &["status", "approved_by_provider_id", "approved_at", "transitions"]);

    // A retroactive approval (a window already over) is allowed; it is due for expiry at once.
    let late = in_status(&o, S::UnderReview).await;
    let past = Utc::now() - Duration::days(10);
    let approved = repo.approve(late.id, o.doctor, past, past + Duration::days(1)).await.unwrap();
    assert_eq!(approved.status, S::Approved);
}

#[backends]
async fn denial_and_cancellation_keep_their_reason_encrypted(tdb: TestDb) {
    let o = org(&tdb, "Hospital Sírio-Libanês").await;
    let repo = o.scope.authorizations();

    // Denied by another provider than the one who took it into review, with a multi-line reason.
    let reviewing = in_status(&o, S::UnderReview).await;
    let before = audit_rows(&tdb, o.id).await;
    let denied = repo.deny(reviewing.id, o.doctor, format!("  {DENIAL}\r\nVer parecer anexo  ")).await.unwrap();
    assert_one_update(&new_events(&tdb, o.id, &before).await, reviewing.id, &["status", "transitions"]);
    assert_eq!(denied.status, S::Denied, "{:?}", tdb.backend);
    assert_eq!(denied.reviewed_by_provider_id, Some(o.auditor), "the reviewer of record is kept");
    assert_eq!(repo.get(reviewing.id).await.unwrap(), denied);
    let history = repo.history(reviewing.id).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!((last.from_status, last.to_status, last.provider_id), (S::UnderReview, S::Denied, Some(o.doctor)));
    let expected = format!("{DENIAL}\nVer parecer anexo");
    assert_eq!(last.reason.as_ref().unwrap().expose().unwrap(), &expected, "CRLF normalized, trimmed");
    assert!(last.occurred_at >= denied.reviewed_at.unwrap() && last.occurred_at == denied.updated_at);
    // At rest the reason is ciphertext.
    let sealed = tdb.raw_bytes("authorization_transitions", "reason", last.id).await.unwrap();
    assert!(!sealed.windows(20).any(|w| DENIAL.as_bytes().starts_with(w)), "reason stored encrypted");

    // Cancelled while pending, by the platform: no provider, the integration's name.
    let pending = in_status(&o, S::Pending).await;
    let before = audit_rows(&tdb, o.id).await;
    let cancelled = repo.cancel(pending.id, CANCELLATION).await.unwrap();
    assert_one_update(&new_events(&tdb, o.id, &before).await, pending.id, &["status", "transitions"]);
    assert_eq!(cancelled.status, S::Cancelled);
    assert_eq!(repo.get(pending.id).await.unwrap(), cancelled);
    let last = repo.history(pending.id).await.unwrap().pop().unwrap();
    assert_eq!((last.from_status, last.to_status, last.provider_id), (S::Pending, S::Cancelled, None));
    assert_eq!((last.actor_kind, last.actor_name.as_deref()), (Role::System, Some("platform")));
    assert_eq!(last.reason.as_ref().unwrap().expose().unwrap(), CANCELLATION);

    // Cancelled under review, by a provider: the provider is recorded.
    let reviewing = in_status(&o, S::UnderReview).await;
    let as_doctor = tdb.db.scope(o.id, Actor::provider(o.doctor)).await.unwrap();
    let before = audit_rows(&tdb, o.id).await;
    let cancelled = as_doctor.authorizations().cancel(reviewing.id, CANCELLATION).await.unwrap();
    assert_one_update(&new_events(&tdb, o.id, &before).await, reviewing.id, &["status", "transitions"]);
    assert_eq!(cancelled.status, S::Cancelled);
    let last = repo.history(reviewing.id).await.unwrap().pop().unwrap();
    assert_eq!((last.from_status, last.to_status, last.provider_id), (S::UnderReview, S::Cancelled, Some(o.doctor)));
    assert_eq!((last.actor_kind, last.actor_name.as_deref()), (Role::Provider, None));

    // The Tasy integration may decide too, naming the provider the decision came from.
    let tasy = tdb.db.scope(o.id, Actor::system("tasy-sync")).await.unwrap();
    let reviewing = in_status(&o, S::UnderReview).await;
    let now = Utc::now();
    tasy.authorizations().approve(reviewing.id, o.doctor, now, now + Duration::days(7)).await.unwrap();
    let last = repo.history(reviewing.id).await.unwrap().pop().unwrap();
    assert_eq!(
        (last.actor_kind, last.actor_name.as_deref(), last.provider_id),
        (Role::System, Some("tasy-sync"), Some(o.doctor))
    );
}

// ---------------------------------------------------------------------------------------------------
// Invalid transitions

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    StartReview,
    Approve,
    Deny,
    Cancel,
}

async fn run(o: &Org, op: Op, id: Uuid) -> Result<Authorization, Error> {
    let repo = o.scope.authorizations();
    let now = Utc::now();
    match op {
        Op::StartReview => repo.start_review(id, o.auditor).await,
        Op::Approve => repo.approve(id, o.doctor, now, now + Duration::days(10)).await,
        Op::Deny => repo.deny(id, o.auditor, DENIAL).await,
        Op::Cancel => repo.cancel(id, CANCELLATION).await,
    }
}

#[backends]
async fn every_other_transition_is_a_conflict_that_changes_nothing(tdb: TestDb) {
    let allowed = [
        (S::Pending, vec![Op::StartReview, Op::Cancel]),
        (S::UnderReview, vec![Op::Approve, Op::Deny, Op::Cancel]),
        (S::Approved, vec![]),
        (S::Denied, vec![]),
        (S::Cancelled, vec![]),
        (S::Expired, vec![]),
    ];
    let o = org(&tdb, "Hospital Israelita").await;
    for (status, valid) in &allowed {
        let a = in_status(&o, *status).await;
        assert_eq!(a.status, *status);
        for op in [Op::StartReview, Op::Approve, Op::Deny, Op::Cancel] {
            assert_eq!(
                a.status.can_become(match op {
                    Op::StartReview => S::UnderReview,
                    Op::Approve => S::Approved,
                    Op::Deny => S::Denied,
                    Op::Cancel => S::Cancelled,
                }),
                valid.contains(&op),
                "{status:?} {op:?}"
            );
            if !valid.contains(&op) {
                assert_refused(&tdb, &o, a.id, "conflict", Some("status"), run(&o, op, a.id)).await;
            }
        }
        // The valid ones succeed from this very state (each on a fresh authorization).
        for op in valid {
            let b = in_status(&o, *status).await;
            run(&o, *op, b.id).await.unwrap_or_else(|e| panic!("{status:?} {op:?}: {e}"));
        }
    }
    // No status is ever re-entered.
    for s in [S::Pending, S::UnderReview, S::Approved, S::Denied, S::Cancelled, S::Expired] {
        assert!(!s.can_become(s));
        assert!(!s.can_become(S::Pending), "nothing goes back to PENDING");
    }
}

#[backends]
async fn invalid_input_is_a_validation_error_that_changes_nothing(tdb: TestDb) {
    let o = org(&tdb, "Hospital Alemão Oswaldo Cruz").await;
    let repo = o.scope.authorizations();
    let a = in_status(&o, S::UnderReview).await;
    let now = Utc::now();
    let backwards = repo.approve(a.id, o.doctor, now, now - Duration::days(1));
    assert_refused(&tdb, &o, a.id, "validation", Some("valid_until"), backwards).await;
    let ancient = now - Duration::days(365 * 200);
    let ancient = repo.approve(a.id, o.doctor, ancient, now);
    assert_refused(&tdb, &o, a.id, "validation", Some("valid_from"), ancient).await;
    assert_refused(&tdb, &o, a.id, "validation", Some("reason"), repo.deny(a.id, o.auditor, " \r\n ")).await;
    let long = "x".repeat(2001);
    assert_refused(&tdb, &o, a.id, "validation", Some("reason"), repo.deny(a.id, o.auditor, long)).await;
    let control = repo.deny(a.id, o.auditor, Sensitive::new("a\u{0}b".to_string()));
    assert_refused(&tdb, &o, a.id, "validation", Some("reason"), control).await;
    assert_refused(&tdb, &o, a.id, "validation", Some("reason"), repo.cancel(a.id, "")).await;

    // Unknown, soft-deleted and other organizations' authorizations are not found.
    assert_err(repo.start_review(Uuid::now_v7(), o.auditor).await, "not_found", None);
    let gone = in_status(&o, S::Pending).await;
    repo.delete(gone.id).await.unwrap();
    assert_err(repo.start_review(gone.id, o.auditor).await, "not_found", None);
    assert_err(repo.history(gone.id).await, "not_found", None);
    let other = org(&tdb, "Clínica Vida Saudável").await;
    assert_err(other.scope.authorizations().cancel(a.id, CANCELLATION).await, "not_found", None);
    assert_err(other.scope.authorizations().history(a.id).await, "not_found", None);
    assert_eq!(repo.get(a.id).await.unwrap().status, S::UnderReview);

    // No transition may precede the request (the database orders review and approval after it).
    let early = NewAuthorization { requested_at: Some(Utc::now() + Duration::days(1)), ..request(&o) };
    let early = repo.create(early).await.unwrap();
    let r = repo.start_review(early.id, o.auditor);
    assert_refused(&tdb, &o, early.id, "conflict", Some("requested_at"), r).await;

    // expire_due never runs ahead of the clock.
    let future = repo.expire_due(Utc::now() + Duration::hours(1)).await;
    assert_err(future, "validation", Some("now"));
}

#[backends]
async fn decided_content_is_frozen_but_external_references_may_change(tdb: TestDb) {
    let o = org(&tdb, "Hospital Santa Catarina").await;
    let repo = o.scope.authorizations();
    for status in [S::Approved, S::Denied, S::Cancelled, S::Expired] {
        let a = in_status(&o, status).await;
        for patch in [
            AuthorizationPatch { priority: Some(Priority::Urgent), ..Default::default() },
            AuthorizationPatch { procedure_name: Some("Angioplastia".into()), ..Default::default() },
            AuthorizationPatch { valid_until: Some(Some(Utc::now() + Duration::days(365))), ..Default::default() },
            AuthorizationPatch {
                tasy_reference_id: Some(Some("TASY-1".into())),
                clinical_notes: Some(None),
                ..Default::default()
            },
        ] {
            assert_refused(&tdb, &o, a.id, "conflict", Some("status"), repo.update(a.id, patch)).await;
        }
        let refs = AuthorizationPatch {
            tasy_reference_id: Some(Some("TASY-2024-000777".into())),
            insurance_claim_id: Some(Some("GUIA-2024-9911".into())),
            ..Default::default()
        };
        let updated = repo.update(a.id, refs).await.unwrap();
        assert_eq!(updated.tasy_reference_id.as_deref(), Some("TASY-2024-000777"), "{status:?}");
        assert_eq!(updated.status, status);
    }
    // Open authorizations stay editable.
    for status in [S::Pending, S::UnderReview] {
        let a = in_status(&o, status).await;
        let patch = AuthorizationPatch { priority: Some(Priority::Urgent), ..Default::default() };
        assert_eq!(repo.update(a.id, patch).await.unwrap().priority, Priority::Urgent);
    }
}

// ---------------------------------------------------------------------------------------------------
// Who may review and approve

#[backends]
async fn reviewers_and_approvers_are_live_active_providers_of_the_organization(tdb: TestDb) {
    let o = org(&tdb, "Hospital São Luiz").await;
    let other = org(&tdb, "Clínica Vida Saudável").await;
    let repo = o.scope.authorizations();
    let gone = provider(&o.scope, "Paulo", "paulo@austa.com.br", ProviderRole::Doctor).await;
    o.scope.providers().delete(gone).await.unwrap();
    let idle = provider(&o.scope, "Lúcia", "lucia@austa.com.br", ProviderRole::Doctor).await;
    o.scope.providers().update(idle, ProviderPatch { is_active: Some(false), ..Default::default() }).await.unwrap();

    let pending = in_status(&o, S::Pending).await;
    for stranger in [other.auditor, Uuid::now_v7(), gone, idle] {
        let r = repo.start_review(pending.id, stranger);
        assert_refused(&tdb, &o, pending.id, "validation", Some("reviewer_provider_id"), r).await;
    }
    let reviewing = in_status(&o, S::UnderReview).await;
    let now = Utc::now();
    for stranger in [other.doctor, Uuid::now_v7(), gone, idle] {
        let r = repo.approve(reviewing.id, stranger, now, now + Duration::days(1));
        assert_refused(&tdb, &o, reviewing.id, "validation", Some("approver_provider_id"), r).await;
        let r = repo.deny(reviewing.id, stranger, DENIAL);
        assert_refused(&tdb, &o, reviewing.id, "validation", Some("reviewer_provider_id"), r).await;
    }
    assert_eq!(repo.approve(reviewing.id, o.doctor, now, now + Duration::days(1)).await.unwrap().status, S::Approved);
}

#[backends]
async fn providers_act_only_as_themselves_and_the_access_matrix_holds(tdb: TestDb) {
    let o = org(&tdb, "Hospital Moinhos de Vento").await;
    let as_auditor = tdb.db.scope(o.id, Actor::provider(o.auditor)).await.unwrap();
    let pending = in_status(&o, S::Pending).await;

    // A provider naming another provider is refused, and the refusal is recorded.
    let row = o.scope.authorizations().get(pending.id).await.unwrap();
    let before = audit_rows(&tdb, o.id).await;
    assert_err(as_auditor.authorizations().start_review(pending.id, o.doctor).await, "permission_denied", None);
    let events = new_events(&tdb, o.id, &before).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!((events[0].action.as_str(), events[0].outcome.as_str()), ("ACCESS_DENIED", "DENIED"));
    assert_eq!(o.scope.authorizations().get(pending.id).await.unwrap(), row);
    assert_eq!(transitions(&tdb, pending.id).await, 0);
    // As themself it works; the history says a provider did it.
    let reviewed = as_auditor.authorizations().start_review(pending.id, o.auditor).await.unwrap();
    assert_eq!(reviewed.reviewed_by_provider_id, Some(o.auditor));
    let last = o.scope.authorizations().history(pending.id).await.unwrap().pop().unwrap();
    assert_eq!((last.actor_kind, last.provider_id), (Role::Provider, Some(o.auditor)));

    // A provider that does not exist here gets no scope at all (refused and recorded), so it can
    // move nothing even naming itself.
    let ghost = Uuid::now_v7();
    let other = in_status(&o, S::Pending).await;
    let before = audit_rows(&tdb, o.id).await;
    assert_err(tdb.db.scope(o.id, Actor::provider(ghost)).await, "permission_denied", None);
    let events = new_events(&tdb, o.id, &before).await;
    assert_eq!(events.iter().filter(|e| e.action == "ACCESS_DENIED").count(), 1, "{events:#?}");
    assert_eq!(o.scope.authorizations().get(other.id).await.unwrap().status, S::Pending);

    // Patients and administrators may not move authorizations (the access matrix).
    let as_patient = tdb.db.scope(o.id, Actor::patient(o.carlos)).await.unwrap();
    let as_admin = tdb.db.scope(o.id, Actor::admin(Some(Uuid::now_v7()))).await.unwrap();
    for scope in [&as_patient, &as_admin] {
        let before = audit_rows(&tdb, o.id).await;
        assert_err(scope.authorizations().cancel(other.id, CANCELLATION).await, "permission_denied", None);
        assert_err(scope.authorizations().expire_due(Utc::now()).await, "permission_denied", None);
        let events = new_events(&tdb, o.id, &before).await;
        assert!(events.iter().all(|e| e.action == "ACCESS_DENIED") && events.len() == 2, "{events:#?}");
    }
    assert_eq!(o.scope.authorizations().get(other.id).await.unwrap().status, S::Pending);
    // The patient may read the history of their own authorization.
    assert_eq!(as_patient.authorizations().history(pending.id).await.unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------------------
// Expiry

/// A new authorization approved for `from..=until`.
async fn approved(o: &Org, from: DateTime<Utc>, until: DateTime<Utc>) -> Authorization {
    let a = in_status(o, S::UnderReview).await;
    o.scope.authorizations().approve(a.id, o.doctor, from, until).await.unwrap()
}

/// A new authorization in `status` (PENDING or UNDER_REVIEW) whose requested window ended before `now`.
async fn late_request(o: &Org, status: S, now: DateTime<Utc>) -> Authorization {
    let repo = o.scope.authorizations();
    let new = NewAuthorization {
        valid_from: Some(now - Duration::days(20)),
        valid_until: Some(now - Duration::days(10)),
        ..request(o)
    };
    let a = repo.create(new).await.unwrap();
    match status {
        S::UnderReview => repo.start_review(a.id, o.auditor).await.unwrap(),
        _ => a,
    }
}

#[backends]
async fn expire_due_expires_exactly_the_approved_authorizations_past_their_validity(tdb: TestDb) {
    let o = org(&tdb, "Hospital Beneficência Portuguesa").await;
    let other = org(&tdb, "Clínica Vida Saudável").await;
    let repo = o.scope.authorizations();
    let now = Utc::now();
    let over = approved(&o, now - Duration::days(30), now - Duration::days(1)).await;
    let just_over = approved(&o, now - Duration::days(3), now - Duration::seconds(1)).await;
    let current = approved(&o, now - Duration::days(1), now + Duration::days(30)).await;
    let deleted = approved(&o, now - Duration::days(30), now - Duration::days(1)).await;
    repo.delete(deleted.id).await.unwrap();
    // Open authorizations whose requested window is over are not expired: they were never approved.
    let pending = late_request(&o, S::Pending, now).await;
    let reviewing = late_request(&o, S::UnderReview, now).await;
    let elsewhere = {
        let a = in_status(&other, S::UnderReview).await;
        other
            .scope
            .authorizations()
            .approve(a.id, other.doctor, now - Duration::days(9), now - Duration::days(2))
            .await
            .unwrap()
    };

    let before = audit_rows(&tdb, o.id).await;
    assert_eq!(repo.expire_due(Utc::now()).await.unwrap(), 2, "{:?}", tdb.backend);
    let events = new_events(&tdb, o.id, &before).await;
    assert_eq!(events.len(), 1, "one event for the whole sweep: {events:#?}");
    let e = &events[0];
    assert_eq!((e.action.as_str(), e.outcome.as_str(), e.record_count), ("UPDATE", "SUCCESS", 2));
    let listed: BTreeSet<String> = e.records.iter().cloned().collect();
    assert_eq!(listed, BTreeSet::from([over.id.to_string(), just_over.id.to_string()]));
    assert_eq!(e.changed, ["status", "transitions"]);

    for (a, status) in [
        (&over, S::Expired),
        (&just_over, S::Expired),
        (&current, S::Approved),
        (&pending, S::Pending),
        (&reviewing, S::UnderReview),
    ] {
        assert_eq!(repo.get(a.id).await.unwrap().status, status, "{a:?}");
    }
    let raw = format!("SELECT status FROM authorizations WHERE id = '{}'", deleted.id);
    assert_eq!(tdb.raw_text(&raw).await, "APPROVED", "soft-deleted rows are left alone");
    assert_eq!(other.scope.authorizations().get(elsewhere.id).await.unwrap().status, S::Approved, "other tenants too");
    let expired = repo.get(over.id).await.unwrap();
    assert_eq!(
        (expired.approved_by_provider_id, expired.valid_until),
        (over.approved_by_provider_id, over.valid_until)
    );
    let last = repo.history(over.id).await.unwrap().pop().unwrap();
    assert_eq!((last.from_status, last.to_status, last.provider_id), (S::Approved, S::Expired, None));
    assert!(last.reason.is_none() && last.occurred_at == expired.updated_at);

    // Nothing left to expire: still one (empty) event, and nothing changes.
    let before = audit_rows(&tdb, o.id).await;
    assert_eq!(repo.expire_due(Utc::now()).await.unwrap(), 0);
    let events = new_events(&tdb, o.id, &before).await;
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].record_count, events[0].records.len()), (0, 0));
    // A cutoff in the past expires only what was over by then.
    assert_eq!(other.scope.authorizations().expire_due(now - Duration::days(3)).await.unwrap(), 0);
    assert_eq!(other.scope.authorizations().expire_due(Utc::now()).await.unwrap(), 1);
    assert_eq!(other.scope.authorizations().get(elsewhere.id).await.unwrap().status, S::Expired);
}

// ---------------------------------------------------------------------------------------------------
// Concurrency

#[backends(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_approvals_of_one_authorization_one_wins(tdb: TestDb) {
    let o = org(&tdb, "Hospital Samaritano").await;
    let as_doctor = tdb.db.scope(o.id, Actor::provider(o.doctor)).await.unwrap();
    let as_auditor = tdb.db.scope(o.id, Actor::provider(o.auditor)).await.unwrap();
    for round in 0..4 {
        let a = in_status(&o, S::UnderReview).await;
        let now = Utc::now();
        let before = audit_rows(&tdb, o.id).await;
        let (doctors, auditors) = (as_doctor.authorizations(), as_auditor.authorizations());
        let (first, second) = tokio::join!(
            doctors.approve(a.id, o.doctor, now, now + Duration::days(5)),
            auditors.approve(a.id, o.auditor, now, now + Duration::days(9)),
        );
        let winner = match (&first, &second) {
            (Ok(w), Err(e)) | (Err(e), Ok(w)) => {
                assert_eq!((e.code(), e.field()), ("conflict", Some("status")), "round {round}: {e}");
                w.clone()
            }
            _ => panic!("round {round}: exactly one approval must win: {first:?} / {second:?}"),
        };
        let stored = o.scope.authorizations().get(a.id).await.unwrap();
        assert_eq!(stored, winner, "the winner's approval is the one stored");
        assert_eq!(transitions(&tdb, a.id).await, 2, "one review, one approval");
        let events = new_events(&tdb, o.id, &before).await;
        let updates: Vec<_> = events.iter().filter(|e| e.action == "UPDATE").collect();
        assert_eq!(updates.len(), 1, "{events:#?}");
    }
}

// ---------------------------------------------------------------------------------------------------
// Keys

#[backends]
async fn reasons_survive_a_key_rotation_and_are_erased_with_the_patient(tdb: TestDb) {
    let o = org(&tdb, "Hospital Nove de Julho").await;
    let repo = o.scope.authorizations();
    let denied = in_status(&o, S::Denied).await;
    let pending = in_status(&o, S::Pending).await;
    let transition = repo.history(denied.id).await.unwrap().pop().unwrap();
    let sealed = tdb.raw_bytes("authorization_transitions", "reason", transition.id).await.unwrap();

    let rotation = o.scope.keys().start_rotation(RotationTarget::Patient(o.carlos)).await.unwrap();
    let done = o.scope.keys().run_rotation(rotation.id, RunOptions::default(), |_| {}).await.unwrap();
    assert!(done.completed);
    let resealed = tdb.raw_bytes("authorization_transitions", "reason", transition.id).await.unwrap();
    assert_ne!(sealed, resealed, "re-encrypted under the new key");
    let after = repo.history(denied.id).await.unwrap().pop().unwrap();
    assert_eq!(after.reason.as_ref().unwrap().expose().unwrap(), DENIAL, "{:?}", tdb.backend);

    o.scope.keys().shred_patient(o.carlos, "LGPD erasure request 2026-7").await.unwrap();
    let erased = repo.history(denied.id).await.unwrap().pop().unwrap();
    assert!(erased.reason.unwrap().is_erased());
    assert_eq!((erased.to_status, erased.provider_id), (S::Denied, Some(o.auditor)), "operational columns stay");
    assert_err(repo.start_review(pending.id, o.auditor).await, "erased", None);
    assert_eq!(repo.get(pending.id).await.unwrap().status, S::Pending);
}

// ---------------------------------------------------------------------------------------------------
// The database's own guard

#[backends]
async fn the_database_enforces_the_state_machine_too(tdb: TestDb) {
    let o = org(&tdb, "Hospital Albert Einstein").await;
    let ana = o
        .scope
        .patients()
        .create(NewPatient {
            first_name: "Ana".into(),
            last_name: "Costa".into(),
            phone: "+5511976543210".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let a = in_status(&o, S::Pending).await;
    let reason = match tdb.backend {
        Backend::Sqlite => "X'01'",
        Backend::Postgres => "'\\x01'::bytea",
    };
    let insert = |patient: Uuid, from: &str, to: &str, provider: Option<Uuid>, reason: &str| {
        let provider = provider.map_or("NULL".to_string(), |p| format!("'{p}'"));
        format!(
            "INSERT INTO authorization_transitions (organization_id, id, authorization_id, patient_id, from_status, \
             to_status, provider_id, actor_kind, actor_name, reason, occurred_at) VALUES ('{}', '{}', '{}', '{patient}', \
             '{from}', '{to}', {provider}, 'SYSTEM', 'platform', {reason}, '2030-01-01T00:00:00.000000Z')",
            o.id,
            Uuid::now_v7(),
            a.id
        )
    };
    let p = Some(o.auditor);
    for (sql, why) in [
        (insert(o.carlos, "PENDING", "APPROVED", p, "NULL"), "skipping the review"),
        (insert(o.carlos, "APPROVED", "UNDER_REVIEW", p, "NULL"), "going back"),
        (insert(o.carlos, "DENIED", "CANCELLED", None, reason), "leaving a final state"),
        (insert(o.carlos, "PENDING", "UNDER_REVIEW", None, "NULL"), "a review without a reviewer"),
        (insert(o.carlos, "UNDER_REVIEW", "DENIED", p, "NULL"), "a denial without a reason"),
        (insert(o.carlos, "PENDING", "CANCELLED", None, "NULL"), "a cancellation without a reason"),
        (insert(o.carlos, "UNDER_REVIEW", "APPROVED", p, reason), "a reason where none is asked"),
        (insert(o.carlos, "APPROVED", "EXPIRED", p, "NULL"), "an expiry with a provider"),
        (insert(ana, "PENDING", "UNDER_REVIEW", p, "NULL"), "another patient than the authorization's"),
        (insert(o.carlos, "PENDING", "UNDER_REVIEW", Some(Uuid::now_v7()), "NULL"), "an unknown provider"),
    ] {
        assert!(tdb.raw_script(&sql).await.is_err(), "{:?} accepted {why}", tdb.backend);
    }
    tdb.raw_script(&insert(o.carlos, "PENDING", "UNDER_REVIEW", p, "NULL")).await.unwrap();

    if tdb.backend == Backend::Postgres {
        // The runtime role appends and reads the history; it may rewrite only the ciphertext (key
        // rotation) and delete nothing.
        let app = sqlx::PgPool::connect(&tdb.app_url).await.unwrap();
        let as_app = |sql: String| {
            let app = app.clone();
            let org = o.id.to_string();
            async move {
                let mut tx = app.begin().await.unwrap();
                sqlx::query("SELECT set_config('austa.organization_id', $1, true)")
                    .bind(org)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                let r = sqlx::query(&sql).execute(&mut *tx).await.map(|r| r.rows_affected());
                tx.rollback().await.unwrap();
                r
            }
        };
        assert_eq!(as_app("UPDATE authorization_transitions SET reason = reason".into()).await.unwrap(), 1);
        for sql in [
            "UPDATE authorization_transitions SET to_status = 'CANCELLED'",
            "UPDATE authorization_transitions SET provider_id = NULL",
            "DELETE FROM authorization_transitions",
        ] {
            let err = as_app(sql.into()).await.unwrap_err();
            assert!(err.to_string().contains("permission denied"), "{sql}: {err}");
        }
        app.close().await;
    }
}
