//! Infisical (Cloud or self-hosted): one shared secret of a project environment, through the
//! v3 raw-secrets API. keyfire logs in as a machine identity with Universal Auth
//! (`settings.client_id`; the store's `credential` is the client secret) and sends the access
//! token as `Authorization: Bearer`. The token is renewed by logging in again when its
//! `expiresIn` has (nearly) run out, or when Infisical refuses it mid-incident (403
//! `TokenError` "Your token has expired", or 401).
//! `settings.project_id` and `settings.environment` (a slug such as `prod`) name where the
//! secret lives; a key's `secret_path` is the folder and the name (`/agents/support/OPENAI_KEY`:
//! folder `/agents/support`, secret `OPENAI_KEY`); `address` is the instance
//! (default `https://app.infisical.com`).
//!
//! Versions are Infisical's integer secret versions. There is no check-and-set, so a write
//! first reads the current version and stops if it is not the one read at open; the answer's
//! `version` is the new version, read back by number. A write retried after its answer was
//! lost finds the value already stored and reports that version instead of writing again. Infisical keeps every version (readable
//! with `?version=N`), so the previous value can be restored by reading it and writing it
//! again. When a secret-approval policy covers the path, Infisical answers `{approval}`
//! instead of `{secret}`: the change waits for a reviewer and is not live, and keyfire says so.
//!
//! | op | request | spec (Infisical API reference; `backend/src/server/routes` in Infisical/infisical) |
//! |---|---|---|
//! | login | `POST /api/v1/auth/universal-auth/login` `{clientId, clientSecret}` → `{accessToken, expiresIn, accessTokenMaxTTL, tokenType:"Bearer"}` | [Universal Auth: Login](https://infisical.com/docs/api-reference/endpoints/universal-auth/login); [Universal Auth](https://infisical.com/docs/documentation/platform/identities/universal-auth) |
//! | read | `GET /api/v3/secrets/raw/{secretName}?workspaceId=&environment=&secretPath=&type=shared[&version=N]` → `{secret:{id, version, secretKey, secretValue, ...}}` | [Secrets: Retrieve](https://infisical.com/docs/api-reference/endpoints/secrets/read); `v3/deprecated-secret-router.ts` `GET /raw/:secretName`, `secretRawSchema` |
//! | write (existing secret) | `PATCH /api/v3/secrets/raw/{secretName}` `{workspaceId, environment, secretPath, secretValue, type:"shared"}` → `{secret}` or `{approval}` | [Secrets: Update](https://infisical.com/docs/api-reference/endpoints/secrets/update); router `PATCH /raw/:secretName` |
//! | write (new secret) | `POST /api/v3/secrets/raw/{secretName}` (same body) → `{secret}` or `{approval}` | [Secrets: Create](https://infisical.com/docs/api-reference/endpoints/secrets/create); router `POST /raw/:secretName` |
//! | errors | `{reqId, statusCode, message, error}`: 401 `UnauthorizedError`; 403 `TokenError` for an expired or malformed access token ("Your token has expired. Please re-authenticate."), 403 `PermissionDenied` for a missing permission; 404 `NotFound`; 422 `ValidationFailure`; 429 from the rate limiter | `backend/src/server/plugins/error-handler.ts` in Infisical/infisical; [Rate limits](https://infisical.com/docs/self-hosting/configuration/envars#rate-limiting) |
//!
//! The server trims `secretValue` (keeping one trailing newline): keys have no surrounding
//! whitespace, and the read back compares what Infisical stored with what was created.
//! No stages: a write is live at once and `Promote` is a recorded no-op.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::traits::Store;
use super::wire::{WireSecret, path_segment, url_with_query};
use super::{SecretLocation, StoreError, StoreOp, StoreOutput, StoreVersion};
use crate::http::{FailureKind, Http};
use crate::inventory::{StoreDef, StoreKind};
use crate::plan::{RequestPlan, SecretBag, SecretRef};
use crate::secret::Secret;

pub(super) const DEFAULT_ADDRESS: &str = "https://app.infisical.com";

#[derive(Debug, Clone)]
struct Token {
    value: Secret,
    /// When keyfire logs in again (a little before Infisical's expiry); `None`: no expiry.
    renew_at: Option<Instant>,
}

#[derive(Debug, Clone)]
pub struct Infisical {
    address: String,
    client_id: String,
    project_id: String,
    environment: String,
    /// The access token of the last login, shared by clones of this store.
    login: Arc<Mutex<Option<Token>>>,
}

#[derive(Deserialize)]
struct LoginResponse {
    #[serde(rename = "accessToken")]
    access_token: WireSecret,
    #[serde(rename = "expiresIn", default)]
    expires_in: u64,
}

