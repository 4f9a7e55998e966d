//! A loopback stand-in for the parts of OpenAI's API that keyfire calls, following the
//! organization Admin API's OpenAPI spec (paths, query parameters, objects, pagination,
//! status codes and `{"error": {"message", "type", "param", "code"}}` bodies):
//!
//! | method and path | auth | answer |
//! |---|---|---|
//! | `GET /v1/models` | a project or service-account key | model list; 401 `invalid_api_key` for a deleted or unknown key; 401 with `code: null` and "You have insufficient permissions for this operation. Missing scopes: api.model.read." for a live key restricted from reading models (as OpenAI answers) |
//! | `GET /v1/organization/projects?limit=&after=&include_archived=` | admin | `{object:"list", data, first_id, last_id, has_more}` of `organization.project` (`list-projects`) |
//! | `GET /v1/organization/projects/{p}/api_keys?limit=&after=&owner_project_access=` | admin | `{object:"list", data, first_id, last_id, has_more}`; keys whose owner lost project access only with `owner_project_access=inactive\|any` |
//! | `GET /v1/organization/projects/{p}/api_keys/{id}` | admin | `organization.project.api_key`, or 404 |
//! | `DELETE /v1/organization/projects/{p}/api_keys/{id}` | admin | `organization.project.api_key.deleted`; 400 when the key belongs to a service account (as the spec says); 404 |
//! | `GET /v1/organization/projects/{p}/service_accounts?limit=&after=` | admin | list of `organization.project.service_account` |
//! | `POST /v1/organization/projects/{p}/service_accounts` `{name}` | admin | the service account with `api_key.value`, shown this once |
//! | `GET`, `DELETE /v1/organization/projects/{p}/service_accounts/{id}` | admin | the account; deleting it deletes its keys |
//! | `GET /v1/organization/usage/{endpoint}?start_time=&end_time=&bucket_width=1d&api_key_ids=&project_ids=&limit=&page=` for `completions`, `embeddings`, `moderations`, `images`, `audio_speeches`, `audio_transcriptions`, `web_search_calls`, `file_search_calls` | admin | daily `bucket`s of the endpoint's `organization.usage.*.result`, `limit` 1 to 31 (default 7), paginated by `next_page` |
//! | `GET /v1/organization/costs?start_time=&end_time=&bucket_width=1d&api_key_ids=&limit=&page=` | admin | daily `bucket`s of `organization.costs.result`, `limit` 1 to 180 (default 7) |
//! | `GET /v1/organization/audit_logs?effective_at[gte]=&effective_at[lte]=&resource_ids[]=&event_types[]=&limit=&after=` | admin | audit-log events, newest first |
//!
//! Objects follow the schemas of openai/openai-openapi `openapi.yaml` (`ProjectApiKey` with
//! `owner_project_access` and no `status`, `ProjectApiKeyOwnerUser`,
//! `ProjectApiKeyOwnerServiceAccount`, `ProjectServiceAccount*`, `UsageResponse`,
//! `ListAuditLogsResponse`); the contract suite validates them against the vendored schemas in
//! `tests/fixtures/spec/openai/`. Deleting a service account is logged as one
//! `service_account.deleted` event on the account's id, not as a deletion of its keys.
//!
//! Admin calls take `Authorization: Bearer <admin key>` and, when sent, an
//! `OpenAI-Organization` header naming this organization. Only daily buckets are modelled.
//! Page tokens contain `+`, `/` and `=` like the real ones, so a client that does not
//! encode them fails here as it would there.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Duration, NaiveTime, Utc};
use serde_json::{Value, json};

#[cfg(feature = "testing")]
use super::Fault;
use super::{ErrorStyle, LoggedRequest, Observer, Running, observe, serve, token};
use crate::provider::UsageBucket;

pub const ORGANIZATION: &str = "org-keyfiresim";

/// Who owns a project API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOwner {
    User { id: String, email: String },
    ServiceAccount(String),
}

#[derive(Debug, Clone)]
pub struct OpenAiKey {
    pub id: String,
    pub project: String,
    pub name: String,
    value: String,
    pub created_at: i64,
    pub owner: KeyOwner,
    pub deleted: bool,
    /// `false`: the owner lost access to the project (the key is listed only on request).
    pub owner_has_access: bool,
    /// Restricted from reading models: `/v1/models` answers 401 (no code) although the key is live.
    pub restricted: bool,
    /// `last_used_at` (Unix seconds), when the key was used.
    pub last_used_at: Option<i64>,
}

