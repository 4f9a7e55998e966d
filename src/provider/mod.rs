//! Providers: the services that issue keys. Each kind declares its capabilities, builds request
//! plans (pure) and executes them through the shared HTTP layer. A missing capability becomes a
//! guided manual step in the runbook.

mod aws_iam;
mod fake;
mod postgres;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::http::{Http, HttpError};
use crate::inventory::{ProviderDef, ProviderKind};
use crate::plan::{RequestPlan, SecretBag};
use crate::secret::Secret;

pub use aws_iam::AwsIamProvider;
pub use fake::FakeProvider;
pub use postgres::PostgresProvider;

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
}

impl Capabilities {
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
        },
        // IAM allows two access keys per user, so a replacement can be created while the
        // leaked key is still live (when the user holds only that one).
        ProviderKind::AwsIam => Capabilities {
            locate: true,
            verify: true,
            disable: true,
            revoke: true,
            create: true,
            usage: true,
            audit: true,
            create_idempotent: false,
            single_live_key: false,
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
        },
        ProviderKind::OpenAi
        | ProviderKind::Anthropic
        | ProviderKind::SendGrid
        | ProviderKind::Manual => Capabilities::NONE,
    }
}

/// Why a kind runs manually, for the operator's checklist.
pub fn manual_reason(kind: ProviderKind) -> Option<&'static str> {
    match kind {
        ProviderKind::Manual => {
            Some("this provider is declared manual: every step is done by the operator")
        }
        ProviderKind::Fake | ProviderKind::AwsIam | ProviderKind::Postgres => None,
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
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Locate { .. } => "locate",
            Self::Verify { .. } => "verify",
            Self::Disable { .. } => "disable",
            Self::Revoke { .. } => "revoke",
            Self::Create { .. } => "create",
            Self::Usage { .. } => "usage",
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

/// One access seen by an audit source (a CloudTrail event, a live database session).
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

#[derive(Debug, Clone, Serialize, Default)]
pub struct UsageReport {
    pub buckets: Vec<UsageBucket>,
    pub pages: u32,
    /// Individual accesses, where the source has them (CloudTrail, pg_stat_activity).
    pub events: Vec<UsageEvent>,
    /// Facts that fit no bucket, in the operator's words ("last used 2026-11-20 by iam").
    pub notes: Vec<String>,
}

impl UsageReport {
    pub fn requests(&self) -> u64 {
        self.buckets.iter().map(|b| b.requests).sum()
    }
    pub fn tokens(&self) -> u64 {
        self.buckets
            .iter()
            .map(|b| b.input_tokens + b.output_tokens)
            .sum()
    }
    pub fn cost_usd(&self) -> f64 {
        self.buckets.iter().map(|b| b.cost_usd).sum::<f64>() + 0.0
    }
}

#[derive(Debug)]
pub enum OpOutput {
    /// `None`: the provider does not know the key (deleted, or never existed).
    Located(Option<LocatedKey>),
    /// `Ok(())` when the key authenticated; `Err(status)` when the provider rejected it.
    Verified(Result<(), u16>),
    Disabled,
    Revoked {
        already: bool,
    },
    Created {
        id: String,
        value: Secret,
    },
    Usage(UsageReport),
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

    /// Worth another try later (the step stays retryable either way).
    pub fn transient(&self) -> bool {
        match self {
            Self::Http(e) => e.transient(),
            Self::Aws(e) => e.transient(),
            Self::Postgres(e) => e.transient(),
            _ => false,
        }
    }
}

/// A provider of a known kind, configured from the inventory. Static dispatch by `match`.
#[derive(Debug, Clone)]
pub enum AnyProvider {
    Fake(FakeProvider),
    AwsIam(AwsIamProvider),
    Postgres(PostgresProvider),
    /// Every capability is an operator checklist item.
    Manual {
        kind: ProviderKind,
    },
}

impl AnyProvider {
    pub fn from_def(def: &ProviderDef) -> Self {
        match def.kind {
            ProviderKind::Fake => Self::Fake(FakeProvider::new(def)),
            ProviderKind::AwsIam => Self::AwsIam(AwsIamProvider::new(def)),
            ProviderKind::Postgres => Self::Postgres(PostgresProvider::new(def)),
            kind => Self::Manual { kind },
        }
    }

    /// Tell the provider which inventory key it works on, for providers whose API cannot
    /// name a key by itself (IAM access keys have no names: the leaked key's id tells a
    /// replacement from it).
    pub fn for_key(self, key: &crate::inventory::Key) -> Self {
        match self {
            Self::AwsIam(p) => Self::AwsIam(p.for_key(key)),
            Self::Postgres(p) => Self::Postgres(p.for_key(key)),
            other => other,
        }
    }

    pub fn kind(&self) -> ProviderKind {
        match self {
            Self::Fake(_) => ProviderKind::Fake,
            Self::AwsIam(_) => ProviderKind::AwsIam,
            Self::Postgres(_) => ProviderKind::Postgres,
            Self::Manual { kind } => *kind,
        }
    }

    pub fn capabilities(&self) -> Capabilities {
        capabilities_of(self.kind())
    }

    pub fn plan(&self, op: &Op) -> Result<RequestPlan, ProviderError> {
        match self {
            Self::Fake(p) => Ok(p.plan(op)),
            Self::AwsIam(p) => Ok(p.plan(op)),
            Self::Postgres(p) => Ok(p.plan(op)),
            Self::Manual { kind } => Err(ProviderError::Unsupported {
                kind: *kind,
                op: op.name(),
            }),
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
            Self::AwsIam(p) => p.execute(op, plan, http, secrets).await,
            Self::Postgres(p) => p.execute(op, plan, http, secrets).await,
            Self::Manual { kind } => Err(ProviderError::Unsupported {
                kind: *kind,
                op: op.name(),
            }),
        }
    }
}
