//! Loopback stand-ins for remote services, used by keyfire's tests, benchmarks and training
//! environment: they follow the documented APIs (paths, status codes, error bodies,
//! pagination), log every request they receive, and can be told to fail or stall.

pub mod cloudtrail;
pub mod fake_api;
pub mod vault;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub use cloudtrail::{CloudTrailSim, TrailEvent};
pub use fake_api::FakeApi;
pub use vault::VaultSim;

/// One request as the server saw it (no headers: they carry credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
}

impl LoggedRequest {
    /// Whether the request can change server state.
    pub fn is_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS")
    }
}

#[derive(Debug, Clone)]
pub enum FaultMode {
    /// Answer with this status (and `Retry-After` seconds) instead of handling the request.
    Fail {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Handle the request, then hold the response back this long (a client killed meanwhile
    /// never learns that the write happened).
    Hold(Duration),
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Option<String>,
    pub path_prefix: String,
    pub mode: FaultMode,
    /// How many matching requests it applies to.
    pub times: u32,
    /// How many matching requests pass untouched before it applies.
    pub after: u32,
    /// Match the path exactly instead of by prefix.
    pub exact: bool,
}

impl Fault {
    pub fn fail(method: &str, path_prefix: &str, status: u16, times: u32) -> Self {
        Self {
            method: Some(method.into()),
            path_prefix: path_prefix.into(),
            mode: FaultMode::Fail {
                status,
                retry_after: None,
            },
            times,
            after: 0,
            exact: false,
        }
    }

    pub fn rate_limit(method: &str, path_prefix: &str, retry_after: u64, times: u32) -> Self {
        Self {
            method: Some(method.into()),
            path_prefix: path_prefix.into(),
            mode: FaultMode::Fail {
                status: 429,
                retry_after: Some(retry_after),
            },
            times,
            after: 0,
            exact: false,
        }
    }

    /// Match only this exact path.
    pub fn exact(mut self) -> Self {
        self.exact = true;
        self
    }

    /// Let `n` matching requests through before this fault applies.
    pub fn after(mut self, n: u32) -> Self {
        self.after = n;
        self
    }

    pub fn hold(method: &str, path_prefix: &str, d: Duration) -> Self {
        Self {
            method: Some(method.into()),
            path_prefix: path_prefix.into(),
            mode: FaultMode::Hold(d),
            times: 1,
            after: 0,
            exact: false,
        }
    }
}

/// Request journal, injected faults and latency shared by a sim server's middleware.
#[derive(Debug, Clone, Default)]
pub struct Observer {
    requests: Arc<Mutex<Vec<LoggedRequest>>>,
    faults: Arc<Mutex<Vec<Fault>>>,
    latency: Arc<Mutex<Duration>>,
}

impl Observer {
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn clear_requests(&self) {
        if let Ok(mut r) = self.requests.lock() {
            r.clear();
        }
    }

    pub fn inject(&self, fault: Fault) {
        if let Ok(mut f) = self.faults.lock() {
            f.push(fault);
        }
    }

    pub fn set_latency(&self, d: Duration) {
        if let Ok(mut l) = self.latency.lock() {
            *l = d;
        }
    }

    fn take_fault(&self, method: &str, path: &str) -> Option<FaultMode> {
        let mut faults = self.faults.lock().ok()?;
        let i = faults.iter().position(|f| {
            f.times > 0
                && f.method.as_deref().is_none_or(|m| m == method)
                && if f.exact {
                    path == f.path_prefix
                } else {
                    path.starts_with(&f.path_prefix)
                }
        })?;
        if faults[i].after > 0 {
            faults[i].after -= 1;
            return None;
        }
        faults[i].times -= 1;
        let mode = faults[i].mode.clone();
        if faults[i].times == 0 {
            faults.remove(i);
        }
        Some(mode)
    }
}

/// Middleware: log, apply latency and faults, then hand over to the route.
pub async fn observe(State(obs): State<Observer>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    if let Ok(mut r) = obs.requests.lock() {
        r.push(LoggedRequest {
            method: method.clone(),
            path: path.clone(),
            query,
        });
    }
    let latency = obs.latency.lock().map(|l| *l).unwrap_or_default();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match obs.take_fault(&method, &path) {
        Some(FaultMode::Fail {
            status,
            retry_after,
        }) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = serde_json::json!({ "error": { "message": "injected failure", "type": "server_error", "code": null } });
            let mut resp = (code, axum::Json(body)).into_response();
            if let Some(s) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
                resp.headers_mut().insert("retry-after", s);
            }
            resp
        }
        Some(FaultMode::Hold(d)) => {
            let resp = next.run(req).await;
            tokio::time::sleep(d).await;
            resp
        }
        None => next.run(req).await,
    }
}

/// A server running on a loopback port until dropped.
pub struct Running {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Serve `router` on 127.0.0.1 (port 0: a free one). Inside a runtime it is spawned on it;
/// outside, on a runtime of its own that lives as long as the server.
pub fn serve(router: axum::Router, port: u16) -> std::io::Result<Running> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let std_listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let fut = async move {
        if let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(fut);
            Ok(Running {
                addr,
                shutdown: Some(tx),
                runtime: None,
            })
        }
        Err(_) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            rt.spawn(fut);
            Ok(Running {
                addr,
                shutdown: Some(tx),
                runtime: Some(rt),
            })
        }
    }
}

/// A JSON error body in the OpenAI style the fake provider follows.
pub(crate) fn api_error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "message": message, "type": kind, "code": null } });
    (status, axum::Json(body)).into_response()
}

/// Random-looking, unique token material (the sims are not security-sensitive).
pub(crate) fn token(len: usize) -> String {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let alphabet: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::new();
    let mut round = 0u64;
    while out.len() < len {
        let seed = format!(
            "{}-{}-{:?}-{round}",
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::process::id(),
            std::time::SystemTime::now()
        );
        for b in Sha256::digest(seed.as_bytes()) {
            if out.len() < len {
                out.push(alphabet[usize::from(b) % alphabet.len()] as char);
            }
        }
        round += 1;
    }
    out
}
