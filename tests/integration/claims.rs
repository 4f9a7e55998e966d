//! A key is in at most one open incident or rotation: a second `incident start` or `rotate`
//! on it is refused (exit 2) naming the open one, and `rotate --due` skips it and says so.

use keyfire::sim::Fault;

use crate::common::{TestEnv, stderr, stdout};

/// An incident on support-llm whose revoke keeps failing: it is left failed, open and
/// resumable. Returns its id.
fn leave_an_incident_open(env: &TestEnv) -> String {
    env.api
        .inject(Fault::fail("DELETE", &format!("/v1/keys/{}", env.old_key_id), 500, 20).exact());
    let out = env.run(&["incident", "start", "support-llm", "--yes", "--no-tui"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let ids = env.incident_ids();
    assert_eq!(ids.len(), 1);
    ids[0].clone()
}

#[test]
fn a_second_incident_on_a_key_in_an_open_incident_is_refused_naming_it() {
    let env = TestEnv::new();
    let open = leave_an_incident_open(&env);
    let out = env.run(&["incident", "start", "support-llm", "--yes", "--no-tui"]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains(&open), "names the open incident: {text}");
    assert!(
        text.contains(&format!("keyfire incident resume {open}")),
        "{text}"
    );
    assert_eq!(
        env.incident_ids(),
        std::slice::from_ref(&open),
        "nothing new was opened"
    );
    // A drill writes nothing and may still rehearse the key.
    let drill = env.run(&["incident", "start", "support-llm", "--dry-run", "--no-tui"]);
    assert_eq!(drill.status.code(), Some(0), "{}", stdout(&drill));
}

#[test]
fn rotating_a_key_in_an_open_incident_is_refused_and_rotate_due_skips_it() {
    let env = TestEnv::new();
    let open = leave_an_incident_open(&env);
    let out = env.run(&["rotate", "support-llm", "--yes"]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains(&open), "{text}");
    let due = env.run(&["rotate", "--due", "--yes"]);
    let text = stdout(&due);
    assert!(
        text.contains(&format!("SKIPPED support-llm: in open incident {open}")),
        "{text}"
    );
    assert!(
        !env.incident_ids()
            .iter()
            .any(|id| id.starts_with("rot-") && env.entries(id)[0].data["keys"][0] == "support-llm"),
        "no rotation was opened on the key"
    );
}

#[test]
fn two_incidents_started_at_once_on_one_key_open_only_one() {
    let env = TestEnv::new();
    // Both processes check and open at the same moment; the revoke is slow so the first is
    // still running when the second checks.
    env.api
        .observer()
        .set_latency(std::time::Duration::from_millis(200));
    let spawn = || {
        let mut c = env.cmd();
        c.args(["incident", "start", "support-llm", "--yes", "--no-tui"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let codes: Vec<Option<i32>> = [a, b]
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code())
        .collect();
    assert_eq!(env.incident_ids().len(), 1, "{codes:?}");
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(sorted, [Some(0), Some(2)], "one ran, one was refused");
}
