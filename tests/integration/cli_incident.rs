//! `keyfire incident start | resume | list | show` on the built binary.

use keyfire::sim::Fault;

use crate::common::{OLD_PATH, TestEnv, stderr, stdout};

#[test]
fn live_incident_headless_completes_and_reschedules_in_place() {
    let env = TestEnv::new();
    let before = std::fs::read_to_string(env.inventory_path()).unwrap();
    let out = env.run(&[
        "incident",
        "start",
        "support-llm",
        "--yes",
        "--no-tui",
        "--reason",
        "key in a public gist",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(text.contains("revoke: sent DELETE"), "{text}");
    assert!(
        text.contains("prove_revoked: the provider rejects the old key with HTTP 401"),
        "{text}"
    );
    assert!(text.contains("time to revoke"), "{text}");
    assert!(!env.api.accepts(&env.canaries.old_key));

    // Step 5 changed exactly the two rotation lines of this key; every other byte is as it was.
    let after = std::fs::read_to_string(env.inventory_path()).unwrap();
    let today = chrono::Utc::now().date_naive();
    let before_lines: Vec<&str> = before.lines().collect();
    let after_lines: Vec<&str> = after.lines().collect();
    let updated = format!("last_rotated = {today}   # rotated after the January review");
    let at = after_lines
        .iter()
        .position(|l| *l == updated)
        .expect("last_rotated rewritten in place, comment kept");
    assert_eq!(
        before_lines[at],
        "last_rotated = 2026-02-01   # rotated after the January review"
    );
    assert_eq!(
        after_lines.len(),
        before_lines.len() + 1,
        "rotation_days is added to the key's table"
    );
    let inserted = after_lines
        .iter()
        .position(|l| *l == "rotation_days = 30")
        .expect("rotation_days added");
    assert_eq!(inserted, at + 1, "right after the key's last field");
    let rest_before: Vec<&str> = before_lines
        .iter()
        .copied()
        .filter(|l| !l.starts_with("last_rotated = 2026-02-01"))
        .collect();
    let rest_after: Vec<&str> = after_lines
        .iter()
        .copied()
        .filter(|l| !l.starts_with("last_rotated = ") && *l != "rotation_days = 30")
        .collect();
    assert_eq!(rest_before, rest_after);

    // The edited inventory still loads and shows the new schedule.
    let show = env.run(&["inventory", "show", "support-llm", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(v["key"]["rotation_days"], 30);
    assert_eq!(v["status"]["due_in_days"], 30);

    let list = env.run(&["incident", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["status"], "completed");
    assert_eq!(v[0]["drill"], false);
    assert_eq!(v[0]["reason"], "key in a public gist");
    let id = v[0]["id"].as_str().unwrap().to_string();
    let show = env.run(&["incident", "show", &id]);
    assert_eq!(show.status.code(), Some(0));
    assert!(stdout(&show).contains("incident closed: completed"));
    assert_eq!(env.run(&["record", "verify", &id]).status.code(), Some(0));
}

#[test]
fn without_yes_and_without_a_terminal_nothing_runs() {
    let env = TestEnv::new();
    let out = env.run(&["incident", "start", "support-llm", "--no-tui"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("pass --yes"), "{}", stderr(&out));
    assert!(env.incident_ids().is_empty(), "no incident was opened");
    assert!(env.api.requests().is_empty());
}

#[test]
fn drill_needs_no_approval_and_sends_no_write() {
    let env = TestEnv::new();
    let out = env.run(&[
        "incident",
        "start",
        "support-llm",
        "research-llm",
        "sales-crm",
        "--dry-run",
        "--no-tui",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(text.contains("DRILL, would send: Delete key"), "{text}");
    assert!(text.contains("drill drill-"), "{text}");
    let writes: Vec<_> = env
        .api
        .requests()
        .into_iter()
        .chain(env.vault.requests())
        .filter(|r| r.is_write())
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert!(env.api.accepts(&env.canaries.old_key));
    let list = env.run(&["incident", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["drill"], true);
}

#[test]
fn a_failed_step_exits_1_and_says_how_to_resume() {
    let env = TestEnv::new();
    env.api
        .inject(Fault::fail("POST", "/v1/keys", 500, 5).exact());
    let out = env.run(&["incident", "start", "support-llm", "--yes", "--no-tui"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("create: STEP FAILED (HTTP 500)"), "{text}");
    assert!(text.contains("keyfire incident resume"), "{text}");
    let id = env.incident_ids().pop().unwrap();
    // The fault is spent; resume finishes and creates exactly one replacement.
    let resumed = env.run(&["incident", "resume", &id, "--yes", "--no-tui"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stdout(&resumed));
    assert_eq!(env.api.live_keys().len(), 2);
    assert_eq!(env.vault.version(OLD_PATH), 3);
    let again = env.run(&["incident", "resume", &id, "--yes"]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "a completed incident is not resumed"
    );
}

#[test]
fn input_errors_exit_2_before_anything_runs() {
    let env = TestEnv::new();
    let unknown = env.run(&["incident", "start", "no-such-key", "--yes"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("unknown key `no-such-key`"));
    let bad_time = env.run(&[
        "incident",
        "start",
        "support-llm",
        "--yes",
        "--exposed-since",
        "last tuesday",
    ]);
    assert_eq!(bad_time.status.code(), Some(2));
    assert!(stderr(&bad_time).contains("invalid time"));
    let bad_flag = env.run(&["incident", "start", "support-llm", "--yse"]);
    assert_eq!(bad_flag.status.code(), Some(2));
    let zd = env.run(&["incident", "start", "sales-crm", "--yes", "--zero-downtime"]);
    assert_eq!(zd.status.code(), Some(2));
    assert!(env.incident_ids().is_empty());
    assert!(env.api.requests().is_empty());
}

#[test]
fn a_rejected_admin_credential_fails_the_open_step_with_the_status() {
    let env = TestEnv::new();
    env.api.revoke_admin_tokens();
    let out = env.run(&["incident", "start", "support-llm", "--dry-run"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("locate: STEP FAILED (HTTP 401)"), "{text}");
    assert!(text.contains("Invalid admin key"), "{text}");
}

#[test]
fn the_customer_data_answer_is_given_by_flag_headless_and_is_unknown_with_yes_alone() {
    let env = TestEnv::new();
    let bad = env.run(&[
        "incident",
        "start",
        "support-llm",
        "--yes",
        "--customer-data",
        "maybe",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(env.incident_ids().is_empty());

    let out = env.run(&[
        "incident",
        "start",
        "support-llm",
        "--yes",
        "--no-tui",
        "--customer-data",
        "yes",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Could customer data have been reached with support-llm? yes"),
        "{}",
        stderr(&out)
    );
    let id = env.incident_ids().pop().unwrap();
    let report = env.run(&["report", &id, "--format", "md"]);
    assert!(
        stdout(&report).contains("Operator's answer: yes"),
        "{}",
        stdout(&report)
    );
    let show = env.run(&["incident", "show", &id]);
    assert!(
        stdout(&show)
            .contains("could customer data have been reached? operator: yes (via --customer-data)"),
        "{}",
        stdout(&show)
    );

    // --yes alone never answers "no".
    let env = TestEnv::new();
    let out = env.run(&["incident", "start", "support-llm", "--yes", "--no-tui"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = env.incident_ids().pop().unwrap();
    let report = env.run(&["report", &id, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(v["keys"][0]["customer_data"]["operator_answer"], "unknown");
}

/// A start in the future (`--exposed-since`, `audit --since`) would look at an empty window
/// and call it quiet: it is refused before anything opens, saying it is in the future.
#[test]
fn a_start_time_in_the_future_is_refused_before_anything_opens() {
    let env = TestEnv::new();
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    for args in [
        &[
            "incident",
            "start",
            "support-llm",
            "--exposed-since",
            tomorrow.as_str(),
            "--dry-run",
            "--no-tui",
        ][..],
        &["audit", "support-llm", "--since", tomorrow.as_str()],
    ] {
        let out = env.run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("is in the future"), "{args:?}: {err}");
    }
    assert!(env.incident_ids().is_empty(), "nothing was opened");
    assert!(env.api.requests().is_empty(), "nothing was sent");
}
