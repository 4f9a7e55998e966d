//! The validated inventory: providers, stores, agents and keys (metadata only, never a secret).

use std::fmt;
use std::path::PathBuf;

use chrono::{NaiveDate, NaiveTime, Weekday};
use ipnet::IpNet;
use serde::Serialize;

/// Where an inventory entry was written, so that edits and errors can point back at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// Index into `Inventory::files`.
    pub file: usize,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    /// Hex SHA-256 of the file's bytes as loaded.
    pub digest: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    pub rotation_days: u32,
    pub after_incident_rotation_days: u32,
    pub drill_every_days: u32,
    pub report_deadline_hours: u32,
    /// How many days before its due date a rotation counts as "due soon".
    pub due_soon_days: u32,
    /// An IANA zone name (`UTC`, `Europe/Berlin`): the zone of active hours that name none.
    pub timezone: String,
    /// Audit: a day above this multiple of the baseline's daily average is a volume finding.
    pub volume_factor: f64,
    /// Audit: this many failed authentications in the window is a finding.
    pub auth_failure_threshold: u32,
    /// Audit: days before the exposure window used as the baseline.
    pub baseline_days: u32,
    /// `keyfire audit --all --respond`: the rules whose findings open an incident.
    pub respond_to: Vec<String>,
    /// Notifiers: one attempt's limit, and how long keyfire waits at its end for messages
    /// still in flight.
    pub notify_timeout_seconds: u32,
}

impl Policy {
    /// The policy's zone (checked when the inventory was read).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone.parse().unwrap_or(chrono_tz::Tz::UTC)
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            rotation_days: 90,
            after_incident_rotation_days: 30,
            drill_every_days: 90,
            report_deadline_hours: 72,
            due_soon_days: 14,
            timezone: "UTC".into(),
            volume_factor: 3.0,
            auth_failure_threshold: 10,
            baseline_days: 14,
            respond_to: vec!["volume".into(), "network".into()],
            notify_timeout_seconds: 5,
        }
    }
}

macro_rules! kinds {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|k| k.as_str() == text)
            }

            pub fn names() -> String {
                Self::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(" | ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

kinds!(
    /// Provider kinds keyfire knows. `fake` is keyfire's own loopback provider, used by its
    /// tests and training environment.
    ProviderKind {
        OpenAi => "openai",
        Anthropic => "anthropic",
        AwsIam => "aws-iam",
        SendGrid => "sendgrid",
        LiteLlm => "litellm",
        Postgres => "postgres",
        Manual => "manual",
        Fake => "fake",
    }
);

kinds!(
    /// Secrets managers keyfire can redeploy to. `memory` lives in the keyfire process only
    /// (training environment, tests).
    StoreKind {
        VaultKv2 => "vault-kv2",
        AwsSecretsManager => "aws-secrets-manager",
        Keyring => "keyring",
        Doppler => "doppler",
        Infisical => "infisical",
        Memory => "memory",
    }
);

/// Whether this build has a kind's back-end: each family is a cargo feature (all on by
/// default), so a narrow build refuses an inventory that needs what it left out, naming the
/// feature to build with, instead of failing later in the runbook.
macro_rules! built_with {
    ($name:ident { $($variant:ident => $feature:literal),* $(,)? }) => {
        impl $name {
            /// The cargo feature a kind needs, if any.
            pub fn feature(self) -> Option<&'static str> {
                match self {
                    $($name::$variant => Some($feature),)*
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }

            /// Whether this build includes the kind's back-end.
            pub fn is_built(self) -> bool {
                match self {
                    $($name::$variant => cfg!(feature = $feature),)*
                    #[allow(unreachable_patterns)]
                    _ => true,
                }
            }
        }
    };
}

built_with!(ProviderKind {
    OpenAi => "openai",
    Anthropic => "anthropic",
    AwsIam => "aws",
    SendGrid => "sendgrid",
    LiteLlm => "litellm",
    Postgres => "postgres",
});

built_with!(StoreKind {
    VaultKv2 => "vault",
    AwsSecretsManager => "aws",
    Keyring => "keyring-store",
    Doppler => "doppler",
    Infisical => "infisical",
});

kinds!(
    /// Where a notifier delivers: a Slack incoming webhook, PagerDuty's Events API v2, or a
    /// signed JSON webhook of the operator's own.
    NotifierKind {
        Slack => "slack",
        PagerDuty => "pagerduty",
        Webhook => "webhook",
    }
);

kinds!(
    /// Which events a notifier receives (`route = [...]`).
    Route {
        Incident => "incident",
        Finding => "finding",
        Drill => "drill",
        Rotation => "rotation",
    }
);

/// A notifier's address: a plain URL, or a credential reference when the URL is itself a
/// secret (a Slack incoming-webhook URL is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Url(String),
    Secret(CredentialRef),
}

#[derive(Debug, Clone, Serialize)]
pub struct NotifierDef {
    pub id: String,
    pub kind: NotifierKind,
    /// Slack: the webhook URL (a reference); PagerDuty: an events endpoint override;
    /// webhook: the receiver.
    pub url: Option<Endpoint>,
    /// PagerDuty: the Events API v2 integration key.
    pub routing_key: Option<CredentialRef>,
    /// Webhook: the HMAC-SHA256 signing secret.
    pub secret: Option<CredentialRef>,
    pub routes: Vec<Route>,
    /// Only events about keys these agents hold (empty: every agent).
    pub agents: Vec<String>,
    /// Address the owners and on-call of every affected agent in the message.
    pub owners: bool,
    #[serde(skip)]
    pub origin: Origin,
}

/// Where keyfire finds an admin credential. The inventory holds the reference only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum CredentialRef {
    /// `keyring:NAME`: the OS keyring, service `keyfire`, user NAME.
    Keyring { name: String },
    /// `env:VAR`
    Env { var: String },
    /// `store:STORE_ID:PATH` (optionally `#FIELD`, default `value`).
    Store {
        store: String,
        path: String,
        field: String,
    },
}

