//! Anthropic, through the Admin API (an `sk-ant-admin01-` key, `x-api-key` and
//! `anthropic-version: 2023-06-01` on every call).
//!
//! | op | request | spec (API reference) |
//! |---|---|---|
//! | locate by id | `GET /v1/organizations/api_keys/{id}` | [Get API Key](https://platform.claude.com/docs/en/api/admin/api_keys/retrieve) |
//! | locate by hint or name | `GET /v1/organizations/api_keys?limit=1000&after_id=` (`partial_key_hint`, `name`) | [List API Keys](https://platform.claude.com/docs/en/api/admin/api_keys/list) |
//! | verify | `GET /v1/models?limit=1` with the key itself: see "Proof of revocation" below | [List Models](https://platform.claude.com/docs/en/api/models/list), [Errors](https://platform.claude.com/docs/en/api/errors) |
//! | disable | `POST /v1/organizations/api_keys/{id}` `{"status":"inactive"}` (reversible) | [Update API Key](https://platform.claude.com/docs/en/api/admin/api_keys/update) |
//! | revoke | `POST /v1/organizations/api_keys/{id}` `{"status":"archived"}` | [Update API Key](https://platform.claude.com/docs/en/api/admin/api_keys/update) |
//! | list keys (`inventory discover`) | `GET /v1/organizations/api_keys?limit=1000&after_id=` to the last page (`created_by`, `workspace_id`, `status`; no scopes, no last use) | [List API Keys](https://platform.claude.com/docs/en/api/admin/api_keys/list) |
//! | usage | `GET /v1/organizations/usage_report/messages?api_key_ids[]=&bucket_width=1d&page=` | [Get Messages Usage Report](https://platform.claude.com/docs/en/api/admin/usage_report/retrieve_messages) |
//!
//! The fields keyfire reads from each answer are listed, with these links, in
//! `tests/fixtures/spec/api-fields.json`; the contract suite checks the simulator against them.
//!
//! The Admin API cannot create or delete keys: the replacement is created by the operator in
//! the Console and pasted into keyfire (the engine's manual create), and "revoke" archives the
//! key. The usage report has tokens but no request counts and no cost per key.
//!
//! Proof of revocation (docs.anthropic.com/claude/reference/errors-and-rate-limits, "HTTP
//! errors"): only HTTP 401 with `error.type = "authentication_error"` ("There's an issue with
//! your API key") says the key is dead; 403 `permission_error` is a live key without permission for the call (restricted,
//! alive). Anything else (429 `rate_limit_error`, 500 `api_error`, 529 `overloaded_error`,
//! network) is inconclusive. A name or hint matching several keys returns every candidate.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;

use super::listing::{KeyListing, ListKeys, ListedKey, follow_cursor};
use super::traits::{Capabilities, Provider};
use super::{
    KeyState, LocatedKey, Op, OpOutput, Probe, ProviderError, UsageBucket, UsageReport, Which,
    base_of, enc, hint_matches, one_of, setting,
};
use crate::http::{FailureKind, Http, HttpError};
use crate::inventory::{ProviderDef, ProviderKind};
use crate::plan::{RequestPlan, SecretBag, SecretRef};

const DEFAULT_BASE: &str = "https://api.anthropic.com";
/// The API version keyfire was written against; Anthropic requires the header on every call.
pub(super) const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Keys per list page (the API allows 1 to 1000).
const PAGE: u32 = 1000;
/// Daily buckets per usage page (the API allows up to 31 for `1d`).
const USAGE_PAGE: u32 = 31;
const MAX_PAGES: u32 = 10_000;

#[derive(Debug, Clone)]
pub struct AnthropicProvider {
    base: String,
    workspace: Option<String>,
}

#[derive(Deserialize)]
struct ApiKey {
    id: String,
    name: Option<String>,
    partial_key_hint: Option<String>,
    status: String,
    created_at: Option<String>,
    /// Who created the key (`{id, type}`, type `user` or ...): the owner discovery reports.
    #[serde(default)]
    created_by: Option<Actor>,
    /// `null` for the default workspace.
    #[serde(default)]
    workspace_id: Option<String>,
}

