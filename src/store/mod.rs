//! Stores: the secrets managers agents read their keys from. A replacement goes from the
//! provider's response straight into one of these, as a new version, and is read back.

mod memory;
mod vault;

use serde::Serialize;

use crate::http::{Http, HttpError};
use crate::inventory::{StoreDef, StoreKind};
use crate::plan::{RequestPlan, SecretBag};
use crate::secret::Secret;

pub use memory::MemoryStore;
pub use vault::VaultKv2;

/// Where one key's value lives in a store.
#[derive(Debug, Clone, Serialize)]
pub struct SecretLocation {
    pub path: String,
    pub field: String,
}

#[derive(Debug, Clone)]
pub enum StoreOp {
    /// Read the current version, or a given one.
    Read { version: Option<u64> },
    /// Write the new key (`SecretRef::NewKey`) as a new version, refusing if the current
    /// version is no longer `cas` (someone else wrote in between).
    Write { cas: Option<u64> },
}

#[derive(Debug)]
pub enum StoreOutput {
    Value { value: Secret, version: u64 },
    Missing,
    Written { version: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("the secret at {path} has no field `{field}`")]
    NoField { path: String, field: String },
    #[error("check-and-set failed at {path}: the secret changed since version {expected} was read")]
    CasMismatch { path: String, expected: u64 },
    #[error("unexpected response from the store: {0}")]
    Malformed(String),
    #[error("{0} stores are not supported by this keyfire yet")]
    Unsupported(StoreKind),
    #[error("the plan needs the new key, which is not in memory")]
    NoNewKey,
}

#[derive(Debug, Clone)]
pub enum AnyStore {
    Memory(MemoryStore),
    VaultKv2(VaultKv2),
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
            kind => Self::Unsupported(kind),
        }
    }

    pub fn kind(&self) -> StoreKind {
        match self {
            Self::Memory(_) => StoreKind::Memory,
            Self::VaultKv2(_) => StoreKind::VaultKv2,
            Self::Unsupported(k) => *k,
        }
    }

    /// Whether the store authenticates with `credential` (so the engine resolves it).
    pub fn needs_credential(&self) -> bool {
        matches!(self, Self::VaultKv2(_))
    }

    pub fn plan(&self, op: &StoreOp, loc: &SecretLocation) -> Result<RequestPlan, StoreError> {
        match self {
            Self::Memory(s) => Ok(s.plan(op, loc)),
            Self::VaultKv2(s) => Ok(s.plan(op, loc)),
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
            Self::Unsupported(k) => Err(StoreError::Unsupported(*k)),
        }
    }
}
