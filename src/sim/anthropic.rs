//! A loopback stand-in for the parts of Anthropic's API that keyfire calls, following the
//! Admin API reference (paths, query parameters, objects, pagination, status codes and
//! `{"type": "error", "error": {"type", "message"}}` bodies):
//!
//! | method and path | auth | answer |
//! |---|---|---|
//! | `GET /v1/models?limit=` | an API key (`x-api-key`) | model list; 401 `authentication_error` for an unknown, inactive, archived or expired key |
//! | `GET /v1/organizations/api_keys?limit=&after_id=&before_id=&status=&workspace_id=` | admin | `{data, has_more, first_id, last_id}` |
//! | `GET /v1/organizations/api_keys/{id}` | admin | `api_key` object, or 404 `not_found_error` |
//! | `POST /v1/organizations/api_keys/{id}` `{name?, status?}` | admin | the updated key; `status` ∈ active, inactive, archived |
//! | `GET /v1/organizations/usage_report/messages?starting_at=&ending_at=&bucket_width=1d&api_key_ids[]=&limit=&page=` | admin | daily buckets, paginated by `next_page` |
//!
//! Every call needs `anthropic-version` (400 without it). Admin calls take the admin key in
//! `x-api-key`; a normal API key there gets 403 `permission_error`. There is no create and no
//! delete: the Console makes keys (`add_key` here). An archived key cannot be re-activated:
//! the docs call archiving terminal but do not document the error, so this sim answers 400
//! `invalid_request_error`; archiving an archived key again is accepted (unverified).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Duration, NaiveTime, SecondsFormat, Utc};
use serde_json::{Value, json};

#[cfg(feature = "testing")]
use super::Fault;
use super::{ErrorStyle, LoggedRequest, Observer, Running, observe, serve, token};
use crate::provider::UsageBucket;

pub const WORKSPACE: &str = "wrkspc_01KeyfireSimDefault";

#[derive(Debug, Clone)]
pub struct AnthropicKey {
    pub id: String,
    pub name: String,
    value: String,
    /// `active`, `inactive`, `archived` or `expired`.
    pub status: String,
    pub workspace_id: String,
    pub created_at: DateTime<Utc>,
}

impl AnthropicKey {
    pub fn value(&self) -> &str {
        &self.value
    }
}

#[derive(Default)]
struct AnState {
    admin_keys: Vec<String>,
    keys: Vec<AnthropicKey>,
    usage: HashMap<String, Vec<UsageBucket>>,
    next: u64,
}

type Shared = Arc<Mutex<AnState>>;

pub struct AnthropicSim {
    state: Shared,
    observer: Observer,
    running: Running,
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, AnState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({
        "type": "error",
        "error": { "type": kind, "message": message },
        "request_id": format!("req_011{}", token(20)),
    });
    (status, Json(body)).into_response()
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request_error", message)
}

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `partial_key_hint`: `sk-ant-api03-R2D...igAA`.
fn partial_hint(value: &str) -> String {
    let prefix = ["sk-ant-api03-", "sk-ant-admin01-", "sk-ant-"]
        .into_iter()
        .find(|p| value.starts_with(p))
        .unwrap_or("");
    let rest: Vec<char> = value[prefix.len()..].chars().collect();
    if rest.len() < 10 {
        return format!("{prefix}...");
    }
    let head: String = rest[..3].iter().collect();
    let tail: String = rest[rest.len() - 4..].iter().collect();
    format!("{prefix}{head}...{tail}")
}

fn key_object(k: &AnthropicKey) -> Value {
    json!({
        "type": "api_key",
        "id": k.id,
        "created_at": rfc3339(&k.created_at),
        "created_by": { "id": "user_01OncallEngineer", "type": "user" },
        "expires_at": null,
        "name": k.name,
        "partial_key_hint": partial_hint(&k.value),
        "status": k.status,
        "workspace_id": k.workspace_id,
        "scope": { "type": "workspace", "workspace_id": k.workspace_id },
    })
}

struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: Option<String>) -> Self {
        Self(
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Errors are the message of the 400 the handler answers with.
    fn limit(&self, default: usize, max: usize) -> Result<usize, String> {
        match self.get("limit") {
            None => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(format!("limit: Input should be between 1 and {max}")),
            },
        }
    }

    fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, String> {
        self.get(name)
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| format!("{name}: Input should be a valid datetime"))
            })
            .transpose()
    }
}

fn page_token(offset: usize) -> String {
    format!("page_MjAy{offset}+ZA==")
}

fn parse_page_token(token: &str) -> Option<usize> {
    token
        .strip_prefix("page_MjAy")?
        .strip_suffix("+ZA==")?
        .parse()
        .ok()
}

