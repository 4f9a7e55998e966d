//! Appending to a record: one `write` and an `fsync` per entry, before the action proceeds.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::SecondsFormat;
use serde_json::Value;

use super::signing::{self, PublicKey, Signer};
use super::verify::{Head, HeadState, Rebuilt, VerifyOptions};
use super::{Entry, GENESIS, HEAD_FILE, RECORD_FILE, RecordError, entry_hash, files};
use crate::clock::Clock;
use crate::secret::Redactor;

pub struct RecordWriter {
    dir: PathBuf,
    file: File,
    /// Held for the writer's life: two processes never run (and append to) one incident.
    _lock: File,
    next_seq: u64,
    prev: String,
    redactor: Redactor,
    signer: Signer,
    /// The signing key the record declares for its latest lines; heads are signed only once
    /// the record declares this writer's key (a resume after the key changed declares it in
    /// `incident_resumed`).
    declared: Option<PublicKey>,
    /// Heads rebuilt after crashes, carried in every later head (and covered by its signature).
    rebuilt: Vec<Rebuilt>,
    /// A head to rebuild at the next durable point (found missing, empty or lagging).
    pending_rebuild: Option<Rebuilt>,
    /// Length of the record up to its last complete line.
    good_len: u64,
    /// Set by the first failed write: nothing more is appended.
    poisoned: Option<String>,
    /// The shared copy's uploader, when the record is shared (told after each durable line).
    uploader: Option<super::shared::Uploader>,
}

impl std::fmt::Debug for RecordWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordWriter")
            .field("dir", &self.dir)
            .field("next_seq", &self.next_seq)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecordError + '_ {
    move |source| RecordError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An exclusive lock on `dir/lock`, or `Busy` when another process holds it.
