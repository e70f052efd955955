//! What the live database says about itself: tables, columns and their types, primary and foreign keys.
//!
//! Backup, restore and validation work on whatever tables the migrations created, read from the
//! catalog (`information_schema`/`pg_catalog` on PostgreSQL, `sqlite_master` and the `pragma_*` table
//! functions on SQLite), so that a new migration needs no change here.

use std::collections::{BTreeMap, BTreeSet};

use crate::db::Pool;
use crate::error::Result;

/// The table that records applied migrations: never data, never compared.
pub(crate) const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// The key store's tables (key material: wrapped keys and the key check value). They leave the
/// database only in a separate key backup.
pub(crate) const KEYSTORE_TABLES: [&str; 3] = ["keystore_meta", "organization_keys", "patient_keys"];

/// How a column's values are stored, as far as copying them between backends needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    Int,
    Float,
    Bool,
    Uuid,
    Time,
    Json,
    Bytes,
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    /// The backend's own type name (`uuid`, `timestamptz`, ... on PostgreSQL; `TEXT`, `BLOB`, ... on
    /// SQLite), used for casts.
    pub(crate) sql_type: String,
}

/// A foreign key: `table(columns)` references `parent(parent_columns)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ForeignKey {
    pub(crate) table: String,
    pub(crate) columns: Vec<String>,
    pub(crate) parent: String,
    pub(crate) parent_columns: Vec<String>,
}

/// Quotes an identifier read from the catalog (double quotes, doubled inside), valid on both backends.
pub(crate) fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// The user tables of the database, sorted, without the migrations table.
pub(crate) async fn tables(pool: &Pool) -> Result<Vec<String>> {
    let mut names: Vec<String> = match pool {
        Pool::Sqlite(p) => {
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
                .fetch_all(p)
                .await?
        }
        Pool::Postgres(p) => {
            sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            )
            .fetch_all(p)
            .await?
        }
    };
    names.retain(|n| n != MIGRATIONS_TABLE);
    names.sort();
    Ok(names)
}

/// The columns of `table`, in declaration order.
pub(crate) async fn columns(pool: &Pool, table: &str) -> Result<Vec<Column>> {
    Ok(match pool {
        Pool::Sqlite(p) => {
            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT name, upper(type) FROM pragma_table_info(?) ORDER BY cid")
                    .bind(table)
                    .fetch_all(p)
                    .await?;
            rows.into_iter()
                .map(|(name, sql_type)| {
                    let kind = match sql_type.as_str() {
                        "INTEGER" | "INT" | "BIGINT" => Kind::Int,
                        "REAL" => Kind::Float,
                        "BLOB" => Kind::Bytes,
                        _ => Kind::Text,
                    };
                    Column { name, kind, sql_type }
                })
                .collect()
        }
        Pool::Postgres(p) => {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT column_name::text, udt_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            )
            .bind(table)
            .fetch_all(p)
            .await?;
            rows.into_iter()
                .map(|(name, sql_type)| {
                    let kind = match sql_type.as_str() {
                        "int2" | "int4" | "int8" => Kind::Int,
                        "float4" | "float8" | "numeric" => Kind::Float,
                        "bool" => Kind::Bool,
                        "uuid" => Kind::Uuid,
                        "timestamptz" | "timestamp" => Kind::Time,
                        "json" | "jsonb" => Kind::Json,
                        "bytea" => Kind::Bytes,
                        _ => Kind::Text,
                    };
                    Column { name, kind, sql_type }
                })
                .collect()
        }
    })
}

/// The primary key columns of `table`, in key order (empty when it has none).
pub(crate) async fn primary_key(pool: &Pool, table: &str) -> Result<Vec<String>> {
    Ok(match pool {
        Pool::Sqlite(p) => {
            sqlx::query_scalar("SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk")
                .bind(table)
                .fetch_all(p)
                .await?
        }
        Pool::Postgres(p) => {
            sqlx::query_scalar(
                "SELECT a.attname::text FROM pg_index x \
                 CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                 JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum \
                 WHERE x.indrelid = (quote_ident(current_schema()) || '.' || quote_ident($1))::regclass \
                   AND x.indisprimary ORDER BY k.ord",
            )
            .bind(table)
            .fetch_all(p)
            .await?
        }
    })
}

