//! The OS keyring as a store, for agents that run on a developer's machine and read their key
//! from it. Entry: service `settings.service` (default `keyfire-agents`), user the key's
//! `secret_path` (with `/FIELD` appended when `secret_field` is not the default `value`).
//!
//! A keyring keeps one value per entry and no history, so keyfire numbers versions itself in
//! a companion entry (`USER#version`): a write is check-and-set against that number, and
//! only the current version can be read back (the leaked value is not kept anywhere).
//!
//! The two entries cannot change together, so a write is three steps, each safe to die after:
//! 1. the counter says `C->N:FP` (version N is being written; FP is a truncated SHA-256 of the
//!    new value, not the value);
//! 2. the value entry gets the new value;
//! 3. the counter says `N`.
//!
//! A read while the counter is pending compares the value with FP: the new value is version
//! N, anything else is still version C. Killed after step 1, the old value reads as the old
//! version (resume writes again); killed after step 2, the new value reads as the new version
//! (resume adopts it) and is never taken for the leaked key.
//!
//! | op | call | spec |
//! |---|---|---|
//! | read | `Entry::get_password` of (service, user) | [keyring-core `Entry`](https://docs.rs/keyring-core/latest/keyring_core/struct.Entry.html); Linux: [keyutils `request_key`/`keyctl_read`](https://man7.org/linux/man-pages/man7/keyrings.7.html) |
//! | write | `Entry::set_password` of `USER#version` (pending), of the value, then of `USER#version` | [keyring-core `Entry`](https://docs.rs/keyring-core/latest/keyring_core/struct.Entry.html); Linux: [keyutils `add_key`](https://man7.org/linux/man-pages/man2/add_key.2.html) |
//! | promote | none: a write is live at once | |

use super::traits::Store;
use super::{SecretLocation, StoreError, StoreOp, StoreOutput, StoreVersion};
use crate::http::Http;
use crate::inventory::StoreDef;
use crate::inventory::StoreKind;
use crate::keyring::{Keyring, KeyringError};
use crate::plan::{RequestPlan, SecretBag};
use crate::secret::Secret;

pub(super) const DEFAULT_SERVICE: &str = "keyfire-agents";

#[derive(Debug, Clone)]
pub struct KeyringStore {
    service: String,
}

fn user(loc: &SecretLocation) -> String {
    if loc.field == "value" {
        loc.path.clone()
    } else {
        format!("{}/{}", loc.path, loc.field)
    }
}

impl Store for KeyringStore {
    const KIND: StoreKind = StoreKind::Keyring;
    // The kernel keyring of the user keyfire runs as: no credential of its own.
    const NEEDS_CREDENTIAL: bool = false;

    fn from_def(def: &StoreDef) -> Self {
        Self::new(def)
    }

    fn plan(&self, op: &StoreOp, loc: &SecretLocation) -> Result<RequestPlan, StoreError> {
        let url = self.url(loc);
        Ok(match op {
            StoreOp::Read { version } => {
                let which =
                    version.as_ref().map_or("current value".to_string(), |v| format!("version {v}"));
                // A local look-up of the kernel keyring.
                RequestPlan::read(format!("Read the {which} of {}", user(loc)), "KEYRING", url)
                    .declared_read()
            }
            StoreOp::Write { cas, value, .. } => RequestPlan::write(
                format!(
                    "Replace the value of {} with {}{}",
                    user(loc),
                    super::written(*value),
                    cas.as_ref()
                        .map(|v| format!(" (check-and-set on version {v})"))
                        .unwrap_or_default()
                ),
                "KEYRING",
                url,
            )
            .json(serde_json::json!({ "cas": cas })),
            StoreOp::Promote { version, .. } => RequestPlan::write(
                format!(
                    "Promote version {version} of {}: a keyring has no stages, the write made it current",
                    user(loc)
                ),
                "NOOP",
                url,
            )
            .idempotent(true),
        })
    }

