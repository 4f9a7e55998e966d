//! HashiCorp Vault / OpenBao KV version 2: new versions with check-and-set, reads by version.
//! API: `GET/POST/PATCH /v1/{mount}/data/{path}`, token in `X-Vault-Token`, optional
//! `X-Vault-Namespace`. Authentication is a token, or AppRole (`settings.auth = "approle"`,
//! `settings.role_id`, the credential being the secret id): keyfire logs in with
//! `POST /v1/auth/{approle_mount}/login` and uses the returned client token.
//!
//! KV v2 has versions but no stages: a write is live at once, so `Promote` is a recorded
//! no-op and the engine verifies the replacement right after the write.
//!
//! Spec of each call (Vault HTTP API documentation; OpenBao serves the same paths):
//!
//! | op | spec |
//! |---|---|
//! | read (`GET /v1/{mount}/data/{path}?version=`) | [KV v2: Read secret version](https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#read-secret-version) |
//! | write (`POST /v1/{mount}/data/{path}` with `options.cas`) | [KV v2: Create/Update secret](https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#create-update-secret) |
//! | write by merge (`PATCH`, while the store still sends it) | [KV v2: Patch secret](https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#patch-secret) |
//! | AppRole login (`POST /v1/auth/{approle_mount}/login`) | [AppRole: Login with AppRole](https://developer.hashicorp.com/vault/api-docs/auth/approle#login-with-approle) |
//! | errors (`{"errors": [...]}`) | [Error response](https://developer.hashicorp.com/vault/api-docs#error-response) |
//!
//! The answer fields keyfire reads are listed with these links in
//! `tests/fixtures/spec/api-fields.json`; the contract suite checks the simulator against them.

use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::{SecretLocation, StoreError, StoreOp, StoreOutput, StoreVersion};
use crate::http::{FailureKind, Http, HttpError};
use crate::inventory::StoreDef;
use crate::plan::{RequestPlan, SecretBag, SecretRef};
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub enum VaultAuth {
    Token,
    AppRole { role_id: String, mount: String },
}

#[derive(Debug, Clone)]
pub struct VaultKv2 {
    address: String,
    mount: String,
    namespace: Option<String>,
    auth: VaultAuth,
    /// The client token from the last AppRole login, shared by clones of this store.
    login: Arc<Mutex<Option<Secret>>>,
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

#[derive(Deserialize)]
struct LoginResponse {
    auth: LoginAuth,
}

#[derive(Deserialize)]
struct LoginAuth {
    client_token: String,
}

impl VaultKv2 {
    pub fn new(def: &StoreDef) -> Self {
        let setting = |name: &str| {
            def.settings
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let auth = match setting("auth").as_deref() {
            Some("approle") => VaultAuth::AppRole {
                role_id: setting("role_id").unwrap_or_default(),
                mount: setting("approle_mount")
                    .unwrap_or_else(|| "approle".into())
                    .trim_matches('/')
                    .to_string(),
            },
            _ => VaultAuth::Token,
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
            auth,
            login: Arc::default(),
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

    /// The AppRole login, as a plan: it creates a token but changes no secret, so drills send
    /// it like a read (a drill must prove that keyfire can log in).
    pub fn login_plan(&self) -> Option<RequestPlan> {
        let VaultAuth::AppRole { role_id, mount } = &self.auth else {
            return None;
        };
        let mut plan = RequestPlan::read(
            format!("Log in with AppRole role {role_id}"),
            "POST",
            format!("{}/v1/auth/{mount}/login", self.address),
        )
        .json(serde_json::json!({ "role_id": role_id, "secret_id": null }))
        .body_secret("/secret_id", SecretRef::StoreCredential);
        if let Some(ns) = &self.namespace {
            plan = plan.header("X-Vault-Namespace", ns);
        }
        Some(plan)
    }

    pub fn plan(&self, op: &StoreOp, loc: &SecretLocation) -> RequestPlan {
        let via = match &self.auth {
            VaultAuth::Token => String::new(),
            VaultAuth::AppRole { role_id, .. } => format!(" (token from AppRole {role_id})"),
        };
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
                    format!("Read the {which} of {}{via}", loc.path),
                    "GET",
                    url,
                ))
            }
            StoreOp::Write { cas, .. } => {
                let pointer = format!("/data/{}", loc.field.replace('~', "~0").replace('/', "~1"));
                // PATCH merges into the existing secret (other fields survive); a secret that
                // does not exist yet is created with POST and cas 0.
                let (method, cas) = match cas.as_ref().and_then(StoreVersion::number) {
                    Some(v) if v > 0 => ("PATCH", v),
                    _ => ("POST", 0),
                };
                let mut plan = RequestPlan::write(
                    format!("Write the new key as a new version of {} (check-and-set on version {cas}){via}", loc.path),
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
            StoreOp::Promote { version, .. } => RequestPlan::write(
                format!(
                    "Promote version {version} of {}: KV v2 has no stages, the write made it current",
                    loc.path
                ),
                "NOOP",
                self.url(&loc.path),
            )
            .idempotent(true),
        }
    }

    /// The bag to send with: for AppRole, the store credential (the secret id) is swapped
    /// for a client token, logging in first when there is none yet.
    async fn session(
        &self,
        http: &Http,
        secrets: &SecretBag,
        fresh: bool,
    ) -> Result<SecretBag, StoreError> {
        let Some(login) = self.login_plan() else {
            return Ok(secrets.clone());
        };
        let cached = if fresh {
            None
        } else {
            self.login.lock().ok().and_then(|g| g.clone())
        };
        let token = match cached {
            Some(t) => t,
            None => {
                let resp: LoginResponse = http.send(&login, secrets).await?.json()?;
                let token = Secret::new(resp.auth.client_token);
                http.redactor().learn(&token);
                if let Ok(mut g) = self.login.lock() {
                    *g = Some(token.clone());
                }
                token
            }
        };
        let mut bag = secrets.clone();
        bag.store_credential = Some(token);
        Ok(bag)
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
        let bag = self.session(http, secrets, false).await?;
        match self.send(op, loc, plan, http, &bag).await {
            // An expired AppRole token: log in again once.
            Err(StoreError::Http(e))
                if e.kind() == FailureKind::Forbidden
                    && matches!(self.auth, VaultAuth::AppRole { .. }) =>
            {
                let bag = self.session(http, secrets, true).await?;
                self.send(op, loc, plan, http, &bag).await
            }
            other => other,
        }
    }

    async fn send(
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
                    version: body.data.metadata.version.into(),
                })
            }
            StoreOp::Write { cas, .. } => match http.send(plan, secrets).await {
                Ok(resp) => {
                    let body: WriteResponse = resp.json()?;
                    Ok(StoreOutput::Written {
                        version: body.data.version.into(),
                    })
                }
                Err(HttpError::Status {
                    status: 400,
                    reason,
                    ..
                }) if reason.contains("check-and-set") => Err(StoreError::CasMismatch {
                    path: loc.path.clone(),
                    expected: cas.clone().unwrap_or(StoreVersion::Number(0)),
                }),
                Err(e) => Err(e.into()),
            },
            StoreOp::Promote { version, .. } => Ok(StoreOutput::Promoted {
                version: version.clone(),
                noop: true,
            }),
        }
    }
}
