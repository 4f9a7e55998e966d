//! `inventory lint`: hygiene findings, each with a stable code that scripts can match on.

use std::fmt;

use chrono::NaiveDate;
use serde::Serialize;

use super::model::{Inventory, ProviderKind};

/// Provider kinds whose keys are revoked by hand (`manual-revoke`). Each backend declares its
/// capabilities in its own module under `provider`, which reads the inventory's definitions;
/// the lint sits below it, so it keeps this one fact as plain data, and the provider registry's
/// test `the_lint_knows_which_kinds_revoke_by_api` fails if a backend declares otherwise.
pub const REVOKED_BY_HAND: &[ProviderKind] = &[ProviderKind::Manual];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Warning,
    Notice,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding<'a> {
    /// Stable identifier (`shared-key`, `rotation-overdue`, ...); documented in the README.
    pub code: &'static str,
    pub severity: Severity,
    /// Borrowed from the inventory: a lint of 100,000 keys makes over 100,000 findings, and a
    /// copy of the id and a formatted message each was most of lint's time and memory.
    pub key: &'a str,
    /// The provider, for provider-level findings (`drill-overdue`; `key` is empty then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<&'a str>,
    pub message: Message<'a>,
}

/// A finding's text, written out only when printed (`Display`) or serialized (as a string).
#[derive(Debug, Clone)]
pub enum Message<'a> {
    NoAgent,
    Shared(&'a [String]),
    ScopeBeyondNeeds {
        scopes: &'a [String],
        needs: &'a [String],
    },
    Overdue {
        due: NaiveDate,
        days_ago: i64,
    },
    DueSoon {
        due: NaiveDate,
        in_days: i64,
    },
    UnknownAge,
    NoOwner(&'a str),
    NoOncall(&'a str),
    NoStore,
    ManualRevoke {
        provider: &'a str,
        kind: ProviderKind,
    },
    DrillOverdue {
        last: Option<NaiveDate>,
        days_ago: i64,
        every: i64,
    },
    /// A finding of `lint --online`, written by `discover` from what the provider listed.
    Online(&'a str),
}

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::NoAgent => f.write_str("no agent holds this key"),
            Message::Shared(agents) => write!(
                f,
                "shared by {} agents ({}): one leak exposes all of them",
                agents.len(),
                agents.join(", ")
            ),
            Message::ScopeBeyondNeeds { scopes, needs } => {
                f.write_str("scopes beyond what the agents need: ")?;
                for (i, s) in scopes.iter().filter(|s| !needs.contains(s)).enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(s)?;
                }
                Ok(())
            }
            Message::Overdue { due, days_ago } => {
                write!(f, "rotation was due {due} ({days_ago} days ago)")
            }
            Message::DueSoon { due, in_days } => {
                write!(f, "rotation due {due} (in {in_days} days)")
            }
            Message::UnknownAge => {
                f.write_str("set created_at or last_rotated so rotation can be tracked")
            }
            Message::NoOwner(agent) => write!(f, "agent `{agent}` has no owner"),
            Message::NoOncall(agent) => write!(f, "agent `{agent}` has no on-call contact"),
            Message::NoStore => {
                f.write_str("no store: the replacement must be delivered to the agents by hand")
            }
            Message::ManualRevoke { provider, kind } => write!(
                f,
                "provider `{provider}` ({kind}) cannot revoke by API: the runbook walks the operator through it"
            ),
            Message::DrillOverdue {
                last: Some(d),
                days_ago,
                every,
            } => {
                write!(
                    f,
                    "last drill {d} ({days_ago} days ago; policy: every {every} days)"
                )
            }
            Message::Online(text) => f.write_str(text),
            Message::DrillOverdue {
                last: None, every, ..
            } => {
                write!(
                    f,
                    "never drilled (policy: every {every} days): run `keyfire drill --all`"
                )
            }
        }
    }
}

impl Serialize for Message<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Every finding code `lint` can report, with what it means.
#[cfg(feature = "testing")]
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
    (
        "shadow-key",
        "`--online`: the provider holds a key that no inventory entry names",
    ),
    (
        "unknown-at-provider",
        "`--online`: the provider no longer knows the inventory's key (deleted, or a wrong id)",
    ),
    (
        "drift-at-provider",
        "`--online`: the provider lists the key as disabled or revoked, or with another hint or scopes",
    ),
    (
        "ambiguous-at-provider",
        "`--online`: the key's hint matches several keys at the provider",
    ),
    (
        "listing-unavailable",
        "`--online`: the provider's keys could not be listed, so the checks above are unknown for it",
    ),
];

