//! A store that lives in this process only: the training environment and engine tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::traits::Store;
use super::{SecretLocation, StoreError, StoreOp, StoreOutput, StoreVersion};
use crate::http::Http;
use crate::inventory::{StoreDef, StoreKind};
use crate::plan::{RequestPlan, SecretBag};
use crate::secret::Secret;

type Versions = Vec<HashMap<String, Secret>>;

#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    name: String,
    paths: Arc<Mutex<HashMap<String, Versions>>>,
}

fn registry() -> &'static Mutex<HashMap<String, MemoryStore>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, MemoryStore>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

impl Store for MemoryStore {
    const KIND: StoreKind = StoreKind::Memory;
    const NEEDS_CREDENTIAL: bool = false;

    /// Memory stores with the same id (or `settings.instance`) share contents within the
    /// process: `memory` is the training and test store.
    fn from_def(def: &StoreDef) -> Self {
        let name = def
            .settings
            .get("instance")
            .and_then(|v| v.as_str())
            .unwrap_or(&def.id);
        Self::named(name)
    }

    fn plan(&self, op: &StoreOp, loc: &SecretLocation) -> Result<RequestPlan, StoreError> {
        let url = format!("memory://{}/{}#{}", self.name, loc.path, loc.field);
        Ok(match op {
            StoreOp::Read { version } => {
                let which = version
                    .as_ref()
                    .map_or("current version".to_string(), |v| format!("version {v}"));
                RequestPlan::read(format!("Read the {which} of {}", loc.path), "READ", url)
                    .declared_read()
            }
            StoreOp::Write { cas, value, .. } => {
                let mut p = RequestPlan::write(
                    format!(
                        "Store {} as a new version of {}",
                        super::written(*value),
                        loc.path
                    ),
                    "WRITE",
                    url,
                );
                p.body = Some(serde_json::json!({ "cas": cas, "field": loc.field }));
                p
            }
            StoreOp::Promote { version, .. } => RequestPlan::write(
                format!(
                    "Promote version {version} of {} (no stages: already current)",
                    loc.path
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
        self.apply(op, loc, http, secrets)
    }
}

impl MemoryStore {
    /// The process-wide memory store with this id (created empty on first use).
    pub fn named(name: &str) -> Self {
        let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
        reg.entry(name.to_string())
            .or_insert_with(|| Self {
                name: name.to_string(),
                paths: Arc::default(),
            })
            .clone()
    }

    /// Put a value as a new version (seeding the training environment and tests).
    pub fn seed(&self, path: &str, field: &str, value: Secret) -> u64 {
        let mut paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        let versions = paths.entry(path.to_string()).or_default();
        versions.push(HashMap::from([(field.to_string(), value)]));
        versions.len() as u64
    }

    /// Current version number at a path (0 when nothing is stored).
    #[cfg(feature = "testing")]
    pub fn version(&self, path: &str) -> u64 {
        let paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        paths.get(path).map_or(0, |v| v.len() as u64)
    }

    /// Carry out an operation at once (the store is in memory: nothing to wait for).
    pub fn apply(
        &self,
        op: &StoreOp,
        loc: &SecretLocation,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<StoreOutput, StoreError> {
        let mut paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        match op {
            StoreOp::Read { version } => {
                let Some(versions) = paths.get(&loc.path).filter(|v| !v.is_empty()) else {
                    return Ok(StoreOutput::Missing);
                };
                let n = match version {
                    None => versions.len() as u64,
                    Some(StoreVersion::Number(n)) => *n,
                    Some(StoreVersion::Id(_)) => return Ok(StoreOutput::Missing),
                };
                let Some(data) = n.checked_sub(1).and_then(|i| versions.get(i as usize)) else {
                    return Ok(StoreOutput::Missing);
                };
                let value = data
                    .get(&loc.field)
                    .cloned()
                    .ok_or_else(|| StoreError::NoField {
                        path: loc.path.clone(),
                        field: loc.field.clone(),
                    })?;
                // Like every other store: a value read is a value the redactor must know.
                http.redactor().learn(&value);
                Ok(StoreOutput::Value {
                    value,
                    version: n.into(),
                })
            }
            StoreOp::Write { cas, value, .. } => {
                let new = secrets.get(*value).cloned().ok_or(StoreError::NoNewKey)?;
                let versions = paths.entry(loc.path.clone()).or_default();
                if let Some(expected) = cas
                    && Some(versions.len() as u64) != expected.number()
                {
                    return Err(StoreError::CasMismatch {
                        path: loc.path.clone(),
                        expected: expected.clone(),
                    });
                }
                let mut data = versions.last().cloned().unwrap_or_default();
                data.insert(loc.field.clone(), new);
                versions.push(data);
                Ok(StoreOutput::Written {
                    version: (versions.len() as u64).into(),
                })
            }
            StoreOp::Promote { version, .. } => Ok(StoreOutput::Promoted {
                version: version.clone(),
                noop: true,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Redactor;

    #[test]
    fn a_value_read_is_taught_to_the_redactor() {
        let store = MemoryStore::named("memory-learns-what-it-reads");
        let value = "mem-FAKE-stored-value-0123456789";
        store.seed("agents/a", "value", Secret::new(value));
        let http = Http::new(false, Redactor::new()).expect("client");
        let loc = SecretLocation {
            path: "agents/a".into(),
            field: "value".into(),
        };
        let out = store
            .apply(
                &StoreOp::Read { version: None },
                &loc,
                &http,
                &SecretBag::default(),
            )
            .expect("read");
        assert!(matches!(out, StoreOutput::Value { .. }));
        assert_eq!(
            http.redactor().scrub(&format!("error near {value}")),
            "error near [REDACTED]"
        );
    }
}
