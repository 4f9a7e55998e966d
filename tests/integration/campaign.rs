//! Campaigns: many keys in one incident, run concurrently with one approval per step.

use std::time::Duration;

use keyfire::runbook::{
    ApprovalRequest, CollectSink, Decision, Engine, FailureChoice, FailureView, Gate,
    ManualRequest, Order, Outcome, PasteRequest, drive,
};
use keyfire::secret::Secret;
use keyfire::sim::Fault;

use crate::common::{TestEnv, params, stdout};

/// Add `n` keys (`fleet-0`…) held by the support bot, each with its own value and store path.
fn fleet(env: &TestEnv, n: usize) -> Vec<(String, String)> {
    let mut text = std::fs::read_to_string(env.inventory_path()).unwrap();
    let mut keys = Vec::new();
    for i in 0..n {
        let value = format!("fk-fleet{i:03}-0000000000000000000000000000");
        let id = env.api.add_key(&format!("fleet-{i}"), &value);
        env.vault.put(&format!("fleet/{i}"), "value", &value);
        text.push_str(&format!(
            "\n[[keys]]\nid = \"fleet-{i}\"\nagents = [\"support-bot\"]\nprovider = \"llm\"\nprovider_key_id = \"{id}\"\nstore = \"vault\"\nsecret_path = \"fleet/{i}\"\ncreated_at = 2026-11-01\n"
        ));
        keys.push((format!("fleet-{i}"), id));
    }
    std::fs::write(env.inventory_path(), text).unwrap();
    keys
}

#[derive(Default)]
struct Counting {
    asked: Vec<(String, String, Option<String>)>,
}

