//! `aws-iam`: IAM user access keys through the official AWS SDK for Rust.
//!
//! | op | call | spec (botocore service model; AWS API reference) |
//! |---|---|---|
//! | locate | `iam:ListAccessKeys` of the user (settings `user`), or `iam:GetAccessKeyLastUsed` to learn the user from the key id | `iam/2010-05-08` `ListAccessKeys`, `GetAccessKeyLastUsed` |
//! | find a lost replacement | `iam:ListAccessKeys` of the user; access keys have no names, so the replacement is the user's key whose `CreateDate` lies in the recorded create request's window (±2 s of AWS's clock), excluding the leaked key and every key the record gives to another key of the incident | `iam/2010-05-08` `ListAccessKeys` (`AccessKeyMetadata.CreateDate`) |
//! | verify | `sts:GetCallerIdentity` signed with the key itself ("No permissions are required to perform this operation"); `settings.sts_url` sends it to an endpoint of its own (a regional or VPC endpoint). See "Proof of revocation" below | `sts/2011-06-15` `GetCallerIdentity` |
//! | disable | `iam:UpdateAccessKey Status=Inactive` | `iam/2010-05-08` `UpdateAccessKey` |
//! | revoke | `iam:DeleteAccessKey` | `iam/2010-05-08` `DeleteAccessKey` |
//! | create | `iam:CreateAccessKey`; IAM allows two keys per user: with two, keyfire refuses before asking AWS and says why (zero-downtime is impossible then) | `iam/2010-05-08` `CreateAccessKey` |
//! | list keys (`inventory discover`) | `iam:ListUsers` (`PathPrefix` from `settings.path_prefix`, `MaxItems=1000`, `Marker` while `IsTruncated`) unless `settings.user` names one user; then per user (concurrently) `iam:ListAccessKeys` and per key `iam:GetAccessKeyLastUsed` (`LastUsedDate`) | `iam/2010-05-08` `ListUsers`, `ListAccessKeys`, `GetAccessKeyLastUsed` |
//! | usage | `iam:GetAccessKeyLastUsed`, then `cloudtrail:LookupEvents` by `AccessKeyId` in each region of `settings.regions` (source address, user agent, error code per call) | `cloudtrail/2013-11-01` `LookupEvents` |
//!
//! The contract suite loads these models with botocore and checks every operation, input
//! member and output member named here.
//!
//! CloudTrail coverage, as its documentation states it (`LookupEvents`: "Looks up management
//! events or CloudTrail Insights events ... You can look up events that occurred in a Region
//! within the last 90 days"; <https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupEvents.html>):
//! management events only (data events, such as S3 object reads, are never searched), one
//! region per call, 90 days back. keyfire searches each region of `settings.regions`
//! (default: the provider's region) and says so in the usage notes and the audit source, so a
//! count is never read as all activity. "The rate of lookup requests is limited to two per
//! second, per account, per Region": calls are paced by [`Pacer::cloudtrail`].
//! `settings.cloudtrail_url` sends only CloudTrail elsewhere (tests: moto has no LookupEvents,
//! a loopback stand-in answers it).
//!
//! Proof of revocation: only `InvalidClientTokenId` (AWS "Common Errors": "The X.509
//! certificate or AWS access key ID provided does not exist in our records", HTTP 403).
//! `AccessDenied`, `RegionDisabledException` (`sts/2011-06-15`: HTTP 403, "STS is not
//! activated in the requested region"), `SignatureDoesNotMatch` (the stored secret is not this
//! key's), throttling, 5xx and network errors are inconclusive. IAM is eventually consistent
//! (a deleted key can authenticate for a while), so the engine asks again with backoff for up
//! to `settings.proof_wait_seconds` (default 30) before it calls the proof inconclusive.
//!
//! The key's value, in the store and in memory, is the JSON pair
//! `{"AccessKeyId": ..., "SecretAccessKey": ...}`. The admin credential is optional: without
//! it the SDK's default chain (environment, profile, SSO, IMDS) is used.

use std::sync::{Arc, Mutex};

use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use aws_sdk_iam::types::StatusType;
use chrono::{DateTime, Utc};

use super::Identity;
use super::listing::{KeyListing, ListKeys, ListedKey};
use super::pace::Pacer;
use super::traits::{Capabilities, Provider};
use super::{KeyState, LocatedKey, Op, OpOutput, Probe, ProviderError, UsageEvent};
use super::{UsageReport, Which};
use crate::aws::{AwsError, KeyPair, Target, sdk_error};
use crate::http::Http;
use crate::inventory::ProviderKind;
use crate::inventory::{Key, ProviderDef};
use crate::plan::{Access, RequestPlan, SecretBag, SecretRef};
use crate::secret::Redactor;
use crate::secret::Secret;

/// How long a revocation proof waits for IAM's eventual consistency by default.
const DEFAULT_PROOF_WAIT_S: u64 = 30;
/// IAM's limit of access keys per user.
const KEYS_PER_USER: usize = 2;
/// CloudTrail pages read at most per region (50 events each) before the audit says it
/// stopped short.
const MAX_TRAIL_PAGES: u32 = 100;
/// How far back `LookupEvents` can see.
const TRAIL_DAYS: i64 = 90;

#[derive(Debug, Clone)]
pub struct AwsIamProvider {
    target: Target,
    /// `settings.user`, or the user learned from the leaked key at locate.
    user: Arc<Mutex<Option<String>>>,
    cloudtrail_url: Option<String>,
    sts_url: Option<String>,
    /// How long the revocation proof may wait for IAM to reflect a deletion.
    proof_wait: std::time::Duration,
    /// `settings.regions`: where CloudTrail is searched (empty: the provider's region).
    regions: Vec<String>,
    /// Paces `LookupEvents` per region.
    pacer: Arc<Pacer>,
    /// The inventory key's access key id (the leaked key), to tell replacements from it.
    leaked: Option<String>,
    /// `settings.path_prefix`: discovery lists only the users under this IAM path.
    path_prefix: Option<String>,
    chain: Arc<tokio::sync::OnceCell<aws_config::SdkConfig>>,
}

/// What one region's CloudTrail search found.
struct RegionTrail {
    region: String,
    events: Vec<UsageEvent>,
    pages: u32,
    stopped_short: bool,
}

