//! The whole runbook on an `openai` provider through the binary, against the OpenAI sim.

use chrono::{Duration, NaiveTime, Utc};
use keyfire::provider::UsageBucket;
use keyfire::sim::Fault;
use keyfire::sim::openai::{KeyOwner, ORGANIZATION, UsageEndpoint};

use crate::common::{stderr, stdout};
use crate::llm::{LlmEnv, PATH, PROJECT};

fn keys_path() -> String {
    format!("/v1/organization/projects/{PROJECT}/api_keys")
}

fn service_accounts_path() -> String {
    format!("/v1/organization/projects/{PROJECT}/service_accounts")
}

/// `n` requests a day over the last three days, at one cent each.
fn recent_usage(n: u64) -> Vec<UsageBucket> {
    let today = Utc::now().date_naive().and_time(NaiveTime::MIN).and_utc();
    (0..3)
        .map(|i| {
            let start = today - Duration::days(i);
            UsageBucket {
                start,
                end: start + Duration::days(1),
                requests: n,
                input_tokens: n * 50,
                output_tokens: 0,
                cost_usd: n as f64 * 0.01,
            }
        })
        .collect()
}

#[test]
fn live_incident_revokes_replaces_stores_verifies_and_audits() {
    let env = LlmEnv::openai();
    let sim = env.openai_sim();
    // Beside completions: embeddings and web searches, each on its own usage endpoint.
    sim.set_endpoint_usage(
        &env.old_key_id,
        UsageEndpoint::Embeddings,
        recent_usage(1_000),
    );
    sim.set_endpoint_usage(
        &env.old_key_id,
        UsageEndpoint::WebSearchCalls,
        recent_usage(7),
    );
    let out = env.live_incident();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));

    // The leaked key is deleted and the provider now rejects it.
    assert!(sim.key(&env.old_key_id).unwrap().deleted);
    assert!(!env.accepts(&env.canaries.old_key));

    // Exactly one replacement: a service account named after the incident, whose key is what
    // the store now holds, and which authenticates.
    let accounts: Vec<_> = sim
        .service_accounts()
        .into_iter()
        .filter(|a| a.name.starts_with("keyfire-inc-"))
        .collect();
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert!(accounts[0].name.ends_with("-support-llm"));
    let new_key = sim
        .live_keys()
        .into_iter()
        .find(|k| k.owner == KeyOwner::ServiceAccount(accounts[0].id.clone()))
        .expect("the service account's key");
    assert_eq!(
        env.vault.value(PATH, "value", None).as_deref(),
        Some(new_key.value())
    );
    assert_eq!(env.vault.version(PATH), 2);
    assert!(env.accepts(new_key.value()));

    // The record holds the evidence.
    let id = &env.incident_ids()[0];
    let proof = &env.evidence(id, "prove_revoked")[0];
    assert_eq!(proof["old_key_rejected"], true);
    assert_eq!(proof["status"], 401);
    let created: Vec<_> = env
        .evidence(id, "create")
        .into_iter()
        .filter(|e| e.get("new_key_id").is_some())
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["new_key_id"], new_key.id);
    assert_eq!(env.evidence(id, "store_write")[0]["version"], 2);
    assert_eq!(env.evidence(id, "store_read_back")[0]["matches"], true);
    assert_eq!(env.evidence(id, "verify_new")[0]["new_key_works"], true);
    let located = &env.evidence(id, "locate")[0];
    assert_eq!(located["found"]["id"], env.old_key_id);

    let usage = env.evidence(id, "fetch_usage");
    let fetched = usage.iter().find(|e| e.get("pages").is_some()).unwrap();
    assert!(
        fetched["pages"].as_u64().unwrap() >= 4,
        "usage and costs each span two pages: {fetched}"
    );
    assert!(fetched["requests"].as_u64().unwrap() >= 18_000, "{fetched}");
    assert!(fetched["cost_usd"].as_f64().unwrap() > 180.0, "{fetched}");
    // Embeddings add to the requests; web-search tool calls are named, not added.
    let today = Utc::now().date_naive().and_time(NaiveTime::MIN).and_utc();
    let today_bucket = fetched["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| {
            b["start"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| t == today)
        })
        .expect("today's bucket");
    assert_eq!(today_bucket["requests"], 9_000 + 1_000, "{today_bucket}");
    let notes = fetched["notes"].to_string();
    assert!(
        notes.contains("completions ")
            && notes.contains("embeddings 3000 requests")
            && notes.contains("web_search_calls 21 tool calls"),
        "{notes}"
    );
    for quiet in [
        "images",
        "moderations",
        "audio_speeches",
        "file_search_calls",
    ] {
        assert!(!notes.contains(quiet), "{quiet} had no traffic: {notes}");
    }
    let audit = usage
        .iter()
        .find(|e| e.get("audit_log").is_some())
        .expect("audit-log evidence");
    let events = audit["audit_log"]["events"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["kind"] == "api_key.deleted"),
        "the key's own deletion is in the audit log: {audit}"
    );
    let rules = &env.evidence(id, "evaluate_rules")[0];
    assert_eq!(rules["rules"][0]["rule"], "volume");
    assert_eq!(rules["rules"][0]["status"], "findings", "{rules}");
    let report =
        std::fs::read_to_string(env.data_dir().join("incidents").join(id).join("report.md"))
            .unwrap();
    assert!(
        report.contains("over") && report.contains("requests in the exposure window"),
        "{report}"
    );
    assert!(report.contains("Provider audit log: "), "{report}");
    assert!(report.contains("embeddings 3000 requests"), "{report}");
    assert!(report.contains("api_key.deleted"), "{report}");

    // What the provider saw: the hint search read two pages of keys, one delete, one create,
    // usage and costs filtered by the key across pages, every admin call authenticated.
    let requests = env.requests();
    let list_pages = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path == keys_path())
        .collect::<Vec<_>>();
    assert_eq!(list_pages.len(), 2, "{list_pages:?}");
    assert_eq!(list_pages[0].query_values("owner_project_access"), ["any"]);
    assert!(!list_pages[1].query_values("after").is_empty());
    let deletes: Vec<_> = requests.iter().filter(|r| r.method == "DELETE").collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(
        deletes[0].path,
        format!("{}/{}", keys_path(), env.old_key_id)
    );
    let creates: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == service_accounts_path())
        .collect();
    assert_eq!(creates.len(), 1);
    // Every usage endpoint that filters by key, each to its last page of at most 31 days;
    // costs in pages of 180 days.
    for endpoint in UsageEndpoint::ALL {
        let path = format!("/v1/organization/usage/{}", endpoint.path());
        let pages: Vec<_> = requests.iter().filter(|r| r.path == path).collect();
        assert!(
            pages.len() >= 3,
            "snapshot, then two pages in the audit: {path}"
        );
        assert!(
            pages.iter().any(|p| !p.query_values("page").is_empty()),
            "{path}"
        );
        for p in pages {
            assert_eq!(
                p.query_values("api_key_ids"),
                std::slice::from_ref(&env.old_key_id)
            );
            assert_eq!(p.query_values("limit"), ["31"], "{path}");
        }
    }
    let costs: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/v1/organization/costs")
        .collect();
    assert!(costs.len() >= 2, "snapshot and audit: {costs:?}");
    for p in costs {
        assert_eq!(
            p.query_values("api_key_ids"),
            std::slice::from_ref(&env.old_key_id)
        );
        assert_eq!(p.query_values("limit"), ["180"]);
    }
    for r in requests
        .iter()
        .filter(|r| r.path.starts_with("/v1/organization/"))
    {
        assert!(r.has_header("authorization"), "{r:?}");
        assert_eq!(r.header("openai-organization"), Some(ORGANIZATION));
    }
    for r in &requests {
        assert!(
            r.header("user-agent")
                .is_some_and(|ua| ua.starts_with("keyfire/")),
            "{r:?}"
        );
    }
    assert_eq!(env.run(&["record", "verify", id]).status.code(), Some(0));
}

