//! Agency isolation is enforced by PostgreSQL itself: role privileges, search path and row-level
//! security each keep one agency out of another's data.

use sqlx::Row;
use writ_tenancy::{Migration, TenancyError, TenantTx};
use writ_testkit::{TestDb, sqlstate};

#[tokio::test]
async fn an_agency_transaction_cannot_read_another_agencys_schema() {
    let db = TestDb::new().await;
    let a = db.onboard("agency-a").await;
    let b = db.onboard("agency-b").await;

    let mut tx = TenantTx::begin(&db.pool, &a).await.unwrap();
    let sql = format!("SELECT * FROM {}.policies", b.ident.quoted());
    let err = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(tx.conn())
        .await
        .unwrap_err();
    assert_eq!(
        sqlstate(&err).as_deref(),
        Some("42501"),
        "expected permission denied, got {err}"
    );
}

#[tokio::test]
async fn row_level_security_rejects_rows_of_another_agency_and_hides_them() {
    let db = TestDb::new().await;
    let a = db.onboard("agency-a").await;
    let b = db.onboard("agency-b").await;

    let mut tx = TenantTx::begin(&db.pool, &b).await.unwrap();
    sqlx::query("INSERT INTO policies (name, value) VALUES ('retention.days', '400')")
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // A row carrying agency B's id inside agency A's own table is refused.
    let mut tx = TenantTx::begin(&db.pool, &a).await.unwrap();
    let err = sqlx::query("INSERT INTO policies (agency_id, name, value) VALUES ($1, 'x', '1')")
        .bind(b.id)
        .execute(tx.conn())
        .await
        .unwrap_err();
    assert_eq!(
        sqlstate(&err).as_deref(),
        Some("42501"),
        "expected an RLS violation, got {err}"
    );
    tx.rollback().await.unwrap();

    // Even a superuser copying B's row into A's table cannot make it visible to A.
    let sql = format!(
        "INSERT INTO {}.policies (agency_id, name, value) VALUES ($1, 'planted', '1')",
        a.ident.quoted()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(b.id)
        .execute(&db.pool)
        .await
        .unwrap();
    let mut tx = TenantTx::begin(&db.pool, &a).await.unwrap();
    let rows = sqlx::query("SELECT agency_id FROM policies")
        .fetch_all(tx.conn())
        .await
        .unwrap();
    assert!(rows.is_empty(), "agency A saw {} foreign rows", rows.len());
    let n: i64 = sqlx::query("SELECT count(*) FROM policies WHERE agency_id = $1")
        .bind(b.id)
        .fetch_one(tx.conn())
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn tenant_tables_force_row_level_security() {
    let db = TestDb::new().await;
    let a = db.onboard("agency-a").await;
    let rows = sqlx::query(
        "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
    )
    .bind(a.ident.as_str())
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        let name: String = r.get(0);
        assert!(
            r.get::<bool, _>(1) && r.get::<bool, _>(2),
            "{name} lacks forced RLS"
        );
    }
}

async fn leftovers(db: &TestDb) -> (i64, i64, i64, i64) {
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'agency\\_%'), \
                (SELECT count(*) FROM pg_roles r WHERE r.rolname LIKE 'agency\\_%' AND pg_has_role(current_user, r.oid, 'MEMBER')), \
                (SELECT count(*) FROM control.agencies), (SELECT count(*) FROM control.agency_keys)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

#[tokio::test]
async fn duplicate_slug_fails_and_leaves_nothing_behind() {
    // Roles are cluster-wide: a cluster of its own keeps other tests' agencies out of the count.
    let (_dir, cluster) = writ_testkit::own_cluster();
    let db = TestDb::at(cluster.url("postgres")).await;
    db.onboard("metro-pd").await;
    let before = leftovers(&db).await;
    let err = writ_tenancy::onboard(
        &db.pool,
        &db.keys,
        writ_tenancy::NewAgency {
            slug: "metro-pd",
            name: "Another",
            key_spec: writ_keys::KeySpec::Local,
        },
        writ_tenancy::tenant_migrations(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, TenancyError::SlugTaken(_)), "{err}");
    assert_eq!(leftovers(&db).await, before);
}

#[tokio::test]
async fn onboarding_that_fails_midway_leaves_nothing_behind() {
    let (_dir, cluster) = writ_testkit::own_cluster();
    let db = TestDb::at(cluster.url("postgres")).await;
    let before = leftovers(&db).await;
    let mut set = writ_tenancy::tenant_migrations().to_vec();
    set.push(Migration {
        version: 9001,
        name: "broken",
        sql: "CREATE TABLE broken (agency_id uuid); SELECT 1/0;",
    });
    let err = writ_tenancy::onboard(
        &db.pool,
        &db.keys,
        writ_tenancy::NewAgency {
            slug: "half-pd",
            name: "Half",
            key_spec: writ_keys::KeySpec::Local,
        },
        &set,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, TenancyError::Database(_)), "{err}");
    assert_eq!(leftovers(&db).await, before);
}