struct Listed {
    id: String,
    active: bool,
    created: Option<DateTime<Utc>>,
}

fn chrono_of(t: &aws_sdk_iam::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// `keyfire-inc-20261126-031500-a1b2-KEY[-N]` (also `drill-`, `rot-`) → the incident's
/// opening second.
fn incident_time(name: &str) -> Option<DateTime<Utc>> {
    let id = name.strip_prefix("keyfire-")?;
    let rest = ["inc-", "drill-", "rot-"]
        .iter()
        .find_map(|p| id.strip_prefix(p))?;
    let stamp = rest.get(..15)?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%d-%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

/// AWS stamps CreateDate with its own clock: allow a little skew either side.
const CLOCK_SKEW_SECS: i64 = 2;

/// The key a lost `CreateAccessKey` made: IAM keys have no names, so it is the user's first
/// key created inside the request's window that is neither the leaked key nor one the record
/// gives to someone else (another key's recorded replacement, an inventory key). In a
/// campaign over two keys of one user, this is what keeps one key's cleanup off the other
/// key's replacement.
fn lost_replacement<'a>(
    keys: &'a [Listed],
    q: &super::ReplacementQuery,
    leaked: Option<&str>,
) -> Option<&'a Listed> {
    let skew = chrono::Duration::seconds(CLOCK_SKEW_SECS);
    let from = q.sent_at - skew;
    let to = q.answered_at.map(|t| t + skew);
    keys.iter()
        .filter(|k| Some(k.id.as_str()) != leaked)
        .filter(|k| !q.exclude.contains(&k.id))
        .filter(|k| {
            k.created
                .is_some_and(|c| c >= from && to.is_none_or(|to| c <= to))
        })
        .min_by_key(|k| k.created)
}

impl Provider for AwsIamProvider {
    const KIND: ProviderKind = ProviderKind::AwsIam;
    // IAM allows two access keys per user, so a replacement can be created while the
    // leaked key is still live (when the user holds only that one). CloudTrail comes with
    // usage (one event per call), not as a separate audit log.
    const CAPABILITIES: Capabilities = Capabilities {
        locate: true,
        verify: true,
        disable: true,
        revoke: true,
        create: true,
        usage: true,
        audit: false,
        create_idempotent: false,
        single_live_key: false,
        usage_destroyed_by_revoke: false,
    };
    super::listing::lists_keys!();

    fn from_def(def: &ProviderDef) -> Self {
        Self::new(def)
    }

    /// IAM: "changes ... are eventually consistent".
    fn eventually_consistent(&self) -> bool {
        true
    }

    /// The stored value is the JSON pair: its access key id names the key.
    fn identity(value: &Secret, key_id: Option<&str>) -> Option<Identity> {
        let by = "the access key id in the stored pair".to_string();
        Some(match (KeyPair::parse(value), key_id) {
            (Ok(pair), Some(id)) if pair.access_key_id == id => Identity::Matches { by },
            (Ok(_), Some(_)) => Identity::Differs { by },
            (Ok(_), None) => Identity::Unknown {
                why: "the key was not located at the provider".into(),
            },
            (Err(_), _) => Identity::Unknown {
                why: "the stored value is not an access key pair".into(),
            },
        })
    }

    fn for_key(mut self, key: &Key) -> Self {
        self.leaked = key.provider_key_id.clone();
        self
    }

    /// The waits between revocation probes: doubling from one second, `proof_wait` in all.
    fn proof_waits(&self) -> Vec<std::time::Duration> {
        let mut left = self.proof_wait;
        let mut next = std::time::Duration::from_secs(1);
        let mut waits = Vec::new();
        while !left.is_zero() {
            let w = next.min(left);
            waits.push(w);
            left -= w;
            next *= 2;
        }
        waits
    }

    fn plan(&self, op: &Op) -> Result<RequestPlan, ProviderError> {
        let iam = self.at("iam");
        let user = self.user_text();
        Ok(match op {
            Op::Locate { id: Some(id), .. } => self.admin(
                format!("Look up access key {id} and its status"),
                format!(
                    "iam:GetAccessKeyLastUsed AccessKeyId={id}; iam:ListAccessKeys UserName={user} @ {iam}"
                ),
                Access::Read,
            ),
            Op::FindReplacement(q) => self.admin(
                format!(
                    "Look for the replacement {} asked for: a key of {user} created since {}{}, not one of {} known keys",
                    q.name,
                    (q.sent_at - chrono::Duration::seconds(CLOCK_SKEW_SECS)).to_rfc3339(),
                    q.answered_at
                        .map(|t| format!(" and before {}", (t + chrono::Duration::seconds(CLOCK_SKEW_SECS)).to_rfc3339()))
                        .unwrap_or_default(),
                    q.exclude.len()
                ),
                format!("iam:ListAccessKeys UserName={user} @ {iam}"),
                Access::Read,
            ),
            Op::Locate { name: Some(name), .. } => self.admin(
                format!("Look for a replacement made by {name} (a key of {user} created since the incident opened)"),
                format!("iam:ListAccessKeys UserName={user} @ {iam}"),
                Access::Read,
            ),
            Op::Locate { hint, .. } => self.admin(
                format!(
                    "Find the access key matching {} among {user}'s keys",
                    hint.as_deref().unwrap_or("?")
                ),
                format!("iam:ListAccessKeys UserName={user} @ {iam}"),
                Access::Read,
            ),
            Op::Verify { which } => {
                let (secret, label) = match which {
                    Which::Old => (SecretRef::OldKey, "old"),
                    Which::New => (SecretRef::NewKey, "new"),
                };
                RequestPlan::read(
                    format!("Authenticate with the {label} access key (GetCallerIdentity needs no permission: only a dead key fails)"),
                    "AWS",
                    format!("sts:GetCallerIdentity @ {}", self.at("sts")),
                )
                .declared_read()
                .secret_header("Authorization", "AWS4-HMAC-SHA256 ", secret)
            }
            Op::Disable { id } => self
                .admin(
                    format!("Deactivate access key {id} (reversible)"),
                    format!(
                        "iam:UpdateAccessKey UserName={user} AccessKeyId={id} Status=Inactive @ {iam}"
                    ),
                    Access::Write,
                )
                .idempotent(true),
            Op::Revoke { id } => self
                .admin(
                    format!("Delete access key {id} (permanent)"),
                    format!("iam:DeleteAccessKey UserName={user} AccessKeyId={id} @ {iam}"),
                    Access::Write,
                )
                .destructive()
                .idempotent(true),
            Op::Create { name, .. } => self.admin(
                format!("Create a replacement access key for {user} ({name}); refused if the user already holds two keys"),
                format!("iam:ListAccessKeys UserName={user}; iam:CreateAccessKey UserName={user} @ {iam}"),
                Access::Write,
            ),
            Op::AuditLog { id, .. } => RequestPlan::read(
                format!("No separate audit log for {id}: CloudTrail events come with usage"),
                "AWS",
                "(none)",
            ),
            Op::Usage { id, start, end } => self.admin(
                format!(
                    "Fetch last use of {id} and its CloudTrail events from {} to {}",
                    start.format("%Y-%m-%d %H:%M"),
                    end.format("%Y-%m-%d %H:%M")
                ),
                format!(
                    "iam:GetAccessKeyLastUsed AccessKeyId={id} @ {iam}; cloudtrail:LookupEvents LookupAttributes=[AccessKeyId={id}] StartTime={} EndTime={} in {} (management events, at most 2 requests/s per region) @ {}",
                    start.to_rfc3339(),
                    end.to_rfc3339(),
                    self.regions_text(),
                    self.at("cloudtrail")
                ),
                Access::Read,
            ),
        })
    }

