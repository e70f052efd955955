//! Generic SQL for [`Model`]s: insert, get, update, soft delete, filtered listings.
//!
//! Every operation gathers the keys it needs first (the organization's, plus those of the patients
//! whose rows it touches), never while holding a transaction, then runs one [`AuditTx`]: the work and
//! its audit event commit together. Rows are decoded after their transaction commits, with the keys of
//! exactly the patients they belong to. A refused operation records `ACCESS_DENIED` and touches
//! nothing.

use uuid::Uuid;

use super::{Model, Updatable};
use crate::access::{Action, Resource};
use crate::classification::KeyOwner;
use crate::db::{Filter, IntoValue, Query, QueryBuilder, Row, RowLock, Tx, TxMode, Value};
use crate::error::{CryptoErrorKind, Error, Result, RowError};
use crate::kernel::event::{patient_column, read_event, update_action};
use crate::kernel::outbox::OutboxOperation;
use crate::kernel::Record;
use crate::kernel::{check, AuditTx, Event};
use crate::model::AuditAction;
use crate::page::{Cursor, Page, PageRequest};
use crate::scope::Scope;
use austa_crypto::{BlindIndexKind, KeySet};

fn live_filter<M: Model>() -> &'static str {
    if M::SOFT_DELETE {
        " AND deleted_at IS NULL"
    } else {
        ""
    }
}

/// How many rows a bulk loop works through before it yields to the runtime.
const ROWS_PER_YIELD: usize = 64;

/// Yields to the tokio runtime once every [`ROWS_PER_YIELD`] rows of a bulk loop.
///
/// Why: validating and encrypting a batch of a thousand rows is tens of milliseconds of CPU with no
/// `.await` in it. Without a yield it would hold a runtime worker throughout, and every other task
/// queued on that worker (other requests of a service, the audit sequencer) would wait for it.
pub(crate) async fn yield_periodically(row: usize) {
    if row % ROWS_PER_YIELD == ROWS_PER_YIELD - 1 {
        tokio::task::yield_now().await;
    }
}

/// The patient whose key encrypts `row` of `M`, per the classification.
fn row_owner<M: Model>(row: &Row) -> Result<Option<Uuid>> {
    match M::KEY_OWNER {
        KeyOwner::Organization => Ok(None),
        KeyOwner::Patient { column } => row.uuid(column).map(Some),
    }
}

/// The patient whose key encrypts `model`; a patient-owned model without one is a programming error.
fn model_owner<M: Model>(model: &M) -> Result<Option<Uuid>> {
    match (M::KEY_OWNER, model.owner_patient()) {
        (KeyOwner::Organization, _) => Ok(None),
        (KeyOwner::Patient { .. }, Some(p)) => Ok(Some(p)),
        (KeyOwner::Patient { .. }, None) => Err(Error::CorruptData(format!("{} row without its patient", M::TABLE))),
    }
}

/// Decodes a row of `M`, decrypting under its owner's key (which `keys` must hold).
pub(crate) fn decode<M: Model>(keys: &KeySet, row: &Row) -> Result<M> {
    let id = row.uuid("id")?;
    M::from_row(row, &keys.row(M::TABLE, id, row_owner::<M>(row)?)?)
}

/// Decodes rows of `M`, loading the keys of the patients they belong to in one go.
pub(crate) async fn decode_rows<M: Model>(scope: &Scope, rows: &[Row]) -> Result<Vec<M>> {
    let owners = rows.iter().map(row_owner::<M>).collect::<Result<Vec<_>>>()?;
    let keys = scope.db().key_set(scope.organization_id(), owners.into_iter().flatten()).await?;
    match rows.iter().map(|r| decode(&keys, r)).collect() {
        Err(e) if is_unknown_key(&e) => match scope.db().refresh_key_set(&keys).await? {
            Some(fresh) => rows.iter().map(|r| decode(&fresh, r)).collect(),
            None => Err(e),
        },
        decoded => decoded,
    }
}

/// A ciphertext names a key version the cached keys lack: maybe one created by a rotation that another
/// process started, in which case `Database::refresh_key_set` finds it.
pub(crate) fn is_unknown_key(e: &Error) -> bool {
    matches!(e, Error::Crypto { kind: CryptoErrorKind::UnknownKey, .. })
}

