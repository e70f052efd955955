//! The classification table in the code is the truth: the live schema of both backends encrypts
//! exactly those columns (every other binary column is a blind index or a wrapped key), each identifier
//! has its blind index, and the README carries the same table.

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
                "SELECT table_name::text, column_name::text FROM information_schema.columns \
                 WHERE table_schema = 'public' AND data_type = 'bytea'",
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
        // Key material, key checks, blind indexes and the audit trail's MACs are binary but not
        // encrypted columns.
        .filter(|(t, c)| {
            t != "_sqlx_migrations"
                && !(t.starts_with("audit_") && c.ends_with("mac"))
                && !c.ends_with("_bidx")
                && c != "wrapped_key"
                && c != "key_check"
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
fn readme_carries_the_classification_table() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    assert!(
        readme.contains(&markdown_table()),
        "README.md's classification table is out of date; paste this:\n{}",
        markdown_table()
    );
}