    async fn execute(
        &self,
        op: &Op,
        _plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<OpOutput, ProviderError> {
        let r = http.redactor();
        match op {
            Op::Verify { which } => {
                let secret = match which {
                    Which::Old => secrets.old_key.as_ref(),
                    Which::New => secrets.new_key.as_ref(),
                }
                .ok_or_else(|| {
                    ProviderError::Malformed("the key to verify is not in memory".into())
                })?;
                let pair = KeyPair::parse_learned(secret, r)?;
                let config = self.target.config(Some(&pair)).await;
                let mut sts =
                    aws_sdk_sts::config::Builder::from(&config).interceptor(crate::aws::LogCalls);
                if let Some(u) = &self.sts_url {
                    sts = sts.endpoint_url(u);
                }
                let answer = aws_sdk_sts::Client::from_conf(sts.build())
                    .get_caller_identity()
                    .send()
                    .await;
                Ok(OpOutput::Verified(match answer {
                    Ok(_) => Probe::Accepted,
                    Err(e) => {
                        let e = sdk_error("sts:GetCallerIdentity", &e, r);
                        match e.code() {
                            Some("InvalidClientTokenId") => Probe::Rejected {
                                status: e.status(),
                                signal: "InvalidClientTokenId".into(),
                            },
                            _ => Probe::Inconclusive {
                                status: e.status(),
                                reason: e.to_string(),
                            },
                        }
                    }
                }))
            }
            Op::Locate { id: Some(id), .. } => {
                let iam = self.iam(secrets, r).await?;
                let user = match self.resolve_user(&iam, Some(id), r).await {
                    Ok(u) => u,
                    // IAM no longer knows the key: deleted.
                    Err(ProviderError::Aws(e)) if e.code() == Some("NoSuchEntity") => {
                        return Ok(OpOutput::Located(None));
                    }
                    Err(e) => return Err(e),
                };
                let keys = self.list(&iam, &user, r).await?;
                Ok(OpOutput::Located(
                    keys.iter().find(|k| k.id == *id).map(Self::located),
                ))
            }
            Op::FindReplacement(q) => {
                let iam = self.iam(secrets, r).await?;
                let user = self.resolve_user(&iam, None, r).await?;
                let keys = self.list(&iam, &user, r).await?;
                if let Some(id) = &q.id {
                    return Ok(OpOutput::Located(
                        keys.iter().find(|k| k.id == *id).map(Self::located),
                    ));
                }
                Ok(OpOutput::Located(
                    lost_replacement(&keys, q, self.leaked.as_deref()).map(Self::located),
                ))
            }
            Op::Locate {
                name: Some(name), ..
            } => {
                let iam = self.iam(secrets, r).await?;
                let user = self.resolve_user(&iam, None, r).await?;
                let Some(since) = incident_time(name) else {
                    return Ok(OpOutput::Located(None));
                };
                // AWS stamps CreateDate with its own clock: allow a little skew.
                let since = since - chrono::Duration::seconds(2);
                let keys = self.list(&iam, &user, r).await?;
                let found = keys
                    .iter()
                    .filter(|k| Some(&k.id) != self.leaked.as_ref())
                    .filter(|k| k.created.is_some_and(|c| c >= since))
                    .max_by_key(|k| k.created);
                Ok(OpOutput::Located(found.map(Self::located)))
            }
            Op::Locate { hint, .. } => {
                let iam = self.iam(secrets, r).await?;
                let user = self.resolve_user(&iam, None, r).await?;
                let keys = self.list(&iam, &user, r).await?;
                let found = hint
                    .as_deref()
                    .and_then(|h| h.split_once("..."))
                    .map(|(prefix, t)| {
                        keys.iter()
                            .filter(|k| {
                                !t.is_empty() && k.id.starts_with(prefix) && k.id.ends_with(t)
                            })
                            .map(Self::located)
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(super::one_of(found))
            }
            Op::Disable { id } => {
                let iam = self.iam(secrets, r).await?;
                let user = self.resolve_user(&iam, Some(id), r).await?;
                iam.update_access_key()
                    .user_name(&user)
                    .access_key_id(id)
                    .status(StatusType::Inactive)
                    .send()
                    .await
                    .map_err(|e| sdk_error("iam:UpdateAccessKey", &e, r))?;
                let keys = self.list(&iam, &user, r).await?;
                if keys.iter().any(|k| k.id == *id && k.active) {
                    return Err(ProviderError::Malformed(format!(
                        "access key {id} is still active after UpdateAccessKey"
                    )));
                }
                Ok(OpOutput::Disabled)
            }
            Op::Revoke { id } => {
                let iam = self.iam(secrets, r).await?;
                let user = match self.resolve_user(&iam, Some(id), r).await {
                    Ok(u) => u,
                    Err(ProviderError::Aws(e)) if e.code() == Some("NoSuchEntity") => {
                        return Ok(OpOutput::Revoked { already: true });
                    }
                    Err(e) => return Err(e),
                };
                match iam
                    .delete_access_key()
                    .user_name(&user)
                    .access_key_id(id)
                    .send()
                    .await
                {
                    Ok(_) => {
                        crate::failpoint::failpoint("aws:deleted");
                        Ok(OpOutput::Revoked { already: false })
                    }
                    Err(e) => {
                        let e = sdk_error("iam:DeleteAccessKey", &e, r);
                        if e.code() == Some("NoSuchEntity") {
                            Ok(OpOutput::Revoked { already: true })
                        } else {
                            Err(e.into())
                        }
                    }
                }
            }
            Op::Create { .. } => {
                let iam = self.iam(secrets, r).await?;
                let user = self.resolve_user(&iam, None, r).await?;
                let keys = self.list(&iam, &user, r).await?;
                if keys.len() >= KEYS_PER_USER {
                    let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
                    return Err(ProviderError::Refused(format!(
                        "IAM user `{user}` already holds {} access keys ({}), the most AWS allows: no replacement can be created while both exist, so zero-downtime rotation is impossible for this user. Run the incident contain-first (without --zero-downtime) so the leaked key is deleted first, or delete the user's other key",
                        keys.len(),
                        ids.join(", ")
                    )));
                }
                // Not idempotent: a retry after a lost answer would make a second key.
                let out = iam
                    .create_access_key()
                    .user_name(&user)
                    .customize()
                    .config_override(
                        aws_sdk_iam::config::Builder::default()
                            .retry_config(aws_sdk_iam::config::retry::RetryConfig::disabled()),
                    )
                    .send()
                    .await
                    .map_err(|e| sdk_error("iam:CreateAccessKey", &e, r))?;
                // Crash tests: IAM made the key, its answer never reaches the record.
                crate::failpoint::failpoint("aws:created");
                let key = out.access_key().ok_or_else(|| {
                    ProviderError::Malformed("CreateAccessKey returned no key".into())
                })?;
                let pair = KeyPair {
                    access_key_id: key.access_key_id().to_string(),
                    secret_access_key: crate::secret::Secret::new(key.secret_access_key()),
                    session_token: None,
                };
                r.learn(&pair.secret_access_key);
                let value = pair.to_json();
                r.learn(&value);
                Ok(OpOutput::Created {
                    id: pair.access_key_id.clone(),
                    value,
                })
            }
            Op::AuditLog { .. } => Err(ProviderError::Unsupported {
                kind: crate::inventory::ProviderKind::AwsIam,
                op: "audit_log",
            }),
            Op::Usage { id, start, end } => {
                let config = self.admin_config(secrets, r).await?;
                let iam = iam_client(&config);
                let mut report = UsageReport::default();
                match iam
                    .get_access_key_last_used()
                    .access_key_id(id)
                    .send()
                    .await
                {
                    Ok(out) => {
                        let note = match out.access_key_last_used() {
                            Some(u) => match u.last_used_date().and_then(chrono_of) {
                                Some(t) => format!(
                                    "IAM: last used {} by {} in {}",
                                    t.to_rfc3339(),
                                    u.service_name(),
                                    u.region()
                                ),
                                None => "IAM: never used".to_string(),
                            },
                            None => "IAM: no last-used record".to_string(),
                        };
                        report.notes.push(note);
                    }
                    Err(e) => {
                        let e = sdk_error("iam:GetAccessKeyLastUsed", &e, r);
                        if e.code() != Some("NoSuchEntity") {
                            return Err(e.into());
                        }
                        report
                            .notes
                            .push("IAM: the key no longer exists (no last-used record)".into());
                    }
                }
                self.cloudtrail(&config, id, *start, *end, &mut report, r)
                    .await?;
                Ok(OpOutput::Usage(report))
            }
        }
    }
}

impl AwsIamProvider {
    pub fn new(def: &ProviderDef) -> Self {
        let s = |k: &str| {
            def.settings
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        Self {
            target: Target::from_settings(&def.settings, def.base_url.as_deref()),
            user: Arc::new(Mutex::new(s("user"))),
            cloudtrail_url: s("cloudtrail_url"),
            sts_url: s("sts_url"),
            proof_wait: std::time::Duration::from_secs(
                def.settings
                    .get("proof_wait_seconds")
                    .and_then(|v| v.as_u64())
                    .unwrap_or(DEFAULT_PROOF_WAIT_S),
            ),
            regions: def
                .settings
                .get("regions")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            pacer: Pacer::cloudtrail(),
            leaked: None,
            path_prefix: s("path_prefix"),
            chain: Arc::default(),
        }
    }

    /// Pace CloudTrail with this pacer (tests: one on a manual clock).
    #[cfg(feature = "testing")]
    pub fn with_pacer(mut self, pacer: Arc<Pacer>) -> Self {
        self.pacer = pacer;
        self
    }

    /// The regions searched, as the plan names them before the SDK has resolved its own.
    fn regions_text(&self) -> String {
        if self.regions.is_empty() {
            self.target
                .region
                .clone()
                .unwrap_or_else(|| "the provider's region".into())
        } else {
            self.regions.join(", ")
        }
    }

    fn user(&self) -> Option<String> {
        self.user.lock().ok().and_then(|u| u.clone())
    }

    fn user_text(&self) -> String {
        self.user()
            .map_or_else(|| "(the key's user)".into(), |u| u.to_string())
    }

    fn at(&self, service: &str) -> String {
        match (service, &self.cloudtrail_url, &self.sts_url) {
            ("cloudtrail", Some(u), _) | ("sts", _, Some(u)) => u.clone(),
            _ => self.target.describe(service),
        }
    }

    fn admin(&self, summary: String, call: String, access: Access) -> RequestPlan {
        let plan = match access {
            // Reads are `Get*`/`List*`/`Lookup*` calls: reads by AWS's own naming, which the
            // drill guard cannot see in the method (`AWS`).
            Access::Read => RequestPlan::read(summary, "AWS", call).declared_read(),
            Access::Write => RequestPlan::write(summary, "AWS", call),
        };
        // Shown so the operator sees which identity signs; the value is never in a plan.
        plan.secret_header(
            "Authorization",
            "AWS4-HMAC-SHA256 ",
            SecretRef::AdminCredential,
        )
    }

    async fn admin_config(
        &self,
        secrets: &SecretBag,
        r: &Redactor,
    ) -> Result<aws_config::SdkConfig, AwsError> {
        Ok(match &secrets.admin {
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
        })
    }

    async fn iam(
        &self,
        secrets: &SecretBag,
        r: &Redactor,
    ) -> Result<aws_sdk_iam::Client, AwsError> {
        Ok(iam_client(&self.admin_config(secrets, r).await?))
    }

    /// The IAM user: settings, the cache, or asked of IAM from a key id.
    async fn resolve_user(
        &self,
        iam: &aws_sdk_iam::Client,
        key_id: Option<&str>,
        r: &Redactor,
    ) -> Result<String, ProviderError> {
        if let Some(u) = self.user() {
            return Ok(u);
        }
        let Some(id) = key_id.or(self.leaked.as_deref()) else {
            return Err(ProviderError::Refused(
                "the IAM user is unknown: set settings.user on the aws-iam provider".into(),
            ));
        };
        let out = iam
            .get_access_key_last_used()
            .access_key_id(id)
            .send()
            .await
            .map_err(|e| sdk_error("iam:GetAccessKeyLastUsed", &e, r))?;
        let user = out.user_name().map(str::to_string).ok_or_else(|| {
            ProviderError::Refused(format!(
                "IAM does not say which user owns {id}: set settings.user on the aws-iam provider"
            ))
        })?;
        if let Ok(mut g) = self.user.lock() {
            *g = Some(user.clone());
        }
        Ok(user)
    }

    async fn list(
        &self,
        iam: &aws_sdk_iam::Client,
        user: &str,
        r: &Redactor,
    ) -> Result<Vec<Listed>, ProviderError> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = iam
                .list_access_keys()
                .user_name(user)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| sdk_error("iam:ListAccessKeys", &e, r))?;
            for k in page.access_key_metadata() {
                if let Some(id) = k.access_key_id() {
                    out.push(Listed {
                        id: id.to_string(),
                        active: k.status() == Some(&StatusType::Active),
                        created: k.create_date().and_then(chrono_of),
                    });
                }
            }
            match page.marker() {
                Some(m) if page.is_truncated() => marker = Some(m.to_string()),
                _ => return Ok(out),
            }
        }
    }

    fn located(k: &Listed) -> LocatedKey {
        LocatedKey {
            id: k.id.clone(),
            name: None,
            state: if k.active {
                KeyState::Active
            } else {
                KeyState::Disabled
            },
            hint: Some(format!("{}...{}", head(&k.id), tail(&k.id))),
            created_at: k.created.map(|t| t.to_rfc3339()),
            last_used_at: None,
        }
    }

    /// CloudTrail events of the key in every region searched, with a note of what was
    /// covered and what was not.
    pub(crate) async fn cloudtrail(
        &self,
        config: &aws_config::SdkConfig,
        id: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        report: &mut UsageReport,
        r: &Redactor,
    ) -> Result<(), ProviderError> {
        let regions = if self.regions.is_empty() {
            vec![
                config
                    .region()
                    .map_or_else(|| crate::aws::DEFAULT_REGION.to_string(), |g| g.to_string()),
            ]
        } else {
            self.regions.clone()
        };
        // Regions have separate rate limits: search them at once, each paced on its own.
        let searches = regions.iter().map(|region| {
            let mut ct = aws_sdk_cloudtrail::config::Builder::from(config)
                .interceptor(crate::aws::LogCalls)
                .region(aws_sdk_cloudtrail::config::Region::new(region.clone()));
            if let Some(u) = &self.cloudtrail_url {
                ct = ct.endpoint_url(u);
            }
            let trail = aws_sdk_cloudtrail::Client::from_conf(ct.build());
            async move { self.lookup_events(&trail, region, id, start, end, r).await }
        });
        let mut found = Vec::new();
        for result in futures_util::future::join_all(searches).await {
            found.push(result?);
        }
        let by_region = found
            .iter()
            .map(|f| format!("{} {}", f.region, f.events.len()))
            .collect::<Vec<_>>()
            .join(", ");
        for f in &mut found {
            report.pages += f.pages;
            report.events.append(&mut f.events);
            if f.stopped_short {
                report.notes.push(format!(
                    "CloudTrail {}: stopped after {MAX_TRAIL_PAGES} pages; narrow the window with --exposed-since",
                    f.region
                ));
            }
        }
        report.events.sort_by_key(|e| e.time);
        let coverage = coverage(&regions, start, end);
        // One event per call; no buckets as well, or the volume rule would count each twice.
        report.events_source = Some(crate::audit::SourceInfo {
            name: format!("CloudTrail ({coverage})"),
            addresses: true,
            statuses: true,
            models: true,
            per_request: true,
        });
        report
            .notes
            .push(format!("CloudTrail coverage: {coverage}"));
        report.notes.push(format!(
            "CloudTrail: {} events ({} failed) from {} source addresses; by region: {}",
            report.events.len(),
            report
                .events
                .iter()
                .filter(|e| e.error_code.is_some())
                .count(),
            report
                .events
                .iter()
                .filter_map(|e| e.source_ip.as_deref())
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            by_region
        ));
        Ok(())
    }

    async fn lookup_events(
        &self,
        trail: &aws_sdk_cloudtrail::Client,
        region: &str,
        id: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        r: &Redactor,
    ) -> Result<RegionTrail, ProviderError> {
        let attr = LookupAttribute::builder()
            .attribute_key(LookupAttributeKey::AccessKeyId)
            .attribute_value(id)
            .build()
            .map_err(|e| ProviderError::Malformed(e.to_string()))?;
        let pace_key = format!(
            "{}|{region}",
            self.cloudtrail_url.as_deref().unwrap_or("aws")
        );
        let mut out = RegionTrail {
            region: region.to_string(),
            events: Vec::new(),
            pages: 0,
            stopped_short: false,
        };
        let mut token: Option<String> = None;
        loop {
            self.pacer.wait_turn(&pace_key).await;
            let page = trail
                .lookup_events()
                .lookup_attributes(attr.clone())
                .start_time(aws_sdk_cloudtrail::primitives::DateTime::from_secs(
                    start.timestamp(),
                ))
                .end_time(aws_sdk_cloudtrail::primitives::DateTime::from_secs(
                    end.timestamp(),
                ))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_error(&format!("cloudtrail:LookupEvents ({region})"), &e, r))?;
            out.pages += 1;
            for ev in page.events() {
                let Some(time) = ev.event_time().and_then(chrono_of) else {
                    continue;
                };
                let detail: serde_json::Value = ev
                    .cloud_trail_event()
                    .and_then(|t| serde_json::from_str(t).ok())
                    .unwrap_or_default();
                let field = |k: &str| detail.get(k).and_then(|v| v.as_str()).map(str::to_string);
                out.events.push(UsageEvent {
                    time,
                    action: ev.event_name().unwrap_or("?").to_string(),
                    source_ip: field("sourceIPAddress"),
                    user_agent: field("userAgent")
                        .map(|u| crate::http::truncate(&r.scrub(&u), 200)),
                    error_code: field("errorCode"),
                });
            }
            match page.next_token() {
                Some(t) if out.pages < MAX_TRAIL_PAGES => token = Some(t.to_string()),
                Some(_) => {
                    out.stopped_short = true;
                    return Ok(out);
                }
                None => return Ok(out),
            }
        }
    }
}