/// The keys needed to write `model`: fails with `validation` on `patient_id` when the model belongs to
/// a patient that has no keys in this organization (a missing patient, or another organization's), and
/// with `erased` when that patient was crypto-shredded.
pub(crate) async fn keys_for<M: Model>(scope: &Scope, model: &M) -> Result<KeySet> {
    let owner = model_owner(model)?;
    let keys = scope.db().key_set(scope.organization_id(), owner).await?;
    if let Some(p) = owner {
        keys.require_patient(p, "patient_id")?;
    }
    Ok(keys)
}

/// Timestamps must fall in years 1900 to 9999: beyond them SQLite's fixed-width text form would no
/// longer sort in time order, and no clinical record is dated outside them.
fn check_times(columns: &[(&'static str, Value)]) -> Result<()> {
    use chrono::Datelike;
    for (name, value) in columns {
        if let Value::Time(Some(t)) = value {
            if !(1900..=9999).contains(&t.year()) {
                return Err(Error::validation(*name, "must be between the years 1900 and 9999"));
            }
        }
    }
    Ok(())
}

/// Column names an audit event lists as written: the model's fields, without keys and bookkeeping.
fn audited_column(name: &str) -> bool {
    !matches!(name, "id" | "organization_id" | "created_at" | "updated_at") && !name.ends_with("_bidx")
}

/// The `CREATE` event of inserting `columns` as row `id` of `M`.
fn create_event<M: Model>(id: Uuid, columns: &[(&'static str, Value)]) -> Event {
    let patient = match patient_column(M::TABLE) {
        Some("id") => Some(id),
        Some(column) => columns.iter().find_map(|(n, v)| match v {
            Value::Uuid(Some(p)) if *n == column => Some(*p),
            _ => None,
        }),
        None => None,
    };
    let written = columns.iter().filter(|(n, v)| audited_column(n) && !v.is_null()).map(|(n, _)| *n);
    Event::on(AuditAction::Create, M::TABLE).entity(id).records([id]).patient(patient).changed(written)
}

/// The names of the fields that differ between two versions of a row, compared on plaintext
/// fingerprints (ciphertexts differ on every write).
pub(crate) fn changed_fields<M: Model>(
    keys: &KeySet,
    before: &[(&'static str, Value)],
    after: &M,
) -> Result<Vec<&'static str>> {
    let after = after.columns(&keys.fingerprint_row(M::TABLE, after.id(), model_owner(after)?)?)?;
    Ok(after
        .iter()
        .filter(|(n, v)| audited_column(n) && before.iter().find(|(b, _)| b == n).is_none_or(|(_, bv)| bv != v))
        .map(|(n, _)| *n)
        .collect())
}

/// Fingerprints of a row's columns, to compare with [`changed_fields`] after a change.
pub(crate) fn fingerprints<M: Model>(keys: &KeySet, model: &M) -> Result<Vec<(&'static str, Value)>> {
    model.columns(&keys.fingerprint_row(M::TABLE, model.id(), model_owner(model)?)?)
}

/// The INSERT statement for `model`, and the audit event describing it.
pub(crate) fn insert_query<M: Model>(keys: &KeySet, organization: Uuid, model: &M) -> Result<(Query, Event)> {
    let columns = model.columns(&keys.row(M::TABLE, model.id(), model_owner(model)?)?)?;
    check_times(&columns)?;
    let event = create_event::<M>(model.id(), &columns);
    Ok((insert_row_query::<M>(organization, columns), event))
}

/// While an organization key rotation runs, rows are indexed under two key versions at once, and each
/// unique index only sees one of them. Before writing a row with identifiers, look for another row
/// indexed under any live version. Open conversations per chat are not covered (their uniqueness is a
/// partial index on status); documented in docs/decisions.md.
pub(crate) async fn check_identifiers<M: Model>(
    tx: &mut Tx,
    keys: &KeySet,
    organization: Uuid,
    model: &M,
) -> Result<()> {
    if !keys.several_org_versions() || M::TABLE == "conversations" {
        return Ok(());
    }
    let running = tx
        .fetch_optional(
            Query::new(
                "SELECT id FROM key_rotations WHERE organization_id = $1 AND subject_id = $1 AND status = 'RUNNING'",
            )
            .bind(organization),
        )
        .await?;
    if running.is_none() {
        return Ok(());
    }
    let recorded = std::cell::RefCell::new(Vec::new());
    model.columns(&keys.recording_row(M::TABLE, model.id(), model_owner(model)?, &recorded)?)?;
    for (kind, normalized) in recorded.into_inner() {
        let Some(column) = crate::classification::columns_of(M::TABLE).find(|c| c.blind_index() == Some(kind)) else {
            continue;
        };
        let mut q = QueryBuilder::new(format!("SELECT id FROM {} WHERE organization_id = ", M::TABLE));
        q.push_bind(organization).push(" AND id <> ").push_bind(model.id());
        q.push(format_args!(" AND {}_bidx IN (", column.column)).push_binds(keys.blinds(kind, &normalized));
        q.push(") LIMIT 1");
        if tx.fetch_optional(q.build()).await?.is_some() {
            return Err(Error::Conflict { field: column.column.to_string() });
        }
    }
    Ok(())
}

/// Checks identifiers (see [`check_identifiers`]) and inserts `model` inside `tx`; returns the audit
/// event for the caller to record in the same transaction.
pub(crate) async fn insert_in<M: Model>(tx: &mut Tx, keys: &KeySet, organization: Uuid, model: &M) -> Result<Event> {
    check_identifiers(tx, keys, organization, model).await?;
    let (query, event) = insert_query(keys, organization, model)?;
    tx.execute(query).await?;
    Ok(event)
}

/// Fails with `permission_denied` unless the scope may create `model` (a patient only their own) with
/// the values of its access-controlled fields ([`Model::authorize_fields`]).
pub(crate) fn authorize_create<M: Model>(scope: &Scope, model: &M) -> Result<()> {
    let resource = Resource::of_table(M::TABLE).ok_or_else(|| Error::PermissionDenied(M::TABLE.into()))?;
    match model_owner(model)? {
        Some(patient) => scope.authorize_patient(resource, Action::Create, patient)?,
        None => scope.authorize(resource, Action::Create).map(|_| ())?,
    }
    model.authorize_fields(scope, Action::Create, None)
}

/// [`authorize_create`], recording a refusal.
pub(crate) async fn check_create<M: Model>(scope: &Scope, model: &M) -> Result<()> {
    let patient = model_owner(model).ok().flatten();
    check(scope, M::TABLE, Action::Create, None, patient, authorize_create(scope, model)).await
}

/// A write aimed at a row the actor cannot reach (absent, soft-deleted, another patient's, above the
/// actor's access level): recorded as a `NOT_FOUND` attempt in a transaction of its own, like a read
/// probe; returns the `not_found` error for the caller.
pub(crate) async fn missing<M: Model>(scope: &Scope, action: Action, id: Uuid) -> Error {
    let audit_action = match action {
        Action::Read => AuditAction::Read,
        Action::Create => AuditAction::Create,
        Action::Update => update_action(M::TABLE),
        Action::Delete => AuditAction::Delete,
    };
    let event = Event::on(audit_action, M::TABLE).entity(id).outcome(crate::model::AuditOutcome::NotFound);
    match crate::kernel::record_alone(scope, event).await {
        Ok(_) => Error::not_found(M::ENTITY),
        Err(e) => e,
    }
}

/// [`Scope::row_filter`], recording a refusal.
pub(crate) async fn access<M: Model>(scope: &Scope, action: Action, target: Option<Uuid>) -> Result<String> {
    check(scope, M::TABLE, action, target, None, scope.row_filter(M::TABLE, action)).await
}

/// Inserts `model` in its own transaction (creating the patient's key first for a new patient).
pub(crate) async fn insert<M: Model>(scope: &Scope, model: &M) -> Result<()> {
    let org = scope.organization_id();
    check_create(scope, model).await?;
    if M::CREATES_PATIENT_KEY {
        scope.db().create_patient_key(org, model.id()).await?;
    }
    let keys = keys_for(scope, model).await?;
    let mut tx = AuditTx::begin(scope).await?;
    let event = insert_in(&mut tx, &keys, org, model).await?;
    to_tasy::<M>(&mut tx, org, model.id(), OutboxOperation::Upsert).await?;
    tx.record(event).await?;
    tx.commit().await
}

/// Most digests in one `IN` list of the batch uniqueness check.
const MAX_DIGESTS_PER_QUERY: usize = 500;

/// Inserts a batch of built models in one transaction: the dialect's multi-row inserts, one Tasy
/// outbox entry per row where the table syncs, and one `CREATE` audit event for the batch. Rows the
/// actor may not create, rows of unknown patients and rows with out-of-range times are reported
/// together, by position, as [`Error::Batch`], and nothing is written.
pub(crate) async fn insert_many<M: Model>(scope: &Scope, models: &[M]) -> Result<()> {
    let org = scope.organization_id();
    let mut errors = Vec::new();
    for (row, model) in models.iter().enumerate() {
        if let Err(error) = authorize_create(scope, model) {
            errors.push(RowError { row, error });
        }
    }
    if let Some(first) = errors.first() {
        let patient = model_owner(&models[first.row]).ok().flatten();
        let refusal = Error::PermissionDenied(M::TABLE.into());
        if let Err(e) = check::<()>(scope, M::TABLE, Action::Create, None, patient, Err(refusal)).await {
            if !matches!(e, Error::PermissionDenied(_)) {
                return Err(e);
            }
        }
        return Err(Error::Batch(errors));
    }
    if M::CREATES_PATIENT_KEY {
        scope.db().create_patient_keys(org, models.iter().map(Record::id)).await?;
    }
    let owners = models.iter().map(model_owner).collect::<Result<Vec<_>>>()?;
    let keys = scope.db().key_set(org, owners.iter().flatten().copied()).await?;
    let mut rows = Vec::with_capacity(models.len());
    for (row, (model, owner)) in models.iter().zip(&owners).enumerate() {
        yield_periodically(row).await;
        let columns = owner
            .map_or(Ok(()), |p| keys.require_patient(p, "patient_id"))
            .and_then(|()| model.columns(&keys.row(M::TABLE, model.id(), *owner)?))
            .and_then(|columns| check_times(&columns).map(|()| columns));
        match columns {
            Ok(columns) => rows.push(columns),
            Err(error) => errors.push(RowError { row, error }),
        }
    }
    if !errors.is_empty() {
        return Err(Error::Batch(errors));
    }
    let mut event = Event::on(AuditAction::Create, M::TABLE).count(models.len() as i64);
    for (model, columns) in models.iter().zip(&rows) {
        let one = create_event::<M>(model.id(), columns);
        event = event.records(one.records).patients(one.patients).changed(one.changed);
    }
    let mut tx = AuditTx::begin(scope).await?;
    check_batch_uniqueness(&mut tx, M::TABLE, org, &rows).await?;
    for (row, model) in models.iter().enumerate() {
        check_identifiers(&mut tx, &keys, org, model).await.map_err(|error| match error {
            Error::Conflict { .. } => Error::Batch(vec![RowError { row, error }]),
            other => other,
        })?;
    }
    let names: Vec<&str> =
        std::iter::once("organization_id").chain(rows.first().into_iter().flatten().map(|(n, _)| *n)).collect();
    let values = rows
        .into_iter()
        .map(|columns| std::iter::once(org.into_value()).chain(columns.into_iter().map(|(_, v)| v)).collect())
        .collect();
    for statement in tx.dialect().insert_rows(M::TABLE, &names, values) {
        tx.execute(statement).await?;
    }
    if let Some(entity) = crate::kernel::outbox::entity_of(M::TABLE) {
        let ids: Vec<Uuid> = models.iter().map(Record::id).collect();
        crate::kernel::outbox::enqueue_created_in(&mut tx, org, entity, &ids).await?;
    }
    tx.record(event).await?;
    tx.commit().await
}

/// The blind-index columns under a unique index per organization (see the migrations).
fn unique_blind_columns(table: &str) -> &'static [&'static str] {
    match table {
        "patients" => &["phone_bidx", "cpf_bidx", "email_bidx", "whatsapp_id_bidx"],
        "providers" => &["email_bidx"],
        _ => &[],
    }
}

/// Finds the rows of a batch whose unique identifiers are taken, by a stored row (deleted ones
/// included, as the index does) or by an earlier row of the batch, so that the batch error names each
/// row and field instead of the database's first unique violation. One query per unique column per
/// 500 rows.
async fn check_batch_uniqueness(
    tx: &mut Tx,
    table: &str,
    organization: Uuid,
    rows: &[Vec<(&'static str, Value)>],
) -> Result<()> {
    let mut errors = Vec::new();
    for column in unique_blind_columns(table) {
        let field = column.trim_end_matches("_bidx");
        let mut first_use = std::collections::HashMap::new();
        let mut candidates = Vec::new();
        for (row, columns) in rows.iter().enumerate() {
            let digest = columns.iter().find_map(|(name, value)| match value {
                Value::Bytes(Some(digest)) if name == column => Some(digest.as_slice()),
                _ => None,
            });
            if let Some(digest) = digest {
                if first_use.insert(digest, row).is_some() {
                    errors.push(RowError { row, error: Error::Conflict { field: field.into() } });
                } else {
                    candidates.push((row, digest));
                }
            }
        }
        for chunk in candidates.chunks(MAX_DIGESTS_PER_QUERY) {
            let mut q = QueryBuilder::new(format!("SELECT {column} AS digest FROM {table} WHERE organization_id = "));
            q.push_bind(organization).push(format_args!(" AND {column} IN ("));
            q.push_binds(chunk.iter().map(|(_, d)| d.to_vec())).push(")");
            let query = q.build();
            let mut taken = std::collections::HashSet::new();
            for found in tx.fetch_all(query).await? {
                if let Some(digest) = found.opt_bytes("digest")? {
                    taken.insert(digest);
                }
            }
            for (row, digest) in chunk {
                if taken.contains(*digest) {
                    errors.push(RowError { row: *row, error: Error::Conflict { field: field.into() } });
                }
            }
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    errors.sort_by_key(|e| e.row);
    Err(Error::Batch(errors))
}

/// The INSERT of one row (`organization_id` first, then the model's columns in order).
fn insert_row_query<M: Model>(organization: Uuid, columns: Vec<(&'static str, Value)>) -> Query {
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    let mut q = QueryBuilder::new(format!("INSERT INTO {} (organization_id, {}) VALUES ", M::TABLE, names.join(", ")));
    q.push_tuple(std::iter::once(organization.into_value()).chain(columns.into_iter().map(|(_, v)| v)));
    q.build()
}

/// Queues the change for the Tasy ERP in the same transaction, for the tables that sync there.
pub(crate) async fn to_tasy<M: Model>(
    tx: &mut AuditTx<'_>,
    org: Uuid,
    id: Uuid,
    operation: OutboxOperation,
) -> Result<()> {
    if let Some(entity) = crate::kernel::outbox::entity_of(M::TABLE) {
        crate::kernel::outbox::enqueue_in(tx, org, entity, id, operation).await?;
    }
    Ok(())
}

/// Reads one live row of `M` by id inside `tx`, optionally locking it; `keys` must hold its owner's.
pub(crate) async fn get_in<M: Model>(
    tx: &mut Tx,
    keys: &KeySet,
    organization: Uuid,
    id: Uuid,
    access: &str,
    lock: bool,
) -> Result<M> {
    let lock = if lock { tx.lock(RowLock::Update) } else { "" };
    let sql = format!(
        "SELECT * FROM {} WHERE organization_id = $1 AND id = $2{}{access}{lock}",
        M::TABLE,
        live_filter::<M>()
    );
    let row = tx
        .fetch_optional(Query::new(sql).bind(organization).bind(id))
        .await?
        .ok_or_else(|| Error::not_found(M::ENTITY))?;
    decode(keys, &row)
}

/// Reads one live row of `M` by id.
pub(crate) async fn get<M: Model>(scope: &Scope, id: Uuid) -> Result<M> {
    let org = scope.organization_id();
    let access = access::<M>(scope, Action::Read, Some(id)).await?;
    let sql =
        format!("SELECT * FROM {} WHERE organization_id = $1 AND id = $2{}{access}", M::TABLE, live_filter::<M>());
    let mut tx = AuditTx::begin_read(scope).await?;
    let row = tx.fetch_optional(Query::new(sql).bind(org).bind(id)).await?;
    tx.record(read_event(M::TABLE, row.as_slice(), Some(id))?).await?;
    tx.commit().await?;
    let row = row.ok_or_else(|| Error::not_found(M::ENTITY))?;
    decode_rows(scope, std::slice::from_ref(&row)).await?.pop().ok_or_else(|| Error::not_found(M::ENTITY))
}

/// The keys needed to rewrite the live row `id` of `M` (its owner's), or `not_found`.
pub(crate) async fn keys_for_row<M: Model>(scope: &Scope, id: Uuid, action: Action) -> Result<(KeySet, Option<Uuid>)> {
    let org = scope.organization_id();
    let access = access::<M>(scope, action, Some(id)).await?;
    let owner = match M::KEY_OWNER {
        KeyOwner::Organization => None,
        KeyOwner::Patient { column } => {
            let sql = format!(
                "SELECT {column} FROM {} WHERE organization_id = $1 AND id = $2{}{access}",
                M::TABLE,
                live_filter::<M>()
            );
            let mut tx = scope.db().begin(Some(org), TxMode::Read).await?;
            let row = tx.fetch_optional(Query::new(sql).bind(org).bind(id)).await?;
            tx.commit().await?;
            match row {
                Some(row) => Some(row.uuid(column)?),
                None => return Err(missing::<M>(scope, action, id).await),
            }
        }
    };
    Ok((scope.db().key_set(org, owner).await?, owner))
}

/// The `UPDATE` (or `CONFIG_CHANGE`) event of rewriting row `model` with `changed` fields.
pub(crate) fn update_event<M: Model>(model: &M, changed: Vec<&'static str>, patient: Option<Uuid>) -> Event {
    let id = model.id();
    let patient = if M::TABLE == "patients" { Some(id) } else { patient };
    Event::on(update_action(M::TABLE), M::TABLE).entity(id).records([id]).patient(patient).changed(changed)
}

/// The UPDATE statement writing every column of `model` (except its id and creation time).
pub(crate) fn update_query<M: Model>(keys: &KeySet, organization: Uuid, model: &M) -> Result<Query> {
    let columns: Vec<(&str, Value)> = model
        .columns(&keys.row(M::TABLE, model.id(), model_owner(model)?)?)?
        .into_iter()
        .filter(|(n, _)| *n != "id" && *n != "created_at")
        .collect();
    check_times(&columns)?;
    let mut q = QueryBuilder::new(format!("UPDATE {} SET ", M::TABLE));
    q.push_assignments(columns).push(" WHERE organization_id = ").push_bind(organization);
    q.push(" AND id = ").push_bind(model.id()).push(live_filter::<M>());
    Ok(q.build())
}

/// Writes every column of an already-loaded model back inside `tx`; `not_found` if no live row.
pub(crate) async fn write_in<M: Model>(tx: &mut Tx, keys: &KeySet, organization: Uuid, model: &M) -> Result<()> {
    check_identifiers(tx, keys, organization, model).await?;
    let affected = tx.execute(update_query(keys, organization, model)?).await?;
    if affected == 0 {
        return Err(Error::not_found(M::ENTITY));
    }
    Ok(())
}

/// Loads, patches and writes back one row in one transaction.
pub(crate) async fn update<M: Updatable>(scope: &Scope, id: Uuid, patch: M::Patch) -> Result<M> {
    let org = scope.organization_id();
    let (mut keys, owner) = keys_for_row::<M>(scope, id, Action::Update).await?;
    let access = scope.row_filter(M::TABLE, Action::Update)?;
    let mut tx = AuditTx::begin(scope).await?;
    let found = match get_in(&mut tx, &keys, org, id, &access, true).await {
        Err(e) if is_unknown_key(&e) => {
            drop(tx); // never wait for the key store while holding a transaction
            keys = scope.db().refresh_key_set(&keys).await?.ok_or(e)?;
            tx = AuditTx::begin(scope).await?;
            get_in(&mut tx, &keys, org, id, &access, true).await
        }
        got => got,
    };
    let mut model: M = match found {
        Err(Error::NotFound { .. }) => {
            drop(tx);
            return Err(missing::<M>(scope, Action::Update, id).await);
        }
        other => other?,
    };
    if model_owner(&model)? != owner {
        // The owner column never changes; a mismatch means the row was replaced under us.
        return Err(Error::not_found(M::ENTITY));
    }
    let before = fingerprints(&keys, &model)?;
    let stored = model.clone();
    model.apply(patch, scope.now())?;
    if let Err(refusal) = model.authorize_fields(scope, Action::Update, Some(&stored)) {
        drop(tx); // the refusal is recorded in a transaction of its own
        return check(scope, M::TABLE, Action::Update, Some(id), row_patient::<M>(&before, owner), Err(refusal)).await;
    }
    let changed = changed_fields(&keys, &before, &model)?;
    write_in(&mut tx, &keys, org, &model).await?;
    to_tasy::<M>(&mut tx, org, id, OutboxOperation::Upsert).await?;
    tx.record(update_event(&model, changed, row_patient::<M>(&before, owner))).await?;
    tx.commit().await?;
    Ok(model)
}

/// The patient a row is about, for its audit event: its key owner, or the patient column among its
/// (fingerprinted) columns for organization-keyed models such as points and onboarding.
fn row_patient<M: Model>(columns: &[(&'static str, Value)], owner: Option<Uuid>) -> Option<Uuid> {
    owner.or_else(|| {
        let column = patient_column(M::TABLE)?;
        columns.iter().find_map(|(n, v)| match v {
            Value::Uuid(Some(p)) if *n == column => Some(*p),
            _ => None,
        })
    })
}

/// Brings a soft-deleted row back (a returning patient keeps their identifiers and history).
pub(crate) async fn restore<M: Model>(scope: &Scope, id: Uuid) -> Result<()> {
    let access = access::<M>(scope, Action::Update, Some(id)).await?;
    set_deleted::<M>(scope, id, &access, false).await
}

/// Sets or clears `deleted_at` of row `id` (live rows for a delete, deleted ones for a restore) and
/// records the event; `not_found` (and no event) when there is no such row.
async fn set_deleted<M: Model>(scope: &Scope, id: Uuid, access: &str, delete: bool) -> Result<()> {
    let org = scope.organization_id();
    let (value, state) = if delete { ("$1", "IS NULL") } else { ("NULL", "IS NOT NULL") };
    let returning = patient_column(M::TABLE).unwrap_or("id");
    let mut tx = AuditTx::begin(scope).await?;
    let row = tx
        .fetch_optional(
            Query::new(format!(
                "UPDATE {} SET deleted_at = {value}, updated_at = $1 \
                 WHERE organization_id = $2 AND id = $3 AND deleted_at {state}{access} RETURNING {returning} AS subject",
                M::TABLE
            ))
            .bind(scope.now())
            .bind(org)
            .bind(id),
        )
        .await?;
    let Some(row) = row else {
        drop(tx);
        let action = if delete { Action::Delete } else { Action::Update };
        return Err(missing::<M>(scope, action, id).await);
    };
    let patient = if patient_column(M::TABLE).is_some() { Some(row.uuid("subject")?) } else { None };
    let operation = if delete { OutboxOperation::Delete } else { OutboxOperation::Upsert };
    to_tasy::<M>(&mut tx, org, id, operation).await?;
    let action = if delete { AuditAction::Delete } else { update_action(M::TABLE) };
    tx.record(Event::on(action, M::TABLE).entity(id).records([id]).patient(patient).changed(["deleted_at"])).await?;
    tx.commit().await
}

/// Marks a live row deleted.
pub(crate) async fn soft_delete<M: Model>(scope: &Scope, id: Uuid) -> Result<()> {
    let access = access::<M>(scope, Action::Delete, Some(id)).await?;
    set_deleted::<M>(scope, id, &access, true).await
}

/// A page of live rows of `M` matching `filter`, newest first by id.
pub(crate) async fn list_where<M: Model>(scope: &Scope, filter: Filter, page: &PageRequest) -> Result<Page<M>> {
    let limit = page.checked_limit()?;
    let after = page.after_id()?;
    let org = scope.organization_id();
    let access = access::<M>(scope, Action::Read, None).await?;
    let mut q = QueryBuilder::new(format!("SELECT * FROM {} WHERE organization_id = ", M::TABLE));
    q.push_bind(org).push(live_filter::<M>()).push_filter(filter).push(access);
    if let Some(after) = after {
        q.push(" AND id < ").push_bind(after);
    }
    q.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(limit) + 1);
    let query = q.build();
    let mut tx = AuditTx::begin_read(scope).await?;
    let mut rows = tx.fetch_all(query).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    tx.record(read_event(M::TABLE, &rows, None)?).await?;
    tx.commit().await?;
    let items: Vec<M> = decode_rows(scope, &rows).await?;
    let next = if more { items.last().map(|m| Cursor::encode(&m.id().to_string())) } else { None };
    Ok(Page { items, next })
}

/// The one live row of `M` matching `filter`, if any.
pub(crate) async fn find_where<M: Model>(scope: &Scope, filter: Filter) -> Result<Option<M>> {
    find_where_recording::<M>(scope, filter, true).await
}

/// [`find_where`]; with `record_miss` false, a miss rolls back without an event (the caller looks
/// again and records then), so that one lookup is one event.
async fn find_where_recording<M: Model>(scope: &Scope, filter: Filter, record_miss: bool) -> Result<Option<M>> {
    let org = scope.organization_id();
    let access = access::<M>(scope, Action::Read, None).await?;
    let mut q = QueryBuilder::new(format!("SELECT * FROM {} WHERE organization_id = ", M::TABLE));
    q.push_bind(org).push(live_filter::<M>()).push_filter(filter).push(access).push(" LIMIT 2");
    let mut tx = AuditTx::begin_read(scope).await?;
    let rows = tx.fetch_all(q.build()).await?;
    if rows.is_empty() && !record_miss {
        return Ok(None);
    }
    tx.record(read_event(M::TABLE, &rows, None)?).await?;
    tx.commit().await?;
    if rows.len() > 1 {
        return Err(Error::CorruptData(format!("{} lookup matched more than one row", M::TABLE)));
    }
    Ok(decode_rows(scope, &rows).await?.pop())
}

/// The one live row of `M` whose blind index `column` matches `normalized` under any live version of
/// the organization's key (so lookups keep working while a rotation re-indexes rows), plus the
/// literal condition `also` (` AND ...`, no placeholders).
pub(crate) async fn find_by_blind<M: Model>(
    scope: &Scope,
    column: &'static str,
    kind: BlindIndexKind,
    normalized: &str,
    also: &'static str,
) -> Result<Option<M>> {
    let find = |keys: &KeySet, record_miss: bool| {
        let filter = Filter::new().and_in(column, keys.blinds(kind, normalized)).push(also);
        async move { find_where_recording(scope, filter, record_miss).await }
    };
    let keys = scope.db().key_set(scope.organization_id(), None).await?;
    let found = find(&keys, false).await?;
    if found.is_some() {
        return Ok(found);
    }
    // A miss may be a row re-indexed under a key version this handle has not cached yet. Either way
    // the lookup is recorded once.
    match scope.db().refresh_key_set(&keys).await? {
        Some(fresh) => find(&fresh, true).await,
        None => {
            crate::kernel::record_read_alone(scope, read_event(M::TABLE, &[], None)?).await?;
            Ok(None)
        }
    }
}

/// Whether a row of `M` with `id` exists in the scope's organization, soft-deleted or not.
pub(crate) async fn exists<M: Model>(scope: &Scope, id: Uuid) -> Result<bool> {
    let org = scope.organization_id();
    let mut tx = scope.db().begin(Some(org), TxMode::Read).await?;
    let row = tx
        .fetch_optional(
            Query::new(format!("SELECT id FROM {} WHERE organization_id = $1 AND id = $2", M::TABLE))
                .bind(org)
                .bind(id),
        )
        .await?;
    tx.commit().await?;
    Ok(row.is_some())
}
