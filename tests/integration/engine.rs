//! The runbook engine in-process against the loopback provider and Vault sim.

use keyfire::record::verify_file;
use keyfire::runbook::{
    ApprovalRequest, ApproveAll, CollectSink, Decision, Engine, FailureChoice, FailureView, Gate,
    ManualRequest, Order, Outcome, PasteRequest, drive,
};
use keyfire::secret::Secret;
use keyfire::sim::Fault;

use crate::common::{OLD_PATH, TestEnv, params};

fn kinds(entries: &[keyfire::record::Entry], kind: &str) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.data["action"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_sends_reads_and_never_a_write() {
    let env = TestEnv::new();
    let setup = env.setup();
    let inventory_before = std::fs::read(env.inventory_path()).unwrap();
    let vault_version = env.vault.version(OLD_PATH);
    let mut engine = Engine::open(
        setup,
        params(
            &["support-llm", "research-llm", "sales-crm"],
            true,
            Order::ContainFirst,
        ),
    )
    .unwrap();
    assert!(engine.id().starts_with("drill-"));
    let mut sink = CollectSink::default();
    let outcome = drive(&mut engine, &mut ApproveAll::default(), &mut sink)
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Completed);

    let provider_requests = env.api.requests();
    let vault_requests = env.vault.requests();
    let writes: Vec<_> = provider_requests
        .iter()
        .chain(&vault_requests)
        .filter(|r| r.is_write())
        .collect();
    assert!(writes.is_empty(), "a drill sent writes: {writes:?}");
    // Reads are real: locate, usage, the old key's authentication check, store reads.
    assert!(
        provider_requests
            .iter()
            .any(|r| r.path.starts_with("/v1/keys/")),
        "{provider_requests:?}"
    );
    assert!(
        provider_requests.iter().any(|r| r.path == "/v1/keys"),
        "hint lookup lists keys: {provider_requests:?}"
    );
    assert!(provider_requests.iter().any(|r| r.path == "/v1/usage"));
    assert!(provider_requests.iter().any(|r| r.path == "/v1/me"));
    assert!(vault_requests.iter().any(|r| r.method == "GET"));

    assert!(
        env.api.accepts(&env.canaries.old_key),
        "the old key still works after a drill"
    );
    assert_eq!(env.vault.version(OLD_PATH), vault_version);
    assert_eq!(
        std::fs::read(env.inventory_path()).unwrap(),
        inventory_before,
        "a drill never edits the inventory"
    );

    let entries = sink.0;
    let not_sent = kinds(&entries, "not_sent");
    for action in [
        "disable",
        "revoke",
        "create",
        "store_write",
        "update_inventory",
    ] {
        assert!(
            not_sent.iter().any(|a| a == action),
            "{action} must be recorded as not sent: {not_sent:?}"
        );
    }
    let sent = kinds(&entries, "request_sent");
    for write in [
        "disable",
        "revoke",
        "create",
        "store_write",
        "update_inventory",
    ] {
        assert!(
            !sent.iter().any(|a| a == write),
            "{write} was sent in a drill"
        );
    }
    let reschedule = entries
        .iter()
        .find(|e| e.kind == "not_sent" && e.data["action"] == "update_inventory")
        .unwrap();
    assert!(
        reschedule.data["would_send"]
            .as_str()
            .unwrap()
            .contains("+last_rotated = "),
        "the drill shows the inventory diff"
    );
    assert!(entries[0].data["dry_run"] == true);
    assert!(verify_file(&engine.record_dir().join("record.jsonl")).ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_incident_revokes_replaces_stores_and_verifies() {
    let env = TestEnv::new();
    let old_version = env.vault.version(OLD_PATH);
    let mut engine = Engine::open(
        env.setup(),
        params(&["support-llm"], false, Order::ContainFirst),
    )
    .unwrap();
    let mut sink = CollectSink::default();
    let outcome = drive(&mut engine, &mut ApproveAll::default(), &mut sink)
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Completed);

    assert!(
        !env.api.accepts(&env.canaries.old_key),
        "the old key is dead"
    );
    assert!(env.api.key(&env.old_key_id).unwrap().deleted);
    let facts = engine.facts("support-llm").unwrap().clone();
    let new_id = facts.new_key_id.clone().unwrap();
    let new_key = env.api.key(&new_id).unwrap();
    assert!(!new_key.deleted);
    assert_eq!(
        env.vault.version(OLD_PATH),
        old_version + 1,
        "one new version"
    );
    assert_eq!(
        env.vault.value(OLD_PATH, "value", None).as_deref(),
        Some(new_key.value()),
        "the store holds the replacement"
    );
    assert_eq!(
        env.vault.value(OLD_PATH, "model", None).as_deref(),
        Some("gpt-test"),
        "other fields survive"
    );
    assert_eq!(facts.new_version, Some((old_version + 1).into()));
    assert!(
        facts.revoked_at.unwrap() <= facts.restored_at.unwrap(),
        "contain-first revokes before restoring"
    );

    let entries = &sink.0;
    let evidence = entries
        .iter()
        .find(|e| e.kind == "evidence" && e.data["action"] == "prove_revoked")
        .unwrap();
    assert_eq!(evidence.data["old_key_rejected"], true);
    assert_eq!(evidence.data["status"], 401);
    assert!(entries.iter().any(|e| e.kind == "evidence"
        && e.data["action"] == "verify_new"
        && e.data["new_key_works"] == true));
    let closed = entries.last().unwrap();
    assert_eq!(closed.kind, "incident_closed");
    assert!(
        closed.data["keys"]["support-llm"]["time_to_revoke_ms"]
            .as_i64()
            .is_some()
    );
    assert!(
        closed.data["keys"]["support-llm"]["time_to_restore_ms"]
            .as_i64()
            .is_some()
    );
    for step in [
        "open",
        "revoke",
        "redeploy",
        "audit",
        "report",
        "reschedule",
    ] {
        assert!(
            closed.data["keys"]["support-llm"]["step_ms"][step]
                .as_i64()
                .is_some(),
            "duration of {step}"
        );
    }
    // Each write was approved before it was sent.
    for write in [
        "disable",
        "revoke",
        "create",
        "store_write",
        "update_inventory",
    ] {
        let approve = entries
            .iter()
            .position(|e| e.kind == "operator_input" && e.data["action"] == write)
            .unwrap();
        let sent = entries
            .iter()
            .position(|e| e.kind == "request_sent" && e.data["action"] == write)
            .unwrap();
        assert!(approve < sent, "{write} approved before sent");
    }
    let report = std::fs::read_to_string(engine.record_dir().join("report.md")).unwrap();
    assert!(
        report.contains("old key rejected by the provider (HTTP 401)"),
        "{report}"
    );
    assert!(verify_file(&engine.record_dir().join("record.jsonl")).ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_downtime_restores_before_revoking() {
    let env = TestEnv::new();
    let mut engine = Engine::open(
        env.setup(),
        params(&["support-llm"], false, Order::ZeroDowntime),
    )
    .unwrap();
    let mut sink = CollectSink::default();
    assert_eq!(
        drive(&mut engine, &mut ApproveAll::default(), &mut sink)
            .await
            .unwrap(),
        Outcome::Completed
    );
    let started: Vec<&str> = sink
        .0
        .iter()
        .filter(|e| e.kind == "step_started")
        .map(|e| e.step.as_deref().unwrap())
        .collect();
    assert_eq!(
        started,
        [
            "open",
            "redeploy",
            "revoke",
            "audit",
            "report",
            "reschedule"
        ]
    );
    let facts = engine.facts("support-llm").unwrap();
    assert!(facts.restored_at.unwrap() <= facts.revoked_at.unwrap());
    assert!(!env.api.accepts(&env.canaries.old_key));
    assert_eq!(
        env.api.live_keys().len(),
        2,
        "the other key and the replacement"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_downtime_is_refused_when_keyfire_cannot_create_first() {
    let env = TestEnv::new();
    let err = Engine::open(
        env.setup(),
        params(&["sales-crm"], false, Order::ZeroDowntime),
    )
    .err()
    .unwrap();
    assert!(
        err.to_string()
            .contains("zero-downtime rotation is impossible for key `sales-crm`"),
        "{err}"
    );
    assert!(err.is_input_error());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_provider_is_a_guided_checklist_confirmed_by_the_operator() {
    let env = TestEnv::new();
    let mut engine = Engine::open(
        env.setup(),
        params(&["sales-crm"], false, Order::ContainFirst),
    )
    .unwrap();
    let mut sink = CollectSink::default();
    assert_eq!(
        drive(&mut engine, &mut ApproveAll::default(), &mut sink)
            .await
            .unwrap(),
        Outcome::Completed
    );
    let manual: Vec<&str> = sink
        .0
        .iter()
        .filter(|e| {
            e.kind == "operator_input"
                && e.data["manual"] == true
                && e.data["decision"] == "confirmed"
        })
        .map(|e| e.data["action"].as_str().unwrap())
        .collect();
    assert_eq!(manual, ["revoke", "create", "verify_new"]);
    let plan = sink
        .0
        .iter()
        .find(|e| e.kind == "plan" && e.data["action"] == "revoke")
        .unwrap();
    let text = plan.data["instructions"].to_string();
    assert!(text.contains("Revoke key"), "{text}");
    assert!(
        env.api.requests().is_empty(),
        "a manual provider sends nothing"
    );
}

struct Declining;

impl Gate for Declining {
    async fn approve(&mut self, _req: &ApprovalRequest<'_>) -> Decision {
        Decision::Decline { via: "test".into() }
    }
    async fn confirm_manual(&mut self, _req: &ManualRequest<'_>) -> Decision {
        Decision::Decline { via: "test".into() }
    }
    async fn paste_secret(&mut self, _req: &PasteRequest<'_>) -> Option<Secret> {
        None
    }
    async fn on_failure(&mut self, _f: &FailureView<'_>) -> FailureChoice {
        FailureChoice::Abort
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_write_is_never_sent() {
    let env = TestEnv::new();
    let mut engine = Engine::open(
        env.setup(),
        params(&["support-llm"], false, Order::ContainFirst),
    )
    .unwrap();
    let mut sink = CollectSink::default();
    assert_eq!(
        drive(&mut engine, &mut Declining, &mut sink).await.unwrap(),
        Outcome::Aborted
    );
    assert!(env.api.requests().iter().all(|r| !r.is_write()));
    assert!(env.api.accepts(&env.canaries.old_key));
    assert!(
        sink.0
            .iter()
            .any(|e| e.kind == "operator_input" && e.data["decision"] == "decline")
    );
    assert_eq!(sink.0.last().unwrap().data["outcome"], "aborted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_failure_names_step_status_and_stays_retryable() {
    let env = TestEnv::new();
    env.api.inject(Fault::fail("DELETE", "/v1/keys/", 500, 5));
    let setup = env.setup();
    let mut engine = Engine::open(
        setup.clone(),
        params(&["support-llm"], false, Order::ContainFirst),
    )
    .unwrap();
    let mut sink = CollectSink::default();
    assert_eq!(
        drive(&mut engine, &mut ApproveAll::default(), &mut sink)
            .await
            .unwrap(),
        Outcome::Failed
    );
    let failed = sink.0.iter().find(|e| e.kind == "step_failed").unwrap();
    assert_eq!(failed.step.as_deref(), Some("revoke"));
    assert_eq!(failed.data["action"], "revoke");
    assert_eq!(failed.data["status"], 500);
    assert_eq!(failed.data["retryable"], true);
    assert!(
        failed.data["error"]
            .as_str()
            .unwrap()
            .contains("server error 500"),
        "{}",
        failed.data
    );
    assert!(
        !sink
            .0
            .iter()
            .any(|e| e.kind == "action_done" && e.data["action"] == "revoke"),
        "never done without the provider's confirmation"
    );
    assert!(!env.api.key(&env.old_key_id).unwrap().deleted);

    // The incident stays open; resuming finishes it (once this process lets go of it).
    let id = engine.id().to_string();
    drop(engine);
    let mut resumed = Engine::resume(setup, &id).unwrap();
    let mut sink = CollectSink::default();
    assert_eq!(
        drive(&mut resumed, &mut ApproveAll::default(), &mut sink)
            .await
            .unwrap(),
        Outcome::Completed
    );
    assert!(!env.api.accepts(&env.canaries.old_key));
    assert_eq!(sink.0[0].kind, "incident_resumed");
    let created = env
        .api
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/keys")
        .count();
    assert_eq!(created, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_reads_retry_through_transient_errors() {
    let env = TestEnv::new();
    env.api.inject(Fault::fail("GET", "/v1/usage", 503, 2));
    let mut engine = Engine::open(
        env.setup(),
        params(&["support-llm"], true, Order::ContainFirst),
    )
    .unwrap();
    let mut sink = CollectSink::default();
    assert_eq!(
        drive(&mut engine, &mut ApproveAll::default(), &mut sink)
            .await
            .unwrap(),
        Outcome::Completed
    );
    assert!(!sink.0.iter().any(|e| e.kind == "step_failed"));
    // The faults were hit and retried through: the snapshot took three tries, the audit's
    // read one, and neither is recorded as unavailable.
    let usage_reads = env
        .api
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/usage")
        .count();
    assert_eq!(
        usage_reads, 4,
        "2 injected 503s, their retry, the audit's read"
    );
    assert!(
        !sink
            .0
            .iter()
            .any(|e| e.kind == "evidence" && e.data.get("unavailable").is_some()),
        "retried reads are not unavailable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_whose_value_was_lost_is_created_again_on_resume() {
    let env = TestEnv::new();
    // The store write fails once: the replacement exists at the provider, its value only in
    // this engine's memory, which the resume below does not have.
    env.vault
        .observer()
        .inject(Fault::fail("POST", "/v1/secret/data/", 500, 1));
    let setup = env.setup();
    let mut engine = Engine::open(
        setup.clone(),
        params(&["support-llm"], false, Order::ContainFirst),
    )
    .unwrap();
    let mut sink = CollectSink::default();
    assert_eq!(
        drive(&mut engine, &mut ApproveAll::default(), &mut sink)
            .await
            .unwrap(),
        Outcome::Failed
    );
    let id = engine.id().to_string();
    drop(engine);

    let mut resumed = Engine::resume(setup, &id).unwrap();
    let mut sink = CollectSink::default();
    assert_eq!(
        drive(&mut resumed, &mut ApproveAll::default(), &mut sink)
            .await
            .unwrap(),
        Outcome::Completed,
        "{:?}",
        sink.0
            .iter()
            .filter(|e| e.kind == "step_failed")
            .collect::<Vec<_>>()
    );
    assert!(
        sink.0
            .iter()
            .any(|e| e.kind == "evidence" && e.data.get("lost_replacement").is_some()),
        "the resume says why the create runs again"
    );
    // The fake provider replays a create with the same Idempotency-Key: still one key.
    let replacements: Vec<_> = env
        .api
        .live_keys()
        .into_iter()
        .filter(|k| k.name.starts_with("keyfire-"))
        .collect();
    assert_eq!(replacements.len(), 1, "{replacements:?}");
    assert_eq!(
        env.vault.value(OLD_PATH, "value", None).as_deref(),
        Some(replacements[0].value())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_never_run_one_incident() {
    let env = TestEnv::new();
    let setup = env.setup();
    let engine = Engine::open(
        setup.clone(),
        params(&["support-llm"], true, Order::ContainFirst),
    )
    .unwrap();
    let id = engine.id().to_string();
    let err = Engine::resume(setup.clone(), &id)
        .err()
        .expect("the incident is busy");
    assert!(
        err.to_string()
            .contains("another keyfire process is running this incident"),
        "{err}"
    );
    drop(engine);
    assert!(
        Engine::resume(setup, &id).is_ok(),
        "free again once the first one is gone"
    );
}

#[test]
fn a_torn_last_line_is_set_aside_and_the_incident_resumes() {
    let env = TestEnv::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let setup = env.setup();
    let engine = Engine::open(
        setup.clone(),
        params(&["support-llm"], false, Order::ContainFirst),
    )
    .unwrap();
    let id = engine.id().to_string();
    drop(engine);
    // A process killed in the middle of writing a line.
    let path = env.record_path(&id);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"seq\":2,\"ts\":\"2026-");
    std::fs::write(&path, &bytes).unwrap();
    let mut engine = Engine::resume(setup, &id).unwrap();
    let outcome = rt
        .block_on(drive(
            &mut engine,
            &mut ApproveAll::default(),
            &mut CollectSink::default(),
        ))
        .unwrap();
    assert_eq!(outcome, Outcome::Completed);
    assert!(path.with_extension("jsonl.torn.1").exists());
    assert!(verify_file(&path).ok());
}

// ---- the report step's customer-data question ------------------------------------------

/// Approves every write except `decline`, and answers the customer-data question from a
/// script, counting how often it is asked.
struct Scripted {
    answer: keyfire::runbook::CustomerDataReply,
    decline: Option<keyfire::runbook::Action>,
    asked: Vec<String>,
}

impl Scripted {
    fn answering(answer: keyfire::record::event::CustomerDataAnswer, note: Option<&str>) -> Self {
        Self {
            answer: keyfire::runbook::CustomerDataReply {
                answer,
                note: note.map(str::to_string),
                via: "script".into(),
            },
            decline: None,
            asked: Vec::new(),
        }
    }
}

impl Gate for Scripted {
    async fn approve(&mut self, req: &ApprovalRequest<'_>) -> Decision {
        if Some(req.action) == self.decline {
            Decision::Decline { via: "test".into() }
        } else {
            Decision::Approve { via: "test".into() }
        }
    }
    async fn confirm_manual(&mut self, _req: &ManualRequest<'_>) -> Decision {
        Decision::Approve { via: "test".into() }
    }
    async fn paste_secret(&mut self, _req: &PasteRequest<'_>) -> Option<Secret> {
        None
    }
    async fn on_failure(&mut self, _f: &FailureView<'_>) -> FailureChoice {
        FailureChoice::Abort
    }
    async fn customer_data(
        &mut self,
        req: &keyfire::runbook::CustomerDataRequest<'_>,
    ) -> keyfire::runbook::CustomerDataReply {
        self.asked.push(req.question());
        self.answer.clone()
    }
}

fn customer_data_inputs(entries: &[keyfire::record::Entry]) -> Vec<&keyfire::record::Entry> {
    entries
        .iter()
        .filter(|e| e.kind == "operator_input" && e.data.get("customer_data").is_some())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_step_asks_about_customer_data_and_the_report_says_the_answer() {
    use keyfire::record::event::CustomerDataAnswer;
    let env = TestEnv::new();
    let mut engine = Engine::open(
        env.setup(),
        params(&["support-llm"], false, Order::ContainFirst),
    )
    .unwrap();
    // The note quotes the leaked key: it is scrubbed before it is recorded.
    let note = format!("prompts held CRM notes; key {}", env.canaries.old_key);
    let mut gate = Scripted::answering(CustomerDataAnswer::Yes, Some(&note));
    let mut sink = CollectSink::default();
    assert_eq!(
        drive(&mut engine, &mut gate, &mut sink).await.unwrap(),
        Outcome::Completed
    );
    assert_eq!(
        gate.asked,
        ["Could customer data have been reached with support-llm?"]
    );
    let id = engine.id().to_string();
    let entries = env.entries(&id);
    let answers = customer_data_inputs(&entries);
    assert_eq!(answers.len(), 1, "asked and recorded once");
    let a = answers[0];
    assert_eq!(a.step.as_deref(), Some("report"));
    assert_eq!(a.data["action"], "write_report");
    assert_eq!(a.data["customer_data"], "yes");
    assert_eq!(a.data["via"], "script");
    let recorded_note = a.data["note"].as_str().unwrap();
    assert!(recorded_note.starts_with("prompts held CRM notes"));
    assert!(!recorded_note.contains("CANARY"), "{recorded_note}");
    // Recorded before the report was rendered, so the report the step wrote says it.
    let write = entries
        .iter()
        .position(|e| e.kind == "evidence" && e.data["action"] == "write_report")
        .unwrap();
    assert!(entries.iter().position(|e| std::ptr::eq(e, a)).unwrap() < write);
    let dir = env.record_path(&id).parent().unwrap().to_path_buf();
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("Operator's answer: yes"), "{md}");
    assert!(
        md.contains("Operator's note: prompts held CRM notes"),
        "{md}"
    );
    assert!(!md.contains("CANARY"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let cd = &json["keys"][0]["customer_data"];
    assert_eq!(cd["operator_answer"], "yes");
    assert!(
        cd["operator_note"]
            .as_str()
            .unwrap()
            .starts_with("prompts held")
    );
    assert!(verify_file(&env.record_path(&id)).ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_yes_and_no_answer_customer_data_is_unknown_never_no() {
    let env = TestEnv::new();
    let mut engine = Engine::open(
        env.setup(),
        params(&["support-llm"], false, Order::ContainFirst),
    )
    .unwrap();
    let mut sink = CollectSink::default();
    drive(&mut engine, &mut ApproveAll::default(), &mut sink)
        .await
        .unwrap();
    let entries = env.entries(engine.id());
    let answers = customer_data_inputs(&entries);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].data["customer_data"], "unknown");
    assert_eq!(answers[0].data["via"], "--yes");
    let report = keyfire::report::build(engine.id(), &entries).unwrap();
    assert_eq!(
        report.keys[0].customer_data.operator_answer.as_deref(),
        Some("unknown")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_incident_replays_the_recorded_answer_instead_of_asking_again() {
    use keyfire::record::event::CustomerDataAnswer;
    let env = TestEnv::new();
    let setup = env.setup();
    let mut engine = Engine::open(
        setup.clone(),
        params(&["support-llm"], false, Order::ContainFirst),
    )
    .unwrap();
    // Answered in the report step, then the reschedule's write is declined: the incident
    // stops after the answer and stays open.
    let mut first = Scripted::answering(CustomerDataAnswer::No, Some("only model calls"));
    first.decline = Some(keyfire::runbook::Action::UpdateInventory);
    let mut sink = CollectSink::default();
    assert_eq!(
        drive(&mut engine, &mut first, &mut sink).await.unwrap(),
        Outcome::Aborted
    );
    assert_eq!(first.asked.len(), 1);
    let id = engine.id().to_string();
    drop(engine);

    let mut engine = Engine::resume(setup, &id).unwrap();
    let mut second = Scripted::answering(CustomerDataAnswer::Yes, None);
    let mut sink = CollectSink::default();
    assert_eq!(
        drive(&mut engine, &mut second, &mut sink).await.unwrap(),
        Outcome::Completed
    );
    assert!(second.asked.is_empty(), "asked again: {:?}", second.asked);
    let entries = env.entries(&id);
    assert_eq!(customer_data_inputs(&entries).len(), 1);
    let report = keyfire::report::build(&id, &entries).unwrap();
    let cd = &report.keys[0].customer_data;
    assert_eq!(cd.operator_answer.as_deref(), Some("no"));
    assert_eq!(cd.operator_note.as_deref(), Some("only model calls"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_asks_too_and_says_drill() {
    use keyfire::record::event::CustomerDataAnswer;
    let env = TestEnv::new();
    let mut engine = Engine::open(
        env.setup(),
        params(&["support-llm"], true, Order::ContainFirst),
    )
    .unwrap();
    let mut gate = Scripted::answering(CustomerDataAnswer::Unknown, None);
    let mut sink = CollectSink::default();
    drive(&mut engine, &mut gate, &mut sink).await.unwrap();
    assert_eq!(
        gate.asked,
        ["[DRILL] Could customer data have been reached with support-llm?"]
    );
    assert_eq!(customer_data_inputs(&sink.0).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_asks_once_and_records_the_answer_for_every_key() {
    use keyfire::record::event::CustomerDataAnswer;
    let env = TestEnv::new();
    let mut engine = Engine::open(
        env.setup(),
        params(&["support-llm", "research-llm"], true, Order::ContainFirst),
    )
    .unwrap();
    let mut gate = Scripted::answering(CustomerDataAnswer::Yes, None);
    let mut sink = CollectSink::default();
    drive(&mut engine, &mut gate, &mut sink).await.unwrap();
    assert_eq!(gate.asked.len(), 1, "{:?}", gate.asked);
    assert!(gate.asked[0].contains("2 keys"), "{:?}", gate.asked);
    let answered: Vec<&str> = customer_data_inputs(&sink.0)
        .iter()
        .map(|e| e.data["key"].as_str().unwrap())
        .collect();
    assert_eq!(answered.len(), 2, "{answered:?}");
}
