//! Stores: the secrets managers agents read their keys from. A replacement goes from the
//! provider's response straight into one of these, as a new version, and is read back.
//!
//! Each backend module implements [`Store`]: it declares whether it needs a credential and
//! has stages, builds request plans (pure) and executes them. [`AnyStore`] dispatches
//! statically over the backends of [`registry!`]'s one list and applies, once for all of
//! them, the drill guard ([`crate::plan::drill_guard`]): in a drill only reads go, by their
//! method or by their backend's explicit declaration (the Vault AppRole and Infisical
//! logins are POSTs that only mint a token).
//!
//! Adding a store:
//! 1. its module here (`mod name;` and its `pub use`), with `impl Store for Name`: `KIND`,
//!    `NEEDS_CREDENTIAL`, `HAS_STAGES` if it stages versions, `plan` and `execute`; reads
//!    whose verb is not GET/HEAD are marked `.declared_read()`; the spec table in its module
//!    documentation;
//! 2. one line in the `registry!` list below;
//! 3. its simulator under `sim/`, following the same published spec;
//! 4. its kind in the store contract suite (`tests/integration/stores_contract.rs`).
//!
//! Outside this module the kind also needs its name (`inventory::model`, `StoreKind`) and its
//! settings (`inventory::load`).

#[cfg(feature = "aws")]
mod aws_sm;
#[cfg(feature = "doppler")]
mod doppler;
#[cfg(feature = "infisical")]
mod infisical;
#[cfg(feature = "keyring-store")]
mod keyring;
mod memory;
mod traits;
#[cfg(feature = "vault")]
mod vault;
mod wire;

use serde::Serialize;

use crate::http::{Http, HttpError};
use crate::inventory::{StoreDef, StoreKind};
use crate::plan::{RequestPlan, SecretBag, SecretRef};
use crate::secret::Secret;

