//! Generic SQL for [`Model`]s: insert, get, update, soft delete, filtered listings. Each operation
//! loads the organization's keys first (never while holding a transaction), then runs one transaction.

use uuid::Uuid;

use super::page::{Cursor, Page, PageRequest};
use super::{Model, Updatable};
use crate::crypto::OrgKeys;
use crate::db::{Query, Row, Tx, TxMode, Value};
use crate::error::{Error, Result};
use crate::scope::Scope;

fn live_filter<M: Model>() -> &'static str {
    if M::SOFT_DELETE {
        " AND deleted_at IS NULL"
    } else {
        ""
    }
}

/// `FOR UPDATE` on PostgreSQL; SQLite write transactions already hold the database's write lock.
pub(crate) fn lock_clause(tx: &Tx) -> &'static str {
    match tx {
        Tx::Postgres(_) => " FOR UPDATE",
        Tx::Sqlite(_) => "",
    }
}

/// Decodes a row of `M`, decrypting under the row's own id.
pub(crate) fn decode<M: Model>(keys: &OrgKeys, row: &Row) -> Result<M> {
    let id = row.uuid("id")?;
    M::from_row(row, &keys.row(M::TABLE, id))
}

/// The INSERT statement for `model`.
pub(crate) fn insert_query<M: Model>(keys: &OrgKeys, organization: Uuid, model: &M) -> Result<Query> {
    let columns = model.columns(&keys.row(M::TABLE, model.id()))?;
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    let placeholders: Vec<String> = (1..=columns.len() + 1).map(|i| format!("${i}")).collect();
    let sql = format!(
        "INSERT INTO {} (organization_id, {}) VALUES ({})",
        M::TABLE,
        names.join(", "),
        placeholders.join(", ")
    );
    Ok(columns.into_iter().fold(Query::new(sql).bind(organization), |q, (_, v)| q.bind(v)))
}

/// Inserts `model` in its own transaction.
pub(crate) async fn insert<M: Model>(scope: &Scope, model: &M) -> Result<()> {
    let org = scope.organization_id();
    let keys = scope.db().org_keys(org).await?;
    let query = insert_query(&keys, org, model)?;
    let mut tx = scope.db().begin(Some(org), TxMode::Write).await?;
    tx.execute(query).await?;
    tx.commit().await
}

/// Reads one live row of `M` by id inside `tx`, optionally locking it.
pub(crate) async fn get_in<M: Model>(
    tx: &mut Tx,
    keys: &OrgKeys,
    organization: Uuid,
    id: Uuid,
    lock: bool,
) -> Result<M> {
    let lock = if lock { lock_clause(tx) } else { "" };
    let sql = format!("SELECT * FROM {} WHERE organization_id = $1 AND id = $2{}{lock}", M::TABLE, live_filter::<M>());
    let row = tx
        .fetch_optional(Query::new(sql).bind(organization).bind(id))
        .await?
        .ok_or_else(|| Error::not_found(M::ENTITY))?;
    decode(keys, &row)
}

/// Reads one live row of `M` by id.
pub(crate) async fn get<M: Model>(scope: &Scope, id: Uuid) -> Result<M> {
    let org = scope.organization_id();
    let keys = scope.db().org_keys(org).await?;
    let mut tx = scope.db().begin(Some(org), TxMode::Read).await?;
    let model = get_in(&mut tx, &keys, org, id, false).await?;
    tx.commit().await?;
    Ok(model)
}

/// The UPDATE statement writing every column of `model` (except its id and creation time).
pub(crate) fn update_query<M: Model>(keys: &OrgKeys, organization: Uuid, model: &M) -> Result<Query> {
    let columns: Vec<(&str, Value)> = model
        .columns(&keys.row(M::TABLE, model.id()))?
        .into_iter()
        .filter(|(n, _)| *n != "id" && *n != "created_at")
        .collect();
    let sets: Vec<String> = columns.iter().enumerate().map(|(i, (n, _))| format!("{n} = ${}", i + 1)).collect();
    let n = columns.len();
    let sql = format!(
        "UPDATE {} SET {} WHERE organization_id = ${} AND id = ${}{}",
        M::TABLE,
        sets.join(", "),
        n + 1,
        n + 2,
        live_filter::<M>()
    );
    Ok(columns.into_iter().fold(Query::new(sql), |q, (_, v)| q.bind(v)).bind(organization).bind(model.id()))
}

