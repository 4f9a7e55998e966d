//! Loopback stand-ins for remote services, used by keyfire's tests, benchmarks and training
//! environment: they follow the documented APIs (paths, status codes, error bodies,
//! pagination), log every request they receive, and can be told to fail or stall.
//!
//! The training environment only serves them; inspecting them (request logs, stored keys,
//! latency and reply knobs) is the test suite's side, unused in a build without `testing`.
#![cfg_attr(not(feature = "testing"), allow(dead_code))]

// The stand-ins the training environment (`keyfire demo`) serves are always built; those
// only the test suite drives (CloudTrail, Doppler, STS, Vault) come with the `testing` feature.
pub mod anthropic;
#[cfg(feature = "testing")]
pub mod cloudtrail;
#[cfg(feature = "testing")]
pub mod doppler;
pub mod fake_api;
#[cfg(feature = "testing")]
mod fault;
pub mod infisical;
pub mod litellm;
pub mod openai;
pub mod receiver;
pub mod sendgrid;
#[cfg(feature = "testing")]
pub mod sts;
#[cfg(feature = "testing")]
pub mod vault;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

#[cfg(feature = "testing")]
pub use anthropic::AnthropicSim;
#[cfg(feature = "testing")]
pub use cloudtrail::{CloudTrailSim, TrailEvent};
#[cfg(feature = "testing")]
pub use doppler::DopplerSim;
pub use fake_api::FakeApi;
#[cfg(feature = "testing")]
pub use fault::{Fault, FaultMode};
#[cfg(feature = "testing")]
pub use infisical::InfisicalSim;
pub use litellm::LiteLlmSim;
#[cfg(feature = "testing")]
pub use openai::OpenAiSim;
pub use receiver::{Receiver, Reply};
pub use sendgrid::SendGridSim;
#[cfg(feature = "testing")]
pub use sts::{StsMode, StsStandIn};
#[cfg(feature = "testing")]
pub use vault::VaultSim;

/// Headers whose values carry no credential and are kept in the request log; every other
/// header is logged by name only (its value may be a key).
const LOGGED_HEADER_VALUES: &[&str] = &[
    "user-agent",
    "content-type",
    "anthropic-version",
    "anthropic-beta",
    "openai-organization",
    "openai-project",
    "idempotency-key",
    "on-behalf-of",
];

/// One request as the server saw it. Header values are kept only for the headers in
/// `LOGGED_HEADER_VALUES`: the others carry credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Lower-case header names, with the value when it is not a credential.
    pub headers: Vec<(String, Option<String>)>,
    /// When it arrived (tests measure retry delays with it).
    pub at: std::time::Instant,
}

impl LoggedRequest {
    /// Whether the request can change server state.
    pub fn is_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS")
    }

    /// Whether the request carried this header (any case).
    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The value of a non-credential header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_deref())
    }

    /// The decoded values of a query parameter, in order (repeated parameters included).
    pub fn query_values(&self, name: &str) -> Vec<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .collect()
    }
}

/// The error body a sim answers injected failures with, in its provider's documented shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ErrorStyle {
    /// `{"error": {"message", "type", "param", "code"}}` (OpenAI, and keyfire's fake provider).
    #[default]
    OpenAi,
    /// `{"type": "error", "error": {"type", "message"}}` (Anthropic).
    Anthropic,
    /// `{"errors": [..]}` (Vault).
    Vault,
    /// `{"errors": [{"field", "message"}]}` (SendGrid v3).
    SendGrid,
    /// `{"error": {"message", "type", "param", "code"}}` with the status as a string code
    /// (LiteLLM's `ProxyException`).
    LiteLlm,
    /// `{"messages": [..], "success": false}` (Doppler).
    Doppler,
    /// `{"reqId", "statusCode", "message", "error"}` (Infisical).
    Infisical,
}

