//! The OS keyring, through `keyring-core`: keyfire's admin credentials (`keyring:NAME`,
//! `keyfire auth`) and the `keyring` store for local development agents.
//!
//! Which store holds the entries:
//!
//! | Platform | Store | Crate |
//! |---|---|---|
//! | Linux, a Secret Service answering on the D-Bus session bus (desktops) | Secret Service: GNOME Keyring, KWallet, KeePassXC | `zbus-secret-service-keyring-store` (pure Rust, no libdbus) |
//! | Linux otherwise (servers, CI, containers) | kernel keyring (keyutils) | `linux-keyutils-keyring-store` |
//! | macOS | the login keychain | `apple-native-keyring-store` (`keychain`) |
//! | Windows | Credential Manager | `windows-native-keyring-store` |
//!
//! On Linux the choice is made once per process and can be forced with
//! `KEYFIRE_KEYRING=secret-service|keyutils`; the two stores do not see each other's entries,
//! so the choice is shown wherever the store is named (`keyfire auth list`). The kernel
//! keyring works headless but only in a process that has a session keyring of its own: cron
//! jobs, CI runners, containers and `sudo` shells often do not, and then the kernel refuses
//! access. The Secret Service must be unlocked: keyfire refuses a locked one rather than wait
//! on an unlock prompt (see [`secret_service`]). Every failure says why and what to do.
//! `KEYFIRE_KEYRING=mock` selects an in-process store (test builds only: nothing outlives the
//! process).
//!
//! No store can be listed reliably for keyfire's names alone (the kernel keyring's entries
//! live in several keyrings and vanish at reboot), so keyfire keeps the names it stored in an
//! index entry of its own.

#[cfg(target_os = "linux")]
mod secret_service;

use std::sync::{Arc, OnceLock};

use keyring_core::{CredentialStore, Entry};

use crate::secret::Secret;

/// The service under which `keyring:NAME` admin credentials live.
pub const ADMIN_SERVICE: &str = "keyfire";
/// The index of names stored by `keyfire auth set` (a name users cannot pick: see
/// [`valid_name`]).
const INDEX_USER: &str = ".keyfire-index";
/// The variable that forces a store on Linux.
pub const KEYRING_VAR: &str = "KEYFIRE_KEYRING";

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
    // The value is not repeated: whatever was typed there is not keyfire's to echo.
    #[error(
        "{KEYRING_VAR} must be `secret-service` or `keyutils` (or unset, to choose automatically)"
    )]
    BadChoice,
}

/// The kind of store entries live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    #[cfg(target_os = "linux")]
    SecretService,
    #[cfg(target_os = "linux")]
    Keyutils,
    #[cfg(target_os = "macos")]
    MacosKeychain,
    #[cfg(target_os = "windows")]
    WindowsCredentialManager,
    /// A platform with no store in this build.
    Unsupported,
    /// The in-process store of test builds.
    Mock,
}

impl Backend {
    /// The short name: `KEYFIRE_KEYRING` values and `auth list --json`.
    pub fn id(self) -> &'static str {
        match self {
            #[cfg(target_os = "linux")]
            Self::SecretService => "secret-service",
            #[cfg(target_os = "linux")]
            Self::Keyutils => "keyutils",
            #[cfg(target_os = "macos")]
            Self::MacosKeychain => "macos-keychain",
            #[cfg(target_os = "windows")]
            Self::WindowsCredentialManager => "windows-credential-manager",
            Self::Unsupported => "none",
            Self::Mock => "mock",
        }
    }

    /// What users read in messages ("stored ... in the {description}").
    pub fn description(self) -> &'static str {
        match self {
            #[cfg(target_os = "linux")]
            Self::SecretService => "Secret Service keyring (D-Bus session: GNOME Keyring, KWallet)",
            #[cfg(target_os = "linux")]
            Self::Keyutils => "kernel keyring (keyutils; entries are lost at reboot)",
            #[cfg(target_os = "macos")]
            Self::MacosKeychain => "macOS keychain",
            #[cfg(target_os = "windows")]
            Self::WindowsCredentialManager => "Windows Credential Manager",
            Self::Unsupported => "OS keyring",
            Self::Mock => "mock keyring (in-process, tests only)",
        }
    }

    fn advice(self) -> &'static str {
        match self {
            #[cfg(target_os = "linux")]
            Self::Keyutils => KEYUTILS_ADVICE,
            #[cfg(target_os = "linux")]
            Self::SecretService => SECRET_SERVICE_ADVICE,
            _ => "Reference the credential as env:VAR instead",
        }
    }
}

