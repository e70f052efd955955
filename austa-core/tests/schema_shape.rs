//! Schema shape: proves that `migrations/sqlite` and `migrations/postgres` build the same database.
//!
//! * Both backends have the same tables, the same columns (order and nullability) and the same indexes
//!   (uniqueness, partial or not, ordered columns, and the name of every explicitly created index),
//!   including the indexes that back PRIMARY KEY and UNIQUE constraints.
//! * Both have the same foreign keys, all of them ON DELETE RESTRICT.
//! * On PostgreSQL, every tenant table is ready for Citus distribution by `organization_id`.
//! * The CHECK constraints are enforced by the database itself, not only by the library.
//!
//! SQLite always runs; PostgreSQL runs when `AUSTA_TEST_DATABASE_URL` is set (see `support`). The tests
//! that compare the two backends run SQLite's half alone without PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{PgPool, SqlitePool};

use crate::support::{self, Backend, TestDb};
use austa_macros::backends;

/// The 15 model tables, then the 3 tables that replace free-form id arrays and hold the wrapped keys.
const TABLES: [&str; 18] = [
    "organizations",
    "patients",
    "providers",
    "conversations",
    "messages",
    "health_data",
    "missions",
    "onboarding_progress",
    "health_points",
    "point_transactions",
    "authorizations",
    "documents",
    "tasy_integrations",
    "tasy_sync_logs",
    "audit_logs",
    "organization_keys",
    "mission_prerequisites",
    "authorization_attachments",
];

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
struct Index {
    /// `None` for the indexes backing PRIMARY KEY and UNIQUE constraints: their names are backend-specific.
    name: Option<String>,
    primary: bool,
    unique: bool,
    partial: bool,
    columns: Vec<String>,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    /// (column name, nullable), in declaration order.
    columns: Vec<(String, bool)>,
    indexes: BTreeSet<Index>,
}

type Shape = BTreeMap<String, Table>;

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
struct ForeignKey {
    table: String,
    columns: Vec<String>,
    references: String,
    ref_columns: Vec<String>,
    on_delete: String,
}

