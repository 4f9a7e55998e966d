//! The OS keyring, through `keyring-core`: keyfire's admin credentials (`keyring:NAME`,
//! `keyfire auth`) and the `keyring` store for local development agents.
//!
//! On Linux the back-end is the kernel keyring (keyutils), which works headless but only in
//! a process that has a session keyring of its own: cron jobs, CI runners, containers and
//! `sudo` shells often do not, and then the kernel refuses access. Every failure says why and
//! what to do. `KEYFIRE_KEYRING=mock` selects an in-process store (tests only: nothing
//! outlives the process).
//!
//! The kernel keyring cannot be listed reliably (entries live in several keyrings and
//! vanish at reboot), so keyfire keeps the names it stored in an index entry of its own.

use std::sync::{Arc, OnceLock};

use keyring_core::{CredentialStore, Entry};

use crate::secret::Secret;

/// The service under which `keyring:NAME` admin credentials live.
pub const ADMIN_SERVICE: &str = "keyfire";
/// The index of names stored by `keyfire auth set` (a name users cannot pick: see
/// [`valid_name`]).
const INDEX_USER: &str = ".keyfire-index";

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("no entry `{name}` (service {service}) in the {backend}")]
    NoEntry {
        service: String,
        name: String,
        backend: &'static str,
    },
    #[error("the {backend} is not usable: {reason}. {advice}")]
    Unusable {
        backend: &'static str,
        reason: String,
        advice: &'static str,
    },
    #[error(
        "invalid keyring name {0:?}: use letters, digits, `-`, `_`, `.`, `/` or `@` (not starting with `.`)"
    )]
    InvalidName(String),
    #[error("the {backend} failed: {reason}")]
    Failed {
        backend: &'static str,
        reason: String,
    },
}

const ADVICE: &str = "On a headless Linux host run keyfire under a session keyring (`keyctl session - keyfire ...`, package keyutils), or reference the credential as env:VAR instead";

/// A keyring back-end: the platform's, or the in-process mock.
#[derive(Clone)]
pub struct Keyring {
    store: Option<Arc<CredentialStore>>,
    backend: &'static str,
    /// Why the platform store could not even be opened.
    broken: Option<String>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.backend)
    }
}

/// Names `keyfire auth set` accepts: they become keyutils descriptions and inventory
/// references, so keep them printable and unambiguous.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '@'))
}

impl Keyring {
    /// The process's keyring: the mock when `KEYFIRE_KEYRING=mock`, else the platform's.
    pub fn system() -> Self {
        static SYSTEM: OnceLock<Keyring> = OnceLock::new();
        SYSTEM
            .get_or_init(|| {
                // The in-process mock is a test hook: absent from release builds.
                #[cfg(feature = "testing")]
                if std::env::var("KEYFIRE_KEYRING").is_ok_and(|v| v == "mock") {
                    return Self::mock();
                }
                Self::platform()
            })
            .clone()
    }

    /// A fresh in-process store (tests).
    #[cfg(feature = "testing")]
    pub fn mock() -> Self {
        match keyring_core::mock::Store::new() {
            Ok(s) => Self {
                store: Some(s),
                backend: "mock keyring (in-process, tests only)",
                broken: None,
            },
            Err(e) => Self {
                store: None,
                backend: "mock keyring (in-process, tests only)",
                broken: Some(e.to_string()),
            },
        }
    }

    #[cfg(target_os = "linux")]
    fn platform() -> Self {
        let backend = "kernel keyring (keyutils; entries are lost at reboot)";
        match linux_keyutils_keyring_store::Store::new() {
            Ok(s) => Self {
                store: Some(s),
                backend,
                broken: None,
            },
            Err(e) => Self {
                store: None,
                backend,
                broken: Some(e.to_string()),
            },
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn platform() -> Self {
        Self {
            store: None,
            backend: "OS keyring",
            broken: Some(
                "this build of keyfire has no keyring back-end for this platform yet".into(),
            ),
        }
    }

    pub fn backend(&self) -> &'static str {
        self.backend
    }

    fn entry(&self, service: &str, name: &str) -> Result<Entry, KeyringError> {
        let Some(store) = &self.store else {
            return Err(KeyringError::Unusable {
                backend: self.backend,
                reason: self.broken.clone().unwrap_or_default(),
                advice: ADVICE,
            });
        };
        Entry::new_in_store(store, service, name).map_err(|e| self.error(service, name, e))
    }

    fn error(&self, service: &str, name: &str, e: keyring_core::Error) -> KeyringError {
        match e {
            keyring_core::Error::NoEntry => KeyringError::NoEntry {
                service: service.into(),
                name: name.into(),
                backend: self.backend,
            },
            keyring_core::Error::NoStorageAccess(inner) => KeyringError::Unusable {
                backend: self.backend,
                reason: format!(
                    "access denied ({inner}); this process has no session keyring of its own, as in cron, CI, containers and sudo"
                ),
                advice: ADVICE,
            },
            keyring_core::Error::PlatformFailure(inner) => KeyringError::Unusable {
                backend: self.backend,
                reason: format!(
                    "the platform refused the call ({inner}); container runtimes often block the keyctl system calls"
                ),
                advice: ADVICE,
            },
            other => KeyringError::Failed {
                backend: self.backend,
                reason: other.to_string(),
            },
        }
    }

    pub fn get(&self, service: &str, name: &str) -> Result<Secret, KeyringError> {
        let entry = self.entry(service, name)?;
        entry
            .get_password()
            .map(Secret::new)
            .map_err(|e| self.error(service, name, e))
    }

    pub fn set(&self, service: &str, name: &str, value: &Secret) -> Result<(), KeyringError> {
        let entry = self.entry(service, name)?;
        entry
            .set_password(value.expose())
            .map_err(|e| self.error(service, name, e))
    }

    /// `Ok(false)` when there was nothing to delete.
    pub fn delete(&self, service: &str, name: &str) -> Result<bool, KeyringError> {
        let entry = self.entry(service, name)?;
        match entry.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(e) => Err(self.error(service, name, e)),
        }
    }

