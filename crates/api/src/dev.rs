//! `writ dev` (what `make run` runs): everything a newcomer needs, on loopback, from nothing.

use std::path::{Path, PathBuf};

use sqlx::Row;
use writ_pg_harness::{Cluster, Durability};

use crate::Config;

pub const DEMO_SLUG: &str = "demo";
const DEMO_NAME: &str = "Demo County Sheriff's Office";

pub async fn run(mut config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)?;
    if config.archive_destinations.is_empty() {
        // A laptop archives to its own data directory unless told otherwise.
        let archives = config.data_dir.join("archives");
        std::fs::create_dir_all(&archives)?;
        let archives = archives.canonicalize()?;
        config.archive_destinations =
            writ_audit_log::ArchiveDestinations::parse(&format!("file://{}", archives.display()))
                .map_err(|e| anyhow::anyhow!("the archive directory {}: {e}", archives.display()))?;
    }
    // Keep the private cluster alive for the whole run; dropping it stops PostgreSQL.
    let mut cluster = None;
    let urls = match &config.database_url {
        Some(url) => crate::cli::DatabaseUrls {
            serving: url.clone(),
            owner: config
                .owner_database_url
                .clone()
                .unwrap_or_else(|| url.clone()),
        },
        None => {
            let dir = config.data_dir.join("pg");
            let c = tokio::task::spawn_blocking(move || -> anyhow::Result<Cluster> {
                let mut c = Cluster::open(dir, Durability::Durable)?;
                c.start()?;
                Ok(c)
            })
            .await??;
            ensure_database(&c, "writ").await?;
            // The cluster's superuser creates the owner and serving roles (first migration);
            // from then on the server connects only as those two.
            let admin = sqlx::PgPool::connect(&c.url("writ")).await?;
            let migrated =
                writ_tenancy::migrate_all(&admin, writ_tenancy::tenant_migrations()).await;
            admin.close().await;
            migrated?;
            println!(
                "private PostgreSQL on 127.0.0.1:{} (data in {})",
                c.port(),
                c.dir().display()
            );
            let urls = crate::cli::DatabaseUrls {
                serving: c.url_as(writ_tenancy::SERVING_ROLE, "writ"),
                owner: c.url_as(writ_tenancy::OWNER_ROLE, "writ"),
            };
            cluster = Some(c);
            urls
        }
    };
    let served = serve(&config, &urls).await;
    remove_database_file(&config.data_dir);
    if let Some(mut c) = cluster {
        // Stopping waits for PostgreSQL to exit: off the runtime's thread.
        let _ = tokio::task::spawn_blocking(move || c.stop()).await;
    }
    served
}

