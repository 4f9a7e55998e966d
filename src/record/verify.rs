//! `keyfire record verify`: walk the chain and name the first line that does not hold.

use std::path::Path;

use serde::Serialize;

use super::{Entry, GENESIS, HEAD_FILE, entry_hash};

#[derive(Debug, Clone, Serialize)]
pub struct BadLine {
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub path: String,
    pub entries: usize,
    pub first_bad: Option<BadLine>,
    pub last_hash: Option<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

#[derive(serde::Deserialize)]
struct Head {
    seq: u64,
    hash: String,
}

pub fn verify_file(path: &Path) -> VerifyReport {
    let mut report = VerifyReport {
        path: path.display().to_string(),
        entries: 0,
        first_bad: None,
        last_hash: None,
    };
    let fail = |report: &mut VerifyReport, line: usize, reason: String| {
        report.first_bad = Some(BadLine { line, reason });
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            fail(&mut report, 0, format!("cannot read the record: {e}"));
            return report;
        }
    };
    let Ok(text) = String::from_utf8(bytes) else {
        fail(&mut report, 0, "the record is not UTF-8 text".into());
        return report;
    };
    if text.is_empty() {
        fail(
            &mut report,
            1,
            "the record is empty (it always starts with incident_opened)".into(),
        );
        return report;
    }
    let mut prev = GENESIS.to_string();
    let mut hashes: Vec<String> = Vec::new();
    let mut last_seq = 0u64;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (i, raw) in lines.iter().enumerate() {
        let n = i + 1;
        if !raw.ends_with('\n') {
            fail(
                &mut report,
                n,
                "line is cut short (no newline at the end): the record was truncated".into(),
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
            fail(&mut report, n, "prev does not match the hash of the line before: a line was deleted, inserted or moved".into());
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
                "hash does not match the line's content: the line was edited".into(),
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
        hashes.push(entry.hash.clone());
        prev = entry.hash;
        last_seq = entry.seq;
        report.entries = n;
    }
    report.last_hash = Some(prev.clone());
    let head_path = path.with_file_name(HEAD_FILE);
    let head = std::fs::read_to_string(&head_path)
        .ok()
        .and_then(|t| serde_json::from_str::<Head>(&t).ok());
    match head {
        None => fail(
            &mut report,
            lines.len(),
            format!(
                "head file {} is missing or unreadable: cannot tell whether lines were cut from the end",
                head_path.display()
            ),
        ),
        Some(h) if h.seq > last_seq => fail(
            &mut report,
            lines.len(),
            format!(
                "the record ends at line {last_seq} but its head says {}: lines were cut from the end",
                h.seq
            ),
        ),
        // The head is written after its line and not fsynced, so after a crash it may lag
        // behind the record; the line it names must still be the one it hashed.
        Some(h) if h.seq == 0 || hashes.get(h.seq as usize - 1) != Some(&h.hash) => fail(
            &mut report,
            (h.seq as usize).max(1),
            format!(
                "line {} differs from the one the head recorded: the record was rewritten",
                h.seq
            ),
        ),
        Some(_) => {}
    }
    report
}