/// What a CloudTrail search covered, in the operator's words: management events of the
/// named regions, 90 days back at most, and never data events.
fn coverage(regions: &[String], start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    let horizon = end - chrono::Duration::days(TRAIL_DAYS);
    let mut text = format!(
        "management events, region{} {}, last {TRAIL_DAYS} days; data events not searched",
        if regions.len() == 1 { "" } else { "s" },
        regions.join(", ")
    );
    if start < horizon {
        text.push_str(&format!(
            "; nothing before {} (the window starts {}, beyond what LookupEvents keeps)",
            horizon.format("%Y-%m-%d"),
            start.format("%Y-%m-%d")
        ));
    }
    text
}

/// The first and last four characters of an id, by character: the id comes from the
/// provider (or an emulator) and is not guaranteed to be ASCII.
/// Users per `ListUsers` page (the API allows 1 to 1000).
const USERS_PAGE: i32 = 1000;

impl AwsIamProvider {
    /// Every user to list keys of: `settings.user`, else `ListUsers` (under
    /// `settings.path_prefix` when set), followed by `Marker` while `IsTruncated`.
    async fn users(
        &self,
        iam: &aws_sdk_iam::Client,
        r: &Redactor,
    ) -> Result<(Vec<String>, u32), ProviderError> {
        if let Some(u) = self.user() {
            return Ok((vec![u], 0));
        }
        let mut users = Vec::new();
        let mut marker: Option<String> = None;
        for calls in 1..=super::listing::MAX_LIST_PAGES {
            let page = iam
                .list_users()
                .set_path_prefix(self.path_prefix.clone())
                .max_items(USERS_PAGE)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| sdk_error("iam:ListUsers", &e, r))?;
            users.extend(page.users().iter().map(|u| u.user_name().to_string()));
            match page.marker() {
                Some(m) if page.is_truncated() => marker = Some(m.to_string()),
                _ => return Ok((users, calls)),
            }
        }
        Err(ProviderError::Malformed("iam:ListUsers did not end".into()))
    }

    /// One user's keys with their last use (`GetAccessKeyLastUsed`, read per key at once; a
    /// failed read leaves the last use unknown and says so).
    async fn user_keys(
        &self,
        iam: &aws_sdk_iam::Client,
        user: &str,
        r: &Redactor,
    ) -> Result<(Vec<ListedKey>, u32, Vec<String>), ProviderError> {
        let keys = self.list(iam, user, r).await?;
        let reads = keys.iter().map(|k| async move {
            iam.get_access_key_last_used()
                .access_key_id(&k.id)
                .send()
                .await
                .map_err(|e| sdk_error("iam:GetAccessKeyLastUsed", &e, r))
        });
        let mut notes = Vec::new();
        let mut out = Vec::new();
        for (k, used) in keys.iter().zip(futures_util::future::join_all(reads).await) {
            let last_used_at = match used {
                Ok(u) => u
                    .access_key_last_used()
                    .and_then(|l| l.last_used_date())
                    .and_then(chrono_of),
                Err(e) => {
                    notes.push(format!("last use of {} unknown: {e}", k.id));
                    None
                }
            };
            let located = Self::located(k);
            out.push(ListedKey {
                id: k.id.clone(),
                name: None,
                hint: located.hint,
                state: located.state,
                created_at: k.created,
                last_used_at,
                owner: Some(format!("IAM user {user}")),
                within: None,
                scopes: None,
            });
        }
        let calls = 1 + u32::try_from(keys.len()).unwrap_or(u32::MAX);
        Ok((out, calls, notes))
    }
}

