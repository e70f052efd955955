//! `Database::validate`: checks a live database against what the library promises about it.
//!
//! | check | what it compares |
//! |---|---|
//! | `migrations` | every embedded migration applied, none changed, failed or unknown |
//! | `schema` | the catalog (tables, columns, types, constraints, indexes, triggers, policies) against a scratch database built from the embedded migrations |
//! | `foreign_keys` | every foreign key's rows have their parent (on SQLite too, where a connection without `PRAGMA foreign_keys` could have skipped the check) |
//! | `points_ledger` | each points account's `total_points` and `spent_points` against the sum of its ledger |
//! | `message_count` | each conversation's `message_count` against its messages |
//! | `ciphertext_keys` | every ciphertext's header names an organization or patient key that exists in the key store |
//! | `audit_chain` | every organization's audit chain verifies |
//!
//! Each problem is a [`Finding`]; findings carry ids, counts and names, never a value.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::migrate::Migrator;

use super::catalog::{self, quote};
use super::require_rls_bypass;
use crate::classification;
use crate::db::{Database, Pool};
use crate::error::{Error, Result};
use austa_crypto::envelope::{self, KeyKind};
use austa_sql::migrate::{data_migrator, keystore_migrator};

/// Which check found a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Migrations pending, changed, failed or unknown.
    Migrations,
    /// The live schema differs from the migrations'.
    Schema,
    /// Rows whose foreign key has no parent.
    ForeignKeys,
    /// A points account disagrees with its ledger.
    PointsLedger,
    /// A conversation's message counter disagrees with its messages.
    MessageCount,
    /// A ciphertext names a key that does not exist, or is not an envelope.
    CiphertextKeys,
    /// An organization's audit chain does not verify.
    AuditChain,
}

/// One problem found by [`Database::validate`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The check that found it.
    pub check: Check,
    /// What is wrong, in words (names, ids and counts only).
    pub message: String,
}

/// The result of [`Database::validate`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ValidationReport {
    /// The checks that ran, in order.
    pub checks: Vec<Check>,
    /// Every problem found; empty when the database is sound.
    pub findings: Vec<Finding>,
}

impl ValidationReport {
    /// Whether nothing was found.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

fn finding(check: Check, message: impl Into<String>) -> Finding {
    Finding { check, message: message.into() }
}

/// (kind and name) -> definition, for comparing two catalogs.
type Snapshot = BTreeMap<String, String>;

async fn snapshot(pool: &Pool) -> Result<Snapshot> {
    Ok(match pool {
        Pool::Sqlite(p) => {
            let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
                "SELECT type, name, sql FROM sqlite_master \
                 WHERE name NOT LIKE 'sqlite_%' AND tbl_name <> '_sqlx_migrations'",
            )
            .fetch_all(p)
            .await?;
            rows.into_iter()
                .map(|(kind, name, sql)| {
                    let sql = sql.unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
                    (format!("{kind} {name}"), sql)
                })
                .collect()
        }
        Pool::Postgres(p) => {
            const QUERIES: [&str; 7] = [
                "SELECT 'column ' || table_name || '.' || column_name, \
                        data_type || ' nullable=' || is_nullable || ' default=' || coalesce(column_default, '') \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
                "SELECT 'table ' || relname, 'rls=' || relrowsecurity || ' force=' || relforcerowsecurity \
                 FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r' \
                   AND relname <> '_sqlx_migrations'",
                "SELECT 'constraint ' || c.conrelid::regclass::text || '.' || c.conname, pg_get_constraintdef(c.oid) \
                 FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
                 WHERE t.relnamespace = current_schema()::regnamespace AND t.relname <> '_sqlx_migrations'",
                "SELECT 'index ' || indexname, indexdef FROM pg_indexes \
                 WHERE schemaname = current_schema() AND tablename <> '_sqlx_migrations'",
                "SELECT 'trigger ' || t.relname || '.' || g.tgname, pg_get_triggerdef(g.oid) \
                 FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid \
                 WHERE NOT g.tgisinternal AND t.relnamespace = current_schema()::regnamespace",
                "SELECT 'policy ' || tablename || '.' || policyname, \
                        cmd || ' ' || coalesce(qual, '') || ' ' || coalesce(with_check, '') \
                 FROM pg_policies WHERE schemaname = current_schema()",
                "SELECT 'function ' || proname || '(' || pg_get_function_identity_arguments(oid) || ')', md5(prosrc) \
                 FROM pg_proc WHERE pronamespace = current_schema()::regnamespace",
            ];
            let mut out = Snapshot::new();
            for q in QUERIES {
                let rows: Vec<(String, String)> = sqlx::query_as(q).fetch_all(p).await?;
                out.extend(rows);
            }
            out
        }
    })
}

