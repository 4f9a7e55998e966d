//! Why an incident cannot open, resume or go on.

use crate::http::HttpError;
use crate::record::RecordError;

/// Why an incident could not open, resume or go on. [`EngineError::is_input_error`] tells
/// the operator's mistakes (exit 2) from failures while running (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The record could not be created, read, appended to or signed (disk, permissions,
    /// damage), or another keyfire process holds it.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A key named for the incident is not in the inventory (or its provider is not).
    #[error("unknown key `{0}`: it is not in the inventory")]
    UnknownKey(String),
    /// The incident was asked to open with no keys.
    #[error("no keys given")]
    NoKeys,
    /// Zero-downtime order was asked for a key that cannot have it; nothing was opened.
    #[error("zero-downtime rotation is impossible for key `{key}`: {reason}")]
    ZeroDowntimeRefused {
        /// The key's inventory id.
        key: String,
        /// Why: the provider allows one live key, or keyfire cannot create and store the
        /// replacement before revoking.
        reason: String,
    },
    /// No record of an incident with this id (or the id is not one keyfire makes).
    #[error("no incident `{0}` in the data directory")]
    UnknownIncident(String),
    /// The incident completed; there is nothing left to resume.
    #[error("incident {0} is already closed")]
    AlreadyClosed(String),
    /// The record cannot be resumed here: its opening is unreadable, a key it names is no
    /// longer in the inventory, or the shared location's `public_keys` are unusable.
    #[error("the record of incident {id} does not match this inventory: {reason}")]
    Mismatch {
        /// The incident id.
        id: String,
        /// What does not match.
        reason: String,
    },
    /// The HTTP client could not be built (its TLS setup failed).
    #[error("cannot start the HTTP client: {0}")]
    Http(#[from] HttpError),
    /// A key of a live incident or rotation is already claimed by another one that is still
    /// open; nothing was opened. Drills claim nothing and never meet this.
    #[error(
        "key `{key}` is already in open {kind} {incident} ({status}): finish it with `{resume}` before starting another"
    )]
    KeyInOpenIncident {
        /// The key's inventory id.
        key: String,
        /// The id of the open incident or rotation that holds it.
        incident: String,
        /// Whether the holder is an incident or a rotation.
        kind: crate::record::IncidentKind,
        /// The holder's status: `open`, or the outcome of its last close (`failed`,
        /// `aborted`).
        status: String,
        /// The command that finishes the holder (`keyfire incident resume ID` or `keyfire
        /// rotate --resume ID`).
        resume: String,
    },
    /// The data directory's `incidents.lock` could not be created or locked, so the keys
    /// could not be claimed; nothing was opened.
    #[error("cannot lock the incidents directory: {0}")]
    OpeningLock(std::io::Error),
    /// The shared record location failed: unreachable or refusing, a lease held by another
    /// process, or a copy there that conflicts with this one.
    #[error(transparent)]
    Shared(#[from] crate::record::shared::SharedError),
}

impl EngineError {
    /// Input and configuration problems (exit 2) as opposed to runtime failures.
    pub fn is_input_error(&self) -> bool {
        if let Self::Record(RecordError::Busy { .. }) = self {
            return false;
        }
        !matches!(
            self,
            Self::Record(_)
                | Self::Http(_)
                | Self::OpeningLock(_)
                | Self::Shared(_)
        )
    }
}