impl CredentialRef {
    pub fn parse(text: &str) -> Result<Self, String> {
        let expected = "expected `keyring:NAME`, `env:VAR` or `store:STORE_ID:PATH`";
        let Some((scheme, rest)) = text.split_once(':') else {
            return Err(format!(
                "invalid credential reference (value not shown: it may be a secret): {expected}"
            ));
        };
        // Only the scheme is quoted: a pasted secret must not reach the terminal.
        let bad =
            |what: &str| format!("invalid credential reference `{scheme}:…`: {what}; {expected}");
        match scheme {
            "keyring" if !rest.is_empty() => Ok(Self::Keyring { name: rest.into() }),
            "env" => {
                let valid = !rest.is_empty()
                    && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !rest.starts_with(|c: char| c.is_ascii_digit());
                if valid {
                    Ok(Self::Env { var: rest.into() })
                } else {
                    Err(bad("not an environment variable name"))
                }
            }
            "store" => {
                let Some((store, path)) = rest.split_once(':') else {
                    return Err(bad("missing the path after the store id"));
                };
                if store.is_empty() || path.is_empty() {
                    return Err(bad("empty store id or path"));
                }
                let (path, field) = match path.split_once('#') {
                    Some((p, f)) if !p.is_empty() && !f.is_empty() => (p, f),
                    Some(_) => return Err(bad("empty path or field around `#`")),
                    None => (path, "value"),
                };
                Ok(Self::Store {
                    store: store.into(),
                    path: path.into(),
                    field: field.into(),
                })
            }
            "keyring" => Err(bad("empty keyring name")),
            _ => Err(bad(&format!("unknown source `{scheme}`"))),
        }
    }
}

