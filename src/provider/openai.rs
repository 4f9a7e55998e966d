//! OpenAI, through the organization Admin API (an `sk-admin-` key) for one project.
//!
//! | op | request |
//! |---|---|
//! | locate by id | `GET /v1/organization/projects/{project}/api_keys/{id}` |
//! | locate by hint or name | `GET /v1/organization/projects/{project}/api_keys?limit=100&owner_project_access=any&after=` |
//! | verify | `GET /v1/models` with the key itself: see "Proof of revocation" below |
//! | revoke a user key | `DELETE /v1/organization/projects/{project}/api_keys/{id}` |
//! | revoke a service-account key | `DELETE /v1/organization/projects/{project}/service_accounts/{sa}` |
//! | create | `POST /v1/organization/projects/{project}/service_accounts` `{name}`: the response carries the new key's value, once |
//! | usage | `GET /v1/organization/usage/{endpoint}?api_key_ids=&project_ids=&bucket_width=1d&limit=31&page=` for every usage endpoint that filters by `api_key_ids`, then `GET /v1/organization/costs?api_key_ids=&bucket_width=1d&limit=180&page=` |
//! | audit log | `GET /v1/organization/audit_logs?resource_ids[]=KEY[&resource_ids[]=SERVICE_ACCOUNT]&effective_at[gte]=&effective_at[lte]=&limit=100&after=` |
//! | list keys (`inventory discover`) | `GET /v1/organization/projects?limit=100&after=` when `settings.discover_projects = "all"`, then per project (concurrently) `GET /v1/organization/projects/{project}/api_keys?limit=100&owner_project_access=any&after=` |
//!
//! The spec for each call, in openai/openai-openapi `openapi.yaml` (vendored in part, with its
//! version, under `tests/fixtures/spec/openai/`), by `operationId` and response schema:
//!
//! | op | operation | response schema |
//! |---|---|---|
//! | locate by id | `retrieve-project-api-key` | `ProjectApiKey` |
//! | locate by hint or name | `list-project-api-keys` | `ProjectApiKeyListResponse` |
//! | verify | `listModels` | `ListModelsResponse` |
//! | revoke a user key | `delete-project-api-key` | `ProjectApiKeyDeleteResponse` |
//! | revoke a service-account key | `delete-project-service-account` | `ProjectServiceAccountDeleteResponse` |
//! | create | `create-project-service-account` | `ProjectServiceAccountCreateResponse` |
//! | usage | `usage-completions`, `usage-embeddings`, `usage-moderations`, `usage-images`, `usage-audio-speeches`, `usage-audio-transcriptions`, `usage-web-search-calls`, `usage-file-search-calls`; `usage-costs` | `UsageResponse` (`UsageTimeBucket` of `Usage*Result`, `CostsResult`) |
//! | audit log | `list-audit-logs` | `ListAuditLogsResponse` (`AuditLog`) |
//! | list keys | `list-projects` ("Limit can range between 1 and 100"; `after` is an object id, so pages follow one another), `list-project-api-keys` | `ProjectListResponse` (`Project`), `ProjectApiKeyListResponse` (`ProjectApiKey`: `redacted_value`, `created_at`, `last_used_at`, `owner`; no scopes) |
//!
//! Proof of revocation: only HTTP 401 with `error.code = "invalid_api_key"` ("Incorrect API key
//! provided") says the key is dead. A live key without the `api.model.read` scope is answered
//! with **401** too, but `code: null` and "You have insufficient permissions for this
//! operation. Missing scopes: ..." (seen in openai/codex#26742, continuedev/continue#10059;
//! the error codes are not in openapi.yaml): keyfire reads that, and a 403, as "restricted",
//! alive. Anything else (429, 5xx, network, other codes) is inconclusive.
//!
//! Every list is read to its last page, and a name or hint matching more than one key
//! returns every candidate: keyfire never picks one. The spec says deleting a service account's key
//! through the project `api_keys` path is an error, so keyfire remembers each key's owner from
//! the lookups it made (a lookup always runs before a revoke, also on resume) and deletes the
//! service account instead: the plan shown to the operator says so. The audit log records
//! that deletion as `service_account.deleted` on the service account's id, so the audit-log
//! search asks for the service account's id beside the key's.
//!
//! A project key has no `status`: `owner_project_access` (`active` / `inactive`, required in
//! `ProjectApiKey`) says whether its owner still has access to the project. A key whose owner
//! lost access is reported as disabled and is still deleted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::listing::{KeyListing, LIST_CONCURRENCY, ListKeys, ListedKey, bounded, follow_cursor};
use super::traits::{Capabilities, Provider};
use super::{
    AuditEvent, KeyState, LocatedKey, Op, OpOutput, Probe, ProviderError, UsageBucket, UsageReport,
    Which, base_of, enc, hint_matches, one_of, setting,
};
use crate::http::{FailureKind, Http, HttpError};
use crate::inventory::{ProviderDef, ProviderKind};
use crate::plan::{RequestPlan, SecretBag, SecretRef};
use crate::secret::Secret;

const DEFAULT_BASE: &str = "https://api.openai.com";
/// Keys per list page (the API allows 1 to 100).
const PAGE: u32 = 100;
/// Daily buckets per usage page (the usage endpoints allow 1 to 31 for `bucket_width=1d`).
const USAGE_PAGE: u32 = 31;
/// Daily buckets per costs page (`/organization/costs` allows 1 to 180).
const COSTS_PAGE: u32 = 180;
/// A list that keeps saying `has_more` past this many pages is not a list keyfire trusts.
const MAX_PAGES: u32 = 10_000;

