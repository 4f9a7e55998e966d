//! HashiCorp Vault / OpenBao KV version 2: new versions with check-and-set, reads by version.
//! API: `GET/POST/PATCH /v1/{mount}/data/{path}`, token in `X-Vault-Token`, optional
//! `X-Vault-Namespace`.

use serde::Deserialize;

use super::{SecretLocation, StoreError, StoreOp, StoreOutput};
use crate::http::{FailureKind, Http, HttpError};
use crate::inventory::StoreDef;
use crate::plan::{RequestPlan, SecretBag, SecretRef};
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub struct VaultKv2 {
    address: String,
    mount: String,
    namespace: Option<String>,
}

#[derive(Deserialize)]
struct ReadResponse {
    data: ReadData,
}

#[derive(Deserialize)]
struct ReadData {
    data: Option<serde_json::Map<String, serde_json::Value>>,
    metadata: Metadata,
}

#[derive(Deserialize)]
struct Metadata {
    version: u64,
}

#[derive(Deserialize)]
struct WriteResponse {
    data: Metadata,
}

impl VaultKv2 {
    pub fn new(def: &StoreDef) -> Self {
        let setting = |name: &str| {
            def.settings
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        Self {
            address: def
                .address
                .clone()
                .unwrap_or_default()
                .trim_end_matches('/')
                .to_string(),
            mount: setting("mount")
                .unwrap_or_else(|| "secret".into())
                .trim_matches('/')
                .to_string(),
            namespace: setting("namespace"),
        }
    }

    fn url(&self, path: &str) -> String {
        let path: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .map(|seg| url::form_urlencoded::byte_serialize(seg.as_bytes()).collect())
            .collect();
        format!("{}/v1/{}/data/{}", self.address, self.mount, path.join("/"))
    }

    fn auth(&self, mut plan: RequestPlan) -> RequestPlan {
        plan = plan.secret_header("X-Vault-Token", "", SecretRef::StoreCredential);
        if let Some(ns) = &self.namespace {
            plan = plan.header("X-Vault-Namespace", ns);
        }
        plan
    }

    pub fn plan(&self, op: &StoreOp, loc: &SecretLocation) -> RequestPlan {
        match op {
            StoreOp::Read { version } => {
                let mut url = self.url(&loc.path);
                let which = match version {
                    Some(v) => {
                        url.push_str(&format!("?version={v}"));
                        format!("version {v}")
                    }
                    None => "current version".into(),
                };
                self.auth(RequestPlan::read(
                    format!("Read the {which} of {}", loc.path),
                    "GET",
                    url,
                ))
            }
            StoreOp::Write { cas } => {
                let pointer = format!("/data/{}", loc.field.replace('~', "~0").replace('/', "~1"));
                // PATCH merges into the existing secret (other fields survive); a secret that
                // does not exist yet is created with POST and cas 0.
                let (method, cas) = match cas {
                    Some(v) if *v > 0 => ("PATCH", *v),
                    _ => ("POST", 0),
                };
                let mut plan = RequestPlan::write(
                    format!("Write the new key as a new version of {} (check-and-set on version {cas})", loc.path),
                    method,
                    self.url(&loc.path),
                )
                .json(serde_json::json!({ "options": { "cas": cas }, "data": { loc.field.clone(): null } }))
                .body_secret(&pointer, SecretRef::NewKey);
                if method == "PATCH" {
                    plan = plan.header("Content-Type", "application/merge-patch+json");
                }
                self.auth(plan)
            }
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
        match op {
            StoreOp::Read { .. } => {
                let resp = match http.send(plan, secrets).await {
                    Ok(r) => r,
                    Err(e) if e.kind() == FailureKind::NotFound => return Ok(StoreOutput::Missing),
                    Err(e) => return Err(e.into()),
                };
                let body: ReadResponse = resp.json()?;
                let Some(data) = body.data.data else {
                    // A deleted or destroyed version has metadata but no data.
                    return Ok(StoreOutput::Missing);
                };
                let value = data
                    .get(&loc.field)
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| StoreError::NoField {
                        path: loc.path.clone(),
                        field: loc.field.clone(),
                    })?;
                let value = Secret::new(value);
                http.redactor().learn(&value);
                Ok(StoreOutput::Value {
                    value,
                    version: body.data.metadata.version,
                })
            }
            StoreOp::Write { cas } => match http.send(plan, secrets).await {
                Ok(resp) => {
                    let body: WriteResponse = resp.json()?;
                    Ok(StoreOutput::Written {
                        version: body.data.version,
                    })
                }
                Err(HttpError::Status {
                    status: 400,
                    reason,
                    ..
                }) if reason.contains("check-and-set") => Err(StoreError::CasMismatch {
                    path: loc.path.clone(),
                    expected: cas.unwrap_or(0),
                }),
                Err(e) => Err(e.into()),
            },
        }
    }
}
