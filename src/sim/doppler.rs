//! A loopback subset of Doppler's API v3 (docs.doppler.com/reference), with Doppler's error
//! bodies (`{"messages": [...], "success": false}`): one project config, its secrets and its
//! activity log. Tests use it to run the `doppler` store end to end.
//!
//! | method and path | answer |
//! |---|---|
//! | `GET /v3/configs/config/secret?project=&config=&name=` | `{success, name, value:{raw, computed, note}}`; 404 for an unknown secret or config |
//! | `GET /v3/configs/config/logs?project=&config=&page=&per_page=` | `{success, page, logs:[{id, text, html, rollback, created_at, config, environment, project, user:{email, name, username, profile_image_url}}]}`, newest first |
//! | `POST /v3/configs/config/secrets` `{project, config, secrets:{NAME: value}}` | `{success, secrets:{NAME:{raw, computed, note}}}` (every secret of the config); one new log entry |
//!
//! Every route needs `Authorization: Bearer <token>` (401 "Invalid Auth token" otherwise); a
//! read-only token gets 403 on the update, as a Doppler service token created without write
//! access does.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ErrorStyle, LoggedRequest, Observer, Running, observe, serve};

/// Who the sim names as the author of keyfire's own writes.
pub const TOKEN_USER: &str = "keyfire-rotation (service token)";

#[derive(Clone)]
struct Log {
    id: String,
    text: String,
    created_at: String,
    user: String,
    email: String,
}

struct DopplerState {
    project: String,
    config: String,
    token: String,
    read_only: bool,
    secrets: BTreeMap<String, String>,
    /// Raw values that differ from the computed one (secret references, `${OTHER}`).
    raw: BTreeMap<String, String>,
    /// Oldest first.
    logs: Vec<Log>,
}

type Shared = Arc<Mutex<DopplerState>>;

pub struct DopplerSim {
    state: Shared,
    observer: Observer,
    running: Running,
}

fn fail(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(ErrorStyle::Doppler.body(status.as_u16(), message)),
    )
        .into_response()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl DopplerState {
    fn log(&mut self, text: String, user: &str, email: &str) -> String {
        let id = super::token(24);
        self.logs.push(Log {
            id: id.clone(),
            text,
            created_at: now(),
            user: user.into(),
            email: email.into(),
        });
        id
    }
}

impl DopplerSim {
    pub fn start(project: &str, config: &str, token: &str) -> std::io::Result<Self> {
        let state: Shared = Arc::new(Mutex::new(DopplerState {
            project: project.into(),
            config: config.into(),
            token: token.into(),
            read_only: false,
            secrets: BTreeMap::new(),
            raw: BTreeMap::new(),
            logs: Vec::new(),
        }));
        let observer = Observer::with_style(ErrorStyle::Doppler);
        let router = Router::new()
            .route("/v3/configs/config/secret", get(read))
            .route("/v3/configs/config/logs", get(logs))
            .route("/v3/configs/config/secrets", post(update))
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

    fn with<T>(&self, f: impl FnOnce(&mut DopplerState) -> T) -> T {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s)
    }

    /// Set a secret as a user of the dashboard would (seeding, or someone else's change in
    /// the middle of an incident); returns the log id of the change.
    pub fn put_as(&self, name: &str, value: &str, user: &str, email: &str) -> String {
        self.with(|s| {
            s.secrets.insert(name.into(), value.into());
            s.log(format!("Updated secret {name}"), user, email)
        })
    }

    pub fn put(&self, name: &str, value: &str) -> String {
        self.put_as(name, value, "Seed Admin", "admin@example.com")
    }

    /// Make a secret a reference: its raw value is `raw` (e.g. `${shared.prd.OPENAI_KEY}`),
    /// its computed value stays what agents receive.
    pub fn set_raw(&self, name: &str, raw: &str) {
        self.with(|s| s.raw.insert(name.into(), raw.into()));
    }

    /// The token may read but not write, like a service token without write access.
    pub fn set_read_only(&self, yes: bool) {
        self.with(|s| s.read_only = yes);
    }

    pub fn value(&self, name: &str) -> Option<String> {
        self.with(|s| s.secrets.get(name).cloned())
    }

    /// Log ids, newest first.
    pub fn log_ids(&self) -> Vec<String> {
        self.with(|s| s.logs.iter().rev().map(|l| l.id.clone()).collect())
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.observer.requests()
    }

    pub fn observer(&self) -> &Observer {
        &self.observer
    }
}

fn authorized(s: &DopplerState, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        == Some(s.token.as_str())
}

