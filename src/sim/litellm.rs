//! A loopback stand-in for the parts of a LiteLLM proxy that keyfire calls, following
//! BerriAI/litellm (`proxy/management_endpoints/key_management_endpoints.py`,
//! `proxy/spend_tracking/spend_management_endpoints.py`, `schema.prisma`): key objects with
//! `LiteLLM_VerificationToken`'s field names, hashed tokens (SHA-256 hex of the key), spend
//! logs with `LiteLLM_SpendLogs`' names, and `ProxyException` error bodies
//! `{"error": {"message", "type", "param", "code"}}`.
//!
//! | method and path | auth | answer |
//! |---|---|---|
//! | `GET /v1/models` | a virtual key | `{data, object: "list"}` of the key's models; 401 `auth_error` for an unknown or blocked key |
//! | `GET /key/info?key=` | master key | `{key, info}`; 404 `not_found_error` |
//! | `GET /key/list?page=&size=&key_alias=&return_full_object=` | master key | `{keys, total_count, current_page, total_pages}`; `size` 1..=100 (422 otherwise) |
//! | `POST /key/block` `{key}` | master key | the key with `blocked: true`; 404 |
//! | `POST /key/delete` `{keys}` | master key | `{deleted_keys}`; 400 when a key does not exist |
//! | `POST /key/generate` `{models, max_budget, tpm_limit, rpm_limit, metadata, key_alias}` | master key | `{key, token, key_name, key_alias, ...}`; 400 for an alias already in use |
//! | `GET /spend/logs?api_key=&start_date=&end_date=&summarize=false` | master key | `[LiteLLM_SpendLogs]` with `startTime` in [start_date, end_date] (dates at midnight UTC) |
//!
//! `key` in a body or query is a raw `sk-` key (hashed by the proxy) or a hashed token. A
//! virtual key on a management route gets 401 `auth_error` (unverified: the proxy's answer
//! depends on the key's role). `summarize=true` (the proxy's default) is answered 400 here:
//! keyfire never asks for the summary.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{Value, json};

#[cfg(feature = "testing")]
use super::Fault;
use super::{ErrorStyle, LoggedRequest, Observer, Running, observe, serve, token};
use crate::provider::UsageBucket;

