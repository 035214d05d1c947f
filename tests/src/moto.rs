//! moto's server (AWS KMS and S3 on the real wire protocol), started once per test binary on a
//! free loopback port and killed with it. Tests that depend on moto's state hold [`MotoGuard`],
//! which serialises them and resets the state first.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use writ_pg_harness::ServerHandle;

pub struct Moto {
    pub endpoint: String,
    _server: std::sync::Mutex<ServerHandle>,
}

/// Exclusive use of the shared moto server, with its state freshly reset.
pub struct MotoGuard {
    pub moto: &'static Moto,
    _lock: tokio::sync::MutexGuard<'static, ()>,
}

/// `moto_server` from `WRIT_MOTO_SERVER`, the project's `.writ/venv` (made by `.ci/run`), or PATH.
fn moto_server_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("WRIT_MOTO_SERVER") {
        return path.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.writ/venv/bin/moto_server");
    if venv.is_file() {
        return venv;
    }
    PathBuf::from("moto_server")
}

impl Moto {
    /// The moto server of this test binary, started on first use.
    pub fn shared() -> &'static Moto {
        static MOTO: OnceLock<Moto> = OnceLock::new();
        MOTO.get_or_init(|| Moto::start().expect("start moto_server (pip install 'moto[server]')"))
    }

    fn start() -> std::io::Result<Moto> {
        let port = writ_pg_harness::free_port().map_err(std::io::Error::other)?;
        let mut cmd = Command::new(moto_server_bin());
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let server = writ_pg_harness::spawn_tied(cmd, libc::SIGKILL)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if server.has_exited() {
                return Err(std::io::Error::other("moto_server exited at start"));
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(std::io::Error::other(
                    "moto_server did not listen within 60 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            _server: std::sync::Mutex::new(server),
        })
    }

    /// Waits for exclusive use of the shared server, then resets its state.
    pub async fn exclusive() -> MotoGuard {
        static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let lock = LOCK.lock().await;
        let moto = Moto::shared();
        moto.reset().await;
        MotoGuard { moto, _lock: lock }
    }

    pub async fn reset(&self) {
        let status = reqwest::Client::new()
            .post(format!("{}/moto-api/reset", self.endpoint))
            .send()
            .await
            .expect("reset moto")
            .status();
        assert!(status.is_success(), "moto reset answered {status}");
    }

    /// The state of every KMS key in the server, by ARN, as KMS itself reports it (`Enabled`,
    /// `PendingDeletion`, ...): what a provider left behind, whatever Writ recorded.
    pub async fn kms_key_states(&self) -> std::collections::BTreeMap<String, String> {
        let call = async |target: &str, body: serde_json::Value| -> serde_json::Value {
            reqwest::Client::new()
                .post(&self.endpoint)
                .header("content-type", "application/x-amz-json-1.1")
                .header("x-amz-target", format!("TrentService.{target}"))
                .header(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/kms/aws4_request, \
                     SignedHeaders=host, Signature=00",
                )
                .body(body.to_string())
                .send()
                .await
                .expect("call moto's KMS")
                .json()
                .await
                .expect("a JSON answer from moto's KMS")
        };
        let listed = call("ListKeys", serde_json::json!({})).await;
        let mut states = std::collections::BTreeMap::new();
        for key in listed["Keys"].as_array().expect("a key list") {
            let described = call("DescribeKey", serde_json::json!({ "KeyId": key["KeyId"] })).await;
            let meta = &described["KeyMetadata"];
            states.insert(
                meta["Arn"].as_str().expect("an ARN").to_owned(),
                meta["KeyState"].as_str().expect("a key state").to_owned(),
            );
        }
        states
    }

    /// The standard AWS environment that points an SDK (or the `writ` binary) at this server.
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }
}
