//! The record's entries, typed: one [`Event`] per `kind`, each with its payload (the
//! `data` object). Everything that reads a record (the projection ([`IncidentState`](crate::record::IncidentState)), the
//! one-line descriptions, resume, notifiers, the console) reads these types instead of
//! matching strings in `data`.
//!
//! On disk an entry is still `{kind, data}` beside its chain fields, and the hash still runs
//! over that serialized line: [`Event::of`] is a view over a verified [`Entry`], never a
//! second encoding. Payload fields a reader does not need are ignored, and every field is
//! optional, so records written by older releases read the same. A kind this release does
//! not know (written by a newer keyfire), or a payload that does not fit its kind, reads as
//! [`Event::Unknown`] with its raw data: it is still shown, never dropped.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Entry;

pub mod evidence;

pub(crate) use evidence::UsageSeen;
pub use evidence::{CreateIntent, Evidence, Resolved, Rotation, RuleVerdict};

/// One record entry's kind and payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `incident_opened`: the first line, what was asked for.
    IncidentOpened(Opened),
    /// `incident_resumed`: a process took the incident up again.
    IncidentResumed(Resumed),
    /// `incident_closed`: the outcome and the timings.
    IncidentClosed(Closed),
    /// `step_started`: a key's runbook step began.
    StepStarted(StepStarted),
    /// `step_finished`: a key's runbook step ended (done or skipped).
    StepFinished(StepFinished),
    /// `step_failed`: an action of a step failed.
    StepFailed(StepFailed),
    /// `plan`: a request, or a manual step, shown before it is approved.
    Plan(Planned),
    /// `not_sent`: a drill's write, shown and never sent.
    NotSent(NotSent),
    /// `operator_input`: an approval, a decline, a confirmation or a paste.
    OperatorInput(OperatorInput),
    /// `request_sent`: a request left.
    RequestSent(RequestSent),
    /// `response`: what came back, summarized.
    Response(Response),
    /// `evidence`: what an action learned.
    Evidence(Box<Evidence>),
    /// `action_done`: an action ended (done or skipped), with the facts so far.
    ActionDone(ActionDone),
    /// `notification`: one notifier's delivery.
    Notification(Notification),
    /// A kind this release does not know, or a payload that does not fit its kind.
    Unknown {
        /// The kind as recorded.
        kind: String,
        /// The payload as recorded.
        data: Value,
    },
}

fn parse<'a, T: Deserialize<'a>>(data: &'a Value) -> Option<T> {
    T::deserialize(data).ok()
}

impl Event {
    /// The typed view of one entry (never fails: see [`Event::Unknown`]).
    pub fn of(e: &Entry) -> Self {
        let d = &e.data;
        let typed = match e.kind.as_str() {
            "incident_opened" => parse(d).map(Self::IncidentOpened),
            "incident_resumed" => parse(d).map(Self::IncidentResumed),
            "incident_closed" => parse(d).map(Self::IncidentClosed),
            "step_started" => parse(d).map(Self::StepStarted),
            "step_finished" => parse(d).map(Self::StepFinished),
            "step_failed" => parse(d).map(Self::StepFailed),
            "plan" => parse(d).map(Self::Plan),
            "not_sent" => parse(d).map(Self::NotSent),
            "operator_input" => parse(d).map(Self::OperatorInput),
            "request_sent" => parse(d).map(Self::RequestSent),
            "response" => parse(d).map(Self::Response),
            "evidence" => parse(d).map(|e| Self::Evidence(Box::new(e))),
            "action_done" => parse(d).map(Self::ActionDone),
            "notification" => parse(d).map(Self::Notification),
            _ => None,
        };
        typed.unwrap_or_else(|| Self::Unknown {
            kind: e.kind.clone(),
            data: e.data.clone(),
        })
    }

    /// The `kind` this event is recorded under.
    pub fn kind(&self) -> &str {
        match self {
            Self::IncidentOpened(_) => "incident_opened",
            Self::IncidentResumed(_) => "incident_resumed",
            Self::IncidentClosed(_) => "incident_closed",
            Self::StepStarted(_) => "step_started",
            Self::StepFinished(_) => "step_finished",
            Self::StepFailed(_) => "step_failed",
            Self::Plan(_) => "plan",
            Self::NotSent(_) => "not_sent",
            Self::OperatorInput(_) => "operator_input",
            Self::RequestSent(_) => "request_sent",
            Self::Response(_) => "response",
            Self::Evidence(_) => "evidence",
            Self::ActionDone(_) => "action_done",
            Self::Notification(_) => "notification",
            Self::Unknown { kind, .. } => kind,
        }
    }

