//! `keyfire record verify`: walk the chain, check the signed head, and name the first line
//! that does not hold.
//!
//! What is checked, in order:
//! 1. every line parses, its `seq` follows, its `prev` is the hash before it and its `hash`
//!    covers its content (an edited, moved or deleted line);
//! 2. the `head` file names a line of the record with that line's hash (lines cut from the
//!    end: the head is ahead of the record, or names a line that is not there);
//! 3. the head's Ed25519 signature, made with the signing key the record declares
//!    (`signing_key` in `incident_opened`, or in a later `incident_resumed` when the key
//!    changed), so a rewrite of the whole chain and its head is caught without the private
//!    key;
//! 4. every key the record declares is one this machine signed with, or the one given with
//!    `--public-key`, so a rewrite re-signed with a stranger's key is caught as well.
//!
//! A head that lags behind an open record (the process stopped before its next durable
//! point) or is missing (it stopped before the first head write) is not tampering: `verify`
//! says so, and `incident resume` rebuilds the head from the verified chain.

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use super::signing::Rebuilt;
use super::signing::{self, PublicKey};
use super::{Entry, GENESIS, HEAD_FILE, entry_hash, files};

#[derive(Debug, Clone, Serialize)]
pub struct BadLine {
    pub line: usize,
    pub reason: String,
}

/// How the head's signature stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signature {
    /// Signed, and the key is trusted (this machine's, or `--public-key`).
    Signed,
    /// Signed with the key the record declares; no trusted key to compare it with here.
    SignedUnanchored,
    /// A record from a keyfire that did not sign.
    Unsigned,
    /// No signed head covers the record yet (crash before the first head write).
    NoHead,
    /// Not reached: the chain failed first.
    NotChecked,
}

/// What the head file holds (older keyfire wrote only `seq` and `hash`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rebuilt: Vec<Rebuilt>,
}

/// The state of the head relative to the record (the writer rebuilds all but `Current`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadState {
    Current,
    Missing,
    Empty,
    Lagging { head_seq: u64 },
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub path: String,
    pub entries: usize,
    pub first_bad: Option<BadLine>,
    pub last_hash: Option<String>,
    pub signature: Signature,
    /// The key that signed the head, `ed25519:<hex>`.
    pub signed_by: Option<String>,
    pub head: Option<HeadState>,
    /// Things that are not tampering but that a reader should know (a rebuilt head, lines
    /// after the last signed head, an unsigned record).
    pub notes: Vec<String>,
    #[serde(skip)]
    pub(crate) head_file: Option<Head>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// Which public keys to trust.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    pub trusted: Vec<PublicKey>,
    /// `--public-key` was given: the record must be signed by one of `trusted`.
    pub required: bool,
}

impl VerifyOptions {
    /// The keys this machine has signed records with.
    pub fn local() -> Self {
        Self {
            trusted: signing::trusted_keys(),
            required: false,
        }
    }
}

/// Verify with this machine's trusted keys.
#[cfg(feature = "testing")]
pub fn verify_file(path: &Path) -> VerifyReport {
    verify_with(path, &VerifyOptions::local())
}

fn fail(report: &mut VerifyReport, line: usize, reason: impl Into<String>) {
    report.first_bad = Some(BadLine {
        line,
        reason: reason.into(),
    });
}

/// The signing key a line declares, if any (`Err` when it is there but not a key).
fn declared_key(entry: &Entry) -> Result<Option<PublicKey>, ()> {
    if entry.kind != "incident_opened" && entry.kind != "incident_resumed" {
        return Ok(None);
    }
    match entry.data.get("signing_key") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => v.as_str().and_then(PublicKey::parse).map(Some).ok_or(()),
    }
}