#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    base: String,
    project: Option<String>,
    organization: Option<String>,
    /// `settings.discover_projects = "all"`: discovery lists every project the admin key sees.
    all_projects: bool,
    /// Key id → id of the service account that owns it, from every key object read.
    owners: Arc<Mutex<HashMap<String, String>>>,
}

#[derive(Deserialize)]
struct ServiceAccountRef {
    id: String,
    name: Option<String>,
}

#[derive(Deserialize)]
struct UserRef {
    id: Option<String>,
    email: Option<String>,
}

#[derive(Deserialize)]
struct Owner {
    #[serde(rename = "type")]
    kind: Option<String>,
    user: Option<UserRef>,
    service_account: Option<ServiceAccountRef>,
}

/// `Project` (`list-projects`): only the id is read.
#[derive(Deserialize)]
struct Project {
    id: String,
}

/// `ProjectApiKey.owner_project_access`: whether the key's owner still has effective access
/// to the project.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
enum OwnerAccess {
    Active,
    Inactive,
}

#[derive(Deserialize)]
struct ApiKey {
    id: String,
    name: Option<String>,
    redacted_value: Option<String>,
    created_at: Option<i64>,
    last_used_at: Option<i64>,
    /// Required by the spec; a key without it is taken as live (never as dead).
    owner_project_access: Option<OwnerAccess>,
    owner: Option<Owner>,
}

#[derive(Deserialize)]
struct KeyList {
    data: Vec<ApiKey>,
    has_more: bool,
    last_id: Option<String>,
}

#[derive(Deserialize)]
struct Deleted {
    id: String,
    deleted: bool,
}

#[derive(Deserialize)]
struct CreatedKey {
    id: String,
    value: String,
}

#[derive(Deserialize)]
struct CreatedServiceAccount {
    id: String,
    api_key: Option<CreatedKey>,
}

#[derive(Deserialize)]
struct Page<T> {
    data: Vec<Bucket<T>>,
    has_more: bool,
    next_page: Option<String>,
}

#[derive(Deserialize)]
struct Bucket<T> {
    start_time: i64,
    end_time: i64,
    results: Vec<T>,
}

/// What a usage endpoint counts, which decides how its results add up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counts {
    /// Model requests (`num_model_requests`) and, where the endpoint has them, tokens.
    ModelRequests,
    /// Tool calls (`num_requests`) made inside model requests that the completions endpoint
    /// already counts: reported beside the requests, never added to them.
    ToolCalls,
}

/// A usage endpoint that filters by `api_key_ids` (openapi.yaml, `/organization/usage/*`;
/// `vector_stores` and `code_interpreter_sessions` filter by project only), and the `object`
/// its results carry.
struct UsageEndpoint {
    path: &'static str,
    object: &'static str,
    counts: Counts,
}

const USAGE_ENDPOINTS: [UsageEndpoint; 8] = [
    UsageEndpoint {
        path: "completions",
        object: "organization.usage.completions.result",
        counts: Counts::ModelRequests,
    },
    UsageEndpoint {
        path: "embeddings",
        object: "organization.usage.embeddings.result",
        counts: Counts::ModelRequests,
    },
    UsageEndpoint {
        path: "moderations",
        object: "organization.usage.moderations.result",
        counts: Counts::ModelRequests,
    },
    UsageEndpoint {
        path: "images",
        object: "organization.usage.images.result",
        counts: Counts::ModelRequests,
    },
    UsageEndpoint {
        path: "audio_speeches",
        object: "organization.usage.audio_speeches.result",
        counts: Counts::ModelRequests,
    },
    UsageEndpoint {
        path: "audio_transcriptions",
        object: "organization.usage.audio_transcriptions.result",
        counts: Counts::ModelRequests,
    },
    UsageEndpoint {
        path: "web_search_calls",
        object: "organization.usage.web_searches.result",
        counts: Counts::ToolCalls,
    },
    UsageEndpoint {
        path: "file_search_calls",
        object: "organization.usage.file_searches.result",
        counts: Counts::ToolCalls,
    },
];

/// One result of any usage endpoint: the fields each `Usage*Result` schema has, absent ones
/// zero (`input_tokens` is in completions, embeddings and moderations only, ...).
#[derive(Deserialize)]
struct UsageResult {
    object: String,
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    num_model_requests: u64,
    /// Tool calls (`web_search_calls`, `file_search_calls`).
    #[serde(default)]
    num_requests: u64,
}

/// What one endpoint reported over the whole window.
#[derive(Default)]
struct EndpointTotal {
    requests: u64,
    tool_calls: u64,
}

impl UsageResult {
    /// Count one result into its day and its endpoint's total. The counters saturate: a
    /// broken or hostile answer cannot wrap them around to a small, innocent-looking number.
    fn add_to(&self, counts: Counts, slot: &mut UsageBucket, total: &mut EndpointTotal) {
        match counts {
            Counts::ModelRequests => {
                slot.requests = slot.requests.saturating_add(self.num_model_requests);
                slot.input_tokens = slot.input_tokens.saturating_add(self.input_tokens);
                slot.output_tokens = slot.output_tokens.saturating_add(self.output_tokens);
                total.requests = total.requests.saturating_add(self.num_model_requests);
            }
            Counts::ToolCalls => {
                total.tool_calls = total.tool_calls.saturating_add(self.num_requests);
            }
        }
    }
}

#[derive(Deserialize)]
struct Amount {
    value: f64,
    currency: Option<String>,
}

#[derive(Deserialize)]
struct CostsResult {
    amount: Option<Amount>,
}

