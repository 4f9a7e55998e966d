//! The loopback server behind the `fake` provider kind. Its API (modelled on the admin APIs
//! of LLM providers) is keyfire's reference for how a provider behaves:
//!
//! | method and path | auth | answer |
//! |---|---|---|
//! | `GET /v1/keys?limit=&after=` | admin | `{object:"list", data:[key], has_more, first_id, last_id}` |
//! | `GET /v1/keys/{id}` | admin | key, or 404 |
//! | `POST /v1/keys/{id}/disable` | admin | key with `status:"disabled"`, or 404 |
//! | `DELETE /v1/keys/{id}` | admin | `{object:"key.deleted", id, deleted:true}`, or 404 |
//! | `POST /v1/keys` `{name}` + `Idempotency-Key` | admin | 201 key with `value` (once); the same `Idempotency-Key` replays the same key |
//! | `GET /v1/me` | the key itself | `{key_id}` for an active key, else 401 with `error.code = "invalid_key"` (the invalid-credential answer: keyfire's proof of revocation) |
//! | `GET /v1/usage?key_id=&start_time=&end_time=&limit=&page=` | admin | daily buckets, paginated by `next_page` |
//!
//! A key object is `{object:"key", id, name, redacted_value, status, created_at}`. Errors are
//! `{error:{message, type, code}}` with 400, 401, 404 or 429/5xx.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

#[cfg(feature = "testing")]
use super::Fault;
use super::{LoggedRequest, Observer, Running, api_error, observe, serve, token};
use crate::provider::UsageBucket;
use crate::secret::hint_of;

#[derive(Debug, Clone)]
pub struct FakeKey {
    pub id: String,
    pub name: String,
    value: String,
    pub status: String,
    pub created_at: i64,
    pub deleted: bool,
}

impl FakeKey {
    /// The key's value, as the provider knows it (tests compare it with what keyfire stored).
    pub fn value(&self) -> &str {
        &self.value
    }

    fn object(&self) -> serde_json::Value {
        json!({
            "object": "key",
            "id": self.id,
            "name": self.name,
            "redacted_value": hint_of(&self.value),
            "status": self.status,
            "created_at": self.created_at,
        })
    }
}

#[derive(Default)]
struct FakeState {
    keys: Vec<FakeKey>,
    admin_tokens: Vec<String>,
    idempotency: HashMap<String, String>,
    usage: HashMap<String, Vec<UsageBucket>>,
    next_id: u64,
}

type Shared = Arc<Mutex<FakeState>>;

pub struct FakeApi {
    state: Shared,
    observer: Observer,
    running: Running,
}

impl FakeApi {
    /// Start on a free loopback port.
    pub fn start() -> std::io::Result<Self> {
        Self::start_on(0)
    }

    pub fn start_on(port: u16) -> std::io::Result<Self> {
        let state: Shared = Arc::default();
        let observer = Observer::default();
        let router = Router::new()
            .route("/v1/keys", get(list_keys).post(create_key))
            .route("/v1/keys/{id}", get(get_key).delete(delete_key))
            .route("/v1/keys/{id}/disable", post(disable_key))
            .route("/v1/me", get(me))
            .route("/v1/usage", get(usage))
            .with_state(state.clone())
            .layer(axum::middleware::from_fn_with_state(
                observer.clone(),
                observe,
            ));
        let running = serve(router, port)?;
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

    fn with<T>(&self, f: impl FnOnce(&mut FakeState) -> T) -> T {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s)
    }

    pub fn add_admin_token(&self, token: &str) {
        self.with(|s| s.admin_tokens.push(token.to_string()));
    }

    pub fn revoke_admin_tokens(&self) {
        self.with(|s| s.admin_tokens.clear());
    }

    /// Create a key directly (as if an engineer made it in the dashboard); returns its id.
    pub fn add_key(&self, name: &str, value: &str) -> String {
        self.with(|s| new_key(s, name, value.to_string()).id)
    }

    /// Create a key with a chosen id (a fixed training environment).
    pub fn add_key_with_id(&self, id: &str, name: &str, value: &str) {
        self.with(|s| {
            let mut k = new_key(s, name, value.to_string());
            k.id = id.to_string();
            if let Some(last) = s.keys.last_mut() {
                last.id = id.to_string();
            }
        });
    }

    /// A key by id, deleted ones included.
    pub fn key(&self, id: &str) -> Option<FakeKey> {
        self.with(|s| s.keys.iter().find(|k| k.id == id).cloned())
    }

    /// Keys not deleted.
    pub fn live_keys(&self) -> Vec<FakeKey> {
        self.with(|s| s.keys.iter().filter(|k| !k.deleted).cloned().collect())
    }

    /// Whether a key value would authenticate right now.
    pub fn accepts(&self, value: &str) -> bool {
        self.with(|s| {
            s.keys
                .iter()
                .any(|k| k.value == value && !k.deleted && k.status == "active")
        })
    }

    pub fn set_usage(&self, key_id: &str, buckets: Vec<UsageBucket>) {
        self.with(|s| {
            s.usage.insert(key_id.to_string(), buckets);
        });
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

fn new_key(s: &mut FakeState, name: &str, value: String) -> FakeKey {
    s.next_id += 1;
    let key = FakeKey {
        id: format!("key_{:04}{}", s.next_id, token(8).to_lowercase()),
        name: name.to_string(),
        value,
        status: "active".into(),
        created_at: chrono::Utc::now().timestamp(),
        deleted: false,
    };
    s.keys.push(key.clone());
    key
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// The rejection to send, if the request is not authorized.
fn admin(state: &Shared, headers: &HeaderMap) -> Option<Response> {
    let ok = bearer(headers).is_some_and(|t| {
        state
            .lock()
            .map(|s| s.admin_tokens.iter().any(|a| a == t))
            .unwrap_or(false)
    });
    (!ok).then(|| {
        api_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Invalid admin key provided.",
        )
    })
}

fn not_found(id: &str) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        &format!("No key with id '{id}'."),
    )
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<usize>,
    after: Option<String>,
}

