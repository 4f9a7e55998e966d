//! A loopback subset of Infisical's API (infisical.com/docs/api-reference; the routers in
//! Infisical/infisical `backend/src/server/routes`), with Infisical's error bodies
//! (`{reqId, statusCode, message, error}`): Universal Auth login and the v3 raw secrets of one
//! project, versioned. Tests use it to run the `infisical` store end to end.
//!
//! | method and path | answer |
//! |---|---|
//! | `POST /api/v1/auth/universal-auth/login` `{clientId, clientSecret}` | `{accessToken, expiresIn, accessTokenMaxTTL, tokenType:"Bearer"}`; 401 for a bad pair |
//! | `GET /api/v3/secrets/raw/{name}?workspaceId=&environment=&secretPath=&type=&version=` | `{secret:{id, _id, workspace, environment, version, type, secretKey, secretValue, secretComment, secretValueHidden, secretPath, createdAt, updatedAt}}`; 404 for a missing secret or version |
//! | `PATCH /api/v3/secrets/raw/{name}` `{workspaceId, environment, secretPath, secretValue, type}` | `{secret}` with the next version, or `{approval}` (nothing changed) where an approval policy covers the folder; 404 for a missing secret |
//! | `POST /api/v3/secrets/raw/{name}` (same body) | `{secret}` version 1, or `{approval}`; 400 when it exists |
//!
//! Secret routes need `Authorization: Bearer <accessToken>` of a login that has not expired:
//! without one, 401 `UnauthorizedError`; with an unknown or expired one, 403 `TokenError`
//! ("Your token has expired. Please re-authenticate."), as Infisical's error handler answers. The server trims `secretValue` as
//! Infisical's router does.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::{ErrorStyle, LoggedRequest, Observer, Running, observe, serve};

struct InfisicalState {
    client_id: String,
    client_secret: String,
    project_id: String,
    environment: String,
    /// Seconds a new access token lives.
    token_ttl: u64,
    tokens: HashMap<String, Instant>,
    /// (folder, name) → values, version 1 first.
    secrets: HashMap<(String, String), Vec<String>>,
    /// Folders covered by a secret-approval policy.
    approval: BTreeSet<String>,
    logins: usize,
}

type Shared = Arc<Mutex<InfisicalState>>;

pub struct InfisicalSim {
    state: Shared,
    observer: Observer,
    running: Running,
}

fn fail(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(ErrorStyle::Infisical.body(status.as_u16(), message)),
    )
        .into_response()
}

/// `/agents/support/KEY` → (`/agents/support`, `KEY`).
fn split(path: &str) -> (String, String) {
    let (folder, name) = path.rsplit_once('/').unwrap_or(("", path));
    let folder = folder.trim_end_matches('/');
    let folder = if folder.is_empty() { "/" } else { folder };
    (folder.to_string(), name.to_string())
}

/// What Infisical's router does to `secretValue`: trim, keeping one trailing newline.
fn trimmed(v: &str) -> String {
    if v.ends_with('\n') {
        format!("{}\n", v.trim())
    } else {
        v.trim().to_string()
    }
}

