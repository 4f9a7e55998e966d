//! What keyfire tells people, as typed data: one [`Event`] per thing worth a message. The
//! kinds (`slack`, `pagerduty`, `webhook`) render the same event their own way.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::inventory::{Inventory, Route};

/// PagerDuty's severities (Events API v2 `payload.severity`), also used by the other kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    Error,
    Warning,
    Info,
}

/// How a revocation's proof came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofOutcome {
    /// The provider answered the old value with its documented invalid-credential signal.
    Proven,
    /// No such answer: the key may still work.
    Inconclusive,
    /// No verify call for this provider; the operator confirmed the revoke.
    ConfirmedByOperator,
    /// A drill exercised the probe; nothing was revoked.
    Rehearsed,
}

/// Who answers for an agent (the inventory's `owner` and `oncall`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub agent: String,
    pub owner: Option<String>,
    pub oncall: Option<String>,
}

/// One key of an opened incident and what else its agents hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyBlast {
    pub key: String,
    pub provider: String,
    pub agents: Vec<String>,
    /// The other keys those agents hold (exposed by the same leaked config).
    pub other_keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleFindings {
    pub rule: String,
    pub findings: Vec<String>,
}

/// The event itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Detail {
    IncidentOpened {
        keys: Vec<KeyBlast>,
        order: String,
        started_by: String,
        reason: Option<String>,
    },
    KeyRevoked {
        key: String,
        proof: ProofOutcome,
        reason: Option<String>,
    },
    OperatorNeeded {
        key: String,
        step: String,
        what: String,
    },
    StepFailed {
        key: String,
        step: String,
        action: String,
        error: String,
        status: Option<u64>,
    },
    IncidentClosed {
        outcome: String,
        time_to_revoke_ms: BTreeMap<String, Option<i64>>,
        fleet_time_to_contain_ms: Option<i64>,
        not_proven: Vec<String>,
        report: Option<String>,
        closing_hash: String,
    },
    AuditFindings {
        key: String,
        rules: Vec<RuleFindings>,
        /// The incident `--respond` opened for it.
        incident: Option<String>,
    },
    RotationFailed {
        key: String,
        reason: String,
    },
    DrillOverdue {
        provider: String,
        last_drill: Option<NaiveDate>,
        every_days: u32,
    },
    Test {
        notifier: String,
    },
}

/// One thing to tell, with what routing needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub detail: Detail,
    /// The incident, drill or rotation it belongs to (PagerDuty's dedup key).
    pub incident: Option<String>,
    pub drill: bool,
    /// Part of a scheduled rotation: its messages go to the `rotation` route.
    pub rotation: bool,
    /// The agents whose keys the event is about (notifiers with `agents = [...]` filter on it,
    /// `owners = true` addresses their owners and on-call).
    pub agents: Vec<String>,
    pub at: DateTime<Utc>,
}

impl Event {
    pub fn new(detail: Detail, at: DateTime<Utc>) -> Self {
        Self {
            detail,
            incident: None,
            drill: false,
            rotation: false,
            agents: Vec::new(),
            at,
        }
    }

    pub fn in_incident(mut self, id: &str, drill: bool) -> Self {
        self.incident = Some(id.to_string());
        self.drill = drill;
        self
    }

    pub fn about_agents(mut self, agents: impl IntoIterator<Item = String>) -> Self {
        for a in agents {
            if !self.agents.contains(&a) {
                self.agents.push(a);
            }
        }
        self
    }

