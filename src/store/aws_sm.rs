//! AWS Secrets Manager through the official SDK. A replacement is written with
//! `PutSecretValue` under a `ClientRequestToken` derived from the incident (a retried write
//! is the same version, not a second one), parked as `AWSPENDING`, read back by that version
//! id, and promoted with `UpdateSecretVersionStage(AWSCURRENT, MoveTo=new, RemoveFrom=old)`,
//! which fails if someone else moved `AWSCURRENT` meanwhile (the label move is the
//! check-and-set). Reads always name the stage: moto answers a stage-less read with the old
//! value after a label move.
//!
//! The value: `SecretString` is the bare key when the key's `secret_field` is the default
//! `value`, otherwise a JSON object holding the key under that field (other fields kept).
//!
//! | op | call | spec (botocore `secretsmanager/2017-10-17`; AWS API reference) |
//! |---|---|---|
//! | read | `GetSecretValue SecretId VersionStage=AWSCURRENT` (or `VersionId`) | [`GetSecretValue`](https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html) |
//! | first write | `CreateSecret Name ClientRequestToken SecretString` | [`CreateSecret`](https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html) |
//! | write | `PutSecretValue SecretId ClientRequestToken SecretString VersionStages=[AWSPENDING]` | [`PutSecretValue`](https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html) |
//! | stages | `DescribeSecret SecretId` (`VersionIdsToStages`) | [`DescribeSecret`](https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html) |
//! | promote | `UpdateSecretVersionStage SecretId VersionStage MoveToVersionId RemoveFromVersionId` | [`UpdateSecretVersionStage`](https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_UpdateSecretVersionStage.html) |
//!
//! The contract suite loads the botocore model and checks every member named here
//! (`tests/fixtures/spec/aws/calls.json`).

use std::sync::Arc;

use aws_sdk_secretsmanager::Client;

use super::traits::Store;
use super::{SecretLocation, StoreError, StoreOp, StoreOutput, StoreVersion};
use crate::aws::{KeyPair, Target, sdk_error};
use crate::http::Http;
use crate::inventory::{StoreDef, StoreKind};
use crate::plan::{RequestPlan, SecretBag};
use crate::secret::Secret;

pub(super) const CURRENT: &str = "AWSCURRENT";
pub(super) const PENDING: &str = "AWSPENDING";

#[derive(Debug, Clone)]
pub struct AwsSecretsManager {
    target: Target,
    /// Configuration from the SDK's default chain, resolved once per process.
    chain: Arc<tokio::sync::OnceCell<aws_config::SdkConfig>>,
}

/// The `ClientRequestToken` (and so the `VersionId`) for a write named `token` by the
/// engine: 32 hex characters of its SHA-256 behind a `kf-` prefix (AWS wants 32 to 64).
pub(super) fn request_token(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    format!("kf-{}", &digest[..32])
}

fn is_bare(loc: &SecretLocation) -> bool {
    loc.field == "value"
}

impl Store for AwsSecretsManager {
    const KIND: StoreKind = StoreKind::AwsSecretsManager;
    // Without a credential reference the SDK's default chain signs.
    const NEEDS_CREDENTIAL: bool = true;
    // AWSPENDING until UpdateSecretVersionStage moves AWSCURRENT.
    const HAS_STAGES: bool = true;

    fn from_def(def: &StoreDef) -> Self {
        Self::new(def)
    }

    /// The `VersionId` is the `ClientRequestToken`, derived from the write's name.
    fn version_for_token(&self, token: &str) -> Option<StoreVersion> {
        Some(StoreVersion::Id(request_token(token)))
    }