#[derive(Deserialize)]
struct RawSecret {
    version: u64,
    #[serde(rename = "secretValue", default)]
    secret_value: Option<WireSecret>,
    #[serde(rename = "secretValueHidden", default)]
    secret_value_hidden: bool,
}

#[derive(Deserialize)]
struct ReadResponse {
    secret: RawSecret,
}

#[derive(Deserialize)]
struct Approval {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    slug: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WriteResponse {
    Secret { secret: RawSecret },
    Approval { approval: Approval },
}

/// `/agents/support/OPENAI_KEY` → (`/agents/support`, `OPENAI_KEY`); a bare name is in `/`.
pub(super) fn split_path(path: &str) -> (String, String) {
    let trimmed = path.trim();
    let (folder, name) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
    let folder = folder.trim_end_matches('/');
    let folder = if folder.is_empty() {
        "/".to_string()
    } else if folder.starts_with('/') {
        folder.to_string()
    } else {
        format!("/{folder}")
    };
    (folder, name.to_string())
}

fn renew_at(expires_in: u64) -> Option<Instant> {
    // Renew at 90% of the lifetime, so a call never leaves with a token about to expire.
    (expires_in > 0).then(|| Instant::now() + Duration::from_secs(expires_in) * 9 / 10)
}

impl Store for Infisical {
    const KIND: StoreKind = StoreKind::Infisical;
    const NEEDS_CREDENTIAL: bool = true;

    fn from_def(def: &StoreDef) -> Self {
        Self::new(def)
    }

