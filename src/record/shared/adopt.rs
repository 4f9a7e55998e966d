//! Bringing a shared record into this data directory before it is resumed or read, and
//! comparing a local record with its shared copy.

use std::path::Path;

use super::{Fetched, SharedError, SharedStore};
use crate::record::{HEAD_FILE, RECORD_FILE, VerifyOptions, VerifyReport, files, verify_bytes};

/// What the local folder holds after [`adopt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adopted {
    /// No local record: the shared one was written here.
    Fetched { entries: u64 },
    /// The shared copy had lines the local record lacked (another machine went on): it
    /// replaced the local record, which was a prefix of it.
    CaughtUp { from: u64, to: u64 },
    /// The local record is the shared one or ahead of it (its queue has the rest).
    LocalCurrent,
    /// Nothing shared yet.
    NotShared,
}

/// Verify a fetched record with `opts`, naming the store in the report.
pub fn verify_fetched(
    store: &SharedStore,
    id: &str,
    f: &Fetched,
    opts: &VerifyOptions,
) -> VerifyReport {
    verify_bytes(
        &format!("{}/incidents/{id}", store.display()),
        &f.record,
        Ok(f.head.clone()),
        opts,
    )
}

/// Where two records first differ: `None` when one is a prefix of the other.
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    let mut la = a.split_inclusive(|c| *c == b'\n');
    let mut lb = b.split_inclusive(|c| *c == b'\n');
    let mut n = 0;
    loop {
        n += 1;
        match (la.next(), lb.next()) {
            (Some(x), Some(y)) if x == y => continue,
            (Some(_), Some(_)) => return Some(n),
            _ => return None,
        }
    }
}

pub fn line_count(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

/// Make `dir` hold incident `id` as far as the store has it, verifying the shared copy
/// first. A local record that is not a prefix of the shared one, nor the shared one a prefix
/// of it, is refused: two writers diverged.
pub fn adopt(
    store: &SharedStore,
    id: &str,
    dir: &Path,
    opts: &VerifyOptions,
) -> Result<Adopted, SharedError> {
    let fetched = match super::block_on(store.fetch(id)) {
        Ok(f) => f,
        Err(SharedError::NotFound { .. }) => return Ok(Adopted::NotShared),
        Err(e) => return Err(e),
    };
    let damaged = |reason: String| SharedError::Damaged {
        id: id.to_string(),
        location: store.display().to_string(),
        reason,
    };
    let report = verify_fetched(store, id, &fetched, opts);
    if let Some(bad) = &report.first_bad {
        return Err(damaged(format!(
            "the shared copy fails verification at line {}: {}",
            bad.line, bad.reason
        )));
    }
    let local_path = dir.join(RECORD_FILE);
    let io = |e: std::io::Error| damaged(format!("cannot write {}: {e}", dir.display()));
    let local = match files::read(&local_path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    let write_shared = |f: &Fetched| -> Result<(), SharedError> {
        files::private_dir(dir).map_err(io)?;
        files::write_atomic(&local_path, &f.record).map_err(io)?;
        if let Some(h) = &f.head {
            files::write_atomic(&dir.join(HEAD_FILE), h).map_err(io)?;
        }
        // The store has every line written here: nothing of it is queued.
        let q = super::upload::QueueFile {
            location: store.display().to_string(),
            shared: fetched.entries,
            head: fetched.head_seq.unwrap_or(0),
        };
        let body = serde_json::to_vec(&q).map_err(|e| damaged(e.to_string()))?;
        files::write_atomic(&dir.join(super::upload::QUEUE_FILE), &body).map_err(io)
    };
    match local {
        None => {
            write_shared(&fetched)?;
            Ok(Adopted::Fetched {
                entries: fetched.entries,
            })
        }
        Some(local) => {
            if let Some(line) = first_difference(&local, &fetched.record) {
                return Err(damaged(format!(
                    "the local record {} and the shared copy differ from line {line} on: two processes wrote this incident. Nothing was changed; compare them with `keyfire record verify {id} --against {}`",
                    local_path.display(),
                    store.display()
                )));
            }
            let here = line_count(&local);
            if fetched.entries > here {
                write_shared(&fetched)?;
                Ok(Adopted::CaughtUp {
                    from: here,
                    to: fetched.entries,
                })
            } else {
                Ok(Adopted::LocalCurrent)
            }
        }
    }
}

/// The entries of a record held as bytes (a fetched shared copy).
pub fn parse_entries(bytes: &[u8]) -> Result<Vec<crate::record::Entry>, String> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| "the record is not UTF-8 text".to_string())?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}
