//! SendGrid and LiteLLM through the keyfire binary, against their loopback simulators with
//! the Vault sim as the store: a drill sends no write anywhere, a live incident replaces the
//! key with one of the same scopes (SendGrid) or models and limits (LiteLLM), stores it,
//! revokes the leaked key and proves it dead; kill -9 at the create, the revoke and the store
//! write resumes to exactly one live replacement.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use keyfire::sim::Fault;

use crate::common::{stderr, stdout};
use crate::llm::{KEY, Kind, LlmEnv, PATH};

fn envs() -> [LlmEnv; 2] {
    [LlmEnv::sendgrid(), LlmEnv::litellm()]
}

/// The path of the kind's create and revoke calls.
fn create_path(kind: Kind) -> &'static str {
    match kind {
        Kind::SendGrid => "/v3/api_keys",
        _ => "/key/generate",
    }
}

fn revoke_call(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::SendGrid => ("DELETE", "/v3/api_keys/"),
        _ => ("POST", "/key/delete"),
    }
}

/// The replacements keyfire made, still live: (value, what they can do).
fn live_replacements(env: &LlmEnv) -> Vec<(String, Vec<String>)> {
    match env.kind {
        Kind::SendGrid => env
            .sendgrid_sim()
            .keys()
            .into_iter()
            .filter(|k| k.name.starts_with("keyfire-"))
            .map(|k| (k.value().to_string(), k.scopes.clone()))
            .collect(),
        _ => env
            .litellm_sim()
            .keys()
            .into_iter()
            .filter(|k| {
                k.key_alias
                    .as_deref()
                    .is_some_and(|a| a.starts_with("keyfire-"))
            })
            .filter(|k| k.blocked != Some(true))
            .map(|k| (k.value().to_string(), k.models.clone()))
            .collect(),
    }
}

fn exactly_one_replacement_live(env: &LlmEnv) {
    assert!(
        !env.accepts(&env.canaries.old_key),
        "{:?}: the old key is dead",
        env.kind
    );
    let live = live_replacements(env);
    assert_eq!(
        live.len(),
        1,
        "{:?}: exactly one replacement: {live:?}",
        env.kind
    );
    let want: Vec<String> = match env.kind {
        Kind::SendGrid => vec!["mail.send".into(), "stats.read".into()],
        _ => vec!["gpt-4o".into()],
    };
    assert_eq!(live[0].1, want, "{:?}: same scopes or models", env.kind);
    assert!(env.accepts(&live[0].0), "{:?}", env.kind);
    assert_eq!(
        env.vault.value(PATH, "value", None).as_deref(),
        Some(live[0].0.as_str()),
        "{:?}: the store holds the live replacement",
        env.kind
    );
    assert_eq!(
        env.vault.version(PATH),
        2,
        "{:?}: one new store version",
        env.kind
    );
}

#[test]
fn a_drill_sends_no_write_to_sendgrid_litellm_or_the_store() {
    for env in envs() {
        let out = env.drill();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{:?}: {}",
            env.kind,
            stdout(&out)
        );
        let writes: Vec<_> = env
            .requests()
            .into_iter()
            .filter(|r| r.is_write())
            .collect();
        assert!(writes.is_empty(), "{:?}: {writes:?}", env.kind);
        assert!(!env.vault.requests().iter().any(|r| r.is_write()));
        assert!(!env.requests().is_empty(), "{:?}: the drill read", env.kind);
        assert!(env.accepts(&env.canaries.old_key));
    }
}

#[test]
fn a_live_incident_replaces_revokes_and_proves_the_key_dead() {
    for env in envs() {
        let out = env.live_incident();
        let text = stdout(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{:?}: {text}\n{}",
            env.kind,
            stderr(&out)
        );
        exactly_one_replacement_live(&env);
        let id = &env.incident_ids()[0];
        let proof = env.evidence(id, "prove_revoked");
        assert!(
            proof
                .iter()
                .any(|e| e["proof"] == "proven"
                    || e["text"].as_str().is_some_and(|t| t.contains("401"))),
            "{:?}: {proof:?}",
            env.kind
        );
        assert_eq!(env.run(&["record", "verify", id]).status.code(), Some(0));
    }
}

#[test]
fn litellm_spend_logs_feed_the_audit_rules_per_request() {
    let env = LlmEnv::litellm();
    let out = env.drill();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let id = &env.incident_ids()[0];
    let usage = env.evidence(id, "fetch_usage");
    let with_events = usage
        .iter()
        .find(|e| e["events_source"]["name"] == "LiteLLM spend logs")
        .unwrap_or_else(|| panic!("{usage:?}"));
    assert!(with_events["events_total"].as_u64().unwrap() > 0);
    let rules = env.evidence(id, "evaluate_rules");
    let text = rules[0]["text"].as_str().unwrap();
    // Per-request events with addresses and statuses: the network and off-hours rules can
    // be evaluated (the agent declares no networks or hours here, so they may be clean).
    assert!(text.contains("volume"), "{text}");
}

