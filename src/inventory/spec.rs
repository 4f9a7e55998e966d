//! The raw shape of an inventory file, as deserialized (with spans for error messages).
//! Validation into the types of `inventory::model` happens in `inventory::load`.

use serde::Deserialize;
use toml::Spanned;
use toml::value::Datetime;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub schema: Option<Spanned<i64>>,
    pub policy: Option<Spanned<PolicySpec>>,
    #[serde(default)]
    pub providers: Vec<Spanned<ProviderSpec>>,
    #[serde(default)]
    pub stores: Vec<Spanned<StoreSpec>>,
    #[serde(default)]
    pub agents: Vec<Spanned<AgentSpec>>,
    #[serde(default)]
    pub keys: Vec<Spanned<KeySpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    pub rotation_days: Option<Spanned<i64>>,
    pub after_incident_rotation_days: Option<Spanned<i64>>,
    pub drill_every_days: Option<Spanned<i64>>,
    pub report_deadline_hours: Option<Spanned<i64>>,
    pub due_soon_days: Option<Spanned<i64>>,
    pub timezone: Option<Spanned<String>>,
    pub volume_factor: Option<Spanned<f64>>,
    pub auth_failure_threshold: Option<Spanned<i64>>,
    pub baseline_days: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    pub id: Spanned<String>,
    pub kind: Spanned<String>,
    pub admin_credential: Option<Spanned<String>>,
    pub base_url: Option<Spanned<String>>,
    /// Kind-specific; spans kept so that a bad setting is reported where it is written.
    pub settings: Option<Spanned<SettingsSpec>>,
}

pub type SettingsSpec = std::collections::BTreeMap<Spanned<String>, Spanned<toml::Value>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSpec {
    pub id: Spanned<String>,
    pub kind: Spanned<String>,
    pub address: Option<Spanned<String>>,
    pub credential: Option<Spanned<String>>,
    pub settings: Option<Spanned<toml::Table>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    pub id: Spanned<String>,
    pub owner: Option<String>,
    pub oncall: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub expected_networks: Vec<Spanned<String>>,
    pub active_hours: Option<Spanned<ActiveHoursSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActiveHoursSpec {
    pub days: Spanned<String>,
    pub start: Spanned<String>,
    pub end: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    pub id: Spanned<String>,
    #[serde(default)]
    pub agents: Vec<Spanned<String>>,
    pub provider: Spanned<String>,
    pub provider_key_id: Option<String>,
    pub hint: Option<Spanned<String>>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub needs: Option<Vec<String>>,
    pub store: Option<Spanned<String>>,
    pub secret_path: Option<Spanned<String>>,
    pub secret_field: Option<String>,
    pub created_at: Option<Spanned<Datetime>>,
    pub last_rotated: Option<Spanned<Datetime>>,
    pub rotation_days: Option<Spanned<i64>>,
    pub description: Option<String>,
}