#[cfg(feature = "aws")]
pub use aws_sm::AwsSecretsManager;
#[cfg(feature = "doppler")]
pub use doppler::Doppler;
#[cfg(feature = "infisical")]
pub use infisical::Infisical;
#[cfg(feature = "keyring-store")]
pub use keyring::KeyringStore;
pub use memory::MemoryStore;
pub use traits::Store;
#[cfg(feature = "vault")]
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
    #[cfg(feature = "aws")]
    #[error("{0}")]
    Aws(#[from] crate::aws::AwsError),
    #[error("{0}")]
    NotBuilt(String),
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

impl StoreError {
    fn unbuilt(kind: StoreKind) -> Self {
        Self::NotBuilt(format!(
            "store kind {kind} is not in this build of keyfire (cargo feature `{}`)",
            kind.feature().unwrap_or("default")
        ))
    }
}

/// The registry: one line per backend. It generates [`AnyStore`] (one variant per backend,
/// static dispatch: each method is one `match` here). Every `StoreKind` has a backend; one
/// whose cargo feature is off in this build is `Unbuilt`, which inventory loading refuses
/// before a store is ever made from it, and which fails every operation if it is.
macro_rules! registry {
    ($($(#[$attr:meta])* $variant:ident($backend:ty)),+ $(,)?) => {
        /// A store of a known kind, configured from the inventory.
        #[derive(Debug, Clone)]
        pub enum AnyStore {
            $($(#[$attr])* $variant($backend),)+
            /// A kind this build left out (see `StoreKind::feature`).
            Unbuilt(StoreKind),
        }

        impl AnyStore {
            /// Build a store from its definition.
            pub fn from_def(def: &StoreDef) -> Self {
                match def.kind {
                    $($(#[$attr])* <$backend as Store>::KIND => Self::$variant(<$backend as Store>::from_def(def)),)+
                    #[allow(unreachable_patterns)]
                    kind => Self::Unbuilt(kind),
                }
            }

            pub fn kind(&self) -> StoreKind {
                match self {
                    $($(#[$attr])* Self::$variant(_) => <$backend as Store>::KIND,)+
                    Self::Unbuilt(kind) => *kind,
                }
            }

            /// Whether the store authenticates with `credential` (so the engine resolves it).
            pub fn needs_credential(&self) -> bool {
                match self {
                    $($(#[$attr])* Self::$variant(_) => <$backend as Store>::NEEDS_CREDENTIAL,)+
                    Self::Unbuilt(_) => false,
                }
            }

            /// Whether a written version can wait in a pending stage until it is promoted.
            pub fn has_stages(&self) -> bool {
                match self {
                    $($(#[$attr])* Self::$variant(_) => <$backend as Store>::HAS_STAGES,)+
                    Self::Unbuilt(_) => false,
                }
            }

            /// The version a `Write` named `token` creates, for stores that derive version
            /// ids from the write's name (so an interrupted write can be found again).
            pub fn version_for_token(&self, token: &str) -> Option<StoreVersion> {
                match self {
                    $($(#[$attr])* Self::$variant(s) => s.version_for_token(token),)+
                    Self::Unbuilt(_) => None,
                }
            }

            pub fn plan(
                &self,
                op: &StoreOp,
                loc: &SecretLocation,
            ) -> Result<RequestPlan, StoreError> {
                match self {
                    $($(#[$attr])* Self::$variant(s) => s.plan(op, loc),)+
                    Self::Unbuilt(kind) => Err(StoreError::unbuilt(*kind)),
                }
            }

            /// Send a plan made by [`AnyStore::plan`]. In a drill, only reads go: the
            /// operation must not change anything and the plan must read by its method or by
            /// its backend's declaration.
            pub async fn execute(
                &self,
                op: &StoreOp,
                loc: &SecretLocation,
                plan: &RequestPlan,
                http: &Http,
                secrets: &SecretBag,
            ) -> Result<StoreOutput, StoreError> {
                crate::plan::drill_guard(http.dry_run(), op.is_write(), plan)
                    .map_err(StoreError::DryRunBlocked)?;
                match self {
                    $($(#[$attr])* Self::$variant(s) => s.execute(op, loc, plan, http, secrets).await,)+
                    Self::Unbuilt(kind) => Err(StoreError::unbuilt(*kind)),
                }
            }
        }
    };
}

registry! {
    Memory(MemoryStore),
    #[cfg(feature = "vault")]
    VaultKv2(VaultKv2),
    #[cfg(feature = "aws")]
    AwsSecretsManager(AwsSecretsManager),
    #[cfg(feature = "keyring-store")]
    Keyring(KeyringStore),
    #[cfg(feature = "doppler")]
    Doppler(Doppler),
    #[cfg(feature = "infisical")]
    Infisical(Infisical),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Origin;
    use crate::secret::Redactor;

    // Nothing listens on port 9: a call the guards let through fails to connect, one they
    // refuse never tries.
    const NOWHERE: &str = "http://127.0.0.1:9";

    fn vault_approle() -> AnyStore {
        let settings =
            serde_json::json!({ "mount": "secret", "auth": "approle", "role_id": "r-1" });
        AnyStore::from_def(&StoreDef {
            id: "v".into(),
            kind: StoreKind::VaultKv2,
            address: Some(NOWHERE.into()),
            credential: None,
            settings: settings.as_object().cloned().unwrap_or_default(),
            origin: Origin { file: 0, line: 1 },
        })
    }

    fn loc() -> SecretLocation {
        SecretLocation {
            path: "agents/a".into(),
            field: "value".into(),
        }
    }

    fn drill() -> Http {
        // One attempt: a refused connection is the answer these tests wait for.
        Http::new(true, Redactor::new())
            .unwrap()
            .with_retry(crate::http::RetryPolicy {
                max_attempts: 1,
                base_delay: std::time::Duration::ZERO,
                max_delay: std::time::Duration::ZERO,
            })
    }

    fn bag() -> SecretBag {
        SecretBag {
            store_credential: Some(Secret::new("secret-id-FAKE-0123456789")),
            ..SecretBag::default()
        }
    }

    #[test]
    fn the_vault_approle_login_is_a_post_its_backend_declares_a_read() {
        let AnyStore::VaultKv2(vault) = vault_approle() else {
            panic!("a vault-kv2 definition builds a Vault store");
        };
        let login = vault.login_plan().unwrap();
        assert_eq!(login.method, "POST");
        assert!(login.read_declared);
        assert_eq!(crate::plan::drill_guard(true, false, &login), Ok(()));
    }

    #[tokio::test]
    async fn a_drill_reads_vault_through_its_approle_login() {
        let store = vault_approle();
        let op = StoreOp::Read { version: None };
        let plan = store.plan(&op, &loc()).unwrap();
        let err = store
            .execute(&op, &loc(), &plan, &drill(), &bag())
            .await
            .unwrap_err();
        // The login was sent (neither the dispatcher nor the HTTP client refused it): only
        // the connection failed.
        assert!(
            matches!(err, StoreError::Http(HttpError::Transport(_))),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_drill_refuses_a_store_read_whose_method_is_not_a_read() {
        let store = vault_approle();
        let op = StoreOp::Read { version: None };
        let post = RequestPlan::read("read by POST", "POST", format!("{NOWHERE}/v1/x"));
        let err = store
            .execute(&op, &loc(), &post, &drill(), &bag())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::DryRunBlocked(_)), "{err:?}");
        // A write operation is refused whatever its plan says.
        let write = StoreOp::Promote {
            version: StoreVersion::Number(2),
            from: None,
        };
        let get = RequestPlan::read("looks like a read", "GET", format!("{NOWHERE}/v1/x"));
        let err = store
            .execute(&write, &loc(), &get, &drill(), &bag())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::DryRunBlocked(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_drill_refuses_a_memory_write_in_the_dispatcher() {
        let store = AnyStore::Memory(MemoryStore::named("drill-refuses-memory-writes"));
        let op = StoreOp::Write {
            cas: None,
            pending: false,
            token: "t".into(),
            value: SecretRef::NewKey,
        };
        let plan = store.plan(&op, &loc()).unwrap();
        let bag = SecretBag {
            new_key: Some(Secret::new("mem-FAKE-new-value-0123456789")),
            ..SecretBag::default()
        };
        let err = store
            .execute(&op, &loc(), &plan, &drill(), &bag)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::DryRunBlocked(_)), "{err:?}");
        let AnyStore::Memory(memory) = store else {
            panic!("built as memory");
        };
        assert_eq!(memory.version("agents/a"), 0, "nothing written");
    }
}
