//! The incident record: append-only, hash-chained JSON Lines (DESIGN section 5).
//!
//! Each line is `{seq, ts, kind, step, data, prev, hash}`; `hash` is the hex SHA-256 of the
//! line's canonical form (keys sorted, no whitespace) without `hash`, and `prev` is the hash of
//! the line before (64 zeros for the first). A `head` file beside the record holds the last
//! sequence number and hash, signed with Ed25519 (see [`signing`]), so that lines cut from
//! the end and a rewrite of the whole chain are detected too.

mod canonical;
pub mod event;
/// The private-file helpers, at their old path (they live in `crate::fsutil`).
pub(crate) use crate::fsutil as files;
pub mod shared;
pub mod signing;
mod state;
mod verify;
mod writer;

pub use canonical::canonical_json;
pub use event::Event;
pub use signing::{PublicKey, Signer, SigningError};
pub use state::{IncidentKind, IncidentState, KeyProgress, Proof, Status, StepState};
#[cfg(feature = "testing")]
pub use state::{
    AuditSummary, CustomerDataGiven, Replacement, StepFailure, StepProgress, Unavailable,
};
pub use verify::{Head, Signature, VerifyOptions, VerifyReport, verify_bytes, verify_with};
#[cfg(feature = "testing")]
pub use verify::{BadLine, HeadState, Rebuilt, verify_file};
pub use writer::{RecordWriter, read_entries};

use serde::{Deserialize, Serialize};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
pub const RECORD_FILE: &str = "record.jsonl";
pub const HEAD_FILE: &str = "head";
pub const SCHEMA: u32 = 1;

/// One record line. Unknown fields are refused: they would not be covered by the hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Line number in the record, counted from 1 with no gaps.
    pub seq: u64,
    /// When keyfire wrote the line: RFC 3339 in UTC with milliseconds
    /// (`2026-11-27T19:04:26.025Z`).
    pub ts: String,
    /// What happened (`incident_opened`, `plan`, `response`, ...); read it through
    /// [`Event::of`] rather than by string.
    pub kind: String,
    /// The runbook step the line belongs to (`open`, `revoke`, `redeploy`, `audit`, `report`,
    /// `reschedule`); `None` for incident-level lines (opening, closing, notifications).
    pub step: Option<String>,
    /// The payload of this kind, as JSON; [`Event::of`] gives it typed. Never holds a secret
    /// value.
    pub data: serde_json::Value,
    /// Hex SHA-256 of the line before; 64 zeros on the first line.
    pub prev: String,
    /// Hex SHA-256 of this line's canonical JSON (keys sorted, no whitespace) without `hash`.
    pub hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot write the incident record {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("incident record {path} is damaged at line {line}: {reason}")]
    Damaged {
        path: std::path::PathBuf,
        line: usize,
        reason: String,
    },
    #[error(
        "the incident record {path} stopped accepting entries after a failed write ({reason}); nothing more was appended. Fix the cause (disk full?) and run `keyfire incident resume`"
    )]
    Poisoned {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error("{reason}")]
    Shared { reason: String },
    #[error(
        "another keyfire process is running this incident (it holds {path}); let it finish or stop it first"
    )]
    Busy { path: std::path::PathBuf },
}

/// Hash of an entry's canonical form without `hash`.
pub fn entry_hash(
    seq: u64,
    ts: &str,
    kind: &str,
    step: Option<&str>,
    data: &serde_json::Value,
    prev: &str,
) -> String {
    use sha2::{Digest, Sha256};
    let value = serde_json::json!({
        "seq": seq,
        "ts": ts,
        "kind": kind,
        "step": step,
        "data": data,
        "prev": prev,
    });
    hex::encode(Sha256::digest(canonical_json(&value).as_bytes()))
}