#[derive(Debug, Clone)]
pub struct VirtualKey {
    /// The hashed token (SHA-256 hex of the value).
    pub token: String,
    value: String,
    pub key_alias: Option<String>,
    pub models: Vec<String>,
    pub max_budget: Option<f64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub metadata: Value,
    pub blocked: Option<bool>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl VirtualKey {
    pub fn value(&self) -> &str {
        &self.value
    }
}

#[derive(Default)]
struct LlState {
    master_keys: Vec<String>,
    keys: Vec<VirtualKey>,
    spend_logs: Vec<Value>,
}

type Shared = Arc<Mutex<LlState>>;

pub struct LiteLlmSim {
    state: Shared,
    observer: Observer,
    running: Running,
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, LlState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// `hash_token`: the SHA-256 hex of the key.
pub fn hash_token(value: &str) -> String {
    crate::secret::fingerprint::of_value(value)
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({ "error": {
        "message": message, "type": kind, "param": "None", "code": status.as_u16().to_string(),
    }});
    (status, Json(body)).into_response()
}

fn auth_error(message: &str) -> Response {
    error(StatusCode::UNAUTHORIZED, "auth_error", message)
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "bad_request_error", message)
}

/// `abbreviate_api_key`: `sk-...` and the last four characters.
fn key_name(value: &str) -> String {
    let tail: String = value
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("sk-...{tail}")
}

/// A key object as `LiteLLM_VerificationToken` names its fields.
fn key_object(k: &VirtualKey) -> Value {
    json!({
        "token": k.token,
        "key_name": key_name(&k.value),
        "key_alias": k.key_alias,
        "spend": 0.0,
        "expires": null,
        "models": k.models,
        "aliases": {},
        "config": {},
        "user_id": k.user_id,
        "team_id": k.team_id,
        "permissions": {},
        "max_parallel_requests": null,
        "metadata": k.metadata,
        "blocked": k.blocked,
        "tpm_limit": k.tpm_limit,
        "rpm_limit": k.rpm_limit,
        "max_budget": k.max_budget,
        "budget_duration": null,
        "budget_reset_at": null,
        "allowed_cache_controls": [],
        "model_spend": {},
        "model_max_budget": {},
        "budget_id": null,
        "organization_id": null,
        "created_at": k.created_at.to_rfc3339(),
        "created_by": "default_user_id",
        "updated_at": k.created_at.to_rfc3339(),
        "updated_by": "default_user_id",
        "last_active": null,
    })
}

/// A body or query `key`: a raw key is hashed, a hashed token taken as it is.
fn token_of(key: &str) -> String {
    if key.starts_with("sk-") {
        hash_token(key)
    } else {
        key.to_string()
    }
}

fn params(q: Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

impl LiteLlmSim {
    pub fn start() -> std::io::Result<Self> {
        let state: Shared = Arc::default();
        let observer = Observer::with_style(ErrorStyle::LiteLlm);
        let router = Router::new()
            .route("/v1/models", get(models))
            .route("/key/info", get(info))
            .route("/key/list", get(list))
            .route("/key/block", post(block))
            .route("/key/delete", post(delete))
            .route("/key/generate", post(generate))
            .route("/spend/logs", get(spend_logs))
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

    fn with<T>(&self, f: impl FnOnce(&mut LlState) -> T) -> T {
        f(&mut lock(&self.state))
    }

    pub fn add_master_key(&self, value: &str) {
        self.with(|s| s.master_keys.push(value.to_string()));
    }

    /// A virtual key with an alias, models, a budget, limits and metadata; returns its
    /// hashed token.
    pub fn add_key(&self, alias: Option<&str>, value: &str, models: &[&str]) -> String {
        let token = hash_token(value);
        self.with(|s| {
            s.keys.push(VirtualKey {
                token: token.clone(),
                value: value.to_string(),
                key_alias: alias.map(str::to_string),
                models: models.iter().map(|m| m.to_string()).collect(),
                max_budget: Some(50.0),
                tpm_limit: Some(100_000),
                rpm_limit: Some(60),
                metadata: json!({ "team": "support", "env": "prod" }),
                blocked: None,
                user_id: Some("support-bot".into()),
                team_id: None,
                created_at: Utc::now() - Duration::days(40),
            });
        });
        token
    }

    /// Spend-log rows for a key from daily usage: `requests / 100` rows a day (at least one),
    /// each carrying its share of tokens and spend.
    pub fn set_usage(&self, token: &str, buckets: &[UsageBucket]) {
        let rows: Vec<Value> = buckets
            .iter()
            .flat_map(|b| {
                let n = (b.requests / 100).clamp(1, 100);
                let tokens = (b.input_tokens + b.output_tokens) / n;
                let spend = b.cost_usd / n as f64;
                (0..n).map(move |i| {
                    let at = b.start + Duration::minutes(9 * 60 + i64::try_from(i).unwrap_or(0));
                    json!({
                        "request_id": format!("chatcmpl-{}", super::token(24)),
                        "call_type": "acompletion",
                        "api_key": token,
                        "spend": spend,
                        "total_tokens": tokens,
                        "prompt_tokens": tokens * 3 / 4,
                        "completion_tokens": tokens - tokens * 3 / 4,
                        "startTime": at.to_rfc3339(),
                        "endTime": (at + Duration::seconds(2)).to_rfc3339(),
                        "model": "gpt-4o",
                        "model_group": "gpt-4o",
                        "custom_llm_provider": "openai",
                        "api_base": "https://api.openai.com/v1",
                        "user": "support-bot",
                        "metadata": {},
                        "cache_hit": "False",
                        "request_tags": [],
                        "team_id": null,
                        "end_user": "",
                        "requester_ip_address": "198.51.100.7",
                        "status": "success",
                    })
                })
            })
            .collect();
        self.with(|s| s.spend_logs.extend(rows));
    }

    /// One raw spend-log row (tests plant failures and odd addresses with it).
    pub fn add_spend_log(&self, row: Value) {
        self.with(|s| s.spend_logs.push(row));
    }

    pub fn key(&self, token: &str) -> Option<VirtualKey> {
        self.with(|s| s.keys.iter().find(|k| k.token == token).cloned())
    }

    pub fn keys(&self) -> Vec<VirtualKey> {
        self.with(|s| s.keys.clone())
    }

    /// Whether a key value would authenticate now.
    pub fn accepts(&self, value: &str) -> bool {
        self.with(|s| {
            s.keys
                .iter()
                .any(|k| k.value == value && k.blocked != Some(true))
        })
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

fn master(state: &Shared, headers: &HeaderMap) -> Option<Response> {
    let s = lock(state);
    match bearer(headers) {
        Some(t) if s.master_keys.iter().any(|m| m == t) => None,
        Some(t) if s.keys.iter().any(|k| k.value == t) => Some(auth_error(
            "Authentication Error - only proxy admins can use this route",
        )),
        _ => Some(auth_error(
            "Authentication Error, Invalid proxy server token passed.",
        )),
    }
}

async fn models(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let s = lock(&state);
    let Some(k) = bearer(&headers).and_then(|t| s.keys.iter().find(|k| k.value == t)) else {
        return auth_error("Authentication Error, Invalid proxy server token passed.");
    };
    if k.blocked == Some(true) {
        return auth_error(
            "Authentication Error - Key is blocked. Update via `/key/unblock` if you're admin.",
        );
    }
    let data: Vec<Value> = k
        .models
        .iter()
        .map(|m| json!({ "id": m, "object": "model", "created": 1_677_610_602, "owned_by": "openai" }))
        .collect();
    Json(json!({ "data": data, "object": "list" })).into_response()
}

async fn info(State(state): State<Shared>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = master(&state, &headers) {
        return r;
    }
    let p = params(q);
    let Some(key) = param(&p, "key") else {
        return bad_request("key is required");
    };
    let token = token_of(key);
    let s = lock(&state);
    match s.keys.iter().find(|k| k.token == token) {
        Some(k) => {
            let mut obj = key_object(k);
            // `/key/info` leaves the hashed token out of `info`: `key` names it.
            if let Value::Object(m) = &mut obj {
                m.remove("token");
            }
            Json(json!({ "key": key, "info": obj })).into_response()
        }
        None => error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            "Key not found in database",
        ),
    }
}

async fn list(State(state): State<Shared>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = master(&state, &headers) {
        return r;
    }
    let p = params(q);
    let number = |name: &str, default: usize| -> Option<usize> {
        param(&p, name).map_or(Some(default), |v| v.parse().ok())
    };
    let (Some(page), Some(size)) = (number("page", 1), number("size", 10)) else {
        return unprocessable("page and size must be integers");
    };
    if page < 1 || !(1..=100).contains(&size) {
        return unprocessable("page must be >= 1 and size between 1 and 100");
    }
    let full = param(&p, "return_full_object") == Some("true");
    let s = lock(&state);
    let keys: Vec<&VirtualKey> = s
        .keys
        .iter()
        .filter(|k| param(&p, "key_alias").is_none_or(|a| k.key_alias.as_deref() == Some(a)))
        .collect();
    let total = keys.len();
    let out: Vec<Value> = keys
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|k| if full { key_object(k) } else { json!(k.token) })
        .collect();
    Json(json!({
        "keys": out,
        "total_count": total,
        "current_page": page,
        "total_pages": total.div_ceil(size),
    }))
    .into_response()
}

fn unprocessable(message: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "detail": [{ "type": "value_error", "msg": message }] })),
    )
        .into_response()
}