    /// `incident.opened`, ...: the `X-Keyfire-Event` header and the webhook's `event`.
    pub fn name(&self) -> &'static str {
        match &self.detail {
            Detail::IncidentOpened { .. } => "incident.opened",
            Detail::KeyRevoked { .. } => "incident.key_revoked",
            Detail::OperatorNeeded { .. } => "incident.operator_needed",
            Detail::StepFailed { .. } => "incident.step_failed",
            Detail::IncidentClosed { .. } => "incident.closed",
            Detail::AuditFindings { .. } => "audit.findings",
            Detail::RotationFailed { .. } => "rotation.failed",
            Detail::DrillOverdue { .. } => "drill.overdue",
            Detail::Test { .. } => "test",
        }
    }

    /// Which `route` receives it. Everything a drill says goes to the drill route.
    pub fn route(&self) -> Option<Route> {
        if self.drill {
            return Some(Route::Drill);
        }
        if self.rotation {
            return Some(Route::Rotation);
        }
        match &self.detail {
            Detail::IncidentOpened { .. }
            | Detail::KeyRevoked { .. }
            | Detail::OperatorNeeded { .. }
            | Detail::StepFailed { .. }
            | Detail::IncidentClosed { .. } => Some(Route::Incident),
            Detail::AuditFindings { .. } => Some(Route::Finding),
            Detail::RotationFailed { .. } => Some(Route::Rotation),
            Detail::DrillOverdue { .. } => Some(Route::Drill),
            // Sent to every notifier by `keyfire notify test`.
            Detail::Test { .. } => None,
        }
    }

    pub fn severity(&self) -> Severity {
        if self.drill {
            return Severity::Info;
        }
        match &self.detail {
            Detail::IncidentOpened { .. } => Severity::Critical,
            Detail::KeyRevoked {
                proof: ProofOutcome::Inconclusive,
                ..
            } => Severity::Critical,
            Detail::KeyRevoked { .. } => Severity::Info,
            Detail::OperatorNeeded { .. } => Severity::Warning,
            Detail::StepFailed { .. } => Severity::Error,
            Detail::IncidentClosed {
                not_proven,
                outcome,
                ..
            } => {
                if !not_proven.is_empty() || outcome != "completed" {
                    Severity::Error
                } else {
                    Severity::Info
                }
            }
            Detail::AuditFindings { .. } => Severity::Warning,
            Detail::RotationFailed { .. } => Severity::Error,
            Detail::DrillOverdue { .. } => Severity::Warning,
            Detail::Test { .. } => Severity::Info,
        }
    }

    /// One line, the way a pager or a chat preview shows it.
    pub fn title(&self) -> String {
        let drill = if self.drill { "[DRILL] " } else { "" };
        let id = self.incident.as_deref().unwrap_or("");
        let text = match &self.detail {
            Detail::IncidentOpened { keys, .. } => {
                let names: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
                format!(
                    "keyfire {id}: leaked key response started for {}",
                    list(&names, 5)
                )
            }
            Detail::KeyRevoked { key, proof, .. } => match proof {
                ProofOutcome::Proven => format!("keyfire {id}: {key} revoked, proven dead"),
                ProofOutcome::Inconclusive => {
                    format!("keyfire {id}: {key} revoked but NOT proven dead")
                }
                ProofOutcome::ConfirmedByOperator => {
                    format!("keyfire {id}: {key} revoked (confirmed by the operator)")
                }
                ProofOutcome::Rehearsed => format!("keyfire {id}: {key} revoke rehearsed"),
            },
            Detail::OperatorNeeded { key, step, .. } => {
                format!("keyfire {id}: {key} waits for the operator ({step})")
            }
            Detail::StepFailed {
                key, step, action, ..
            } => format!("keyfire {id}: {key} {step} failed ({action})"),
            Detail::IncidentClosed {
                outcome,
                not_proven,
                ..
            } => {
                let proof = if not_proven.is_empty() {
                    String::new()
                } else {
                    format!(", revocation NOT proven for {}", not_proven.join(", "))
                };
                format!("keyfire {id}: closed, {outcome}{proof}")
            }
            Detail::AuditFindings { key, rules, .. } => {
                let names: Vec<&str> = rules.iter().map(|r| r.rule.as_str()).collect();
                format!("keyfire audit: {key} has findings ({})", names.join(", "))
            }
            Detail::RotationFailed { key, .. } => {
                format!("keyfire {id}: scheduled rotation of {key} failed")
            }
            Detail::DrillOverdue { provider, .. } => {
                format!("keyfire: revocation drill overdue for provider {provider}")
            }
            Detail::Test { notifier } => format!("keyfire test message for notifier {notifier}"),
        };
        format!("{drill}{text}")
    }

    /// The message body, line by line (without the title).
    pub fn lines(&self, inv: &Inventory, owners: bool) -> Vec<String> {
        let mut out = Vec::new();
        if self.drill {
            out.push("This is a DRILL: nothing was revoked, no write was sent.".to_string());
        }
        match &self.detail {
            Detail::IncidentOpened {
                keys,
                order,
                started_by,
                reason,
            } => {
                out.push(format!("Started by {started_by}, order {order}."));
                if let Some(r) = reason {
                    out.push(format!("Reason: {r}"));
                }
                for k in keys {
                    let others = if k.other_keys.is_empty() {
                        String::new()
                    } else {
                        format!("; blast radius: {}", list_owned(&k.other_keys, 8))
                    };
                    out.push(format!(
                        "- {} ({}), agents {}{others}",
                        k.key,
                        k.provider,
                        list_owned(&k.agents, 8)
                    ));
                }
            }
            Detail::KeyRevoked { reason, .. } => {
                if let Some(r) = reason {
                    out.push(format!("Proof: {r}"));
                }
            }
            Detail::OperatorNeeded { what, .. } => out.push(what.clone()),
            Detail::StepFailed { error, status, .. } => {
                let status = status.map_or(String::new(), |s| format!(" (HTTP {s})"));
                out.push(format!("Error{status}: {error}"));
                out.push("The incident stays open and resumable.".into());
            }
            Detail::IncidentClosed {
                time_to_revoke_ms,
                fleet_time_to_contain_ms,
                report,
                closing_hash,
                ..
            } => {
                for (key, ms) in time_to_revoke_ms {
                    out.push(format!("- {key}: time to revoke {}", millis(*ms)));
                }
                out.push(format!(
                    "Fleet time to contain: {}",
                    millis(*fleet_time_to_contain_ms)
                ));
                if let Some(r) = report {
                    out.push(format!("Report: {r}"));
                }
                out.push(format!("Record closing hash: {closing_hash}"));
            }
            Detail::AuditFindings {
                rules, incident, ..
            } => {
                for r in rules {
                    for f in &r.findings {
                        out.push(format!("- {}: {f}", r.rule));
                    }
                }
                if let Some(i) = incident {
                    out.push(format!("Incident {i} opened in response."));
                }
            }
            Detail::RotationFailed { reason, .. } => {
                out.push(reason.clone());
                out.push("The old key was not revoked; the rotation stays open.".into());
            }
            Detail::DrillOverdue {
                last_drill,
                every_days,
                ..
            } => out.push(match last_drill {
                Some(d) => format!("Last drill {d}; policy: every {every_days} days."),
                None => format!("Never drilled; policy: every {every_days} days."),
            }),
            Detail::Test { .. } => {
                out.push("If you read this, keyfire can reach this channel.".into())
            }
        }
        if owners {
            for c in self.contacts(inv) {
                let who: Vec<&str> = [c.owner.as_deref(), c.oncall.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                if !who.is_empty() {
                    out.push(format!("Attention {} (agent {})", who.join(", "), c.agent));
                }
            }
        }
        out
    }

    /// Owners and on-call of the agents the event is about.
    pub fn contacts(&self, inv: &Inventory) -> Vec<Contact> {
        self.agents
            .iter()
            .filter_map(|a| inv.agent(a))
            .map(|a| Contact {
                agent: a.id.clone(),
                owner: a.owner.clone(),
                oncall: a.oncall.clone(),
            })
            .collect()
    }
}

fn millis(ms: Option<i64>) -> String {
    ms.map_or("unknown".to_string(), |n| format!("{n} ms"))
}

fn list(items: &[&str], max: usize) -> String {
    let shown = items
        .iter()
        .take(max)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    match items.len().saturating_sub(max) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

fn list_owned(items: &[String], max: usize) -> String {
    let refs: Vec<&str> = items.iter().map(String::as_str).collect();
    list(&refs, max)
}

/// The blast radius of each key, from the inventory.
pub fn blast(inv: &Inventory, keys: &[String]) -> Vec<KeyBlast> {
    keys.iter()
        .filter_map(|k| inv.key(k))
        .map(|k| {
            let mut other_keys = Vec::new();
            for a in &k.agents {
                for other in inv.keys_of_agent(a) {
                    if other.id != k.id && !other_keys.contains(&other.id) {
                        other_keys.push(other.id.clone());
                    }
                }
            }
            KeyBlast {
                key: k.id.clone(),
                provider: k.provider.clone(),
                agents: k.agents.clone(),
                other_keys,
            }
        })
        .collect()
}