/// A raw connection pool to one test database.
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    async fn of(db: &TestDb) -> Self {
        match db.backend {
            Backend::Sqlite => Self::Sqlite(db.sqlite_pool().await),
            Backend::Postgres => Self::Postgres(db.pg_pool().await),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    async fn shape(&self) -> Shape {
        match self {
            Self::Sqlite(pool) => sqlite_shape(pool).await,
            Self::Postgres(pool) => pg_shape(pool).await,
        }
    }

    async fn foreign_keys(&self) -> BTreeSet<ForeignKey> {
        match self {
            Self::Sqlite(pool) => sqlite_foreign_keys(pool).await,
            Self::Postgres(pool) => pg_foreign_keys(pool).await,
        }
    }

    /// Runs one statement; `$1`, when the statement uses it, is bound to a small BLOB/BYTEA.
    async fn execute(&self, sql: &str) -> Result<(), sqlx::Error> {
        let blob: &[u8] = b"\x01";
        let bind = sql.contains("$1");
        match self {
            Self::Sqlite(pool) => {
                let query = sqlx::query(sql);
                let query = if bind { query.bind(blob) } else { query };
                query.execute(pool).await.map(drop)
            }
            Self::Postgres(pool) => {
                let query = sqlx::query(sql);
                let query = if bind { query.bind(blob) } else { query };
                query.execute(pool).await.map(drop)
            }
        }
    }
}

/// One raw pool per configured backend, each on a freshly migrated database.
async fn pools() -> Vec<(TestDb, Pool)> {
    let mut pools = Vec::new();
    for db in support::backends().await {
        let pool = Pool::of(&db).await;
        pools.push((db, pool));
    }
    pools
}

async fn sqlite_shape(pool: &SqlitePool) -> Shape {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master
          WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut shape = Shape::new();
    for name in tables {
        let mut table = Table {
            columns: sqlx::query_as(r#"SELECT name, "notnull" = 0 FROM pragma_table_info(?) ORDER BY cid"#)
                .bind(&name)
                .fetch_all(pool)
                .await
                .unwrap(),
            ..Table::default()
        };
        let indexes: Vec<(String, bool, String, bool)> =
            sqlx::query_as(r#"SELECT name, "unique", origin, partial FROM pragma_index_list(?)"#)
                .bind(&name)
                .fetch_all(pool)
                .await
                .unwrap();
        for (index, unique, origin, partial) in indexes {
            let columns = sqlx::query_scalar("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                .bind(&index)
                .fetch_all(pool)
                .await
                .unwrap();
            table.indexes.insert(Index {
                // origin: "c" = CREATE INDEX, "pk" = PRIMARY KEY, "u" = UNIQUE constraint.
                name: (origin == "c").then_some(index),
                primary: origin == "pk",
                unique,
                partial,
                columns,
            });
        }
        shape.insert(name, table);
    }
    shape
}

/// SQL for the ordered attribute names of `keys` (an int2 array of attnums) in relation `rel`.
fn pg_attnames(keys: &str, rel: &str) -> String {
    format!(
        "ARRAY(SELECT a.attname::text FROM unnest({keys}) WITH ORDINALITY AS k(attnum, ord)
                JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = k.attnum ORDER BY k.ord)"
    )
}

async fn pg_shape(pool: &PgPool) -> Shape {
    let mut shape = Shape::new();
    let columns: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text, c.is_nullable = 'YES'
           FROM information_schema.columns c
           JOIN information_schema.tables t USING (table_schema, table_name)
          WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
            AND c.table_name <> '_sqlx_migrations'
          ORDER BY c.table_name, c.ordinal_position",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (table, column, nullable) in columns {
        shape.entry(table).or_default().columns.push((column, nullable));
    }
    #[derive(sqlx::FromRow)]
    struct TableIndex {
        table: String,
        #[sqlx(flatten)]
        index: Index,
    }
    let indexes: Vec<TableIndex> = sqlx::query_as(&format!(
        r#"SELECT t.relname::text AS "table",
                  CASE WHEN NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = x.indexrelid
                                           AND c.conrelid = x.indrelid AND c.contype IN ('p', 'u', 'x'))
                       THEN i.relname::text END AS name,
                  x.indisprimary AS "primary", x.indisunique AS "unique", x.indpred IS NOT NULL AS partial,
                  {} AS columns
             FROM pg_index x
             JOIN pg_class i ON i.oid = x.indexrelid
             JOIN pg_class t ON t.oid = x.indrelid
            WHERE t.relnamespace = 'public'::regnamespace AND t.relname <> '_sqlx_migrations'"#,
        pg_attnames("x.indkey::int2[]", "x.indrelid"),
    ))
    .fetch_all(pool)
    .await
    .unwrap();
    for TableIndex { table, index } in indexes {
        shape.entry(table).or_default().indexes.insert(index);
    }
    shape
}

async fn sqlite_foreign_keys(pool: &SqlitePool) -> BTreeSet<ForeignKey> {
    // One row per column of each foreign key, grouped by (table, foreign key id).
    let rows: Vec<(String, i64, String, String, String, String)> = sqlx::query_as(
        r#"SELECT m.name, f.id, f."table", f."from", f."to", f.on_delete
             FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f
            WHERE m.type = 'table' ORDER BY m.name, f.id, f.seq"#,
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut keys = BTreeMap::new();
    for (table, id, references, from, to, on_delete) in rows {
        let key = keys.entry((table.clone(), id)).or_insert_with(|| ForeignKey {
            table,
            columns: Vec::new(),
            references,
            ref_columns: Vec::new(),
            on_delete,
        });
        key.columns.push(from);
        key.ref_columns.push(to);
    }
    keys.into_values().collect()
}

async fn pg_foreign_keys(pool: &PgPool) -> BTreeSet<ForeignKey> {
    sqlx::query_as(&format!(
        r#"SELECT t.relname::text AS "table", {} AS columns, r.relname::text AS "references",
                  {} AS ref_columns,
                  CASE c.confdeltype WHEN 'r' THEN 'RESTRICT' WHEN 'a' THEN 'NO ACTION' WHEN 'c' THEN 'CASCADE'
                                     WHEN 'n' THEN 'SET NULL' ELSE 'SET DEFAULT' END AS on_delete
             FROM pg_constraint c
             JOIN pg_class t ON t.oid = c.conrelid
             JOIN pg_class r ON r.oid = c.confrelid
            WHERE c.contype = 'f' AND t.relnamespace = 'public'::regnamespace"#,
        pg_attnames("c.conkey", "c.conrelid"),
        pg_attnames("c.confkey", "c.confrelid"),
    ))
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

#[tokio::test]
async fn same_tables_columns_and_indexes_on_sqlite_and_postgres() {
    let mut shapes = BTreeMap::new();
    for (_db, pool) in pools().await {
        let shape = pool.shape().await;
        for (name, table) in &shape {
            let primary = table.indexes.iter().filter(|i| i.primary).count();
            assert_eq!(primary, 1, "{}: {name} has {primary} primary keys", pool.name());
        }
        shapes.insert(pool.name(), shape);
    }
    let sqlite = &shapes["sqlite"];
    let missing: Vec<_> = TABLES.iter().filter(|t| !sqlite.contains_key(**t)).collect();
    assert!(missing.is_empty(), "sqlite lacks tables {missing:?}");
    let Some(pg) = shapes.get("postgres") else {
        return;
    };
    assert_eq!(sqlite.keys().collect::<Vec<_>>(), pg.keys().collect::<Vec<_>>(), "tables differ");
    let mut diffs = Vec::new();
    for (name, sqlite_table) in sqlite {
        let pg_table = &pg[name];
        if sqlite_table.columns != pg_table.columns {
            diffs.push(format!(
                "{name} columns:\n  sqlite   {:?}\n  postgres {:?}",
                sqlite_table.columns, pg_table.columns
            ));
        }
        let (lite, post) = (&sqlite_table.indexes, &pg_table.indexes);
        diffs.extend(lite.difference(post).map(|i| format!("{name}: only on sqlite: {i:?}")));
        diffs.extend(post.difference(lite).map(|i| format!("{name}: only on postgres: {i:?}")));
    }
    assert!(diffs.is_empty(), "schemas differ:\n{}", diffs.join("\n"));
}

#[backends]
async fn all_fifteen_models_have_tables(tdb: TestDb) {
    let pool = Pool::of(&tdb).await;
    let shape = pool.shape().await;
    let missing: Vec<_> = TABLES.iter().filter(|t| !shape.contains_key(**t)).collect();
    assert!(missing.is_empty(), "{} lacks tables {missing:?}", pool.name());
}

#[tokio::test]
async fn schema_follows_citus_rules_postgres() {
    // Without PostgreSQL there is nothing to check (and with CI=true, `postgres` has already panicked).
    let Some(tdb) = support::postgres().await else {
        return;
    };
    let pool = Pool::of(&tdb).await;
    const ORG: &str = "organization_id";
    let mut violations = Vec::new();
    // Reference tables (replicated to every node): the tenants themselves and the key store's
    // singleton key check value.
    let reference_tables = ["organizations", "keystore_meta"];
    for (name, table) in pool.shape().await.iter().filter(|(name, _)| !reference_tables.contains(&name.as_str())) {
        if !table.columns.iter().any(|(column, _)| column == ORG) {
            violations.push(format!("{name}: no {ORG} column"));
        }
        for index in table.indexes.iter().filter(|i| i.unique && !i.columns.iter().any(|c| c == ORG)) {
            let kind = if index.primary { "primary key" } else { "unique index" };
            let index_name = index.name.as_deref().unwrap_or("(constraint)");
            violations.push(format!("{name}: {kind} {index_name} on {:?} lacks {ORG}", index.columns));
        }
    }
    for fk in pool.foreign_keys().await {
        // A reference table may be referenced by any single column; a distributed table only through
        // its distribution column, paired with the referencing table's own distribution column.
        let to_reference_table = fk.references == "organizations" && fk.ref_columns == ["id"];
        let colocated = fk.columns.iter().zip(&fk.ref_columns).any(|(c, r)| c == ORG && r == ORG);
        if !(colocated || (to_reference_table && fk.columns.len() == 1)) {
            violations.push(format!(
                "{}: foreign key {:?} -> {}{:?} is not co-located",
                fk.table, fk.columns, fk.references, fk.ref_columns
            ));
        }
    }
    assert!(violations.is_empty(), "Citus rule violations:\n{}", violations.join("\n"));
}

#[tokio::test]
async fn tenant_tables_have_restrictive_foreign_keys_on_sqlite_and_postgres() {
    let mut all = BTreeMap::new();
    let mut pg_shape = None;
    for (_db, pool) in pools().await {
        if pool.name() == "postgres" {
            pg_shape = Some(pool.shape().await);
        }
        let keys = pool.foreign_keys().await;
        assert!(!keys.is_empty(), "{}: no foreign keys", pool.name());
        let lax: Vec<_> = keys.iter().filter(|k| k.on_delete != "RESTRICT").collect();
        assert!(lax.is_empty(), "{}: foreign keys not ON DELETE RESTRICT: {lax:#?}", pool.name());
        all.insert(pool.name(), keys);
    }
    if let (Some(pg), Some(shape)) = (all.get("postgres"), &pg_shape) {
        let sqlite = &all["sqlite"];
        // PostgreSQL drops the keys another key of the same row implies (they cost a parent probe per
        // insert there); SQLite keeps them. Anything else that differs is a mistake.
        let implied = |k: &&_| implied_by_another(k, pg, shape);
        let only_sqlite: Vec<_> = sqlite.difference(pg).filter(|k| !implied(k)).collect();
        let only_pg: Vec<_> = pg.difference(sqlite).collect();
        assert!(
            only_sqlite.is_empty() && only_pg.is_empty(),
            "foreign keys differ\nonly on sqlite: {only_sqlite:#?}\nonly on postgres: {only_pg:#?}"
        );
    }
}

/// Whether `key`, absent from `keys`, is implied by one of them: another key of its table whose
/// columns are all NOT NULL (a key with a NULL column is not checked) covers its columns and leads to
/// the same parent, directly (an organization reached through a parent in the same organization) or
/// through the referenced table's own key (NOT NULL as well).
fn implied_by_another(key: &ForeignKey, keys: &BTreeSet<ForeignKey>, shape: &Shape) -> bool {
    let not_null = |table: &str, column: &String| {
        shape.get(table).is_some_and(|t| t.columns.iter().any(|(name, nullable)| name == column && !nullable))
    };
    keys.iter().filter(|other| other.table == key.table && other.references != key.references).any(|other| {
        let covers = key.columns.iter().all(|c| other.columns.contains(c));
        let checked = other.columns.iter().all(|c| not_null(&other.table, c));
        let to_organization = key.references == "organizations" && key.columns == ["organization_id"];
        let parent_leads_there = keys.iter().any(|p| {
            p.table == other.references
                && p.references == key.references
                && key.columns.iter().all(|c| p.columns.contains(c))
                && p.columns.iter().all(|c| not_null(&p.table, c))
        });
        covers && checked && (to_organization || parent_leads_there)
    })
}

const ORG_ID: &str = "'a0000000-0000-7000-8000-000000000000'";
const PATIENT_ID: &str = "'b0000000-0000-7000-8000-000000000000'";
const MISSION_ID: &str = "'c0000000-0000-7000-8000-000000000000'";
const CONVERSATION_ID: &str = "'d0000000-0000-7000-8000-000000000000'";

/// Fills a statement template. Uuids and timestamps are quoted literals, which PostgreSQL casts to the
/// column type, so the same text runs on both backends; `$1` is a BLOB/BYTEA (see [`Pool::execute`]).
fn fill(template: &str, id: &str, value: &str) -> String {
    template
        .replace("{org}", ORG_ID)
        .replace("{patient}", PATIENT_ID)
        .replace("{mission}", MISSION_ID)
        .replace("{conversation}", CONVERSATION_ID)
        .replace("{now}", "'2024-01-01T00:00:00.000000Z'")
        .replace("{id}", id)
        .replace("{v}", value)
}

const ORGANIZATION: &str = "INSERT INTO organizations (id, name, type, tax_id, is_active, compliance_regimes,
    data_retention_years, created_at, updated_at) VALUES ({id}, 'Austa', 'HOSPITAL', {v}, TRUE, '[]', 20, {now}, {now})";
const PATIENT: &str = "INSERT INTO patients (organization_id, id, first_name, last_name, phone, phone_bidx,
    preferred_language, timezone, is_active, is_verified, last_active_at, created_at, updated_at)
    VALUES ({org}, {id}, $1, $1, $1, $1, 'pt-BR', 'America/Sao_Paulo', TRUE, FALSE, {now}, {now}, {now})";
const MISSION: &str = "INSERT INTO missions (organization_id, id, title, description, category, difficulty,
    points_reward, required_actions, is_active, start_date, end_date, tags, created_at, updated_at)
    VALUES ({org}, {id}, 'Walk', '', 'LIFESTYLE', 'EASY', 10, '[]', TRUE, {v}, '2024-01-31T00:00:00.000000Z', '[]', {now}, {now})";
