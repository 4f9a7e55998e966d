//! Injected failures for the simulators: an error status (with `Retry-After`), a raw body,
//! a held-back response. Tests only: compiled with the `testing` feature, which the test
//! suite turns on and release builds leave off.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Observer;

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
    /// Answer with this status and raw body instead of handling the request (a proxy's HTML
    /// page, a truncated body).
    Raw { status: u16, body: String },
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

    /// Answer with this status and body verbatim.
    pub fn raw(method: &str, path_prefix: &str, status: u16, body: &str, times: u32) -> Self {
        Self {
            method: Some(method.into()),
            path_prefix: path_prefix.into(),
            mode: FaultMode::Raw {
                status,
                body: body.into(),
            },
            times,
            after: 0,
            exact: false,
        }
    }

    /// Answer `200 OK` with a body that is not the JSON the API documents.
    pub fn malformed(method: &str, path_prefix: &str, times: u32) -> Self {
        Self {
            method: Some(method.into()),
            path_prefix: path_prefix.into(),
            mode: FaultMode::Raw {
                status: 200,
                body: "<html><body>502 Bad Gateway</body></html>".into(),
            },
            times,
            after: 0,
            exact: false,
        }
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

impl Observer {
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

/// Answer with the first matching fault, or hand the request to its route.
pub(super) async fn respond(
    obs: &Observer,
    method: &str,
    path: &str,
    req: Request,
    next: Next,
) -> Response {
    match obs.take_fault(method, path) {
        Some(FaultMode::Fail {
            status,
            retry_after,
        }) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = obs.style.body(status, "injected failure");
            let mut resp = (code, axum::Json(body)).into_response();
            if let Some(s) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
                resp.headers_mut().insert("retry-after", s);
            }
            resp
        }
        Some(FaultMode::Raw { status, body }) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            (code, [("content-type", "text/html")], body).into_response()
        }
        Some(FaultMode::Hold(d)) => {
            let resp = next.run(req).await;
            tokio::time::sleep(d).await;
            resp
        }
        None => next.run(req).await,
    }
}
