//! Containment never waits on evidence (DESIGN non-negotiable 7): before the revoke keyfire
//! asks only what the revoke needs, an unreadable store or a failing usage API never keeps a
//! leaked key alive, and a revocation that cannot be proven is said to be unproven.

use keyfire::runbook::{ApproveAll, CollectSink, Engine, Order, Outcome, drive};
use keyfire::sim::Fault;

use crate::common::{OLD_PATH, TestEnv, params, stdout};

fn position(entries: &[keyfire::record::Entry], kind: &str, action: &str) -> usize {
    entries
        .iter()
        .position(|e| e.kind == kind && e.data["action"] == action)
        .unwrap_or_else(|| panic!("no {kind} for {action}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_locate_and_the_store_read_precede_the_revoke_and_they_run_together() {
    let env = TestEnv::new();
    let mut engine = Engine::open(
        env.setup(),
        params(&["support-llm"], false, Order::ContainFirst),
    )
    .unwrap();
    let outcome = drive(
        &mut engine,
        &mut ApproveAll::default(),
        &mut CollectSink::default(),
    )
    .await
    .unwrap();
    assert_eq!(outcome, Outcome::Completed);
    let entries = env.entries(engine.id());
    let revoke_sent = position(&entries, "request_sent", "revoke");
    let before: Vec<&str> = entries[..revoke_sent]
        .iter()
        .filter(|e| e.kind == "request_sent")
        .filter_map(|e| e.data["action"].as_str())
        .collect();
    assert_eq!(
        before,
        ["locate", "read_store", "disable"],
        "only what the revoke needs (and the proof's old value) comes first"
    );
    // Both reads were on the wire before either answer came back: one round trip.
    let read_sent = position(&entries, "request_sent", "read_store");
    assert!(read_sent < position(&entries, "response", "locate"));
    assert!(
        position(&entries, "request_sent", "locate") < position(&entries, "response", "read_store")
    );
    // Usage is read after the proof.
    let proof = position(&entries, "evidence", "prove_revoked");
    assert!(proof < position(&entries, "request_sent", "snapshot_usage"));
    let closed = entries.last().unwrap();
    let contain = closed.data["keys"]["support-llm"]["time_to_contain_ms"]
        .as_i64()
        .unwrap();
    assert!(contain >= 0);
    assert_eq!(
        closed.data["fleet_time_to_contain_ms"].as_i64(),
        Some(contain)
    );
}

#[test]
fn an_unreadable_store_never_blocks_the_revoke_and_the_proof_says_so() {
    let env = TestEnv::new();
    // Every try of the read at open fails; the store answers again afterwards.
    env.vault.observer().inject(Fault::fail(
        "GET",
        &format!("/v1/secret/data/{OLD_PATH}"),
        500,
        5,
    ));
    let out = env.run(&["incident", "start", "support-llm", "--yes", "--no-tui"]);
    let text = stdout(&out);
    assert!(
        !env.api.accepts(&env.canaries.old_key),
        "the leaked key is dead: {text}"
    );
    assert!(env.api.key(&env.old_key_id).unwrap().deleted);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unproven revocation exits 1: {text}"
    );
    assert!(text.contains("revocation NOT proven"), "{text}");
    assert!(text.contains("evidence unavailable (read_store)"), "{text}");
    let id = env.incident_ids().pop().unwrap();
    let entries = env.entries(&id);
    assert!(
        !entries.iter().any(|e| e.kind == "step_failed"),
        "no step failed: the store was read again before the write"
    );
    // The write still used check-and-set on the version read just before it.
    assert_eq!(env.vault.version(OLD_PATH), 3);
    let report =
        std::fs::read_to_string(env.data_dir().join("incidents").join(&id).join("report.md"))
            .unwrap();
    assert!(report.contains("revocation NOT proven"), "{report}");
    let state = keyfire::record::IncidentState::fold(&entries).unwrap();
    assert_eq!(state.not_proven().collect::<Vec<_>>(), ["support-llm"]);
}

#[test]
fn a_drill_over_a_key_whose_store_path_is_empty_is_a_problem() {
    let env = TestEnv::new();
    let text = env.inventory_text().replace(
        &format!("secret_path = \"{OLD_PATH}\""),
        "secret_path = \"agents/nobody/llm\"",
    );
    std::fs::write(env.inventory_path(), text).unwrap();
    let out = env.run(&["drill", "support-llm"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("PROBLEM: nothing stored at the key's secret path"),
        "{text}"
    );
    assert!(text.contains("1 keys drilled, 1 problems found"), "{text}");
}

#[test]
fn a_drill_whose_stored_value_the_provider_already_rejects_is_a_problem() {
    let env = TestEnv::new();
    // The store holds a value the provider does not know: not the live key.
    env.vault.put(
        OLD_PATH,
        "value",
        "fk-CANARYnotTheLiveKey000000000000000000",
    );
    let out = env.run(&["drill", "support-llm"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("PROBLEM: the provider already rejects the value in the store"),
        "{text}"
    );
}

#[test]
fn an_audit_log_that_cannot_be_read_is_unavailable_evidence_and_a_drill_problem() {
    let env = crate::llm::LlmEnv::openai();
    // Every try of the audit-log search fails (as for an organization without audit logs).
    env.inject(Fault::fail("GET", "/v1/organization/audit_logs", 403, 10));
    let out = env.run(&["drill", crate::llm::KEY]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("PROBLEM: evidence unavailable") && text.contains("audit log"),
        "{text}"
    );
    let id = env.incident_ids().pop().unwrap();
    let state = keyfire::record::IncidentState::fold(&env.entries(&id)).unwrap();
    let k = &state.per_key[crate::llm::KEY];
    assert!(
        k.evidence_unavailable
            .iter()
            .any(|u| u.action == "fetch_usage" && u.reason.contains("audit log")),
        "{:?}",
        k.evidence_unavailable
    );
    // The usage itself was read and the rules ran.
    assert!(!k.usage.is_empty());
    assert!(!k.rules.is_empty());
}