/// The catalog of a scratch database of the same backend built from the embedded migrations.
async fn reference_snapshot(pool: &Pool, migrators: &[&Migrator]) -> Result<Snapshot> {
    match pool {
        Pool::Sqlite(_) => {
            let scratch = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect("sqlite::memory:")
                .await
                .map_err(Error::Database)?;
            let scratch = Pool::Sqlite(scratch);
            austa_sql::migrate::run(&scratch, migrators).await?;
            let snap = snapshot(&scratch).await;
            if let Pool::Sqlite(p) = scratch {
                p.close().await;
            }
            snap
        }
        Pool::Postgres(p) => {
            let name = format!("austa_validate_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE DATABASE {}", quote(&name))).execute(p).await.map_err(|e| {
                Error::Config(format!(
                    "validate builds a scratch database from the migrations to compare schemas, and could not \
                     create one (the role needs CREATEDB): {e}"
                ))
            })?;
            let options = p.connect_options().as_ref().clone().database(&name);
            let result = async {
                let scratch = Pool::Postgres(
                    sqlx::postgres::PgPoolOptions::new().max_connections(1).connect_with(options).await?,
                );
                austa_sql::migrate::run(&scratch, migrators).await?;
                let snap = snapshot(&scratch).await;
                if let Pool::Postgres(s) = scratch {
                    s.close().await;
                }
                snap
            }
            .await;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(&name))).execute(p).await?;
            result
        }
    }
}

fn compare(live: &Snapshot, reference: &Snapshot, out: &mut Vec<Finding>) {
    for (name, def) in reference {
        match live.get(name) {
            None => out.push(finding(Check::Schema, format!("{name} is missing"))),
            Some(d) if d != def => out.push(finding(Check::Schema, format!("{name} differs from the migrations"))),
            Some(_) => {}
        }
    }
    for name in live.keys().filter(|n| !reference.contains_key(*n)) {
        out.push(finding(Check::Schema, format!("{name} is not in the migrations")));
    }
}

async fn scalar_rows(pool: &Pool, sql: &str) -> Result<Vec<(String, i64, i64)>> {
    Ok(match pool {
        Pool::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await?,
        Pool::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await?,
    })
}