async fn list_keys(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Some(r) = admin(&state, &headers) {
        return r;
    }
    let s = state.lock().unwrap_or_else(|e| e.into_inner());
    let live: Vec<&FakeKey> = s.keys.iter().filter(|k| !k.deleted).collect();
    let start = match &q.after {
        Some(after) => match live.iter().position(|k| &k.id == after) {
            Some(i) => i + 1,
            None => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "Invalid 'after' cursor.",
                );
            }
        },
        None => 0,
    };
    let limit = q.limit.unwrap_or(20).clamp(1, 100);
    let page: Vec<&FakeKey> = live.iter().skip(start).take(limit).copied().collect();
    let has_more = start + page.len() < live.len();
    Json(json!({
        "object": "list",
        "data": page.iter().map(|k| k.object()).collect::<Vec<_>>(),
        "has_more": has_more,
        "first_id": page.first().map(|k| k.id.clone()),
        "last_id": page.last().map(|k| k.id.clone()),
    }))
    .into_response()
}

async fn get_key(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = admin(&state, &headers) {
        return r;
    }
    let s = state.lock().unwrap_or_else(|e| e.into_inner());
    match s.keys.iter().find(|k| k.id == id && !k.deleted) {
        Some(k) => Json(k.object()).into_response(),
        None => not_found(&id),
    }
}

async fn disable_key(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = admin(&state, &headers) {
        return r;
    }
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    match s.keys.iter_mut().find(|k| k.id == id && !k.deleted) {
        Some(k) => {
            k.status = "disabled".into();
            Json(k.object()).into_response()
        }
        None => not_found(&id),
    }
}

async fn delete_key(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = admin(&state, &headers) {
        return r;
    }
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    match s.keys.iter_mut().find(|k| k.id == id && !k.deleted) {
        Some(k) => {
            k.deleted = true;
            Json(json!({ "object": "key.deleted", "id": id, "deleted": true })).into_response()
        }
        None => not_found(&id),
    }
}

#[derive(Deserialize)]
struct CreateBody {
    name: Option<String>,
}

async fn create_key(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Option<Json<CreateBody>>,
) -> Response {
    if let Some(r) = admin(&state, &headers) {
        return r;
    }
    let Some(name) = body.and_then(|b| b.0.name).filter(|n| !n.is_empty()) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "Missing required parameter: 'name'.",
        );
    };
    let idem = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    let existing = idem
        .as_ref()
        .and_then(|k| s.idempotency.get(k))
        .and_then(|id| s.keys.iter().find(|k| &k.id == id))
        .cloned();
    let key = match existing {
        Some(k) => k,
        None => {
            let k = new_key(&mut s, &name, format!("fk-{}", token(40)));
            if let Some(i) = idem {
                s.idempotency.insert(i, k.id.clone());
            }
            k
        }
    };
    let mut obj = key.object();
    obj["value"] = json!(key.value);
    (StatusCode::CREATED, Json(obj)).into_response()
}

async fn me(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let s = state.lock().unwrap_or_else(|e| e.into_inner());
    let found = bearer(&headers).and_then(|t| {
        s.keys
            .iter()
            .find(|k| k.value == t && !k.deleted && k.status == "active")
    });
    match found {
        Some(k) => Json(json!({ "object": "key.identity", "key_id": k.id })).into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": { "message": "Incorrect API key provided.", "type": "invalid_request_error", "code": "invalid_key" } })),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct UsageQuery {
    key_id: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    limit: Option<usize>,
    page: Option<String>,
}

async fn usage(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<UsageQuery>,
) -> Response {
    if let Some(r) = admin(&state, &headers) {
        return r;
    }
    let (Some(key_id), Some(start)) = (q.key_id, q.start_time) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "Missing required parameters: 'key_id' and 'start_time'.",
        );
    };
    let end = q.end_time.unwrap_or(i64::MAX);
    let s = state.lock().unwrap_or_else(|e| e.into_inner());
    let buckets: Vec<&UsageBucket> = s
        .usage
        .get(&key_id)
        .map(|b| {
            b.iter()
                .filter(|b| b.end.timestamp() > start && b.start.timestamp() < end)
                .collect()
        })
        .unwrap_or_default();
    let offset = match q.page.as_deref().map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "Invalid 'page' cursor.",
            );
        }
    };
    let limit = q.limit.unwrap_or(7).clamp(1, 31);
    let page: Vec<serde_json::Value> = buckets
        .iter()
        .skip(offset)
        .take(limit)
        .map(|b| {
            json!({
                "object": "bucket",
                "start_time": b.start.timestamp(),
                "end_time": b.end.timestamp(),
                "requests": b.requests,
                "input_tokens": b.input_tokens,
                "output_tokens": b.output_tokens,
                "cost_usd": b.cost_usd,
            })
        })
        .collect();
    let next = offset + page.len();
    let has_more = next < buckets.len();
    Json(json!({ "object": "page", "data": page, "has_more": has_more, "next_page": has_more.then(|| next.to_string()) })).into_response()
}