async fn block(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if let Some(r) = master(&state, &headers) {
        return r;
    }
    let Some(key) = body
        .as_ref()
        .and_then(|b| b.get("key"))
        .and_then(Value::as_str)
    else {
        return bad_request("key is required");
    };
    let token = token_of(key);
    let mut s = lock(&state);
    match s.keys.iter_mut().find(|k| k.token == token) {
        Some(k) => {
            k.blocked = Some(true);
            Json(key_object(k)).into_response()
        }
        None => error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            "Key not found in database",
        ),
    }
}

async fn delete(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if let Some(r) = master(&state, &headers) {
        return r;
    }
    let Some(keys) = body
        .as_ref()
        .and_then(|b| b.get("keys"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
    else {
        return bad_request("keys or key_aliases is required");
    };
    let tokens: Vec<String> = keys.iter().map(|k| token_of(k)).collect();
    let mut s = lock(&state);
    if !tokens.iter().all(|t| s.keys.iter().any(|k| &k.token == t)) {
        return bad_request("Failed to delete all keys. Not all keys exist.");
    }
    s.keys.retain(|k| !tokens.contains(&k.token));
    Json(json!({ "deleted_keys": keys })).into_response()
}

async fn generate(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if let Some(r) = master(&state, &headers) {
        return r;
    }
    let body = body.map(|b| b.0).unwrap_or_else(|| json!({}));
    let alias = body
        .get("key_alias")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut s = lock(&state);
    if let Some(a) = &alias
        && s.keys.iter().any(|k| k.key_alias.as_deref() == Some(a))
    {
        return bad_request(&format!(
            "Unique key aliases across all keys are required. Key alias={a} already exists."
        ));
    }
    let models = match body.get("models") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(_) => return unprocessable("models must be a list"),
    };
    let value = format!("sk-{}", token(22));
    let k = VirtualKey {
        token: hash_token(&value),
        value: value.clone(),
        key_alias: alias,
        models,
        max_budget: body.get("max_budget").and_then(Value::as_f64),
        tpm_limit: body.get("tpm_limit").and_then(Value::as_i64),
        rpm_limit: body.get("rpm_limit").and_then(Value::as_i64),
        metadata: body.get("metadata").cloned().unwrap_or_else(|| json!({})),
        blocked: None,
        user_id: body
            .get("user_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        team_id: body
            .get("team_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        created_at: Utc::now(),
    };
    let mut answer = key_object(&k);
    if let Value::Object(m) = &mut answer {
        m.insert("key".into(), json!(value));
    }
    s.keys.push(k);
    Json(answer).into_response()
}

async fn spend_logs(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Some(r) = master(&state, &headers) {
        return r;
    }
    let p = params(q);
    if param(&p, "summarize") != Some("false") {
        return bad_request("summarize=true is not modelled by this simulator");
    }
    // The error is the name of the parameter that does not parse.
    let date = |name: &'static str| -> Result<Option<DateTime<Utc>>, &'static str> {
        param(&p, name)
            .map(|v| {
                NaiveDate::parse_from_str(v, "%Y-%m-%d")
                    .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
                    .map_err(|_| name)
            })
            .transpose()
    };
    let (start, end) = match (date("start_date"), date("end_date")) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(name), _) | (_, Err(name)) => {
            return bad_request(&format!(
                "{name}: time data does not match format '%Y-%m-%d'"
            ));
        }
    };
    let api_key = param(&p, "api_key").map(token_of);
    let s = lock(&state);
    let mut rows: Vec<&Value> = s
        .spend_logs
        .iter()
        .filter(|r| api_key.as_deref().is_none_or(|k| r["api_key"] == k))
        .filter(|r| {
            let at = r["startTime"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            match (at, start, end) {
                (Some(at), Some(s), Some(e)) => at >= s && at <= e,
                _ => true,
            }
        })
        .collect();
    rows.sort_by(|a, b| b["startTime"].as_str().cmp(&a["startTime"].as_str()));
    Json(json!(rows)).into_response()
}