    async fn execute(
        &self,
        op: &StoreOp,
        loc: &SecretLocation,
        _plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<StoreOutput, StoreError> {
        if let StoreOp::Promote { version, .. } = op {
            return Ok(StoreOutput::Promoted {
                version: version.clone(),
                noop: true,
            });
        }
        let service = self.service.clone();
        let user = user(loc);
        let op = op.clone();
        let new = match &op {
            StoreOp::Write { value, .. } => secrets.get(*value).cloned(),
            _ => None,
        };
        let path = loc.path.clone();
        let out = tokio::task::spawn_blocking(move || {
            blocking(&Keyring::system(), &service, &user, &path, &op, new)
        })
        .await
        .map_err(|e| StoreError::Keyring(e.to_string()))??;
        if let StoreOutput::Value { value, .. } = &out {
            http.redactor().learn(value);
        }
        Ok(out)
    }
}

impl KeyringStore {
    pub fn new(def: &StoreDef) -> Self {
        Self {
            service: def
                .settings
                .get("service")
                .and_then(|v| v.as_str())
                .unwrap_or(DEFAULT_SERVICE)
                .to_string(),
        }
    }

    fn url(&self, loc: &SecretLocation) -> String {
        format!(
            "keyring:{}/{} ({})",
            self.service,
            user(loc),
            Keyring::system().backend()
        )
    }
}

fn kerr(e: KeyringError) -> StoreError {
    StoreError::Keyring(e.to_string())
}

/// A short fingerprint of a value, to tell the new value from the old one after a crash.
fn fingerprint(value: &Secret) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(value.expose().as_bytes())[..8])
}

/// The version of the value the entry holds now (see the module doc for a pending counter).
fn current_version(k: &Keyring, service: &str, user: &str) -> Result<u64, StoreError> {
    let counter = format!("{user}#version");
    let malformed = || StoreError::Malformed(format!("keyring entry {counter} is not a version"));
    match k.get(service, &counter) {
        Ok(v) => {
            let text = v.expose().trim();
            let Some((from, rest)) = text.split_once("->") else {
                return text.parse().map_err(|_| malformed());
            };
            let (to, fp) = rest.split_once(':').ok_or_else(malformed)?;
            let (from, to): (u64, u64) = (
                from.parse().map_err(|_| malformed())?,
                to.parse().map_err(|_| malformed())?,
            );
            let landed = match k.get(service, user) {
                Ok(value) => fingerprint(&value) == fp,
                Err(KeyringError::NoEntry { .. }) => false,
                Err(e) => return Err(kerr(e)),
            };
            Ok(if landed { to } else { from })
        }
        Err(KeyringError::NoEntry { .. }) => Ok(u64::from(k.has(service, user).map_err(kerr)?)),
        Err(e) => Err(kerr(e)),
    }
}

