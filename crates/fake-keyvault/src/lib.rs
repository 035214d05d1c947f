//! writ-fake-keyvault is a test double of Azure Key Vault, for testing the `azure-keyvault` key
//! provider with the official Azure SDK unmodified (Azure offers no emulator). It serves, over
//! HTTPS on a random loopback port:
//!
//! - the keys REST API the SDK calls: create (RSA, EC P-256), get (latest or a version), list
//!   versions, update (PATCH enabled/tags), rotate, delete (soft), get deleted, sign (ES256),
//!   wrapkey and unwrapkey (RSA-OAEP-256), with Key Vault's error shapes (a disabled version:
//!   403 `Forbidden` / `KeyDisabled`; a missing key: 404 `KeyNotFound`);
//! - the 401 bearer challenge Key Vault answers to a request without a token, as the SDK expects
//!   before it asks for one;
//! - Entra ID's client-credentials token endpoint (`/{tenant}/oauth2/v2.0/token`), so that the
//!   real `ClientSecretCredential` runs against it: point the credential's authority host at
//!   [`FakeKeyVault::url`].
//!
//! The certificate is a self-signed end-entity certificate for 127.0.0.1 and localhost, which a
//! client trusts as an extra root ([`FakeKeyVault::certificate_pem`]). Crypto is RustCrypto's
//! (rsa, p256). This crate is for tests and local development only; it must never be linked
//! into the `writ` server.

mod vault;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::vault::{Call, State, lock};

/// Something the tests can observe, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A vault request without a valid token was answered 401 with the bearer challenge.
    Challenge {
        method: String,
        path: String,
        had_authorization: bool,
        body_len: usize,
    },
    /// The token endpoint issued a token.
    TokenIssued { scope: String },
    /// A vault request carrying a valid token.
    Request { method: String, path: String },
}

/// A failure the vault can be told to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Every request is answered 503 (an overloaded or failing region).
    Unavailable,
    /// Requests are accepted and never answered.
    Stall,
}

/// A key made directly in the vault, as an agency's administrator would in the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa { bits: usize },
    EcP256,
}

/// A running fake vault; it stops when dropped.
pub struct FakeKeyVault {
    addr: SocketAddr,
    certificate_pem: String,
    state: Arc<State>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeKeyVault {
    /// Starts a vault on 127.0.0.1 with a random port, on its own thread and runtime (so it
    /// serves whatever runtime, or none, the test uses).
    pub fn start() -> std::io::Result<Self> {
        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .map_err(std::io::Error::other)?;
        let certificate_pem = certified.cert.pem();
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut tls = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(certified.cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                    certified.signing_key.serialize_der(),
                )),
            )
            .map_err(std::io::Error::other)?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(tls));

        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::new(format!("https://{addr}")));
        let (shutdown, stop) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let served = state.clone();
        let thread = std::thread::Builder::new()
            .name("fake-keyvault".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = stop => {}
                        _ = serve(listener, acceptor, served) => {}
                    }
                });
                // Connections still open (a stalled request) are dropped with the runtime.
                runtime.shutdown_background();
            })?;
        Ok(Self {
            addr,
            certificate_pem,
            state,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `https://127.0.0.1:<port>`: the vault URL, and also the Entra ID authority host.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The server's self-signed certificate, to trust as a root.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The only tenant, client id and secret the token endpoint accepts.
    pub fn tenant_id(&self) -> &str {
        &self.state.tenant_id
    }

    pub fn client_id(&self) -> &str {
        &self.state.client_id
    }

    pub fn client_secret(&self) -> &str {
        &self.state.client_secret
    }

    /// How many 401 challenges the vault has answered.
    pub fn challenges(&self) -> usize {
        self.state.challenges.load(Ordering::SeqCst)
    }

    /// How many tokens the token endpoint has issued.
    pub fn tokens_issued(&self) -> usize {
        self.state.tokens_issued.load(Ordering::SeqCst)
    }

    /// Everything observed so far, in order.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.state.events).clone()
    }

    pub fn set_fault(&self, fault: Option<Fault>) {
        *lock(&self.state.fault) = fault;
    }

    /// Creates a key (or its next version) directly in the vault, bypassing the API and its
    /// authentication; returns the version's key id.
    pub fn create_key(&self, name: &str, kind: KeyKind, tags: &[(&str, &str)]) -> String {
        let tags: BTreeMap<String, String> = tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        lock(&self.state.vault)
            .create_key(&self.url(), name, kind, tags)
            .expect("generate key")
    }

    /// Enables or disables one version directly in the vault, behind the client's back.
    /// Returns false when there is no such version.
    pub fn set_enabled(&self, key_id: &str, enabled: bool) -> bool {
        let Some((name, version)) = self.name_and_version(key_id) else {
            return false;
        };
        lock(&self.state.vault).set_enabled(&name, &version, enabled)
    }

    /// Wraps `plaintext` with RSA-OAEP-256 under an RSA version's public key, as anyone who can
    /// read the key (the public half) can, without asking the vault.
    pub fn encrypt_with_public_key(&self, key_id: &str, plaintext: &[u8]) -> Option<Vec<u8>> {
        let (name, version) = self.name_and_version(key_id)?;
        lock(&self.state.vault).encrypt_with_public_key(&name, &version, plaintext)
    }

    /// Whether a key of this name exists (not deleted).
    pub fn key_exists(&self, name: &str) -> bool {
        lock(&self.state.vault).exists(name)
    }

    /// Whether a key of this name is deleted and awaiting purge.
    pub fn is_deleted(&self, name: &str) -> bool {
        lock(&self.state.vault).is_deleted(name)
    }

    pub fn version_count(&self, name: &str) -> usize {
        lock(&self.state.vault).version_count(name)
    }

    fn name_and_version(&self, key_id: &str) -> Option<(String, String)> {
        let rest = key_id.strip_prefix(&format!("{}/keys/", self.url()))?;
        let (name, version) = rest.split_once('/')?;
        Some((name.to_owned(), version.trim_end_matches('/').to_owned()))
    }
}

impl Drop for FakeKeyVault {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = service_fn(move |request| handle(state.clone(), request));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let fault = *lock(&state.fault);
    match fault {
        Some(Fault::Stall) => std::future::pending::<()>().await,
        Some(Fault::Unavailable) => {
            return Ok(json_response(
                hyper::StatusCode::SERVICE_UNAVAILABLE,
                &[],
                br#"{"error":{"code":"ServiceUnavailable","message":"The service is unavailable."}}"#
                    .to_vec(),
            ));
        }
        None => {}
    }
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let authorization = parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let call = Call {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        authorization,
        body: &body,
    };
    let answer = state.answer(&call);
    Ok(json_response(
        answer.status,
        &answer.headers,
        serde_json::to_vec(&answer.body).unwrap_or_default(),
    ))
}

fn json_response(
    status: hyper::StatusCode,
    headers: &[(&'static str, String)],
    body: Vec<u8>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    for (name, value) in headers {
        if let Ok(value) = hyper::header::HeaderValue::from_str(value) {
            h.insert(*name, value);
        }
    }
    response
}