impl AnthropicSim {
    pub fn start() -> std::io::Result<Self> {
        let state: Shared = Arc::default();
        let observer = Observer::with_style(ErrorStyle::Anthropic);
        let router = Router::new()
            .route("/v1/models", get(models))
            .route("/v1/organizations/api_keys", get(list_keys))
            .route(
                "/v1/organizations/api_keys/{id}",
                get(get_key).post(update_key),
            )
            .route("/v1/organizations/usage_report/messages", get(usage_report))
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

    fn with<T>(&self, f: impl FnOnce(&mut AnState) -> T) -> T {
        f(&mut lock(&self.state))
    }

    pub fn add_admin_key(&self, value: &str) {
        self.with(|s| s.admin_keys.push(value.to_string()));
    }

    pub fn revoke_admin_keys(&self) {
        self.with(|s| s.admin_keys.clear());
    }

    /// A key created in the Console; returns its id.
    pub fn add_key(&self, name: &str, value: &str) -> String {
        self.with(|s| {
            s.next += 1;
            let id = format!("apikey_01{:04}{}", s.next, token(18));
            s.keys.push(AnthropicKey {
                id: id.clone(),
                name: name.to_string(),
                value: value.to_string(),
                status: "active".into(),
                workspace_id: WORKSPACE.into(),
                created_at: Utc::now(),
            });
            id
        })
    }

    pub fn set_status(&self, key_id: &str, status: &str) {
        self.with(|s| {
            if let Some(k) = s.keys.iter_mut().find(|k| k.id == key_id) {
                k.status = status.to_string();
            }
        });
    }

    /// Daily usage of a key: `input_tokens` are reported as uncached input, `requests` and
    /// `cost_usd` are not part of this report.
    pub fn set_usage(&self, key_id: &str, buckets: Vec<UsageBucket>) {
        self.with(|s| {
            s.usage.insert(key_id.to_string(), buckets);
        });
    }

    pub fn key(&self, id: &str) -> Option<AnthropicKey> {
        self.with(|s| s.keys.iter().find(|k| k.id == id).cloned())
    }

    pub fn keys(&self) -> Vec<AnthropicKey> {
        self.with(|s| s.keys.clone())
    }

    /// Whether a key value would authenticate right now.
    pub fn accepts(&self, value: &str) -> bool {
        self.with(|s| {
            s.keys
                .iter()
                .any(|k| k.value == value && k.status == "active")
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

fn api_key(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-api-key")?.to_str().ok()
}

/// The rejection for a request without `anthropic-version`.
fn version(headers: &HeaderMap) -> Option<Response> {
    (!headers.contains_key("anthropic-version"))
        .then(|| bad_request("anthropic-version: header is required"))
}

fn admin(state: &Shared, headers: &HeaderMap) -> Option<Response> {
    if let Some(r) = version(headers) {
        return Some(r);
    }
    let Some(key) = api_key(headers) else {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "x-api-key header is required",
        ));
    };
    let s = lock(state);
    if s.admin_keys.iter().any(|a| a == key) {
        return None;
    }
    if s.keys
        .iter()
        .any(|k| k.value == key && k.status == "active")
    {
        return Some(error(
            StatusCode::FORBIDDEN,
            "permission_error",
            "This endpoint requires an Admin API key.",
        ));
    }
    Some(error(
        StatusCode::UNAUTHORIZED,
        "authentication_error",
        "invalid x-api-key",
    ))
}

async fn models(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(r) = version(&headers) {
        return r;
    }
    let s = lock(&state);
    let ok = api_key(&headers)
        .is_some_and(|t| s.keys.iter().any(|k| k.value == t && k.status == "active"));
    if !ok {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid x-api-key",
        );
    }
    Json(json!({
        "data": [{ "type": "model", "id": "claude-sonnet-4-5", "display_name": "Claude Sonnet 4.5",
                   "created_at": "2025-09-29T00:00:00Z" }],
        "has_more": true,
        "first_id": "claude-sonnet-4-5",
        "last_id": "claude-sonnet-4-5",
    }))
    .into_response()
}

async fn list_keys(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Some(r) = admin(&state, &headers) {
        return r;
    }
    let params = Params::parse(q);
    let limit = match params.limit(20, 1000) {
        Ok(l) => l,
        Err(m) => return bad_request(&m),
    };
    if let Some(st) = params.get("status")
        && !matches!(st, "active" | "inactive" | "archived" | "expired")
    {
        return bad_request(
            "status: Input should be 'active', 'inactive', 'archived' or 'expired'",
        );
    }
    let s = lock(&state);
    let keys: Vec<&AnthropicKey> = s
        .keys
        .iter()
        .filter(|k| params.get("status").is_none_or(|st| k.status == st))
        .filter(|k| {
            params
                .get("workspace_id")
                .is_none_or(|w| k.workspace_id == w)
        })
        .collect();
    let start = match params.get("after_id") {
        Some(after) => match keys.iter().position(|k| k.id == after) {
            Some(i) => i + 1,
            None => return bad_request("after_id: no object with this id"),
        },
        None => 0,
    };
    let page: Vec<&AnthropicKey> = keys.iter().skip(start).take(limit).copied().collect();
    let has_more = start + page.len() < keys.len();
    Json(json!({
        "data": page.iter().map(|k| key_object(k)).collect::<Vec<_>>(),
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
    let s = lock(&state);
    match s.keys.iter().find(|k| k.id == id) {
        Some(k) => Json(key_object(k)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            &format!("API key {id} not found"),
        ),
    }
}

async fn update_key(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<Value>>,
) -> Response {
    if let Some(r) = admin(&state, &headers) {
        return r;
    }
    let body = body.map(|b| b.0).unwrap_or(Value::Null);
    let status = match body.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if matches!(s.as_str(), "active" | "inactive" | "archived") => {
            Some(s.clone())
        }
        Some(_) => {
            return bad_request("status: Input should be 'active', 'inactive' or 'archived'");
        }
    };
    let name = match body.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) if !n.is_empty() && n.len() <= 500 => Some(n.clone()),
        Some(_) => return bad_request("name: String should have between 1 and 500 characters"),
    };
    let mut s = lock(&state);
    let Some(k) = s.keys.iter_mut().find(|k| k.id == id) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            &format!("API key {id} not found"),
        );
    };
    if let Some(st) = status {
        if k.status == "archived" && st != "archived" {
            return bad_request("Archived API keys cannot be updated.");
        }
        k.status = st;
    }
    if let Some(n) = name {
        k.name = n;
    }
    Json(key_object(k)).into_response()
}

