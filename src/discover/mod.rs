//! `inventory discover`: the keys each provider holds, compared with the inventory.
//!
//! - **shadow keys**: at the provider, in no inventory entry;
//! - **gone**: in the inventory, no longer at the provider;
//! - **drift**: the provider says something the inventory contradicts (the key is disabled
//!   or revoked there, its hint differs, or its scopes differ where the provider reports
//!   scopes).
//!
//! Every call is a read plan sent through a client built in drill mode, and the provider
//! dispatcher refuses any plan that is not a read: discovery cannot change anything at a
//! provider. A provider whose listing fails is reported as such, never as clean.

mod compare;
pub mod write;

use std::time::Instant;

use serde::Serialize;

pub use compare::{Difference, Drift, Gone, Shadow, Unmatched, compare};

use crate::http::Http;
use crate::inventory::{Inventory, ProviderDef, ProviderKind};
use crate::plan::SecretBag;
use crate::provider::{AnyProvider, KeyListing, can_list_keys};

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("unknown provider `{0}`: it is not in the inventory")]
    UnknownProvider(String),
    #[error(
        "provider `{id}` is of kind {kind}, which cannot list its keys by API in this keyfire (kinds that can: openai, anthropic, aws-iam, sendgrid, litellm)"
    )]
    CannotList { id: String, kind: ProviderKind },
}

/// What happened to one provider's listing.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Listed {
        /// What was listed ("project proj_abc", "all 12 IAM users").
        scope: String,
        keys: usize,
        calls: u32,
        notes: Vec<String>,
    },
    /// The listing failed: nothing is known about this provider's keys.
    Failed { error: String },
    /// The kind cannot list keys (only when every provider was asked for).
    Skipped { reason: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct ProviderResult {
    pub id: String,
    #[serde(serialize_with = "kind_name")]
    pub kind: ProviderKind,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub shadow: usize,
    pub gone: usize,
    pub drift: usize,
    pub unmatched: usize,
    pub failed: usize,
    /// True only when every provider asked was listed and nothing differs.
    pub clean: bool,
}

/// The whole comparison (`--json` prints it as is).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub providers: Vec<ProviderResult>,
    pub shadow: Vec<Shadow>,
    pub gone: Vec<Gone>,
    pub drift: Vec<Drift>,
    pub unmatched: Vec<Unmatched>,
    pub summary: Summary,
}

impl Report {
    pub fn clean(&self) -> bool {
        self.summary.clean
    }
}

/// The providers to list: those named (each must exist and be able to list), else every
/// provider of the inventory (those that cannot list are reported as skipped).
pub fn select<'a>(
    inv: &'a Inventory,
    only: &[String],
) -> Result<(Vec<&'a ProviderDef>, Vec<ProviderResult>), DiscoverError> {
    if only.is_empty() {
        let (can, cannot): (Vec<&ProviderDef>, Vec<&ProviderDef>) =
            inv.providers.iter().partition(|p| can_list_keys(p.kind));
        let skipped = cannot
            .into_iter()
            .map(|p| ProviderResult {
                id: p.id.clone(),
                kind: p.kind,
                outcome: Outcome::Skipped {
                    reason: format!("{} providers cannot list their keys by API", p.kind),
                },
                elapsed_ms: 0,
            })
            .collect();
        return Ok((can, skipped));
    }
    let mut chosen: Vec<&ProviderDef> = Vec::new();
    for id in only {
        let def = inv
            .provider(id)
            .ok_or_else(|| DiscoverError::UnknownProvider(id.clone()))?;
        if !can_list_keys(def.kind) {
            return Err(DiscoverError::CannotList {
                id: id.clone(),
                kind: def.kind,
            });
        }
        if !chosen.iter().any(|c| c.id == def.id) {
            chosen.push(def);
        }
    }
    Ok((chosen, Vec::new()))
}

/// List one provider: resolve its admin credential, plan, read.
async fn list_one(inv: &Inventory, def: &ProviderDef, http: &Http) -> Result<KeyListing, String> {
    let mut bag = SecretBag::default();
    if let Some(cref) = &def.admin_credential {
        bag.admin = Some(
            crate::credential::resolve(cref, inv, http)
                .await
                .map_err(|e| format!("admin credential: {e}"))?,
        );
    }
    let provider = AnyProvider::from_def(def);
    let plan = provider.list_plan().map_err(|e| e.to_string())?;
    provider
        .list_keys(&plan, http, &bag)
        .await
        .map_err(|e| http.redactor().scrub(&e.to_string()))
}