    /// The key an entry is about (`None` for incident-wide entries).
    pub fn key(&self) -> Option<&str> {
        let key = match self {
            Self::StepStarted(x) => &x.key,
            Self::StepFinished(x) => &x.key,
            Self::StepFailed(x) => &x.key,
            Self::Plan(x) => &x.key,
            Self::NotSent(x) => &x.key,
            Self::OperatorInput(x) => &x.key,
            Self::RequestSent(x) => &x.key,
            Self::Response(x) => &x.key,
            Self::Evidence(x) => &x.key,
            Self::ActionDone(x) => &x.key,
            Self::Unknown { data, .. } => return data.get("key").and_then(Value::as_str),
            Self::IncidentOpened(_)
            | Self::IncidentResumed(_)
            | Self::IncidentClosed(_)
            | Self::Notification(_) => return None,
        };
        key.as_deref()
    }

    /// The runbook action an entry is about, as recorded (`revoke`, `fetch_usage`, ...).
    pub fn action(&self) -> Option<&str> {
        let action = match self {
            Self::StepFailed(x) => &x.action,
            Self::Plan(x) => &x.action,
            Self::NotSent(x) => &x.action,
            Self::OperatorInput(x) => &x.action,
            Self::RequestSent(x) => &x.action,
            Self::Response(x) => &x.action,
            Self::Evidence(x) => &x.action,
            Self::ActionDone(x) => &x.action,
            _ => return None,
        };
        action.as_deref()
    }

    /// The engine's facts snapshot an entry carries, if any.
    pub fn facts(&self) -> Option<&FactsSnapshot> {
        match self {
            Self::StepFinished(x) => x.facts.as_ref(),
            Self::ActionDone(x) => x.facts.as_ref(),
            _ => None,
        }
    }
}

/// A payload recorded typed: its kind, and its `data` object by serde. The engine and the
/// runbook actions write every entry through this (never a hand-built object), and readers
/// read the same types back through [`Event::of`].
pub trait Payload: Serialize {
    const KIND: &'static str;

    /// The `data` object of the entry.
    fn data(&self) -> Value {
        // Plain structs of strings, numbers and maps: serializing them cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

macro_rules! payloads {
    ($($ty:ty => $kind:literal),* $(,)?) => {
        $(impl Payload for $ty {
            const KIND: &'static str = $kind;
        })*
    };
}

payloads! {
    Opened => "incident_opened",
    Resumed => "incident_resumed",
    Closed => "incident_closed",
    StepStarted => "step_started",
    StepFinished => "step_finished",
    StepFailed => "step_failed",
    OperatorInput => "operator_input",
    Planned => "plan",
    NotSent => "not_sent",
    RequestSent => "request_sent",
    Response => "response",
    Evidence => "evidence",
    ActionDone => "action_done",
}

/// A value's name as serde writes it (`"contain_first"`, `"OpenAi"`): the engine's enums
/// go into typed payloads as the text the record always held.
pub fn serde_name<T: Serialize>(value: &T) -> Option<String> {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => Some(s),
        _ => None,
    }
}

impl StepStarted {
    pub fn new(title: String, checklist: Vec<String>, note: Option<String>) -> Self {
        Self {
            key: None,
            title: Some(title),
            checklist,
            note,
        }
    }
}

impl StepFinished {
    pub fn new<S: Serialize>(status: S, duration_ms: i64, facts: FactsSnapshot) -> Self {
        Self {
            key: None,
            status: serde_name(&status),
            duration_ms: Some(duration_ms),
            facts: Some(facts),
        }
    }
}

impl StepFailed {
    pub fn new<A: Serialize>(
        action: A,
        error: String,
        status: Option<u64>,
        retryable: bool,
    ) -> Self {
        Self {
            key: None,
            action: serde_name(&action),
            error: Some(error),
            status,
            retryable,
        }
    }
}

impl ActionDone {
    pub fn done<A: Serialize>(action: A, facts: FactsSnapshot) -> Self {
        Self {
            key: None,
            action: serde_name(&action),
            status: Some("done".into()),
            reason: None,
            facts: Some(facts),
        }
    }

