//! `writ dev` (what `make run` runs): everything a newcomer needs, on loopback, from nothing.

use sqlx::Row;
use writ_pg_harness::Cluster;

use crate::Config;

pub const DEMO_SLUG: &str = "demo";
const DEMO_NAME: &str = "Demo County Sheriff's Office";

pub async fn run(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)?;
    // Keep the private cluster alive for the whole run; dropping it stops PostgreSQL.
    let mut cluster = None;
    let url = match &config.database_url {
        Some(url) => url.clone(),
        None => {
            let dir = config.data_dir.join("pg");
            let c = tokio::task::spawn_blocking(move || -> anyhow::Result<Cluster> {
                let mut c = Cluster::open(dir)?;
                c.start()?;
                Ok(c)
            })
            .await??;
            ensure_database(&c, "writ").await?;
            let url = c.url("writ");
            println!(
                "private PostgreSQL on 127.0.0.1:{} (data in {})",
                c.port(),
                c.dir().display()
            );
            cluster = Some(c);
            url
        }
    };
    let state = crate::cli::state_for_url(&config, &url).await?;
    writ_tenancy::migrate_all(&state.pool, writ_tenancy::tenant_migrations()).await?;
    let agency = match writ_tenancy::agency_by_slug(&state.pool, DEMO_SLUG).await? {
        Some(a) => a,
        None => {
            writ_tenancy::onboard(
                &state.pool,
                &state.keys,
                writ_tenancy::NewAgency {
                    slug: DEMO_SLUG,
                    name: DEMO_NAME,
                    key_spec: writ_keys::KeySpec::Local,
                },
                writ_tenancy::tenant_migrations(),
            )
            .await?
        }
    };
    println!(
        "demo agency: {} ({}), id {}",
        agency.slug, agency.name, agency.id
    );
    demo_users(&state, &agency).await?;
    println!("API:  http://{}/", config.bind);
    println!("docs: http://{}/docs/", config.bind);
    let served = crate::app::serve(&config, state).await;
    drop(cluster);
    served
}

async fn ensure_database(cluster: &Cluster, name: &'static str) -> anyhow::Result<()> {
    let pool = sqlx::PgPool::connect(&cluster.url("postgres")).await?;
    let exists = sqlx::query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&pool)
        .await?
        .try_get::<i64, _>("n")?
        > 0;
    if !exists {
        // `name` is one of our constants, never input.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&pool)
            .await?;
    }
    pool.close().await;
    Ok(())
}

/// One active demo user per agency role, printed with password and TOTP secret.
async fn demo_users(state: &crate::AppState, agency: &writ_tenancy::Agency) -> anyhow::Result<()> {
    let auth = state.auth().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "writ".into());
    println!(
        "demo users (log in with POST /v1/auth/login {{agency, username, password, totp, bannerAck: true}}):"
    );
    for role in writ_auth_mfa::Role::AGENCY {
        let username = role.as_str().replace('_', "-");
        let password = format!("demo-{username}-passphrase");
        let mut tx = writ_tenancy::TenantTx::begin(&state.pool, agency).await?;
        let secret = writ_auth_mfa::ensure_demo_user(
            &mut writ_auth_mfa::Realm::Agency(&mut tx),
            auth,
            &username,
            role,
            &password,
        )
        .await?;
        tx.commit().await?;
        println!(
            "  {:<13} username {:<13} password {:<30} totp secret {secret}  (code: {exe} totp {secret})",
            role.as_str(),
            username,
            password
        );
    }
    Ok(())
}
