//! The approval gate and the event sink: the only two things the console and the headless
//! CLI do differently when they drive an incident.

use std::future::Future;

use super::action::{Action, StepId};
use crate::plan::RequestPlan;
use crate::record::Entry;
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
