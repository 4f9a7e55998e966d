//! LiteLLM proxy virtual keys, through the proxy's management API with its master key (or
//! an admin key) as `Authorization: Bearer`. `base_url` is the proxy's address (required).
//! `provider_key_id` is the key's hashed token (the SHA-256 hex of the key, LiteLLM's
//! `LiteLLM_VerificationToken.token`, as `/key/list` and the spend logs give it) or its
//! `key_alias`.
//!
//! | op | request | LiteLLM (BerriAI/litellm) |
//! |---|---|---|
//! | locate by hashed token | `GET /key/info?key=TOKEN` → `{key, info}` (404 when unknown) | `key_management_endpoints.py` `info_key_fn` |
//! | locate by alias / name | `GET /key/list?key_alias=&return_full_object=true&size=100&page=` | `list_keys` (`KeyListResponseObject`: `keys`, `total_count`, `current_page`, `total_pages`) |
//! | locate by hint | `GET /key/list?return_full_object=true&size=100&page=1..total_pages`, `key_name` (`sk-...abcd`) against the hint | `list_keys` |
//! | list (for `inventory discover`) | the same pages; page numbers are known after the first, so the rest are read at once | `list_keys` |
//! | verify | `GET /v1/models` with the key itself: see "Proof of revocation" | `proxy_server.py` `model_list`, `user_api_key_auth` |
//! | disable | `POST /key/block` `{key: TOKEN}` → the key with `blocked: true` | `block_key` (`BlockKeyRequest`) |
//! | revoke | `POST /key/delete` `{keys: [TOKEN]}` → `{deleted_keys}` | `delete_key_fn` (`KeyRequest`) |
//! | create | `POST /key/generate` `{models, max_budget, tpm_limit, rpm_limit, metadata, key_alias}` → `{key, ...}` (the value, once) | `generate_key_fn` (`GenerateKeyRequest`, `GenerateKeyResponse`) |
//! | usage | `GET /spend/logs?api_key=TOKEN&start_date=&end_date=&summarize=false` → `[LiteLLM_SpendLogs]` | `spend_management_endpoints.py` `view_spend_logs` |
//!
//! The key fields read (`token`, `key_name`, `key_alias`, `models`, `max_budget`,
//! `tpm_limit`, `rpm_limit`, `metadata`, `blocked`, `expires`, `created_at`, `last_active`,
//! `user_id`, `team_id`) and the spend-log fields are those of `schema.prisma`
//! (`LiteLLM_VerificationToken`, `LiteLLM_SpendLogs`); the contract suite checks the
//! simulator's objects against that list (`tests/fixtures/spec/litellm/schema-fields.json`).
//!
//! Proof of revocation: the proxy answers a key it does not know, and a blocked key, with
//! HTTP 401 and `error.type = "auth_error"` (`ProxyException`, `ProxyErrorTypes.auth_error`):
//! that is dead. Anything else (an expired key's 400, a budget's 400/429, 5xx, network) is
//! inconclusive.
//!
//! The replacement copies the leaked key's `models`, `max_budget`, `tpm_limit`, `rpm_limit`
//! and `metadata` as `/key/info` gave them. LiteLLM keeps `key_alias` unique while both keys
//! exist (zero-downtime), so the replacement's alias is keyfire's replacement name and its
//! metadata says which alias it replaces (`keyfire_replaces`).
//!
//! Usage: the spend logs are per request (model, status, requester address, spend, tokens)
//! and matched by the hashed token; they are read through the same parser as an imported
//! spend-log export (`audit::logs`), into daily buckets and per-request events. The logs
//! have no pagination: one answer holds the window.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, NaiveTime, Utc};
use serde::Deserialize;

use super::Identity;
use super::traits::{Capabilities, Provider};
use super::{
    KeyListing, KeyState, ListKeys, ListedKey, LocatedKey, Op, OpOutput, Probe, ProviderError,
    UsageBucket, UsageEvent, UsageReport, Which, enc, hint_matches, one_of,
};
use crate::http::{FailureKind, Http, HttpError};
use crate::inventory::{ProviderDef, ProviderKind};
use crate::plan::{RequestPlan, SecretBag, SecretRef};
use crate::secret::Secret;

