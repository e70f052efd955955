//! Data key rotation: a new version of an organization's or a patient's key, and the rows it covers
//! re-encrypted in resumable batches.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use austa_crypto::material::org_wrap_context;

use crate::access::{Action, Resource};
use crate::classification::{self, KeyOwner};
use crate::db::{Query, QueryBuilder, Row, RowLock, TxMode, Value};
use crate::error::{Error, Result};
use crate::kernel::{check, AuditTx, Event};
use crate::model::AuditAction;
use austa_crypto::{DataKey, KeySet};
use austa_sql::begin_on;

use super::{key_event, KeyAdmin};

/// Whose key a data key rotation replaces. Serialized as `"ORGANIZATION"` or `{"PATIENT": "<id>"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RotationTarget {
    /// The organization's key: re-encrypts organization secrets, re-wraps every patient key,
    /// recomputes every blind index.
    Organization,
    /// One patient's key: re-encrypts that patient's rows.
    Patient(Uuid),
}

/// Progress of a data key rotation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RotationStatus {
    /// The rotation's id.
    pub id: Uuid,
    /// What it rotates.
    pub target: RotationTarget,
    /// The new key version's id.
    pub new_key_id: Uuid,
    /// Whether every row has been processed.
    pub completed: bool,
    /// The table being processed (`None` once completed).
    pub current_step: Option<&'static str>,
    /// Rows processed so far.
    pub rows_done: i64,
    /// Rows to process, counted when the rotation started.
    pub rows_total: i64,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it completed.
    pub completed_at: Option<DateTime<Utc>>,
}

impl RotationStatus {
    /// Rows left, as counted at start (rows written since then already use the new key).
    pub fn remaining(&self) -> i64 {
        (self.rows_total - self.rows_done).max(0)
    }
}

/// How to run a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Rows per transaction.
    pub batch_size: u32,
    /// Stop after this many batches (the rotation stays resumable); `None`: run to completion.
    pub max_batches: Option<u32>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self { batch_size: 500, max_batches: None }
    }
}

/// The tables a rotation walks, in order. `patient_keys` (key store) comes first for an organization
/// rotation: patient keys must be wrapped by the new version before the old one could ever retire.
fn steps(target: RotationTarget) -> Vec<&'static str> {
    // Audit events are immutable (their MAC covers the ciphertext): their reasons stay under the key
    // version that sealed them, which a rotation retires but never destroys.
    let tables: Vec<&'static str> =
        classification::encrypted_tables().into_iter().filter(|t| *t != "audit_logs").collect();
    match target {
        RotationTarget::Organization => {
            let mut v = vec!["patient_keys"];
            v.extend(tables.into_iter().filter(|t| {
                classification::columns_of(t).any(|c| c.owner() == KeyOwner::Organization || c.blind_index().is_some())
            }));
            v
        }
        RotationTarget::Patient(_) => {
            tables.into_iter().filter(|t| matches!(classification::table_owner(t), KeyOwner::Patient { .. })).collect()
        }
    }
}

/// The WHERE clause selecting a step's rows (placeholders: `$1` organization, `$2` patient when any).
fn push_step_filter(q: &mut QueryBuilder, table: &str, org: Uuid, target: RotationTarget) {
    q.push(if table == "organizations" { "id = " } else { "organization_id = " }).push_bind(org);
    match (target, classification::table_owner(table)) {
        (RotationTarget::Patient(p), KeyOwner::Patient { column }) => {
            q.push(format_args!(" AND {column} = ")).push_bind(p);
        }
        (RotationTarget::Patient(_), KeyOwner::Organization) => {
            q.push(" AND 1 = 0");
        }
        _ => {}
    }
}