fn blocking(
    k: &Keyring,
    service: &str,
    user: &str,
    path: &str,
    op: &StoreOp,
    new: Option<Secret>,
) -> Result<StoreOutput, StoreError> {
    match op {
        StoreOp::Read { version } => {
            let value = match k.get(service, user) {
                Ok(v) => v,
                Err(KeyringError::NoEntry { .. }) => return Ok(StoreOutput::Missing),
                Err(e) => return Err(kerr(e)),
            };
            let current = current_version(k, service, user)?;
            if version
                .as_ref()
                .is_some_and(|v| v.number() != Some(current))
            {
                // No history: older versions are gone.
                return Ok(StoreOutput::Missing);
            }
            Ok(StoreOutput::Value {
                value,
                version: current.into(),
            })
        }
        StoreOp::Write { cas, .. } => {
            let new = new.ok_or(StoreError::NoNewKey)?;
            let current = current_version(k, service, user)?;
            if let Some(expected) = cas
                && expected.number() != Some(current)
            {
                return Err(StoreError::CasMismatch {
                    path: path.into(),
                    expected: expected.clone(),
                });
            }
            let next = current + 1;
            let counter = format!("{user}#version");
            let pending = format!("{current}->{next}:{}", fingerprint(&new));
            k.set(service, &counter, &Secret::new(pending))
                .map_err(kerr)?;
            crate::failpoint::failpoint("keyring:counter_pending");
            k.set(service, user, &new).map_err(kerr)?;
            crate::failpoint::failpoint("keyring:value_written");
            k.set(service, &counter, &Secret::new(next.to_string()))
                .map_err(kerr)?;
            Ok(StoreOutput::Written {
                version: StoreVersion::Number(next),
            })
        }
        StoreOp::Promote { version, .. } => Ok(StoreOutput::Promoted {
            version: version.clone(),
            noop: true,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::SecretRef;

    #[test]
    fn versions_count_writes_and_check_and_set_refuses_a_stale_version() {
        let k = Keyring::mock();
        let (svc, user) = ("keyfire-agents-test", "agents/dev/llm");
        let write = |cas: Option<u64>, v: &str| {
            blocking(
                &k,
                svc,
                user,
                user,
                &StoreOp::Write {
                    cas: cas.map(StoreVersion::Number),
                    pending: true,
                    token: "t".into(),
                    value: SecretRef::NewKey,
                },
                Some(Secret::new(v)),
            )
        };
        let read = |version: Option<u64>| {
            blocking(
                &k,
                svc,
                user,
                user,
                &StoreOp::Read {
                    version: version.map(StoreVersion::Number),
                },
                None,
            )
        };
        assert!(matches!(read(None).unwrap(), StoreOutput::Missing));
        assert!(matches!(
            write(Some(0), "first").unwrap(),
            StoreOutput::Written {
                version: StoreVersion::Number(1)
            }
        ));
        assert!(matches!(
            write(Some(0), "stale").unwrap_err(),
            StoreError::CasMismatch { .. }
        ));
        write(Some(1), "second").unwrap();
        match read(None).unwrap() {
            StoreOutput::Value { value, version } => {
                assert_eq!(value.expose(), "second");
                assert_eq!(version, StoreVersion::Number(2));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(read(Some(1)).unwrap(), StoreOutput::Missing));
    }

    fn read_current(k: &Keyring, svc: &str, user: &str) -> (String, u64) {
        match blocking(k, svc, user, user, &StoreOp::Read { version: None }, None).unwrap() {
            StoreOutput::Value { value, version } => {
                (value.expose().to_string(), version.number().unwrap())
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// The entries as a write killed after its first step (the pending counter) or its
    /// second (the value) leaves them: each reads as the version of the value it holds, and a
    /// write against that version goes through.
    #[test]
    fn a_write_killed_between_its_steps_reads_as_the_value_it_holds() {
        let (svc, user) = ("keyfire-agents-test", "agents/dev/llm");
        let counter = format!("{user}#version");
        let old = Secret::new("old-value");
        let new = Secret::new("new-value");
        let pending = Secret::new(format!("1->2:{}", fingerprint(&new)));

        // Killed after step 1: the counter is pending, the old value is still there.
        let k = Keyring::mock();
        k.set(svc, user, &old).unwrap();
        k.set(svc, &counter, &Secret::new("1")).unwrap();
        k.set(svc, &counter, &pending).unwrap();
        assert_eq!(read_current(&k, svc, user), ("old-value".into(), 1));
        let again = StoreOp::Write {
            cas: Some(StoreVersion::Number(1)),
            pending: false,
            token: "t".into(),
            value: SecretRef::NewKey,
        };
        blocking(&k, svc, user, user, &again, Some(new.clone())).unwrap();
        assert_eq!(read_current(&k, svc, user), ("new-value".into(), 2));

        // Killed after step 2: the new value is there, the counter still pending. Before
        // this order, the new value read as the old version: resume took it for the leaked key.
        let k = Keyring::mock();
        k.set(svc, user, &old).unwrap();
        k.set(svc, &counter, &Secret::new("1")).unwrap();
        k.set(svc, &counter, &pending).unwrap();
        k.set(svc, user, &new).unwrap();
        assert_eq!(read_current(&k, svc, user), ("new-value".into(), 2));
        let stale = StoreOp::Write {
            cas: Some(StoreVersion::Number(1)),
            pending: false,
            token: "t".into(),
            value: SecretRef::NewKey,
        };
        assert!(matches!(
            blocking(&k, svc, user, user, &stale, Some(Secret::new("third"))).unwrap_err(),
            StoreError::CasMismatch { .. }
        ));
    }
}