async fn foreign_keys(pool: &Pool, out: &mut Vec<Finding>) -> Result<()> {
    for fk in catalog::foreign_keys(pool).await? {
        let present: Vec<String> = fk.columns.iter().map(|c| format!("c.{} IS NOT NULL", quote(c))).collect();
        let joined: Vec<String> = fk
            .columns
            .iter()
            .zip(&fk.parent_columns)
            .map(|(c, p)| format!("p.{} = c.{}", quote(p), quote(c)))
            .collect();
        let sql = format!(
            "SELECT count(*) FROM {} c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {})",
            quote(&fk.table),
            present.join(" AND "),
            quote(&fk.parent),
            joined.join(" AND ")
        );
        let orphans: i64 = match pool {
            Pool::Sqlite(p) => sqlx::query_scalar(&sql).fetch_one(p).await?,
            Pool::Postgres(p) => sqlx::query_scalar(&sql).fetch_one(p).await?,
        };
        if orphans > 0 {
            out.push(finding(
                Check::ForeignKeys,
                format!(
                    "{orphans} row(s) of {}({}) have no parent in {}({})",
                    fk.table,
                    fk.columns.join(", "),
                    fk.parent,
                    fk.parent_columns.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

async fn invariants(pool: &Pool, out: &mut Vec<Finding>) -> Result<()> {
    // Per account: (column, its value, what the ledger says), for total_points and spent_points.
    let ledger = |sum: &str, column: &str| {
        format!(
            "SELECT CAST(h.patient_id AS TEXT), h.{column}, CAST(COALESCE((SELECT {sum} FROM point_transactions t \
               WHERE t.organization_id = h.organization_id AND t.health_points_id = h.id), 0) AS BIGINT) \
             FROM health_points h"
        )
    };
    let sums = [
        ("total_points", "SUM(CASE WHEN t.type = 'SPENT' THEN 0 ELSE t.amount END)", "the ledger sums to"),
        ("spent_points", "SUM(CASE WHEN t.type = 'SPENT' THEN -t.amount ELSE 0 END)", "its SPENT entries sum to"),
    ];
    for (column, sum, says) in sums {
        for (patient, value, expected) in scalar_rows(pool, &ledger(sum, column)).await? {
            if value != expected {
                out.push(finding(
                    Check::PointsLedger,
                    format!("patient {patient}: {column} is {value}, {says} {expected}"),
                ));
            }
        }
    }
    let messages = "SELECT CAST(c.id AS TEXT), c.message_count, \
                      (SELECT count(*) FROM messages m WHERE m.organization_id = c.organization_id AND m.conversation_id = c.id) \
                    FROM conversations c";
    for (conversation, counter, actual) in scalar_rows(pool, messages).await? {
        if counter != actual {
            out.push(finding(
                Check::MessageCount,
                format!("conversation {conversation}: message_count is {counter}, it has {actual} message(s)"),
            ));
        }
    }
    Ok(())
}

async fn key_ids(store: &Pool, table: &str) -> Result<BTreeSet<(String, String)>> {
    let sql = format!("SELECT CAST(organization_id AS TEXT), CAST(id AS TEXT) FROM {table}");
    let rows: Vec<(String, String)> = match store {
        Pool::Sqlite(p) => sqlx::query_as(&sql).fetch_all(p).await?,
        Pool::Postgres(p) => sqlx::query_as(&sql).fetch_all(p).await?,
    };
    Ok(rows.into_iter().collect())
}

async fn ciphertext_keys(pool: &Pool, store: &Pool, out: &mut Vec<Finding>) -> Result<()> {
    let org_keys = key_ids(store, "organization_keys").await?;
    let patient_keys = key_ids(store, "patient_keys").await?;
    for table in classification::encrypted_tables() {
        let org = if table == "organizations" { "id" } else { "organization_id" };
        for column in classification::columns_of(table) {
            let col = quote(column.column);
            let sql = format!(
                "SELECT CAST({org} AS TEXT), substr({col}, 1, {len}), count(*) FROM {t} WHERE {col} IS NOT NULL \
                 GROUP BY 1, 2",
                len = envelope::HEADER_LEN,
                t = quote(table)
            );
            let rows: Vec<(String, Vec<u8>, i64)> = match pool {
                Pool::Sqlite(p) => sqlx::query_as(&sql).fetch_all(p).await?,
                Pool::Postgres(p) => sqlx::query_as(&sql).fetch_all(p).await?,
            };
            for (organization, prefix, n) in rows {
                let place = format!("{table}.{}", column.column);
                match envelope::named_key(&prefix) {
                    None => out.push(finding(
                        Check::CiphertextKeys,
                        format!("{n} value(s) of {place} in organization {organization} are not ciphertext envelopes"),
                    )),
                    Some(h) => {
                        let key = (organization.clone(), h.key_id.hyphenated().to_string());
                        let (exists, kind) = match h.kind {
                            KeyKind::Organization => (org_keys.contains(&key), "organization"),
                            KeyKind::Patient => (patient_keys.contains(&key), "patient"),
                        };
                        if !exists {
                            out.push(finding(
                                Check::CiphertextKeys,
                                format!(
                                    "{n} value(s) of {place} name {kind} key {} which organization {organization}'s \
                                     key store does not have",
                                    h.key_id
                                ),
                            ));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

impl Database {
    /// Runs every check of the module docs and returns what they found. On PostgreSQL the connection
    /// must bypass row-level security and may create a scratch database (for the schema comparison).
    pub async fn validate(&self) -> Result<ValidationReport> {
        let pool = &self.inner.pool;
        let store = self.inner.keyring.store();
        require_rls_bypass(pool).await?;
        let mut findings = Vec::new();

        let status = self.migration_status(None).await?;
        for m in status.migrations.iter().filter(|m| m.state != super::MigrationState::Applied) {
            findings.push(finding(
                Check::Migrations,
                format!("migration {} ({}, {}) is {:?}", m.version, m.description, m.set, m.state).to_lowercase(),
            ));
        }

        let mut migrators = vec![data_migrator(pool)];
        if pool.same_database(store) {
            migrators.push(keystore_migrator(store));
        }
        let reference = reference_snapshot(pool, &migrators).await?;
        compare(&snapshot(pool).await?, &reference, &mut findings);

        foreign_keys(pool, &mut findings).await?;
        invariants(pool, &mut findings).await?;
        ciphertext_keys(pool, store, &mut findings).await?;
        for chain in self.verify_audit_chains().await? {
            match (&chain.report, &chain.error) {
                (Some(r), _) if r.is_intact() => {}
                (Some(r), _) => {
                    let detail = r.broken.as_ref().map(|b| format!("{:?}: {}", b.kind, b.detail)).unwrap_or_default();
                    findings.push(finding(
                        Check::AuditChain,
                        format!("organization {}: chain broken ({detail})", chain.organization_id),
                    ));
                }
                (None, error) => findings.push(finding(
                    Check::AuditChain,
                    format!(
                        "organization {}: chain could not be verified ({})",
                        chain.organization_id,
                        error.as_deref().unwrap_or("unknown error")
                    ),
                )),
            }
        }
        let checks = vec![
            Check::Migrations,
            Check::Schema,
            Check::ForeignKeys,
            Check::PointsLedger,
            Check::MessageCount,
            Check::CiphertextKeys,
            Check::AuditChain,
        ];
        Ok(ValidationReport { checks, findings })
    }
}