/// List the chosen providers at once and compare their keys with the inventory. `http` must
/// be a drill-mode client (see [`client`]).
pub async fn discover(
    inv: &Inventory,
    chosen: &[&ProviderDef],
    skipped: Vec<ProviderResult>,
    http: &Http,
) -> Report {
    let reads = chosen.iter().map(|def| async move {
        let started = Instant::now();
        let listed = list_one(inv, def, http).await;
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        (*def, listed, elapsed_ms)
    });
    let results = futures_util::future::join_all(reads).await;
    let listings: Vec<(&ProviderDef, Option<&KeyListing>)> = results
        .iter()
        .map(|(def, listed, _)| (*def, listed.as_ref().ok()))
        .collect();
    let diff = compare(inv, &listings);
    let mut providers: Vec<ProviderResult> = results
        .iter()
        .map(|(def, listed, elapsed_ms)| ProviderResult {
            id: def.id.clone(),
            kind: def.kind,
            outcome: match listed {
                Ok(l) => Outcome::Listed {
                    scope: l.scope.clone(),
                    keys: l.keys.len(),
                    calls: l.calls,
                    notes: l.notes.clone(),
                },
                Err(e) => Outcome::Failed { error: e.clone() },
            },
            elapsed_ms: *elapsed_ms,
        })
        .collect();
    providers.extend(skipped);
    let failed = providers
        .iter()
        .filter(|p| matches!(p.outcome, Outcome::Failed { .. }))
        .count();
    let summary = Summary {
        shadow: diff.shadow.len(),
        gone: diff.gone.len(),
        drift: diff.drift.len(),
        unmatched: diff.unmatched.len(),
        failed,
        clean: failed == 0
            && diff.shadow.is_empty()
            && diff.gone.is_empty()
            && diff.drift.is_empty()
            && diff.unmatched.is_empty(),
    };
    Report {
        providers,
        shadow: diff.shadow,
        gone: diff.gone,
        drift: diff.drift,
        unmatched: diff.unmatched,
        summary,
    }
}

/// A kind as the inventory spells it (`openai`, `aws-iam`).
pub(crate) fn kind_name<S: serde::Serializer>(k: &ProviderKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

/// The client discovery uses: drill mode, so that the HTTP layer refuses any write plan too.
pub fn client(redactor: crate::secret::Redactor) -> Result<Http, crate::http::HttpError> {
    Http::new(true, redactor)
}

/// A finding of `lint --online`, in the shape of lint's own findings.
#[derive(Debug, Clone)]
pub struct OnlineFinding {
    pub code: &'static str,
    /// The inventory key, or the provider's key id for a shadow key; empty for a provider.
    pub key: String,
    /// Set for provider-level findings (a listing that failed).
    pub provider: Option<String>,
    pub message: String,
}

/// `scope-beyond-needs` from what the providers report a key can do (SendGrid's scopes, a
/// LiteLLM key's models) where that differs from the inventory's `scopes`: a key with `needs`
/// whose real scopes go beyond them. Where the provider agrees with the inventory, the
/// offline lint already judged the same scopes.
pub fn scope_findings(report: &Report, inv: &Inventory) -> Vec<OnlineFinding> {
    report
        .drift
        .iter()
        .filter_map(|d| {
            let Difference::Scopes { at_provider, .. } = &d.difference else {
                return None;
            };
            let needs = inv.key(&d.key)?.needs.as_ref()?;
            let beyond: Vec<&str> = at_provider
                .iter()
                .filter(|s| !needs.contains(s))
                .map(String::as_str)
                .collect();
            (!beyond.is_empty()).then(|| OnlineFinding {
                code: "scope-beyond-needs",
                key: d.key.clone(),
                provider: None,
                message: format!(
                    "scopes beyond what the agents need, as provider {} reports them: {}",
                    d.provider,
                    beyond.join(", ")
                ),
            })
        })
        .collect()
}

/// The report as lint findings: `shadow-key`, `unknown-at-provider`, `drift-at-provider`,
/// `ambiguous-at-provider` and `listing-unavailable`.
pub fn findings(report: &Report) -> Vec<OnlineFinding> {
    let mut out = Vec::new();
    for p in &report.providers {
        if let Outcome::Failed { error } = &p.outcome {
            out.push(OnlineFinding {
                code: "listing-unavailable",
                key: String::new(),
                provider: Some(p.id.clone()),
                message: format!(
                    "could not list the provider's keys, so shadow keys and removed keys are unknown: {error}"
                ),
            });
        }
    }
    for s in &report.shadow {
        out.push(OnlineFinding {
            code: "shadow-key",
            key: s.key.id.clone(),
            provider: None,
            message: format!(
                "at provider {} but in no inventory entry: {}",
                s.provider,
                s.describe()
            ),
        });
    }
    for g in &report.gone {
        out.push(OnlineFinding {
            code: "unknown-at-provider",
            key: g.key.clone(),
            provider: None,
            message: format!("provider {} does not know this key: {}", g.provider, g.why),
        });
    }
    for d in &report.drift {
        out.push(OnlineFinding {
            code: "drift-at-provider",
            key: d.key.clone(),
            provider: None,
            message: format!("provider {}: {}", d.provider, d.difference.describe()),
        });
    }
    for u in &report.unmatched {
        out.push(OnlineFinding {
            code: "ambiguous-at-provider",
            key: u.key.clone(),
            provider: None,
            message: format!("provider {}: {}", u.provider, u.why),
        });
    }
    out
}
