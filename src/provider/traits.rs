//! What a provider backend is: the [`Provider`] trait each backend module implements, and the
//! [`Capabilities`] it declares. The registry in `provider/mod.rs` turns the list of backends
//! into [`super::AnyProvider`] and the per-kind look-ups.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use super::{Identity, KeyListing, Op, OpOutput, ProviderError};
use crate::http::Http;
use crate::inventory::{Key, ProviderDef, ProviderKind};
use crate::plan::{RequestPlan, SecretBag};
use crate::secret::Secret;

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

/// The waits between revocation probes of a provider that reflects a deletion at once.
const PROOF_WAITS: [Duration; 4] = [Duration::from_millis(600); 4];

/// One provider backend. Plans are pure data; `execute` sends one plan. The dispatcher
/// ([`super::AnyProvider`]) checks the capabilities before `plan` and applies the drill guard
/// before `execute`, so a backend writes neither check itself.
pub trait Provider: Sized {
    /// The inventory kind this backend serves.
    const KIND: ProviderKind;
    /// What the kind can do by API. A missing capability becomes a guided manual step.
    const CAPABILITIES: Capabilities;
    /// Why the kind runs as guided manual steps, for the operator's checklist; `None` when
    /// its steps run by API.
    const MANUAL_REASON: Option<&'static str> = None;
    /// Whether the backend lists every key it holds ([`super::ListKeys`]: `inventory
    /// discover`, `lint --online`); such a backend also overrides `list_plan`/`list_keys`.
    const LISTS_KEYS: bool = false;

    /// Configure the backend from the inventory's definition.
    fn from_def(def: &ProviderDef) -> Self;

    /// The kind, for a backend that serves more than one (the manual fallback).
    fn kind(&self) -> ProviderKind {
        Self::KIND
    }

    /// Tell the backend which inventory key it works on, for APIs that cannot name a key by
    /// themselves (IAM access keys have no names; a PostgreSQL password belongs to a role).
    fn for_key(self, _key: &Key) -> Self {
        self
    }

    /// Whether a change takes a while to reach every endpoint, so that a key still accepted
    /// after a deletion proves nothing either way (IAM is eventually consistent).
    fn eventually_consistent(&self) -> bool {
        false
    }

    /// The waits between revocation probes while the provider may still show the old state.
    fn proof_waits(&self) -> Vec<Duration> {
        PROOF_WAITS.to_vec()
    }

    /// Whether `value` is the located key, from what this kind's values say about
    /// themselves (an AWS pair names its access key id); `None` leaves the decision to the
    /// provider's hint (see [`super::identity`]).
    fn identity(_value: &Secret, _key_id: Option<&str>) -> Option<Identity> {
        None
    }

    /// The request for one operation, before anything is sent.
    fn plan(&self, op: &Op) -> Result<RequestPlan, ProviderError>;

    /// Send a plan made by [`Provider::plan`] for `op`.
    fn execute(
        &self,
        op: &Op,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> impl Future<Output = Result<OpOutput, ProviderError>> + Send;

    /// The first call of a key listing, for backends with `LISTS_KEYS`.
    fn list_plan(&self) -> Result<RequestPlan, ProviderError> {
        Err(ProviderError::Unsupported {
            kind: self.kind(),
            op: "list keys",
        })
    }

    /// Every key the provider holds, for backends with `LISTS_KEYS`.
    fn list_keys(
        &self,
        _plan: &RequestPlan,
        _http: &Http,
        _secrets: &SecretBag,
    ) -> impl Future<Output = Result<KeyListing, ProviderError>> + Send {
        let kind = self.kind();
        async move {
            Err(ProviderError::Unsupported {
                kind,
                op: "list keys",
            })
        }
    }
}
