//! The OS keyring as a store, for agents that run on a developer's machine and read their key
//! from it. Entry: service `settings.service` (default `keyfire-agents`), user the key's
//! `secret_path` (with `/FIELD` appended when `secret_field` is not the default `value`).
//!
//! A keyring keeps one value per entry and no history, so keyfire numbers versions itself in
//! a companion entry (`USER#version`): a write is check-and-set against that number, and
//! only the current version can be read back (the leaked value is not kept anywhere).
//!
//! | op | call | spec |
//! |---|---|---|
//! | read | `Entry::get_password` of (service, user) | [keyring-core `Entry`](https://docs.rs/keyring-core/latest/keyring_core/struct.Entry.html); Linux: [keyutils `request_key`/`keyctl_read`](https://man7.org/linux/man-pages/man7/keyrings.7.html) |
//! | write | `Entry::set_password` of the value, then of `USER#version` | [keyring-core `Entry`](https://docs.rs/keyring-core/latest/keyring_core/struct.Entry.html); Linux: [keyutils `add_key`](https://man7.org/linux/man-pages/man2/add_key.2.html) |
//! | promote | none: a write is live at once | |

use super::{SecretLocation, StoreError, StoreOp, StoreOutput, StoreVersion};
use crate::http::Http;
use crate::inventory::StoreDef;
use crate::keyring::{Keyring, KeyringError};
use crate::plan::{Access, RequestPlan, SecretBag};
use crate::secret::Secret;

pub const DEFAULT_SERVICE: &str = "keyfire-agents";

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

    pub fn plan(&self, op: &StoreOp, loc: &SecretLocation) -> RequestPlan {
        let url = self.url(loc);
        match op {
            StoreOp::Read { version } => {
                let which =
                    version.as_ref().map_or("current value".to_string(), |v| format!("version {v}"));
                RequestPlan::read(format!("Read the {which} of {}", user(loc)), "KEYRING", url)
            }
            StoreOp::Write { cas, .. } => RequestPlan::write(
                format!(
                    "Replace the value of {} with the new key{}",
                    user(loc),
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
        if let StoreOp::Promote { version, .. } = op {
            return Ok(StoreOutput::Promoted {
                version: version.clone(),
                noop: true,
            });
        }
        if http.dry_run() && (plan.access == Access::Write || op.is_write()) {
            return Err(StoreError::DryRunBlocked(plan.url.clone()));
        }
        let service = self.service.clone();
        let user = user(loc);
        let op = op.clone();
        let new = secrets.new_key.clone();
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

fn kerr(e: KeyringError) -> StoreError {
    StoreError::Keyring(e.to_string())
}

fn current_version(k: &Keyring, service: &str, user: &str) -> Result<u64, StoreError> {
    let counter = format!("{user}#version");
    match k.get(service, &counter) {
        Ok(v) => {
            v.expose().trim().parse().map_err(|_| {
                StoreError::Malformed(format!("keyring entry {counter} is not a number"))
            })
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
            k.set(service, user, &new).map_err(kerr)?;
            let next = current + 1;
            k.set(
                service,
                &format!("{user}#version"),
                &Secret::new(next.to_string()),
            )
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
}