impl OpenAiKey {
    /// The key's value as the provider knows it (tests compare it with what keyfire stored).
    pub fn value(&self) -> &str {
        &self.value
    }
}

#[derive(Debug, Clone)]
pub struct ServiceAccount {
    pub id: String,
    pub project: String,
    pub name: String,
    pub created_at: i64,
    pub deleted: bool,
}

/// The usage endpoints that filter by `api_key_ids`, each with its own result object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UsageEndpoint {
    Completions,
    Embeddings,
    Moderations,
    Images,
    AudioSpeeches,
    AudioTranscriptions,
    WebSearchCalls,
    FileSearchCalls,
}

impl UsageEndpoint {
    pub const ALL: [Self; 8] = [
        Self::Completions,
        Self::Embeddings,
        Self::Moderations,
        Self::Images,
        Self::AudioSpeeches,
        Self::AudioTranscriptions,
        Self::WebSearchCalls,
        Self::FileSearchCalls,
    ];

    /// The path under `/v1/organization/usage/`.
    pub fn path(self) -> &'static str {
        match self {
            Self::Completions => "completions",
            Self::Embeddings => "embeddings",
            Self::Moderations => "moderations",
            Self::Images => "images",
            Self::AudioSpeeches => "audio_speeches",
            Self::AudioTranscriptions => "audio_transcriptions",
            Self::WebSearchCalls => "web_search_calls",
            Self::FileSearchCalls => "file_search_calls",
        }
    }

    /// One result of the endpoint's schema (`UsageCompletionsResult`, ...). `requests` is
    /// the count of model requests (of tool calls for the tool-call endpoints); the endpoint's
    /// own measure (images, characters, seconds) is taken from `input`.
    fn result(self, requests: u64, input: u64, output: u64) -> Value {
        let grouped = json!({ "project_id": null, "user_id": null, "api_key_id": null });
        let mut v = match self {
            Self::Completions => json!({
                "object": "organization.usage.completions.result",
                "input_tokens": input, "output_tokens": output, "input_cached_tokens": 0,
                "input_audio_tokens": 0, "output_audio_tokens": 0,
                "num_model_requests": requests, "model": null, "batch": null, "service_tier": null,
            }),
            Self::Embeddings => json!({
                "object": "organization.usage.embeddings.result",
                "input_tokens": input, "num_model_requests": requests, "model": null,
            }),
            Self::Moderations => json!({
                "object": "organization.usage.moderations.result",
                "input_tokens": input, "num_model_requests": requests, "model": null,
            }),
            Self::Images => json!({
                "object": "organization.usage.images.result",
                "images": input, "num_model_requests": requests,
                "source": null, "size": null, "model": null,
            }),
            Self::AudioSpeeches => json!({
                "object": "organization.usage.audio_speeches.result",
                "characters": input, "num_model_requests": requests, "model": null,
            }),
            Self::AudioTranscriptions => json!({
                "object": "organization.usage.audio_transcriptions.result",
                "seconds": input, "num_model_requests": requests, "model": null,
            }),
            Self::WebSearchCalls => json!({
                "object": "organization.usage.web_searches.result",
                "num_model_requests": requests, "num_requests": requests,
                "model": null, "context_level": null,
            }),
            Self::FileSearchCalls => json!({
                "object": "organization.usage.file_searches.result",
                "num_requests": requests, "vector_store_id": null,
            }),
        };
        if let (Some(v), Some(g)) = (v.as_object_mut(), grouped.as_object()) {
            v.extend(g.clone());
        }
        v
    }
}

#[derive(Default)]
struct OaState {
    admin_keys: Vec<String>,
    projects: Vec<String>,
    keys: Vec<OpenAiKey>,
    service_accounts: Vec<ServiceAccount>,
    /// (key id, usage endpoint) → daily buckets.
    usage: HashMap<(String, UsageEndpoint), Vec<UsageBucket>>,
    audit: Vec<Value>,
    next: u64,
}

type Shared = Arc<Mutex<OaState>>;

pub struct OpenAiSim {
    state: Shared,
    observer: Observer,
    running: Running,
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, OaState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn error(status: StatusCode, kind: &str, code: Option<&str>, message: &str) -> Response {
    let body =
        json!({ "error": { "message": message, "type": kind, "param": null, "code": code } });
    (status, Json(body)).into_response()
}

fn bad_request(message: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        None,
        message,
    )
}

fn not_found(message: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        None,
        message,
    )
}