#[derive(Deserialize)]
struct Actor {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct KeyList {
    data: Vec<ApiKey>,
    has_more: bool,
    last_id: Option<String>,
}

#[derive(Deserialize, Default)]
struct CacheCreation {
    #[serde(default)]
    ephemeral_1h_input_tokens: u64,
    #[serde(default)]
    ephemeral_5m_input_tokens: u64,
}

impl UsageResult {
    /// Every kind of input token, saturating (a hostile answer cannot wrap the sum).
    fn input_tokens(&self) -> u64 {
        let cache = self.cache_creation.as_ref();
        [
            self.uncached_input_tokens,
            self.cache_read_input_tokens,
            cache.map_or(0, |c| c.ephemeral_1h_input_tokens),
            cache.map_or(0, |c| c.ephemeral_5m_input_tokens),
        ]
        .into_iter()
        .fold(0u64, u64::saturating_add)
    }
}

#[derive(Deserialize)]
struct UsageResult {
    #[serde(default)]
    uncached_input_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: u64,
    #[serde(default)]
    cache_creation: Option<CacheCreation>,
    #[serde(default)]
    output_tokens: u64,
}

#[derive(Deserialize)]
struct UsageBucketWire {
    starting_at: DateTime<Utc>,
    ending_at: DateTime<Utc>,
    results: Vec<UsageResult>,
}

#[derive(Deserialize)]
struct UsagePage {
    data: Vec<UsageBucketWire>,
    has_more: bool,
    next_page: Option<String>,
}

impl ApiKey {
    fn located(&self) -> LocatedKey {
        LocatedKey {
            id: self.id.clone(),
            name: self.name.clone(),
            state: state_of(&self.status),
            hint: self.partial_key_hint.clone(),
            created_at: self.created_at.clone(),
            last_used_at: None,
        }
    }
}

impl ApiKey {
    /// The key as discovery reports it. The Admin API reports neither scopes nor last use.
    fn listed(&self) -> ListedKey {
        ListedKey {
            id: self.id.clone(),
            name: self.name.clone(),
            hint: self.partial_key_hint.clone(),
            state: state_of(&self.status),
            created_at: self
                .created_at
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc)),
            last_used_at: None,
            owner: self.created_by.as_ref().and_then(|a| {
                a.id.as_ref().map(|id| match a.kind.as_deref() {
                    Some(kind) => format!("{kind} {id}"),
                    None => id.clone(),
                })
            }),
            within: Some(match &self.workspace_id {
                Some(w) => format!("workspace {w}"),
                None => "the default workspace".into(),
            }),
            scopes: None,
        }
    }
}

/// `GET /v1/organizations/api_keys` (every status), followed by `after_id=<last_id>` while
/// `has_more`; `settings.workspace_id` narrows it to one workspace.
impl ListKeys for AnthropicProvider {
    fn list_plan(&self) -> Result<RequestPlan, ProviderError> {
        Ok(Self::admin(RequestPlan::read(
            match &self.workspace {
                Some(w) => format!("List the API keys of workspace {w}"),
                None => "List the organization's API keys".to_string(),
            },
            "GET",
            self.keys_url(None),
        )))
    }