/// Keys per list page (`/key/list` allows 1 to 100).
const PAGE: u32 = 100;
const MAX_PAGES: u32 = 10_000;

/// What the replacement copies from the leaked key.
#[derive(Debug, Clone, Default)]
struct Template {
    token: Option<String>,
    fields: Option<KeyFields>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct KeyFields {
    #[serde(default)]
    models: Vec<String>,
    max_budget: Option<f64>,
    tpm_limit: Option<i64>,
    rpm_limit: Option<i64>,
    #[serde(default)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    key_alias: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LiteLlmProvider {
    base: Option<String>,
    old_id: Option<String>,
    /// The models the inventory declares for the key (`scopes`): the replacement's models
    /// when the leaked key is already gone and no earlier replacement shows its limits.
    declared: Vec<String>,
    template: Arc<Mutex<Template>>,
}

/// A `LiteLLM_VerificationToken` as `/key/info` (`info`) and `/key/list` give it.
#[derive(Deserialize, Clone)]
struct KeyObject {
    /// The hashed token; `/key/info` may leave it out (the query names it).
    token: Option<String>,
    /// `sk-...abcd`: the key's first and last characters.
    key_name: Option<String>,
    key_alias: Option<String>,
    blocked: Option<bool>,
    expires: Option<String>,
    created_at: Option<String>,
    last_active: Option<String>,
    user_id: Option<String>,
    team_id: Option<String>,
    #[serde(flatten)]
    fields: KeyFields,
}

/// `/key/info`'s answer: `{key, info}` (`key` echoes the query).
#[derive(Deserialize)]
struct KeyInfo {
    info: KeyObject,
}

#[derive(Deserialize)]
struct KeyList {
    keys: Vec<KeyObject>,
    total_pages: Option<u32>,
}

#[derive(Deserialize)]
struct Deleted {
    deleted_keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Generated {
    key: String,
}

fn is_token(id: &str) -> bool {
    crate::secret::fingerprint::is_hash(id)
}

fn unsupported(op: &Op) -> ProviderError {
    ProviderError::Unsupported {
        kind: ProviderKind::LiteLlm,
        op: op.name(),
    }
}

impl KeyObject {
    fn id(&self, queried: Option<&str>) -> String {
        self.token
            .clone()
            .or_else(|| queried.map(str::to_string))
            .unwrap_or_default()
    }

    fn state(&self) -> KeyState {
        let expired = self
            .expires
            .as_deref()
            .and_then(|e| DateTime::parse_from_rfc3339(e).ok())
            .is_some_and(|e| e < Utc::now());
        if self.blocked == Some(true) || expired {
            KeyState::Disabled
        } else {
            KeyState::Active
        }
    }

    fn located(&self, queried: Option<&str>) -> LocatedKey {
        LocatedKey {
            id: self.id(queried),
            name: self.key_alias.clone(),
            state: self.state(),
            hint: self.key_name.clone(),
            created_at: self.created_at.clone(),
            last_used_at: self.last_active.clone(),
        }
    }

    fn listed(&self) -> ListedKey {
        let time = |t: &Option<String>| {
            t.as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        ListedKey {
            id: self.id(None),
            name: self.key_alias.clone(),
            hint: self.key_name.clone(),
            state: self.state(),
            created_at: time(&self.created_at),
            last_used_at: time(&self.last_active),
            owner: self.user_id.clone(),
            within: self.team_id.as_ref().map(|t| format!("team {t}")),
            // A virtual key's models are what it may do.
            scopes: Some(self.fields.models.clone()),
        }
    }
}

/// Read `/v1/models`' answer to a key (see "Proof of revocation").
fn probe<T>(result: Result<T, HttpError>) -> Probe {
    match result {
        Ok(_) => Probe::Accepted,
        Err(HttpError::Status {
            status: 401,
            error_type: Some(t),
            ..
        }) if t == "auth_error" => Probe::Rejected {
            status: Some(401),
            signal: "auth_error".into(),
        },
        Err(e) => Probe::inconclusive_from(&e),
    }
}

fn day(t: &DateTime<Utc>) -> DateTime<Utc> {
    t.date_naive().and_time(NaiveTime::MIN).and_utc()
}

impl Provider for LiteLlmProvider {
    const KIND: ProviderKind = ProviderKind::LiteLlm;
    // Virtual keys: block is a reversible disable; the spend logs are per-request usage.
    const CAPABILITIES: Capabilities = Capabilities {
        locate: true,
        verify: true,
        disable: true,
        revoke: true,
        create: true,
        usage: true,
        ..Capabilities::NONE
    };
    super::listing::lists_keys!();

