//! Tamper evidence: any edit, deletion, reordering or truncation of a record is detected.

use std::path::{Path, PathBuf};

use keyfire::record::{entry_hash, verify_file};
use keyfire::runbook::{ApproveAll, CollectSink, Engine, Order, drive};

use crate::common::{TestEnv, params, stderr, stdout};

/// A real record from a drill, and its directory.
fn recorded() -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut engine = Engine::open(
        env.setup(),
        params(&["support-llm"], true, Order::ContainFirst),
    )
    .unwrap();
    rt.block_on(drive(
        &mut engine,
        &mut ApproveAll::default(),
        &mut CollectSink::default(),
    ))
    .unwrap();
    let path = engine.record_dir().join("record.jsonl");
    (env, path)
}

/// Copy the record (and its head) to a scratch directory, rewrite its lines, verify.
fn tampered(
    original: &Path,
    change: impl FnOnce(&mut Vec<String>),
) -> keyfire::record::VerifyReport {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(original).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    change(&mut lines);
    let mut out = lines.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    let path = dir.path().join("record.jsonl");
    std::fs::write(&path, out).unwrap();
    std::fs::copy(original.with_file_name("head"), dir.path().join("head")).unwrap();
    verify_file(&path)
}

#[test]
fn an_untouched_record_verifies() {
    let (_env, path) = recorded();
    let report = verify_file(&path);
    assert!(report.ok(), "{report:?}");
    assert!(report.entries > 20);
}

#[test]
fn editing_any_line_is_detected_at_that_line() {
    let (_env, path) = recorded();
    let n = std::fs::read_to_string(&path).unwrap().lines().count();
    for i in 0..n {
        let report = tampered(&path, |lines| {
            // Change one character of the timestamp: the JSON stays valid.
            let line = &mut lines[i];
            let at = line.find("\"ts\":\"").unwrap() + 7;
            let old = line.as_bytes()[at];
            let new = if old == b'1' { "2" } else { "1" };
            line.replace_range(at..at + 1, new);
        });
        let bad = report
            .first_bad
            .unwrap_or_else(|| panic!("edit of line {} undetected", i + 1));
        assert_eq!(bad.line, i + 1, "{}", bad.reason);
        assert!(bad.reason.contains("edited"), "{}", bad.reason);
    }
}

#[test]
fn an_edit_with_a_recomputed_hash_breaks_the_next_link() {
    let (_env, path) = recorded();
    let report = tampered(&path, |lines| {
        let mut e: keyfire::record::Entry = serde_json::from_str(&lines[3]).unwrap();
        e.data["forged"] = serde_json::json!(true);
        e.hash = entry_hash(e.seq, &e.ts, &e.kind, e.step.as_deref(), &e.data, &e.prev);
        lines[3] = serde_json::to_string(&e).unwrap();
    });
    assert_eq!(report.first_bad.unwrap().line, 5);
}

#[test]
fn deleting_any_line_is_detected() {
    let (_env, path) = recorded();
    let n = std::fs::read_to_string(&path).unwrap().lines().count();
    for i in 0..n {
        let report = tampered(&path, |lines| {
            lines.remove(i);
        });
        assert!(
            report.first_bad.is_some(),
            "deleting line {} went unnoticed",
            i + 1
        );
    }
}

#[test]
fn swapping_two_lines_is_detected() {
    let (_env, path) = recorded();
    let report = tampered(&path, |lines| lines.swap(6, 7));
    let bad = report.first_bad.unwrap();
    assert_eq!(bad.line, 7);
    assert!(bad.reason.contains("moved"), "{}", bad.reason);
}

#[test]
fn truncation_is_detected() {
    let (_env, path) = recorded();
    // Whole lines cut from the end: the chain alone is valid, the head says otherwise.
    let report = tampered(&path, |lines| {
        lines.truncate(lines.len() - 3);
    });
    assert!(
        report
            .first_bad
            .unwrap()
            .reason
            .contains("cut from the end")
    );
    // A line cut in the middle.
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("record.jsonl");
    std::fs::write(&cut, &bytes[..bytes.len() - 40]).unwrap();
    std::fs::copy(path.with_file_name("head"), dir.path().join("head")).unwrap();
    assert!(
        verify_file(&cut)
            .first_bad
            .unwrap()
            .reason
            .contains("truncated")
    );
    // Everything gone.
    let report = tampered(&path, |lines| lines.clear());
    assert!(report.first_bad.is_some());
}

#[test]
fn record_verify_command_exits_1_and_names_the_line() {
    let (env, path) = recorded();
    let ok = env.run(&["record", "verify", path.to_str().unwrap()]);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    let id = path
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let by_id = env.run(&["record", "verify", &id]);
    assert_eq!(by_id.status.code(), Some(0));

    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(2, 3);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let bad = env.run(&["record", "verify", &id]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stdout(&bad).contains("TAMPERED"), "{}", stdout(&bad));
    assert!(stdout(&bad).contains("line 3"), "{}", stdout(&bad));
    let all = env.run(&["record", "verify"]);
    assert_eq!(all.status.code(), Some(1));
}

#[cfg(unix)]
#[test]
fn records_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let (_env, path) = recorded();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
}

/// An incident id that names nothing is the operator's typo, not a tampered record: `incident
/// show`, `report` and `record verify` stop with exit 2, saying where keyfire looked, and a
/// real incident still reads.
#[test]
fn an_unknown_incident_id_is_an_input_error_not_a_failed_verification() {
    let (env, path) = recorded();
    let real = path
        .parent()
        .and_then(|d| d.file_name())
        .unwrap()
        .to_string_lossy()
        .into_owned();
    for args in [
        &["incident", "show", real.as_str()][..],
        &["report", real.as_str()],
        &["record", "verify", real.as_str()],
    ] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
    for args in [
        &["incident", "show", "inc-20260101-000000-dead"][..],
        &["report", "inc-20260101-000000-dead"],
        &["record", "verify", "inc-20260101-000000-dead"],
    ] {
        let out = env.run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("no incident `inc-20260101-000000-dead` in") && err.contains("incidents"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("TAMPERED") && !stdout(&out).contains("TAMPERED"));
    }
}
