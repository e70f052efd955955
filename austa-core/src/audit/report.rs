//! Access reports: who touched one patient's data, when, what and why, in time order.
//!
//! The report lists every event whose `patient_ids` hold the patient (reads list each patient whose
//! rows they returned, so a provider's listing that included the patient shows up too), including
//! denied attempts and earlier reports. Running a report is itself recorded, as a `READ` of the
//! audit log about that patient, in the same transaction as the query.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::access::{Action, Resource, Rule};
use crate::db::{Query, Tx};
use crate::error::{Error, Result};
use crate::kernel::event::{time_text, Event};
use crate::kernel::record::{check, AuditTx};
use crate::model::{AuditAction, AuditLog};
use crate::page::{Cursor, Page, PageRequest};
use crate::scope::Scope;

fn parse_cursor(page: &PageRequest) -> Result<Option<(DateTime<Utc>, Uuid)>> {
    let Some(c) = &page.after else { return Ok(None) };
    let raw = c.decode()?;
    let (t, id) = raw.split_once('|').ok_or_else(Cursor::invalid)?;
    let t = DateTime::parse_from_rfc3339(t).map_err(|_| Cursor::invalid())?.with_timezone(&Utc);
    let id = id.parse::<Uuid>().map_err(|_| Cursor::invalid())?;
    Ok(Some((t, id)))
}

/// SQL condition: the event involves the patient bound as `$2`.
fn involves(tx: &Tx) -> String {
    format!("(patient_id = $2 OR {})", tx.dialect().json_array_contains("audit_logs.patient_ids", "$2"))
}

/// Who may run a report on `patient`: the patient on their own record; others as the matrix says
/// for reading the audit log (providers with a stated purpose, administrators).
fn authorize(scope: &Scope, patient: Uuid) -> Result<()> {
    match scope.authorize(Resource::AuditLog, Action::Read)? {
        Rule::OwnRecords if scope.actor().id() != Some(patient) => {
            Err(Error::PermissionDenied("a patient may only see the access report of their own record".into()))
        }
        _ => Ok(()),
    }
}

/// Whether the scope may see event `event_id` in an access report: a patient the events of their own
/// record (the event names them), others as [`authorize`] says. An event the scope cannot see,
/// absent ones included, is refused alike, so that a refusal tells nothing of other records.
pub(crate) async fn may_see_event(scope: &Scope, event_id: Uuid) -> Result<()> {
    let Rule::OwnRecords = scope.authorize(Resource::AuditLog, Action::Read)? else { return Ok(()) };
    let refused = || Error::PermissionDenied("a patient may only see the audit events of their own record".into());
    let me = scope.actor().id().ok_or_else(refused)?;
    let mut tx = scope.db().begin(Some(scope.organization_id()), crate::db::TxMode::Read).await?;
    let sql = "SELECT patient_id, patient_ids FROM audit_logs WHERE organization_id = $1 AND id = $2";
    let row = tx.fetch_optional(Query::new(sql).bind(scope.organization_id()).bind(event_id)).await?;
    tx.commit().await?;
    let Some(row) = row else { return Err(refused()) };
    if row.opt_uuid(0)? == Some(me) || row.uuid_list(1)?.contains(&me) {
        Ok(())
    } else {
        Err(refused())
    }
}

pub(crate) async fn access_report(
    scope: &Scope,
    patient: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    page: &PageRequest,
) -> Result<Page<AuditLog>> {
    if to <= from {
        return Err(Error::validation("to", "must be after from"));
    }
    let limit = page.checked_limit()?;
    let after = parse_cursor(page)?;
    check(scope, "audit_logs", Action::Read, None, Some(patient), authorize(scope, patient)).await?;
    let mut tx = AuditTx::begin(scope).await?;
    let org = scope.organization_id();
    let (t, id) = match after {
        Some((t, id)) => (Some(t), Some(id)),
        None => (None, None),
    };
    let sql = format!(
        "SELECT * FROM audit_logs WHERE organization_id = $1 AND {} AND occurred_at >= $3 AND occurred_at < $4 \
         AND ($5 IS NULL OR occurred_at > $5 OR (occurred_at = $5 AND id > $6)) ORDER BY occurred_at, id LIMIT $7",
        involves(&tx)
    );
    let rows = tx
        .fetch_all(
            Query::new(sql).bind(org).bind(patient).bind(from).bind(to).bind(t).bind(id).bind(i64::from(limit) + 1),
        )
        .await?;
    let mut rows = rows;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let ids = rows.iter().map(|r| r.uuid("id")).collect::<Result<Vec<_>>>()?;
    tx.record(Event::new(AuditAction::Read, crate::model::EntityType::AuditLog).patient(Some(patient)).records(ids))
        .await?;
    tx.commit().await?;
    // Decoded with the organization's key: reasons are encrypted.
    let items: Vec<AuditLog> = crate::kernel::rows::decode_rows(scope, &rows).await?;
    let next = if more {
        items.last().map(|e| Cursor::encode(&format!("{}|{}", time_text(&e.occurred_at), e.id)))
    } else {
        None
    };
    Ok(Page { items, next })
}
