//! `inventory lint`: hygiene findings, each with a stable code that scripts can match on.

use chrono::NaiveDate;
use serde::Serialize;

use super::model::Inventory;
use crate::provider::capabilities_of;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Warning,
    Notice,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable identifier (`shared-key`, `rotation-overdue`, ...); documented in the README.
    pub code: &'static str,
    pub severity: Severity,
    /// The key the finding is about (empty for provider-level findings).
    pub key: String,
    /// The provider, for provider-level findings (`drill-overdue`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub message: String,
}

/// Every finding code `lint` can report, with what it means.
pub const CODES: &[(&str, &str)] = &[
    ("shared-key", "the key is held by more than one agent"),
    (
        "no-agent",
        "no agent holds the key (orphan or missing inventory entry)",
    ),
    (
        "scope-beyond-needs",
        "the key's scopes include more than its agents need",
    ),
    ("rotation-overdue", "the key's rotation due date has passed"),
    (
        "rotation-due-soon",
        "the key's rotation falls due within policy.due_soon_days",
    ),
    (
        "unknown-age",
        "neither created_at nor last_rotated is set, so rotation cannot be tracked",
    ),
    ("no-owner", "an agent holding the key has no owner"),
    (
        "no-oncall",
        "an agent holding the key has no on-call contact",
    ),
    (
        "no-store",
        "the key has no store, so a replacement cannot be redeployed automatically",
    ),
    (
        "manual-revoke",
        "the key's provider cannot revoke by API: the runbook falls back to a manual step",
    ),
    (
        "drill-overdue",
        "no drill of this provider's keys within policy.drill_every_days",
    ),
];

/// Lint with the drill history: `last_drill` maps provider ids to the day of their last drill.
pub fn lint_with_drills(
    inv: &Inventory,
    today: NaiveDate,
    last_drill: &std::collections::HashMap<String, NaiveDate>,
) -> Vec<Finding> {
    let mut out = lint(inv, today);
    let every = i64::from(inv.policy.drill_every_days);
    for p in &inv.providers {
        if !inv.keys.iter().any(|k| k.provider == p.id) {
            continue;
        }
        let message = match last_drill.get(&p.id) {
            Some(d) if (today - *d).num_days() <= every => continue,
            Some(d) => format!(
                "last drill {d} ({} days ago; policy: every {every} days)",
                (today - *d).num_days()
            ),
            None => {
                format!("never drilled (policy: every {every} days): run `keyfire drill --all`")
            }
        };
        out.push(Finding {
            code: "drill-overdue",
            severity: Severity::Warning,
            key: String::new(),
            provider: Some(p.id.clone()),
            message,
        });
    }
    out
}

pub fn lint(inv: &Inventory, today: NaiveDate) -> Vec<Finding> {
    let mut out = Vec::new();
    for key in &inv.keys {
        let mut push = |code: &'static str, severity: Severity, message: String| {
            out.push(Finding {
                code,
                severity,
                key: key.id.clone(),
                provider: None,
                message,
            });
        };
        match key.agents.len() {
            0 => push(
                "no-agent",
                Severity::Warning,
                "no agent holds this key".into(),
            ),
            1 => {}
            n => push(
                "shared-key",
                Severity::Warning,
                format!(
                    "shared by {n} agents ({}): one leak exposes all of them",
                    key.agents.join(", ")
                ),
            ),
        }
        if let Some(needs) = &key.needs {
            let extra: Vec<&str> = key
                .scopes
                .iter()
                .filter(|s| !needs.contains(s))
                .map(String::as_str)
                .collect();
            if !extra.is_empty() {
                push(
                    "scope-beyond-needs",
                    Severity::Warning,
                    format!("scopes beyond what the agents need: {}", extra.join(", ")),
                );
            }
        }
        match inv.due_on(key) {
            Some(due) if due < today => push(
                "rotation-overdue",
                Severity::Warning,
                format!(
                    "rotation was due {due} ({} days ago)",
                    (today - due).num_days()
                ),
            ),
            Some(due) if (due - today).num_days() <= i64::from(inv.policy.due_soon_days) => push(
                "rotation-due-soon",
                Severity::Notice,
                format!("rotation due {due} (in {} days)", (due - today).num_days()),
            ),
            Some(_) => {}
            None => push(
                "unknown-age",
                Severity::Notice,
                "set created_at or last_rotated so rotation can be tracked".into(),
            ),
        }
        for agent_id in &key.agents {
            let Some(agent) = inv.agent(agent_id) else {
                continue;
            };
            if agent.owner.is_none() {
                push(
                    "no-owner",
                    Severity::Warning,
                    format!("agent `{agent_id}` has no owner"),
                );
            }
            if agent.oncall.is_none() {
                push(
                    "no-oncall",
                    Severity::Warning,
                    format!("agent `{agent_id}` has no on-call contact"),
                );
            }
        }
        if key.store.is_none() {
            push(
                "no-store",
                Severity::Warning,
                "no store: the replacement must be delivered to the agents by hand".into(),
            );
        }
        if let Some(provider) = inv.provider_of(key)
            && !capabilities_of(provider.kind).revoke
        {
            push(
                "manual-revoke",
                Severity::Notice,
                format!(
                    "provider `{}` ({}) cannot revoke by API: the runbook walks the operator through it",
                    provider.id, provider.kind
                ),
            );
        }
    }
    out
}