    async fn list_keys(
        &self,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<KeyListing, ProviderError> {
        let (keys, calls) =
            follow_cursor::<ApiKey>(http, secrets, plan, |last| self.keys_url(Some(last))).await?;
        Ok(KeyListing {
            keys: keys.iter().map(ApiKey::listed).collect(),
            calls,
            reports_scopes: false,
            scope: match &self.workspace {
                Some(w) => format!("workspace {w}"),
                None => "the organization".into(),
            },
            notes: vec![
                "Anthropic's Admin API reports neither a key's permissions nor its last use: scopes are not compared".into(),
            ],
        })
    }
}

/// Read `/v1/models`' answer to a key (see the module's "Proof of revocation").
fn probe<T>(result: Result<T, HttpError>) -> Probe {
    let e = match result {
        Ok(_) => return Probe::Accepted,
        Err(e) => e,
    };
    match &e {
        HttpError::Status {
            status: 401,
            error_type: Some(t),
            ..
        } if t == "authentication_error" => Probe::Rejected {
            status: Some(401),
            signal: "authentication_error".into(),
        },
        HttpError::Status {
            status: 403,
            error_type,
            ..
        } => Probe::Restricted {
            status: Some(403),
            reason: error_type
                .clone()
                .unwrap_or_else(|| "permission_error".into()),
        },
        _ => Probe::inconclusive_from(&e),
    }
}

/// `inactive` is a reversible disable; `archived` and `expired` keys can never authenticate
/// again, which is all a revocation has to achieve.
fn state_of(status: &str) -> KeyState {
    match status {
        "active" => KeyState::Active,
        "inactive" => KeyState::Disabled,
        _ => KeyState::Revoked,
    }
}

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The report returns only buckets that end before `ending_at`: ask up to the next UTC
/// midnight so that today's (incomplete) bucket, often the one with the abuse, is included.
fn end_of_day(t: &DateTime<Utc>) -> DateTime<Utc> {
    let midnight = t.date_naive().and_time(chrono::NaiveTime::MIN).and_utc();
    if midnight == *t {
        midnight
    } else {
        midnight + chrono::Duration::days(1)
    }
}

impl Provider for AnthropicProvider {
    const KIND: ProviderKind = ProviderKind::Anthropic;
    // The Admin API can read, disable and archive keys but not create them: the
    // replacement is made in the Console and pasted into keyfire.
    const CAPABILITIES: Capabilities = Capabilities {
        locate: true,
        verify: true,
        disable: true,
        revoke: true,
        create: false,
        usage: true,
        audit: false,
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
        Ok(match op {
            Op::FindReplacement(q) => return self.plan(&q.as_locate()),
            Op::Locate { id: Some(id), .. } => Self::admin(RequestPlan::read(
                format!("Look up API key {id}"),
                "GET",
                format!("{b}/v1/organizations/api_keys/{}", enc(id)),
            )),
            Op::Locate { name, hint, .. } => {
                let what = name.as_deref().or(hint.as_deref()).unwrap_or("?");
                Self::admin(RequestPlan::read(
                    format!("Search the organization's API keys for {what}"),
                    "GET",
                    self.keys_url(None),
                ))
            }
            Op::Verify { which } => {
                let (secret, label) = match which {
                    Which::Old => (SecretRef::OldKey, "old"),
                    Which::New => (SecretRef::NewKey, "new"),
                };
                Self::versioned(
                    RequestPlan::read(
                        format!("Authenticate with the {label} key (list models)"),
                        "GET",
                        format!("{b}/v1/models?limit=1"),
                    )
                    .secret_header("x-api-key", "", secret),
                )
            }
            Op::Disable { id } => self.status_change(
                id,
                "inactive",
                format!("Set API key {id} inactive (reversible)"),
            ),
            Op::Revoke { id } => self
                .status_change(
                    id,
                    "archived",
                    format!("Archive API key {id} (it can never be used again)"),
                )
                .destructive(),
            Op::Usage { id, start, end } => Self::admin(RequestPlan::read(
                format!(
                    "Fetch the messages usage report of key {id} from {} to {}",
                    start.format("%Y-%m-%d %H:%M"),
                    end.format("%Y-%m-%d %H:%M")
                ),
                "GET",
                format!(
                    "{b}/v1/organizations/usage_report/messages?starting_at={}&ending_at={}&bucket_width=1d&api_key_ids[]={}&limit={USAGE_PAGE}",
                    enc(&rfc3339(start)),
                    enc(&rfc3339(&end_of_day(end))),
                    enc(id)
                ),
            )),
            Op::Create { .. } | Op::AuditLog { .. } => {
                return Err(ProviderError::Unsupported {
                    kind: ProviderKind::Anthropic,
                    op: op.name(),
                });
            }
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
impl AnthropicProvider {
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
                Ok(r) => Ok(OpOutput::Located(Some(r.json::<ApiKey>()?.located()))),
                Err(e) if e.kind() == FailureKind::NotFound => Ok(OpOutput::Located(None)),
                Err(e) => Err(e.into()),
            },
            Op::Locate { name, hint, .. } => {
                let mut page = plan.clone();
                let mut found = Vec::new();
                for _ in 0..MAX_PAGES {
                    let list: KeyList = http.send(&page, secrets).await?.json()?;
                    found.extend(
                        list.data
                            .iter()
                            .filter(|k| match name {
                                Some(n) => k.name.as_deref() == Some(n),
                                None => hint
                                    .as_deref()
                                    .zip(k.partial_key_hint.as_deref())
                                    .is_some_and(|(h, r)| hint_matches(h, r)),
                            })
                            .map(ApiKey::located),
                    );
                    match (list.has_more, list.last_id) {
                        (true, Some(last)) => page.url = self.keys_url(Some(&last)),
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
            Op::Verify { .. } => Ok(OpOutput::Verified(probe(http.send(plan, secrets).await))),
            Op::Disable { .. } => {
                let k: ApiKey = http.send(plan, secrets).await?.json()?;
                match state_of(&k.status) {
                    KeyState::Active => Err(ProviderError::Malformed(format!(
                        "key {} is still active after being set inactive",
                        k.id
                    ))),
                    _ => Ok(OpOutput::Disabled),
                }
            }
            Op::Revoke { .. } => match http.send(plan, secrets).await {
                Ok(r) => {
                    let k: ApiKey = r.json()?;
                    if k.status != "archived" {
                        return Err(ProviderError::Malformed(format!(
                            "key {} is {} after being archived",
                            k.id, k.status
                        )));
                    }
                    Ok(OpOutput::Revoked { already: false })
                }
                Err(e) if e.kind() == FailureKind::NotFound => {
                    Ok(OpOutput::Revoked { already: true })
                }
                Err(e) => Err(e.into()),
            },
            Op::Usage { .. } => {
                let mut report = UsageReport::default();
                let mut page = plan.clone();
                for _ in 0..MAX_PAGES {
                    let p: UsagePage = http.send(&page, secrets).await?.json()?;
                    report.pages += 1;
                    for b in p.data {
                        let mut bucket = UsageBucket {
                            start: b.starting_at,
                            end: b.ending_at,
                            // The usage report counts tokens, not requests.
                            requests: 0,
                            input_tokens: 0,
                            output_tokens: 0,
                            cost_usd: 0.0,
                        };
                        for r in b.results {
                            bucket.input_tokens =
                                bucket.input_tokens.saturating_add(r.input_tokens());
                            bucket.output_tokens =
                                bucket.output_tokens.saturating_add(r.output_tokens);
                        }
                        report.buckets.push(bucket);
                    }
                    match (p.has_more, p.next_page) {
                        (true, Some(token)) => {
                            page.url = format!("{}&page={}", plan.url, enc(&token))
                        }
                        (true, None) => {
                            return Err(ProviderError::Malformed(
                                "a usage page says has_more but has no next_page".into(),
                            ));
                        }
                        (false, _) => return Ok(OpOutput::Usage(report)),
                    }
                }
                Err(ProviderError::Malformed(format!(
                    "the usage report did not end after {MAX_PAGES} pages"
                )))
            }
            Op::Create { .. } | Op::AuditLog { .. } => Err(ProviderError::Unsupported {
                kind: ProviderKind::Anthropic,
                op: op.name(),
            }),
        }
    }
}

impl AnthropicProvider {
    pub fn new(def: &ProviderDef) -> Self {
        Self {
            base: base_of(def, DEFAULT_BASE),
            workspace: setting(def, "workspace_id"),
        }
    }

    fn versioned(plan: RequestPlan) -> RequestPlan {
        plan.header("anthropic-version", ANTHROPIC_VERSION)
    }

    fn admin(plan: RequestPlan) -> RequestPlan {
        Self::versioned(plan.secret_header("x-api-key", "", SecretRef::AdminCredential))
    }

    fn keys_url(&self, after: Option<&str>) -> String {
        let mut url = format!("{}/v1/organizations/api_keys?limit={PAGE}", self.base);
        if let Some(w) = &self.workspace {
            url.push_str(&format!("&workspace_id={}", enc(w)));
        }
        if let Some(after) = after {
            url.push_str(&format!("&after_id={}", enc(after)));
        }
        url
    }

    fn status_change(&self, id: &str, status: &str, summary: String) -> RequestPlan {
        Self::admin(
            RequestPlan::write(
                summary,
                "POST",
                format!("{}/v1/organizations/api_keys/{}", self.base, enc(id)),
            )
            .json(serde_json::json!({ "status": status }))
            // Setting a fixed status twice has the effect of setting it once.
            .idempotent(true),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Origin;

    #[test]
    fn input_tokens_saturate_instead_of_wrapping() {
        let r: UsageResult = serde_json::from_value(serde_json::json!({
            "uncached_input_tokens": u64::MAX,
            "cache_read_input_tokens": 7,
            "cache_creation": { "ephemeral_1h_input_tokens": u64::MAX, "ephemeral_5m_input_tokens": 1 },
            "output_tokens": 3
        }))
        .unwrap();
        assert_eq!(r.input_tokens(), u64::MAX);
    }

    fn answer(status: u16, error_type: &str) -> Result<(), HttpError> {
        Err(HttpError::Status {
            kind: FailureKind::ClientError,
            status,
            reason: "x".into(),
            retry_after: None,
            code: None,
            error_type: Some(error_type.into()),
        })
    }

    #[test]
    fn only_401_authentication_error_proves_a_key_dead() {
        assert!(matches!(
            probe(answer(401, "authentication_error")),
            Probe::Rejected {
                status: Some(401),
                ..
            }
        ));
        let restricted = probe(answer(403, "permission_error"));
        assert!(restricted.alive(), "{restricted:?}");
        for other in [
            probe(answer(401, "invalid_request_error")),
            probe(answer(429, "rate_limit_error")),
            probe(answer(529, "overloaded_error")),
            probe(answer(500, "api_error")),
        ] {
            assert!(matches!(other, Probe::Inconclusive { .. }), "{other:?}");
        }
    }

    fn provider() -> AnthropicProvider {
        AnthropicProvider::new(&ProviderDef {
            id: "claude".into(),
            kind: ProviderKind::Anthropic,
            admin_credential: None,
            base_url: None,
            settings: Default::default(),
            origin: Origin { file: 0, line: 1 },
        })
    }

    #[test]
    fn every_plan_carries_the_version_header_and_secret_placeholders_only() {
        let p = provider();
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        for op in [
            Op::Locate {
                id: None,
                name: None,
                hint: Some("sk-ant-api03-...igAA".into()),
            },
            Op::Verify { which: Which::Old },
            Op::Disable {
                id: "apikey_1".into(),
            },
            Op::Revoke {
                id: "apikey_1".into(),
            },
            Op::Usage {
                id: "apikey_1".into(),
                start,
                end: start,
            },
        ] {
            let plan = p.plan(&op).unwrap();
            let text = plan.render();
            assert!(text.contains("anthropic-version: 2023-06-01"), "{text}");
            assert!(text.contains("x-api-key: ["), "{text}");
            assert!(plan.url.starts_with("https://api.anthropic.com/v1/"));
        }
        let revoke = p
            .plan(&Op::Revoke {
                id: "apikey_1".into(),
            })
            .unwrap();
        assert_eq!(
            revoke.body,
            Some(serde_json::json!({ "status": "archived" }))
        );
        assert!(revoke.destructive && revoke.idempotent);
        let usage = p
            .plan(&Op::Usage {
                id: "apikey_1".into(),
                start,
                end: start,
            })
            .unwrap();
        assert!(usage.url.contains("starting_at=2023-11-14T22%3A13%3A20Z"));
        assert!(usage.url.contains("api_key_ids[]=apikey_1"));
        assert!(matches!(
            p.plan(&Op::Create {
                name: "n".into(),
                idempotency_key: "i".into()
            }),
            Err(ProviderError::Unsupported { .. })
        ));
    }

    #[test]
    fn archived_and_expired_keys_count_as_revoked() {
        assert_eq!(state_of("active"), KeyState::Active);
        assert_eq!(state_of("inactive"), KeyState::Disabled);
        assert_eq!(state_of("archived"), KeyState::Revoked);
        assert_eq!(state_of("expired"), KeyState::Revoked);
    }
}
