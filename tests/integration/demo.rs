//! The training environment: a drill over every key finds exactly the planted problems and
//! writes nothing; the scripted demo completes a live incident and the audit finds the abuse.

use keyfire::demo::{SCENARIO_KEY, Training};
use keyfire::runbook::{ApproveAll, CollectSink, Engine, IncidentParams, Outcome, drive};

use crate::common::stdout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_over_every_demo_key_sends_no_write_and_finds_the_planted_problems() {
    let t = tokio::task::spawn_blocking(Training::start)
        .await
        .unwrap()
        .unwrap();
    let _folder = crate::common::RemoveOnDrop(t.dir.clone());
    let keys: Vec<String> = t
        .setup
        .inventory
        .keys
        .iter()
        .map(|k| k.id.clone())
        .collect();
    assert!(keys.len() >= 20, "about twenty keys: {}", keys.len());
    assert!(t.setup.inventory.agents.len() >= 6);
    let params = IncidentParams {
        keys: keys.clone(),
        dry_run: true,
        ..Default::default()
    };
    let mut engine = Engine::open(t.setup.clone(), params).unwrap();
    let mut sink = CollectSink::default();
    let outcome = drive(&mut engine, &mut ApproveAll::default(), &mut sink)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::Failed,
        "the planted problems fail their keys"
    );

    let requests: Vec<_> = t
        .openai
        .requests()
        .into_iter()
        .chain(t.anthropic.requests())
        .chain(t.gateway.requests())
        .chain(t.sendgrid.requests())
        .chain(t.litellm.requests())
        // Infisical's login creates a token and changes no secret: a drill sends it.
        .chain(
            t.infisical
                .requests()
                .into_iter()
                .filter(|r| r.path != "/api/v1/auth/universal-auth/login"),
        )
        .collect();
    let writes: Vec<_> = requests.iter().filter(|r| r.is_write()).collect();
    assert!(writes.is_empty(), "a drill sent writes: {writes:?}");
    assert!(requests.len() > 40, "the drill's reads were real");

    let failed: Vec<(String, Option<u64>)> = sink
        .0
        .iter()
        .filter(|e| e.kind == "step_failed")
        .map(|e| {
            (
                e.data["key"].as_str().unwrap().to_string(),
                e.data["status"].as_u64(),
            )
        })
        .collect();
    let anthropic: Vec<&String> = t
        .setup
        .inventory
        .keys
        .iter()
        .filter(|k| k.provider == "anthropic-training")
        .map(|k| &k.id)
        .collect();
    for k in &anthropic {
        assert!(
            failed.contains(&((*k).clone(), Some(401))),
            "{k}: the rejected admin credential is found: {failed:?}"
        );
    }
    assert!(
        failed
            .iter()
            .any(|(k, s)| k == "billing-openai" && *s == Some(404)),
        "the missing key is found: {failed:?}"
    );
    assert_eq!(
        failed.len(),
        anthropic.len() + 1,
        "nothing else fails: {failed:?}"
    );
    let inv = &t.setup.inventory;
    for k in &keys {
        if k == "billing-openai" {
            assert!(
                !t.still_works(k),
                "the planted missing key is not at the provider"
            );
            continue;
        }
        let key = inv.key(k).unwrap();
        let kind = inv.provider_of(key).map(|p| p.kind).unwrap();
        if keyfire::provider::capabilities_of(kind) == keyfire::provider::Capabilities::NONE {
            // Keys handled by hand: no provider to ask, so the store must be as seeded.
            match key.secret_path.as_deref() {
                Some(path) => {
                    assert_eq!(
                        t.vault.version(path),
                        1,
                        "{k} ({kind}): the drill wrote to its store"
                    )
                }
                None => assert!(
                    !t.values.contains_key(k),
                    "{k}: a value with nowhere to live"
                ),
            }
        } else {
            assert!(t.still_works(k), "{k} untouched by the drill");
        }
    }
    assert!(t.still_works(SCENARIO_KEY));
}

#[test]
fn demo_no_tui_completes_a_live_incident_and_the_audit_finds_the_planted_abuse() {
    crate::common::hermetic_signing_key();
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyfire"))
        .args(["demo", "--no-tui"])
        .env("TMPDIR", tmp.path())
        .env_remove("KEYFIRE_INVENTORY")
        .env_remove("KEYFIRE_DATA_DIR")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("TRAINING ENVIRONMENT"), "{text}");
    assert!(text.contains("incident closed: completed"), "{text}");
    assert!(
        text.contains("prove_revoked: the provider rejects the old key with HTTP 401"),
        "{text}"
    );
    assert!(
        text.contains("evaluate_rules: volume: 1 finding(s)")
            || text.contains("evaluate_rules: volume: 2 finding(s)"),
        "the planted abuse is found:\n{text}"
    );
    assert!(
        text.contains("still authenticates at the provider: no"),
        "{text}"
    );
    // The planted leak: the scan of the training repository finds the committed .env in
    // history and matches it to the scenario key through the store's current value.
    assert!(
        text.contains("support-openai (current, matched by store value fingerprint)"),
        "{text}"
    );
    assert!(text.contains(".env:1 (commit"), "{text}");
}

/// The training LiteLLM proxy holds a virtual key the inventory does not list: `inventory
/// discover` finds it as a shadow key, and finds every key the inventory does list.
#[tokio::test(flavor = "multi_thread")]
async fn discover_finds_the_shadow_key_planted_at_the_training_litellm_proxy() {
    let t = tokio::task::spawn_blocking(Training::start)
        .await
        .unwrap()
        .unwrap();
    let _folder = crate::common::RemoveOnDrop(t.dir.clone());
    let inv = &t.setup.inventory;
    let (chosen, skipped) =
        keyfire::discover::select(inv, &["litellm-training".to_string()]).unwrap();
    let http = keyfire::discover::client(keyfire::secret::Redactor::new()).unwrap();
    let report = keyfire::discover::discover(inv, &chosen, skipped, &http).await;
    let names: Vec<Option<&str>> = report
        .shadow
        .iter()
        .map(|s| s.key.name.as_deref())
        .collect();
    assert_eq!(
        names,
        vec![Some(keyfire::demo::SHADOW_KEY_ALIAS)],
        "{report:#?}"
    );
    assert!(report.gone.is_empty(), "{:?}", report.gone);
    assert!(!report.clean());
}
