//! The whole runbook on an `anthropic` provider through the binary, against the Anthropic
//! sim. The replacement is made "in the Console" and pasted on stdin.

use crate::common::{stderr, stdout};
use crate::llm::{LlmEnv, PATH};

fn key_path(id: &str) -> String {
    format!("/v1/organizations/api_keys/{id}")
}

#[test]
fn live_incident_disables_archives_takes_the_pasted_replacement_and_audits() {
    let env = LlmEnv::anthropic();
    let sim = env.anthropic_sim();
    let out = env.live_incident();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));

    // Disabled, then archived, and rejected from then on.
    assert_eq!(sim.key(&env.old_key_id).unwrap().status, "archived");
    assert!(!env.accepts(&env.canaries.old_key));
    let requests = env.requests();
    let updates: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == key_path(&env.old_key_id))
        .collect();
    assert_eq!(updates.len(), 2, "inactive, then archived: {updates:?}");
    let entries = env.entries(&env.incident_ids()[0]);
    let sent: Vec<&str> = entries
        .iter()
        .filter(|e| e.kind == "request_sent" && e.data["method"] == "POST")
        .filter_map(|e| e.data["action"].as_str())
        .collect();
    // Anthropic's two updates, then the store write (a whole-secret POST, never a PATCH).
    assert_eq!(sent, ["disable", "revoke", "store_write"]);

    // The pasted replacement went to the store and was verified with the provider.
    assert_eq!(
        env.vault.value(PATH, "value", None).as_deref(),
        Some(env.canaries.replacement.as_str())
    );
    let id = &env.incident_ids()[0];
    let pasted = entries
        .iter()
        .find(|e| e.kind == "operator_input" && e.data["pasted"] == true)
        .expect("the paste is recorded");
    assert_eq!(pasted.data["hint"], "sk-ant-api03-...QxAA");
    assert_eq!(env.evidence(id, "verify_new")[0]["new_key_works"], true);
    let proof = &env.evidence(id, "prove_revoked")[0];
    assert_eq!(proof["old_key_rejected"], true);
    assert_eq!(proof["status"], 401);

    // Usage for the window, filtered by the key, across pages; the volume rule runs on tokens.
    let usage = &env.evidence(id, "fetch_usage")[0];
    assert!(usage["pages"].as_u64().unwrap() >= 2, "{usage}");
    assert!(usage["tokens"].as_u64().unwrap() > 0, "{usage}");
    let usage_requests: Vec<_> = requests
        .iter()
        .filter(|r| r.path == env.usage_path())
        .collect();
    assert!(usage_requests.len() >= 3, "snapshot + two audit pages");
    for r in &usage_requests {
        assert_eq!(
            r.query_values("api_key_ids[]"),
            std::slice::from_ref(&env.old_key_id)
        );
    }
    assert!(
        usage_requests
            .iter()
            .any(|r| !r.query_values("page").is_empty())
    );
    let rules = &env.evidence(id, "evaluate_rules")[0];
    assert_eq!(rules["rules"][0]["status"], "findings", "{rules}");

    // Every call carried the version header and a key; keyfire never asked to create a key.
    for r in &requests {
        assert_eq!(r.header("anthropic-version"), Some("2023-06-01"), "{r:?}");
        assert!(r.has_header("x-api-key"), "{r:?}");
        assert!(!r.has_header("authorization"), "{r:?}");
        assert!(
            r.header("user-agent")
                .is_some_and(|ua| ua.starts_with("keyfire/"))
        );
    }
    assert!(
        requests
            .iter()
            .all(|r| r.method == "GET" || r.method == "POST")
    );
    assert_eq!(env.run(&["record", "verify", id]).status.code(), Some(0));
}

#[test]
fn drill_sends_reads_only_and_asks_for_no_paste() {
    let env = LlmEnv::anthropic();
    let out = env.drill();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let writes: Vec<_> = env
        .requests()
        .into_iter()
        .chain(env.vault.requests())
        .filter(|r| r.is_write())
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert_eq!(
        env.anthropic_sim().key(&env.old_key_id).unwrap().status,
        "active"
    );
    assert!(env.accepts(&env.canaries.old_key));
    assert_eq!(env.vault.version(PATH), 1);
    let id = &env.incident_ids()[0];
    let entries = env.entries(id);
    for action in ["disable", "revoke", "create"] {
        assert!(
            entries
                .iter()
                .any(|e| e.kind == "not_sent" && e.data["action"] == action),
            "{action} is recorded as not sent"
        );
    }
}

#[test]
fn without_a_pasted_replacement_the_incident_stops_after_containment() {
    let env = LlmEnv::anthropic();
    // stdin is empty: the headless paste reads nothing.
    let out = env.run_with(
        &["incident", "start", crate::llm::KEY, "--yes", "--no-tui"],
        Some(""),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(!env.accepts(&env.canaries.old_key), "containment happened");
    assert_eq!(env.vault.version(PATH), 1, "nothing was stored");
    assert!(
        stdout(&out).contains("keyfire incident resume"),
        "{}",
        stdout(&out)
    );
}