impl Gate for Counting {
    async fn approve(&mut self, req: &ApprovalRequest<'_>) -> Decision {
        self.asked.push((
            req.action.to_string(),
            req.key.to_string(),
            req.confirm_text.map(str::to_string),
        ));
        Decision::Approve { via: "test".into() }
    }
    async fn confirm_manual(&mut self, _req: &ManualRequest<'_>) -> Decision {
        Decision::Approve { via: "test".into() }
    }
    async fn paste_secret(&mut self, _req: &PasteRequest<'_>) -> Option<Secret> {
        None
    }
    async fn on_failure(&mut self, _f: &FailureView<'_>) -> FailureChoice {
        FailureChoice::LeaveFailed
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_approval_per_step_for_the_whole_batch() {
    let env = TestEnv::new();
    let keys = fleet(&env, 5);
    let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    let mut engine = Engine::open(env.setup(), params(&names, false, Order::ContainFirst)).unwrap();
    let mut gate = Counting::default();
    let outcome = drive(&mut engine, &mut gate, &mut CollectSink::default())
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Completed);
    let actions: Vec<&str> = gate.asked.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(
        actions,
        [
            "disable",
            "revoke",
            "create",
            "store_write",
            "update_inventory"
        ],
        "{:?}",
        gate.asked
    );
    let revoke = gate.asked.iter().find(|a| a.0 == "revoke").unwrap();
    assert_eq!(
        revoke.2.as_deref(),
        Some("5"),
        "a destructive batch is confirmed by typing the count"
    );
    assert!(revoke.1.starts_with("5 keys ("), "{}", revoke.1);
    for (_, id) in &keys {
        assert!(env.api.key(id).unwrap().deleted);
    }
}

#[test]
fn fifty_key_campaign_revokes_and_replaces_each_once_and_one_failure_stays_alone() {
    let env = TestEnv::new();
    let keys = fleet(&env, 50);
    let broken = &keys[17];
    env.api
        .inject(Fault::fail("DELETE", &format!("/v1/keys/{}", broken.1), 500, 5).exact());
    env.api.observer().set_latency(Duration::from_millis(20));
    let mut args = vec!["incident", "start", "--yes", "--no-tui"];
    args.extend(keys.iter().map(|(k, _)| k.as_str()));
    let out = env.run(&args);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let ids = env.incident_ids();
    assert_eq!(ids.len(), 1, "one incident for the whole campaign");
    for (name, id) in &keys {
        let deleted = env.api.key(id).unwrap().deleted;
        if name == &broken.0 {
            assert!(!deleted, "the failing key was not deleted");
            assert_eq!(
                env.vault.version(&format!("fleet/{}", &name[6..])),
                1,
                "no replacement stored for it"
            );
        } else {
            assert!(deleted, "{name} revoked");
            assert_eq!(
                env.vault.version(&format!("fleet/{}", &name[6..])),
                2,
                "{name} replaced exactly once"
            );
        }
    }
    let created = env
        .api
        .live_keys()
        .iter()
        .filter(|k| k.name.starts_with("keyfire-"))
        .count();
    assert_eq!(created, 49, "one replacement per revoked key");
    let entries = env.entries(&ids[0]);
    let failed: Vec<&str> = entries
        .iter()
        .filter(|e| e.kind == "step_failed")
        .filter_map(|e| e.data["key"].as_str())
        .collect();
    assert_eq!(failed, [broken.0.as_str()]);
    assert!(text.contains(&format!("{}: FAILED", broken.0)), "{text}");
    // Concurrent, and bounded by the provider's limit (16 by default): read from what the
    // server saw at once, not from a clock.
    let at_once = env.api.observer().max_in_flight();
    assert!(
        (2..=16).contains(&at_once),
        "{at_once} requests at once (the latency keeps each open for 20 ms)"
    );
    assert_eq!(
        env.run(&["record", "verify", &ids[0]]).status.code(),
        Some(0)
    );
}

#[test]
fn agent_campaign_takes_every_key_the_agent_holds() {
    let env = TestEnv::new();
    let out = env.run(&["incident", "start", "--agent", "research", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let id = env.incident_ids().pop().unwrap();
    let first = &env.entries(&id)[0];
    let mut keys: Vec<&str> = first.data["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k.as_str())
        .collect();
    keys.sort();
    assert_eq!(keys, ["research-llm", "sales-crm"]);
    assert_eq!(
        env.run(&["incident", "start", "--agent", "nobody", "--dry-run"])
            .status
            .code(),
        Some(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_is_contained_before_any_key_is_redeployed_or_audited() {
    let env = TestEnv::new();
    // More keys than the provider runs at once (16 by default): two waves.
    let keys = fleet(&env, 24);
    let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    let mut engine = Engine::open(env.setup(), params(&names, false, Order::ContainFirst)).unwrap();
    let outcome = drive(
        &mut engine,
        &mut Counting::default(),
        &mut CollectSink::default(),
    )
    .await
    .unwrap();
    assert_eq!(outcome, Outcome::Completed);
    let entries = env.entries(engine.id());
    let proofs: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == "evidence" && e.data["action"] == "prove_revoked")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(proofs.len(), 24, "every key's revocation was proven");
    let last_proof = *proofs.last().unwrap();
    let first_after_containment = entries
        .iter()
        .position(|e| {
            e.kind == "request_sent"
                && matches!(
                    e.data["action"].as_str(),
                    Some("create" | "store_write" | "snapshot_usage" | "fetch_usage")
                )
        })
        .unwrap();
    assert!(
        last_proof < first_after_containment,
        "the last proof (line {last_proof}) came before any redeploy or evidence read (line {first_after_containment})"
    );
    let closed = entries.last().unwrap();
    assert_eq!(closed.kind, "incident_closed");
    let per_key: Vec<i64> = names
        .iter()
        .map(|k| {
            closed.data["keys"][*k]["time_to_contain_ms"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        closed.data["fleet_time_to_contain_ms"].as_i64(),
        per_key.iter().copied().max(),
        "the fleet is contained when its last key is"
    );
    let state = keyfire::record::IncidentState::fold(&entries).unwrap();
    assert_eq!(
        state.fleet_time_to_contain_ms,
        closed.data["fleet_time_to_contain_ms"].as_i64()
    );
    for (_, id) in &keys {
        assert!(env.api.key(id).unwrap().deleted);
    }
}
