//! Providers: the services that issue keys. Each backend module implements [`Provider`]: it
//! declares its kind's capabilities (and why it runs manually, if it does), builds request
//! plans (pure) and executes them through the shared HTTP layer (or the AWS SDK, or the
//! PostgreSQL protocol). A missing capability becomes a guided manual step in the runbook.
//!
//! [`AnyProvider`] dispatches statically over the backends of [`registry!`]'s one list, and
//! is where the rules common to every backend live, once: an operation outside the
//! capabilities is refused before it is planned, and in a drill a plan that is not a read
//! (by its method, or by its backend's explicit declaration) is refused before it is
//! executed ([`crate::plan::drill_guard`]).
//!
//! Adding a provider:
//! 1. its module here (`mod name;` and its `pub use`), with `impl Provider for NameProvider`:
//!    `KIND`, `CAPABILITIES`, `MANUAL_REASON` when it has one, `plan` and `execute`; reads
//!    whose verb is not GET/HEAD are marked `.declared_read()`; plus `impl ListKeys` and
//!    `LISTS_KEYS` if it lists keys, `identity` if its values name their key; the spec table
//!    in its module documentation;
//! 2. one line in the `registry!` list below;
//! 3. its simulator under `sim/`, following the same published spec;
//! 4. its kind in the contract suite (`tests/integration/contract.rs`).
//!
//! Outside this module the kind also needs its name (`inventory::model`, `ProviderKind`) and
//! its settings (`inventory::load`); a kind that cannot revoke by API is listed in
//! `inventory::lint::REVOKED_BY_HAND` (a test checks the two agree).

#[cfg(feature = "anthropic")]
mod anthropic;
#[cfg(feature = "aws")]
mod aws_iam;
mod fake;
pub mod listing;
#[cfg(feature = "litellm")]
mod litellm;
mod manual;
#[cfg(feature = "openai")]
mod openai;
pub mod pace;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sendgrid")]
mod sendgrid;
mod traits;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::http::{FailureKind, Http, HttpError};
use crate::inventory::{Key, ProviderDef, ProviderKind};
use crate::plan::{RequestPlan, SecretBag};
use crate::secret::Secret;

#[cfg(feature = "anthropic")]
pub use anthropic::AnthropicProvider;
#[cfg(feature = "aws")]
pub use aws_iam::AwsIamProvider;
pub use fake::FakeProvider;
pub use listing::{KeyListing, ListKeys, ListedKey};
#[cfg(feature = "litellm")]
pub use litellm::LiteLlmProvider;
pub use manual::ManualProvider;
#[cfg(feature = "openai")]
pub use openai::OpenAiProvider;
#[cfg(feature = "postgres")]
pub use postgres::PostgresProvider;
#[cfg(feature = "sendgrid")]
pub use sendgrid::SendGridProvider;
pub use traits::{Capabilities, Provider};

/// Why a kind without a backend in this build runs manually.
const NO_INTEGRATION: &str = "this keyfire has no API integration for this provider kind yet: the step is done by the operator in the provider's console";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Which {
    Old,
    New,
}

