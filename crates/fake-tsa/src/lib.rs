//! writ-fake-tsa is a local RFC 3161 time-stamping authority, for testing trusted timestamps on
//! signature records without a network. It serves, over plain HTTP on a random loopback port,
//! `POST /` with an `application/timestamp-query` body, answered `application/timestamp-reply`
//! (RFC 3161 §3.4), as commercial TSAs do.
//!
//! Its keys are P-256: a self-signed root CA ([`FakeTsa::certificate_pem`], what a verifier
//! trusts) and a TSA certificate issued by it with the critical extended key usage
//! id-kp-timeStamping, carried in every token whose request asked for it (`certReq`). Tokens are
//! CMS SignedData built by hand with RustCrypto's `cms` types, independently of the verifier in
//! `writ-audit-chain`, and checked by `openssl ts -verify` as well. [`TsaSigner`] builds tokens
//! without HTTP, for tests of the verifier.
//!
//! For tests and local development only; it must never be linked into the `writ` server.

mod signer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use signer::{Eku, Misbehaviour, POLICY, TsaBuildError, TsaOptions, TsaSigner, gen_time_text};

struct State {
    signer: TsaSigner,
    requests: AtomicUsize,
    failing: AtomicBool,
    misbehaviour: Mutex<Option<Misbehaviour>>,
}

/// A running fake TSA; it stops when dropped.
pub struct FakeTsa {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeTsa {
    /// Starts a TSA with a correct timestamping certificate on 127.0.0.1 and a random port. It
    /// runs on its own thread and runtime, so it serves whatever runtime (or process) the test
    /// uses.
    pub async fn start() -> std::io::Result<FakeTsa> {
        FakeTsa::start_with(TsaOptions::default())
    }

    /// Starts a TSA whose certificates look as `options` say.
    pub fn start_with(options: TsaOptions) -> std::io::Result<FakeTsa> {
        let signer = TsaSigner::with_options(options).map_err(std::io::Error::other)?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            signer,
            requests: AtomicUsize::new(0),
            failing: AtomicBool::new(false),
            misbehaviour: Mutex::new(None),
        });
        let (shutdown, stop) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let served = state.clone();
        let thread = std::thread::Builder::new()
            .name("fake-tsa".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = stop => {}
                        _ = serve(listener, served) => {}
                    }
                });
                runtime.shutdown_background();
            })?;
        Ok(FakeTsa {
            addr,
            state,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:<port>/`: where to POST timestamp queries.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The root CA certificate (PEM) that issued the TSA certificate: what to trust.
    pub fn certificate_pem(&self) -> &str {
        self.state.signer.ca_pem()
    }

    /// The TSA's own certificate (PEM), the one that signs tokens.
    pub fn tsa_certificate_pem(&self) -> &str {
        self.state.signer.certificate_pem()
    }

    /// The keys and certificates behind the server, to build tokens directly.
    pub fn signer(&self) -> &TsaSigner {
        &self.state.signer
    }

    /// How many timestamp queries the TSA has received (failing ones included).
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// While failing, every request is answered HTTP 500 (a TSA that is down).
    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    /// Makes the following answers wrong in the given way (`None`: correct again).
    pub fn set_misbehaviour(&self, misbehaviour: Option<Misbehaviour>) {
        if let Ok(mut m) = self.state.misbehaviour.lock() {
            *m = misbehaviour;
        }
    }
}

impl Drop for FakeTsa {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(state.clone(), request));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    if state.failing.load(Ordering::SeqCst) {
        return Ok(reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            b"TSA unavailable".to_vec(),
        ));
    }
    if request.method() != hyper::Method::POST {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            b"POST a timestamp query".to_vec(),
        ));
    }
    let content_type = request
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type != "application/timestamp-query" {
        return Ok(reply(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "text/plain",
            b"expected application/timestamp-query".to_vec(),
        ));
    }
    let body = match Limited::new(request.into_body(), 16 * 1024).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/plain",
                b"query too large".to_vec(),
            ));
        }
    };
    let misbehaviour = state.misbehaviour.lock().map(|m| *m).unwrap_or(None);
    match state.signer.respond(&body, misbehaviour) {
        Ok(der) => Ok(reply(StatusCode::OK, "application/timestamp-reply", der)),
        Err(e) => Ok(reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            e.to_string().into_bytes(),
        )),
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}
