//! writ-testkit boots the real parts for end-to-end tests: a private PostgreSQL cluster per test
//! binary with a fresh, migrated database per test, and the real `writ` binary serving on a random
//! loopback port. Tests talk to it over HTTP like any client.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;
use writ_keys::{KeyProvider, LocalProvider};
use writ_pg_harness::{Cluster, Durability};
use writ_tenancy::Agency;

pub mod audit;
pub mod cli;
pub mod esign;
pub mod key_conformance;
pub mod moto;
pub mod workload;
pub use audit::{
    as_attacker, audit_seqs, sequence, sha256_hex, sqlstate, superuser_error, write_agency_pem,
    write_events, write_pem,
};
pub use cli::{ok, text, writ_verify_bin, writ_verify_bundle};
pub use moto::{Moto, MotoGuard};

/// The cluster shared by every test of one test binary (0.7 s to start, so once is enough).
fn shared_cluster() -> &'static Mutex<Cluster> {
    static CLUSTER: OnceLock<Mutex<Cluster>> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        remove_stale_clusters();
        let dir = tempfile::Builder::new()
            .prefix("writ-test-pg-")
            .tempdir()
            .expect("temp dir for the test cluster")
            .keep();
        let mut cluster =
            Cluster::open(dir, Durability::Scratch).expect("initdb for the test cluster");
        cluster.start().expect("start the test cluster");
        Mutex::new(cluster)
    })
}

/// A shared cluster outlives its test binary's statics, so its directory is left behind; remove
/// those whose server is gone.
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with("writ-test-pg-")
        {
            continue;
        }
        let pid = std::fs::read_to_string(path.join("data/postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
        let alive = pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        // Another test process may be creating its cluster there right now (no server yet).
        let recent = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age < Duration::from_secs(600));
        if !alive && !recent {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// A cluster of the test's own, for tests that stop and start the database.
pub fn own_cluster() -> (tempfile::TempDir, Cluster) {
    // Another prefix than the shared cluster's: the stale-cluster sweep must never see these.
    let dir = tempfile::Builder::new()
        .prefix("writ-own-pg-")
        .tempdir()
        .expect("temp dir");
    let mut cluster = Cluster::open(dir.path().join("pg"), Durability::Scratch).expect("initdb");
    cluster.start().expect("start");
    (dir, cluster)
}

/// A fresh database in the shared cluster (or under `DATABASE_URL`'s server when set), migrated,
/// with its own master key file.
pub struct TestDb {
    pub url: String,
    pub pool: PgPool,
    pub keys: KeyProvider,
    pub master_key_file: PathBuf,
    _dir: tempfile::TempDir,
}

pub fn server_url(database: &str) -> String {
    match std::env::var("DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            let cut = base.rfind('/').map(|i| &base[..i]).unwrap_or(&base);
            format!("{cut}/{database}")
        }
        _ => shared_cluster()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .url(database),
    }
}

impl TestDb {
    pub async fn new() -> Self {
        let name = format!("t_{}", Uuid::new_v4().simple());
        let admin = PgPool::connect(&server_url("postgres"))
            .await
            .expect("connect to the test server");
        // `name` is generated above, never input.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let url = server_url(&name);
        Self::at(url).await
    }

    /// Connects to an existing database (e.g. in a test's own cluster) and migrates it.
    pub async fn at(url: String) -> Self {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(&url)
            .await
            .expect("connect to the test database");
        writ_tenancy::migrate_all(&pool, writ_tenancy::tenant_migrations())
            .await
            .expect("migrate the test database");
        let dir = tempfile::tempdir().expect("temp dir");
        let master_key_file = dir.path().join("master.key");
        let keys =
            KeyProvider::new(LocalProvider::open_or_create(&master_key_file).expect("master key"));
        Self {
            url,
            pool,
            keys,
            master_key_file,
            _dir: dir,
        }
    }

    pub async fn onboard(&self, slug: &str) -> Agency {
        writ_tenancy::onboard(
            &self.pool,
            &self.keys,
            writ_tenancy::NewAgency {
                slug,
                name: &format!("{slug} police department"),
                key_spec: writ_keys::KeySpec::Local,
            },
            writ_tenancy::tenant_migrations(),
        )
        .await
        .expect("onboard agency")
    }
}

/// The `writ` binary of this build (built by `make test` before the tests run).
pub fn writ_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/debug/deps/<test> -> target/debug/writ
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("writ");
    assert!(
        bin.is_file(),
        "{} not built: run `cargo build --bins` first (make test does)",
        bin.display()
    );
    bin
}

/// The `writ` binary set up for a test database: its URL and master key, quiet logs, and cheap
/// argon2 to keep the suites fast (tests that measure timing set their own).
pub fn writ_command(database_url: &str, master_key_file: &std::path::Path) -> Command {
    let mut cmd = Command::new(writ_bin());
    cmd.env("DATABASE_URL", database_url)
        .env("WRIT_MASTER_KEY_FILE", master_key_file)
        .env("WRIT_LOG", "warn")
        .env("WRIT_ARGON2_MEMORY_KIB", "64")
        .env("WRIT_ARGON2_ITERATIONS", "1");
    cmd
}