    fn plan(&self, op: &StoreOp, loc: &SecretLocation) -> Result<RequestPlan, StoreError> {
        let id = &loc.path;
        let at = self.where_();
        let shown_field = if is_bare(loc) {
            String::new()
        } else {
            format!(" (field {})", loc.field)
        };
        Ok(match op {
            StoreOp::Read { version } => {
                let (what, sel) = match version {
                    None => (
                        format!("the {CURRENT} version"),
                        format!("VersionStage={CURRENT}"),
                    ),
                    Some(v) => (format!("version {v}"), format!("VersionId={v}")),
                };
                RequestPlan::read(
                    format!("Read {what} of secret {id}{shown_field}"),
                    "AWS",
                    format!("secretsmanager:GetSecretValue SecretId={id} {sel} @ {at}"),
                )
                // A `Get*` call: a read by AWS's naming, not by the method (`AWS`).
                .declared_read()
            }
            StoreOp::Write {
                cas,
                pending,
                token,
                value,
            } => {
                let tok = request_token(token);
                let stages = if *pending {
                    format!(" VersionStages=[{PENDING}]")
                } else {
                    String::new()
                };
                let check = cas
                    .as_ref()
                    .map(|v| format!(", only while {CURRENT} is version {v}"))
                    .unwrap_or_default();
                let mut body = serde_json::json!({
                    "SecretId": id,
                    "ClientRequestToken": tok,
                    "SecretString": null,
                });
                if *pending {
                    body["VersionStages"] = serde_json::json!([PENDING]);
                }
                RequestPlan::write(
                    format!(
                        "Write {} to secret {id}{shown_field} as version {tok}{}{check}",
                        super::written(*value),
                        if *pending { format!(", staged {PENDING}") } else { format!(", made {CURRENT} at once") }
                    ),
                    "AWS",
                    format!("secretsmanager:PutSecretValue SecretId={id} ClientRequestToken={tok}{stages} @ {at}"),
                )
                .json(body)
                .body_secret("/SecretString", *value)
                // The same token with the same value is a no-op at AWS.
                .idempotent(true)
            }
            StoreOp::Promote { version, from } => {
                let remove = from
                    .as_ref()
                    .map(|v| format!(" RemoveFromVersionId={v}"))
                    .unwrap_or_default();
                RequestPlan::write(
                    format!("Promote version {version} of secret {id} to {CURRENT} (agents read it from now on), then clear {PENDING}"),
                    "AWS",
                    format!("secretsmanager:UpdateSecretVersionStage SecretId={id} VersionStage={CURRENT} MoveToVersionId={version}{remove} @ {at}"),
                )
                .idempotent(true)
            }
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
        let r = http.redactor();
        let client = self.client(secrets, r).await?;
        match op {
            StoreOp::Read { version } => {
                let mut req = client.get_secret_value().secret_id(&loc.path);
                req = match version {
                    None => req.version_stage(CURRENT),
                    Some(v) => req.version_id(v.to_string()),
                };
                let out = match req.send().await {
                    Ok(o) => o,
                    Err(e) => {
                        let e = sdk_error("secretsmanager:GetSecretValue", &e, r);
                        if e.code() == Some("ResourceNotFoundException") {
                            return Ok(StoreOutput::Missing);
                        }
                        return Err(e.into());
                    }
                };
                let Some(text) = out.secret_string() else {
                    return Err(StoreError::Malformed(format!(
                        "secret {} has no SecretString (binary secrets are not supported)",
                        loc.path
                    )));
                };
                let value = extract(text, loc)?;
                r.learn(&value);
                let version = out.version_id().ok_or_else(|| {
                    StoreError::Malformed("GetSecretValue returned no VersionId".into())
                })?;
                Ok(StoreOutput::Value {
                    value,
                    version: StoreVersion::Id(version.to_string()),
                })
            }
            StoreOp::Write {
                cas,
                pending,
                token,
                value,
            } => {
                let new = secrets.get(*value).ok_or(StoreError::NoNewKey)?;
                let tok = request_token(token);
                let current = self.current(&client, loc, http).await?;
                if let Some(expected) = cas {
                    let still = match &current {
                        None => *expected == StoreVersion::Number(0),
                        // Either nobody wrote since the incident opened, or the current
                        // version is this very write, retried after an interruption.
                        Some((id, _)) => *id == tok || StoreVersion::Id(id.clone()) == *expected,
                    };
                    if !still {
                        return Err(StoreError::CasMismatch {
                            path: loc.path.clone(),
                            expected: expected.clone(),
                        });
                    }
                }
                let text = if is_bare(loc) {
                    Secret::new(new.expose())
                } else {
                    let mut obj = current
                        .as_ref()
                        .and_then(|(_, v)| {
                            serde_json::from_str::<crate::secret::SecretMap>(v.expose()).ok()
                        })
                        .unwrap_or_default();
                    if let Some(mut old) = obj.0.insert(loc.field.clone(), new.expose().into()) {
                        crate::secret::zeroize_json(&mut old);
                    }
                    Secret::new(
                        serde_json::to_string(&obj.0)
                            .map_err(|e| StoreError::Malformed(e.to_string()))?,
                    )
                };
                if current.is_none() {
                    // Nothing stored yet: the first version is current by definition.
                    client
                        .create_secret()
                        .name(&loc.path)
                        .client_request_token(&tok)
                        .secret_string(text.expose())
                        .send()
                        .await
                        .map_err(|e| sdk_error("secretsmanager:CreateSecret", &e, r))?;
                } else {
                    let mut req = client
                        .put_secret_value()
                        .secret_id(&loc.path)
                        .client_request_token(&tok)
                        .secret_string(text.expose());
                    if *pending {
                        req = req.version_stages(PENDING);
                    }
                    if let Err(e) = req.send().await {
                        let e = sdk_error("secretsmanager:PutSecretValue", &e, r);
                        if e.code() == Some("ResourceExistsException") {
                            return Err(StoreError::Malformed(format!(
                                "version {tok} of {} already holds a different value (a replacement created before an interruption); keyfire will not overwrite it",
                                loc.path
                            )));
                        }
                        return Err(e.into());
                    }
                }
                Ok(StoreOutput::Written {
                    version: StoreVersion::Id(tok),
                })
            }
            StoreOp::Promote { version, from } => {
                let stages = self.stages(&client, loc, http).await?;
                let holder = |label: &str| {
                    stages
                        .iter()
                        .find(|(_, labels)| labels.iter().any(|l| l == label))
                        .map(|(id, _)| id.clone())
                };
                let target = version.to_string();
                let current = holder(CURRENT);
                if current.as_deref() != Some(target.as_str()) {
                    if let (Some(from), Some(cur)) = (from, &current)
                        && from.to_string() != *cur
                    {
                        return Err(StoreError::CasMismatch {
                            path: loc.path.clone(),
                            expected: from.clone(),
                        });
                    }
                    let mut req = client
                        .update_secret_version_stage()
                        .secret_id(&loc.path)
                        .version_stage(CURRENT)
                        .move_to_version_id(&target);
                    if let Some(cur) = &current {
                        req = req.remove_from_version_id(cur);
                    }
                    req.send()
                        .await
                        .map_err(|e| sdk_error("secretsmanager:UpdateSecretVersionStage", &e, r))?;
                }
                // Clear the pending marker so a later rotation does not see one in progress.
                if holder(PENDING).as_deref() == Some(target.as_str()) {
                    client
                        .update_secret_version_stage()
                        .secret_id(&loc.path)
                        .version_stage(PENDING)
                        .remove_from_version_id(&target)
                        .send()
                        .await
                        .map_err(|e| sdk_error("secretsmanager:UpdateSecretVersionStage", &e, r))?;
                }
                Ok(StoreOutput::Promoted {
                    version: version.clone(),
                    noop: false,
                })
            }
        }
    }
}

impl AwsSecretsManager {
    pub fn new(def: &StoreDef) -> Self {
        Self {
            target: Target::from_settings(&def.settings, def.address.as_deref()),
            chain: Arc::default(),
        }
    }

    fn where_(&self) -> String {
        self.target.describe("secretsmanager")
    }

    async fn client(
        &self,
        secrets: &SecretBag,
        r: &crate::secret::Redactor,
    ) -> Result<Client, StoreError> {
        let config = match &secrets.store_credential {
            Some(c) => {
                self.target
                    .config(Some(&KeyPair::parse_learned(c, r)?))
                    .await
            }
            None => self
                .chain
                .get_or_init(|| self.target.config(None))
                .await
                .clone(),
        };
        Ok(Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::from(&config)
                .interceptor(crate::aws::LogCalls)
                .build(),
        ))
    }

    /// The `AWSCURRENT` version id and whole `SecretString`, or `None` when the secret does
    /// not exist.
    async fn current(
        &self,
        client: &Client,
        loc: &SecretLocation,
        http: &Http,
    ) -> Result<Option<(String, Secret)>, StoreError> {
        match client
            .get_secret_value()
            .secret_id(&loc.path)
            .version_stage(CURRENT)
            .send()
            .await
        {
            Ok(out) => {
                let text = Secret::new(out.secret_string().unwrap_or_default());
                http.redactor().learn(&text);
                Ok(out.version_id().map(|id| (id.to_string(), text)))
            }
            Err(e) => {
                let e = sdk_error("secretsmanager:GetSecretValue", &e, http.redactor());
                if e.code() == Some("ResourceNotFoundException") {
                    Ok(None)
                } else {
                    Err(e.into())
                }
            }
        }
    }

    /// Version id → staging labels (never values).
    async fn stages(
        &self,
        client: &Client,
        loc: &SecretLocation,
        http: &Http,
    ) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let out = client
            .describe_secret()
            .secret_id(&loc.path)
            .send()
            .await
            .map_err(|e| sdk_error("secretsmanager:DescribeSecret", &e, http.redactor()))?;
        Ok(out
            .version_ids_to_stages()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }
}

/// The key from a `SecretString`: the whole string, or one field of a JSON object.
fn extract(text: &str, loc: &SecretLocation) -> Result<Secret, StoreError> {
    if is_bare(loc) {
        return Ok(Secret::new(text));
    }
    let obj: crate::secret::SecretMap =
        serde_json::from_str(text).map_err(|_| StoreError::NoField {
            path: loc.path.clone(),
            field: loc.field.clone(),
        })?;
    obj.get_str(&loc.field)
        .map(Secret::new)
        .ok_or_else(|| StoreError::NoField {
            path: loc.path.clone(),
            field: loc.field.clone(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_tokens_are_deterministic_and_within_aws_limits() {
        let a = request_token("inc-20261126-031500-a1b2:support:store:1");
        assert_eq!(a, request_token("inc-20261126-031500-a1b2:support:store:1"));
        assert_ne!(a, request_token("inc-20261126-031500-a1b2:support:store:2"));
        assert!((32..=64).contains(&a.len()));
    }

    #[test]
    fn fields_select_bare_or_json_values() {
        let bare = SecretLocation {
            path: "p".into(),
            field: "value".into(),
        };
        assert_eq!(extract("abc", &bare).unwrap().expose(), "abc");
        let field = SecretLocation {
            path: "p".into(),
            field: "token".into(),
        };
        assert_eq!(
            extract(r#"{"token":"t1","other":"x"}"#, &field)
                .unwrap()
                .expose(),
            "t1"
        );
        assert!(extract("not json", &field).is_err());
    }
}
