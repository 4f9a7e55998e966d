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
    /// The incident (or drill, or rotation) id.
    pub incident: &'a str,
    /// The inventory id of the key the write is for.
    pub key: &'a str,
    /// The runbook step asking.
    pub step: StepId,
    /// The action within the step.
    pub action: Action,
    /// The exact request that will be sent once approved (no secret value in it).
    pub plan: &'a RequestPlan,
    /// For destructive plans: the text the operator must type to confirm (the key id).
    pub confirm_text: Option<&'a str>,
}

/// Something only the operator can do (a provider without the API).
#[derive(Debug)]
pub struct ManualRequest<'a> {
    /// The incident (or drill, or rotation) id.
    pub incident: &'a str,
    /// The inventory id of the key.
    pub key: &'a str,
    /// The runbook step asking.
    pub step: StepId,
    /// The action the operator is asked to do by hand.
    pub action: Action,
    /// What to do, line by line, in the provider's console.
    pub instructions: &'a [String],
}

/// A replacement key the operator created by hand and pastes into a masked prompt.
#[derive(Debug)]
pub struct PasteRequest<'a> {
    /// The incident (or rotation) id.
    pub incident: &'a str,
    /// The inventory id of the key being replaced.
    pub key: &'a str,
    /// How to create the replacement in the provider's console.
    pub instructions: &'a [String],
}

/// An action that failed, shown to the operator who decides what happens next.
#[derive(Debug)]
pub struct FailureView<'a> {
    /// The inventory id of the key.
    pub key: &'a str,
    /// The step that failed.
    pub step: StepId,
    /// The action that failed.
    pub action: Action,
    /// Why, already scrubbed of secrets.
    pub error: &'a str,
    /// The HTTP status the provider or store answered, when there was an answer.
    pub status: Option<u16>,
}

/// The report step's question: could customer data have been reached with this key?
#[derive(Debug)]
pub struct CustomerDataRequest<'a> {
    /// The incident's id.
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
    /// Yes, no or unknown.
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

/// The operator's answer to an approval or a manual step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Approve {
        /// Who or what approved (`terminal`, `--yes`, `console`), for the record.
        via: String,
    },
    /// Do not: the incident stops here and stays resumable.
    Decline {
        /// Who or what declined, for the record.
        via: String,
    },
}

/// What to do after an action failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureChoice {
    /// Send the action again.
    Retry,
    /// Skip the failed action; the reason is recorded.
    Skip {
        /// Why it is safe to skip, in the operator's words.
        reason: String,
    },
    /// Stop this key (the incident stays open and resumable); other keys go on.
    LeaveFailed,
    /// Stop the whole incident; it stays resumable.
    Abort,
}

/// How the operator takes part in an incident: approving writes, confirming manual steps,
/// pasting replacements and choosing what happens after a failure. The console and the
/// headless CLI each implement it; every answer is recorded.
pub trait Gate: Send {
    /// Asks to send one write (never asked for reads, nor in a drill, where writes are not
    /// sent). Approve sends it; decline aborts the incident, which stays resumable. For a
    /// destructive plan the front-end should make the operator type `confirm_text`.
    fn approve(&mut self, req: &ApprovalRequest<'_>) -> impl Future<Output = Decision> + Send;
    /// Asks the operator to do a step by hand (following `instructions`) and confirm it is
    /// done. Approve records it done; decline aborts the incident, which stays resumable.
    fn confirm_manual(&mut self, req: &ManualRequest<'_>) -> impl Future<Output = Decision> + Send;
    /// `None` when the operator declines or no value could be read.
    fn paste_secret(
        &mut self,
        req: &PasteRequest<'_>,
    ) -> impl Future<Output = Option<Secret>> + Send;
    /// Asks what to do after an action failed (the failure is already recorded): retry it,
    /// skip it with a reason, leave this key failed while the others go on, or abort.
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
    /// Called with each entry this process writes, in record order, once it is durable. The
    /// runbook waits for it, so it should return quickly.
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