impl TestDb {
    /// Runs a `writ` command against this database and returns its output.
    pub fn writ(&self, args: &[&str]) -> std::process::Output {
        writ_command(&self.url, &self.master_key_file)
            .args(args)
            .output()
            .expect("run writ")
    }
}

/// The real server, started on a random loopback port; killed on drop.
pub struct TestServer {
    child: Child,
    pub base: String,
    pub http: reqwest::Client,
}

/// `url` with its user (and password) replaced by `user`: the test clusters trust loopback, so
/// the roles `writ migrate` creates log in without a password.
pub fn url_as(url: &str, user: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let host = match authority.rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    format!("{scheme}://{user}@{host}")
}

/// The server's login: the serving role (`writ_app`, no superuser, no BYPASSRLS).
pub fn serving_url(database_url: &str) -> String {
    url_as(database_url, writ_tenancy::SERVING_ROLE)
}

/// The owner role's connection (`writ_owner`): onboarding, offboarding, pruning.
pub fn owner_url(database_url: &str) -> String {
    url_as(database_url, writ_tenancy::OWNER_ROLE)
}

impl TestServer {
    pub fn start(db: &TestDb) -> Self {
        Self::start_with(&db.url, &db.master_key_file, &[])
    }

    /// Starts `writ serve` on the database of `database_url` (a superuser's URL, as `TestDb`
    /// has) the way a deployment runs it: serving through `writ_app`, with `writ_owner` for
    /// onboarding and pruning.
    pub fn start_with(
        database_url: &str,
        master_key_file: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Self {
        let mut cmd = Self::command(database_url, master_key_file, env);
        let mut child = cmd.spawn().expect("spawn writ serve");
        let base = Self::wait_listening(&mut child);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            // Below the server's keep-alive, so a test that pauses never reuses a closed connection.
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .expect("http client");
        Self { child, base, http }
    }

    /// The `writ serve` command `start_with` runs, stdout piped, for tests that run it themselves.
    pub fn command(
        database_url: &str,
        master_key_file: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Command {
        let mut cmd = writ_command(&serving_url(database_url), master_key_file);
        cmd.env("WRIT_OWNER_DATABASE_URL", owner_url(database_url));
        cmd.arg("serve")
            .env("WRIT_BIND", "127.0.0.1:0")
            .env("WRIT_WORKERS", "2")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Waits for the "writ listening on" line and returns the base URL.
    fn wait_listening(child: &mut Child) -> String {
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("writ listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("writ serve did not start listening")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every audit action recorded for `agency`, sequenced (`audit_log`, in order) and still pending.
pub async fn audit_actions(db: &TestDb, agency: &Agency) -> Vec<String> {
    let schema = agency.ident.quoted();
    // The schema name is generated and validated (AgencyIdent), never input.
    let sql = format!(
        "SELECT action FROM (SELECT action, 0 AS pending, seq AS o, ts FROM {schema}.audit_log \
         UNION ALL SELECT event->>'action', 1, 0, recorded_at FROM {schema}.audit_pending) e \
         ORDER BY pending, o, ts"
    );
    sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
        .fetch_all(&db.pool)
        .await
        .expect("read audit actions")
}

/// An enrolled account the test knows the credentials of.
pub struct TestUser {
    pub id: Uuid,
    pub agency: String,
    pub username: String,
    pub password: String,
    pub secret: Vec<u8>,
    last_step: Mutex<u64>,
}

impl TestUser {
    pub fn new(id: Uuid, agency: &str, username: &str, password: &str, secret: Vec<u8>) -> Self {
        Self {
            id,
            agency: agency.into(),
            username: username.into(),
            password: password.into(),
            secret,
            last_step: Mutex::new(0),
        }
    }

    /// A TOTP code for a time step this user has not used yet (the server refuses replays): the
    /// current step, else the next one (within the accepted skew), else waits for a fresh step.
    pub fn next_code(&self) -> String {
        let mut last = self.last_step.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs();
            let step = (now / 30).max(*last + 1);
            if step <= now / 30 + 1 {
                *last = step;
                return writ_auth_mfa::totp::code_at(&self.secret, step * 30).expect("totp");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// A login body with a fresh code (consumes a time step).
    pub fn login_body(&self) -> serde_json::Value {
        self.body_with_code(&self.next_code())
    }

    /// A login body with the given code (for attempts meant to fail).
    pub fn body_with_code(&self, code: &str) -> serde_json::Value {
        serde_json::json!({
            "agency": self.agency,
            "username": self.username,
            "password": self.password,
            "totp": code,
            "bannerAck": true,
        })
    }
}

/// Creates an active, enrolled user directly (as `writ dev` does), for tests that need an
/// administrator before they can use the users API. Uses the test server's master key file.
pub async fn seed_user(
    db: &TestDb,
    agency: &Agency,
    username: &str,
    role: writ_auth_mfa::Role,
) -> TestUser {
    let auth = writ_auth_mfa::Auth::new(
        &db.pool,
        db.keys.clone(),
        writ_auth_mfa::AuthConfig {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            ..Default::default()
        },
    )
    .await
    .expect("auth");
    let password = format!("{username}-Seeded-Passphrase");
    let mut tx = writ_tenancy::TenantTx::begin(&db.pool, agency)
        .await
        .expect("tenant tx");
    let secret = writ_auth_mfa::ensure_demo_user(
        &mut writ_auth_mfa::Realm::Agency(&mut tx),
        &auth,
        username,
        role,
        &password,
    )
    .await
    .expect("seed user");
    let id = sqlx::query_scalar::<_, Uuid>("SELECT id FROM users WHERE username = $1")
        .bind(username)
        .fetch_one(tx.conn())
        .await
        .expect("seeded id");
    tx.commit().await.expect("commit");
    TestUser::new(
        id,
        &agency.slug,
        username,
        &password,
        writ_auth_mfa::totp::secret_from_base32(&secret).expect("secret"),
    )
}

impl TestServer {
    /// Logs `user` in; panics unless it succeeds. Returns the token response.
    pub async fn login(&self, user: &TestUser) -> serde_json::Value {
        let res = self
            .http
            .post(self.url("/v1/auth/login"))
            .json(&user.login_body())
            .send()
            .await
            .expect("login request");
        let status = res.status();
        let body: serde_json::Value = res.json().await.expect("login body");
        assert_eq!(status, 200, "login of {} failed: {body}", user.username);
        body
    }

    /// Logs `user` in and returns the access token.
    pub async fn token(&self, user: &TestUser) -> String {
        self.login(user).await["accessToken"]
            .as_str()
            .expect("access token")
            .to_owned()
    }

    /// `method path` with `token` as bearer and `body` (if any) as JSON; returns the status and
    /// the JSON answer (`Null` when there is none).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let method = match method {
            "GET" => reqwest::Method::GET,
            "POST" => reqwest::Method::POST,
            "PATCH" => reqwest::Method::PATCH,
            "PUT" => reqwest::Method::PUT,
            "DELETE" => reqwest::Method::DELETE,
            other => panic!("unsupported method {other}"),
        };
        let mut r = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let res = r.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Steps `user`'s session up (`POST /v1/auth/reauth` with a fresh code); panics unless it
    /// succeeds.
    pub async fn step_up(&self, user: &TestUser, token: &str) {
        self.step_up_at("/v1/auth/reauth", user, token).await;
    }

    /// Steps a platform operator's session up (`POST /v1/platform/auth/reauth`).
    pub async fn operator_step_up(&self, operator: &TestUser, token: &str) {
        self.step_up_at("/v1/platform/auth/reauth", operator, token)
            .await;
    }

    async fn step_up_at(&self, path: &str, user: &TestUser, token: &str) {
        let (status, body) = self
            .call(
                "POST",
                path,
                token,
                Some(serde_json::json!({ "totp": user.next_code() })),
            )
            .await;
        assert_eq!(status, 200, "step-up of {} failed: {body}", user.username);
    }
}

/// Settings for an Azure Key Vault provider that trusts the in-repo fake vault and authenticates
/// with its client secret.
pub fn fake_vault_settings(
    vault: &writ_fake_keyvault::FakeKeyVault,
) -> writ_keys::AzureKeyVaultSettings {
    writ_keys::AzureKeyVaultSettings {
        credential: writ_keys::AzureCredential::ClientSecret {
            tenant_id: vault.tenant_id().into(),
            client_id: vault.client_id().into(),
            client_secret: vault.client_secret().into(),
        },
        authority_host: Some(vault.url()),
        extra_root_certificates: vec![vault.certificate_pem().as_bytes().to_vec()],
        // The challenge names https://vault.azure.net, of which 127.0.0.1 is no subdomain.
        verify_challenge_resource: false,
        // 3072-bit keys work the same; 2048 keeps the fake's key generation quick.
        rsa_key_size: 2048,
        ..Default::default()
    }
}

/// Makes the control plane refuse to record a new `purpose` key version ("signing" or "kek"),
/// as a database failing at that moment would, until [`accept_key_versions`].
pub async fn refuse_key_versions(db: &TestDb, purpose: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE FUNCTION refuse_key_version() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.purpose = '{purpose}' THEN RAISE EXCEPTION 'refused'; END IF; \
         RETURN NEW; END $$; \
         CREATE TRIGGER refuse_key_version BEFORE INSERT ON control.agency_keys \
         FOR EACH ROW EXECUTE FUNCTION refuse_key_version();"
    )))
    .execute(&db.pool)
    .await
    .unwrap();
}

pub async fn accept_key_versions(db: &TestDb) {
    sqlx::raw_sql(
        "DROP TRIGGER refuse_key_version ON control.agency_keys; \
         DROP FUNCTION refuse_key_version();",
    )
    .execute(&db.pool)
    .await
    .unwrap();
}
