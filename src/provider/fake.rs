//! The `fake` provider: keyfire's own loopback key service (see `sim::fake_api` for the
//! server and its documented API). It exercises every capability the real providers have,
//! so the engine, drills and the training environment run end to end without the network.
//!
//! Its spec is keyfire's own: the table in `sim::fake_api`'s module documentation.
//!
//! | op | request | spec (`sim::fake_api` table row) |
//! |---|---|---|
//! | locate by id | `GET /v1/keys/{id}` | `GET /v1/keys/{id}` |
//! | locate by hint or name | `GET /v1/keys?limit=20&after=` | `GET /v1/keys?limit=&after=` |
//! | verify | `GET /v1/me` with the key itself (see below) | `GET /v1/me` |
//! | disable | `POST /v1/keys/{id}/disable` | `POST /v1/keys/{id}/disable` |
//! | revoke | `DELETE /v1/keys/{id}` | `DELETE /v1/keys/{id}` |
//! | create | `POST /v1/keys` `{name}` with `Idempotency-Key` | `POST /v1/keys` |
//! | usage | `GET /v1/usage?key_id=&start_time=&end_time=&limit=&page=` | `GET /v1/usage` |
//!
//! Proof of revocation (`sim::fake_api`'s documented answers): only HTTP 401 with
//! `error.code = "invalid_key"` from `GET /v1/me` says the key is dead; 403 is a live key
//! that may not make the call; anything else is inconclusive. A name or hint matching more
//! than one key returns every candidate.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::traits::{Capabilities, Provider};
use super::{
    KeyState, LocatedKey, Op, OpOutput, Probe, ProviderError, UsageBucket, UsageReport, Which, enc,
    hint_matches, one_of,
};
use crate::http::{FailureKind, Http, HttpError};
use crate::inventory::ProviderDef;
use crate::inventory::ProviderKind;
use crate::plan::{RequestPlan, SecretBag, SecretRef};
use crate::secret::Secret;

const DEFAULT_BASE: &str = "http://127.0.0.1:7878";
const PAGE: u32 = 20;

#[derive(Debug, Clone)]
pub struct FakeProvider {
    base: String,
}

#[derive(Deserialize)]
struct KeyObject {
    id: String,
    name: Option<String>,
    redacted_value: Option<String>,
    status: String,
    created_at: Option<i64>,
}

#[derive(Deserialize)]
struct KeyList {
    data: Vec<KeyObject>,
    has_more: bool,
    last_id: Option<String>,
}

#[derive(Deserialize)]
struct Created {
    id: String,
    value: String,
}

#[derive(Deserialize)]
struct UsagePage {
    data: Vec<UsageBucketWire>,
    has_more: bool,
    next_page: Option<String>,
}

#[derive(Deserialize)]
struct UsageBucketWire {
    start_time: i64,
    end_time: i64,
    requests: u64,
    input_tokens: u64,
    output_tokens: u64,
    cost_usd: f64,
}

fn ts(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0)
}

impl KeyObject {
    fn located(self) -> LocatedKey {
        LocatedKey {
            state: if self.status == "active" {
                KeyState::Active
            } else {
                KeyState::Disabled
            },
            id: self.id,
            name: self.name,
            hint: self.redacted_value,
            created_at: self.created_at.and_then(ts).map(|t| t.to_rfc3339()),
            last_used_at: None,
        }
    }
}

impl Provider for FakeProvider {
    const KIND: ProviderKind = ProviderKind::Fake;
    // Everything the real providers can do, so that drills and the training environment
    // exercise every step.
    const CAPABILITIES: Capabilities = Capabilities {
        locate: true,
        verify: true,
        disable: true,
        revoke: true,
        create: true,
        usage: true,
        audit: false,
        create_idempotent: true,
        single_live_key: false,
        usage_destroyed_by_revoke: false,
    };

    fn from_def(def: &ProviderDef) -> Self {
        Self::new(def)
    }