/// One provider operation; the engine asks for its plan, then (unless drilling a write)
/// executes it.
#[derive(Debug, Clone)]
pub enum Op {
    /// Find a key by provider id, else by name, else by hint.
    Locate {
        id: Option<String>,
        name: Option<String>,
        hint: Option<String>,
    },
    /// Find a replacement keyfire asked for but whose answer it never recorded (a timeout, a
    /// malformed reply, a crash), by the record's intent: the name it gave, the time it sent
    /// the create, and the replacements other keys of the incident did record.
    FindReplacement(ReplacementQuery),
    /// Call the cheapest authenticated read with a key value.
    Verify {
        which: Which,
    },
    Disable {
        id: String,
    },
    Revoke {
        id: String,
    },
    Create {
        name: String,
        idempotency_key: String,
    },
    Usage {
        id: String,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// Audit-log events about a key (created, updated, deleted, ...) over a window.
    AuditLog {
        id: String,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
}

/// What the record says about one create request (see [`Op::FindReplacement`]).
#[derive(Debug, Clone)]
pub struct ReplacementQuery {
    /// The name the create gave the replacement (`keyfire-rot-…-KEY[-N]`).
    pub name: String,
    /// The replacement's id, when its answer was recorded.
    pub id: Option<String>,
    /// When the create request was sent, and when its (failed) answer came back, if it did.
    pub sent_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    /// Key ids that belong to someone else: other keys' recorded replacements and the
    /// inventory's keys.
    pub exclude: Vec<String>,
}

impl ReplacementQuery {
    /// The same search as a plain locate, for providers whose keys carry the name.
    pub fn as_locate(&self) -> Op {
        Op::Locate {
            id: self.id.clone(),
            name: Some(self.name.clone()),
            hint: None,
        }
    }
}

impl Op {
    /// Whether the operation changes anything at the provider, whatever its plan says.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Self::Disable { .. } | Self::Revoke { .. } | Self::Create { .. }
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Locate { .. } | Self::FindReplacement(_) => "locate",
            Self::Verify { .. } => "verify",
            Self::Disable { .. } => "disable",
            Self::Revoke { .. } => "revoke",
            Self::Create { .. } => "create",
            Self::Usage { .. } => "usage",
            Self::AuditLog { .. } => "audit_log",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    Active,
    Disabled,
    Revoked,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct LocatedKey {
    pub id: String,
    pub name: Option<String>,
    pub state: KeyState,
    pub hint: Option<String>,
    pub created_at: Option<String>,
    /// When the provider last saw the key used, where it says (listed beside ambiguous
    /// matches so the operator can tell the leaked key from its look-alikes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
}

/// The outcome of a search by name or hint: the one match, nothing, or every candidate when
/// several keys match (keyfire never picks one of them: revoking the wrong key is worse
/// than stopping).
pub(crate) fn one_of(matches: Vec<LocatedKey>) -> OpOutput {
    let mut matches = matches;
    match matches.len() {
        0 => OpOutput::Located(None),
        1 => OpOutput::Located(matches.pop()),
        _ => OpOutput::Ambiguous(matches),
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct UsageBucket {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
}

impl UsageBucket {
    /// Input and output tokens, saturating.
    pub fn tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// One access seen by a per-request source (a CloudTrail event, a live database session).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct UsageEvent {
    pub time: DateTime<Utc>,
    /// What was done: the API call, or `session` for a database connection.
    pub action: String,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The provider's error code when the call failed (`AccessDenied`, ...).
    pub error_code: Option<String>,
}

impl UsageEvent {
    /// The HTTP-like status the audit rules read: 403 for authentication and authorization
    /// failures, 400 for other errors, 200 otherwise.
    pub fn status(&self) -> u16 {
        match self.error_code.as_deref() {
            None => 200,
            Some(c)
                if [
                    "AccessDenied",
                    "Unauthorized",
                    "InvalidClientTokenId",
                    "SignatureDoesNotMatch",
                    "AuthFailure",
                    "ExpiredToken",
                ]
                .iter()
                .any(|k| c.contains(k)) =>
            {
                403
            }
            Some(_) => 400,
        }
    }
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct UsageReport {
    pub buckets: Vec<UsageBucket>,
    pub pages: u32,
    /// Individual accesses, where the source has them (CloudTrail, pg_stat_activity).
    pub events: Vec<UsageEvent>,
    /// What the events can tell the audit rules (`None` when there are no events).
    pub events_source: Option<crate::audit::SourceInfo>,
    /// Facts that fit no bucket, in the operator's words ("IAM: last used ... by s3").
    pub notes: Vec<String>,
}

impl UsageReport {
    // Counters from a provider's answer saturate: a hostile or broken answer cannot overflow.
    pub fn requests(&self) -> u64 {
        self.buckets
            .iter()
            .fold(0u64, |a, b| a.saturating_add(b.requests))
    }
    pub fn tokens(&self) -> u64 {
        self.buckets
            .iter()
            .fold(0u64, |a, b| a.saturating_add(b.tokens()))
    }
    pub fn cost_usd(&self) -> f64 {
        self.buckets.iter().map(|b| b.cost_usd).sum::<f64>() + 0.0
    }
}

/// One audit-log event about a key, as the provider recorded it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct AuditEvent {
    pub id: String,
    /// The provider's event type, e.g. `api_key.created`.
    pub kind: String,
    pub at: DateTime<Utc>,
    /// Who did it: an e-mail, a user id or an API key id.
    pub actor: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

/// What a provider answered when keyfire authenticated with a key value (DESIGN section 4,
/// step 1). Each provider decides from its own documented answers: only the documented
/// invalid-credential answer is `Rejected`, the proof that a key is dead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Probe {
    /// The key authenticated.
    Accepted,
    /// The key authenticated but may not make the probe call (a live key without a scope or
    /// permission): alive for a replacement's check, never proof of death.
    Restricted { status: Option<u16>, reason: String },
    /// The provider's documented invalid-credential answer (`signal` names it).
    Rejected { status: Option<u16>, signal: String },
    /// Any other answer (throttling, 5xx, a region or network error, an undocumented
    /// rejection): neither alive nor dead is proven. `reason` is redacted.
    Inconclusive { status: Option<u16>, reason: String },
}

impl Probe {
    /// Whether the key answered as a live key (accepted, or authenticated but restricted).
    pub fn alive(&self) -> bool {
        matches!(self, Self::Accepted | Self::Restricted { .. })
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Accepted => None,
            Self::Restricted { status, .. }
            | Self::Rejected { status, .. }
            | Self::Inconclusive { status, .. } => *status,
        }
    }

    /// An answer that is not a documented signal, from a failed HTTP call.
    pub(crate) fn inconclusive_from(e: &HttpError) -> Self {
        Self::Inconclusive {
            status: e.status(),
            reason: crate::http::truncate(&e.to_string(), 300),
        }
    }

    /// One line for the operator and the record.
    pub fn describe(&self) -> String {
        let status = |s: &Option<u16>| s.map(|s| format!("HTTP {s} ")).unwrap_or_default();
        match self {
            Self::Accepted => "the key authenticated".into(),
            Self::Restricted { status: s, reason } => {
                format!(
                    "{}the key authenticated but is restricted: {reason}",
                    status(s)
                )
            }
            Self::Rejected { status: s, signal } => {
                format!(
                    "{}{signal}: the provider's invalid-credential answer",
                    status(s)
                )
            }
            Self::Inconclusive { status: s, reason } => {
                format!(
                    "{}not a documented invalid-credential answer: {reason}",
                    status(s)
                )
            }
        }
    }
}

/// Whether a key value is the located key, judged from what the provider shows of it (the
/// redacted value or hint) or from the inventory's SHA-256 fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "identity", rename_all = "snake_case")]
pub enum Identity {
    Matches {
        by: String,
    },
    Differs {
        by: String,
    },
    /// Nothing to compare with (the provider shows no hint, the inventory has no fingerprint).
    Unknown {
        why: String,
    },
}

/// Compare a key value with the located key. `fingerprint` is the inventory's
/// `sha256:<hex>`, decisive when present; else what the value says about itself, where the
/// kind's backend knows (for AWS the access key id inside the stored pair, see
/// [`Provider::identity`]); else what the provider shows of the key: its redacted value or
/// hint (`prefix...tail`).
pub fn identity(
    kind: ProviderKind,
    value: &Secret,
    key_id: Option<&str>,
    hint: Option<&str>,
    fingerprint: Option<&str>,
) -> Identity {
    if let Some(fp) = fingerprint {
        use sha2::Digest;
        let want = fp.strip_prefix("sha256:").unwrap_or(fp);
        let got = hex::encode(sha2::Sha256::digest(value.expose().as_bytes()));
        let by = "the inventory's fingerprint".to_string();
        return if got.eq_ignore_ascii_case(want) {
            Identity::Matches { by }
        } else {
            Identity::Differs { by }
        };
    }
    if let Some(decided) = identity_by_value(kind, value, key_id) {
        return decided;
    }
    match hint {
        Some(h) if redacted_matches(h, value.expose()) => Identity::Matches {
            by: format!("the provider's hint {h}"),
        },
        Some(h) => Identity::Differs {
            by: format!("the provider's hint {h}"),
        },
        None => Identity::Unknown {
            why: format!(
                "{kind} showed no hint of the located key and the inventory has no fingerprint"
            ),
        },
    }
}

/// A provider's redacted value `prefix...tail` matches a key value that starts with the
/// prefix and ends with the (non-empty) tail.
pub(crate) fn redacted_matches(redacted: &str, value: &str) -> bool {
    let Some((prefix, tail)) = redacted
        .split_once("...")
        .or_else(|| redacted.split_once('…'))
    else {
        return false;
    };
    !tail.is_empty() && value.starts_with(prefix) && value.ends_with(tail)
}

#[derive(Debug)]
pub enum OpOutput {
    /// `None`: the provider does not know the key (deleted, or never existed).
    Located(Option<LocatedKey>),
    /// More than one key matches the name or hint: nothing is picked, the operator chooses
    /// by setting `provider_key_id`.
    Ambiguous(Vec<LocatedKey>),
    /// The provider's answer to an authenticated call made with a key value.
    Verified(Probe),
    Disabled,
    Revoked {
        already: bool,
    },
    Created {
        id: String,
        value: Secret,
    },
    Usage(UsageReport),
    AuditEvents {
        events: Vec<AuditEvent>,
        pages: u32,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("{kind} providers cannot {op} by API")]
    Unsupported {
        kind: ProviderKind,
        op: &'static str,
    },
    #[error("unexpected response from the provider: {0}")]
    Malformed(String),
    #[error("provider settings: {0}")]
    Misconfigured(String),
    #[cfg(feature = "aws")]
    #[error(transparent)]
    Aws(#[from] crate::aws::AwsError),
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Postgres(#[from] postgres::PgError),
    /// The provider's state forbids the operation; retrying will not help until it changes.
    #[error("{0}")]
    Refused(String),
    #[error("refused to send a write in a drill: {0}")]
    DryRunBlocked(String),
}

impl ProviderError {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Http(e) => e.status(),
            #[cfg(feature = "aws")]
            Self::Aws(e) => e.status(),
            _ => None,
        }
    }

    /// Whether running the step again can succeed: at once for transient failures (rate
    /// limits, 5xx, timeouts, unreachable), or once the operator has fixed a credential or
    /// a permission (401/403; a resumed incident resolves credentials again). Terminal:
    /// the provider refused the request itself (400, 404, 409), answered something keyfire
    /// cannot read, or cannot do it by API; repeating the same call cannot help.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Http(e) => matches!(
                e.kind(),
                FailureKind::RateLimited
                    | FailureKind::ServerError
                    | FailureKind::Timeout
                    | FailureKind::Transport
                    | FailureKind::Unauthorized
                    | FailureKind::Forbidden
            ),
            // AWS: throttling, 5xx and network, or an authentication failure once the
            // credential is fixed.
            #[cfg(feature = "aws")]
            Self::Aws(e) => e.transient() || matches!(e.status(), Some(401 | 403)),
            #[cfg(feature = "postgres")]
            Self::Postgres(e) => e.transient(),
            Self::Unsupported { .. }
            | Self::Malformed(_)
            | Self::Misconfigured(_)
            | Self::Refused(_)
            | Self::DryRunBlocked(_) => false,
        }
    }
}

/// Percent-encode one URL path segment or query value.
pub(crate) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A base URL without its trailing `/` or `/v1`: plans add the versioned paths themselves,
/// and operators paste either form from the providers' docs.
pub(crate) fn base_of(def: &ProviderDef, default: &str) -> String {
    let base = def
        .base_url
        .as_deref()
        .unwrap_or(default)
        .trim_end_matches('/');
    base.strip_suffix("/v1").unwrap_or(base).to_string()
}

/// A string setting of the provider (validated at inventory load).
pub(crate) fn setting(def: &ProviderDef, name: &str) -> Option<String> {
    def.settings
        .get(name)
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

/// A hint like `sk-proj-...Q2x7` matches a provider's redacted value (OpenAI's
/// `redacted_value`, Anthropic's `partial_key_hint`, e.g. `sk-ant-api03-R2D...igAA`) when
/// the redacted value starts with the hint's prefix and ends with its tail.
pub(crate) fn hint_matches(hint: &str, redacted: &str) -> bool {
    let split = |s: &str| -> Option<(String, String)> {
        let (p, t) = s.split_once("...").or_else(|| s.split_once('…'))?;
        Some((p.to_string(), t.to_string()))
    };
    match (split(hint), split(redacted)) {
        (Some((hp, ht)), Some((rp, rt))) => {
            rp.starts_with(&hp) && rt.ends_with(&ht) && !ht.is_empty()
        }
        _ => false,
    }
}

/// The registry: one line per backend. It generates [`AnyProvider`] (one variant per
/// backend, static dispatch: each method is one `match` here) and the look-ups by kind.
/// `Manual` must be listed: kinds with no line fall back to it.
macro_rules! registry {
    ($($(#[$attr:meta])* $variant:ident($backend:ty)),+ $(,)?) => {
        /// A provider of a known kind, configured from the inventory.
        #[derive(Debug, Clone)]
        pub enum AnyProvider {
            $($(#[$attr])* $variant($backend)),+
        }

        /// What a kind can do by API in this build of keyfire, as its backend declares it.
        /// Kinds without a backend run entirely as guided manual steps, and say so.
        pub fn capabilities_of(kind: ProviderKind) -> Capabilities {
            $($(#[$attr])* if kind == <$backend as Provider>::KIND {
                return <$backend as Provider>::CAPABILITIES;
            })+
            Capabilities::NONE
        }

        /// Why a kind runs manually, for the operator's checklist.
        pub fn manual_reason(kind: ProviderKind) -> Option<&'static str> {
            $($(#[$attr])* if kind == <$backend as Provider>::KIND {
                return <$backend as Provider>::MANUAL_REASON;
            })+
            Some(NO_INTEGRATION)
        }

        /// Whether a kind can list every key it holds by API (`inventory discover`,
        /// `lint --online`): its backend implements [`ListKeys`] and says `LISTS_KEYS`.
        pub fn can_list_keys(kind: ProviderKind) -> bool {
            $($(#[$attr])* if kind == <$backend as Provider>::KIND {
                return <$backend as Provider>::LISTS_KEYS;
            })+
            false
        }

        /// What the kind's backend can tell from a value alone (see [`Provider::identity`]).
        fn identity_by_value(
            kind: ProviderKind,
            value: &Secret,
            key_id: Option<&str>,
        ) -> Option<Identity> {
            $($(#[$attr])* if kind == <$backend as Provider>::KIND {
                return <$backend as Provider>::identity(value, key_id);
            })+
            None
        }

        impl AnyProvider {
            pub fn from_def(def: &ProviderDef) -> Self {
                $($(#[$attr])* if def.kind == <$backend as Provider>::KIND {
                    return Self::$variant(<$backend as Provider>::from_def(def));
                })+
                Self::Manual(ManualProvider::from_def(def))
            }

            /// Tell the provider which inventory key it works on, for providers whose API
            /// cannot name a key by itself (IAM access keys have no names: the leaked key's id
            /// tells a replacement from it; a PostgreSQL password belongs to the key's role).
            pub fn for_key(self, key: &Key) -> Self {
                match self {
                    $($(#[$attr])* Self::$variant(p) => Self::$variant(p.for_key(key))),+
                }
            }

            pub fn kind(&self) -> ProviderKind {
                match self {
                    $($(#[$attr])* Self::$variant(p) => p.kind()),+
                }
            }

            pub fn capabilities(&self) -> Capabilities {
                match self {
                    $($(#[$attr])* Self::$variant(_) => <$backend as Provider>::CAPABILITIES),+
                }
            }

            /// Whether a change (a deletion) takes a while to reach every endpoint of the
            /// provider, so that a key still accepted after it proves nothing either way (IAM:
            /// "changes ... are eventually consistent").
            pub fn eventually_consistent(&self) -> bool {
                match self {
                    $($(#[$attr])* Self::$variant(p) => p.eventually_consistent()),+
                }
            }

            /// The waits between probes while the provider may still reflect the old state.
            pub fn proof_waits(&self) -> Vec<std::time::Duration> {
                match self {
                    $($(#[$attr])* Self::$variant(p) => p.proof_waits()),+
                }
            }

            /// The plan of an operation within the kind's capabilities.
            pub fn plan(&self, op: &Op) -> Result<RequestPlan, ProviderError> {
                if !self.capabilities().allows(op) {
                    return Err(ProviderError::Unsupported {
                        kind: self.kind(),
                        op: op.name(),
                    });
                }
                match self {
                    $($(#[$attr])* Self::$variant(p) => p.plan(op)),+
                }
            }

            /// The first call of a key listing, as a read plan.
            pub fn list_plan(&self) -> Result<RequestPlan, ProviderError> {
                let plan = match self {
                    $($(#[$attr])* Self::$variant(p) => Provider::list_plan(p)),+
                }?;
                Self::read_only(&plan)?;
                Ok(plan)
            }

            /// Every key the provider holds. Discovery is read-only by construction: a plan
            /// that is not a read is refused here, whatever the client's mode, and the client
            /// refuses writes in a drill as well.
            pub async fn list_keys(
                &self,
                plan: &RequestPlan,
                http: &Http,
                secrets: &SecretBag,
            ) -> Result<KeyListing, ProviderError> {
                Self::read_only(plan)?;
                match self {
                    $($(#[$attr])* Self::$variant(p) => Provider::list_keys(p, plan, http, secrets).await),+
                }
            }

            /// Send a plan made by [`AnyProvider::plan`]. In a drill, only reads go: the
            /// operation must not change anything and the plan must read by its method or by
            /// its backend's declaration.
            pub async fn execute(
                &self,
                op: &Op,
                plan: &RequestPlan,
                http: &Http,
                secrets: &SecretBag,
            ) -> Result<OpOutput, ProviderError> {
                crate::plan::drill_guard(http.dry_run(), op.is_write(), plan)
                    .map_err(ProviderError::DryRunBlocked)?;
                match self {
                    $($(#[$attr])* Self::$variant(p) => p.execute(op, plan, http, secrets).await),+
                }
            }
        }
    };
}

registry! {
    Fake(FakeProvider),
    #[cfg(feature = "openai")]
    OpenAi(OpenAiProvider),
    #[cfg(feature = "anthropic")]
    Anthropic(AnthropicProvider),
    #[cfg(feature = "aws")]
    AwsIam(AwsIamProvider),
    #[cfg(feature = "postgres")]
    Postgres(PostgresProvider),
    #[cfg(feature = "sendgrid")]
    SendGrid(SendGridProvider),
    #[cfg(feature = "litellm")]
    LiteLlm(LiteLlmProvider),
    Manual(ManualProvider),
}

impl AnyProvider {
    fn read_only(plan: &RequestPlan) -> Result<(), ProviderError> {
        if plan.access == crate::plan::Access::Read {
            Ok(())
        } else {
            Err(ProviderError::DryRunBlocked(format!(
                "a key listing may only read: {} {}",
                plan.method, plan.url
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_compares_the_value_with_what_the_provider_shows() {
        let v = Secret::new("sk-proj-ABCDEFGHIJKLMNOPQRSTwxyz");
        let id = |kind, key: Option<&str>, hint: Option<&str>, fp: Option<&str>| {
            identity(kind, &v, key, hint, fp)
        };
        assert!(matches!(
            id(ProviderKind::OpenAi, None, Some("sk-proj-AB...wxyz"), None),
            Identity::Matches { .. }
        ));
        assert!(matches!(
            id(ProviderKind::OpenAi, None, Some("sk-proj-AB...wxyq"), None),
            Identity::Differs { .. }
        ));
        assert!(matches!(
            id(ProviderKind::OpenAi, None, None, None),
            Identity::Unknown { .. }
        ));
        // The fingerprint decides, whatever the hint says.
        use sha2::Digest;
        let fp = format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(v.expose().as_bytes()))
        );
        assert!(matches!(
            id(ProviderKind::OpenAi, None, Some("zz-...none"), Some(&fp)),
            Identity::Matches { .. }
        ));
        assert!(matches!(
            id(ProviderKind::OpenAi, None, None, Some("sha256:00")),
            Identity::Differs { .. }
        ));
        let pair = Secret::new(r#"{"AccessKeyId":"AKIAONE","SecretAccessKey":"s"}"#);
        assert!(matches!(
            identity(ProviderKind::AwsIam, &pair, Some("AKIAONE"), None, None),
            Identity::Matches { .. }
        ));
        assert!(matches!(
            identity(ProviderKind::AwsIam, &pair, Some("AKIATWO"), None, None),
            Identity::Differs { .. }
        ));
    }

    #[test]
    fn a_key_listing_refuses_any_plan_that_is_not_a_read() {
        let def = ProviderDef {
            id: "oa".into(),
            kind: ProviderKind::OpenAi,
            admin_credential: None,
            // Nothing listens here: a refused plan never reaches the network.
            base_url: Some("http://127.0.0.1:9".into()),
            settings: serde_json::json!({ "project_id": "proj_1" })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            origin: crate::inventory::Origin { file: 0, line: 1 },
        };
        let p = AnyProvider::from_def(&def);
        let read = p.list_plan().unwrap();
        assert_eq!(read.access, crate::plan::Access::Read);
        let write = RequestPlan::write("delete", "DELETE", read.url.clone());
        let http = Http::new(false, crate::secret::Redactor::new()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let refused = rt.block_on(p.list_keys(&write, &http, &SecretBag::default()));
        assert!(
            matches!(refused, Err(ProviderError::DryRunBlocked(_))),
            "{refused:?}"
        );
        // Kinds without a listing say so rather than pretend to be empty.
        let manual = AnyProvider::Manual(ManualProvider::of(ProviderKind::Manual));
        assert!(matches!(
            manual.list_plan(),
            Err(ProviderError::Unsupported { .. })
        ));
        assert!(!can_list_keys(ProviderKind::Postgres));
    }

    fn fake_at_nowhere() -> AnyProvider {
        AnyProvider::from_def(&ProviderDef {
            id: "fk".into(),
            kind: ProviderKind::Fake,
            admin_credential: None,
            // Nothing listens here: a call the guards let through fails to connect.
            base_url: Some("http://127.0.0.1:9".into()),
            settings: serde_json::Map::new(),
            origin: crate::inventory::Origin { file: 0, line: 1 },
        })
    }

    #[tokio::test]
    async fn a_drill_refuses_a_read_whose_method_is_not_get_unless_its_backend_declares_it() {
        let p = fake_at_nowhere();
        let http = Http::new(true, crate::secret::Redactor::new())
            .unwrap()
            .with_retry(crate::http::RetryPolicy {
                max_attempts: 1,
                base_delay: std::time::Duration::ZERO,
                max_delay: std::time::Duration::ZERO,
            });
        let op = Op::Locate {
            id: Some("k1".into()),
            name: None,
            hint: None,
        };
        let post = RequestPlan::read("search by POST", "POST", "http://127.0.0.1:9/v1/keys/k1");
        let refused = p.execute(&op, &post, &http, &SecretBag::default()).await;
        assert!(
            matches!(refused, Err(ProviderError::DryRunBlocked(_))),
            "{refused:?}"
        );
        // Declared a read by its backend, the same call goes (and finds nobody listening).
        let declared = post.declared_read();
        let sent = p
            .execute(&op, &declared, &http, &SecretBag::default())
            .await;
        assert!(
            matches!(sent, Err(ProviderError::Http(HttpError::Transport(_)))),
            "{sent:?}"
        );
    }

    #[tokio::test]
    async fn a_drill_refuses_a_write_operation_even_with_a_get_plan() {
        let p = fake_at_nowhere();
        let http = Http::new(true, crate::secret::Redactor::new()).unwrap();
        let op = Op::Revoke { id: "k1".into() };
        let get = RequestPlan::read("looks like a read", "GET", "http://127.0.0.1:9/v1/keys/k1");
        let refused = p.execute(&op, &get, &http, &SecretBag::default()).await;
        assert!(
            matches!(refused, Err(ProviderError::DryRunBlocked(_))),
            "{refused:?}"
        );
    }

    #[test]
    fn the_lint_knows_which_kinds_revoke_by_api() {
        // The lint cannot ask the backends (they sit above the inventory): its plain list must
        // say what each backend declares.
        for &kind in ProviderKind::ALL {
            assert_eq!(
                crate::inventory::lint::REVOKED_BY_HAND.contains(&kind),
                !capabilities_of(kind).revoke,
                "{kind}"
            );
        }
    }

    #[test]
    fn several_matches_are_never_narrowed_to_one() {
        let k = |id: &str| LocatedKey {
            id: id.into(),
            name: None,
            state: KeyState::Active,
            hint: None,
            created_at: None,
            last_used_at: None,
        };
        assert!(matches!(one_of(vec![]), OpOutput::Located(None)));
        assert!(matches!(one_of(vec![k("a")]), OpOutput::Located(Some(_))));
        assert!(matches!(one_of(vec![k("a"), k("b")]), OpOutput::Ambiguous(c) if c.len() == 2));
    }
}
