//! Every reader of a record goes through one projection, so they cannot disagree: the
//! report, `incident list|show` and the console agree on status and timings, for records
//! written by the previous release (fixtures, rendered byte for byte as that release did)
//! and for every record a [`TestEnv`](crate::common::TestEnv) leaves behind.

use std::path::{Path, PathBuf};

use keyfire::record::{IncidentState, read_entries};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/records")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// The incident directories under a data directory.
fn incident_dirs(data_dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(data_dir.join("incidents"))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// What each front-end says about one record: the projection, the report, the summary
/// `incident list|show` prints, and the console's run view.
pub fn assert_views_agree(record: &Path) {
    let Ok(entries) = read_entries(record) else {
        return; // A test that damaged its record on purpose; verify tests cover it.
    };
    let Some(state) = IncidentState::fold(&entries) else {
        return;
    };
    let id = record
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let where_ = record.display();
    let report = keyfire::report::build(&id, &entries).expect("report");
    let summary = keyfire::incidents::summarize(&id, record, &entries).expect("summary");
    let status = state.status.as_str();
    assert_eq!(report.incident.status, status, "report status, {where_}");
    assert_eq!(summary.status, status, "summary status, {where_}");
    assert_eq!(report.incident.kind, summary.kind, "kind, {where_}");
    assert_eq!(
        summary.total_ms,
        state.closed.as_ref().and(state.total_ms),
        "summary total, {where_}"
    );
    assert_eq!(report.incident.total_ms, state.total_ms, "{where_}");
    assert_eq!(
        report.incident.fleet_time_to_contain_ms, state.fleet_time_to_contain_ms,
        "{where_}"
    );
    // The console, fed the same entries as it is during a run.
    let mut screen = keyfire::tui::screens::incident::IncidentScreen::default();
    screen.start(
        state.keys.clone(),
        state.dry_run,
        keyfire::runbook::Order::ContainFirst,
    );
    for e in &entries {
        screen.on_entry(e);
    }
    let run = screen.run.as_ref().expect("run view");
    let shown = run.outcome.as_deref().unwrap_or("open");
    let reported = if state.closed.is_some() {
        state.outcome.as_deref().unwrap_or("failed")
    } else {
        "open"
    };
    assert_eq!(shown, reported, "console outcome, {where_}");
    // The outage the console shows starts at the first revocation the report states.
    let first_revoked = report
        .keys
        .iter()
        .filter_map(|k| k.evidence.revoked_at.as_deref())
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .min();
    if !state.dry_run {
        assert_eq!(
            run.revoked_at, first_revoked,
            "console revocation, {where_}"
        );
    }
    for k in &report.keys {
        let p = &state.per_key[&k.key];
        if state.closed.is_some() {
            assert_eq!(
                k.timings.time_to_revoke_ms, p.time_to_revoke_ms,
                "time to revoke of {}, {where_}",
                k.key
            );
            assert_eq!(k.timings.time_to_restore_ms, p.time_to_restore_ms);
            assert_eq!(k.timings.time_to_contain_ms, p.time_to_contain_ms);
            // Each step's duration is the one its `step_finished` line recorded.
            for (step, ms) in &k.timings.step_ms {
                if let Some(s) = p.step(step) {
                    assert_eq!(s.duration_ms, Some(*ms), "{} {step}, {where_}", k.key);
                }
            }
        }
    }
}

/// Every record under a data directory.
pub fn assert_all_views_agree(data_dir: &Path) {
    for dir in incident_dirs(data_dir) {
        let record = dir.join(keyfire::record::RECORD_FILE);
        if record.exists() {
            assert_views_agree(&record);
        }
    }
}

fn keyfire(data: &Path, cfg: &Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyfire"))
        .args(args)
        .env("KEYFIRE_DATA_DIR", data)
        .env("KEYFIRE_SIGNING_KEY_FILE", cfg.join("record-signing.key"))
        .env_remove("KEYFIRE_INVENTORY")
        .env_remove("KEYFIRE_CONFIG")
        .env_remove("KEYFIRE_RECORDS")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run keyfire");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Records written by the previous release (a live incident, and a 21-key drill that
/// failed on purpose) verify, and every command renders them exactly as that release did.
#[test]
fn records_of_the_previous_release_verify_and_render_byte_for_byte() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let cfg = tmp.path().join("cfg");
    copy_dir(&fixtures().join("data"), &data);
    std::fs::create_dir_all(&cfg).expect("cfg");
    // Trust the key that signed the fixtures (its public half only).
    std::fs::copy(
        fixtures().join("record-signing.key.pub"),
        cfg.join("record-signing.key.pub"),
    )
    .expect("pub");
    let expected = fixtures().join("expected");
    let data_text = data.display().to_string();
    let check = |args: &[&str], file: &str| {
        let (code, out) = keyfire(&data, &cfg, args);
        assert_eq!(code, 0, "keyfire {args:?}");
        let want = std::fs::read_to_string(expected.join(file))
            .expect("expected output")
            .replace("{DATA}", &data_text);
        if out != want {
            let line = out
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(out.lines().count().min(want.lines().count()));
            panic!(
                "keyfire {args:?} differs from the previous release at line {}:\n  now:  {:?}\n  then: {:?}",
                line + 1,
                out.lines().nth(line),
                want.lines().nth(line)
            );
        }
    };
    check(&["incident", "list"], "list.txt");
    check(&["incident", "list", "--json"], "list.json");
    for id in ["inc-20261127-190425-6f33", "drill-20261127-190425-348e"] {
        let (code, out) = keyfire(&data, &cfg, &["record", "verify", id]);
        assert_eq!(code, 0, "record verify {id}: {out}");
        check(
            &["report", id, "--format", "md"],
            &format!("{id}.report.md"),
        );
        check(
            &["report", id, "--format", "json"],
            &format!("{id}.report.json"),
        );
        check(&["incident", "show", id], &format!("{id}.show.txt"));
    }
    let id = "inc-20261127-190425-6f33";
    check(
        &["incident", "show", id, "--json"],
        &format!("{id}.show.json"),
    );
    assert_all_views_agree(&data);
}

/// The engine's typed payloads encode exactly what the previous release wrote: every
/// entry of those kinds in the fixture records reads into its type and writes back equal.
#[test]
fn typed_payloads_write_back_exactly_what_the_previous_release_recorded() {
    use keyfire::record::Event;
    use keyfire::record::event::Payload;
    let mut checked = std::collections::BTreeMap::<String, usize>::new();
    for dir in incident_dirs(&fixtures().join("data")) {
        for e in read_entries(&dir.join(keyfire::record::RECORD_FILE)).expect("fixture") {
            let again = match Event::of(&e) {
                Event::IncidentOpened(x) => x.data(),
                Event::IncidentResumed(x) => x.data(),
                Event::IncidentClosed(x) => x.data(),
                Event::StepStarted(x) => x.data(),
                Event::StepFinished(x) => x.data(),
                Event::StepFailed(x) => x.data(),
                Event::OperatorInput(x) => x.data(),
                Event::ActionDone(x) => x.data(),
                Event::Plan(x) => x.data(),
                Event::NotSent(x) => x.data(),
                Event::RequestSent(x) => x.data(),
                Event::Response(x) => x.data(),
                Event::Evidence(x) => x.data(),
                Event::Unknown { kind, .. } => panic!("{kind} at line {} did not read", e.seq),
                _ => continue,
            };
            assert_eq!(again, e.data, "{} at line {}", e.kind, e.seq);
            *checked.entry(e.kind.clone()).or_default() += 1;
            if let Some(action) = e.data.get("action").and_then(|a| a.as_str()) {
                *checked.entry(format!("{}:{action}", e.kind)).or_default() += 1;
            }
        }
    }
    // Every shape of evidence the fixtures hold (the others are checked against the old
    // literals in the record module's unit tests).
    for action in [
        "resolve_credentials",
        "locate",
        "read_store",
        "snapshot_usage",
        "prove_revoked",
        "create",
        "store_write",
        "promote",
        "store_read_back",
        "verify_new",
        "fetch_usage",
        "evaluate_rules",
        "write_report",
        "update_inventory",
    ] {
        assert!(
            checked.contains_key(&format!("evidence:{action}")),
            "no {action} evidence in the fixtures"
        );
    }
    for kind in [
        "incident_opened",
        "incident_closed",
        "step_started",
        "step_finished",
        "action_done",
        "plan",
        "not_sent",
        "request_sent",
        "response",
        "evidence",
    ] {
        assert!(
            checked.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} in the fixtures"
        );
    }
}

/// `keyfire report ID | head` ends quietly when `head` has read enough, like any filter,
/// instead of panicking over the closed pipe.
#[test]
fn a_report_piped_into_a_reader_that_leaves_ends_quietly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let cfg = tmp.path().join("cfg");
    copy_dir(&fixtures().join("data"), &data);
    std::fs::create_dir_all(&cfg).expect("cfg");
    std::fs::copy(
        fixtures().join("record-signing.key.pub"),
        cfg.join("record-signing.key.pub"),
    )
    .expect("pub");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keyfire"))
        .args(["report", "drill-20261127-190425-348e"])
        .env("KEYFIRE_DATA_DIR", &data)
        .env("KEYFIRE_SIGNING_KEY_FILE", cfg.join("record-signing.key"))
        .env_remove("KEYFIRE_INVENTORY")
        .env_remove("KEYFIRE_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // The reader leaves before the 140 kB report is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}
