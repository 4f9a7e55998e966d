//! What the operator asked for (actions), what happened (events), and what `App::update`
//! asks the loop to do (effects).

use chrono::{DateTime, Utc};

use crate::record::Entry;
use crate::runbook::{CustomerDataReply, Decision, FailureChoice};
use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Quit,
    Back,
    Help,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    FilterStart,
    CycleSort,
    ShowIncidents,
    /// The last scan's findings.
    ShowLeaks,
    /// Mark or unmark the finding under the cursor.
    ToggleMark,
    /// Mark every finding of a live inventory key (or clear the marks).
    MarkLive,
    StartIncident,
    StartDrill,
    ToggleOrder,
    Resume,
    ToggleAudit,
    /// `y`: approve the plan on screen (non-destructive writes), or confirm a dialog.
    Yes,
    /// `n`: decline.
    No,
    Retry,
    Skip,
    LeaveFailed,
    Abort,
    /// Ctrl-C: ask whether to abort the running incident.
    Interrupt,
    /// A mouse click on a row of the list on screen (its index among the visible rows).
    SelectRow(usize),
    /// Tab / Shift-Tab: the next or previous field of a form (the start dialog).
    NextField,
    PrevField,
    /// A character typed into the active text field.
    Char(char),
    Backspace,
    Submit,
}

/// A question from the engine, as the console shows it.
#[derive(Debug, Clone)]
pub enum PromptKind {
    Approve {
        key: String,
        step: String,
        action: String,
        summary: String,
        rendered: String,
        confirm_text: Option<String>,
    },
    Manual {
        key: String,
        step: String,
        action: String,
        instructions: Vec<String>,
    },
    Paste {
        key: String,
        instructions: Vec<String>,
    },
    Failure {
        key: String,
        step: String,
        action: String,
        error: String,
        status: Option<u16>,
    },
    /// The report step's "could customer data have been reached?" (yes / no / unknown, and
    /// an optional note).
    CustomerData {
        key: String,
        /// The question, marked [DRILL] in drills.
        question: String,
        /// What the key's scopes say.
        scopes_note: String,
    },
}

#[derive(Debug, Clone)]
pub struct Prompt {
    pub id: u64,
    pub kind: PromptKind,
}

/// Something that happened outside the app's own state.
#[derive(Debug, Clone)]
pub enum AppEvent {
    Tick(DateTime<Utc>),
    Entry(Box<Entry>),
    Prompt(Prompt),
    RunFailed(String),
    /// The team's shared copy of the record after the run (records shared to a location).
    Shared(crate::record::shared::ShareStatus),
    RunFinished,
}

/// What the app asks the loop to do; the loop performs it and reports back with events.
#[derive(Debug)]
pub enum Effect {
    Quit,
    ResumeRun {
        id: String,
    },
    /// Open an incident with every parameter given on the command line or in the start
    /// dialog (the same parameters either way).
    Open(Box<crate::runbook::IncidentParams>),
    Reply {
        prompt: u64,
        reply: Reply,
    },
    /// Stop the running incident at the next action boundary (never in the middle of a call).
    RequestAbort,
    RefreshIncidents,
    /// Read the last scan for the Leaks view.
    LoadLeaks,
    /// Read the inventory files again (a runbook step edited them).
    ReloadInventory,
}

#[derive(Debug)]
pub enum Reply {
    Decision(Decision),
    Paste(Option<Secret>),
    Failure(FailureChoice),
    CustomerData(CustomerDataReply),
}

impl PartialEq for Effect {
    fn eq(&self, other: &Self) -> bool {
        // Secrets are never compared; tests compare the effect's shape.
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// What the console starts with instead of the inventory screen.
#[derive(Debug, Clone)]
pub enum Opening {
    Start(Box<crate::runbook::IncidentParams>),
    Resume {
        id: String,
        keys: Vec<String>,
        dry_run: bool,
    },
}
