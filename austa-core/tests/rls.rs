//! PostgreSQL row-level security: the second wall between tenants, proven with raw SQL as the runtime
//! role `austa_app` (the role every other test's library calls run as). An unfiltered statement (what a
//! repository query would become if its organization filter were removed) sees and changes only the
//! current organization's rows, and nothing at all when no organization is set.

use austa_core::seed::{self, ids};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::support;

/// Tables under row-level security: every table with `organization_id`, except the key store's.
async fn rls_tables(owner: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.table_name::text FROM information_schema.columns c \
         WHERE c.table_schema = 'public' AND c.column_name = 'organization_id' \
           AND c.table_name NOT IN ('organization_keys', 'patient_keys') ORDER BY 1",
    )
    .fetch_all(owner)
    .await
    .unwrap()
}

async fn count_as_app(app: &PgPool, table: &str, organization: Option<Uuid>) -> i64 {
    let mut tx = app.begin().await.unwrap();
    let org = organization.map(|o| o.to_string()).unwrap_or_default();
    sqlx::query("SELECT set_config('austa.organization_id', $1, true)").bind(org).execute(&mut *tx).await.unwrap();
    let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
    n
}

async fn count_as_owner(owner: &PgPool, table: &str, organization: Uuid) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE organization_id = $1"))
        .bind(organization)
        .fetch_one(owner)
        .await
        .unwrap()
}

/// The PostgreSQL test database, seeded through the library (as `austa_app`), with raw pools as the
/// owner and as the runtime role.
async fn seeded() -> Option<(support::TestDb, PgPool, PgPool)> {
    let tdb = support::postgres().await?;
    seed::run(&tdb.db).await.unwrap();
    let owner = PgPool::connect(&tdb.url).await.unwrap();
    let app = PgPool::connect(&tdb.app_url).await.unwrap();
    Some((tdb, owner, app))
}

#[tokio::test]
async fn every_tenant_table_has_forced_row_level_security_postgres() {
    let Some((_tdb, owner, _app)) = seeded().await else { return };
    let tables = rls_tables(&owner).await;
    assert!(tables.len() >= 17, "{tables:?}");
    for table in &tables {
        let row = sqlx::query("SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = $1")
            .bind(table)
            .fetch_one(&owner)
            .await
            .unwrap();
        assert!(row.get::<bool, _>(0) && row.get::<bool, _>(1), "{table}: RLS enabled and forced");
        let policies: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_policies WHERE tablename = $1")
            .bind(table)
            .fetch_one(&owner)
            .await
            .unwrap();
        // whatsapp_numbers has separate SELECT / INSERT / DELETE policies (the webhook routes by a
        // number across organizations, but may change only its own organization's).
        let expected = if table == "whatsapp_numbers" { 3 } else { 1 };
        assert_eq!(policies, expected, "{table}");
    }
    // The runtime role owns nothing and cannot bypass the policies.
    let role = sqlx::query("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'austa_app'")
        .fetch_one(&owner)
        .await
        .unwrap();
    assert!(!role.get::<bool, _>(0) && !role.get::<bool, _>(1));
    let owned: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_tables WHERE tableowner = 'austa_app'")
        .fetch_one(&owner)
        .await
        .unwrap();
    assert_eq!(owned, 0);
}

#[tokio::test]
async fn unfiltered_reads_see_only_the_current_organization_and_nothing_without_one_postgres() {
    let Some((_tdb, owner, app)) = seeded().await else { return };
    let mut seen_rows = 0;
    for table in rls_tables(&owner).await {
        assert_eq!(count_as_app(&app, &table, None).await, 0, "{table}: no organization, no rows");
        for org in [ids::HOSPITAL, ids::CLINIC] {
            let visible = count_as_app(&app, &table, Some(org)).await;
            assert_eq!(visible, count_as_owner(&owner, &table, org).await, "{table}: exactly {org}'s rows");
            seen_rows += visible;
        }
    }
    assert!(seen_rows > 25, "the seed's rows were visible to their own organization");
}

#[tokio::test]
async fn unfiltered_writes_touch_only_the_current_organization_postgres() {
    let Some((_tdb, owner, app)) = seeded().await else { return };
    let mut tx = app.begin().await.unwrap();
    sqlx::query("SELECT set_config('austa.organization_id', $1, true)")
        .bind(ids::HOSPITAL.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    // An UPDATE without a filter changes the hospital's patients only.
    let updated = sqlx::query("UPDATE patients SET is_active = false").execute(&mut *tx).await.unwrap();
    assert_eq!(updated.rows_affected(), 2, "Carlos and Ana, not Pedro");
    // A row for another organization cannot be written.
    let err = sqlx::query("UPDATE missions SET organization_id = $1").bind(ids::CLINIC).execute(&mut *tx).await;
    assert!(err.unwrap_err().to_string().contains("row-level security"));
    tx.rollback().await.unwrap();
    // Hard deletes are not granted at all.
    let err = sqlx::query("DELETE FROM patients").execute(&app).await.unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    let clinic_active: bool = sqlx::query_scalar("SELECT is_active FROM patients WHERE id = $1")
        .bind(ids::PATIENT_PEDRO)
        .fetch_one(&owner)
        .await
        .unwrap();
    assert!(clinic_active);
}

#[tokio::test]
async fn a_session_naming_another_tenant_s_number_can_read_but_not_delete_it_postgres() {
    let Some((_tdb, owner, app)) = seeded().await else { return };
    let mut tx = app.begin().await.unwrap();
    for (name, value) in [
        ("austa.organization_id", ids::CLINIC.to_string()),
        ("austa.whatsapp_phone_number_id", ids::HOSPITAL_WHATSAPP_NUMBER.into()),
    ] {
        sqlx::query("SELECT set_config($1, $2, true)").bind(name).bind(value).execute(&mut *tx).await.unwrap();
    }
    let visible: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM whatsapp_numbers").fetch_one(&mut *tx).await.unwrap();
    assert_eq!(visible, 1, "the routed number is readable");
    let deleted = sqlx::query("DELETE FROM whatsapp_numbers").execute(&mut *tx).await.unwrap();
    assert_eq!(deleted.rows_affected(), 0, "but not the clinic's to delete");
    tx.commit().await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM whatsapp_numbers").fetch_one(&owner).await.unwrap();
    assert_eq!(left, 1);
}
