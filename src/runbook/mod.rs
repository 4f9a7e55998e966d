//! The compromise runbook: its definition, the per-key state machine, and the `drive` loop
//! that the console and the headless CLI share (DESIGN section 4).
//!
//! The engine (`engine`) opens or resumes an incident and `drive` runs each key's session;
//! both call into the actions (`actions`, one module per step), which never call back into
//! them: what they all need (the incident's context and per-key state, the errors) lives in
//! `context` and `error`.

pub mod action;
mod actions;
mod campaign;
pub mod claim;
mod context;
mod drive;
mod engine;
mod error;
pub mod facts;
pub mod gate;
pub mod session;
pub mod spec;

// Backends mark their crash-test points through this path.
#[cfg(feature = "testing")]
pub use crate::paths::incidents_dir;
#[cfg(feature = "testing")]
pub use action::{Action, StepId};
pub use context::{IncidentParams, Purpose, Setup};
pub use drive::{Outcome, drive};
pub use engine::{Engine, RecordAppender};
#[cfg(feature = "testing")]
pub use engine::new_incident_id;
pub use error::EngineError;
#[cfg(feature = "testing")]
pub use facts::Facts;
pub use gate::{
    ApprovalRequest, CustomerDataReply, CustomerDataRequest, Decision, FailureChoice,
    FailureView, Gate, ManualRequest, PasteRequest, Sink,
};
#[cfg(feature = "testing")]
pub use gate::{ApproveAll, CollectSink};
pub use session::Order;
#[cfg(feature = "testing")]
pub use session::{Session, Status};
pub use spec::{Runbook, RunbookError};