/// Lint with the drill history: `last_drill` maps provider ids to the day of their last drill.
pub fn lint_with_drills<'a>(
    inv: &'a Inventory,
    today: NaiveDate,
    last_drill: &std::collections::HashMap<String, NaiveDate>,
) -> Vec<Finding<'a>> {
    let mut out = lint(inv, today);
    let every = i64::from(inv.policy.drill_every_days);
    let used: std::collections::HashSet<&str> =
        inv.keys.iter().map(|k| k.provider.as_str()).collect();
    for p in inv
        .providers
        .iter()
        .filter(|p| used.contains(p.id.as_str()))
    {
        let last = last_drill.get(&p.id).copied();
        let days_ago = last.map_or(i64::MAX, |d| (today - d).num_days());
        if days_ago > every {
            out.push(Finding {
                code: "drill-overdue",
                severity: Severity::Warning,
                key: "",
                provider: Some(&p.id),
                message: Message::DrillOverdue {
                    last,
                    days_ago,
                    every,
                },
            });
        }
    }
    out
}

pub fn lint<'a>(inv: &'a Inventory, today: NaiveDate) -> Vec<Finding<'a>> {
    let mut out = Vec::new();
    for key in &inv.keys {
        let mut push = |code: &'static str, severity: Severity, message: Message<'a>| {
            out.push(Finding {
                code,
                severity,
                key: &key.id,
                provider: None,
                message,
            });
        };
        match key.agents.len() {
            0 => push("no-agent", Severity::Warning, Message::NoAgent),
            1 => {}
            _ => push(
                "shared-key",
                Severity::Warning,
                Message::Shared(&key.agents),
            ),
        }
        if let Some(needs) = &key.needs
            && key.scopes.iter().any(|s| !needs.contains(s))
        {
            push(
                "scope-beyond-needs",
                Severity::Warning,
                Message::ScopeBeyondNeeds {
                    scopes: &key.scopes,
                    needs,
                },
            );
        }
        match inv.due_on(key) {
            Some(due) if due < today => push(
                "rotation-overdue",
                Severity::Warning,
                Message::Overdue {
                    due,
                    days_ago: (today - due).num_days(),
                },
            ),
            Some(due) if (due - today).num_days() <= i64::from(inv.policy.due_soon_days) => push(
                "rotation-due-soon",
                Severity::Notice,
                Message::DueSoon {
                    due,
                    in_days: (due - today).num_days(),
                },
            ),
            Some(_) => {}
            None => push("unknown-age", Severity::Notice, Message::UnknownAge),
        }
        for agent_id in &key.agents {
            let Some(agent) = inv.agent(agent_id) else {
                continue;
            };
            if agent.owner.is_none() {
                push("no-owner", Severity::Warning, Message::NoOwner(agent_id));
            }
            if agent.oncall.is_none() {
                push("no-oncall", Severity::Warning, Message::NoOncall(agent_id));
            }
        }
        if key.store.is_none() {
            push("no-store", Severity::Warning, Message::NoStore);
        }
        if let Some(provider) = inv.provider_of(key)
            && REVOKED_BY_HAND.contains(&provider.kind)
        {
            push(
                "manual-revoke",
                Severity::Notice,
                Message::ManualRevoke {
                    provider: &provider.id,
                    kind: provider.kind,
                },
            );
        }
    }
    out
}

/// `scope-beyond-needs` from what the providers say the keys can do (SendGrid's scopes from
/// `GET /v3/api_keys/{id}`, a LiteLLM key's models), for `lint --online` and `inventory
/// discover`: `real` maps a key's inventory id to its scopes as the provider listed them.
/// A key with `needs` whose real scopes go beyond them is a finding even when the inventory's
/// own `scopes` say otherwise; keys without `needs`, or the provider did not list, are left
/// to the offline check.
#[cfg(feature = "testing")]
pub fn scope_beyond_needs_at_provider<'a>(
    inv: &'a Inventory,
    real: &'a std::collections::HashMap<String, Vec<String>>,
) -> Vec<Finding<'a>> {
    inv.keys
        .iter()
        .filter_map(|key| {
            let needs = key.needs.as_ref()?;
            let scopes = real.get(&key.id)?;
            scopes.iter().any(|s| !needs.contains(s)).then(|| Finding {
                code: "scope-beyond-needs",
                severity: Severity::Warning,
                key: &key.id,
                provider: None,
                message: Message::ScopeBeyondNeeds { scopes, needs },
            })
        })
        .collect()
}