#[derive(Deserialize)]
struct Session {
    user: Option<AuditUser>,
    ip_address: Option<String>,
    user_agent: Option<String>,
}

#[derive(Deserialize)]
struct AuditUser {
    id: Option<String>,
    email: Option<String>,
}

#[derive(Deserialize)]
struct AuditApiKey {
    id: Option<String>,
}

#[derive(Deserialize)]
struct Actor {
    session: Option<Session>,
    api_key: Option<AuditApiKey>,
}

#[derive(Deserialize)]
struct AuditLogEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    effective_at: i64,
    actor: Option<Actor>,
}

#[derive(Deserialize)]
struct AuditLogList {
    data: Vec<AuditLogEvent>,
    has_more: bool,
    last_id: Option<String>,
}

fn ts(secs: i64) -> Result<DateTime<Utc>, ProviderError> {
    DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| ProviderError::Malformed(format!("invalid timestamp {secs}")))
}

fn unsupported(op: &Op) -> ProviderError {
    ProviderError::Unsupported {
        kind: ProviderKind::OpenAi,
        op: op.name(),
    }
}

impl ApiKey {
    fn service_account(&self) -> Option<&ServiceAccountRef> {
        self.owner
            .as_ref()
            .filter(|o| o.kind.as_deref() == Some("service_account"))
            .and_then(|o| o.service_account.as_ref())
    }

    fn located(&self) -> LocatedKey {
        let state = match self.owner_project_access {
            None | Some(OwnerAccess::Active) => KeyState::Active,
            // The owner lost access to the project: the key exists but does not work for
            // the project any more; delete it too (access can be given back).
            Some(OwnerAccess::Inactive) => KeyState::Disabled,
        };
        let name = match (self.name.as_deref(), self.service_account()) {
            (Some(n), Some(sa)) => Some(format!(
                "{n} (service account {})",
                sa.name.as_deref().unwrap_or(&sa.id)
            )),
            (n, _) => n.map(str::to_string),
        };
        LocatedKey {
            id: self.id.clone(),
            name,
            state,
            hint: self.redacted_value.clone(),
            created_at: self
                .created_at
                .and_then(|t| DateTime::from_timestamp(t, 0))
                .map(|t| t.to_rfc3339()),
            last_used_at: self
                .last_used_at
                .and_then(|t| DateTime::from_timestamp(t, 0))
                .map(|t| t.to_rfc3339()),
        }
    }
}

/// Read `/v1/models`' answer to a key (see the module's "Proof of revocation").
fn probe<T>(result: Result<T, HttpError>) -> Probe {
    let e = match result {
        Ok(_) => return Probe::Accepted,
        Err(e) => e,
    };
    let HttpError::Status {
        status,
        code,
        reason: message,
        ..
    } = &e
    else {
        return Probe::inconclusive_from(&e);
    };
    match (*status, code.as_deref()) {
        (401, Some("invalid_api_key")) => Probe::Rejected {
            status: Some(401),
            signal: "invalid_api_key".into(),
        },
        (401, None) if message.contains("insufficient permissions") => Probe::Restricted {
            status: Some(401),
            reason: "insufficient permissions (a live key without the scope)".into(),
        },
        (403, _) => Probe::Restricted {
            status: Some(403),
            reason: code.clone().unwrap_or_else(|| "forbidden".into()),
        },
        _ => Probe::inconclusive_from(&e),
    }
}

impl Provider for OpenAiProvider {
    const KIND: ProviderKind = ProviderKind::OpenAi;
    // Service-account keys only: user-owned project keys cannot be minted by API, so the
    // replacement is always a service account's key in the same project.
    const CAPABILITIES: Capabilities = Capabilities {
        locate: true,
        verify: true,
        disable: false,
        revoke: true,
        create: true,
        usage: true,
        audit: true,
        // No idempotency key on service-account creation: a resumed incident finds a
        // replacement by its name and revokes it rather than trusting a replay.
        create_idempotent: false,
        single_live_key: false,
        usage_destroyed_by_revoke: false,
    };
    super::listing::lists_keys!();

    fn from_def(def: &ProviderDef) -> Self {
        Self::new(def)
    }