impl ErrorStyle {
    pub fn body(self, status: u16, message: &str) -> serde_json::Value {
        match self {
            Self::OpenAi => {
                let kind = match status {
                    429 => "rate_limit_exceeded",
                    500..=599 => "server_error",
                    _ => "invalid_request_error",
                };
                serde_json::json!({ "error": { "message": message, "type": kind, "param": null, "code": null } })
            }
            Self::Anthropic => {
                let kind = match status {
                    400 => "invalid_request_error",
                    401 => "authentication_error",
                    403 => "permission_error",
                    404 => "not_found_error",
                    409 => "conflict_error",
                    429 => "rate_limit_error",
                    529 => "overloaded_error",
                    _ => "api_error",
                };
                serde_json::json!({ "type": "error", "error": { "type": kind, "message": message } })
            }
            Self::Vault => serde_json::json!({ "errors": [message] }),
            Self::SendGrid => {
                serde_json::json!({ "errors": [{ "field": null, "message": message }] })
            }
            Self::LiteLlm => {
                let kind = match status {
                    400 => "bad_request_error",
                    401 => "auth_error",
                    404 => "not_found_error",
                    429 => "throttling_error",
                    _ => "internal_error",
                };
                serde_json::json!({ "error": { "message": message, "type": kind, "param": "None", "code": status.to_string() } })
            }
            Self::Doppler => serde_json::json!({ "messages": [message], "success": false }),
            Self::Infisical => {
                let error = match status {
                    400 => "BadRequest",
                    401 => "UnauthorizedError",
                    403 => "PermissionDenied",
                    404 => "NotFound",
                    429 => "RateLimitExceeded",
                    _ => "InternalServerError",
                };
                serde_json::json!({ "reqId": "req-sim", "statusCode": status, "message": message, "error": error })
            }
        }
    }
}

/// Request journal, injected faults and latency shared by a sim server's middleware.
#[derive(Debug, Clone, Default)]
pub struct Observer {
    requests: Arc<Mutex<Vec<LoggedRequest>>>,
    #[cfg(feature = "testing")]
    faults: Arc<Mutex<Vec<Fault>>>,
    latency: Arc<Mutex<Duration>>,
    /// The shape of injected error bodies (read only by fault injection).
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    style: ErrorStyle,
    /// Requests being answered now, and the most there ever were at once: what tests read
    /// to tell a concurrent client from a sequential one without timing anything.
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    max_in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

impl Observer {
    /// An observer whose injected failures use this error body shape.
    pub fn with_style(style: ErrorStyle) -> Self {
        Self {
            style,
            ..Self::default()
        }
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The most requests this server was answering at the same moment.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn clear_requests(&self) {
        if let Ok(mut r) = self.requests.lock() {
            r.clear();
        }
    }

    /// Answer matching requests with a failure (tests only: the `testing` feature).
    #[cfg(feature = "testing")]
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
}

/// Middleware: log, apply latency and faults, then hand over to the route.
pub async fn observe(State(obs): State<Observer>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let headers = req
        .headers()
        .iter()
        .map(|(name, value)| {
            let name = name.as_str().to_ascii_lowercase();
            let value = LOGGED_HEADER_VALUES
                .contains(&name.as_str())
                .then(|| value.to_str().ok().map(str::to_string))
                .flatten();
            (name, value)
        })
        .collect();
    if let Ok(mut r) = obs.requests.lock() {
        r.push(LoggedRequest {
            method: method.clone(),
            path: path.clone(),
            query,
            headers,
            at: std::time::Instant::now(),
        });
    }
    let now_in_flight = obs
        .in_flight
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        + 1;
    obs.max_in_flight
        .fetch_max(now_in_flight, std::sync::atomic::Ordering::SeqCst);
    let latency = obs.latency.lock().map(|l| *l).unwrap_or_default();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    obs.in_flight
        .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    #[cfg(feature = "testing")]
    return fault::respond(&obs, &method, &path, req, next).await;
    #[cfg(not(feature = "testing"))]
    next.run(req).await
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
