//! Derived facts about keys that every front-end shows: age, due date, status, blast radius.

use std::collections::HashSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::model::{Inventory, Key, ProviderKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyStatus {
    Ok,
    DueSoon,
    Overdue,
    /// Neither `created_at` nor `last_rotated` is known.
    UnknownAge,
    IncidentOpen,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::DueSoon => "due-soon",
            Self::Overdue => "overdue",
            Self::UnknownAge => "unknown-age",
            Self::IncidentOpen => "incident-open",
        }
    }
}

/// One row of `inventory list` (and of the console's key table).
#[derive(Debug, Clone, Serialize)]
pub struct KeyRow {
    pub id: String,
    pub agents: Vec<String>,
    pub provider: String,
    pub provider_kind: ProviderKind,
    pub scopes: Vec<String>,
    /// Days since the current value was issued.
    pub age_days: Option<i64>,
    /// Days until rotation is due; negative when overdue.
    pub due_in_days: Option<i64>,
    pub due_on: Option<NaiveDate>,
    pub status: KeyStatus,
}

pub fn key_row(
    inv: &Inventory,
    key: &Key,
    today: NaiveDate,
    open_incidents: &HashSet<String>,
) -> KeyRow {
    let age_days = key.issued_on().map(|d| (today - d).num_days());
    let due_on = inv.due_on(key);
    let due_in_days = due_on.map(|d| (d - today).num_days());
    let status = if open_incidents.contains(&key.id) {
        KeyStatus::IncidentOpen
    } else {
        match due_in_days {
            None => KeyStatus::UnknownAge,
            Some(d) if d < 0 => KeyStatus::Overdue,
            Some(d) if d <= i64::from(inv.policy.due_soon_days) => KeyStatus::DueSoon,
            Some(_) => KeyStatus::Ok,
        }
    };
    KeyRow {
        id: key.id.clone(),
        agents: key.agents.clone(),
        provider: key.provider.clone(),
        provider_kind: inv
            .provider_of(key)
            .map(|p| p.kind)
            .unwrap_or(ProviderKind::Manual),
        scopes: key.scopes.clone(),
        age_days,
        due_in_days,
        due_on,
        status,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentSummary {
    pub id: String,
    pub owner: Option<String>,
    pub oncall: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OtherKey {
    pub id: String,
    pub provider: String,
    pub held_by: Vec<String>,
}

/// Everything exposed if this key's holders are compromised, and who to call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlastRadius {
    pub agents: Vec<AgentSummary>,
    /// Other keys held by the same agents (the rest of what one leaked agent config exposes).
    pub other_keys: Vec<OtherKey>,
    pub store: Option<String>,
    pub secret_path: Option<String>,
    pub owners: Vec<String>,
    pub oncall: Vec<String>,
}

pub fn blast_radius(inv: &Inventory, key: &Key) -> BlastRadius {
    let mut agents = Vec::new();
    let mut owners = Vec::new();
    let mut oncall = Vec::new();
    let mut seen = HashSet::new();
    let mut other_keys = Vec::new();
    for agent_id in &key.agents {
        let Some(agent) = inv.agent(agent_id) else {
            continue;
        };
        agents.push(AgentSummary {
            id: agent.id.clone(),
            owner: agent.owner.clone(),
            oncall: agent.oncall.clone(),
            description: agent.description.clone(),
        });
        for o in agent.owner.iter() {
            if !owners.contains(o) {
                owners.push(o.clone());
            }
        }
        for o in agent.oncall.iter() {
            if !oncall.contains(o) {
                oncall.push(o.clone());
            }
        }
        for other in inv.keys_of_agent(agent_id) {
            if other.id != key.id && seen.insert(other.id.clone()) {
                other_keys.push(OtherKey {
                    id: other.id.clone(),
                    provider: other.provider.clone(),
                    held_by: other.agents.clone(),
                });
            }
        }
    }
    BlastRadius {
        agents,
        other_keys,
        store: key.store.clone(),
        secret_path: key.secret_path.clone(),
        owners,
        oncall,
    }
}

/// Keys ordered so that the widest blast radius comes first (campaigns, triage).
pub fn blast_size(inv: &Inventory, key: &Key) -> usize {
    key.agents.len() + blast_radius(inv, key).other_keys.len()
}
