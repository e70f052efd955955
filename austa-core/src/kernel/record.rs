//! Recording events in the transaction of the work they describe.
//!
//! [`AuditTx`] is the transaction every audited operation runs in: it loads the organization's keys
//! before opening the transaction (never waiting for the key store while holding one), derefs to the
//! underlying [`Tx`] for the operation's own statements, and [`AuditTx::record`] adds the event and
//! its pending-chain entry to the same transaction: sealed (MACed) at once, written with the
//! transaction's other events just before the commit, in as few statements as the dialect allows
//! (one on PostgreSQL). A rollback (an error, a dropped future) leaves no event; a commit always has
//! its events.
//!
//! Reads open theirs with [`AuditTx::begin_read`]: the same transaction and the same event, with the
//! commit's durability the handle's [`ReadAudit`](crate::db::ReadAudit) says. Committing also links pending events into the chain: inside
//! the transaction on SQLite (whose writers are serialized anyway), in the background after the
//! commit on PostgreSQL (so that writers never queue on the chain; see
//! [`sequencer`](super::sequencer)).
//!
//! Denied operations never open a transaction of their own work; [`denied`] records their
//! `ACCESS_DENIED` event in a transaction of its own and hands back the refusal.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use uuid::Uuid;

use super::chain;
use super::event::{insert_events, queue_statements, Event, Sealed};
use crate::access::Action;
use crate::db::{Tx, TxMode};
use crate::error::{Error, Result};
use crate::model::{AuditAction, AuditOutcome};
use crate::scope::Scope;
use austa_crypto::OrgKeys;

/// A write transaction of one scope that records audit events.
pub(crate) struct AuditTx<'s> {
    scope: &'s Scope,
    keys: Arc<OrgKeys>,
    tx: Tx,
    /// Events sealed, written at commit.
    events: Vec<Sealed>,
}

impl Deref for AuditTx<'_> {
    type Target = Tx;
    fn deref(&self) -> &Tx {
        &self.tx
    }
}

impl DerefMut for AuditTx<'_> {
    fn deref_mut(&mut self) -> &mut Tx {
        &mut self.tx
    }
}

impl<'s> AuditTx<'s> {
    /// Opens a write transaction bound to the scope's organization. (Reads write their event too, so
    /// on SQLite every audited transaction takes the write lock up front.)
    pub(crate) async fn begin(scope: &'s Scope) -> Result<Self> {
        Self::begin_as(scope, TxMode::Write).await
    }

    /// Opens the transaction of a read, whose only writes are the events recording it: durable at
    /// commit or soon after, as the handle's [`ReadAudit`](crate::db::ReadAudit) says.
    pub(crate) async fn begin_read(scope: &'s Scope) -> Result<Self> {
        Self::begin_as(scope, scope.db().inner.read_audit.tx_mode()).await
    }

    async fn begin_as(scope: &'s Scope, mode: TxMode) -> Result<Self> {
        let org = scope.organization_id();
        let keys = scope.db().org_keys(org).await?;
        let tx = scope.db().begin(Some(org), mode).await?;
        Ok(Self { scope, keys, tx, events: Vec::new() })
    }

    /// The operation's time, by the database's clock.
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.scope.now()
    }

    /// Adds an event to this transaction (sealed now, written at commit), as several when it lists
    /// more patients than one event holds ([`Event::into_parts`]); returns the (first) id.
    pub(crate) async fn record(&mut self, event: Event) -> Result<Uuid> {
        let mut first = None;
        for part in event.into_parts() {
            let sealed = part.into_log(self.scope, &self.keys)?;
            first.get_or_insert(sealed.log.id);
            self.events.push(sealed);
        }
        first.ok_or_else(|| Error::CorruptData("an audit event without parts".into()))
    }

    /// Writes the work's events, commits, then links them into the chain.
    pub(crate) async fn commit(mut self) -> Result<()> {
        debug_assert!(!self.events.is_empty(), "an audited transaction committed without an event");
        let (org, dialect) = (self.scope.organization_id(), self.tx.dialect());
        if dialect.serializes_writers() {
            // Writers are serialized anyway: link inside the transaction, straight from the events'
            // MACs when nothing else waits in the queue. Otherwise the events join the queue, and
            // it is linked in order; an event under a key version this transaction's keys lack
            // (another process rotated, or a forgery) makes it reload them and go on.
            for statement in insert_events(&self.events, dialect, false) {
                self.tx.execute(statement).await?;
            }
            let written: Vec<(Uuid, [u8; 32])> = self.events.iter().map(|e| (e.log.id, e.mac)).collect();
            let now = self.scope.now();
            if !chain::link_written(&mut self.tx, &self.keys, org, &written, now).await? {
                for statement in queue_statements(&self.events, dialect) {
                    self.tx.execute(statement).await?;
                }
                chain::link_pending_reloading(&mut self.tx, self.scope.db(), &self.keys, org, now).await?;
            }
            self.tx.commit().await
        } else {
            for statement in insert_events(&self.events, dialect, true) {
                self.tx.execute(statement).await?;
            }
            self.tx.commit().await?;
            // Linked by the background sequencer: the writer's work ends at its commit.
            super::sequencer::schedule(self.scope.db(), org);
            Ok(())
        }
    }
}

/// Records one event in a transaction of its own (operations that have no transaction of their own
/// work: a denied attempt, an application event, a key operation done in the key store).
pub(crate) async fn record_alone(scope: &Scope, event: Event) -> Result<Uuid> {
    let mut tx = AuditTx::begin(scope).await?;
    let id = tx.record(event).await?;
    tx.commit().await?;
    Ok(id)
}

/// [`record_alone`] for the event of a read (a lookup that found nothing, a read of rows fetched
/// outside the event's transaction), with a read's durability.
pub(crate) async fn record_read_alone(scope: &Scope, event: Event) -> Result<Uuid> {
    let mut tx = AuditTx::begin_read(scope).await?;
    let id = tx.record(event).await?;
    tx.commit().await?;
    Ok(id)
}

/// Records an `ACCESS_DENIED` event for a refused `action` on `table` (and the row or patient it
/// named), then returns `refusal` for the caller to propagate. Anything but `permission_denied` passes
/// through unrecorded.
pub(crate) async fn denied(
    scope: &Scope,
    table: &str,
    action: Action,
    target: Option<Uuid>,
    patient: Option<Uuid>,
    refusal: Error,
) -> Error {
    if !matches!(refusal, Error::PermissionDenied(_)) {
        return refusal;
    }
    let mut event = super::event::Event::on(AuditAction::AccessDenied, table)
        .outcome(AuditOutcome::Denied)
        .patient(patient)
        .reason(format!("attempted {}", action.as_str()));
    if let Some(id) = target {
        event = event.entity(id);
    }
    match record_alone(scope, event).await {
        Ok(_) => refusal,
        Err(e) => e,
    }
}

/// Runs an access check; when it refuses, records the refusal (see [`denied`]).
pub(crate) async fn check<T>(
    scope: &Scope,
    table: &str,
    action: Action,
    target: Option<Uuid>,
    patient: Option<Uuid>,
    result: Result<T>,
) -> Result<T> {
    match result {
        Ok(v) => Ok(v),
        Err(e) => Err(denied(scope, table, action, target, patient, e).await),
    }
}