    fn plan(&self, op: &Op) -> Result<RequestPlan, ProviderError> {
        let b = &self.base;
        let project = self.project()?;
        let window = |start: &DateTime<Utc>, end: &DateTime<Utc>| {
            format!(
                "from {} to {}",
                start.format("%Y-%m-%d %H:%M"),
                end.format("%Y-%m-%d %H:%M")
            )
        };
        Ok(match op {
            Op::FindReplacement(q) => return self.plan(&q.as_locate()),
            Op::Locate { id: Some(id), .. } => self.admin(RequestPlan::read(
                format!("Look up API key {id} in project {project}"),
                "GET",
                format!(
                    "{b}/v1/organization/projects/{project}/api_keys/{}",
                    enc(id)
                ),
            )),
            Op::Locate { name, hint, .. } => {
                let what = name.as_deref().or(hint.as_deref()).unwrap_or("?");
                self.admin(RequestPlan::read(
                    format!("Search the API keys of project {project} for {what}"),
                    "GET",
                    self.keys_url(&project, None),
                ))
            }
            Op::Verify { which } => {
                let (secret, label) = match which {
                    Which::Old => (SecretRef::OldKey, "old"),
                    Which::New => (SecretRef::NewKey, "new"),
                };
                RequestPlan::read(
                    format!("Authenticate with the {label} key (list models)"),
                    "GET",
                    format!("{b}/v1/models"),
                )
                .secret_header("Authorization", "Bearer ", secret)
            }
            Op::Revoke { id } => match self.owner_of(id) {
                Some(sa) => self.admin(
                    RequestPlan::write(
                        format!(
                            "Delete service account {sa}, the owner of key {id}, and every key it holds"
                        ),
                        "DELETE",
                        format!(
                            "{b}/v1/organization/projects/{project}/service_accounts/{}",
                            enc(&sa)
                        ),
                    )
                    .destructive()
                    .idempotent(true),
                ),
                None => self.admin(
                    RequestPlan::write(
                        format!("Delete API key {id} from project {project}"),
                        "DELETE",
                        format!(
                            "{b}/v1/organization/projects/{project}/api_keys/{}",
                            enc(id)
                        ),
                    )
                    .destructive()
                    .idempotent(true),
                ),
            },
            Op::Create { name, .. } => self.admin(
                RequestPlan::write(
                    format!("Create service account {name} in project {project}, with a key"),
                    "POST",
                    format!("{b}/v1/organization/projects/{project}/service_accounts"),
                )
                .json(serde_json::json!({ "name": name })),
            ),
            Op::Usage { id, start, end } => self.admin(RequestPlan::read(
                format!(
                    "Fetch the usage of key {id} from every usage endpoint that filters by key ({}), and its costs, {}",
                    USAGE_ENDPOINTS
                        .iter()
                        .map(|e| e.path)
                        .collect::<Vec<_>>()
                        .join(", "),
                    window(start, end)
                ),
                "GET",
                self.usage_url(USAGE_ENDPOINTS[0].path, &project, id, *start, *end),
            )),
            Op::AuditLog { id, start, end } => self.admin(RequestPlan::read(
                match self.owner_of(id) {
                    Some(sa) => format!(
                        "Fetch audit-log events about key {id} and its service account {sa} {}",
                        window(start, end)
                    ),
                    None => format!(
                        "Fetch audit-log events about key {id} {}",
                        window(start, end)
                    ),
                },
                "GET",
                self.audit_url(id, *start, *end),
            )),
            Op::Disable { .. } => return Err(unsupported(op)),
        })
    }

    async fn execute(
        &self,
        op: &Op,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<OpOutput, ProviderError> {
        self.run(op, plan, http, secrets).await
    }
}

// The body of `Provider::execute`. It lives outside the trait impl because a replacement
// search is sent again as the named locate it is, and that recursion cannot be checked
// against the trait's `Send` bound from inside the recursive future's own definition.
impl OpenAiProvider {
    async fn run(
        &self,
        op: &Op,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<OpOutput, ProviderError> {
        match op {
            // Replacements carry keyfire's name here: found like any named key.
            Op::FindReplacement(q) => Box::pin(self.run(&q.as_locate(), plan, http, secrets)).await,
            Op::Locate { id: Some(_), .. } => match http.send(plan, secrets).await {
                Ok(r) => {
                    let key: ApiKey = r.json()?;
                    self.remember(&key);
                    Ok(OpOutput::Located(Some(key.located())))
                }
                Err(e) if e.kind() == FailureKind::NotFound => Ok(OpOutput::Located(None)),
                Err(e) => Err(e.into()),
            },
            Op::Locate { name, hint, .. } => self.search(plan, http, secrets, name, hint).await,
            Op::Verify { .. } => Ok(OpOutput::Verified(probe(http.send(plan, secrets).await))),
            Op::Revoke { .. } => match http.send(plan, secrets).await {
                Ok(r) => {
                    let d: Deleted = r.json()?;
                    if !d.deleted {
                        return Err(ProviderError::Malformed(format!(
                            "the provider did not confirm deleting {}",
                            d.id
                        )));
                    }
                    // The owner stays remembered: the audit-log search after the revoke looks
                    // for the service account's deletion under its id.
                    Ok(OpOutput::Revoked { already: false })
                }
                Err(e) if e.kind() == FailureKind::NotFound => {
                    Ok(OpOutput::Revoked { already: true })
                }
                Err(e) => Err(e.into()),
            },
            Op::Create { .. } => {
                let sa: CreatedServiceAccount = http.send(plan, secrets).await?.json()?;
                let Some(key) = sa.api_key else {
                    return Err(ProviderError::Malformed(format!(
                        "service account {} was created without a key",
                        sa.id
                    )));
                };
                let value = Secret::new(key.value);
                http.redactor().learn(&value);
                if let Ok(mut owners) = self.owners.lock() {
                    owners.insert(key.id.clone(), sa.id);
                }
                Ok(OpOutput::Created { id: key.id, value })
            }
            Op::Usage { id, start, end } => self.usage(plan, http, secrets, id, *start, *end).await,
            Op::AuditLog { .. } => self.audit_log(plan, http, secrets).await,
            Op::Disable { .. } => Err(unsupported(op)),
        }
    }
}

impl OpenAiProvider {
    pub fn new(def: &ProviderDef) -> Self {
        Self {
            base: base_of(def, DEFAULT_BASE),
            project: setting(def, "project_id"),
            organization: setting(def, "organization"),
            all_projects: setting(def, "discover_projects").as_deref() == Some("all"),
            owners: Arc::default(),
        }
    }

    fn project(&self) -> Result<String, ProviderError> {
        self.project.as_deref().map(enc).ok_or_else(|| {
            ProviderError::Misconfigured("openai providers need settings.project_id".into())
        })
    }

    fn owner_of(&self, key_id: &str) -> Option<String> {
        self.owners.lock().ok()?.get(key_id).cloned()
    }

    fn remember(&self, key: &ApiKey) {
        if let (Some(sa), Ok(mut owners)) = (key.service_account(), self.owners.lock()) {
            owners.insert(key.id.clone(), sa.id.clone());
        }
    }

