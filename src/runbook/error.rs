//! Why an incident cannot open, resume or go on.

use crate::http::HttpError;
use crate::record::RecordError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("unknown key `{0}`: it is not in the inventory")]
    UnknownKey(String),
    #[error("no keys given")]
    NoKeys,
    #[error("zero-downtime rotation is impossible for key `{key}`: {reason}")]
    ZeroDowntimeRefused { key: String, reason: String },
    #[error("no incident `{0}` in the data directory")]
    UnknownIncident(String),
    #[error("incident {0} is already closed")]
    AlreadyClosed(String),
    #[error("incident {0} is being run by another keyfire process")]
    Busy(String),
    #[error("the record of incident {id} does not match this inventory: {reason}")]
    Mismatch { id: String, reason: String },
    #[error("cannot start the HTTP client: {0}")]
    Http(#[from] HttpError),
    #[error(
        "key `{key}` is already in open {kind} {incident} ({status}): finish it with `{resume}` before starting another"
    )]
    KeyInOpenIncident {
        key: String,
        incident: String,
        kind: crate::record::IncidentKind,
        status: String,
        resume: String,
    },
    #[error("cannot lock the incidents directory: {0}")]
    OpeningLock(std::io::Error),
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
                | Self::Busy(_)
                | Self::OpeningLock(_)
                | Self::Shared(_)
        )
    }
}
