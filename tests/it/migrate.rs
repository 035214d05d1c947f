//! Migrations are idempotent, reach every agency, and refuse edited history.

use sqlx::Row;
use writ_tenancy::{Migration, TenancyError, migrate_all, tenant_migrations};
use writ_testkit::{TestDb, ok};

fn writ_migrate(db: &TestDb) -> String {
    ok(db.writ(&["migrate"]))
}

async fn catalog_fingerprint(db: &TestDb) -> (i64, i64, i64) {
    let r = sqlx::query(
        "SELECT (SELECT count(*) FROM control.schema_migrations), (SELECT count(*) FROM control.tenant_migrations), \
                (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = 'control' OR n.nspname LIKE 'agency\\_%')",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

#[tokio::test]
async fn writ_migrate_twice_changes_nothing_the_second_time() {
    let db = TestDb::new().await;
    db.onboard("agency-a").await;
    let first = writ_migrate(&db);
    let before = catalog_fingerprint(&db).await;
    let second = writ_migrate(&db);
    assert_eq!(first.trim(), "already up to date");
    assert_eq!(second.trim(), "already up to date");
    assert_eq!(catalog_fingerprint(&db).await, before);
}

const LATER: Migration = Migration {
    version: 9000,
    name: "notes",
    sql: "CREATE TABLE notes (agency_id uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid, body text); \
          GRANT SELECT, INSERT ON notes TO {{agency_role}};",
};

#[tokio::test]
async fn a_tenant_migration_added_later_reaches_every_agency() {
    let db = TestDb::new().await;
    let a = db.onboard("agency-a").await;
    let b = db.onboard("agency-b").await;
    let mut set = tenant_migrations().to_vec();
    set.push(LATER);
    let report = migrate_all(&db.pool, &set).await.unwrap();
    let mut got: Vec<_> = report.tenant.clone();
    got.sort();
    assert_eq!(
        got,
        vec![("agency-a".to_owned(), 9000), ("agency-b".to_owned(), 9000)]
    );
    for agency in [&a, &b] {
        let forced: bool = sqlx::query(
            "SELECT c.relforcerowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = 'notes'",
        )
        .bind(agency.ident.as_str())
        .fetch_one(&db.pool)
        .await
        .unwrap()
        .get(0);
        assert!(forced, "notes in {} lacks forced RLS", agency.slug);
    }
    assert!(migrate_all(&db.pool, &set).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_tenant_table_without_agency_id_is_refused() {
    let db = TestDb::new().await;
    db.onboard("agency-a").await;
    let mut set = tenant_migrations().to_vec();
    set.push(Migration {
        version: 9001,
        name: "loose",
        sql: "CREATE TABLE loose (x int);",
    });
    let err = migrate_all(&db.pool, &set).await.unwrap_err();
    assert!(
        matches!(err, TenancyError::TableWithoutAgencyId(ref t) if t == "loose"),
        "{err}"
    );
}

#[tokio::test]
async fn an_edited_migration_is_refused() {
    let db = TestDb::new().await;
    db.onboard("agency-a").await;
    let mut set = tenant_migrations().to_vec();
    set[0].sql = "CREATE TABLE policies (agency_id uuid);";
    let err = migrate_all(&db.pool, &set).await.unwrap_err();
    assert!(
        matches!(err, TenancyError::MigrationEdited { version: 1, .. }),
        "{err}"
    );
}