#[test]
fn drill_sends_reads_only_and_changes_nothing() {
    let env = LlmEnv::openai();
    let sim = env.openai_sim();
    let out = env.drill();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    let requests = env.requests();
    assert!(!requests.is_empty());
    let vault_requests = env.vault.requests();
    let writes: Vec<_> = requests
        .iter()
        .chain(vault_requests.iter())
        .filter(|r| r.is_write())
        .collect();
    assert!(writes.is_empty(), "a drill sent writes: {writes:?}");
    assert!(env.accepts(&env.canaries.old_key));
    assert!(sim.service_accounts().is_empty());
    // Reads are real: the key was found, the proof call works, usage was fetched.
    assert!(requests.iter().any(|r| r.path == "/v1/models"));
    assert!(
        requests
            .iter()
            .any(|r| r.path == "/v1/organization/usage/completions")
    );
    let id = &env.incident_ids()[0];
    let entries = env.entries(id);
    for action in ["revoke", "create", "store_write"] {
        assert!(
            entries
                .iter()
                .any(|e| e.kind == "not_sent" && e.data["action"] == action),
            "{action} is recorded as not sent"
        );
    }
    assert_eq!(
        env.evidence(id, "prove_revoked")[0]["old_key_authenticates"],
        true
    );
}

#[test]
fn a_service_account_key_is_revoked_by_deleting_its_service_account() {
    let env = LlmEnv::openai_service_account();
    let sim = env.openai_sim();
    let sa = match sim.key(&env.old_key_id).unwrap().owner {
        KeyOwner::ServiceAccount(sa) => sa,
        other => panic!("{other:?}"),
    };
    let out = env.live_incident();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(!env.accepts(&env.canaries.old_key));
    let deletes: Vec<_> = env
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.path)
        .collect();
    assert_eq!(deletes, [format!("{}/{sa}", service_accounts_path())]);
    assert!(
        stdout(&out).contains(&format!("Delete service account {sa}")),
        "the plan says what is deleted: {}",
        stdout(&out)
    );
    // The deletion is logged on the service account, not on the key: the audit-log search
    // asks for both ids and finds it.
    let searches: Vec<_> = env
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/organization/audit_logs")
        .collect();
    assert!(!searches.is_empty());
    for r in &searches {
        assert_eq!(
            r.query_values("resource_ids[]"),
            [env.old_key_id.clone(), sa.clone()]
        );
    }
    let id = &env.incident_ids()[0];
    let audit = env
        .evidence(id, "fetch_usage")
        .into_iter()
        .find(|e| e.get("audit_log").is_some())
        .expect("audit-log evidence");
    let kinds: Vec<&str> = audit["audit_log"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"service_account.deleted"), "{audit}");
    assert!(!kinds.contains(&"api_key.deleted"), "{audit}");
}