/// `iam:ListUsers` (or `settings.user`), then `iam:ListAccessKeys` of every user and
/// `iam:GetAccessKeyLastUsed` of every key, users read concurrently.
impl ListKeys for AwsIamProvider {
    fn list_plan(&self) -> Result<RequestPlan, ProviderError> {
        let iam = self.at("iam");
        let users = match (self.user(), &self.path_prefix) {
            (Some(u), _) => format!("user {u}"),
            (None, Some(p)) => format!("every IAM user under path {p}"),
            (None, None) => "every IAM user".to_string(),
        };
        let call = match (self.user(), &self.path_prefix) {
            (Some(u), _) => format!("iam:ListAccessKeys UserName={u}"),
            (None, Some(p)) => {
                format!("iam:ListUsers PathPrefix={p}; iam:ListAccessKeys UserName=(each)")
            }
            (None, None) => "iam:ListUsers; iam:ListAccessKeys UserName=(each)".to_string(),
        };
        Ok(self.admin(
            format!("List the access keys of {users}, with their last use"),
            format!("{call}; iam:GetAccessKeyLastUsed AccessKeyId=(each) @ {iam}"),
            Access::Read,
        ))
    }

    async fn list_keys(
        &self,
        _plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> Result<KeyListing, ProviderError> {
        let r = http.redactor();
        let iam = self.iam(secrets, r).await?;
        let (users, mut calls) = self.users(&iam, r).await?;
        let reads = users.iter().map(|u| self.user_keys(&iam, u, r));
        let mut keys = Vec::new();
        let mut notes = Vec::new();
        for read in super::listing::bounded(super::listing::LIST_CONCURRENCY, reads).await {
            let (k, n, more) = read?;
            keys.extend(k);
            calls = calls.saturating_add(n);
            notes.extend(more);
        }
        notes.push(
            "IAM access keys carry no permissions of their own (their user's policies decide): scopes are not compared".into(),
        );
        Ok(KeyListing {
            keys,
            calls,
            reports_scopes: false,
            scope: match (self.user(), &self.path_prefix) {
                (Some(u), _) => format!("IAM user {u}"),
                (None, Some(p)) => format!("{} IAM users under path {p}", users.len()),
                (None, None) => format!("all {} IAM users", users.len()),
            },
            notes,
        })
    }
}

fn head(id: &str) -> &str {
    id.char_indices().nth(4).map_or(id, |(at, _)| &id[..at])
}

fn tail(id: &str) -> &str {
    let n = id.chars().count();
    id.char_indices()
        .nth(n.saturating_sub(4))
        .map_or(id, |(at, _)| &id[at..])
}


/// An IAM client whose calls are written to the debug log.
fn iam_client(config: &aws_config::SdkConfig) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::config::Builder::from(config)
            .interceptor(crate::aws::LogCalls)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_of_non_ascii_ids_cut_at_characters() {
        assert_eq!(head("AKIAEXAMPLE"), "AKIA");
        assert_eq!(tail("AKIAEXAMPLE"), "MPLE");
        assert_eq!(head("ÄKIÄ€XAMPLÉ"), "ÄKIÄ");
        assert_eq!(tail("ÄKIÄ€XAMPLÉ"), "MPLÉ");
        assert_eq!(head("é"), "é");
        assert_eq!(tail("é"), "é");
        let listed = Listed {
            // Byte 4 falls inside `Ä`: slicing by bytes panicked here.
            id: "AAAÄBBBB".into(),
            active: true,
            created: None,
        };
        assert_eq!(
            AwsIamProvider::located(&listed).hint.as_deref(),
            Some("AAAÄ...BBBB")
        );
    }

