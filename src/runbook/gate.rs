//! The approval gate and the event sink: the only two things the console and the headless
//! CLI do differently when they drive an incident.

use std::future::Future;

use super::action::{Action, StepId};
use crate::plan::RequestPlan;
use crate::record::Entry;
use crate::record::event::CustomerDataAnswer;
use crate::secret::Secret;

/// A write the engine wants to send.
#[derive(Debug)]
pub struct ApprovalRequest<'a> {
    pub incident: &'a str,
    pub key: &'a str,
    pub step: StepId,
    pub action: Action,
    pub plan: &'a RequestPlan,
    /// For destructive plans: the text the operator must type to confirm (the key id).
    pub confirm_text: Option<&'a str>,
}

/// Something only the operator can do (a provider without the API).
#[derive(Debug)]
pub struct ManualRequest<'a> {
    pub incident: &'a str,
    pub key: &'a str,
    pub step: StepId,
    pub action: Action,
    pub instructions: &'a [String],
}

/// A replacement key the operator created by hand and pastes into a masked prompt.
#[derive(Debug)]
pub struct PasteRequest<'a> {
    pub incident: &'a str,
    pub key: &'a str,
    pub instructions: &'a [String],
}

#[derive(Debug)]
pub struct FailureView<'a> {
    pub key: &'a str,
    pub step: StepId,
    pub action: Action,
    pub error: &'a str,
    pub status: Option<u16>,
}

/// The report step's question: could customer data have been reached with this key?
#[derive(Debug)]
pub struct CustomerDataRequest<'a> {
    pub incident: &'a str,
    /// The key, or a campaign's batch label.
    pub key: &'a str,
    /// Asked in a drill too, marked as such.
    pub drill: bool,
    /// The key's scopes that can reach customer data, as the report judges them (`None`
    /// for a campaign's batch: each key's are in the report).
    pub reaching_scopes: Option<&'a [String]>,
}

impl CustomerDataRequest<'_> {
    /// The question as every front-end words it.
    pub fn question(&self) -> String {
        format!(
            "{}Could customer data have been reached with {}?",
            if self.drill { "[DRILL] " } else { "" },
            self.key
        )
    }

    /// What the inventory says, beside the question.
    pub fn scopes_note(&self) -> String {
        match self.reaching_scopes {
            None => "One answer for every key of this incident; the report lists each key's scopes.".into(),
            Some([]) => "Its scopes do not reach customer data directly; prompts sent with it may still hold some.".into(),
            Some(scopes) => format!("Its scopes {} can reach customer data.", scopes.join(", ")),
        }
    }
}

/// The operator's answer to [`CustomerDataRequest`], recorded as an `operator_input` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerDataReply {
    pub answer: CustomerDataAnswer,
    /// Free text; scrubbed before it is recorded.
    pub note: Option<String>,
    /// Who or what answered, for the record (`console`, `terminal`, `--customer-data`).
    pub via: String,
}

impl CustomerDataReply {
    /// No one answered: unknown, never "no".
    pub fn unknown(via: impl Into<String>) -> Self {
        Self {
            answer: CustomerDataAnswer::Unknown,
            note: None,
            via: via.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// `via` names who or what approved (`terminal`, `--yes`, `console`), for the record.
    Approve {
        via: String,
    },
    Decline {
        via: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureChoice {
    Retry,
    /// Skip the failed action; the reason is recorded.
    Skip {
        reason: String,
    },
    /// Stop this key (the incident stays open and resumable); other keys go on.
    LeaveFailed,
    /// Stop the whole incident; it stays resumable.
    Abort,
}

pub trait Gate: Send {
    fn approve(&mut self, req: &ApprovalRequest<'_>) -> impl Future<Output = Decision> + Send;
    fn confirm_manual(&mut self, req: &ManualRequest<'_>) -> impl Future<Output = Decision> + Send;
    /// `None` when the operator declines or no value could be read.
    fn paste_secret(
        &mut self,
        req: &PasteRequest<'_>,
    ) -> impl Future<Output = Option<Secret>> + Send;
    fn on_failure(
        &mut self,
        failure: &FailureView<'_>,
    ) -> impl Future<Output = FailureChoice> + Send;
    /// The report step's customer-data question. A gate that cannot ask answers
    /// `unknown` (never `no`).
    fn customer_data(
        &mut self,
        _req: &CustomerDataRequest<'_>,
    ) -> impl Future<Output = CustomerDataReply> + Send {
        std::future::ready(CustomerDataReply::unknown("not asked"))
    }
    /// Checked between actions: the operator asked to stop (Ctrl-C in the console). A call in
    /// flight is never cut off; the incident stops at the next boundary and stays resumable.
    fn abort_requested(&self) -> bool {
        false
    }
}

/// Receives every record entry as soon as it is durable.
pub trait Sink: Send {
    fn emit(&mut self, entry: &Entry);
}

/// A gate that approves everything and gives up on failure (tests, `--yes` drills).
#[derive(Debug, Default)]
pub struct ApproveAll {
    pub paste: Option<Secret>,
}

impl Gate for ApproveAll {
    async fn approve(&mut self, _req: &ApprovalRequest<'_>) -> Decision {
        Decision::Approve {
            via: "--yes".into(),
        }
    }
    async fn confirm_manual(&mut self, _req: &ManualRequest<'_>) -> Decision {
        Decision::Approve {
            via: "--yes".into(),
        }
    }
    async fn paste_secret(&mut self, _req: &PasteRequest<'_>) -> Option<Secret> {
        self.paste.take()
    }
    async fn on_failure(&mut self, _failure: &FailureView<'_>) -> FailureChoice {
        FailureChoice::LeaveFailed
    }
    async fn customer_data(&mut self, _req: &CustomerDataRequest<'_>) -> CustomerDataReply {
        CustomerDataReply::unknown("--yes")
    }
}

/// A sink that keeps every entry (tests).
#[derive(Debug, Default)]
#[cfg(feature = "testing")]
pub struct CollectSink(pub Vec<Entry>);

#[cfg(feature = "testing")]
impl Sink for CollectSink {
    fn emit(&mut self, entry: &Entry) {
        self.0.push(entry.clone());
    }
}
