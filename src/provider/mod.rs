//! Providers: the services that issue keys. Each kind declares its capabilities, builds request
//! plans (pure) and executes them through the shared HTTP layer. A missing capability becomes a
//! guided manual step in the runbook.

mod fake;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::http::{Http, HttpError};
use crate::inventory::{ProviderDef, ProviderKind};
use crate::plan::{RequestPlan, SecretBag};
use crate::secret::Secret;

pub use fake::FakeProvider;

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
        ProviderKind::OpenAi
        | ProviderKind::Anthropic
        | ProviderKind::AwsIam
        | ProviderKind::SendGrid
        | ProviderKind::Postgres
        | ProviderKind::Manual => Capabilities::NONE,
    }
}

/// Why a kind runs manually, for the operator's checklist.
pub fn manual_reason(kind: ProviderKind) -> Option<&'static str> {
    match kind {
        ProviderKind::Manual => {
            Some("this provider is declared manual: every step is done by the operator")
        }
        ProviderKind::Fake => None,
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

#[derive(Debug, Clone, Serialize, Default)]
pub struct UsageReport {
    pub buckets: Vec<UsageBucket>,
    pub pages: u32,
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
}

impl ProviderError {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Http(e) => e.status(),
            _ => None,
        }
    }
}

/// A provider of a known kind, configured from the inventory. Static dispatch by `match`.
#[derive(Debug, Clone)]
pub enum AnyProvider {
    Fake(FakeProvider),
    /// Every capability is an operator checklist item.
    Manual {
        kind: ProviderKind,
    },
}

impl AnyProvider {
    pub fn from_def(def: &ProviderDef) -> Self {
        match def.kind {
            ProviderKind::Fake => Self::Fake(FakeProvider::new(def)),
            kind => Self::Manual { kind },
        }
    }

    pub fn kind(&self) -> ProviderKind {
        match self {
            Self::Fake(_) => ProviderKind::Fake,
            Self::Manual { kind } => *kind,
        }
    }

    pub fn capabilities(&self) -> Capabilities {
        capabilities_of(self.kind())
    }

    pub fn plan(&self, op: &Op) -> Result<RequestPlan, ProviderError> {
        match self {
            Self::Fake(p) => Ok(p.plan(op)),
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
            Self::Manual { kind } => Err(ProviderError::Unsupported {
                kind: *kind,
                op: op.name(),
            }),
        }
    }
}