    fn from_def(def: &ProviderDef) -> Self {
        Self::new(def)
    }

    /// A virtual key's id is its hashed token: the SHA-256 of the value. Other ids (a key
    /// alias) leave the decision to the hint.
    fn identity(value: &Secret, key_id: Option<&str>) -> Option<Identity> {
        let id = key_id.filter(|id| crate::secret::fingerprint::is_hash(id))?;
        let by = "the hashed token (SHA-256 of the stored value)".to_string();
        let got = crate::secret::fingerprint::of_value(value.expose());
        Some(if id.eq_ignore_ascii_case(&got) {
            Identity::Matches { by }
        } else {
            Identity::Differs { by }
        })
    }

    fn for_key(self, key: &crate::inventory::Key) -> Self {
        Self {
            old_id: key.provider_key_id.clone(),
            declared: key.scopes.clone(),
            template: Arc::default(),
            ..self
        }
    }

    fn plan(&self, op: &Op) -> Result<RequestPlan, ProviderError> {
        let b = self.base()?;
        Ok(match op {
            Op::FindReplacement(q) => Self::admin(RequestPlan::read(
                format!("Search the proxy's virtual keys for alias {}", q.name),
                "GET",
                self.list_url(Some(&q.name), 1)?,
            )),
            Op::Locate { id: Some(id), .. } if is_token(id) => self.info_plan(id)?,
            Op::Locate {
                id: Some(alias), ..
            }
            | Op::Locate {
                id: None,
                name: Some(alias),
                ..
            } => Self::admin(RequestPlan::read(
                format!("Search the proxy's virtual keys for alias {alias}"),
                "GET",
                self.list_url(Some(alias), 1)?,
            )),
            Op::Locate { hint, .. } => Self::admin(RequestPlan::read(
                format!(
                    "Search the proxy's virtual keys for {}",
                    hint.as_deref().unwrap_or("?")
                ),
                "GET",
                self.list_url(None, 1)?,
            )),
            Op::Verify { which } => {
                let (secret, label) = match which {
                    Which::Old => (SecretRef::OldKey, "old"),
                    Which::New => (SecretRef::NewKey, "new"),
                };
                RequestPlan::read(
                    format!("Authenticate with the {label} key (list its models)"),
                    "GET",
                    format!("{b}/v1/models"),
                )
                .secret_header("Authorization", "Bearer ", secret)
            }
            Op::Disable { id } => Self::admin(
                RequestPlan::write(
                    format!("Block virtual key {id} (reversible with /key/unblock)"),
                    "POST",
                    format!("{b}/key/block"),
                )
                .json(serde_json::json!({ "key": id }))
                .idempotent(true),
            ),
            Op::Revoke { id } => Self::admin(
                RequestPlan::write(
                    format!("Delete virtual key {id}"),
                    "POST",
                    format!("{b}/key/delete"),
                )
                .json(serde_json::json!({ "keys": [id] }))
                .destructive()
                .idempotent(true),
            ),
            Op::Create { name, .. } => {
                let t = self.template();
                let source = t.token.clone().or_else(|| self.old_id.clone());
                let (body, summary) = match (&t.fields, &source) {
                    (Some(f), Some(src)) => (
                        generate_body(name, f),
                        format!(
                            "Generate virtual key {name} with the models, budget, limits and metadata of key {src}"
                        ),
                    ),
                    (None, Some(src)) => (
                        serde_json::json!({ "key_alias": name }),
                        format!(
                            "Read key {src}, then generate virtual key {name} with its models, budget, limits and metadata (if the key is gone: the inventory's models [{}] and NO budget or rate limits: set them with /key/update)",
                            self.declared.join(", ")
                        ),
                    ),
                    (_, None) => {
                        return Err(ProviderError::Refused(
                            "the leaked key was not located: its models and limits are unknown, so keyfire does not generate an unrestricted key".into(),
                        ));
                    }
                };
                Self::admin(
                    RequestPlan::write(summary, "POST", format!("{b}/key/generate")).json(body),
                )
            }
            Op::Usage { id, start, end } => Self::admin(RequestPlan::read(
                format!(
                    "Fetch the spend logs of virtual key {id} from {} to {}",
                    start.format("%Y-%m-%d"),
                    end.format("%Y-%m-%d")
                ),
                "GET",
                format!(
                    "{b}/spend/logs?api_key={}&start_date={}&end_date={}&summarize=false",
                    enc(id),
                    start.format("%Y-%m-%d"),
                    // `startTime <= end_date` at midnight: the next day includes the last.
                    (day(end) + Duration::days(1)).format("%Y-%m-%d"),
                ),
            )),
            Op::AuditLog { .. } => return Err(unsupported(op)),
        })
    }