/// The masked form OpenAI echoes in "Incorrect API key provided" errors.
fn masked(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < 12 {
        return "****".into();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(12))
}

/// `redacted_value`: the key's prefix, two more characters and the last four.
fn redacted(value: &str) -> String {
    let prefix = ["sk-proj-", "sk-svcacct-", "sk-admin-", "sk-"]
        .into_iter()
        .find(|p| value.starts_with(p))
        .unwrap_or("");
    let rest: Vec<char> = value[prefix.len()..].chars().collect();
    if rest.len() < 10 {
        return format!("{prefix}...");
    }
    let head: String = rest[..2].iter().collect();
    let tail: String = rest[rest.len() - 4..].iter().collect();
    format!("{prefix}{head}...{tail}")
}

/// Decoded query parameters, repeated ones kept.
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
    fn int(&self, name: &str) -> Result<Option<i64>, String> {
        self.get(name)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| format!("Invalid value for '{name}': expected an integer."))
            })
            .transpose()
    }

    fn limit(&self, default: i64, max: i64) -> Result<usize, String> {
        let n = self.int("limit")?.unwrap_or(default);
        if !(1..=max).contains(&n) {
            return Err(format!("Invalid 'limit': must be between 1 and {max}."));
        }
        Ok(usize::try_from(n).unwrap_or(1))
    }
}

/// Opaque-looking page tokens with characters that must be URL-encoded.
fn page_token(offset: usize) -> String {
    format!("AAAA{offset}+pg/Q==")
}

fn parse_page_token(token: &str) -> Option<usize> {
    token
        .strip_prefix("AAAA")?
        .strip_suffix("+pg/Q==")?
        .parse()
        .ok()
}

