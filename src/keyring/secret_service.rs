//! The Secret Service (freedesktop.org D-Bus API: GNOME Keyring, KWallet, KeePassXC) through
//! `zbus-secret-service-keyring-store`, with the two guards a command-line tool needs and the
//! store leaves out.
//!
//! | What keyfire does | Spec (Secret Service API 0.2, specifications.freedesktop.org/secret-service) |
//! |---|---|
//! | "Is a Secret Service answering?": open a session | `org.freedesktop.Secret.Service.OpenSession` (the name is D-Bus activatable; a bus without it answers `ServiceUnknown`) |
//! | Is the default collection locked? | `Service.ReadAlias("default")` ("/" = no such alias), then the collection's `Locked` property |
//! | Items | `Service.SearchItems` on the attributes `service` and `username`; `Collection.CreateItem` with `replace`; `Item.GetSecret`; `Item.Delete` |
//!
//! Guards:
//! - The store unlocks a locked collection by calling `Unlock` and then waits for the prompt's
//!   `Completed` signal, with no time limit: at a desktop a dialog waits for a password, on a
//!   headless session it waits for nothing. keyfire reads the default collection's `Locked`
//!   property first and refuses, so it never starts a prompt for its own items.
//! - Every call runs on a thread of its own with a deadline, so a peer that never answers (a
//!   stuck daemon, a prompt raised for some other collection) costs seconds, not the incident.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use keyring_core::CredentialStore;
use secret_service::EncryptionType;
use secret_service::blocking::SecretService;

/// How long the Secret Service may take to answer once: D-Bus activation of the daemon
/// included, which takes well under a second on a desktop.
pub(super) const DEADLINE: Duration = Duration::from_secs(10);

/// A connection of keyfire's own to read lock state (a plain session: no secret crosses it).
pub(super) struct LockProbe {
    ss: Mutex<SecretService<'static>>,
}

/// Why a Secret Service call did not run.
#[derive(Debug)]
pub(super) enum Refused {
    /// The default collection is locked: unlocking it would need a prompt.
    Locked,
    /// No collection has the `default` alias: creating one would need a prompt too.
    NoDefaultCollection,
    /// The probe itself failed (the text of the D-Bus error).
    Probe(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Locked => f.write_str(
                "its default collection (the login keyring) is locked, and keyfire does not wait for an unlock prompt",
            ),
            Self::NoDefaultCollection => f.write_str(
                "it has no default collection (login keyring) to store into, and creating one needs a prompt keyfire does not wait for",
            ),
            Self::Probe(e) => write!(f, "cannot read whether it is locked: {e}"),
        }
    }
}

impl LockProbe {
    /// Refuses when an operation on keyfire's items would need an unlock prompt.
    pub(super) fn check(&self) -> Result<(), Refused> {
        // A poisoned lock only means an earlier probe panicked; the connection is still whole.
        let ss = self.ss.lock().unwrap_or_else(|p| p.into_inner());
        let collection = match ss.get_default_collection() {
            Ok(c) => c,
            Err(secret_service::Error::NoResult) => return Err(Refused::NoDefaultCollection),
            Err(e) => return Err(Refused::Probe(e.to_string())),
        };
        match collection.is_locked() {
            Ok(false) => Ok(()),
            Ok(true) => Err(Refused::Locked),
            Err(e) => Err(Refused::Probe(e.to_string())),
        }
    }
}

/// Connects to the Secret Service on the session bus: the store keyfire uses and the probe.
/// `Err` carries why not (no session bus, no Secret Service on it, no answer in time).
pub(super) fn open() -> Result<(Arc<CredentialStore>, Arc<LockProbe>), String> {
    let opened = within(DEADLINE, || {
        let store: Arc<CredentialStore> =
            zbus_secret_service_keyring_store::Store::new().map_err(|e| e.to_string())?;
        let ss = SecretService::connect(EncryptionType::Plain).map_err(|e| e.to_string())?;
        Ok::<_, String>((
            store,
            Arc::new(LockProbe {
                ss: Mutex::new(ss),
            }),
        ))
    });
    match opened {
        Ok(result) => result,
        Err(late) => Err(late.to_string()),
    }
}

/// The call did not finish within its deadline (or its thread could not start).
#[derive(Debug)]
pub(super) struct Late(pub String);

impl std::fmt::Display for Late {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Runs `f` on a thread of its own and stops waiting after `limit`. A call past its deadline
/// keeps its thread until the peer answers or the process ends; the caller goes on.
pub(super) fn within<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Late> {
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("keyfire-secret-service".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| Late(format!("cannot start a thread for the D-Bus call: {e}")))?;
    rx.recv_timeout(limit).map_err(|_| {
        Late(format!(
            "the Secret Service did not answer within {} s (a daemon that is stuck, or waiting on a prompt)",
            limit.as_secs()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_past_its_deadline_is_abandoned_not_awaited() {
        let (release, wait) = mpsc::channel::<()>();
        let late = within(Duration::from_millis(50), move || {
            // Blocks until the test lets it go: the deadline must fire first.
            let _ = wait.recv();
            1
        });
        assert!(matches!(late, Err(Late(ref m)) if m.contains("did not answer")));
        drop(release);
        assert_eq!(within(DEADLINE, || 2).unwrap(), 2);
    }
}
