//! Appending to a record: one `write` and an `fsync` per entry, before the action proceeds.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::SecondsFormat;
use serde_json::Value;

use super::{Entry, GENESIS, HEAD_FILE, RECORD_FILE, RecordError, entry_hash};
use crate::clock::Clock;
use crate::secret::Redactor;

pub struct RecordWriter {
    dir: PathBuf,
    file: File,
    head: File,
    /// Held for the writer's life: two processes never run (and append to) one incident.
    _lock: File,
    next_seq: u64,
    prev: String,
    redactor: Redactor,
}

impl std::fmt::Debug for RecordWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordWriter")
            .field("dir", &self.dir)
            .field("next_seq", &self.next_seq)
            .finish()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecordError + '_ {
    move |source| RecordError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(unix)]
fn private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)
}

fn open_append(path: &Path, create_new: bool) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.append(true);
    if create_new {
        opts.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// An exclusive lock on `dir/lock`, or `Busy` when another process holds it.
fn take_lock(dir: &Path) -> Result<File, RecordError> {
    let path = dir.join("lock");
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts.open(&path).map_err(io(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(RecordError::Busy { path }),
        Err(std::fs::TryLockError::Error(e)) => Err(RecordError::Io { path, source: e }),
    }
}

/// A process killed in the middle of a large `write` can leave a partial last line. Every
/// complete line before it is intact (each was fsynced before the next action), so the
/// fragment is moved to `record.jsonl.torn` and the record continues from the last full line.
fn set_aside_torn_line(path: &Path) -> Result<(), RecordError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let torn = path.with_extension("jsonl.torn");
    std::fs::write(&torn, &bytes[keep..]).map_err(io(&torn))?;
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io(path))?;
    f.set_len(keep as u64).map_err(io(path))?;
    f.sync_all().map_err(io(path))?;
    Ok(())
}

/// Scrub every string in a JSON value of known secrets and key-shaped tokens.
fn scrub_value(v: &mut Value, r: &Redactor) {
    match v {
        Value::String(s) => {
            let clean = r.scrub(s);
            if clean != *s {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| scrub_value(i, r)),
        Value::Object(map) => map.values_mut().for_each(|i| scrub_value(i, r)),
        _ => {}
    }
}

impl RecordWriter {
    /// Create `dir` (0700) and a new, empty record in it (0600).
    pub fn create(dir: &Path, redactor: Redactor) -> Result<Self, RecordError> {
        private_dir(dir).map_err(io(dir))?;
        let lock = take_lock(dir)?;
        let path = dir.join(RECORD_FILE);
        let file = open_append(&path, true).map_err(io(&path))?;
        let head = open_head(dir).map_err(io(dir))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            file,
            head,
            _lock: lock,
            next_seq: 1,
            prev: GENESIS.into(),
            redactor,
        })
    }

    /// Reopen an existing record to continue it. The whole chain is checked first: an
    /// incident is never resumed on top of a damaged record.
    pub fn reopen(dir: &Path, redactor: Redactor) -> Result<(Self, Vec<Entry>), RecordError> {
        let lock = take_lock(dir)?;
        let path = dir.join(RECORD_FILE);
        set_aside_torn_line(&path)?;
        let report = super::verify_file(&path);
        if let Some(bad) = report.first_bad.as_ref() {
            return Err(RecordError::Damaged {
                path,
                line: bad.line,
                reason: bad.reason.clone(),
            });
        }
        let entries = read_entries(&path)?;
        let file = open_append(&path, false).map_err(io(&path))?;
        let head = open_head(dir).map_err(io(dir))?;
        let (next_seq, prev) = match entries.last() {
            Some(e) => (e.seq + 1, e.hash.clone()),
            None => (1, GENESIS.into()),
        };
        Ok((
            Self {
                dir: dir.to_path_buf(),
                file,
                head,
                _lock: lock,
                next_seq,
                prev,
                redactor,
            },
            entries,
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(RECORD_FILE)
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Append one entry: scrubbed, chained, written with a single `write`, then `fsync`ed.
    pub fn append(
        &mut self,
        clock: &dyn Clock,
        kind: &str,
        step: Option<&str>,
        mut data: Value,
    ) -> Result<Entry, RecordError> {
        scrub_value(&mut data, &self.redactor);
        let ts = clock.now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let seq = self.next_seq;
        let hash = entry_hash(seq, &ts, kind, step, &data, &self.prev);
        let entry = Entry {
            seq,
            ts,
            kind: kind.to_string(),
            step: step.map(str::to_string),
            data,
            prev: self.prev.clone(),
            hash,
        };
        let path = self.path();
        let mut line = serde_json::to_vec(&entry).map_err(|e| RecordError::Io {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io(&path))?;
        // Entries that precede no external action (a response, evidence) become durable with
        // the next synced entry; every entry that precedes one is synced before it happens.
        if durable(kind) {
            self.file.sync_data().map_err(io(&path))?;
        }
        self.write_head(seq, &entry.hash)?;
        self.next_seq += 1;
        self.prev = entry.hash.clone();
        Ok(entry)
    }

    /// Overwrite the head in place: a fixed-size JSON object padded with spaces, one `pwrite`.
    /// It is not fsynced: the record line it points to already is, a killed process loses
    /// nothing from the page cache, and `verify` accepts a head that lags behind the record
    /// (only a head *ahead* of the record means lines were cut).
    fn write_head(&self, seq: u64, hash: &str) -> Result<(), RecordError> {
        let head = self.dir.join(HEAD_FILE);
        let body = serde_json::json!({ "seq": seq, "hash": hash }).to_string();
        let padded = format!("{body:<HEAD_SIZE$}\n");
        write_at_start(&self.head, padded.as_bytes()).map_err(io(&head))?;
        Ok(())
    }
}

/// Kinds after which something happens outside keyfire (a request, an operator's decision,
/// the end of an action or of the incident): these are fsynced before the caller goes on.
fn durable(kind: &str) -> bool {
    !matches!(
        kind,
        "plan" | "response" | "evidence" | "step_started" | "step_finished"
    )
}

/// Every head is this long (plus a newline), so each write replaces the whole file.
const HEAD_SIZE: usize = 127;

fn open_head(dir: &Path) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(dir.join(HEAD_FILE))
}

#[cfg(unix)]
fn write_at_start(f: &File, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    f.write_all_at(bytes, 0)
}

#[cfg(not(unix))]
fn write_at_start(mut f: &File, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(0))?;
    f.write_all(bytes)
}

/// Read every entry of a record without checking the chain (see `verify_file` for that).
pub fn read_entries(path: &Path) -> Result<Vec<Entry>, RecordError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let entry: Entry = serde_json::from_str(line).map_err(|e| RecordError::Damaged {
            path: path.to_path_buf(),
            line: i + 1,
            reason: e.to_string(),
        })?;
        out.push(entry);
    }
    Ok(out)
}