    pub fn skipped<A: Serialize>(action: A, reason: String, facts: FactsSnapshot) -> Self {
        Self {
            key: None,
            action: serde_name(&action),
            status: Some("skipped".into()),
            reason: Some(reason),
            facts: Some(facts),
        }
    }
}

impl OperatorInput {
    /// The operator's decision about an action (`None`: about the whole run).
    pub fn decision<A: Serialize>(action: Option<A>, decision: &str) -> Self {
        Self {
            action: action.and_then(|a| serde_name(&a)),
            decision: Some(decision.into()),
            ..Self::default()
        }
    }

    /// The operator pasted a replacement made by hand (its hint, never its value).
    pub fn pasted<A: Serialize>(action: A, hint: Option<String>) -> Self {
        Self {
            action: serde_name(&action),
            pasted: true,
            hint,
            ..Self::default()
        }
    }

    pub fn via(mut self, via: impl Into<String>) -> Self {
        self.via = Some(via.into());
        self
    }

    /// About a step done by hand.
    pub fn manual(mut self) -> Self {
        self.manual = true;
        self
    }

    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// The key facts the opening records, so that a report renders from the record alone.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct KeyFacts {
    pub provider: Option<String>,
    pub provider_kind: Option<String>,
    pub agents: Vec<String>,
    pub scopes: Vec<String>,
    pub store: Option<String>,
    pub secret_path: Option<String>,
}

/// `incident_opened`: what was asked for, against which inventory.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Opened {
    pub schema: Option<u32>,
    pub keyfire_version: Option<String>,
    pub incident: Option<String>,
    pub inventory_digest: Option<String>,
    pub inventory_files: Vec<String>,
    /// Where the runbook came from (built in, or a file).
    pub runbook: Option<String>,
    pub dry_run: bool,
    /// `contain_first` or `per_key`, as recorded.
    pub order: Option<String>,
    pub keys: Vec<String>,
    pub exposed_since: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub logs: Vec<PathBuf>,
    /// `incident` or `rotation`; absent in records written before rotations existed.
    pub purpose: Option<String>,
    pub report_deadline_hours: Option<u64>,
    pub key_facts: BTreeMap<String, KeyFacts>,
    /// The public key that signs the record; the writer adds it to the first line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
}

impl Opened {
    pub fn order_name(&self) -> Option<&str> {
        self.order.as_deref()
    }

    pub fn is_rotation(&self) -> bool {
        self.purpose.as_deref() == Some("rotation")
    }
}

/// `incident_resumed`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Resumed {
    /// Keys whose runbook had not finished.
    pub pending_keys: Vec<String>,
    pub dry_run: bool,
    /// Where the shared copy stood when this machine took the incident over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared: Option<SharedNote>,
}

/// Where a shared record stood when a resume took it over: what was fetched or caught up
/// from the shared copy, and the lease (its holder, a live lease taken over, or none when
/// the store could not be reached).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct SharedNote {
    /// The shared location, as shown to people (no credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The whole record came from the shared copy: its number of lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetched_entries: Option<u64>,
    /// The local record was behind the shared copy: the lines taken from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caught_up: Option<CaughtUp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_taken_over: Option<LeaseSeen>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_holder: Option<String>,
    /// No lease was taken, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct CaughtUp {
    pub from: u64,
    pub to: u64,
}

/// A live lease `--take-over` displaced.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct LeaseSeen {
    pub holder: String,
    pub host: String,
    pub expires: Option<DateTime<Utc>>,
}

/// Per-key timings the close records.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct ClosedKey {
    pub finished: bool,
    pub time_to_revoke_ms: Option<i64>,
    pub time_to_restore_ms: Option<i64>,
    pub time_to_contain_ms: Option<i64>,
    pub step_ms: BTreeMap<String, i64>,
    pub new_key_id: Option<String>,
    pub new_version: Option<crate::store::StoreVersion>,
}