    #[tokio::test]
    async fn a_write_is_never_executed_in_a_drill() {
        let def = ProviderDef {
            id: "aws".into(),
            kind: crate::inventory::ProviderKind::AwsIam,
            admin_credential: None,
            // Nothing listens here: reaching the network would fail differently.
            base_url: Some("http://127.0.0.1:9".into()),
            settings: serde_json::Map::new(),
            origin: crate::inventory::Origin { file: 0, line: 1 },
        };
        // Through the dispatcher, which holds the one drill guard.
        let p = crate::provider::AnyProvider::from_def(&def);
        let http = Http::new(true, Redactor::new()).unwrap();
        for op in [
            Op::Revoke { id: "AKIAX".into() },
            Op::Disable { id: "AKIAX".into() },
            Op::Create {
                name: "n".into(),
                idempotency_key: "k".into(),
            },
        ] {
            let plan = p.plan(&op).unwrap();
            assert_eq!(plan.access, Access::Write);
            let err = p
                .execute(&op, &plan, &http, &SecretBag::default())
                .await
                .unwrap_err();
            assert!(matches!(err, ProviderError::DryRunBlocked(_)), "{err}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cloudtrail_is_searched_in_every_region_and_paced_per_region() {
        use crate::provider::pace::{ManualPaceClock, PaceClock};
        use crate::sim::{CloudTrailSim, TrailEvent};
        use std::time::Duration;

        let sim = CloudTrailSim::start().unwrap();
        let now = Utc::now();
        // 120 events (3 pages) in us-east-1, 60 (2 pages) in eu-west-1, none in ap-southeast-2,
        // and events of another key that no lookup returns.
        for (region, n, key) in [
            ("us-east-1", 120, "AKIALEAKED"),
            ("eu-west-1", 60, "AKIALEAKED"),
            ("eu-west-1", 5, "AKIAOTHER"),
        ] {
            for i in 0..n {
                sim.add(TrailEvent {
                    region: region.into(),
                    access_key_id: key.into(),
                    time: now - chrono::Duration::minutes(i + 1),
                    name: "ListBuckets".into(),
                    source_ip: "198.51.100.23".into(),
                    user_agent: "aws-cli/2.15".into(),
                    error_code: None,
                });
            }
        }
        let def = ProviderDef {
            id: "aws".into(),
            kind: crate::inventory::ProviderKind::AwsIam,
            admin_credential: None,
            base_url: Some("http://127.0.0.1:9".into()),
            settings: serde_json::json!({
                "region": "us-east-1",
                "cloudtrail_url": sim.address(),
                "regions": ["us-east-1", "eu-west-1", "ap-southeast-2"],
            })
            .as_object()
            .cloned()
            .unwrap(),
            origin: crate::inventory::Origin { file: 0, line: 1 },
        };
        let clock = Arc::new(ManualPaceClock::default());
        let pacer = Arc::new(Pacer::per_second(2, clock.clone()));
        let p = AwsIamProvider::new(&def).with_pacer(pacer.clone());
        let admin = KeyPair {
            access_key_id: "AKIAADMIN".into(),
            secret_access_key: crate::secret::Secret::new("admin-secret"),
            session_token: None,
        };
        let config = p.target.config(Some(&admin)).await;
        let mut report = UsageReport::default();
        let start = now - chrono::Duration::days(120);
        p.cloudtrail(
            &config,
            "AKIALEAKED",
            start,
            now,
            &mut report,
            &Redactor::new(),
        )
        .await
        .unwrap();

        assert_eq!(report.events.len(), 180);
        assert_eq!(report.pages, 6);
        // The stand-in saw each region's pages, signed for that region.
        let lookups = sim.lookups();
        let pages_in = |r: &str| lookups.iter().filter(|l| l.region == r).count();
        assert_eq!(
            (
                pages_in("us-east-1"),
                pages_in("eu-west-1"),
                pages_in("ap-southeast-2")
            ),
            (3, 2, 1)
        );
        // The pacer released each region's calls at least 500 ms apart, and no region
        // waited for another's.
        let decisions = pacer.decisions();
        assert_eq!(decisions.len(), 6);
        for region in ["us-east-1", "eu-west-1", "ap-southeast-2"] {
            let times: Vec<Duration> = decisions
                .iter()
                .filter(|(k, _)| k.ends_with(&format!("|{region}")))
                .map(|(_, t)| *t)
                .collect();
            assert_eq!(times.len(), pages_in(region), "{region}: {decisions:?}");
            for pair in times.windows(2) {
                assert!(
                    pair[1] - pair[0] >= Duration::from_millis(500),
                    "{region}: {decisions:?}"
                );
            }
        }
        let firsts: Vec<Duration> = ["us-east-1", "eu-west-1", "ap-southeast-2"]
            .iter()
            .filter_map(|r| {
                decisions
                    .iter()
                    .find(|(k, _)| k.ends_with(&format!("|{r}")))
                    .map(|(_, t)| *t)
            })
            .collect();
        assert_eq!(firsts, [Duration::ZERO; 3], "{decisions:?}");
        assert_eq!(
            clock.now(),
            Duration::from_millis(1000),
            "three pages: two waits"
        );

        // The coverage is stated, in the notes and in the audit source's name.
        let coverage = "management events, regions us-east-1, eu-west-1, ap-southeast-2, last 90 days; data events not searched";
        assert!(
            report.notes.iter().any(|n| n.contains(coverage)),
            "{:?}",
            report.notes
        );
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains("by region: us-east-1 120, eu-west-1 60, ap-southeast-2 0")),
            "{:?}",
            report.notes
        );
        assert!(
            report.notes.iter().any(|n| n.contains("nothing before")),
            "a 120-day window is beyond LookupEvents' 90 days: {:?}",
            report.notes
        );
        let source = report.events_source.unwrap();
        assert!(
            source.name.starts_with("CloudTrail (management events"),
            "{}",
            source.name
        );
    }

