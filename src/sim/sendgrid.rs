//! A loopback stand-in for the parts of SendGrid's v3 API that keyfire calls, following
//! twilio/sendgrid-oai `tsg_api_keys_v3` and `tsg_scopes_v3` (paths, bodies, status codes and
//! `{"errors": [{"field", "message"}]}` error bodies):
//!
//! | method and path | auth | answer |
//! |---|---|---|
//! | `GET /v3/scopes` | any API key | `{scopes}` of that key; 401 "authorization required" for an unknown or deleted key |
//! | `GET /v3/api_keys?limit=` | admin | `{result: [{name, api_key_id}]}`, the first `limit` keys (no cursor) |
//! | `GET /v3/api_keys/{api_key_id}` | admin | `{result: [{name, api_key_id, scopes}]}`, or 404 |
//! | `POST /v3/api_keys` `{name, scopes?}` | admin | 201 `{api_key, api_key_id, name, scopes}`; no `scopes` = full access; 403 past 100 keys; 400 without `name` |
//! | `DELETE /v3/api_keys/{api_key_id}` | admin | 204, or 404 |
//!
//! Admin calls take a key holding `api_keys.*` scopes; a key without them gets 403 "access
//! forbidden" (unverified wording). `on-behalf-of: NAME` makes an admin call act on the
//! subuser NAME's keys. Key values are `SG.<api_key_id>.<secret>`: the id is the middle
//! segment, as in the spec's example.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

#[cfg(feature = "testing")]
use super::Fault;
use super::{ErrorStyle, LoggedRequest, Observer, Running, observe, serve, token};

/// The scopes a key created without `scopes` gets ("Full Access"), in part.
pub const FULL_ACCESS: &[&str] = &[
    "api_keys.create",
    "api_keys.delete",
    "api_keys.read",
    "api_keys.update",
    "mail.send",
    "stats.read",
    "user.profile.read",
];
/// The scopes an admin credential for keyfire needs.
pub const KEY_ADMIN: &[&str] = &[
    "api_keys.create",
    "api_keys.delete",
    "api_keys.read",
    "api_keys.update",
];
const MAX_KEYS: usize = 100;

#[derive(Debug, Clone)]
pub struct SendGridKey {
    pub id: String,
    pub name: String,
    value: String,
    pub scopes: Vec<String>,
    /// The subuser owning the key (`None`: the parent account).
    pub subuser: Option<String>,
}

impl SendGridKey {
    pub fn value(&self) -> &str {
        &self.value
    }
}

#[derive(Default)]
struct SgState {
    keys: Vec<SendGridKey>,
}

type Shared = Arc<Mutex<SgState>>;

pub struct SendGridSim {
    state: Shared,
    observer: Observer,
    running: Running,
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, SgState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn error(status: StatusCode, field: Option<&str>, message: &str) -> Response {
    (
        status,
        Json(json!({ "errors": [{ "field": field, "message": message }] })),
    )
        .into_response()
}

fn unauthorized() -> Response {
    error(StatusCode::UNAUTHORIZED, None, "authorization required")
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, None, "unable to find API key")
}

/// A value in SendGrid's shape: `SG.` + a 22-character id + `.` + a 43-character secret.
pub fn new_value() -> (String, String) {
    let id = token(22);
    let value = format!("SG.{id}.{}", token(43));
    (id, value)
}