impl OpenAiSim {
    /// Start on a free loopback port with one project, `proj_keyfire`.
    pub fn start() -> std::io::Result<Self> {
        let state: Shared = Arc::default();
        lock(&state).projects.push("proj_keyfire".into());
        let observer = Observer::with_style(ErrorStyle::OpenAi);
        let router = Router::new()
            .route("/v1/models", get(models))
            .route("/v1/organization/projects", get(list_projects))
            .route(
                "/v1/organization/projects/{project}/api_keys",
                get(list_keys),
            )
            .route(
                "/v1/organization/projects/{project}/api_keys/{id}",
                get(get_key).delete(delete_key),
            )
            .route(
                "/v1/organization/projects/{project}/service_accounts",
                get(list_service_accounts).post(create_service_account),
            )
            .route(
                "/v1/organization/projects/{project}/service_accounts/{id}",
                get(get_service_account).delete(delete_service_account),
            )
            .route("/v1/organization/usage/{endpoint}", get(usage))
            .route("/v1/organization/costs", get(costs))
            .route("/v1/organization/audit_logs", get(audit_logs))
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

    fn with<T>(&self, f: impl FnOnce(&mut OaState) -> T) -> T {
        f(&mut lock(&self.state))
    }

    pub fn add_admin_key(&self, value: &str) {
        self.with(|s| s.admin_keys.push(value.to_string()));
    }

    pub fn revoke_admin_keys(&self) {
        self.with(|s| s.admin_keys.clear());
    }

    pub fn add_project(&self, id: &str) {
        self.with(|s| s.projects.push(id.to_string()));
    }

    /// A user-owned project key (made in the dashboard); returns its id.
    pub fn add_user_key(&self, project: &str, name: &str, value: &str) -> String {
        self.with(|s| {
            let owner = KeyOwner::User {
                id: "user-oncall01".into(),
                email: "oncall@example.com".into(),
            };
            let id = new_key(s, project, name, value.to_string(), owner);
            audit_event(s, "api_key.created", &id, project);
            id
        })
    }

    /// A service account with one key; returns (service account id, key id).
    pub fn add_service_account(&self, project: &str, name: &str, value: &str) -> (String, String) {
        self.with(|s| {
            let sa = new_service_account(s, project, name);
            let key = new_key(
                s,
                project,
                "Secret Key",
                value.to_string(),
                KeyOwner::ServiceAccount(sa.clone()),
            );
            (sa, key)
        })
    }

    /// Mark a key's owner as having lost access to its project.
    pub fn set_owner_access(&self, key_id: &str, has_access: bool) {
        self.with(|s| {
            if let Some(k) = s.keys.iter_mut().find(|k| k.id == key_id) {
                k.owner_has_access = has_access;
            }
        });
    }

    /// Record that a key was last used at this time.
    pub fn set_last_used(&self, key_id: &str, at: DateTime<Utc>) {
        self.with(|s| {
            if let Some(k) = s.keys.iter_mut().find(|k| k.id == key_id) {
                k.last_used_at = Some(at.timestamp());
            }
        });
    }

    /// Delete a key as the dashboard would (it disappears from every list).
    pub fn remove_key(&self, key_id: &str) {
        self.with(|s| {
            if let Some(k) = s.keys.iter_mut().find(|k| k.id == key_id) {
                k.deleted = true;
            }
        });
    }

    /// Restrict a key from reading models (it stays live).
    pub fn restrict(&self, key_id: &str) {
        self.with(|s| {
            if let Some(k) = s.keys.iter_mut().find(|k| k.id == key_id) {
                k.restricted = true;
            }
        });
    }

    /// Daily completions usage of a key (bucket starts at UTC midnight), with its costs.
    pub fn set_usage(&self, key_id: &str, buckets: Vec<UsageBucket>) {
        self.set_endpoint_usage(key_id, UsageEndpoint::Completions, buckets);
    }

    /// Daily usage of a key on one usage endpoint; `cost_usd` adds to the key's costs.
    pub fn set_endpoint_usage(
        &self,
        key_id: &str,
        endpoint: UsageEndpoint,
        buckets: Vec<UsageBucket>,
    ) {
        self.with(|s| {
            s.usage.insert((key_id.to_string(), endpoint), buckets);
        });
    }

    /// Seed an audit-log event performed in the dashboard.
    pub fn add_audit_event(
        &self,
        kind: &str,
        resource_id: &str,
        email: &str,
        ip: &str,
        at: DateTime<Utc>,
    ) {
        self.with(|s| {
            s.next += 1;
            let id = format!("audit_log-{:06}", s.next);
            s.audit.push(json!({
                "id": id, "type": kind, "effective_at": at.timestamp(),
                "project": { "id": "proj_keyfire", "name": "Default project" },
                "actor": { "type": "session", "session": {
                    "user": { "id": "user-dash01", "email": email },
                    "ip_address": ip, "user_agent": "Mozilla/5.0"
                } },
                kind: { "id": resource_id },
            }));
        });
    }

    pub fn key(&self, id: &str) -> Option<OpenAiKey> {
        self.with(|s| s.keys.iter().find(|k| k.id == id).cloned())
    }

    pub fn live_keys(&self) -> Vec<OpenAiKey> {
        self.with(|s| s.keys.iter().filter(|k| !k.deleted).cloned().collect())
    }

    pub fn service_accounts(&self) -> Vec<ServiceAccount> {
        self.with(|s| s.service_accounts.clone())
    }

    /// Whether a key value would authenticate right now.
    pub fn accepts(&self, value: &str) -> bool {
        self.with(|s| s.keys.iter().any(|k| k.value == value && !k.deleted))
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

fn new_key(s: &mut OaState, project: &str, name: &str, value: String, owner: KeyOwner) -> String {
    s.next += 1;
    let id = format!("key_{:04}{}", s.next, token(12));
    s.keys.push(OpenAiKey {
        id: id.clone(),
        project: project.to_string(),
        name: name.to_string(),
        value,
        created_at: Utc::now().timestamp(),
        owner,
        deleted: false,
        owner_has_access: true,
        restricted: false,
        last_used_at: None,
    });
    id
}

fn new_service_account(s: &mut OaState, project: &str, name: &str) -> String {
    s.next += 1;
    let id = format!("svc_acct_{:04}{}", s.next, token(10).to_lowercase());
    s.service_accounts.push(ServiceAccount {
        id: id.clone(),
        project: project.to_string(),
        name: name.to_string(),
        created_at: Utc::now().timestamp(),
        deleted: false,
    });
    id
}

/// An event performed with the admin key (the API's own record of keyfire's writes).
fn audit_event(s: &mut OaState, kind: &str, resource_id: &str, project: &str) {
    s.next += 1;
    let id = format!("audit_log-{:06}", s.next);
    s.audit.push(json!({
        "id": id, "type": kind, "effective_at": Utc::now().timestamp(),
        "project": { "id": project, "name": project },
        "actor": { "type": "api_key", "api_key": {
            "id": "key_admintracking", "type": "user",
            "user": { "id": "user-owner01", "email": "owner@example.com" }
        } },
        kind: { "id": resource_id },
    }));
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// The rejection to send, if the request does not carry this organization's admin key.
fn admin(state: &Shared, headers: &HeaderMap) -> Option<Response> {
    let Some(key) = bearer(headers) else {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            None,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        ));
    };
    let s = lock(state);
    if let Some(org) = headers
        .get("openai-organization")
        .and_then(|v| v.to_str().ok())
        && org != ORGANIZATION
    {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            Some("mismatched_organization"),
            "OpenAI-Organization header should match organization for API key",
        ));
    }
    if s.admin_keys.iter().any(|a| a == key) {
        return None;
    }
    if s.keys.iter().any(|k| k.value == key && !k.deleted) {
        return Some(error(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            Some("insufficient_permissions"),
            "You have insufficient permissions for this operation. Missing scopes: api.management.read. Admin API keys are required.",
        ));
    }
    Some(error(
        StatusCode::UNAUTHORIZED,
        "invalid_request_error",
        Some("invalid_api_key"),
        &format!(
            "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
            masked(key)
        ),
    ))
}