#[cfg(target_os = "linux")]
const KEYUTILS_ADVICE: &str = "On a headless Linux host run keyfire under a session keyring (`keyctl session - keyfire ...`, package keyutils), or reference the credential as env:VAR instead";
#[cfg(target_os = "linux")]
const SECRET_SERVICE_ADVICE: &str = "Unlock the keyring (log in to the desktop session, or `gnome-keyring-daemon --unlock` with the password on stdin), or set KEYFIRE_KEYRING=keyutils for the kernel keyring, or reference the credential as env:VAR instead";

/// What `KEYFIRE_KEYRING` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Unset: the Secret Service when one answers, else the kernel keyring (Linux); the
    /// native store elsewhere.
    Auto,
    SecretService,
    Keyutils,
    Mock,
}

impl Choice {
    /// Reads `KEYFIRE_KEYRING` (an empty value counts as unset).
    pub fn from_env() -> Result<Self, KeyringError> {
        match std::env::var(KEYRING_VAR) {
            Err(std::env::VarError::NotPresent) => Ok(Self::Auto),
            Err(std::env::VarError::NotUnicode(_)) => Err(KeyringError::BadChoice),
            Ok(v) => Self::parse(&v),
        }
    }

    pub fn parse(value: &str) -> Result<Self, KeyringError> {
        match value {
            "" => Ok(Self::Auto),
            "secret-service" => Ok(Self::SecretService),
            "keyutils" => Ok(Self::Keyutils),
            // The in-process mock is a test hook: absent from release builds.
            "mock" if cfg!(feature = "testing") => Ok(Self::Mock),
            _ => Err(KeyringError::BadChoice),
        }
    }
}