async fn serve(config: &Config, urls: &crate::cli::DatabaseUrls) -> anyhow::Result<()> {
    let state = crate::cli::state_for_urls(config, urls, crate::cli::Connect::Dev).await?;
    // Also the first step of a deployment whose roles exist: migrations run as the owner.
    writ_tenancy::migrate_all(&state.owner_pool, writ_tenancy::tenant_migrations()).await?;
    let agency = match writ_tenancy::agency_by_slug(&state.pool, DEMO_SLUG).await? {
        Some(a) => a,
        None => {
            writ_tenancy::onboard(
                &state.owner_pool,
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
    demo_courts(&state, &agency).await?;
    let path = write_database_file(&config.data_dir, urls)?;
    println!(
        "database URLs for the command line in {} (removed when this stops)",
        path.display()
    );
    crate::app::serve(config, state).await
}

/// Where `writ dev` writes its database URLs while it runs (mode 0600): shell `KEY=value` lines,
/// so `set -a; . .writ/database.env` works too.
pub fn database_file(data_dir: &Path) -> PathBuf {
    data_dir.join("database.env")
}

fn write_database_file(
    data_dir: &Path,
    urls: &crate::cli::DatabaseUrls,
) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = database_file(data_dir);
    let text = format!(
        "# Written by `writ dev` (pid {pid}) while it runs; removed when it stops.\n\
         DATABASE_URL={}\nWRIT_OWNER_DATABASE_URL={}\nWRIT_DEV_PID={pid}\n",
        urls.serving,
        urls.owner,
        pid = std::process::id()
    );
    // Written whole under a temporary name, then renamed: a reader never sees half a file.
    let tmp = data_dir.join(".database.env.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

fn remove_database_file(data_dir: &Path) {
    let path = database_file(data_dir);
    // Only our own: another `writ dev` may have taken the directory over since.
    let ours = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| field(&t, "WRIT_DEV_PID").and_then(|p| p.parse::<u32>().ok()))
        == Some(std::process::id());
    if ours && let Err(e) = std::fs::remove_file(&path) {
        tracing::warn!(path = %path.display(), error = %e, "removing the database URL file");
    }
}

fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The URLs of the `writ dev` running with `data_dir`, for the command line; the error names
/// `DATABASE_URL` and the file, and tells a stale file (its `writ dev` is gone) from none.
pub fn read_database_file(data_dir: &Path) -> anyhow::Result<crate::cli::DatabaseUrls> {
    let path = database_file(data_dir);
    let shown = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "DATABASE_URL is not set and {} does not exist: set DATABASE_URL, or run `writ dev` \
             (`make run`) and point WRIT_DATA_DIR at its data directory",
            shown.display()
        ),
        Err(e) => anyhow::bail!("{}: {e}", shown.display()),
    };
    if let Some(pid) = field(&text, "WRIT_DEV_PID").and_then(|p| p.parse::<u32>().ok())
        && !Path::new(&format!("/proc/{pid}")).exists()
    {
        anyhow::bail!(
            "DATABASE_URL is not set and {} is stale: the `writ dev` that wrote it (pid {pid}) is \
             not running; start it again (`make run`) or set DATABASE_URL",
            shown.display()
        );
    }
    let serving = field(&text, "DATABASE_URL");
    let owner = field(&text, "WRIT_OWNER_DATABASE_URL").or(serving);
    match (serving, owner) {
        (Some(serving), Some(owner)) => Ok(crate::cli::DatabaseUrls {
            serving: serving.to_owned(),
            owner: owner.to_owned(),
        }),
        _ => anyhow::bail!("{}: no DATABASE_URL line", shown.display()),
    }
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

/// The demo agency applies to two courts from the shipped presets, so a warrant can be drafted at
/// once: the federal court of Minnesota (prosecutor review and a video oath required) and
/// Hennepin County District Court (Minnesota's rules). Set once; an administrator's later change
/// of the `warrant-types` policy is kept.
async fn demo_courts(state: &crate::AppState, agency: &writ_tenancy::Agency) -> anyhow::Result<()> {
    use writ_warrant_workflow::Preset;
    // Both courts sit in Minnesota: the state preset's zone (America/Chicago) is theirs.
    let chicago = Preset::Minnesota
        .suggested_time_zone()
        .ok_or_else(|| anyhow::anyhow!("the Minnesota preset suggests no time zone"))?;
    let mut tx = writ_tenancy::TenantTx::begin(&state.pool, agency).await?;
    let policy = writ_warrant_workflow::WARRANT_TYPES_POLICY;
    if writ_tenancy::policy_value(&mut tx, policy).await?.is_none() {
        let courts = serde_json::json!({ "courts": [
            Preset::Federal.court("d-minn", "U.S. District Court, District of Minnesota", chicago),
            Preset::Minnesota.court("mn-hennepin", "Hennepin County District Court", chicago),
        ]});
        let registry = crate::routes::policies::registry(state);
        let caller = crate::audit_cli::cli_caller();
        writ_auth_mfa::set_policy(&mut tx, &caller, &registry, policy, courts)
            .await
            .map_err(|e| anyhow::anyhow!("the demo courts: {e}"))?;
    }
    tx.commit().await?;
    println!(
        "demo courts (warrant-types policy): d-minn (federal rules: prosecutor review, video oath), \
         mn-hennepin (Minnesota rules)"
    );
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
        // What a signature record names besides the person: the officer's badge, the judge's id.
        let badge = match role {
            writ_auth_mfa::Role::Officer => Some("4471"),
            writ_auth_mfa::Role::Judge => Some("JUD-0193"),
            _ => None,
        };
        if let Some(badge) = badge {
            writ_auth_mfa::ensure_demo_badge(
                &mut writ_auth_mfa::Realm::Agency(&mut tx),
                &username,
                badge,
            )
            .await?;
        }
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