/// The rejection to send, if the project does not exist.
fn project(s: &OaState, project: &str) -> Option<Response> {
    (!s.projects.iter().any(|p| p == project))
        .then(|| not_found(&format!("No such project: {project}")))
}

/// `ProjectApiKey`, its owner as `ProjectApiKeyOwnerUser` or
/// `ProjectApiKeyOwnerServiceAccount`. There is no `status`: `owner_project_access` says
/// whether the owner still has access to the project.
fn key_object(s: &OaState, k: &OpenAiKey) -> Value {
    let owner = match &k.owner {
        KeyOwner::User { id, email } => json!({
            "type": "user",
            "user": { "id": id, "email": email, "name": "On-call engineer",
                      "created_at": k.created_at, "role": "owner" },
        }),
        KeyOwner::ServiceAccount(sa) => {
            let acct = s.service_accounts.iter().find(|a| &a.id == sa);
            json!({
                "type": "service_account",
                "service_account": {
                    "id": sa,
                    "name": acct.map_or_else(String::new, |a| a.name.clone()),
                    "created_at": acct.map_or(k.created_at, |a| a.created_at),
                    "role": "member",
                },
            })
        }
    };
    json!({
        "object": "organization.project.api_key",
        "redacted_value": redacted(&k.value),
        "name": k.name,
        "created_at": k.created_at,
        "last_used_at": k.last_used_at,
        "id": k.id,
        "owner_project_access": if k.owner_has_access { "active" } else { "inactive" },
        "owner": owner,
    })
}

fn sa_object(a: &ServiceAccount) -> Value {
    json!({
        "object": "organization.project.service_account",
        "id": a.id, "name": a.name, "role": "member", "created_at": a.created_at,
    })
}

/// One page of a list paginated by `after=<id>`.
fn list_page(items: Vec<(String, Value)>, params: &Params) -> Response {
    let ids: Vec<&str> = items.iter().map(|(id, _)| id.as_str()).collect();
    lazy_page(&ids, params, |i| items[i].1.clone())
}

/// One page of a list paginated by `after=<id>`, rendering only the objects on the page (a
/// project of 10,000 keys is listed without building 10,000 objects per page).
fn lazy_page(ids: &[&str], params: &Params, object: impl Fn(usize) -> Value) -> Response {
    let limit = match params.limit(20, 100) {
        Ok(l) => l,
        Err(m) => return bad_request(&m),
    };
    let start = match params.get("after") {
        Some(after) => match ids.iter().position(|id| *id == after) {
            Some(i) => i + 1,
            None => return bad_request(&format!("Invalid 'after': no object with id '{after}'.")),
        },
        None => 0,
    };
    let end = (start + limit).min(ids.len());
    let page = start.min(end)..end;
    let has_more = end < ids.len();
    Json(json!({
        "object": "list",
        "data": page.clone().map(&object).collect::<Vec<_>>(),
        "first_id": ids.get(page.start).filter(|_| !page.is_empty()),
        "last_id": page.end.checked_sub(1).filter(|_| !page.is_empty()).and_then(|i| ids.get(i)),
        "has_more": has_more,
    }))
    .into_response()
}