/// A keyring back-end: the platform's, or the in-process mock.
#[derive(Clone)]
pub struct Keyring {
    store: Option<Arc<CredentialStore>>,
    backend: Backend,
    /// Why this store: set by `KEYFIRE_KEYRING`, or what the automatic choice found.
    why: String,
    /// Why the store could not even be opened.
    broken: Option<String>,
    /// Secret Service only: reads lock state before each call.
    #[cfg(target_os = "linux")]
    probe: Option<Arc<secret_service::LockProbe>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.backend.description())
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
    /// The process's keyring, chosen once (see the module doc).
    pub fn system() -> Self {
        static SYSTEM: OnceLock<Keyring> = OnceLock::new();
        SYSTEM
            .get_or_init(|| match Choice::from_env() {
                Ok(choice) => Self::choose(choice),
                Err(e) => Self::opened(
                    Backend::Unsupported,
                    Err(e.to_string()),
                    format!("{KEYRING_VAR} is invalid"),
                ),
            })
            .clone()
    }

    fn opened(
        backend: Backend,
        store: Result<Arc<CredentialStore>, String>,
        why: impl Into<String>,
    ) -> Self {
        let (store, broken) = match store {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e)),
        };
        Self {
            store,
            backend,
            why: why.into(),
            broken,
            #[cfg(target_os = "linux")]
            probe: None,
        }
    }

    /// The store `choice` names on this platform.
    pub fn choose(choice: Choice) -> Self {
        const FORCED: &str = "set by KEYFIRE_KEYRING";
        match choice {
            #[cfg(feature = "testing")]
            Choice::Mock => Self::mock(),
            #[cfg(not(feature = "testing"))]
            Choice::Mock => Self::opened(
                Backend::Mock,
                Err("this build has no mock keyring".into()),
                FORCED,
            ),
            #[cfg(target_os = "linux")]
            Choice::Keyutils => Self::keyutils(FORCED),
            #[cfg(target_os = "linux")]
            Choice::SecretService => Self::secret_service(FORCED).unwrap_or_else(|k| k),
            #[cfg(target_os = "linux")]
            Choice::Auto => Self::secret_service(
                "chosen automatically: a Secret Service answers on the D-Bus session bus",
            )
            .unwrap_or_else(|failed| {
                Self::keyutils(format!(
                    "chosen automatically: no Secret Service on a D-Bus session bus ({})",
                    failed.broken.unwrap_or_default()
                ))
            }),
            #[cfg(not(target_os = "linux"))]
            Choice::SecretService | Choice::Keyutils => Self::opened(
                Backend::Unsupported,
                Err("KEYFIRE_KEYRING=secret-service|keyutils exist on Linux only".into()),
                FORCED,
            ),
            #[cfg(not(target_os = "linux"))]
            Choice::Auto => Self::native(),
        }
    }

    /// A fresh in-process store (tests).
    #[cfg(feature = "testing")]
    pub fn mock() -> Self {
        Self::opened(
            Backend::Mock,
            keyring_core::mock::Store::new()
                .map(|s| s as Arc<CredentialStore>)
                .map_err(|e| e.to_string()),
            "set by KEYFIRE_KEYRING",
        )
    }

    /// The kernel keyring of this process's session.
    #[cfg(target_os = "linux")]
    pub fn keyutils(why: impl Into<String>) -> Self {
        Self::opened(
            Backend::Keyutils,
            linux_keyutils_keyring_store::Store::new()
                .map(|s| s as Arc<CredentialStore>)
                .map_err(|e| e.to_string()),
            why,
        )
    }

    /// The Secret Service on the session bus; `Err` holds the unusable keyring that says why.
    #[cfg(target_os = "linux")]
    pub fn secret_service(why: impl Into<String>) -> Result<Self, Self> {
        match secret_service::open() {
            Ok((store, probe)) => {
                let mut k = Self::opened(Backend::SecretService, Ok(store), why);
                k.probe = Some(probe);
                Ok(k)
            }
            Err(e) => Err(Self::opened(Backend::SecretService, Err(e), why)),
        }
    }

    #[cfg(target_os = "macos")]
    fn native() -> Self {
        Self::opened(
            Backend::MacosKeychain,
            apple_native_keyring_store::keychain::Store::new()
                .map(|s| s as Arc<CredentialStore>)
                .map_err(|e| e.to_string()),
            "the platform's store",
        )
    }

    #[cfg(target_os = "windows")]
    fn native() -> Self {
        Self::opened(
            Backend::WindowsCredentialManager,
            windows_native_keyring_store::Store::new()
                .map(|s| s as Arc<CredentialStore>)
                .map_err(|e| e.to_string()),
            "the platform's store",
        )
    }

    #[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
    fn native() -> Self {
        Self::opened(
            Backend::Unsupported,
            Err("this build of keyfire has no keyring back-end for this platform".into()),
            "the platform's store",
        )
    }

    /// What users read: "stored ... in the {backend}".
    pub fn backend(&self) -> &'static str {
        self.backend.description()
    }

    pub fn kind(&self) -> Backend {
        self.backend
    }

    /// Why this store was chosen.
    pub fn why(&self) -> &str {
        &self.why
    }

    /// Runs one operation on the entry `service`/`name`. Secret Service calls first check
    /// the keyring is unlocked and run under a deadline; the other stores answer from the
    /// kernel or the OS without waiting on anyone.
    fn call<T: Send + 'static>(
        &self,
        service: &str,
        name: &str,
        op: impl FnOnce(&Entry) -> keyring_core::Result<T> + Send + 'static,
    ) -> Result<T, KeyringError> {
        let Some(store) = &self.store else {
            return Err(self.unusable(self.broken.clone().unwrap_or_default()));
        };
        #[cfg(target_os = "linux")]
        if let Some(probe) = &self.probe {
            let (store, probe) = (store.clone(), probe.clone());
            let (s, n) = (service.to_string(), name.to_string());
            let outcome = secret_service::within(secret_service::DEADLINE, move || {
                probe.check()?;
                Ok::<_, secret_service::Refused>(
                    Entry::new_in_store(&store, &s, &n).and_then(|e| op(&e)),
                )
            });
            return match outcome {
                Err(late) => Err(self.unusable(late.to_string())),
                Ok(Err(refused)) => Err(self.unusable(format!("{refused}"))),
                Ok(Ok(result)) => result.map_err(|e| self.error(service, name, e)),
            };
        }
        Entry::new_in_store(store, service, name)
            .and_then(|e| op(&e))
            .map_err(|e| self.error(service, name, e))
    }

    fn unusable(&self, reason: String) -> KeyringError {
        KeyringError::Unusable {
            backend: self.backend(),
            reason,
            advice: self.backend.advice(),
        }
    }

    fn error(&self, service: &str, name: &str, e: keyring_core::Error) -> KeyringError {
        match (e, self.backend) {
            (keyring_core::Error::NoEntry, _) => KeyringError::NoEntry {
                service: service.into(),
                name: name.into(),
                backend: self.backend(),
            },
            #[cfg(target_os = "linux")]
            (keyring_core::Error::NoStorageAccess(inner), Backend::Keyutils) => self.unusable(format!(
                "access denied ({inner}); this process has no session keyring of its own, as in cron, CI, containers and sudo"
            )),
            #[cfg(target_os = "linux")]
            (keyring_core::Error::PlatformFailure(inner), Backend::Keyutils) => self.unusable(format!(
                "the platform refused the call ({inner}); container runtimes often block the keyctl system calls"
            )),
            (keyring_core::Error::NoStorageAccess(inner), _) => self.unusable(format!(
                "access denied ({inner}); a locked keyring is not unlocked by keyfire"
            )),
            (keyring_core::Error::PlatformFailure(inner), _) => {
                self.unusable(format!("the platform refused the call ({inner})"))
            }
            (keyring_core::Error::BadEncoding(mut bytes), _) => {
                // The bytes are the stored value: wiped, never shown.
                zeroize::Zeroize::zeroize(&mut bytes);
                KeyringError::Failed {
                    backend: self.backend(),
                    reason: format!("the value of `{name}` (service {service}) is not UTF-8"),
                }
            }
            (keyring_core::Error::BadDataFormat(mut bytes, _), _) => {
                zeroize::Zeroize::zeroize(&mut bytes);
                KeyringError::Failed {
                    backend: self.backend(),
                    reason: format!("the value of `{name}` (service {service}) is malformed"),
                }
            }
            (other, _) => KeyringError::Failed {
                backend: self.backend(),
                reason: other.to_string(),
            },
        }
    }

    pub fn get(&self, service: &str, name: &str) -> Result<Secret, KeyringError> {
        let started = std::time::Instant::now();
        let got = self.call(service, name, |e| e.get_password().map(Secret::new));
        self.log("read", service, name, started, got.as_ref().err());
        got
    }

    pub fn set(&self, service: &str, name: &str, value: &Secret) -> Result<(), KeyringError> {
        let value = value.clone();
        let started = std::time::Instant::now();
        let set = self.call(service, name, move |e| e.set_password(value.expose()));
        self.log("write", service, name, started, set.as_ref().err());
        set
    }

    /// `Ok(false)` when there was nothing to delete.
    pub fn delete(&self, service: &str, name: &str) -> Result<bool, KeyringError> {
        let started = std::time::Instant::now();
        let deleted = self.call(service, name, |e| match e.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(e) => Err(e),
        });
        self.log("delete", service, name, started, deleted.as_ref().err());
        deleted
    }

    /// One debug-log line per keyring call: the store, the entry's service and name (never
    /// its value), the time and how it ended (the error's kind; its text is in the message
    /// the caller shows).
    fn log(
        &self,
        op: &str,
        service: &str,
        name: &str,
        started: std::time::Instant,
        error: Option<&KeyringError>,
    ) {
        let outcome = match error {
            None => "ok",
            Some(KeyringError::NoEntry { .. }) => "no entry",
            Some(KeyringError::Unusable { .. }) => "store unusable",
            Some(_) => "failed",
        };
        tracing::debug!(
            target: "keyfire::keyring",
            op,
            store = self.backend.id(),
            service,
            name,
            ms = started.elapsed().as_millis(),
            outcome,
            "call"
        );
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
    fn keyfire_keyring_takes_two_store_names_and_refuses_the_rest() {
        assert_eq!(Choice::parse("").unwrap(), Choice::Auto);
        assert_eq!(
            Choice::parse("secret-service").unwrap(),
            Choice::SecretService
        );
        assert_eq!(Choice::parse("keyutils").unwrap(), Choice::Keyutils);
        // Test builds (this one) also take the in-process mock.
        assert_eq!(Choice::parse("mock").unwrap(), Choice::Mock);
        for bad in ["Keyutils", "kwallet", "secret_service", " keyutils"] {
            assert!(matches!(Choice::parse(bad), Err(KeyringError::BadChoice)));
        }
        // The message names the variable and the accepted values, not what was typed.
        let message = Choice::parse("kwallet").unwrap_err().to_string();
        assert!(message.starts_with("KEYFIRE_KEYRING must be"), "{message}");
        assert!(!message.contains("kwallet"), "{message}");
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