const CONVERSATION: &str = "INSERT INTO conversations (organization_id, id, patient_id, whatsapp_chat_id,
    whatsapp_chat_id_bidx, status, type, tags, priority, bot_enabled, message_count, satisfaction_score,
    started_at, last_message_at, created_at, updated_at)
    VALUES ({org}, {id}, {patient}, $1, $1, 'COMPLETED', 'SUPPORT', '[]', 'NORMAL', TRUE, 0, {v}, {now}, {now}, {now}, {now})";
const MESSAGE: &str = "INSERT INTO messages (organization_id, id, conversation_id, patient_id, direction, type,
    sender_kind, ai_processed, ai_confidence, urgency_level, requires_response, is_bot, status, sent_at, created_at, updated_at)
    VALUES ({org}, {id}, {conversation}, {patient}, 'INBOUND', 'TEXT', 'PATIENT', TRUE, {v}, 'LOW', FALSE, FALSE, 'SENT', {now}, {now}, {now})";
const BOT_MESSAGE: &str = "INSERT INTO messages (organization_id, id, conversation_id, patient_id, direction, type,
    sender_kind, ai_processed, urgency_level, requires_response, is_bot, status, sent_at, created_at, updated_at)
    VALUES ({org}, {id}, {conversation}, {patient}, 'OUTBOUND', 'TEXT', {v}, FALSE, 'LOW', FALSE, TRUE, 'SENT', {now}, {now}, {now})";