/// Auth first (401), then the config (400 when unnamed, 404 when unknown).
fn check(
    s: &DopplerState,
    headers: &HeaderMap,
    project: Option<&str>,
    config: Option<&str>,
) -> Option<Response> {
    if !authorized(s, headers) {
        return Some(fail(StatusCode::UNAUTHORIZED, "Invalid Auth token"));
    }
    let (Some(project), Some(config)) = (project, config) else {
        return Some(fail(
            StatusCode::BAD_REQUEST,
            "Must specify a project and config",
        ));
    };
    if project != s.project || config != s.config {
        return Some(fail(
            StatusCode::NOT_FOUND,
            "Could not find requested config",
        ));
    }
    None
}

#[derive(Deserialize)]
struct SecretQuery {
    project: Option<String>,
    config: Option<String>,
    name: Option<String>,
}

fn value_of(raw: Option<&String>, v: &str) -> Value {
    json!({ "raw": raw.map_or(v, String::as_str), "computed": v, "note": "" })
}

async fn read(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<SecretQuery>,
) -> Response {
    let s = state.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = check(&s, &headers, q.project.as_deref(), q.config.as_deref()) {
        return r;
    }
    let Some(name) = q.name else {
        return fail(StatusCode::BAD_REQUEST, "Must specify a secret name");
    };
    match s.secrets.get(&name) {
        Some(v) => {
            Json(json!({ "success": true, "name": name, "value": value_of(s.raw.get(&name), v) }))
                .into_response()
        }
        None => fail(StatusCode::NOT_FOUND, "Could not find requested secret"),
    }
}

#[derive(Deserialize)]
struct LogsQuery {
    project: Option<String>,
    config: Option<String>,
    page: Option<usize>,
    per_page: Option<usize>,
}

async fn logs(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<LogsQuery>,
) -> Response {
    let s = state.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = check(&s, &headers, q.project.as_deref(), q.config.as_deref()) {
        return r;
    }
    let page = q.page.unwrap_or(1).max(1);
    let per_page = q.per_page.unwrap_or(20).clamp(1, 100);
    let listed: Vec<Value> = s
        .logs
        .iter()
        .rev()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|l| {
            json!({
                "id": l.id,
                "text": l.text,
                "html": format!("<p>{}</p>", l.text),
                "rollback": false,
                "created_at": l.created_at,
                "config": s.config,
                "environment": s.config.split('_').next().unwrap_or(&s.config),
                "project": s.project,
                "user": { "email": l.email, "name": l.user, "username": l.email, "profile_image_url": null },
            })
        })
        .collect();
    Json(json!({ "success": true, "page": page, "logs": listed })).into_response()
}

#[derive(Deserialize)]
struct UpdateBody {
    project: Option<String>,
    config: Option<String>,
    secrets: Option<Map<String, Value>>,
    change_requests: Option<Vec<Value>>,
}

async fn update(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    if !authorized(&s, &headers) {
        return fail(StatusCode::UNAUTHORIZED, "Invalid Auth token");
    }
    let Ok(body) = serde_json::from_slice::<UpdateBody>(&body) else {
        return fail(StatusCode::BAD_REQUEST, "Invalid request body");
    };
    if let Some(r) = check(
        &s,
        &headers,
        body.project.as_deref(),
        body.config.as_deref(),
    ) {
        return r;
    }
    if s.read_only {
        return fail(
            StatusCode::FORBIDDEN,
            "This token does not have write access to the requested config",
        );
    }
    let secrets = match (body.secrets, body.change_requests) {
        (Some(secrets), None) => secrets,
        _ => {
            return fail(
                StatusCode::BAD_REQUEST,
                "Must specify either secrets or change_requests (but not both)",
            );
        }
    };
    let mut names = Vec::new();
    for (name, value) in secrets {
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        let Some(value) = value.as_str() else {
            return fail(StatusCode::BAD_REQUEST, "Secret values must be strings");
        };
        if !valid {
            return fail(
                StatusCode::BAD_REQUEST,
                "Secret names may only contain uppercase letters, numbers, and underscores",
            );
        }
        s.secrets.insert(name.clone(), value.to_string());
        s.raw.remove(&name);
        names.push(name);
    }
    if !names.is_empty() {
        s.log(
            format!("Updated secrets {}", names.join(", ")),
            TOKEN_USER,
            "service-token@doppler.invalid",
        );
    }
    let all: Map<String, Value> = s
        .secrets
        .iter()
        .map(|(k, v)| (k.clone(), value_of(s.raw.get(k), v)))
        .collect();
    Json(json!({ "success": true, "secrets": all })).into_response()
}