/// Writes every column of an already-loaded model back inside `tx`; `not_found` if no live row.
pub(crate) async fn write_in<M: Model>(tx: &mut Tx, keys: &OrgKeys, organization: Uuid, model: &M) -> Result<()> {
    let affected = tx.execute(update_query(keys, organization, model)?).await?;
    if affected == 0 {
        return Err(Error::not_found(M::ENTITY));
    }
    Ok(())
}

/// Loads, patches and writes back one row in one transaction.
pub(crate) async fn update<M: Updatable>(scope: &Scope, id: Uuid, patch: M::Patch) -> Result<M> {
    let org = scope.organization_id();
    let keys = scope.db().org_keys(org).await?;
    let mut tx = scope.db().begin(Some(org), TxMode::Write).await?;
    let mut model: M = get_in(&mut tx, &keys, org, id, true).await?;
    model.apply(patch, crate::time::now())?;
    write_in(&mut tx, &keys, org, &model).await?;
    tx.commit().await?;
    Ok(model)
}

/// Marks a live row deleted.
pub(crate) async fn soft_delete<M: Model>(scope: &Scope, id: Uuid) -> Result<()> {
    let org = scope.organization_id();
    let now = crate::time::now();
    let mut tx = scope.db().begin(Some(org), TxMode::Write).await?;
    let affected = tx
        .execute(
            Query::new(format!(
                "UPDATE {} SET deleted_at = $1, updated_at = $1 \
                 WHERE organization_id = $2 AND id = $3 AND deleted_at IS NULL",
                M::TABLE
            ))
            .bind(now)
            .bind(org)
            .bind(id),
        )
        .await?;
    if affected == 0 {
        return Err(Error::not_found(M::ENTITY));
    }
    tx.commit().await
}

/// A page of live rows of `M` matching `filter` (SQL starting with ` AND ...`, placeholders from `$2`,
/// arguments in `args`), newest first by id.
pub(crate) async fn list_where<M: Model>(
    scope: &Scope,
    filter: &str,
    args: Vec<Value>,
    page: &PageRequest,
) -> Result<Page<M>> {
    let limit = page.checked_limit()?;
    let after = page
        .after
        .as_ref()
        .map(|c| {
            c.decode()?
                .parse::<Uuid>()
                .map_err(|_| Error::validation("cursor", "is not a cursor returned by this library"))
        })
        .transpose()?;
    let org = scope.organization_id();
    let keys = scope.db().org_keys(org).await?;
    let k = args.len() + 2;
    let sql = format!(
        "SELECT * FROM {} WHERE organization_id = $1{}{filter} AND (${k} IS NULL OR id < ${k}) \
         ORDER BY id DESC LIMIT ${}",
        M::TABLE,
        live_filter::<M>(),
        k + 1
    );
    let query =
        args.into_iter().fold(Query::new(sql).bind(org), |q, v| q.bind(v)).bind(after).bind(i64::from(limit) + 1);
    let mut tx = scope.db().begin(Some(org), TxMode::Read).await?;
    let rows = tx.fetch_all(query).await?;
    tx.commit().await?;
    let mut items = rows.iter().map(|r| decode::<M>(&keys, r)).collect::<Result<Vec<M>>>()?;
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|m| Cursor::encode(&m.id().to_string()))
    } else {
        None
    };
    Ok(Page { items, next })
}

/// The one live row of `M` matching `filter` (placeholders from `$2`), if any.
pub(crate) async fn find_where<M: Model>(scope: &Scope, filter: &str, args: Vec<Value>) -> Result<Option<M>> {
    let org = scope.organization_id();
    let keys = scope.db().org_keys(org).await?;
    let sql = format!("SELECT * FROM {} WHERE organization_id = $1{}{filter} LIMIT 2", M::TABLE, live_filter::<M>());
    let query = args.into_iter().fold(Query::new(sql).bind(org), |q, v| q.bind(v));
    let mut tx = scope.db().begin(Some(org), TxMode::Read).await?;
    let rows = tx.fetch_all(query).await?;
    tx.commit().await?;
    match rows.as_slice() {
        [] => Ok(None),
        [row] => decode(&keys, row).map(Some),
        _ => Err(Error::CorruptData(format!("{} lookup matched more than one row", M::TABLE))),
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