#[test]
fn a_replacement_whose_value_was_lost_is_revoked_and_made_again_on_resume() {
    let env = LlmEnv::openai();
    let sim = env.openai_sim();
    // The store write fails: the replacement exists at OpenAI but its value dies with the
    // process. (The same state as a crash between create and store.)
    env.vault
        .observer()
        .inject(Fault::fail("POST", "/v1/secret/data/", 500, 1));
    let out = env.live_incident();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("store_write: STEP FAILED"),
        "{}",
        stdout(&out)
    );
    let first: Vec<_> = sim.service_accounts();
    assert_eq!(first.len(), 1);

    let id = env.incident_ids().pop().unwrap();
    let resumed = env.run(&["incident", "resume", &id, "--yes", "--no-tui"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stdout(&resumed));

    let accounts = sim.service_accounts();
    assert_eq!(accounts.len(), 2, "{accounts:?}");
    assert!(accounts[0].deleted, "the unusable replacement was revoked");
    assert!(!accounts[1].deleted);
    assert!(accounts[1].name.ends_with("-2"), "{}", accounts[1].name);
    let live: Vec<_> = sim
        .live_keys()
        .into_iter()
        .filter(|k| matches!(&k.owner, KeyOwner::ServiceAccount(_)))
        .collect();
    assert_eq!(live.len(), 1, "exactly one replacement is live");
    assert_eq!(
        env.vault.value(PATH, "value", None).as_deref(),
        Some(live[0].value())
    );
    assert!(!env.accepts(&env.canaries.old_key));
}

#[test]
fn a_key_whose_owner_lost_project_access_is_still_found_and_revoked() {
    let env = LlmEnv::openai();
    let sim = env.openai_sim();
    // Listed only with owner_project_access=inactive|any: a search without it misses the key.
    sim.set_owner_access(&env.old_key_id, false);
    let out = env.live_incident();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // `owner_project_access: "inactive"` (project keys have no `status`): found, disabled.
    let id = &env.incident_ids()[0];
    assert_eq!(
        env.evidence(id, "locate")[0]["found"]["state"],
        "disabled",
        "{}",
        stdout(&out)
    );
    assert!(sim.key(&env.old_key_id).unwrap().deleted);
    assert!(!env.accepts(&env.canaries.old_key));
}

/// What OpenAI answers a live key that lacks a scope: 401 like a dead key, but no code.
const MISSING_SCOPE: &str = r#"{"error":{"message":"You have insufficient permissions for this operation. Missing scopes: api.model.read. Check that you have the correct role in your organization (Reader, Writer, Owner) and project (Member, Owner), and if you're using a restricted API key, that it has the necessary scopes.","type":"invalid_request_error","param":null,"code":null}}"#;