    async fn execute(
        &self,
        op: &Op,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<OpOutput, ProviderError> {
        match op {
            Op::FindReplacement(q) => {
                let found = self
                    .search(plan, http, secrets, |k| {
                        k.key_alias.as_deref() == Some(q.name.as_str())
                            && !k.token.as_ref().is_some_and(|t| q.exclude.contains(t))
                    })
                    .await?;
                // A replacement made by an earlier process carries the leaked key's models,
                // limits and metadata: the template when the leaked key is gone.
                if let [one] = found.as_slice()
                    && let Some(token) = &one.token
                {
                    let mut f = one.fields.clone();
                    if let Some(m) = f.metadata.as_mut() {
                        m.remove("keyfire_replaces");
                    }
                    f.key_alias = None;
                    self.learn(
                        token,
                        &KeyObject {
                            fields: f,
                            ..one.clone()
                        },
                    );
                }
                Ok(one_of(found.iter().map(|k| k.located(None)).collect()))
            }
            Op::Locate { id: Some(id), .. } if is_token(id) => {
                let key = self.info(id, http, secrets).await?;
                if let Some(k) = &key {
                    self.learn(id, k);
                }
                Ok(OpOutput::Located(key.map(|k| k.located(Some(id)))))
            }
            Op::Locate { id, name, hint, .. } => {
                let alias = id.as_deref().or(name.as_deref());
                let found = self
                    .search(plan, http, secrets, |k| match (alias, hint) {
                        (Some(a), _) => k.key_alias.as_deref() == Some(a),
                        (None, Some(h)) => {
                            k.key_name.as_deref().is_some_and(|n| hint_matches(h, n))
                        }
                        (None, None) => false,
                    })
                    .await?;
                if let [one] = found.as_slice()
                    && let Some(token) = &one.token
                {
                    self.learn(token, one);
                }
                Ok(one_of(found.iter().map(|k| k.located(None)).collect()))
            }
            Op::Verify { .. } => Ok(OpOutput::Verified(probe(http.send(plan, secrets).await))),
            Op::Disable { id } => {
                let k: KeyObject = http.send(plan, secrets).await?.json()?;
                if k.blocked != Some(true) {
                    return Err(ProviderError::Malformed(format!(
                        "key {id} is not blocked after /key/block"
                    )));
                }
                Ok(OpOutput::Disabled)
            }
            Op::Revoke { id } => match http.send(plan, secrets).await {
                Ok(r) => {
                    let d: Deleted = r.json()?;
                    if d.deleted_keys.is_empty() {
                        return Err(ProviderError::Malformed(format!(
                            "the proxy did not confirm deleting {id}"
                        )));
                    }
                    Ok(OpOutput::Revoked { already: false })
                }
                // LiteLLM refuses to delete a key it does not have (400 or 404): a lookup
                // tells a key already gone from a real refusal.
                Err(e) if matches!(e.status(), Some(400 | 404)) => {
                    match self.info(id, http, secrets).await? {
                        None => Ok(OpOutput::Revoked { already: true }),
                        Some(_) => Err(e.into()),
                    }
                }
                Err(e) => Err(e.into()),
            },
            Op::Create { name, .. } => {
                let mut send = plan.clone();
                if self.template().fields.is_none() {
                    let src = self.old_id.clone().ok_or_else(|| {
                        ProviderError::Refused("the leaked key was not located".into())
                    })?;
                    let fields = match self.info(&src, http, secrets).await? {
                        Some(key) => {
                            self.learn(&src, &key);
                            key.fields
                        }
                        // Deleted before this process looked (contain-first, then a crash):
                        // the inventory's models are all that is left; the plan said so.
                        None if !self.declared.is_empty() => KeyFields {
                            models: self.declared.clone(),
                            ..KeyFields::default()
                        },
                        None => {
                            return Err(ProviderError::Refused(format!(
                                "key {src} is gone and the inventory declares no models for it (scopes): keyfire does not generate an unrestricted key; generate the replacement by hand"
                            )));
                        }
                    };
                    send.body = Some(generate_body(name, &fields));
                }
                let g: Generated = http.send(&send, secrets).await?.json()?;
                let value = Secret::new(g.key);
                http.redactor().learn(&value);
                // The hashed token is the key's id everywhere else (list, spend logs).
                let id = crate::secret::fingerprint::of_value(value.expose());
                Ok(OpOutput::Created { id, value })
            }
            Op::Usage { id, .. } => {
                let rows: Vec<serde_json::Value> = http.send(plan, secrets).await?.json()?;
                usage_from_spend_logs(&rows, id)
            }
            Op::AuditLog { .. } => Err(unsupported(op)),
        }
    }
}

impl LiteLlmProvider {
    pub fn new(def: &ProviderDef) -> Self {
        Self {
            base: def
                .base_url
                .as_deref()
                .map(|b| b.trim_end_matches('/').to_string()),
            old_id: None,
            declared: Vec::new(),
            template: Arc::default(),
        }
    }

