//! Operations: clean shutdown on SIGTERM/SIGINT, the least-privilege database roles, the command
//! line reaching the database of `writ dev`, and who is recorded for a command-line action.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use writ_testkit::audit::entries_with_action as entries;

use sqlx::Row;
use writ_auth_mfa::Role;
use writ_testkit::{
    TestDb, TestServer, ok, owner_url, seed_user, serving_url, text, writ_bin, writ_command,
    writ_verify_bundle, write_agency_pem,
};

/// A spawned `writ` whose stdout is read line by line and whose stderr is collected.
struct Running {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    fn spawn(mut cmd: Command) -> Self {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn writ");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            let _ = stderr.read_to_string(&mut all);
            all
        });
        Self {
            child,
            lines,
            stderr: Some(stderr),
        }
    }

    /// Waits for a stdout line starting with `prefix` and returns the rest of it.
    fn wait_line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.to_owned();
                    }
                }
                Err(_) => panic!("no line starting with {prefix:?}"),
            }
        }
    }

    /// Sends `signal` and waits for the process to exit; returns its status and its stderr.
    fn stop_with(mut self, signal: libc::c_int) -> (std::process::ExitStatus, String) {
        // SAFETY: signalling our own child, which has not been reaped yet.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("writ did not exit within 60 s of signal {signal}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        (status, stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the server's two notification listeners (audit sequencer, export worker) are
/// connected to `db`: the objects whose drop outside the runtime used to abort the process.
async fn wait_for_listeners(db: &TestDb) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        if n >= 2 {
            return;
        }
        assert!(Instant::now() < deadline, "the listeners never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_clean_exit(status: std::process::ExitStatus, stderr: &str, what: &str) {
    assert_eq!(status.code(), Some(0), "{what}: {status}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{what}:\n{stderr}");
    assert!(
        stderr.lines().any(|l| l.contains(r#""message":"stopped""#)),
        "{what}: no \"stopped\" line:\n{stderr}"
    );
}

#[tokio::test]
async fn serve_exits_0_on_sigterm_and_sigint_after_stopping_its_background_work() {
    for (signal, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let db = TestDb::new().await;
        db.onboard("stop-pd").await;
        let mut cmd = TestServer::command(&db.url, &db.master_key_file, &[("WRIT_LOG", "info")]);
        cmd.stderr(Stdio::piped());
        let server = Running::spawn(cmd);
        server.wait_line("writ listening on ");
        wait_for_listeners(&db).await;
        let (status, stderr) = server.stop_with(signal);
        assert_clean_exit(status, &stderr, &format!("writ serve, {name}"));
    }
}

/// The server's own life is in every agency's chain: its start with its settings, its stop, and
/// a start whose settings differ from the last one names what changed.
#[tokio::test]
async fn starts_stops_and_changed_settings_are_in_the_chain() {
    let db = TestDb::new().await;
    let agency = db.onboard("life-pd").await;
    for idle in ["1800", "900"] {
        let mut cmd = TestServer::command(
            &db.url,
            &db.master_key_file,
            &[("WRIT_LOG", "info"), ("WRIT_SESSION_IDLE_SECS", idle)],
        );
        cmd.stderr(Stdio::piped());
        let server = Running::spawn(cmd);
        server.wait_line("writ listening on ");
        let (status, stderr) = server.stop_with(libc::SIGTERM);
        assert_clean_exit(status, &stderr, &format!("writ serve, idle {idle}"));
    }
    assert_eq!(
        writ_testkit::audit_actions(&db, &agency).await,
        [
            "system.start",
            "system.stop",
            "system.config.changed",
            "system.start",
            "system.stop"
        ]
    );
    let starts = entries(&db, &agency, "system.start").await;
    assert_eq!(starts[0]["detail"]["config"]["sessionIdleSecs"], 1800);
    assert_eq!(starts[1]["detail"]["config"]["sessionIdleSecs"], 900);
    assert!(
        !starts[0].to_string().contains(&db.url),
        "no connection string, password or secret in the entry"
    );
    let changed = entries(&db, &agency, "system.config.changed").await;
    assert_eq!(
        changed[0]["detail"]["changed"],
        serde_json::json!(["sessionIdleSecs"])
    );
    assert_eq!(
        changed[0]["detail"]["previousConfigSha256"],
        starts[0]["detail"]["configSha256"]
    );
    let stops = entries(&db, &agency, "system.stop").await;
    assert_eq!(stops[0]["actor"]["role"], "system");
    // Each names its instance, so a start and its stop pair up.
    assert_eq!(
        stops[0]["detail"]["instance"],
        starts[0]["detail"]["instance"]
    );
    assert_ne!(
        stops[1]["detail"]["instance"],
        starts[0]["detail"]["instance"]
    );
}

/// `writ dev` from nothing: a private cluster, the roles, a demo agency; the command line finds
/// its database through WRIT_DATA_DIR alone; it stops cleanly and says so, and a restart on the
/// same directory works.
#[tokio::test]
async fn dev_serves_through_the_serving_role_and_the_cli_finds_its_database() {
    let data = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let dev = || {
        let mut cmd = Command::new(writ_bin());
        cmd.arg("dev")
            .env_remove("DATABASE_URL")
            .env_remove("WRIT_OWNER_DATABASE_URL")
            .env_remove("WRIT_MASTER_KEY_FILE")
            .env("WRIT_DATA_DIR", data.path())
            .env("WRIT_BIND", "127.0.0.1:0")
            .env("WRIT_LOG", "info")
            .env("WRIT_ARGON2_MEMORY_KIB", "64")
            .env("WRIT_ARGON2_ITERATIONS", "1")
            .current_dir(elsewhere.path());
        Running::spawn(cmd)
    };
    let cli = |dir: &Path, data_dir: Option<&Path>, args: &[&str]| -> Output {
        let mut cmd = Command::new(writ_bin());
        cmd.args(args)
            .env_remove("DATABASE_URL")
            .env_remove("WRIT_OWNER_DATABASE_URL")
            .env_remove("WRIT_MASTER_KEY_FILE")
            .env_remove("WRIT_DATA_DIR")
            .env("WRIT_LOG", "warn")
            .current_dir(dir);
        if let Some(d) = data_dir {
            cmd.env("WRIT_DATA_DIR", d);
        }
        cmd.output().unwrap()
    };
    let file = data.path().join("database.env");

    let mut demo_officer = None;
    for (signal, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let running = dev();
        // What `writ dev` prints is enough to log in and draft a warrant in a demo court.
        let officer = running.wait_line("  officer ");
        let words: Vec<&str> = officer.split_whitespace().collect();
        let after = |word: &str| {
            let i = words.iter().position(|w| *w == word).expect(word);
            words[i + 1].to_owned()
        };
        // The same account and secret on the second start; one user, so no code is used twice.
        let demo_officer = demo_officer.get_or_insert_with(|| {
            writ_testkit::TestUser::new(
                uuid::Uuid::nil(),
                "demo",
                &after("username"),
                &after("password"),
                writ_auth_mfa::totp::secret_from_base32(&after("secret")).unwrap(),
            )
        });
        let courts = running.wait_line("demo courts (warrant-types policy): ");
        assert!(
            courts.contains("d-minn") && courts.contains("mn-hennepin"),
            "{courts}"
        );
        let api = format!("{}/", running.wait_line("writ listening on "));
        let http = reqwest::Client::new();
        let login: serde_json::Value = http
            .post(format!("{api}v1/auth/login"))
            .json(&demo_officer.login_body())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("the demo officer logs in: {login}"));
        let created = http
            .post(format!("{api}v1/warrants"))
            .bearer_auth(token)
            .json(&serde_json::json!({
                "court": "mn-hennepin",
                "type": "search",
                "content": { "place": "1200 Elm St, Minneapolis", "affidavit": "On March 3 …" },
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            created.status().as_u16(),
            201,
            "{}",
            created.text().await.unwrap()
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        let written = std::fs::read_to_string(&file).unwrap();
        let url = |key: &str| {
            written
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("{key} in {written}"))
                .to_owned()
        };
        let serving = url("DATABASE_URL");
        assert!(serving.contains("://writ_app@"), "{written}");
        assert!(url("WRIT_OWNER_DATABASE_URL").contains("://writ_owner@"));

        // The server's own connections: the serving role is no superuser and bypasses nothing.
        let pool = sqlx::PgPool::connect(&serving).await.unwrap();
        let row =
            sqlx::query("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert!(!row.get::<bool, _>(0) && !row.get::<bool, _>(1));
        // What `make run` keeps under `.writ/` outlives a crash of the machine (tests' clusters
        // run without fsync).
        let fsync: String = sqlx::query_scalar("SHOW fsync")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(fsync, "on");
        let deadline = Instant::now() + Duration::from_secs(30);
        let listeners = loop {
            let listeners: Vec<String> = sqlx::query_scalar(
                "SELECT usename::text FROM pg_stat_activity \
                 WHERE datname = current_database() AND query LIKE 'LISTEN%'",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            if listeners.len() >= 2 || Instant::now() > deadline {
                break listeners;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            !listeners.is_empty() && listeners.iter().all(|u| u == "writ_app"),
            "{listeners:?}"
        );
        pool.close().await;

        // From another directory, WRIT_DATA_DIR alone finds the database and the master key.
        let listed = ok(cli(
            elsewhere.path(),
            Some(data.path()),
            &["agency", "list"],
        ));
        assert!(listed.starts_with("demo\t"), "{listed}");
        ok(cli(
            elsewhere.path(),
            Some(data.path()),
            &["audit", "verify", "--agency", "demo"],
        ));

        // Without it: a clear error naming both ways, and no master key made up on the spot.
        let lost = cli(
            elsewhere.path(),
            None,
            &["keys", "list", "--agency", "demo"],
        );
        assert!(!lost.status.success());
        let said = text(&lost);
        assert!(
            said.contains("DATABASE_URL") && said.contains("database.env"),
            "{said}"
        );
        let mut with_url = Command::new(writ_bin());
        let out = with_url
            .args(["keys", "list", "--agency", "demo"])
            .env("DATABASE_URL", &serving)
            .env_remove("WRIT_DATA_DIR")
            .env_remove("WRIT_MASTER_KEY_FILE")
            .env("WRIT_LOG", "warn")
            .current_dir(elsewhere.path())
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            text(&out).contains("WRIT_MASTER_KEY_FILE"),
            "{}",
            text(&out)
        );
        assert!(
            !elsewhere.path().join(".writ").exists(),
            "a read-only command created {}",
            elsewhere.path().join(".writ").display()
        );

        let (status, stderr) = running.stop_with(signal);
        assert_clean_exit(status, &stderr, &format!("writ dev, {name}"));
        assert!(!file.exists(), "{} left behind", file.display());
    }

    let gone = cli(elsewhere.path(), Some(data.path()), &["agency", "list"]);
    assert!(!gone.status.success());
    assert!(text(&gone).contains("does not exist"), "{}", text(&gone));
    // A file whose `writ dev` died without removing it is called stale, not used.
    std::fs::write(
        &file,
        "DATABASE_URL=postgres://writ_app@127.0.0.1:1/writ\nWRIT_DEV_PID=999999999\n",
    )
    .unwrap();
    let stale = cli(elsewhere.path(), Some(data.path()), &["agency", "list"]);
    assert!(!stale.status.success());
    assert!(text(&stale).contains("stale"), "{}", text(&stale));
}

/// Permission denied (42501), whatever the statement.
async fn denied(conn: &mut sqlx::PgConnection, sql: &'static str) {
    let err = sqlx::raw_sql(sql).execute(&mut *conn).await.expect_err(sql);
    let code = match &err {
        sqlx::Error::Database(e) => e.code().map(|c| c.into_owned()),
        _ => None,
    };
    assert_eq!(code.as_deref(), Some("42501"), "{sql}: {err}");
}

#[tokio::test]
async fn the_server_serves_as_a_role_that_is_no_superuser_and_reaches_one_agency_at_a_time() {
    let db = TestDb::new().await;
    let a = db.onboard("role-a").await;
    let b = db.onboard("role-b").await;
    let server = TestServer::start(&db);
    let user = seed_user(&db, &a, "role.admin", Role::AgencyAdmin).await;
    server.login(&user).await;

    // Every connection the server holds logs in as the serving or the owner role.
    let logins: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT usename::text FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
           AND usename <> (SELECT usename FROM pg_stat_activity WHERE pid = pg_backend_pid())",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(logins.contains(&"writ_app".to_owned()), "{logins:?}");
    assert!(
        logins.iter().all(|u| u == "writ_app" || u == "writ_owner"),
        "{logins:?}"
    );

    for url in [serving_url(&db.url), owner_url(&db.url)] {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let row =
            sqlx::query("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert!(
            !row.get::<bool, _>("rolsuper") && !row.get::<bool, _>("rolbypassrls"),
            "{url}"
        );
        pool.close().await;
    }

    // The owner owns every table; the serving role owns nothing.
    let owners: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT tableowner::text FROM pg_tables \
         WHERE schemaname = 'control' OR schemaname IN ($1, $2)",
    )
    .bind(a.ident.as_str())
    .bind(b.ident.as_str())
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(owners, ["writ_owner"]);

    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&serving_url(&db.url))
        .await
        .unwrap();
    let a_users = format!("SELECT * FROM {}.users", a.ident.quoted());
    let b_users = format!("SELECT * FROM {}.users", b.ident.quoted());
    // Outside an agency's role, no agency's tables.
    for sql in [&a_users, &b_users] {
        let err = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_all(&mut conn)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("permission denied"),
            "{sql}: {err}"
        );
    }
    // The control plane: no schema changes, no deletes, no other role.
    denied(&mut conn, "CREATE TABLE control.mine (id int)").await;
    denied(&mut conn, "DELETE FROM control.agencies").await;
    denied(
        &mut conn,
        "UPDATE control.agencies SET status = 'offboarded'",
    )
    .await;
    denied(&mut conn, "DELETE FROM control.agency_keys").await;
    denied(&mut conn, "SELECT * FROM control.platform_events").await;
    denied(&mut conn, "SELECT * FROM control.offboardings").await;
    denied(&mut conn, "SET ROLE writ_owner").await;

    // Inside agency A's role (where every request runs): A's rows, never B's, never the
    // control plane's secrets, never a deleted audit entry.
    let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
    sqlx::query("SELECT set_config('role', $1, true), set_config('writ.agency_id', $2, true)")
        .bind(a.ident.as_str())
        .bind(a.id.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let n = sqlx::query(sqlx::AssertSqlSafe(a_users.clone()))
        .fetch_all(&mut *tx)
        .await
        .unwrap()
        .len();
    assert_eq!(n, 1);
    for sql in [
        b_users.clone(),
        "SELECT material FROM control.agency_keys".into(),
        "SELECT sealed_key FROM control.token_signing_keys".into(),
        "SELECT password_hash FROM control.operators".into(),
        format!("DELETE FROM {}.audit_log", a.ident.quoted()),
        format!(
            "ALTER TABLE {}.users DISABLE ROW LEVEL SECURITY",
            a.ident.quoted()
        ),
    ] {
        let mut sp = sqlx::Connection::begin(&mut *tx).await.unwrap();
        let err = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut *sp)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("permission denied")
                || err.to_string().contains("must be owner"),
            "{sql}: {err}"
        );
        sp.rollback().await.unwrap();
    }
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn serve_refuses_to_serve_as_a_superuser() {
    let db = TestDb::new().await;
    let out = writ_command(&db.url, &db.master_key_file)
        .arg("serve")
        .env("WRIT_BIND", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("superuser") && said.contains("writ_app"),
        "{said}"
    );
}

/// A database migrated before the roles existed (everything owned by the superuser who ran it,
/// no agency role granted to the serving role) is handed to the owner by the next `writ migrate`,
/// after which the server serves it as the serving role.
#[tokio::test]
async fn migrate_hands_a_superusers_database_to_the_owner() {
    let db = TestDb::new().await;
    let a = db.onboard("legacy-pd").await;
    let user = seed_user(&db, &a, "legacy.officer", Role::Officer).await;
    let table = format!("{}.legacy_notes", a.ident.quoted());
    let role = a.ident.quoted();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "REASSIGN OWNED BY writ_owner TO CURRENT_USER; REVOKE {role} FROM writ_app, writ_owner; \
         CREATE TABLE control.legacy (id int); CREATE TABLE {table} (agency_id uuid)"
    )))
    .execute(&db.pool)
    .await
    .unwrap();
    ok(db.writ(&["migrate"]));
    let owners: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT tableowner::text FROM pg_tables \
         WHERE schemaname = 'control' OR schemaname = $1",
    )
    .bind(a.ident.as_str())
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(owners, ["writ_owner"]);
    let server = TestServer::start(&db);
    server.login(&user).await;
}