// ---- kill -9 --------------------------------------------------------------------------

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(env: &LlmEnv, args: &[&str]) -> Child {
    let mut c = env.cmd();
    c.args(args).stdout(Stdio::null()).stderr(Stdio::null());
    c.spawn().expect("spawn keyfire")
}

/// Run `args` until the server handled the first `method path…` (its answer held back),
/// then SIGKILL keyfire.
fn kill_after(env: &LlmEnv, args: &[&str], method: &str, path: &str, vault: bool) {
    let hold = Fault::hold(method, path, Duration::from_secs(60));
    let count = || {
        let reqs = if vault {
            env.vault.requests()
        } else {
            env.requests()
        };
        reqs.iter()
            .filter(|r| r.method == method && r.path.starts_with(path))
            .count()
    };
    if vault {
        env.vault.observer().inject(hold);
    } else {
        env.inject(hold);
    }
    let mut child = spawn(env, args);
    wait_until(&format!("{method} {path}"), || count() >= 1);
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

fn resume(env: &LlmEnv) {
    let ids = env.incident_ids();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let out = env.run(&["incident", "resume", &ids[0], "--yes", "--no-tui"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{:?}: {}\n{}",
        env.kind,
        stdout(&out),
        stderr(&out)
    );
}

const START: &[&str] = &["incident", "start", KEY, "--yes", "--no-tui"];

#[test]
fn killed_during_the_create_resumes_to_one_replacement() {
    for env in envs() {
        kill_after(&env, START, "POST", create_path(env.kind), false);
        resume(&env);
        exactly_one_replacement_live(&env);
    }
}

#[test]
fn killed_during_the_revoke_resumes_to_one_replacement() {
    for env in envs() {
        let (method, path) = revoke_call(env.kind);
        kill_after(&env, START, method, path, false);
        resume(&env);
        exactly_one_replacement_live(&env);
    }
}

#[test]
fn killed_during_the_store_write_resumes_to_one_replacement() {
    for env in envs() {
        kill_after(&env, START, "POST", "/v1/secret/data/", true);
        resume(&env);
        exactly_one_replacement_live(&env);
    }
}

// ---- listing for `inventory discover` and online lint ------------------------------------

fn provider_def(
    kind: keyfire::inventory::ProviderKind,
    base: String,
) -> keyfire::inventory::ProviderDef {
    keyfire::inventory::ProviderDef {
        id: "p".into(),
        kind,
        admin_credential: None,
        base_url: Some(base),
        settings: Default::default(),
        origin: keyfire::inventory::Origin { file: 0, line: 1 },
    }
}

#[test]
fn sendgrid_real_scopes_make_a_scope_beyond_needs_finding_the_inventory_hides() {
    const ADMIN: &str = "SG.CANARYlsAdmin7Q2x9LmZ4b.CANARYlsAdminSecret8nR1tY6wK3xxFg6Hj9Kl2Mn5Pq";
    let sim = keyfire::sim::SendGridSim::start().unwrap();
    sim.add_admin_key(ADMIN);
    let (_, value) = keyfire::sim::sendgrid::new_value();
    let id = sim.add_key("mailer", &value, &["mail.send", "marketing.contacts.read"]);
    let provider = keyfire::provider::SendGridProvider::new(&provider_def(
        keyfire::inventory::ProviderKind::SendGrid,
        sim.base_url(),
    ));
    let bag = keyfire::plan::SecretBag {
        admin: Some(keyfire::secret::Secret::new(ADMIN)),
        ..Default::default()
    };
    let http = keyfire::http::Http::new(true, keyfire::secret::Redactor::new()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    use keyfire::provider::ListKeys;
    let plan = provider.list_plan().unwrap();
    let listed = rt
        .block_on(provider.list_keys(&plan, &http, &bag))
        .unwrap()
        .keys;
    assert_eq!(listed.len(), 2, "the admin key and the mailer");
    let mailer = listed.iter().find(|k| k.id == id).unwrap();
    assert_eq!(
        mailer.scopes.as_deref(),
        Some(
            &[
                "mail.send".to_string(),
                "marketing.contacts.read".to_string()
            ][..]
        )
    );
    assert!(
        sim.requests().iter().all(|r| !r.is_write()),
        "listing is read-only"
    );

    // The inventory claims send-only; SendGrid says otherwise.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.toml");
    std::fs::write(
        &path,
        format!(
            "schema = 1\n[[providers]]\nid = \"mail\"\nkind = \"sendgrid\"\nadmin_credential = \"env:KF_TEST_UNUSED\"\nbase_url = \"{}\"\n\n[[agents]]\nid = \"a\"\nowner = \"o@example.com\"\noncall = \"#o\"\n\n[[keys]]\nid = \"mailer\"\nagents = [\"a\"]\nprovider = \"mail\"\nprovider_key_id = \"{id}\"\nscopes = [\"mail.send\"]\nneeds = [\"mail.send\"]\n",
            sim.base_url()
        ),
    )
    .unwrap();
    let inv = keyfire::inventory::load(std::slice::from_ref(&path)).unwrap();
    let today = chrono::Utc::now().date_naive();
    assert!(
        !keyfire::inventory::lint::lint(&inv, today)
            .iter()
            .any(|f| f.code == "scope-beyond-needs"),
        "offline, the inventory's own scopes look fine"
    );
    let real: std::collections::HashMap<String, Vec<String>> = listed
        .iter()
        .filter(|k| k.id == id)
        .map(|k| ("mailer".to_string(), k.scopes.clone().unwrap_or_default()))
        .collect();
    let found = keyfire::inventory::lint::scope_beyond_needs_at_provider(&inv, &real);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].message.to_string(),
        "scopes beyond what the agents need: marketing.contacts.read"
    );

    // The same through `inventory lint --online`, which reads SendGrid's answer itself.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyfire"))
        .args(["inventory", "lint", "--online", "--json"])
        .env("KEYFIRE_INVENTORY", &path)
        .env("KEYFIRE_DATA_DIR", dir.path().join("data"))
        .env("KF_TEST_UNUSED", ADMIN)
        .env_remove("KEYFIRE_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = stdout(&out);
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{text}\n{}", stderr(&out)));
    let online: Vec<&serde_json::Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "scope-beyond-needs")
        .collect();
    assert_eq!(online.len(), 1, "{text}");
    assert!(
        online[0]["message"]
            .as_str()
            .unwrap()
            .contains("marketing.contacts.read"),
        "{text}"
    );
    assert!(
        !text.contains(&ADMIN[4..ADMIN.len() - 4]),
        "no secret in the output"
    );
}

#[test]
fn litellm_lists_every_virtual_key_across_pages_with_models_and_owner() {
    const MASTER: &str = "sk-CANARYlsMaster7Q2x9LmZ4bV8nR1tY6wK3";
    let sim = keyfire::sim::LiteLlmSim::start().unwrap();
    sim.add_master_key(MASTER);
    for i in 0..230 {
        sim.add_key(
            Some(&format!("k-{i}")),
            &format!("sk-list{i:05}abcdefghijklmnop"),
            &["gpt-4o"],
        );
    }
    let provider = keyfire::provider::LiteLlmProvider::new(&provider_def(
        keyfire::inventory::ProviderKind::LiteLlm,
        sim.base_url(),
    ));
    let bag = keyfire::plan::SecretBag {
        admin: Some(keyfire::secret::Secret::new(MASTER)),
        ..Default::default()
    };
    let http = keyfire::http::Http::new(true, keyfire::secret::Redactor::new()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    use keyfire::provider::ListKeys;
    let plan = provider.list_plan().unwrap();
    let listed = rt
        .block_on(provider.list_keys(&plan, &http, &bag))
        .unwrap()
        .keys;
    assert_eq!(listed.len(), 230);
    let ids: std::collections::BTreeSet<_> = listed.iter().map(|k| k.id.clone()).collect();
    assert_eq!(ids.len(), 230, "no key twice");
    assert!(
        listed
            .iter()
            .all(|k| k.scopes.as_deref() == Some(&["gpt-4o".to_string()][..]))
    );
    assert!(
        listed
            .iter()
            .all(|k| k.owner.as_deref() == Some("support-bot"))
    );
    let pages: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/key/list")
        .collect();
    assert_eq!(pages.len(), 3, "three pages of 100");
    assert!(pages.iter().all(|r| !r.is_write()));
}

#[test]
fn a_litellm_provider_without_base_url_is_an_inventory_error_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.toml");
    std::fs::write(
        &path,
        "schema = 1\n[[providers]]\nid = \"gw\"\nkind = \"litellm\"\nadmin_credential = \"env:KF_TEST_UNUSED\"\n",
    )
    .unwrap();
    let err = keyfire::inventory::load(std::slice::from_ref(&path))
        .unwrap_err()
        .to_string();
    assert!(err.contains("inventory.toml"), "{err}");
    assert!(err.contains("needs base_url"), "{err}");
}