    #[test]
    fn coverage_names_one_region_in_the_singular() {
        let now = Utc::now();
        let text = coverage(&["eu-west-1".into()], now - chrono::Duration::days(3), now);
        assert_eq!(
            text,
            "management events, region eu-west-1, last 90 days; data events not searched"
        );
    }

    #[test]
    fn the_proof_backs_off_for_up_to_proof_wait_seconds() {
        let with = |v: serde_json::Value| {
            let mut settings = serde_json::Map::new();
            if !v.is_null() {
                settings.insert("proof_wait_seconds".into(), v);
            }
            AwsIamProvider::new(&ProviderDef {
                id: "aws".into(),
                kind: crate::inventory::ProviderKind::AwsIam,
                admin_credential: None,
                base_url: None,
                settings,
                origin: crate::inventory::Origin { file: 0, line: 1 },
            })
            .proof_waits()
        };
        let secs = |w: Vec<std::time::Duration>| w.iter().map(|d| d.as_secs()).collect::<Vec<_>>();
        assert_eq!(secs(with(serde_json::Value::Null)), [1, 2, 4, 8, 15]);
        assert_eq!(secs(with(3.into())), [1, 2]);
        assert!(with(0.into()).is_empty());
    }

    #[test]
    fn replacement_names_carry_the_incident_time() {
        let t = incident_time("keyfire-inc-20261126-031500-a1b2-support-aws").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-26T03:15:00+00:00");
        assert!(incident_time("keyfire-drill-20261126-031500-a1b2-k-2").is_some());
        // Scheduled rotations name their replacements after `rot-` ids.
        assert_eq!(
            incident_time("keyfire-rot-20261126-031500-a1b2-support-aws"),
            Some(t)
        );
    }

