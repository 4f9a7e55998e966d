//! What each runbook action does, one module per step of the runbook, all over one call
//! sequence (`call`): plan, record the plan, gate it (a drill records it as not sent; a write
//! in a live incident waits for the operator), record the request, send, record the answer.
//!
//! | module       | holds                                                                   |
//! |--------------|-------------------------------------------------------------------------|
//! | `call`       | the call sequence and the record helpers every action uses              |
//! | `open`       | step 0: credentials, locate the key, read the store, usage snapshot     |
//! | `revoke`     | step 1: disable, revoke, prove the revocation                           |
//! | `redeploy`   | step 2: create, store, promote, read back, verify the replacement       |
//! | `audit`      | step 3: usage and audit log over the exposure window, the rules         |
//! | `report`     | step 4: report.md and report.json                                       |
//! | `reschedule` | step 5: the inventory's next rotation                                   |
//! | `recovery`   | lost and pending replacements, orphans, undoing a failed rotation       |

mod audit;
mod call;
mod open;
mod recovery;
mod redeploy;
mod report;
mod reschedule;
mod revoke;

pub(super) use report::render_reports;

use super::action::{Action, StepId};
use super::context::{Ctx, KeyRun};
use super::error::EngineError;
use super::gate::{Gate, Sink};
use crate::record::RecordError;

pub(super) enum ActionOutcome {
    Done,
    Skipped(String),
}

pub(super) enum Failure {
    Failed {
        error: String,
        status: Option<u16>,
        retryable: bool,
    },
    Aborted(String),
    Fatal(EngineError),
}

impl Failure {
    /// A failure with no service status to report (a check keyfire made itself, or a call
    /// that never got an answer).
    fn failed(error: String, retryable: bool) -> Self {
        Self::Failed {
            error,
            status: None,
            retryable,
        }
    }
}

impl From<RecordError> for Failure {
    fn from(e: RecordError) -> Self {
        Self::Fatal(EngineError::Record(e))
    }
}

type Res = Result<ActionOutcome, Failure>;

fn skipped(reason: impl Into<String>) -> Res {
    Ok(ActionOutcome::Skipped(reason.into()))
}

impl Ctx {
    pub(in crate::runbook) async fn run_action<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        action: Action,
        gate: &mut G,
        sink: &mut S,
    ) -> Res {
        match action {
            Action::ResolveCredentials => self.resolve_credentials(run, step, sink).await,
            Action::Locate => self.locate(run, step, sink).await,
            Action::ReadStore => self.read_store(run, step, sink).await,
            Action::SnapshotUsage => self.snapshot_usage(run, step, sink).await,
            Action::Disable => self.disable(run, step, gate, sink).await,
            Action::Revoke => self.revoke(run, step, gate, sink).await,
            Action::ProveRevoked => self.prove_revoked(run, step, sink).await,
            Action::Create => self.create(run, step, gate, sink).await,
            Action::StoreWrite => self.store_write(run, step, gate, sink).await,
            Action::StoreReadBack => self.store_read_back(run, step, sink).await,
            Action::VerifyNew => self.verify_new(run, step, gate, sink).await,
            Action::Promote => self.promote(run, step, gate, sink).await,
            Action::FetchUsage => self.fetch_usage(run, step, sink).await,
            Action::EvaluateRules => self.evaluate_rules(run, step, sink),
            Action::WriteReport => self.write_report(run, step, gate, sink).await,
            Action::UpdateInventory => self.update_inventory(run, step, gate, sink).await,
        }
    }
}

/// Failure-test hook: when `KEYFIRE_FAILPOINT` is `fail:NAME`, the action NAME fails before
/// sending anything, as if its service had refused it. `testing` feature only.
#[cfg(feature = "testing")]
fn injected_failure(name: &str) -> Result<(), Failure> {
    if std::env::var("KEYFIRE_FAILPOINT").is_ok_and(|v| v.strip_prefix("fail:") == Some(name)) {
        return Err(Failure::Failed {
            error: format!("{name}: failure injected by KEYFIRE_FAILPOINT"),
            status: None,
            retryable: false,
        });
    }
    Ok(())
}

#[cfg(not(feature = "testing"))]
#[inline(always)]
fn injected_failure(_name: &str) -> Result<(), Failure> {
    Ok(())
}
