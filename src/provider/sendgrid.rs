//! SendGrid (Twilio SendGrid v3 API), with an admin key that holds the `api_keys.*` scopes
//! (`Authorization: Bearer`); `settings.on_behalf_of` adds the `on-behalf-of` header (a
//! subuser's username, or `account-id ID`) to every admin call.
//!
//! | op | request | spec (twilio/sendgrid-oai, vendored in part under `tests/fixtures/spec/sendgrid/`) |
//! |---|---|---|
//! | locate by id | `GET /v3/api_keys/{api_key_id}` (name, id and scopes) | `tsg_api_keys_v3` `GetApiKey` |
//! | locate by name or hint | `GET /v3/api_keys?limit=100` (names and ids), then `GET /v3/api_keys/{id}` for the one match | `ListApiKey`, `GetApiKey` |
//! | list (for `inventory discover`) | `GET /v3/api_keys?limit=100` | `ListApiKey` |
//! | verify | `GET /v3/scopes` with the key itself: 200 alive, 401 dead, anything else inconclusive | `tsg_scopes_v3` `ListScope` |
//! | revoke | `DELETE /v3/api_keys/{api_key_id}` (204; 404 when the id does not exist) | `DeleteApiKey` |
//! | create | `POST /v3/api_keys` `{name, scopes}` with the leaked key's scopes (201 `{api_key, api_key_id, name, scopes}`) | `CreateApiKey` |
//!
//! Facts the spec states and keyfire relies on:
//! - The list has no cursor (`limit` only) and an account holds at most 100 keys (create
//!   answers 403 past that), so `limit=100` reads every key in one page.
//! - The list gives names and ids only; scopes come from `GetApiKey`, whose 200 answer is
//!   `{result: [ApiKeyScopesResponse]}` in the spec (a flat `ApiKeyScopesResponse` is accepted
//!   too). Those scopes are what the key can really do: `inventory` lint's
//!   `scope-beyond-needs` can compare them with `needs` (see [`SendGridProvider::list`]).
//! - A create **without** `scopes` makes a Full Access key. keyfire never sends one: the
//!   replacement carries the leaked key's scopes, read from `GetApiKey`, or the create is
//!   refused.
//! - The key value is `SG.<api_key_id>.<secret>`: the middle segment is the id, which is how a
//!   hint (`SG.abc...wxyz`) is matched against the list and how a stored value is known to be
//!   the located key.
//! - Errors are `{"errors": [{"field", "message"}]}`; `GET /v3/scopes` documents 401 for a
//!   caller without authorization ("authorization required"), the answer to a revoked or
//!   unknown key. A deletion takes "some small propagation delay" to reach every endpoint, so
//!   the proof of revocation retries its probe a few times.
//! - No key has a state: a listed key is active, a revoked one is gone.
//!
//! Usage: SendGrid has no per-key usage API. The audit rules are "not evaluable" from
//! SendGrid itself; gateway logs (`--logs`) are the source, and SendGrid's account-wide
//! statistics (`GET /v3/stats`) are context only, never a per-key figure.

use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::Identity;
use super::traits::{Capabilities, Provider};
use super::{
    KeyListing, KeyState, ListKeys, ListedKey, LocatedKey, Op, OpOutput, Probe, ProviderError,
    Which, enc,
};
use crate::http::{FailureKind, Http, HttpError};
use crate::inventory::{ProviderDef, ProviderKind};
use crate::plan::{RequestPlan, SecretBag, SecretRef};
use crate::secret::Secret;

const DEFAULT_BASE: &str = "https://api.sendgrid.com";
/// An account holds at most 100 keys: one page of 100 is all of them.
const PAGE: u32 = 100;