const HEALTH_POINTS: &str = "INSERT INTO health_points (organization_id, id, patient_id, total_points,
    available_points, spent_points, onboarding_points, engagement_points, health_points, achievement_points,
    current_level, experience_points, next_level_at, badges, achievements, daily_streak, weekly_streak,
    longest_streak, last_active_date, created_at, updated_at)
    VALUES ({org}, {id}, {patient}, {v}, 7, 3, 0, 0, 0, 0, 1, 0, 100, '[]', '[]', 0, 0, 0, {now}, {now}, {now})";
const ONBOARDING: &str = "INSERT INTO onboarding_progress (organization_id, id, patient_id, mission_id, status,
    progress, current_step, total_steps, points_earned, attempts_count, time_spent_minutes, last_interaction_at,
    created_at, updated_at)
    VALUES ({org}, {id}, {patient}, {mission}, 'IN_PROGRESS', {v}, 1, 3, 0, 1, 5, {now}, {now}, {now})";
const DOCUMENT: &str = "INSERT INTO documents (organization_id, id, patient_id, filename, original_name, mime_type,
    size_bytes, storage_provider, storage_path, type, category, tags, has_ocr, is_encrypted, access_level,
    sensitivity_level, is_active, uploaded_at, created_at, updated_at)
    VALUES ({org}, {id}, {patient}, $1, $1, 'application/pdf', {v}, 'LOCAL', $1, 'LAB_RESULT', 'LABORATORY', '[]',
            FALSE, TRUE, 'PATIENT_ONLY', 'SENSITIVE', TRUE, {now}, {now}, {now})";