#[test]
fn a_401_for_a_missing_scope_is_not_proof_and_the_incident_exits_1() {
    let env = LlmEnv::openai();
    let sim = env.openai_sim();
    // Every proof attempt (one, then four more after short waits) gets the missing-scope 401.
    env.inject(Fault::raw("GET", "/v1/models", 401, MISSING_SCOPE, 5));
    let out = env.live_incident();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    assert!(text.contains("revocation NOT proven"), "{text}");
    // Containment and the other steps still ran: the key is deleted, the replacement stored
    // and verified, the report written.
    assert!(sim.key(&env.old_key_id).unwrap().deleted);
    assert_eq!(env.vault.version(PATH), 2);
    let id = &env.incident_ids()[0];
    let proof = &env.evidence(id, "prove_revoked")[0];
    assert_eq!(proof["proof"], "inconclusive", "{proof}");
    assert_eq!(proof["status"], 401, "{proof}");
    assert!(proof.get("old_key_rejected").is_none(), "{proof}");
    assert!(
        proof["reason"]
            .as_str()
            .unwrap()
            .contains("insufficient permissions"),
        "{proof}"
    );
    assert_eq!(env.evidence(id, "verify_new")[0]["new_key_works"], true);
    let report =
        std::fs::read_to_string(env.data_dir().join("incidents").join(id).join("report.md"))
            .unwrap();
    assert!(report.contains("revocation NOT proven"), "{report}");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            env.data_dir()
                .join("incidents")
                .join(id)
                .join("report.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(
        json["keys"][0]["evidence"]["revocation"]
            .as_str()
            .unwrap()
            .starts_with("NOT proven"),
        "{json}"
    );
}

#[test]
fn a_hint_matching_two_keys_stops_before_any_write_and_lists_both() {
    let env = LlmEnv::openai();
    let sim = env.openai_sim();
    // A look-alike: same prefix, same last four characters as the leaked key.
    let tail = &env.canaries.old_key[env.canaries.old_key.len() - 4..];
    let twin = sim.add_user_key(
        PROJECT,
        "support-bot-old",
        &format!("sk-proj-CAlookalike9Zx8Yw7Vu6Ts5Rq4Po3Nm2{tail}"),
    );
    let out = env.live_incident();
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(&env.old_key_id), "{text}");
    assert!(text.contains(&twin), "{text}");
    assert!(text.contains("provider_key_id"), "{text}");
    let writes: Vec<_> = env
        .requests()
        .into_iter()
        .chain(env.vault.requests())
        .filter(|r| r.is_write())
        .collect();
    assert!(writes.is_empty(), "nothing may be written: {writes:?}");
    assert!(env.accepts(&env.canaries.old_key));
    let id = &env.incident_ids()[0];
    let listed = &env.evidence(id, "locate")[0]["ambiguous"];
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");

    // The operator names the key, as the message says, and resumes: only that key goes.
    let inventory = std::fs::read_to_string(env.inventory_path()).unwrap();
    let hint_line = format!("hint = \"sk-proj-...{tail}\"");
    assert!(inventory.contains(&hint_line), "{inventory}");
    std::fs::write(
        env.inventory_path(),
        inventory.replace(
            &hint_line,
            &format!("provider_key_id = \"{}\"", env.old_key_id),
        ),
    )
    .unwrap();
    let resumed = env.run(&["incident", "resume", id, "--yes", "--no-tui"]);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&resumed),
        stderr(&resumed)
    );
    assert!(sim.key(&env.old_key_id).unwrap().deleted);
    assert!(
        !sim.key(&twin).unwrap().deleted,
        "the look-alike is untouched"
    );
}

#[test]
fn a_stored_value_that_is_not_the_located_key_proves_nothing() {
    let env = LlmEnv::openai();
    // The store holds some other key than the one found by the inventory's hint.
    env.vault.put(
        PATH,
        "value",
        "sk-proj-CANARYoaSomeOtherKey1Ab2Cd3Ef4Gh5Ij6Kl7Mn8zzzz",
    );
    let out = env.live_incident();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    assert!(text.contains("revocation NOT proven"), "{text}");
    let id = &env.incident_ids()[0];
    let proof = &env.evidence(id, "prove_revoked")[0];
    assert_eq!(proof["proof"], "inconclusive", "{proof}");
    assert_eq!(proof["identity"]["identity"], "differs", "{proof}");
    assert!(
        proof["reason"]
            .as_str()
            .unwrap()
            .contains("not the located key"),
        "{proof}"
    );
}

#[test]
fn a_drill_names_a_stored_value_that_is_not_the_located_key() {
    let env = LlmEnv::openai();
    env.vault.put(
        PATH,
        "value",
        "sk-proj-CANARYoaSomeOtherKey1Ab2Cd3Ef4Gh5Ij6Kl7Mn8zzzz",
    );
    let out = env.run(&["drill", "support-llm"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("PROBLEM: the value in the store is not the key located at the provider"),
        "{text}"
    );
}
