//! Stores: the secrets managers agents read their keys from. A replacement goes from the
//! provider's response straight into one of these, as a new version, and is read back.

mod aws_sm;
mod doppler;
mod infisical;
mod keyring;
mod memory;
mod vault;
mod wire;

use serde::Serialize;

use crate::http::{Http, HttpError};
use crate::inventory::{StoreDef, StoreKind};
use crate::plan::{RequestPlan, SecretBag, SecretRef};
use crate::secret::Secret;

pub use aws_sm::AwsSecretsManager;
pub use doppler::Doppler;
pub use infisical::Infisical;
pub use keyring::KeyringStore;
pub use memory::MemoryStore;
pub use vault::VaultKv2;

/// A store's name for one version of a secret: a number in Vault and the memory store, an
/// opaque id in AWS Secrets Manager (the `VersionId`, which keyfire derives from the incident).
/// Serialized untagged, so records written before ids existed still read back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum StoreVersion {
    Number(u64),
    Id(String),
}

impl StoreVersion {
    pub fn number(&self) -> Option<u64> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Id(_) => None,
        }
    }
}

impl From<u64> for StoreVersion {
    fn from(n: u64) -> Self {
        Self::Number(n)
    }
}

impl std::fmt::Display for StoreVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Id(id) => f.write_str(id),
        }
    }
}

/// Where one key's value lives in a store.
#[derive(Debug, Clone, Serialize)]
pub struct SecretLocation {
    pub path: String,
    pub field: String,
}

#[derive(Debug, Clone)]
pub enum StoreOp {
    /// Read the current version, or a given one.
    Read { version: Option<StoreVersion> },
    /// Write `value` (the new key, or the previous key put back after a failed rotation) as a
    /// new version, refusing if the current version is no longer `cas` (someone else wrote
    /// in between). With `pending`, a store
    /// with stages parks the version where agents do not read it until `Promote`; stores
    /// without stages make it current at once. `token` names the write deterministically
    /// (derived from the incident), so a retried write is recognised instead of repeated.
    Write {
        cas: Option<StoreVersion>,
        pending: bool,
        token: String,
        value: SecretRef,
    },
    /// Make a pending version the one agents read, taking the label from `from` (the version
    /// observed when the incident opened). A recorded no-op for stores without stages.
    Promote {
        version: StoreVersion,
        from: Option<StoreVersion>,
    },
}

/// A string setting of the store (validated at inventory load), as the provider's `setting`.
pub(crate) fn setting(def: &StoreDef, name: &str) -> Option<String> {
    def.settings
        .get(name)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

/// The store's API base: `address`, else the service's own, without a trailing slash.
pub(crate) fn base_address(def: &StoreDef, default: &str) -> String {
    def.address
        .as_deref()
        .unwrap_or(default)
        .trim_end_matches('/')
        .to_string()
}

/// How a plan names the value a write stores.
pub(crate) fn written(value: SecretRef) -> &'static str {
    match value {
        SecretRef::OldKey => "the previous key (restoring it)",
        _ => "the new key",
    }
}

impl StoreOp {
    /// Whether the operation changes the store, whatever its plan says.
    pub fn is_write(&self) -> bool {
        matches!(self, Self::Write { .. } | Self::Promote { .. })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Read { .. } => "read",
            Self::Write { .. } => "write",
            Self::Promote { .. } => "promote",
        }
    }
}

#[derive(Debug)]
pub enum StoreOutput {
    Value {
        value: Secret,
        version: StoreVersion,
    },
    Missing,
    Written {
        version: StoreVersion,
    },
    Promoted {
        version: StoreVersion,
        /// The store had no stages: the write already made the version current.
        noop: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("the secret at {path} has no field `{field}`")]
    NoField { path: String, field: String },
    #[error("check-and-set failed at {path}: the secret changed since version {expected} was read")]
    CasMismatch {
        path: String,
        expected: StoreVersion,
    },
    #[error("{0}")]
    Aws(#[from] crate::aws::AwsError),
    #[error("keyring: {0}")]
    Keyring(String),
    #[error("refused to send a write in a drill: {0}")]
    DryRunBlocked(String),
    #[error("unexpected response from the store: {0}")]
    Malformed(String),
    /// Doppler: the config changed (by someone, at some time, named from its activity log)
    /// since keyfire read it; there is no check-and-set to lean on, so keyfire stops.
    #[error("{0}")]
    Changed(String),
    /// Infisical: an approval policy covers the path, so the change waits for a reviewer and
    /// is not live.
    #[error("{0}")]
    NotApplied(String),
    #[error("{0} stores are not supported by this keyfire yet")]
    Unsupported(StoreKind),
    #[error("the plan needs the new key, which is not in memory")]
    NoNewKey,
    /// The store refused the call for want of a permission (a fresh login did not help).
    #[error("permission denied: {0}")]
    Denied(String),
    /// KV v2: the latest version reads as 404 but still counts for check-and-set.
    #[error(
        "the latest version ({version}) of {path} is {how}: undelete it (`bao kv undelete -versions={version}`) if agents should still read it, or delete the secret's metadata if the path is abandoned; keyfire will not write over it"
    )]
    LatestVersionGone {
        path: String,
        version: u64,
        how: String,
    },
}