pub fn verify_with(path: &Path, opts: &VerifyOptions) -> VerifyReport {
    let head_path = path.with_file_name(HEAD_FILE);
    let head = match files::read(&head_path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!(
            "cannot read the head file {}: {e}",
            head_path.display()
        )),
    };
    match files::read(path) {
        Ok(bytes) => verify_bytes(&path.display().to_string(), &bytes, head, opts),
        Err(e) => {
            let mut report = VerifyReport::new(path.display().to_string());
            fail(&mut report, 0, format!("cannot read the record: {e}"));
            report
        }
    }
}

impl VerifyReport {
    fn new(path: String) -> Self {
        Self {
            path,
            entries: 0,
            first_bad: None,
            last_hash: None,
            signature: Signature::NotChecked,
            signed_by: None,
            head: None,
            notes: Vec::new(),
            head_file: None,
        }
    }
}

/// Verify a record and its head given as bytes (`Ok(None)`: no head file). The files are
/// read by [`verify_with`]; this is the part the fuzz target drives.
pub fn verify_bytes(
    name: &str,
    bytes: &[u8],
    head: Result<Option<Vec<u8>>, String>,
    opts: &VerifyOptions,
) -> VerifyReport {
    let mut report = VerifyReport::new(name.to_string());
    let Ok(text) = std::str::from_utf8(bytes) else {
        fail(&mut report, 0, "the record is not UTF-8 text");
        return report;
    };
    if text.is_empty() {
        fail(
            &mut report,
            1,
            "the record is empty (it always starts with incident_opened)",
        );
        return report;
    }
    let mut prev = GENESIS.to_string();
    let mut hashes: Vec<String> = Vec::new();
    // The key in force from each line on: (first seq, key).
    let mut keys: Vec<(u64, PublicKey)> = Vec::new();
    let mut last_kind = String::new();
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let n = i + 1;
        if !raw.ends_with('\n') {
            fail(
                &mut report,
                n,
                "line is cut short (no newline at the end): the record was truncated",
            );
            return report;
        }
        let line = raw.trim_end_matches('\n');
        let entry: Entry = match serde_json::from_str(line) {
            Ok(e) => e,
            Err(e) => {
                fail(&mut report, n, format!("not a record entry: {e}"));
                return report;
            }
        };
        if entry.seq != n as u64 {
            fail(
                &mut report,
                n,
                format!(
                    "sequence number {} where {n} was expected: a line was deleted, inserted or moved",
                    entry.seq
                ),
            );
            return report;
        }
        if entry.prev != prev {
            fail(
                &mut report,
                n,
                "prev does not match the hash of the line before: a line was deleted, inserted or moved",
            );
            return report;
        }
        let expected = entry_hash(
            entry.seq,
            &entry.ts,
            &entry.kind,
            entry.step.as_deref(),
            &entry.data,
            &entry.prev,
        );
        if entry.hash != expected {
            fail(
                &mut report,
                n,
                "hash does not match the line's content: the line was edited",
            );
            return report;
        }
        if n == 1 && entry.kind != "incident_opened" {
            fail(
                &mut report,
                n,
                format!("first line is `{}`, not incident_opened", entry.kind),
            );
            return report;
        }
        match declared_key(&entry) {
            Ok(Some(k)) => keys.push((entry.seq, k)),
            Ok(None) => {}
            Err(()) => {
                fail(
                    &mut report,
                    n,
                    "signing_key is not an Ed25519 public key (`ed25519:` and 64 hex digits)",
                );
                return report;
            }
        }
        hashes.push(entry.hash.clone());
        prev = entry.hash;
        last_kind = entry.kind;
        report.entries = n;
    }
    report.last_hash = Some(prev.clone());
    let last_seq = report.entries as u64;
    let closed = last_kind == "incident_closed";
    check_head(&mut report, head, opts, &hashes, &keys, last_seq, closed);
    report
}

