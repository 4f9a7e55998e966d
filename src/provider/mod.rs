//! Providers: the services that issue keys. Each kind declares its capabilities, builds request
//! plans (pure) and executes them through the shared HTTP layer. A missing capability becomes a
//! guided manual step in the runbook.

mod anthropic;
mod aws_iam;
mod fake;
pub mod listing;
mod litellm;
mod openai;
pub mod pace;
mod postgres;
mod sendgrid;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::http::{FailureKind, Http, HttpError};
use crate::inventory::{ProviderDef, ProviderKind};
use crate::plan::{RequestPlan, SecretBag};
use crate::secret::Secret;

pub use anthropic::AnthropicProvider;
pub use aws_iam::AwsIamProvider;
pub use fake::FakeProvider;
pub use listing::{KeyListing, ListKeys, ListedKey};
pub use litellm::LiteLlmProvider;
pub use openai::OpenAiProvider;
pub use postgres::PostgresProvider;
pub use sendgrid::SendGridProvider;

/// What a provider kind can do by API (DESIGN section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Capabilities {
    pub locate: bool,
    pub verify: bool,
    pub disable: bool,
    pub revoke: bool,
    pub create: bool,
    pub usage: bool,
    pub audit: bool,
    /// A repeated create with the same idempotency key returns the same key (and value), so a
    /// resumed incident can recover a replacement whose value was lost in a crash.
    pub create_idempotent: bool,
    /// The provider allows one live key per identity: zero-downtime rotation is impossible.
    pub single_live_key: bool,
    /// The revoke destroys what the usage snapshot reads (PostgreSQL terminates the live
    /// sessions), so that snapshot is the one read allowed to run before the revoke.
    pub usage_destroyed_by_revoke: bool,
}

impl Capabilities {
    /// Whether an operation is within these capabilities.
    pub fn allows(&self, op: &Op) -> bool {
        match op {
            Op::Locate { .. } | Op::FindReplacement(_) => self.locate,
            Op::Verify { .. } => self.verify,
            Op::Disable { .. } => self.disable,
            Op::Revoke { .. } => self.revoke,
            Op::Create { .. } => self.create,
            Op::Usage { .. } => self.usage,
            Op::AuditLog { .. } => self.audit,
        }
    }

    pub const NONE: Self = Self {
        locate: false,
        verify: false,
        disable: false,
        revoke: false,
        create: false,
        usage: false,
        audit: false,
        create_idempotent: false,
        single_live_key: false,
        usage_destroyed_by_revoke: false,
    };
}

/// Capabilities of each kind in this build of keyfire. Kinds whose API integration has not
/// landed yet run entirely as guided manual steps, and say so.
pub fn capabilities_of(kind: ProviderKind) -> Capabilities {
    match kind {
        ProviderKind::Fake => Capabilities {
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
        },
        // Service-account keys only: user-owned project keys cannot be minted by API, so the
        // replacement is always a service account's key in the same project.
        ProviderKind::OpenAi => Capabilities {
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
        },
        // The Admin API can read, disable and archive keys but not create them: the
        // replacement is made in the Console and pasted into keyfire.
        ProviderKind::Anthropic => Capabilities {
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
        },
        // IAM allows two access keys per user, so a replacement can be created while the
        // leaked key is still live (when the user holds only that one). CloudTrail comes with
        // usage (one event per call), not as a separate audit log.
        ProviderKind::AwsIam => Capabilities {
            locate: true,
            verify: true,
            disable: true,
            revoke: true,
            create: true,
            usage: true,
            audit: false,
            create_idempotent: false,
            single_live_key: false,
            usage_destroyed_by_revoke: false,
        },
        // A role has one password: the replacement replaces it, so there is no overlap.
        ProviderKind::Postgres => Capabilities {
            locate: true,
            verify: true,
            disable: true,
            revoke: true,
            create: true,
            usage: true,
            audit: false,
            create_idempotent: false,
            single_live_key: true,
            usage_destroyed_by_revoke: true,
        },
        // No disable (a scope-strip is not offered), no per-key usage: the audit reads
        // gateway logs. Two keys can live at once, so the rotation has no downtime.
        ProviderKind::SendGrid => Capabilities {
            locate: true,
            verify: true,
            revoke: true,
            create: true,
            ..Capabilities::NONE
        },
        // Virtual keys: block is a reversible disable; the spend logs are per-request usage.
        ProviderKind::LiteLlm => Capabilities {
            locate: true,
            verify: true,
            disable: true,
            revoke: true,
            create: true,
            usage: true,
            ..Capabilities::NONE
        },
        ProviderKind::Manual => Capabilities::NONE,
    }
}

/// Whether a kind can list every key it holds by API (`inventory discover`, `lint --online`).
/// A kind joins by implementing [`ListKeys`] and adding its arm here and in
/// [`AnyProvider::list_plan`] / [`AnyProvider::list_keys`].
pub fn can_list_keys(kind: ProviderKind) -> bool {
    matches!(
        kind,
        ProviderKind::OpenAi
            | ProviderKind::Anthropic
            | ProviderKind::AwsIam
            | ProviderKind::SendGrid
            | ProviderKind::LiteLlm
    )
}