#[derive(Debug, Clone)]
pub enum AnyStore {
    Memory(MemoryStore),
    VaultKv2(VaultKv2),
    AwsSecretsManager(AwsSecretsManager),
    Keyring(KeyringStore),
    Doppler(Doppler),
    Infisical(Infisical),
    Unsupported(StoreKind),
}

impl AnyStore {
    /// Build a store from its definition. `memory` stores with the same id share contents
    /// within the process (`memory` is the training and test store).
    pub fn from_def(def: &StoreDef) -> Self {
        match def.kind {
            StoreKind::Memory => {
                let name = def
                    .settings
                    .get("instance")
                    .and_then(|v| v.as_str())
                    .unwrap_or(&def.id);
                Self::Memory(MemoryStore::named(name))
            }
            StoreKind::VaultKv2 => Self::VaultKv2(VaultKv2::new(def)),
            StoreKind::AwsSecretsManager => Self::AwsSecretsManager(AwsSecretsManager::new(def)),
            StoreKind::Keyring => Self::Keyring(KeyringStore::new(def)),
            StoreKind::Doppler => Self::Doppler(Doppler::new(def)),
            StoreKind::Infisical => Self::Infisical(Infisical::new(def)),
        }
    }

    pub fn kind(&self) -> StoreKind {
        match self {
            Self::Memory(_) => StoreKind::Memory,
            Self::VaultKv2(_) => StoreKind::VaultKv2,
            Self::AwsSecretsManager(_) => StoreKind::AwsSecretsManager,
            Self::Keyring(_) => StoreKind::Keyring,
            Self::Doppler(_) => StoreKind::Doppler,
            Self::Infisical(_) => StoreKind::Infisical,
            Self::Unsupported(k) => *k,
        }
    }

    /// Whether the store authenticates with `credential` (so the engine resolves it). AWS
    /// falls back to the SDK's default credential chain when no reference is given.
    pub fn needs_credential(&self) -> bool {
        matches!(
            self,
            Self::VaultKv2(_) | Self::AwsSecretsManager(_) | Self::Doppler(_) | Self::Infisical(_)
        )
    }

    /// Whether a written version can wait in a pending stage until it is promoted. Without
    /// stages a write is live at once and `Promote` is a recorded no-op.
    pub fn has_stages(&self) -> bool {
        matches!(self, Self::AwsSecretsManager(_))
    }

    /// The version a `Write` named `token` creates, for stores that derive version ids from
    /// the write's name (so an interrupted write can be found again).
    pub fn version_for_token(&self, token: &str) -> Option<StoreVersion> {
        match self {
            Self::AwsSecretsManager(_) => Some(StoreVersion::Id(aws_sm::request_token(token))),
            _ => None,
        }
    }

    pub fn plan(&self, op: &StoreOp, loc: &SecretLocation) -> Result<RequestPlan, StoreError> {
        match self {
            Self::Memory(s) => Ok(s.plan(op, loc)),
            Self::VaultKv2(s) => Ok(s.plan(op, loc)),
            Self::AwsSecretsManager(s) => Ok(s.plan(op, loc)),
            Self::Keyring(s) => Ok(s.plan(op, loc)),
            Self::Doppler(s) => Ok(s.plan(op, loc)),
            Self::Infisical(s) => Ok(s.plan(op, loc)),
            Self::Unsupported(k) => Err(StoreError::Unsupported(*k)),
        }
    }

    pub async fn execute(
        &self,
        op: &StoreOp,
        loc: &SecretLocation,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<StoreOutput, StoreError> {
        match self {
            Self::Memory(s) => s.execute(op, loc, http, secrets),
            Self::VaultKv2(s) => s.execute(op, loc, plan, http, secrets).await,
            Self::AwsSecretsManager(s) => s.execute(op, loc, plan, http, secrets).await,
            Self::Keyring(s) => s.execute(op, loc, plan, http, secrets).await,
            Self::Doppler(s) => s.execute(op, loc, plan, http, secrets).await,
            Self::Infisical(s) => s.execute(op, loc, plan, http, secrets).await,
            Self::Unsupported(k) => Err(StoreError::Unsupported(*k)),
        }
    }
}
