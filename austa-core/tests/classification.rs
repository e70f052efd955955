//! The classification table in the code is the truth: the live schema of both backends encrypts
//! exactly those columns (every other binary column is a blind index or a wrapped key), each identifier
//! has its blind index, and the manual (docs/schema.md) carries the same table.

use std::collections::BTreeSet;

use austa_core::classification::{markdown_table, Class, ENCRYPTED_COLUMNS};
use sqlx::Row;

use crate::support::{self, TestDb};
use austa_macros::backends;

async fn binary_columns(tdb: &support::TestDb) -> BTreeSet<(String, String)> {
    let rows: Vec<(String, String)> = match tdb.backend {
        support::Backend::Sqlite => {
            let pool = tdb.sqlite_pool().await;
            sqlx::query(
                "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND p.type = 'BLOB'",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
        }
        support::Backend::Postgres => {
            let pool = tdb.pg_pool().await;
            sqlx::query(
                "SELECT c.relname::text, a.attname::text FROM pg_attribute a \
                 JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0 \
                 AND NOT a.attisdropped AND a.atttypid = 'bytea'::regtype",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
        }
    };
    rows.into_iter().collect()
}

#[backends]
async fn schema_encrypts_exactly_the_classified_columns(tdb: TestDb) {
    let classified: BTreeSet<(String, String)> =
        ENCRYPTED_COLUMNS.iter().map(|c| (c.table.to_string(), c.column.to_string())).collect();
    assert_eq!(classified.len(), ENCRYPTED_COLUMNS.len(), "no duplicates");
    let binary = binary_columns(&tdb).await;
    let encrypted: BTreeSet<_> = binary
        .iter()
        // Key material, key checks, blind indexes, the audit trail's MACs and its Merkle tree's
        // hashes are binary but not encrypted columns.
        .filter(|(t, c)| {
            let audit_hash = (t.starts_with("audit_") && c.ends_with("mac"))
                || matches!((t.as_str(), c.as_str()), ("audit_tree", "hash") | ("audit_heads", "frontier"));
            t != "_sqlx_migrations" && !audit_hash && !c.ends_with("_bidx") && c != "wrapped_key" && c != "key_check"
        })
        .cloned()
        .collect();
    assert_eq!(encrypted, classified, "{:?}", tdb.backend);
    for c in ENCRYPTED_COLUMNS.iter() {
        let bidx = (c.table.to_string(), format!("{}_bidx", c.column));
        assert_eq!(binary.contains(&bidx), matches!(c.class, Class::Identifier(_)), "{}.{}", c.table, c.column);
    }
}

#[test]
fn the_manual_carries_the_classification_table() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/schema.md")).unwrap();
    assert!(
        page.contains(&markdown_table()),
        "docs/schema.md's classification table is out of date; paste this:\n{}",
        markdown_table()
    );
}

/// Every column of `table` in the live schema, with whether it may be NULL.
async fn live_columns(tdb: &TestDb, table: &str) -> BTreeSet<(String, bool)> {
    match tdb.backend {
        support::Backend::Sqlite => {
            let pool = tdb.sqlite_pool().await;
            sqlx::query("SELECT name, \"notnull\", pk FROM pragma_table_info(?)")
                .bind(table)
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1) == 0 && r.get::<i64, _>(2) == 0))
                .collect()
        }
        support::Backend::Postgres => {
            let pool = tdb.pg_pool().await;
            // pg_attribute, not information_schema: the latter hides columns the role may not read.
            sqlx::query(
                "SELECT a.attname::text, NOT a.attnotnull FROM pg_attribute a \
                 JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = 'public' AND c.relname = $1 AND a.attnum > 0 AND NOT a.attisdropped",
            )
            .bind(table)
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
        }
    }
}

/// Columns the migrations create that no model field stores: the library's own bookkeeping.
const LIBRARY_COLUMNS: &[(&str, &str)] = &[
    // The AI worker's lease on a message.
    ("messages", "ai_claimed_by"),
    ("messages", "ai_claimed_until"),
    // The audit event's MAC and the organization key that made it.
    ("audit_logs", "key_id"),
    ("audit_logs", "mac"),
];

/// The migrations and the model declarations agree, on both backends: each model's table has
/// exactly the declared columns (plus `organization_id`, the blind index of each identifier and the
/// library's bookkeeping columns), and a column is nullable exactly when its field is optional.
#[backends]
async fn migrations_create_exactly_the_declared_columns(tdb: TestDb) {
    use austa_core::classification::{EXTRA_COLUMNS, TABLES};
    use austa_core::record::ColumnClass;
    for table in TABLES.iter().filter(|t| !std::ptr::eq(t.columns, EXTRA_COLUMNS)) {
        let mut declared: BTreeSet<(String, bool)> = BTreeSet::new();
        for c in table.columns {
            declared.insert((c.name.to_string(), c.nullable));
            if let ColumnClass::Identifier(_) = c.class {
                declared.insert((format!("{}_bidx", c.name), c.nullable));
            }
        }
        if table.table != "organizations" {
            declared.insert(("organization_id".to_string(), false));
        }
        let live = live_columns(&tdb, table.table).await;
        for (t, c) in LIBRARY_COLUMNS.iter().filter(|(t, _)| *t == table.table) {
            let found = live.iter().find(|(name, _)| name == c);
            assert!(found.is_some(), "{t}.{c} is listed as a library column but the schema has none");
            declared.extend(found.cloned());
        }
        let missing: Vec<_> = declared.difference(&live).collect();
        let undeclared: Vec<_> = live.difference(&declared).collect();
        assert!(
            missing.is_empty() && undeclared.is_empty(),
            "{:?}: `{}` differs from its declaration (column, nullable): declared but not so in the \
             migrations {missing:?}; in the migrations but not so in the declaration {undeclared:?}",
            tdb.backend,
            table.table,
        );
    }
}