impl KeyAdmin<'_> {
    /// Starts a rotation: claims the subject (one running rotation per organization or patient: a
    /// second start is a `conflict` naming `rotation`), creates the new key version, and counts the
    /// rows to process. Run it with [`KeyAdmin::run_rotation`].
    pub async fn start_rotation(&self, target: RotationTarget) -> Result<RotationStatus> {
        let subject_patient = match target {
            RotationTarget::Patient(p) => Some(p),
            RotationTarget::Organization => None,
        };
        let allowed = self.scope.authorize(Resource::Keys, Action::Create);
        let table = if subject_patient.is_some() { "patients" } else { "organizations" };
        check(self.scope, table, Action::Create, None, subject_patient, allowed).await?;
        let org = self.org();
        let subject = match target {
            RotationTarget::Organization => org,
            RotationTarget::Patient(p) => {
                let keys = self.db().key_set(org, Some(p)).await?;
                keys.require_patient(p, "patient_id")?;
                p
            }
        };
        let id = Uuid::now_v7();
        let new_key_id = Uuid::now_v7();
        let mut total = 0i64;
        for step in steps(target) {
            total += self.count_step(step, target).await?;
        }
        let now = self.scope.now();
        let mut tx = AuditTx::begin(self.scope).await?;
        tx.execute(
            Query::new(
                "INSERT INTO key_rotations (organization_id, id, target, subject_id, new_key_id, status, \
                 table_position, last_id, rows_done, rows_total, started_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, 'RUNNING', 0, $6, 0, $7, $8, $8)",
            )
            .bind(org)
            .bind(id)
            .bind(if subject == org { "ORGANIZATION" } else { "PATIENT" })
            .bind(subject)
            .bind(new_key_id)
            .bind(None::<Uuid>)
            .bind(total)
            .bind(now),
        )
        .await
        .map_err(|e| match e {
            Error::Conflict { .. } => Error::Conflict { field: "rotation".into() },
            other => other,
        })?;
        tx.record(key_event(target, org, "data key rotation started").records([id])).await?;
        tx.commit().await?;
        self.ensure_new_key(target, new_key_id).await?;
        self.rotation_status(id).await
    }

    /// Checks (and records) that the scope may read key state.
    async fn check_read(&self) -> Result<()> {
        let allowed = self.scope.authorize(Resource::Keys, Action::Read);
        check(self.scope, "organizations", Action::Read, None, None, allowed).await.map(|_| ())
    }

    /// The status of a rotation.
    pub async fn rotation_status(&self, id: Uuid) -> Result<RotationStatus> {
        self.check_read().await?;
        let org = self.org();
        let mut tx = self.db().begin(Some(org), TxMode::Read).await?;
        let row = tx
            .fetch_optional(
                Query::new("SELECT * FROM key_rotations WHERE organization_id = $1 AND id = $2").bind(org).bind(id),
            )
            .await?
            .ok_or_else(|| Error::not_found("key rotation"))?;
        tx.commit().await?;
        status_from_row(&row)
    }

    /// The rotations of this organization that have not completed (at most one per subject): what an
    /// interrupted run left to resume with [`KeyAdmin::run_rotation`].
    pub async fn running_rotations(&self) -> Result<Vec<RotationStatus>> {
        self.check_read().await?;
        let org = self.org();
        let mut tx = self.db().begin(Some(org), TxMode::Read).await?;
        let rows = tx
            .fetch_all(
                Query::new(
                    "SELECT * FROM key_rotations WHERE organization_id = $1 AND status = 'RUNNING' ORDER BY started_at",
                )
                .bind(org),
            )
            .await?;
        tx.commit().await?;
        rows.iter().map(status_from_row).collect()
    }

    /// Runs (or resumes) a rotation batch by batch, calling `progress` after each batch, until it
    /// completes or `options.max_batches` batches ran. Safe to call again after a crash or from another
    /// process: each batch and its position commit together.
    pub async fn run_rotation(
        &self,
        id: Uuid,
        options: RunOptions,
        mut progress: impl FnMut(&RotationStatus),
    ) -> Result<RotationStatus> {
        check(
            self.scope,
            "organizations",
            Action::Update,
            None,
            None,
            self.scope.authorize(Resource::Keys, Action::Update),
        )
        .await?;
        if options.batch_size == 0 {
            return Err(Error::validation("batch_size", "must be at least 1"));
        }
        let mut status = self.rotation_status(id).await?;
        self.ensure_new_key(status.target, status.new_key_id).await?;
        let steps = steps(status.target);
        let mut batches = 0u32;
        while !status.completed {
            if options.max_batches.is_some_and(|max| batches >= max) {
                break;
            }
            self.run_batch(&status, &steps, options.batch_size).await?;
            batches += 1;
            status = self.rotation_status(id).await?;
            progress(&status);
        }
        Ok(status)
    }

    /// Creates the rotation's new key version if it does not exist yet (start crashed after claiming),
    /// retiring the previous active version in the same key-store transaction.
    async fn ensure_new_key(&self, target: RotationTarget, new_key_id: Uuid) -> Result<()> {
        let db = self.db();
        let org = self.org();
        // Patient keys are wrapped by the organization's active version: load it before the transaction.
        let org_keys = db.org_keys(org).await?;
        let (table, owner) = match target {
            RotationTarget::Organization => ("organization_keys", ("organization_id", org)),
            RotationTarget::Patient(p) => ("patient_keys", ("patient_id", p)),
        };
        let mut tx = begin_on(db.inner.keyring.store(), Some(org), TxMode::Write).await?;
        let lock = tx.lock(RowLock::Update);
        let versions = tx
            .fetch_all(
                Query::new(format!(
                    "SELECT id, version FROM {table} WHERE organization_id = $1 AND {} = $2{lock}",
                    owner.0
                ))
                .bind(org)
                .bind(owner.1),
            )
            .await?;
        let mut next_version = 1;
        for v in &versions {
            if v.uuid("id")? == new_key_id {
                return tx.commit().await;
            }
            next_version = next_version.max(v.int("version")? + 1);
        }
        let now = self.scope.now();
        tx.execute(
            Query::new(format!(
                "UPDATE {table} SET state = 'RETIRED', retired_at = $1 \
                 WHERE organization_id = $2 AND {} = $3 AND state = 'ACTIVE'",
                owner.0
            ))
            .bind(now)
            .bind(org)
            .bind(owner.1),
        )
        .await?;
        let key = DataKey::generate();
        let insert = match target {
            RotationTarget::Organization => {
                db.keyring().check_master_key_in(&mut tx).await?;
                let wrapped = db.inner.keyring.provider().wrap(&key, &org_wrap_context(org, new_key_id))?;
                Query::new(
                    "INSERT INTO organization_keys (organization_id, id, version, wrapped_key, state, created_at) \
                     VALUES ($1, $2, $3, $4, 'ACTIVE', $5)",
                )
                .bind(org)
                .bind(new_key_id)
                .bind(next_version)
                .bind(wrapped)
                .bind(now)
            }
            RotationTarget::Patient(p) => {
                let (wrapping_key_id, wrapped) = org_keys.wrap_patient_key(p, new_key_id, &key)?;
                Query::new(
                    "INSERT INTO patient_keys (organization_id, id, patient_id, version, wrapped_key, \
                     wrapping_key_id, state, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'ACTIVE', $7)",
                )
                .bind(org)
                .bind(new_key_id)
                .bind(p)
                .bind(next_version)
                .bind(wrapped)
                .bind(wrapping_key_id)
                .bind(now)
            }
        };
        tx.execute(insert).await?;
        tx.commit().await?;
        db.inner.keyring.invalidate_organization(org);
        Ok(())
    }

    async fn count_step(&self, table: &str, target: RotationTarget) -> Result<i64> {
        let org = self.org();
        let (pool, query) = if table == "patient_keys" {
            let sql = "SELECT COUNT(*) AS n FROM patient_keys WHERE organization_id = $1 AND state <> 'DESTROYED'";
            (self.db().inner.keyring.store(), Query::new(sql).bind(org))
        } else {
            let mut q = QueryBuilder::new(format!("SELECT COUNT(*) AS n FROM {table} WHERE "));
            push_step_filter(&mut q, table, org, target);
            (&self.db().inner.pool, q.build())
        };
        let mut tx = begin_on(pool, Some(org), TxMode::Read).await?;
        let n = tx.fetch_optional(query).await?.map(|r| r.int("n")).transpose()?;
        tx.commit().await?;
        Ok(n.unwrap_or(0))
    }

    /// One batch of the current step; advances the position in the same transaction.
    async fn run_batch(&self, status: &RotationStatus, steps: &[&'static str], batch: u32) -> Result<()> {
        let org = self.org();
        let (position, last_id) = self.position(status.id).await?;
        let Some(table) = steps.get(position).copied() else {
            return self.complete(status).await;
        };
        if table == "patient_keys" {
            let (done, last) = self.rewrap_patient_keys(last_id, batch).await?;
            return self.advance(status.id, position, last, done).await;
        }
        // Read the batch's ids and owners first, load their keys, then lock and rewrite them.
        let owner_col = match classification::table_owner(table) {
            KeyOwner::Patient { column } => column,
            KeyOwner::Organization => "id",
        };
        let mut q = QueryBuilder::new(format!("SELECT id, {owner_col} AS owner FROM {table} WHERE "));
        push_step_filter(&mut q, table, org, status.target);
        if let Some(last_id) = last_id {
            q.push(" AND id > ").push_bind(last_id);
        }
        q.push(" ORDER BY id LIMIT ").push_bind(i64::from(batch));
        let mut tx = self.db().begin(Some(org), TxMode::Read).await?;
        let rows = tx.fetch_all(q.build()).await?;
        tx.commit().await?;
        if rows.is_empty() {
            return self.advance(status.id, position, None, 0).await;
        }
        let owners: Vec<Uuid> = rows.iter().map(|r| r.uuid("owner")).collect::<Result<_>>()?;
        let is_patient_table = matches!(classification::table_owner(table), KeyOwner::Patient { .. });
        let keys = self.db().key_set(org, if is_patient_table { owners.clone() } else { Vec::new() }).await?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.uuid("id")).collect::<Result<_>>()?;
        let mut tx = AuditTx::begin(self.scope).await?;
        let lock = tx.lock(RowLock::Update);
        let id_col = if table == "organizations" { "id" } else { "organization_id" };
        let mut select = QueryBuilder::new(format!("SELECT * FROM {table} WHERE {id_col} = "));
        select.push_bind(org).push(" AND id IN (").push_binds(ids.iter().copied()).push(")").push(lock);
        let locked = tx.fetch_all(select.build()).await?;
        for row in &locked {
            if let Some(update) = reencrypt_row(&keys, table, status.target, row)? {
                tx.execute(update).await?;
            }
        }
        let last = ids.last().copied();
        tx.execute(advance_query(org, status.id, position, last, ids.len() as i64, self.scope.now())).await?;
        // The batch read and rewrote these rows' encrypted fields: recorded as one update.
        let event = Event::on(AuditAction::Update, table)
            .records(ids.iter().copied())
            .patients(if is_patient_table { owners } else { Vec::new() })
            .changed(classification::columns_of(table).map(|c| c.column))
            .reason("data key rotation: re-encryption");
        tx.record(event).await?;
        tx.commit().await
    }

    /// Re-wraps a batch of the organization's patient keys under its active key version.
    async fn rewrap_patient_keys(&self, after: Option<Uuid>, batch: u32) -> Result<(i64, Option<Uuid>)> {
        let org = self.org();
        let db = self.db();
        db.inner.keyring.invalidate_organization(org);
        let org_keys = db.org_keys(org).await?;
        let mut tx = begin_on(db.inner.keyring.store(), Some(org), TxMode::Write).await?;
        let lock = tx.lock(RowLock::Update);
        let rows = tx
            .fetch_all(
                Query::new(format!(
                    "SELECT id, patient_id, wrapped_key, wrapping_key_id FROM patient_keys \
                     WHERE organization_id = $1 AND state <> 'DESTROYED' AND ($2 IS NULL OR id > $2) \
                     ORDER BY id LIMIT $3{lock}"
                ))
                .bind(org)
                .bind(after)
                .bind(i64::from(batch)),
            )
            .await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok((0, None));
        }
        let active = org_keys.active()?.id;
        for r in &rows {
            let (id, patient) = (r.uuid("id")?, r.uuid("patient_id")?);
            let wrapping = r.uuid("wrapping_key_id")?;
            if wrapping == active {
                continue;
            }
            let wrapped = r.opt_bytes("wrapped_key")?.unwrap_or_default();
            let key = org_keys.unwrap_patient_key(patient, id, wrapping, &wrapped)?;
            let (new_wrapping, rewrapped) = org_keys.wrap_patient_key(patient, id, &key)?;
            tx.execute(
                Query::new(
                    "UPDATE patient_keys SET wrapped_key = $1, wrapping_key_id = $2 \
                     WHERE organization_id = $3 AND id = $4",
                )
                .bind(rewrapped)
                .bind(new_wrapping)
                .bind(org)
                .bind(id),
            )
            .await?;
        }
        tx.commit().await?;
        Ok((rows.len() as i64, rows.last().map(|r| r.uuid("id")).transpose()?))
    }

    async fn position(&self, id: Uuid) -> Result<(usize, Option<Uuid>)> {
        let org = self.org();
        let mut tx = self.db().begin(Some(org), TxMode::Read).await?;
        let row = tx
            .fetch_optional(
                Query::new("SELECT table_position, last_id FROM key_rotations WHERE organization_id = $1 AND id = $2")
                    .bind(org)
                    .bind(id),
            )
            .await?
            .ok_or_else(|| Error::not_found("key rotation"))?;
        tx.commit().await?;
        Ok((usize::try_from(row.int("table_position")?).unwrap_or(usize::MAX), row.opt_uuid("last_id")?))
    }

    /// Records progress of a step that ran outside the data transaction (`last = None`: the step is
    /// finished, move to the next one).
    async fn advance(&self, id: Uuid, position: usize, last: Option<Uuid>, done: i64) -> Result<()> {
        let org = self.org();
        let mut tx = self.db().begin(Some(org), TxMode::Write).await?;
        tx.execute(advance_query(org, id, position, last, done, self.scope.now())).await?;
        tx.commit().await
    }

    /// Marks the rotation completed, recording it in the same transaction.
    async fn complete(&self, status: &RotationStatus) -> Result<()> {
        let org = self.org();
        let now = self.scope.now();
        let mut tx = AuditTx::begin(self.scope).await?;
        let n = tx
            .execute(
                Query::new(
                    "UPDATE key_rotations SET status = 'COMPLETED', completed_at = $1, updated_at = $1 \
                     WHERE organization_id = $2 AND id = $3 AND status = 'RUNNING'",
                )
                .bind(now)
                .bind(org)
                .bind(status.id),
            )
            .await?;
        if n == 0 {
            return Ok(()); // completed by another run meanwhile: nothing written, nothing to record
        }
        tx.record(key_event(status.target, org, "data key rotation completed").records([status.id])).await?;
        tx.commit().await
    }
}