fn os_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Command-line actions name the person behind them; a failed export says it failed; the
/// entries still verify with writ-verify.
#[tokio::test]
async fn cli_entries_name_the_os_user_and_a_failed_export_is_a_failure() {
    let db = TestDb::new().await;
    let a = db.onboard("cli-pd").await;
    let me = os_user();

    ok(db.writ(&["keys", "rotate", "--agency", "cli-pd", "--purpose", "kek"]));
    let rotation = entries(&db, &a, "key.rotation").await;
    assert_eq!(rotation.len(), 1);
    let who = &rotation[0]["detail"]["invokedBy"];
    assert_eq!(rotation[0]["actor"]["role"], "system");
    assert_eq!(who["osUser"], me.as_str(), "{who}");
    assert_eq!(who["via"], "cli");
    assert!(
        !who["host"].as_str().unwrap_or_default().is_empty(),
        "{who}"
    );

    let dir = tempfile::tempdir().unwrap();
    let failed = db.writ(&[
        "audit",
        "export",
        "--agency",
        "cli-pd",
        "--from-seq",
        "1000",
        "--out",
        dir.path().join("nothing").to_str().unwrap(),
    ]);
    assert!(!failed.status.success(), "{}", text(&failed));
    let bundle = dir.path().join("bundle");
    ok(db.writ(&[
        "audit",
        "export",
        "--agency",
        "cli-pd",
        "--out",
        bundle.to_str().unwrap(),
    ]));
    let exports = entries(&db, &a, writ_audit_log::EXPORT_REQUESTED).await;
    assert_eq!(exports.len(), 2, "{exports:?}");
    assert_eq!(exports[0]["outcome"], "failure", "{}", exports[0]);
    assert!(
        exports[0]["detail"]["error"]
            .as_str()
            .unwrap()
            .contains("nothing to export")
    );
    assert_eq!(exports[1]["outcome"], "success", "{}", exports[1]);
    assert_eq!(exports[1]["detail"]["invokedBy"]["osUser"], me.as_str());

    // The new detail is ordinary detail: the chain, with these entries, verifies.
    let all = dir.path().join("all");
    ok(db.writ(&[
        "audit",
        "export",
        "--agency",
        "cli-pd",
        "--out",
        all.to_str().unwrap(),
    ]));
    let pem = write_agency_pem(&db, &a, dir.path()).await;
    ok(writ_verify_bundle(&all, &pem));
    ok(db.writ(&["audit", "verify", "--agency", "cli-pd"]));
}