/// `list-projects`: the organization's projects (archived ones only with
/// `include_archived=true`; this simulator archives none).
async fn list_projects(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Some(r) = admin(&state, &headers) {
        return r;
    }
    let params = Params::parse(q);
    if let Some(v) = params.get("include_archived")
        && !matches!(v, "true" | "false")
    {
        return bad_request("Invalid 'include_archived': expected a boolean.");
    }
    let s = lock(&state);
    let ids: Vec<&str> = s.projects.iter().map(String::as_str).collect();
    lazy_page(&ids, &params, |i| {
        json!({
            "id": ids[i], "object": "organization.project", "name": ids[i],
            "created_at": 1_711_471_533, "archived_at": null, "status": "active",
        })
    })
}

async fn models(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let s = lock(&state);
    let found = bearer(&headers).and_then(|t| s.keys.iter().find(|k| k.value == t && !k.deleted));
    match found {
        // OpenAI answers a live key without the scope with 401 too, but without a code.
        Some(k) if k.restricted => error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            None,
            "You have insufficient permissions for this operation. Missing scopes: api.model.read.",
        ),
        Some(_) => Json(json!({
            "object": "list",
            "data": [
                { "id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system" },
                { "id": "text-embedding-3-small", "object": "model", "created": 1705948997, "owned_by": "system" },
            ],
        }))
        .into_response(),
        None => error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            Some("invalid_api_key"),
            &format!(
                "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                masked(bearer(&headers).unwrap_or(""))
            ),
        ),
    }
}

async fn list_keys(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(p): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Some(r) = admin(&state, &headers) {
        return r;
    }
    let params = Params::parse(q);
    let s = lock(&state);
    if let Some(r) = project(&s, &p) {
        return r;
    }
    let access = params.get("owner_project_access").unwrap_or("active");
    if !matches!(access, "active" | "inactive" | "any") {
        return bad_request("Invalid 'owner_project_access': expected active, inactive or any.");
    }
    let keys: Vec<&OpenAiKey> = s
        .keys
        .iter()
        .filter(|k| !k.deleted && k.project == p)
        .filter(|k| match access {
            "active" => k.owner_has_access,
            "inactive" => !k.owner_has_access,
            _ => true,
        })
        .collect();
    let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
    lazy_page(&ids, &params, |i| key_object(&s, keys[i]))
}

async fn get_key(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((p, id)): Path<(String, String)>,
) -> Response {
    if let Some(r) = admin(&state, &headers) {
        return r;
    }
    let s = lock(&state);
    if let Some(r) = project(&s, &p) {
        return r;
    }
    match s
        .keys
        .iter()
        .find(|k| k.id == id && k.project == p && !k.deleted)
    {
        Some(k) => Json(key_object(&s, k)).into_response(),
        None => not_found(&format!("No such API key: {id}")),
    }
}

async fn delete_key(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((p, id)): Path<(String, String)>,
) -> Response {
    if let Some(r) = admin(&state, &headers) {
        return r;
    }
    let mut s = lock(&state);
    if let Some(r) = project(&s, &p) {
        return r;
    }
    let Some(k) = s
        .keys
        .iter_mut()
        .find(|k| k.id == id && k.project == p && !k.deleted)
    else {
        return not_found(&format!("No such API key: {id}"));
    };
    if matches!(k.owner, KeyOwner::ServiceAccount(_)) {
        return bad_request(
            "API key belongs to a service account; delete the service account instead.",
        );
    }
    k.deleted = true;
    audit_event(&mut s, "api_key.deleted", &id, &p);
    Json(json!({ "object": "organization.project.api_key.deleted", "id": id, "deleted": true }))
        .into_response()
}

async fn list_service_accounts(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(p): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Some(r) = admin(&state, &headers) {
        return r;
    }
    let params = Params::parse(q);
    let s = lock(&state);
    if let Some(r) = project(&s, &p) {
        return r;
    }
    let items = s
        .service_accounts
        .iter()
        .filter(|a| !a.deleted && a.project == p)
        .map(|a| (a.id.clone(), sa_object(a)))
        .collect();
    list_page(items, &params)
}

