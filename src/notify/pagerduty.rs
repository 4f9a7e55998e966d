//! PagerDuty Events API v2: `POST https://events.pagerduty.com/v2/enqueue` (or the
//! notifier's `url`), answered `202 {"status":"success","dedup_key":...}`; 400 is a bad
//! event (not retried), 429 and 5xx are retried.
//!
//! | field | keyfire sends | reference |
//! | --- | --- | --- |
//! | `routing_key` | the integration key, from a credential reference | required |
//! | `event_action` | `trigger` at open and for failures; `acknowledge` or `resolve` at close | enum `trigger`, `acknowledge`, `resolve` |
//! | `dedup_key` | the incident id, so the close resolves the alert the open raised | required unless trigger; max 255 characters |
//! | `payload.summary` | the event's title, at most 1024 characters | required for trigger |
//! | `payload.source` | `keyfire` | required for trigger |
//! | `payload.severity` | `critical` open, `error` failure, `warning` operator needed, `info` drill | enum `critical`, `error`, `warning`, `info` |
//! | `payload.timestamp`, `class`, `component`, `group`, `custom_details` | event time, event name, `keyfire`, the incident, the scrubbed event | optional |
//! | `client` | `keyfire` | optional |
//!
//! References: PagerDuty's published Events API v2 OpenAPI document
//! (`reference/events-v2/openapiv3.json` in github.com/PagerDuty/api-schema: `/enqueue`,
//! schemas `Payload`, responses `202`/`400`/`429`/`5XX`), and the developer reference "Send
//! an Alert Event" (developer.pagerduty.com/docs/send-alert-event), which limits
//! `payload.summary` to 1024 characters and `dedup_key` to 255.

use chrono::SecondsFormat;
use serde::Serialize;

use super::event::{Detail, Event, ProofOutcome, Severity};
use super::message::{Expect, Message, Outgoing, truncate_chars};
use crate::secret::Secret;

pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";
pub const SUMMARY_LIMIT: usize = 1024;
pub const DEDUP_LIMIT: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Trigger,
    Acknowledge,
    Resolve,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trigger => "trigger",
            Self::Acknowledge => "acknowledge",
            Self::Resolve => "resolve",
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    routing_key: &'a str,
    event_action: Action,
    dedup_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<Payload<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<&'static str>,
}

#[derive(Serialize)]
struct Payload<'a> {
    summary: String,
    source: &'static str,
    severity: Severity,
    timestamp: String,
    component: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a str>,
    class: &'static str,
    custom_details: CustomDetails<'a>,
}

#[derive(Serialize)]
struct CustomDetails<'a> {
    text: &'a str,
    drill: bool,
    detail: &'a serde_json::Value,
}

/// What the event does to the PagerDuty alert, or `None` when it is chat-only (a revocation
/// proven dead needs nobody woken up).
pub fn action(event: &Event) -> Option<Action> {
    match &event.detail {
        Detail::IncidentClosed {
            outcome,
            not_proven,
            ..
        } => Some(if outcome == "completed" && not_proven.is_empty() {
            Action::Resolve
        } else {
            // Someone ran it to the end, but a key may be alive or a step failed: the alert
            // stays open, acknowledged.
            Action::Acknowledge
        }),
        Detail::KeyRevoked {
            proof: ProofOutcome::Inconclusive,
            ..
        } => Some(Action::Trigger),
        Detail::KeyRevoked { .. } => None,
        _ => Some(Action::Trigger),
    }
}

/// The alert an event belongs to: the incident's id, else one per subject and day.
pub fn dedup_key(event: &Event, notifier: &str) -> String {
    let key = match (&event.incident, &event.detail) {
        (Some(id), _) => id.clone(),
        (None, Detail::AuditFindings { key, .. }) => {
            format!("keyfire-audit-{key}-{}", event.at.format("%Y-%m-%d"))
        }
        (None, Detail::DrillOverdue { provider, .. }) => {
            format!(
                "keyfire-drill-overdue-{provider}-{}",
                event.at.format("%Y-%m-%d")
            )
        }
        (None, Detail::Test { .. }) => format!(
            "keyfire-test-{notifier}-{}",
            event.at.format("%Y%m%dT%H%M%S")
        ),
        (None, _) => format!("keyfire-{}-{}", event.name(), event.at.timestamp()),
    };
    truncate_chars(&key, DEDUP_LIMIT)
}

pub fn request(
    url: &str,
    routing_key: &Secret,
    action: Action,
    dedup_key: &str,
    msg: &Message,
) -> Outgoing {
    let payload = (action == Action::Trigger).then(|| Payload {
        summary: truncate_chars(&msg.title, SUMMARY_LIMIT),
        source: "keyfire",
        severity: msg.severity,
        timestamp: msg.at.to_rfc3339_opts(SecondsFormat::Millis, true),
        component: "keyfire",
        group: msg.incident.as_deref(),
        class: msg.event,
        custom_details: CustomDetails {
            text: &msg.text,
            drill: msg.drill,
            detail: &msg.detail,
        },
    });
    let body = Body {
        routing_key: routing_key.expose(),
        event_action: action,
        dedup_key,
        payload,
        client: (action == Action::Trigger).then_some("keyfire"),
    };
    Outgoing {
        url: Secret::new(url),
        headers: vec![("content-type", "application/json".into())],
        body: Secret::new(serde_json::to_string(&body).unwrap_or_default()),
        expect: Expect::PagerDutyAccepted,
    }
}
