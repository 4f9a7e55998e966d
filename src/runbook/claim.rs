//! A key is worked on by at most one open live incident or rotation. Opening one reads the
//! open ones from their records (the record state projection) and writes its own first line
//! while holding a lock on the incidents directory, so two keyfire processes opening at the
//! same moment cannot both see the key free. An incident that failed or was stopped stays open
//! (resumable) and keeps its keys until it completes. Drills write nothing and claim nothing.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::incidents::IncidentSummary;

/// Held while an incident checks its keys and writes its first line.
pub(super) struct OpeningLock {
    _file: File,
}

/// Take the data directory's opening lock (blocking: an opening takes milliseconds).
pub(super) fn opening_lock(data_dir: &Path) -> std::io::Result<OpeningLock> {
    // Beside the incidents directory, not in it: every entry there is an incident.
    std::fs::create_dir_all(data_dir)?;
    let path: PathBuf = data_dir.join("incidents.lock");
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let file = opts.open(&path)?;
    file.lock()?;
    Ok(OpeningLock { _file: file })
}

/// The open live incident or rotation (not a drill) that already works on one of `keys`.
pub fn open_holder(data_dir: &Path, keys: &[String]) -> Option<(String, IncidentSummary)> {
    crate::incidents::list(data_dir)
        .into_iter()
        .filter(|i| !i.drill && i.is_open())
        .find_map(|i| {
            let key = keys.iter().find(|k| i.keys.contains(k))?.clone();
            Some((key, i))
        })
}

/// How to finish the holder, for the refusal message.
pub fn resume_command(holder: &IncidentSummary) -> String {
    if holder.kind == crate::record::IncidentKind::Rotation {
        format!("keyfire rotate --resume {}", holder.id)
    } else {
        format!("keyfire incident resume {}", holder.id)
    }
}