async fn usage_report(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Some(r) = admin(&state, &headers) {
        return r;
    }
    let params = Params::parse(q);
    let (start, end) = match (params.time("starting_at"), params.time("ending_at")) {
        (Ok(Some(s)), Ok(e)) => (s, e.unwrap_or_else(Utc::now)),
        (Ok(None), _) => return bad_request("starting_at: Field required"),
        (Err(m), _) | (_, Err(m)) => return bad_request(&m),
    };
    match params.get("bucket_width").unwrap_or("1d") {
        "1d" => {}
        "1h" | "1m" => {
            return bad_request(
                "bucket_width 1h and 1m are valid but not modelled by this simulator",
            );
        }
        _ => return bad_request("bucket_width: Input should be '1d', '1h' or '1m'"),
    }
    let limit = match params.limit(7, 31) {
        Ok(l) => l,
        Err(m) => return bad_request(&m),
    };
    let offset = match params.get("page") {
        None => 0,
        Some(t) => match parse_page_token(t) {
            Some(o) => o,
            None => return bad_request("page: invalid page token"),
        },
    };
    let keys: Vec<&str> = params.all("api_key_ids[]");
    // Buckets are snapped to the start of the day; those ending after `ending_at` are left out.
    let mut day = start.date_naive().and_time(NaiveTime::MIN).and_utc();
    let mut days = Vec::new();
    while day + Duration::days(1) <= end {
        days.push(day);
        day += Duration::days(1);
    }
    let s = lock(&state);
    let page: Vec<Value> = days
        .iter()
        .skip(offset)
        .take(limit)
        .map(|day| {
            let (mut input, mut output) = (0u64, 0u64);
            for (key, buckets) in &s.usage {
                if !keys.is_empty() && !keys.contains(&key.as_str()) {
                    continue;
                }
                for b in buckets.iter().filter(|b| b.start == *day) {
                    input += b.input_tokens;
                    output += b.output_tokens;
                }
            }
            let results = if input == 0 && output == 0 {
                Vec::new()
            } else {
                vec![json!({
                    "uncached_input_tokens": input,
                    "cache_creation": { "ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0 },
                    "cache_read_input_tokens": 0,
                    "output_tokens": output,
                    "server_tool_use": { "web_search_requests": 0 },
                    "api_key_id": null, "workspace_id": null, "model": null,
                    "service_tier": null, "context_window": null,
                })]
            };
            json!({
                "starting_at": rfc3339(day),
                "ending_at": rfc3339(&(*day + Duration::days(1))),
                "results": results,
            })
        })
        .collect();
    let next = offset + page.len();
    let has_more = next < days.len();
    Json(json!({
        "data": page,
        "has_more": has_more,
        "next_page": has_more.then(|| page_token(next)),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_hints_look_like_the_consoles() {
        assert_eq!(
            partial_hint("sk-ant-api03-R2DxxxxxxxxxxxxxxxxxigAA"),
            "sk-ant-api03-R2D...igAA"
        );
        assert_eq!(parse_page_token(&page_token(7)), Some(7));
    }
}