#[allow(clippy::too_many_arguments)]
fn check_head(
    report: &mut VerifyReport,
    head: Result<Option<Vec<u8>>, String>,
    opts: &VerifyOptions,
    hashes: &[String],
    keys: &[(u64, PublicKey)],
    last_seq: u64,
    closed: bool,
) {
    let lines = report.entries;
    let head_bytes = match head {
        Ok(b) => b,
        Err(e) => {
            fail(report, lines, e);
            return;
        }
    };
    let head_text = head_bytes.map(|b| String::from_utf8_lossy(&b).trim().to_string());
    let head = match head_text.as_deref() {
        None | Some("") => {
            let state = if head_text.is_none() {
                HeadState::Missing
            } else {
                HeadState::Empty
            };
            if closed {
                fail(
                    report,
                    lines,
                    "the head file is missing or empty although the incident is closed: cannot tell whether lines were cut or rewritten",
                );
                return;
            }
            report.notes.push(format!(
                "the head file is {}: the process stopped before its first head write. Nothing is signed yet; `keyfire incident resume` rebuilds the head from this verified chain",
                if state == HeadState::Missing { "missing" } else { "empty" }
            ));
            report.head = Some(state);
            report.signature = Signature::NoHead;
            return;
        }
        Some(t) => match serde_json::from_str::<Head>(t) {
            Ok(h) => h,
            Err(e) => {
                fail(report, lines, format!("the head file is not a head: {e}"));
                return;
            }
        },
    };
    if head.seq > last_seq {
        fail(
            report,
            lines,
            format!(
                "the record ends at line {last_seq} but its head says {}: lines were cut from the end",
                head.seq
            ),
        );
        return;
    }
    let named = usize::try_from(head.seq)
        .ok()
        .and_then(|s| s.checked_sub(1))
        .and_then(|i| hashes.get(i));
    if named != Some(&head.hash) {
        fail(
            report,
            usize::try_from(head.seq)
                .unwrap_or(lines)
                .clamp(1, lines.max(1)),
            format!(
                "line {} differs from the one the head recorded: the record was rewritten",
                head.seq
            ),
        );
        return;
    }
    for r in &head.rebuilt {
        report.notes.push(format!(
            "the head was rebuilt at line {} after a crash (it was {}); the chain up to there verified before it was re-signed",
            r.seq, r.was
        ));
    }
    // The key in force at the head's line.
    let key = keys
        .iter()
        .rev()
        .find(|(from, _)| *from <= head.seq)
        .map(|(_, k)| k);
    match (key, head.sig.as_deref()) {
        (None, None) => {
            if opts.required {
                fail(
                    report,
                    1,
                    "the record is not signed (older keyfire), so it cannot be checked against --public-key",
                );
                return;
            }
            report.signature = Signature::Unsigned;
            report
                .notes
                .push("unsigned (older keyfire): only the hash chain is checked".into());
        }
        (None, Some(_)) => {
            fail(
                report,
                1,
                "the head is signed but the record declares no signing key: the first line was rewritten",
            );
            return;
        }
        (Some(_), None) => {
            fail(
                report,
                usize::try_from(head.seq).unwrap_or(lines),
                "the head carries no signature although the record is signed: the head was rewritten",
            );
            return;
        }
        (Some(k), Some(sig)) => {
            let msg = signing::head_message(head.seq, &head.hash, &head.rebuilt);
            if !k.verifies(&msg, sig) {
                fail(
                    report,
                    usize::try_from(head.seq).unwrap_or(lines),
                    "the head's signature does not verify with the record's signing key: the record or its head was rewritten",
                );
                return;
            }
            report.signed_by = Some(k.to_text());
            // Every key the record ever declared must be trusted, or a rewrite could declare
            // its own key at line 1.
            if let Some((from, stranger)) = keys.iter().find(|(_, k)| !opts.trusted.contains(k))
                && (opts.required || !opts.trusted.is_empty())
            {
                fail(
                    report,
                    usize::try_from(*from).unwrap_or(1),
                    format!(
                        "the record is signed by {}, which is not {}: the record was re-signed by someone else",
                        stranger.to_text(),
                        if opts.required {
                            "the key given with --public-key"
                        } else {
                            "a key this machine signs with (pass --public-key to check a record from elsewhere)"
                        }
                    ),
                );
                return;
            }
            report.signature = if opts.trusted.is_empty() {
                report.notes.push(
                    "signed, but checked only against the key the record declares: pass --public-key to anchor it"
                        .into(),
                );
                Signature::SignedUnanchored
            } else {
                Signature::Signed
            };
        }
    }
    if head.seq < last_seq {
        if closed {
            fail(
                report,
                lines,
                format!(
                    "the incident is closed at line {last_seq} but its signed head stops at line {}: lines were added after the close",
                    head.seq
                ),
            );
            return;
        }
        report.notes.push(format!(
            "lines {}..{last_seq} come after the last signed head (the process stopped before its next durable point); `keyfire incident resume` re-signs them",
            head.seq + 1
        ));
        report.head = Some(HeadState::Lagging { head_seq: head.seq });
    } else {
        report.head = Some(HeadState::Current);
    }
    report.head_file = Some(head);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::record::{RecordWriter, Signer};
    use proptest::prelude::*;

    /// A signed record of a few lines in a scratch directory, and the key that signed it.
    fn signed_record() -> (tempfile::TempDir, std::path::PathBuf, PublicKey) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("inc");
        let (signer, _) = Signer::generate().unwrap();
        let public = signer.public().clone();
        let mut w =
            RecordWriter::create_signed(&dir, crate::secret::Redactor::new(), signer).unwrap();
        let clock = SystemClock;
        w.append(
            &clock,
            "incident_opened",
            None,
            serde_json::json!({"keys": ["k"], "reason": "a/b \"q\" é", "n": 1.5}),
        )
        .unwrap();
        w.append(
            &clock,
            "step_started",
            Some("revoke"),
            serde_json::json!({"key": "k"}),
        )
        .unwrap();
        w.append(
            &clock,
            "incident_closed",
            None,
            serde_json::json!({"outcome": "completed"}),
        )
        .unwrap();
        let path = w.path();
        drop(w);
        (tmp, path, public)
    }

    fn opts(public: &PublicKey) -> VerifyOptions {
        VerifyOptions {
            trusted: vec![public.clone()],
            required: true,
        }
    }

    #[test]
    fn a_signed_record_verifies_with_its_key() {
        let (_tmp, path, public) = signed_record();
        let r = verify_with(&path, &opts(&public));
        assert!(r.ok(), "{:?}", r.first_bad);
        assert_eq!(r.signature, Signature::Signed);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any single-byte change to a signed record is rejected, and verify never panics.
        #[test]
        fn every_single_byte_change_of_a_signed_record_is_rejected(
            pos in any::<prop::sample::Index>(),
            replacement in any::<u8>(),
        ) {
            let (_tmp, path, public) = signed_record();
            let mut bytes = std::fs::read(&path).unwrap();
            let i = pos.index(bytes.len());
            prop_assume!(bytes[i] != replacement);
            bytes[i] = replacement;
            std::fs::write(&path, &bytes).unwrap();
            let r = verify_with(&path, &opts(&public));
            prop_assert!(!r.ok(), "byte {} changed to {:#x} passed", i, replacement);
        }

        /// Arbitrary bytes as record and head: verify answers, it never panics.
        #[test]
        fn verify_never_panics_on_arbitrary_files(
            record in prop::collection::vec(any::<u8>(), 0..512),
            head in prop::collection::vec(any::<u8>(), 0..256),
        ) {
            let tmp = tempfile::tempdir().unwrap();
            let path = tmp.path().join("record.jsonl");
            std::fs::write(&path, &record).unwrap();
            std::fs::write(tmp.path().join("head"), &head).unwrap();
            let _ = verify_with(&path, &VerifyOptions::default());
        }
    }
}
