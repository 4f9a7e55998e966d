//! Doppler (API v3): one secret of a project config. The token (a service token with write
//! access, or a service account token) is sent as `Authorization: Bearer`; `settings.project`
//! and `settings.config` name the config; a key's `secret_path` is the secret's name;
//! `address` overrides `https://api.doppler.com`.
//!
//! Doppler has no check-and-set on a plain update, so keyfire's version of a secret is the id
//! of the config's newest activity-log entry: read at open (with the secret, between two reads
//! of the log so the pair is consistent) and again just before the write. If the config
//! changed in between, keyfire stops and names the log entry: who, when, what. The write
//! sends only this secret; the log entry it creates is the new version, and it is what the
//! record keeps, so undoing the change is one Doppler command
//! (`doppler configs logs rollback <log id> --project P --config C`, or the dashboard's
//! "Rollback Changes" on that entry). Doppler keeps every version of a secret, but its API
//! serves only the current value: a read of an older version fails with the log entry that
//! replaced it.
//!
//! | op | request | spec (docs.doppler.com/reference; field names as in Doppler's SDKs generated from it) |
//! |---|---|---|
//! | read | `GET /v3/configs/config/secret?project=&config=&name=` → `{name, value:{raw, computed, note}}` | [Secrets: Retrieve](https://docs.doppler.com/reference/config-secret-retrieve); `SecretsGet200Response` in DopplerHQ/python-sdk |
//! | version (newest log entry) | `GET /v3/configs/config/logs?project=&config=&page=1&per_page=` → `{logs:[{id, text, created_at, user:{email, name, username}, ...}], page}`, newest first | [Config Logs: List](https://docs.doppler.com/reference/config-log-list); `ConfigLogsListResponse` in DopplerHQ/python-sdk |
//! | write | `POST /v3/configs/config/secrets` `{project, config, secrets:{NAME: value}}` → `{secrets:{NAME:{raw, computed, note}}}` | [Secrets: Update](https://docs.doppler.com/reference/config-secret-update) ("either a `secrets` or `change_requests` parameter") |
//! | undo (operator, not sent) | `POST /v3/configs/config/logs/log/rollback?project=&config=&log=` | [Config Logs: Rollback](https://docs.doppler.com/reference/config-log-rollback); [Versioning](https://docs.doppler.com/docs/versioning) |
//! | auth | `Authorization: Bearer <token>` (service tokens are read-only unless created with write access) | [API reference: Authentication](https://docs.doppler.com/reference/api) |
//! | errors | `{"messages":[...], "success": false}` with the HTTP status; 429 with `Retry-After` | `errorResponse` in DopplerHQ/cli `pkg/http/http.go`; [Rate Limits](https://docs.doppler.com/reference/rate-limits) |
//!
//! A write retried after its answer was lost finds the value already stored and reports the
//! newest log entry as its version, instead of writing again or stopping on its own change.
//!
//! A secret whose raw value references another secret (`${...}`, so raw and computed differ)
//! is read as agents receive it (the computed value) but never overwritten: a literal would cut
//! the reference, and the key lives in the referenced secret.
//!
//! No stages: a write is live at once and `Promote` is a recorded no-op.

use std::collections::HashMap;

use serde::Deserialize;

use super::traits::Store;
use super::wire::{WireSecret, url_with_query};
use super::{SecretLocation, StoreError, StoreOp, StoreOutput, StoreVersion};
use crate::http::{FailureKind, Http, HttpError};
use crate::inventory::{StoreDef, StoreKind};
use crate::plan::{RequestPlan, SecretBag, SecretRef};
use crate::secret::Secret;

pub(super) const DEFAULT_ADDRESS: &str = "https://api.doppler.com";

/// How many log entries keyfire reads after a write to find the one it created.
const LOGS_AFTER_WRITE: u32 = 20;

#[derive(Debug, Clone)]
pub struct Doppler {
    address: String,
    project: String,
    config: String,
}

#[derive(Deserialize)]
struct LogsPage {
    logs: Vec<LogEntry>,
}

#[derive(Deserialize, Clone)]
struct LogEntry {
    id: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    user: Option<LogUser>,
}

#[derive(Deserialize, Clone)]
struct LogUser {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    username: Option<String>,
}

#[derive(Deserialize)]
struct SecretValue {
    #[serde(default)]
    raw: Option<WireSecret>,
    #[serde(default)]
    computed: Option<WireSecret>,
}

impl SecretValue {
    /// The raw value is not what agents receive: it references other secrets (`${...}`).
    fn is_reference(&self) -> bool {
        match (&self.raw, &self.computed) {
            (Some(r), Some(c)) => r.0.expose() != c.0.expose(),
            _ => false,
        }
    }