fn advance_query(org: Uuid, id: Uuid, position: usize, last: Option<Uuid>, done: i64, now: DateTime<Utc>) -> Query {
    // A step that returned no rows (`last == None`) is finished: move to the next one.
    let next_position = if last.is_none() { position as i64 + 1 } else { position as i64 };
    Query::new(
        "UPDATE key_rotations SET table_position = $1, last_id = $2, rows_done = rows_done + $3, updated_at = $4 \
         WHERE organization_id = $5 AND id = $6",
    )
    .bind(next_position)
    .bind(last)
    .bind(done)
    .bind(now)
    .bind(org)
    .bind(id)
}

/// The UPDATE that re-encrypts one row for a rotation, or `None` when nothing changes (an erased
/// patient's row, whose keys are gone).
fn reencrypt_row(keys: &KeySet, table: &'static str, target: RotationTarget, row: &Row) -> Result<Option<Query>> {
    let id = row.uuid("id")?;
    let patient = match classification::table_owner(table) {
        KeyOwner::Patient { column } => Some(row.uuid(column)?),
        KeyOwner::Organization => None,
    };
    if patient.is_some_and(|p| keys.patients.get(&p).is_none_or(|k| k.destroyed())) {
        return Ok(None);
    }
    let mut sets: Vec<(String, Value)> = Vec::new();
    for c in classification::columns_of(table) {
        let owned_by_target = match target {
            RotationTarget::Organization => c.owner() == KeyOwner::Organization,
            RotationTarget::Patient(_) => c.owner() != KeyOwner::Organization,
        };
        let Some(env) = row.opt_bytes(c.column)? else { continue };
        let crypto = keys.row(table, id, if c.owner() == KeyOwner::Organization { None } else { patient })?;
        let plain = crypto.open(c.column, &env)?.ok_or(Error::Erased)?;
        if owned_by_target {
            sets.push((c.column.to_string(), Value::Bytes(Some(crypto.seal(c.column, &plain)?))));
        }
        if let (RotationTarget::Organization, Some(kind)) = (target, c.blind_index()) {
            let normalized = String::from_utf8(plain.to_vec())
                .map_err(|_| Error::CorruptData(format!("{table}.{} is not text", c.column)))?;
            sets.push((format!("{}_bidx", c.column), crypto.blind(kind, &normalized)?));
        }
    }
    if sets.is_empty() {
        return Ok(None);
    }
    let mut q = QueryBuilder::new(format!("UPDATE {table} SET "));
    q.push_assignments(sets).push(" WHERE ");
    if table != "organizations" {
        q.push("organization_id = ").push_bind(keys.org.organization).push(" AND ");
    }
    q.push("id = ").push_bind(id);
    Ok(Some(q.build()))
}

fn status_from_row(row: &Row) -> Result<RotationStatus> {
    let target = match row.text("target")?.as_str() {
        "ORGANIZATION" => RotationTarget::Organization,
        _ => RotationTarget::Patient(row.uuid("subject_id")?),
    };
    let completed = row.text("status")? == "COMPLETED";
    let position = usize::try_from(row.int("table_position")?).unwrap_or(usize::MAX);
    Ok(RotationStatus {
        id: row.uuid("id")?,
        target,
        new_key_id: row.uuid("new_key_id")?,
        completed,
        current_step: if completed { None } else { steps(target).get(position).copied() },
        rows_done: row.int("rows_done")?,
        rows_total: row.int("rows_total")?,
        started_at: row.time("started_at")?,
        completed_at: row.opt_time("completed_at")?,
    })
}