async fn create_service_account(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(p): Path<String>,
    body: Option<Json<Value>>,
) -> Response {
    if let Some(r) = admin(&state, &headers) {
        return r;
    }
    let body = body.map(|b| b.0).unwrap_or(Value::Null);
    let Some(name) = body["name"].as_str().filter(|n| !n.is_empty()) else {
        return bad_request("Missing required parameter: 'name'.");
    };
    let only_account = body["create_service_account_only"].as_bool() == Some(true);
    let mut s = lock(&state);
    if let Some(r) = project(&s, &p) {
        return r;
    }
    let sa = new_service_account(&mut s, &p, name);
    audit_event(&mut s, "service_account.created", &sa, &p);
    let api_key = if only_account {
        Value::Null
    } else {
        let value = format!("sk-svcacct-{}T3BlbkFJ{}", token(24), token(24));
        let id = new_key(
            &mut s,
            &p,
            "Secret Key",
            value.clone(),
            KeyOwner::ServiceAccount(sa.clone()),
        );
        audit_event(&mut s, "api_key.created", &id, &p);
        let created_at = s.keys.last().map(|k| k.created_at);
        json!({
            "object": "organization.project.service_account.api_key",
            "value": value, "name": "Secret Key", "created_at": created_at, "id": id,
        })
    };
    let Some(acct) = s.service_accounts.iter().find(|a| a.id == sa) else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            None,
            "service account vanished",
        );
    };
    let mut obj = sa_object(acct);
    obj["role"] = json!(if only_account { "none" } else { "member" });
    obj["api_key"] = api_key;
    Json(obj).into_response()
}

async fn get_service_account(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((p, id)): Path<(String, String)>,
) -> Response {
    if let Some(r) = admin(&state, &headers) {
        return r;
    }
    let s = lock(&state);
    if let Some(r) = project(&s, &p) {
        return r;
    }
    match s
        .service_accounts
        .iter()
        .find(|a| a.id == id && a.project == p && !a.deleted)
    {
        Some(a) => Json(sa_object(a)).into_response(),
        None => not_found(&format!("No such service account: {id}")),
    }
}

async fn delete_service_account(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((p, id)): Path<(String, String)>,
) -> Response {
    if let Some(r) = admin(&state, &headers) {
        return r;
    }
    let mut s = lock(&state);
    if let Some(r) = project(&s, &p) {
        return r;
    }
    let Some(a) = s
        .service_accounts
        .iter_mut()
        .find(|a| a.id == id && a.project == p && !a.deleted)
    else {
        return not_found(&format!("No such service account: {id}"));
    };
    a.deleted = true;
    let owner = KeyOwner::ServiceAccount(id.clone());
    for k in s.keys.iter_mut().filter(|k| k.owner == owner && !k.deleted) {
        k.deleted = true;
    }
    // One event, on the service account: its keys go with it unlogged.
    audit_event(&mut s, "service_account.deleted", &id, &p);
    Json(json!({ "object": "organization.project.service_account.deleted", "id": id, "deleted": true }))
        .into_response()
}

/// The daily buckets a usage or costs query covers, and the page the request asks for.
struct Window {
    days: Vec<DateTime<Utc>>,
    offset: usize,
    limit: usize,
    keys: Vec<String>,
}

/// Errors are the message of the 400 the handler answers with.
fn window(params: &Params, max_limit: i64) -> Result<Window, String> {
    let Some(start) = params.int("start_time")? else {
        return Err("Missing required parameter: 'start_time'.".into());
    };
    let end = params
        .int("end_time")?
        .unwrap_or_else(|| Utc::now().timestamp());
    match params.get("bucket_width").unwrap_or("1d") {
        "1d" => {}
        "1h" | "1m" => {
            return Err(
                "bucket_width 1h and 1m are valid but not modelled by this simulator.".into(),
            );
        }
        other => {
            return Err(format!(
                "Invalid 'bucket_width': {other}. Expected 1m, 1h or 1d."
            ));
        }
    }
    let limit = params.limit(7, max_limit)?;
    let offset = match params.get("page") {
        None => 0,
        Some(t) => parse_page_token(t).ok_or("Invalid 'page' token.")?,
    };
    let (Some(start), Some(end)) = (
        DateTime::from_timestamp(start, 0),
        DateTime::from_timestamp(end, 0),
    ) else {
        return Err("Invalid time range.".into());
    };
    let mut day = start.date_naive().and_time(NaiveTime::MIN).and_utc();
    let mut days = Vec::new();
    while day < end {
        days.push(day);
        day += Duration::days(1);
    }
    Ok(Window {
        days,
        offset,
        limit,
        keys: params
            .all("api_key_ids")
            .into_iter()
            .map(str::to_string)
            .collect(),
    })
}