impl InfisicalSim {
    pub fn start(
        client_id: &str,
        client_secret: &str,
        project_id: &str,
        environment: &str,
    ) -> std::io::Result<Self> {
        let state: Shared = Arc::new(Mutex::new(InfisicalState {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            project_id: project_id.into(),
            environment: environment.into(),
            token_ttl: 7200,
            tokens: HashMap::new(),
            secrets: HashMap::new(),
            approval: BTreeSet::new(),
            logins: 0,
        }));
        let observer = Observer::with_style(ErrorStyle::Infisical);
        let router = Router::new()
            .route("/api/v1/auth/universal-auth/login", post(login))
            .route(
                "/api/v3/secrets/raw/{name}",
                get(read).patch(update).post(create),
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

    fn with<T>(&self, f: impl FnOnce(&mut InfisicalState) -> T) -> T {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s)
    }

    /// Write a new version directly (seeding, or someone else's change); returns its number.
    pub fn put(&self, path: &str, value: &str) -> u64 {
        self.with(|s| {
            let versions = s.secrets.entry(split(path)).or_default();
            versions.push(trimmed(value));
            versions.len() as u64
        })
    }

    pub fn version(&self, path: &str) -> u64 {
        self.with(|s| s.secrets.get(&split(path)).map_or(0, |v| v.len() as u64))
    }

    pub fn value(&self, path: &str, version: Option<u64>) -> Option<String> {
        self.with(|s| {
            let versions = s.secrets.get(&split(path))?;
            match version {
                Some(n) => versions
                    .get(usize::try_from(n).ok()?.checked_sub(1)?)
                    .cloned(),
                None => versions.last().cloned(),
            }
        })
    }

    /// Seconds each new access token lives (0: it expires at once).
    pub fn set_token_ttl(&self, secs: u64) {
        self.with(|s| s.token_ttl = secs);
    }

    /// Expire every access token handed out so far (a long incident outlived them).
    pub fn expire_tokens(&self) {
        self.with(|s| {
            for at in s.tokens.values_mut() {
                *at = Instant::now();
            }
        });
    }

    /// Put a secret-approval policy on a folder: changes there become change requests.
    pub fn require_approval(&self, folder: &str) {
        self.with(|s| s.approval.insert(folder.to_string()));
    }

    /// Every access token handed out (secrets too: tests grep for them).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.with(|s| s.tokens.keys().cloned().collect())
    }

    pub fn logins(&self) -> usize {
        self.with(|s| s.logins)
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.observer.requests()
    }