    fn admin(&self, plan: RequestPlan) -> RequestPlan {
        let plan = plan.secret_header("Authorization", "Bearer ", SecretRef::AdminCredential);
        match &self.organization {
            Some(org) => plan.header("OpenAI-Organization", org),
            None => plan,
        }
    }

    fn keys_url(&self, project: &str, after: Option<&str>) -> String {
        let mut url = format!(
            "{}/v1/organization/projects/{project}/api_keys?limit={PAGE}&owner_project_access=any",
            self.base
        );
        if let Some(after) = after {
            url.push_str(&format!("&after={}", enc(after)));
        }
        url
    }

    /// The first page of one usage endpoint, filtered by the key and the project.
    fn usage_url(
        &self,
        endpoint: &str,
        project: &str,
        id: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> String {
        format!(
            "{}/v1/organization/usage/{endpoint}?start_time={}&end_time={}&bucket_width=1d&api_key_ids={}&project_ids={project}&limit={USAGE_PAGE}",
            self.base,
            start.timestamp(),
            end.timestamp(),
            enc(id)
        )
    }

    fn costs_url(&self, id: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> String {
        format!(
            "{}/v1/organization/costs?start_time={}&end_time={}&bucket_width=1d&api_key_ids={}&limit={COSTS_PAGE}",
            self.base,
            start.timestamp(),
            end.timestamp(),
            enc(id)
        )
    }

    /// Events about the key and, for a service account's key, about its service account
    /// (deleting one is logged as `service_account.deleted` on the account's id).
    fn audit_url(&self, id: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> String {
        let mut url = format!(
            "{}/v1/organization/audit_logs?effective_at[gte]={}&effective_at[lte]={}&resource_ids[]={}",
            self.base,
            start.timestamp(),
            end.timestamp(),
            enc(id)
        );
        if let Some(sa) = self.owner_of(id) {
            url.push_str(&format!("&resource_ids[]={}", enc(&sa)));
        }
        url.push_str(&format!("&limit={PAGE}"));
        url
    }

    async fn search(
        &self,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
        name: &Option<String>,
        hint: &Option<String>,
    ) -> Result<OpOutput, ProviderError> {
        let project = self.project()?;
        let mut page = plan.clone();
        let mut found = Vec::new();
        for _ in 0..MAX_PAGES {
            let list: KeyList = http.send(&page, secrets).await?.json()?;
            for k in &list.data {
                self.remember(k);
            }
            found.extend(
                list.data
                    .iter()
                    .filter(|k| match name {
                        // A replacement is found by its service account's name (keyfire names both).
                        Some(n) => {
                            k.name.as_deref() == Some(n)
                                || k.service_account().and_then(|sa| sa.name.as_deref()) == Some(n)
                        }
                        None => hint
                            .as_deref()
                            .zip(k.redacted_value.as_deref())
                            .is_some_and(|(h, r)| hint_matches(h, r)),
                    })
                    .map(ApiKey::located),
            );
            match (list.has_more, list.last_id) {
                (true, Some(last)) => page.url = self.keys_url(&project, Some(&last)),
                (true, None) => {
                    return Err(ProviderError::Malformed(
                        "a key list page says has_more but has no last_id".into(),
                    ));
                }
                (false, _) => return Ok(one_of(found)),
            }
        }
        Err(ProviderError::Malformed(format!(
            "the key list did not end after {MAX_PAGES} pages"
        )))
    }

    async fn usage(
        &self,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
        id: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<OpOutput, ProviderError> {
        let project = self.project()?;
        // The endpoints are independent: read them at once, each to its last page.
        let reads = USAGE_ENDPOINTS.iter().map(|e| {
            let mut first = plan.clone();
            first.url = self.usage_url(e.path, &project, id, start, end);
            async move {
                let (buckets, pages) = read_pages::<UsageResult>(http, secrets, first).await?;
                Ok::<_, ProviderError>((e, buckets, pages))
            }
        });
        let mut costs_plan = plan.clone();
        costs_plan.url = self.costs_url(id, start, end);
        let (usage, costs) = futures_util::future::join(
            futures_util::future::join_all(reads),
            read_pages::<CostsResult>(http, secrets, costs_plan),
        )
        .await;

        let mut buckets: std::collections::BTreeMap<i64, UsageBucket> = Default::default();
        let mut pages = 0u32;
        let mut totals: Vec<(&UsageEndpoint, EndpointTotal)> = Vec::new();
        for read in usage {
            let (endpoint, read, n) = read?;
            pages += n;
            let mut total = EndpointTotal::default();
            for b in read {
                let slot = bucket(&mut buckets, b.start_time, b.end_time)?;
                for r in b.results {
                    if r.object != endpoint.object {
                        return Err(ProviderError::Malformed(format!(
                            "usage/{} answered a result of type {:?}, not {}",
                            endpoint.path, r.object, endpoint.object
                        )));
                    }
                    r.add_to(endpoint.counts, slot, &mut total);
                }
            }
            totals.push((endpoint, total));
        }

        // Costs come from their own endpoint, with the same key filter and daily buckets.
        let (costs, n) = costs?;
        pages += n;
        for b in costs {
            let slot = bucket(&mut buckets, b.start_time, b.end_time)?;
            for r in b.results {
                if let Some(a) = r.amount
                    && a.currency
                        .as_deref()
                        .is_none_or(|c| c.eq_ignore_ascii_case("usd"))
                {
                    slot.cost_usd += a.value;
                }
            }
        }
        Ok(OpOutput::Usage(UsageReport {
            buckets: buckets.into_values().collect(),
            pages,
            notes: vec![traffic_note(&totals, start)],
            ..UsageReport::default()
        }))
    }

    async fn audit_log(
        &self,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<OpOutput, ProviderError> {
        let mut events = Vec::new();
        let mut page = plan.clone();
        for pages in 1..=MAX_PAGES {
            let list: AuditLogList = http.send(&page, secrets).await?.json()?;
            for e in list.data {
                let session = e.actor.as_ref().and_then(|a| a.session.as_ref());
                let actor = e.actor.as_ref().and_then(|a| {
                    a.session
                        .as_ref()
                        .and_then(|s| s.user.as_ref())
                        .and_then(|u| u.email.clone().or_else(|| u.id.clone()))
                        .or_else(|| {
                            a.api_key
                                .as_ref()
                                .and_then(|k| k.id.clone())
                                .map(|id| format!("api key {id}"))
                        })
                });
                events.push(AuditEvent {
                    id: e.id,
                    kind: e.kind,
                    at: ts(e.effective_at)?,
                    actor,
                    ip_address: session.and_then(|s| s.ip_address.clone()),
                    user_agent: session.and_then(|s| s.user_agent.clone()),
                });
            }
            match (list.has_more, list.last_id) {
                (true, Some(last)) => page.url = format!("{}&after={}", plan.url, enc(&last)),
                (true, None) => {
                    return Err(ProviderError::Malformed(
                        "an audit-log page says has_more but has no last_id".into(),
                    ));
                }
                (false, _) => return Ok(OpOutput::AuditEvents { events, pages }),
            }
        }
        Err(ProviderError::Malformed(format!(
            "the audit log did not end after {MAX_PAGES} pages"
        )))
    }
}

impl ApiKey {
    /// The key as discovery reports it. OpenAI reports no scopes for project keys.
    fn listed(&self, project: &str) -> ListedKey {
        let located = self.located();
        let owner = self.owner.as_ref().and_then(|o| match o.kind.as_deref() {
            Some("service_account") => o.service_account.as_ref().map(|sa| {
                format!(
                    "service account {} ({})",
                    sa.name.as_deref().unwrap_or("unnamed"),
                    sa.id
                )
            }),
            _ => o
                .user
                .as_ref()
                .and_then(|u| u.email.clone().or_else(|| u.id.clone())),
        });
        ListedKey {
            id: self.id.clone(),
            name: self.name.clone(),
            hint: self.redacted_value.clone(),
            state: located.state,
            created_at: self.created_at.and_then(|t| DateTime::from_timestamp(t, 0)),
            last_used_at: self
                .last_used_at
                .and_then(|t| DateTime::from_timestamp(t, 0)),
            owner,
            within: Some(format!("project {project}")),
            scopes: None,
        }
    }
}

impl OpenAiProvider {
    fn projects_url(&self, after: Option<&str>) -> String {
        let mut url = format!("{}/v1/organization/projects?limit={PAGE}", self.base);
        if let Some(after) = after {
            url.push_str(&format!("&after={}", enc(after)));
        }
        url
    }
}

/// `list-projects` (active projects: archived ones are left out by default), then
/// `list-project-api-keys` of each project with `owner_project_access=any`, every list
/// followed by `after=<last_id>` while `has_more`. Projects are read concurrently.
impl ListKeys for OpenAiProvider {
    fn list_plan(&self) -> Result<RequestPlan, ProviderError> {
        if self.all_projects {
            return Ok(self.admin(RequestPlan::read(
                "List every project the admin key sees, then the API keys of each",
                "GET",
                self.projects_url(None),
            )));
        }
        let project = self.project()?;
        Ok(self.admin(RequestPlan::read(
            format!("List the API keys of project {project}"),
            "GET",
            self.keys_url(&project, None),
        )))
    }

    async fn list_keys(
        &self,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<KeyListing, ProviderError> {
        let (projects, mut calls, scope) = if self.all_projects {
            let (projects, pages) =
                follow_cursor::<Project>(http, secrets, plan, |last| self.projects_url(Some(last)))
                    .await?;
            let n = projects.len();
            (
                projects.into_iter().map(|p| p.id).collect(),
                pages,
                format!("{n} projects the admin key sees (archived projects left out)"),
            )
        } else {
            let project = self.project.clone().unwrap_or_default();
            (vec![project.clone()], 0, format!("project {project}"))
        };
        let reads = projects.iter().map(|p| {
            let encoded = enc(p);
            let mut first = plan.clone();
            first.summary = format!("List the API keys of project {p}");
            first.url = self.keys_url(&encoded, None);
            async move {
                let read = follow_cursor::<ApiKey>(http, secrets, &first, |last| {
                    self.keys_url(&encoded, Some(last))
                })
                .await;
                (p, read)
            }
        });
        let mut keys = Vec::new();
        for (project, read) in bounded(LIST_CONCURRENCY, reads).await {
            let (list, pages) = read?;
            calls += pages;
            for k in &list {
                self.remember(k);
            }
            keys.extend(list.iter().map(|k| k.listed(project)));
        }
        Ok(KeyListing {
            keys,
            calls,
            reports_scopes: false,
            scope,
            notes: vec![
                "OpenAI does not report a project key's permissions: scopes are not compared"
                    .into(),
            ],
        })
    }
}

/// The merged bucket for a day, created on first sight.
fn bucket(
    buckets: &mut std::collections::BTreeMap<i64, UsageBucket>,
    s: i64,
    e: i64,
) -> Result<&mut UsageBucket, ProviderError> {
    let (start, end) = (ts(s)?, ts(e)?);
    Ok(buckets.entry(s).or_insert(UsageBucket {
        start,
        end,
        requests: 0,
        input_tokens: 0,
        output_tokens: 0,
        cost_usd: 0.0,
    }))
}

/// Every bucket of a `UsageResponse` list, following `next_page` from the first page.
async fn read_pages<T: serde::de::DeserializeOwned>(
    http: &Http,
    secrets: &SecretBag,
    first: RequestPlan,
) -> Result<(Vec<Bucket<T>>, u32), ProviderError> {
    let mut out = Vec::new();
    let mut page = first.clone();
    for pages in 1..=MAX_PAGES {
        let p: Page<T> = http.send(&page, secrets).await?.json()?;
        out.extend(p.data);
        match next(p.has_more, p.next_page)? {
            Some(token) => page.url = format!("{}&page={}", first.url, enc(&token)),
            None => return Ok((out, pages)),
        }
    }
    Err(ProviderError::Malformed(format!(
        "a usage list did not end after {MAX_PAGES} pages"
    )))
}

/// Which endpoints saw traffic, in the operator's words.
fn traffic_note(totals: &[(&UsageEndpoint, EndpointTotal)], start: DateTime<Utc>) -> String {
    let busy: Vec<String> = totals
        .iter()
        .filter_map(|(e, t)| match e.counts {
            Counts::ModelRequests if t.requests > 0 => {
                Some(format!("{} {} requests", e.path, t.requests))
            }
            Counts::ToolCalls if t.tool_calls > 0 => {
                Some(format!("{} {} tool calls", e.path, t.tool_calls))
            }
            _ => None,
        })
        .collect();
    let since = start.format("%Y-%m-%d");
    if busy.is_empty() {
        return format!(
            "OpenAI usage since {since}: no traffic on any of the {} usage endpoints that filter by key",
            totals.len()
        );
    }
    let tools = totals
        .iter()
        .any(|(e, t)| e.counts == Counts::ToolCalls && t.tool_calls > 0);
    format!(
        "OpenAI usage since {since} by endpoint: {}{}",
        busy.join(", "),
        if tools {
            " (tool calls are made within model requests and are not added to them)"
        } else {
            ""
        }
    )
}

/// The next page token, if the page says there is one.
fn next(has_more: bool, token: Option<String>) -> Result<Option<String>, ProviderError> {
    match (has_more, token) {
        (true, Some(t)) => Ok(Some(t)),
        (true, None) => Err(ProviderError::Malformed(
            "a usage page says has_more but has no next_page".into(),
        )),
        (false, _) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Origin;

    #[test]
    fn usage_counters_saturate_instead_of_wrapping() {
        let huge = UsageResult {
            object: "organization.usage.completions.result".into(),
            input_tokens: u64::MAX - 1,
            output_tokens: u64::MAX,
            num_model_requests: u64::MAX - 5,
            num_requests: u64::MAX,
        };
        let mut slot = UsageBucket {
            start: DateTime::<Utc>::MIN_UTC,
            end: DateTime::<Utc>::MIN_UTC,
            requests: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: 0.0,
        };
        let mut total = EndpointTotal::default();
        for counts in [
            Counts::ModelRequests,
            Counts::ModelRequests,
            Counts::ToolCalls,
            Counts::ToolCalls,
        ] {
            huge.add_to(counts, &mut slot, &mut total);
        }
        assert_eq!(slot.requests, u64::MAX);
        assert_eq!(slot.input_tokens, u64::MAX);
        assert_eq!(slot.output_tokens, u64::MAX);
        assert_eq!(total.requests, u64::MAX);
        assert_eq!(total.tool_calls, u64::MAX);
        assert_eq!(slot.tokens(), u64::MAX);
    }

    fn provider(settings: serde_json::Value) -> OpenAiProvider {
        let def = ProviderDef {
            id: "openai".into(),
            kind: ProviderKind::OpenAi,
            admin_credential: None,
            base_url: Some("https://api.openai.com/v1/".into()),
            settings: settings.as_object().cloned().unwrap_or_default(),
            origin: Origin { file: 0, line: 1 },
        };
        OpenAiProvider::new(&def)
    }

    #[test]
    fn plans_name_the_documented_paths_and_never_a_secret() {
        let p = provider(serde_json::json!({ "project_id": "proj_abc", "organization": "org-1" }));
        let locate = p
            .plan(&Op::Locate {
                id: Some("key_1".into()),
                name: None,
                hint: None,
            })
            .unwrap();
        assert_eq!(
            locate.url,
            "https://api.openai.com/v1/organization/projects/proj_abc/api_keys/key_1"
        );
        let rendered = locate.render();
        assert!(rendered.contains("Authorization: Bearer [admin credential]"));
        assert!(rendered.contains("OpenAI-Organization: org-1"));

        let revoke = p.plan(&Op::Revoke { id: "key_1".into() }).unwrap();
        assert_eq!(revoke.method, "DELETE");
        assert!(revoke.destructive && revoke.idempotent);
        let create = p
            .plan(&Op::Create {
                name: "keyfire-inc-1-k".into(),
                idempotency_key: "x".into(),
            })
            .unwrap();
        assert!(create.url.ends_with("/projects/proj_abc/service_accounts"));
        assert!(!create.idempotent, "a create is never retried blindly");
        assert!(matches!(
            p.plan(&Op::Disable { id: "k".into() }),
            Err(ProviderError::Unsupported { .. })
        ));
    }

    #[test]
    fn a_service_account_key_is_revoked_by_deleting_its_service_account() {
        let p = provider(serde_json::json!({ "project_id": "proj_abc" }));
        let key: ApiKey = serde_json::from_value(serde_json::json!({
            "object": "organization.project.api_key", "id": "key_sa", "name": "Secret Key",
            "redacted_value": "sk-svcacct-...abcd", "created_at": 1, "owner": {
                "type": "service_account",
                "service_account": { "id": "svc_acct_1", "name": "bot", "role": "member" }
            }
        }))
        .unwrap();
        p.remember(&key);
        let revoke = p
            .plan(&Op::Revoke {
                id: "key_sa".into(),
            })
            .unwrap();
        assert!(
            revoke
                .url
                .ends_with("/projects/proj_abc/service_accounts/svc_acct_1"),
            "{}",
            revoke.url
        );
        assert!(revoke.summary.contains("service account svc_acct_1"));
    }

    fn status(status: u16, code: Option<&str>, reason: &str) -> Result<(), HttpError> {
        Err(HttpError::Status {
            kind: FailureKind::Unauthorized,
            status,
            reason: reason.into(),
            retry_after: None,
            code: code.map(str::to_string),
            error_type: Some("invalid_request_error".into()),
        })
    }

    #[test]
    fn only_401_invalid_api_key_proves_a_key_dead() {
        assert!(matches!(
            probe(status(
                401,
                Some("invalid_api_key"),
                "Incorrect API key provided"
            )),
            Probe::Rejected {
                status: Some(401),
                ..
            }
        ));
        // A live key without the scope gets 401 too, without a code.
        let scope = probe(status(
            401,
            None,
            "You have insufficient permissions for this operation. Missing scopes: api.model.read.",
        ));
        assert!(
            matches!(
                scope,
                Probe::Restricted {
                    status: Some(401),
                    ..
                }
            ),
            "{scope:?}"
        );
        assert!(scope.alive());
        for other in [
            probe(status(401, None, "something else")),
            probe(status(401, Some("mismatched_organization"), "x")),
            probe(status(429, Some("rate_limit_exceeded"), "slow down")),
            probe(status(500, None, "boom")),
            probe::<()>(Err(HttpError::Transport("refused".into()))),
        ] {
            assert!(matches!(other, Probe::Inconclusive { .. }), "{other:?}");
        }
        assert_eq!(probe(Ok(())), Probe::Accepted);
    }

    #[test]
    fn owner_project_access_gives_the_key_state() {
        let key = |access: serde_json::Value| -> ApiKey {
            serde_json::from_value(serde_json::json!({
                "object": "organization.project.api_key", "id": "key_1", "name": "k",
                "redacted_value": "sk-proj-ab...wxyz", "created_at": 1, "last_used_at": null,
                "owner_project_access": access,
                "owner": { "type": "user", "user": {
                    "id": "user_1", "email": "a@example.com", "name": "A", "created_at": 1, "role": "owner"
                } }
            }))
            .unwrap()
        };
        assert_eq!(key("active".into()).located().state, KeyState::Active);
        assert_eq!(key("inactive".into()).located().state, KeyState::Disabled);
        // Absent (not in the spec, but never read as dead): live until proven otherwise.
        assert_eq!(
            key(serde_json::Value::Null).located().state,
            KeyState::Active
        );
    }

    #[test]
    fn the_audit_search_names_the_service_account_of_a_service_account_key() {
        let p = provider(serde_json::json!({ "project_id": "proj_abc" }));
        let (start, end) = (ts(1_700_000_000).unwrap(), ts(1_700_086_400).unwrap());
        let user_key = p
            .plan(&Op::AuditLog {
                id: "key_user".into(),
                start,
                end,
            })
            .unwrap();
        assert!(user_key.url.contains("resource_ids[]=key_user&limit=100"));
        p.remember(
            &serde_json::from_value(serde_json::json!({
                "id": "key_sa", "owner": { "type": "service_account",
                    "service_account": { "id": "svc_acct_1", "name": "bot", "created_at": 1, "role": "member" } }
            }))
            .unwrap(),
        );
        let sa_key = p
            .plan(&Op::AuditLog {
                id: "key_sa".into(),
                start,
                end,
            })
            .unwrap();
        assert!(
            sa_key
                .url
                .contains("resource_ids[]=key_sa&resource_ids[]=svc_acct_1"),
            "{}",
            sa_key.url
        );
        assert!(sa_key.summary.contains("service account svc_acct_1"));
    }

    #[test]
    fn the_traffic_note_names_the_endpoints_with_traffic_only() {
        let start = ts(1_700_000_000).unwrap();
        let t = |requests, tool_calls| EndpointTotal {
            requests,
            tool_calls,
        };
        let totals = vec![
            (&USAGE_ENDPOINTS[0], t(12, 0)),
            (&USAGE_ENDPOINTS[1], t(0, 0)),
            (&USAGE_ENDPOINTS[3], t(3, 0)),
            (&USAGE_ENDPOINTS[6], t(0, 5)),
        ];
        let note = traffic_note(&totals, start);
        assert!(
            note.contains(
                "completions 12 requests, images 3 requests, web_search_calls 5 tool calls"
            ),
            "{note}"
        );
        assert!(!note.contains("embeddings"), "{note}");
        let quiet = traffic_note(&[(&USAGE_ENDPOINTS[0], t(0, 0))], start);
        assert!(quiet.contains("no traffic"), "{quiet}");
    }

    #[test]
    fn a_missing_project_is_a_configuration_error() {
        let p = provider(serde_json::json!({}));
        assert!(matches!(
            p.plan(&Op::Verify { which: Which::Old }),
            Err(ProviderError::Misconfigured(_))
        ));
    }
}