    // ---- admin credentials (`keyfire auth`) ---------------------------------------------

    /// The names `keyfire auth set` stored, sorted.
    pub fn admin_names(&self) -> Result<Vec<String>, KeyringError> {
        match self.get(ADMIN_SERVICE, INDEX_USER) {
            Ok(index) => {
                let mut names: Vec<String> = index
                    .expose()
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect();
                names.sort();
                names.dedup();
                Ok(names)
            }
            Err(KeyringError::NoEntry { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    fn write_index(&self, names: &[String]) -> Result<(), KeyringError> {
        if names.is_empty() {
            self.delete(ADMIN_SERVICE, INDEX_USER).map(|_| ())
        } else {
            self.set(ADMIN_SERVICE, INDEX_USER, &Secret::new(names.join("\n")))
        }
    }

    pub fn set_admin(&self, name: &str, value: &Secret) -> Result<(), KeyringError> {
        if !valid_name(name) {
            return Err(KeyringError::InvalidName(name.into()));
        }
        self.set(ADMIN_SERVICE, name, value)?;
        let mut names = self.admin_names()?;
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
            names.sort();
            self.write_index(&names)?;
        }
        Ok(())
    }

    /// `Ok(false)` when no such credential was stored.
    pub fn remove_admin(&self, name: &str) -> Result<bool, KeyringError> {
        let existed = self.delete(ADMIN_SERVICE, name)?;
        let mut names = self.admin_names()?;
        let before = names.len();
        names.retain(|n| n != name);
        if names.len() != before {
            self.write_index(&names)?;
        }
        Ok(existed || names.len() != before)
    }

    /// Whether a stored name still has a value (the kernel keyring forgets at reboot).
    pub fn has(&self, service: &str, name: &str) -> Result<bool, KeyringError> {
        match self.get(service, name) {
            Ok(_) => Ok(true),
            Err(KeyringError::NoEntry { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_credentials_round_trip_with_an_index_of_names() {
        let k = Keyring::mock();
        assert!(k.admin_names().unwrap().is_empty());
        k.set_admin("openai-admin", &Secret::new("sk-admin-CANARY-1"))
            .unwrap();
        k.set_admin("aws/prod", &Secret::new("AKIA:xyz")).unwrap();
        k.set_admin("openai-admin", &Secret::new("sk-admin-CANARY-2"))
            .unwrap();
        assert_eq!(k.admin_names().unwrap(), vec!["aws/prod", "openai-admin"]);
        assert_eq!(
            k.get(ADMIN_SERVICE, "openai-admin").unwrap().expose(),
            "sk-admin-CANARY-2"
        );
        assert!(k.remove_admin("aws/prod").unwrap());
        assert!(!k.remove_admin("aws/prod").unwrap());
        assert_eq!(k.admin_names().unwrap(), vec!["openai-admin"]);
        assert!(matches!(
            k.get(ADMIN_SERVICE, "aws/prod"),
            Err(KeyringError::NoEntry { .. })
        ));
    }

    #[test]
    fn names_that_could_collide_with_the_index_are_refused() {
        assert!(valid_name("openai-admin"));
        assert!(!valid_name(".keyfire-index"));
        assert!(!valid_name("with space"));
        assert!(!valid_name(""));
        let k = Keyring::mock();
        assert!(matches!(
            k.set_admin(".keyfire-index", &Secret::new("x")),
            Err(KeyringError::InvalidName(_))
        ));
    }
}