#[backends]
async fn check_constraints_reject_bad_rows(tdb: TestDb) {
    // (what, template, accepted value, rejected value): the rejected row differs only in `{v}`.
    let cases = [
        ("organizations.tax_id length", ORGANIZATION, "'12345678000195'", "'123'"),
        ("health_points total = available + spent", HEALTH_POINTS, "10", "11"),
        ("onboarding_progress.progress <= 100", ONBOARDING, "100", "150"),
        ("conversations.satisfaction_score <= 5", CONVERSATION, "5", "6"),
        ("documents.size_bytes >= 0", DOCUMENT, "0", "-1"),
        ("missions start_date <= end_date", MISSION, "'2024-01-01T00:00:00.000000Z'", "'2024-02-01T00:00:00.000000Z'"),
        ("messages.ai_confidence <= 1", MESSAGE, "1", "1.5"),
        ("messages is_bot = (sender_kind = 'BOT')", BOT_MESSAGE, "'BOT'", "'PATIENT'"),
    ];
    let pool = Pool::of(&tdb).await;
    let backend = pool.name();
    let parents =
        [(ORGANIZATION, ORG_ID), (PATIENT, PATIENT_ID), (MISSION, MISSION_ID), (CONVERSATION, CONVERSATION_ID)];
    for (template, id) in parents {
        let sql = fill(template, id, "NULL");
        pool.execute(&sql).await.unwrap_or_else(|e| panic!("{backend}: {sql}: {e}"));
    }
    for (i, (what, template, good, bad)) in cases.iter().enumerate() {
        let id = format!("'e0000000-0000-7000-8000-{i:012}'");
        let rejected = pool.execute(&fill(template, &id, bad)).await;
        assert!(
            matches!(&rejected, Err(sqlx::Error::Database(e)) if e.is_check_violation()),
            "{backend}: {what}: {bad} was not rejected by a CHECK: {rejected:?}"
        );
        let accepted = pool.execute(&fill(template, &id, good)).await;
        assert!(accepted.is_ok(), "{backend}: {what}: {good} was rejected: {accepted:?}");
    }
}