/// `incident_closed`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Closed {
    /// `completed`, `failed` or `aborted`.
    pub outcome: Option<String>,
    pub dry_run: bool,
    pub total_ms: Option<i64>,
    pub fleet_time_to_contain_ms: Option<i64>,
    pub keys: BTreeMap<String, ClosedKey>,
}

/// `step_started`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct StepStarted {
    /// Added by the engine when it records the entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub title: Option<String>,
    pub checklist: Vec<String>,
    pub note: Option<String>,
}

/// `step_finished`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct StepFinished {
    /// Added by the engine when it records the entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `done` or `skipped`.
    pub status: Option<String>,
    pub duration_ms: Option<i64>,
    pub facts: Option<FactsSnapshot>,
}

impl StepFinished {
    pub fn skipped(&self) -> bool {
        self.status.as_deref() == Some("skipped")
    }
}

/// `step_failed`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct StepFailed {
    /// Added by the engine when it records the entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub action: Option<String>,
    pub error: Option<String>,
    /// The HTTP status, when the failure was an answer.
    pub status: Option<u64>,
    pub retryable: bool,
}

/// `plan`: a request (or a manual instruction) shown before it is approved.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Planned {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub action: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub manual: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanSummary>,
    /// The request as the operator saw it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rendered: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub instructions: Vec<String>,
}

impl Planned {
    /// A request shown before it is approved (or, in a drill, not sent).
    pub fn request<A: Serialize>(action: A, plan: &crate::plan::RequestPlan) -> Self {
        let recorded = serde_json::to_value(plan).unwrap_or(Value::Null);
        Self {
            key: None,
            action: serde_name(&action),
            manual: false,
            plan: PlanSummary::deserialize(&recorded).ok(),
            rendered: Some(plan.render()),
            instructions: Vec::new(),
        }
    }

    /// A step the operator does by hand, with its instructions.
    pub fn manual<A: Serialize>(action: A, instructions: &[String]) -> Self {
        Self {
            key: None,
            action: serde_name(&action),
            manual: true,
            plan: None,
            rendered: None,
            instructions: instructions.to_vec(),
        }
    }
}

/// What the one-line description shows of a recorded plan.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct PlanSummary {
    pub summary: Option<String>,
    pub access: Option<String>,
    /// The rest of the plan (method, address, headers, body without secrets), as recorded.
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
}

/// `not_sent`: a drill's write, shown and never sent.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct NotSent {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The request as it would have been sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_send: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub manual: bool,
    /// A manual step's instructions, as the operator would have been asked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_ask: Vec<String>,
}

impl NotSent {
    /// A drill's write: shown, recorded, never sent.
    pub fn request<A: Serialize>(action: A, plan: &crate::plan::RequestPlan) -> Self {
        Self {
            action: serde_name(&action),
            summary: Some(plan.summary.clone()),
            would_send: Some(plan.render()),
            ..Self::default()
        }
    }

    /// A drill's manual step: what the operator would have been asked.
    pub fn manual<A: Serialize>(action: A, instructions: &[String]) -> Self {
        Self {
            action: serde_name(&action),
            manual: true,
            would_ask: instructions.to_vec(),
            ..Self::default()
        }
    }
}

/// `operator_input`: an approval, a decline, a confirmation, an abort or a paste.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct OperatorInput {
    /// Added by the engine when it records the entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// `approve`, `decline`, `confirmed`, `retry`, `skip` or `abort` (none for a paste).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub manual: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pasted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The answer to "could customer data have been reached?" (the report step asks it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_data: Option<CustomerDataAnswer>,
    /// The operator's free-text note with that answer (scrubbed like every entry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl OperatorInput {
    pub fn is_confirmed(&self) -> bool {
        self.decision.as_deref() == Some("confirmed")
    }

    /// The operator's answer to the customer-data question, with an optional note.
    pub fn customer_data<A: Serialize>(
        action: A,
        answer: CustomerDataAnswer,
        note: Option<String>,
    ) -> Self {
        Self {
            action: serde_name(&action),
            customer_data: Some(answer),
            note,
            ..Self::default()
        }
    }
}

/// "Could customer data have been reached?", as the operator answered it. Never assumed
/// `no`: without an answer (`--yes`, no terminal) it is `unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerDataAnswer {
    /// Customer data could have been reached.
    Yes,
    /// It could not.
    No,
    /// The operator does not know, or nobody was asked.
    Unknown,
}