impl fmt::Display for CredentialRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Keyring { name } => write!(f, "keyring:{name}"),
            Self::Env { var } => write!(f, "env:{var}"),
            Self::Store { store, path, field } if field == "value" => {
                write!(f, "store:{store}:{path}")
            }
            Self::Store { store, path, field } => write!(f, "store:{store}:{path}#{field}"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ProviderDef {
    pub id: String,
    pub kind: ProviderKind,
    pub admin_credential: Option<CredentialRef>,
    pub base_url: Option<String>,
    pub settings: serde_json::Map<String, serde_json::Value>,
    #[serde(skip)]
    pub origin: Origin,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoreDef {
    pub id: String,
    pub kind: StoreKind,
    pub address: Option<String>,
    pub credential: Option<CredentialRef>,
    pub settings: serde_json::Map<String, serde_json::Value>,
    #[serde(skip)]
    pub origin: Origin,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActiveHours {
    pub days: Vec<Weekday>,
    pub start: NaiveTime,
    pub end: NaiveTime,
    /// The zone the days and times are in (`active_hours.timezone`); none: the policy's.
    pub timezone: Option<chrono_tz::Tz>,
}

impl ActiveHours {
    /// Whether an instant falls in these hours, read on the wall clock of the hours' zone
    /// (`default` when they name none), so a 09:00 start follows daylight saving time.
    pub fn contains_at(&self, at: chrono::DateTime<chrono::Utc>, default: chrono_tz::Tz) -> bool {
        use chrono::Datelike;
        let local = at.with_timezone(&self.timezone.unwrap_or(default));
        self.contains(local.weekday(), local.time())
    }

    pub fn contains(&self, day: Weekday, time: NaiveTime) -> bool {
        if !self.days.contains(&day) {
            return false;
        }
        if self.start <= self.end {
            time >= self.start && time < self.end
        } else {
            // A window across midnight, like 22:00-06:00.
            time >= self.start || time < self.end
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Agent {
    pub id: String,
    pub owner: Option<String>,
    pub oncall: Option<String>,
    pub description: Option<String>,
    pub expected_networks: Vec<IpNet>,
    pub active_hours: Option<ActiveHours>,
    #[serde(skip)]
    pub origin: Origin,
}

/// One `[[keys]]` entry: what keyfire knows about an agent's key. Metadata only; the value
/// lives at the provider and in the store, never here.
#[derive(Debug, Clone, Serialize)]
pub struct Key {
    /// The inventory's id for the key (unique across all files); incidents and records name
    /// keys by it.
    pub id: String,
    /// Ids of the `[[agents]]` that hold the key; more than one means a shared key, whose
    /// revocation affects them all.
    pub agents: Vec<String>,
    /// Id of the `[[providers]]` entry that issued the key (validated to exist).
    pub provider: String,
    /// The provider's own id for the key (AWS access key id, SendGrid `api_key_id`,
    /// PostgreSQL role name, ...); `None` means keyfire locates it by `hint`.
    pub provider_key_id: Option<String>,
    /// The key's prefix, `...` and its last four characters (`sk-proj-...Q2x7`), never more;
    /// used to find the key at the provider when `provider_key_id` is not set.
    pub hint: Option<String>,
    /// `sha256:<64 lowercase hex>`: the SHA-256 of the key value, as gateways such as
    /// LiteLLM log it in place of the key. Safe to store: it cannot be turned back into the key.
    pub fingerprint: Option<String>,
    /// Scopes the inventory says the key has (empty when not written): the report judges
    /// customer-data reach from them, and a SendGrid replacement gets them when the leaked
    /// key is already gone.
    pub scopes: Vec<String>,
    /// Scopes the agents actually need; `lint` flags scopes beyond them. `None` when not
    /// written, and then nothing is checked.
    pub needs: Option<Vec<String>>,
    /// Id of the `[[stores]]` entry holding the key's value; `None` when keyfire cannot
    /// deliver a replacement and the redeploy step is manual. Set together with `secret_path`.
    pub store: Option<String>,
    /// Where the value lives in that store (a path, secret name or ARN, by store kind); set
    /// exactly when `store` is.
    pub secret_path: Option<String>,
    /// The field of the stored secret that holds the value; `value` when not written.
    pub secret_field: String,
    /// The day the key was created, when known.
    pub created_at: Option<NaiveDate>,
    /// The day the current value was issued by rotation, when known; the reschedule step sets
    /// it to the day it runs.
    pub last_rotated: Option<NaiveDate>,
    /// This key's rotation interval in days (1 to 3650), overriding the policy's; `None`
    /// means the policy's `rotation_days` applies.
    pub rotation_days: Option<u32>,
    /// Free text for the operator, shown by `inventory show`.
    pub description: Option<String>,
    /// Which file and line the entry was written at, for errors and edits.
    #[serde(skip)]
    pub origin: Origin,
}

impl Key {
    /// The date the current key value was issued: last rotation, else creation.
    pub fn issued_on(&self) -> Option<NaiveDate> {
        self.last_rotated.or(self.created_at)
    }
}

/// A loaded and validated inventory: every table of every file, with references between
/// them checked (a key's provider, store and agents exist).
#[derive(Debug, Clone)]
pub struct Inventory {
    /// The `[policy]` table (rotation intervals, report deadline, audit thresholds), with
    /// defaults for what it leaves out.
    pub policy: Policy,
    /// The `[[providers]]` entries, in file order.
    pub providers: Vec<ProviderDef>,
    /// The `[[stores]]` entries, in file order.
    pub stores: Vec<StoreDef>,
    /// The `[[agents]]` entries, in file order.
    pub agents: Vec<Agent>,
    /// The `[[keys]]` entries, in file order.
    pub keys: Vec<Key>,
    /// The `[[notifiers]]` entries, in file order.
    pub notifiers: Vec<NotifierDef>,
    /// The files the inventory was loaded from, in load order, each with the SHA-256 of its
    /// bytes; `Origin::file` indexes this list.
    pub files: Vec<SourceFile>,
    // foldhash rather than SipHash: ids come from the operator's own files (no flooding
    // concern) and every key is looked up several times while loading and linting.
    pub(crate) provider_index: foldhash::HashMap<String, usize>,
    pub(crate) store_index: foldhash::HashMap<String, usize>,
    pub(crate) agent_index: foldhash::HashMap<String, usize>,
    pub(crate) key_index: foldhash::HashMap<String, usize>,
}

impl Inventory {
    /// The key with this inventory id; `None` when there is none.
    pub fn key(&self, id: &str) -> Option<&Key> {
        self.key_index.get(id).map(|&i| &self.keys[i])
    }

    /// The provider with this id; `None` when there is none.
    pub fn provider(&self, id: &str) -> Option<&ProviderDef> {
        self.provider_index.get(id).map(|&i| &self.providers[i])
    }

    /// The store with this id; `None` when there is none.
    pub fn store(&self, id: &str) -> Option<&StoreDef> {
        self.store_index.get(id).map(|&i| &self.stores[i])
    }

    /// The notifier with this id; `None` when there is none.
    pub fn notifier(&self, id: &str) -> Option<&NotifierDef> {
        self.notifiers.iter().find(|n| n.id == id)
    }

    /// The agent with this id; `None` when there is none.
    pub fn agent(&self, id: &str) -> Option<&Agent> {
        self.agent_index.get(id).map(|&i| &self.agents[i])
    }

    /// The provider a key belongs to. Validation guarantees it exists.
    pub fn provider_of(&self, key: &Key) -> Option<&ProviderDef> {
        self.provider(&key.provider)
    }

    /// Hex SHA-256 over the digests of every file, in load order.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for f in &self.files {
            h.update(f.path.to_string_lossy().as_bytes());
            h.update([0]);
            h.update(f.digest.as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// Rotation interval for a key: its override, else the policy's.
    pub fn rotation_days(&self, key: &Key) -> u32 {
        key.rotation_days.unwrap_or(self.policy.rotation_days)
    }

    /// The day a key's rotation falls due, when its issue date is known.
    pub fn due_on(&self, key: &Key) -> Option<NaiveDate> {
        key.issued_on()
            .map(|d| d + chrono::Days::new(u64::from(self.rotation_days(key))))
    }

    /// Keys held by an agent, in inventory order.
    pub fn keys_of_agent<'a>(&'a self, agent: &'a str) -> impl Iterator<Item = &'a Key> + 'a {
        self.keys
            .iter()
            .filter(move |k| k.agents.iter().any(|a| a == agent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every feature a kind names is declared in Cargo.toml (a misspelt name would make the
    /// kind unbuildable in every configuration), and a build with the default features has
    /// every kind.
    #[test]
    fn kinds_name_declared_features_and_the_default_build_has_them_all() {
        let manifest = include_str!("../../Cargo.toml");
        let table: toml::Table = toml::from_str(manifest).expect("Cargo.toml parses");
        let features = table["features"].as_table().expect("a [features] table");
        let default: Vec<&str> = features["default"]
            .as_array()
            .expect("default features")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let named = ProviderKind::ALL
            .iter()
            .filter_map(|k| k.feature().map(|f| (k.as_str(), f)))
            .chain(
                StoreKind::ALL
                    .iter()
                    .filter_map(|k| k.feature().map(|f| (k.as_str(), f))),
            );
        let mut count = 0;
        for (kind, feature) in named {
            count += 1;
            assert!(features.contains_key(feature), "{kind}: feature {feature} undeclared");
            assert!(default.contains(&feature), "{kind}: {feature} not on by default");
        }
        assert_eq!(count, 11, "every API-backed kind names its feature");
        assert!(ProviderKind::ALL.iter().all(|k| k.is_built()));
        assert!(StoreKind::ALL.iter().all(|k| k.is_built()));
        assert_eq!(ProviderKind::Fake.feature(), None);
        assert_eq!(StoreKind::Memory.feature(), None);
    }
}