impl SendGridSim {
    pub fn start() -> std::io::Result<Self> {
        let state: Shared = Arc::default();
        let observer = Observer::with_style(ErrorStyle::SendGrid);
        let router = Router::new()
            .route("/v3/scopes", get(scopes))
            .route("/v3/api_keys", get(list_keys).post(create_key))
            .route("/v3/api_keys/{id}", get(get_key).delete(delete_key))
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

    pub fn base_url(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    fn with<T>(&self, f: impl FnOnce(&mut SgState) -> T) -> T {
        f(&mut lock(&self.state))
    }

    /// A key made in the web app with these scopes; the value must be `SG.<id>.<secret>`
    /// (its middle segment becomes the id). Returns the id.
    pub fn add_key(&self, name: &str, value: &str, scopes: &[&str]) -> String {
        self.add_subuser_key(None, name, value, scopes)
    }

    pub fn add_subuser_key(
        &self,
        subuser: Option<&str>,
        name: &str,
        value: &str,
        scopes: &[&str],
    ) -> String {
        let id = value
            .split('.')
            .nth(1)
            .filter(|s| !s.is_empty())
            .map_or_else(|| token(22), str::to_string);
        self.with(|s| {
            s.keys.push(SendGridKey {
                id: id.clone(),
                name: name.to_string(),
                value: value.to_string(),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                subuser: subuser.map(str::to_string),
            });
        });
        id
    }

    /// The admin credential: a key with the `api_keys.*` scopes.
    pub fn add_admin_key(&self, value: &str) -> String {
        self.add_key("keyfire admin", value, KEY_ADMIN)
    }

    pub fn key(&self, id: &str) -> Option<SendGridKey> {
        self.with(|s| s.keys.iter().find(|k| k.id == id).cloned())
    }

    pub fn keys(&self) -> Vec<SendGridKey> {
        self.with(|s| s.keys.clone())
    }

    /// Whether a key value would authenticate now.
    pub fn accepts(&self, value: &str) -> bool {
        self.with(|s| s.keys.iter().any(|k| k.value == value))
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.observer.requests()
    }

    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    #[cfg(feature = "testing")]
    pub fn inject(&self, fault: Fault) {
        self.observer.inject(fault);
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// The subuser an admin call acts for (`on-behalf-of`), or the parent account.
fn acting_for(headers: &HeaderMap) -> Option<String> {
    headers
        .get("on-behalf-of")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The rejection for a caller that may not manage keys, or `None`.
fn admin(state: &Shared, headers: &HeaderMap, scope: &str) -> Option<Response> {
    let Some(t) = bearer(headers) else {
        return Some(unauthorized());
    };
    let s = lock(state);
    match s.keys.iter().find(|k| k.value == t) {
        None => Some(unauthorized()),
        Some(k) if !k.scopes.iter().any(|s| s == scope) => {
            Some(error(StatusCode::FORBIDDEN, None, "access forbidden"))
        }
        Some(_) => None,
    }
}

async fn scopes(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let s = lock(&state);
    match bearer(&headers).and_then(|t| s.keys.iter().find(|k| k.value == t)) {
        Some(k) => Json(json!({ "scopes": k.scopes })).into_response(),
        None => unauthorized(),
    }
}

async fn list_keys(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Some(r) = admin(&state, &headers, "api_keys.read") {
        return r;
    }
    let limit = url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "limit")
        .map(|(_, v)| v.parse::<usize>());
    let limit = match limit {
        None => usize::MAX,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => return error(StatusCode::BAD_REQUEST, Some("limit"), "invalid limit"),
    };
    let who = acting_for(&headers);
    let s = lock(&state);
    let result: Vec<Value> = s
        .keys
        .iter()
        .filter(|k| k.subuser == who)
        .take(limit)
        .map(|k| json!({ "name": k.name, "api_key_id": k.id }))
        .collect();
    Json(json!({ "result": result })).into_response()
}

async fn get_key(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = admin(&state, &headers, "api_keys.read") {
        return r;
    }
    let who = acting_for(&headers);
    let s = lock(&state);
    match s.keys.iter().find(|k| k.id == id && k.subuser == who) {
        Some(k) => Json(json!({
            "result": [{ "name": k.name, "api_key_id": k.id, "scopes": k.scopes }]
        }))
        .into_response(),
        None => not_found(),
    }
}

async fn create_key(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if let Some(r) = admin(&state, &headers, "api_keys.create") {
        return r;
    }
    let body = body.map(|b| b.0).unwrap_or(Value::Null);
    let Some(name) = body.get("name").and_then(Value::as_str).map(str::to_string) else {
        return error(
            StatusCode::BAD_REQUEST,
            Some("name"),
            "missing required argument",
        );
    };
    let scopes: Vec<String> = match body.get("scopes") {
        None | Some(Value::Null) => FULL_ACCESS.iter().map(|s| s.to_string()).collect(),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                Some("scopes"),
                "scopes must be an array of strings",
            );
        }
    };
    let who = acting_for(&headers);
    let mut s = lock(&state);
    if s.keys.iter().filter(|k| k.subuser == who).count() >= MAX_KEYS {
        return error(
            StatusCode::FORBIDDEN,
            None,
            "Cannot create more than 100 API keys",
        );
    }
    let (id, value) = new_value();
    s.keys.push(SendGridKey {
        id: id.clone(),
        name: name.clone(),
        value: value.clone(),
        scopes: scopes.clone(),
        subuser: who,
    });
    (
        StatusCode::CREATED,
        Json(json!({ "api_key": value, "api_key_id": id, "name": name, "scopes": scopes })),
    )
        .into_response()
}

async fn delete_key(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = admin(&state, &headers, "api_keys.delete") {
        return r;
    }
    let who = acting_for(&headers);
    let mut s = lock(&state);
    let before = s.keys.len();
    s.keys.retain(|k| !(k.id == id && k.subuser == who));
    if s.keys.len() == before {
        return not_found();
    }
    StatusCode::NO_CONTENT.into_response()
}