impl CustomerDataAnswer {
    /// The answer as the record and the report write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Yes => "yes",
            Self::No => "no",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for CustomerDataAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CustomerDataAnswer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "y" => Ok(Self::Yes),
            "no" | "n" => Ok(Self::No),
            "unknown" | "u" => Ok(Self::Unknown),
            _ => Err("expected yes, no or unknown".into()),
        }
    }
}

/// `request_sent`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct RequestSent {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub action: Option<String>,
    pub method: Option<String>,
    pub url: Option<String>,
}

impl RequestSent {
    pub fn of<A: Serialize>(action: A, plan: &crate::plan::RequestPlan) -> Self {
        Self {
            key: None,
            action: serde_name(&action),
            method: Some(plan.method.clone()),
            url: Some(plan.url.clone()),
        }
    }
}

/// `response`: what came back, summarized (never a secret value).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Response {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub action: Option<String>,
    pub ok: bool,
    /// A failed answer's HTTP status (`null` when the failure had none).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub status: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A located key's id (`null`: the provider does not know it).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub found: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
    /// How many keys matched a name or hint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ambiguous: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authenticated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub already: Option<bool>,
    /// A created replacement's id and hint (never its value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Counts only: the usage and audit events themselves are evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buckets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<u64>,
    /// Store answers: the version read, written or promoted; a read value is never kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noop: Option<bool>,
    /// A local file written (the inventory, a report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

fn count(n: usize) -> Option<u64> {
    Some(u64::try_from(n).unwrap_or(u64::MAX))
}

impl Response {
    fn answered<A: Serialize>(action: A, ok: bool) -> Self {
        Self {
            action: serde_name(&action),
            ok,
            ..Self::default()
        }
    }

    /// A failed answer: its HTTP status, if any, and the (already scrubbed) error.
    pub fn failed<A: Serialize>(action: A, status: Option<u64>, error: String) -> Self {
        Self {
            status: Some(status),
            error: Some(error),
            ..Self::answered(action, false)
        }
    }

    /// A provider's answer, summarized: ids, states, counts and hints, never a value.
    pub fn of_provider<A: Serialize>(action: A, out: &crate::provider::OpOutput) -> Self {
        use crate::provider::OpOutput;
        let r = Self::answered(action, true);
        match out {
            OpOutput::Located(Some(k)) => Self {
                found: Some(Some(k.id.clone())),
                state: serde_json::to_value(k.state).ok(),
                ..r
            },
            OpOutput::Located(None) => Self {
                found: Some(None),
                ..r
            },
            OpOutput::Ambiguous(c) => Self {
                found: Some(None),
                ambiguous: count(c.len()),
                ..r
            },
            OpOutput::Verified(p) => Self {
                authenticated: Some(p.alive()),
                probe: serde_json::to_value(p).ok(),
                ..r
            },
            OpOutput::Disabled => Self {
                disabled: Some(true),
                ..r
            },
            OpOutput::Revoked { already } => Self {
                revoked: Some(true),
                already: Some(*already),
                ..r
            },
            OpOutput::Created { id, value } => Self {
                created: Some(id.clone()),
                hint: Some(value.hint()),
                ..r
            },
            OpOutput::Usage(u) => Self {
                buckets: count(u.buckets.len()),
                pages: Some(u64::from(u.pages)),
                ..r
            },
            OpOutput::AuditEvents { events, pages } => Self {
                events: count(events.len()),
                pages: Some(u64::from(*pages)),
                ..r
            },
        }
    }

    /// A store's answer, summarized: a value read is noted, never recorded.
    pub fn of_store<A: Serialize>(action: A, out: &crate::store::StoreOutput) -> Self {
        use crate::store::StoreOutput;
        let r = Self::answered(action, true);
        let version = |v| serde_json::to_value(v).ok();
        match out {
            StoreOutput::Value { version: v, .. } => Self {
                version: version(v),
                value: Some("[read, held in memory]".into()),
                ..r
            },
            StoreOutput::Missing => Self {
                missing: Some(true),
                ..r
            },
            StoreOutput::Written { version: v } => Self {
                version: version(v),
                ..r
            },
            StoreOutput::Promoted { version: v, noop } => Self {
                promoted: version(v),
                noop: Some(*noop),
                ..r
            },
        }
    }

