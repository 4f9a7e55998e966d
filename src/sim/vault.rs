//! A loopback subset of the Vault/OpenBao KV version 2 API
//! (developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2), with Vault's status codes and
//! `{"errors":[...]}` bodies. Keyfire's engine tests use it where a store must outlive one
//! keyfire process; the real OpenBao server covers the rest.
//!
//! | method and path | capability of the token's policy | answer |
//! |---|---|---|
//! | `GET /v1/{mount}/data/{path}?version=` | `read` | the version's `data` and `metadata`; 404 `{"errors":[]}` for no secret; 404 with `data: null` and the metadata for a soft-deleted or destroyed version |
//! | `POST /v1/{mount}/data/{path}` `{"options":{"cas"},"data"}` | `create` (new secret) or `update` | the new version's metadata; 400 "check-and-set parameter did not match the current version" |
//! | `PATCH /v1/{mount}/data/{path}` (JSON merge patch) | `patch` | as POST, merged into the latest version; 404 when the latest version is deleted |
//! | `GET /v1/{mount}/metadata/{path}` | `read` on metadata | `current_version` and `versions.N.{created_time, deletion_time, destroyed}` |
//!
//! The token's policy grants `create`, `update` and `read` on data and `read` on metadata,
//! as a rotation policy does; `patch` only when a test grants it ([`VaultSim::grant`]). A
//! refused capability is 403 "permission denied", as in Vault. Paths are URL path segments:
//! `%20` is a space, `+` is a plus sign.

use std::collections::{BTreeSet, HashMap};
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
    /// `None` once destroyed.
    data: Option<Map<String, Value>>,
    created_time: String,
    /// Empty unless soft-deleted.
    deletion_time: String,
    destroyed: bool,
}

impl Version {
    fn new(data: Map<String, Value>) -> Self {
        Self {
            data: Some(data),
            created_time: now(),
            deletion_time: String::new(),
            destroyed: false,
        }
    }

    fn readable(&self) -> Option<&Map<String, Value>> {
        self.data.as_ref().filter(|_| self.deletion_time.is_empty())
    }
}

struct VaultState {
    mount: String,
    token: String,
    /// The token's capabilities on `{mount}/data/*` (`create`, `update`, `read`, `patch`);
    /// metadata is always readable.
    capabilities: BTreeSet<String>,
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
            capabilities: ["create", "update", "read"]
                .into_iter()
                .map(String::from)
                .collect(),
            secrets: HashMap::new(),
        }));
        let observer = Observer::with_style(ErrorStyle::Vault);
        let router = Router::new()
            .route(
                "/v1/{mount}/data/{*path}",
                get(read).post(write).patch(patch),
            )
            .route("/v1/{mount}/metadata/{*path}", get(metadata_read))
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

    /// Grant the token another capability on data paths (e.g. `patch`).
    pub fn grant(&self, capability: &str) {
        self.with(|s| s.capabilities.insert(capability.to_string()));
    }

    /// Write a version directly (seeding tests): the latest version's fields with `field`
    /// set; returns the version number.
    pub fn put(&self, path: &str, field: &str, value: &str) -> u64 {
        self.with(|s| {
            let versions = s.secrets.entry(path.to_string()).or_default();
            let mut data = versions
                .last()
                .and_then(|v| v.data.clone())
                .unwrap_or_default();
            data.insert(field.into(), json!(value));
            versions.push(Version::new(data));
            versions.len() as u64
        })
    }

    /// Soft-delete the latest version (`DELETE /v1/{mount}/data/{path}` in Vault).
    pub fn delete_latest(&self, path: &str) {
        self.with(|s| {
            if let Some(v) = s.secrets.get_mut(path).and_then(|v| v.last_mut()) {
                v.deletion_time = now();
            }
        });
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
            v.data.as_ref()?.get(field)?.as_str().map(str::to_string)
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
        return Some(denied());
    }
    if mount != s.mount {
        return Some(errors(StatusCode::NOT_FOUND, &["no handler for route"]));
    }
    None
}