/// What the leaked key's replacement copies: its scopes, as `GetApiKey` gave them.
#[derive(Debug, Clone, Default)]
struct Template {
    id: Option<String>,
    scopes: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct SendGridProvider {
    base: String,
    on_behalf_of: Option<String>,
    /// The inventory key's `api_key_id`, when it has one.
    old_id: Option<String>,
    /// The scopes the inventory declares for the key: the replacement's scopes when the
    /// leaked key is already gone (a resumed incident that revoked it first) and SendGrid
    /// can no longer say.
    declared: Vec<String>,
    /// Learned from the first lookup of the leaked key.
    template: Arc<Mutex<Template>>,
}

/// `ApiKeyResponse` (list) and `ApiKeyScopesResponse` (get).
#[derive(Deserialize)]
struct ApiKey {
    api_key_id: String,
    name: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct KeyList {
    result: Vec<ApiKey>,
}

/// `GetApiKey`'s answer: the spec's `{result: [..]}`, or a flat object.
#[derive(Deserialize)]
#[serde(untagged)]
enum KeyDetail {
    Wrapped { result: Vec<ApiKey> },
    Flat(ApiKey),
}

impl KeyDetail {
    fn into_key(self, id: &str) -> Result<ApiKey, ProviderError> {
        match self {
            Self::Flat(k) => Ok(k),
            Self::Wrapped { result } => {
                result
                    .into_iter()
                    .find(|k| k.api_key_id == id)
                    .ok_or_else(|| {
                        ProviderError::Malformed(format!(
                            "the answer about key {id} does not name it"
                        ))
                    })
            }
        }
    }
}

#[derive(Deserialize)]
struct Created {
    api_key: String,
    api_key_id: String,
}

impl ApiKey {
    fn located(&self) -> LocatedKey {
        LocatedKey {
            id: self.api_key_id.clone(),
            name: self.name.clone(),
            state: KeyState::Active,
            hint: None,
            created_at: None,
            last_used_at: None,
        }
    }
}

/// The `api_key_id` inside a key value `SG.<id>.<secret>`.
pub(crate) fn id_of_value(value: &str) -> Option<&str> {
    let mut parts = value.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("SG"), Some(id), Some(secret), None) if !id.is_empty() && !secret.is_empty() => {
            Some(id)
        }
        _ => None,
    }
}

/// A hint `SG.<start of the id>...<tail>` matches ids that start with what it shows.
fn hint_matches_id(hint: &str, id: &str) -> bool {
    let Some((prefix, _)) = hint.split_once("...").or_else(|| hint.split_once('…')) else {
        return false;
    };
    let shown = prefix.strip_prefix("SG.").unwrap_or("");
    // The id segment ends at the next dot; a prefix that runs past it names the id whole.
    let shown = shown.split('.').next().unwrap_or("");
    !shown.is_empty() && id.starts_with(shown)
}

/// Read `GET /v3/scopes`' answer to a key: 200 alive, 401 (SendGrid's "authorization
/// required") dead, anything else inconclusive.
fn probe<T>(result: Result<T, HttpError>) -> Probe {
    match result {
        Ok(_) => Probe::Accepted,
        Err(HttpError::Status { status: 401, .. }) => Probe::Rejected {
            status: Some(401),
            signal: "authorization required".into(),
        },
        Err(e) => Probe::inconclusive_from(&e),
    }
}

impl Provider for SendGridProvider {
    const KIND: ProviderKind = ProviderKind::SendGrid;
    // No disable (a scope-strip is not offered), no per-key usage: the audit reads
    // gateway logs. Two keys can live at once, so the rotation has no downtime.
    const CAPABILITIES: Capabilities = Capabilities {
        locate: true,
        verify: true,
        revoke: true,
        create: true,
        ..Capabilities::NONE
    };
    super::listing::lists_keys!();

    fn from_def(def: &ProviderDef) -> Self {
        Self::new(def)
    }

    /// The value `SG.<api_key_id>.<secret>` names its key.
    fn identity(value: &Secret, key_id: Option<&str>) -> Option<Identity> {
        let by = "the api_key_id inside the stored value".to_string();
        Some(match (id_of_value(value.expose()), key_id) {
            (Some(got), Some(id)) if got == id => Identity::Matches { by },
            (Some(_), Some(_)) => Identity::Differs { by },
            (_, None) => Identity::Unknown {
                why: "the key was not located at the provider".into(),
            },
            (None, Some(_)) => Identity::Unknown {
                why: "the stored value is not a SendGrid key (SG.id.secret)".into(),
            },
        })
    }

    /// The provider for one inventory key: its id (when the inventory has it) and a template
    /// of its own.
    fn for_key(self, key: &crate::inventory::Key) -> Self {
        Self {
            old_id: key.provider_key_id.clone(),
            declared: key.scopes.clone(),
            template: Arc::default(),
            ..self
        }
    }

