//! HashiCorp Vault / OpenBao KV version 2: new versions with check-and-set, reads by version.
//! Token in `X-Vault-Token`, optional `X-Vault-Namespace`. Authentication is a token, or
//! AppRole (`settings.auth = "approle"`, `settings.role_id`, the credential being the secret
//! id): keyfire logs in with `POST /v1/auth/{approle_mount}/login` and uses the returned
//! client token.
//!
//! | op | request (developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2) | capability |
//! |---|---|---|
//! | read | `GET /v1/{mount}/data/{path}[?version=N]` ("Read secret version") | `read` on `{mount}/data/...` |
//! | tell a deleted latest version from a missing secret | `GET /v1/{mount}/metadata/{path}` ("Read secret metadata": `current_version`, `versions.N.deletion_time`, `destroyed`) | `read` on `{mount}/metadata/...` |
//! | write | `POST /v1/{mount}/data/{path}` `{"options":{"cas":N},"data":{...}}` ("Create/Update secret") | `create` (new secret) or `update` |
//!
//! A write sends the whole secret: the `data` of the version read when the incident opened,
//! with only the key's field replaced, and `options.cas` = that version. Never `PATCH`
//! ("Patch secret"): it needs the separate `patch` capability ("the update capability
//! represents full overwrites", KV v2 docs), which rotation policies rarely grant. A latest
//! version that is soft-deleted or destroyed reads as 404 like a missing secret, but `cas`
//! still counts it: keyfire reads the metadata and names it instead of failing on `cas`.
//! Path segments are percent-encoded as URL path segments (a space is `%20`, not `+`).
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

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::traits::Store;
use super::{SecretLocation, StoreError, StoreOp, StoreOutput, StoreVersion};
use crate::http::{FailureKind, Http, HttpError};
use crate::inventory::{StoreDef, StoreKind};
use crate::plan::{RequestPlan, SecretBag, SecretRef};
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub(super) enum VaultAuth {
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
    /// The whole `data` of each version read, by (path, version), as JSON held in a secret
    /// (the other fields may be keys too): a write sends it back with one field replaced.
    versions: Arc<Mutex<HashMap<(String, u64), Secret>>>,
}

/// What a store write needs to know about a latest version it cannot read.
#[derive(Deserialize)]
struct MetadataResponse {
    data: SecretMetadata,
}

#[derive(Deserialize)]
struct SecretMetadata {
    current_version: u64,
    #[serde(default)]
    versions: BTreeMap<String, VersionMetadata>,
}

#[derive(Deserialize)]
struct VersionMetadata {
    #[serde(default)]
    deletion_time: String,
    #[serde(default)]
    destroyed: bool,
}

#[derive(Deserialize)]
struct ReadResponse {
    data: ReadData,
}

#[derive(Deserialize)]
struct ReadData {
    /// The secret's fields: the key and whatever else is stored beside it, zeroed on drop.
    data: Option<crate::secret::SecretMap>,
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

impl Store for VaultKv2 {
    const KIND: StoreKind = StoreKind::VaultKv2;
    const NEEDS_CREDENTIAL: bool = true;

    fn from_def(def: &StoreDef) -> Self {
        Self::new(def)
    }

    fn plan(&self, op: &StoreOp, loc: &SecretLocation) -> Result<RequestPlan, StoreError> {
        let via = match &self.auth {
            VaultAuth::Token => String::new(),
            VaultAuth::AppRole { role_id, .. } => format!(" (token from AppRole {role_id})"),
        };
        Ok(match op {
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
            StoreOp::Write { cas, value, .. } => {
                let pointer = format!("/data/{}", loc.field.replace('~', "~0").replace('/', "~1"));
                let cas = cas.as_ref().and_then(StoreVersion::number).unwrap_or(0);
                let kept = if cas > 0 {
                    format!(", every other field of version {cas} kept")
                } else {
                    String::new()
                };
                // The plan shows the key's field only; the other fields are added at send
                // time from the version read, so their values never sit in a plan.
                self.auth(
                    RequestPlan::write(
                        format!("Write {} as a new version of {} (the whole secret{kept}; check-and-set on version {cas}){via}", super::written(*value), loc.path),
                        "POST",
                        self.url(&loc.path),
                    )
                    .json(serde_json::json!({ "options": { "cas": cas }, "data": { loc.field.clone(): null } }))
                    .body_secret(&pointer, *value),
                )
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
        })
    }

    async fn execute(
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
            // Vault answers 403 both to an expired token and to a missing capability: log in
            // again once, and if the fresh token is refused too, it is the policy.
            Err(StoreError::Http(first))
                if first.kind() == FailureKind::Forbidden
                    && matches!(self.auth, VaultAuth::AppRole { .. }) =>
            {
                let Ok(bag) = self.session(http, secrets, true).await else {
                    return Err(self.denied(op, loc, &first));
                };
                match self.send(op, loc, plan, http, &bag).await {
                    Err(StoreError::Http(e)) if e.kind() == FailureKind::Forbidden => {
                        Err(self.denied(op, loc, &e))
                    }
                    other => other,
                }
            }
            Err(StoreError::Http(e)) if e.kind() == FailureKind::Forbidden => {
                Err(self.denied(op, loc, &e))
            }
            other => other,
        }
    }
}

impl VaultKv2 {
    pub fn new(def: &StoreDef) -> Self {
        let setting = |name: &str| super::setting(def, name);
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
            address: super::base_address(def, ""),
            mount: setting("mount")
                .unwrap_or_else(|| "secret".into())
                .trim_matches('/')
                .to_string(),
            namespace: setting("namespace"),
            auth,
            login: Arc::default(),
            versions: Arc::default(),
        }
    }