    /// A local file written.
    pub fn wrote<A: Serialize>(action: A, path: String) -> Self {
        Self {
            path: Some(path),
            ..Self::answered(action, true)
        }
    }
}

/// `action_done`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct ActionDone {
    /// Added by the engine when it records the entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub action: Option<String>,
    /// `done` or `skipped`.
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub facts: Option<FactsSnapshot>,
}

impl ActionDone {
    pub fn is_skipped(&self) -> bool {
        self.status.as_deref() == Some("skipped")
    }
}

/// `notification`: one notifier's delivery.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Notification {
    pub notifier: Option<String>,
    pub event: Option<String>,
    pub delivered: bool,
    pub error: Option<String>,
}

/// The engine's facts as an entry recorded them. The engine reads the whole snapshot back
/// on resume ([`FactsSnapshot::raw`]); the projection needs only its times and new key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FactsSnapshot {
    pub times: FactTimes,
    raw: Value,
}

impl FactsSnapshot {
    /// The snapshot as recorded, for the engine's own `Facts` type.
    pub fn raw(&self) -> &Value {
        &self.raw
    }
}

impl FactsSnapshot {
    /// A snapshot of the engine's facts, for an entry the engine writes.
    pub fn of<T: Serialize>(facts: &T) -> Self {
        let raw = serde_json::to_value(facts).unwrap_or(Value::Null);
        let times = FactTimes::deserialize(&raw).unwrap_or_default();
        Self { times, raw }
    }
}

impl Serialize for FactsSnapshot {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for FactsSnapshot {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(d)?;
        let times = FactTimes::deserialize(&raw).unwrap_or_default();
        Ok(Self { times, raw })
    }
}

/// What the projection reads from a facts snapshot.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct FactTimes {
    pub revoked_at: Option<DateTime<Utc>>,
    pub restored_at: Option<DateTime<Utc>>,
    pub contained_at: Option<DateTime<Utc>>,
    pub new_key_id: Option<String>,
    pub new_key_hint: Option<String>,
}