    fn plan(&self, op: &Op) -> Result<RequestPlan, ProviderError> {
        Ok(match op {
            Op::FindReplacement(q) => return self.plan(&q.as_locate()),
            Op::Locate { id: Some(id), .. } => self.admin(RequestPlan::read(
                format!("Look up API key {id} (name and scopes)"),
                "GET",
                self.key_url(id),
            )),
            Op::Locate { name, hint, .. } => {
                let what = name.as_deref().or(hint.as_deref()).unwrap_or("?");
                self.admin(RequestPlan::read(
                    format!("Search the account's API keys for {what}"),
                    "GET",
                    self.list_url(),
                ))
            }
            Op::Verify { which } => {
                let (secret, label) = match which {
                    Which::Old => (SecretRef::OldKey, "old"),
                    Which::New => (SecretRef::NewKey, "new"),
                };
                RequestPlan::read(
                    format!("Authenticate with the {label} key (list its scopes)"),
                    "GET",
                    format!("{}/v3/scopes", self.base),
                )
                .secret_header("Authorization", "Bearer ", secret)
            }
            Op::Revoke { id } => self.admin(
                RequestPlan::write(format!("Delete API key {id}"), "DELETE", self.key_url(id))
                    .destructive()
                    .idempotent(true),
            ),
            Op::Create { name, .. } => {
                let t = self.template();
                let (scopes, summary) = match (&t.scopes, t.id.as_ref().or(self.old_id.as_ref())) {
                    (Some(s), Some(id)) => (
                        serde_json::json!(s),
                        format!(
                            "Create API key {name} with the {} scope(s) of key {id}",
                            s.len()
                        ),
                    ),
                    (None, Some(id)) => (
                        serde_json::Value::Null,
                        if self.declared.is_empty() {
                            format!(
                                "Read the scopes of key {id}, then create API key {name} with them"
                            )
                        } else {
                            format!(
                                "Read the scopes of key {id}, then create API key {name} with them (with the inventory's scopes {} if the key is gone)",
                                self.declared.join(", ")
                            )
                        },
                    ),
                    (_, None) => {
                        return Err(ProviderError::Refused(
                            "the leaked key's scopes are unknown (it was not located): a SendGrid key created without scopes has full access, so keyfire does not create one".into(),
                        ));
                    }
                };
                self.admin(
                    RequestPlan::write(summary, "POST", format!("{}/v3/api_keys", self.base))
                        .json(serde_json::json!({ "name": name, "scopes": scopes })),
                )
            }
            Op::Disable { .. } | Op::Usage { .. } | Op::AuditLog { .. } => {
                return Err(ProviderError::Unsupported {
                    kind: ProviderKind::SendGrid,
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
        match op {
            // A replacement is found by its name; it must not become the template.
            Op::FindReplacement(q) => {
                let list: KeyList = http.send(plan, secrets).await?.json()?;
                Ok(super::one_of(
                    list.result
                        .iter()
                        .filter(|k| k.name.as_deref() == Some(q.name.as_str()))
                        .filter(|k| !q.exclude.contains(&k.api_key_id))
                        .map(ApiKey::located)
                        .collect(),
                ))
            }
            Op::Locate { id: Some(id), .. } => {
                let key = self.get_key(plan, id, http, secrets).await?;
                if let Some(k) = &key {
                    self.learn(k);
                }
                Ok(OpOutput::Located(key.as_ref().map(ApiKey::located)))
            }
            Op::Locate { name, hint, .. } => {
                let list: KeyList = http.send(plan, secrets).await?.json()?;
                let found: Vec<&ApiKey> = list
                    .result
                    .iter()
                    .filter(|k| match name {
                        Some(n) => k.name.as_deref() == Some(n.as_str()),
                        None => hint
                            .as_deref()
                            .is_some_and(|h| hint_matches_id(h, &k.api_key_id)),
                    })
                    .collect();
                if let [one] = found.as_slice() {
                    // Its scopes, for the replacement and the record.
                    return match self.get_key(plan, &one.api_key_id, http, secrets).await? {
                        Some(k) => {
                            self.learn(&k);
                            Ok(OpOutput::Located(Some(k.located())))
                        }
                        None => Ok(OpOutput::Located(None)),
                    };
                }
                Ok(super::one_of(
                    found.into_iter().map(ApiKey::located).collect(),
                ))
            }
            Op::Verify { .. } => Ok(OpOutput::Verified(probe(http.send(plan, secrets).await))),
            Op::Revoke { .. } => match http.send(plan, secrets).await {
                Ok(_) => Ok(OpOutput::Revoked { already: false }),
                Err(e) if e.kind() == FailureKind::NotFound => {
                    Ok(OpOutput::Revoked { already: true })
                }
                Err(e) => Err(e.into()),
            },
            Op::Create { name, .. } => {
                let mut send = plan.clone();
                let scopes_known = plan
                    .body
                    .as_ref()
                    .and_then(|b| b.get("scopes"))
                    .is_some_and(|s| s.is_array());
                if !scopes_known {
                    let id = self
                        .template()
                        .id
                        .or_else(|| self.old_id.clone())
                        .ok_or_else(|| {
                            ProviderError::Refused("the leaked key's scopes are unknown".into())
                        })?;
                    let read = self.admin(RequestPlan::read(
                        format!("Read the scopes of key {id}"),
                        "GET",
                        self.key_url(&id),
                    ));
                    let scopes = match self.get_key(&read, &id, http, secrets).await? {
                        Some(key) => key.scopes.ok_or_else(|| {
                            ProviderError::Malformed(format!(
                                "key {id} was answered without scopes"
                            ))
                        })?,
                        // Revoked before this process looked (contain-first, then a
                        // crash): the inventory's declaration is all that is left.
                        None if !self.declared.is_empty() => self.declared.clone(),
                        None => {
                            return Err(ProviderError::Refused(format!(
                                "key {id} is gone and the inventory declares no scopes for it: a SendGrid key created without scopes has full access, so keyfire does not create one (set the key's scopes in the inventory, or create the replacement by hand)"
                            )));
                        }
                    };
                    send.body = Some(serde_json::json!({ "name": name, "scopes": scopes }));
                }
                let c: Created = http.send(&send, secrets).await?.json()?;
                let value = Secret::new(c.api_key);
                http.redactor().learn(&value);
                Ok(OpOutput::Created {
                    id: c.api_key_id,
                    value,
                })
            }
            Op::Disable { .. } | Op::Usage { .. } | Op::AuditLog { .. } => {
                Err(ProviderError::Unsupported {
                    kind: ProviderKind::SendGrid,
                    op: op.name(),
                })
            }
        }
    }
}

impl SendGridProvider {
    pub fn new(def: &ProviderDef) -> Self {
        let base = def
            .base_url
            .as_deref()
            .unwrap_or(DEFAULT_BASE)
            .trim_end_matches('/');
        Self {
            base: base.strip_suffix("/v3").unwrap_or(base).to_string(),
            on_behalf_of: super::setting(def, "on_behalf_of"),
            old_id: None,
            declared: Vec::new(),
            template: Arc::default(),
        }
    }

    fn admin(&self, plan: RequestPlan) -> RequestPlan {
        let plan = plan.secret_header("Authorization", "Bearer ", SecretRef::AdminCredential);
        match &self.on_behalf_of {
            Some(who) => plan.header("on-behalf-of", who),
            None => plan,
        }
    }

    fn key_url(&self, id: &str) -> String {
        format!("{}/v3/api_keys/{}", self.base, enc(id))
    }

    fn list_url(&self) -> String {
        format!("{}/v3/api_keys?limit={PAGE}", self.base)
    }

    fn template(&self) -> Template {
        self.template.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// The first key this provider looks up is the leaked key: its scopes are the
    /// replacement's.
    fn learn(&self, key: &ApiKey) {
        if let (Some(scopes), Ok(mut t)) = (&key.scopes, self.template.lock())
            && t.scopes.is_none()
        {
            t.id = Some(key.api_key_id.clone());
            t.scopes = Some(scopes.clone());
        }
    }

    async fn get_key(
        &self,
        plan: &RequestPlan,
        id: &str,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<Option<ApiKey>, ProviderError> {
        let mut one = plan.clone();
        one.url = self.key_url(id);
        match http.send(&one, secrets).await {
            Ok(r) => Ok(Some(r.json::<KeyDetail>()?.into_key(id)?)),
            Err(e) if e.kind() == FailureKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// `inventory discover`: every key of the account with its real scopes (one `GetApiKey` per
/// key: the list has names and ids only). Read-only.
impl ListKeys for SendGridProvider {
    fn list_plan(&self) -> Result<RequestPlan, ProviderError> {
        Ok(self.admin(RequestPlan::read(
            "List the account's API keys (names and ids), then read each key's scopes",
            "GET",
            self.list_url(),
        )))
    }

    async fn list_keys(
        &self,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<KeyListing, ProviderError> {
        let list: KeyList = http.send(plan, secrets).await?.json()?;
        let reads = list.result.iter().map(|k| async move {
            let mut one = plan.clone();
            one.url = self.key_url(&k.api_key_id);
            one.summary = format!("Read the scopes of API key {}", k.api_key_id);
            match http.send(&one, secrets).await {
                Ok(r) => Ok(Some(r.json::<KeyDetail>()?.into_key(&k.api_key_id)?)),
                // Deleted between the list and this read.
                Err(e) if e.kind() == FailureKind::NotFound => Ok(None),
                Err(e) => Err(ProviderError::from(e)),
            }
        });
        let details = super::listing::bounded(super::listing::LIST_CONCURRENCY, reads).await;
        let calls = u32::try_from(details.len() + 1).unwrap_or(u32::MAX);
        let mut keys = Vec::with_capacity(details.len());
        for d in details {
            if let Some(k) = d? {
                keys.push(ListedKey {
                    id: k.api_key_id.clone(),
                    name: k.name.clone(),
                    // SendGrid shows nothing of a value; the id is its middle part.
                    hint: None,
                    state: KeyState::Active,
                    created_at: None,
                    last_used_at: None,
                    owner: None,
                    within: self.on_behalf_of.as_ref().map(|s| format!("subuser {s}")),
                    scopes: k.scopes,
                });
            }
        }
        Ok(KeyListing {
            keys,
            calls,
            reports_scopes: true,
            scope: match &self.on_behalf_of {
                Some(s) => format!("subuser {s}"),
                None => "the account".into(),
            },
            notes: vec!["SendGrid lists no creation or last-use time for API keys".into()],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Origin;

    fn provider(settings: serde_json::Value) -> SendGridProvider {
        SendGridProvider::new(&ProviderDef {
            id: "mail".into(),
            kind: ProviderKind::SendGrid,
            admin_credential: None,
            base_url: None,
            settings: settings.as_object().cloned().unwrap_or_default(),
            origin: Origin { file: 0, line: 1 },
        })
    }

    #[test]
    fn the_id_is_the_middle_segment_of_the_value() {
        assert_eq!(id_of_value("SG.abc123.secretpart"), Some("abc123"));
        assert_eq!(id_of_value("SG..secret"), None);
        assert_eq!(id_of_value("sk-abc.def"), None);
        assert!(hint_matches_id("SG.abc...wxyz", "abc123"));
        assert!(!hint_matches_id("SG.abd...wxyz", "abc123"));
        assert!(
            !hint_matches_id("SG....wxyz", "abc123"),
            "an empty prefix names no key"
        );
    }

    #[test]
    fn only_a_401_proves_a_key_dead() {
        let answer = |status| -> Result<(), HttpError> {
            Err(HttpError::Status {
                kind: FailureKind::ClientError,
                status,
                reason: "x".into(),
                retry_after: None,
                code: None,
                error_type: None,
            })
        };
        assert!(matches!(probe(answer(401)), Probe::Rejected { .. }));
        for s in [403, 404, 429, 500] {
            assert!(
                matches!(probe(answer(s)), Probe::Inconclusive { .. }),
                "{s}"
            );
        }
        assert!(matches!(probe(Ok::<(), HttpError>(())), Probe::Accepted));
    }

    #[test]
    fn a_create_never_goes_out_without_scopes() {
        let p = provider(serde_json::json!({ "on_behalf_of": "sub-user" }));
        let create = Op::Create {
            name: "keyfire-rot".into(),
            idempotency_key: "i".into(),
        };
        assert!(matches!(p.plan(&create), Err(ProviderError::Refused(_))));
        p.learn(&ApiKey {
            api_key_id: "abc".into(),
            name: Some("mailer".into()),
            scopes: Some(vec!["mail.send".into()]),
        });
        let plan = p.plan(&create).unwrap();
        assert_eq!(
            plan.body,
            Some(serde_json::json!({ "name": "keyfire-rot", "scopes": ["mail.send"] }))
        );
        assert!(plan.render().contains("on-behalf-of: sub-user"));
        // A later lookup (the replacement's) does not replace the leaked key's scopes.
        p.learn(&ApiKey {
            api_key_id: "new".into(),
            name: None,
            scopes: Some(vec!["full".into()]),
        });
        assert_eq!(p.template().id.as_deref(), Some("abc"));
    }
}