#[tokio::test]
async fn hostile_slugs_and_names_are_refused() {
    let db = TestDb::new().await;
    for (slug, name) in [
        ("x\"; DROP SCHEMA control; --", "n"),
        ("ok-slug", ""),
        ("ok-slug", "bad\u{0}name"),
    ] {
        let err = writ_tenancy::onboard(
            &db.pool,
            &db.keys,
            writ_tenancy::NewAgency {
                slug,
                name,
                key_spec: writ_keys::KeySpec::Local,
            },
            writ_tenancy::tenant_migrations(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, TenancyError::Invalid { .. }),
            "{slug:?} {name:?}: {err}"
        );
    }
    assert_eq!(leftovers(&db).await.2, 0);
}

/// Where the connection of `url` goes: `host:port`.
fn authority_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest).to_owned()
}

/// A TCP proxy to the database that loses a transaction's end: once the client sends `COMMIT`, the
/// client is cut off without an answer. With `forward_commit` the server gets the `COMMIT` (it
/// commits; the client cannot know), without it the server only sees the connection drop (it
/// rolls back). Serves one connection; returns the URL to connect to instead of `url`.
async fn proxy_losing_the_commit(url: &str, forward_commit: bool) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = authority_of(url);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        let answers = tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match server_read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let commit = buf[..n].windows(7).any(|w| w == b"COMMIT\0");
            if commit {
                // No answer reaches the client from here on.
                answers.abort();
                if forward_commit {
                    server_write.write_all(&buf[..n]).await.unwrap();
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                }
                return;
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    });
    let authority = authority_of(url);
    url.replacen(&authority, &format!("127.0.0.1:{port}"), 1)
}

async fn commit_through(
    db: &TestDb,
    agency: &writ_tenancy::Agency,
    forward_commit: bool,
    name: &str,
) -> Result<(), TenancyError> {
    let url = proxy_losing_the_commit(&db.url, forward_commit).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let mut tx = TenantTx::begin(&pool, agency).await.unwrap();
    sqlx::query("INSERT INTO policies (name, value) VALUES ($1, '1')")
        .bind(name)
        .execute(tx.conn())
        .await
        .unwrap();
    // Asked on the test's own pool: the proxied connection is gone.
    tx.commit_resolved(&db.pool).await
}

async fn policy_stored(db: &TestDb, agency: &writ_tenancy::Agency, name: &str) -> bool {
    let mut tx = TenantTx::begin(&db.pool, agency).await.unwrap();
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM policies WHERE name = $1)")
        .bind(name)
        .fetch_one(tx.conn())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_commit_whose_answer_was_lost_is_found_to_have_happened_or_not() {
    let db = TestDb::new().await;
    let a = db.onboard("agency-a").await;

    // The server committed; the client only saw its connection drop.
    commit_through(&db, &a, true, "lost.answer")
        .await
        .expect("the commit happened, and is reported so");
    assert!(policy_stored(&db, &a, "lost.answer").await);

    // The COMMIT never reached the server: the transaction rolled back, and that is certain.
    let err = commit_through(&db, &a, false, "lost.commit")
        .await
        .expect_err("the commit did not happen");
    assert!(
        !matches!(err, TenancyError::CommitUnknown(_)),
        "the database knows it rolled back: {err}"
    );
    assert!(!policy_stored(&db, &a, "lost.commit").await);
}