/// Every foreign key between user tables.
pub(crate) async fn foreign_keys(pool: &Pool) -> Result<Vec<ForeignKey>> {
    let mut fks = Vec::new();
    match pool {
        Pool::Sqlite(p) => {
            let rows: Vec<(String, i64, String, String, String)> = sqlx::query_as(
                "SELECT m.name, f.id, f.\"table\", f.\"from\", f.\"to\" FROM sqlite_master m \
                 JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table' ORDER BY m.name, f.id, f.seq",
            )
            .fetch_all(p)
            .await?;
            let mut grouped: BTreeMap<(String, i64), ForeignKey> = BTreeMap::new();
            for (table, id, parent, from, to) in rows {
                let fk = grouped.entry((table.clone(), id)).or_insert_with(|| ForeignKey {
                    table,
                    columns: Vec::new(),
                    parent,
                    parent_columns: Vec::new(),
                });
                fk.columns.push(from);
                fk.parent_columns.push(to);
            }
            fks.extend(grouped.into_values());
        }
        Pool::Postgres(p) => {
            let rows: Vec<(String, Vec<String>, String, Vec<String>)> = sqlx::query_as(
                "SELECT t.relname::text, \
                   ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, o) \
                         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o), \
                   r.relname::text, \
                   ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, o) \
                         JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o) \
                 FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid \
                 WHERE c.contype = 'f' AND t.relnamespace = current_schema()::regnamespace \
                 ORDER BY t.relname, c.conname",
            )
            .fetch_all(p)
            .await?;
            fks.extend(rows.into_iter().map(|(table, columns, parent, parent_columns)| ForeignKey {
                table,
                columns,
                parent,
                parent_columns,
            }));
        }
    }
    Ok(fks)
}

/// `tables` ordered so that every table comes after the tables it references (ties by name), so that
/// inserting in this order satisfies every foreign key. Self-references do not constrain the order.
pub(crate) fn dependency_order(tables: &[String], fks: &[ForeignKey]) -> Vec<String> {
    let mut remaining: BTreeSet<&str> = tables.iter().map(String::as_str).collect();
    let mut order = Vec::with_capacity(tables.len());
    while !remaining.is_empty() {
        let ready: Vec<&str> = remaining
            .iter()
            .copied()
            .filter(|t| !fks.iter().any(|f| f.table == *t && f.parent != *t && remaining.contains(f.parent.as_str())))
            .collect();
        // A cycle (none exist in the schema): take the rest in name order rather than loop forever.
        let batch = if ready.is_empty() { remaining.iter().copied().collect() } else { ready };
        for t in batch {
            remaining.remove(t);
            order.push(t.to_string());
        }
    }
    order
}

/// The number of rows of `table`.
pub(crate) async fn count(pool: &Pool, table: &str) -> Result<i64> {
    let sql = format!("SELECT count(*) FROM {}", quote(table));
    Ok(match pool {
        Pool::Sqlite(p) => sqlx::query_scalar(&sql).fetch_one(p).await?,
        Pool::Postgres(p) => sqlx::query_scalar(&sql).fetch_one(p).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fk(table: &str, parent: &str) -> ForeignKey {
        ForeignKey { table: table.into(), columns: vec![], parent: parent.into(), parent_columns: vec![] }
    }

    #[test]
    fn parents_come_before_children() {
        let tables: Vec<String> = ["messages", "conversations", "organizations", "patients"].map(String::from).into();
        let fks = [
            fk("messages", "conversations"),
            fk("conversations", "patients"),
            fk("patients", "organizations"),
            fk("patients", "patients"),
        ];
        assert_eq!(dependency_order(&tables, &fks), ["organizations", "patients", "conversations", "messages"]);
    }

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