fn denied() -> Response {
    errors(
        StatusCode::FORBIDDEN,
        &["1 error occurred:\n\t* permission denied\n\n"],
    )
}

fn allowed(s: &VaultState, capability: &str) -> bool {
    s.capabilities.contains(capability)
}

fn metadata(version: u64, v: &Version) -> Value {
    json!({ "created_time": v.created_time, "custom_metadata": null, "deletion_time": v.deletion_time, "destroyed": v.destroyed, "version": version })
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
    if !allowed(&s, "read") {
        return denied();
    }
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
    let body = |data: Option<&Map<String, Value>>| {
        json!({
            "request_id": super::token(8),
            "lease_id": "",
            "renewable": false,
            "lease_duration": 0,
            "data": { "data": data, "metadata": metadata(n, v) },
            "wrap_info": null,
            "warnings": null,
            "auth": null,
        })
    };
    // A deleted or destroyed version: 404, with its metadata and no data.
    let Some(data) = v.readable() else {
        return (StatusCode::NOT_FOUND, Json(body(None))).into_response();
    };
    Json(body(Some(data))).into_response()
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

fn written(version: u64, v: &Version) -> Response {
    Json(json!({ "request_id": super::token(8), "data": metadata(version, v), "warnings": null }))
        .into_response()
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
    let exists = s.secrets.get(&path).is_some_and(|v| !v.is_empty());
    if !allowed(&s, if exists { "update" } else { "create" }) {
        return denied();
    }
    let versions = s.secrets.entry(path).or_default();
    if !cas_ok(versions.len() as u64, &body.options) {
        return errors(
            StatusCode::BAD_REQUEST,
            &["check-and-set parameter did not match the current version"],
        );
    }
    versions.push(Version::new(data));
    let n = versions.len() as u64;
    written(n, &versions[versions.len() - 1])
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
    // PATCH needs its own capability: create/update do not grant it.
    if !allowed(&s, "patch") {
        return denied();
    }
    let Some(versions) = s.secrets.get_mut(&path).filter(|v| !v.is_empty()) else {
        return errors(StatusCode::NOT_FOUND, &[]);
    };
    let Some(mut data) = versions.last().and_then(|v| v.readable().cloned()) else {
        return errors(StatusCode::NOT_FOUND, &[]);
    };
    if !cas_ok(versions.len() as u64, &body.options) {
        return errors(
            StatusCode::BAD_REQUEST,
            &["check-and-set parameter did not match the current version"],
        );
    }
    for (k, v) in body.data.unwrap_or_default() {
        if v.is_null() {
            data.remove(&k);
        } else {
            data.insert(k, v);
        }
    }
    versions.push(Version::new(data));
    let n = versions.len() as u64;
    written(n, &versions[versions.len() - 1])
}

async fn metadata_read(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((mount, path)): Path<(String, String)>,
) -> Response {
    if let Some(r) = check(&state, &headers, &mount) {
        return r;
    }
    let s = state.lock().unwrap_or_else(|e| e.into_inner());
    let Some(versions) = s.secrets.get(&path).filter(|v| !v.is_empty()) else {
        return errors(StatusCode::NOT_FOUND, &[]);
    };
    let listed: Map<String, Value> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            (
                (i + 1).to_string(),
                json!({ "created_time": v.created_time, "deletion_time": v.deletion_time, "destroyed": v.destroyed }),
            )
        })
        .collect();
    Json(json!({
        "request_id": super::token(8),
        "data": {
            "cas_required": false,
            "created_time": versions[0].created_time,
            "current_version": versions.len(),
            "custom_metadata": null,
            "delete_version_after": "0s",
            "max_versions": 0,
            "oldest_version": 0,
            "updated_time": versions[versions.len() - 1].created_time,
            "versions": listed,
        },
    }))
    .into_response()
}