    /// What agents receive: the computed value (references resolved), else the raw one.
    fn served(self) -> Option<Secret> {
        self.computed.or(self.raw).map(|w| w.0)
    }
}

#[derive(Deserialize)]
struct ReadResponse {
    value: SecretValue,
}

#[derive(Deserialize)]
struct WriteResponse {
    secrets: HashMap<String, SecretValue>,
}

fn version_of(entry: Option<&LogEntry>) -> StoreVersion {
    entry.map_or(StoreVersion::Number(0), |e| StoreVersion::Id(e.id.clone()))
}

impl Store for Doppler {
    const KIND: StoreKind = StoreKind::Doppler;
    const NEEDS_CREDENTIAL: bool = true;

    fn from_def(def: &StoreDef) -> Self {
        Self::new(def)
    }

    fn plan(&self, op: &StoreOp, loc: &SecretLocation) -> Result<RequestPlan, StoreError> {
        let name = &loc.path;
        Ok(match op {
            StoreOp::Read { version } => {
                let which = match version {
                    Some(v) => format!("secret {name} as of config log {v}"),
                    None => format!("the current value of secret {name}"),
                };
                self.auth(RequestPlan::read(
                    format!(
                        "Read {which} in {} (and the config's newest log entry, before and after)",
                        self.at()
                    ),
                    "GET",
                    self.secret_url(name),
                ))
            }
            StoreOp::Write { cas, value, .. } => {
                let check = match cas {
                    Some(StoreVersion::Number(0)) => {
                        "only if the secret still does not exist".to_string()
                    }
                    Some(v) => format!("only if config log {v} is still the newest entry"),
                    None => "no concurrency check".to_string(),
                };
                let pointer = format!("/secrets/{}", name.replace('~', "~0").replace('/', "~1"));
                self.auth(
                    RequestPlan::write(
                        format!(
                            "Write {} to secret {name} in {} ({check}); Doppler logs the change, and `{}` undoes it",
                            super::written(*value),
                            self.at(),
                            self.rollback_command("<log id of this change>")
                        ),
                        "POST",
                        url_with_query(&self.address, "/v3/configs/config/secrets", &[]),
                    )
                    .json(serde_json::json!({
                        "project": self.project,
                        "config": self.config,
                        "secrets": { name.clone(): null },
                    }))
                    .body_secret(&pointer, *value),
                )
            }
            StoreOp::Promote { version, .. } => RequestPlan::write(
                format!(
                    "Promote config log {version} of {}: Doppler has no stages, the write made it current",
                    self.at()
                ),
                "NOOP",
                self.secret_url(name),
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
        let result = match op {
            StoreOp::Read { version } => {
                self.read(version.as_ref(), loc, plan, http, secrets).await
            }
            StoreOp::Write { cas, value, .. } => {
                self.write(cas.as_ref(), *value, loc, plan, http, secrets)
                    .await
            }
            StoreOp::Promote { version, .. } => Ok(StoreOutput::Promoted {
                version: version.clone(),
                noop: true,
            }),
        };
        match result {
            Err(StoreError::Http(e)) if e.kind() == FailureKind::Forbidden => {
                Err(StoreError::Denied(format!(
                    "{} of secret {} refused ({e}): the token needs read access to the activity log and secrets of {}, and write access for the replacement (a service token created with read/write access, or a service account with a role that can edit secrets)",
                    op.name(),
                    loc.path,
                    self.at()
                )))
            }
            other => other,
        }
    }
}

impl Doppler {
    pub fn new(def: &StoreDef) -> Self {
        let setting = |name: &str| super::setting(def, name).unwrap_or_default();
        Self {
            address: super::base_address(def, DEFAULT_ADDRESS),
            project: setting("project"),
            config: setting("config"),
        }
    }

    fn auth(&self, plan: RequestPlan) -> RequestPlan {
        plan.secret_header("Authorization", "Bearer ", SecretRef::StoreCredential)
    }

    fn at(&self) -> String {
        format!("Doppler config {}/{}", self.project, self.config)
    }

    fn secret_url(&self, name: &str) -> String {
        url_with_query(
            &self.address,
            "/v3/configs/config/secret",
            &[
                ("project", &self.project),
                ("config", &self.config),
                ("name", name),
            ],
        )
    }

    fn logs_plan(&self, per_page: u32) -> RequestPlan {
        let per_page = per_page.to_string();
        self.auth(RequestPlan::read(
            format!(
                "Read the newest activity-log entries of {} (the version keyfire checks)",
                self.at()
            ),
            "GET",
            url_with_query(
                &self.address,
                "/v3/configs/config/logs",
                &[
                    ("project", &self.project),
                    ("config", &self.config),
                    ("page", "1"),
                    ("per_page", &per_page),
                ],
            ),
        ))
    }

    /// The command that undoes a change keyfire made (shown to the operator, never sent).
    pub fn rollback_command(&self, log_id: &str) -> String {
        format!(
            "doppler configs logs rollback {log_id} --project {} --config {}",
            self.project, self.config
        )
    }

    /// The config's newest log entries, newest first.
    async fn logs(
        &self,
        per_page: u32,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let page: LogsPage = http
            .send(&self.logs_plan(per_page), secrets)
            .await?
            .json()?;
        Ok(page.logs)
    }

    async fn latest(
        &self,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<Option<LogEntry>, StoreError> {
        Ok(self.logs(1, http, secrets).await?.into_iter().next())
    }

    /// "log X by NAME (EMAIL) at WHEN: TEXT", scrubbed of anything keyfire knows is secret.
    fn describe(&self, e: &LogEntry, http: &Http) -> String {
        let who = e
            .user
            .as_ref()
            .map(|u| {
                let name = u.name.clone().or_else(|| u.username.clone());
                match (name, &u.email) {
                    (Some(n), Some(m)) => format!("{n} ({m})"),
                    (Some(n), None) => n,
                    (None, Some(m)) => m.clone(),
                    (None, None) => "an unnamed user".into(),
                }
            })
            .unwrap_or_else(|| "an unnamed actor".into());
        let when = e.created_at.as_deref().unwrap_or("an unknown time");
        let text = e
            .text
            .as_deref()
            .map(|t| format!(": {}", crate::http::truncate(t, 120)))
            .unwrap_or_default();
        http.redactor()
            .scrub(&format!("log {} by {who} at {when}{text}", e.id))
    }

    async fn read(
        &self,
        version: Option<&StoreVersion>,
        loc: &SecretLocation,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<StoreOutput, StoreError> {
        // The log before and after the secret: equal ids mean the value belongs to that
        // version. A config that changes under every attempt is reported, not guessed at.
        for _ in 0..3 {
            let before = self.latest(http, secrets).await?;
            let value = match http.send(plan, secrets).await {
                Ok(resp) => {
                    let body: ReadResponse = resp.json()?;
                    let value = body.value.served().ok_or_else(|| {
                        StoreError::Malformed(format!(
                            "secret {} has neither a raw nor a computed value",
                            loc.path
                        ))
                    })?;
                    http.redactor().learn(&value);
                    Some(value)
                }
                Err(e) if e.kind() == FailureKind::NotFound => None,
                Err(e) => return Err(e.into()),
            };
            let after = self.latest(http, secrets).await?;
            if before.as_ref().map(|e| &e.id) != after.as_ref().map(|e| &e.id) {
                continue;
            }
            let current = version_of(after.as_ref());
            if let Some(want) = version
                && *want != current
            {
                let by = after
                    .as_ref()
                    .map_or_else(|| "no log entry".into(), |e| self.describe(e, http));
                let undo = after.as_ref().map_or_else(String::new, |e| {
                    format!(
                        "; Doppler keeps the earlier value: `{}` undoes the newest change",
                        self.rollback_command(&e.id)
                    )
                });
                return Err(StoreError::Changed(format!(
                    "secret {} as of config log {want} cannot be read: Doppler's API serves only the current value, and {} changed since ({by}){undo}",
                    loc.path,
                    self.at()
                )));
            }
            return Ok(match value {
                Some(value) => StoreOutput::Value {
                    value,
                    version: current,
                },
                None => StoreOutput::Missing,
            });
        }
        Err(StoreError::Changed(format!(
            "{} changed during each of three reads of secret {}; try again when it is quiet",
            self.at(),
            loc.path
        )))
    }

    async fn write(
        &self,
        cas: Option<&StoreVersion>,
        value: SecretRef,
        loc: &SecretLocation,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<StoreOutput, StoreError> {
        if secrets.get(value).is_none() {
            return Err(StoreError::NoNewKey);
        }
        // Just before the write: the config must be as keyfire read it.
        let latest = self.latest(http, secrets).await?;
        let now = version_of(latest.as_ref());
        match cas {
            Some(StoreVersion::Number(0)) => {
                let read = self.plan(&StoreOp::Read { version: None }, loc)?;
                match http.send(&read, secrets).await {
                    Ok(_) => {
                        return Err(StoreError::Changed(format!(
                            "secret {} did not exist in {} when the incident opened but does now{}; keyfire will not write over it",
                            loc.path,
                            self.at(),
                            latest
                                .as_ref()
                                .map(|e| format!(" (newest change: {})", self.describe(e, http)))
                                .unwrap_or_default()
                        )));
                    }
                    Err(e) if e.kind() == FailureKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Some(expected) if *expected != now => {
                // This very write, retried after its answer was lost: the secret already
                // holds the value, and the newest entry is the change that put it there.
                let read = self.plan(&StoreOp::Read { version: None }, loc)?;
                if let Ok(resp) = http.send(&read, secrets).await
                    && let Ok(body) = resp.json::<ReadResponse>()
                    && let (Some(stored), Some(wanted)) = (body.value.served(), secrets.get(value))
                    && stored.expose() == wanted.expose()
                    && let Some(entry) = &latest
                {
                    return Ok(StoreOutput::Written {
                        version: StoreVersion::Id(entry.id.clone()),
                    });
                }
                let by = latest
                    .as_ref()
                    .map_or_else(|| "its log is now empty".into(), |e| self.describe(e, http));
                return Err(StoreError::Changed(format!(
                    "{} changed since keyfire read it at config log {expected}: {by}. Doppler has no check-and-set, so keyfire stops rather than write over someone else's change; check the config, then retry the step",
                    self.at()
                )));
            }
            Some(_) => {
                // A secret whose raw value references another one: writing a literal here
                // would silently cut the link; the key lives in the referenced secret.
                let read = self.plan(&StoreOp::Read { version: None }, loc)?;
                let body: ReadResponse = http.send(&read, secrets).await?.json()?;
                let reference = body.value.is_reference();
                if let Some(v) = body.value.served() {
                    http.redactor().learn(&v);
                }
                if reference {
                    return Err(StoreError::Changed(format!(
                        "secret {} in {} references another secret (its raw value is not what agents receive); keyfire will not replace the reference with a literal: point the key's store and secret_path at the secret it references",
                        loc.path,
                        self.at()
                    )));
                }
            }
            None => {}
        }
        let resp = http.send(plan, secrets).await?;
        let body: WriteResponse = resp.json()?;
        let Some(echoed) = body.secrets.into_iter().find(|(n, _)| *n == loc.path) else {
            return Err(StoreError::Malformed(format!(
                "the update answer does not list secret {}",
                loc.path
            )));
        };
        drop(echoed);
        // The entry this write created: the oldest one newer than the entry read before it.
        let logs = self.logs(LOGS_AFTER_WRITE, http, secrets).await?;
        let newer = match &latest {
            Some(prev) => logs
                .iter()
                .position(|e| e.id == prev.id)
                .map_or(&logs[..], |i| &logs[..i]),
            None => &logs[..],
        };
        let Some(ours) = newer.last() else {
            return Err(StoreError::Http(HttpError::Malformed(format!(
                "{} accepted the write of {} but its activity log shows no new entry",
                self.at(),
                loc.path
            ))));
        };
        Ok(StoreOutput::Written {
            version: StoreVersion::Id(ours.id.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Origin, StoreKind};

    fn store() -> Doppler {
        let mut settings = serde_json::Map::new();
        settings.insert("project".into(), "agents".into());
        settings.insert("config".into(), "prd".into());
        Doppler::new(&StoreDef {
            id: "d".into(),
            kind: StoreKind::Doppler,
            address: None,
            credential: None,
            settings,
            origin: Origin { file: 0, line: 1 },
        })
    }

    fn loc() -> SecretLocation {
        SecretLocation {
            path: "OPENAI_KEY".into(),
            field: "value".into(),
        }
    }

    #[test]
    fn reads_are_gets_of_the_documented_path_with_a_bearer_token() {
        let plan = store()
            .plan(&StoreOp::Read { version: None }, &loc())
            .unwrap();
        assert_eq!(plan.method, "GET");
        assert_eq!(
            plan.url,
            "https://api.doppler.com/v3/configs/config/secret?project=agents&config=prd&name=OPENAI_KEY"
        );
        assert!(
            plan.render()
                .contains("Authorization: Bearer [store credential]")
        );
        assert_eq!(plan.access, crate::plan::Access::Read);
    }

    #[test]
    fn the_write_sends_only_this_secret_and_names_the_undo_command() {
        let plan = store()
            .plan(
                &StoreOp::Write {
                    cas: Some(StoreVersion::Id("log_1".into())),
                    pending: false,
                    token: "t".into(),
                    value: SecretRef::NewKey,
                },
                &loc(),
            )
            .unwrap();
        assert_eq!(plan.method, "POST");
        assert!(plan.url.ends_with("/v3/configs/config/secrets"));
        let body = plan.body.as_ref().unwrap();
        assert_eq!(body["project"], "agents");
        assert_eq!(body["config"], "prd");
        assert_eq!(body["secrets"].as_object().unwrap().len(), 1);
        assert!(plan.render().contains(r#""OPENAI_KEY":"[new key]""#));
        assert!(plan.summary.contains("doppler configs logs rollback"));
        assert_eq!(plan.access, crate::plan::Access::Write);
    }
}