    fn listed(id: &str, created: &str) -> Listed {
        Listed {
            id: id.into(),
            active: true,
            created: Some(DateTime::parse_from_rfc3339(created).unwrap().to_utc()),
        }
    }

    #[test]
    fn a_lost_create_is_matched_by_its_window_and_never_to_another_keys_replacement() {
        // One IAM user, two keys of a campaign: B's replacement was made (and recorded) just
        // after the incident opened, A's create was sent later and its answer lost.
        let keys = vec![
            listed("AKIAOLDA", "2026-01-01T00:00:00Z"),
            listed("AKIANEWB", "2026-11-26T03:15:01Z"),
            listed("AKIANEWA", "2026-11-26T03:15:09Z"),
        ];
        let q = crate::provider::ReplacementQuery {
            name: "keyfire-rot-20261126-031500-a1b2-a".into(),
            id: None,
            sent_at: DateTime::parse_from_rfc3339("2026-11-26T03:15:08Z")
                .unwrap()
                .to_utc(),
            answered_at: None,
            exclude: vec!["AKIANEWB".into()],
        };
        let found = lost_replacement(&keys, &q, Some("AKIAOLDA")).unwrap();
        assert_eq!(found.id, "AKIANEWA");
        // Without the exclusion, B's replacement is still outside A's request window.
        let q2 = crate::provider::ReplacementQuery {
            exclude: vec![],
            ..q.clone()
        };
        assert_eq!(
            lost_replacement(&keys, &q2, Some("AKIAOLDA")).unwrap().id,
            "AKIANEWA"
        );
        // A window that closed before any new key: nothing is taken.
        let q3 = crate::provider::ReplacementQuery {
            sent_at: DateTime::parse_from_rfc3339("2026-11-26T03:14:00Z")
                .unwrap()
                .to_utc(),
            answered_at: Some(
                DateTime::parse_from_rfc3339("2026-11-26T03:14:10Z")
                    .unwrap()
                    .to_utc(),
            ),
            ..q.clone()
        };
        assert!(lost_replacement(&keys, &q3, Some("AKIAOLDA")).is_none());
        assert!(incident_time("whatever").is_none());
    }
}