/// One clock for an export job: the database's, at each statement.
#[tokio::test]
async fn an_export_job_starts_no_earlier_than_it_was_requested() {
    let db = TestDb::new().await;
    let a = db.onboard("clock-pd").await;
    let auditor = seed_user(&db, &a, "clock.auditor", Role::Auditor).await;
    let exports = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(
        &db.url,
        &db.master_key_file,
        &[("WRIT_EXPORT_DIR", exports.path().to_str().unwrap())],
    );
    let token = server.token(&auditor).await;
    for _ in 0..3 {
        let (status, job) = server
            .call(
                "POST",
                "/v1/audit/exports",
                &token,
                Some(serde_json::json!({})),
            )
            .await;
        assert_eq!(status, 202, "{job}");
        let path = format!("/v1/audit/exports/{}", job["id"].as_str().unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        let job = loop {
            let (_, job) = server.call("GET", &path, &token, None).await;
            if job["status"] == "done" || job["status"] == "failed" {
                break job;
            }
            assert!(Instant::now() < deadline, "{job}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(job["status"], "done", "{job}");
        let at = |k: &str| {
            chrono::DateTime::parse_from_rfc3339(job[k].as_str().unwrap())
                .unwrap_or_else(|e| panic!("{k}: {e}: {job}"))
        };
        assert!(at("requestedAt") <= at("startedAt"), "{job}");
        assert!(at("startedAt") <= at("finishedAt"), "{job}");
    }
    // No statement began a transaction inside another one (PostgreSQL warns "there is already
    // a transaction in progress"). The test cluster logs beside its data directory.
    let data: String = sqlx::query_scalar("SELECT current_setting('data_directory')")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    if let Some(log) = Path::new(&data)
        .parent()
        .and_then(|d| std::fs::read_to_string(d.join("postgres.log")).ok())
    {
        assert!(
            !log.contains("there is already a transaction in progress"),
            "a nested BEGIN"
        );
    }
}

/// `writ agency create` run where the master key file is not (another directory, a missing
/// WRIT_MASTER_KEY_FILE) makes no new master key while agencies keep local keys under the real
/// one: it would open none of them, and the new agency's keys would be lost with it.
#[tokio::test]
async fn onboarding_makes_no_new_master_key_while_agencies_keep_local_keys() {
    let db = TestDb::new().await;
    db.onboard("first-pd").await;
    let elsewhere = tempfile::tempdir().unwrap();
    let missing = elsewhere.path().join("master.key");
    let out = writ_testkit::writ_command(&db.url, &missing)
        .args([
            "agency",
            "create",
            "--slug",
            "second-pd",
            "--name",
            "Second PD",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("agencies of this database keep keys under a master key"),
        "{stderr}"
    );
    assert!(!missing.exists());
    assert!(
        writ_tenancy::agency_by_slug(&db.pool, "second-pd")
            .await
            .unwrap()
            .is_none()
    );
}