    fn base(&self) -> Result<&str, ProviderError> {
        self.base.as_deref().ok_or_else(|| {
            ProviderError::Misconfigured(
                "litellm providers need base_url: the proxy's address".into(),
            )
        })
    }

    fn admin(plan: RequestPlan) -> RequestPlan {
        plan.secret_header("Authorization", "Bearer ", SecretRef::AdminCredential)
    }

    fn list_url(&self, alias: Option<&str>, page: u32) -> Result<String, ProviderError> {
        let mut url = format!(
            "{}/key/list?return_full_object=true&size={PAGE}&page={page}",
            self.base()?
        );
        if let Some(a) = alias {
            url.push_str(&format!("&key_alias={}", enc(a)));
        }
        Ok(url)
    }

    fn info_plan(&self, token: &str) -> Result<RequestPlan, ProviderError> {
        Ok(Self::admin(RequestPlan::read(
            format!("Look up virtual key {token}"),
            "GET",
            format!("{}/key/info?key={}", self.base()?, enc(token)),
        )))
    }

    fn template(&self) -> Template {
        self.template.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// The first key this provider looks up is the leaked key.
    fn learn(&self, token: &str, key: &KeyObject) {
        if let Ok(mut t) = self.template.lock()
            && t.fields.is_none()
        {
            t.token = Some(token.to_string());
            t.fields = Some(key.fields.clone());
        }
    }

    async fn info(
        &self,
        token: &str,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<Option<KeyObject>, ProviderError> {
        match http.send(&self.info_plan(token)?, secrets).await {
            Ok(r) => Ok(Some(r.json::<KeyInfo>()?.info)),
            Err(e) if e.kind() == FailureKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn search(
        &self,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
        keep: impl Fn(&KeyObject) -> bool,
    ) -> Result<Vec<KeyObject>, ProviderError> {
        let mut found = Vec::new();
        let mut page = plan.clone();
        for n in 1..=MAX_PAGES {
            let list: KeyList = http.send(&page, secrets).await?.json()?;
            found.extend(list.keys.into_iter().filter(|k| keep(k)));
            if n >= list.total_pages.unwrap_or(1) {
                return Ok(found);
            }
            page.url = page
                .url
                .replace(&format!("&page={n}"), &format!("&page={}", n + 1));
        }
        Err(ProviderError::Malformed(format!(
            "the key list did not end after {MAX_PAGES} pages"
        )))
    }
}

/// `inventory discover`: every virtual key of the proxy. The first page tells how many pages
/// there are; the others are read at once.
impl ListKeys for LiteLlmProvider {
    fn list_plan(&self) -> Result<RequestPlan, ProviderError> {
        Ok(Self::admin(RequestPlan::read(
            "List the proxy's virtual keys",
            "GET",
            self.list_url(None, 1)?,
        )))
    }

    async fn list_keys(
        &self,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<KeyListing, ProviderError> {
        let page: KeyList = http.send(plan, secrets).await?.json()?;
        let total = page.total_pages.unwrap_or(1).max(1);
        let mut keys: Vec<ListedKey> = page.keys.iter().map(KeyObject::listed).collect();
        let rest = super::listing::indexed_pages(total, super::listing::LIST_CONCURRENCY, |n| {
            let mut p = plan.clone();
            async move {
                p.url = self.list_url(None, n)?;
                Ok::<_, ProviderError>(http.send(&p, secrets).await?.json::<KeyList>()?)
            }
        })
        .await?;
        for list in rest {
            keys.extend(list.keys.iter().map(KeyObject::listed));
        }
        Ok(KeyListing {
            keys,
            calls: total,
            reports_scopes: true,
            scope: "the proxy's virtual keys".into(),
            notes: vec!["a virtual key's scopes are the models it may call".into()],
        })
    }
}

/// `/key/generate`'s body for a replacement of a key with these fields.
fn generate_body(name: &str, f: &KeyFields) -> serde_json::Value {
    let mut metadata = f.metadata.clone().unwrap_or_default();
    if let Some(alias) = &f.key_alias {
        metadata.insert("keyfire_replaces".into(), serde_json::json!(alias));
    }
    serde_json::json!({
        "key_alias": name,
        "models": f.models,
        "max_budget": f.max_budget,
        "tpm_limit": f.tpm_limit,
        "rpm_limit": f.rpm_limit,
        "metadata": metadata,
    })
}

/// The spend logs (a JSON array of `LiteLLM_SpendLogs`) of one hashed token, read by the
/// spend-log parser the imported exports use, as daily buckets and per-request events.
fn usage_from_spend_logs(
    rows: &[serde_json::Value],
    token: &str,
) -> Result<OpOutput, ProviderError> {
    use crate::audit::logs::{OnBadLine, read_stream};
    let mut lines = Vec::with_capacity(rows.len() * 256);
    for row in rows {
        serde_json::to_writer(&mut lines, row)
            .map_err(|e| ProviderError::Malformed(crate::http::json_error(&e)))?;
        lines.push(b'\n');
    }
    let mut events = Vec::new();
    let stats = read_stream(
        lines.as_slice(),
        std::path::Path::new("spend-logs"),
        false,
        OnBadLine::Count,
        |k| (k == Some(token)).then_some(0),
        |_, e| events.push(e.clone()),
    )
    .map_err(|e| ProviderError::Malformed(e.to_string()))?;
    let mut report = UsageReport {
        pages: 1,
        ..UsageReport::default()
    };
    let mut buckets: std::collections::BTreeMap<DateTime<Utc>, UsageBucket> = Default::default();
    for e in &events {
        let start = day(&e.ts);
        let b = buckets.entry(start).or_insert_with(|| UsageBucket {
            start,
            end: start + Duration::days(1),
            requests: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: 0.0,
        });
        b.requests = b.requests.saturating_add(e.requests);
        b.input_tokens = b.input_tokens.saturating_add(e.tokens);
        b.cost_usd += e.cost_usd.unwrap_or(0.0);
        report.events.push(UsageEvent {
            time: e.ts,
            action: e.model.as_deref().unwrap_or("request").to_string(),
            source_ip: e.source_ip.map(|ip| ip.to_string()),
            user_agent: None,
            error_code: match e.status {
                Some(s) if (200..400).contains(&s) => None,
                Some(401) => Some("Unauthorized".into()),
                Some(403) => Some("AccessDenied".into()),
                Some(s) => Some(format!("HTTP {s}")),
                None => None,
            },
        });
    }
    report.buckets = buckets.into_values().collect();
    report.events_source = Some(crate::audit::SourceInfo {
        name: "LiteLLM spend logs".into(),
        addresses: true,
        statuses: true,
        models: true,
        per_request: true,
    });
    if let Some(note) = stats.unreadable_note() {
        report.notes.push(note);
    }
    Ok(OpOutput::Usage(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_401_auth_error_proves_a_key_dead() {
        let answer = |status: u16, t: &str| -> Result<(), HttpError> {
            Err(HttpError::Status {
                kind: FailureKind::ClientError,
                status,
                reason: "x".into(),
                retry_after: None,
                code: Some(status.to_string()),
                error_type: Some(t.into()),
            })
        };
        assert!(matches!(
            probe(answer(401, "auth_error")),
            Probe::Rejected { .. }
        ));
        for (s, t) in [
            (401, "None"),
            (400, "expired_key"),
            (429, "throttling_error"),
            (500, "internal_error"),
        ] {
            assert!(
                matches!(probe(answer(s, t)), Probe::Inconclusive { .. }),
                "{s} {t}"
            );
        }
    }

    #[test]
    fn spend_logs_become_buckets_and_events_of_the_token_only() {
        let token = crate::secret::fingerprint::of_value("sk-test-1");
        let other = crate::secret::fingerprint::of_value("sk-test-2");
        let body = serde_json::json!([
            { "request_id": "r1", "api_key": token, "startTime": "2026-11-20T10:00:00Z", "model": "gpt-4o",
              "spend": 0.5, "total_tokens": 100, "status": "success", "requester_ip_address": "203.0.113.9, 10.0.0.1" },
            { "request_id": "r2", "api_key": token, "startTime": "2026-11-20T11:00:00Z", "model": "gpt-4o",
              "spend": 0.0, "total_tokens": 0, "status": "failure",
              "metadata": { "error_information": { "error_code": "401" } } },
            { "request_id": "r3", "api_key": other, "startTime": "2026-11-20T11:00:00Z", "model": "gpt-4o",
              "spend": 9.0, "total_tokens": 9, "status": "success" }
        ]);
        let rows: Vec<serde_json::Value> = serde_json::from_value(body).unwrap();
        let OpOutput::Usage(r) = usage_from_spend_logs(&rows, &token).unwrap() else {
            panic!("usage");
        };
        assert_eq!(r.requests(), 2);
        assert_eq!(r.buckets.len(), 1);
        assert!((r.cost_usd() - 0.5).abs() < 1e-9);
        assert_eq!(r.events[0].source_ip.as_deref(), Some("203.0.113.9"));
        assert_eq!(r.events[1].status(), 403, "an authentication failure");
        assert!(r.events_source.unwrap().per_request);
    }

    #[test]
    fn the_replacement_copies_models_limits_and_metadata() {
        let f = KeyFields {
            models: vec!["gpt-4o".into()],
            max_budget: Some(25.0),
            tpm_limit: Some(1000),
            rpm_limit: Some(10),
            metadata: serde_json::json!({ "team": "support" })
                .as_object()
                .cloned(),
            key_alias: Some("support-bot".into()),
        };
        let b = generate_body("keyfire-rot-1", &f);
        assert_eq!(b["key_alias"], "keyfire-rot-1");
        assert_eq!(b["models"], serde_json::json!(["gpt-4o"]));
        assert_eq!(b["max_budget"], 25.0);
        assert_eq!(b["tpm_limit"], 1000);
        assert_eq!(b["rpm_limit"], 10);
        assert_eq!(b["metadata"]["team"], "support");
        assert_eq!(b["metadata"]["keyfire_replaces"], "support-bot");
    }
}