/// Sum of the seeded buckets of the selected keys (all keys when none is selected) that
/// start on this day, on one usage endpoint (every endpoint: `None`, for costs).
fn day_total(
    s: &OaState,
    endpoint: Option<UsageEndpoint>,
    keys: &[String],
    day: DateTime<Utc>,
) -> (u64, u64, u64, f64) {
    let mut t = (0, 0, 0, 0.0);
    for ((key, e), buckets) in &s.usage {
        if (!keys.is_empty() && !keys.contains(key)) || endpoint.is_some_and(|x| x != *e) {
            continue;
        }
        for b in buckets.iter().filter(|b| b.start == day) {
            t.0 += b.requests;
            t.1 += b.input_tokens;
            t.2 += b.output_tokens;
            t.3 += b.cost_usd;
        }
    }
    t
}

fn bucket_page(w: &Window, results: impl Fn(DateTime<Utc>) -> Vec<Value>) -> Response {
    let page: Vec<Value> = w
        .days
        .iter()
        .skip(w.offset)
        .take(w.limit)
        .map(|day| {
            json!({
                "object": "bucket",
                "start_time": day.timestamp(),
                "end_time": (*day + Duration::days(1)).timestamp(),
                "results": results(*day),
            })
        })
        .collect();
    let next = w.offset + page.len();
    let has_more = next < w.days.len();
    Json(json!({
        "object": "page",
        "data": page,
        "has_more": has_more,
        "next_page": has_more.then(|| page_token(next)),
    }))
    .into_response()
}

async fn usage(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(endpoint): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Some(r) = admin(&state, &headers) {
        return r;
    }
    let Some(endpoint) = UsageEndpoint::ALL
        .into_iter()
        .find(|e| e.path() == endpoint)
    else {
        return not_found(&format!(
            "Invalid URL (GET /v1/organization/usage/{endpoint})"
        ));
    };
    let params = Params::parse(q);
    let w = match window(&params, 31) {
        Ok(w) => w,
        Err(m) => return bad_request(&m),
    };
    let s = lock(&state);
    bucket_page(&w, |day| {
        let (requests, input, output, _) = day_total(&s, Some(endpoint), &w.keys, day);
        if requests == 0 && input == 0 && output == 0 {
            return Vec::new();
        }
        vec![endpoint.result(requests, input, output)]
    })
}

async fn costs(State(state): State<Shared>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = admin(&state, &headers) {
        return r;
    }
    let params = Params::parse(q);
    let w = match window(&params, 180) {
        Ok(w) => w,
        Err(m) => return bad_request(&m),
    };
    let s = lock(&state);
    bucket_page(&w, |day| {
        let (_, _, _, cost) = day_total(&s, None, &w.keys, day);
        if cost == 0.0 {
            return Vec::new();
        }
        vec![json!({
            "object": "organization.costs.result",
            "amount": { "value": cost, "currency": "usd" },
            "line_item": null, "project_id": null, "api_key_id": null,
        })]
    })
}

async fn audit_logs(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Some(r) = admin(&state, &headers) {
        return r;
    }
    let params = Params::parse(q);
    let bound = |name: &str| params.int(&format!("effective_at[{name}]"));
    let (gt, gte, lt, lte) = match (bound("gt"), bound("gte"), bound("lt"), bound("lte")) {
        (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
        _ => return bad_request("Invalid 'effective_at': expected integers."),
    };
    let resources = params.all("resource_ids[]");
    let types = params.all("event_types[]");
    let s = lock(&state);
    let mut events: Vec<&Value> = s
        .audit
        .iter()
        .filter(|e| {
            let at = e["effective_at"].as_i64().unwrap_or(0);
            gt.is_none_or(|t| at > t)
                && gte.is_none_or(|t| at >= t)
                && lt.is_none_or(|t| at < t)
                && lte.is_none_or(|t| at <= t)
        })
        .filter(|e| {
            let kind = e["type"].as_str().unwrap_or("");
            (types.is_empty() || types.contains(&kind))
                && (resources.is_empty()
                    || e[kind]["id"]
                        .as_str()
                        .is_some_and(|id| resources.contains(&id)))
        })
        .collect();
    // Newest first, as the API lists them.
    events.sort_by_key(|e| std::cmp::Reverse(e["effective_at"].as_i64().unwrap_or(0)));
    let items = events
        .into_iter()
        .map(|e| (e["id"].as_str().unwrap_or("").to_string(), e.clone()))
        .collect();
    list_page(items, &params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_values_keep_prefix_and_tail_only() {
        assert_eq!(
            redacted("sk-proj-ABCDEFGHIJKLMNOPwxyz"),
            "sk-proj-AB...wxyz"
        );
        assert_eq!(masked("sk-admin-1234567890abcd"), "sk-a************abcd");
        assert_eq!(parse_page_token(&page_token(31)), Some(31));
    }
}