    fn plan(&self, op: &StoreOp, loc: &SecretLocation) -> Result<RequestPlan, StoreError> {
        let (folder, name) = split_path(&loc.path);
        let via = format!(" (token from machine identity {})", self.client_id);
        Ok(match op {
            StoreOp::Read { version } => {
                let which = version
                    .as_ref()
                    .map_or("the current version".to_string(), |v| format!("version {v}"));
                self.auth(RequestPlan::read(
                    format!("Read {which} of secret {name} in folder {folder} of {}{via}", self.at()),
                    "GET",
                    self.secret_url(&name, &folder, version.as_ref()),
                ))
            }
            StoreOp::Write { cas, value, .. } => {
                let create = cas.as_ref().is_none_or(|v| v.number() == Some(0));
                let (method, what) = if create {
                    ("POST", "Create secret".to_string())
                } else {
                    (
                        "PATCH",
                        format!(
                            "Update secret (only if version {} is still current; Infisical keeps it as history)",
                            cas.as_ref().map(ToString::to_string).unwrap_or_default()
                        ),
                    )
                };
                self.auth(
                    RequestPlan::write(
                        format!(
                            "{what} {name} in folder {folder} of {} with {}{via}",
                            self.at(),
                            super::written(*value)
                        ),
                        method,
                        url_with_query(
                            &self.address,
                            &format!("/api/v3/secrets/raw/{}", path_segment(&name)),
                            &[],
                        ),
                    )
                    .json(serde_json::json!({
                        "workspaceId": self.project_id,
                        "environment": self.environment,
                        "secretPath": folder,
                        "secretValue": null,
                        "type": "shared",
                    }))
                    .body_secret("/secretValue", *value),
                )
            }
            StoreOp::Promote { version, .. } => RequestPlan::write(
                format!(
                    "Promote version {version} of {name}: Infisical has no stages, the write made it current"
                ),
                "NOOP",
                self.secret_url(&name, &folder, None),
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
        let result = match self.send(op, loc, plan, http, &bag).await {
            // Infisical answers an expired access token with 403 `TokenError` ("Your token
            // has expired") and a missing permission with 403 `PermissionDenied`; a revoked
            // token may get 401. Log in once more: if the fresh token is refused too, it is
            // the identity's role.
            Err(StoreError::Http(e))
                if matches!(e.kind(), FailureKind::Unauthorized | FailureKind::Forbidden) =>
            {
                let bag = self.session(http, secrets, true).await?;
                self.send(op, loc, plan, http, &bag).await
            }
            other => other,
        };
        match result {
            Err(StoreError::Http(e))
                if matches!(e.kind(), FailureKind::Forbidden | FailureKind::Unauthorized) =>
            {
                Err(StoreError::Denied(format!(
                    "{} of {} refused ({e}): machine identity {} needs a project role that can read and edit secrets in environment {} at folder {}",
                    op.name(),
                    loc.path,
                    self.client_id,
                    self.environment,
                    split_path(&loc.path).0
                )))
            }
            other => other,
        }
    }
}

impl Infisical {
    pub fn new(def: &StoreDef) -> Self {
        let setting = |name: &str| super::setting(def, name).unwrap_or_default();
        Self {
            address: super::base_address(def, DEFAULT_ADDRESS),
            client_id: setting("client_id"),
            project_id: setting("project_id"),
            environment: setting("environment"),
            login: Arc::default(),
        }
    }

    fn at(&self) -> String {
        format!(
            "Infisical project {} environment {}",
            self.project_id, self.environment
        )
    }

    fn auth(&self, plan: RequestPlan) -> RequestPlan {
        plan.secret_header("Authorization", "Bearer ", SecretRef::StoreCredential)
    }

    fn secret_url(&self, name: &str, folder: &str, version: Option<&StoreVersion>) -> String {
        let version = version.map(ToString::to_string);
        let mut query = vec![
            ("workspaceId", self.project_id.as_str()),
            ("environment", self.environment.as_str()),
            ("secretPath", folder),
            ("type", "shared"),
        ];
        if let Some(v) = &version {
            query.push(("version", v));
        }
        url_with_query(
            &self.address,
            &format!("/api/v3/secrets/raw/{}", path_segment(name)),
            &query,
        )
    }

    /// The Universal Auth login, as a plan: it creates an access token but changes no secret,
    /// so drills send it like a read (a drill must prove that keyfire can log in).
    pub fn login_plan(&self) -> RequestPlan {
        RequestPlan::read(
            format!(
                "Log in to Infisical as machine identity {} (Universal Auth)",
                self.client_id
            ),
            "POST",
            url_with_query(&self.address, "/api/v1/auth/universal-auth/login", &[]),
        )
        .json(serde_json::json!({ "clientId": self.client_id, "clientSecret": null }))
        .body_secret("/clientSecret", SecretRef::StoreCredential)
        // A POST that reads: drills send it (see above).
        .declared_read()
    }

    /// The bag to send with: the store credential (the client secret) swapped for an access
    /// token, logging in when there is none, it is due for renewal, or `fresh` asks.
    async fn session(
        &self,
        http: &Http,
        secrets: &SecretBag,
        fresh: bool,
    ) -> Result<SecretBag, StoreError> {
        let cached = if fresh {
            None
        } else {
            self.login
                .lock()
                .ok()
                .and_then(|g| g.clone())
                .filter(|t| t.renew_at.is_none_or(|at| Instant::now() < at))
        };
        let token = match cached {
            Some(t) => t.value,
            None => {
                let resp = match http.send(&self.login_plan(), secrets).await {
                    Ok(r) => r,
                    Err(e)
                        if matches!(
                            e.kind(),
                            FailureKind::Unauthorized
                                | FailureKind::Forbidden
                                | FailureKind::NotFound
                        ) =>
                    {
                        return Err(StoreError::Denied(format!(
                            "Universal Auth login of machine identity {} refused ({e}): check settings.client_id, the client secret the credential names, and the identity's trusted IPs",
                            self.client_id
                        )));
                    }
                    Err(e) => return Err(e.into()),
                };
                let body: LoginResponse = resp.json()?;
                let token = body.access_token.0;
                http.redactor().learn(&token);
                if let Ok(mut g) = self.login.lock() {
                    *g = Some(Token {
                        value: token.clone(),
                        renew_at: renew_at(body.expires_in),
                    });
                }
                token
            }
        };
        let mut bag = secrets.clone();
        bag.store_credential = Some(token);
        Ok(bag)
    }

    async fn send(
        &self,
        op: &StoreOp,
        loc: &SecretLocation,
        plan: &RequestPlan,
        http: &Http,
        bag: &SecretBag,
    ) -> Result<StoreOutput, StoreError> {
        match op {
            StoreOp::Read { .. } => self.read(loc, plan, http, bag).await,
            StoreOp::Write { cas, value, .. } => {
                self.write(cas.as_ref(), *value, loc, plan, http, bag).await
            }
            StoreOp::Promote { version, .. } => Ok(StoreOutput::Promoted {
                version: version.clone(),
                noop: true,
            }),
        }
    }

    async fn read(
        &self,
        loc: &SecretLocation,
        plan: &RequestPlan,
        http: &Http,
        bag: &SecretBag,
    ) -> Result<StoreOutput, StoreError> {
        let resp = match http.send(plan, bag).await {
            Ok(r) => r,
            Err(e) if e.kind() == FailureKind::NotFound => return Ok(StoreOutput::Missing),
            Err(e) => return Err(e.into()),
        };
        let body: ReadResponse = resp.json()?;
        let secret = body.secret;
        let Some(value) = secret.secret_value.filter(|_| !secret.secret_value_hidden) else {
            return Err(StoreError::Denied(format!(
                "Infisical hides the value of {} from machine identity {} (secretValueHidden): its role needs the permission to read secret values",
                loc.path, self.client_id
            )));
        };
        let value = value.0;
        http.redactor().learn(&value);
        Ok(StoreOutput::Value {
            value,
            version: StoreVersion::Number(secret.version),
        })
    }

    async fn write(
        &self,
        cas: Option<&StoreVersion>,
        value: SecretRef,
        loc: &SecretLocation,
        plan: &RequestPlan,
        http: &Http,
        bag: &SecretBag,
    ) -> Result<StoreOutput, StoreError> {
        if bag.get(value).is_none() {
            return Err(StoreError::NoNewKey);
        }
        // No check-and-set at Infisical: read the current version right before the write.
        if let Some(expected) = cas {
            let read = self.plan(&StoreOp::Read { version: None }, loc)?;
            let (current, stored) = match self.read(loc, &read, http, bag).await? {
                StoreOutput::Value { version, value } => (version, Some(value)),
                _ => (StoreVersion::Number(0), None),
            };
            // This very write, retried after its answer was lost: already stored.
            if current != *expected
                && let (Some(stored), Some(wanted)) = (&stored, bag.get(value))
                && stored.expose() == wanted.expose()
            {
                return Ok(StoreOutput::Written { version: current });
            }
            if current != *expected {
                return Err(StoreError::CasMismatch {
                    path: loc.path.clone(),
                    expected: expected.clone(),
                });
            }
        }
        let resp = http.send(plan, bag).await?;
        match resp.json::<WriteResponse>()? {
            WriteResponse::Secret { secret } => Ok(StoreOutput::Written {
                version: StoreVersion::Number(secret.version),
            }),
            WriteResponse::Approval { approval } => Err(StoreError::NotApplied(format!(
                "a secret-approval policy covers {} in {}: Infisical opened change request {} instead of writing, so the replacement is NOT live; have it approved and merged, then retry the step",
                loc.path,
                self.at(),
                approval
                    .slug
                    .or(approval.id)
                    .unwrap_or_else(|| "(no id given)".into())
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Origin, StoreKind};

    fn store() -> Infisical {
        let mut settings = serde_json::Map::new();
        settings.insert("client_id".into(), "cid-1".into());
        settings.insert("project_id".into(), "proj-1".into());
        settings.insert("environment".into(), "prod".into());
        Infisical::new(&StoreDef {
            id: "i".into(),
            kind: StoreKind::Infisical,
            address: Some("https://infisical.internal:8443/".into()),
            credential: None,
            settings,
            origin: Origin { file: 0, line: 1 },
        })
    }

    #[test]
    fn secret_paths_split_into_folder_and_name() {
        assert_eq!(
            split_path("/agents/support/OPENAI_KEY"),
            ("/agents/support".into(), "OPENAI_KEY".into())
        );
        assert_eq!(split_path("OPENAI_KEY"), ("/".into(), "OPENAI_KEY".into()));
        assert_eq!(split_path("/OPENAI_KEY"), ("/".into(), "OPENAI_KEY".into()));
        assert_eq!(split_path("a/B"), ("/a".into(), "B".into()));
    }

    #[test]
    fn reads_name_project_environment_folder_and_version() {
        let loc = SecretLocation {
            path: "/agents/support/OPENAI_KEY".into(),
            field: "value".into(),
        };
        let plan = store()
            .plan(
                &StoreOp::Read {
                    version: Some(StoreVersion::Number(4)),
                },
                &loc,
            )
            .unwrap();
        assert_eq!(
            plan.url,
            "https://infisical.internal:8443/api/v3/secrets/raw/OPENAI_KEY?workspaceId=proj-1&environment=prod&secretPath=%2Fagents%2Fsupport&type=shared&version=4"
        );
        assert!(
            plan.render()
                .contains("Authorization: Bearer [store credential]")
        );
    }

    #[test]
    fn writes_patch_an_existing_secret_and_post_a_new_one() {
        let loc = SecretLocation {
            path: "/agents/support/OPENAI_KEY".into(),
            field: "value".into(),
        };
        let write = |cas: u64| {
            store()
                .plan(
                    &StoreOp::Write {
                        cas: Some(StoreVersion::Number(cas)),
                        pending: false,
                        token: "t".into(),
                        value: SecretRef::NewKey,
                    },
                    &loc,
                )
                .unwrap()
        };
        assert_eq!(write(3).method, "PATCH");
        assert_eq!(write(0).method, "POST");
        let plan = write(3);
        let body = plan.body.as_ref().unwrap();
        assert_eq!(body["secretPath"], "/agents/support");
        assert_eq!(body["workspaceId"], "proj-1");
        assert_eq!(body["type"], "shared");
        assert!(plan.render().contains(r#""secretValue":"[new key]""#));
        let login = store().login_plan();
        assert_eq!(login.access, crate::plan::Access::Read);
        assert!(
            login
                .render()
                .contains(r#""clientSecret":"[store credential]""#)
        );
    }
}
