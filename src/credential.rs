//! Resolving admin and store credentials from their references (`keyring:`, `env:`,
//! `store:`). Values go straight into a `Secret` and into the redactor.

use crate::http::Http;
use crate::inventory::{CredentialRef, Inventory};
use crate::plan::SecretBag;
use crate::secret::Secret;
use crate::store::{AnyStore, SecretLocation, StoreOp, StoreOutput};

/// The keyring service name under which `keyring:NAME` credentials live.
pub const KEYRING_SERVICE: &str = crate::keyring::ADMIN_SERVICE;

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("environment variable {0} is not set (credential env:{0})")]
    EnvMissing(String),
    #[error("keyring entry `{name}` (service {KEYRING_SERVICE}) is not usable: {reason}")]
    Keyring { name: String, reason: String },
    #[error("credential {reference}: {reason}")]
    Store { reference: String, reason: String },
    #[error("credential {0}: store references nest too deeply")]
    TooDeep(String),
}

pub async fn resolve(
    reference: &CredentialRef,
    inv: &Inventory,
    http: &Http,
) -> Result<Secret, CredentialError> {
    resolve_depth(reference, inv, http, 0).await
}

fn resolve_depth<'a>(
    reference: &'a CredentialRef,
    inv: &'a Inventory,
    http: &'a Http,
    depth: u8,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Secret, CredentialError>> + Send + 'a>>
{
    Box::pin(async move {
        let secret = match reference {
            CredentialRef::Env { var } => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Secret::new(v),
                _ => return Err(CredentialError::EnvMissing(var.clone())),
            },
            CredentialRef::Keyring { name } => {
                let name = name.clone();
                tokio::task::spawn_blocking(move || keyring_get(&name))
                    .await
                    .map_err(|e| CredentialError::Keyring {
                        name: reference.to_string(),
                        reason: e.to_string(),
                    })??
            }
            CredentialRef::Store { store, path, field } => {
                if depth > 2 {
                    return Err(CredentialError::TooDeep(reference.to_string()));
                }
                let err = |reason: String| CredentialError::Store {
                    reference: reference.to_string(),
                    reason,
                };
                let def = inv
                    .store(store)
                    .ok_or_else(|| err(format!("no store `{store}`")))?;
                let backend = AnyStore::from_def(def);
                let mut bag = SecretBag::default();
                if let Some(cref) = &def.credential {
                    bag.store_credential = Some(resolve_depth(cref, inv, http, depth + 1).await?);
                }
                let loc = SecretLocation {
                    path: path.clone(),
                    field: field.clone(),
                };
                let op = StoreOp::Read { version: None };
                let plan = backend.plan(&op, &loc).map_err(|e| err(e.to_string()))?;
                match backend
                    .execute(&op, &loc, &plan, http, &bag)
                    .await
                    .map_err(|e| err(e.to_string()))?
                {
                    StoreOutput::Value { value, .. } => value,
                    _ => return Err(err(format!("nothing stored at {path}"))),
                }
            }
        };
        http.redactor().learn(&secret);
        Ok(secret)
    })
}

fn keyring_get(name: &str) -> Result<Secret, CredentialError> {
    crate::keyring::Keyring::system()
        .get(KEYRING_SERVICE, name)
        .map_err(|e| CredentialError::Keyring {
            name: name.to_string(),
            reason: e.to_string(),
        })
}