/// A field that may be recorded as `null` on purpose: absent is `None`, `null` is
/// `Some(None)`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(kind: &str, data: Value) -> Entry {
        Entry {
            seq: 1,
            ts: "2026-11-27T03:00:00Z".into(),
            kind: kind.into(),
            step: None,
            data,
            prev: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn a_kind_from_a_newer_release_is_kept_whole() {
        let e = entry("lease_renewed", json!({ "holder": "b" }));
        assert_eq!(
            Event::of(&e),
            Event::Unknown {
                kind: "lease_renewed".into(),
                data: json!({ "holder": "b" })
            }
        );
    }

    #[test]
    fn a_payload_that_does_not_fit_its_kind_is_unknown_not_dropped() {
        let e = entry(
            "step_failed",
            json!({ "key": "k", "status": "not a number" }),
        );
        assert!(matches!(Event::of(&e), Event::Unknown { .. }));
    }

    #[test]
    fn a_recorded_null_is_told_apart_from_an_absent_field() {
        let nothing = entry(
            "evidence",
            json!({ "key": "k", "action": "read_store", "current_version": null }),
        );
        let other = entry("evidence", json!({ "key": "k", "action": "read_store" }));
        let Event::Evidence(n) = Event::of(&nothing) else {
            panic!("evidence")
        };
        let Event::Evidence(o) = Event::of(&other) else {
            panic!("evidence")
        };
        assert_eq!(n.current_version, Some(None));
        assert_eq!(o.current_version, None);
        assert_eq!(Event::of(&nothing).key(), Some("k"));
        assert_eq!(Event::of(&nothing).action(), Some("read_store"));
    }

    /// The answers the fixture records do not hold are written as the engine wrote them
    /// before it had types (the `json!` literals are the old code's).
    #[test]
    fn rarer_answers_keep_their_recorded_shape() {
        use crate::provider::OpOutput;
        use crate::store::{StoreOutput, StoreVersion};
        let v = StoreVersion::Number(7);
        let cases = [
            (
                Response::of_store("read_store", &StoreOutput::Missing).data(),
                json!({ "action": "read_store", "ok": true, "missing": true }),
            ),
            (
                Response::of_store(
                    "promote",
                    &StoreOutput::Promoted {
                        version: v.clone(),
                        noop: false,
                    },
                )
                .data(),
                json!({ "action": "promote", "ok": true, "promoted": v, "noop": false }),
            ),
            (
                Response::of_provider("locate", &OpOutput::Ambiguous(Vec::new())).data(),
                json!({ "action": "locate", "ok": true, "found": null, "ambiguous": 0 }),
            ),
            (
                Response::of_provider("disable", &OpOutput::Disabled).data(),
                json!({ "action": "disable", "ok": true, "disabled": true }),
            ),
            (
                Response::failed("revoke", None, "boom".into()).data(),
                json!({ "action": "revoke", "ok": false, "status": null, "error": "boom" }),
            ),
            (
                Response::wrote("update_inventory", "inv.toml".into()).data(),
                json!({ "action": "update_inventory", "ok": true, "path": "inv.toml" }),
            ),
            (
                OperatorInput::pasted("create", Some("sk-...abcd".into())).data(),
                json!({ "action": "create", "pasted": true, "hint": "sk-...abcd" }),
            ),
            (
                OperatorInput::customer_data(
                    "write_report",
                    CustomerDataAnswer::Unknown,
                    Some("prompts held CRM notes".into()),
                )
                .via("console")
                .data(),
                json!({ "action": "write_report", "via": "console", "customer_data": "unknown", "note": "prompts held CRM notes" }),
            ),
        ];
        for (typed, recorded) in cases {
            assert_eq!(typed, recorded);
        }
    }

    /// The note a shared resume records, as the engine wrote it before it had a type (the
    /// `json!` literals are the old code's).
    #[test]
    fn the_shared_copy_note_keeps_its_shape() {
        let expires = DateTime::parse_from_rfc3339("2026-11-27T03:05:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let location = "s3://records/team";
        let taken_over = SharedNote {
            location: Some(location.into()),
            fetched_entries: Some(42),
            lease_taken_over: Some(LeaseSeen {
                holder: "ana@a pid 7 x1".into(),
                host: "a".into(),
                expires: Some(expires),
            }),
            lease_holder: Some("bo@b pid 9 y2".into()),
            ..SharedNote::default()
        };
        let mut old = serde_json::Map::new();
        old.insert("location".into(), json!(location));
        old.insert("fetched_entries".into(), json!(42u64));
        old.insert(
            "lease_taken_over".into(),
            json!({ "holder": "ana@a pid 7 x1", "host": "a", "expires": expires }),
        );
        old.insert("lease_holder".into(), json!("bo@b pid 9 y2"));
        let unreachable = SharedNote {
            location: Some(location.into()),
            caught_up: Some(CaughtUp { from: 10, to: 12 }),
            lease: Some("the store was unreachable: no lease taken; uploads queue".into()),
            ..SharedNote::default()
        };
        let mut old2 = serde_json::Map::new();
        old2.insert("location".into(), json!(location));
        old2.insert("caught_up".into(), json!({ "from": 10u64, "to": 12u64 }));
        old2.insert(
            "lease".into(),
            json!("the store was unreachable: no lease taken; uploads queue"),
        );
        for (note, old) in [(taken_over, old), (unreachable, old2)] {
            let resumed = Resumed {
                pending_keys: vec!["k".into()],
                dry_run: false,
                shared: Some(note),
            };
            let recorded =
                json!({ "pending_keys": ["k"], "dry_run": false, "shared": Value::Object(old) });
            assert_eq!(resumed.data(), recorded);
            assert_eq!(
                Event::of(&entry("incident_resumed", recorded)),
                Event::IncidentResumed(resumed)
            );
        }
    }

    #[test]
    fn facts_keep_their_raw_snapshot_and_read_their_times() {
        let e = entry(
            "action_done",
            json!({ "key": "k", "action": "revoke", "status": "done", "facts": { "revoked_at": "2026-11-27T03:00:01Z", "create_attempt": 2 } }),
        );
        let ev = Event::of(&e);
        let facts = ev.facts().expect("facts");
        assert!(facts.times.revoked_at.is_some());
        assert_eq!(facts.raw()["create_attempt"], 2);
    }
}
