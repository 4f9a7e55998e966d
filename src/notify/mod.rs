//! Alerts out: keyfire tells the on-call channel, the pager and the owners of every affected
//! agent what it is doing (`[[notifiers]]` in the inventory).
//!
//! | kind | request | accepted answer | reference |
//! | --- | --- | --- | --- |
//! | `slack` | `POST <webhook URL>` `{"text": ...}` | `200 ok` | Slack, "Sending messages using incoming webhooks" |
//! | `pagerduty` | `POST /v2/enqueue` Events API v2 (`trigger` at open, `acknowledge`/`resolve` at close, `dedup_key` = incident id) | `202 {"status":"success"}` | PagerDuty Events API v2 OpenAPI (`PagerDuty/api-schema`, `reference/events-v2/openapiv3.json`), "Send an Alert Event" |
//! | `webhook` | `POST <url>` JSON, `X-Keyfire-Signature: sha256=<HMAC-SHA256 hex>`, `X-Keyfire-Event` | any 2xx | this module ([`webhook`]) |
//!
//! Rules: messages are rendered from typed [`Event`]s and scrubbed of learned secrets and
//! recognized key formats before they leave; sending never blocks the runbook (a worker per
//! notifier, short timeouts, a few retries, the outcome recorded as a `notification` entry);
//! a drill's messages say DRILL and are sent only with `--notify`.

mod dispatch;
mod event;
mod message;
pub mod pagerduty;
mod run;
pub mod slack;
mod watch;
pub mod webhook;

pub use dispatch::{Delivery, Notifier, Options, Recorder};
pub use event::{Detail, Event, RuleFindings};
#[cfg(feature = "testing")]
pub use event::{Contact, KeyBlast, ProofOutcome, Severity, blast};
#[cfg(feature = "testing")]
pub use message::{Message, Outgoing};
pub use run::{drive_with_notifiers, options};
pub use watch::{NotifyGate, NotifySink};
#[cfg(feature = "testing")]
pub use watch::started_by;