    fn plan(&self, op: &Op) -> Result<RequestPlan, ProviderError> {
        let b = &self.base;
        Ok(match op {
            Op::FindReplacement(q) => return self.plan(&q.as_locate()),
            Op::Locate { id: Some(id), .. } => self.admin(RequestPlan::read(
                format!("Look up key {id}"),
                "GET",
                format!("{b}/v1/keys/{}", enc(id)),
            )),
            Op::Locate { name, hint, .. } => {
                let what = name.as_deref().or(hint.as_deref()).unwrap_or("?");
                self.admin(RequestPlan::read(
                    format!("Search the key list for {what}"),
                    "GET",
                    format!("{b}/v1/keys?limit={PAGE}"),
                ))
            }
            Op::Verify { which } => {
                let (secret, label) = match which {
                    Which::Old => (SecretRef::OldKey, "old"),
                    Which::New => (SecretRef::NewKey, "new"),
                };
                RequestPlan::read(
                    format!("Authenticate with the {label} key"),
                    "GET",
                    format!("{b}/v1/me"),
                )
                .secret_header("Authorization", "Bearer ", secret)
            }
            Op::Disable { id } => self.admin(
                RequestPlan::write(
                    format!("Disable key {id}"),
                    "POST",
                    format!("{b}/v1/keys/{}/disable", enc(id)),
                )
                .idempotent(true),
            ),
            Op::Revoke { id } => self.admin(
                RequestPlan::write(
                    format!("Delete key {id}"),
                    "DELETE",
                    format!("{b}/v1/keys/{}", enc(id)),
                )
                .destructive()
                .idempotent(true),
            ),
            Op::Create {
                name,
                idempotency_key,
            } => self.admin(
                RequestPlan::write(
                    format!("Create replacement key {name}"),
                    "POST",
                    format!("{b}/v1/keys"),
                )
                .header("Idempotency-Key", idempotency_key)
                .json(serde_json::json!({ "name": name }))
                // The server replays the same key for the same Idempotency-Key.
                .idempotent(true),
            ),
            Op::Usage { id, start, end } => self.admin(RequestPlan::read(
                format!(
                    "Fetch usage of {id} from {} to {}",
                    start.format("%Y-%m-%d %H:%M"),
                    end.format("%Y-%m-%d %H:%M")
                ),
                "GET",
                format!(
                    "{b}/v1/usage?key_id={}&start_time={}&end_time={}&limit=7",
                    enc(id),
                    start.timestamp(),
                    end.timestamp()
                ),
            )),
            Op::AuditLog { .. } => {
                return Err(ProviderError::Unsupported {
                    kind: crate::inventory::ProviderKind::Fake,
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
impl FakeProvider {
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
                Ok(r) => Ok(OpOutput::Located(Some(r.json::<KeyObject>()?.located()))),
                Err(e) if e.kind() == FailureKind::NotFound => Ok(OpOutput::Located(None)),
                Err(e) => Err(e.into()),
            },
            Op::Locate { name, hint, .. } => {
                let mut page = plan.clone();
                let mut found = Vec::new();
                loop {
                    let list: KeyList = http.send(&page, secrets).await?.json()?;
                    for k in list.data {
                        let by_name = name
                            .as_deref()
                            .is_some_and(|n| k.name.as_deref() == Some(n));
                        let by_hint = name.is_none()
                            && hint
                                .as_deref()
                                .zip(k.redacted_value.as_deref())
                                .is_some_and(|(h, r)| hint_matches(h, r));
                        if by_name || by_hint {
                            found.push(k.located());
                        }
                    }
                    match (list.has_more, list.last_id) {
                        (true, Some(last)) => {
                            page.url =
                                format!("{}/v1/keys?limit={PAGE}&after={}", self.base, enc(&last))
                        }
                        _ => return Ok(one_of(found)),
                    }
                }
            }
            Op::Verify { .. } => Ok(OpOutput::Verified(match http.send(plan, secrets).await {
                Ok(_) => Probe::Accepted,
                Err(HttpError::Status {
                    status: 401,
                    code: Some(code),
                    ..
                }) if code == "invalid_key" => Probe::Rejected {
                    status: Some(401),
                    signal: code,
                },
                Err(HttpError::Status {
                    status: 403,
                    reason,
                    ..
                }) => Probe::Restricted {
                    status: Some(403),
                    reason,
                },
                Err(e) => Probe::inconclusive_from(&e),
            })),
            Op::Disable { .. } => {
                let k: KeyObject = http.send(plan, secrets).await?.json()?;
                if k.status == "active" {
                    return Err(ProviderError::Malformed(format!(
                        "key {} is still active after disable",
                        k.id
                    )));
                }
                Ok(OpOutput::Disabled)
            }
            Op::Revoke { .. } => match http.send(plan, secrets).await {
                Ok(_) => Ok(OpOutput::Revoked { already: false }),
                Err(e) if e.kind() == FailureKind::NotFound => {
                    Ok(OpOutput::Revoked { already: true })
                }
                Err(e) => Err(e.into()),
            },
            Op::Create { .. } => {
                let c: Created = http.send(plan, secrets).await?.json()?;
                let value = Secret::new(c.value);
                http.redactor().learn(&value);
                Ok(OpOutput::Created { id: c.id, value })
            }
            Op::Usage { .. } => {
                let mut report = UsageReport::default();
                let mut page = plan.clone();
                loop {
                    let p: UsagePage = http.send(&page, secrets).await?.json()?;
                    report.pages += 1;
                    for b in p.data {
                        let (Some(start), Some(end)) = (ts(b.start_time), ts(b.end_time)) else {
                            return Err(ProviderError::Malformed(
                                "usage bucket with an invalid timestamp".into(),
                            ));
                        };
                        report.buckets.push(UsageBucket {
                            start,
                            end,
                            requests: b.requests,
                            input_tokens: b.input_tokens,
                            output_tokens: b.output_tokens,
                            cost_usd: b.cost_usd,
                        });
                    }
                    match (p.has_more, p.next_page) {
                        (true, Some(next)) => {
                            page.url = format!("{}&page={}", plan.url, enc(&next))
                        }
                        _ => return Ok(OpOutput::Usage(report)),
                    }
                }
            }
            Op::AuditLog { .. } => Err(ProviderError::Unsupported {
                kind: crate::inventory::ProviderKind::Fake,
                op: op.name(),
            }),
        }
    }
}

impl FakeProvider {
    pub fn new(def: &ProviderDef) -> Self {
        let base = def
            .base_url
            .clone()
            .unwrap_or_else(|| DEFAULT_BASE.to_string());
        Self {
            base: base.trim_end_matches('/').to_string(),
        }
    }

    fn admin(&self, plan: RequestPlan) -> RequestPlan {
        plan.secret_header("Authorization", "Bearer ", SecretRef::AdminCredential)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_match_on_prefix_and_tail() {
        assert!(hint_matches("fk-...Q2x7", "fk-...Q2x7"));
        assert!(hint_matches("fk-...2x7", "fk-...Q2x7"));
        assert!(!hint_matches("fk-...Q2x8", "fk-...Q2x7"));
        assert!(!hint_matches("sk-...Q2x7", "fk-...Q2x7"));
    }
}
