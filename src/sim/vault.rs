//! A loopback subset of the Vault/OpenBao KV version 2 API (`/v1/{mount}/data/{path}`:
//! GET with `?version=`, POST with `options.cas`, PATCH as JSON merge patch), with Vault's
//! status codes and `{"errors":[...]}` bodies. Keyfire's engine tests use it where a store
//! must outlive one keyfire process; the real OpenBao server covers the rest.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ErrorStyle, LoggedRequest, Observer, Running, observe, serve};

struct Version {
    data: Map<String, Value>,
    created_time: String,
}

struct VaultState {
    mount: String,
    token: String,
    secrets: HashMap<String, Vec<Version>>,
}

type Shared = Arc<Mutex<VaultState>>;

pub struct VaultSim {
    state: Shared,
    observer: Observer,
    running: Running,
}

fn errors(status: StatusCode, msgs: &[&str]) -> Response {
    (status, Json(json!({ "errors": msgs }))).into_response()
}

impl VaultSim {
    pub fn start(mount: &str, token: &str) -> std::io::Result<Self> {
        let state: Shared = Arc::new(Mutex::new(VaultState {
            mount: mount.into(),
            token: token.into(),
            secrets: HashMap::new(),
        }));
        let observer = Observer::with_style(ErrorStyle::Vault);
        let router = Router::new()
            .route(
                "/v1/{mount}/data/{*path}",
                get(read).post(write).patch(patch),
            )
            .with_state(state.clone())
            .layer(axum::middleware::from_fn_with_state(
                observer.clone(),
                observe,
            ));
        let running = serve(router, 0)?;
        Ok(Self {
            state,
            observer,
            running,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.running.addr
    }

    pub fn address(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    fn with<T>(&self, f: impl FnOnce(&mut VaultState) -> T) -> T {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s)
    }

    /// Write a version directly (seeding tests); returns the version number.
    pub fn put(&self, path: &str, field: &str, value: &str) -> u64 {
        self.with(|s| {
            let versions = s.secrets.entry(path.to_string()).or_default();
            let mut data = versions.last().map(|v| v.data.clone()).unwrap_or_default();
            data.insert(field.into(), json!(value));
            versions.push(Version {
                data,
                created_time: now(),
            });
            versions.len() as u64
        })
    }

    pub fn version(&self, path: &str) -> u64 {
        self.with(|s| s.secrets.get(path).map_or(0, |v| v.len() as u64))
    }

    pub fn value(&self, path: &str, field: &str, version: Option<u64>) -> Option<String> {
        self.with(|s| {
            let versions = s.secrets.get(path)?;
            let v = match version {
                Some(n) => versions.get(usize::try_from(n).ok()?.checked_sub(1)?)?,
                None => versions.last()?,
            };
            v.data.get(field)?.as_str().map(str::to_string)
        })
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.observer.requests()
    }

    pub fn observer(&self) -> &Observer {
        &self.observer
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The rejection to send, if the request is not authorized or not routed.
fn check(state: &Shared, headers: &HeaderMap, mount: &str) -> Option<Response> {
    let s = state.lock().unwrap_or_else(|e| e.into_inner());
    let token_ok =
        headers.get("x-vault-token").and_then(|v| v.to_str().ok()) == Some(s.token.as_str());
    if !token_ok {
        return Some(errors(StatusCode::FORBIDDEN, &["permission denied"]));
    }
    if mount != s.mount {
        return Some(errors(StatusCode::NOT_FOUND, &["no handler for route"]));
    }
    None
}

fn metadata(version: u64, created_time: &str) -> Value {
    json!({ "created_time": created_time, "custom_metadata": null, "deletion_time": "", "destroyed": false, "version": version })
}

#[derive(Deserialize)]
struct ReadQuery {
    version: Option<u64>,
}

async fn read(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((mount, path)): Path<(String, String)>,
    Query(q): Query<ReadQuery>,
) -> Response {
    if let Some(r) = check(&state, &headers, &mount) {
        return r;
    }
    let s = state.lock().unwrap_or_else(|e| e.into_inner());
    let Some(versions) = s.secrets.get(&path) else {
        return errors(StatusCode::NOT_FOUND, &[]);
    };
    let n = match q.version {
        None | Some(0) => versions.len() as u64,
        Some(n) => n,
    };
    let Some(v) = usize::try_from(n)
        .ok()
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| versions.get(i))
    else {
        return errors(StatusCode::NOT_FOUND, &[]);
    };
    Json(json!({
        "request_id": super::token(8),
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": { "data": v.data, "metadata": metadata(n, &v.created_time) },
        "wrap_info": null,
        "warnings": null,
        "auth": null,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct WriteBody {
    data: Option<Map<String, Value>>,
    #[serde(default)]
    options: Map<String, Value>,
}

fn cas_ok(current: u64, options: &Map<String, Value>) -> bool {
    match options.get("cas").and_then(Value::as_u64) {
        Some(cas) => cas == current,
        None => true,
    }
}

fn written(version: u64, created_time: &str) -> Response {
    Json(json!({ "request_id": super::token(8), "data": metadata(version, created_time), "warnings": null })).into_response()
}

async fn write(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((mount, path)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = check(&state, &headers, &mount) {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<WriteBody>(&body) else {
        return errors(StatusCode::BAD_REQUEST, &["error parsing JSON"]);
    };
    let Some(data) = body.data else {
        return errors(StatusCode::BAD_REQUEST, &["no data provided"]);
    };
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    let versions = s.secrets.entry(path).or_default();
    if !cas_ok(versions.len() as u64, &body.options) {
        return errors(
            StatusCode::BAD_REQUEST,
            &["check-and-set parameter did not match the current version"],
        );
    }
    let created_time = now();
    versions.push(Version {
        data,
        created_time: created_time.clone(),
    });
    written(versions.len() as u64, &created_time)
}

async fn patch(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((mount, path)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = check(&state, &headers, &mount) {
        return r;
    }
    let merge = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/merge-patch+json"));
    if !merge {
        return errors(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &["PATCH requires Content-Type application/merge-patch+json"],
        );
    }
    let Ok(body) = serde_json::from_slice::<WriteBody>(&body) else {
        return errors(StatusCode::BAD_REQUEST, &["error parsing JSON"]);
    };
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    let Some(versions) = s.secrets.get_mut(&path).filter(|v| !v.is_empty()) else {
        return errors(StatusCode::NOT_FOUND, &[]);
    };
    if !cas_ok(versions.len() as u64, &body.options) {
        return errors(
            StatusCode::BAD_REQUEST,
            &["check-and-set parameter did not match the current version"],
        );
    }
    let mut data = versions.last().map(|v| v.data.clone()).unwrap_or_default();
    for (k, v) in body.data.unwrap_or_default() {
        if v.is_null() {
            data.remove(&k);
        } else {
            data.insert(k, v);
        }
    }
    let created_time = now();
    versions.push(Version {
        data,
        created_time: created_time.clone(),
    });
    written(versions.len() as u64, &created_time)
}
