//! An event made ready to send: rendered once, scrubbed once, then handed to every kind.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::event::{Contact, Event, Severity};
use crate::inventory::Inventory;
use crate::secret::{Redactor, Secret};

/// The rendered event. Every text in it went through the scrubber (learned secrets and
/// recognized key formats): a `--reason` or a provider's error text that quotes a key does
/// not reach a chat channel.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub event: &'static str,
    pub title: String,
    /// The title and the body lines, newline-separated.
    pub text: String,
    pub severity: Severity,
    pub drill: bool,
    pub incident: Option<String>,
    pub at: DateTime<Utc>,
    /// Owners and on-call addressed (notifiers with `owners = true`).
    pub recipients: Vec<Contact>,
    /// The typed event, serialized and scrubbed (the webhook's `detail`).
    pub detail: serde_json::Value,
}

impl Message {
    pub fn render(event: &Event, inv: &Inventory, owners: bool, redactor: &Redactor) -> Self {
        let title = redactor.scrub(&event.title());
        let mut text = title.clone();
        for line in event.lines(inv, owners) {
            text.push('\n');
            text.push_str(&redactor.scrub(&line));
        }
        let detail = serde_json::to_string(&event.detail)
            .ok()
            .map(|json| redactor.scrub(&json))
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or(serde_json::Value::Null);
        Self {
            event: event.name(),
            title,
            text,
            severity: event.severity(),
            drill: event.drill,
            incident: event.incident.clone(),
            at: event.at,
            recipients: if owners {
                event.contacts(inv)
            } else {
                Vec::new()
            },
            detail,
        }
    }
}

/// One POST, described as data before it is sent. The URL may be a secret (a Slack webhook
/// URL is), and the body may hold one (PagerDuty's routing key): neither is ever printed.
pub struct Outgoing {
    pub url: Secret,
    pub headers: Vec<(&'static str, String)>,
    pub body: Secret,
    /// What a delivered answer looks like for this kind.
    pub expect: Expect,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("url", &"[not shown]")
            .field("headers", &self.headers)
            .field("body", &"[not shown]")
            .finish()
    }
}

/// How a kind's receiver says "accepted".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Any 2xx.
    Success,
    /// Slack: 200 with the body `ok`.
    SlackOk,
    /// PagerDuty: 202 with `{"status": "success"}`.
    PagerDutyAccepted,
}

/// A text cut to `max` characters (not bytes), marked when cut.
pub(super) fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}