    /// `{address}/v1/{mount}/{kind}/{path}`, every segment percent-encoded as a path segment.
    fn endpoint(&self, kind: &str, path: &str) -> String {
        let segments = self
            .mount
            .split('/')
            .chain([kind])
            .chain(path.trim_matches('/').split('/'));
        match url::Url::parse(&self.address) {
            Ok(mut u) if !u.cannot_be_a_base() => {
                if let Ok(mut p) = u.path_segments_mut() {
                    p.pop_if_empty().push("v1").extend(segments);
                }
                u.to_string()
            }
            // An address that is not a URL fails at send; the plan still shows the path.
            _ => format!(
                "{}/v1/{}",
                self.address,
                segments.collect::<Vec<_>>().join("/")
            ),
        }
    }

    fn url(&self, path: &str) -> String {
        self.endpoint("data", path)
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
        .body_secret("/secret_id", SecretRef::StoreCredential)
        // A POST that reads: drills send it (see above).
        .declared_read();
        if let Some(ns) = &self.namespace {
            plan = plan.header("X-Vault-Namespace", ns);
        }
        Some(plan)
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

    /// A 403 that a fresh login does not cure: name the capabilities keyfire needs.
    fn denied(&self, op: &StoreOp, loc: &SecretLocation, e: &HttpError) -> StoreError {
        let who = match &self.auth {
            VaultAuth::Token => "the token's policy".to_string(),
            VaultAuth::AppRole { role_id, .. } => format!("the policy of AppRole {role_id}"),
        };
        StoreError::Denied(format!(
            "{} of {} refused ({e}): {who} must grant [\"create\", \"update\", \"read\"] on {m}/data/{p} and [\"read\"] on {m}/metadata/{p}",
            op.name(),
            loc.path,
            m = self.mount,
            p = loc.path.trim_matches('/'),
        ))
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
            StoreOp::Read { version } => {
                self.read(version.as_ref(), loc, plan, http, secrets).await
            }
            StoreOp::Write { cas, value, .. } => {
                let cas_n = cas.as_ref().and_then(StoreVersion::number).unwrap_or(0);
                let body = self.whole_secret(loc, cas_n, *value, http, secrets).await?;
                match http.send_with_body(plan, secrets, &body).await {
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
                    }) if reason.contains("check-and-set") => {
                        // Someone wrote in between, or deleted the latest version: say which.
                        self.check_latest(loc, http, secrets).await?;
                        Err(StoreError::CasMismatch {
                            path: loc.path.clone(),
                            expected: cas.clone().unwrap_or(StoreVersion::Number(0)),
                        })
                    }
                    Err(e) => Err(e.into()),
                }
            }
            StoreOp::Promote { version, .. } => Ok(StoreOutput::Promoted {
                version: version.clone(),
                noop: true,
            }),
        }
    }

    async fn read(
        &self,
        version: Option<&StoreVersion>,
        loc: &SecretLocation,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<StoreOutput, StoreError> {
        let resp = match http.send(plan, secrets).await {
            Ok(r) => r,
            // The current version: missing, or a latest version someone deleted.
            Err(e) if e.kind() == FailureKind::NotFound && version.is_none() => {
                self.check_latest(loc, http, secrets).await?;
                return Ok(StoreOutput::Missing);
            }
            Err(e) if e.kind() == FailureKind::NotFound => return Ok(StoreOutput::Missing),
            Err(e) => return Err(e.into()),
        };
        let body: ReadResponse = resp.json()?;
        let Some(data) = body.data.data else {
            // A deleted or destroyed version has metadata but no data.
            if version.is_none() {
                self.check_latest(loc, http, secrets).await?;
            }
            return Ok(StoreOutput::Missing);
        };
        let number = body.data.metadata.version;
        self.remember(&loc.path, number, &data.0);
        let value = data
            .get_str(&loc.field)
            .ok_or_else(|| StoreError::NoField {
                path: loc.path.clone(),
                field: loc.field.clone(),
            })?;
        let value = Secret::new(value);
        http.redactor().learn(&value);
        Ok(StoreOutput::Value {
            value,
            version: number.into(),
        })
    }

    fn remember(
        &self,
        path: &str,
        version: u64,
        data: &serde_json::Map<String, serde_json::Value>,
    ) {
        let whole = Secret::new(serde_json::Value::Object(data.clone()).to_string());
        if let Ok(mut v) = self.versions.lock() {
            v.insert((path.to_string(), version), whole);
        }
    }

    /// The body of a write: the whole `data` of version `cas` with the key's field replaced
    /// (read again if this process has not read it yet, e.g. after a resume), or the field
    /// alone for a new secret.
    async fn whole_secret(
        &self,
        loc: &SecretLocation,
        cas: u64,
        value: SecretRef,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<Secret, StoreError> {
        let new_key = secrets.get(value).ok_or(StoreError::NoNewKey)?;
        let mut data = crate::secret::SecretMap(serde_json::Map::new());
        if cas > 0 {
            let cached = |s: &Self| {
                s.versions
                    .lock()
                    .ok()
                    .and_then(|v| v.get(&(loc.path.clone(), cas)).cloned())
            };
            if cached(self).is_none() {
                let op = StoreOp::Read {
                    version: Some(StoreVersion::Number(cas)),
                };
                let read = self.plan(&op, loc)?;
                // A version without the field is still a secret whose fields must be kept.
                match self
                    .read(Some(&StoreVersion::Number(cas)), loc, &read, http, secrets)
                    .await
                {
                    Ok(_) | Err(StoreError::NoField { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            let Some(whole) = cached(self) else {
                self.check_latest(loc, http, secrets).await?;
                return Err(StoreError::Malformed(format!(
                    "version {cas} of {} has no data to keep",
                    loc.path
                )));
            };
            data.0 = serde_json::from_str(whole.expose())
                .map_err(|e| StoreError::Malformed(e.to_string()))?;
        }
        data.0.insert(
            loc.field.clone(),
            serde_json::Value::String(new_key.expose().to_string()),
        );
        let fields = Secret::new(
            serde_json::to_string(&data.0).map_err(|e| StoreError::Malformed(e.to_string()))?,
        );
        Ok(Secret::new(format!(
            r#"{{"options":{{"cas":{cas}}},"data":{}}}"#,
            fields.expose()
        )))
    }

    /// Fail with a clear error when the secret's latest version is soft-deleted or destroyed
    /// (it reads as 404, but `cas` still counts it); succeed when the secret is simply
    /// missing or its latest version is readable.
    async fn check_latest(
        &self,
        loc: &SecretLocation,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<(), StoreError> {
        let plan = self.auth(RequestPlan::read(
            format!("Read the metadata of {} (versions and deletions)", loc.path),
            "GET",
            self.endpoint("metadata", &loc.path),
        ));
        let meta: MetadataResponse = match http.send(&plan, secrets).await {
            Ok(r) => r.json()?,
            Err(e) if e.kind() == FailureKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let n = meta.data.current_version;
        match meta.data.versions.get(&n.to_string()) {
            Some(v) if v.destroyed => Err(StoreError::LatestVersionGone {
                path: loc.path.clone(),
                version: n,
                how: "destroyed".into(),
            }),
            Some(v) if !v.deletion_time.is_empty() => Err(StoreError::LatestVersionGone {
                path: loc.path.clone(),
                version: n,
                how: format!("soft-deleted at {}", v.deletion_time),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Origin, StoreKind};

    fn store(address: &str, mount: &str) -> VaultKv2 {
        let mut settings = serde_json::Map::new();
        settings.insert("mount".into(), mount.into());
        VaultKv2::new(&StoreDef {
            id: "v".into(),
            kind: StoreKind::VaultKv2,
            address: Some(address.into()),
            credential: None,
            settings,
            origin: Origin { file: 0, line: 1 },
        })
    }

    #[test]
    fn path_segments_are_percent_encoded_as_path_segments() {
        let s = store("https://vault.example:8200/", "kv/team a");
        assert_eq!(
            s.url("/agents/support bot/a+b?c#d%/"),
            "https://vault.example:8200/v1/kv/team%20a/data/agents/support%20bot/a+b%3Fc%23d%25"
        );
        assert_eq!(
            s.endpoint("metadata", "x/y"),
            "https://vault.example:8200/v1/kv/team%20a/metadata/x/y"
        );
    }

    #[test]
    fn every_write_is_a_post_with_check_and_set_never_a_patch() {
        let s = store("http://127.0.0.1:8200", "secret");
        let loc = SecretLocation {
            path: "agents/bot".into(),
            field: "value".into(),
        };
        for cas in [
            None,
            Some(StoreVersion::Number(0)),
            Some(StoreVersion::Number(7)),
        ] {
            let plan = s
                .plan(
                    &StoreOp::Write {
                        cas: cas.clone(),
                        pending: false,
                        token: "t".into(),
                        value: SecretRef::NewKey,
                    },
                    &loc,
                )
                .unwrap();
            assert_eq!(plan.method, "POST");
            let want = cas.as_ref().and_then(StoreVersion::number).unwrap_or(0);
            assert_eq!(plan.body.as_ref().unwrap()["options"]["cas"], want);
            assert!(!plan.render().contains("merge-patch"));
        }
    }
}