/// Why a kind runs manually, for the operator's checklist.
pub fn manual_reason(kind: ProviderKind) -> Option<&'static str> {
    match kind {
        ProviderKind::Manual => {
            Some("this provider is declared manual: every step is done by the operator")
        }
        ProviderKind::Fake
        | ProviderKind::OpenAi
        | ProviderKind::Anthropic
        | ProviderKind::AwsIam
        | ProviderKind::Postgres
        | ProviderKind::SendGrid
        | ProviderKind::LiteLlm => None,
        #[allow(unreachable_patterns)]
        _ => Some(
            "this keyfire has no API integration for this provider kind yet: the step is done by the operator in the provider's console",
        ),
    }
}

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

#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
/// `sha256:<hex>`, decisive when present; else what the provider shows of the key: its
/// redacted value or hint (`prefix...tail`), for AWS the access key id inside the stored
/// pair. A PostgreSQL password belongs to the role the probe logs in as.
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
    match kind {
        ProviderKind::AwsIam => {
            let by = "the access key id in the stored pair".to_string();
            match (crate::aws::KeyPair::parse(value), key_id) {
                (Ok(pair), Some(id)) if pair.access_key_id == id => Identity::Matches { by },
                (Ok(_), Some(_)) => Identity::Differs { by },
                (Ok(_), None) => Identity::Unknown {
                    why: "the key was not located at the provider".into(),
                },
                (Err(_), _) => Identity::Unknown {
                    why: "the stored value is not an access key pair".into(),
                },
            }
        }
        // The value `SG.<api_key_id>.<secret>` names its key.
        ProviderKind::SendGrid => {
            let by = "the api_key_id inside the stored value".to_string();
            match (sendgrid::id_of_value(value.expose()), key_id) {
                (Some(got), Some(id)) if got == id => Identity::Matches { by },
                (Some(_), Some(_)) => Identity::Differs { by },
                (_, None) => Identity::Unknown {
                    why: "the key was not located at the provider".into(),
                },
                (None, Some(_)) => Identity::Unknown {
                    why: "the stored value is not a SendGrid key (SG.id.secret)".into(),
                },
            }
        }
        // A virtual key's id is its hashed token: the SHA-256 of the value.
        ProviderKind::LiteLlm if key_id.is_some_and(crate::secret::fingerprint::is_hash) => {
            let by = "the hashed token (SHA-256 of the stored value)".to_string();
            let got = crate::secret::fingerprint::of_value(value.expose());
            if key_id.is_some_and(|id| id.eq_ignore_ascii_case(&got)) {
                Identity::Matches { by }
            } else {
                Identity::Differs { by }
            }
        }
        ProviderKind::Postgres => Identity::Matches {
            by: "the role the probe logs in as (a password has no public hint)".into(),
        },
        _ => match hint {
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
    #[error(transparent)]
    Aws(#[from] crate::aws::AwsError),
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
            Self::Aws(e) => e.transient() || matches!(e.status(), Some(401 | 403)),
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

/// A provider of a known kind, configured from the inventory. Static dispatch by `match`.
#[derive(Debug, Clone)]
pub enum AnyProvider {
    Fake(FakeProvider),
    OpenAi(OpenAiProvider),
    Anthropic(AnthropicProvider),
    AwsIam(AwsIamProvider),
    Postgres(PostgresProvider),
    SendGrid(SendGridProvider),
    LiteLlm(LiteLlmProvider),
    /// Every capability is an operator checklist item.
    Manual {
        kind: ProviderKind,
    },
}

impl AnyProvider {
    pub fn from_def(def: &ProviderDef) -> Self {
        match def.kind {
            ProviderKind::Fake => Self::Fake(FakeProvider::new(def)),
            ProviderKind::OpenAi => Self::OpenAi(OpenAiProvider::new(def)),
            ProviderKind::Anthropic => Self::Anthropic(AnthropicProvider::new(def)),
            ProviderKind::AwsIam => Self::AwsIam(AwsIamProvider::new(def)),
            ProviderKind::Postgres => Self::Postgres(PostgresProvider::new(def)),
            ProviderKind::SendGrid => Self::SendGrid(SendGridProvider::new(def)),
            ProviderKind::LiteLlm => Self::LiteLlm(LiteLlmProvider::new(def)),
            kind => Self::Manual { kind },
        }
    }

    /// Tell the provider which inventory key it works on, for providers whose API cannot
    /// name a key by itself (IAM access keys have no names: the leaked key's id tells a
    /// replacement from it; a PostgreSQL password belongs to the key's role).
    pub fn for_key(self, key: &crate::inventory::Key) -> Self {
        match self {
            Self::AwsIam(p) => Self::AwsIam(p.for_key(key)),
            Self::Postgres(p) => Self::Postgres(p.for_key(key)),
            Self::SendGrid(p) => Self::SendGrid(p.for_key(key)),
            Self::LiteLlm(p) => Self::LiteLlm(p.for_key(key)),
            other => other,
        }
    }

    pub fn kind(&self) -> ProviderKind {
        match self {
            Self::Fake(_) => ProviderKind::Fake,
            Self::OpenAi(_) => ProviderKind::OpenAi,
            Self::Anthropic(_) => ProviderKind::Anthropic,
            Self::AwsIam(_) => ProviderKind::AwsIam,
            Self::Postgres(_) => ProviderKind::Postgres,
            Self::SendGrid(_) => ProviderKind::SendGrid,
            Self::LiteLlm(_) => ProviderKind::LiteLlm,
            Self::Manual { kind } => *kind,
        }
    }

    pub fn capabilities(&self) -> Capabilities {
        capabilities_of(self.kind())
    }

    /// Whether a change (a deletion) takes a while to reach every endpoint of the provider,
    /// so that a key still accepted after it proves nothing either way (IAM: "changes ...
    /// are eventually consistent").
    pub fn eventually_consistent(&self) -> bool {
        matches!(self, Self::AwsIam(_))
    }

    /// The waits between probes while the provider may still reflect the old state: IAM is
    /// eventually consistent (backoff up to `settings.proof_wait_seconds`, default 30 s); the
    /// others get four short waits.
    pub fn proof_waits(&self) -> Vec<std::time::Duration> {
        match self {
            Self::AwsIam(p) => p.proof_waits(),
            _ => vec![std::time::Duration::from_millis(600); 4],
        }
    }

    pub fn plan(&self, op: &Op) -> Result<RequestPlan, ProviderError> {
        if !self.capabilities().allows(op) {
            return Err(ProviderError::Unsupported {
                kind: self.kind(),
                op: op.name(),
            });
        }
        match self {
            Self::Fake(p) => p.plan(op),
            Self::OpenAi(p) => p.plan(op),
            Self::Anthropic(p) => p.plan(op),
            Self::AwsIam(p) => Ok(p.plan(op)),
            Self::Postgres(p) => Ok(p.plan(op)),
            Self::SendGrid(p) => p.plan(op),
            Self::LiteLlm(p) => p.plan(op),
            Self::Manual { kind } => Err(ProviderError::Unsupported {
                kind: *kind,
                op: op.name(),
            }),
        }
    }

    /// The first call of a key listing, as a read plan.
    pub fn list_plan(&self) -> Result<RequestPlan, ProviderError> {
        let unsupported = || ProviderError::Unsupported {
            kind: self.kind(),
            op: "list keys",
        };
        let plan = match self {
            Self::OpenAi(p) => p.list_plan(),
            Self::Anthropic(p) => p.list_plan(),
            Self::AwsIam(p) => p.list_plan(),
            Self::SendGrid(p) => p.list_plan(),
            Self::LiteLlm(p) => p.list_plan(),
            _ => Err(unsupported()),
        }?;
        Self::read_only(&plan)?;
        Ok(plan)
    }

    /// Every key the provider holds. Discovery is read-only by construction: a plan that is
    /// not a read is refused here, whatever the client's mode, and the client refuses writes
    /// in a drill as well.
    pub async fn list_keys(
        &self,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<KeyListing, ProviderError> {
        Self::read_only(plan)?;
        match self {
            Self::OpenAi(p) => p.list_keys(plan, http, secrets).await,
            Self::Anthropic(p) => p.list_keys(plan, http, secrets).await,
            Self::AwsIam(p) => p.list_keys(plan, http, secrets).await,
            Self::SendGrid(p) => p.list_keys(plan, http, secrets).await,
            Self::LiteLlm(p) => p.list_keys(plan, http, secrets).await,
            _ => Err(ProviderError::Unsupported {
                kind: self.kind(),
                op: "list keys",
            }),
        }
    }

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

    pub async fn execute(
        &self,
        op: &Op,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<OpOutput, ProviderError> {
        match self {
            Self::Fake(p) => p.execute(op, plan, http, secrets).await,
            Self::OpenAi(p) => p.execute(op, plan, http, secrets).await,
            Self::Anthropic(p) => p.execute(op, plan, http, secrets).await,
            Self::AwsIam(p) => p.execute(op, plan, http, secrets).await,
            Self::Postgres(p) => p.execute(op, plan, http, secrets).await,
            Self::SendGrid(p) => p.execute(op, plan, http, secrets).await,
            Self::LiteLlm(p) => p.execute(op, plan, http, secrets).await,
            Self::Manual { kind } => Err(ProviderError::Unsupported {
                kind: *kind,
                op: op.name(),
            }),
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
        let manual = AnyProvider::Manual {
            kind: ProviderKind::Manual,
        };
        assert!(matches!(
            manual.list_plan(),
            Err(ProviderError::Unsupported { .. })
        ));
        assert!(!can_list_keys(ProviderKind::Postgres));
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