    pub fn observer(&self) -> &Observer {
        &self.observer
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginBody {
    client_id: Option<String>,
    client_secret: Option<String>,
}

async fn login(State(state): State<Shared>, body: axum::body::Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<LoginBody>(&body) else {
        return fail(StatusCode::BAD_REQUEST, "Invalid request body");
    };
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    if body.client_id.as_deref() != Some(s.client_id.as_str())
        || body.client_secret.as_deref() != Some(s.client_secret.as_str())
    {
        return fail(StatusCode::UNAUTHORIZED, "Invalid credentials");
    }
    s.logins += 1;
    let token = format!("eyJ.sim.{}", super::token(32));
    let ttl = s.token_ttl;
    s.tokens
        .insert(token.clone(), Instant::now() + Duration::from_secs(ttl));
    Json(json!({
        "accessToken": token,
        "expiresIn": ttl,
        "accessTokenMaxTTL": ttl * 10,
        "tokenType": "Bearer",
    }))
    .into_response()
}

/// As Infisical's error handler answers: no bearer token, 401 `UnauthorizedError`; a token
/// it did not issue or one that expired, 403 `TokenError`.
fn authorize(s: &InfisicalState, headers: &HeaderMap) -> Option<Response> {
    let token_error = |message: &str| {
        let body = json!({ "reqId": "req-sim", "statusCode": 403, "error": "TokenError", "message": message });
        (StatusCode::FORBIDDEN, Json(body)).into_response()
    };
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Some(fail(
            StatusCode::UNAUTHORIZED,
            "Missing Authorization header in the request header.",
        ));
    };
    match s.tokens.get(token) {
        None => Some(token_error(
            "The provided access token is malformed. Please use a valid token or generate a new one and try again.",
        )),
        Some(at) if Instant::now() >= *at => Some(token_error(
            "Your token has expired. Please re-authenticate.",
        )),
        Some(_) => None,
    }
}

fn where_ok(
    s: &InfisicalState,
    workspace: Option<&str>,
    environment: Option<&str>,
) -> Option<Response> {
    let Some(workspace) = workspace else {
        return Some(fail(
            StatusCode::BAD_REQUEST,
            "You must provide workspaceSlug or workspaceId",
        ));
    };
    let Some(environment) = environment else {
        return Some(fail(StatusCode::BAD_REQUEST, "Missing environment"));
    };
    if workspace != s.project_id {
        return Some(fail(StatusCode::NOT_FOUND, "Project not found"));
    }
    if environment != s.environment {
        return Some(fail(
            StatusCode::NOT_FOUND,
            &format!("Environment with slug '{environment}' not found"),
        ));
    }
    None
}

fn secret_json(
    s: &InfisicalState,
    folder: &str,
    name: &str,
    version: u64,
    value: &str,
) -> serde_json::Value {
    json!({
        "id": format!("sec-{name}"),
        "_id": format!("sec-{name}"),
        "workspace": s.project_id,
        "environment": s.environment,
        "version": version,
        "type": "shared",
        "secretKey": name,
        "secretValue": value,
        "secretComment": "",
        "secretValueHidden": false,
        "secretPath": folder,
        "createdAt": "2026-01-10T00:00:00.000Z",
        "updatedAt": "2026-01-10T00:00:00.000Z",
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadQuery {
    workspace_id: Option<String>,
    environment: Option<String>,
    secret_path: Option<String>,
    version: Option<u64>,
}

fn folder_of(path: Option<&str>) -> String {
    let p = path.unwrap_or("/").trim().trim_end_matches('/');
    if p.is_empty() { "/".into() } else { p.into() }
}

async fn read(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<ReadQuery>,
) -> Response {
    let s = state.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = authorize(&s, &headers) {
        return r;
    }
    if let Some(r) = where_ok(&s, q.workspace_id.as_deref(), q.environment.as_deref()) {
        return r;
    }
    let folder = folder_of(q.secret_path.as_deref());
    let not_found = || {
        fail(
            StatusCode::NOT_FOUND,
            &format!("Secret with name '{name}' not found"),
        )
    };
    let Some(versions) = s.secrets.get(&(folder.clone(), name.clone())) else {
        return not_found();
    };
    let n = q.version.unwrap_or(versions.len() as u64);
    let Some(value) = usize::try_from(n)
        .ok()
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| versions.get(i))
    else {
        return not_found();
    };
    Json(json!({ "secret": secret_json(&s, &folder, &name, n, value) })).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WriteBody {
    workspace_id: Option<String>,
    environment: Option<String>,
    secret_path: Option<String>,
    secret_value: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

fn approval(folder: &str, name: &str) -> Response {
    Json(json!({ "approval": {
        "id": format!("apr-{}", super::token(8)),
        "slug": format!("change-{}", name.to_ascii_lowercase()),
        "status": "open",
        "hasMerged": false,
        "secretPath": folder,
    }}))
    .into_response()
}

async fn write(
    state: Shared,
    headers: HeaderMap,
    name: String,
    body: axum::body::Bytes,
    create: bool,
) -> Response {
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = authorize(&s, &headers) {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<WriteBody>(&body) else {
        return fail(StatusCode::BAD_REQUEST, "Invalid request body");
    };
    if let Some(r) = where_ok(
        &s,
        body.workspace_id.as_deref(),
        body.environment.as_deref(),
    ) {
        return r;
    }
    if body
        .kind
        .as_deref()
        .is_some_and(|k| k != "shared" && k != "personal")
    {
        return fail(StatusCode::BAD_REQUEST, "Invalid secret type");
    }
    let folder = folder_of(body.secret_path.as_deref());
    let Some(value) = body.secret_value.as_deref().map(trimmed) else {
        return fail(StatusCode::BAD_REQUEST, "secretValue is required");
    };
    let key = (folder.clone(), name.clone());
    let exists = s.secrets.get(&key).is_some_and(|v| !v.is_empty());
    if create && exists {
        return fail(StatusCode::BAD_REQUEST, "Secret already exist");
    }
    if !create && !exists {
        return fail(
            StatusCode::NOT_FOUND,
            &format!("Secret with name '{name}' not found"),
        );
    }
    if s.approval.contains(&folder) {
        return approval(&folder, &name);
    }
    let versions = s.secrets.entry(key).or_default();
    versions.push(value.clone());
    let n = versions.len() as u64;
    Json(json!({ "secret": secret_json(&s, &folder, &name, n, &value) })).into_response()
}

async fn update(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    write(state, headers, name, body, false).await
}

async fn create(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    write(state, headers, name, body, true).await
}