fn take_lock(dir: &Path) -> Result<File, RecordError> {
    let path = dir.join("lock");
    let file = files::open_or_create(&path).map_err(io(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(RecordError::Busy { path }),
        Err(std::fs::TryLockError::Error(e)) => Err(RecordError::Io { path, source: e }),
    }
}

/// A process killed in the middle of a large `write` can leave a partial last line. Every
/// complete line before it is intact (each was fsynced before the next action), so the
/// fragment is kept in `record.jsonl.torn.N` (never overwriting an earlier one) and the
/// record continues from the last full line.
fn set_aside_torn_line(path: &Path) -> Result<(), RecordError> {
    let bytes = files::read(path).map_err(io(path))?;
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let base = path.with_extension("jsonl.torn");
    let (torn, mut f) = files::create_numbered(&base).map_err(io(&base))?;
    f.write_all(&bytes[keep..]).map_err(io(&torn))?;
    f.sync_all().map_err(io(&torn))?;
    let f = files::open(path, |o| {
        o.write(true);
    })
    .map_err(io(path))?;
    f.set_len(keep as u64).map_err(io(path))?;
    f.sync_all().map_err(io(path))?;
    if let Some(dir) = path.parent() {
        files::sync_dir(dir).map_err(io(dir))?;
    }
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

/// The data directory an incident directory (`DATA/incidents/ID`) belongs to.
fn data_dir_of(dir: &Path) -> &Path {
    dir.parent().and_then(Path::parent).unwrap_or(dir)
}

impl RecordWriter {
    /// Create `dir` (0700) and a new, empty record in it (0600), signed with this machine's
    /// record signing key (created on first use, outside the data directory).
    pub fn create(dir: &Path, redactor: Redactor) -> Result<Self, RecordError> {
        let signer = Signer::load_or_create(data_dir_of(dir))?;
        Self::create_signed(dir, redactor, signer)
    }

    /// `create` with a given signing key.
    pub fn create_signed(
        dir: &Path,
        redactor: Redactor,
        signer: Signer,
    ) -> Result<Self, RecordError> {
        // Also makes the incident folder durable in `incidents/`, or the record would be
        // durable inside a folder that is not.
        files::private_dir(dir).map_err(io(dir))?;
        let lock = take_lock(dir)?;
        let path = dir.join(RECORD_FILE);
        let file = files::create_new(&path, true).map_err(io(&path))?;
        files::sync_dir(dir).map_err(io(dir))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            file,
            _lock: lock,
            next_seq: 1,
            prev: GENESIS.into(),
            redactor,
            signer,
            declared: None,
            rebuilt: Vec::new(),
            pending_rebuild: None,
            good_len: 0,
            poisoned: None,
            uploader: None,
        })
    }

    /// Reopen an existing record to continue it. The whole chain (and its signature) is
    /// checked first: an incident is never resumed on top of a damaged record. A head that
    /// is missing, empty or lagging after a crash is rebuilt at the next durable point.
    pub fn reopen(dir: &Path, redactor: Redactor) -> Result<(Self, Vec<Entry>), RecordError> {
        let signer = Signer::load_or_create(data_dir_of(dir))?;
        Self::reopen_signed(dir, redactor, signer)
    }

    /// `reopen`, also trusting `extra` keys (the team's, for a record fetched from the shared
    /// store that another machine signed).
    pub fn reopen_trusting(
        dir: &Path,
        redactor: Redactor,
        extra: &[PublicKey],
    ) -> Result<(Self, Vec<Entry>), RecordError> {
        let signer = Signer::load_or_create(data_dir_of(dir))?;
        Self::reopen_inner(dir, redactor, signer, extra)
    }

    /// `reopen` with a given signing key.
    pub fn reopen_signed(
        dir: &Path,
        redactor: Redactor,
        signer: Signer,
    ) -> Result<(Self, Vec<Entry>), RecordError> {
        Self::reopen_inner(dir, redactor, signer, &[])
    }

    fn reopen_inner(
        dir: &Path,
        redactor: Redactor,
        signer: Signer,
        extra: &[PublicKey],
    ) -> Result<(Self, Vec<Entry>), RecordError> {
        if std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(RecordError::Io {
                path: dir.to_path_buf(),
                source: files::symlink_refused(dir),
            });
        }
        let lock = take_lock(dir)?;
        let path = dir.join(RECORD_FILE);
        set_aside_torn_line(&path)?;
        let mut opts = VerifyOptions::local();
        for k in extra.iter().chain(std::iter::once(signer.public())) {
            if !opts.trusted.contains(k) {
                opts.trusted.push(k.clone());
            }
        }
        let report = super::verify::verify_with(&path, &opts);
        if let Some(bad) = report.first_bad.as_ref() {
            return Err(RecordError::Damaged {
                path,
                line: bad.line,
                reason: bad.reason.clone(),
            });
        }
        let entries = read_entries(&path)?;
        let file = files::open(&path, |o| {
            o.append(true);
        })
        .map_err(io(&path))?;
        let good_len = file.metadata().map_err(io(&path))?.len();
        let (next_seq, prev) = match entries.last() {
            Some(e) => (e.seq + 1, e.hash.clone()),
            None => (1, GENESIS.into()),
        };
        let declared = entries.iter().rev().find_map(|e| match e.kind.as_str() {
            "incident_opened" | "incident_resumed" => e
                .data
                .get("signing_key")
                .and_then(Value::as_str)
                .and_then(PublicKey::parse),
            _ => None,
        });
        let last = entries.last().map_or(0, |e| e.seq);
        let pending_rebuild = match &report.head {
            Some(HeadState::Missing) => Some("missing"),
            Some(HeadState::Empty) => Some("empty"),
            Some(HeadState::Lagging { .. }) => Some("lagging behind the record"),
            _ => None,
        }
        .map(|was| Rebuilt {
            seq: last,
            was: match &report.head {
                Some(HeadState::Lagging { head_seq }) => format!("{was} at line {head_seq}"),
                _ => was.to_string(),
            },
        });
        let rebuilt = report
            .head_file
            .as_ref()
            .map(|h| h.rebuilt.clone())
            .unwrap_or_default();
        Ok((
            Self {
                dir: dir.to_path_buf(),
                file,
                _lock: lock,
                next_seq,
                prev,
                redactor,
                signer,
                declared,
                rebuilt,
                pending_rebuild,
                good_len,
                poisoned: None,
                uploader: None,
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

    #[cfg(feature = "testing")]
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The public half of the key that signs this record's head.
    #[cfg(feature = "testing")]
    pub fn public_key(&self) -> &PublicKey {
        self.signer.public()
    }

    /// Share this record: the uploader is told after every durable line.
    pub fn share(&mut self, uploader: super::shared::Uploader) {
        self.uploader = Some(uploader);
    }

    /// How far the shared copy is, when the record is shared.
    pub fn share_status(&self) -> Option<super::shared::ShareStatus> {
        self.uploader.as_ref().map(super::shared::Uploader::status)
    }

    /// Give the uploader up to `within` to share what is due, then stop it (what is left
    /// stays queued in the incident folder).
    pub fn finish_sharing(
        &mut self,
        within: std::time::Duration,
    ) -> Option<super::shared::ShareStatus> {
        let mut up = self.uploader.take()?;
        Some(up.finish(within))
    }

    /// Why the writer stopped accepting entries, if it did.
    #[cfg(feature = "testing")]
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    /// Append one entry: scrubbed, chained, written with a single `write`, then `fsync`ed
    /// (durable kinds) and the head re-signed. After a failed write nothing more is
    /// appended: the file is cut back to its last complete line and every later call fails.
    pub fn append(
        &mut self,
        clock: &dyn Clock,
        kind: &str,
        step: Option<&str>,
        mut data: Value,
    ) -> Result<Entry, RecordError> {
        let path = self.path();
        if let Some(reason) = &self.poisoned {
            return Err(RecordError::Poisoned {
                path,
                reason: reason.clone(),
            });
        }
        // Another writer on the shared copy: go no further (the local record keeps what it
        // has; nothing in the store is replaced).
        if let Some(reason) = self.uploader.as_ref().and_then(|u| u.stopped()) {
            return Err(RecordError::Shared { reason });
        }
        scrub_value(&mut data, &self.redactor);
        // The first line declares the signing key; a resume declares it again when it is
        // not the one in force (a new machine, or a keyring emptied by a reboot).
        let declares = (kind == "incident_opened" && self.next_seq == 1)
            || (kind == "incident_resumed" && self.declared.as_ref() != Some(self.signer.public()));
        if declares && let Value::Object(map) = &mut data {
            map.insert(
                "signing_key".into(),
                Value::String(self.signer.public().to_text()),
            );
        }
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
        let mut line = serde_json::to_vec(&entry).map_err(|e| RecordError::Io {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        line.push(b'\n');
        // Entries that precede no external action (a response, evidence) become durable with
        // the next synced entry; every entry that precedes one is synced before it happens.
        let durable = durable(kind);
        let written = self.file.write_all(&line).and_then(|()| {
            if durable {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            return Err(self.poison(e, true));
        }
        self.good_len += line.len() as u64;
        self.next_seq += 1;
        self.prev = entry.hash.clone();
        if declares {
            self.declared = Some(self.signer.public().clone());
        }
        tracing::debug!(
            target: "keyfire::record",
            seq,
            kind,
            step,
            durable,
            "record append"
        );
        if durable && let Err(e) = self.write_head(seq, &entry.hash) {
            // The line is complete and synced; only its head is missing. Stop here all the
            // same: resume rebuilds the head from the verified chain.
            return Err(self.poison(e, false));
        }
        // Off the critical path: a signal to the uploader's thread, no I/O here.
        if durable && let Some(u) = &self.uploader {
            u.notify(seq);
        }
        Ok(entry)
    }

    /// Stop the writer after a failed write, cutting a partial line off the record.
    fn poison(&mut self, e: std::io::Error, cut: bool) -> RecordError {
        let path = self.path();
        let mut reason = e.to_string();
        if cut {
            let cut_result = files::open(&path, |o| {
                o.write(true);
            })
            .and_then(|f| {
                f.set_len(self.good_len)?;
                f.sync_all()
            });
            if let Err(c) = cut_result {
                reason = format!(
                    "{reason}; cutting the partial line off also failed ({c}): resume keeps it as a torn fragment"
                );
            }
        }
        tracing::warn!(target: "keyfire::record", path = %path.display(), %reason, "record writer stopped");
        self.poisoned = Some(reason.clone());
        RecordError::Poisoned { path, reason }
    }

    /// Replace the head with a signed one naming line `seq`: temp file, fsync, rename, fsync
    /// of the directory, so a crash leaves the previous head or this one, never a torn one.
    fn write_head(&mut self, seq: u64, hash: &str) -> std::io::Result<()> {
        // Until the record declares this writer's key (the resume line does), a head signed
        // with it would not verify: keep the previous head, which `verify` accepts as lagging.
        if self.declared.as_ref() != Some(self.signer.public()) {
            return Ok(());
        }
        if let Some(r) = self.pending_rebuild.take() {
            self.rebuilt.push(r);
        }
        let msg = signing::head_message(seq, hash, &self.rebuilt);
        let head = Head {
            seq,
            hash: hash.to_string(),
            public_key: Some(self.signer.public().to_text()),
            sig: Some(self.signer.sign_hex(&msg)),
            rebuilt: self.rebuilt.clone(),
        };
        let mut body = serde_json::to_vec(&head).map_err(std::io::Error::other)?;
        body.push(b'\n');
        files::write_atomic(&self.dir.join(HEAD_FILE), &body)
    }

    #[cfg(test)]
    pub(crate) fn replace_file_for_test(&mut self, file: File) {
        self.file = file;
    }
}

/// Kinds after which something happens outside keyfire (a request, an operator's decision,
/// the end of an action or of the incident): these are fsynced, and the head is signed,
/// before the caller goes on.
fn durable(kind: &str) -> bool {
    !matches!(
        kind,
        "plan" | "response" | "evidence" | "step_started" | "step_finished"
    )
}

/// Read every entry of a record without checking the chain (see `verify_file` for that).
pub fn read_entries(path: &Path) -> Result<Vec<Entry>, RecordError> {
    let bytes = files::read(path).map_err(io(path))?;
    let text = String::from_utf8(bytes).map_err(|_| RecordError::Damaged {
        path: path.to_path_buf(),
        line: 0,
        reason: "the record is not UTF-8 text".into(),
    })?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::record::verify::verify_with;

    fn signed_writer(dir: &Path) -> (RecordWriter, PublicKey) {
        let (signer, _) = Signer::generate().unwrap();
        let public = signer.public().clone();
        let w = RecordWriter::create_signed(dir, Redactor::new(), signer).unwrap();
        (w, public)
    }

    fn trusting(key: &PublicKey) -> VerifyOptions {
        VerifyOptions {
            trusted: vec![key.clone()],
            required: true,
        }
    }

    #[test]
    fn a_failed_append_poisons_the_writer_and_cuts_the_partial_line() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("inc");
        let (mut w, public) = signed_writer(&dir);
        let clock = SystemClock;
        w.append(&clock, "incident_opened", None, serde_json::json!({}))
            .unwrap();
        w.append(&clock, "step_failed", None, serde_json::json!({"n": 2}))
            .unwrap();
        let good = std::fs::read(w.path()).unwrap();
        // A full disk's substitute: the record's handle can no longer be written.
        let read_only = std::fs::File::open(w.path()).unwrap();
        w.replace_file_for_test(read_only);
        let err = w
            .append(&clock, "step_failed", None, serde_json::json!({"n": 3}))
            .unwrap_err();
        assert!(matches!(err, RecordError::Poisoned { .. }), "{err}");
        assert!(w.poisoned().is_some());
        // Nothing more is appended, even once writing would work again.
        let path = w.path();
        w.replace_file_for_test(
            files::open(&path, |o| {
                o.append(true);
            })
            .unwrap(),
        );
        assert!(matches!(
            w.append(&clock, "step_failed", None, serde_json::json!({"n": 4})),
            Err(RecordError::Poisoned { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), good);
        assert!(verify_with(&path, &trusting(&public)).ok());
    }

    #[test]
    fn a_partial_write_is_cut_back_to_the_last_good_line() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("inc");
        let (mut w, public) = signed_writer(&dir);
        let clock = SystemClock;
        w.append(&clock, "incident_opened", None, serde_json::json!({}))
            .unwrap();
        let good = std::fs::read(w.path()).unwrap();
        // Half a line reached the file before the failure.
        {
            let mut f = files::open(&w.path(), |o| {
                o.append(true);
            })
            .unwrap();
            f.write_all(b"{\"seq\":2,\"ts\":").unwrap();
        }
        let poisoned = w.poison(std::io::Error::other("disk full"), true);
        assert!(poisoned.to_string().contains("disk full"));
        assert_eq!(std::fs::read(w.path()).unwrap(), good);
        assert!(verify_with(&w.path(), &trusting(&public)).ok());
    }

    #[test]
    fn the_head_is_signed_and_replaced_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("inc");
        let (mut w, public) = signed_writer(&dir);
        let clock = SystemClock;
        let first = w
            .append(&clock, "incident_opened", None, serde_json::json!({}))
            .unwrap();
        assert_eq!(first.data["signing_key"], public.to_text());
        let head: Head =
            serde_json::from_slice(&std::fs::read(dir.join(HEAD_FILE)).unwrap()).unwrap();
        assert_eq!(head.seq, 1);
        let sig = head.sig.unwrap();
        assert!(public.verifies(&signing::head_message(1, &first.hash, &[]), &sig));
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains(".tmp")), "{names:?}");
    }
}
