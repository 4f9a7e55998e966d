//! The compromise runbook: its definition, the per-key state machine, and the `drive` loop
//! that the console and the headless CLI share (DESIGN section 4).

pub mod action;
mod actions;
mod campaign;
pub mod claim;
mod engine;
pub mod facts;
pub mod gate;
pub mod session;
pub mod spec;

pub use action::{Action, StepId};
pub use engine::{
    Engine, EngineError, IncidentParams, Outcome, Purpose, RecordAppender, Setup, drive,
    incidents_dir, new_incident_id,
};
pub use facts::Facts;
pub use gate::{
    ApprovalRequest, ApproveAll, CollectSink, Decision, FailureChoice, FailureView, Gate,
    ManualRequest, PasteRequest, Sink,
};
pub use session::{Order, Session, Status};
pub use spec::{Runbook, RunbookError};
